// Learning-rate schedules (against PyTorch's closed forms) and gradient-norm clipping.
#include <catch2/catch.hpp>
#include <cmath>

#include "engine/optim.h"
#include "engine/schedule.h"

using namespace osprey;

TEST_CASE("step schedule decays by gamma every step_size epochs") {
  ScheduleOptions o;
  o.kind = "step";
  o.step_size = 3;
  o.gamma = 0.5f;
  LrSchedule s(o, 0.8f, 10, 7);
  REQUIRE(s.lr(0, 0) == Approx(0.8));
  REQUIRE(s.lr(2, 6) == Approx(0.8));
  REQUIRE(s.lr(3, 0) == Approx(0.4));
  REQUIRE(s.lr(9, 3) == Approx(0.1));
}

TEST_CASE("cosine schedule follows CosineAnnealingLR per epoch") {
  ScheduleOptions o;
  o.kind = "cosine";
  o.min_lr = 0.01f;
  LrSchedule s(o, 0.1f, 8, 5);
  for (int e = 0; e < 8; ++e) {
    double want = 0.01 + (0.1 - 0.01) * (1 + std::cos(M_PI * e / 8.0)) / 2;
    REQUIRE(s.lr(e, 4) == Approx(want));
  }
}

TEST_CASE("one-cycle schedule warms up to the peak then anneals to initial / final_div") {
  ScheduleOptions o;
  o.kind = "onecycle";
  LrSchedule s(o, 0.1f, 2, 50);  // 100 steps, peak at step 29
  REQUIRE(s.lr(0, 0) == Approx(0.1 / 25));
  REQUIRE(s.lr(0, 29) == Approx(0.1));
  REQUIRE(s.lr(1, 49) == Approx(0.1 / 25 / 1e4));
  // halfway through the warm-up: the mean of start and peak (cosine)
  REQUIRE(s.lr(0, 0) < s.lr(0, 10));
  // 70 steps: the warm-up ends at step 0.3 * 70 - 1 = 20, so step 10 is its cosine midpoint.
  REQUIRE(LrSchedule(o, 0.1f, 1, 70).lr(0, 10) == Approx((0.1 / 25 + 0.1) / 2));
  for (int i = 30; i < 99; ++i) REQUIRE(s.lr(i / 50, i % 50) >= s.lr((i + 1) / 50, (i + 1) % 50));
}

TEST_CASE("one-cycle momentum moves against the rate, as PyTorch's OneCycleLR") {
  ScheduleOptions o;
  o.kind = "onecycle";
  o.cycle_momentum = true;
  LrSchedule s(o, 0.1f, 2, 5);
  // torch.optim.lr_scheduler.OneCycleLR(SGD(momentum=0.9), max_lr=0.1, epochs=2,
  // steps_per_epoch=5): (lr, momentum) at steps 0..9 (PyTorch 1.13).
  const double want[10][2] = {{0.004, 0.95},         {0.052, 0.9},          {0.1, 0.85},
                              {0.0950485, 0.854952}, {0.0811746, 0.868826}, {0.0611262, 0.888874},
                              {0.0388742, 0.911126}, {0.0188258, 0.931174}, {0.00495194, 0.945048},
                              {4e-07, 0.95}};
  for (int i = 0; i < 10; ++i) {
    INFO("step " << i);
    REQUIRE(s.lr(i / 5, i % 5) == Approx(want[i][0]).epsilon(1e-5));
    REQUIRE(s.momentum(i / 5, i % 5) == Approx(want[i][1]).epsilon(1e-5));
  }
  o.cycle_momentum = false;
  REQUIRE_FALSE(LrSchedule(o, 0.1f, 2, 5).cycles_momentum());
}

TEST_CASE("unknown schedules and optimizers name the valid ones") {
  ScheduleOptions o;
  o.kind = "linear";
  REQUIRE_THROWS_WITH(LrSchedule(o, 0.1f, 1, 1), Catch::Contains("onecycle"));
  ParamStore store;
  store.add("w", {3});
  store.finalize();
  OptimizerOptions oo;
  oo.kind = "rmsprop";
  REQUIRE_THROWS_WITH(make_optimizer(store, oo), Catch::Contains("valid: adam, adamw, sgd"));
}

TEST_CASE("clip_grad_norm scales gradients to the maximum norm, like torch") {
  ParamStore store;
  Tensor a = store.add("a", {2});
  Tensor b = store.add("b", {1});
  store.finalize();
  a.grad().data<float>()[0] = 3, a.grad().data<float>()[1] = 0, b.grad().data<float>()[0] = 4;
  double norm = clip_grad_norm(store, 1.0);
  REQUIRE(norm == Approx(5.0));
  double coef = 1.0 / (5.0 + 1e-6);
  REQUIRE(a.grad().data<float>()[0] == Approx(3 * coef));
  REQUIRE(b.grad().data<float>()[0] == Approx(4 * coef));
  // below the maximum: untouched
  REQUIRE(clip_grad_norm(store, 10.0) == Approx(1.0).epsilon(1e-5));
  REQUIRE(b.grad().data<float>()[0] == Approx(4 * coef));
}
