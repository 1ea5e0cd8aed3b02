#include "tools/evaluate.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace osprey::tools {

int64_t Evaluation::class_count(int k) const {
  int64_t n = 0;
  for (int p = 0; p < num_classes; ++p) n += confusion[size_t(k * num_classes + p)];
  return n;
}

double Evaluation::class_accuracy(int k) const {
  int64_t n = class_count(k);
  return n ? double(confusion[size_t(k * num_classes + k)]) / double(n) : 0.0;
}

Evaluation evaluate(Model& model, const data::Dataset& ds, const data::AugmentPipeline& eval,
                    int channels, int num_classes, int batch_size, int rank, int world) {
  std::unique_ptr<InferenceNet> net = model.inference_net();
  autograd::NoGradGuard no_grad;
  Evaluation ev;
  std::vector<int64_t> indices;
  for (int64_t i = rank; i < ds.n; i += world) indices.push_back(i);
  const int64_t n = int64_t(indices.size());
  ev.num_classes = num_classes;
  ev.confusion.assign(size_t(num_classes) * size_t(num_classes), 0);
  for (int64_t start = 0; start < n; start += batch_size) {
    int count = int(std::min<int64_t>(batch_size, n - start));
    data::ImageShape out = eval.output_shape({ds.h, ds.w, channels});
    Tensor x = Tensor::empty({count, out.h, out.w, out.c});
    data::eval_into(eval, ds, indices.data() + start, count, channels, x.data<float>());
    std::vector<int64_t> labels(static_cast<size_t>(count));
    for (int i = 0; i < count; ++i)
      labels[size_t(i)] = ds.labels[size_t(indices[size_t(start + i)])];
    Tensor logits = net->forward(x.to(model.device()));
    Tensor loss = ops::softmax_cross_entropy(logits, Tensor::from_labels(labels));
    ev.loss += double(loss.to_vector()[0]) * count;
    logits = logits.to(Device::cpu);
    const float* l = logits.data<float>();
    int k = int(logits.dim(1));
    OSPREY_CHECK(k == num_classes, "evaluate: the model has ", k, " classes, expected ",
                 num_classes);
    for (int i = 0; i < count; ++i) {
      int best = int(std::max_element(l + i * k, l + (i + 1) * k) - (l + i * k));
      int64_t truth = labels[size_t(i)];
      ev.correct += best == truth;
      ev.confusion[size_t(truth * k + best)] += 1;
    }
    ev.samples += count;
  }
  if (ev.samples) ev.loss /= double(ev.samples);
  return ev;
}

void sum_across_ranks(Evaluation& ev, dist::Communicator& comm) {
  if (comm.size() == 1) return;
  double loss_sum = ev.loss * double(ev.samples);
  comm.allreduce_sum(&loss_sum, 1);
  std::vector<int64_t> counts = {ev.samples, ev.correct};
  counts.insert(counts.end(), ev.confusion.begin(), ev.confusion.end());
  comm.allreduce_sum(counts.data(), int64_t(counts.size()));
  ev.samples = counts[0], ev.correct = counts[1];
  std::copy(counts.begin() + 2, counts.end(), ev.confusion.begin());
  ev.loss = ev.samples ? loss_sum / double(ev.samples) : 0.0;
}

}  // namespace osprey::tools
