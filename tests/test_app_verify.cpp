// The verdict of `osprey verify` (tools/verify.h): plain tolerances, the fp32 chance that
// gradients and statistics may fall back on, and references made without it.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "engine/safetensors.h"
#include "tests/test_support.h"
#include "tools/verify.h"

using namespace osprey;
using tools::RowKind;
using tools::Verdict;

namespace {

tools::VerifyRow row(const std::string& quantity, RowKind kind, double rel_err, double tol,
                     double fp32_chance) {
  tools::VerifyRow r;
  r.quantity = quantity;
  r.kind = kind;
  r.rel_err = rel_err;
  r.tolerance = tol;
  r.fp32_chance = fp32_chance;
  return r;
}

// Rows of a reference whose largest gradient fp32 chance is 1e-2 (bound 3e-2 at factor 3).
std::vector<tools::VerifyRow> reference_rows() {
  return {row("eval_logits", RowKind::forward, 2e-7, 1e-4, 2e-7),
          row("loss", RowKind::forward, 1e-6, 1e-4, 1e-6),
          row("grad_input", RowKind::gradient, 5e-4, 1e-3, 1e-2),
          row("grad.conv.weight", RowKind::gradient, 2e-4, 1e-3, 1e-4),
          row("after_train_forward.bn.running_mean", RowKind::statistic, 1e-6, 1e-4, 1e-6)};
}

// A copy of a reference file with its metadata KEY set to VALUE, or removed when VALUE is empty.
std::string copy_with_metadata(const std::string& prefix, const tests::TempDir& dir,
                               const std::string& key, const std::string& value) {
  const std::string path = dir.file("ref.safetensors");
  tests::copy_with_metadata(prefix + ".ref.safetensors", path, key, value);
  return path;
}

const std::string kSmallMobileNet = std::string(OSPREY_GOLDEN_DIR) + "/mnv2_w0.25_c100_b3_48";

}  // namespace

TEST_CASE("verify: every row within tolerance is PASS") {
  REQUIRE(tools::verdict_of(reference_rows()) == Verdict::pass);
  REQUIRE(std::string(tools::verdict_text(Verdict::pass)) == "PASS");
}

TEST_CASE("verify: a gradient over tolerance within the fp32 chance bound is PASS (fp32 chance)") {
  std::vector<tools::VerifyRow> rows = reference_rows();
  // Over its own row's chance (1e-4) but within 3 x the reference's largest (1e-2): which rows a
  // kink flip lands on differs between fp32 computations.
  rows[3].rel_err = 2.5e-2;
  const tools::ChanceBounds bounds = tools::chance_bounds_of(rows);
  REQUIRE(bounds.gradient == Approx(tools::kFp32ChanceFactor * 1e-2));
  REQUIRE(tools::row_status(rows[3], bounds) == tools::RowStatus::fp32_chance);
  REQUIRE(tools::verdict_of(rows) == Verdict::pass_fp32_chance);
  REQUIRE_THAT(tools::verdict_text(Verdict::pass_fp32_chance),
               Catch::StartsWith("PASS (gradients within fp32 chance"));
}

TEST_CASE("verify: a gradient over the fp32 chance bound is FAIL") {
  std::vector<tools::VerifyRow> rows = reference_rows();
  rows[2].rel_err = 1.01 * tools::kFp32ChanceFactor * 1e-2;
  REQUIRE(tools::verdict_of(rows) == Verdict::fail);
}

TEST_CASE("verify: forward rows never fall back on the fp32 chance") {
  std::vector<tools::VerifyRow> rows = reference_rows();
  rows[0].rel_err = 2e-4;  // logits over 1e-4, far inside any gradient or own chance bound
  rows[0].fp32_chance = 1e-1;
  REQUIRE(tools::verdict_of(rows) == Verdict::fail);
}

TEST_CASE("verify: a statistic over tolerance is judged against the statistics' fp32 chance") {
  std::vector<tools::VerifyRow> rows = reference_rows();
  rows[4].rel_err = 2e-4;  // over 1e-4; 3 x 1e-6 is the statistics' bound, not the gradients'
  REQUIRE(tools::verdict_of(rows) == Verdict::fail);
  rows[4].fp32_chance = 1e-4;
  REQUIRE(tools::verdict_of(rows) == Verdict::pass_fp32_chance);
}

TEST_CASE("verify: without fp32 chance the tolerances are all there is, and no rows is FAIL") {
  std::vector<tools::VerifyRow> rows = reference_rows();
  for (auto& r : rows) r.fp32_chance = std::numeric_limits<double>::quiet_NaN();
  rows[2].rel_err = 2e-3;
  REQUIRE(tools::verdict_of(rows) == Verdict::fail);
  REQUIRE(tools::verdict_of({}) == Verdict::fail);
}

TEST_CASE("verify: a MobileNetV2 reference without its fp32 chance falls back to FAIL") {
  tests::TempDir dir("osprey_verify");
  tools::VerifyOptions o = tools::verify_options_from_prefix(kSmallMobileNet);
  o.ref_path = copy_with_metadata(kSmallMobileNet, dir, "fp32_chance", "");
  tools::VerifyReport r = tools::run_verify(o);
  for (const auto& row : r.rows) REQUIRE(std::isnan(row.fp32_chance));
  REQUIRE(r.verdict() == Verdict::fail);  // its gradients are over 1e-3 (ReLU6 kink flips)
  // The same file with its metadata passes: the fallback, not the engine, made the difference.
  REQUIRE(tools::run_verify(tools::verify_options_from_prefix(kSmallMobileNet)).verdict() ==
          Verdict::pass_fp32_chance);
}

TEST_CASE("verify: malformed fp32 chance metadata is one clear error") {
  tests::TempDir dir("osprey_verify");
  tools::VerifyOptions o = tools::verify_options_from_prefix(kSmallMobileNet);
  o.ref_path = copy_with_metadata(kSmallMobileNet, dir, "fp32_chance", "[1, 2");
  REQUIRE_THROWS_WITH(tools::run_verify(o),
                      Catch::Contains("metadata 'fp32_chance'") && Catch::Contains("not JSON"));
  o.ref_path = copy_with_metadata(kSmallMobileNet, dir, "fp32_error", "{\"loss\": -1}");
  REQUIRE_THROWS_WITH(tools::run_verify(o), Catch::Contains("metadata 'fp32_error'") &&
                                                Catch::Contains("'loss' is not a non-negative"));
}
