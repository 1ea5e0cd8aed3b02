// Data parallelism under MPI, run by CTest as `mpirun -np 1|2|4 test_dist`: N ranks x B/N
// samples must give what 1 rank x B samples gives; evaluation counts every sample once; ranks
// started with different settings fail at once naming the setting; a failing or stalled rank
// stops the job instead of hanging it.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "dist/agreement.h"
#include "dist/communicator.h"
#include "dist/gradient_bucketer.h"
#include "dist/pipeline.h"
#include "engine/autograd.h"
#include "engine/conv_bn_act.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "models/registry.h"
#include "tests/block_fixture.h"
#include "tests/catch_session.h"
#include "tests/op_reference.h"
#include "tests/test_support.h"
#include "tests/tiny_idx.h"
#include "tools/evaluate.h"
#include "tools/train.h"

using namespace osprey;

namespace {

dist::World g_world;
std::unique_ptr<dist::Communicator> g_comm;

// Batch b: n images h x w x c and labels, the same on every rank (a function of the seed).
void synthetic_batch(int n, int h, int w, int c, int classes, uint64_t seed, Tensor& x, Tensor& y) {
  Rng rng(seed);
  x = Tensor::empty({n, h, w, c});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = float(rng.normal());
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (auto& l : labels) l = int64_t(rng.next_u64() % uint64_t(classes));
  y = Tensor::from_labels(labels);
}

// Trains `steps` Adam steps; every rank takes its contiguous B/N slice of each global batch.
std::vector<float> train(const std::string& model_name, dist::Communicator& comm, int global_batch,
                         int steps, dist::BucketOptions buckets, bool sync_batchnorm = false,
                         const std::string& optimizer = "adam") {
  models::ModelSpec spec;
  spec.name = model_name;
  spec.in_channels = 1, spec.height = spec.width = 12, spec.num_classes = 5;
  spec.width_mult = 0.25f;
  spec.dropout = 0.0f;
  spec.seed = 100 + uint64_t(comm.rank());  // different on purpose: the broadcast must fix it
  auto model = models::create_model(spec);
  dist::broadcast_state(model->params(), comm);
  if (sync_batchnorm)
    model->set_batchnorm_sync(std::make_shared<BatchNormSync>(
        BatchNormSync{[&comm](double* d, int64_t n) { comm.allreduce_sum(d, n); }}));
  OptimizerOptions oo;
  oo.kind = optimizer;
  oo.momentum = optimizer == "sgd" ? 0.9f : 0.0f;
  oo.lr = optimizer == "sgd" ? 0.05f : 1e-3f;
  auto adam = make_optimizer(model->params(), oo);
  dist::GradientBucketer bucketer(model->params(), comm, buckets);
  const int local = global_batch / comm.size();
  for (int s = 0; s < steps; ++s) {
    Tensor x, y;
    synthetic_batch(global_batch, 12, 12, 1, 5, 7 + uint64_t(s), x, y);
    adam->zero_grad();
    Tensor loss = ops::softmax_cross_entropy(model->forward(x.rows(comm.rank() * local, local)),
                                             y.rows(comm.rank() * local, local));
    loss.backward();
    bucketer.finish();
    adam->step();
  }
  return model->params().flat_data().to_vector();
}

// One directory for all ranks (rank 0's pid) holding a tiny IDX dataset, written by rank 0
// before anyone reads it.
std::filesystem::path shared_tiny_data(const std::string& tag) {
  namespace fs = std::filesystem;
  int64_t pid = g_comm->rank() == 0 ? int64_t(::getpid()) : 0;
  g_comm->allreduce_sum(&pid, 1);
  const fs::path dir = fs::temp_directory_path() / ("osprey_dist_" + tag + std::to_string(pid));
  if (g_comm->rank() == 0) {
    fs::remove_all(dir);
    fs::create_directories(dir / "data");
    tests::write_tiny_idx_split(dir / "data", "train", 200, 1);
    tests::write_tiny_idx_split(dir / "data", "t10k", 40, 2);
  }
  int64_t ready = 0;
  g_comm->allreduce_sum(&ready, 1);
  return dir;
}

tools::TrainConfig tiny_config(const std::filesystem::path& dir) {
  tools::TrainConfig cfg;
  cfg.model = "simple_cnn";
  cfg.dataset = "mnist";
  cfg.data_dir = (dir / "data").string();
  cfg.runs_dir = (dir / "runs").string();
  cfg.epochs = 1;
  cfg.batch_size = 32;  // 7 batches an epoch (global), the last one partial
  cfg.mean = {0.2f};
  cfg.std = {0.3f};
  cfg.threads = 1;
  cfg.progress = false;
  cfg.device = "cpu";
  return cfg;
}

}  // namespace

