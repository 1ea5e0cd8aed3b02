#include "tests/onnx_conformance/conformance_case.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>

#include "interop/onnx_tensor.h"
#include "tests/onnx_conformance/onnx_ops.h"

namespace osprey::conformance {

namespace fs = std::filesystem;

const std::vector<std::string>& case_kinds() {
  static const std::vector<std::string> kinds = {"node", "pytorch-converted", "pytorch-operator",
                                                 "simple"};
  return kinds;
}

namespace {

std::string ops_of(const onnx::GraphProto& graph) {
  std::string s;
  for (const onnx::NodeProto& n : graph.node()) s += (s.empty() ? "" : ", ") + n.op_type();
  return s;
}

bool only_mapped_ops(const onnx::GraphProto& graph) {
  return std::all_of(graph.node().begin(), graph.node().end(),
                     [](const onnx::NodeProto& n) { return is_mapped_op(n.op_type()); });
}

struct DataSet {
  std::string name;
  std::vector<onnx::TensorProto> inputs, outputs;
};

std::vector<onnx::TensorProto> read_numbered(const fs::path& dir, const std::string& prefix) {
  std::vector<onnx::TensorProto> v;
  for (int i = 0;; ++i) {
    const fs::path p = dir / (prefix + std::to_string(i) + ".pb");
    if (!fs::exists(p)) return v;
    v.push_back(interop::read_onnx_tensor(p.string()));
  }
}

std::vector<DataSet> read_data_sets(const fs::path& dir) {
  std::vector<DataSet> sets;
  for (const fs::directory_entry& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0)
      sets.push_back({e.path().filename().string(), read_numbered(e.path(), "input_"),
                      read_numbered(e.path(), "output_")});
  std::sort(sets.begin(), sets.end(),
            [](const DataSet& a, const DataSet& b) { return a.name < b.name; });
  OSPREY_CHECK(!sets.empty(), "no test_data_set_* folder in '", dir.string(), "'");
  return sets;
}

// Osprey's ops compute in f32 (labels i64, flags bool): other element types are refused
// before they are converted.
void check_element_type(const onnx::TensorProto& t, const std::string& what) {
  const int type = t.data_type();
  if (type != onnx::TensorProto::FLOAT && type != onnx::TensorProto::INT64 &&
      type != onnx::TensorProto::BOOL)
    throw NotApplicable("element type " + onnx::TensorProto::DataType_Name(t.data_type()) + " of " +
                        what + ": Osprey's ops compute in f32");
}

std::string format_error(double v) {
  std::ostringstream s;
  s.precision(3);
  s << v;
  return s.str();
}

// "" when actual matches expected within ONNX's tolerances, else what differs.
std::string mismatch(const Tensor& actual, const Tensor& expected) {
  if (actual.dtype() != expected.dtype())
    return std::string("dtype ") + dtype_name(actual.dtype()) + " instead of " +
           dtype_name(expected.dtype());
  if (actual.shape() != expected.shape())
    return "shape " + shape_str(actual.shape()) + " instead of " + shape_str(expected.shape());
  if (expected.dtype() != DType::f32)
    return std::memcmp(actual.raw(), expected.raw(), expected.nbytes()) == 0 ? "" : "values differ";
  double max_abs = 0, max_rel = 0;
  bool bad = false;
  const float* a = actual.data<float>();
  const float* e = expected.data<float>();
  for (int64_t i = 0; i < expected.numel(); ++i) {
    if ((std::isnan(a[i]) && std::isnan(e[i])) || a[i] == e[i]) continue;
    const double diff = std::fabs(double(a[i]) - double(e[i]));
    if (!(diff <= kAtol + kRtol * std::fabs(double(e[i])))) bad = true;  // NaN fails too
    max_abs = std::max(max_abs, diff);
    if (e[i] != 0) max_rel = std::max(max_rel, diff / std::fabs(double(e[i])));
  }
  if (!bad) return "";
  return "max abs err " + format_error(max_abs) + ", max rel err " + format_error(max_rel) +
         " (rtol " + format_error(kRtol) + ", atol " + format_error(kAtol) + ")";
}

int64_t default_opset(const onnx::ModelProto& model) {
  for (const onnx::OperatorSetIdProto& o : model.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") return o.version();
  return 0;
}

struct Outputs {
  std::map<std::string, Tensor> values;
  std::map<std::string, std::string> unchecked;  // value name -> why it is not compared
};

Outputs run_graph(const onnx::ModelProto& model, const DataSet& set, Device device) {
  const onnx::GraphProto& graph = model.graph();
  Outputs out;
  for (const onnx::TensorProto& init : graph.initializer()) {
    check_element_type(init, "initializer '" + init.name() + "'");
    out.values[init.name()] = interop::tensor_from_proto(init, init.name());
  }
  // The data set's inputs are the graph's inputs that no initializer provides, in order.
  size_t next = 0;
  for (const onnx::ValueInfoProto& in : graph.input()) {
    if (out.values.count(in.name())) continue;
    OSPREY_CHECK(next < set.inputs.size(), set.name, " has no input_", next, ".pb for '", in.name(),
                 "'");
    check_element_type(set.inputs[next], "input '" + in.name() + "'");
    out.values[in.name()] = interop::tensor_from_proto(set.inputs[next++], in.name());
  }
  for (const onnx::NodeProto& node : graph.node()) {
    NodeRun run{node, default_opset(model), device, {}, {}, {}};
    for (const std::string& name : node.input())
      run.inputs.push_back(name.empty() ? Tensor() : out.values.at(name));
    run_node(run);
    for (size_t i = 0; i < run.outputs.size() && int(i) < node.output_size(); ++i) {
      if (node.output(int(i)).empty()) continue;
      out.values[node.output(int(i))] = run.outputs[i];
      if (!run.unchecked[i].empty()) out.unchecked[node.output(int(i))] = run.unchecked[i];
    }
  }
  return out;
}

// The first mismatch of the data set ("" when every compared output matches); the reasons of
// outputs not compared go to `unchecked`.
std::string check_data_set(const onnx::ModelProto& model, const DataSet& set, Device device,
                           std::string& unchecked) {
  const onnx::GraphProto& graph = model.graph();
  OSPREY_CHECK(int(set.outputs.size()) == graph.output_size(), set.name, " holds ",
               set.outputs.size(), " outputs for the graph's ", graph.output_size());
  // After the run, which refuses odd input types first: they explain odd outputs.
  const Outputs out = run_graph(model, set, device);
  for (int i = 0; i < graph.output_size(); ++i)
    check_element_type(set.outputs[size_t(i)], "output '" + graph.output(i).name() + "'");
  for (int i = 0; i < graph.output_size(); ++i) {
    const std::string& name = graph.output(i).name();
    OSPREY_CHECK(out.values.count(name), "no node computes the graph output '", name, "'");
    if (out.unchecked.count(name)) {
      unchecked = name + ": " + out.unchecked.at(name);
      continue;
    }
    const Tensor expected = interop::tensor_from_proto(set.outputs[size_t(i)], name);
    const std::string diff = mismatch(out.values.at(name), expected);
    if (!diff.empty()) return "output '" + name + "', " + set.name + ": " + diff;
  }
  return "";
}

}  // namespace

Discovery discover(const std::string& root) {
  Discovery d;
  for (const std::string& kind : case_kinds()) {
    const fs::path dir = fs::path(root) / kind;
    if (!fs::is_directory(dir)) continue;
    std::vector<std::string> names;
    for (const fs::directory_entry& e : fs::directory_iterator(dir))
      if (fs::exists(e.path() / "model.onnx")) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      const std::string id = kind + "/" + name;
      try {
        const onnx::ModelProto model =
            interop::read_onnx_model((dir / name / "model.onnx").string());
        if (only_mapped_ops(model.graph()))
          d.selected.push_back(id);
        else
          ++d.other_ops;
      } catch (const std::exception& e) {
        d.unreadable.push_back({id, "", Outcome::fail, std::string("cannot read: ") + e.what()});
      }
    }
  }
  return d;
}

CaseResult run_case(const std::string& root, const std::string& id, Device device) {
  CaseResult r{id, "", Outcome::pass, ""};
  const fs::path dir = fs::path(root) / id;
  onnx::ModelProto model;
  std::vector<DataSet> sets;
  try {
    model = interop::read_onnx_model((dir / "model.onnx").string());
    sets = read_data_sets(dir);
  } catch (const std::exception& e) {
    return {id, "", Outcome::fail, std::string("cannot read: ") + e.what()};
  }
  r.ops = ops_of(model.graph());
  try {
    std::string unchecked;
    for (const DataSet& set : sets) {
      const std::string diff = check_data_set(model, set, device, unchecked);
      if (!diff.empty()) return {id, r.ops, Outcome::fail, diff};
    }
    if (!unchecked.empty())
      return {id, r.ops, Outcome::not_applicable, unchecked + " (the other outputs match)"};
  } catch (const NotApplicable& e) {
    return {id, r.ops, Outcome::not_applicable, e.what()};
  } catch (const std::exception& e) {
    return {id, r.ops, Outcome::fail, std::string("error: ") + e.what()};
  }
  return r;
}

}  // namespace osprey::conformance
