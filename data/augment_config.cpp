// The JSON side of AugmentPipeline: parsing with one clear error per mistake, the canonical
// form, the evaluation counterpart and the ready-made pipelines.
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/augment.h"
#include "engine/parse.h"
#include "kernels/error.h"

namespace osprey::data {
namespace {

using nlohmann::json;
using Kind = AugmentStep::Kind;

// Names the transform being parsed, for every message.
struct Where {
  size_t index;
  std::string type;
  std::string operator()(const std::string& key) const {
    return "augmentation transforms[" + std::to_string(index) + "] (" + type + "): key '" + key +
           "' ";
  }
};

std::string show(const json& v) {
  std::string s = v.dump();
  return printable(s.size() > 60 ? s.substr(0, 57) + "..." : s);
}

// dump() and copies recurse, so transforms nested past kMaxJsonDepth could overflow the stack.
// Text read from files is depth-checked before parsing; this walk (iterative) also covers
// values built elsewhere.
void check_depth(const json& root) {
  std::vector<std::pair<const json*, int>> stack{{&root, 1}};
  while (!stack.empty()) {
    auto [v, depth] = stack.back();
    stack.pop_back();
    OSPREY_CHECK(depth <= kMaxJsonDepth, "augmentation: JSON nested deeper than ", kMaxJsonDepth,
                 " levels");
    if (v->is_structured())
      for (const json& e : *v) stack.emplace_back(&e, depth + 1);
  }
}

double number(const Where& at, const json& obj, const char* key, double def, double lo, double hi) {
  if (!obj.contains(key)) return def;
  const json& v = obj.at(key);
  OSPREY_CHECK(v.is_number(), at(key), "must be a number, got ", show(v));
  const double x = v.get<double>();
  OSPREY_CHECK(std::isfinite(x) && x >= lo && x <= hi, at(key), "must be in [", lo, ", ", hi,
               "], got ", show(v));
  return x;
}

int integer(const Where& at, const json& obj, const char* key, int def, int lo, int hi) {
  if (!obj.contains(key)) return def;
  const json& v = obj.at(key);
  OSPREY_CHECK(v.is_number_integer(), at(key), "must be an integer, got ", show(v));
  const int64_t x = v.get<int64_t>();
  OSPREY_CHECK(x >= lo && x <= hi, at(key), "must be in [", lo, ", ", hi, "], got ", show(v));
  return int(x);
}

// "size": one integer or [h, w]; required.
void size(const Where& at, const json& obj, AugmentStep& st, bool* single = nullptr) {
  OSPREY_CHECK(obj.contains("size"), at("size"), "is required");
  const json& v = obj.at("size");
  constexpr int kMax = 1 << 15;
  if (v.is_number_integer()) {
    st.size_h = st.size_w = integer(at, obj, "size", 0, 1, kMax);
    if (single) *single = true;
    return;
  }
  OSPREY_CHECK(
      v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[1].is_number_integer(),
      at("size"), "must be an integer or [height, width] integers, got ", show(v));
  const int64_t h = v[0].get<int64_t>(), w = v[1].get<int64_t>();
  OSPREY_CHECK(h >= 1 && h <= kMax && w >= 1 && w <= kMax, at("size"), "must be in [1, ", kMax,
               "], got ", show(v));
  st.size_h = int(h);
  st.size_w = int(w);
}

// A [min, max] pair with lo <= min <= max <= hi.
void pair(const Where& at, const json& v, const char* key, double out[2], double lo, double hi) {
  OSPREY_CHECK(v.is_array() && v.size() == 2 && v[0].is_number() && v[1].is_number(), at(key),
               "must be a number or a [min, max] pair of numbers, got ", show(v));
  out[0] = v[0].get<double>();
  out[1] = v[1].get<double>();
  OSPREY_CHECK(std::isfinite(out[0]) && std::isfinite(out[1]) && lo <= out[0] && out[0] <= out[1] &&
                   out[1] <= hi,
               at(key), "must satisfy ", lo, " <= min <= max <= ", hi, ", got ", show(v));
}

// ColorJitter's _check_input: a number v gives [center - v, center + v] (brightness, contrast,
// saturation also clamp the low end to 0); returns false when only the identity can result.
bool jitter(const Where& at, const json& obj, const char* key, double out[2], bool is_hue) {
  if (!obj.contains(key)) return false;
  const json& v = obj.at(key);
  const double center = is_hue ? 0.0 : 1.0;
  const double lo = is_hue ? -0.5 : 0.0, hi = is_hue ? 0.5 : 1e6;
  if (v.is_number()) {
    const double x = number(at, obj, key, 0.0, 0.0, is_hue ? 0.5 : hi);
    out[0] = is_hue ? -x : std::max(0.0, 1.0 - x);
    out[1] = center + x;
  } else {
    pair(at, v, key, out, lo, hi);
  }
  return !(out[0] == center && out[1] == center);
}

std::vector<float> floats(const Where& at, const json& obj, const char* key, bool nonzero) {
  OSPREY_CHECK(obj.contains(key), at(key), "is required");
  const json& v = obj.at(key);
  std::vector<float> out;
  if (v.is_number()) out.push_back(v.get<float>());
  if (v.is_array() && !v.empty())
    for (const json& e : v) {
      OSPREY_CHECK(e.is_number(), at(key), "must hold numbers, got ", show(v));
      out.push_back(e.get<float>());
    }
  OSPREY_CHECK(!out.empty(), at(key), "must be a number or a non-empty array, got ", show(v));
  for (float x : out)
    OSPREY_CHECK(std::isfinite(x) && (!nonzero || x != 0.0f), at(key),
                 nonzero ? "values must be finite and non-zero" : "values must be finite", ", got ",
                 show(v));
  return out;
}

AugmentStep parse_step(const json& obj, size_t index) {
  const std::string prefix = "augmentation transforms[" + std::to_string(index) + "]";
  OSPREY_CHECK(obj.is_object(), prefix, ": must be an object with a \"type\", got ", show(obj));
  OSPREY_CHECK(obj.contains("type") && obj.at("type").is_string(), prefix,
               ": needs a string \"type\", got ", show(obj));
  const std::string type = obj.at("type").get<std::string>();
  const Where at{index, type};
  AugmentStep st;
  std::vector<const char*> keys;
  if (type == "resize") {
    st.kind = Kind::kResize;
    keys = {"size"};
    size(at, obj, st, &st.shorter_side);
  } else if (type == "center_crop") {
    st.kind = Kind::kCenterCrop;
    keys = {"size", "fill"};
    size(at, obj, st);
    st.fill = float(number(at, obj, "fill", 0.0, -1e6, 1e6));
  } else if (type == "random_resized_crop") {
    st.kind = Kind::kRandomResizedCrop;
    keys = {"size", "scale", "ratio"};
    size(at, obj, st);
    if (obj.contains("scale")) pair(at, obj.at("scale"), "scale", st.scale, 1e-9, 1.0);
    if (obj.contains("ratio")) pair(at, obj.at("ratio"), "ratio", st.ratio, 1e-9, 1e9);
  } else if (type == "hflip") {
    st.kind = Kind::kHFlip;
    keys = {"p"};
    st.p = number(at, obj, "p", 0.5, 0.0, 1.0);
  } else if (type == "color_jitter") {
    st.kind = Kind::kColorJitter;
    keys = {"brightness", "contrast", "saturation", "hue"};
    st.has_brightness = jitter(at, obj, "brightness", st.brightness, false);
    st.has_contrast = jitter(at, obj, "contrast", st.contrast, false);
    st.has_saturation = jitter(at, obj, "saturation", st.saturation, false);
    st.has_hue = jitter(at, obj, "hue", st.hue, true);
  } else if (type == "rotation") {
    st.kind = Kind::kRotation;
    keys = {"degrees", "fill", "interpolation"};
    OSPREY_CHECK(obj.contains("degrees"), at("degrees"), "is required");
    if (obj.at("degrees").is_number()) {
      const double d = number(at, obj, "degrees", 0.0, 0.0, 360.0);
      st.degrees[0] = -d;
      st.degrees[1] = d;
    } else {
      pair(at, obj.at("degrees"), "degrees", st.degrees, -360.0, 360.0);
    }
    st.fill = float(number(at, obj, "fill", 0.0, -1e6, 1e6));
    if (obj.contains("interpolation")) {
      const json& v = obj.at("interpolation");
      OSPREY_CHECK(v == "bilinear" || v == "nearest", at("interpolation"),
                   "must be \"bilinear\" or \"nearest\", got ", show(v));
      st.bilinear = v == "bilinear";
    }
  } else if (type == "pad_crop") {
    st.kind = Kind::kPadCrop;
    keys = {"pad", "size", "fill"};
    st.pad = integer(at, obj, "pad", 0, 0, 1 << 15);
    size(at, obj, st);
    st.fill = float(number(at, obj, "fill", 0.0, -1e6, 1e6));
  } else if (type == "normalize") {
    st.kind = Kind::kNormalize;
    keys = {"mean", "std"};
    st.mean = floats(at, obj, "mean", false);
    st.std = floats(at, obj, "std", true);
    OSPREY_CHECK(st.mean.size() == st.std.size(), prefix, " (normalize): has ", st.mean.size(),
                 " mean value(s) but ", st.std.size(), " std value(s)");
  } else {
    fail(prefix, ": unknown type '", printable(type),
         "' (valid: resize, center_crop, random_resized_crop, hflip, color_jitter, rotation, "
         "pad_crop, normalize)");
  }
  for (const auto& item : obj.items()) {
    if (item.key() == "type") continue;
    bool known = false;
    std::string valid;
    for (const char* k : keys) {
      known = known || item.key() == k;
      valid += std::string(valid.empty() ? "" : ", ") + k;
    }
    OSPREY_CHECK(known, prefix, " (", printable(type), "): unknown key '", printable(item.key()),
                 "' (valid: ", valid, ")");
  }
  return st;
}

json size_json(const AugmentStep& st) {
  if (st.shorter_side) return st.size_h;
  return json::array({st.size_h, st.size_w});
}

json step_json(const AugmentStep& st) {
  switch (st.kind) {
    case Kind::kResize:
      return {{"type", "resize"}, {"size", size_json(st)}};
    case Kind::kCenterCrop:
      return {{"type", "center_crop"}, {"size", size_json(st)}, {"fill", st.fill}};
    case Kind::kRandomResizedCrop:
      return {{"type", "random_resized_crop"},
              {"size", size_json(st)},
              {"scale", {st.scale[0], st.scale[1]}},
              {"ratio", {st.ratio[0], st.ratio[1]}}};
    case Kind::kHFlip:
      return {{"type", "hflip"}, {"p", st.p}};
    case Kind::kColorJitter: {
      json j = {{"type", "color_jitter"}};
      if (st.has_brightness) j["brightness"] = {st.brightness[0], st.brightness[1]};
      if (st.has_contrast) j["contrast"] = {st.contrast[0], st.contrast[1]};
      if (st.has_saturation) j["saturation"] = {st.saturation[0], st.saturation[1]};
      if (st.has_hue) j["hue"] = {st.hue[0], st.hue[1]};
      return j;
    }
    case Kind::kRotation:
      return {{"type", "rotation"},
              {"degrees", {st.degrees[0], st.degrees[1]}},
              {"fill", st.fill},
              {"interpolation", st.bilinear ? "bilinear" : "nearest"}};
    case Kind::kPadCrop:
      return {{"type", "pad_crop"}, {"pad", st.pad}, {"size", size_json(st)}, {"fill", st.fill}};
    case Kind::kNormalize:
      return {{"type", "normalize"}, {"mean", st.mean}, {"std", st.std}};
  }
  return {};
}

}  // namespace

AugmentPipeline AugmentPipeline::from_json(const json& list) {
  check_depth(list);
  OSPREY_CHECK(list.is_array(), "augmentation: expected a JSON array of transforms, got ",
               show(list));
  AugmentPipeline p;
  for (size_t i = 0; i < list.size(); ++i) p.steps_.push_back(parse_step(list[i], i));
  for (size_t i = 0; i + 1 < p.steps_.size(); ++i)
    OSPREY_CHECK(p.steps_[i].kind != Kind::kNormalize, "augmentation transforms[", i,
                 "] (normalize): normalize must be the last transform (transforms[", i + 1,
                 "] follows it): the colour transforms expect values in [0, 1]");
  return p;
}

AugmentPipeline AugmentPipeline::from_json_file(const std::string& path) {
  const std::string file = "augmentation file '" + printable(path) + "'";
  std::ifstream in(path);
  OSPREY_CHECK(in, file, ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  check_json_depth(text.str(), file);
  json j;
  try {
    j = json::parse(text.str());
  } catch (const json::parse_error& e) {
    fail(file, ": invalid JSON at byte ", e.byte, ": ", e.what());
  }
  try {
    return from_json(j);
  } catch (const Error& e) {
    fail(file, ": ", e.what());
  }
}

json AugmentPipeline::to_json() const {
  json list = json::array();
  for (const AugmentStep& st : steps_) list.push_back(step_json(st));
  return list;
}

AugmentPipeline AugmentPipeline::eval_pipeline() const {
  AugmentPipeline p;
  for (const AugmentStep& st : steps_) {
    AugmentStep e = st;
    switch (st.kind) {
      case Kind::kRandomResizedCrop:
        e.kind = Kind::kResize;
        break;
      case Kind::kPadCrop:
        e.kind = Kind::kCenterCrop;
        break;
      case Kind::kHFlip:
      case Kind::kColorJitter:
      case Kind::kRotation:
        continue;
      default:
        break;
    }
    // Two fixed-size resizes in a row (resize then random_resized_crop's resize) become the
    // last one: one interpolation of the original instead of two.
    if (e.kind == Kind::kResize && !e.shorter_side && !p.steps_.empty() &&
        p.steps_.back().kind == Kind::kResize && !p.steps_.back().shorter_side)
      p.steps_.pop_back();
    p.steps_.push_back(e);
  }
  return p;
}

AugmentPipeline AugmentPipeline::with_normalize(const std::vector<float>& mean,
                                                const std::vector<float>& std) const {
  OSPREY_CHECK(!has_normalize(),
               "augmentation: the pipeline already ends with normalize; give mean/std once");
  if (mean.empty() && std.empty()) return *this;  // Normalize's "pixel / 255 only"
  json list = to_json();
  list.push_back({{"type", "normalize"}, {"mean", mean}, {"std", std}});
  return from_json(list);
}

json seed_pipeline_json() {
  return json::parse(R"([
    {"type": "resize", "size": [224, 224]},
    {"type": "random_resized_crop", "size": [224, 224], "scale": [0.7, 1.0],
     "ratio": [0.75, 1.3333333333333333]},
    {"type": "hflip", "p": 0.5},
    {"type": "color_jitter", "brightness": 0.3, "contrast": 0.3, "saturation": 0.3, "hue": 0.1},
    {"type": "rotation", "degrees": 15, "fill": 0.0},
    {"type": "normalize", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}])");
}

json seed_eval_pipeline_json() {
  return json::parse(R"([
    {"type": "resize", "size": [224, 224]},
    {"type": "normalize", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}])");
}

// CIFAR-10's per-channel training-set mean and standard deviation.
json cifar_pipeline_json() {
  return json::parse(R"([
    {"type": "pad_crop", "pad": 4, "size": [32, 32], "fill": 0.0},
    {"type": "hflip", "p": 0.5},
    {"type": "normalize", "mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616]}])");
}

json cifar_eval_pipeline_json() {
  return json::parse(R"([
    {"type": "normalize", "mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616]}])");
}

}  // namespace osprey::data
