#include "tools/verify.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/ops.h"
#include "engine/parse.h"
#include "engine/pth.h"
#include "engine/safetensors.h"
#include "engine/state_dict.h"
#include "kernels/cpu/threads.h"
#include "models/registry.h"

namespace osprey::tools {
namespace {

// Tolerances of tests/golden/README.md for an fp32 engine.
constexpr double kOutputTol = 1e-4;
constexpr double kGradTol = 1e-3;
// bf16 activations against the float64 references: twice the worst error of PyTorch's own bf16
// autocast on the four MobileNetV2 references (bench/torch_bf16_reference_error.py,
// docs/verification.md). Training-mode quantities of these 2-4 image batches are ill-conditioned
// (fp32 engines already miss the gradient tolerance), so bf16 gradients are reported, not judged.
constexpr double kBf16EvalTol = 1e-2;         // PyTorch: up to 4.8e-3
constexpr double kBf16LossTol = 3e-2;         // 1.3e-2
constexpr double kBf16TrainLogitsTol = 0.7;   // 0.34
constexpr double kBf16RunningStatTol = 0.25;  // 0.115
constexpr double kNotJudged = std::numeric_limits<double>::infinity();

std::string meta(const SafeTensorsFile& f, const std::string& key) {
  auto it = f.metadata().find(key);
  OSPREY_CHECK(it != f.metadata().end(), "reference '", printable(f.path()), "' has no '", key,
               "' in its metadata; pass it on the command line");
  return it->second;
}

std::string meta_what(const SafeTensorsFile& f, const std::string& key) {
  return "reference '" + printable(f.path()) + "': metadata '" + key + "'";
}

// Per-quantity errors that make_golden.py stores as a JSON object under KEY ("fp32_error",
// "fp32_chance"); empty for references made without them.
std::map<std::string, double> per_quantity_errors(const SafeTensorsFile& f,
                                                  const std::string& key) {
  auto it = f.metadata().find(key);
  if (it == f.metadata().end()) return {};
  const std::string what = meta_what(f, key);
  check_json_depth(it->second, what);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    fail(what, " is not JSON: ", e.what());
  }
  OSPREY_CHECK(j.is_object(), what, " is not a JSON object");
  std::map<std::string, double> errors;
  for (const auto& kv : j.items()) {
    const bool valid = kv.value().is_number() && std::isfinite(kv.value().get<double>()) &&
                       kv.value().get<double>() >= 0.0;
    OSPREY_CHECK(valid, what, ": '", printable(kv.key()), "' is not a non-negative number");
    errors[kv.key()] = kv.value().get<double>();
  }
  return errors;
}

// What fp32 rounding alone does on this reference, per quantity (docs/verification.md).
struct Fp32Chance {
  std::map<std::string, double> torch_fp32, chance;
  void attach(VerifyRow& row, const std::string& quantity) const {
    if (auto it = torch_fp32.find(quantity); it != torch_fp32.end()) row.torch_fp32 = it->second;
    if (auto it = chance.find(quantity); it != chance.end()) row.fp32_chance = it->second;
  }
};

Tensor nchw_to_nhwc(const std::vector<float>& v, const Shape& s) {
  int64_t N = s[0], C = s[1], H = s[2], W = s[3];
  Tensor t = Tensor::empty({N, H, W, C});
  float* o = t.data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x)
          o[((n * H + y) * W + x) * C + c] = v[size_t(((n * C + c) * H + y) * W + x)];
  return t;
}

std::vector<float> nhwc_to_nchw(const Tensor& t) {
  int64_t N = t.dim(0), H = t.dim(1), W = t.dim(2), C = t.dim(3);
  std::vector<float> out(size_t(t.numel()));
  const float* p = t.data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x)
        for (int64_t c = 0; c < C; ++c)
          out[size_t(((n * C + c) * H + y) * W + x)] = p[((n * H + y) * W + x) * C + c];
  return out;
}

