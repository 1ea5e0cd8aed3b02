// Each augmentation transform against values worked out by hand on tiny images, with every
// random choice forced through the explicit-parameter functions of data/transforms.h.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "data/transforms.h"

namespace tf = osprey::data::tf;
using Floats = std::vector<float>;

namespace {

void check_close(const Floats& got, const Floats& want, double eps = 1e-5) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(got[i] == Approx(want[i]).margin(eps));
  }
}

}  // namespace

TEST_CASE("resize 2x2 -> 4x4 bilinear with half-pixel centres", "[data][transforms]") {
  // Along each axis output o samples source (o + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25,
  // 0.75, 1.25 (upper tap clamped to 1), so the weights of (first, second) are
  // (1, 0), (0.75, 0.25), (0.25, 0.75), (0, 1). Rows [0 4] -> [0 1 3 4], [8 12] -> [8 9 11 12];
  // the rows then blend with the same weights.
  const Floats in = {0, 4, 8, 12};
  Floats out(16);
  tf::resize_bilinear(in.data(), 2, 2, 1, out.data(), 4, 4);
  check_close(out, {0, 1, 3, 4, 2, 3, 5, 6, 6, 7, 9, 10, 8, 9, 11, 12});
}

TEST_CASE("resize 4x4 -> 2x2 averages 2x2 blocks, channels stay apart", "[data][transforms]") {
  // Sources (o + 0.5) * 2 - 0.5 = 0.5, 2.5: each output is the mean of a 2x2 block.
  Floats in(4 * 4 * 2);
  for (int p = 0; p < 16; ++p) {
    in[size_t(2 * p)] = float(p);
    in[size_t(2 * p + 1)] = 100.0f + float(p);
  }
  Floats out(2 * 2 * 2);
  tf::resize_bilinear(in.data(), 4, 4, 2, out.data(), 2, 2);
  // Block means: (0+1+4+5)/4 = 2.5, (2+3+6+7)/4 = 4.5, 10.5, 12.5.
  check_close(out, {2.5f, 102.5f, 4.5f, 104.5f, 10.5f, 110.5f, 12.5f, 112.5f});
}

TEST_CASE("resized crop of a window at its own size copies the window", "[data][transforms]") {
  const Floats in = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  Floats out(4);
  tf::resized_crop_bilinear(in.data(), 3, 3, 1, 1, 1, 2, 2, out.data(), 2, 2);
  check_close(out, {5, 6, 8, 9});
  // The 2x2 window at (0, 1) resized to 1x2: source row (0 + 0.5) * 2 - 0.5 = 0.5 blends rows
  // 0 and 1 equally; columns map 1:1 (scale 1). [(2+5)/2, (3+6)/2].
  Floats row(2);
  tf::resized_crop_bilinear(in.data(), 3, 3, 1, 0, 1, 2, 2, row.data(), 1, 2);
  check_close(row, {3.5f, 4.5f});
}

TEST_CASE("hflip mirrors columns and keeps each pixel's channels", "[data][transforms]") {
  const Floats in = {1, 10, 2, 20, 3, 30, 4, 40, 5, 50, 6, 60};  // 2x3, 2 channels
  Floats out(in.size());
  tf::hflip(in.data(), 2, 3, 2, out.data());
  check_close(out, {3, 30, 2, 20, 1, 10, 6, 60, 5, 50, 4, 40});
}

TEST_CASE("pad_crop at forced offsets", "[data][transforms]") {
  // [1 2; 3 4] padded by 1 with fill 9 is the 4x4
  //   9 9 9 9
  //   9 1 2 9
  //   9 3 4 9
  //   9 9 9 9
  const Floats in = {1, 2, 3, 4};
  Floats out(4);
  tf::pad_crop(in.data(), 2, 2, 1, 1, 9.0f, 0, 0, out.data(), 2, 2);
  check_close(out, {9, 9, 9, 1});
  tf::pad_crop(in.data(), 2, 2, 1, 1, 9.0f, 2, 2, out.data(), 2, 2);
  check_close(out, {4, 9, 9, 9});
  tf::pad_crop(in.data(), 2, 2, 1, 1, 9.0f, 1, 1, out.data(), 2, 2);
  check_close(out, {1, 2, 3, 4});
  tf::pad_crop(in.data(), 2, 2, 1, 1, 9.0f, 0, 1, out.data(), 2, 2);
  check_close(out, {9, 9, 1, 2});
  Floats full(16);
  tf::pad_crop(in.data(), 2, 2, 1, 1, 9.0f, 0, 0, full.data(), 4, 4);
  check_close(full, {9, 9, 9, 9, 9, 1, 2, 9, 9, 3, 4, 9, 9, 9, 9, 9});
}

