#include "tests/onnx_conformance/onnx_ops.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>

#include "engine/ops.h"
#include "engine/rng.h"
#include "tests/onnx_conformance/layout.h"
#include "tests/onnx_conformance/node_attrs.h"

namespace osprey::conformance {

void NodeAttrs::only(std::initializer_list<const char*> known) const {
  for (const onnx::AttributeProto& a : node_.attribute())
    if (std::none_of(known.begin(), known.end(), [&](const char* k) { return a.name() == k; }))
      not_applicable("attribute '", a.name(), "' is not mapped onto an Osprey setting");
}

const onnx::AttributeProto* NodeAttrs::find(const std::string& name) const {
  for (const onnx::AttributeProto& a : node_.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

int64_t NodeAttrs::i(const std::string& name, int64_t fallback) const {
  const onnx::AttributeProto* a = find(name);
  return a ? a->i() : fallback;
}

float NodeAttrs::f(const std::string& name, float fallback) const {
  const onnx::AttributeProto* a = find(name);
  return a ? a->f() : fallback;
}

std::string NodeAttrs::s(const std::string& name, const std::string& fallback) const {
  const onnx::AttributeProto* a = find(name);
  return a ? a->s() : fallback;
}

std::vector<int64_t> NodeAttrs::ints(const std::string& name,
                                     const std::vector<int64_t>& fallback) const {
  const onnx::AttributeProto* a = find(name);
  return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : fallback;
}

std::string list_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

float scalar_input(const NodeRun& run, size_t index) {
  const Tensor t = input(run, index);
  OSPREY_CHECK(t.numel() == 1, run.node.op_type(), ": input ", index, " ", shape_str(t.shape()),
               " is not a scalar");
  if (t.dtype() == DType::u8) return float(t.data<uint8_t>()[0]);
  return t.data<float>()[0];
}

namespace {

void run_relu(NodeRun& run) {
  NodeAttrs(run.node).only({});
  run.outputs = {host(ops::relu(on(run, input(run, 0))))};
}

void run_add(NodeRun& run) {
  // Opset 6's broadcast/axis describe broadcasting, which Osprey's add does not do.
  NodeAttrs(run.node).only({});
  const Tensor a = input(run, 0), b = input(run, 1);
  if (a.shape() != b.shape())
    not_applicable("broadcasting ", shape_str(a.shape()), " + ", shape_str(b.shape()),
                   ": Osprey's add takes operands of one shape");
  run.outputs = {host(ops::add(on(run, a), on(run, b)))};
}

void run_clip(NodeRun& run) {
  const NodeAttrs attrs(run.node);
  attrs.only({"min", "max"});
  // Before opset 11 the bounds are attributes, from then on optional inputs.
  float lo = -INFINITY, hi = INFINITY;
  if (run.opset < 11) {
    lo = attrs.f("min", lo), hi = attrs.f("max", hi);
  } else {
    if (optional_input(run, 1).defined()) lo = scalar_input(run, 1);
    if (optional_input(run, 2).defined()) hi = scalar_input(run, 2);
  }
  if (lo != 0.0f || hi != INFINITY)
    not_applicable("bounds [", lo, ", ", hi, "]: Osprey clips only as ReLU, [0, inf) (ReLU6, ",
                   "[0, 6], exists only fused into convolution and BatchNorm layers)");
  run.outputs = {host(ops::relu(on(run, input(run, 0))))};
}

void run_dropout(NodeRun& run) {
  const NodeAttrs attrs(run.node);
  attrs.only({"ratio", "seed"});
  if (wants_output(run, 1)) not_applicable("mask output: Osprey's dropout returns no mask");
  float ratio = attrs.f("ratio", 0.5f);
  bool training = false;  // before opset 12 the runner's inference mode
  if (run.opset >= 12) {
    ratio = optional_input(run, 1).defined() ? scalar_input(run, 1) : 0.5f;
    training = optional_input(run, 2).defined() && scalar_input(run, 2) != 0.0f;
  }
  if (training && ratio > 0.0f)
    not_applicable("training mode with ratio ", ratio, ": the expected output holds the mask ",
                   "drawn by ONNX's reference (numpy's generator), which no other generator ",
                   "reproduces");
  Rng rng(0);
  run.outputs = {host(ops::dropout(on(run, input(run, 0)), ratio, training, rng))};
}

void run_flatten(NodeRun& run) {
  const NodeAttrs attrs(run.node);
  attrs.only({"axis"});
  const Tensor x = on(run, input(run, 0));
  int64_t axis = attrs.i("axis", 1);
  if (axis < 0) axis += x.ndim();
  // ONNX layout throughout: flattening keeps the element order, so no transpose.
  if (axis == 1) {
    run.outputs = {host(ops::flatten(x))};
    return;
  }
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.dim(int(d));
  run.outputs = {host(ops::reshape(x, {outer, x.numel() / std::max<int64_t>(outer, 1)}))};
}

Tensor scaled(const Tensor& t, float alpha) {
  if (alpha == 1.0f) return t;
  Tensor y = t.clone();
  for (int64_t i = 0; i < y.numel(); ++i) y.data<float>()[i] *= alpha;
  return y;
}

// Gemm: Y = alpha * A' B' + beta * C as Osprey's linear (x [M,K] times w [N,K] transposed, plus
// a bias [N]); a full [M,N] C is added with Osprey's add.
void run_gemm(NodeRun& run) {
  const NodeAttrs attrs(run.node);
  attrs.only({"alpha", "beta", "transA", "transB", "broadcast"});
  Tensor a = input(run, 0), b = input(run, 1), c = optional_input(run, 2);
  if (attrs.i("transA", 0)) a = transpose2d(a);
  // linear's weight is [out, in]: B' transposed, i.e. B itself when transB is set.
  const Tensor w = attrs.i("transB", 0) ? b : transpose2d(b);
  a = scaled(a, attrs.f("alpha", 1.0f));
  const int64_t m = a.dim(0), n = w.dim(0);
  Tensor bias, matrix;
  if (c.defined()) {
    c = scaled(c, attrs.f("beta", 1.0f));
    if (c.numel() == 1)
      bias = Tensor::full({n}, c.data<float>()[0]);
    else if (c.numel() == n && (c.ndim() == 1 || c.dim(0) == 1))
      bias = c.view({n});
    else if (c.shape() == Shape{m, n})
      matrix = c;
    else
      not_applicable("C ", shape_str(c.shape()), " broadcast along the rows of [", m, ", ", n,
                     "]: Osprey's linear adds a bias per output");
  }
  Tensor y = ops::linear(on(run, a), on(run, w), on(run, bias));
  if (matrix.defined()) y = ops::add(y, on(run, matrix));
  run.outputs = {host(y)};
}

void run_matmul(NodeRun& run) {
  NodeAttrs(run.node).only({});
  const Tensor a = input(run, 0), b = input(run, 1);
  if (a.ndim() != 2 || b.ndim() != 2)
    not_applicable("batched MatMul ", shape_str(a.shape()), " x ", shape_str(b.shape()),
                   ": Osprey's linear multiplies matrices");
  run.outputs = {host(ops::linear(on(run, a), on(run, transpose2d(b)), Tensor()))};
}

void run_softmax_cross_entropy(NodeRun& run) {
  const NodeAttrs attrs(run.node);
  attrs.only({"reduction", "ignore_index"});
  const std::string reduction = attrs.s("reduction", "mean");
  if (reduction != "mean")
    not_applicable("reduction '", reduction, "': Osprey's loss is the mean over the samples");
  if (attrs.has("ignore_index")) not_applicable("ignore_index: Osprey's loss counts every label");
  if (optional_input(run, 2).defined())
    not_applicable("class weights: Osprey's loss weighs every class alike");
  if (wants_output(run, 1)) not_applicable("log_prob output: Osprey's loss returns the loss only");
  // [N, C, d...] scores: every position of every sample is one row of classes.
  const Tensor scores = channels_last(input(run, 0));
  const int64_t classes = scores.dim(scores.ndim() - 1);
  const Tensor labels = input(run, 1);
  const Tensor logits = scores.view({scores.numel() / classes, classes});
  const Tensor loss =
      ops::softmax_cross_entropy(on(run, logits), on(run, labels.view({labels.numel()})));
  run.outputs = {host(loss).view({})};
}

[[noreturn]] void run_average_pool(NodeRun&) {
  not_applicable("Osprey has no windowed average pooling (only global_avg_pool)");
}

// Softmax and LogSoftmax as Osprey's last-dimension ops. From opset 13 the node normalises along
// `axis` (default -1) alone, which is swapped to the end and back; before, the input counts as
// 2-D, [prod(dims[:axis]), prod(dims[axis:])] (default axis 1), and each row is normalised.
void run_softmax(NodeRun& run) {
  const NodeAttrs attrs(run.node);
  attrs.only({"axis"});
  if (run.device != Device::cpu)
    not_applicable("device ", device_name(run.device), ": Osprey's ", run.node.op_type(),
                   " has no CUDA kernel");
  const Tensor x = input(run, 0);
  const int rank = x.ndim();
  const int64_t asked = attrs.i("axis", run.opset >= 13 ? -1 : 1);
  const int64_t axis = asked < 0 ? asked + rank : asked;
  OSPREY_CHECK(axis >= 0 && axis < rank, run.node.op_type(), ": axis ", asked,
               " is outside a rank-", rank, " input");
  const auto op = run.node.op_type() == "Softmax" ? ops::softmax : ops::log_softmax;
  if (run.opset < 13) {
    int64_t outer = 1;
    for (int d = 0; d < axis; ++d) outer *= x.dim(d);
    const Tensor rows = x.view({outer, outer == 0 ? 0 : x.numel() / outer});
    run.outputs = {host(op(on(run, rows))).view(x.shape())};
    return;
  }
  std::vector<int> perm(static_cast<size_t>(rank));
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[size_t(axis)], perm.back());  // a swap is its own inverse
  run.outputs = {permute(host(op(on(run, permute(x, perm)))), perm)};
}

const std::map<std::string, std::function<void(NodeRun&)>>& mappings() {
  static const std::map<std::string, std::function<void(NodeRun&)>> m = {
      {"Add", run_add},
      {"AveragePool", run_average_pool},
      {"BatchNormalization", run_batch_norm},
      {"Clip", run_clip},
      {"Conv", run_conv},
      {"Dropout", run_dropout},
      {"Flatten", run_flatten},
      {"Gemm", run_gemm},
      {"GlobalAveragePool", run_global_average_pool},
      {"LogSoftmax", run_softmax},
      {"MatMul", run_matmul},
      {"MaxPool", run_max_pool},
      {"Relu", run_relu},
      {"Softmax", run_softmax},
      {"SoftmaxCrossEntropyLoss", run_softmax_cross_entropy},
  };
  return m;
}

}  // namespace

const std::vector<std::string>& mapped_ops() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& [name, fn] : mappings()) v.push_back(name);
    return v;
  }();
  return names;
}

bool is_mapped_op(const std::string& op_type) {
  return mappings().count(op_type) != 0;
}

void run_node(NodeRun& run) {
  if (!run.node.domain().empty() && run.node.domain() != "ai.onnx")
    not_applicable("domain '", run.node.domain(), "'");
  mappings().at(run.node.op_type())(run);
  run.unchecked.resize(run.outputs.size());
}

}  // namespace osprey::conformance
