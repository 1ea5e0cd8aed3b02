// The image transforms behind the augmentation pipeline, with every random choice passed in as
// an argument so tests (and other callers) can force it. Images are float HWC, values nominally
// in [0, 1]; c is the channel count. Semantics follow torchvision's tensor implementations;
// where they differ from it, the comment says so.
#pragma once
#include <cstdint>
#include <functional>

namespace osprey::data::tf {

// Bilinear resize with align_corners = false (half-pixel centres, the source coordinate clamped
// at 0 like PyTorch's upsample_bilinear2d). No antialiasing: torchvision's Resize antialiases
// when shrinking; upsampling (32 -> 224) is identical either way.
void resize_bilinear(const float* in, int h, int w, int c, float* out, int oh, int ow);

// Crops rows [top, top + ch) and columns [left, left + cw), then resizes that window to oh x ow
// with resize_bilinear's rule, in one pass (the same values as a crop followed by a resize).
void resized_crop_bilinear(const float* in, int h, int w, int c, int top, int left, int ch, int cw,
                           float* out, int oh, int ow);

struct CropBox {
  int top = 0, left = 0, height = 0, width = 0;
};

// torchvision's RandomResizedCrop.get_params: 10 attempts of area fraction uniform in scale and
// aspect ratio log-uniform in ratio, else a centre crop clamped to the ratio range. uniform01
// returns values in [0, 1); Python's round (half to even) is reproduced with nearbyint.
CropBox random_resized_crop_box(int h, int w, const double scale[2], const double ratio[2],
                                const std::function<double()>& uniform01);

// torchvision's CenterCrop offsets: round((h - oh) / 2), round((w - ow) / 2), half to even.
CropBox center_crop_box(int h, int w, int oh, int ow);

void hflip(const float* in, int h, int w, int c, float* out);

// Pads every side with pad pixels of value fill, then copies the oh x ow window whose top-left
// corner is (top, left) in padded coordinates: torchvision's RandomCrop(size, padding=pad) with
// the offset given. Requires 0 <= top <= h + 2 pad - oh and likewise for left.
void pad_crop(const float* in, int h, int w, int c, int pad, float fill, int top, int left,
              float* out, int oh, int ow);

// Colour adjustments in place on n pixels of c channels (1 or 3), each clamping to [0, 1].
// Grayscale weights are 0.299, 0.587, 0.114 (PIL's; torchvision's tensor path uses 0.2989).
void adjust_brightness(float* img, int64_t n, int c, float factor);  // x * f
void adjust_contrast(float* img, int64_t n, int c, float factor);    // blend with gray mean
void adjust_saturation(float* img, int64_t n, int c, float factor);  // blend with gray; c==1: no-op
void adjust_hue(float* img, int64_t n, int c, float shift);  // shift HSV hue, in turns; c==1: no-op

// Rotates counter-clockwise by degrees about the image centre ((w - 1) / 2, (h - 1) / 2 in pixel
// indices), sampling like torchvision's F.rotate (grid_sample, align_corners = false). Bilinear
// blends fill in the way torchvision does: out = sampled * m + (1 - m) * fill, where m is the sum
// of the bilinear weights that fall inside the image. Nearest uses fill for outside samples.
void rotate(const float* in, int h, int w, int c, double degrees, float fill, bool bilinear,
            float* out);
// The cosine and sine rotate() uses for an angle (other implementations take them from here so
// that they sample the same points).
void rotation_cos_sin(double degrees, double& cos_a, double& sin_a);

// (x - mean[ch]) / std[ch] in place; mean and std hold c values.
void normalize(float* img, int64_t n, int c, const float* mean, const float* std);

}  // namespace osprey::data::tf
