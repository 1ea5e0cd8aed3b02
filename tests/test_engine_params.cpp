// ParamStore: one flat buffer with aligned views, and PyTorch layout conversion.
#include <catch2/catch.hpp>
#include <cstdint>

#include "engine/device.h"
#include "engine/param_store.h"

using namespace osprey;

TEST_CASE("parameters are 64-byte aligned views into one flat buffer") {
  ParamStore store;
  Tensor a = store.add("a", {3, 5});
  Tensor b = store.add("b", {7});
  Tensor c = store.add("c", {2, 2, 2, 2}, TorchLayout::conv_ohwi);
  store.finalize();
  REQUIRE(store.num_elements() == 15 + 7 + 16);
  REQUIRE(store.flat_size() == 16 + 16 + 16);
  const float* base = store.flat_data().data<float>();
  REQUIRE(a.data<float>() == base);
  REQUIRE(b.data<float>() == base + 16);
  REQUIRE(c.data<float>() == base + 32);
  for (const Tensor& t : {a, b, c}) {
    REQUIRE(reinterpret_cast<uintptr_t>(t.data<float>()) % 64 == 0);
    REQUIRE(t.grad().data<float>() == store.flat_grad().data<float>() + (t.data<float>() - base));
  }
  b.grad().data<float>()[3] = 5.0f;
  store.zero_grad();
  REQUIRE(b.grad().data<float>()[3] == 0.0f);
  REQUIRE_THROWS_WITH(store.add("d", {1}), Catch::Contains("after finalize"));
}

TEST_CASE("duplicate names are refused") {
  ParamStore store;
  store.add("w", {1});
  REQUIRE_THROWS_WITH(store.add("w", {2}), Catch::Contains("duplicate parameter name 'w'"));
}

TEST_CASE("conv weights convert between OHWI and PyTorch's OIHW") {
  ParamStore store;
  store.add("conv.weight", {2, 1, 2, 3}, TorchLayout::conv_ohwi);  // K=2 KH=1 KW=2 C=3
  store.finalize();
  const Parameter& p = store.params()[0];
  REQUIRE(p.torch_shape() == Shape{2, 3, 1, 2});
  // torch[k][c][0][x] = 100k + 10c + x
  std::vector<float> torch(12);
  for (int k = 0; k < 2; ++k)
    for (int c = 0; c < 3; ++c)
      for (int x = 0; x < 2; ++x) torch[size_t((k * 3 + c) * 2 + x)] = float(100 * k + 10 * c + x);
  p.from_torch(torch.data());
  const float* ours = p.value.data<float>();
  // ours[k][0][x][c]
  REQUIRE(ours[((1 * 1 + 0) * 2 + 1) * 3 + 2] == 121.0f);
  REQUIRE(ours[((0 * 1 + 0) * 2 + 0) * 3 + 1] == 10.0f);
  std::vector<float> back(12);
  p.to_torch(back.data());
  REQUIRE(back == torch);
}

TEST_CASE("a linear layer after an NHWC flatten converts from C,H,W order") {
  ParamStore store;
  store.add("fc.weight", {1, 12}, TorchLayout::linear_hwc_input, {3, 2, 2});  // C=3 H=2 W=2
  store.finalize();
  const Parameter& p = store.params()[0];
  std::vector<float> torch(12);
  for (int i = 0; i < 12; ++i) torch[size_t(i)] = float(i);  // index = c*4 + y*2 + x
  p.from_torch(torch.data());
  const float* ours = p.value.data<float>();  // index = (y*2 + x)*3 + c
  REQUIRE(ours[(1 * 2 + 0) * 3 + 2] == float(2 * 4 + 1 * 2 + 0));
  std::vector<float> back(12);
  p.to_torch(back.data());
  REQUIRE(back == torch);
}

TEST_CASE("rows() views a slice of the first dimension without copying") {
  Tensor t = Tensor::from_data({4, 3}, {0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32});
  Tensor mid = t.rows(1, 2);
  REQUIRE(mid.shape() == Shape{2, 3});
  REQUIRE(mid.to_vector() == std::vector<float>{10, 11, 12, 20, 21, 22});
  mid.data<float>()[0] = -1;  // shares storage
  REQUIRE(t.data<float>()[3] == -1);
  Tensor labels = Tensor::from_labels({5, 6, 7});
  REQUIRE(labels.rows(2, 1).data<int64_t>()[0] == 7);
  REQUIRE_THROWS_WITH(t.rows(3, 2), Catch::Contains("rows [3, 5)"));
}

TEST_CASE("devices: auto falls back to the cpu, unknown names list the valid ones") {
  using namespace osprey;
  if (!cuda_available()) {
    REQUIRE(resolve_device("auto") == Device::cpu);
    REQUIRE_THROWS_WITH(resolve_device("cuda"), Catch::Contains("device cuda:"));
  }
  REQUIRE(resolve_device("cpu") == Device::cpu);
  REQUIRE_THROWS_WITH(resolve_device("tpu"), Catch::Contains("valid: cpu, cuda, auto"));
  REQUIRE(device_description(Device::cpu) == "cpu");
}