TEST_CASE("crop boxes: centre rounding and RandomResizedCrop with forced draws",
          "[data][transforms]") {
  const tf::CropBox c1 = tf::center_crop_box(5, 5, 3, 3);
  CHECK((c1.top == 1 && c1.left == 1));
  const tf::CropBox c2 = tf::center_crop_box(4, 7, 3, 4);  // round(0.5) = 0, round(1.5) = 2
  CHECK((c2.top == 0 && c2.left == 2));

  // Area 100 * 0.25 with aspect 1 gives a 5x5 box; top = floor(0.5 * 6) = 3,
  // left = floor(0.99 * 6) = 5.
  std::vector<double> draws = {0.3, 0.7, 0.5, 0.99};
  size_t k = 0;
  auto next = [&] { return draws.at(k++); };
  const double scale[2] = {0.25, 0.25}, ratio[2] = {1.0, 1.0};
  tf::CropBox b = tf::random_resized_crop_box(10, 10, scale, ratio, next);
  CHECK((b.top == 3 && b.left == 5 && b.height == 5 && b.width == 5));
  CHECK(k == 4);

  // 10x20 with the whole area and aspect <= 1 needs a height >= 14: all 10 attempts fail (20
  // draws); the fallback clamps the input ratio 2 to 1: 10x10, centred at left 5.
  k = 0;
  draws.assign(20, 0.5);
  const double all[2] = {1.0, 1.0}, tall[2] = {0.5, 1.0};
  b = tf::random_resized_crop_box(10, 20, all, tall, next);
  CHECK((b.top == 0 && b.left == 5 && b.height == 10 && b.width == 10));
  CHECK(k == 20);
}

TEST_CASE("rotation by 90 degrees is a transpose followed by a vertical flip",
          "[data][transforms]") {
  // Counter-clockwise: the top-right corner moves to the top-left. [1 2 3; 4 5 6; 7 8 9]
  // transposed is [1 4 7; 2 5 8; 3 6 9], its rows reversed [3 6 9; 2 5 8; 1 4 7].
  const Floats in = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  Floats out(9);
  tf::rotate(in.data(), 3, 3, 1, 90.0, 0.0f, true, out.data());
  check_close(out, {3, 6, 9, 2, 5, 8, 1, 4, 7});
  tf::rotate(in.data(), 3, 3, 1, 90.0, 0.0f, false, out.data());
  check_close(out, {3, 6, 9, 2, 5, 8, 1, 4, 7});
  tf::rotate(in.data(), 3, 3, 1, -90.0, 0.0f, true, out.data());  // clockwise
  check_close(out, {7, 4, 1, 8, 5, 2, 9, 6, 3});
  tf::rotate(in.data(), 3, 3, 1, 180.0, 0.0f, true, out.data());
  check_close(out, {9, 8, 7, 6, 5, 4, 3, 2, 1});

  // An even size rotates about the centre between pixels ((w - 1) / 2 = 1.5) just the same.
  Floats in4(16), out4(16), want4(16);
  for (int i = 0; i < 16; ++i) in4[size_t(i)] = float(i);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) want4[size_t(r * 4 + c)] = in4[size_t(c * 4 + 3 - r)];
  tf::rotate(in4.data(), 4, 4, 1, 90.0, 0.0f, true, out4.data());
  check_close(out4, want4);
}

TEST_CASE("rotation blends the fill value at the border like torchvision", "[data][transforms]") {
  // 45 degrees on 3x3, output (0, 0): centred coordinates (-1, -1) map to the source
  // x = cos45 * -1 - sin45 * -1 + 1 = 1, y = sin45 * -1 + cos45 * -1 + 1 = 1 - sqrt2. Only the
  // row-0 tap is inside, weight m = 2 - sqrt2, value 2. torchvision: out = S * m + (1 - m) * fill
  // with S = 2m: 2 (2 - sqrt2)^2 + (sqrt2 - 1) * fill.
  const Floats in = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  Floats out(9);
  const double m = 2.0 - std::sqrt(2.0);
  tf::rotate(in.data(), 3, 3, 1, 45.0, 10.0f, true, out.data());
  CHECK(out[0] == Approx(2 * m * m + (1 - m) * 10).epsilon(1e-5));
  CHECK(out[4] == Approx(5.0f));  // the centre stays
  tf::rotate(in.data(), 3, 3, 1, 45.0, 0.0f, true, out.data());
  CHECK(out[0] == Approx(2 * m * m).epsilon(1e-5));
  // Nearest on a 1x3 strip turned by 90 degrees: output x samples source (1, x - 1), so only
  // the middle lands inside the image; the ends take the fill.
  const Floats strip = {1, 2, 3};
  Floats rs(3);
  tf::rotate(strip.data(), 1, 3, 1, 90.0, 7.0f, false, rs.data());
  check_close(rs, {7, 2, 7});
}

