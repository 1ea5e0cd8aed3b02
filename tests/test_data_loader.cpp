// BatchLoader tests on small synthetic datasets whose label is the sample's own index, so each
// batch tells exactly which samples it holds.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "data/augment.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "kernels/error.h"
#include "tests/test_support.h"

using osprey::data::Batch;
using osprey::data::BatchLoader;
using osprey::data::Dataset;
using osprey::data::LoaderOptions;
using osprey::data::Normalize;

namespace {

struct Epoch {
  std::vector<int64_t> order;  // labels (== indices) in delivery order
  std::vector<int> batch_sizes;
  int valid = 0;
};

Epoch run_epoch(BatchLoader& loader, int epoch) {
  Epoch e;
  loader.start_epoch(epoch);
  Batch b;
  while (loader.next(b)) {
    REQUIRE(b.labels.size() == size_t(b.n));
    REQUIRE(b.indices == b.labels);
    e.order.insert(e.order.end(), b.labels.begin(), b.labels.end());
    e.batch_sizes.push_back(b.n);
    e.valid += b.valid;
  }
  CHECK(int64_t(e.batch_sizes.size()) == loader.batches_per_epoch());
  CHECK(int64_t(e.order.size()) == loader.samples_per_epoch());
  return e;
}

std::vector<int64_t> sorted(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<int64_t> iota(int n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[size_t(i)] = i;
  return v;
}

}  // namespace

TEST_CASE("every sample appears exactly once per epoch", "[data][loader]") {
  Dataset ds = osprey::tests::make_synthetic_dataset(103);
  LoaderOptions opts;
  opts.batch_size = 10;
  opts.seed = 42;
  BatchLoader loader(ds, opts);
  CHECK(loader.batches_per_epoch() == 11);
  CHECK(loader.samples_per_epoch() == 103);
  for (int epoch = 0; epoch < 3; ++epoch) {
    Epoch e = run_epoch(loader, epoch);
    CHECK(sorted(e.order) == iota(103));
    CHECK(e.batch_sizes.back() == 3);
    CHECK(e.valid == 103);
    CHECK(e.order != iota(103));
  }
  opts.shuffle = false;
  BatchLoader plain(ds, opts);
  CHECK(run_epoch(plain, 5).order == iota(103));
}

TEST_CASE("shuffling is deterministic in (seed, epoch)", "[data][loader]") {
  Dataset ds = osprey::tests::make_synthetic_dataset(500);
  LoaderOptions opts;
  opts.batch_size = 64;
  opts.seed = 7;
  BatchLoader a(ds, opts), b(ds, opts);
  Epoch a1 = run_epoch(a, 1), a2 = run_epoch(a, 2);
  CHECK(a1.order == run_epoch(b, 1).order);
  CHECK(a1.order == run_epoch(a, 1).order);  // replaying an epoch gives the same order
  CHECK(a1.order != a2.order);
  opts.seed = 8;
  BatchLoader c(ds, opts);
  CHECK(run_epoch(c, 1).order != a1.order);

  // Pinned values: the order must not change with the compiler or standard library.
  std::vector<int64_t> order;
  osprey::data::epoch_order(10, true, 123, 4, order);
  CHECK(order == std::vector<int64_t>{2, 5, 1, 6, 9, 3, 4, 0, 8, 7});
  CHECK(sorted(order) == iota(10));
}

TEST_CASE("normalization gives exact values", "[data][loader]") {
  Dataset ds = osprey::tests::make_synthetic_dataset(9, 2, 2, 3);
  LoaderOptions opts;
  opts.batch_size = 4;
  opts.shuffle = false;
  opts.normalize = Normalize{{0.5f, 0.25f, 0.125f}, {0.2f, 0.3f, 0.4f}};
  BatchLoader loader(ds, opts);
  loader.start_epoch(0);
  Batch b;
  int64_t seen = 0;
  while (loader.next(b)) {
    REQUIRE(b.images.size() == size_t(b.n) * 12);
    CHECK(b.h == 2);
    CHECK(b.w == 2);
    CHECK(b.c == 3);
    for (int i = 0; i < b.n; ++i)
      for (int p = 0; p < 12; ++p) {
        const uint8_t px = ds.pixels[size_t(b.indices[size_t(i)] * 12 + p)];
        const int ch = p % 3;
        const float want =
            (float(px) / 255.0f - opts.normalize.mean[size_t(ch)]) / opts.normalize.std[size_t(ch)];
        REQUIRE(b.images[size_t(i * 12 + p)] == want);
      }
    seen += b.n;
  }
  CHECK(seen == 9);

  // Empty normalize is pixel / 255; one entry applies to every channel.
  std::vector<float> out(12 * 2);
  const int64_t idx[2] = {3, 0};
  osprey::data::normalize_into(ds, idx, 2, Normalize{}, out.data());
  for (int p = 0; p < 12; ++p) CHECK(out[size_t(p)] == float(ds.pixels[size_t(36 + p)]) / 255.0f);
  osprey::data::normalize_into(ds, idx, 2, Normalize{{0.5f}, {2.0f}}, out.data());
  for (int p = 0; p < 12; ++p)
    CHECK(out[size_t(12 + p)] == (float(ds.pixels[size_t(p)]) / 255.0f - 0.5f) / 2.0f);

  // Large enough for the OpenMP path, and more channels than the lookup table covers.
  for (const Dataset& big : {osprey::tests::make_synthetic_dataset(70, 128, 128, 1),
                             osprey::tests::make_synthetic_dataset(6, 3, 2, 5)}) {
    const int64_t isz = big.image_size();
    Normalize norm;
    for (int ch = 0; ch < big.c; ++ch) {
      norm.mean.push_back(0.1f * float(ch + 1));
      norm.std.push_back(0.7f + 0.05f * float(ch));
    }
    std::vector<int64_t> all(static_cast<size_t>(big.n));
    for (int i = 0; i < big.n; ++i) all[size_t(i)] = big.n - 1 - i;
    std::vector<float> got(size_t(big.n * isz));
    osprey::data::normalize_into(big, all.data(), big.n, norm, got.data());
    int64_t mismatches = 0;
    for (int i = 0; i < big.n; ++i)
      for (int64_t p = 0; p < isz; ++p) {
        const int ch = int(p % big.c);
        const float want =
            (float(big.pixels[size_t(all[size_t(i)] * isz + p)]) / 255.0f - norm.mean[size_t(ch)]) /
            norm.std[size_t(ch)];
        mismatches += got[size_t(i * isz + p)] != want;
      }
    CHECK(mismatches == 0);
  }

  REQUIRE_THROWS_WITH(
      osprey::data::normalize_into(ds, idx, 2, Normalize{{0.5f, 0.5f}, {1, 1}}, out.data()),
      Catch::Contains("3 channel"));
  const int64_t bad[1] = {9};
  REQUIRE_THROWS_WITH(osprey::data::normalize_into(ds, bad, 1, Normalize{}, out.data()),
                      Catch::Contains("index 9"));
}

TEST_CASE("sharding over world = 3 gives disjoint shards and equal batch counts",
          "[data][loader]") {
  Dataset ds = osprey::tests::make_synthetic_dataset(100);
  for (bool shuffle : {false, true}) {
    std::vector<int64_t> all;
    std::set<int64_t> real;
    int64_t batches = -1;
    for (int rank = 0; rank < 3; ++rank) {
      LoaderOptions opts;
      opts.batch_size = 8;
      opts.shuffle = shuffle;
      opts.seed = 99;
      opts.rank = rank;
      opts.world = 3;
      BatchLoader loader(ds, opts);
      CHECK(loader.samples_per_epoch() == 34);  // ceil(100 / 3), padded by wrapping
      if (batches >= 0) CHECK(loader.batches_per_epoch() == batches);
      batches = loader.batches_per_epoch();
      Epoch e = run_epoch(loader, 2);
      CHECK(batches == 5);
      // Only the padded sample (rank 1's and 2's last) is excluded from valid.
      CHECK(e.valid == (rank == 0 ? 34 : 33));
      for (size_t i = 0; i < size_t(e.valid); ++i) CHECK(real.insert(e.order[i]).second);
      all.insert(all.end(), e.order.begin(), e.order.end());
    }
    CHECK(real.size() == 100);
    CHECK(all.size() == 102);
  }

  // drop_last with world > 1: floor(100 / 3) = 33 per rank, only full batches of 8 -> 4.
  std::set<int64_t> seen;
  for (int rank = 0; rank < 3; ++rank) {
    LoaderOptions opts;
    opts.batch_size = 8;
    opts.drop_last = true;
    opts.rank = rank;
    opts.world = 3;
    BatchLoader loader(ds, opts);
    Epoch e = run_epoch(loader, 0);
    CHECK(e.batch_sizes == std::vector<int>(4, 8));
    CHECK(e.valid == 32);
    for (int64_t v : e.order) CHECK(seen.insert(v).second);
  }
  CHECK(seen.size() == 96);
}

TEST_CASE("drop_last drops only the final partial batch", "[data][loader]") {
  Dataset ds = osprey::tests::make_synthetic_dataset(103);
  LoaderOptions opts;
  opts.batch_size = 10;
  opts.drop_last = true;
  BatchLoader loader(ds, opts);
  CHECK(loader.batches_per_epoch() == 10);
  CHECK(loader.samples_per_epoch() == 100);
  Epoch e = run_epoch(loader, 0);
  CHECK(e.batch_sizes == std::vector<int>(10, 10));
  CHECK(std::set<int64_t>(e.order.begin(), e.order.end()).size() == 100);

  Dataset exact = osprey::tests::make_synthetic_dataset(40);
  BatchLoader whole(exact, opts);
  CHECK(whole.batches_per_epoch() == 4);
  CHECK(sorted(run_epoch(whole, 0).order) == iota(40));

  Dataset small = osprey::tests::make_synthetic_dataset(7);
  BatchLoader none(small, opts);
  CHECK(none.batches_per_epoch() == 0);
  none.start_epoch(0);
  Batch b;
  CHECK_FALSE(none.next(b));
}

TEST_CASE("buffers are swapped, not reallocated, in steady state", "[data][loader]") {
  Dataset ds = osprey::tests::make_synthetic_dataset(64);
  LoaderOptions opts;
  opts.batch_size = 8;
  BatchLoader loader(ds, opts);
  loader.start_epoch(0);
  Batch b;
  std::set<const float*> buffers;
  while (loader.next(b)) buffers.insert(b.images.data());
  CHECK(buffers.size() == 2);
  CHECK_FALSE(loader.next(b));  // stays at the end until the next start_epoch
}

TEST_CASE("destroying or restarting a loader mid-epoch does not hang", "[data][loader]") {
  Dataset ds = osprey::tests::make_synthetic_dataset(2000, 16, 16, 3);
  LoaderOptions opts;
  opts.batch_size = 32;
  const auto t0 = std::chrono::steady_clock::now();
  {
    BatchLoader loader(ds, opts);
    loader.start_epoch(0);
    Batch b;
    REQUIRE(loader.next(b));
  }
  { BatchLoader loader(ds, opts); }  // never started
  {
    BatchLoader loader(ds, opts);
    loader.start_epoch(0);  // batch 0 is being prepared while the loader is destroyed
  }
  BatchLoader loader(ds, opts);
  loader.start_epoch(0);
  Batch b;
  REQUIRE(loader.next(b));
  CHECK(sorted(run_epoch(loader, 1).order) == iota(2000));  // restart abandons epoch 0
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
}

TEST_CASE("bad options and worker errors surface as osprey::Error", "[data][loader]") {
  Dataset ds = osprey::tests::make_synthetic_dataset(10);
  LoaderOptions opts;
  opts.rank = 3;
  opts.world = 3;
  REQUIRE_THROWS_WITH(BatchLoader(ds, opts), Catch::Contains("rank 3"));
  opts = LoaderOptions{};
  opts.batch_size = 0;
  REQUIRE_THROWS_WITH(BatchLoader(ds, opts), Catch::Contains("batch_size"));
  opts = LoaderOptions{};
  opts.normalize = Normalize{{0.5f}, {0.0f}};
  REQUIRE_THROWS_WITH(BatchLoader(ds, opts), Catch::Contains("std[0] is 0"));

  opts = LoaderOptions{};
  opts.shuffle = false;
  opts.batch_size = 4;
  BatchLoader early(ds, opts);
  Batch b;
  REQUIRE_THROWS_WITH(early.next(b), Catch::Contains("start_epoch"));

  // A label out of range is found on the worker thread and rethrown by next().
  ds.labels[5] = 42;
  BatchLoader loader(ds, opts);
  loader.start_epoch(0);
  REQUIRE(loader.next(b));
  REQUIRE_THROWS_AS(loader.next(b), osprey::Error);
  CHECK_FALSE(loader.next(b));  // the failed epoch is over
  loader.start_epoch(1);
  REQUIRE(loader.next(b));
  REQUIRE_THROWS_WITH(loader.next(b), Catch::Contains("sample 5 has label 42"));
}

// What GPU augmentation relies on: a loader without images picks the same samples, and
// pipeline() applied to them gives exactly the images the loader would have made.
TEST_CASE("a loader without images picks the same samples, and pipeline() remakes its images",
          "[data][loader]") {
  const Dataset ds = osprey::tests::make_synthetic_dataset(23, 5, 4, 1);
  for (bool augment : {false, true}) {
    INFO("augment " << augment);
    LoaderOptions opts;
    opts.batch_size = 7;
    opts.seed = 9;
    opts.channels = 3;
    if (augment)
      opts.augment = std::make_shared<const osprey::data::AugmentPipeline>(
          osprey::data::AugmentPipeline::from_json(nlohmann::json::parse(
              R"([{"type": "pad_crop", "pad": 1, "size": [5, 4]}, {"type": "hflip"}])")));
    opts.normalize = {{0.25f}, {0.5f}};
    BatchLoader with(ds, opts);
    opts.images = false;
    BatchLoader without(ds, opts);
    REQUIRE(without.channels() == 3);
    for (int epoch : {0, 1}) {
      with.start_epoch(epoch);
      without.start_epoch(epoch);
      Batch a, b;
      while (with.next(a)) {
        REQUIRE(without.next(b));
        REQUIRE(b.indices == a.indices);
        REQUIRE(b.labels == a.labels);
        REQUIRE(b.images.empty());
        std::vector<float> remade(a.images.size());
        osprey::data::augment_batch(without.pipeline(), ds, b.indices.data(), b.n, opts.seed, epoch,
                                    without.channels(), remade.data());
        REQUIRE(remade == a.images);
      }
      REQUIRE_FALSE(without.next(b));
    }
  }
}
