// How a JSON value maps onto a C++ member of each type a config key has (bool, integers,
// float, double, string, a list of floats, raw JSON): the type's names in messages and in the
// key reference, whether a value has that type and fits it, and the member's value as JSON. Not
// part of the library's interface.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/parse.h"

namespace osprey::tools::json_member {

using json = nlohmann::json;

template <typename T>
const char* type_name() {
  if constexpr (std::is_same_v<T, bool>)
    return "a boolean";
  else if constexpr (std::is_integral_v<T>)
    return "an integer";
  else if constexpr (std::is_floating_point_v<T>)
    return "a number";
  else if constexpr (std::is_same_v<T, std::string>)
    return "a string";
  else if constexpr (std::is_same_v<T, json>)
    return "null, a preset name or a list of transforms";
  else
    return "a list of numbers";
}

template <typename T>
const char* type_label() {
  if constexpr (std::is_same_v<T, bool>)
    return "bool";
  else if constexpr (std::is_integral_v<T>)
    return "int";
  else if constexpr (std::is_floating_point_v<T>)
    return "float";
  else if constexpr (std::is_same_v<T, std::string>)
    return "string";
  else if constexpr (std::is_same_v<T, json>)
    return "json";
  else
    return "[float]";
}

template <typename T>
bool type_ok(const json& v) {
  if constexpr (std::is_same_v<T, bool>)
    return v.is_boolean();
  else if constexpr (std::is_unsigned_v<T>)
    return v.is_number_unsigned();
  else if constexpr (std::is_integral_v<T>)
    return v.is_number_integer();
  else if constexpr (std::is_floating_point_v<T>)
    return v.is_number();
  else if constexpr (std::is_same_v<T, std::string>)
    return v.is_string();
  else if constexpr (std::is_same_v<T, json>)
    return v.is_null() || v.is_string() || v.is_array();
  else {
    if (!v.is_array()) return false;
    for (const auto& e : v)
      if (!e.is_number()) return false;
    return true;
  }
}

template <typename T>
json to_json_value(const T& v) {
  if constexpr (std::is_same_v<T, float>) {
    return shortest_decimal(v);
  } else if constexpr (std::is_same_v<T, std::vector<float>>) {
    json a = json::array();
    for (float x : v) a.push_back(shortest_decimal(x));
    return a;
  } else {
    return json(v);
  }
}

// Whether the JSON integer v lies in [lo, hi] (compared exactly: get<int>() would wrap).
inline bool in_range(const json& v, int64_t lo, int64_t hi) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    return hi >= 0 && u <= uint64_t(hi) && (lo <= 0 || u >= uint64_t(lo));
  }
  const int64_t x = v.get<int64_t>();
  return x >= lo && x <= hi;
}

// Numbers must also fit the member: a float key given 1e300 would become infinity.
template <typename T>
bool fits(const json& v) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::fabs(v.get<double>()) <= double(std::numeric_limits<T>::max());
  } else if constexpr (std::is_same_v<T, std::vector<float>>) {
    for (const auto& e : v)
      if (!fits<float>(e)) return false;
    return true;
  } else {
    return true;
  }
}

}  // namespace osprey::tools::json_member
