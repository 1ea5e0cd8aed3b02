// The catalogue of `osprey data get` and the checks around it that need no server: digests,
// what `osprey train` says when a dataset is missing, and the catalogue's own consistency.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tools/archive.h"
#include "tools/checksum.h"
#include "tools/dataset_sources.h"
#include "tools/download.h"

namespace fs = std::filesystem;
using namespace osprey::tools;

namespace {

fs::path scratch(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("osprey_data_sources_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

}  // namespace

TEST_CASE("file_digest gives the standard SHA-256 and MD5 of 'abc'", "[app][data_get]") {
  const fs::path dir = scratch("digest");
  std::ofstream(dir / "abc") << "abc";
  CHECK(file_digest((dir / "abc").string(), "sha256") ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(file_digest((dir / "abc").string(), "md5") == "900150983cd24fb0d6963f7d28e17f72");
  CHECK_THROWS_WITH(file_digest((dir / "none").string(), "sha256"), Catch::Contains("cannot open"));
  fs::remove_all(dir);
}

TEST_CASE("every catalogue file has a 64-digit SHA-256 or none, and an MD5 or none",
          "[app][data_get]") {
  for (const DatasetSource& d : dataset_sources()) {
    CHECK(!d.expected.empty());
    for (const SourceFile& f : d.files) {
      CHECK((f.sha256.empty() || is_hex_digest(f.sha256, 64)));
      CHECK((f.md5.empty() || is_hex_digest(f.md5, 32)));
      CHECK((f.url.empty() || f.url.rfind("http", 0) == 0));
    }
  }
  CHECK(find_dataset_source("cifar10")->files.at(0).md5 == "c32a1d4ab5d03f1284b67883e8d87530");
}

TEST_CASE("a missing dataset's message names the osprey data get command", "[app][data_get]") {
  const fs::path dir = scratch("hint");
  const std::string batches = (dir / "cifar-10-batches-bin").string();
  CHECK_THAT(missing_dataset_hint("cifar10", batches),
             Catch::Contains("osprey data get cifar10 --dir " + dir.string()));
  CHECK_THAT(missing_dataset_hint("mnist", dir.string()),
             Catch::Contains("no train-images-idx3-ubyte.gz") &&
                 Catch::Contains("osprey data get mnist --dir " + dir.string()));
  CHECK_THAT(missing_dataset_hint("cifar10", "/tmp/my data"),
             Catch::Contains("--dir '/tmp/my data'"));
  CHECK(missing_dataset_hint("image_folder", dir.string()).empty());
  fs::create_directories(batches);
  for (const char* f : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                        "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"})
    std::ofstream(fs::path(batches) / f) << "x";
  CHECK(missing_dataset_hint("cifar10", batches).empty());
  CHECK(missing_dataset_hint("cifar10", dir.string()).empty());
  fs::remove_all(dir);
}

TEST_CASE("an archive that unpacks past its byte or entry budget is refused whole",
          "[app][data_get]") {
  const fs::path dir = scratch("budget");
  fs::create_directories(dir / "src" / "d");
  std::ofstream(dir / "src" / "d" / "a.bin") << std::string(100000, 'x');
  std::ofstream(dir / "src" / "d" / "b.bin") << "b";
  const std::string tgz = (dir / "d.tar.gz").string();
  REQUIRE(std::system(("tar -czf " + tgz + " -C " + (dir / "src").string() + " d").c_str()) == 0);
  REQUIRE(fs::file_size(tgz) < 1000);  // 100 kB of one byte: what a bomb looks like, in small
  fs::create_directories(dir / "out");
  CHECK_THROWS_WITH(extract_archive(tgz, (dir / "out").string(), 50000),
                    Catch::Contains("more than the 50000 bytes allowed") &&
                        Catch::Contains("nothing was extracted"));
  CHECK_THROWS_WITH(extract_archive(tgz, (dir / "out").string(), 1 << 20, 2),
                    Catch::Contains("more than the 2 entries allowed"));
  CHECK(fs::is_empty(dir / "out"));
  CHECK(extract_archive(tgz, (dir / "out").string(), 100001, 3) == std::vector<std::string>{"d"});
  CHECK(fs::file_size(dir / "out" / "d" / "a.bin") == 100000);
  fs::remove_all(dir);
}

TEST_CASE("a download that sends more than the file's size is stopped and deleted",
          "[app][data_get]") {
  // One HTTP answer of 5000 bytes from a listener on a free loopback port.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(listener, 1) == 0);
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  std::thread server([listener] {
    const int c = ::accept(listener, nullptr, nullptr);
    char request[4096];
    (void)::recv(c, request, sizeof request, 0);
    const std::string reply =
        "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n" +
        std::string(5000, 'z');
    (void)::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
    ::close(c);
  });
  const fs::path dir = scratch("too_large");
  DownloadRequest r;
  r.url = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/f.bin";
  r.part_path = (dir / "f.bin.part").string();
  r.label = "f.bin";
  r.expected_size = 1000;
  r.attempts = 1;
  CHECK_THROWS_WITH(download(r), Catch::Contains("sent more than the file's 1000 bytes") &&
                                     Catch::Contains("deleted"));
  server.join();
  ::close(listener);
  CHECK_FALSE(fs::exists(r.part_path));
  fs::remove_all(dir);
}
