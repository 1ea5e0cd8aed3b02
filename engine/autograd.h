// Define-by-run autograd with coarse nodes. Each recorded op (a whole layer: conv, linear,
// pooling, loss) appends one Node to the thread's tape; backward walks the tape in reverse, which
// is a valid reverse topological order, so no recursion and no graph sort are needed.
#pragma once
#include <memory>
#include <vector>

#include "engine/tensor.h"

namespace osprey::autograd {

class Node {
 public:
  virtual ~Node() = default;
  virtual const char* name() const = 0;
  // Reads grad(outputs) and adds into the inputs' gradients (see grad_* helpers below).
  virtual void backward() = 0;

  std::vector<Tensor> inputs;   // those that require grad are the ones backward must serve
  std::vector<Tensor> outputs;  // recorded op results (non-leaf)
};

// True when ops should record: grad mode is on and some input requires grad.
bool grad_enabled();
bool should_record(std::initializer_list<const Tensor*> inputs);

// Takes ownership of the node, marks its outputs as requiring grad, appends it to the tape.
void record(std::unique_ptr<Node> node);

// Runs backward from a scalar loss, fires leaves' grad-ready hooks as soon as the last node that
// uses each leaf has run, then clears the tape (releasing saved activations).
void backward(const Tensor& loss);
// Backward from a non-scalar output whose gradient comes from elsewhere (the next pipeline
// stage): grad_output has the output's shape.
void backward(const Tensor& output, const Tensor& grad_output);

// The recorded graph of one forward, set aside so several forwards (pipeline micro-batches)
// can each be run backward later: take_tape() empties the thread's tape into a Tape, and
// restore_tape() puts one back (the thread's tape must be empty) before its backward.
using Tape = std::vector<std::unique_ptr<Node>>;
Tape take_tape();
void restore_tape(Tape tape);

// Drops the recorded graph without running it (e.g. after an evaluation forward with grad on).
void clear_tape();
size_t tape_size();

// Gradient accumulation helpers for Node::backward implementations.
// A zero-initialised gradient buffer of t (created on first use) for kernels that accumulate.
float* grad_accumulate_target(const Tensor& t);
// A buffer for kernels that overwrite: t's own gradient when t has none yet, otherwise a
// temporary; pass the result to commit_grad, which adds a temporary into t's gradient.
Tensor grad_overwrite_target(const Tensor& t);
void commit_grad(const Tensor& t, const Tensor& g);

// Disables recording in a scope (evaluation, optimizer updates).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace osprey::autograd
