// `osprey data get`: a dataset of the catalogue (tools/dataset_sources.h) downloaded, checked
// against its known checksums and put in place as its reader expects it.
#pragma once
#include <string>
#include <vector>

namespace osprey::tools {

struct DataGetOptions {
  std::string name;  // cifar10, fashion-mnist, mnist, tmnist
  std::string dir = "data";
  // A mirror: the file's URL for a one-file dataset, else the folder URL the names are appended
  // to. The known checksums still apply.
  std::string url;
  // Already downloaded: the file (one-file dataset) or a folder holding the files. Checked like
  // a download, never deleted or changed.
  std::string from;
  // "HEX" (one-file dataset) or "FILE=HEX": a SHA-256 that replaces the catalogue's checksums
  // and size for that file, e.g. for a TMNIST copy, which has no published one.
  std::vector<std::string> sha256;
};

// Gets the dataset into options.dir, reporting on stdout (progress on stderr). Every file is
// written under a temporary name and renamed into place once checked; a download whose
// checksum or size is wrong is deleted and the call throws osprey::Error saying so; an
// unusable option throws UsageError. A dataset already in place is left as it is.
void data_get(const DataGetOptions& options);

}  // namespace osprey::tools
