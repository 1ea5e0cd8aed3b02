#include "data/image_folder.h"

#include <algorithm>
#include <exception>
#include <filesystem>
#include <new>
#include <utility>

#include "engine/parse.h"
#include "kernels/error.h"

namespace osprey::data {
namespace {

namespace fs = std::filesystem;

bool hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

// Sorted entries of dir that satisfy keep (is_directory / is_regular_file follow symlinks).
std::vector<fs::path> sorted_entries(const fs::path& dir, bool (*keep)(const fs::path&)) {
  std::vector<fs::path> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) fail("image folder ", printable(dir.string()), ": cannot list: ", ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) fail("image folder ", printable(dir.string()), ": cannot list: ", ec.message());
    if (!hidden(it->path()) && keep(it->path())) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) {
    return a.filename().string() < b.filename().string();
  });
  return out;
}

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

}  // namespace

Dataset load_image_folder(const std::string& dir, int channels, int height, int width) {
  const std::string folder = "image folder " + printable(dir);
  OSPREY_CHECK(channels == 1 || channels == 3, folder, ": channels must be 1 or 3, got ", channels);
  OSPREY_CHECK(is_dir(dir), folder, " does not exist or is not a directory");
  Dataset ds;
  fs::path root(dir);
  if (!root.has_filename()) root = root.parent_path();  // "dir/" has an empty filename
  ds.name = root.filename().string();

  std::vector<std::pair<fs::path, int64_t>> files;
  for (const fs::path& class_dir : sorted_entries(dir, is_dir)) {
    const std::vector<fs::path> images = sorted_entries(class_dir, is_file);
    OSPREY_CHECK(!images.empty(), folder, ": class folder ", printable(class_dir.string()),
                 " holds no image files");
    for (const fs::path& f : images) files.emplace_back(f, int64_t(ds.class_names.size()));
    ds.class_names.push_back(class_dir.filename().string());
  }
  OSPREY_CHECK(!files.empty(), folder,
               " has no class subfolders (expected dir/<class>/<image>, one folder per class)");
  OSPREY_CHECK(files.size() <= size_t(INT32_MAX), folder, ": too many images (", files.size(), ")");
  ds.num_classes = int(ds.class_names.size());
  ds.n = int(files.size());
  ds.c = channels;

  // The first image fixes the size when none is given; decoding it up front also gives a
  // clear error for it before the parallel loop.
  Image first = load_image(files[0].first.string(), channels);
  const bool fixed = height > 0 && width > 0;
  ds.h = fixed ? height : first.h;
  ds.w = fixed ? width : first.w;
  const int64_t isz = ds.image_size();
  // n x the image size can pass what memory holds: one message instead of std::bad_alloc.
  const int64_t total = checked_mul(ds.n, isz, folder + ": " + std::to_string(ds.n) + " images");
  try {
    ds.pixels.resize(size_t(total));
  } catch (const std::bad_alloc&) {
    fail(folder, ": ", ds.n, " images of ", ds.h, "x", ds.w, "x", ds.c, " need ", total,
         " bytes, more than this machine can allocate");
  }
  ds.labels.resize(size_t(ds.n));

  // Errors are kept per file and the first in file order is reported, so the message does not
  // depend on thread timing.
  std::vector<std::exception_ptr> errors(files.size());
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t i = 0; i < int64_t(files.size()); ++i) {
    try {
      const std::string path = files[size_t(i)].first.string();
      Image img = i == 0 ? std::move(first) : load_image(path, channels);
      if (!fixed && (img.h != ds.h || img.w != ds.w))
        fail(folder, ": ", printable(path), " is ", img.h, "x", img.w, " but the first image ",
             printable(files[0].first.string()), " is ", ds.h, "x", ds.w,
             "; give a height and width to resize every image");
      if (img.h != ds.h || img.w != ds.w) img = resize_image(img, ds.h, ds.w);
      std::copy(img.pixels.begin(), img.pixels.end(), ds.pixels.begin() + i * isz);
      ds.labels[size_t(i)] = files[size_t(i)].second;
    } catch (...) {
      errors[size_t(i)] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
  return ds;
}

}  // namespace osprey::data
