// Classifies image files (PNG, JPEG) with a model trained by `osprey train`: the checkpoint
// carries the model, its input size, normalisation and class names.
// Usage: classify RUN_OR_CHECKPOINT IMAGE...
#include <cstdio>
#include <string>
#include <vector>

#include "tools/inference.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: classify RUN_OR_CHECKPOINT IMAGE...\n");
    return 2;
  }
  try {
    osprey::tools::TrainedModel model = osprey::tools::load_trained(argv[1], {});
    const std::vector<std::string> images(argv + 2, argv + argc);
    for (const auto& p : osprey::tools::run_predict(model, images, /*top_k=*/1, 0.0f)) {
      const auto& [label, probability] = p.top.front();
      std::printf("%s %s %.4f\n", p.path.c_str(), model.input.class_names[size_t(label)].c_str(),
                  probability);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "classify: %s\n", e.what());
    return 1;
  }
  return 0;
}
