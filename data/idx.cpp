#include "data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "engine/parse.h"
#include "kernels/error.h"

namespace osprey::data {
namespace {

constexpr uint32_t kImageMagic = 0x00000803;  // uint8 data, 3 dimensions
constexpr uint32_t kLabelMagic = 0x00000801;  // uint8 data, 1 dimension
constexpr uint32_t kMaxDim = 1u << 16;

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

// A byte stream over a raw or gzip file. Offsets are positions in the decompressed data, which
// is what the IDX header describes, so error messages can point at the field at fault. Gzip is
// inflated here rather than through gzread, which silently ignores a missing trailer (no CRC
// check) and garbage after the stream.
class Source {
 public:
  explicit Source(const std::string& path) : path_(printable(path)), in_(kInSize) {
    file_ = std::fopen(path.c_str(), "rb");
    if (!file_) fail("file ", path_, ": cannot open: ", std::strerror(errno));
    fill_input();
    gzip_ = avail_ >= 2 && in_[0] == 0x1f && in_[1] == 0x8b;
    if (!gzip_) return;
    zs_.next_in = in_.data();
    zs_.avail_in = unsigned(avail_);
    // 16 + MAX_WBITS: gzip wrapper only, with its CRC-32 and length checked by inflate.
    if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK)
      fail("file ", path_, ": cannot initialize zlib: ", zs_.msg ? zs_.msg : "out of memory");
    zinit_ = true;
  }
  ~Source() {
    if (zinit_) inflateEnd(&zs_);
    if (file_) std::fclose(file_);
  }
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  // Reads up to n bytes; fewer only at end of data. I/O and corrupt-stream errors throw.
  size_t read(void* dst, size_t n) {
    auto* p = static_cast<unsigned char*>(dst);
    size_t total = gzip_ ? inflate_into(p, n) : read_raw(p, n);
    offset_ += total;
    return total;
  }

  uint64_t offset() const { return offset_; }

  // Appended to truncation messages: a cut-short .gz is the usual cause of a short read.
  std::string truncation_note() const {
    if (!gzip_) return "";
    return cut_short_ ? " (the gzip stream itself is cut short)" : " (decompressed)";
  }

  // Trailing bytes mean the header does not describe the file; reading on would hide that.
  void expect_end() {
    const uint64_t end = offset_;
    unsigned char buf[4096];
    uint64_t extra = 0;
    for (size_t got; (got = read(buf, sizeof buf)) > 0;) extra += got;
    if (extra > 0)
      fail("file ", path_, ": ", extra, " unexpected trailing byte(s) after offset ", end,
           " where the data described by the header ends");
    if (cut_short_)
      fail("file ", path_, ": the gzip stream is cut short after all ", end,
           " data bytes (its trailer is missing, so the CRC cannot be checked)");
  }

 private:
  static constexpr size_t kInSize = size_t(1) << 18;

  // Moves unread input to the front and reads more behind it; false at end of file.
  bool fill_input() {
    if (avail_ > 0 && pos_ > 0) std::memmove(in_.data(), in_.data() + pos_, avail_);
    pos_ = 0;
    size_t got = std::fread(in_.data() + avail_, 1, kInSize - avail_, file_);
    if (got == 0 && std::ferror(file_))
      fail("file ", path_, ": read error after data offset ", offset_, ": ", std::strerror(errno));
    avail_ += got;
    return got > 0;
  }

  size_t read_raw(unsigned char* p, size_t n) {
    size_t total = 0;
    while (total < n) {
      if (avail_ == 0 && !fill_input()) break;
      size_t take = std::min(n - total, avail_);
      std::memcpy(p + total, in_.data() + pos_, take);
      pos_ += take;
      avail_ -= take;
      total += take;
    }
    return total;
  }

