#include "engine/pth.h"

#include <zip.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "engine/parse.h"
#include "engine/torch_pickle.h"

namespace osprey {
namespace {

using Kind = PickleValue::Kind;

// data.pkl of a state_dict is a few hundred bytes a tensor; a storage may be large.
constexpr zip_uint64_t kMaxPickleBytes = zip_uint64_t(1) << 28;
constexpr zip_uint64_t kMaxStorageBytes = zip_uint64_t(1) << 36;

class ZipArchive {
 public:
  ZipArchive(const std::string& path, const std::string& what) : what_(what) {
    std::error_code ec;
    file_bytes_ = std::filesystem::file_size(path, ec);
    if (ec) fail(what_, ": cannot read it: ", ec.message());
    int code = 0;
    zip_ = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code);
    if (!zip_) {
      zip_error_t err;
      zip_error_init_with_code(&err, code);
      const std::string msg = zip_error_strerror(&err);
      zip_error_fini(&err);
      fail(what_, " is not a readable zip archive (truncated or corrupt?): ", msg);
    }
  }
  ~ZipArchive() { zip_discard(zip_); }
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  // The folder torch.save put everything in: the X of the one "X/data.pkl".
  std::string prefix() const {
    const zip_int64_t n = zip_get_num_entries(zip_, 0);
    for (zip_int64_t i = 0; i < n; ++i) {
      const char* c = zip_get_name(zip_, zip_uint64_t(i), 0);
      const std::string name = c ? c : "";
      const size_t slash = name.find('/');
      if (slash != std::string::npos && slash > 0 && name.substr(slash) == "/data.pkl")
        return name.substr(0, slash);
    }
    fail(what_, " has no <prefix>/data.pkl: not a file of torch.save (PyTorch >= 1.6)");
  }

  std::string read(const std::string& name, zip_uint64_t limit) const {
    zip_stat_t st;
    zip_stat_init(&st);
    OSPREY_CHECK(zip_stat(zip_, name.c_str(), 0, &st) == 0 && (st.valid & ZIP_STAT_SIZE), what_,
                 " has no entry '", printable(name), "'");
    OSPREY_CHECK(st.size <= limit, what_, ": entry '", printable(name), "' of ", st.size,
                 " bytes is over the limit of ", limit);
    // Nothing is allocated for a size the file cannot hold: a stored entry (what torch.save
    // writes) fits in the archive; a compressed one may claim any size (a zip bomb), so it gets
    // the pickle's smaller limit.
    const bool stored = (st.valid & ZIP_STAT_COMP_METHOD) && st.comp_method == ZIP_CM_STORE;
    OSPREY_CHECK(stored ? st.size <= file_bytes_ : st.size <= kMaxPickleBytes, what_, ": entry '",
                 printable(name), "' claims ", st.size, " bytes, more than ",
                 stored ? "the archive holds" : "the limit for a compressed entry");
    zip_file_t* f = zip_fopen(zip_, name.c_str(), 0);
    OSPREY_CHECK(f, what_, ": cannot open entry '", printable(name), "': ", zip_strerror(zip_));
    std::string out(size_t(st.size), '\0');
    zip_uint64_t done = 0;
    zip_int64_t got = 1;
    while (done < st.size && (got = zip_fread(f, out.data() + done, st.size - done)) > 0)
      done += zip_uint64_t(got);
    char past_end;
    if (got > 0) got = zip_fread(f, &past_end, 1);  // reading to the end checks the CRC
    const std::string err = got < 0 ? zip_file_strerror(f) : "";
    zip_fclose(f);
    OSPREY_CHECK(got == 0 && done == st.size, what_, ": entry '", printable(name),
                 "' is truncated or corrupt", err.empty() ? "" : ": ", err);
    return out;
  }

