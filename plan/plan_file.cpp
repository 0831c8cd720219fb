#include "plan/plan_file.hpp"

#include <algorithm>

#include "scenarios/error.hpp"
#include "scenarios/json_reader.hpp"
#include "scenarios/loader.hpp"

namespace moesim::plan {

namespace {

// A list of integers in [lo, hi], each distinct; `fallback` when the key is absent.
std::vector<int> int_list(ObjectReader& r, const std::string& key, int lo, int hi,
                          std::vector<int> fallback) {
  const Json* v = r.optional_child(key);
  if (!v) return fallback;
  const std::string what =
      "a non-empty array of distinct integers in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  if (!v->is_array() || v->empty()) r.fail(key, what, describe_json(*v));
  std::vector<int> out;
  for (std::size_t i = 0; i < v->size(); ++i) {
    const Json& e = (*v)[i];
    const std::string ptr = r.at(key) + "/" + std::to_string(i);
    if (!e.is_number_integer() || e.get<int64_t>() < lo || e.get<int64_t>() > hi)
      throw ConfigError(located_message(
          r.source(), ptr, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]",
          describe_json(e)));
    const int x = static_cast<int>(e.get<int64_t>());
    if (std::find(out.begin(), out.end(), x) != out.end())
      throw ConfigError(located_message(r.source(), ptr, "a value not listed before", std::to_string(x)));
    out.push_back(x);
  }
  return out;
}

// A list of distinct booleans; `fallback` when the key is absent.
std::vector<bool> bool_list(ObjectReader& r, const std::string& key, std::vector<bool> fallback) {
  const Json* v = r.optional_child(key);
  if (!v) return fallback;
  if (!v->is_array() || v->empty() || v->size() > 2)
    r.fail(key, "an array of one or two distinct booleans ([false, true])", describe_json(*v));
  std::vector<bool> out;
  for (std::size_t i = 0; i < v->size(); ++i) {
    const Json& e = (*v)[i];
    const std::string ptr = r.at(key) + "/" + std::to_string(i);
    if (!e.is_boolean())
      throw ConfigError(located_message(r.source(), ptr, "true or false", describe_json(e)));
    const bool x = e.get<bool>();
    if (std::find(out.begin(), out.end(), x) != out.end())
      throw ConfigError(located_message(r.source(), ptr, "a value not listed before", describe_json(e)));
    out.push_back(x);
  }
  return out;
}

template <class T>
std::vector<T> name_list(ObjectReader& r, const std::string& key, const Registry<T>& registry,
                         std::vector<T> fallback) {
  const Json* v = r.optional_child(key);
  if (!v) return fallback;
  if (!v->is_array() || v->empty())
    r.fail(key, "a non-empty array of names (" + registry.expected() + ")", describe_json(*v));
  std::vector<T> out;
  for (std::size_t i = 0; i < v->size(); ++i) {
    const Json& e = (*v)[i];
    const std::string ptr = r.at(key) + "/" + std::to_string(i);
    if (!e.is_string())
      throw ConfigError(located_message(r.source(), ptr, registry.expected(), describe_json(e)));
    const T x = registry.get(e.get<std::string>(), r.source(), ptr);
    if (std::find(out.begin(), out.end(), x) != out.end())
      throw ConfigError(located_message(r.source(), ptr, "a value not listed before", describe_json(e)));
    out.push_back(x);
  }
  return out;
}

Hardware hardware_from_json(const Json& j, const std::string& source, const std::string& ptr,
                            const Catalog& catalog) {
  ObjectReader r(j, source, ptr);
  Hardware h;
  const Json& c = r.child("cluster");
  std::string csrc = source, cptr = r.at("cluster");
  Json cj;
  if (c.is_string()) {
    std::string name;
    if (!is_catalog_ref(c.get<std::string>(), name))
      r.fail("cluster", "\"catalog:NAME\" or an inline cluster object", describe_json(c));
    csrc = catalog.path(CatalogKind::kCluster, name, source, cptr);
    cptr = "";
    cj = read_json_file(csrc);
  } else {
    cj = c;
  }
  Json resolved;
  h.cluster = cluster_from_json(cj, csrc, cptr, catalog, &resolved);
  h.label = h.cluster.name;
  if (!h.cluster.gpu.calibration.empty()) {
    h.gpu_calibration = gpu_calibration_path(h.cluster.gpu, catalog, csrc, cptr + "/gpu/calibration");
    h.gpu_calibration_text = read_calibration_text(h.gpu_calibration);
  }
  const int gpn = h.cluster.gpus_per_node;
  h.max_gpus = static_cast<int>(r.get_int_in("max_gpus", gpn, 1 << 20, std::nullopt));
  h.min_nodes = static_cast<int>(r.get_int_in("min_nodes", 1, 1 << 20, 1));
  h.node_step = static_cast<int>(r.get_int_in("node_step", 1, 1 << 20, 1));
  if (h.min_nodes * static_cast<int64_t>(gpn) > h.max_gpus)
    r.fail("min_nodes", "at most max_gpus / gpus_per_node = " + std::to_string(h.max_gpus / gpn) + " nodes",
           std::to_string(h.min_nodes));
  h.usd_per_gpu_hour = r.get_number_in(
      "usd_per_gpu_hour", 0, 1e4,
      h.cluster.gpu.price_per_hour > 0 ? std::optional<double>(h.cluster.gpu.price_per_hour) : std::nullopt);
  ObjectReader p(r.child("power"), source, r.at("power"));
  h.power.busy_w = p.get_number_in("busy_w", 1, 1e5, std::nullopt);
  h.power.communication_w = p.get_number_in("communication_w", 0, 1e5, std::nullopt);
  h.power.idle_w = p.get_number_in("idle_w", 0, 1e5, std::nullopt);
  h.power.node_overhead_w = p.get_number_in("node_overhead_w", 0, 1e6, 0.0);
  h.power.pue = p.get_number_in("pue", 1, 5, 1.0);
  p.finish();
  r.finish();
  return h;
}

}  // namespace