// zero_scale > 0: a reference whose norm is below 1e-6 of zero_scale is zero in exact
// arithmetic (the bias of a BatchNorm that feeds another train-mode BatchNorm: a per-channel
// shift is normalised away), so its float64 value is rounding noise; the error is then
// measured against zero_scale (the norm of all parameter gradients) instead of itself.
VerifyRow compare(const std::string& what, RowKind kind, const float* ours, size_t n,
                  const SafeTensorsFile& ref, const std::string& key, double tol,
                  const Fp32Chance& fp32, double zero_scale = 0.0) {
  std::vector<float> r = ref.floats(key);
  OSPREY_CHECK(r.size() == n, "reference '", ref.path(), "': '", key, "' has ", r.size(),
               " values, the model produced ", n);
  double norm = 0.0, diff = 0.0;
  for (size_t i = 0; i < n; ++i) {
    norm += double(r[i]) * double(r[i]);
    diff += (double(ours[i]) - double(r[i])) * (double(ours[i]) - double(r[i]));
  }
  VerifyRow row;
  row.kind = kind;
  row.tolerance = tol;
  fp32.attach(row, what);
  if (zero_scale > 0.0 && std::sqrt(norm) < 1e-6 * zero_scale) {
    row.quantity = what + " (zero: error / all-gradient norm)";
    row.rel_err = std::sqrt(diff) / zero_scale;
  } else {
    row.quantity = what;
    row.rel_err = relative_l2(ours, r.data(), n);
  }
  return row;
}

}  // namespace

double relative_l2(const float* ours, const float* ref, size_t n) {
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < n; ++i) {
    double d = double(ours[i]) - double(ref[i]);
    diff += d * d;
    norm += double(ref[i]) * double(ref[i]);
  }
  if (std::isnan(diff)) return INFINITY;
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

double ChanceBounds::of(RowKind kind) const {
  if (kind == RowKind::gradient) return gradient;
  if (kind == RowKind::statistic) return statistic;
  return std::numeric_limits<double>::quiet_NaN();
}

ChanceBounds chance_bounds_of(const std::vector<VerifyRow>& rows) {
  ChanceBounds b;
  for (const VerifyRow& r : rows) {
    if (!std::isfinite(r.fp32_chance) || r.kind == RowKind::forward) continue;
    double& bound = r.kind == RowKind::gradient ? b.gradient : b.statistic;
    const double candidate = kFp32ChanceFactor * r.fp32_chance;
    if (!(bound >= candidate)) bound = candidate;  // NaN: the first one
  }
  return b;
}

RowStatus row_status(const VerifyRow& row, const ChanceBounds& bounds) {
  if (std::isinf(row.tolerance)) return RowStatus::not_judged;
  if (row.ok()) return RowStatus::ok;
  return row.rel_err <= bounds.of(row.kind) ? RowStatus::fp32_chance : RowStatus::fail;
}

Verdict verdict_of(const std::vector<VerifyRow>& rows) {
  if (rows.empty()) return Verdict::fail;
  const ChanceBounds bounds = chance_bounds_of(rows);
  Verdict v = Verdict::pass;
  for (const VerifyRow& r : rows) {
    const RowStatus status = row_status(r, bounds);
    if (status == RowStatus::fail) return Verdict::fail;
    if (status == RowStatus::fp32_chance) v = Verdict::pass_fp32_chance;
  }
  return v;
}

const char* verdict_text(Verdict v) {
  switch (v) {
    case Verdict::pass:
      return "PASS";
    case Verdict::pass_fp32_chance:
      return "PASS (gradients within fp32 chance: ReLU6 kink flips, see docs/verification.md)";
    case Verdict::fail:
      break;
  }
  return "FAIL";
}

VerifyOptions verify_options_from_prefix(const std::string& prefix) {
  VerifyOptions o;
  o.params_path = prefix + ".params.safetensors";
  o.ref_path = prefix + ".ref.safetensors";
  return o;
}

