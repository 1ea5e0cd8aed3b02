// The augmentation transforms of data/transforms.h on the GPU, batched: b float HWC images in,
// b out, each sample with its own random choices (drawn on the host by
// data::AugmentPipeline::draw, uploaded as the arrays below). Same arithmetic as the CPU
// transforms, so a pipeline gives the same images on either device up to float rounding.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace osprey::cuda {

struct AugmentBox {
  int top, left, height, width;
};

// One sample's ColorJitter: the order of adjustments (0 brightness, 1 contrast, 2 saturation,
// 3 hue) and their factors; an adjustment the step does not make has use[k] == 0.
struct JitterParams {
  int order[4];
  int use[4];
  float factor[4];  // brightness, contrast, saturation factors; hue shift in turns
};

// uint8 -> value / 255, replicating one channel to c_out == 3 when c_in == 1.
void unit_float_from_u8(int64_t pixels, int c_in, int c_out, const uint8_t* in, float* out,
                        cudaStream_t stream);
// Bilinear resize of each sample's box (null: the whole image) to oh x ow (tf::resize_bilinear /
// resized_crop_bilinear).
void resized_crop_bilinear(int b, int h, int w, int c, const AugmentBox* boxes, int oh, int ow,
                           const float* in, float* out, cudaStream_t stream);
// Mirrors sample i when flip[i] != 0, copies it otherwise.
void hflip(int b, int h, int w, int c, const uint8_t* flip, const float* in, float* out,
           cudaStream_t stream);
// tf::pad_crop with each sample's offsets (boxes[i].top/left, padded coordinates), or the same
// offsets for all when boxes is null.
void pad_crop(int b, int h, int w, int c, int pad, float fill, const AugmentBox* boxes, int top,
              int left, int oh, int ow, const float* in, float* out, cudaStream_t stream);
// tf::adjust_* in each sample's order, in place; one block per image (contrast needs its mean).
void color_jitter(int b, int64_t pixels, int c, const JitterParams* params, float* img,
                  cudaStream_t stream);
// tf::rotate; cos_sin[i] = (cos, sin) of sample i's angle, computed on the host as the CPU
// does (so both devices sample the same points).
void rotate(int b, int h, int w, int c, const double2* cos_sin, float fill, bool bilinear,
            const float* in, float* out, cudaStream_t stream);
// (x - mean[k]) / std[k] per channel, in place; mean and std are device arrays of c values.
void normalize(int64_t pixels, int c, const float* mean, const float* std, float* img,
               cudaStream_t stream);

}  // namespace osprey::cuda
