// A restricted reader of the pickle (protocol 2) that torch.save writes as data.pkl: it knows
// the opcodes a state_dict (and a checkpoint dict around it) uses and a handful of globals
// (collections.OrderedDict, torch._utils._rebuild_tensor_v2, the typed torch storages). Any
// other opcode or global is refused before anything of it is built, and nothing is ever called:
// REDUCE of an allowed global builds our own value. A pickle is code for a small stack machine,
// so this is what lets a .pth from anywhere be read safely (docs/pth.md).
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

namespace osprey {

struct PickleValue {
  enum class Kind {
    none,
    boolean,
    integer,
    real,
    string,
    tuple,
    list,
    dict,
    global,
    storage,
    tensor
  };
  Kind kind = Kind::none;
  int64_t i = 0;  // boolean, integer; storage: its element count
  double f = 0;
  std::string s;  // string; global: "module.name"; storage: its key (the data/ entry name)
  std::vector<const PickleValue*> items;                                   // tuple, list
  std::vector<std::pair<const PickleValue*, const PickleValue*>> entries;  // dict, in order
  // storage: the safetensors dtype ("F32", ...). tensor: its storage, offset, sizes and strides
  // in elements.
  std::string dtype;
  const PickleValue* storage = nullptr;
  int64_t offset = 0;
  std::vector<int64_t> sizes, strides;
};

class TorchPickle {
 public:
  // Runs the pickle in `bytes`; `what` names the file in errors ("'x.pth'").
  TorchPickle(const std::string& what, const std::string& bytes);
  TorchPickle(const TorchPickle&) = delete;
  TorchPickle& operator=(const TorchPickle&) = delete;

  const PickleValue& root() const { return *root_; }

 private:
  friend class PickleMachine;
  PickleValue* make(PickleValue::Kind kind);

  // A deque so that values keep their address as more are made; they point at each other
  // freely (the memo lets a pickle share values or make cycles), and all go with the object.
  std::deque<PickleValue> values_;
  const PickleValue* root_ = nullptr;
};

// "a dict", "a tensor", ...: for error messages.
const char* pickle_kind_name(PickleValue::Kind kind);

}  // namespace osprey
