#include "engine/torch_pickle.h"

#include <cstring>
#include <map>
#include <unordered_map>

#include "engine/parse.h"

namespace osprey {
namespace {

using Kind = PickleValue::Kind;

// Far above what a state_dict needs (a few levels of MARK, one value per opcode), far below
// what would exhaust memory.
constexpr size_t kMaxMarks = 256;
constexpr size_t kMaxValues = size_t(1) << 20;
constexpr size_t kMaxDims = 64;

// The storages torch.save names for each dtype, spelt as safetensors spells the dtype.
const std::map<std::string, std::string>& storage_dtypes() {
  static const std::map<std::string, std::string> m = {
      {"torch.FloatStorage", "F32"}, {"torch.DoubleStorage", "F64"},
      {"torch.HalfStorage", "F16"},  {"torch.BFloat16Storage", "BF16"},
      {"torch.LongStorage", "I64"},  {"torch.IntStorage", "I32"},
      {"torch.ByteStorage", "U8"}};
  return m;
}

const char* kOrderedDict = "collections.OrderedDict";
const char* kRebuildTensor = "torch._utils._rebuild_tensor_v2";

}  // namespace

const char* pickle_kind_name(Kind kind) {
  switch (kind) {
    case Kind::none:
      return "None";
    case Kind::boolean:
      return "a bool";
    case Kind::integer:
      return "an int";
    case Kind::real:
      return "a float";
    case Kind::string:
      return "a string";
    case Kind::tuple:
      return "a tuple";
    case Kind::list:
      return "a list";
    case Kind::dict:
      return "a dict";
    case Kind::global:
      return "a class";
    case Kind::storage:
      return "a storage";
    case Kind::tensor:
      return "a tensor";
  }
  return "a value";
}

PickleValue* TorchPickle::make(Kind kind) {
  values_.emplace_back();
  values_.back().kind = kind;
  return &values_.back();
}

// The stack machine of one run; every read of the input and every pop is checked.
class PickleMachine {
 public:
  PickleMachine(TorchPickle& out, const std::string& what, const std::string& bytes)
      : out_(out), what_(what), in_(bytes) {}

  const PickleValue* run() {
    while (true) {
      op_at_ = pos_;
      const uint8_t op = byte();
      if (op == '.') break;
      step(op);
    }
    check(stack_.size() == 1 && marks_.empty(), "STOP leaves ", stack_.size(),
          " values on the stack");
    return stack_.back();
  }

 private:
  template <typename... Parts>
  [[noreturn]] void error(const Parts&... parts) const {
    fail(what_, ": pickle data.pkl at byte ", op_at_, ": ", parts...);
  }
  template <typename... Parts>
  void check(bool ok, const Parts&... parts) const {
    if (!ok) error(parts...);
  }

  const char* take(size_t n) {
    check(n <= in_.size() - pos_, "truncated (needs ", n, " more bytes, ", in_.size() - pos_,
          " left)");
    const char* p = in_.data() + pos_;
    pos_ += n;
    return p;
  }
  uint8_t byte() { return uint8_t(*take(1)); }
  uint64_t le(size_t n) {
    const auto* p = reinterpret_cast<const uint8_t*>(take(n));
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t(p[i]) << (8 * i);
    return v;
  }
  std::string line() {
    const size_t end = in_.find('\n', pos_);
    check(end != std::string::npos && end - pos_ <= 256, "truncated or overlong GLOBAL name");
    std::string s = in_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }

