// A naive interpreter for the few ONNX operators osprey export writes (Conv, Relu, Clip,
// MaxPool, GlobalAveragePool, Flatten, Gemm with transB, Add, Softmax), in double, read from
// the ModelProto itself: a check of the exported attributes and layouts that needs no ONNX
// runtime. Anything else it meets is a test failure, not a guess.
#pragma once
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "interop/onnx_tensor.h"

namespace osprey::tests {

struct RefTensor {
  std::vector<int64_t> shape;
  std::vector<double> v;
};

inline int64_t ref_attr(const onnx::NodeProto& n, const std::string& name, int64_t fallback) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return a.type() == onnx::AttributeProto::INTS ? a.ints(0) : a.i();
  return fallback;
}

inline RefTensor ref_conv(const RefTensor& x, const RefTensor& w, const RefTensor& b,
                          const onnx::NodeProto& n) {
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t K = w.shape[0], CG = w.shape[1], KH = w.shape[2], KW = w.shape[3];
  const int64_t s = ref_attr(n, "strides", 1), p = ref_attr(n, "pads", 0);
  const int64_t groups = ref_attr(n, "group", 1), kg = K / groups;
  if (CG * groups != C) throw std::runtime_error("conv " + n.name() + ": channels disagree");
  const int64_t OH = (H + 2 * p - KH) / s + 1, OW = (W + 2 * p - KW) / s + 1;
  RefTensor y{{N, K, OH, OW}, std::vector<double>(size_t(N * K * OH * OW))};
  for (int64_t i = 0; i < N; ++i)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          double acc = b.v[size_t(k)];
          for (int64_t cg = 0; cg < CG; ++cg) {
            const int64_t c = (k / kg) * CG + cg;
            for (int64_t ky = 0; ky < KH; ++ky)
              for (int64_t kx = 0; kx < KW; ++kx) {
                const int64_t iy = oy * s - p + ky, ix = ox * s - p + kx;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                acc += x.v[size_t(((i * C + c) * H + iy) * W + ix)] *
                       w.v[size_t(((k * CG + cg) * KH + ky) * KW + kx)];
              }
          }
          y.v[size_t(((i * K + k) * OH + oy) * OW + ox)] = acc;
        }
  return y;
}

inline RefTensor ref_pool(const RefTensor& x, int64_t k, int64_t s, bool global) {
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  if (global) k = H, s = 1;
  const int64_t OH = global ? 1 : (H - k) / s + 1, OW = global ? 1 : (W - k) / s + 1;
  const int64_t KW = global ? W : k;
  RefTensor y{{N, C, OH, OW}, std::vector<double>(size_t(N * C * OH * OW))};
  for (int64_t i = 0; i < N * C; ++i)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) {
        double acc = global ? 0 : -INFINITY;
        for (int64_t ky = 0; ky < k; ++ky)
          for (int64_t kx = 0; kx < KW; ++kx) {
            const double v = x.v[size_t((i * H + oy * s + ky) * W + ox * s + kx)];
            acc = global ? acc + v : std::max(acc, v);
          }
        y.v[size_t((i * OH + oy) * OW + ox)] = global ? acc / double(H * W) : acc;
      }
  return y;
}

inline RefTensor ref_gemm(const RefTensor& x, const RefTensor& w, const RefTensor& b) {
  const int64_t N = x.shape[0], in = x.shape[1], out = w.shape[0];
  if (w.shape[1] != in) throw std::runtime_error("gemm: widths disagree");
  RefTensor y{{N, out}, std::vector<double>(size_t(N * out))};
  for (int64_t i = 0; i < N; ++i)
    for (int64_t o = 0; o < out; ++o) {
      double acc = b.v[size_t(o)];
      for (int64_t j = 0; j < in; ++j) acc += x.v[size_t(i * in + j)] * w.v[size_t(o * in + j)];
      y.v[size_t(i * out + o)] = acc;
    }
  return y;
}

inline RefTensor ref_node(const onnx::NodeProto& n, const std::vector<RefTensor>& in) {
  const std::string& op = n.op_type();
  RefTensor y = in[0];
  if (op == "Conv") return ref_conv(in[0], in[1], in[2], n);
  if (op == "MaxPool")
    return ref_pool(in[0], ref_attr(n, "kernel_shape", 0), ref_attr(n, "strides", 1), false);
  if (op == "GlobalAveragePool") return ref_pool(in[0], 0, 1, true);
  if (op == "Gemm") return ref_gemm(in[0], in[1], in[2]);
  if (op == "Relu") {
    for (double& v : y.v) v = std::max(v, 0.0);
  } else if (op == "Clip") {
    for (double& v : y.v) v = std::min(std::max(v, in[1].v[0]), in[2].v[0]);
  } else if (op == "Flatten") {
    y.shape = {in[0].shape[0], int64_t(in[0].v.size()) / in[0].shape[0]};
  } else if (op == "Add") {
    for (size_t i = 0; i < y.v.size(); ++i) y.v[i] += in[1].v[i];
  } else if (op == "Softmax") {
    const size_t k = size_t(y.shape[1]);
    for (size_t r = 0; r < y.v.size() / k; ++r) {
      double mx = *std::max_element(y.v.begin() + long(r * k), y.v.begin() + long(r * k + k)),
             s = 0;
      for (size_t j = 0; j < k; ++j) s += y.v[r * k + j] = std::exp(y.v[r * k + j] - mx);
      for (size_t j = 0; j < k; ++j) y.v[r * k + j] /= s;
    }
  } else {
    throw std::runtime_error("the reference interpreter knows no " + op);
  }
  return y;
}

// The model's single output for x (NCHW), nodes run in file order (ONNX requires a
// topological order).
inline RefTensor run_onnx_reference(const onnx::ModelProto& m, const RefTensor& x) {
  std::map<std::string, RefTensor> values;
  for (const onnx::TensorProto& init : m.graph().initializer()) {
    const Tensor t = interop::tensor_from_proto(init, init.name());
    const std::vector<float> v = t.to_vector();
    values[init.name()] = {t.shape(), std::vector<double>(v.begin(), v.end())};
  }
  values[m.graph().input(0).name()] = x;
  for (const onnx::NodeProto& n : m.graph().node()) {
    std::vector<RefTensor> in;
    for (const std::string& name : n.input()) in.push_back(values.at(name));
    values[n.output(0)] = ref_node(n, in);
  }
  return values.at(m.graph().output(0).name());
}

}  // namespace osprey::tests
