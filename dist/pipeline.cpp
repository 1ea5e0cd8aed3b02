#include "dist/pipeline.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/ops.h"

namespace osprey::dist {
PipelinePlan balance_stages(const std::vector<double>& costs, int stages) {
  const int n = int(costs.size());
  OSPREY_CHECK(stages >= 1 && stages <= n, "pipeline: ", stages, " stages for a model of ", n,
               " segments");
  // best[s][i]: the smallest possible maximum stage cost splitting segments [0, i) into s
  // stages; a small dynamic programme (n is ~20).
  std::vector<double> prefix(size_t(n) + 1, 0.0);
  for (int i = 0; i < n; ++i) prefix[size_t(i) + 1] = prefix[size_t(i)] + costs[size_t(i)];
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> best(size_t(stages) + 1,
                                        std::vector<double>(size_t(n) + 1, inf));
  std::vector<std::vector<int>> cut(size_t(stages) + 1, std::vector<int>(size_t(n) + 1, 0));
  best[0][0] = 0.0;
  for (int s = 1; s <= stages; ++s)
    for (int i = s; i <= n; ++i)
      for (int j = s - 1; j < i; ++j) {
        double c = std::max(best[size_t(s) - 1][size_t(j)], prefix[size_t(i)] - prefix[size_t(j)]);
        if (c < best[size_t(s)][size_t(i)])
          best[size_t(s)][size_t(i)] = c, cut[size_t(s)][size_t(i)] = j;
      }
  PipelinePlan plan;
  plan.first.assign(size_t(stages) + 1, 0);
  plan.first[size_t(stages)] = n;
  for (int s = stages, i = n; s > 0; --s) i = plan.first[size_t(s) - 1] = cut[size_t(s)][size_t(i)];
  return plan;
}

std::vector<double> measure_segment_costs(Model& model, const Tensor& sample) {
  std::vector<double> costs;
  Tensor h = sample;
  for (int i = 0; i < model.num_segments(); ++i) {
    Tensor in = h.clone().set_requires_grad();
    auto t0 = std::chrono::steady_clock::now();
    Tensor out = model.forward_segment(i, in);
    autograd::backward(out, Tensor::full(out.shape(), 1.0f / float(out.numel())));
    synchronize(out.device());  // a GPU's work is queued: time it, not its launch
    costs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    h = out;
  }
  model.params().zero_grad();
  return costs;
}

PipelineGroups split_pipeline(Communicator& world, int stages) {
  OSPREY_CHECK(stages >= 1 && world.size() % stages == 0, world.size(),
               " ranks do not form pipelines of ", stages, " stages");
  PipelineGroups g;
  g.stages = stages;
  g.replicas = world.size() / stages;
  g.stage = world.rank() % stages;
  g.replica = world.rank() / stages;
  g.pipe = world.split(g.replica, g.stage);
  g.group = world.split(g.stage, g.replica);
  return g;
}

PipelinePlan plan_pipeline(Model& model, const Tensor& sample, int stages, Communicator& world) {
  std::vector<float> costs(size_t(model.num_segments()), 0.0f);
  if (world.rank() == 0) {
    std::vector<double> measured = measure_segment_costs(model, sample);
    std::copy(measured.begin(), measured.end(), costs.begin());
  }
  world.broadcast(costs.data(), int64_t(costs.size()), 0);
  return balance_stages(std::vector<double>(costs.begin(), costs.end()), stages);
}

void sync_pipeline_state(Model& model, const PipelinePlan& plan, Communicator& pipe,
                         const Optimizer* optimizer) {
  if (pipe.size() == 1) return;
  const ParamStore& store = model.params();
  std::vector<Tensor> flats = {store.flat_data()};
  if (optimizer)
    for (const auto& slot : optimizer->state()) flats.push_back(slot.second);
  for (int s = 0; s < plan.stages(); ++s) {
    int p0 = model.segment_params(plan.first[size_t(s)]).first;
    int p1 = model.segment_params(plan.first[size_t(s) + 1] - 1).second;
    if (p1 > p0) {
      int64_t begin = store.params()[size_t(p0)].offset;
      int64_t end =
          p1 < int(store.params().size()) ? store.params()[size_t(p1)].offset : store.flat_size();
      for (const Tensor& flat : flats) pipe.broadcast(flat.ptr<float>() + begin, end - begin, s);
    }
    int b0 = model.segment_buffers(plan.first[size_t(s)]).first;
    int b1 = model.segment_buffers(plan.first[size_t(s) + 1] - 1).second;
    for (int b = b0; b < b1; ++b) {
      const Tensor& t = store.buffers()[size_t(b)].value;
      // The communicators take host or GPU buffers (staged through host memory if need be).
      if (t.dtype() == DType::i64)
        pipe.broadcast(t.ptr<int64_t>(), t.numel(), s);
      else
        pipe.broadcast(t.ptr<float>(), t.numel(), s);
    }
  }
}

PipelineSchedule::PipelineSchedule(Model& model, PipelinePlan plan, Communicator& comm)
    : model_(model), plan_(std::move(plan)), comm_(comm) {
  OSPREY_CHECK(plan_.stages() == comm.size(), "pipeline: a plan of ", plan_.stages(), " stages on ",
               comm.size(), " ranks");
  OSPREY_CHECK(plan_.first.back() == model.num_segments(), "pipeline: the plan covers ",
               plan_.first.back(), " segments, the model has ", model.num_segments());
}

Tensor PipelineSchedule::run_segments(Tensor h) {
  for (int i = plan_.first[size_t(stage())]; i < plan_.first[size_t(stage()) + 1]; ++i)
    h = model_.forward_segment(i, h);
  return h;
}

void PipelineSchedule::send_tensor(const Tensor& t, int dest) {
  std::vector<int64_t> header = {t.ndim()};
  header.insert(header.end(), t.shape().begin(), t.shape().end());
  header.resize(5, 0);
  comm_.send(header.data(), 5, dest);
  OSPREY_CHECK(t.dtype() == DType::f32, "pipeline: stages exchange f32 activations, not ",
               dtype_name(t.dtype()));
  comm_.send(t.ptr<float>(), t.numel(), dest);
}

Tensor PipelineSchedule::recv_tensor(int source) {
  std::vector<int64_t> header(5);
  comm_.recv(header.data(), 5, source);
  OSPREY_CHECK(header[0] >= 1 && header[0] <= 4, "pipeline: bad tensor header from rank ", source);
  Tensor t = Tensor::empty(Shape(header.begin() + 1, header.begin() + 1 + header[0]), DType::f32,
                           model_.device());
  comm_.recv(t.ptr<float>(), t.numel(), source);
  return t;
}

double PipelineSchedule::train_step(const Tensor& x, const Tensor& labels, int micro_batches,
                                    float label_smoothing, int64_t* correct) {
  if (correct) *correct = 0;
  const int64_t batch = first_stage() ? x.dim(0) : labels.numel();
  OSPREY_CHECK(micro_batches >= 1 && batch % micro_batches == 0, "pipeline: a batch of ", batch,
               " does not split into ", micro_batches, " equal micro-batches");
  const int64_t mb = batch / micro_batches;
  struct InFlight {
    Tensor input, output;
    autograd::Tape tape;
  };
  std::vector<InFlight> flights(static_cast<size_t>(micro_batches));
  double loss_sum = 0.0;
  // Forward of every micro-batch, each graph set aside for its backward (GPipe).
  for (int j = 0; j < micro_batches; ++j) {
    InFlight& f = flights[size_t(j)];
    f.input = first_stage() ? x.rows(j * mb, mb) : recv_tensor(stage() - 1);
    if (!first_stage()) f.input.set_requires_grad();
    Tensor out = run_segments(f.input);
    if (last_stage()) {
      const Tensor micro_labels = labels.rows(j * mb, mb);
      Tensor loss = ops::softmax_cross_entropy(out, micro_labels, label_smoothing);
      loss_sum += double(loss.to_vector()[0]);
      if (correct) *correct += ops::count_top1(out, micro_labels);
      f.output = loss;
    } else {
      send_tensor(out, stage() + 1);
      f.output = out;
    }
    f.tape = autograd::take_tape();
  }
  // Backward in reverse order; the loss of each micro-batch counts 1/M of the batch's mean.
  for (int j = micro_batches - 1; j >= 0; --j) {
    InFlight& f = flights[size_t(j)];
    autograd::restore_tape(std::move(f.tape));
    Tensor grad =
        last_stage() ? Tensor::full({1}, 1.0f / float(micro_batches)) : recv_tensor(stage() + 1);
    autograd::backward(f.output, grad);
    if (!first_stage()) send_tensor(f.input.grad(), stage() - 1);
  }
  return last_stage() ? loss_sum / micro_batches : 0.0;
}

}  // namespace osprey::dist