 private:
  std::string what_;
  uintmax_t file_bytes_ = 0;
  zip_t* zip_ = nullptr;
};

// Tensor names as the model had them before DDP or torch.compile wrapped it.
std::string unwrapped_name(std::string name) {
  for (bool again = true; again;) {
    again = false;
    for (const char* p : {"module.", "_orig_mod."})
      if (name.rfind(p, 0) == 0 && name.size() > std::strlen(p)) {
        name.erase(0, std::strlen(p));
        again = true;
      }
  }
  return name;
}

bool is_tensor_dict(const PickleValue* v) {
  if (v->kind != Kind::dict || v->entries.empty()) return false;
  for (const auto& kv : v->entries)
    if (kv.second->kind != Kind::tensor) return false;
  return true;
}

// The root dict, or the dict of tensors a training checkpoint keeps under one of these keys.
const PickleValue& state_dict_of(const PickleValue& root, const std::string& what) {
  OSPREY_CHECK(root.kind == Kind::dict, what, " holds ", pickle_kind_name(root.kind),
               ", not a state_dict");
  for (const char* key : {"state_dict", "model"})
    for (const auto& [k, v] : root.entries)
      if (k->kind == Kind::string && k->s == key && is_tensor_dict(v)) return *v;
  return root;
}

std::vector<int64_t> contiguous_strides(const Shape& sizes) {
  std::vector<int64_t> strides(sizes.size(), 1);
  for (size_t d = sizes.size(); d-- > 1;) strides[d - 1] = strides[d] * sizes[d];
  return strides;
}

// The elements of tensor `t` from its storage's bytes, in row-major order: offsets and strides
// are checked against the storage first, so a hostile file cannot make us read outside it.
std::vector<uint8_t> gather(const PickleValue& t, const std::string& storage, size_t es,
                            const std::string& what) {
  int64_t numel = 1, last = t.offset;
  for (size_t d = 0; d < t.sizes.size(); ++d) {
    numel = checked_mul(numel, t.sizes[d], what + ": size");
    if (t.sizes[d] > 0)
      last = checked_add(last, checked_mul(t.sizes[d] - 1, t.strides[d], what), what);
  }
  const int64_t storage_numel = t.storage->i;
  OSPREY_CHECK(numel == 0 || last < storage_numel, what, ": offset ", t.offset, ", size ",
               shape_str(t.sizes), " and stride ", shape_str(t.strides), " reach element ", last,
               " of a storage of ", storage_numel, " elements");
  OSPREY_CHECK(uint64_t(numel) <= kMaxStorageBytes / es, what, " of size ", shape_str(t.sizes),
               " is over the limit of ", kMaxStorageBytes, " bytes");
  if (numel == 0) return {};
  std::vector<uint8_t> out(size_t(numel) * es);
  const auto* src = reinterpret_cast<const uint8_t*>(storage.data());
  if (t.strides == contiguous_strides(t.sizes)) {
    std::memcpy(out.data(), src + size_t(t.offset) * es, out.size());
    return out;
  }
  std::vector<int64_t> index(t.sizes.size(), 0);
  for (int64_t i = 0; i < numel; ++i) {
    int64_t at = t.offset;
    for (size_t d = 0; d < index.size(); ++d) at += index[d] * t.strides[d];
    std::memcpy(out.data() + size_t(i) * es, src + size_t(at) * es, es);
    for (size_t d = index.size(); d-- > 0;) {
      if (++index[d] < t.sizes[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

}  // namespace

SafeTensorsFile read_pth(const std::string& path) {
  const std::string what = "'" + printable(path) + "'";
  ZipArchive zip(path, what);
  const std::string prefix = zip.prefix();
  const TorchPickle pickle(what, zip.read(prefix + "/data.pkl", kMaxPickleBytes));
  std::map<std::string, std::string> storages;  // by key: shared by the views of one tensor
  std::map<std::string, SafeTensorEntry> entries;
  for (const auto& [key, value] : state_dict_of(pickle.root(), what).entries) {
    OSPREY_CHECK(key->kind == Kind::string, what, ": a state_dict key is ",
                 pickle_kind_name(key->kind), ", not a name");
    const std::string name = unwrapped_name(key->s);
    const std::string tensor = what + ": tensor '" + printable(key->s) + "'";
    OSPREY_CHECK(value->kind == Kind::tensor, tensor, " is ", pickle_kind_name(value->kind),
                 ", not a tensor (only a dict of tensors is read)");
    const PickleValue& storage = *value->storage;
    const size_t es = safetensors_element_size(storage.dtype);
    auto it = storages.find(storage.s);
    if (it == storages.end())
      it = storages.emplace(storage.s, zip.read(prefix + "/data/" + storage.s, kMaxStorageBytes))
               .first;
    const int64_t need = checked_mul(storage.i, int64_t(es), tensor + ": storage");
    OSPREY_CHECK(uint64_t(need) == it->second.size(), tensor, ": its storage '",
                 printable(storage.s), "' of ", storage.i, " ", storage.dtype, " elements needs ",
                 need, " bytes but data/", printable(storage.s), " has ", it->second.size());
    SafeTensorEntry e{storage.dtype, value->sizes, gather(*value, it->second, es, tensor)};
    OSPREY_CHECK(entries.emplace(name, std::move(e)).second, what, ": two tensors are named '",
                 printable(name), "' once 'module.' / '_orig_mod.' are dropped");
  }
  return SafeTensorsFile::from_entries("PyTorch file", path, std::move(entries));
}

SafeTensorsFile read_tensor_file(const std::string& path) {
  char magic[4] = {};
  // A file that cannot be opened goes to the safetensors reader, whose errors callers know.
  std::ifstream in(path, std::ios::binary);
  in.read(magic, 4);
  if (in.gcount() == 4 && std::memcmp(magic, "PK\x03\x04", 4) == 0) return read_pth(path);
  return SafeTensorsFile::read(path);
}

}  // namespace osprey
