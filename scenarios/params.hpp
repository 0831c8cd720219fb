#pragma once
/// \file Every scenario parameter declared once: its key, type and valid range, default and help, as
/// ns-3 declares attributes on their type. The loader reads each section through its table (so the
/// range check and the default come from here), `scenario.resolved.json` is written from the same table
/// (every default filled in), and `moesim list parameters` prints it as the Markdown table that
/// docs/scenario-format.md holds (tests/params_doc_test.cpp fails when the two differ).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "scenarios/error.hpp"
#include "scenarios/json_reader.hpp"
#include "scenarios/registry.hpp"
#include "scenarios/scenario.hpp"
#include "scenarios/units.hpp"

namespace moesim {

/// What `moesim list parameters` and the documentation show of a parameter.
struct ParamInfo {
  std::string pointer;       ///< JSON pointer inside the scenario, e.g. "/parallelism/pp"
  std::string type;          ///< type and valid range, e.g. "integer in [1, 16777216]"
  std::string default_text;  ///< the default, "required", or how it is derived
  std::string help;          ///< one line
};

/// One parameter of a struct S: how to read it from an object and how to write its value back.
template <class S>
struct Param {
  ParamInfo info;  ///< pointer relative to the section
  std::function<void(ObjectReader&, S&)> read;
  std::function<Json(const S&)> value;
};

/// The declared parameters of one scenario section (an object of type S at `pointer`).
template <class S>
struct ParamTable {
  std::string pointer;  ///< the section's pointer, e.g. "/parallelism/experts"
  std::vector<Param<S>> params;

