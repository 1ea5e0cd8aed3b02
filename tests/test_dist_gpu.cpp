// Data parallelism with GPU buffers, run by CTest as `mpirun -np 1|2 test_dist_gpu` (exit 77, a
// skip, without a GPU): through the MPI communicator, which stages GPU buffers in host memory
// (ranks may share one GPU: OSPREY_SHARE_GPUS=1), and through NCCL when every rank has a GPU.
#include <catch2/catch.hpp>
#include <cstdio>

#include "dist/communicator.h"
#include "dist/gradient_bucketer.h"
#include "dist/nccl_communicator.h"
#include "dist/pipeline.h"
#include "engine/autograd.h"
#include "engine/conv_bn_act.h"
#include "engine/device.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "models/registry.h"
#include "tests/block_fixture.h"
#include "tests/catch_session.h"
#include "tests/cuda_test_support.h"

using namespace osprey;

namespace {

dist::World g_world;
std::unique_ptr<dist::Communicator> g_comm;

// 3 Adam steps of simple_cnn on the GPU; every rank takes its slice of each global batch.
std::vector<float> train_on_gpu(dist::Communicator& comm, int global_batch,
                                dist::BucketOptions buckets) {
  models::ModelSpec spec;
  spec.in_channels = 1, spec.height = spec.width = 12, spec.num_classes = 5;
  spec.seed = 100 + uint64_t(comm.rank());  // different on purpose: the broadcast must fix it
  auto model = models::create_model(spec);
  model->to(Device::cuda);
  dist::broadcast_state(model->params(), comm);
  auto adam = make_optimizer(model->params(), OptimizerOptions{});
  dist::GradientBucketer bucketer(model->params(), comm, buckets);
  const int local = global_batch / comm.size();
  for (int s = 0; s < 3; ++s) {
    Rng rng(7 + uint64_t(s));
    Tensor x = tests::random_tensor({global_batch, 12, 12, 1}, rng, 1.0);
    std::vector<int64_t> labels;
    for (int i = 0; i < global_batch; ++i) labels.push_back(int64_t(rng.next_u64() % 5));
    Tensor y = Tensor::from_labels(labels);
    adam->zero_grad();
    Tensor loss = ops::softmax_cross_entropy(
        model->forward(x.rows(comm.rank() * local, local).to(Device::cuda)),
        y.rows(comm.rank() * local, local));
    loss.backward();
    bucketer.finish();
    adam->step();
  }
  return model->params().flat_data().to_vector();
}

void check_data_parallel(dist::Communicator& comm) {
  auto local = dist::make_local_communicator();
  for (dist::BucketOptions buckets : {dist::BucketOptions{}, dist::BucketOptions{700, 9000}}) {
    INFO(comm.name() << ", " << comm.size() << " ranks, bucket caps " << buckets.first_bucket_bytes
                     << "/" << buckets.bucket_bytes);
    std::vector<float> reference = train_on_gpu(*local, 12, buckets);
    std::vector<float> ours = train_on_gpu(comm, 12, buckets);
    REQUIRE(tests::rel_l2(ours, reference) < 1e-5);
  }
}

}  // namespace

TEST_CASE("GPU buffers through the MPI communicator: N ranks x B/N equal 1 rank x B") {
  check_data_parallel(*g_comm);
}

TEST_CASE("NCCL: N ranks x B/N equal 1 rank x B, and broadcasts reach every rank") {
  if (!dist::built_with_nccl() || !g_world.mpi || g_world.local_size > gpu_count()) {
    WARN("built without NCCL, not under mpirun, or ranks share a GPU (NCCL refuses): skipped");
    return;
  }
  auto nccl = dist::make_nccl_communicator(g_comm->split(0, g_comm->rank()));
  check_data_parallel(*nccl);
  Tensor t = Tensor::full({37}, float(nccl->rank() + 1)).to(Device::cuda);
  nccl->broadcast(t.ptr<float>(), t.numel(), 0);
  CHECK(t.to_vector() == std::vector<float>(37, 1.0f));
}

