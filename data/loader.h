// A batch loader that turns a Dataset into normalized float NHWC batches on a background
// thread, one batch ahead of the caller, with deterministic shuffling and sharding by rank.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "data/dataset.h"

namespace osprey::data {

class AugmentPipeline;  // data/augment.h

// Per channel: value = (pixel / 255 - mean) / std. Empty vectors mean just pixel / 255; a single
// entry applies to every channel.
struct Normalize {
  std::vector<float> mean, std;
};

struct Batch {
  int n = 0, h = 0, w = 0, c = 0;
  std::vector<float> images;     // n * h * w * c, NHWC
  std::vector<int64_t> labels;   // n
  std::vector<int64_t> indices;  // n: the dataset index of each sample
  // Samples [0, valid) are real; [valid, n) repeat earlier samples to give every rank the same
  // batch count (world > 1 only, last batch only). Exact metrics must count only [0, valid).
  int valid = 0;
};

struct LoaderOptions {
  int batch_size = 64;
  bool shuffle = true;
  uint64_t seed = 0;
  bool drop_last = false;
  int rank = 0, world = 1;
  Normalize normalize;
  // Training augmentation (data/augment.h), run on the loader thread, parallel over the batch
  // with OpenMP; null means normalize only. Batches then have the pipeline's output size. A
  // pipeline without a final normalize gets `normalize` appended; a pipeline that has one
  // requires `normalize` to be empty (mean/std given twice is an error, not a double normalize).
  // Draws depend only on (seed, epoch, dataset index): see AugmentPipeline.
  std::shared_ptr<const AugmentPipeline> augment;
  // Channels of the batches: 0 keeps the dataset's; 3 replicates a grayscale dataset to RGB.
  int channels = 0;
  // OpenMP threads for augmentation, 0 = OpenMP's default. The training step runs its own team
  // at the same time, so a share of the cores avoids oversubscription.
  int augment_threads = 0;
  // false: batches carry labels and indices only, images stays empty (the images are made
  // elsewhere from the indices, e.g. by data::GpuAugmenter with pipeline()).
  bool images = true;
};

// Writes count images, dataset indices[0..count), normalized, to out (count * image_size floats).
void normalize_into(const Dataset& ds, const int64_t* indices, int count, const Normalize& norm,
                    float* out);
// The same with `channels` output channels: ds.c, or 3 for a grayscale dataset (replicated). norm
// then has 0, 1 or `channels` entries.
void normalize_into(const Dataset& ds, const int64_t* indices, int count, const Normalize& norm,
                    int channels, float* out);

// The epoch order of all N samples: identity without shuffle, otherwise a Fisher-Yates
// permutation driven by std::mt19937_64 seeded from (seed, epoch). Only the engine's output is
// used (never std:: distributions), so the order is identical on every platform and library.
void epoch_order(int64_t n, bool shuffle, uint64_t seed, int epoch, std::vector<int64_t>& order);

// Sharding: rank r of world w takes positions r, r + w, r + 2w, ... of the epoch order (strided,
// so every rank sees a uniform sample of each epoch). To give every rank the same batch count:
//  - drop_last = false: the order is padded by wrapping around to ceil(N / w) * w positions, so
//    each rank gets ceil(N / w) samples; at most one per rank, its very last, is a repeat (see
//    Batch::valid). The last batch may be partial. With w == 1 nothing is padded or dropped.
//  - drop_last = true: each rank gets floor(N / w) samples (the order's last N mod w positions
//    are dropped, different samples every shuffled epoch) and only full batches are produced.
// The Dataset must outlive the loader and stay unchanged while it runs.
class BatchLoader {
 public:
  BatchLoader(const Dataset& ds, LoaderOptions opts);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Computes the epoch's order and begins preparing batch 0; abandons any unfinished epoch.
  void start_epoch(int epoch);
  // Blocks for the prepared batch and swaps it into out (buffers are swapped, not copied: out's
  // old storage becomes the next batch's), then starts the following one. False at epoch end.
  // An exception thrown while preparing the batch is rethrown here and ends the epoch.
  bool next(Batch& out);

  int64_t batches_per_epoch() const { return batches_; }
  int64_t samples_per_epoch() const { return samples_; }  // this rank's, padding included
  // The h, w, c of every batch's images (the augmentation's output size when there is one).
  ImageShape image_shape() const { return shape_; }
  // What turns a dataset sample into a batch image, as one pipeline: the augmentation with its
  // normalize, or normalize alone (an empty pipeline when there is no mean/std either); its
  // input has channels() channels (a grayscale dataset replicated to 3 first).
  AugmentPipeline pipeline() const;
  int channels() const { return channels_; }

 private:
  void worker_loop();
  void fill(int64_t batch, Batch& out);

  const Dataset& ds_;
  LoaderOptions opts_;
  std::shared_ptr<const AugmentPipeline> pipeline_;  // opts_.augment, normalize appended if needed
  int channels_ = 0;                                 // the batches' channels before augmentation
  ImageShape shape_;
  int epoch_ = 0;        // of the epoch being delivered (augmentation draws depend on it)
  int64_t samples_ = 0;  // this rank's samples per epoch, after padding or dropping
  int64_t batches_ = 0;
  std::vector<int64_t> order_;      // the epoch order of the whole dataset
  std::vector<int64_t> batch_idx_;  // scratch for the batch being filled (worker only)

  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;  // start_epoch has been called
  bool pending_ = false;  // the worker should fill batch fill_batch_ into slot_
  bool busy_ = false;     // the worker is filling slot_ (outside the lock)
  bool ready_ = false;    // slot_ holds batch next_batch_
  bool stop_ = false;
  int64_t fill_batch_ = 0;
  int64_t next_batch_ = 0;  // the batch the caller receives next
  Batch slot_;
  std::exception_ptr error_;
  std::thread worker_;  // last: started once every other member is initialized
};

}  // namespace osprey::data
