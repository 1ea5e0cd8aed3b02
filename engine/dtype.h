// Element types and devices a Tensor can have.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/bf16.h"

namespace osprey {

enum class DType : uint8_t { f32, bf16, f16, i64, i32, u8 };
enum class Device : uint8_t { cpu, cuda };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32:
      return 4;
    case DType::bf16:
      return 2;
    case DType::f16:
      return 2;
    case DType::i64:
      return 8;
    case DType::i32:
      return 4;
    case DType::u8:
      return 1;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32:
      return "f32";
    case DType::bf16:
      return "bf16";
    case DType::f16:
      return "f16";
    case DType::i64:
      return "i64";
    case DType::i32:
      return "i32";
    case DType::u8:
      return "u8";
  }
  return "?";
}

inline const char* device_name(Device d) {
  return d == Device::cpu ? "cpu" : "cuda";
}

template <typename T>
struct dtype_of;
template <>
struct dtype_of<float> {
  static constexpr DType value = DType::f32;
};
template <>
struct dtype_of<bf16> {
  static constexpr DType value = DType::bf16;
};
template <>
struct dtype_of<int64_t> {
  static constexpr DType value = DType::i64;
};
template <>
struct dtype_of<int32_t> {
  static constexpr DType value = DType::i32;
};
template <>
struct dtype_of<uint8_t> {
  static constexpr DType value = DType::u8;
};

// Calls fn(float{}) or fn(bf16{}) for activations stored as dtype (f32 or bf16): one kernel
// call written once for both storage types.
template <typename Fn>
void with_storage_type(DType dtype, Fn&& fn) {
  if (dtype == DType::bf16)
    fn(bf16{});
  else
    fn(float{});
}

}  // namespace osprey
