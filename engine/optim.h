// Optimizers over a ParamStore's flat buffers: one fused pass per step, PyTorch's update rules.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/param_store.h"

namespace osprey {

struct OptimizerOptions {
  std::string kind = "adam";  // adam | adamw | sgd
  float lr = 1e-3f;
  float weight_decay = 0.0f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;  // adam, adamw
  float momentum = 0.0f, dampening = 0.0f;          // sgd
  bool nesterov = false;                            // sgd
};

class Optimizer {
 public:
  explicit Optimizer(ParamStore& store, OptimizerOptions opts);
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  void zero_grad() { store_.zero_grad(); }
  float lr() const { return opts_.lr; }
  void set_lr(float lr) { opts_.lr = lr; }
  // SGD's momentum, or Adam's beta1 (what a one-cycle schedule cycles).
  void set_momentum(float m) { (opts_.kind == "sgd" ? opts_.momentum : opts_.beta1) = m; }
  int64_t steps() const { return steps_; }
  const OptimizerOptions& options() const { return opts_; }

  // Per-parameter state as flat buffers laid out like ParamStore::flat_data(), by PyTorch's
  // slot names (exp_avg, exp_avg_sq, momentum_buffer), for checkpoints.
  virtual std::vector<std::pair<std::string, Tensor>> state() const = 0;
  void set_steps(int64_t steps) { steps_ = steps; }

 protected:
  ParamStore& store_;
  OptimizerOptions opts_;
  int64_t steps_ = 0;
};

// Fails with a message naming the valid kinds when opts.kind is unknown.
std::unique_ptr<Optimizer> make_optimizer(ParamStore& store, const OptimizerOptions& opts);

// Scales all gradients so their global L2 norm is at most max_norm (torch's
// clip_grad_norm_: coefficient max_norm / (norm + 1e-6)); returns the norm before clipping.
// When other processes hold the rest of the gradients (pipeline stages: each holds its own
// stage's), sum_across turns this process's sum of squares into the total over all of them.
double clip_grad_norm(ParamStore& store, double max_norm,
                      const std::function<double(double)>& sum_across = nullptr);

}  // namespace osprey
