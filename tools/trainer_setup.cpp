#include <cstdio>

#include "dist/nccl_communicator.h"
#include "engine/checkpoint.h"
#include "engine/conv_bn_act.h"
#include "engine/pth.h"
#include "engine/state_dict.h"
#include "kernels/cpu/threads.h"
#include "tools/train_settings.h"
#include "tools/trainer.h"

namespace osprey::tools {
namespace {

// The configured dataset, or the program's own (dataset "custom").
std::shared_ptr<const DataSplits> training_data(const TrainConfig& cfg, const TrainOptions& o) {
  if (!o.data) {
    OSPREY_CHECK(cfg.dataset != "custom",
                 "config: dataset 'custom' needs the data in TrainOptions::data");
    return std::make_shared<const DataSplits>(load_data(cfg));
  }
  OSPREY_CHECK(cfg.dataset == "custom",
               "TrainOptions::data is given: set the config's dataset "
               "to 'custom' (it is '",
               cfg.dataset, "')");
  check_splits(*o.data);
  return o.data;
}

}  // namespace

Trainer::Trainer(const TrainConfig& cfg, const TrainOptions& options, const RunClaim& claim,
                 dist::Communicator& comm)
    : cfg_(cfg),
      options_(options),
      comm_(comm),
      lead_(comm.rank() == 0),
      groups_(dist::split_pipeline(comm, cfg.pipeline_stages)),
      pipelined_(cfg.pipeline_stages > 1) {
  check_batch_split();
  build_model();
  restore_or_initialise();
  make_loader();
  agree_with_other_ranks();
  connect_gradients();
  if (!loader_options_.images)
    gpu_augment_ = std::make_unique<data::GpuAugmenter>(
        loader_->pipeline(), data::ImageShape{data_->train.h, data_->train.w, data_->train.c},
        loader_->channels());
  if (pipelined_) plan_pipeline_stages();
  schedule_ = std::make_unique<LrSchedule>(schedule_options(cfg_), cfg_.lr, cfg_.epochs,
                                           loader_->batches_per_epoch());
  if (device_ == Device::cuda) uploader_ = std::make_unique<BatchUploader>();
  if (options_.handle_signals) signals_.emplace();
  if (lead_) {
    Provenance prov{options_.command_line, utc_now(), options_.resume_from, comm_.size()};
    files_ = open_run_dir(cfg_, claim, prov, pos_.epoch, pos_.global_step, last_metrics_);
  }
}

void Trainer::check_batch_split() const {
  OSPREY_CHECK(cfg_.batch_size % groups_.replicas == 0, "config: batch_size ", cfg_.batch_size,
               " must be a multiple of the ", groups_.replicas,
               " data-parallel replicas (it is the global batch)");
  OSPREY_CHECK((cfg_.batch_size / groups_.replicas) % cfg_.micro_batches == 0,
               "config: a batch of ", cfg_.batch_size / groups_.replicas,
               " per replica does not split into ", cfg_.micro_batches, " micro-batches");
}

// The model is sized for what the data pipeline produces.
void Trainer::build_model() {
  threads_ = cpu::set_num_threads(cfg_.threads);
  data_ = training_data(cfg_, options_);
  pipes_ = make_pipelines(cfg_, {data_->train.h, data_->train.w, data_->train.c});
  input_ = model_input(*data_, pipes_);
  model_ = create_model_for(cfg_, input_);
  model_->rng() = Rng(cfg_.seed ^ 0xd20b0u);
  device_ = resolve_device(cfg_.device);
  allow_tf32(cfg_.tf32);
  model_->set_recompute_activations(cfg_.recompute_activations);
  model_->set_activation_dtype(cfg_.precision == "bf16" ? DType::bf16 : DType::f32);
  model_->to(device_);  // before the optimizer, whose state lives beside the parameters
  optimizer_ = make_optimizer(model_->params(), optimizer_options(cfg_));
}

// A resumed run's weights, optimizer state and position, or the pretrained weights of
// init_from.
void Trainer::restore_or_initialise() {
  const std::string& resume = options_.resume_from;
  if (!resume.empty()) {
    CheckpointMetadata meta = load_checkpoint(resume, *model_, optimizer_.get());
    pos_ = read_position(meta, resume);
    if (meta.count("metrics")) last_metrics_ = meta.at("metrics");
    // The epoch's sums are all ranks' together: one rank carries them on.
    if (!lead_) pos_.loss_sum = 0.0, pos_.seen = pos_.correct = 0;
  } else if (!cfg_.init_from.empty()) {
    auto fresh = load_pretrained_state_dict(model_->params(), read_tensor_file(cfg_.init_from),
                                            model_->classifier_prefixes());
    if (lead_)
      std::printf("initialised from %s%s\n", cfg_.init_from.c_str(),
                  fresh.empty() ? "" : " (new classifier for this class count)");
  }
  elapsed_at_start_ = pos_.elapsed_s;
}

// This replica's shard of each global batch.
void Trainer::make_loader() {
  loader_options_ = loader_options(cfg_, pipes_);
  loader_options_.batch_size = cfg_.batch_size / groups_.replicas;
  loader_options_.rank = groups_.replica, loader_options_.world = groups_.replicas;
  // GPU augmentation: the loader only picks the samples, the GPU makes their images.
  OSPREY_CHECK(cfg_.augment_device == "cpu" || device_ == Device::cuda,
               "augment_device cuda needs the training to run on cuda (device is ",
               device_name(device_), ")");
  loader_options_.images = cfg_.augment_device == "cpu";
  loader_ = std::make_unique<data::BatchLoader>(data_->train, loader_options_);
  OSPREY_CHECK(pos_.step_in_epoch <= loader_->batches_per_epoch(), "checkpoint '",
               options_.resume_from, "': step_in_epoch ", pos_.step_in_epoch, " is beyond the ",
               loader_->batches_per_epoch(),
               " batches of an epoch of this config (were batch_size or limit_train changed?)");
}

// Every rank checks, before any collective that depends on them, that the others run the
// same steps on the same model: different settings would hang the job instead.
void Trainer::agree_with_other_ranks() {
  const std::string start = "epoch " + std::to_string(pos_.epoch) + " step " +
                            std::to_string(pos_.step_in_epoch) + " (global " +
                            std::to_string(pos_.global_step) + ")";
  dist::require_same_settings(
      comm_, settings_to_agree(cfg_, *data_, input_, *model_, *loader_, start, device_));
}

void Trainer::connect_gradients() {
  // GPU gradients travel over NCCL (one GPU per rank) unless the MPI communicator is asked for
  // (it stages them through host memory, so ranks may share a GPU).
  nccl_ = dist::make_gradient_communicator(comm_, device_, cfg_.communicator);
  grad_comm_ = nccl_ ? nccl_.get() : &comm_;
  if (cfg_.sync_batchnorm && comm_.size() > 1)
    model_->set_batchnorm_sync(std::make_shared<BatchNormSync>(
        BatchNormSync{[this](double* data, int64_t n) { comm_.allreduce_sum(data, n); }}));
  // Every rank starts from rank 0's state (its own random initialisation or load).
  dist::broadcast_state(model_->params(), *grad_comm_);
  // A pipeline's gradients are complete only after its last micro-batch: they are averaged
  // over the replica group once per step, not bucket by bucket during backward.
  solo_ = dist::make_local_communicator();
  bucketer_ = std::make_unique<dist::GradientBucketer>(
      model_->params(), pipelined_ ? *solo_ : *grad_comm_,
      dist::BucketOptions{cfg_.first_bucket_bytes, cfg_.bucket_bytes});
}

void Trainer::plan_pipeline_stages() {
  Tensor sample =
      Tensor::full({loader_options_.batch_size / cfg_.micro_batches, input_.h, input_.w, input_.c},
                   0.5f)
          .to(device_);
  plan_ = dist::plan_pipeline(*model_, sample, cfg_.pipeline_stages, comm_);
  dist::broadcast_state(model_->params(), comm_);  // the measurement touched BN statistics
  pipeline_ = std::make_unique<dist::PipelineSchedule>(*model_, plan_, *groups_.pipe);
}

}  // namespace osprey::tools
