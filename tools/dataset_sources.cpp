#include "tools/dataset_sources.h"

#include <filesystem>

namespace osprey::tools {
namespace {

namespace fs = std::filesystem;

// The four IDX files of MNIST and Fashion-MNIST, in the names data/idx.h reads.
std::vector<SourceFile> idx_files(const std::string& base, const std::vector<int64_t>& sizes,
                                  const std::vector<std::string>& sha256,
                                  const std::vector<std::string>& md5) {
  const char* names[] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
  std::vector<SourceFile> files;
  for (size_t i = 0; i < 4; ++i)
    files.push_back({names[i], base + names[i], sizes[i], sha256[i], md5[i]});
  return files;
}

std::vector<DatasetSource> make_sources() {
  std::vector<DatasetSource> s;
  // SHA-256 and sizes: TensorFlow Datasets' registered checksums
  // (tensorflow_datasets/url_checksums/cifar10.txt); MD5: the CIFAR page's own
  // (https://www.cs.toronto.edu/~kriz/cifar.html).
  s.push_back(
      {"cifar10",
       "CIFAR-10, binary version, from https://www.cs.toronto.edu/~kriz/cifar.html",
       {{"cifar-10-binary.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
         170052171, "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
         "c32a1d4ab5d03f1284b67883e8d87530"}},
       DatasetSource::Unpack::always,
       {}});
  for (const char* f : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                        "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"})
    s.back().expected.push_back(std::string("cifar-10-batches-bin/") + f);
  // SHA-256 and sizes: tensorflow_datasets/url_checksums/fashion_mnist.txt; MD5: the table of
  // zalandoresearch/fashion-mnist's README (also in Debian's dataset-fashion-mnist).
  s.push_back({"fashion-mnist",
               "Fashion-MNIST, from https://github.com/zalandoresearch/fashion-mnist",
               idx_files("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                         {26421880, 29515, 4422102, 5148},
                         {"3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                          "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                          "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                          "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"},
                         {"8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                          "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"}),
               DatasetSource::Unpack::never,
               {}});
  // The mirror torchvision downloads from (yann.lecun.com, the original, now refuses many
  // clients). SHA-256 and sizes: tensorflow_datasets/url_checksums/mnist.txt; MD5: torchvision's
  // MNIST.resources (torchvision/datasets/mnist.py).
  s.push_back(
      {"mnist",
       "MNIST, from the mirror https://ossci-datasets.s3.amazonaws.com/mnist/",
       idx_files("https://ossci-datasets.s3.amazonaws.com/mnist/", {9912422, 28881, 1648877, 4542},
                 {"440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                  "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                  "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                  "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"},
                 {"f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                  "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"}),
       DatasetSource::Unpack::never,
       {}});
  // Published on Kaggle behind a login: no stable URL and no published checksum.
  s.push_back({"tmnist",
               "TMNIST (Typography MNIST), from Kaggle: no stable public URL, give --url or --from",
               {{"TMNIST_Data.csv", "", -1, "", ""}},
               DatasetSource::Unpack::when_archive,
               {},
               true});
  for (DatasetSource& d : s)
    if (d.expected.empty())
      for (const SourceFile& f : d.files) d.expected.push_back(f.name);
  return s;
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// A word for a shell command line: quoted only when it needs to be.
std::string shell_word(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789_-./=:+,@%") == std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The first of the dataset's files its reader would not find in data_dir, or "".
std::string first_missing(const DatasetSource& src, const fs::path& dir) {
  if (src.data_dir_is_file) return is_file(dir) ? "" : dir.filename().string();
  for (const std::string& rel : src.expected) {
    const fs::path p(rel);
    const std::string name = p.filename().string();
    if (src.name == "cifar10") {
      // data/cifar10.h reads the batches folder itself or the folder it was extracted into.
      if (!is_file(dir / name) && !is_file(dir / p)) return name;
    } else {
      // data/idx.h reads each file raw or gzip-compressed.
      const std::string raw = p.stem().string();
      if (!is_file(dir / rel) && !is_file(dir / raw)) return name;
    }
  }
  return "";
}

}  // namespace

const std::vector<DatasetSource>& dataset_sources() {
  static const std::vector<DatasetSource> sources = make_sources();
  return sources;
}

std::vector<std::string> dataset_source_names() {
  std::vector<std::string> names;
  for (const DatasetSource& d : dataset_sources()) names.push_back(d.name);
  return names;
}

const DatasetSource* find_dataset_source(const std::string& name) {
  for (const DatasetSource& d : dataset_sources())
    if (d.name == name) return &d;
  return nullptr;
}

std::string data_get_dir(const std::string& dataset, const std::string& data_dir) {
  fs::path p = fs::path(data_dir).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // "dir/"
  const DatasetSource* src = find_dataset_source(dataset);
  const bool inner = (dataset == "cifar10" && p.filename() == "cifar-10-batches-bin") ||
                     (src && src->data_dir_is_file);
  if (!inner) return data_dir;
  const fs::path parent = p.parent_path();
  return parent.empty() ? "." : parent.string();
}

std::string missing_dataset_hint(const std::string& dataset, const std::string& data_dir) {
  const DatasetSource* src = find_dataset_source(dataset);
  // A tmnist folder is the rendered set of `osprey data typefaces`, not something to download.
  if (!src || (src->data_dir_is_file && fs::path(data_dir).extension() != ".csv")) return "";
  const std::string missing = first_missing(*src, fs::path(data_dir));
  if (missing.empty()) return "";
  std::string command =
      "osprey data get " + dataset + " --dir " + shell_word(data_get_dir(dataset, data_dir));
  if (src->files.at(0).url.empty())
    command += " --url URL  (or --from FILE: " + dataset + " has no stable public URL)";
  return "dataset '" + dataset + "' is not in '" + data_dir + "' (no " + missing +
         "); get it with: " + command;
}

}  // namespace osprey::tools
