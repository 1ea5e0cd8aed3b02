// Unpacking a downloaded archive (tar, tar.gz, zip: what libarchive reads) into a folder
// without trusting its entry names: nothing may land outside the folder.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace osprey::tools {

// True when the file starts like an archive or compressed stream libarchive reads (gzip, zip,
// bzip2, xz, a tar header), false for anything else (a CSV).
bool looks_like_archive(const std::string& path);

// Extracts every entry of the archive into dir and returns the top-level names it placed there.
// Entries go into a temporary folder inside dir first and are moved in (replacing a file or
// folder of the same name) only once all of them are out, so a refused or broken archive
// leaves dir as it was. Refused, with the entry's name in the message: an absolute name, one
// with a ".." component, and anything but a regular file or a folder (links, devices). An
// archive that unpacks to more than max_bytes, or holds more than max_entries entries, is
// refused too (a decompression bomb would fill the disk; tmnist's has no known checksum).
constexpr int64_t kMaxUnpackedBytes = int64_t(8) << 30;  // TMNIST's CSV is 941 MB
constexpr int64_t kMaxArchiveEntries = 100000;
std::vector<std::string> extract_archive(const std::string& archive_path, const std::string& dir,
                                         int64_t max_bytes = kMaxUnpackedBytes,
                                         int64_t max_entries = kMaxArchiveEntries);

}  // namespace osprey::tools
