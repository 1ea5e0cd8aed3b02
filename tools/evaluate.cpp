#include "tools/evaluate.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace osprey::tools {

Evaluation evaluate(Model& model, const data::Dataset& ds, const data::Normalize& norm,
                    int batch_size) {
  autograd::NoGradGuard no_grad;
  bool was_training = model.training();
  model.eval();
  Evaluation ev;
  std::vector<int64_t> indices(size_t(ds.n));
  std::iota(indices.begin(), indices.end(), 0);
  for (int64_t start = 0; start < ds.n; start += batch_size) {
    int count = int(std::min<int64_t>(batch_size, ds.n - start));
    Tensor x = Tensor::empty({count, ds.h, ds.w, ds.c});
    data::normalize_into(ds, indices.data() + start, count, norm, x.data<float>());
    std::vector<int64_t> labels(ds.labels.begin() + start, ds.labels.begin() + start + count);
    Tensor logits = model.forward(x);
    Tensor loss = ops::softmax_cross_entropy(logits, Tensor::from_labels(labels));
    ev.loss += double(loss.data<float>()[0]) * count;
    const float* l = logits.data<float>();
    int k = int(logits.dim(1));
    for (int i = 0; i < count; ++i) {
      int best = int(std::max_element(l + i * k, l + (i + 1) * k) - (l + i * k));
      ev.correct += best == labels[size_t(i)];
    }
    ev.samples += count;
  }
  if (ev.samples) ev.loss /= double(ev.samples);
  model.train(was_training);
  return ev;
}

}  // namespace osprey::tools