  size_t inflate_into(unsigned char* p, size_t n) {
    size_t total = 0;
    while (total < n && !finished_) {
      if (zs_.avail_in == 0) {
        avail_ = 0;
        pos_ = 0;
        if (!fill_input()) {
          cut_short_ = true;
          break;
        }
        zs_.next_in = in_.data();
        zs_.avail_in = unsigned(avail_);
      }
      const size_t want = std::min<size_t>(n - total, size_t(1) << 30);
      zs_.next_out = p + total;
      zs_.avail_out = unsigned(want);
      const unsigned in_before = zs_.avail_in;
      const int r = inflate(&zs_, Z_NO_FLUSH);
      total += want - zs_.avail_out;
      consumed_ += in_before - zs_.avail_in;
      if (r == Z_STREAM_END) {
        next_member();
      } else if (r != Z_OK && r != Z_BUF_ERROR) {
        fail("file ", path_, ": corrupt gzip data at compressed byte ", consumed_,
             " (decompressed offset ", offset_ + total, "): ", zs_.msg ? zs_.msg : "zlib error");
      }
    }
    return total;
  }

  // A .gz may hold several concatenated members; anything else after a member is garbage.
  void next_member() {
    pos_ = size_t(zs_.next_in - in_.data());
    avail_ = zs_.avail_in;
    while (avail_ < 2 && fill_input()) {
    }
    if (avail_ == 0) {
      finished_ = true;
      return;
    }
    if (avail_ < 2 || in_[pos_] != 0x1f || in_[pos_ + 1] != 0x8b)
      fail("file ", path_,
           ": unexpected bytes after the end of the gzip stream at compressed byte ", consumed_);
    inflateReset(&zs_);
    zs_.next_in = in_.data() + pos_;
    zs_.avail_in = unsigned(avail_);
  }

