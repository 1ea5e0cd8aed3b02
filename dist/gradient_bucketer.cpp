#include "dist/gradient_bucketer.h"

#include "kernels/error.h"

namespace osprey::dist {

GradientBucketer::GradientBucketer(ParamStore& store, Communicator& comm, BucketOptions opts)
    : store_(store), comm_(comm) {
  OSPREY_CHECK(store.finalized(), "GradientBucketer: parameters are not finalized");
  OSPREY_CHECK(opts.first_bucket_bytes > 0 && opts.bucket_bytes > 0,
               "bucket sizes must be positive");
  const auto& params = store.params();
  const int n = int(params.size());
  bucket_of_.assign(size_t(n), -1);
  auto end_of = [&](int i) { return i + 1 < n ? params[size_t(i) + 1].offset : store.flat_size(); };
  int64_t cap = opts.first_bucket_bytes / int64_t(sizeof(float));
  for (int i = n - 1; i >= 0;) {
    Bucket b;
    b.last_param = i;
    b.end = end_of(i);
    // Whole parameters only; one larger than the cap gets a bucket of its own.
    int j = i;
    while (j - 1 >= 0 && b.end - params[size_t(j) - 1].offset <= cap) --j;
    b.first_param = j;
    b.begin = params[size_t(j)].offset;
    b.pending = i - j + 1;
    for (int k = j; k <= i; ++k) bucket_of_[size_t(k)] = int(buckets_.size());
    buckets_.push_back(b);
    cap = opts.bucket_bytes / int64_t(sizeof(float));
    i = j - 1;
  }
  if (comm_.size() > 1) store_.set_grad_ready_hook([this](int param) { on_ready(param); });
}

GradientBucketer::~GradientBucketer() {
  store_.set_grad_ready_hook(nullptr);
}

void GradientBucketer::on_ready(int param) {
  Bucket& b = buckets_[size_t(bucket_of_[size_t(param)])];
  if (--b.pending == 0) launch(b);
}

void GradientBucketer::launch(Bucket& b) {
  if (b.launched) return;
  b.launched = true;
  comm_.allreduce_average_async(store_.flat_grad().ptr<float>() + b.begin, b.end - b.begin);
}

void GradientBucketer::finish() {
  if (comm_.size() > 1) {
    // Launch in bucket order on every rank: collectives must be issued in the same order.
    for (Bucket& b : buckets_) launch(b);
    comm_.wait_all();
  }
  for (Bucket& b : buckets_) {
    b.pending = b.last_param - b.first_param + 1;
    b.launched = false;
  }
}

void broadcast_state(ParamStore& store, Communicator& comm, int root) {
  if (comm.size() == 1) return;
  comm.broadcast(store.flat_data().ptr<float>(), store.flat_size(), root);
  for (const Buffer& b : store.buffers()) {
    if (b.value.dtype() == DType::i64)
      comm.broadcast(b.value.data<int64_t>(), b.value.numel(), root);
    else
      comm.broadcast(b.value.ptr<float>(), b.value.numel(), root);
  }
}

}  // namespace osprey::dist