  PickleValue* make(Kind kind) {
    check(out_.values_.size() < kMaxValues, "more than ", kMaxValues, " values");
    return out_.make(kind);
  }
  PickleValue* integer(int64_t v) {
    PickleValue* p = make(Kind::integer);
    p->i = v;
    return p;
  }
  void push(PickleValue* v) {
    check(stack_.size() < kMaxValues, "more than ", kMaxValues, " values on the stack");
    stack_.push_back(v);
  }
  PickleValue* pop() {
    check(stack_.size() > floor(), "pop from an empty stack");
    PickleValue* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  PickleValue* top() {
    check(stack_.size() > floor(), "empty stack");
    return stack_.back();
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  // The values above the last MARK, which goes.
  std::vector<PickleValue*> pop_mark() {
    check(!marks_.empty(), "no MARK to pop to");
    std::vector<PickleValue*> vs(stack_.begin() + int64_t(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return vs;
  }

  PickleValue* tuple(std::vector<PickleValue*> vs) {
    PickleValue* t = make(Kind::tuple);
    t->items.assign(vs.begin(), vs.end());
    return t;
  }
  void set_item(PickleValue* dict, PickleValue* key, PickleValue* value) {
    check(dict->kind == Kind::dict, "SETITEM on ", pickle_kind_name(dict->kind));
    if (key->kind == Kind::string)
      for (auto& kv : dict->entries)
        if (kv.first->kind == Kind::string && kv.first->s == key->s) {
          kv.second = value;
          return;
        }
    dict->entries.emplace_back(key, value);
  }
  void append(PickleValue* list, const std::vector<PickleValue*>& vs) {
    check(list->kind == Kind::list, "APPEND to ", pickle_kind_name(list->kind));
    list->items.insert(list->items.end(), vs.begin(), vs.end());
  }
  void memo_put(uint64_t index) { memo_[index] = top(); }
  PickleValue* memo_get(uint64_t index) {
    auto it = memo_.find(index);
    check(it != memo_.end(), "memo entry ", index, " was never stored");
    return it->second;
  }

  void global() {
    const std::string module = line(), name = line();
    const std::string full = module + "." + name;
    if (full != kOrderedDict && full != kRebuildTensor && !storage_dtypes().count(full))
      fail(what_, ": pickle global '", printable(full),
           "' is not allowed (a .pth may only hold tensors)");
    PickleValue* g = make(Kind::global);
    g->s = full;
    push(g);
  }
  void reduce();
  PickleValue* rebuild_tensor(const PickleValue& args);
  void persistent_id();
  std::vector<int64_t> int_tuple(const PickleValue* v, const char* what);
  bool literal(uint8_t op);
  bool container(uint8_t op);
  void step(uint8_t op);

  TorchPickle& out_;
  const std::string& what_;
  const std::string& in_;
  size_t pos_ = 0, op_at_ = 0;
  std::vector<PickleValue*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PickleValue*> memo_;
};

std::vector<int64_t> PickleMachine::int_tuple(const PickleValue* v, const char* what) {
  check(v->kind == Kind::tuple && v->items.size() <= kMaxDims, "tensor ", what,
        " is not a tuple of at most ", kMaxDims, " ints");
  std::vector<int64_t> out;
  for (const PickleValue* d : v->items) {
    check(d->kind == Kind::integer && d->i >= 0, "tensor ", what, " holds ",
          pickle_kind_name(d->kind), " that is not a non-negative int");
    out.push_back(d->i);
  }
  return out;
}

// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[,
// metadata]): only recorded here; pth.cpp checks it against the storage's entry.
PickleValue* PickleMachine::rebuild_tensor(const PickleValue& args) {
  const auto& a = args.items;
  check(a.size() == 6 || a.size() == 7, "_rebuild_tensor_v2 takes 6 or 7 arguments, not ",
        a.size());
  check(a[0]->kind == Kind::storage, "_rebuild_tensor_v2 of ", pickle_kind_name(a[0]->kind));
  check(a[1]->kind == Kind::integer && a[1]->i >= 0, "tensor storage offset is not an int >= 0");
  PickleValue* t = make(Kind::tensor);
  t->storage = a[0];
  t->offset = a[1]->i;
  t->sizes = int_tuple(a[2], "size");
  t->strides = int_tuple(a[3], "stride");
  check(t->sizes.size() == t->strides.size(), "tensor has ", t->sizes.size(), " sizes but ",
        t->strides.size(), " strides");
  return t;
}

void PickleMachine::reduce() {
  PickleValue* args = pop();
  PickleValue* callable = pop();
  check(callable->kind == Kind::global && args->kind == Kind::tuple, "REDUCE of ",
        pickle_kind_name(callable->kind), " with ", pickle_kind_name(args->kind));
  if (callable->s == kOrderedDict) {
    check(args->items.empty(), "OrderedDict() with arguments");
    push(make(Kind::dict));
  } else if (callable->s == kRebuildTensor) {
    push(rebuild_tensor(*args));
  } else {
    error("REDUCE calls '", callable->s, "', which only names a storage type");
  }
}

// torch.save's persistent id of a storage: ('storage', StorageType, key, location, numel).
void PickleMachine::persistent_id() {
  const PickleValue* pid = pop();
  const auto& a = pid->items;
  check(pid->kind == Kind::tuple && a.size() == 5 && a[0]->kind == Kind::string &&
            a[0]->s == "storage",
        "persistent id is not a ('storage', type, key, location, size) tuple");
  check(a[1]->kind == Kind::global && storage_dtypes().count(a[1]->s),
        "persistent id names no storage type");
  check(a[2]->kind == Kind::string && a[3]->kind == Kind::string && a[4]->kind == Kind::integer &&
            a[4]->i >= 0,
        "persistent id has a malformed key, location or size");
  PickleValue* s = make(Kind::storage);
  s->dtype = storage_dtypes().at(a[1]->s);
  s->s = a[2]->s;
  s->i = a[4]->i;
  push(s);
}

// The opcodes that push a literal; false for any other.
bool PickleMachine::literal(uint8_t op) {
  switch (op) {
    case 'X':
    case 'U':
    case 'T': {  // BINUNICODE, SHORT_BINSTRING, BINSTRING
      const uint64_t n = op == 'U' ? byte() : le(4);
      check(op != 'T' || n <= uint64_t(INT32_MAX), "BINSTRING of negative length");
      PickleValue* s = make(Kind::string);
      s->s.assign(take(size_t(n)), size_t(n));
      push(s);
      return true;
    }
    case 'J':
      push(integer(int32_t(uint32_t(le(4)))));
      return true;
    case 'K':
      push(integer(byte()));
      return true;
    case 'M':
      push(integer(int64_t(le(2))));
      return true;
    case 0x8a: {  // LONG1: n bytes, little-endian two's complement
      const size_t n = byte();
      check(n <= 8, "LONG1 of ", n, " bytes does not fit 64 bits");
      uint64_t v = le(n);
      if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t(0) << (8 * n);
      push(integer(int64_t(v)));
      return true;
    }
    case 'G': {  // BINFLOAT: big-endian
      const uint64_t be = __builtin_bswap64(le(8));
      PickleValue* f = make(Kind::real);
      std::memcpy(&f->f, &be, 8);
      push(f);
      return true;
    }
    case 0x88:
    case 0x89: {
      PickleValue* b = make(Kind::boolean);
      b->i = op == 0x88;
      push(b);
      return true;
    }
    case 'N':
      push(make(Kind::none));
      return true;
    default:
      return false;
  }
}

// The opcodes that build containers; false for any other.
bool PickleMachine::container(uint8_t op) {
  switch (op) {
    case '}':
      push(make(Kind::dict));
      return true;
    case ']':
      push(make(Kind::list));
      return true;
    case ')':
      push(make(Kind::tuple));
      return true;
    case '(':
      check(marks_.size() < kMaxMarks, "nested deeper than ", kMaxMarks, " MARKs");
      marks_.push_back(stack_.size());
      return true;
    case 't':
      push(tuple(pop_mark()));
      return true;
    case 0x85:
    case 0x86:
    case 0x87: {
      std::vector<PickleValue*> vs(size_t(op - 0x84));
      for (size_t i = vs.size(); i-- > 0;) vs[i] = pop();
      push(tuple(vs));
      return true;
    }
    case 's': {
      PickleValue* v = pop();
      PickleValue* k = pop();
      set_item(top(), k, v);
      return true;
    }
    case 'u': {
      std::vector<PickleValue*> vs = pop_mark();
      check(vs.size() % 2 == 0, "SETITEMS with an odd number of values");
      PickleValue* dict = top();
      for (size_t i = 0; i < vs.size(); i += 2) set_item(dict, vs[i], vs[i + 1]);
      return true;
    }
    case 'a': {
      PickleValue* v = pop();
      append(top(), {v});
      return true;
    }
    case 'e': {
      std::vector<PickleValue*> vs = pop_mark();
      append(top(), vs);
      return true;
    }
    default:
      return false;
  }
}

void PickleMachine::step(uint8_t op) {
  if (literal(op) || container(op)) return;
  switch (op) {
    case 0x80:
      byte();
      return;  // PROTO: the opcodes say what we accept, not the number
    case 'q':
      memo_put(byte());
      return;
    case 'r':
      memo_put(le(4));
      return;
    case 'h':
      push(memo_get(byte()));
      return;
    case 'j':
      push(memo_get(le(4)));
      return;
    case 'c':
      global();
      return;
    case 'R':
      reduce();
      return;
    case 'b': {  // BUILD: an OrderedDict's __dict__ (state_dict()._metadata), not needed
      PickleValue* state = pop();
      check(top()->kind == Kind::dict && (state->kind == Kind::dict || state->kind == Kind::none),
            "BUILD of ", pickle_kind_name(top()->kind));
      return;
    }
    case 'Q':
      persistent_id();
      return;
    default: {
      char c[8];
      std::snprintf(c, sizeof c, "0x%02x", op);
      fail(what_, ": pickle opcode ", c, " at byte ", op_at_,
           " of data.pkl is not allowed (a .pth may only hold tensors)");
    }
  }
}

TorchPickle::TorchPickle(const std::string& what, const std::string& bytes) {
  root_ = PickleMachine(*this, what, bytes).run();
}

}  // namespace osprey
