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
                    int channels, int batch_size) {
  autograd::NoGradGuard no_grad;
  bool was_training = model.training();
  model.eval();
  Evaluation ev;
  std::vector<int64_t> indices(size_t(ds.n));
  std::iota(indices.begin(), indices.end(), 0);
  for (int64_t start = 0; start < ds.n; start += batch_size) {
    int count = int(std::min<int64_t>(batch_size, ds.n - start));
    data::ImageShape out = eval.output_shape({ds.h, ds.w, channels});
    Tensor x = Tensor::empty({count, out.h, out.w, out.c});
    data::eval_into(eval, ds, indices.data() + start, count, channels, x.data<float>());
    std::vector<int64_t> labels(ds.labels.begin() + start, ds.labels.begin() + start + count);
    Tensor logits = model.forward(x);
    Tensor loss = ops::softmax_cross_entropy(logits, Tensor::from_labels(labels));
    ev.loss += double(loss.data<float>()[0]) * count;
    const float* l = logits.data<float>();
    int k = int(logits.dim(1));
    if (ev.confusion.empty()) {
      ev.num_classes = k;
      ev.confusion.assign(size_t(k) * size_t(k), 0);
    }
    for (int i = 0; i < count; ++i) {
      int best = int(std::max_element(l + i * k, l + (i + 1) * k) - (l + i * k));
      int64_t truth = labels[size_t(i)];
      ev.correct += best == truth;
      ev.confusion[size_t(truth * k + best)] += 1;
    }
    ev.samples += count;
  }
  if (ev.samples) ev.loss /= double(ev.samples);
  model.train(was_training);
  return ev;
}

}  // namespace osprey::tools
