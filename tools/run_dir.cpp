#include "tools/run_dir.h"

#include <unistd.h>

#include <cctype>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>

#include "engine/checkpoint.h"
#include "engine/parse.h"
#include "engine/safetensors.h"
#include "kernels/error.h"
#include "tools/build_info.h"

namespace osprey::tools {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

bool holds_a_run(const RunFiles& f) {
  for (const std::string& p : {f.config, f.metrics, f.last, f.best})
    if (fs::is_regular_file(p)) return true;
  return false;
}

// "<model>_<dataset>_<N>", N one past the highest N of runs_dir's folders of that form (like
// Lightning's version_N: a deleted run's number is not reused while later ones exist).
std::string next_default_name(const TrainConfig& cfg) {
  const std::string base = cfg.model + "_" + cfg.dataset + "_";
  int64_t highest = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(cfg.runs_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= base.size() || name.compare(0, base.size(), base) != 0) continue;
    const std::string digits = name.substr(base.size());
    if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    highest = std::max<int64_t>(highest, std::stoll(digits));
  }
  return base + std::to_string(highest + 1);
}

// "(best test accuracy 87.63%)" from the run's best checkpoint, or "" when it has none.
std::string describe_existing(const RunFiles& f) {
  try {
    const CheckpointMetadata meta = read_checkpoint_metadata(f.best);
    const double best = checkpoint_double(meta, f.best, "best_accuracy", -1.0, 1.0);
    const int64_t epoch = checkpoint_int(meta, f.best, "epoch", 0, INT32_MAX);
    char text[96];
    std::snprintf(text, sizeof text, " (best test accuracy %.2f%% after epoch %lld)", 100.0 * best,
                  (long long)epoch);
    return text;
  } catch (const Error&) {
    return "";
  }
}

// Keeps the lines of path that `keep` accepts (parsed; unparsable lines, e.g. cut by a kill,
// are dropped), the last one of each key winning, in key order.
void rewrite_lines(const std::string& path, const std::string& extra_line,
                   const std::function<bool(const json&, int64_t&)>& keep) {
  std::map<int64_t, std::string> by_key;
  auto take = [&](const std::string& line, const std::string& what) {
    check_json_depth(line, what);
    const json j = json::parse(line, nullptr, false);
    int64_t key = 0;
    if (!j.is_discarded() && j.is_object() && keep(j, key)) by_key[key] = line;
  };
  std::ifstream in(path);
  int n = 0;
  for (std::string line; std::getline(in, line);)
    take(line, "'" + path + "' line " + std::to_string(++n));
  if (!extra_line.empty()) take(extra_line, "the checkpoint's metrics line");
  std::string out;
  for (const auto& kv : by_key) out += kv.second + "\n";
  write_file_atomic(path, out);
}

// An integer field of a metrics line within [1, most].
std::function<bool(const json&, int64_t&)> numbered(const char* field, int64_t most) {
  return [field, most](const json& j, int64_t& key) {
    if (!j.contains(field) || !j[field].is_number_integer()) return false;
    key = j[field].get<int64_t>();
    return key >= 1 && key <= most;
  };
}

json provenance_json(const Provenance& prov) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  const BuildInfo& b = build_info();
  json j = {{"osprey_version", b.version},
            {"git_commit", b.commit},
            {"build", b.options},
            {"host", printable(host)},
            {"command_line", prov.command_line},
            {"start_time", prov.start_time},
            {"world_size", prov.world_size}};
  if (!prov.resumed_from.empty()) j["resumed_from"] = prov.resumed_from;
  return j;
}

}  // namespace

RunFiles::RunFiles(const std::string& runs_dir, const std::string& name)
    : dir(fs::path(runs_dir) / name),
      config((dir / "config.json").string()),
      metrics((dir / "metrics.jsonl").string()),
      steps((dir / "steps.jsonl").string()),
      last((dir / "last.safetensors").string()),
      best((dir / "best.safetensors").string()),
      curves((dir / "curves.png").string()) {}

