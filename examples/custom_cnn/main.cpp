// A small CNN defined in user code, trained for one epoch on Fashion-MNIST with Osprey's
// tensors, autograd, optimizer and batch loader, then evaluated on the test set.
// Usage: custom_cnn [DATA_DIR] [MAX_TRAIN_BATCHES]
#include <cstdio>
#include <cstdlib>
#include <string>

#include "data/idx.h"
#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/init.h"
#include "engine/model.h"
#include "engine/ops.h"
#include "engine/optim.h"

using namespace osprey;

// conv(16) -> pool -> relu -> conv(32) -> pool -> relu -> linear(10), on 28x28x1 NHWC inputs.
class TinyCnn : public Model {
 public:
  TinyCnn() {
    c1_w_ = params_.add("c1.weight", {16, 3, 3, 1}, TorchLayout::conv_ohwi);
    c1_b_ = params_.add("c1.bias", {16});
    c2_w_ = params_.add("c2.weight", {32, 3, 3, 16}, TorchLayout::conv_ohwi);
    c2_b_ = params_.add("c2.bias", {32});
    fc_w_ = params_.add("fc.weight", {10, 7 * 7 * 32}, TorchLayout::linear_hwc_input, {32, 7, 7});
    fc_b_ = params_.add("fc.bias", {10});
    params_.finalize();
    Rng rng(1);
    init::torch_default(c1_w_, c1_b_, 9, rng);
    init::torch_default(c2_w_, c2_b_, 9 * 16, rng);
    init::torch_default(fc_w_, fc_b_, 7 * 7 * 32, rng);
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = ops::relu(ops::max_pool2d(ops::conv2d(x, c1_w_, c1_b_, 1, 1), 2, 2));
    h = ops::relu(ops::max_pool2d(ops::conv2d(h, c2_w_, c2_b_, 1, 1), 2, 2));
    return ops::linear(ops::flatten(h), fc_w_, fc_b_);
  }
  std::string name() const override { return "tiny_cnn"; }
  std::vector<std::string> classifier_prefixes() const override { return {"fc."}; }

 private:
  Tensor c1_w_, c1_b_, c2_w_, c2_b_, fc_w_, fc_b_;
};

Tensor images_of(const data::Batch& b) {
  return Tensor::from_data({b.n, b.h, b.w, b.c}, b.images);
}

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : data::kDefaultFashionMnistDir;
  const long max_batches = argc > 2 ? std::atol(argv[2]) : -1;
  try {
    const data::Dataset train = data::load_idx_dataset(dir, true),
                        test = data::load_idx_dataset(dir, false);
    data::LoaderOptions opts;
    opts.batch_size = 64;
    opts.normalize = {{0.2860f}, {0.3530f}};
    TinyCnn model;
    OptimizerOptions adam;
    adam.kind = "adam";
    adam.lr = 2e-3f;
    auto optimizer = make_optimizer(model.params(), adam);

    data::BatchLoader loader(train, opts);
    loader.start_epoch(0);
    data::Batch batch;
    for (long step = 0; loader.next(batch) && step != max_batches; ++step) {
      optimizer->zero_grad();
      Tensor loss = ops::softmax_cross_entropy(model.forward(images_of(batch)),
                                               Tensor::from_labels(batch.labels));
      autograd::backward(loss);
      optimizer->step();
    }

    model.eval();
    opts.shuffle = false;
    data::BatchLoader eval_loader(test, opts);
    eval_loader.start_epoch(0);
    int64_t correct = 0, seen = 0;
    while (eval_loader.next(batch)) {
      autograd::NoGradGuard no_grad;
      correct +=
          ops::count_top1(model.forward(images_of(batch)), Tensor::from_labels(batch.labels));
      seen += batch.n;
    }
    std::printf("test accuracy %.2f%% on %lld images\n", 100.0 * double(correct) / double(seen),
                (long long)seen);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "custom_cnn: %s\n", e.what());
    return 1;
  }
  return 0;
}
