#include "tools/data_get.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "engine/parse.h"
#include "kernels/error.h"
#include "tools/archive.h"
#include "tools/checksum.h"
#include "tools/cli_suggest.h"
#include "tools/dataset_sources.h"
#include "tools/download.h"

namespace osprey::tools {
namespace {

namespace fs = std::filesystem;

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

std::string missing_expected(const DatasetSource& src, const fs::path& dir) {
  for (const std::string& rel : src.expected)
    if (!is_file(dir / rel)) return rel;
  return "";
}

// The catalogue's files with the command line's --url and --sha256 applied.
std::vector<SourceFile> resolve_files(const DatasetSource& src, const DataGetOptions& o) {
  std::vector<SourceFile> files = src.files;
  if (!o.url.empty()) {
    const bool one = files.size() == 1;
    const std::string base = o.url.back() == '/' ? o.url : o.url + "/";
    for (SourceFile& f : files) f.url = one ? o.url : base + f.name;
  }
  for (const std::string& given : o.sha256) {
    const size_t eq = given.find('=');
    const std::string name = eq == std::string::npos ? "" : given.substr(0, eq);
    const std::string hex = eq == std::string::npos ? given : given.substr(eq + 1);
    OSPREY_USAGE_CHECK(is_hex_digest(hex, 64), "data get: --sha256 '", printable(given),
                       "': expected 64 hex digits (or FILE=HEX)");
    OSPREY_USAGE_CHECK(!name.empty() || files.size() == 1, "data get: ", src.name, " has ",
                       files.size(), " files: give --sha256 FILE=HEX for each");
    bool found = false;
    for (SourceFile& f : files)
      if (name.empty() || f.name == name) {
        f.sha256 = hex;
        f.md5.clear();
        f.size = -1;
        found = true;
      }
    OSPREY_USAGE_CHECK(found, "data get: --sha256 names '", printable(name), "', not a file of ",
                       src.name);
  }
  return files;
}

// What is wrong with the file as a copy of f, or "" when its size and checksums agree.
std::string problem(const fs::path& path, const SourceFile& f) {
  const int64_t size = int64_t(fs::file_size(path));
  if (f.size >= 0 && size != f.size)
    return "it is " + std::to_string(size) + " bytes, expected " + std::to_string(f.size);
  const std::string sha = file_digest(path.string(), "sha256");
  if (!f.sha256.empty() && sha != f.sha256)
    return "its SHA-256 is " + sha + ", expected " + f.sha256;
  if (!f.md5.empty()) {
    const std::string md5 = file_digest(path.string(), "md5");
    if (md5 != f.md5) return "its MD5 is " + md5 + ", expected " + f.md5;
  }
  if (f.sha256.empty() && f.md5.empty())
    std::printf("%s: no known checksum; the SHA-256 of %s is %s (--sha256 %s checks a copy)\n",
                f.name.c_str(), printable(path.string()).c_str(), sha.c_str(), sha.c_str());
  return "";
}

// Copies from to target through a temporary name in the same folder.
void copy_into_place(const fs::path& from, const fs::path& target) {
  const fs::path tmp = target.parent_path() /
                       ("." + target.filename().string() + ".tmp." + std::to_string(::getpid()));
  try {
    fs::copy_file(from, tmp, fs::copy_options::overwrite_existing);
    fs::rename(tmp, target);
  } catch (const fs::filesystem_error& e) {
    std::error_code ec;
    fs::remove(tmp, ec);
    fail("cannot copy ", printable(from.string()), " to ", printable(target.string()), ": ",
         e.code().message());
  }
}

// Where a checked download of f is kept: its own name, or, when the file may be an archive that
// holds the data under that name (tmnist), a name of its own, so that the data's name never
// holds an archive (not even between a rename and the unpacking) and a failed unpacking leaves
// the download for the next run to use.
fs::path kept_path(const SourceFile& f, const DatasetSource& src, const fs::path& dir) {
  return dir / (src.unpack == DatasetSource::Unpack::when_archive ? f.name + ".download" : f.name);
}

// Downloads f into target through target.part, deleting a copy that fails its check.
fs::path download_file(const SourceFile& f, const fs::path& target) {
  const fs::path part = target.string() + ".part";
  if (is_file(part))
    std::printf("%s: resuming from the %lld bytes in %s\n", f.name.c_str(),
                (long long)fs::file_size(part), part.c_str());
  std::printf("%s: downloading %s\n", f.name.c_str(), printable(f.url).c_str());
  std::fflush(stdout);
  download({f.url, part.string(), f.name, f.size});
  const std::string bad = problem(part, f);
  if (!bad.empty()) {
    fs::remove(part);
    fail("download of ", printable(f.url), " is not the published file: ", bad,
         "; the download was deleted");
  }
  fs::rename(part, target);
  return target;
}

// A checked copy of f: --from's (used where it is), one already kept in dir, or a download.
fs::path obtain(const SourceFile& f, const DatasetSource& src, const fs::path& dir,
                const DataGetOptions& o) {
  if (!o.from.empty()) {
    const fs::path from = fs::is_directory(o.from) ? fs::path(o.from) / f.name : fs::path(o.from);
    if (!is_file(from)) fail("--from: ", printable(from.string()), " is not a file");
    const std::string bad = problem(from, f);
    if (!bad.empty())
      fail(printable(from.string()), " is not the published ", f.name, ": ", bad,
           "; it was not used");
    return from;
  }
  const fs::path target = kept_path(f, src, dir);
  if (is_file(target)) {
    const std::string bad = problem(target, f);
    if (bad.empty()) return target;
    std::printf("%s: the copy in %s is not the published file (%s); deleted, downloading again\n",
                f.name.c_str(), dir.c_str(), bad.c_str());
    fs::remove(target);
  }
  return download_file(f, target);
}

void unpack(const fs::path& archive, const fs::path& dir, bool ours) {
  std::printf("%s: unpacking into %s\n", archive.filename().c_str(), dir.c_str());
  std::fflush(stdout);
  for (const std::string& name : extract_archive(archive.string(), dir.string()))
    std::printf("  %s\n", name.c_str());
  if (ours) fs::remove(archive);  // its content is in place; --from's copy is the user's
}

void place(const SourceFile& f, const DatasetSource& src, const fs::path& dir,
           const DataGetOptions& o) {
  const fs::path got = obtain(f, src, dir, o);
  const bool ours = o.from.empty();
  using U = DatasetSource::Unpack;
  if (src.unpack == U::always || (src.unpack == U::when_archive && looks_like_archive(got)))
    unpack(got, dir, ours);
  else if (!ours)
    copy_into_place(got, dir / f.name);
  else if (got != dir / f.name)
    fs::rename(got, dir / f.name);  // a checked download that is the data itself
}

}  // namespace

void data_get(const DataGetOptions& o) {
  const DatasetSource* src = find_dataset_source(o.name);
  if (!src) {
    const std::vector<std::string> names = dataset_source_names();
    const std::string near = closest_match(o.name, names);
    std::string known;
    for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
    usage_fail("data get: unknown dataset '", printable(o.name), "'",
               near.empty() ? "" : " (did you mean '" + near + "'?)", "; known: ", known);
  }
  const std::vector<SourceFile> files = resolve_files(*src, o);
  OSPREY_USAGE_CHECK(o.from.empty() || fs::exists(o.from), "data get: --from ", printable(o.from),
                     " does not exist");
  for (const SourceFile& f : files)
    OSPREY_USAGE_CHECK(!f.url.empty() || !o.from.empty(), "data get: ", src->name, " (", f.name,
                       ") has no stable public URL: give --url URL or --from FILE");
  const fs::path dir(o.dir);
  fs::create_directories(dir);
  if (missing_expected(*src, dir).empty() && o.from.empty()) {
    std::printf("%s is already in %s\n", src->name.c_str(), dir.c_str());
    return;
  }
  for (const SourceFile& f : files) place(f, *src, dir, o);
  const std::string missing = missing_expected(*src, dir);
  if (!missing.empty())
    fail("data get: ", src->name, " is incomplete in ", printable(dir.string()), ": no ", missing,
         " (the archive did not hold it)");
  const fs::path data_dir = src->data_dir_is_file ? dir / src->expected[0] : dir;
  std::printf("%s is in %s: train with --set data_dir=%s\n", src->name.c_str(), dir.c_str(),
              data_dir.c_str());
}

}  // namespace osprey::tools
