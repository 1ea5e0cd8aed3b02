#include "tests/onnx_conformance/layout.h"

#include <cstring>
#include <numeric>

namespace osprey::conformance {

Tensor permute(const Tensor& x, const std::vector<int>& perm) {
  const Tensor src = x.to(Device::cpu);
  const int rank = src.ndim();
  OSPREY_CHECK(int(perm.size()) == rank, "permute: ", perm.size(), " axes for a rank-", rank,
               " tensor");
  std::vector<int64_t> in_stride(size_t(rank), 1);
  for (int i = rank - 2; i >= 0; --i)
    in_stride[size_t(i)] = in_stride[size_t(i) + 1] * src.dim(i + 1);
  Shape out_shape;
  std::vector<int64_t> stride;  // input stride of each output axis
  for (int p : perm) {
    out_shape.push_back(src.dim(p));
    stride.push_back(in_stride[size_t(p)]);
  }
  Tensor y = Tensor::empty(out_shape, src.dtype());
  const size_t element = dtype_size(src.dtype());
  const auto* in = static_cast<const char*>(src.raw());
  auto* out = static_cast<char*>(y.raw());
  std::vector<int64_t> index(size_t(rank), 0);
  int64_t offset = 0;  // input element of the output element at `index`
  for (int64_t i = 0; i < y.numel(); ++i) {
    std::memcpy(out + size_t(i) * element, in + size_t(offset) * element, element);
    // Odometer step over the output index, last axis fastest.
    for (int a = rank - 1; a >= 0; --a) {
      offset += stride[size_t(a)];
      if (++index[size_t(a)] < out_shape[size_t(a)]) break;
      offset -= stride[size_t(a)] * out_shape[size_t(a)];
      index[size_t(a)] = 0;
    }
  }
  return y;
}

Tensor channels_last(const Tensor& x) {
  std::vector<int> perm(size_t(x.ndim()));
  std::iota(perm.begin(), perm.end(), 0);
  if (x.ndim() > 2) {
    perm.erase(perm.begin() + 1);
    perm.push_back(1);
  }
  return permute(x, perm);
}

Tensor channels_first(const Tensor& x) {
  std::vector<int> perm(size_t(x.ndim()));
  std::iota(perm.begin(), perm.end(), 0);
  if (x.ndim() > 2) {
    perm.pop_back();
    perm.insert(perm.begin() + 1, x.ndim() - 1);
  }
  return permute(x, perm);
}

Tensor transpose2d(const Tensor& x) {
  OSPREY_CHECK(x.ndim() == 2, "transpose2d: ", shape_str(x.shape()), " is not a matrix");
  return permute(x, {1, 0});
}

}  // namespace osprey::conformance
