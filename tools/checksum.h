// Digests of files, for checking a download against the checksum its publisher gives.
#pragma once
#include <string>

namespace osprey::tools {

// The lowercase hex digest of the file's bytes; algorithm is "sha256" or "md5" (OpenSSL's
// implementations). A file that cannot be read throws osprey::Error naming it.
std::string file_digest(const std::string& path, const std::string& algorithm);

// True when text is `length` hex digits (either case).
bool is_hex_digest(const std::string& text, size_t length);

}  // namespace osprey::tools
