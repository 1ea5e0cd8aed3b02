#include "tests/onnx_conformance/report.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "engine/device.h"
#include "tests/onnx_conformance/onnx_ops.h"

namespace osprey::conformance {

namespace {

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::pass:
      return "PASS";
    case Outcome::fail:
      return "FAIL";
    case Outcome::not_applicable:
      return "N/A";
  }
  return "?";
}

// The installed Debian package's version when root is its folder (dpkg's status file).
std::string testdata_version(const std::string& root) {
  const std::string debian_root = "/usr/share/libonnx-testdata/data";
  if (root != debian_root && root != debian_root + "/") return "unknown (not Debian's package)";
  std::ifstream status("/var/lib/dpkg/status");
  std::string line;
  bool in_package = false;
  while (std::getline(status, line)) {
    if (line.rfind("Package: ", 0) == 0) in_package = line == "Package: libonnx-testdata";
    if (in_package && line.rfind("Version: ", 0) == 0) return "libonnx-testdata " + line.substr(9);
  }
  return "unknown";
}

std::string cpu_model() {
  std::ifstream info("/proc/cpuinfo");
  std::string line;
  while (std::getline(info, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

// Table cells hold the runner's free text: a '|' would split the cell.
std::string cell(std::string s) {
  for (size_t i = 0; (i = s.find('|', i)) != std::string::npos; i += 2) s.replace(i, 1, "\\|");
  return s;
}

// Each distinct reason with its count, most frequent first.
std::string not_applicable_summary(const std::vector<CaseResult>& results) {
  std::map<std::string, int> count;
  for (const CaseResult& r : results)
    if (r.outcome == Outcome::not_applicable) ++count[r.detail];
  std::vector<std::pair<std::string, int>> reasons(count.begin(), count.end());
  std::stable_sort(reasons.begin(), reasons.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::ostringstream md;
  md << "## Why cases are not applicable\n\n| Cases | Reason |\n|---:|---|\n";
  for (const auto& [reason, n] : reasons) md << "| " << n << " | " << cell(reason) << " |\n";
  return md.str();
}

}  // namespace

std::string result_line(const CaseResult& r) {
  std::string line = std::string(outcome_name(r.outcome)) + " " + r.id;
  if (!r.detail.empty()) line += ": " + r.detail;
  return line;
}

std::string markdown_report(const std::vector<CaseResult>& results, const ReportContext& ctx) {
  int count[3] = {0, 0, 0};
  for (const CaseResult& r : results) ++count[int(r.outcome)];
  std::ostringstream md;
  md << "# ONNX operator conformance\n\n"
     << "The ONNX project's own backend tests, run through Osprey's ops: every test of "
        "`node/`, `pytorch-converted/`, `pytorch-operator/` and `simple/` whose graph uses only "
        "the ops below. The runner changes layouts only (NCHW to NHWC, OIHW to OHWI, "
        "transposes; Gemm's alpha and beta around `ops::linear`); the arithmetic is Osprey's "
        "op. A case is not applicable (N/A) when Osprey has no op or no setting for what the "
        "node asks; the reason says which.\n\n"
     << "Regenerate from the repository root with `" << ctx.command
     << "` (BUILD: the build folder); CTest runs the same cases as `onnx_conformance_cpu` and, "
        "on a GPU, `onnx_conformance_cuda`.\n\n"
     << "- Test data: " << testdata_version(ctx.data_root) << " (`" << ctx.data_root << "`)\n"
     << "- Machine: " << cpu_model() << ", " << std::thread::hardware_concurrency()
     << " threads; device " << device_description(ctx.device) << "\n"
     << "- Tolerances: ONNX's for these tests, rtol " << kRtol << ", atol " << kAtol
     << " (onnx/backend/test/loader), compared as numpy's assert_allclose\n"
     << "- Ops whose tests are run:";
  for (const std::string& op : mapped_ops()) md << " " << op;
  md << "\n\n| Passed | Failed | Not applicable | Run | Tests of other ops (not run) |\n"
     << "|---:|---:|---:|---:|---:|\n"
     << "| " << count[0] << " | " << count[1] << " | " << count[2] << " | " << results.size()
     << " | " << ctx.other_ops << " |\n\n"
     << not_applicable_summary(results) << "\n## Cases\n\n"
     << "| Case | Ops | Result | Detail |\n|---|---|---|---|\n";
  for (const CaseResult& r : results)
    md << "| `" << r.id << "` | " << r.ops << " | " << outcome_name(r.outcome) << " | "
       << cell(r.detail) << " |\n";
  return md.str();
}

}  // namespace osprey::conformance
