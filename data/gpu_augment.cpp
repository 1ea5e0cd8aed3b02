#include "data/gpu_augment.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "engine/device.h"
#include "kernels/error.h"

#ifdef OSPREY_WITH_CUDA
#include "kernels/cuda/augment.h"
#include "kernels/cuda/runtime.h"
#endif

namespace osprey::data {

using Kind = AugmentStep::Kind;

GpuAugmenter::GpuAugmenter(AugmentPipeline pipeline, ImageShape source, int channels)
    : pipeline_(std::move(pipeline)), source_(source) {
  const int c = channels == 0 ? source.c : channels;
  OSPREY_CHECK(c == source.c || (source.c == 1 && c == 3), "GpuAugmenter: cannot turn ", source.c,
               " channel(s) into ", channels, " (only grayscale -> 3 is supported)");
  in_ = {source.h, source.w, c};
  out_ = pipeline_.output_shape(in_);
}

#ifdef OSPREY_WITH_CUDA

namespace {

// The batch's source images and every step's per-sample parameters in one host buffer, so a
// batch costs one asynchronous upload (BatchUploader) and no synchronisation with the GPU.
class Blob {
 public:
  // Room for `bytes` at a 16-byte aligned offset; returns the offset (fill it through at()).
  size_t append(size_t bytes) {
    const size_t offset = (bytes_.size() + 15) / 16 * 16;
    bytes_.resize(offset + bytes);
    return offset;
  }
  uint8_t* at(size_t offset) { return bytes_.data() + offset; }
  // Appends n elements of T; returns their offset.
  template <typename T>
  size_t add(const T* data, size_t n) {
    const size_t offset = append(n * sizeof(T));
    std::memcpy(at(offset), data, n * sizeof(T));
    return offset;
  }
  template <typename T>
  size_t add(const std::vector<T>& v) {
    return add(v.data(), v.size());
  }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace

Tensor GpuAugmenter::run(const Dataset& ds, const int64_t* indices, int count, uint64_t seed,
                         int epoch) {
  OSPREY_CHECK(ds.h == source_.h && ds.w == source_.w && ds.c == source_.c,
               "GpuAugmenter: dataset '", ds.name, "' has ", ds.h, "x", ds.w, "x", ds.c,
               " images, the augmenter was made for ", source_.h, "x", source_.w, "x", source_.c);
  check_batch_indices(ds, indices, count, "GpuAugmenter");
  if (!uploader_) uploader_ = std::make_unique<BatchUploader>();
  const cudaStream_t stream = cuda::compute_stream();
  const std::vector<AugmentStep>& steps = pipeline_.steps();

  // Host side: the source images, every sample's draws, each step's parameter array.
  Blob blob;
  const int64_t isz = ds.image_size();
  const size_t raw_at = blob.append(size_t(count * isz));
  for (int i = 0; i < count; ++i)
    std::copy_n(ds.pixels.data() + indices[i] * isz, isz, blob.at(raw_at) + i * isz);
  std::vector<std::vector<StepDraw>> draws(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) draws[size_t(i)] = pipeline_.draw(in_, seed, epoch, indices[i]);
  std::vector<size_t> param_at(steps.size(), 0), param2_at(steps.size(), 0);
  ImageShape s = in_;
  for (size_t k = 0; k < steps.size(); ++k) {
    const AugmentStep& st = steps[k];
    switch (st.kind) {
      case Kind::kRandomResizedCrop:
      case Kind::kPadCrop: {
        std::vector<cuda::AugmentBox> boxes;
        for (const auto& d : draws)
          boxes.push_back({d[k].box.top, d[k].box.left, d[k].box.height, d[k].box.width});
        param_at[k] = blob.add(boxes);
        break;
      }
      case Kind::kHFlip: {
        std::vector<uint8_t> flip;
        for (const auto& d : draws) flip.push_back(d[k].flip ? 1 : 0);
        param_at[k] = blob.add(flip);
        break;
      }
      case Kind::kColorJitter: {
        std::vector<cuda::JitterParams> params;
        for (const auto& d : draws) {
          const StepDraw& j = d[k];
          cuda::JitterParams p{};
          for (int q = 0; q < 4; ++q) p.order[q] = j.order[q];
          p.use[0] = st.has_brightness, p.use[1] = st.has_contrast;
          p.use[2] = st.has_saturation, p.use[3] = st.has_hue;
          p.factor[0] = j.brightness, p.factor[1] = j.contrast;
          p.factor[2] = j.saturation, p.factor[3] = j.hue;
          params.push_back(p);
        }
        param_at[k] = blob.add(params);
        break;
      }
      case Kind::kRotation: {
        std::vector<double2> cos_sin;
        for (const auto& d : draws) {
          double c, sn;
          tf::rotation_cos_sin(d[k].degrees, c, sn);
          cos_sin.push_back(make_double2(c, sn));
        }
        param_at[k] = blob.add(cos_sin);
        break;
      }
      case Kind::kNormalize: {
        std::vector<float> mean, stdv;
        for (int q = 0; q < s.c; ++q) {
          mean.push_back(st.mean[st.mean.size() == 1 ? 0 : size_t(q)]);
          stdv.push_back(st.std[st.std.size() == 1 ? 0 : size_t(q)]);
        }
        param_at[k] = blob.add(mean);
        param2_at[k] = blob.add(stdv);
        break;
      }
      case Kind::kResize:
      case Kind::kCenterCrop:
        break;
    }
    s = pipeline_.step_output_shape(k, s);
  }

  // Device side: one upload, then the steps as batched kernels on the compute stream.
  const Tensor uploaded = uploader_->upload_bytes(blob.bytes().data(), blob.bytes().size());
  const uint8_t* base = uploaded.ptr<uint8_t>();
  auto param = [&](size_t at) { return static_cast<const void*>(base + at); };
  Tensor a = Tensor::empty({count, in_.h, in_.w, in_.c}, DType::f32, Device::cuda);
  cuda::unit_float_from_u8(int64_t(count) * in_.h * in_.w, ds.c, in_.c, base + raw_at,
                           a.ptr<float>(), stream);
  s = in_;
  for (size_t k = 0; k < steps.size(); ++k) {
    const AugmentStep& st = steps[k];
    const ImageShape o = pipeline_.step_output_shape(k, s);
    Tensor b;  // the step's output when it does not work in place
    auto out = [&] {
      b = Tensor::empty({count, o.h, o.w, o.c}, DType::f32, Device::cuda);
      return b.ptr<float>();
    };
    const auto* boxes = static_cast<const cuda::AugmentBox*>(param(param_at[k]));
    switch (st.kind) {
      case Kind::kResize:
        cuda::resized_crop_bilinear(count, s.h, s.w, s.c, nullptr, o.h, o.w, a.ptr<float>(), out(),
                                    stream);
        break;
      case Kind::kCenterCrop: {
        const tf::CropBox box = tf::center_crop_box(s.h, s.w, o.h, o.w);
        cuda::pad_crop(count, s.h, s.w, s.c, 0, st.fill, nullptr, box.top, box.left, o.h, o.w,
                       a.ptr<float>(), out(), stream);
        break;
      }
      case Kind::kRandomResizedCrop:
        cuda::resized_crop_bilinear(count, s.h, s.w, s.c, boxes, o.h, o.w, a.ptr<float>(), out(),
                                    stream);
        break;
      case Kind::kPadCrop:
        cuda::pad_crop(count, s.h, s.w, s.c, st.pad, st.fill, boxes, 0, 0, o.h, o.w, a.ptr<float>(),
                       out(), stream);
        break;
      case Kind::kHFlip:
        cuda::hflip(count, s.h, s.w, s.c, static_cast<const uint8_t*>(param(param_at[k])),
                    a.ptr<float>(), out(), stream);
        break;
      case Kind::kColorJitter:
        cuda::color_jitter(count, int64_t(s.h) * s.w, s.c,
                           static_cast<const cuda::JitterParams*>(param(param_at[k])),
                           a.ptr<float>(), stream);
        break;
      case Kind::kRotation:
        cuda::rotate(count, s.h, s.w, s.c, static_cast<const double2*>(param(param_at[k])), st.fill,
                     st.bilinear, a.ptr<float>(), out(), stream);
        break;
      case Kind::kNormalize:
        cuda::normalize(int64_t(count) * s.h * s.w, s.c,
                        static_cast<const float*>(param(param_at[k])),
                        static_cast<const float*>(param(param2_at[k])), a.ptr<float>(), stream);
        break;
    }
    if (b.defined()) a = b;
    s = o;
  }
  return a;
}

#else

Tensor GpuAugmenter::run(const Dataset&, const int64_t*, int, uint64_t, int) {
  fail("GpuAugmenter: this osprey was built without CUDA (augment on the cpu instead)");
}

#endif

}  // namespace osprey::data
