#include "tools/train.h"

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <optional>

#include "engine/checkpoint.h"
#include "engine/ops.h"
#include "engine/parse.h"
#include "kernels/cpu/gemm_bf16.h"
#include "tools/evaluate.h"
#include "tools/plot.h"
#include "tools/progress.h"
#include "tools/stop_signal.h"
#include "tools/train_position.h"
#include "tools/trainer.h"

namespace osprey::tools {
namespace {

using Clock = Trainer::Clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

void Trainer::print_header() const {
  const int world = comm_.size();
  std::printf(
      "osprey train: %s on %s (%d train / %d test images %dx%dx%d, model input %dx%dx%d, %d "
      "classes), %lld parameters, %d rank%s x %d threads, %s%s%s%s%s\n",
      model_->name().c_str(), cfg_.dataset.c_str(), data_->train.n, data_->test.n, data_->train.h,
      data_->train.w, data_->train.c, input_.h, input_.w, input_.c, data_->num_classes,
      (long long)model_->params().num_elements(), world, world > 1 ? "s" : "", threads_,
      device_description(device_).c_str(), cfg_.precision == "bf16" ? ", bf16 activations" : "",
      gpu_augment_ ? ", augmentation on the GPU" : "",
      world > 1 ? (", " + std::string(grad_comm_->name())).c_str() : "",
      options_.resume_from.empty() ? "" : (", resuming " + options_.resume_from).c_str());
  if (cfg_.precision == "bf16" && device_ == Device::cpu && !cpu::native_bf16_gemm())
    std::printf(
        "note: this CPU has no bf16 instructions (AVX512-BF16 or AMX): bf16 activations save "
        "memory but train no faster than precision=f32 here\n");
  std::printf("run directory: %s\n", files_.dir.string().c_str());
  std::fflush(stdout);
}

// Counts step `step`'s loss and top-1 hits into the epoch's sums and the progress bar.
void Trainer::account(float loss, int64_t valid, int64_t correct, int64_t step) {
  OSPREY_CHECK(std::isfinite(loss), "training diverged: loss is ", loss, " at epoch ",
               pos_.epoch + 1, " step ", step, " (try a lower lr)");
  pos_.loss_sum += double(loss) * double(valid);
  pos_.seen += valid;
  pos_.correct += correct;
  const int64_t global = pos_.global_step - (pos_.step_in_epoch - step);
  if (lead_ && cfg_.log_every_steps > 0 && global % cfg_.log_every_steps == 0)
    append_line(files_.steps, nlohmann::json{{"step", global},
                                             {"epoch", pos_.epoch + 1},
                                             {"step_in_epoch", step},
                                             {"loss", loss},
                                             {"lr", shortest_decimal(optimizer_->lr())},
                                             {"time", utc_now()}}
                                  .dump());
  bar_->update(step, images_, pos_.seen ? pos_.loss_sum / double(pos_.seen) : 0.0);
  if (options_.on_step)
    options_.on_step(StepEvent{pos_.epoch + 1, step, loader_->batches_per_epoch(), global, loss});
}

void Trainer::settle() {
  if (pending_)
    account(pending_->loss.to_vector()[0], pending_->valid,
            ops::count_top1(pending_->logits, pending_->labels), pending_->step);
  pending_.reset();
}

void Trainer::step(const data::Batch& batch) {
  optimizer_->set_lr(schedule_->lr(pos_.epoch, pos_.step_in_epoch));
  if (schedule_->cycles_momentum())
    optimizer_->set_momentum(schedule_->momentum(pos_.epoch, pos_.step_in_epoch));
  const Shape x_shape = {batch.n, batch.h, batch.w, batch.c};
  Tensor x = gpu_augment_ ? gpu_augment_->run(data_->train, batch.indices.data(), batch.n,
                                              cfg_.seed, pos_.epoch)
             : uploader_  ? uploader_->upload(batch.images.data(), x_shape)
                          : Tensor::from_data(x_shape, batch.images);
  const Tensor labels = Tensor::from_labels(batch.labels);
  optimizer_->zero_grad();
  float l = 0.0f;
  int64_t correct = 0;
  Tensor loss, logits;
  if (pipelined_) {
    l = float(pipeline_->train_step(x, labels, cfg_.micro_batches, cfg_.label_smoothing, &correct));
    Tensor g = model_->params().flat_grad();  // other stages' parts are zero
    groups_.group->allreduce_average_async(g.ptr<float>(), g.numel());
    groups_.group->wait_all();
  } else {
    logits = model_->forward(x);
    loss = ops::softmax_cross_entropy(logits, labels, cfg_.label_smoothing);
    loss.backward();
    bucketer_->finish();  // gradients are now averaged over the ranks
  }
  if (cfg_.clip_grad_norm > 0) {
    // A pipeline rank holds its own stage's gradients (the rest are zero): the norm is
    // summed over the pipeline's stages.
    auto over_stages = [&](double squares) {
      groups_.pipe->allreduce_sum(&squares, 1);
      return squares;
    };
    clip_grad_norm(model_->params(), cfg_.clip_grad_norm,
                   pipelined_ ? std::function<double(double)>(over_stages) : nullptr);
  }
  optimizer_->step();
  ++pos_.step_in_epoch;
  ++pos_.global_step;
  images_ += int64_t(batch.valid) * groups_.replicas;
  if (pipelined_) {
    if (pipeline_->last_stage())
      account(l, batch.valid, correct, pos_.step_in_epoch);
    else
      bar_->update(pos_.step_in_epoch, images_, -1.0);
    return;
  }
  // Only [0, valid) are real samples (data/loader.h).
  PendingLoss now{loss, logits.rows(0, batch.valid), labels.rows(0, batch.valid), batch.valid,
                  pos_.step_in_epoch};
  if (device_ == Device::cuda) {
    settle();
    pending_ = std::move(now);
  } else {
    pending_ = std::move(now);
    settle();
  }
}

int Trainer::agreed_signal() {
  const int mine = signals_ ? signals_->received() : 0;
  if (comm_.size() == 1) return mine;
  double kinds[3] = {double(mine == SIGINT), double(mine == SIGTERM), double(mine == SIGUSR1)};
  comm_.allreduce_sum(kinds, 3);
  return kinds[0] > 0 ? SIGINT : kinds[1] > 0 ? SIGTERM : kinds[2] > 0 ? SIGUSR1 : 0;
}

void Trainer::sync_stages() {
  // Before evaluating or saving, every rank of a pipeline gets the other stages' state.
  if (pipelined_) dist::sync_pipeline_state(*model_, plan_, *groups_.pipe, optimizer_.get());
}

TrainOutcome Trainer::outcome(int signal) const {
  TrainOutcome o;
  o.accuracy = accuracy_;
  o.best_accuracy = pos_.best_accuracy;
  o.best_epoch = pos_.best_epoch;
  o.run_dir = files_.dir.string();
  o.stopped_by_signal = signal;
  return o;
}

// Mid-epoch (a signal or stop_after_steps): last gets the position and the epoch's sums over
// all ranks, so the resumed run continues exactly.
TrainOutcome Trainer::stop(int signal) {
  settle();
  bar_->finish();
  sync_stages();
  double sums[3] = {pos_.loss_sum, double(pos_.seen), double(pos_.correct)};
  comm_.allreduce_sum(sums, 3);
  Position saved = pos_;
  saved.loss_sum = sums[0], saved.seen = int64_t(sums[1]), saved.correct = int64_t(sums[2]);
  saved.elapsed_s = elapsed_at_start_ + seconds_since(start_);
  if (!lead_) return outcome(signal);
  save_training_checkpoint(files_.last, *model_, *optimizer_, cfg_, input_, saved, accuracy_,
                           last_metrics_);
  if (signal)
    std::printf("stopped by %s at epoch %d/%d, step %lld/%lld; saved %s\n", signal_name(signal),
                pos_.epoch + 1, cfg_.epochs, (long long)pos_.step_in_epoch,
                (long long)loader_->batches_per_epoch(), files_.last.c_str());
  else
    std::printf("stopped after %lld steps (epoch %d, step %lld)\n", (long long)pos_.global_step,
                pos_.epoch + 1, (long long)pos_.step_in_epoch);
  std::printf("resume with `osprey train --resume %s`\n", files_.dir.string().c_str());
  std::fflush(stdout);
  draw_curves();
  return outcome(signal);
}

void Trainer::end_epoch(double train_seconds, Clock::time_point epoch_start) {
  sync_stages();
  Evaluation ev = evaluate(*model_, data_->test, pipes_.eval, pipes_.channels, input_.num_classes,
                           cfg_.eval_batch_size, comm_.rank(), comm_.size());
  sum_across_ranks(ev, comm_);
  double sums[3] = {pos_.loss_sum, double(pos_.seen), double(pos_.correct)};
  comm_.allreduce_sum(sums, 3);
  const double seconds = seconds_since(epoch_start);
  accuracy_ = ev.accuracy();
  const double train_loss = sums[1] > 0 ? sums[0] / sums[1] : 0.0;
  const double train_acc = sums[1] > 0 ? 100.0 * sums[2] / sums[1] : 0.0;
  Position next = pos_;
  ++next.epoch, next.step_in_epoch = 0;
  next.loss_sum = 0.0, next.seen = next.correct = 0;
  next.elapsed_s = elapsed_at_start_ + seconds_since(start_);
  if (accuracy_ > pos_.best_accuracy) next.best_accuracy = accuracy_, next.best_epoch = next.epoch;
  const bool improved = next.best_epoch == next.epoch;
  pos_ = next;
  const double images_per_s = sums[1] / train_seconds;
  const EpochEvent event{next.epoch,        cfg_.epochs,  train_loss, train_acc, ev.loss,
                         100.0 * accuracy_, images_per_s, seconds,    improved};
  if (!lead_) {
    if (options_.on_epoch) options_.on_epoch(event);
    return;
  }
  std::printf(
      "epoch %2d/%d  train_loss %.4f  test_loss %.4f  test_acc %.2f%%  train_acc %.2f%%  %.0f "
      "images/s  %.1f s\n",
      next.epoch, cfg_.epochs, train_loss, ev.loss, 100.0 * accuracy_, train_acc, images_per_s,
      seconds);
  std::fflush(stdout);
  last_metrics_ = nlohmann::json{
      {"epoch", next.epoch},
      {"train_loss", train_loss},
      {"train_acc", train_acc},
      {"test_loss", ev.loss},
      {"test_acc", 100.0 * accuracy_},
      {"test_samples", ev.samples},
      {"lr", shortest_decimal(optimizer_->lr())},
      {"images_per_s", images_per_s},
      {"seconds", seconds},
      {"elapsed_s", next.elapsed_s},
      {"time",
       utc_now()}}.dump();
  // best, then last, then the metrics line: a write that fails (a full disk) or a kill
  // leaves every file resumable, and the line is also in the checkpoints (open_run_dir).
  if (improved)
    save_training_checkpoint(files_.best, *model_, *optimizer_, cfg_, input_, next, accuracy_,
                             last_metrics_);
  save_training_checkpoint(files_.last, *model_, *optimizer_, cfg_, input_, next, accuracy_,
                           last_metrics_);
  append_line(files_.metrics, last_metrics_);
  if (options_.on_epoch) options_.on_epoch(event);
}

void Trainer::draw_curves() const {
  if (!cfg_.plot || !lead_ || pos_.epoch == 0) return;
  try {
    plot_runs({files_.dir.string()}, files_.curves, cfg_.runs_dir);
  } catch (const Error& e) {
    std::fprintf(stderr, "osprey: no training curves: %s\n", printable(e.what()).c_str());
  }
}

TrainOutcome Trainer::run() {
  if (lead_) print_header();
  data::Batch batch;
  while (pos_.epoch < cfg_.epochs) {
    const Clock::time_point t0 = Clock::now();
    model_->train();
    loader_->start_epoch(pos_.epoch);
    // A resumed epoch skips the batches already trained on: the order is a function of
    // (seed, epoch), so the remaining batches are the same ones.
    for (int64_t s = 0; s < pos_.step_in_epoch; ++s) loader_->next(batch);
    bar_ = std::make_unique<ProgressBar>(
        "epoch " + std::to_string(pos_.epoch + 1) + "/" + std::to_string(cfg_.epochs),
        loader_->batches_per_epoch(), pos_.step_in_epoch,
        lead_ ? progress_mode(cfg_.progress, cfg_.progress_interval_s) : ProgressMode::none,
        cfg_.progress_interval_s);
    while (loader_->next(batch)) {
      step(batch);
      if (const int sig = agreed_signal()) return stop(sig);
      if (cfg_.stop_after_steps > 0 && pos_.global_step >= cfg_.stop_after_steps) return stop(0);
    }
    settle();
    bar_->finish();
    end_epoch(seconds_since(t0), t0);
    if (const int sig = agreed_signal()) {
      if (lead_)
        std::printf("stopped by %s after epoch %d/%d; resume with `osprey train --resume %s`\n",
                    signal_name(sig), pos_.epoch, cfg_.epochs, files_.dir.string().c_str());
      draw_curves();
      return outcome(sig);
    }
  }
  if (lead_) {
    const double wall = seconds_since(start_);
    const std::string all = options_.resume_from.empty() ? std::string()
                                                         : " (" + format_duration(pos_.elapsed_s) +
                                                               " with the earlier runs)";
    std::printf(
        "done in %s%s: best test accuracy %.2f%% after epoch %d, last %.2f%%, %.0f images/s\n",
        format_duration(wall).c_str(), all.c_str(), 100.0 * pos_.best_accuracy, pos_.best_epoch,
        100.0 * accuracy_, wall > 0 ? double(images_) / wall : 0.0);
    draw_curves();
    std::printf("files: %s (epoch %d), %s, %s%s%s\n", files_.best.c_str(), pos_.best_epoch,
                files_.last.c_str(), files_.metrics.c_str(), cfg_.plot ? ", " : "",
                cfg_.plot ? files_.curves.c_str() : "");
    std::fflush(stdout);
  }
  return outcome(0);
}

namespace {

// A resumed run whose checkpoint already covers every epoch: nothing to train.
TrainOutcome finished_already(const TrainConfig& cfg, const std::string& checkpoint,
                              const Position& pos, bool lead) {
  TrainOutcome o;
  o.best_accuracy = pos.best_accuracy, o.best_epoch = pos.best_epoch;
  o.accuracy = checkpoint_double(read_checkpoint_metadata(checkpoint), checkpoint, "test_accuracy",
                                 -1.0, 1.0);
  o.run_dir = RunFiles(cfg.runs_dir, cfg.name).dir.string();
  if (lead)
    std::printf(
        "run %s already finished its %d epoch%s (best test accuracy %.2f%% after epoch %d): "
        "nothing to train. To train longer: `osprey train --resume %s --set epochs=N` with N > "
        "%d\n",
        o.run_dir.c_str(), pos.epoch, pos.epoch == 1 ? "" : "s", 100.0 * pos.best_accuracy,
        pos.best_epoch, o.run_dir.c_str(), pos.epoch);
  return o;
}

}  // namespace

TrainOutcome run_train(const TrainConfig& cfg_in, const TrainOptions& options,
                       dist::Communicator* comm_or_null) {
  validate(cfg_in);
  TrainConfig cfg = cfg_in;
  std::unique_ptr<dist::Communicator> local;
  if (!comm_or_null) local = dist::make_local_communicator();
  dist::Communicator& comm = comm_or_null ? *comm_or_null : *local;
  const bool lead = comm.rank() == 0;
  const bool resuming = !options.resume_from.empty();
  if (resuming) {
    const Position pos =
        read_position(read_checkpoint_metadata(options.resume_from), options.resume_from);
    if (pos.epoch >= cfg.epochs && pos.step_in_epoch == 0)
      return finished_already(cfg, options.resume_from, pos, lead);
  }
  // Before the data is read: a run that would be overwritten is refused at once.
  const RunClaim claim = lead ? claim_run_name(cfg, resuming, options.overwrite) : RunClaim{};
  Trainer trainer(cfg, options, claim, comm);
  return trainer.run();
}

}  // namespace osprey::tools
