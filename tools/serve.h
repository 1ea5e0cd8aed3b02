// `osprey serve`: a web page and a JSON API for a trained checkpoint, from the binary itself
// (the page's HTML, CSS and JS are embedded, nothing loads from the network), on our own
// HTTP/1.1 front end (tools/http_server.h: deadlines and size limits for every request).
// Predictions go through a bounded queue to `decode_slots` decoding threads, within a budget of
// decoding and decoded image bytes; a full queue or budget is answered 503 with Retry-After.
// Decoded images are batched: a worker takes whatever images are waiting (up to max_batch) and
// runs them through the model in one forward. docs/serving.md states every limit and the
// memory bound.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "tools/inference.h"

namespace osprey::tools {

// What decoding one image may take at its peak, per pixel, reserved in the decoded budget
// before decoding (with the upload's size once more): measured 5-7 for PNGs of every depth,
// 16-bit RGBA and interlaced included (libpng's rows and the converted image); a progressive
// JPEG's coefficients take 2 per pixel and component.
constexpr size_t kDecodeBytesPerPixel = 16;

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  float threshold = 0.5f;  // top-1 probability below which an answer is "uncertain"
  int max_batch = 32;      // requests per forward
  size_t max_body_bytes = size_t(16) << 20;
  int max_image_side = 4096;  // larger images are refused before decoding
  int decode_slots = 2;       // images decoded at once
  int max_queued = 64;        // predictions waiting for a decode slot; more are answered 503
  // Decoding and decoded images in flight; 0: kDecodeBytesPerPixel x max_image_side^2 +
  // max_body_bytes, so that any allowed image can be decoded (smaller ones side by side).
  size_t max_decoded_bytes = 0;
  int max_connections = 512;
  // Request bytes held, all connections together; 0: 4 x max_body_bytes + max_connections x
  // max_header_bytes.
  size_t max_buffered_bytes = 0;
  size_t max_header_bytes = 8 << 10;
  int max_headers = 64;
  double header_timeout_s = 5;
  double body_timeout_floor_s = 10;
  double body_min_bytes_per_s = 64 << 10;
  double processing_timeout_s = 30;
};

// The options with their 0 defaults worked out.
ServeOptions resolved(ServeOptions opts);
// What the server holds for requests at most, beyond the model, its forward and the process's
// baseline: request bytes + decoding/decoded bytes + answers being written.
size_t request_memory_bound(const ServeOptions& opts);

class InferenceServer {
 public:
  InferenceServer(TrainedModel& model, ServeOptions opts);
  ~InferenceServer();
  // Binds (port 0 picks a free one) and returns the port; then listen() serves until stop().
  // A port in use fails with "address already in use".
  int bind();
  void listen();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace osprey::tools