  /// Reads every declared key of `r` into `s` (defaults where absent; ranges checked). With `problems`,
  /// a key that cannot be read is recorded there (its member keeps its default) and reading goes on.
  void read(ObjectReader& r, S& s, Problems* problems = nullptr) const {
    for (const auto& p : params) {
      if (problems)
        problems->check([&] { p.read(r, s); });
      else
        p.read(r, s);
    }
  }
  /// The values `s` holds, every default filled in, as an object (the resolved scenario's section).
  Json resolved(const S& s) const {
    Json j = Json::object();
    for (const auto& p : params) j[p.info.pointer] = p.value(s);
    return j;
  }
  /// The parameters with their full pointers.
  std::vector<ParamInfo> infos() const {
    std::vector<ParamInfo> out;
    for (const auto& p : params) {
      ParamInfo i = p.info;
      i.pointer = pointer + "/" + i.pointer;
      out.push_back(std::move(i));
    }
    return out;
  }
};

/// A quantity in base SI units written so that parse_quantity gives the same double back
/// ("1.6e+11Bps", "3.3300000000000001e-06s").
std::string exact_quantity(double value, Dimension dim);

namespace params {

constexpr int64_t kMaxDim = 1 << 24;  ///< largest size, degree or count a scenario may give

std::string range_text(int64_t lo, int64_t hi);
std::string range_text(double lo, double hi);
std::string number_text(double v);

/// An integer member in [lo, hi]; `def` empty: required.
template <class S, class T>
Param<S> integer(const char* key, T S::*m, int64_t lo, int64_t hi, std::optional<int64_t> def,
                 const char* help) {
  return {{key, "integer in " + range_text(lo, hi), def ? std::to_string(*def) : "required", help},
          [=](ObjectReader& r, S& s) { s.*m = static_cast<T>(r.get_int_in(key, lo, hi, def)); },
          [=](const S& s) { return Json(static_cast<int64_t>(s.*m)); }};
}

/// A number member in [lo, hi]; `def` empty: required.
template <class S>
Param<S> number(const char* key, double S::*m, double lo, double hi, std::optional<double> def,
                const char* help) {
  return {{key, "number in " + range_text(lo, hi), def ? number_text(*def) : "required", help},
          [=](ObjectReader& r, S& s) { s.*m = r.get_number_in(key, lo, hi, def); },
          [=](const S& s) { return Json(s.*m); }};
}

/// A quantity member of dimension `dim`; `def` empty: required; `def_text` overrides the shown default
/// (a default derived from another parameter: the reader is then given `derive`).
template <class S>
Param<S> quantity(const char* key, double S::*m, Dimension dim, std::optional<double> def, const char* help) {
  return {
      {key, std::string(dimension_hint(dim)), def ? exact_quantity(*def, dim) : "required", help},
      [=](ObjectReader& r, S& s) { s.*m = def ? r.get_quantity(key, dim, *def) : r.get_quantity(key, dim); },
      [=](const S& s) { return Json(exact_quantity(s.*m, dim)); }};
}

/// A quantity whose default is derived from another field of S (`derive(s)`, described by `def_text`).
template <class S>
Param<S> derived_quantity(const char* key, double S::*m, Dimension dim,
                          std::function<double(const S&)> derive, const char* def_text, const char* help) {
  return {{key, std::string(dimension_hint(dim)), def_text, help},
          [=](ObjectReader& r, S& s) { s.*m = r.get_quantity(key, dim, derive(s)); },
          [=](const S& s) { return Json(exact_quantity(s.*m, dim)); }};
}

template <class S>
Param<S> boolean(const char* key, bool S::*m, bool def, const char* help) {
  return {{key, "boolean", def ? "true" : "false", help},
          [=](ObjectReader& r, S& s) { s.*m = r.get_bool(key, def); },
          [=](const S& s) { return Json(s.*m); }};
}

/// A string member; `def` empty: required.
template <class S>
Param<S> text(const char* key, std::string S::*m, std::optional<std::string> def, const char* help) {
  return {{key, "string", def ? (def->empty() ? "\"\"" : "\"" + *def + "\"") : "required", help},
          [=](ObjectReader& r, S& s) { s.*m = def ? r.get_string(key, *def) : r.get_string(key); },
          [=](const S& s) { return Json(s.*m); }};
}

/// A string member naming an entry of a registry of another library (`what`, e.g. "routing policy";
/// checked where that registry is visible: models::check_routing).
template <class S>
Param<S> named(const char* key, std::string S::*m, const char* what, const char* def, const char* help) {
  return {{key, std::string("a registered ") + what + " (moesim list policies)",
           std::string("\"") + def + "\"", help},
          [=](ObjectReader& r, S& s) { s.*m = r.get_string(key, def); },
          [=](const S& s) { return Json(s.*m); }};
}

/// An enum member parsed by its registry.
template <class S, class E>
Param<S> choice(const char* key, E S::*m, const Registry<E>& (*registry)(), E def, const char* help) {
  const Registry<E>& reg = (*registry)();
  return {{key, reg.expected(), "\"" + reg.name_of(def) + "\"", help},
          [=](ObjectReader& r, S& s) { s.*m = r.get_choice(key, (*registry)(), def); },
          [=](const S& s) { return Json((*registry)().name_of(s.*m)); }};
}

/// A list of enum members parsed by their registry (each entry's pointer named in errors).
template <class S, class E>
Param<S> choices(const char* key, std::vector<E> S::*m, const Registry<E>& (*registry)(), std::vector<E> def,
                 const char* help) {
  const Registry<E>& reg = (*registry)();
  std::string def_text;
  for (E e : def) def_text += (def_text.empty() ? "" : ", ") + ("\"" + reg.name_of(e) + "\"");
  return {{key, "array of " + reg.expected(), "[" + def_text + "]", help},
          [=](ObjectReader& r, S& s) {
            std::vector<std::string> fallback;
            for (E e : def) fallback.push_back((*registry)().name_of(e));
            const auto names = r.get_string_list(key, fallback);
            (s.*m).clear();
            for (std::size_t i = 0; i < names.size(); ++i)
              (s.*m).push_back((*registry)().get(names[i], r.source(), r.at(key) + "/" + std::to_string(i)));
          },
          [=](const S& s) {
            Json j = Json::array();
            for (E e : s.*m) j.push_back((*registry)().name_of(e));
            return j;
          }};
}

}  // namespace params

/// The section tables the loader reads with.
const ParamTable<ModelSpec>& model_params();
const ParamTable<AttentionSpec>& attention_params();
const ParamTable<MoeSpec>& moe_params();
const ParamTable<MambaSpec>& mamba_params();
const ParamTable<GatedDeltaNetSpec>& gdn_params();
const ParamTable<GpuSpec>& gpu_params();
const ParamTable<ReferenceSpec>& reference_params();
const ParamTable<ReferenceSpec>& reference_phase_params();
const ParamTable<ClusterSpec>& cluster_params();
const ParamTable<ScaleUpSpec>& scale_up_params();
const ParamTable<ScaleOutSpec>& scale_out_params();
const ParamTable<ParallelismSpec>& attention_parallel_params();
const ParamTable<ParallelismSpec>& expert_parallel_params();
const ParamTable<ParallelismSpec>& parallelism_params();
const ParamTable<WorkloadSpec>& workload_params();
const ParamTable<ServingSpec>& serving_params();
const ParamTable<ServingInstanceSpec>& serving_instance_params();
const ParamTable<RequestSourceSpec>& request_params();
const ParamTable<RoutingSpec>& routing_params();
const ParamTable<LoadSpec>& load_params();
const ParamTable<TraceSourceSpec>& trace_params();
const ParamTable<PlacementSpec>& placement_params();
const ParamTable<EngineSpec>& engine_params();
const ParamTable<OutputSpec>& output_params();
const ParamTable<Scenario>& top_level_params();

/// Every declared scenario parameter with its full pointer, in document order.
std::vector<ParamInfo> scenario_parameters();

/// The parameters as the Markdown table of docs/scenario-format.md (header included).
std::string parameters_markdown();

}  // namespace moesim