PlanSpec plan_from_json(const Json& j, const std::string& source, const Catalog& catalog) {
  PlanSpec p;
  p.source = source;
  ObjectReader r(j, source, "");
  r.get_int_in("schema_version", 1, 1, 1);
  p.name = r.get_string("name");
  r.optional_child("_comment");

  p.base = load_scenario(read_scenario_path(r, "scenario"), catalog);
  p.base.resolved = Json();  // not written by the planner; copied per candidate otherwise

  ObjectReader t(r.child("target"), source, "/target");
  p.tokens = t.get_number_in("tokens", 1, 1e18, std::nullopt);
  p.within_days = t.get_number_in("within_days", 0, 36500, 0.0);
  if (const Json* ramp = t.optional_child("batch_ramp")) {
    ObjectReader q(*ramp, source, "/target/batch_ramp");
    p.ramp_start_batch = q.get_int_in("start_sequences", 1, p.base.parallelism.global_batch, std::nullopt);
    p.ramp_tokens = q.get_number_in("tokens", 0, p.tokens, std::nullopt);
    q.finish();
  }
  t.finish();

  const Json& hw = r.child("hardware");
  if (!hw.is_array() || hw.empty())
    r.fail("hardware", "a non-empty array of candidate clusters", describe_json(hw));
  for (std::size_t i = 0; i < hw.size(); ++i) {
    Hardware h = hardware_from_json(hw[i], source, "/hardware/" + std::to_string(i), catalog);
    if (!p.base.calibration.empty() && h.cluster.gpu.name != p.base.cluster.gpu.name)
      throw ConfigError(located_message(source, "/hardware/" + std::to_string(i) + "/cluster",
                                        "a cluster of " + p.base.cluster.gpu.name +
                                            " GPUs, the GPU the base scenario's calibration measured",
                                        h.cluster.gpu.name));
    p.hardware.push_back(std::move(h));
  }

  if (const Json* s = r.optional_child("search")) {
    ObjectReader q(*s, source, "/search");
    SearchSpace& x = p.search;
    x.tp = int_list(q, "tp", 1, 1024, x.tp);
    x.cp = int_list(q, "cp", 1, 1024, x.cp);
    x.pp = int_list(q, "pp", 1, 1024, x.pp);
    x.vpp = int_list(q, "vpp", 1, 64, x.vpp);
    x.ep = int_list(q, "ep", 1, 65536, x.ep);
    x.etp = int_list(q, "etp", 1, 1024, x.etp);
    x.zero = int_list(q, "zero", 0, 3, x.zero);
    x.microbatch_size = int_list(q, "microbatch_size", 1, 65536, x.microbatch_size);
    x.recompute = name_list(q, "recompute", recompute_modes(), x.recompute);
    x.schedule = name_list(q, "schedule", schedules(), x.schedule);
    x.dispatch = name_list(q, "dispatch", dispatch_modes(), x.dispatch);
    x.ep_overlap = bool_list(q, "ep_overlap", x.ep_overlap);
    x.tp_within_node = q.get_bool("tp_within_node", true);
    q.finish();
  }
  if (p.search.schedule.empty()) p.search.schedule = {p.base.parallelism.schedule};
  if (p.search.dispatch.empty()) p.search.dispatch = {p.base.workload.dispatch};
  if (p.search.ep_overlap.empty()) p.search.ep_overlap = {p.base.parallelism.ep_overlap};

  if (const Json* rel = r.optional_child("reliability")) {
    ObjectReader q(*rel, source, "/reliability");
    Reliability& x = p.reliability;
    x.failures_per_gpu_hour = q.get_number_in("failures_per_gpu_hour", 0, 1, x.failures_per_gpu_hour);
    x.restart_s = q.get_quantity("restart", Dimension::kTime, x.restart_s);
    if (x.restart_s < 0) q.fail("restart", "a non-negative time", std::to_string(x.restart_s) + " s");
    x.checkpoint_bytes_per_s_per_gpu = q.get_quantity("checkpoint_bandwidth_per_gpu", Dimension::kBandwidth,
                                                      x.checkpoint_bytes_per_s_per_gpu);
    if (!(x.checkpoint_bytes_per_s_per_gpu > 0))
      q.fail("checkpoint_bandwidth_per_gpu", "a positive bandwidth", "0");
    q.finish();
  }
  p.top = static_cast<int>(r.get_int_in("top", 1, 1000, 10));
  r.finish();
  return p;
}

PlanSpec read_plan(const std::string& path, const Catalog& catalog) {
  return plan_from_json(read_json_file(path), path, catalog);
}

}  // namespace moesim::plan
