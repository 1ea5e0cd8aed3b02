#include "kernels/cpu/conv_onednn.h"

#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace osprey::cpu {
namespace {

using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Grow-only per-thread buffers, so that concurrent callers never share one and steady-state
// steps allocate nothing. Slots: 0 weights in a primitive's format, 1 the weight gradient in
// its format, 2 the primitive's scratchpad.
void* scratch(size_t bytes, int slot) {
  thread_local std::vector<float> buf[3];
  const size_t floats = (bytes + sizeof(float) - 1) / sizeof(float);
  if (buf[slot].size() < floats) buf[slot].resize(floats);
  return buf[slot].data();
}

struct Dims {
  memory::dims src, weights, bias, dst, strides, pad;
};

Dims dims_of(const Conv2dShape& s) {
  return Dims{{s.n, s.c, s.h, s.w},       {s.k, s.c, s.kh, s.kw}, {s.k},
              {s.n, s.k, s.oh(), s.ow()}, {s.stride, s.stride},   {s.pad, s.pad}};
}

memory::desc nhwc(const memory::dims& d) {
  return memory::desc(d, dt::f32, tag::nhwc);
}
memory::desc any(const memory::dims& d) {
  return memory::desc(d, dt::f32, tag::any);
}
memory::desc vec(const memory::dims& d) {
  return memory::desc(d, dt::f32, tag::x);
}
// Ours: [K][KH][KW][C].
memory::desc ohwi(const Conv2dShape& s) {
  return memory::desc(dims_of(s).weights, dt::f32, tag::ohwi);
}

// The scratchpad is ours (user mode) so that a primitive may run on several threads at once.
dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::convolution_forward::primitive_desc forward_pd(const Conv2dShape& s, bool bias) {
  const Dims d = dims_of(s);
  const dnnl::convolution_forward::desc desc(
      dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, nhwc(d.src),
      any(d.weights), bias ? vec(d.bias) : memory::desc(), nhwc(d.dst), d.strides, d.pad, d.pad);
  return dnnl::convolution_forward::primitive_desc(desc, user_scratchpad(), cpu_engine());
}

// A primitive, its weights' (or weight gradient's) format and the reorder between that and
// ours: into the primitive's format for forward and dx (none when the formats agree), back into
// ours with += for dw (a sum post-op), which keeps the caller's accumulation.
struct Conv {
  dnnl::primitive primitive;
  memory::desc weights, scratchpad;
  bool reorder_weights = false;
  dnnl::reorder reorder;
  std::string impl;
};

template <class Primitive, class PD>
Conv make(const PD& pd, const memory::desc& weights, const memory::desc& ours, bool to_ours) {
  Conv c;
  c.primitive = Primitive(pd);
  c.weights = weights;
  c.scratchpad = pd.scratchpad_desc();
  c.impl = pd.impl_info_str();
  c.reorder_weights = to_ours || weights != ours;
  if (!c.reorder_weights) return c;
  dnnl::primitive_attr attr;
  if (to_ours) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  dnnl::engine& e = cpu_engine();
  c.reorder = dnnl::reorder(to_ours ? dnnl::reorder::primitive_desc(e, weights, e, ours, attr)
                                    : dnnl::reorder::primitive_desc(e, ours, e, weights, attr));
  return c;
}

enum class Pass { forward, data, weights };

// The weight gradient comes without oneDNN's bias gradient, which costs more than the weights'
// for a stem (conv.cpp sums db itself).
Conv make_conv(const Conv2dShape& s, Pass pass, bool bias) {
  const Dims d = dims_of(s);
  const auto hint = forward_pd(s, bias);
  if (pass == Pass::forward)
    return make<dnnl::convolution_forward>(hint, hint.weights_desc(), ohwi(s), false);
  if (pass == Pass::data) {
    const dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct,
                                                     nhwc(d.src), any(d.weights), nhwc(d.dst),
                                                     d.strides, d.pad, d.pad);
    const dnnl::convolution_backward_data::primitive_desc pd(desc, user_scratchpad(), cpu_engine(),
                                                             hint);
    return make<dnnl::convolution_backward_data>(pd, pd.weights_desc(), ohwi(s), false);
  }
  const dnnl::convolution_backward_weights::desc desc(dnnl::algorithm::convolution_direct,
                                                      nhwc(d.src), any(d.weights), memory::desc(),
                                                      nhwc(d.dst), d.strides, d.pad, d.pad);
  const dnnl::convolution_backward_weights::primitive_desc pd(desc, user_scratchpad(), cpu_engine(),
                                                              hint);
  return make<dnnl::convolution_backward_weights>(pd, pd.diff_weights_desc(), ohwi(s), true);
}

