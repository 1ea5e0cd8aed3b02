// What every model is to the rest of Osprey: a forward function over NHWC f32 batches, a
// ParamStore, and a train/eval mode. Concrete models live in models/.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/param_store.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace osprey {

struct BatchNormSync;  // engine/conv_bn_act.h
class InferenceGraph;  // engine/inference_graph.h

// A forward for inference only (no autograd, BatchNorm's running statistics, no dropout) over
// the weights as they were when it was built: build it again after they change.
class InferenceNet {
 public:
  virtual ~InferenceNet() = default;
  virtual Tensor forward(const Tensor& x) = 0;
};

class Model {
 public:
  virtual ~Model() = default;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // x [N,H,W,C] f32 -> logits [N,classes].
  virtual Tensor forward(const Tensor& x) = 0;
  virtual std::string name() const = 0;
  // The forward as a chain of segments (for pipeline parallelism): forward(x) ==
  // forward_segment(n-1, ... forward_segment(0, x)). A model that cannot be split is one
  // segment.
  virtual int num_segments() const { return 1; }
  virtual Tensor forward_segment(int i, const Tensor& x) { return forward(x); }
  // The parameter and buffer indices segment i owns, [begin, end) in registration order.
  std::pair<int, int> segment_params(int i) const { return segment_range(i, true); }
  std::pair<int, int> segment_buffers(int i) const { return segment_range(i, false); }
  // Name prefixes of the final classifier, which fine-tuning replaces when the class count
  // differs from the pretrained model's.
  virtual std::vector<std::string> classifier_prefixes() const = 0;

  // For eval, predict and serve: the model's own eval-mode forward, unless the model has a
  // faster inference form (folded BatchNorm, fused blocks). The model must outlive it.
  virtual std::unique_ptr<InferenceNet> inference_net();
  // For export to other runtimes (osprey export --onnx): the eval-mode forward on inputs of
  // height x width (the checkpoint's input size) as a graph of standard operators with
  // BatchNorm folded, over copies of the current weights. Models without one refuse, naming
  // themselves; models built for one input size refuse others.
  virtual InferenceGraph inference_graph(int height, int width) const;

  ParamStore& params() { return params_; }
  const ParamStore& params() const { return params_; }
  // Moves parameters and buffers to `device`; inputs must then be on it too.
  void to(Device device) { params_.to(device); }
  Device device() const { return params_.device(); }
  void train(bool on = true) { training_ = on; }
  void eval() { training_ = false; }
  bool training() const { return training_; }
  // Dropout draws from this stream; reseeding it makes masks reproducible.
  Rng& rng() { return rng_; }
  const Rng& rng() const { return rng_; }
  // Synchronized BatchNorm across the processes of a data-parallel job (null: off). Models
  // without BatchNorm ignore it.
  virtual void set_batchnorm_sync(std::shared_ptr<const BatchNormSync> sync) {}
  // Trade time for activation memory: keep less for backward and recompute the rest there
  // (gradients unchanged). Models with nothing worth recomputing ignore it.
  virtual void set_recompute_activations(bool on) {}
  // The storage type of activations in training and eval-mode forwards: f32, or bf16 (mixed
  // precision: parameters, gradients, statistics and the classifier stay f32; every sum is
  // in float or double). Models without a bf16 path refuse it.
  virtual void set_activation_dtype(DType dtype);
  DType activation_dtype() const { return activation_dtype_; }

 protected:
  Model() = default;
  // Models that have several segments call this after registering each one's parameters.
  void end_segment() {
    segment_ends_.push_back({int(params_.params().size()), int(params_.buffers().size())});
  }
  ParamStore params_;
  bool training_ = true;
  DType activation_dtype_ = DType::f32;
  Rng rng_{0x5eed};

 private:
  std::pair<int, int> segment_range(int i, bool params) const {
    auto end = [&](int k) {
      if (segment_ends_.empty())
        return params ? int(params_.params().size()) : int(params_.buffers().size());
      return params ? segment_ends_[size_t(k)].first : segment_ends_[size_t(k)].second;
    };
    return {i == 0 ? 0 : end(i - 1), end(i)};
  }
  std::vector<std::pair<int, int>> segment_ends_;  // (params, buffers) after each segment
};

}  // namespace osprey
