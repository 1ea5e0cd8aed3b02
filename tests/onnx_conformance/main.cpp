// osprey_onnx_conformance: ONNX's backend node tests (Debian's libonnx-testdata) run through
// Osprey's ops. Prints PASS / FAIL / N/A per case; exits 1 when an applicable case fails, a case
// cannot be read or none is found, 77 for --device cuda without a GPU (CTest: skipped).
#include <cstdio>
#include <cstring>
#include <string>

#include "engine/device.h"
#include "engine/safetensors.h"
#include "tests/onnx_conformance/conformance_case.h"
#include "tests/onnx_conformance/report.h"

namespace {

struct Options {
  std::string data = "/usr/share/libonnx-testdata/data";
  std::string device = "cpu";
  std::string report;  // markdown file, when set
  std::string filter;  // run only cases whose id contains this
};

const char* kUsage =
    "usage: osprey_onnx_conformance [--data DIR] [--device cpu|cuda] [--report FILE] "
    "[--filter TEXT]\n"
    "  --data DIR     ONNX backend test data (default /usr/share/libonnx-testdata/data)\n"
    "  --device NAME  cpu (default) or cuda\n"
    "  --report FILE  also write the markdown report (docs/onnx_conformance.md)\n"
    "  --filter TEXT  only the cases whose name (kind/test_name) contains TEXT\n";

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    std::string* target = arg == "--data"     ? &o.data
                          : arg == "--device" ? &o.device
                          : arg == "--report" ? &o.report
                          : arg == "--filter" ? &o.filter
                                              : nullptr;
    if (!target || i + 1 == argc) return false;
    *target = argv[++i];
  }
  return o.device == "cpu" || o.device == "cuda";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace osprey;
  using namespace osprey::conformance;
  Options opt;
  if (!parse(argc, argv, opt)) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const Device device = opt.device == "cuda" ? Device::cuda : Device::cpu;
  if (device == Device::cuda && !cuda_available()) {
    std::printf("no CUDA device%s: skipping\n", cuda_built() ? "" : " (built without CUDA)");
    return 77;
  }
  const Discovery found = discover(opt.data);
  std::vector<CaseResult> results = found.unreadable;
  for (const std::string& id : found.selected)
    if (id.find(opt.filter) != std::string::npos) results.push_back(run_case(opt.data, id, device));
  if (found.selected.empty() && results.empty()) {
    std::fprintf(stderr,
                 "no ONNX test cases found under '%s': install libonnx-testdata "
                 "(apt-get install libonnx-testdata) or pass --data DIR\n",
                 opt.data.c_str());
    return 1;
  }
  if (results.empty()) {
    std::fprintf(stderr, "no case matches --filter '%s'\n", opt.filter.c_str());
    return 1;
  }
  int failed = 0, passed = 0, not_applicable = 0;
  for (const CaseResult& r : results) {
    std::printf("%s\n", result_line(r).c_str());
    failed += r.outcome == Outcome::fail;
    passed += r.outcome == Outcome::pass;
    not_applicable += r.outcome == Outcome::not_applicable;
  }
  std::printf("%d passed, %d failed, %d not applicable, of %zu cases on %s\n", passed, failed,
              not_applicable, results.size(), opt.device.c_str());
  if (!opt.report.empty()) {
    ReportContext ctx{opt.data, "", device, found.other_ops};
    ctx.command =
        "BUILD/tests/osprey_onnx_conformance --device " + opt.device + " --report " + opt.report;
    try {
      write_file_atomic(opt.report, markdown_report(results, ctx));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 1;
    }
  }
  return failed ? 1 : 0;
}
