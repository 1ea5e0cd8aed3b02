#include "data/augment.h"

#include <omp.h>

#include <algorithm>
#include <exception>
#include <utility>

#include "data/transforms.h"
#include "engine/rng.h"
#include "kernels/error.h"

namespace osprey::data {
namespace {

using Kind = AugmentStep::Kind;

// A SplitMix64 stream keyed by (seed, epoch, sample, transform): a counter-based generator, so a
// sample's draws never depend on what ran before it on the same thread. Each transform has its
// own stream, so RandomResizedCrop's variable number of attempts cannot shift later draws.
class StepRng {
 public:
  StepRng(uint64_t seed, int epoch, int64_t sample, size_t step) {
    // The salt keeps these streams apart from epoch_order's, which hashes the same seed.
    uint64_t k = splitmix64(seed ^ 0x6A09E667F3BCC909ull);
    k = splitmix64(k ^ uint64_t(int64_t(epoch)));
    k = splitmix64(k ^ uint64_t(sample));
    state_ = splitmix64(k ^ uint64_t(step));
  }
  // 53 random bits: uniform in [0, 1).
  double uniform() {
    state_ += 0x9E3779B97F4A7C15ull;
    return double(splitmix64(state_) >> 11) * 0x1.0p-53;
  }
  double uniform(const double range[2]) { return range[0] + (range[1] - range[0]) * uniform(); }

 private:
  uint64_t state_ = 0;
};

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kResize:
      return "resize";
    case Kind::kCenterCrop:
      return "center_crop";
    case Kind::kRandomResizedCrop:
      return "random_resized_crop";
    case Kind::kHFlip:
      return "hflip";
    case Kind::kColorJitter:
      return "color_jitter";
    case Kind::kRotation:
      return "rotation";
    case Kind::kPadCrop:
      return "pad_crop";
    case Kind::kNormalize:
      return "normalize";
  }
  return "?";
}

ImageShape step_shape(const AugmentStep& st, size_t i, ImageShape s) {
  const auto where = [&] {
    return "augmentation transforms[" + std::to_string(i) + "] (" + kind_name(st.kind) + "): ";
  };
  switch (st.kind) {
    case Kind::kResize:
      if (st.shorter_side) {
        // torchvision: the shorter side becomes size, the longer int(size * long / short).
        const int shorter = std::min(s.h, s.w), longer = std::max(s.h, s.w);
        const int scaled = int(double(st.size_h) * longer / shorter);
        return s.h <= s.w ? ImageShape{st.size_h, scaled, s.c} : ImageShape{scaled, st.size_h, s.c};
      }
      return {st.size_h, st.size_w, s.c};
    case Kind::kCenterCrop:
    case Kind::kRandomResizedCrop:
      return {st.size_h, st.size_w, s.c};
    case Kind::kPadCrop:
      OSPREY_CHECK(st.size_h <= s.h + 2 * st.pad && st.size_w <= s.w + 2 * st.pad, where(),
                   "size [", st.size_h, ", ", st.size_w, "] is larger than the padded input ", s.h,
                   "x", s.w, " + 2 x ", st.pad);
      return {st.size_h, st.size_w, s.c};
    case Kind::kColorJitter:
      OSPREY_CHECK(s.c == 1 || s.c == 3, where(), "needs 1 or 3 channels, the input has ", s.c);
      return s;
    case Kind::kNormalize:
      OSPREY_CHECK(st.mean.size() == 1 || int(st.mean.size()) == s.c, where(), "has ",
                   st.mean.size(), " mean/std values for ", s.c, " channel(s); give 1 or ", s.c);
      return s;
    case Kind::kHFlip:
    case Kind::kRotation:
      return s;
  }
  return s;
}

