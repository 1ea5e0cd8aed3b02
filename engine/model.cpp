#include "engine/model.h"

#include "engine/autograd.h"
#include "engine/inference_graph.h"

namespace osprey {
namespace {

class EvalForward : public InferenceNet {
 public:
  explicit EvalForward(Model& model) : model_(model) {}
  Tensor forward(const Tensor& x) override {
    autograd::NoGradGuard no_grad;
    struct RestoreMode {
      Model& model;
      bool training;
      ~RestoreMode() { model.train(training); }
    } restore{model_, model_.training()};
    model_.eval();
    return model_.forward(x);
  }

 private:
  Model& model_;
};

}  // namespace

void Model::set_activation_dtype(DType dtype) {
  OSPREY_CHECK(dtype == DType::f32, name(), " has no ", dtype_name(dtype),
               " path: its activations are f32");
}

std::unique_ptr<InferenceNet> Model::inference_net() {
  return std::make_unique<EvalForward>(*this);
}

InferenceGraph Model::inference_graph(int, int) const {
  fail(name(), " has no export form (an operator graph of its inference forward)");
}

}  // namespace osprey