TEST_CASE("N ranks x B/N samples equal 1 rank x B samples after 3 Adam steps") {
  auto local = dist::make_local_communicator();
  // Caps that split the parameters at awkward places: a first bucket smaller than most
  // parameters, then buckets of a few parameters each.
  for (dist::BucketOptions buckets : {dist::BucketOptions{}, dist::BucketOptions{700, 9000}}) {
    std::vector<float> reference = train("simple_cnn", *local, 12, 3, buckets);
    std::vector<float> ours = train("simple_cnn", *g_comm, 12, 3, buckets);
    INFO("ranks " << g_comm->size() << " bucket caps " << buckets.first_bucket_bytes << "/"
                  << buckets.bucket_bytes);
    REQUIRE(osprey_test::rel_l2(ours, reference) < 1e-5);
  }
}

// Synchronized BatchNorm on an inverted-residual block whose ReLU6 pre-activations stay far
// from the kinks (a whole MobileNetV2 has elements within rounding of 0 or 6, whose masks flip
// between any two summation orders; see docs/verification.md).
TEST_CASE("synchronized BatchNorm: N ranks x B/N samples give 1 rank x B gradients") {
  const int batch = 8;
  Rng rng(31);
  ConvBnActChain block = tests::random_block(4, 3, 1, rng);
  Tensor x = tests::random_tensor({batch, 5, 5, 4}, rng, 1.0);
  Tensor fc = tests::random_tensor({3, 5 * 5 * 4}, rng, 0.3);
  std::vector<int64_t> all_labels = {0, 2, 1, 1, 0, 2, 2, 1};
  std::vector<Tensor> params;
  for (const ConvBnAct& l : block.layers) params.insert(params.end(), {l.weight, l.gamma, l.beta});
  // Gradients of the mean loss over the rows [begin, begin + count), then dx of those rows.
  auto gradients = [&](int64_t begin, int64_t count) {
    for (const Tensor& p : params) p.zero_grad();
    Tensor xs = x.rows(begin, count).set_requires_grad();
    std::vector<int64_t> labels(all_labels.begin() + begin, all_labels.begin() + begin + count);
    Tensor y = ops::conv_bn_act_chain(xs, block, /*training=*/true);
    ops::softmax_cross_entropy(ops::linear(ops::flatten(y), fc, Tensor()),
                               Tensor::from_labels(labels))
        .backward();
    std::vector<std::vector<float>> g;
    for (const Tensor& p : params) g.push_back(p.grad().to_vector());
    g.push_back(xs.grad().to_vector());
    return g;
  };
  std::vector<std::vector<float>> reference = gradients(0, batch);

  const int n = g_comm->size(), local = batch / n;
  for (ConvBnAct& l : block.layers)
    l.sync = std::make_shared<BatchNormSync>(
        BatchNormSync{[](double* d, int64_t count) { g_comm->allreduce_sum(d, count); }});
  std::vector<std::vector<float>> ours = gradients(g_comm->rank() * local, local);
  // The depthwise layer's beta has a near-zero gradient (its shift passes linearly into the
  // next train-mode BatchNorm, which removes it), so errors are measured against the norm of
  // all parameter gradients, not each tensor's own.
  double all = 0;
  for (size_t i = 0; i < params.size(); ++i)
    for (float v : reference[i]) all += double(v) * v;
  all = std::sqrt(all);
  for (size_t i = 0; i < params.size(); ++i) {
    // Data parallelism averages the ranks' gradients of their local mean losses.
    std::vector<double> avg(ours[i].begin(), ours[i].end());
    g_comm->allreduce_sum(avg.data(), int64_t(avg.size()));
    std::vector<float> g(avg.size());
    for (size_t j = 0; j < g.size(); ++j) g[j] = float(avg[j] / n);
    double err = 0;
    for (size_t j = 0; j < g.size(); ++j) err += std::pow(double(g[j]) - reference[i][j], 2);
    INFO("parameter tensor " << i << " ranks " << n);
    REQUIRE(std::sqrt(err) < 1e-5 * all);
  }
  // Each rank's input gradient is n times its rows' share (its loss averages over B/n rows).
  std::vector<float> dx = ours.back(), ref_rows;
  size_t row = dx.size() / size_t(local);
  for (float& v : dx) v /= float(n);
  ref_rows.assign(reference.back().begin() + int64_t(g_comm->rank() * local * row),
                  reference.back().begin() + int64_t((g_comm->rank() + 1) * local * row));
  REQUIRE(osprey_test::rel_l2(dx, ref_rows) < 1e-5);
}