// The draws of one step for one sample, in the order torchvision makes them.
StepDraw draw_step(const AugmentStep& st, ImageShape s, ImageShape o, StepRng& rng) {
  StepDraw d;
  switch (st.kind) {
    case Kind::kRandomResizedCrop:
      d.box =
          tf::random_resized_crop_box(s.h, s.w, st.scale, st.ratio, [&] { return rng.uniform(); });
      break;
    case Kind::kHFlip:
      d.flip = rng.uniform() < st.p;
      break;
    case Kind::kColorJitter:
      // torchvision's ColorJitter.get_params: a random order first, then the factors b, c, s, h.
      for (int k = 3; k > 0; --k)
        std::swap(d.order[k], d.order[std::min(k, int(rng.uniform() * (k + 1)))]);
      if (st.has_brightness) d.brightness = float(rng.uniform(st.brightness));
      if (st.has_contrast) d.contrast = float(rng.uniform(st.contrast));
      if (st.has_saturation) d.saturation = float(rng.uniform(st.saturation));
      if (st.has_hue) d.hue = float(rng.uniform(st.hue));
      break;
    case Kind::kRotation:
      d.degrees = rng.uniform(st.degrees);
      break;
    case Kind::kPadCrop: {
      const int top = int(rng.uniform() * (s.h + 2 * st.pad - o.h + 1));
      const int left = int(rng.uniform() * (s.w + 2 * st.pad - o.w + 1));
      d.box = {std::min(top, s.h + 2 * st.pad - o.h), std::min(left, s.w + 2 * st.pad - o.w), o.h,
               o.w};
      break;
    }
    case Kind::kResize:
    case Kind::kCenterCrop:
    case Kind::kNormalize:
      break;
  }
  return d;
}

void color_jitter(const AugmentStep& st, const StepDraw& d, float* img, int64_t n, int c) {
  for (int k : d.order) {
    if (k == 0 && st.has_brightness) tf::adjust_brightness(img, n, c, d.brightness);
    if (k == 1 && st.has_contrast) tf::adjust_contrast(img, n, c, d.contrast);
    if (k == 2 && st.has_saturation) tf::adjust_saturation(img, n, c, d.saturation);
    if (k == 3 && st.has_hue) tf::adjust_hue(img, n, c, d.hue);
  }
}

// The pipeline body; shapes must have been validated (it throws nothing but bad_alloc).
void run(const std::vector<AugmentStep>& steps, const uint8_t* in, ImageShape s, uint64_t seed,
         int epoch, int64_t sample, float* out) {
  // Per-thread ping-pong buffers: after the first sample no allocation happens here.
  thread_local std::vector<float> a, b;
  const int64_t n_in = int64_t(s.h) * s.w * s.c;
  a.resize(size_t(n_in));
  for (int64_t k = 0; k < n_in; ++k) a[size_t(k)] = float(in[k]) / 255.0f;
  for (size_t i = 0; i < steps.size(); ++i) {
    const AugmentStep& st = steps[i];
    const ImageShape o = step_shape(st, i, s);
    const int64_t pixels = int64_t(s.h) * s.w;
    StepRng rng(seed, epoch, sample, i);
    const StepDraw d = draw_step(st, s, o, rng);
    b.resize(size_t(int64_t(o.h) * o.w * o.c));
    bool swap = true;  // whether the step wrote b
    switch (st.kind) {
      case Kind::kResize:
        tf::resize_bilinear(a.data(), s.h, s.w, s.c, b.data(), o.h, o.w);
        break;
      case Kind::kCenterCrop: {
        const tf::CropBox box = tf::center_crop_box(s.h, s.w, o.h, o.w);
        tf::pad_crop(a.data(), s.h, s.w, s.c, 0, st.fill, box.top, box.left, b.data(), o.h, o.w);
        break;
      }
      case Kind::kRandomResizedCrop:
        tf::resized_crop_bilinear(a.data(), s.h, s.w, s.c, d.box.top, d.box.left, d.box.height,
                                  d.box.width, b.data(), o.h, o.w);
        break;
      case Kind::kHFlip:
        swap = d.flip;
        if (swap) tf::hflip(a.data(), s.h, s.w, s.c, b.data());
        break;
      case Kind::kColorJitter:
        color_jitter(st, d, a.data(), pixels, s.c);
        swap = false;
        break;
      case Kind::kRotation:
        tf::rotate(a.data(), s.h, s.w, s.c, d.degrees, st.fill, st.bilinear, b.data());
        break;
      case Kind::kPadCrop:
        tf::pad_crop(a.data(), s.h, s.w, s.c, st.pad, st.fill, d.box.top, d.box.left, b.data(), o.h,
                     o.w);
        break;
      case Kind::kNormalize: {
        thread_local std::vector<float> mean, stdv;
        mean.resize(size_t(s.c));
        stdv.resize(size_t(s.c));
        for (int k = 0; k < s.c; ++k) {
          mean[size_t(k)] = st.mean[st.mean.size() == 1 ? 0 : size_t(k)];
          stdv[size_t(k)] = st.std[st.std.size() == 1 ? 0 : size_t(k)];
        }
        tf::normalize(a.data(), pixels, s.c, mean.data(), stdv.data());
        swap = false;
        break;
      }
    }
    if (swap) std::swap(a, b);
    s = o;
  }
  std::copy(a.begin(), a.begin() + int64_t(s.h) * s.w * s.c, out);
}

}  // namespace

