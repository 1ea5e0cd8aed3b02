// `osprey verify`: runs a model on a PyTorch reference file and reports the relative L2 error
// of every quantity against the tolerances in tests/golden/README.md.
#pragma once
#include <string>
#include <vector>

namespace osprey::tools {

struct VerifyOptions {
  std::string params_path;  // PREFIX.params.safetensors (a PyTorch state_dict)
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

struct VerifyRow {
  std::string quantity;  // "eval_logits", "grad.conv1.weight", ...
  double rel_err = 0.0;
  double tolerance = 0.0;
  bool ok() const { return rel_err <= tolerance; }
};

struct VerifyReport {
  std::string model;
  std::string device;  // where it ran, e.g. "cuda:0 (NVIDIA H100 80GB HBM3)"
  std::string dtype;   // of the activations
  std::vector<VerifyRow> rows;
  bool passed() const;
};

// Accepts a PREFIX (adds .params/.ref.safetensors) when the paths are not given separately.
VerifyOptions verify_options_from_prefix(const std::string& prefix);
VerifyReport run_verify(const VerifyOptions& opts);
// ‖ours − ref‖ / ‖ref‖ in double (‖ours − ref‖ when the reference is all zeros).
double relative_l2(const float* ours, const float* ref, size_t n);

}  // namespace osprey::tools
