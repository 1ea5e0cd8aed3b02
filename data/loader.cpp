#include "data/loader.h"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <utility>

#include "data/augment.h"
#include "engine/rng.h"
#include "kernels/error.h"

namespace osprey::data {
namespace {

// Lemire's multiply-shift with rejection: uniform in [0, range) without modulo bias.
uint64_t bounded(std::mt19937_64& rng, uint64_t range) {
  unsigned __int128 m = static_cast<unsigned __int128>(rng()) * range;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < range) {
    const uint64_t threshold = (0 - range) % range;
    while (low < threshold) {
      m = static_cast<unsigned __int128>(rng()) * range;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

void check_normalize(const Normalize& norm, int c, const char* who) {
  OSPREY_CHECK(norm.mean.size() == norm.std.size(), who, ": normalize has ", norm.mean.size(),
               " mean(s) but ", norm.std.size(), " std(s)");
  const size_t k = norm.mean.size();
  OSPREY_CHECK(k == 0 || k == 1 || k == size_t(c), who, ": normalize has ", k,
               " mean/std entries for ", c, " channel(s); give 0, 1 or ", c);
  for (size_t i = 0; i < k; ++i)
    OSPREY_CHECK(norm.std[i] != 0.0f, who, ": normalize std[", i, "] is 0");
}

// One value per (channel, pixel) pair. Uses the same float expression as the documented
// formula, so a table lookup gives bit-identical results to computing it per pixel.
inline float normalized(uint8_t v, float mean, float std) {
  return (float(v) / 255.0f - mean) / std;
}

}  // namespace

void normalize_into(const Dataset& ds, const int64_t* indices, int count, const Normalize& norm,
                    float* out) {
  normalize_into(ds, indices, count, norm, ds.c, out);
}

void normalize_into(const Dataset& ds, const int64_t* indices, int count, const Normalize& norm,
                    int channels, float* out) {
  OSPREY_CHECK(channels == ds.c || (ds.c == 1 && channels == 3), "normalize_into: cannot turn ",
               ds.c, " channel(s) of dataset '", ds.name, "' into ", channels,
               " (only grayscale -> 3 is supported)");
  check_normalize(norm, channels, "normalize_into");
  const int64_t isz = ds.image_size();
  check_batch_indices(ds, indices, count, "normalize_into");
  const int c = channels;
  auto mean_of = [&](int ch) {
    return norm.mean.empty() ? 0.0f : norm.mean[norm.mean.size() == 1 ? 0 : ch];
  };
  auto std_of = [&](int ch) {
    return norm.std.empty() ? 1.0f : norm.std[norm.std.size() == 1 ? 0 : ch];
  };

  // A 256-entry table per channel fits on the stack for the usual 1 or 3 channels; wider images
  // fall back to evaluating the formula, which gives the same values.
  constexpr int kMaxLutChannels = 4;
  std::array<float, 256 * kMaxLutChannels> lut;
  const bool use_lut = c <= kMaxLutChannels;
  if (use_lut)
    for (int ch = 0; ch < c; ++ch)
      for (int v = 0; v < 256; ++v)
        lut[ch * 256 + v] = normalized(uint8_t(v), mean_of(ch), std_of(ch));

  const uint8_t* pixels = ds.pixels.data();
  // Small batches stay on the calling thread: the loader's worker runs beside the training
  // step's own OpenMP team, and a second team for ~50k values costs more than it saves.
  const bool parallel = int64_t(count) * isz >= (int64_t(1) << 20);
  const int64_t osz = isz / ds.c * c;
#pragma omp parallel for schedule(static) if (parallel)
  for (int i = 0; i < count; ++i) {
    const uint8_t* src = pixels + indices[i] * isz;
    float* dst = out + int64_t(i) * osz;
    if (c != ds.c) {  // grayscale replicated: one source byte per output pixel
      for (int64_t p = 0; p < isz; ++p)
        for (int ch = 0; ch < c; ++ch)
          dst[p * c + ch] =
              use_lut ? lut[ch * 256 + src[p]] : normalized(src[p], mean_of(ch), std_of(ch));
    } else if (use_lut) {
      if (c == 1) {
        for (int64_t p = 0; p < isz; ++p) dst[p] = lut[src[p]];
      } else {
        for (int64_t p = 0; p < isz; p += c)
          for (int ch = 0; ch < c; ++ch) dst[p + ch] = lut[ch * 256 + src[p + ch]];
      }
    } else {
      for (int64_t p = 0; p < isz; p += c)
        for (int ch = 0; ch < c; ++ch)
          dst[p + ch] = normalized(src[p + ch], mean_of(ch), std_of(ch));
    }
  }
}

void epoch_order(int64_t n, bool shuffle, uint64_t seed, int epoch, std::vector<int64_t>& order) {
  order.resize(size_t(n));
  std::iota(order.begin(), order.end(), int64_t(0));
  if (!shuffle || n < 2) return;
  // Hashing seed and epoch together keeps nearby (seed, epoch) pairs from giving correlated
  // engine states.
  std::mt19937_64 rng(splitmix64(seed ^ splitmix64(uint64_t(int64_t(epoch)))));
  for (int64_t i = n - 1; i > 0; --i) {
    int64_t j = int64_t(bounded(rng, uint64_t(i) + 1));
    std::swap(order[size_t(i)], order[size_t(j)]);
  }
}

BatchLoader::BatchLoader(const Dataset& ds, LoaderOptions opts) : ds_(ds), opts_(std::move(opts)) {
  OSPREY_CHECK(opts_.batch_size >= 1, "BatchLoader: batch_size must be >= 1, got ",
               opts_.batch_size);
  OSPREY_CHECK(opts_.world >= 1, "BatchLoader: world must be >= 1, got ", opts_.world);
  OSPREY_CHECK(opts_.rank >= 0 && opts_.rank < opts_.world, "BatchLoader: rank ", opts_.rank,
               " is outside [0, ", opts_.world, ")");
  OSPREY_CHECK(ds_.n >= 0 && ds_.h >= 0 && ds_.w >= 0 && ds_.c >= 0, "BatchLoader: dataset '",
               ds_.name, "' has a negative dimension");
  OSPREY_CHECK(int64_t(ds_.pixels.size()) == int64_t(ds_.n) * ds_.image_size(),
               "BatchLoader: dataset '", ds_.name, "' has ", ds_.pixels.size(),
               " pixel bytes, expected ", ds_.n, " x ", ds_.h, " x ", ds_.w, " x ", ds_.c);
  OSPREY_CHECK(int64_t(ds_.labels.size()) == ds_.n, "BatchLoader: dataset '", ds_.name, "' has ",
               ds_.labels.size(), " labels for ", ds_.n, " images");
  channels_ = opts_.channels == 0 ? ds_.c : opts_.channels;
  OSPREY_CHECK(channels_ == ds_.c || (ds_.c == 1 && channels_ == 3), "BatchLoader: channels ",
               opts_.channels, " asked for dataset '", ds_.name, "' of ", ds_.c,
               " channel(s); give 0 (the dataset's) or 3 for a grayscale dataset");
  shape_ = {ds_.h, ds_.w, channels_};
  if (opts_.augment) {
    pipeline_ = opts_.augment;
    if (!opts_.normalize.mean.empty() || !opts_.normalize.std.empty()) {
      check_normalize(opts_.normalize, channels_, "BatchLoader");
      OSPREY_CHECK(!pipeline_->has_normalize(),
                   "BatchLoader: mean/std are given twice, in LoaderOptions::normalize and in the "
                   "augmentation pipeline's normalize; keep one");
      pipeline_ = std::make_shared<const AugmentPipeline>(
          pipeline_->with_normalize(opts_.normalize.mean, opts_.normalize.std));
    }
    // An empty dataset has no image size to check; it never produces a batch either.
    if (ds_.n > 0) shape_ = pipeline_->output_shape(shape_);
  } else {
    check_normalize(opts_.normalize, channels_, "BatchLoader");
  }

  const int64_t n = ds_.n, w = opts_.world, b = opts_.batch_size;
  if (opts_.drop_last) {
    batches_ = (n / w) / b;
    samples_ = batches_ * b;
  } else {
    samples_ = n == 0 ? 0 : (n + w - 1) / w;
    batches_ = (samples_ + b - 1) / b;
  }
  batch_idx_.resize(size_t(b));
  if (!opts_.shuffle) epoch_order(n, false, 0, 0, order_);
  worker_ = std::thread([this] { worker_loop(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  // A batch being filled finishes first (milliseconds); nothing waits on the caller.
  if (worker_.joinable()) worker_.join();
}

void BatchLoader::start_epoch(int epoch) {
  std::unique_lock<std::mutex> lock(mu_);
  // The order and slot_ belong to the worker while it fills; wait until it is idle.
  cv_.wait(lock, [&] { return !busy_; });
  pending_ = false;
  ready_ = false;
  error_ = nullptr;
  if (opts_.shuffle) epoch_order(ds_.n, true, opts_.seed, epoch, order_);
  epoch_ = epoch;
  started_ = true;
  next_batch_ = 0;
  if (batches_ > 0) {
    fill_batch_ = 0;
    pending_ = true;
    cv_.notify_all();
  }
}

bool BatchLoader::next(Batch& out) {
  std::unique_lock<std::mutex> lock(mu_);
  OSPREY_CHECK(started_, "BatchLoader::next: call start_epoch before the first next");
  if (next_batch_ >= batches_) return false;
  cv_.wait(lock, [&] { return ready_ || error_; });
  if (error_) {
    std::exception_ptr e = std::exchange(error_, nullptr);
    next_batch_ = batches_;
    std::rethrow_exception(e);
  }
  std::swap(out, slot_);
  ready_ = false;
  ++next_batch_;
  if (next_batch_ < batches_) {
    fill_batch_ = next_batch_;
    pending_ = true;
    cv_.notify_all();
  }
  return true;
}

void BatchLoader::worker_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || pending_; });
    if (stop_) return;
    pending_ = false;
    busy_ = true;
    const int64_t batch = fill_batch_;
    lock.unlock();
    std::exception_ptr err;
    try {
      fill(batch, slot_);
    } catch (...) {
      err = std::current_exception();
    }
    lock.lock();
    busy_ = false;
    if (err)
      error_ = err;
    else
      ready_ = true;
    cv_.notify_all();
  }
}

AugmentPipeline BatchLoader::pipeline() const {
  if (pipeline_) return *pipeline_;
  // normalize_into's rule, as a pipeline (a single mean/std value applies to every channel in
  // both).
  return AugmentPipeline::from_json(nlohmann::json::array())
      .with_normalize(opts_.normalize.mean, opts_.normalize.std);
}

void BatchLoader::fill(int64_t batch, Batch& out) {
  const int64_t n = ds_.n, w = opts_.world, r = opts_.rank;
  const int64_t begin = batch * opts_.batch_size;
  const int count = int(std::min<int64_t>(opts_.batch_size, samples_ - begin));
  int valid = 0;
  for (int i = 0; i < count; ++i) {
    const int64_t pos = (begin + i) * w + r;  // position in the (padded) epoch order
    if (pos < n) ++valid;
    batch_idx_[size_t(i)] = order_[size_t(pos % n)];
  }
  out.n = count;
  out.h = shape_.h;
  out.w = shape_.w;
  out.c = shape_.c;
  out.valid = valid;
  // resize keeps capacity, so after the first two batches no allocation happens here.
  if (opts_.images) out.images.resize(size_t(int64_t(count) * shape_.h * shape_.w * shape_.c));
  out.labels.resize(size_t(count));
  out.indices.assign(batch_idx_.begin(), batch_idx_.begin() + count);
  for (int i = 0; i < count; ++i) {
    const int64_t idx = batch_idx_[size_t(i)];
    const int64_t label = ds_.labels[size_t(idx)];
    OSPREY_CHECK(label >= 0 && label < ds_.num_classes, "BatchLoader: dataset '", ds_.name,
                 "' sample ", idx, " has label ", label, " outside [0, ", ds_.num_classes, ")");
    out.labels[size_t(i)] = label;
  }
  if (!opts_.images) {
    out.images.clear();
    return;
  }
  if (pipeline_)
    augment_batch(*pipeline_, ds_, batch_idx_.data(), count, opts_.seed, epoch_, channels_,
                  out.images.data(), opts_.augment_threads);
  else
    normalize_into(ds_, batch_idx_.data(), count, opts_.normalize, channels_, out.images.data());
}

}  // namespace osprey::data
