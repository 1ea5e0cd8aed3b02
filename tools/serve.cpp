#include "tools/serve.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "engine/checkpoint.h"
#include "engine/parse.h"
#include "tools/http_server.h"
#include "tools/serve_page.h"

namespace osprey::tools {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr size_t kMaxAnswerBytes = 8 << 10;  // the page, or a JSON answer, with its headers

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

http::Response json_ok(const json& j) {
  http::Response r;
  r.body = dump(j);
  return r;
}

struct Decoded {
  data::Image image;
  int k = 3;
  http::ByteLease held;  // the image's bytes in the decoded budget
  http::Reply reply;
};

// One worker runs the model; images that arrive while it is busy form the next batch, so no
// request waits longer than one batch. Answers go straight to the requests' replies.
class BatchingPredictor {
 public:
  BatchingPredictor(TrainedModel& tm, int max_batch, float threshold)
      : tm_(tm), max_batch_(max_batch), threshold_(threshold), worker_([this] { loop(); }) {}
  ~BatchingPredictor() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  void submit(Decoded d) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(d));
    }
    cv_.notify_one();
  }

 private:
  void loop() {
    for (;;) {
      std::vector<Decoded> batch;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (stop_ && queue_.empty()) return;
        while (!queue_.empty() && int(batch.size()) < max_batch_) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      run(batch);
    }
  }
  void run(std::vector<Decoded>& batch) {
    std::vector<data::Image> images;
    int k = 1;
    for (auto& d : batch) images.push_back(std::move(d.image)), k = std::max(k, d.k);
    try {
      auto t0 = Clock::now();
      std::vector<Prediction> preds = predict_images(tm_, images, k, threshold_);
      double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      for (size_t i = 0; i < batch.size(); ++i) {
        json top = json::array();
        for (size_t j = 0; j < preds[i].top.size() && int(j) < batch[i].k; ++j) {
          auto [cls, prob] = preds[i].top[j];
          top.push_back({{"class", tm_.input.class_names[size_t(cls)]},
                         {"index", cls},
                         {"probability", prob}});
        }
        batch[i].reply(json_ok({{"top", top},
                                {"uncertain", preds[i].uncertain},
                                {"model", tm_.model->name()},
                                {"model_ms", ms}}));
      }
    } catch (const std::exception& e) {
      for (auto& d : batch) d.reply(http::json_error(500, e.what()));
    }
  }

  TrainedModel& tm_;
  int max_batch_;
  float threshold_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Decoded> queue_;
  bool stop_ = false;
  std::thread worker_;  // last: starts once the rest is initialised
};

struct Job {
  http::Request req;
  http::ByteLease body_held;
  http::Reply reply;
  int k = 3;
  Clock::time_point deadline;
};

// The value of query parameter k: the whole text an integer in [1, classes].
int parse_k(const http::Request& req, int classes) {
  std::vector<std::pair<std::string, std::string>> params;
  http::Error err;
  if (!http::parse_query(req.query, params, err)) fail(err.message);
  int k = 3, seen = 0;
  for (const auto& [key, value] : params)
    if (key == "k") {
      OSPREY_CHECK(++seen == 1, "query parameter k is given more than once");
      k = int(parse_int(value, 1, classes, "query parameter k"));
    }
  return k;
}

}  // namespace

ServeOptions resolved(ServeOptions o) {
  o.max_batch = std::max(1, o.max_batch);
  o.decode_slots = std::max(1, o.decode_slots);
  size_t side = size_t(std::max(1, o.max_image_side));
  if (o.max_decoded_bytes == 0)
    o.max_decoded_bytes = kDecodeBytesPerPixel * side * side + o.max_body_bytes;
  if (o.max_buffered_bytes == 0)
    o.max_buffered_bytes = 4 * o.max_body_bytes + size_t(o.max_connections) * o.max_header_bytes;
  return o;
}

