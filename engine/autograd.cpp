#include "engine/autograd.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_map>

#include "engine/flat_ops.h"
#include "engine/profiler.h"

namespace osprey::autograd {
namespace {

thread_local bool t_grad_mode = true;
thread_local std::vector<std::unique_ptr<Node>> t_tape;

}  // namespace

bool grad_enabled() {
  return t_grad_mode;
}

bool should_record(std::initializer_list<const Tensor*> inputs) {
  if (!t_grad_mode) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

void record(std::unique_ptr<Node> node) {
  for (Tensor& out : node->outputs) {
    out.impl().requires_grad = true;
    out.impl().is_leaf = false;
  }
  t_tape.push_back(std::move(node));
}

size_t tape_size() {
  return t_tape.size();
}

void clear_tape() {
  t_tape.clear();
}

float* grad_accumulate_target(const Tensor& t) {
  TensorImpl& impl = t.impl();
  OSPREY_CHECK(t.dtype() == DType::f32, "accumulated gradients are f32 (parameters), got a ",
               dtype_name(t.dtype()), " tensor");
  if (!impl.grad) {
    Tensor g = Tensor::zeros(t.shape(), DType::f32, t.device());
    impl.grad = g.impl_ptr();
  }
  return Tensor(impl.grad).ptr<float>();
}

Tensor grad_overwrite_target(const Tensor& t) {
  // A gradient has its tensor's dtype: bf16 activations get bf16 gradients.
  if (!t.impl().grad) {
    Tensor g = Tensor::empty(t.shape(), t.dtype(), t.device());
    t.impl().grad = g.impl_ptr();
    return g;
  }
  return Tensor::empty(t.shape(), t.dtype(), t.device());
}

void commit_grad(const Tensor& t, const Tensor& g) {
  Tensor own = t.grad();
  if (own.same(g)) return;
  flat::axpy(1.0f, g, own);
}

namespace {

// Runs the tape backward once the outputs' gradients are seeded.
void run_backward();

}  // namespace

void backward(const Tensor& loss) {
  OSPREY_CHECK(loss.numel() == 1, "backward() needs a scalar, got shape ", shape_str(loss.shape()));
  OSPREY_CHECK(loss.requires_grad(), "backward() on a tensor that does not require grad");
  Tensor seed = grad_overwrite_target(loss);
  flat::fill(seed, 1.0f);
  commit_grad(loss, seed);
  run_backward();
}

void backward(const Tensor& output, const Tensor& grad_output) {
  OSPREY_CHECK(output.requires_grad(), "backward() on a tensor that does not require grad");
  OSPREY_CHECK(grad_output.shape() == output.shape(), "backward(): gradient of shape ",
               shape_str(grad_output.shape()), " for an output of shape ",
               shape_str(output.shape()));
  Tensor seed = grad_overwrite_target(output);
  seed.copy_from(grad_output);
  commit_grad(output, seed);
  run_backward();
}

Tape take_tape() {
  Tape tape;
  tape.swap(t_tape);
  return tape;
}

void restore_tape(Tape tape) {
  OSPREY_CHECK(t_tape.empty(), "restore_tape(): the thread's tape holds ", t_tape.size(),
               " nodes of another forward");
  t_tape = std::move(tape);
}

namespace {

void run_backward() {
  // Clear the tape even when a node throws, so a failed step cannot leak into the next one.
  struct TapeClearer {
    ~TapeClearer() { clear_tape(); }
  } clearer;

  // The earliest tape position that uses each hooked leaf: after the reverse walk passes it,
  // nothing else can add to that leaf's gradient.
  std::unordered_map<TensorImpl*, size_t> last_use;
  for (size_t i = t_tape.size(); i-- > 0;)
    for (const Tensor& in : t_tape[i]->inputs)
      if (in.defined() && in.impl().is_leaf && in.impl().grad_ready_hook) last_use[&in.impl()] = i;
  // Hooks after one node fire in the order of its inputs (not the map's, which follows pointer
  // values): every rank of a data-parallel job must launch its collectives in the same order.
  std::vector<std::vector<TensorImpl*>> ready_after(t_tape.size());
  for (size_t i = 0; i < t_tape.size(); ++i)
    for (const Tensor& in : t_tape[i]->inputs) {
      if (!in.defined()) continue;
      auto it = last_use.find(&in.impl());
      if (it == last_use.end() || it->second != i) continue;
      auto& ready = ready_after[i];
      if (std::find(ready.begin(), ready.end(), &in.impl()) == ready.end())
        ready.push_back(&in.impl());
    }

  NoGradGuard no_grad;
  for (size_t i = t_tape.size(); i-- > 0;) {
    Node& node = *t_tape[i];
    bool has_grad = std::any_of(node.outputs.begin(), node.outputs.end(),
                                [](const Tensor& o) { return o.impl().grad != nullptr; });
    if (has_grad) {
      const std::string label =
          profiler::enabled() ? std::string("backward ") + node.name() : std::string();
      profiler::Scope profile(label.c_str());
      node.backward();
    }
    for (TensorImpl* leaf : ready_after[i]) leaf->grad_ready_hook();
    t_tape[i].reset();  // saved activations are released as soon as they are consumed
  }
}

}  // namespace

NoGradGuard::NoGradGuard() : previous_(t_grad_mode) {
  t_grad_mode = false;
}
NoGradGuard::~NoGradGuard() {
  t_grad_mode = previous_;
}

}  // namespace osprey::autograd