namespace {

// The reference's NCHW input shape, every dimension checked.
Shape reference_input_shape(const SafeTensorsFile& ref, const std::string& path) {
  Shape in_shape = ref.shape("input");
  OSPREY_CHECK(in_shape.size() == 4, "reference '", printable(path), "': input has shape ",
               shape_str(in_shape), ", expected NCHW");
  for (int64_t d : in_shape)  // a zero dimension would let the others be anything
    OSPREY_CHECK(d >= 1 && d <= (1 << 16), "reference '", printable(path), "': input has shape ",
                 shape_str(in_shape), ", dimensions must be in [1, 65536]");
  return in_shape;
}

// What to build: the options' model, classes and width, else the reference's metadata.
models::ModelSpec reference_model_spec(const VerifyOptions& opts, const SafeTensorsFile& ref,
                                       const Shape& in_shape) {
  models::ModelSpec spec;
  spec.name = opts.model.empty() ? meta(ref, "model") : opts.model;
  spec.num_classes =
      opts.classes > 0
          ? opts.classes
          : int(parse_int(meta(ref, "classes"), 1, 1 << 16, meta_what(ref, "classes")));
  if (opts.width > 0)
    spec.width_mult = opts.width;
  else if (ref.metadata().count("width"))
    spec.width_mult = float(parse_double(meta(ref, "width"), 1e-3, 1e3, meta_what(ref, "width")));
  spec.in_channels = int(in_shape[1]);
  spec.height = int(in_shape[2]);
  spec.width = int(in_shape[3]);
  spec.dropout = 0.0f;  // train-mode references were taken with dropout disabled
  return spec;
}

struct Tolerances {
  double eval_logits, train_logits, loss, statistic, gradient;
};

// bf16 activations are held to the bf16 tolerances, their gradients reported, not judged.
Tolerances tolerances_for(bool bf16) {
  if (bf16)
    return {kBf16EvalTol, kBf16TrainLogitsTol, kBf16LossTol, kBf16RunningStatTol, kNotJudged};
  return {kOutputTol, kOutputTol, kOutputTol, kOutputTol, kGradTol};
}

// Appends the rows of a report: each quantity of ours against the reference's values.
struct RowWriter {
  const SafeTensorsFile& ref;
  const Fp32Chance& fp32;
  std::vector<VerifyRow>& rows;
  void add(const std::string& what, RowKind kind, const float* ours, size_t n,
           const std::string& key, double tol, double zero_scale = 0.0) {
    rows.push_back(compare(what, kind, ours, n, ref, key, tol, fp32, zero_scale));
  }
};

void add_eval_rows(Model& model, const Tensor& x, double eval_tol, RowWriter& out) {
  autograd::NoGradGuard no_grad;
  model.eval();
  std::vector<float> logits = model.forward(x).to_vector();
  out.add("eval_logits", RowKind::forward, logits.data(), logits.size(), "ref.eval_logits",
          eval_tol);
  // The inference form computes in f32 whatever the training activations.
  std::vector<float> folded = model.inference_net()->forward(x).to_vector();
  out.add("inference_logits", RowKind::forward, folded.data(), folded.size(), "ref.eval_logits",
          kOutputTol);
}

// One train-mode forward and backward: its logits, loss and input gradient.
void add_train_step_rows(Model& model, Tensor& x, const Tensor& labels, const Tolerances& tol,
                         RowWriter& out) {
  model.train();
  model.params().zero_grad();
  x.set_requires_grad(true);
  Tensor logits = model.forward(x);
  Tensor loss = ops::softmax_cross_entropy(logits, labels);
  loss.backward();
  std::vector<float> train_logits = logits.to_vector(), loss_value = loss.to_vector();
  out.add("train_logits", RowKind::forward, train_logits.data(), train_logits.size(),
          "ref.train_logits", tol.train_logits);
  out.add("loss", RowKind::forward, loss_value.data(), 1, "ref.loss", tol.loss);
  std::vector<float> gx = nhwc_to_nchw(x.grad().to(Device::cpu));
  out.add("grad_input", RowKind::gradient, gx.data(), gx.size(), "ref.grad_input", tol.gradient);
}

// The parameter gradients of that step, and the BatchNorm running statistics after its
// forward.
void add_parameter_rows(Model& model, const Tolerances& tol, RowWriter& out) {
  double all_grads = 0.0;
  for (const Parameter& p : model.params().params())
    for (float v : out.ref.floats("grad." + p.name)) all_grads += double(v) * double(v);
  all_grads = std::sqrt(all_grads);
  Tensor grads = model.params().flat_grad().to(Device::cpu);
  for (const Parameter& p : model.params().params()) {
    std::vector<float> g(size_t(p.value.numel()));
    p.to_torch(grads.data<float>() + p.offset, g.data());
    out.add("grad." + p.name, RowKind::gradient, g.data(), g.size(), "grad." + p.name, tol.gradient,
            all_grads);
  }
  for (const Buffer& b : model.params().buffers()) {
    if (b.value.dtype() != DType::f32) continue;
    std::vector<float> v = b.value.to_vector();
    out.add("after_train_forward." + b.name, RowKind::statistic, v.data(), v.size(),
            "after_train_forward." + b.name, tol.statistic);
  }
}

}  // namespace