size_t request_memory_bound(const ServeOptions& opts) {
  ServeOptions o = resolved(opts);
  return o.max_buffered_bytes + o.max_decoded_bytes + size_t(o.max_connections) * kMaxAnswerBytes;
}

struct InferenceServer::Impl {
  Impl(TrainedModel& tm, ServeOptions o);
  ~Impl();
  void handle(http::Request&& req, http::ByteLease held, const http::Reply& reply);
  void worker();
  http::Response predict(Job& job);

  TrainedModel& tm;
  ServeOptions opts;
  std::string model_body;  // GET /api/model, made once: nothing is read from disk per request
  // Declared so that every lease (queued jobs, batched images) dies before its budget.
  http::ByteBudget decoded;
  http::Server server;
  BatchingPredictor predictor;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Job> jobs;
  bool stopping = false;
  std::vector<std::thread> workers;
};

InferenceServer::Impl::Impl(TrainedModel& tm_, ServeOptions o)
    : tm(tm_),
      opts(resolved(std::move(o))),
      decoded(opts.max_decoded_bytes),
      server(
          [&] {
            http::ServerLimits l;
            l.parse = {opts.max_header_bytes, opts.max_headers, opts.max_body_bytes};
            l.max_connections = opts.max_connections;
            l.max_buffered_bytes = opts.max_buffered_bytes;
            l.header_timeout_s = opts.header_timeout_s;
            l.body_timeout_floor_s = opts.body_timeout_floor_s;
            l.body_min_bytes_per_s = opts.body_min_bytes_per_s;
            l.processing_timeout_s = opts.processing_timeout_s;
            return l;
          }(),
          [this](http::Request&& req, http::ByteLease held, http::Reply reply) {
            handle(std::move(req), std::move(held), reply);
          }),
      predictor(tm, opts.max_batch, opts.threshold) {
  // Only training metadata, by name: a checkpoint from elsewhere may carry paths.
  json meta = json::object();
  const CheckpointMetadata all = read_checkpoint_metadata(tm.checkpoint);
  for (const char* key :
       {"epoch", "step_in_epoch", "global_step", "best_accuracy", "test_accuracy", "metrics"})
    if (auto it = all.find(key); it != all.end()) meta[key] = it->second;
  model_body = dump({{"name", tm.model->name()},
                     {"classes", tm.input.num_classes},
                     {"class_names", tm.input.class_names},
                     {"input", {tm.input.h, tm.input.w, tm.input.c}},
                     {"checkpoint", std::filesystem::path(tm.checkpoint).filename().string()},
                     {"threshold", opts.threshold},
                     {"limits",
                      {{"max_body_bytes", opts.max_body_bytes},
                       {"max_image_side", opts.max_image_side},
                       {"max_batch", opts.max_batch},
                       {"request_memory_bytes", request_memory_bound(opts)}}},
                     {"metadata", meta}});
  for (int i = 0; i < opts.decode_slots; ++i) workers.emplace_back([this] { worker(); });
}

InferenceServer::Impl::~Impl() {
  {
    std::lock_guard<std::mutex> lock(mu);
    stopping = true;
  }
  cv.notify_all();
  for (auto& w : workers) w.join();
}

// On the event loop thread: the cheap routes are answered here; predictions are queued.
void InferenceServer::Impl::handle(http::Request&& req, http::ByteLease held,
                                   const http::Reply& reply) {
  const bool get = req.method == "GET" || req.method == "HEAD";
  auto wrong_method = [&](const char* allow) {
    http::Response r = http::json_error(405, req.method + " is not allowed on " + req.path);
    r.headers.emplace_back("Allow", allow);
    reply(r);
  };
  if (req.path == "/" || req.path == "/api/health" || req.path == "/api/model") {
    if (!get) return wrong_method("GET, HEAD");
    http::Response r;
    if (req.path == "/") r.content_type = "text/html; charset=utf-8", r.body = kServePage;
    if (req.path == "/api/health") r.body = R"({"status":"ok"})";
    if (req.path == "/api/model") r.body = model_body;
    return reply(r);
  }
  if (req.path != "/api/predict") return reply(http::json_error(404, "no such path"));
  if (req.method != "POST") return wrong_method("POST");
  Job job{std::move(req), std::move(held), reply, 3, Clock::now()};
  try {
    job.k = parse_k(job.req, tm.input.num_classes);
  } catch (const std::exception& e) {
    return reply(http::json_error(400, e.what()));
  }
  job.deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(opts.processing_timeout_s));
  {
    std::lock_guard<std::mutex> lock(mu);
    if (int(jobs.size()) >= opts.max_queued)
      return reply(http::json_error(503, "server busy: too many predictions waiting"));
    jobs.push_back(std::move(job));
  }
  cv.notify_one();
}

