// Data-parallel gradient averaging that overlaps backward: the flat gradient buffer is cut
// into buckets of whole parameters in reverse parameter order (the order backward finishes
// them), the first small so communication starts early; a bucket's all-reduce is launched the
// moment the autograd hook reports its last parameter's gradient final.
#pragma once
#include <cstdint>
#include <vector>

#include "dist/communicator.h"
#include "engine/param_store.h"

namespace osprey::dist {

struct BucketOptions {
  int64_t first_bucket_bytes = int64_t(1) << 20;
  int64_t bucket_bytes = int64_t(25) << 20;
};

class GradientBucketer {
 public:
  struct Bucket {
    int64_t begin = 0, end = 0;  // elements of the flat gradient buffer
    int first_param = 0, last_param = 0;
    int pending = 0;  // parameters whose gradient is not final yet, this step
    bool launched = false;
  };

  GradientBucketer(ParamStore& store, Communicator& comm, BucketOptions opts = {});
  ~GradientBucketer();  // detaches the hooks
  GradientBucketer(const GradientBucketer&) = delete;
  GradientBucketer& operator=(const GradientBucketer&) = delete;

  // After backward: launches the buckets some of whose parameters got no gradient this step,
  // waits for every all-reduce, and re-arms the buckets for the next step.
  void finish();
  const std::vector<Bucket>& buckets() const { return buckets_; }

 private:
  void on_ready(int param);
  void launch(Bucket& b);

  ParamStore& store_;
  Communicator& comm_;
  std::vector<Bucket> buckets_;
  std::vector<int> bucket_of_;  // parameter -> bucket
};

// Copies rank root's parameters and buffers to every rank (start of training, after a load).
void broadcast_state(ParamStore& store, Communicator& comm, int root = 0);

}  // namespace osprey::dist
