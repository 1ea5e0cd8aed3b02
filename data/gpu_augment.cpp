#include "data/gpu_augment.h"

#include <algorithm>
#include <memory>

#include "engine/device.h"
#include "engine/error.h"
#include "engine/storage.h"

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

// A small per-batch parameter array on the GPU (the copy waits for the compute stream, and the
// storage is freed in stream order after the kernels that read it).
template <typename T>
std::shared_ptr<Storage> upload(const std::vector<T>& v) {
  auto s = Storage::allocate(v.size() * sizeof(T), Device::cuda);
  copy_bytes(s->data(), v.data(), v.size() * sizeof(T));
  return s;
}

template <typename T>
const T* as(const std::shared_ptr<Storage>& s) {
  return static_cast<const T*>(s->data());
}

}  // namespace

Tensor GpuAugmenter::run(const Dataset& ds, const int64_t* indices, int count, uint64_t seed,
                         int epoch) const {
  OSPREY_CHECK(ds.h == source_.h && ds.w == source_.w && ds.c == source_.c,
               "GpuAugmenter: dataset '", ds.name, "' has ", ds.h, "x", ds.w, "x", ds.c,
               " images, the augmenter was made for ", source_.h, "x", source_.w, "x", source_.c);
  check_batch_indices(ds, indices, count, "GpuAugmenter");
  const cudaStream_t stream = cuda::compute_stream();
  const int64_t isz = ds.image_size();
  Tensor raw = Tensor::empty({count, ds.h, ds.w, ds.c}, DType::u8);
  for (int i = 0; i < count; ++i)
    std::copy_n(ds.pixels.data() + indices[i] * isz, isz, raw.data<uint8_t>() + i * isz);
  Tensor a = Tensor::empty({count, in_.h, in_.w, in_.c}, DType::f32, Device::cuda);
  cuda::unit_float_from_u8(int64_t(count) * in_.h * in_.w, ds.c, in_.c,
                           raw.to(Device::cuda).ptr<uint8_t>(), a.ptr<float>(), stream);

  std::vector<std::vector<StepDraw>> draws(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) draws[size_t(i)] = pipeline_.draw(in_, seed, epoch, indices[i]);
  ImageShape s = in_;
  const std::vector<AugmentStep>& steps = pipeline_.steps();
  for (size_t k = 0; k < steps.size(); ++k) {
    const AugmentStep& st = steps[k];
    const ImageShape o = pipeline_.step_output_shape(k, s);
    const int64_t pixels = int64_t(count) * s.h * s.w;
    Tensor b;  // the step's output when it does not work in place
    auto next = [&] { b = Tensor::empty({count, o.h, o.w, o.c}, DType::f32, Device::cuda); };
    auto boxes = [&] {
      std::vector<cuda::AugmentBox> v;
      for (const auto& d : draws)
        v.push_back({d[k].box.top, d[k].box.left, d[k].box.height, d[k].box.width});
      return upload(v);
    };
    switch (st.kind) {
      case Kind::kResize:
        next();
        cuda::resized_crop_bilinear(count, s.h, s.w, s.c, nullptr, o.h, o.w, a.ptr<float>(),
                                    b.ptr<float>(), stream);
        break;
      case Kind::kCenterCrop: {
        const tf::CropBox box = tf::center_crop_box(s.h, s.w, o.h, o.w);
        next();
        cuda::pad_crop(count, s.h, s.w, s.c, 0, st.fill, nullptr, box.top, box.left, o.h, o.w,
                       a.ptr<float>(), b.ptr<float>(), stream);
        break;
      }
      case Kind::kRandomResizedCrop: {
        const auto box = boxes();
        next();
        cuda::resized_crop_bilinear(count, s.h, s.w, s.c, as<cuda::AugmentBox>(box), o.h, o.w,
                                    a.ptr<float>(), b.ptr<float>(), stream);
        break;
      }
      case Kind::kPadCrop: {
        const auto box = boxes();
        next();
        cuda::pad_crop(count, s.h, s.w, s.c, st.pad, st.fill, as<cuda::AugmentBox>(box), 0, 0, o.h,
                       o.w, a.ptr<float>(), b.ptr<float>(), stream);
        break;
      }
      case Kind::kHFlip: {
        std::vector<uint8_t> flip;
        for (const auto& d : draws) flip.push_back(d[k].flip ? 1 : 0);
        const auto f = upload(flip);
        next();
        cuda::hflip(count, s.h, s.w, s.c, as<uint8_t>(f), a.ptr<float>(), b.ptr<float>(), stream);
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
        const auto p = upload(params);
        cuda::color_jitter(count, int64_t(s.h) * s.w, s.c, as<cuda::JitterParams>(p),
                           a.ptr<float>(), stream);
        break;
      }
      case Kind::kRotation: {
        std::vector<double2> cs;
        for (const auto& d : draws) {
          double c, sn;
          tf::rotation_cos_sin(d[k].degrees, c, sn);
          cs.push_back(make_double2(c, sn));
        }
        const auto r = upload(cs);
        next();
        cuda::rotate(count, s.h, s.w, s.c, as<double2>(r), st.fill, st.bilinear, a.ptr<float>(),
                     b.ptr<float>(), stream);
        break;
      }
      case Kind::kNormalize: {
        std::vector<float> mean, stdv;
        for (int q = 0; q < s.c; ++q) {
          mean.push_back(st.mean[st.mean.size() == 1 ? 0 : size_t(q)]);
          stdv.push_back(st.std[st.std.size() == 1 ? 0 : size_t(q)]);
        }
        const auto m = upload(mean), sd = upload(stdv);
        cuda::normalize(pixels, s.c, as<float>(m), as<float>(sd), a.ptr<float>(), stream);
        break;
      }
    }
    if (b.defined()) a = b;
    s = o;
  }
  return a;
}

#else

Tensor GpuAugmenter::run(const Dataset&, const int64_t*, int, uint64_t, int) const {
  fail("GpuAugmenter: this osprey was built without CUDA (augment on the cpu instead)");
}

#endif

}  // namespace osprey::data
