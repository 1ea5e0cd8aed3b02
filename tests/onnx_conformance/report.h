// The conformance results as console lines and as the markdown report (docs/onnx_conformance.md).
#pragma once
#include <string>
#include <vector>

#include "tests/onnx_conformance/conformance_case.h"

namespace osprey::conformance {

// "PASS id", "FAIL id: detail" or "N/A id: detail".
std::string result_line(const CaseResult& r);

struct ReportContext {
  std::string data_root;
  std::string command;  // how to regenerate the report
  Device device = Device::cpu;
  int other_ops = 0;  // tests not selected
};

std::string markdown_report(const std::vector<CaseResult>& results, const ReportContext& ctx);

}  // namespace osprey::conformance
