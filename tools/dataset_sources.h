// The datasets `osprey data get` knows: where each is published, the checksums it is checked
// against, and the files the dataset's reader (data/) expects once it is in place.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace osprey::tools {

// One published file. Empty checksums and size -1 mean unknown.
struct SourceFile {
  std::string name;  // the file's name in the target folder (and the URL's last part)
  std::string url;   // empty: no stable public URL, the user gives one (--url or --from)
  int64_t size = -1;
  std::string sha256;
  std::string md5;
};

struct DatasetSource {
  std::string name;    // as the config's "dataset" key spells it
  std::string origin;  // the publisher and where the checksums come from, for the help
  std::vector<SourceFile> files;
  // always: a .tar.gz unpacked into the folder, then deleted; when_archive: a file the user
  // gives may be the data itself or an archive holding it.
  enum class Unpack { never, always, when_archive } unpack = Unpack::never;
  // Paths relative to the folder that must exist once the dataset is in place.
  std::vector<std::string> expected;
  // The config's data_dir names the file itself (the TMNIST CSV), not its folder.
  bool data_dir_is_file = false;
};

const std::vector<DatasetSource>& dataset_sources();
std::vector<std::string> dataset_source_names();
// nullptr when name is not in the catalogue.
const DatasetSource* find_dataset_source(const std::string& name);

// The folder `osprey data get` should fill so that a config's data_dir finds the dataset:
// data_dir itself, its parent for the archive's own subfolder (cifar-10-batches-bin) or the
// TMNIST CSV's folder.
std::string data_get_dir(const std::string& dataset, const std::string& data_dir);

// For `osprey train` before it loads: "" when the dataset looks present in data_dir (or is not
// one `osprey data get` knows), else a message naming the missing file and the exact
// `osprey data get` command that gets it.
std::string missing_dataset_hint(const std::string& dataset, const std::string& data_dir);

}  // namespace osprey::tools