  std::string path_;
  FILE* file_ = nullptr;
  std::vector<unsigned char> in_;
  size_t pos_ = 0, avail_ = 0;  // unread input: in_[pos_, pos_ + avail_)
  uint64_t consumed_ = 0;       // compressed bytes consumed by inflate
  z_stream zs_{};
  bool gzip_ = false, zinit_ = false, finished_ = false, cut_short_ = false;
  uint64_t offset_ = 0;
};

uint32_t be32(const unsigned char* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

// Reads the magic and the dims; returns dims. ndims is fixed by the expected magic.
std::vector<uint32_t> read_header(Source& src, const std::string& path, uint32_t want_magic,
                                  int ndims, const char* what) {
  const size_t header_bytes = 4 + 4 * size_t(ndims);
  unsigned char hdr[16];
  size_t got = src.read(hdr, 4);
  if (got == 4) {
    uint32_t magic = be32(hdr);
    if (magic != want_magic)
      fail("file ", printable(path), ": bad magic ", hex32(magic), " at offset 0, expected ",
           hex32(want_magic), " (IDX ", what, ")");
    got += src.read(hdr + 4, header_bytes - 4);
  }
  if (got < header_bytes)
    fail("file ", printable(path), ": truncated header: expected ", header_bytes, " bytes, got ",
         got, src.truncation_note());
  static const char* const kNames[] = {"count", "rows", "cols"};
  std::vector<uint32_t> dims(ndims);
  for (int i = 0; i < ndims; ++i) {
    dims[i] = be32(hdr + 4 + 4 * i);
    const uint32_t limit = i == 0 ? uint32_t(INT32_MAX) : kMaxDim;
    if (dims[i] == 0 || dims[i] > limit)
      fail("file ", printable(path), ": bad ", kNames[i], " ", dims[i], " at offset ", 4 + 4 * i,
           ": must be in [1, ", limit, "]");
  }
  return dims;
}

// Reads exactly n bytes of payload. The buffer grows as data arrives rather than trusting the
// header up front, so a corrupt header claiming terabytes fails as "truncated", not bad_alloc.
void read_payload(Source& src, const std::string& path, uint64_t n, const char* what,
                  std::vector<uint8_t>& out) {
  const uint64_t start = src.offset();
  constexpr uint64_t kStep = uint64_t(64) << 20;
  out.clear();
  uint64_t have = 0;
  while (have < n) {
    uint64_t next = std::min(n, std::max(kStep, have * 2));
    out.resize(next);
    size_t got = src.read(out.data() + have, next - have);
    have += got;
    if (have < next) {
      out.resize(have);
      fail("file ", printable(path), ": truncated: expected ", n, " bytes of ", what,
           " after offset ", start, ", got ", have, src.truncation_note());
    }
  }
  src.expect_end();
}

std::string lower(std::string s) {
  for (char& ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// Returns the first of name, name.gz that exists in dir, or "" if neither does.
std::string find_in(const std::filesystem::path& dir, const std::string& name) {
  for (const std::string& candidate : {name, name + ".gz"}) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(dir / candidate, ec)) return (dir / candidate).string();
  }
  return "";
}

}  // namespace

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                 "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

Dataset read_idx(const std::string& images_path, const std::string& labels_path) {
  Dataset ds;
  {
    Source src(images_path);
    std::vector<uint32_t> dims = read_header(src, images_path, kImageMagic, 3, "uint8 images");
    ds.n = int(dims[0]);
    ds.h = int(dims[1]);
    ds.w = int(dims[2]);
    ds.c = 1;
    read_payload(src, images_path, uint64_t(ds.n) * ds.image_size(), "pixel data", ds.pixels);
  }
  std::vector<uint8_t> raw_labels;
  {
    Source src(labels_path);
    std::vector<uint32_t> dims = read_header(src, labels_path, kLabelMagic, 1, "uint8 labels");
    // Checked before reading the payload: a mismatch usually means mixed-up files, and that
    // is a better message than the truncation or trailing-bytes error it would also cause.
    if (int64_t(dims[0]) != ds.n)
      fail("label/image count mismatch: images file ", printable(images_path), " has ", ds.n,
           " images but labels file ", printable(labels_path), " has ", dims[0], " labels");
    read_payload(src, labels_path, dims[0], "label data", raw_labels);
  }
  // uint8 labels are always < 256, so num_classes is at most 256.
  ds.labels.assign(raw_labels.begin(), raw_labels.end());
  ds.num_classes = 1 + *std::max_element(raw_labels.begin(), raw_labels.end());
  ds.class_names.clear();
  for (int k = 0; k < ds.num_classes; ++k) ds.class_names.push_back(std::to_string(k));
  return ds;
}

Dataset load_idx_dataset(const std::string& dir, bool train, const std::string& name) {
  const std::string prefix = train ? "train" : "t10k";
  const std::string images_name = prefix + "-images-idx3-ubyte";
  const std::string labels_name = prefix + "-labels-idx1-ubyte";
  const std::string looked_for = images_name + "[.gz] and " + labels_name + "[.gz]";
  const std::filesystem::path d(dir);
  std::error_code ec;
  if (!std::filesystem::is_directory(d, ec))
    fail("dataset directory ", printable(dir), " does not exist or is not a directory (looked for ",
         looked_for, ")");
  const std::string images = find_in(d, images_name);
  const std::string labels = find_in(d, labels_name);
  if (images.empty() || labels.empty())
    fail("dataset directory ", printable(dir), ": missing ",
         images.empty() ? images_name + " (or " + images_name + ".gz)" : "",
         images.empty() && labels.empty() ? " and " : "",
         labels.empty() ? labels_name + " (or " + labels_name + ".gz)" : "");

  Dataset ds = read_idx(images, labels);
  ds.name = name;
  if (ds.name.empty()) {
    std::filesystem::path p = d;
    if (!p.has_filename()) p = p.parent_path();  // "dir/" has an empty filename
    ds.name = p.filename().string();
  }
  if (ds.num_classes == 10 && lower(ds.name).find("fashion") != std::string::npos)
    ds.class_names = fashion_mnist_class_names();
  return ds;
}

}  // namespace osprey::data