void InferenceServer::Impl::worker() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return stopping || !jobs.empty(); });
      if (stopping) return;
      job = std::move(jobs.front());
      jobs.pop_front();
    }
    if (Clock::now() > job.deadline) continue;  // already answered 503 by the event loop
    http::Reply reply = job.reply;
    try {
      http::Response r = predict(job);
      if (r.status != 0) reply(r);
    } catch (const std::exception& e) {
      reply(http::json_error(500, e.what()));
    }
  }
}

// Decodes the upload within the budget and hands it to the batcher (status 0), or says why not.
http::Response InferenceServer::Impl::predict(Job& job) {
  const http::Request& req = job.req;
  std::string_view body = req.body;
  const std::string* type = req.header("content-type");
  if (type && http::is_multipart(*type)) {
    std::vector<http::FormPart> parts;
    http::Error err;
    if (!http::parse_multipart(req.body, *type, parts, err))
      return http::json_error(err.status, err.message);
    auto it = std::find_if(parts.begin(), parts.end(), [](auto& p) { return p.name == "image"; });
    if (it == parts.end())
      return http::json_error(400, "multipart upload without an 'image' field");
    body = it->data;
  }
  if (body.empty()) return http::json_error(400, "empty body: send an image");
  int h = 0, w = 0;
  try {
    data::probe_image(body.data(), body.size(), "upload", h, w);
  } catch (const std::exception& e) {
    return http::json_error(400, e.what());
  }
  if (h > opts.max_image_side || w > opts.max_image_side)
    return http::json_error(413, "image of " + std::to_string(w) + "x" + std::to_string(h) +
                                     " exceeds the limit of " +
                                     std::to_string(opts.max_image_side) + " per side");
  size_t cost = size_t(h) * size_t(w) * kDecodeBytesPerPixel + body.size();
  http::ByteLease held(&decoded, 0);
  if (cost > decoded.limit())
    return http::json_error(413, "image of " + std::to_string(w) + "x" + std::to_string(h) +
                                     " needs more decoding memory than the server allows");
  if (!held.grow(cost)) return http::json_error(503, "server busy: too many images in flight");
  Decoded d;
  try {
    d.image = data::decode_image(body.data(), body.size(), tm.input.source.c, "upload",
                                 size_t(opts.max_image_side) * size_t(opts.max_image_side));
  } catch (const std::exception& e) {
    return http::json_error(400, e.what());
  }
  job.req = http::Request();  // the upload's bytes go back to the budget before the forward
  job.body_held = http::ByteLease();
  held.shrink_to(d.image.pixels.size());
  d.k = job.k;
  d.held = std::move(held);
  d.reply = job.reply;
  predictor.submit(std::move(d));
  http::Response queued;
  queued.status = 0;
  return queued;
}

InferenceServer::InferenceServer(TrainedModel& tm, ServeOptions opts)
    : impl_(std::make_unique<Impl>(tm, std::move(opts))) {}

InferenceServer::~InferenceServer() {
  stop();
}

int InferenceServer::bind() {
  return impl_->server.bind(impl_->opts.host, impl_->opts.port);
}

void InferenceServer::listen() {
  impl_->server.run();
}

void InferenceServer::stop() {
  impl_->server.stop();
}

}  // namespace osprey::tools