TEST_CASE("a 2-stage pipeline (x replicas) equals the unsplit model on the same micro-batches") {
  // With label smoothing, and gradients clipped to a global norm the pipeline's stages sum.
  const float smoothing = 0.1f, max_norm = 0.5f;
  const int world = g_comm->size(), rank = g_comm->rank();
  const int stages = world % 2 == 0 ? 2 : 1, replicas = world / stages;
  // Consecutive ranks form a pipeline; the same stage of every pipeline forms a replica group.
  auto pipe = g_comm->split(rank / stages, rank % stages);
  auto replica_group = g_comm->split(rank % stages, rank / stages);
  const int per_replica = 8, micro = 4, steps = 2;
  models::ModelSpec spec;
  spec.name = "mobilenet_v2_cifar";
  spec.in_channels = 1, spec.height = spec.width = 12, spec.num_classes = 5;
  spec.width_mult = 0.25f, spec.dropout = 0.0f;
  auto model = models::create_model(spec);  // the same seed on every rank
  auto reference = models::create_model(spec);
  OptimizerOptions sgd;
  sgd.kind = "sgd", sgd.lr = 0.05f, sgd.momentum = 0.0f;
  auto opt = make_optimizer(model->params(), sgd);
  auto ref_opt = make_optimizer(reference->params(), sgd);
  // Equal costs: every rank must agree on the plan (measured costs differ between ranks).
  dist::PipelinePlan plan =
      dist::balance_stages(std::vector<double>(size_t(model->num_segments()), 1.0), stages);
  dist::PipelineSchedule schedule(*model, plan, *pipe);
  for (int s = 0; s < steps; ++s) {
    Tensor x, y;
    synthetic_batch(per_replica * replicas, 12, 12, 1, 5, 40 + uint64_t(s), x, y);
    const int r = rank / stages;
    opt->zero_grad();
    schedule.train_step(x.rows(r * per_replica, per_replica), y.rows(r * per_replica, per_replica),
                        micro, smoothing);
    Tensor g = model->params().flat_grad();
    replica_group->allreduce_average_async(g.data<float>(), g.numel());
    replica_group->wait_all();
    const double norm = clip_grad_norm(model->params(), max_norm, [&](double squares) {
      pipe->allreduce_sum(&squares, 1);
      return squares;
    });
    opt->step();
    // The reference: the unsplit model over each replica's micro-batches, one by one, last
    // first as the pipeline's backward runs them, then the replicas' average: the same
    // rounding order (BatchNorm over tiny micro-batches makes the result sensitive to it).
    const int mb = per_replica / micro;
    std::vector<float> sum(size_t(reference->params().flat_size()), 0.0f);
    for (int rr = 0; rr < replicas; ++rr) {
      ref_opt->zero_grad();
      for (int j = micro - 1; j >= 0; --j) {
        int64_t first = int64_t(rr) * per_replica + int64_t(j) * mb;
        Tensor loss = ops::softmax_cross_entropy(reference->forward(x.rows(first, mb)),
                                                 y.rows(first, mb), smoothing);
        autograd::backward(loss, Tensor::full({1}, 1.0f / float(micro)));
      }
      const float* grad = reference->params().flat_grad().data<float>();
      for (size_t i = 0; i < sum.size(); ++i) sum[i] += grad[i];
    }
    float* ref_grad = reference->params().flat_grad().data<float>();
    for (size_t i = 0; i < sum.size(); ++i) ref_grad[i] = sum[i] * (1.0f / float(replicas));
    const double ref_norm = clip_grad_norm(reference->params(), max_norm);
    REQUIRE(ref_norm > max_norm);  // the clipping is exercised
    REQUIRE(norm == Approx(ref_norm).epsilon(1e-5));
    ref_opt->step();
  }
  // Each rank holds current values only for its own stage; after the sync, for all of them.
  dist::sync_pipeline_state(*model, plan, *pipe, opt.get());
  INFO("stages " << stages << " replicas " << replicas << ", plan starts stage 1 at segment "
                 << plan.first[1]);
  REQUIRE(osprey_test::rel_l2(model->params().flat_data().to_vector(),
                              reference->params().flat_data().to_vector()) < 1e-5);
}

