// Start-up agreement of the ranks of a job: settings that must be equal on every rank (the
// global batch, steps per epoch, model and parameter layout, bucket plan, pipeline stages,
// dataset sizes, ...) are compared once, before the first collective that depends on them, so
// that ranks started with different settings fail at once naming the setting and the ranks,
// instead of hanging in a collective that only some of them reach.
#pragma once
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "engine/param_store.h"

namespace osprey::dist {

struct Setting {
  std::string name, value;
};

// Collective over comm. When some rank's settings differ from rank 0's, every rank throws the
// same error: the first differing setting, its value on the lowest differing rank and on rank
// 0, and every rank that differs. The values shown are cut at kShownValueChars characters; the
// comparison uses all of them. At most kMaxSettings settings.
constexpr int kMaxSettings = 96;
constexpr int kShownValueChars = 56;
void require_same_settings(Communicator& comm, const std::vector<Setting>& settings);

// A short hex digest of the parameter and buffer names, shapes, dtypes and offsets: equal
// exactly when two stores have the same layout.
std::string layout_digest(const ParamStore& store);
// A short hex digest of any text (a bucket plan, a config value too long to show).
std::string digest(const std::string& text);

}  // namespace osprey::dist