RunClaim claim_run_name(TrainConfig& cfg, bool resuming, bool overwrite) {
  RunClaim claim{resuming, overwrite, cfg.name.empty()};
  if (claim.auto_named) {
    cfg.name = next_default_name(cfg);
    validate_run_name(cfg.name);
    return claim;
  }
  const RunFiles f(cfg.runs_dir, cfg.name);
  OSPREY_CHECK(resuming || overwrite || !holds_a_run(f), "run '", f.dir.string(),
               "' already exists", describe_existing(f), ": choose another --name, add --overwrite",
               " to replace it, or continue it with `osprey train --resume ", f.dir.string(), "`");
  return claim;
}

RunFiles open_run_dir(TrainConfig& cfg, const RunClaim& claim, const Provenance& prov,
                      int completed_epochs, int64_t completed_steps,
                      const std::string& checkpoint_line) {
  fs::create_directories(cfg.runs_dir);
  // Another run started meanwhile may have taken the default name: the next one is free.
  while (claim.auto_named && !fs::create_directory(fs::path(cfg.runs_dir) / cfg.name))
    cfg.name = next_default_name(cfg);
  const RunFiles f(cfg.runs_dir, cfg.name);
  fs::create_directories(f.dir);
  std::vector<std::string> stale = remove_stale_temp_files(f.dir.string());
  if (!stale.empty())
    std::printf("removed %zu stale temporary file%s of interrupted writes from %s\n", stale.size(),
                stale.size() == 1 ? "" : "s", f.dir.string().c_str());
  if (claim.overwrite && !claim.resuming)
    for (const std::string& p : {f.config, f.metrics, f.steps, f.last, f.best, f.curves})
      fs::remove(p);
  json config = to_json(cfg);
  config["provenance"] = provenance_json(prov);
  write_file_atomic(f.config, config.dump(2) + "\n");
  if (claim.resuming) {
    rewrite_lines(f.metrics, checkpoint_line, numbered("epoch", completed_epochs));
    if (fs::exists(f.steps)) rewrite_lines(f.steps, "", numbered("step", completed_steps));
  } else {
    fs::remove(f.metrics);
    fs::remove(f.steps);
  }
  return f;
}

void append_line(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  out << line << '\n';
  out.flush();
  OSPREY_CHECK(out.good(), "cannot append to '", path, "'");
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm parts{};
  gmtime_r(&now, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

std::string resolve_checkpoint(const std::string& run_or_file, const std::string& runs_dir) {
  if (fs::is_regular_file(run_or_file)) return run_or_file;
  const fs::path in_runs = fs::path(runs_dir) / run_or_file;
  for (const fs::path& dir : {fs::path(run_or_file), in_runs}) {
    if (!fs::is_directory(dir)) continue;
    // last is written after best (an epoch that improves saves both), so it is the newest
    // unless its write failed (a full disk, a kill): then best, the same state or an older one,
    // is the one to resume; a resumed run repeats what is missing.
    std::string why;
    for (const fs::path& candidate : {dir / "last.safetensors", dir / "best.safetensors"}) {
      if (!fs::is_regular_file(candidate)) continue;
      try {
        read_checkpoint_metadata(candidate.string());
        return candidate.string();
      } catch (const Error& e) {
        if (why.empty()) why = e.what();
      }
    }
    OSPREY_CHECK(why.empty(), "no readable checkpoint in '", dir.string(), "': ", why);
  }
  fail("no checkpoint at '", run_or_file, "' (looked for the file itself, ", run_or_file,
       "/{last,best}.safetensors and ", in_runs.string(), "/{last,best}.safetensors)");
}

TrainConfig config_from_checkpoint(const std::string& path) {
  CheckpointMetadata meta = read_checkpoint_metadata(path);
  auto it = meta.find("config");
  OSPREY_CHECK(it != meta.end(), "checkpoint '", path, "' has no training config in its metadata");
  TrainConfig cfg;
  check_json_depth(it->second, "checkpoint '" + printable(path) + "': metadata 'config'");
  json j = json::parse(it->second, nullptr, false);
  OSPREY_CHECK(!j.is_discarded(), "checkpoint '", path, "' has an unreadable config");
  apply_json(cfg, j, "checkpoint '" + path + "'");
  return cfg;
}

}  // namespace osprey::tools
