// CPU augmentation pipelines configured as a JSON list of transforms, torchvision semantics:
//   [{"type": "resize", "size": [224, 224]},
//    {"type": "random_resized_crop", "size": [224, 224], "scale": [0.7, 1.0],
//     "ratio": [0.75, 1.3333333]},
//    {"type": "hflip", "p": 0.5},
//    {"type": "color_jitter", "brightness": 0.3, "contrast": 0.3, "saturation": 0.3, "hue": 0.1},
//    {"type": "rotation", "degrees": 15, "fill": 0.0, "interpolation": "bilinear"},
//    {"type": "pad_crop", "pad": 4, "size": [32, 32], "fill": 0.0},
//    {"type": "center_crop", "size": [224, 224], "fill": 0.0},
//    {"type": "normalize", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}]
// "size" is [h, w] or one integer (resize: the shorter side, aspect kept; crops: square).
// ColorJitter factors and rotation degrees also take a [min, max] pair. Pixels enter as
// uint8 / 255 (float HWC in [0, 1], no uint8 rounding between steps, unlike PIL); normalize,
// when present, must come last. See data/transforms.h for each transform's exact rule.
//
// Random draws are counter-based: every draw of sample i in epoch e comes from a hash of
// (seed, epoch, i, transform index), so the output is independent of thread count, batch
// size, rank and of which other samples share the batch.
#pragma once
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/transforms.h"

namespace osprey::data {

// One configured transform; see the header comment for the JSON that produces it.
struct AugmentStep {
  enum class Kind {
    kResize,
    kCenterCrop,
    kRandomResizedCrop,
    kHFlip,
    kColorJitter,
    kRotation,
    kPadCrop,
    kNormalize
  };
  Kind kind = Kind::kResize;
  int size_h = 0, size_w = 0;
  bool shorter_side = false;  // resize to a single integer: the shorter side becomes size_h
  double scale[2] = {0.08, 1.0}, ratio[2] = {3.0 / 4.0, 4.0 / 3.0};
  double p = 0.5;
  // ColorJitter factor ranges; a range that can only give the identity is skipped (as
  // torchvision's None), so a zero setting draws nothing and costs nothing.
  bool has_brightness = false, has_contrast = false, has_saturation = false, has_hue = false;
  double brightness[2] = {1, 1}, contrast[2] = {1, 1}, saturation[2] = {1, 1}, hue[2] = {0, 0};
  double degrees[2] = {0, 0};
  bool bilinear = true;
  float fill = 0.0f;
  int pad = 0;
  std::vector<float> mean, std;  // 1 value (every channel) or one per channel
};

// The random choices of one transform for one sample; only its kind's fields are used.
struct StepDraw {
  tf::CropBox box;    // random_resized_crop: the crop; pad_crop: top and left (padded coords)
  bool flip = false;  // hflip
  // color_jitter: the order of brightness, contrast, saturation, hue (0..3) and the factors
  // (1, 1, 1, 0 for an adjustment the step does not make).
  int order[4] = {0, 1, 2, 3};
  float brightness = 1.0f, contrast = 1.0f, saturation = 1.0f, hue = 0.0f;
  double degrees = 0.0;  // rotation
};

class AugmentPipeline {
 public:
  // Parses a JSON array of transforms. Unknown types or keys, wrong JSON types and values out
  // of range throw osprey::Error naming transforms[i] and the key.
  static AugmentPipeline from_json(const nlohmann::json& list);
  // Reads a JSON file holding such an array; errors name the file.
  static AugmentPipeline from_json_file(const std::string& path);
  // The canonical JSON of this pipeline (from_json(to_json()) gives the same pipeline).
  nlohmann::json to_json() const;

  // The output size for an input of the given size; throws naming the transform that cannot
  // take it (a crop larger than its input, normalize values for the wrong channel count).
  ImageShape output_shape(ImageShape in) const;
  // The output size of step i alone for an input of size in (checked the same way).
  ImageShape step_output_shape(size_t i, ImageShape in) const;

  // Runs the pipeline on one uint8 HWC image; hwc_out receives output_shape({h, w, c}) floats.
  void apply(const uint8_t* hwc_in, int h, int w, int c, uint64_t seed, int epoch,
             int64_t sample_index, float* hwc_out) const;
  // Every random choice apply() makes for that sample, one StepDraw per step (what another
  // implementation of the same transforms, e.g. on the GPU, needs to give the same images).
  std::vector<StepDraw> draw(ImageShape in, uint64_t seed, int epoch, int64_t sample_index) const;

  bool deterministic() const;  // true when no transform draws random numbers
  bool has_normalize() const;
  // The evaluation counterpart: random_resized_crop becomes resize to its size, pad_crop a
  // center_crop of its size, and hflip, color_jitter and rotation are dropped; consecutive
  // fixed-size resizes collapse into the last.
  AugmentPipeline eval_pipeline() const;
  // A copy with normalize appended; an error if this pipeline already normalizes.
  AugmentPipeline with_normalize(const std::vector<float>& mean,
                                 const std::vector<float>& std) const;

  const std::vector<AugmentStep>& steps() const { return steps_; }

 private:
  std::vector<AugmentStep> steps_;
};

// The seed project's training pipeline: resize 32 -> 224, RandomResizedCrop(224, scale
// 0.7-1.0), hflip 0.5, ColorJitter(0.3, 0.3, 0.3, 0.1), rotation 15 degrees, ImageNet
// normalization; and its evaluation counterpart (resize 224 + normalize).
nlohmann::json seed_pipeline_json();
nlohmann::json seed_eval_pipeline_json();
// CIFAR-style training: pad 4 + random crop 32, hflip, CIFAR-10 mean/std normalization; and
// its evaluation counterpart (normalize only).
nlohmann::json cifar_pipeline_json();
nlohmann::json cifar_eval_pipeline_json();

// Runs pipeline over dataset samples indices[0..count), in parallel over the samples (threads
// OpenMP threads; 0 = OpenMP's default), writing count images of the pipeline's output shape to
// out. channels 0 keeps the dataset's; 3 replicates a grayscale dataset first.
void augment_batch(const AugmentPipeline& pipeline, const Dataset& ds, const int64_t* indices,
                   int count, uint64_t seed, int epoch, int channels, float* out, int threads = 0);

// The evaluation path: augment_batch for a deterministic pipeline (an error otherwise, so a
// training pipeline cannot silently randomize test metrics).
void eval_into(const AugmentPipeline& pipeline, const Dataset& ds, const int64_t* indices,
               int count, int channels, float* out, int threads = 0);

}  // namespace osprey::data
