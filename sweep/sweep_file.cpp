#include "sweep/sweep_file.hpp"

#include <cmath>
#include <cstdio>

#include "scenarios/error.hpp"

namespace moesim::sweep {

namespace {

constexpr int64_t kMaxPoints = int64_t{1} << 32;  // far beyond any sweep; keeps products from overflowing

// Whether `pointer` leads into `base`: every step but the last exists, and the last names a key of an
// object (existing or new) or an index of an array within its bounds.
std::string check_pointer(const Json& base, const std::string& pointer) {
  if (pointer.empty() || pointer[0] != '/') return "a JSON pointer starting with '/'";
  Json::json_pointer ptr;
  try {
    ptr = Json::json_pointer(pointer);
  } catch (const std::exception&) {
    return "a well-formed JSON pointer (~0 and ~1 are the only escapes)";
  }
  const Json::json_pointer parent = ptr.parent_pointer();
  if (!base.contains(parent))
    return "a pointer whose parent " + parent.to_string() + " is in the base scenario";
  const Json& p = base.at(parent);
  if (p.is_object()) return "";
  if (p.is_array()) {
    const std::string last = ptr.back();
    char* end = nullptr;
    const long long i = std::strtoll(last.c_str(), &end, 10);
    if (end && *end == 0 && i >= 0 && static_cast<std::size_t>(i) < p.size()) return "";
    return "an index within the array at " + parent.to_string() + " (size " + std::to_string(p.size()) + ")";
  }
  return "a pointer into an object or array of the base scenario (" + parent.to_string() + " is " +
         describe_json(p) + ")";
}

Json range_values(ObjectReader& r) {
  const double from = r.get_number("from"), to = r.get_number("to");
  const double step = r.get_number("step", 1);
  if (!(step > 0)) r.fail("step", "a positive step", std::to_string(step));
  if (to < from) r.fail("to", "a value at least \"from\" (" + std::to_string(from) + ")", std::to_string(to));
  const double n = std::floor((to - from) / step + 1e-9) + 1;
  if (n > 1e6) r.fail("step", "a step giving at most 10^6 values", std::to_string(n) + " values");
  const bool integers = from == std::floor(from) && step == std::floor(step);
  Json out = Json::array();
  for (int64_t i = 0; i < static_cast<int64_t>(n); ++i) {
    const double v = from + static_cast<double>(i) * step;
    if (integers)
      out.push_back(static_cast<int64_t>(v));
    else
      out.push_back(v);
  }
  return out;
}

}  // namespace

std::string stable_hash(const std::string& text) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a 64 offset basis
  for (const unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

SweepSpec sweep_from_json(const Json& j, const std::string& source) {
  SweepSpec s;
  s.source = source;
  ObjectReader r(j, source, "");
  r.get_int_in("schema_version", 1, 1, 1);
  s.name = r.get_string("name");
  r.optional_child("_comment");
  s.base_path = read_scenario_path(r, "scenario");
  s.base = read_json_file(s.base_path);
  if (!s.base.is_object())
    throw ConfigError(located_message(s.base_path, "", "a scenario object", describe_json(s.base)));
  s.base.erase("variants");  // a sweep's points are its axes

  const std::string how = r.get_enum("combine", {"product", "zip"}, "product");
  s.combine = how == "zip" ? Combine::kZip : Combine::kProduct;
  const Json& axes = r.child("axes");
  if (!axes.is_array() || axes.empty()) r.fail("axes", "a non-empty array of axes", describe_json(axes));
  for (std::size_t i = 0; i < axes.size(); ++i) {
    const std::string at = "/axes/" + std::to_string(i);
    ObjectReader a(axes[i], source, at);
    Axis axis;
    axis.pointer = a.get_string("pointer");
    if (const std::string want = check_pointer(s.base, axis.pointer); !want.empty())
      a.fail("pointer", want + " (base scenario " + s.base_path + ")", "\"" + axis.pointer + "\"");
    for (const Axis& other : s.axes)
      if (other.pointer == axis.pointer)
        a.fail("pointer", "a pointer no other axis sets", "\"" + axis.pointer + "\"");
    const Json* values = a.optional_child("values");
    const Json* range = a.optional_child("range");
    if ((values != nullptr) == (range != nullptr))
      a.fail(values ? "range" : "values", "exactly one of \"values\" (a list) and \"range\"",
             values ? "both" : "neither");
    if (values) {
      if (!values->is_array() || values->empty())
        a.fail("values", "a non-empty array of values", describe_json(*values));
      axis.values = *values;
    } else {
      ObjectReader rr(*range, source, at + "/range");
      axis.values = range_values(rr);
      rr.finish();
    }
    a.finish();
    s.axes.push_back(std::move(axis));
  }
  if (s.combine == Combine::kZip)
    for (std::size_t i = 1; i < s.axes.size(); ++i)
      if (s.axes[i].values.size() != s.axes[0].values.size())
        throw ConfigError(located_message(source, "/axes/" + std::to_string(i),
                                          "as many values as axis 0 (" +
                                              std::to_string(s.axes[0].values.size()) +
                                              ", \"combine\": \"zip\")",
                                          std::to_string(s.axes[i].values.size()) + " values"));
  if (point_count(s) > kMaxPoints)
    r.fail("axes", "at most 2^32 points", "more (the product of the axes' lengths)");
  r.finish();
  return s;
}

SweepSpec read_sweep(const std::string& path) {
  return sweep_from_json(read_json_file(path), path);
}

int64_t point_count(const SweepSpec& s) {
  if (s.axes.empty()) return 0;
  if (s.combine == Combine::kZip) return static_cast<int64_t>(s.axes[0].values.size());
  int64_t n = 1;
  for (const Axis& a : s.axes) {
    n *= static_cast<int64_t>(a.values.size());
    if (n > kMaxPoints) return kMaxPoints + 1;
  }
  return n;
}

Point make_point(const SweepSpec& s, int64_t index) {
  Point p;
  p.index = index;
  p.scenario = s.base;
  p.values = Json::object();
  int64_t rest = index;
  for (std::size_t i = s.axes.size(); i-- > 0;) {
    const Axis& a = s.axes[i];
    const auto n = static_cast<int64_t>(a.values.size());
    const int64_t at = s.combine == Combine::kZip ? index : rest % n;
    if (s.combine == Combine::kProduct) rest /= n;
    const Json& v = a.values[static_cast<std::size_t>(at)];
    p.values[a.pointer] = v;
    p.scenario[Json::json_pointer(a.pointer)] = v;
  }
  const std::string name = p.scenario.value("name", std::string("point"));
  p.id = stable_hash(p.scenario.dump());
  p.scenario["name"] = name + "@" + p.id;
  return p;
}

Shard shard_from(const std::string& flag, const std::function<const char*(const char*)>& getenv) {
  const auto parse_int = [](const char* text, const std::string& what, int lo) {
    char* end = nullptr;
    const long v = std::strtol(text, &end, 10);
    if (!text[0] || *end != 0 || v < lo || v > (1 << 30))
      throw ConfigError(located_message(what, "", "an integer of at least " + std::to_string(lo),
                                        std::string("\"") + text + "\""));
    return static_cast<int>(v);
  };
  Shard s;
  if (!flag.empty()) {
    const auto slash = flag.find('/');
    if (slash == std::string::npos)
      throw ConfigError(located_message("--shard", "", "K/N (this machine's shard K of N, 0 <= K < N)",
                                        "\"" + flag + "\""));
    s.k = parse_int(flag.substr(0, slash).c_str(), "--shard", 0);
    s.n = parse_int(flag.substr(slash + 1).c_str(), "--shard", 1);
    s.from = "--shard";
  } else if (const char* id = getenv("SLURM_ARRAY_TASK_ID")) {
    const int task = parse_int(id, "SLURM_ARRAY_TASK_ID", 0);
    if (const char* count = getenv("SLURM_ARRAY_TASK_COUNT"); count && !getenv("SLURM_ARRAY_TASK_MIN")) {
      s.k = task;
      s.n = parse_int(count, "SLURM_ARRAY_TASK_COUNT", 1);
    } else {
      const char* lo = getenv("SLURM_ARRAY_TASK_MIN");
      const char* hi = getenv("SLURM_ARRAY_TASK_MAX");
      if (!lo || !hi)
        throw ConfigError(located_message("SLURM_ARRAY_TASK_ID", "",
                                          "SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MIN and _MAX beside it",
                                          "neither"));
      const int min = parse_int(lo, "SLURM_ARRAY_TASK_MIN", 0),
                max = parse_int(hi, "SLURM_ARRAY_TASK_MAX", 0);
      s.k = task - min;
      s.n = max - min + 1;
    }
    s.from = "SLURM_ARRAY_TASK_ID";
  } else if (const char* rank = getenv("OMPI_COMM_WORLD_RANK")) {
    s.k = parse_int(rank, "OMPI_COMM_WORLD_RANK", 0);
    const char* size = getenv("OMPI_COMM_WORLD_SIZE");
    s.n = parse_int(size ? size : "", "OMPI_COMM_WORLD_SIZE", 1);
    s.from = "OMPI_COMM_WORLD_RANK";
  } else if (const char* prank = getenv("PMI_RANK")) {
    s.k = parse_int(prank, "PMI_RANK", 0);
    const char* size = getenv("PMI_SIZE");
    s.n = parse_int(size ? size : "", "PMI_SIZE", 1);
    s.from = "PMI_RANK";
  }
  if (s.k >= s.n)
    throw ConfigError(located_message(s.from, "", "a shard below the shard count " + std::to_string(s.n),
                                      std::to_string(s.k)));
  return s;
}

}  // namespace moesim::sweep