TEST_CASE("brightness and contrast at fixed factors", "[data][transforms]") {
  Floats g = {0.2f, 0.6f};
  tf::adjust_brightness(g.data(), 2, 1, 0.5f);
  check_close(g, {0.1f, 0.3f});
  g = {0.2f, 0.6f};
  tf::adjust_brightness(g.data(), 2, 1, 2.0f);  // 1.2 clamps to 1
  check_close(g, {0.4f, 1.0f});

  // Grayscale contrast blends with the image mean 0.4: 2x - 0.4.
  g = {0.2f, 0.6f};
  tf::adjust_contrast(g.data(), 2, 1, 2.0f);
  check_close(g, {0.0f, 0.8f});
  // RGB: the mean of the gray image, gray(red) = 0.299, gray(blue) = 0.114: 0.2065.
  // Factor 0.5: 0.5 x + 0.5 * 0.2065.
  Floats rgb = {1, 0, 0, 0, 0, 1};
  tf::adjust_contrast(rgb.data(), 2, 3, 0.5f);
  check_close(rgb, {0.60325f, 0.10325f, 0.10325f, 0.10325f, 0.10325f, 0.60325f});
}

TEST_CASE("saturation at fixed factors", "[data][transforms]") {
  // gray(1, 0.5, 0) = 0.299 + 0.2935 = 0.5925.
  Floats p = {1.0f, 0.5f, 0.0f};
  tf::adjust_saturation(p.data(), 1, 3, 0.0f);
  check_close(p, {0.5925f, 0.5925f, 0.5925f});
  p = {1.0f, 0.5f, 0.0f};
  tf::adjust_saturation(p.data(), 1, 3, 0.5f);  // 0.5 x + 0.29625
  check_close(p, {0.79625f, 0.54625f, 0.29625f});
  p = {1.0f, 0.5f, 0.0f};
  tf::adjust_saturation(p.data(), 1, 3, 2.0f);  // 2 x - 0.5925, clamped
  check_close(p, {1.0f, 0.4075f, 0.0f});
  Floats g = {0.3f};
  tf::adjust_saturation(g.data(), 1, 1, 0.0f);  // one channel: unchanged
  check_close(g, {0.3f});
}

TEST_CASE("hue shift of pure and muted colours", "[data][transforms]") {
  // Red has hue 0; +1/3 turn is green, -1/3 (= 2/3) blue, +1/6 yellow.
  Floats p = {1, 0, 0};
  tf::adjust_hue(p.data(), 1, 3, 1.0f / 3.0f);
  check_close(p, {0, 1, 0});
  p = {1, 0, 0};
  tf::adjust_hue(p.data(), 1, 3, -1.0f / 3.0f);
  check_close(p, {0, 0, 1});
  p = {1, 0, 0};
  tf::adjust_hue(p.data(), 1, 3, 1.0f / 6.0f);
  check_close(p, {1, 1, 0});
  // (0.5, 0.25, 0.25): h 0, s 0.5, v 0.5; at h = 1/3 the sector gives (p, v, t) with
  // p = t = v (1 - s) = 0.25: (0.25, 0.5, 0.25). Grays have no hue and stay.
  p = {0.5f, 0.25f, 0.25f, 0.4f, 0.4f, 0.4f};
  tf::adjust_hue(p.data(), 2, 3, 1.0f / 3.0f);
  check_close(p, {0.25f, 0.5f, 0.25f, 0.4f, 0.4f, 0.4f});
}

TEST_CASE("normalize subtracts the mean and divides by the std per channel", "[data][transforms]") {
  Floats p = {0.5f, 0.5f, 0.5f, 1.0f, 0.0f, 0.25f};
  const float mean[3] = {0.5f, 0.25f, 0.0f}, stdv[3] = {0.5f, 0.25f, 0.5f};
  tf::normalize(p.data(), 2, 3, mean, stdv);
  check_close(p, {0.0f, 1.0f, 1.0f, 1.0f, -1.0f, 0.5f});
}
