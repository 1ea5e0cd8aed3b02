// One ONNX backend test (a folder with model.onnx and test_data_set_*/{input,output}_N.pb) run
// through Osprey's ops and compared with ONNX's expected outputs.
#pragma once
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace osprey::conformance {

// ONNX's own tolerances for tests stored as model.onnx + data sets: onnx 1.12's
// onnx/backend/test/loader/__init__.py sets rtol = 1e-3, atol = 1e-7 for each of them, and
// runner/__init__.py compares with numpy.testing.assert_allclose(actual, expected, rtol, atol),
// i.e. |actual - expected| <= atol + rtol * |expected| element by element (NaN equals NaN).
constexpr double kRtol = 1e-3;
constexpr double kAtol = 1e-7;

// The folders of testdata that hold single-model tests: the node tests and PyTorch's.
const std::vector<std::string>& case_kinds();

enum class Outcome { pass, fail, not_applicable };

struct CaseResult {
  std::string id;   // "node/test_relu"
  std::string ops;  // the graph's op types, "Gemm, Gemm"
  Outcome outcome = Outcome::pass;
  std::string detail;  // the error for a failure, the reason when not applicable
};

struct Discovery {
  std::vector<std::string> selected;   // "kind/name" of every test of mapped ops only
  int other_ops = 0;                   // tests with an op outside the mapped ones
  std::vector<CaseResult> unreadable;  // models that could not be read
};

// Every test of the case kinds under root, sorted.
Discovery discover(const std::string& root);
CaseResult run_case(const std::string& root, const std::string& id, Device device);

}  // namespace osprey::conformance
