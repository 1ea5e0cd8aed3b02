// `osprey serve`: a web page and a JSON API for a trained checkpoint, from the binary itself
// (cpp-httplib; the page's HTML, CSS and JS are embedded, nothing loads from the network).
// Concurrent requests are batched: a worker takes whatever requests are waiting (up to
// max_batch) and runs them through the model in one forward.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "tools/inference.h"

namespace osprey::tools {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  float threshold = 0.5f;  // top-1 probability below which an answer is "uncertain"
  int max_batch = 32;      // requests per forward
  size_t max_body_bytes = size_t(16) << 20;
  int max_image_side = 4096;  // larger images are refused before decoding
};

class InferenceServer {
 public:
  InferenceServer(TrainedModel& model, ServeOptions opts);
  ~InferenceServer();
  // Binds (port 0 picks a free one) and returns the port; then listen() serves until stop().
  int bind();
  void listen();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace osprey::tools