VerifyReport run_verify(const VerifyOptions& opts) {
  cpu::set_num_threads(opts.threads);
  SafeTensorsFile ref = SafeTensorsFile::read(opts.ref_path);
  SafeTensorsFile params = read_tensor_file(opts.params_path);
  const Shape in_shape = reference_input_shape(ref, opts.ref_path);
  const models::ModelSpec spec = reference_model_spec(opts, ref, in_shape);
  std::unique_ptr<Model> model = models::create_model(spec);
  load_torch_state_dict(model->params(), params);
  const Device device = resolve_device(opts.device);
  OSPREY_CHECK(opts.dtype == "f32" || opts.dtype == "bf16", "verify: dtype '", opts.dtype,
               "' is not one of f32, bf16");
  const bool bf16 = opts.dtype == "bf16";
  model->set_activation_dtype(bf16 ? DType::bf16 : DType::f32);
  const Tolerances tol = tolerances_for(bf16);
  model->to(device);
  // The fp32 chance describes fp32 activations; bf16 ones have their own tolerances.
  Fp32Chance fp32;
  if (!bf16) {
    fp32.torch_fp32 = per_quantity_errors(ref, "fp32_error");
    fp32.chance = per_quantity_errors(ref, "fp32_chance");
  }

  VerifyReport report;
  report.model = spec.name;
  report.device = device_description(device);
  report.dtype = opts.dtype;
  Tensor x = nchw_to_nhwc(ref.floats("input"), in_shape).to(device);
  Tensor labels = Tensor::from_labels(ref.ints("labels"));
  RowWriter out{ref, fp32, report.rows};
  add_eval_rows(*model, x, tol.eval_logits, out);
  add_train_step_rows(*model, x, labels, tol, out);
  add_parameter_rows(*model, tol, out);
  return report;
}

namespace {

std::string number_or_dash(double v, const char* format) {
  if (!std::isfinite(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

const char* status_text(RowStatus s) {
  switch (s) {
    case RowStatus::ok:
      return "ok";
    case RowStatus::fp32_chance:
      return "ok (fp32 chance)";
    case RowStatus::not_judged:
      return "-";
    case RowStatus::fail:
      break;
  }
  return "FAIL";
}

}  // namespace

int print_verify_report(const VerifyReport& r) {
  const ChanceBounds bounds = chance_bounds_of(r.rows);
  std::printf("verify %s on %s, %s activations\n", r.model.c_str(), r.device.c_str(),
              r.dtype.c_str());
  if (std::isfinite(bounds.gradient) || std::isfinite(bounds.statistic))
    std::printf("fp32 chance bound (%.0f x the reference's largest): gradients %s, statistics %s\n",
                kFp32ChanceFactor, number_or_dash(bounds.gradient, "%.2e").c_str(),
                number_or_dash(bounds.statistic, "%.2e").c_str());
  std::printf("%-48s %10s %8s %10s %10s  %s\n", "quantity", "rel_l2", "tol", "torch_fp32", "bound",
              "ok");
  for (const auto& row : r.rows) {
    const RowStatus status = row_status(row, bounds);
    const double bound = status == RowStatus::fp32_chance ? bounds.of(row.kind) : row.tolerance;
    std::printf("%-48s %10.3e %8s %10s %10s  %s\n", row.quantity.c_str(), row.rel_err,
                number_or_dash(row.tolerance, "%.0e").c_str(),
                number_or_dash(row.torch_fp32, "%.2e").c_str(),
                number_or_dash(bound, "%.2e").c_str(), status_text(status));
  }
  const Verdict v = r.verdict();
  std::printf("verdict: %s\n", verdict_text(v));
  return v == Verdict::fail ? 1 : 0;
}

}  // namespace osprey::tools
