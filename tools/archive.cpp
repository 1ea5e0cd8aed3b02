#include "tools/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "engine/parse.h"
#include "kernels/error.h"

namespace osprey::tools {
namespace {

namespace fs = std::filesystem;

using Reader = std::unique_ptr<archive, int (*)(archive*)>;

// The name as the entry gives it, refused unless it stays inside the folder.
std::string checked_name(archive_entry* entry, const std::string& archive_name) {
  const char* raw = archive_entry_pathname(entry);
  const std::string name = raw ? raw : "";
  const fs::path p(name);
  bool ok = !name.empty() && !p.is_absolute() && name.find('\\') == std::string::npos;
  for (const fs::path& part : p)
    if (part == "..") ok = false;
  if (!ok)
    fail("archive ", archive_name, ": entry '", printable(name),
         "' would be written outside the target folder; refused, nothing was extracted");
  const auto type = archive_entry_filetype(entry);
  if ((type != AE_IFREG && type != AE_IFDIR) || archive_entry_hardlink(entry))
    fail("archive ", archive_name, ": entry '", printable(name),
         "' is a link or special file; only files and folders are extracted, nothing was");
  return name;
}

// What an archive may unpack, and what it has so far.
struct Budget {
  int64_t max_bytes, max_entries;
  int64_t bytes = 0, entries = 0;
};

void copy_data(archive* in, archive* out, const std::string& archive_name, const std::string& entry,
               Budget& used) {
  const void* block;
  size_t size;
  la_int64_t offset;
  for (;;) {
    const int rc = archive_read_data_block(in, &block, &size, &offset);
    if (rc == ARCHIVE_EOF) return;
    if (rc < ARCHIVE_WARN)
      fail("archive ", archive_name, ": entry '", printable(entry),
           "' cannot be read: ", archive_error_string(in));
    used.bytes += int64_t(size);
    if (used.bytes > used.max_bytes)
      fail("archive ", archive_name, ": unpacks to more than the ", used.max_bytes,
           " bytes allowed (at '", printable(entry), "'); refused, nothing was extracted");
    if (archive_write_data_block(out, block, size, offset) < ARCHIVE_WARN)
      fail("archive ", archive_name, ": cannot write '", printable(entry),
           "': ", archive_error_string(out));
  }
}

// Every entry into tmp, which exists and is empty.
void unpack(const std::string& archive_path, const fs::path& tmp, Budget used) {
  const std::string name = printable(archive_path);
  Reader in(archive_read_new(), archive_read_free);
  Reader out(archive_write_disk_new(), archive_write_free);
  OSPREY_CHECK(in && out, "libarchive: out of memory");
  archive_read_support_filter_all(in.get());
  archive_read_support_format_all(in.get());
  // libarchive's own guards too, in case a name slipped past checked_name. The names written
  // are tmp/NAME, absolute on purpose: tmp is canonical, so no ".." or symlink of its own trips
  // them.
  archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                                ARCHIVE_EXTRACT_SECURE_SYMLINKS);
  if (archive_read_open_filename(in.get(), archive_path.c_str(), 1 << 16) != ARCHIVE_OK)
    fail("archive ", name, ": cannot open: ", archive_error_string(in.get()));
  archive_entry* entry;
  for (int rc; (rc = archive_read_next_header(in.get(), &entry)) != ARCHIVE_EOF;) {
    if (rc < ARCHIVE_WARN)
      fail("archive ", name,
           ": cannot read it (truncated or not an archive?): ", archive_error_string(in.get()));
    const std::string entry_name = checked_name(entry, name);
    if (++used.entries > used.max_entries)
      fail("archive ", name, ": more than the ", used.max_entries,
           " entries allowed; refused, nothing was extracted");
    archive_entry_set_pathname(entry, (tmp / entry_name).c_str());
    archive_entry_set_perm(entry, archive_entry_filetype(entry) == AE_IFDIR ? 0755 : 0644);
    if (archive_write_header(out.get(), entry) < ARCHIVE_WARN)
      fail("archive ", name, ": cannot write '", printable(entry_name),
           "': ", archive_error_string(out.get()));
    if (archive_entry_filetype(entry) == AE_IFREG)
      copy_data(in.get(), out.get(), name, entry_name, used);
    if (archive_write_finish_entry(out.get()) < ARCHIVE_WARN)
      fail("archive ", name, ": cannot write '", printable(entry_name),
           "': ", archive_error_string(out.get()));
  }
  if (archive_write_close(out.get()) != ARCHIVE_OK)
    fail("archive ", name, ": cannot finish writing: ", archive_error_string(out.get()));
}

// Removes the temporary folder however the extraction ends.
struct TempDir {
  fs::path path;
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

bool looks_like_archive(const std::string& path) {
  unsigned char head[262] = {};
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f) return false;
  const size_t n = std::fread(head, 1, sizeof head, f.get());
  auto starts = [&](const char* magic, size_t len) {
    return n >= len && std::memcmp(head, magic, len) == 0;
  };
  return starts("\x1f\x8b", 2) || starts("PK\x03\x04", 4) || starts("BZh", 3) ||
         starts(
             "\xfd"
             "7zXZ",
             5) ||
         (n >= 262 && std::memcmp(head + 257, "ustar", 5) == 0);
}

std::vector<std::string> extract_archive(const std::string& archive_path, const std::string& dir,
                                         int64_t max_bytes, int64_t max_entries) {
  std::string pattern = (fs::path(dir) / ".osprey-extract-XXXXXX").string();
  if (!::mkdtemp(pattern.data()))
    fail("cannot create a temporary folder in ", printable(dir), ": ", std::strerror(errno));
  TempDir tmp{fs::canonical(pattern)};
  unpack(archive_path, tmp.path, {max_bytes, max_entries});
  std::vector<std::string> placed;
  for (const fs::directory_entry& e : fs::directory_iterator(tmp.path)) {
    const fs::path target = fs::path(dir) / e.path().filename();
    fs::remove_all(target);
    fs::rename(e.path(), target);
    placed.push_back(e.path().filename().string());
  }
  return placed;
}

}  // namespace osprey::tools