TEST_CASE("pipeline stages balance measured costs") {
  dist::PipelinePlan p = dist::balance_stages({1, 1, 1, 1, 8, 1, 1, 1}, 3);
  // The expensive segment gets a stage of its own: [0,4) [4,5) [5,8).
  REQUIRE(p.first == std::vector<int>{0, 4, 5, 8});
  REQUIRE(dist::balance_stages({2, 2, 2, 2}, 2).first == std::vector<int>{0, 2, 4});
  REQUIRE_THROWS_WITH(dist::balance_stages({1, 1}, 3), Catch::Contains("3 stages"));
}

TEST_CASE("buckets cover the flat gradient buffer in reverse parameter order") {
  models::ModelSpec spec;
  spec.name = "mobilenet_v2_cifar";
  spec.in_channels = 3, spec.height = spec.width = 16, spec.num_classes = 10;
  spec.width_mult = 0.5f;
  auto model = models::create_model(spec);
  auto local = dist::make_local_communicator();
  dist::GradientBucketer b(model->params(), *local, {4096, 65536});
  const auto& buckets = b.buckets();
  REQUIRE(buckets.size() > 3);
  REQUIRE(buckets.front().end == model->params().flat_size());
  REQUIRE(buckets.back().begin == 0);
  for (size_t i = 1; i < buckets.size(); ++i) {
    REQUIRE(buckets[i].end == buckets[i - 1].begin);  // contiguous, back to front
    REQUIRE(buckets[i].last_param == buckets[i - 1].first_param - 1);
  }
  const auto& first = buckets.front();
  REQUIRE((first.end - first.begin <= 4096 / 4 + 16 || first.first_param == first.last_param));
}

TEST_CASE("sharded evaluation counts every sample exactly once") {
  data::Dataset ds = tests::make_synthetic_dataset(10001, 4, 4, 1);
  ds.num_classes = 3;
  for (auto& l : ds.labels) l %= 3;
  models::ModelSpec spec;
  spec.in_channels = 1, spec.height = spec.width = 4, spec.num_classes = 3;
  auto model = models::create_model(spec);  // the same seed on every rank
  auto eval = data::AugmentPipeline::from_json(
      nlohmann::json::parse(R"([{"type": "normalize", "mean": [0.5], "std": [0.25]}])"));
  tools::Evaluation whole = tools::evaluate(*model, ds, eval, 1, 3, 1000);
  tools::Evaluation shard =
      tools::evaluate(*model, ds, eval, 1, 3, 1000, g_comm->rank(), g_comm->size());
  tools::sum_across_ranks(shard, *g_comm);
  REQUIRE(shard.samples == 10001);
  REQUIRE(shard.correct == whole.correct);
  REQUIRE(shard.confusion == whole.confusion);
  REQUIRE(shard.loss == Approx(whole.loss).epsilon(1e-6));
}

// Resume determinism on every rank count: train k steps, stop, resume, train on == the
// uninterrupted run, bit for bit (shards, bucketed all-reduces and rank 0's checkpoint).
TEST_CASE("a resumed data-parallel run ends exactly where an uninterrupted one does") {
  namespace fs = std::filesystem;
  const fs::path dir = shared_tiny_data("resume");
  int64_t ready = 0;
  tools::TrainConfig full = tiny_config(dir);
  full.name = "full";
  full.epochs = 2;
  full.optimizer = "sgd";
  full.lr = 0.05f;
  full.schedule = "onecycle";
  full.first_bucket_bytes = 700, full.bucket_bytes = 9000;  // several buckets
  tools::run_train(full, {}, g_comm.get());
  tools::TrainConfig part = full;
  part.name = "part";
  part.stop_after_steps = 4;  // inside the first epoch
  tools::run_train(part, {}, g_comm.get());
  g_comm->allreduce_sum(&ready, 1);  // rank 0 has written the checkpoint (a new job in real use)
  const std::string part_last = (dir / "runs" / "part" / "last.safetensors").string();
  tools::TrainConfig resumed = tools::config_from_checkpoint(part_last);
  resumed.stop_after_steps = 0;
  tools::run_train(resumed, tools::TrainOptions::resuming(part_last), g_comm.get());
  if (g_comm->rank() == 0)
    tests::require_identical_tensors((dir / "runs" / "full" / "last.safetensors").string(),
                                     part_last);
  g_comm->allreduce_sum(&ready, 1);  // nobody reads the files any more
  if (g_comm->rank() == 0) fs::remove_all(dir);
}

