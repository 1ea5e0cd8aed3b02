#include "engine/optim.h"

#include <cmath>

#include "engine/dispatch.h"
#include "engine/flat_ops.h"
#include "engine/profiler.h"
#include "kernels/cpu/optim.h"

#ifdef OSPREY_WITH_CUDA
#include "kernels/cuda/optim.h"
#endif

namespace osprey {
namespace {

void check_state_device(const Tensor& state, const ParamStore& store) {
  OSPREY_CHECK(state.device() == store.device(), "optimizer state is on ",
               device_name(state.device()), " but the parameters are on ",
               device_name(store.device()), ": create the optimizer after moving the model");
}

class Sgd : public Optimizer {
 public:
  Sgd(ParamStore& store, OptimizerOptions opts) : Optimizer(store, opts) {
    if (opts_.momentum != 0.0f)
      momentum_ = Tensor::zeros({store.flat_size()}, DType::f32, store.device());
  }
  void step() override {
    profiler::Scope profile("optimizer");
    if (momentum_.defined()) check_state_device(momentum_, store_);
    OSPREY_DISPATCH(
        store_.device(), sgd_step, store_.flat_size(), store_.flat_data().ptr<float>(),
        store_.flat_grad().ptr<float>(), momentum_.defined() ? momentum_.ptr<float>() : nullptr,
        opts_.lr, opts_.momentum, opts_.dampening, opts_.weight_decay, opts_.nesterov, steps_ == 0);
    ++steps_;
  }
  std::vector<std::pair<std::string, Tensor>> state() const override {
    if (!momentum_.defined()) return {};
    return {{"momentum_buffer", momentum_}};
  }

 private:
  Tensor momentum_;
};

class Adam : public Optimizer {
 public:
  Adam(ParamStore& store, OptimizerOptions opts, bool decoupled)
      : Optimizer(store, opts),
        decoupled_(decoupled),
        m_(Tensor::zeros({store.flat_size()}, DType::f32, store.device())),
        v_(Tensor::zeros({store.flat_size()}, DType::f32, store.device())) {}
  void step() override {
    profiler::Scope profile("optimizer");
    check_state_device(m_, store_);
    ++steps_;
    OSPREY_DISPATCH(store_.device(), adam_step, store_.flat_size(), store_.flat_data().ptr<float>(),
                    store_.flat_grad().ptr<float>(), m_.ptr<float>(), v_.ptr<float>(), opts_.lr,
                    opts_.beta1, opts_.beta2, opts_.eps, opts_.weight_decay, decoupled_, steps_);
  }
  std::vector<std::pair<std::string, Tensor>> state() const override {
    return {{"exp_avg", m_}, {"exp_avg_sq", v_}};
  }

 private:
  bool decoupled_;
  Tensor m_, v_;
};

}  // namespace

Optimizer::Optimizer(ParamStore& store, OptimizerOptions opts) : store_(store), opts_(opts) {
  OSPREY_CHECK(store.finalized(), "optimizer created before the parameters were finalized");
  OSPREY_CHECK(opts.lr >= 0.0f, "learning rate ", opts.lr, " is negative");
  OSPREY_CHECK(opts.weight_decay >= 0.0f, "weight_decay ", opts.weight_decay, " is negative");
}

std::unique_ptr<Optimizer> make_optimizer(ParamStore& store, const OptimizerOptions& opts) {
  if (opts.kind == "sgd") {
    OSPREY_CHECK(!opts.nesterov || (opts.momentum > 0.0f && opts.dampening == 0.0f),
                 "sgd: nesterov needs momentum > 0 and dampening 0");
    return std::make_unique<Sgd>(store, opts);
  }
  if (opts.kind == "adam" || opts.kind == "adamw") {
    OSPREY_CHECK(opts.beta1 >= 0 && opts.beta1 < 1 && opts.beta2 >= 0 && opts.beta2 < 1, opts.kind,
                 ": betas must be in [0, 1)");
    return std::make_unique<Adam>(store, opts, opts.kind == "adamw");
  }
  fail("unknown optimizer '", opts.kind, "' (valid: adam, adamw, sgd)");
}

double clip_grad_norm(ParamStore& store, double max_norm,
                      const std::function<double(double)>& sum_across) {
  Tensor g = store.flat_grad();
  double squares = flat::sum_squares(g);
  if (sum_across) squares = sum_across(squares);
  double norm = std::sqrt(squares);
  double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0) flat::scale(float(coef), g);
  return norm;
}

}  // namespace osprey
