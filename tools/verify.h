// `osprey verify`: runs a model on a PyTorch reference file and reports the relative L2 error
// of every quantity against the tolerances in tests/golden/README.md, or, for gradients and
// running statistics, against what fp32 rounding alone does (docs/verification.md).
#pragma once
#include <limits>
#include <string>
#include <vector>

namespace osprey::tools {

struct VerifyOptions {
  std::string params_path;  // PREFIX.params.safetensors, or any state_dict file (.pth too)
  std::string ref_path;     // PREFIX.ref.safetensors
  // Overrides of the reference's metadata; empty / <= 0 means "take it from the file".
  std::string model;
  int classes = 0;
  float width = 0.0f;
  int threads = 0;
  std::string device = "cpu";  // cpu | cuda | auto
  // Activations: f32, or bf16 (mixed precision), held to the bf16 tolerances of
  // docs/verification.md instead of the references' fp32 ones.
  std::string dtype = "f32";
};

// What a row measures. Forward quantities (logits, loss) are always held to their tolerance;
// gradients and running statistics over theirs may instead be held to the reference's fp32
// chance.
enum class RowKind { forward, gradient, statistic };

// A gradient (statistic) row over its tolerance passes as fp32 chance when its error is at most
// this many times the largest fp32 chance of all gradient (statistic) rows of the reference.
// docs/verification.md derives it: ours is at most 1.32 times that on the shipped references.
constexpr double kFp32ChanceFactor = 3.0;

struct VerifyRow {
  std::string quantity;  // "eval_logits", "grad.conv1.weight", ...
  double rel_err = 0.0;
  double tolerance = 0.0;
  RowKind kind = RowKind::forward;
  // From the reference's metadata (tests/golden/make_golden.py); NaN when the file has none:
  // PyTorch's own fp32 error on this quantity, and the largest error that PyTorch's fp32 and
  // simulated fp32 roundings gave it (fp32_chance).
  double torch_fp32 = std::numeric_limits<double>::quiet_NaN();
  double fp32_chance = std::numeric_limits<double>::quiet_NaN();
  bool ok() const { return rel_err <= tolerance; }
};

// kFp32ChanceFactor x the largest fp32 chance among a reference's rows of one kind. Per
// reference, not per row: which ReLU6 elements flip decides which rows carry the error, and
// that differs between any two fp32 computations. NaN for forward rows and when no row of the
// kind has an fp32 chance.
struct ChanceBounds {
  double gradient = std::numeric_limits<double>::quiet_NaN();
  double statistic = std::numeric_limits<double>::quiet_NaN();
  double of(RowKind kind) const;
};
ChanceBounds chance_bounds_of(const std::vector<VerifyRow>& rows);

enum class RowStatus { ok, fp32_chance, fail, not_judged };
RowStatus row_status(const VerifyRow& row, const ChanceBounds& bounds);

enum class Verdict { pass, pass_fp32_chance, fail };

// PASS when every row is within tolerance; PASS (fp32 chance) when the only rows over it are
// gradients or statistics within their chance bound; FAIL otherwise (also for no rows).
Verdict verdict_of(const std::vector<VerifyRow>& rows);
const char* verdict_text(Verdict v);

struct VerifyReport {
  std::string model;
  std::string device;  // where it ran, e.g. "cuda:0 (NVIDIA H100 80GB HBM3)"
  std::string dtype;   // of the activations
  std::vector<VerifyRow> rows;
  Verdict verdict() const { return verdict_of(rows); }
  bool passed() const { return verdict() != Verdict::fail; }
};

// Accepts a PREFIX (adds .params/.ref.safetensors) when the paths are not given separately.
VerifyOptions verify_options_from_prefix(const std::string& prefix);
VerifyReport run_verify(const VerifyOptions& opts);
// Prints the report as a table with its verdict; returns the exit status: 0 for both
// PASS forms, 1 for FAIL.
int print_verify_report(const VerifyReport& r);
// ‖ours − ref‖ / ‖ref‖ in double (‖ours − ref‖ when the reference is all zeros).
double relative_l2(const float* ours, const float* ref, size_t n);

}  // namespace osprey::tools