TEST_CASE("ranks that disagree on a setting all fail at once, naming it and the ranks") {
  const int rank = g_comm->rank(), last = g_comm->size() - 1;
  std::vector<dist::Setting> settings = {{"model", "simple_cnn"},
                                         {"parameter_layout", rank == last ? "b" : "a"}};
  if (last == 0) {
    REQUIRE_NOTHROW(dist::require_same_settings(*g_comm, settings));
    return;
  }
  REQUIRE_THROWS_WITH(
      dist::require_same_settings(*g_comm, settings),
      Catch::Contains("'parameter_layout' is b on rank " + std::to_string(last) +
                      " but a on rank 0") &&
          Catch::Contains("ranks that differ from rank 0: " + std::to_string(last) + ")"));
  // A rank with a setting the others lack (another build) differs too.
  settings = {{"model", "simple_cnn"}};
  if (rank == 1) settings.push_back({"extra", "1"});
  REQUIRE_THROWS_WITH(dist::require_same_settings(*g_comm, settings),
                      Catch::Contains("'extra' is 1 on rank 1 but no such setting on rank 0"));
  settings = {{"model", "simple_cnn"}};
  REQUIRE_NOTHROW(dist::require_same_settings(*g_comm, settings));
}

// Before the start-up check, ranks with different limit_train ran different numbers of steps
// and hung in the first all-reduce that only some of them reached.
TEST_CASE("training ranks started with different limit_train fail before any step") {
  namespace fs = std::filesystem;
  if (g_comm->size() == 1) return;
  const fs::path dir = shared_tiny_data("agree");
  int64_t ready = 0;
  tools::TrainConfig cfg = tiny_config(dir);
  const int last = g_comm->size() - 1;
  cfg.limit_train = g_comm->rank() == last ? 150 : 200;
  REQUIRE_THROWS_WITH(tools::run_train(cfg, {}, g_comm.get()),
                      Catch::Contains("'limit_train' is 150 on rank " + std::to_string(last) +
                                      " but 200 on rank 0"));
  REQUIRE_FALSE(fs::exists(dir / "runs"));  // nothing written
  g_comm->allreduce_sum(&ready, 1);
  if (g_comm->rank() == 0) fs::remove_all(dir);
}

int main(int argc, char** argv) {
  g_world = dist::init_world(&argc, &argv);
  g_comm = dist::make_communicator(g_world);
  // One collective after `before` ran; an error on any rank must end the whole job (exit 3).
  auto one_collective = [](auto&& before) {
    try {
      before();
      double x = 1;
      g_comm->allreduce_sum(&x, 1);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "rank %d: %s\n", g_comm->rank(), e.what());
      dist::abort_world(3);
      return 3;
    }
    return 0;
  };
  // `--expect-world-size N`: a launcher that does not fit the MPI library starts N one-rank
  // worlds whose tests all pass; each process refuses a world of another size instead.
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--expect-world-size") {
      const int expected = std::atoi(argv[i + 1]);
      if (g_comm->size() != expected) {
        std::fprintf(stderr,
                     "test_dist: world size %d, expected %d (a launcher that does not fit "
                     "this MPI library?)\n",
                     g_comm->size(), expected);
        dist::finalize_world();
        return 1;
      }
      for (int j = i; j + 2 <= argc; ++j) argv[j] = argv[j + 2];
      argc -= 2;
      break;
    }
  for (int i = 1; i + 1 < argc; ++i) {
    const std::string flag = argv[i];
    const int rank = std::atoi(argv[i + 1]);
    // `--fail-on-rank R`: rank R throws while the others wait in a collective; the job must
    // end (non-zero) instead of hanging.
    if (flag == "--fail-on-rank")
      return one_collective([&] {
        if (g_comm->rank() == rank) fail("rank ", rank, " failed on purpose");
      });
    // `--stall-on-rank R`: rank R sleeps through a collective the others wait in; with
    // OSPREY_COLLECTIVE_TIMEOUT_S set they must fail naming themselves and end the job.
    if (flag == "--stall-on-rank") {
      if (g_comm->rank() == rank) {
        ::sleep(60);
        return 0;
      }
      return one_collective([] {});
    }
  }
  int rc = osprey_test::run_catch_session(argc, argv);
  g_comm.reset();
  dist::finalize_world();
  return rc;
}