// Created once per shape, pass and (forward) bias flag; never erased, so references stay valid.
const Conv& cached_conv(const Conv2dShape& s, Pass pass, bool bias = false) {
  using Key = std::tuple<int, int, int, int, int, int, int, int, int, Pass, bool>;
  static std::mutex mutex;
  static std::map<Key, Conv> cache;
  const Key key{s.n, s.h, s.w, s.c, s.k, s.kh, s.kw, s.stride, s.pad, pass, bias};
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, make_conv(s, pass, bias)).first;
  return it->second;
}

memory wrap(const memory::desc& md, const void* p) {
  return memory(md, cpu_engine(), const_cast<void*>(p));
}

// Runs a forward or dx primitive on args plus the weights (ours reordered into the primitive's
// format when they differ) and the scratchpad.
void execute(const Conv& c, const Conv2dShape& s, const float* w,
             std::unordered_map<int, memory> args) {
  dnnl::stream stream(cpu_engine());
  memory ours = wrap(ohwi(s), w);
  if (c.reorder_weights) {
    memory theirs = wrap(c.weights, scratch(c.weights.get_size(), 0));
    c.reorder.execute(stream, ours, theirs);
    args.emplace(DNNL_ARG_WEIGHTS, theirs);
  } else {
    args.emplace(DNNL_ARG_WEIGHTS, ours);
  }
  args.emplace(DNNL_ARG_SCRATCHPAD, wrap(c.scratchpad, scratch(c.scratchpad.get_size(), 2)));
  c.primitive.execute(stream, args);
  stream.wait();
}

}  // namespace

void onednn_conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                           float* y) {
  const Dims d = dims_of(s);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap(nhwc(d.src), x)},
                                       {DNNL_ARG_DST, wrap(nhwc(d.dst), y)}};
  if (bias) args.emplace(DNNL_ARG_BIAS, wrap(vec(d.bias), bias));
  execute(cached_conv(s, Pass::forward, bias != nullptr), s, w, std::move(args));
}

void onednn_conv2d_backward(const Conv2dShape& s, const float* x, const float* w, const float* dy,
                            float* dx, float* dw) {
  const Dims d = dims_of(s);
  const memory diff_dst = wrap(nhwc(d.dst), dy);
  if (dx)
    execute(cached_conv(s, Pass::data), s, w,
            {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_SRC, wrap(nhwc(d.src), dx)}});
  if (!dw) return;
  const Conv& c = cached_conv(s, Pass::weights);
  memory diff_w = wrap(c.weights, scratch(c.weights.get_size(), 1)), ours = wrap(ohwi(s), dw);
  dnnl::stream stream(cpu_engine());
  c.primitive.execute(
      stream, {{DNNL_ARG_SRC, wrap(nhwc(d.src), x)},
               {DNNL_ARG_DIFF_DST, diff_dst},
               {DNNL_ARG_DIFF_WEIGHTS, diff_w},
               {DNNL_ARG_SCRATCHPAD, wrap(c.scratchpad, scratch(c.scratchpad.get_size(), 2))}});
  c.reorder.execute(stream, diff_w, ours);  // dw += diff_w
  stream.wait();
}

std::string onednn_conv2d_impl(const Conv2dShape& s) {
  return cached_conv(s, Pass::forward).impl + " / " + cached_conv(s, Pass::data).impl + " / " +
         cached_conv(s, Pass::weights).impl;
}

}  // namespace osprey::cpu
