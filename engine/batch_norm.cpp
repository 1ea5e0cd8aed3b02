#include "engine/batch_norm.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "engine/autograd.h"
#include "engine/batch_norm_run.h"
#include "engine/device.h"
#include "engine/dispatch.h"
#include "engine/profiler.h"
#include "engine/storage.h"
#include "kernels/cpu/batchnorm.h"

#ifdef OSPREY_WITH_CUDA
#include "kernels/cuda/batchnorm.h"
#endif

namespace osprey {

Tensor BatchNormRun::forward(const BatchNorm& bn, const Tensor& z, bool training) {
  OSPREY_CHECK(z.ndim() >= 2 && (z.dtype() == DType::f32 || z.dtype() == DType::bf16),
               "batch_norm: input ", shape_str(z.shape()), " ", dtype_name(z.dtype()),
               " is not an f32 or bf16 batch of channels");
  OSPREY_CHECK(!(bn.sync && z.dtype() == DType::bf16),
               "synchronized BatchNorm is implemented for f32 activations only");
  const Device device = z.device();
  const int k = int(z.dim(z.ndim() - 1));
  OSPREY_CHECK(bn.gamma.numel() == k && bn.beta.numel() == k && bn.running_mean.numel() == k &&
                   bn.running_var.numel() == k,
               "batch_norm: parameters and statistics of ", bn.gamma.numel(), " channels for ",
               "an input of ", k);
  OSPREY_CHECK(bn.gamma.device() == device, "batch_norm: input on ", device_name(device),
               " but the parameters are on ", device_name(bn.gamma.device()));
  z_ = z;
  training_ = training;
  const int64_t m = z.numel() / k;
  if (training) {
    OSPREY_CHECK(m > 1, "batch_norm: BatchNorm in training mode needs more than one value ",
                 "per channel, got input ", shape_str(z.shape()));
    profiler::Scope profile("forward batchnorm statistics");
    mean_ = Tensor::empty({k}, DType::f32, device);
    var_ = Tensor::empty({k}, DType::f32, device);
    with_storage_type(z.dtype(), [&](auto t) {
      using T = decltype(t);
      OSPREY_DISPATCH(device, batchnorm_stats, m, k, z.ptr<T>(), mean_.ptr<float>(),
                      var_.ptr<float>());
    });
    total_m_ = m;
    if (bn.sync) synchronize_statistics(*bn.sync, m, k);
    OSPREY_DISPATCH(device, batchnorm_update_running, total_m_, k, mean_.ptr<float>(),
                    var_.ptr<float>(), bn.momentum, bn.running_mean.ptr<float>(),
                    bn.running_var.ptr<float>());
    if (bn.num_batches_tracked.defined()) bn.num_batches_tracked.data<int64_t>()[0] += 1;
  } else {
    mean_ = bn.running_mean;
    var_ = bn.running_var;
  }
  Tensor y = Tensor::empty(z.shape(), z.dtype(), device);
  profiler::Scope profile("forward batchnorm+act");
  apply(bn, y);
  // The backward recomputes the activation mask from z: only the consumer of the output keeps
  // it alive.
  return y;
}

void BatchNormRun::backward(const BatchNorm& bn, const Tensor& dy, const Tensor& dz) {
  OSPREY_CHECK(dy.dtype() == z_.dtype() && (!dz.defined() || dz.dtype() == z_.dtype()),
               "batch_norm backward: gradients of dtype ", dtype_name(dy.dtype()),
               " for activations of dtype ", dtype_name(z_.dtype()));
  float* dgamma = autograd::grad_accumulate_target(bn.gamma);
  float* dbeta = autograd::grad_accumulate_target(bn.beta);
  profiler::Scope profile("backward batchnorm+act");
  if (bn.sync && training_) return synchronized_backward(bn, dy, dz, dgamma, dbeta);
  const int k = int(z_.dim(z_.ndim() - 1));
  with_storage_type(z_.dtype(), [&](auto t) {
    using T = decltype(t);
    OSPREY_DISPATCH(z_.device(), batchnorm_act_backward, z_.numel() / k, k, z_.ptr<T>(),
                    dy.ptr<T>(), mean_.ptr<float>(), var_.ptr<float>(), bn.gamma.ptr<float>(),
                    bn.beta.ptr<float>(), bn.eps, bn.act, training_,
                    dz.defined() ? dz.ptr<T>() : nullptr, dgamma, dbeta);
  });
}

Tensor BatchNormRun::recompute_output(const BatchNorm& bn) const {
  profiler::Scope profile("backward recompute batchnorm+act");
  Tensor y = Tensor::empty(z_.shape(), z_.dtype(), z_.device());
  apply(bn, y);
  return y;
}

void BatchNormRun::apply(const BatchNorm& bn, const Tensor& y) const {
  const int k = int(z_.dim(z_.ndim() - 1));
  with_storage_type(z_.dtype(), [&](auto t) {
    using T = decltype(t);
    OSPREY_DISPATCH(z_.device(), batchnorm_act_forward, z_.numel() / k, k, z_.ptr<T>(),
                    mean_.ptr<float>(), var_.ptr<float>(), bn.gamma.ptr<float>(),
                    bn.beta.ptr<float>(), bn.eps, bn.act, y.ptr<T>());
  });
}

// The backward in its two halves with the cross-process sum between them (f32 only: the forward
// refuses synchronized BatchNorm on bf16). The sums go through the host, where the
// communicator's callback takes them; every process joins the sum even when it wants no dz.
void BatchNormRun::synchronized_backward(const BatchNorm& bn, const Tensor& dy, const Tensor& dz,
                                         float* dgamma, float* dbeta) {
  const Device device = z_.device();
  const int k = int(z_.dim(z_.ndim() - 1));
  const int64_t m = z_.numel() / k;
  auto sums_storage = Storage::allocate(2 * size_t(k) * sizeof(double), device);
  double* sums = static_cast<double*>(sums_storage->data());
  OSPREY_DISPATCH(device, batchnorm_act_backward_sums, m, k, z_.ptr<float>(), dy.ptr<float>(),
                  mean_.ptr<float>(), var_.ptr<float>(), bn.gamma.ptr<float>(),
                  bn.beta.ptr<float>(), bn.eps, bn.act, sums, dgamma, dbeta);
  std::vector<double> host(2 * size_t(k));
  copy_bytes(host.data(), sums, host.size() * sizeof(double));
  bn.sync->allreduce_sum(host.data(), int64_t(host.size()));
  if (!dz.defined()) return;
  copy_bytes(sums, host.data(), host.size() * sizeof(double));
  OSPREY_DISPATCH(device, batchnorm_act_backward_dx, m, k, z_.ptr<float>(), dy.ptr<float>(),
                  mean_.ptr<float>(), var_.ptr<float>(), bn.gamma.ptr<float>(),
                  bn.beta.ptr<float>(), bn.eps, bn.act, sums, total_m_, dz.ptr<float>());
}

// Turns this process's mean and biased variance over m rows into those of every process's rows:
// per-channel sums of x and x^2 and the row count, summed across processes (on the host: 2k + 1
// numbers).
void BatchNormRun::synchronize_statistics(const BatchNormSync& sync, int64_t m, int k) {
  std::vector<float> mean_host = mean_.to_vector(), var_host = var_.to_vector();
  float* mean = mean_host.data();
  float* var = var_host.data();
  std::vector<double> s(2 * size_t(k) + 1);
  for (int j = 0; j < k; ++j) {
    s[size_t(j)] = double(mean[j]) * double(m);
    s[size_t(k + j)] = (double(var[j]) + double(mean[j]) * mean[j]) * double(m);
  }
  s[2 * size_t(k)] = double(m);
  sync.allreduce_sum(s.data(), int64_t(s.size()));
  total_m_ = int64_t(s[2 * size_t(k)]);
  for (int j = 0; j < k; ++j) {
    double mu = s[size_t(j)] / double(total_m_);
    mean[j] = float(mu);
    var[j] = float(std::max(0.0, s[size_t(k + j)] / double(total_m_) - mu * mu));
  }
  mean_.copy_from(Tensor::from_data({k}, mean_host));
  var_.copy_from(Tensor::from_data({k}, var_host));
}

namespace ops {

Tensor batch_norm(const Tensor& x, const BatchNorm& bn, bool training) {
  profiler::Scope profile("forward batch_norm");
  BatchNormRun run;
  Tensor y = run.forward(bn, x, training);
  if (autograd::should_record({&x, &bn.gamma, &bn.beta})) {
    auto node =
        std::make_unique<SavedRunNode<BatchNorm, BatchNormRun>>("batch_norm", bn, std::move(run));
    node->inputs = {x, bn.gamma, bn.beta};
    node->outputs = {y};
    autograd::record(std::move(node));
  }
  return y;
}

}  // namespace ops
}  // namespace osprey
