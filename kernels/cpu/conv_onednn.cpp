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
// its format, 2 the primitive's scratchpad, 3 the bias gradient.
float* scratch(size_t bytes, int slot) {
  thread_local std::vector<float> buf[4];
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
      any(d.weights), bias ? memory::desc(d.bias, dt::f32, tag::x) : memory::desc(), nhwc(d.dst),
      d.strides, d.pad, d.pad);
  return dnnl::convolution_forward::primitive_desc(desc, user_scratchpad(), cpu_engine());
}

// A primitive, its weights' (or weight gradient's) format and the reorder between that and
// ours: into the primitive's format for forward and dx, back into ours with += for dw (a sum
// post-op), so the caller's accumulation is kept. No reorder when the formats agree, but for dw,
// whose += needs one anyway.
struct Conv {
  dnnl::primitive primitive;
  memory::desc weights, scratchpad;
  bool reorder_weights = false;
  dnnl::reorder reorder;
  std::string impl;
};

template <class Primitive, class PD>
void finish(Conv& c, const PD& pd, const memory::desc& weights, const memory::desc& ours,
            bool to_ours) {
  c.primitive = Primitive(pd);
  c.weights = weights;
  c.scratchpad = pd.scratchpad_desc();
  c.impl = pd.impl_info_str();
  c.reorder_weights = to_ours || weights != ours;
  if (!c.reorder_weights) return;
  dnnl::primitive_attr attr;
  if (to_ours) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  dnnl::engine& e = cpu_engine();
  c.reorder = dnnl::reorder(to_ours ? dnnl::reorder::primitive_desc(e, weights, e, ours, attr)
                                    : dnnl::reorder::primitive_desc(e, ours, e, weights, attr));
}

enum class Pass { forward, data, weights };

Conv make_conv(const Conv2dShape& s, Pass pass, bool bias) {
  const Dims d = dims_of(s);
  const auto hint = forward_pd(s, bias);
  Conv c;
  if (pass == Pass::forward) {
    finish<dnnl::convolution_forward>(c, hint, hint.weights_desc(), ohwi(s), false);
  } else if (pass == Pass::data) {
    const dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct,
                                                     nhwc(d.src), any(d.weights), nhwc(d.dst),
                                                     d.strides, d.pad, d.pad);
    const dnnl::convolution_backward_data::primitive_desc pd(desc, user_scratchpad(), cpu_engine(),
                                                             hint);
    finish<dnnl::convolution_backward_data>(c, pd, pd.weights_desc(), ohwi(s), false);
  } else {
    const dnnl::convolution_backward_weights::desc desc(
        dnnl::algorithm::convolution_direct, nhwc(d.src), any(d.weights),
        bias ? memory::desc(d.bias, dt::f32, tag::x) : memory::desc(), nhwc(d.dst), d.strides,
        d.pad, d.pad);
    const dnnl::convolution_backward_weights::primitive_desc pd(desc, user_scratchpad(),
                                                                cpu_engine(), hint);
    finish<dnnl::convolution_backward_weights>(c, pd, pd.diff_weights_desc(), ohwi(s), true);
  }
  return c;
}

// Created once per shape, pass and bias flag; never erased, so references stay valid.
const Conv& cached_conv(const Conv2dShape& s, Pass pass, bool bias) {
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

// Runs the primitive with args plus the weights argument `w_arg` (ours reordered into the
// primitive's format when they differ) and the scratchpad.
void execute(const Conv& c, const Conv2dShape& s, int w_arg, const float* w,
             std::unordered_map<int, memory> args) {
  dnnl::stream stream(cpu_engine());
  memory ours = wrap(ohwi(s), w);
  if (c.reorder_weights) {
    memory theirs = wrap(c.weights, scratch(c.weights.get_size(), 0));
    c.reorder.execute(stream, ours, theirs);
    args.emplace(w_arg, theirs);
  } else {
    args.emplace(w_arg, ours);
  }
  args.emplace(DNNL_ARG_SCRATCHPAD, wrap(c.scratchpad, scratch(c.scratchpad.get_size(), 2)));
  c.primitive.execute(stream, args);
  stream.wait();
}

}  // namespace

void onednn_conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                           float* y) {
  const Conv& c = cached_conv(s, Pass::forward, bias != nullptr);
  const Dims d = dims_of(s);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap(nhwc(d.src), x)},
                                       {DNNL_ARG_DST, wrap(nhwc(d.dst), y)}};
  if (bias) args.emplace(DNNL_ARG_BIAS, wrap(memory::desc(d.bias, dt::f32, tag::x), bias));
  execute(c, s, DNNL_ARG_WEIGHTS, w, std::move(args));
}

void onednn_conv2d_backward(const Conv2dShape& s, const float* x, const float* w, const float* dy,
                            float* dx, float* dw, float* db) {
  const Dims d = dims_of(s);
  const memory diff_dst = wrap(nhwc(d.dst), dy);
  if (dx) {
    const Conv& c = cached_conv(s, Pass::data, false);
    execute(c, s, DNNL_ARG_WEIGHTS, w,
            {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_SRC, wrap(nhwc(d.src), dx)}});
  }
  if (!dw && !db) return;
  const Conv& c = cached_conv(s, Pass::weights, db != nullptr);
  memory diff_w = wrap(c.weights, scratch(c.weights.get_size(), 1));
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, wrap(nhwc(d.src), x)},
      {DNNL_ARG_DIFF_DST, diff_dst},
      {DNNL_ARG_DIFF_WEIGHTS, diff_w},
      {DNNL_ARG_SCRATCHPAD, wrap(c.scratchpad, scratch(c.scratchpad.get_size(), 2))}};
  float* dbias = db ? scratch(s.k * sizeof(float), 3) : nullptr;
  if (db) args.emplace(DNNL_ARG_DIFF_BIAS, wrap(memory::desc(d.bias, dt::f32, tag::x), dbias));
  dnnl::stream stream(cpu_engine());
  c.primitive.execute(stream, args);
  if (dw) {
    memory ours = wrap(ohwi(s), dw);
    c.reorder.execute(stream, diff_w, ours);  // dw += diff_w
  }
  stream.wait();
  for (int k = 0; db && k < s.k; ++k) db[k] += dbias[k];
}

std::string onednn_conv2d_impl(const Conv2dShape& s) {
  return cached_conv(s, Pass::forward, false).impl + " / " +
         cached_conv(s, Pass::data, false).impl + " / " + cached_conv(s, Pass::weights, false).impl;
}

}  // namespace osprey::cpu
