// A small learnable IDX dataset for end-to-end tests: class k (of 4) is a bright 3x3 square in
// quadrant k of a 12x12 image, plus noise.
#pragma once
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace osprey::tests {

inline void put_u32(std::ofstream& out, uint32_t v) {
  unsigned char b[4] = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
  out.write(reinterpret_cast<char*>(b), 4);
}

// Writes PREFIX-images-idx3-ubyte and PREFIX-labels-idx1-ubyte into dir.
inline void write_tiny_idx_split(const std::filesystem::path& dir, const std::string& prefix, int n,
                                 uint32_t seed) {
  std::ofstream img(dir / (prefix + "-images-idx3-ubyte"), std::ios::binary);
  std::ofstream lab(dir / (prefix + "-labels-idx1-ubyte"), std::ios::binary);
  put_u32(img, 0x803), put_u32(img, uint32_t(n)), put_u32(img, 12), put_u32(img, 12);
  put_u32(lab, 0x801), put_u32(lab, uint32_t(n));
  uint32_t state = seed;
  auto rnd = [&] { return state = state * 1664525u + 1013904223u, state >> 24; };
  for (int i = 0; i < n; ++i) {
    int k = i % 4;
    uint8_t px[144];
    for (auto& p : px) p = uint8_t(rnd() % 60);
    int oy = (k / 2) * 6 + 1 + int(rnd() % 3), ox = (k % 2) * 6 + 1 + int(rnd() % 3);
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 3; ++x) px[(oy + y) * 12 + ox + x] = 250;
    img.write(reinterpret_cast<char*>(px), 144);
    char l = char(k);
    lab.write(&l, 1);
  }
}

}  // namespace osprey::tests
