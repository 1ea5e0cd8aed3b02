#include "dist/agreement.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "engine/parse.h"
#include "kernels/error.h"

namespace osprey::dist {
namespace {

constexpr int kNameBytes = 32;

// Fixed size, so that one broadcast carries it whatever the settings are; all plain bytes.
struct Fingerprint {
  int64_t count = 0;
  uint64_t hash[kMaxSettings] = {};
  char name[kMaxSettings][kNameBytes] = {};
  char value[kMaxSettings][kShownValueChars + 1] = {};
};
static_assert(sizeof(Fingerprint) % sizeof(int64_t) == 0, "broadcast as int64 words");

uint64_t fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

void copy_text(char* out, size_t bytes, const std::string& s) {
  std::string shown = s.size() < bytes ? s : s.substr(0, bytes - 4) + "...";
  std::memcpy(out, shown.data(), shown.size());
  out[shown.size()] = '\0';
}

Fingerprint fingerprint(const std::vector<Setting>& settings) {
  OSPREY_CHECK(settings.size() <= size_t(kMaxSettings), "rank agreement: ", settings.size(),
               " settings, at most ", kMaxSettings);
  Fingerprint f;
  f.count = int64_t(settings.size());
  for (size_t i = 0; i < settings.size(); ++i) {
    // The name is hashed too: ranks running different builds compare different lists.
    uint64_t h = fnv1a(settings[i].value, fnv1a(settings[i].name + '\0'));
    f.hash[i] = h == 0 ? 1 : h;  // 0 marks "no setting here"
    copy_text(f.name[i], kNameBytes, settings[i].name);
    copy_text(f.value[i], sizeof f.value[i], settings[i].value);
  }
  return f;
}

void share(Communicator& comm, Fingerprint& f, int root) {
  comm.broadcast(reinterpret_cast<int64_t*>(&f), int64_t(sizeof f / sizeof(int64_t)), root);
}

int first_difference(const Fingerprint& a, const Fingerprint& b) {
  for (int i = 0; i < int(std::max(a.count, b.count)); ++i)
    if (a.hash[i] != b.hash[i]) return i;
  return -1;
}

std::string value_at(const Fingerprint& f, int i) {
  return i < f.count ? printable(f.value[i]) : std::string("no such setting");
}

}  // namespace

void require_same_settings(Communicator& comm, const std::vector<Setting>& settings) {
  Fingerprint mine = fingerprint(settings);
  if (comm.size() == 1) return;
  Fingerprint ref = mine;
  share(comm, ref, 0);
  // differs[r] = 1 + the first setting where rank r differs from rank 0, or 0.
  std::vector<int64_t> differs(size_t(comm.size()), 0);
  differs[size_t(comm.rank())] = first_difference(ref, mine) + 1;
  comm.allreduce_sum(differs.data(), int64_t(differs.size()));
  int first_rank = -1;
  std::string ranks;
  for (int r = 0; r < comm.size(); ++r)
    if (differs[size_t(r)] != 0) {
      if (first_rank < 0) first_rank = r;
      ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
    }
  if (first_rank < 0) return;
  Fingerprint theirs = mine;
  share(comm, theirs, first_rank);
  const int i = int(differs[size_t(first_rank)]) - 1;
  const Fingerprint& named = i < theirs.count ? theirs : ref;
  fail("the ranks were started with different settings: '", printable(named.name[i]), "' is ",
       value_at(theirs, i), " on rank ", first_rank, " but ", value_at(ref, i),
       " on rank 0 (ranks that differ from rank 0: ", ranks,
       "); every rank must run the same command, config and data");
}

std::string digest(const std::string& text) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)fnv1a(text));
  return hex;
}

std::string layout_digest(const ParamStore& store) {
  std::string text;
  for (const Parameter& p : store.params())
    text += p.name + shape_str(p.value.shape()) + "@" + std::to_string(p.offset) + ";";
  for (const Buffer& b : store.buffers())
    text += b.name + shape_str(b.value.shape()) + dtype_name(b.value.dtype()) + ";";
  return digest(text);
}

}  // namespace osprey::dist
