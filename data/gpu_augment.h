// The training augmentation on the GPU: a batch's uint8 source images are uploaded (a quarter
// of the float bytes, before any upsampling) and the pipeline's transforms run there as batched
// kernels (kernels/cuda/augment.h), each sample with the random choices the CPU pipeline would
// make for it (AugmentPipeline::draw). Same images as augment_batch up to float rounding; the
// host only draws the parameters. Needs a CUDA build; run() fails clearly otherwise.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "data/augment.h"
#include "data/dataset.h"
#include "engine/device.h"
#include "engine/tensor.h"

namespace osprey::data {

class GpuAugmenter {
 public:
  // source: the dataset's image shape; channels: 0 keeps its channels, 3 replicates grayscale.
  GpuAugmenter(AugmentPipeline pipeline, ImageShape source, int channels);
  ImageShape output_shape() const { return out_; }

  // Dataset samples indices[0, count) with the draws of (seed, epoch, dataset index): the
  // batch augment_batch would make, as an f32 NHWC cuda tensor (queued on the compute stream).
  // One asynchronous upload per batch (the source images and all the draws): the host does not
  // wait for the GPU.
  Tensor run(const Dataset& ds, const int64_t* indices, int count, uint64_t seed, int epoch);

 private:
  AugmentPipeline pipeline_;
  ImageShape source_, in_, out_;             // in_: after channel replication
  std::unique_ptr<BatchUploader> uploader_;  // made on the first run (needs a GPU)
};

}  // namespace osprey::data