// Pipeline parallelism on GPUs: consecutive ranks hold consecutive stages (activations and
// their gradients cross between stages through the communicator, staged in host memory when
// ranks share a GPU), against the unsplit model on the same micro-batches in the same order.
TEST_CASE("a 2-stage pipeline on cuda equals the unsplit model on cuda") {
  const int world = g_comm->size(), rank = g_comm->rank();
  const int stages = world % 2 == 0 ? 2 : 1;
  auto pipe = g_comm->split(rank / stages, rank % stages);
  const int batch = 8, micro = 4, mb = batch / micro;
  models::ModelSpec spec;
  spec.name = "mobilenet_v2_cifar";
  spec.in_channels = 1, spec.height = spec.width = 12, spec.num_classes = 5;
  spec.width_mult = 0.25f, spec.dropout = 0.0f;
  auto model = models::create_model(spec), reference = models::create_model(spec);
  model->to(Device::cuda);
  reference->to(Device::cuda);
  OptimizerOptions sgd;
  sgd.kind = "sgd", sgd.lr = 0.05f, sgd.momentum = 0.0f;
  auto opt = make_optimizer(model->params(), sgd),
       ref_opt = make_optimizer(reference->params(), sgd);
  const dist::PipelinePlan plan =
      dist::balance_stages(std::vector<double>(size_t(model->num_segments()), 1.0), stages);
  dist::PipelineSchedule schedule(*model, plan, *pipe);
  for (int step = 0; step < 2; ++step) {
    Rng rng(30 + uint64_t(step));
    Tensor x = tests::random_tensor({batch, 12, 12, 1}, rng, 1.0).to(Device::cuda);
    std::vector<int64_t> labels;
    for (int i = 0; i < batch; ++i) labels.push_back(int64_t(rng.next_u64() % 5));
    Tensor y = Tensor::from_labels(labels);
    opt->zero_grad();
    const double loss = schedule.train_step(x, y, micro, 0.0f);
    opt->step();
    ref_opt->zero_grad();
    double ref_loss = 0.0;
    for (int j = micro - 1; j >= 0; --j) {  // the pipeline's backward order
      Tensor l =
          ops::softmax_cross_entropy(reference->forward(x.rows(j * mb, mb)), y.rows(j * mb, mb));
      ref_loss += double(l.to_vector()[0]) / micro;
      autograd::backward(l, Tensor::full({1}, 1.0f / float(micro)));
    }
    ref_opt->step();
    if (schedule.last_stage()) CHECK(loss == Approx(ref_loss).epsilon(1e-5));
  }
  dist::sync_pipeline_state(*model, plan, *pipe, opt.get());
  INFO(stages << " stages");
  REQUIRE(tests::rel_l2(model->params().flat_data().to_vector(),
                        reference->params().flat_data().to_vector()) < 1e-5);
}

// Synchronized BatchNorm on GPU tensors: the statistics and the backward's sums cross the ranks
// through the host; N ranks x B/N rows give the gradients of 1 rank x B rows (ReLU6 inputs kept
// clear of the kinks by the fixture).
TEST_CASE("synchronized BatchNorm on cuda: N ranks x B/N samples give 1 rank x B gradients") {
  const int batch = 8;
  Rng rng(31);
  ConvBnActChain block = tests::random_block(4, 3, 1, rng);
  for (ConvBnAct& l : block.layers)
    for (Tensor* t : {&l.weight, &l.gamma, &l.beta, &l.running_mean, &l.running_var}) {
      const bool grad = t->requires_grad();
      *t = t->to(Device::cuda);
      if (grad) t->set_requires_grad();
    }
  Tensor x = tests::random_tensor({batch, 5, 5, 4}, rng, 1.0);
  Tensor fc = tests::random_tensor({3, 5 * 5 * 4}, rng, 0.3).to(Device::cuda);
  const std::vector<int64_t> all_labels = {0, 2, 1, 1, 0, 2, 2, 1};
  std::vector<Tensor> params;
  for (const ConvBnAct& l : block.layers) params.insert(params.end(), {l.weight, l.gamma, l.beta});
  auto gradients = [&](int64_t begin, int64_t count) {
    for (const Tensor& p : params) p.zero_grad();
    Tensor xs = x.rows(begin, count).to(Device::cuda).set_requires_grad();
    std::vector<int64_t> labels(all_labels.begin() + begin, all_labels.begin() + begin + count);
    Tensor y = ops::conv_bn_act_chain(xs, block, true);
    ops::softmax_cross_entropy(ops::linear(ops::flatten(y), fc, Tensor()),
                               Tensor::from_labels(labels))
        .backward();
    std::vector<float> all;
    for (const Tensor& p : params) {
      const std::vector<float> g = p.grad().to_vector();
      all.insert(all.end(), g.begin(), g.end());
    }
    return all;
  };
  const std::vector<float> reference = gradients(0, batch);
  const int n = g_comm->size(), local = batch / n;
  for (ConvBnAct& l : block.layers)
    l.sync = std::make_shared<BatchNormSync>(
        BatchNormSync{[](double* d, int64_t count) { g_comm->allreduce_sum(d, count); }});
  std::vector<float> ours = gradients(g_comm->rank() * local, local);
  std::vector<double> avg(ours.begin(), ours.end());
  g_comm->allreduce_sum(avg.data(), int64_t(avg.size()));
  for (size_t j = 0; j < ours.size(); ++j) ours[j] = float(avg[j] / n);
  INFO(n << " ranks");
  REQUIRE(tests::rel_l2(ours, reference) < 1e-5);
}

int main(int argc, char** argv) {
  g_world = dist::init_world(&argc, &argv);
  int rc = 77;
  if (cuda_available()) {
    set_local_rank_gpu(g_world.local_rank);
    resolve_device("cuda");
    g_comm = dist::make_communicator(g_world);
    rc = osprey_test::run_catch_session(argc, argv);
    g_comm.reset();
  } else {
    std::printf("no CUDA device: skipping\n");
  }
  dist::finalize_world();
  return rc;
}
