// `osprey serve` against a server the test starts on a free loopback port: the page, the model
// description, predictions that agree with `osprey predict`, every kind of bad input (a 4xx
// with a JSON error, the server still healthy), and concurrent requests.
#include <httplib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>

#include "tests/test_support.h"
#include "tests/tiny_idx.h"
#include "tools/serve.h"
#include "tools/train.h"

using namespace osprey;
using json = nlohmann::json;

namespace {

std::string png_of(const uint8_t* pixels, int h, int w, int c) {
  std::string out;
  stbi_write_png_to_func(
      [](void* ctx, void* data, int size) {
        static_cast<std::string*>(ctx)->append(static_cast<char*>(data), size_t(size));
      },
      &out, w, h, c, pixels, w * c);
  return out;
}

}  // namespace

TEST_CASE("the inference server answers the page, the API and bad input") {
  tests::TempDir dir("osprey_serve");
  tests::write_tiny_idx_split(dir.path, "train", 400, 1);
  tests::write_tiny_idx_split(dir.path, "t10k", 40, 2);
  tools::TrainConfig cfg;
  cfg.name = "served";
  cfg.dataset = "mnist";
  cfg.data_dir = dir.path.string();
  cfg.runs_dir = (dir.path / "runs").string();
  cfg.epochs = 2, cfg.batch_size = 32, cfg.threads = 2, cfg.progress = false;
  cfg.mean = {0.2f}, cfg.std = {0.3f};
  tools::run_train(cfg);

  tools::TrainedModel tm = tools::load_trained((dir.path / "runs" / "served").string(), {});
  tools::ServeOptions opts;
  opts.port = 0;
  opts.max_body_bytes = 1 << 20;
  opts.max_image_side = 512;
  tools::InferenceServer server(tm, opts);
  int port = server.bind();
  std::thread serving([&] { server.listen(); });
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(10, 0);

  auto page = client.Get("/");
  REQUIRE(page);
  REQUIRE(page->status == 200);
  REQUIRE(page->body.find("/api/predict") != std::string::npos);
  REQUIRE(page->body.find("http") == std::string::npos);  // nothing loads from the network

  auto model = client.Get("/api/model");
  REQUIRE(model->status == 200);
  json m = json::parse(model->body);
  REQUIRE(m["name"] == "simple_cnn");
  REQUIRE(m["classes"] == 4);
  REQUIRE(m["input"] == json::array({12, 12, 1}));

  // Class k is a bright square in quadrant k: draw one of class 3 at 48x48 (resized by the
  // server), and compare with the predict path on the same pixels.
  std::vector<uint8_t> img(48 * 48, 20);
  for (int y = 30; y < 42; ++y)
    for (int x = 30; x < 42; ++x) img[size_t(y * 48 + x)] = 250;
  std::string png = png_of(img.data(), 48, 48, 1);
  auto pred = client.Post("/api/predict?k=2", png, "image/png");
  REQUIRE(pred->status == 200);
  json p = json::parse(pred->body);
  REQUIRE(p["top"].size() == 2);
  REQUIRE(p["top"][0]["index"] == 3);
  data::Image decoded = data::decode_image(png.data(), png.size(), 1, "png");
  auto direct = tools::predict_images(tm, {decoded}, 2, 0.5f);
  REQUIRE(p["top"][0]["probability"].get<double>() ==
          Approx(direct[0].top[0].second).epsilon(1e-5));

  httplib::MultipartFormDataItems form = {{"image", png, "x.png", "image/png"}};
  auto multipart = client.Post("/api/predict", form);
  REQUIRE(multipart->status == 200);
  REQUIRE(json::parse(multipart->body)["top"].size() == 3);

  auto expect_error = [&](const httplib::Result& r, int status, const std::string& words) {
    REQUIRE(r);
    INFO(r->body);
    REQUIRE(r->status == status);
    REQUIRE(json::parse(r->body)["error"].get<std::string>().find(words) != std::string::npos);
  };
  expect_error(client.Post("/api/predict", "", "image/png"), 400, "empty");
  expect_error(client.Post("/api/predict", "hello, not an image", "text/plain"), 400,
               "not a readable image");
  expect_error(client.Post("/api/predict", png.substr(0, png.size() / 2), "image/png"), 400,
               "image");
  expect_error(client.Post("/api/predict?k=9", png, "image/png"), 400, "k must be");
  httplib::MultipartFormDataItems wrong = {{"file", png, "x.png", "image/png"}};
  expect_error(client.Post("/api/predict", wrong), 400, "'image' field");
  std::vector<uint8_t> big(600 * 10, 0);
  expect_error(client.Post("/api/predict", png_of(big.data(), 10, 600, 1), "image/png"), 413,
               "exceeds");
  auto too_long = client.Post("/api/predict", std::string(2 << 20, 'x'), "image/png");
  REQUIRE(too_long);
  REQUIRE(too_long->status == 413);

  // Concurrent clients are batched and all answered.
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t)
    clients.emplace_back([&] {
      httplib::Client c("127.0.0.1", port);
      for (int i = 0; i < 10; ++i) {
        auto r = c.Post("/api/predict", png, "image/png");
        if (r && r->status == 200 && json::parse(r->body)["top"][0]["index"] == 3) ++ok;
      }
    });
  for (auto& c : clients) c.join();
  REQUIRE(ok == 80);
  auto health = client.Get("/api/health");
  REQUIRE(health->status == 200);

  server.stop();
  serving.join();
}