ImageShape AugmentPipeline::output_shape(ImageShape in) const {
  OSPREY_CHECK(in.h >= 1 && in.w >= 1 && in.c >= 1, "augmentation: input image ", in.h, "x", in.w,
               "x", in.c, " has an empty dimension");
  for (size_t i = 0; i < steps_.size(); ++i) in = step_shape(steps_[i], i, in);
  return in;
}

void AugmentPipeline::apply(const uint8_t* hwc_in, int h, int w, int c, uint64_t seed, int epoch,
                            int64_t sample_index, float* hwc_out) const {
  output_shape({h, w, c});
  run(steps_, hwc_in, {h, w, c}, seed, epoch, sample_index, hwc_out);
}

std::vector<StepDraw> AugmentPipeline::draw(ImageShape in, uint64_t seed, int epoch,
                                            int64_t sample_index) const {
  output_shape(in);
  std::vector<StepDraw> draws;
  for (size_t i = 0; i < steps_.size(); ++i) {
    const ImageShape o = step_shape(steps_[i], i, in);
    StepRng rng(seed, epoch, sample_index, i);
    draws.push_back(draw_step(steps_[i], in, o, rng));
    in = o;
  }
  return draws;
}

ImageShape AugmentPipeline::step_output_shape(size_t i, ImageShape in) const {
  OSPREY_CHECK(i < steps_.size(), "augmentation: no step ", i, " in a pipeline of ", steps_.size());
  return step_shape(steps_[i], i, in);
}

bool AugmentPipeline::deterministic() const {
  return std::none_of(steps_.begin(), steps_.end(), [](const AugmentStep& st) {
    return st.kind == Kind::kRandomResizedCrop || st.kind == Kind::kHFlip ||
           st.kind == Kind::kColorJitter || st.kind == Kind::kRotation || st.kind == Kind::kPadCrop;
  });
}

bool AugmentPipeline::has_normalize() const {
  return !steps_.empty() && steps_.back().kind == Kind::kNormalize;
}

void augment_batch(const AugmentPipeline& pipeline, const Dataset& ds, const int64_t* indices,
                   int count, uint64_t seed, int epoch, int channels, float* out, int threads) {
  const int cin = channels == 0 ? ds.c : channels;
  OSPREY_CHECK(cin == ds.c || (ds.c == 1 && cin == 3), "augment_batch: cannot turn dataset '",
               ds.name, "' of ", ds.c, " channel(s) into ", channels,
               " (only grayscale -> 3 is supported)");
  const int64_t isz = ds.image_size();
  check_batch_indices(ds, indices, count, "augment_batch");
  const ImageShape in{ds.h, ds.w, cin};
  const ImageShape o = pipeline.output_shape(in);
  const int64_t osz = int64_t(o.h) * o.w * o.c;
  const int nt = threads > 0 ? threads : omp_get_max_threads();
  std::exception_ptr error;
#pragma omp parallel for schedule(static) num_threads(nt) if (count > 1)
  for (int i = 0; i < count; ++i) {
    try {
      const uint8_t* src = ds.pixels.data() + indices[i] * isz;
      if (cin != ds.c) {
        thread_local std::vector<uint8_t> rgb;
        rgb.resize(size_t(isz) * 3);
        for (int64_t p = 0; p < isz; ++p) std::fill_n(rgb.data() + 3 * p, 3, src[p]);
        src = rgb.data();
      }
      run(pipeline.steps(), src, in, seed, epoch, indices[i], out + i * osz);
    } catch (...) {
#pragma omp critical(osprey_augment_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

void eval_into(const AugmentPipeline& pipeline, const Dataset& ds, const int64_t* indices,
               int count, int channels, float* out, int threads) {
  OSPREY_CHECK(pipeline.deterministic(),
               "eval_into: the evaluation pipeline has random transforms; use "
               "eval_pipeline() of the training pipeline, or resize/center_crop/normalize only");
  augment_batch(pipeline, ds, indices, count, 0, 0, channels, out, threads);
}

}  // namespace osprey::data
