#include "tools/inference.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "data/image.h"
#include "engine/checkpoint.h"
#include "engine/device.h"
#include "kernels/cpu/threads.h"
#include "tools/train.h"

namespace osprey::tools {

TrainedModel load_trained(const std::string& run_or_file,
                          const std::vector<std::string>& overrides) {
  TrainedModel tm;
  tm.checkpoint = resolve_checkpoint(run_or_file, TrainConfig{}.runs_dir);
  tm.cfg = config_from_checkpoint(tm.checkpoint);
  for (const std::string& s : overrides) apply_override(tm.cfg, s);
  CheckpointMetadata meta = read_checkpoint_metadata(tm.checkpoint);
  auto it = meta.find("input");
  OSPREY_CHECK(it != meta.end(), "checkpoint '", tm.checkpoint,
               "' does not describe its model input (written by an older osprey?)");
  nlohmann::json j = nlohmann::json::parse(it->second, nullptr, false);
  OSPREY_CHECK(!j.is_discarded(), "checkpoint '", tm.checkpoint, "' has an unreadable input");
  tm.input = ModelInput::from_json(j);
  cpu::set_num_threads(tm.cfg.threads);
  tm.model = create_model_for(tm.cfg, tm.input);
  load_checkpoint(tm.checkpoint, *tm.model, nullptr);
  tm.model->to(resolve_device(tm.cfg.device));
  tm.model->eval();
  tm.net = tm.model->inference_net();
  return tm;
}

Evaluation run_eval(TrainedModel& tm) {
  DataSplits data = load_data(tm.cfg);
  const data::ImageShape& src = tm.input.source;
  OSPREY_CHECK(data.test.h == src.h && data.test.w == src.w && data.test.c == src.c,
               "the test set's images (", data.test.h, "x", data.test.w, "x", data.test.c,
               ") are not the ones the model was trained on (", src.h, "x", src.w, "x", src.c, ")");
  return evaluate(*tm.model, data.test, data::AugmentPipeline::from_json(tm.input.eval_pipeline),
                  tm.input.c, tm.input.num_classes, tm.cfg.eval_batch_size);
}

void print_evaluation(const Evaluation& ev, const ModelInput& input) {
  std::printf("test samples %lld  accuracy %.2f%%  loss %.4f\n", (long long)ev.samples,
              100.0 * ev.accuracy(), ev.loss);
  std::printf("\n%-24s %8s %8s\n", "class", "samples", "accuracy");
  for (int k = 0; k < ev.num_classes; ++k) {
    std::string name =
        k < int(input.class_names.size()) ? input.class_names[size_t(k)] : std::to_string(k);
    std::printf("%-24s %8lld %7.2f%%\n", name.c_str(), (long long)ev.class_count(k),
                100.0 * ev.class_accuracy(k));
  }
  std::printf("\nconfusion matrix (rows: true class, columns: predicted)\n     ");
  for (int p = 0; p < ev.num_classes; ++p) std::printf(" %6d", p);
  std::printf("\n");
  for (int t = 0; t < ev.num_classes; ++t) {
    std::printf("%4d ", t);
    for (int p = 0; p < ev.num_classes; ++p)
      std::printf(" %6lld", (long long)ev.confusion[size_t(t * ev.num_classes + p)]);
    std::printf("\n");
  }
}

}  // namespace osprey::tools

namespace osprey::tools {

std::vector<Prediction> run_predict(TrainedModel& tm, const std::vector<std::string>& paths,
                                    int top_k, float threshold) {
  std::vector<data::Image> images;
  for (const std::string& path : paths) images.push_back(data::load_image(path, tm.input.source.c));
  std::vector<Prediction> out = predict_images(tm, images, top_k, threshold);
  for (size_t i = 0; i < out.size(); ++i) out[i].path = paths[i];
  return out;
}

std::vector<Prediction> predict_images(TrainedModel& tm, const std::vector<data::Image>& images,
                                       int top_k, float threshold) {
  OSPREY_CHECK(top_k >= 1, "predict: top-k must be >= 1");
  OSPREY_CHECK(threshold >= 0 && threshold <= 1, "predict: the threshold must be in [0, 1]");
  const data::ImageShape& src = tm.input.source;
  // The images become a small dataset in the stored format, so they go through exactly the
  // evaluation pipeline the test set went through.
  data::Dataset ds;
  ds.n = int(images.size()), ds.h = src.h, ds.w = src.w, ds.c = src.c;
  ds.num_classes = tm.input.num_classes;
  ds.labels.assign(images.size(), 0);
  for (const data::Image& original : images) {
    OSPREY_CHECK(original.c == src.c, "predict: an image with ", original.c,
                 " channels for a model trained on ", src.c, " (decode with that many)");
    data::Image img = original;
    if (img.h != src.h || img.w != src.w) img = data::resize_image(img, src.h, src.w);
    ds.pixels.insert(ds.pixels.end(), img.pixels.begin(), img.pixels.end());
  }
  data::AugmentPipeline eval = data::AugmentPipeline::from_json(tm.input.eval_pipeline);
  std::vector<int64_t> idx(images.size());
  std::iota(idx.begin(), idx.end(), 0);
  Tensor x = Tensor::empty({ds.n, tm.input.h, tm.input.w, tm.input.c});
  data::eval_into(eval, ds, idx.data(), ds.n, tm.input.c, x.data<float>());
  Tensor logits = tm.net->forward(x.to(tm.model->device())).to(Device::cpu);
  int k = int(logits.dim(1));
  std::vector<Prediction> out;
  for (int i = 0; i < ds.n; ++i) {
    const float* l = logits.data<float>() + int64_t(i) * k;
    float mx = *std::max_element(l, l + k);
    std::vector<double> p(static_cast<size_t>(k));
    double sum = 0;
    for (int j = 0; j < k; ++j) sum += p[size_t(j)] = std::exp(double(l[j] - mx));
    std::vector<int> order(static_cast<size_t>(k));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return p[size_t(a)] > p[size_t(b)]; });
    Prediction pr;
    for (int j = 0; j < std::min(top_k, k); ++j)
      pr.top.emplace_back(order[size_t(j)], float(p[size_t(order[size_t(j)])] / sum));
    pr.uncertain = pr.top[0].second < threshold;
    out.push_back(pr);
  }
  return out;
}

}  // namespace osprey::tools
