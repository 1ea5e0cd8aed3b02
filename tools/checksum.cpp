#include "tools/checksum.h"

#include <openssl/evp.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "engine/parse.h"
#include "kernels/error.h"

namespace osprey::tools {

std::string file_digest(const std::string& path, const std::string& algorithm) {
  const EVP_MD* md = algorithm == "sha256" ? EVP_sha256()
                     : algorithm == "md5"  ? EVP_md5()
                                           : nullptr;
  OSPREY_CHECK(md, "file_digest: unknown algorithm '", algorithm, "' (valid: sha256, md5)");
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f) fail("cannot open ", printable(path), ": ", std::strerror(errno));
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  OSPREY_CHECK(ctx && EVP_DigestInit_ex(ctx.get(), md, nullptr) == 1, "file_digest: cannot start ",
               algorithm);
  std::vector<unsigned char> buf(1 << 20);
  for (size_t got; (got = std::fread(buf.data(), 1, buf.size(), f.get())) > 0;)
    EVP_DigestUpdate(ctx.get(), buf.data(), got);
  if (std::ferror(f.get())) fail("cannot read ", printable(path), ": ", std::strerror(errno));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &length);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

bool is_hex_digest(const std::string& text, size_t length) {
  if (text.size() != length) return false;
  for (char c : text)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace osprey::tools
