#include "tools/serve.h"

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "engine/checkpoint.h"
#include "tools/serve_page.h"

namespace osprey::tools {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Request {
  data::Image image;
  int k = 3;
  std::promise<std::pair<Prediction, double>> result;  // prediction, model milliseconds
};

// One worker runs the model; requests that arrive while it is busy form the next batch, so
// no request waits longer than one batch.
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
  std::pair<Prediction, double> predict(data::Image image, int k) {
    auto req = std::make_shared<Request>();
    req->image = std::move(image);
    req->k = k;
    auto fut = req->result.get_future();
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(req);
    }
    cv_.notify_one();
    return fut.get();
  }

 private:
  void loop() {
    for (;;) {
      std::vector<std::shared_ptr<Request>> batch;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (stop_ && queue_.empty()) return;
        while (!queue_.empty() && int(batch.size()) < max_batch_) {
          batch.push_back(queue_.front());
          queue_.pop_front();
        }
      }
      std::vector<data::Image> images;
      int k = 1;
      for (auto& r : batch) images.push_back(r->image), k = std::max(k, r->k);
      try {
        auto t0 = Clock::now();
        std::vector<Prediction> preds = predict_images(tm_, images, k, threshold_);
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        for (size_t i = 0; i < batch.size(); ++i) {
          preds[i].top.resize(std::min(preds[i].top.size(), size_t(batch[i]->k)));
          batch[i]->result.set_value({preds[i], ms});
        }
      } catch (...) {
        for (auto& r : batch) r->result.set_exception(std::current_exception());
      }
    }
  }

  TrainedModel& tm_;
  int max_batch_;
  float threshold_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Request>> queue_;
  bool stop_ = false;
  std::thread worker_;  // last: starts once the rest is initialised
};

void reply_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(json{{"error", message}}.dump(), "application/json");
}

}  // namespace

struct InferenceServer::Impl {
  Impl(TrainedModel& tm, ServeOptions o)
      : tm(tm), opts(o), predictor(tm, std::max(1, o.max_batch), o.threshold) {}
  TrainedModel& tm;
  ServeOptions opts;
  BatchingPredictor predictor;
  httplib::Server server;
};

InferenceServer::InferenceServer(TrainedModel& tm, ServeOptions opts)
    : impl_(std::make_unique<Impl>(tm, opts)) {
  Impl& s = *impl_;
  s.server.set_payload_max_length(opts.max_body_bytes);
  s.server.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kServePage, "text/html; charset=utf-8");
  });
  s.server.Get("/api/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"ok"})", "application/json");
  });
  s.server.Get("/api/model", [&s](const httplib::Request&, httplib::Response& res) {
    json meta = json::object();
    for (const auto& [k, v] : read_checkpoint_metadata(s.tm.checkpoint))
      if (k != "config" && k != "input") meta[k] = v;
    res.set_content(json{{"name", s.tm.model->name()},
                         {"classes", s.tm.input.num_classes},
                         {"class_names", s.tm.input.class_names},
                         {"input", {s.tm.input.h, s.tm.input.w, s.tm.input.c}},
                         {"checkpoint", s.tm.checkpoint},
                         {"threshold", s.opts.threshold},
                         {"metadata", meta}}
                        .dump(),
                    "application/json");
  });
  s.server.Post("/api/predict", [&s](const httplib::Request& req, httplib::Response& res) {
    std::string upload;
    const std::string* body = &req.body;
    if (req.is_multipart_form_data()) {
      if (!req.has_file("image"))
        return reply_error(res, 400, "multipart upload without an 'image' field");
      upload = req.get_file_value("image").content;
      body = &upload;
    }
    if (body->empty()) return reply_error(res, 400, "empty body: send an image");
    int k = 3;
    if (req.has_param("k")) {
      try {
        k = std::stoi(req.get_param_value("k"));
      } catch (...) {
        k = 0;
      }
      if (k < 1 || k > s.tm.input.num_classes)
        return reply_error(
            res, 400,
            "k must be an integer in [1, " + std::to_string(s.tm.input.num_classes) + "]");
    }
    data::Image image;
    try {
      int h = 0, w = 0;
      data::probe_image(body->data(), body->size(), "upload", h, w);
      if (h > s.opts.max_image_side || w > s.opts.max_image_side)
        return reply_error(res, 413,
                           "image of " + std::to_string(w) + "x" + std::to_string(h) +
                               " exceeds the limit of " + std::to_string(s.opts.max_image_side) +
                               " per side");
      image = data::decode_image(body->data(), body->size(), s.tm.input.source.c, "upload");
    } catch (const std::exception& e) {
      return reply_error(res, 400, e.what());
    }
    try {
      auto [pred, model_ms] = s.predictor.predict(std::move(image), k);
      json top = json::array();
      for (const auto& [cls, prob] : pred.top)
        top.push_back({{"class", s.tm.input.class_names[size_t(cls)]},
                       {"index", cls},
                       {"probability", prob}});
      res.set_content(json{{"top", top},
                           {"uncertain", pred.uncertain},
                           {"model", s.tm.model->name()},
                           {"model_ms", model_ms}}
                          .dump(),
                      "application/json");
    } catch (const std::exception& e) {
      reply_error(res, 500, e.what());
    }
  });
}

InferenceServer::~InferenceServer() {
  stop();
}

int InferenceServer::bind() {
  Impl& s = *impl_;
  int port = s.opts.port == 0
                 ? s.server.bind_to_any_port(s.opts.host)
                 : (s.server.bind_to_port(s.opts.host, s.opts.port) ? s.opts.port : -1);
  OSPREY_CHECK(port > 0, "serve: cannot listen on ", s.opts.host, ":", s.opts.port);
  return port;
}

void InferenceServer::listen() {
  impl_->server.listen_after_bind();
}

void InferenceServer::stop() {
  impl_->server.stop();
}

}  // namespace osprey::tools
