#include "reports/result_json.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "reports/context.hpp"
#include "scenarios/error.hpp"
#include "sim/step_sim.hpp"

namespace moesim::reports {
namespace {

using nlohmann::json;

json num(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

// Reads the fields of one object of a result document, naming the JSON pointer of a missing or mistyped
// one. Numbers that were not finite were written as null and come back as NaN.
class Fields {
 public:
  Fields(const json& j, const std::string& source, std::string pointer)
      : j_(j), source_(source), pointer_(std::move(pointer)) {
    if (!j_.is_object()) fail("", "an object", j_);
  }
  Fields child(const char* key) const { return Fields(at(key), source_, pointer_ + "/" + key); }
  const json& at(const char* key) const {
    const auto it = j_.find(key);
    if (it == j_.end())
      throw ParseError(located_message(source_, pointer_ + "/" + key, "a result field", "none"));
    return *it;
  }
  bool has(const char* key) const { return j_.contains(key); }
  double number(const char* key) const {
    const json& v = at(key);
    if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
    if (!v.is_number()) fail(key, "a number or null", v);
    return v.get<double>();
  }
  double number_or(const char* key, double fallback) const { return has(key) ? number(key) : fallback; }
  template <class Int>
  Int integer(const char* key) const {
    const json& v = at(key);
    if (!v.is_number_integer()) fail(key, "an integer", v);
    return v.get<Int>();
  }
  bool boolean(const char* key) const {
    const json& v = at(key);
    if (!v.is_boolean()) fail(key, "true or false", v);
    return v.get<bool>();
  }
  std::string text(const char* key) const {
    const json& v = at(key);
    if (!v.is_string()) fail(key, "a string", v);
    return v.get<std::string>();
  }
  std::string text_or(const char* key, const std::string& fallback) const {
    return has(key) ? text(key) : fallback;
  }
  std::vector<double> numbers(const json& v, const std::string& where) const {
    if (!v.is_array()) fail(where, "an array of numbers", v);
    std::vector<double> out;
    for (const auto& x : v) {
      if (!x.is_number() && !x.is_null()) fail(where, "an array of numbers", v);
      out.push_back(x.is_null() ? std::numeric_limits<double>::quiet_NaN() : x.get<double>());
    }
    return out;
  }
  /// Each element of the array `key` as an object.
  std::vector<Fields> objects(const char* key) const {
    const json& v = at(key);
    if (!v.is_array()) fail(key, "an array of objects", v);
    std::vector<Fields> out;
    for (std::size_t i = 0; i < v.size(); ++i)
      out.emplace_back(v[i], source_, pointer_ + "/" + key + "/" + std::to_string(i));
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& key, const char* expected, const json& found) const {
    throw ParseError(located_message(source_, key.empty() ? pointer_ : pointer_ + "/" + key, expected,
                                     found.is_null() ? "null" : found.type_name()));
  }
  const json& j_;
  const std::string& source_;
  std::string pointer_;
};

}  // namespace

json result_json(const Scenario& s, const models::Result& r, const sim::StepSimResult* des,
                 ResultDetail detail) {
  const bool complete = detail == ResultDetail::kComplete;
  json j;
  j["schema_version"] = r.schema_version;
  j["context"] = context_json(s, r);
  json& sm = j["summary"];
  sm["feasible"] = r.feasible;
  if (!r.feasible || complete) sm["infeasible_reason"] = r.infeasible_reason;
  sm["gpus"] = r.gpus;
  sm["microbatches_per_pipeline"] = r.microbatches;
  sm["tokens_per_step"] = r.tokens_per_step;
  sm["step_time_s"] = r.step_time;
  sm["tokens_per_s"] = r.tokens_per_second;
  sm["tokens_per_s_per_gpu"] = r.tokens_per_second_per_gpu;
  sm["model_flops_per_token"] = r.model_flops_per_token;
  sm["achieved_tflops_per_gpu"] = r.achieved_tflops_per_gpu;
  sm["mfu"] = r.mfu;
  sm["mfu_causal"] = r.mfu_causal;
  sm["gpu_hours_per_trillion_tokens"] = r.gpu_hours_per_trillion_tokens;
  sm["cost_usd_per_trillion_tokens"] = r.cost_per_trillion_tokens;
  sm["critical_pp_rank"] = r.critical_rank;
  sm["balanced_step_time_s"] = r.balanced_step_time > 0 ? json(r.balanced_step_time) : json(nullptr);
  sm["imbalance_cost_s"] =
      r.balanced_step_time > 0 ? json(r.step_time - r.balanced_step_time) : json(nullptr);
  if (is_des(r) || complete) sm["analytic_step_time_s"] = r.analytic_step_time;
  const auto& b = r.breakdown;
  j["breakdown_s"] = {{"compute", b.compute},       {"exposed_tp", b.exposed_tp},
                      {"exposed_ep", b.exposed_ep}, {"exposed_cp", b.exposed_cp},
                      {"bubble", b.bubble},         {"exposed_dp", b.exposed_dp},
                      {"optimizer", b.optimizer}};
  const auto& p = r.phases;
  j["phases"] = {{"forward_only_s", p.forward_only},
                 {"steady_s", p.steady},
                 {"backward_only_s", p.backward_only},
                 {"weight_only_s", p.weight_only},
                 {"bubble_s", p.bubble},
                 {"lone_forward_chunks", p.lone_f},
                 {"steady_units", p.pairs},
                 {"lone_backward_chunks", p.lone_b},
                 {"steady_unit_s", p.pair_time},
                 {"activations_in_flight", p.activations_in_flight},
                 {"parameter_copies", p.parameter_copies},
                 {"optimizer_and_grad_sync_s", b.optimizer + b.exposed_dp}};
  const auto& c = r.chunk;
  j["chunk_s"] = {{"forward", c.f},
                  {"backward_input", c.b},
                  {"backward_weight", c.w},
                  {"forward_compute", c.f_compute},
                  {"backward_input_compute", c.b_compute},
                  {"backward_weight_compute", c.w_compute},
                  {"forward_overlappable_comm", c.f_overlappable},
                  {"backward_overlappable_comm", c.b_overlappable},
                  {"pipeline_p2p", c.p2p}};
  if (complete) {
    j["chunk_s"]["forward_blocking_comm"] = c.f_blocking;
    j["chunk_s"]["backward_blocking_comm"] = c.b_blocking;
    j["chunk_s"]["dualpipe_pair"] = c.fb_pair;
  }
  j["grad_sync_s"] = r.grad_sync;
  const auto& m = r.memory;
  j["memory_bytes"] = {{"weights", m.weights},
                       {"master_weights", m.master_weights},
                       {"gradients", m.gradients},
                       {"optimizer_states", m.optimizer_states},
                       {"activations", m.activations},
                       {"reserve", m.overhead},
                       {"total", m.total},
                       {"capacity", m.capacity},
                       {"pp_rank", r.memory_rank},
                       {"fits", m.fits}};
  json moe = json::array();
  for (const auto& l : r.moe_layers) {
    json x = {{"layer", l.layer},
              {"max_over_mean_gpu", l.max_over_mean_gpu},
              {"cv_gpu", l.cv_gpu},
              {"max_over_mean_expert", l.max_over_mean_expert},
              {"cv_expert", l.cv_expert},
              {"straggler_s", l.straggler_seconds},
              {"straggler_rows", l.straggler_rows},
              {"mean_rows", l.mean_rows},
              {"dropped_fraction", l.dropped_fraction},
              {"padded_rows", l.padded_rows},
              {"dispatch_s", l.dispatch_seconds},
              {"combine_s", l.combine_seconds},
              {"busiest_nic_dispatch_bytes", l.nic_bytes}};
    if (complete) {
      x["nodes"] = l.nodes;
      x["node_traffic_bytes"] = l.node_traffic;
    }
    moe.push_back(std::move(x));
  }
  json traffic = nullptr;
  if (r.traffic_nodes > 0) {
    const int nodes = r.traffic_nodes;
    traffic = json::array();
    for (int a = 0; a < nodes; ++a) {
      json row = json::array();
      for (int n = 0; n < nodes; ++n) row.push_back(r.node_traffic[static_cast<std::size_t>(a) * nodes + n]);
      traffic.push_back(row);
    }
  }
  j["moe"] = {{"first_layer_dispatch_node_traffic_bytes", traffic},
              {"mean_max_over_mean_gpu", r.moe_max_over_mean_gpu},
              {"mean_dropped_fraction", r.moe_dropped_fraction},
              {"layers", moe}};
  json layers = json::array();
  for (const auto& l : r.layers)
    layers.push_back({{"layer", l.layer},
                      {"kind", l.kind},
                      {"pp_rank", l.pp_rank},
                      {"forward_s", l.forward},
                      {"backward_input_s", l.backward_input},
                      {"backward_weight_s", l.backward_weight},
                      {"max_over_mean_gpu", l.max_over_mean_gpu}});
  j["layers"] = layers;
  if (!s.reference.empty()) {
    const auto& rf = s.reference;
    j["reference"] = {
        {"source", rf.source},
        {"step_time_s", num(rf.step_time)},
        {"step_time_error",
         std::isfinite(rf.step_time) ? json((r.step_time - rf.step_time) / rf.step_time) : json(nullptr)},
        {"forward_only_s", num(rf.forward_only)},
        {"steady_s", num(rf.steady)},
        {"backward_only_s", num(rf.backward_only)},
        {"weight_only_s", num(rf.weight_only)},
        {"bubble_s", num(rf.bubble)},
        {"optimizer_s", num(rf.optimizer)},
        {"tokens_per_s_per_gpu", num(rf.tokens_per_second_per_gpu)},
        {"mfu", num(rf.mfu)}};
  }
  if (des != nullptr) j["des"] = des_json(*des);
  return j;
}

models::Result result_from_json(const json& j, const std::string& source) {
  const Fields doc(j, source, "");
  models::Result r;
  r.schema_version = doc.integer<int>("schema_version");
  const Fields ctx = doc.child("context");
  r.scenario = ctx.text("scenario");
  r.engine = ctx.text("engine");
  r.fidelity = ctx.text("fidelity");
  r.cost_model = ctx.text("cost_model");
  r.seed = ctx.integer<uint64_t>("seed");

  const Fields sm = doc.child("summary");
  r.feasible = sm.boolean("feasible");
  r.infeasible_reason = sm.text_or("infeasible_reason", "");
  r.gpus = sm.integer<int>("gpus");
  r.microbatches = sm.integer<int>("microbatches_per_pipeline");
  r.tokens_per_step = sm.number("tokens_per_step");
  r.step_time = sm.number("step_time_s");
  r.tokens_per_second = sm.number("tokens_per_s");
  r.tokens_per_second_per_gpu = sm.number("tokens_per_s_per_gpu");
  r.model_flops_per_token = sm.number("model_flops_per_token");
  r.achieved_tflops_per_gpu = sm.number("achieved_tflops_per_gpu");
  r.mfu = sm.number("mfu");
  r.mfu_causal = sm.number("mfu_causal");
  r.gpu_hours_per_trillion_tokens = sm.number("gpu_hours_per_trillion_tokens");
  r.cost_per_trillion_tokens = sm.number("cost_usd_per_trillion_tokens");
  r.critical_rank = sm.integer<int>("critical_pp_rank");
  r.balanced_step_time = sm.at("balanced_step_time_s").is_null() ? 0 : sm.number("balanced_step_time_s");
  r.analytic_step_time = sm.number_or("analytic_step_time_s", 0);

  const Fields bd = doc.child("breakdown_s");
  r.breakdown.compute = bd.number("compute");
  r.breakdown.exposed_tp = bd.number("exposed_tp");
  r.breakdown.exposed_ep = bd.number("exposed_ep");
  r.breakdown.exposed_cp = bd.number("exposed_cp");
  r.breakdown.bubble = bd.number("bubble");
  r.breakdown.exposed_dp = bd.number("exposed_dp");
  r.breakdown.optimizer = bd.number("optimizer");

  const Fields ph = doc.child("phases");
  auto& p = r.phases;
  p.forward_only = ph.number("forward_only_s");
  p.steady = ph.number("steady_s");
  p.backward_only = ph.number("backward_only_s");
  p.weight_only = ph.number("weight_only_s");
  p.bubble = ph.number("bubble_s");
  p.lone_f = ph.integer<int>("lone_forward_chunks");
  p.pairs = ph.integer<int>("steady_units");
  p.lone_b = ph.integer<int>("lone_backward_chunks");
  p.pair_time = ph.number("steady_unit_s");
  p.activations_in_flight = ph.number("activations_in_flight");
  p.parameter_copies = ph.number("parameter_copies");

  const Fields ch = doc.child("chunk_s");
  auto& c = r.chunk;
  c.f = ch.number("forward");
  c.b = ch.number("backward_input");
  c.w = ch.number("backward_weight");
  c.f_compute = ch.number("forward_compute");
  c.b_compute = ch.number("backward_input_compute");
  c.w_compute = ch.number("backward_weight_compute");
  c.f_overlappable = ch.number("forward_overlappable_comm");
  c.b_overlappable = ch.number("backward_overlappable_comm");
  c.p2p = ch.number("pipeline_p2p");
  c.f_blocking = ch.number_or("forward_blocking_comm", 0);
  c.b_blocking = ch.number_or("backward_blocking_comm", 0);
  c.fb_pair = ch.number_or("dualpipe_pair", 0);
  r.grad_sync = doc.number("grad_sync_s");

  const Fields mem = doc.child("memory_bytes");
  auto& m = r.memory;
  m.weights = mem.number("weights");
  m.master_weights = mem.number("master_weights");
  m.gradients = mem.number("gradients");
  m.optimizer_states = mem.number("optimizer_states");
  m.activations = mem.number("activations");
  m.overhead = mem.number("reserve");
  m.total = mem.number("total");
  m.capacity = mem.number("capacity");
  m.fits = mem.boolean("fits");
  r.memory_rank = mem.integer<int>("pp_rank");

  const Fields moe = doc.child("moe");
  r.moe_max_over_mean_gpu = moe.number("mean_max_over_mean_gpu");
  r.moe_dropped_fraction = moe.number("mean_dropped_fraction");
  const json& traffic = moe.at("first_layer_dispatch_node_traffic_bytes");
  if (!traffic.is_null()) {
    r.traffic_nodes = static_cast<int>(traffic.size());
    for (std::size_t a = 0; a < traffic.size(); ++a) {
      const auto row =
          moe.numbers(traffic[a], "first_layer_dispatch_node_traffic_bytes/" + std::to_string(a));
      r.node_traffic.insert(r.node_traffic.end(), row.begin(), row.end());
    }
  }
  for (const Fields& x : moe.objects("layers")) {
    models::MoeLayerStats l;
    l.layer = x.integer<int>("layer");
    l.max_over_mean_gpu = x.number("max_over_mean_gpu");
    l.cv_gpu = x.number("cv_gpu");
    l.max_over_mean_expert = x.number("max_over_mean_expert");
    l.cv_expert = x.number("cv_expert");
    l.straggler_seconds = x.number("straggler_s");
    l.straggler_rows = x.number("straggler_rows");
    l.mean_rows = x.number("mean_rows");
    l.dropped_fraction = x.number("dropped_fraction");
    l.padded_rows = x.number("padded_rows");
    l.dispatch_seconds = x.number("dispatch_s");
    l.combine_seconds = x.number("combine_s");
    l.nic_bytes = x.number("busiest_nic_dispatch_bytes");
    if (x.has("nodes")) l.nodes = x.integer<int>("nodes");
    if (x.has("node_traffic_bytes"))
      l.node_traffic = x.numbers(x.at("node_traffic_bytes"), "node_traffic_bytes");
    r.moe_layers.push_back(std::move(l));
  }
  for (const Fields& x : doc.objects("layers")) {
    models::LayerTime l;
    l.layer = x.integer<int>("layer");
    l.kind = x.text("kind");
    l.pp_rank = x.integer<int>("pp_rank");
    l.forward = x.number("forward_s");
    l.backward_input = x.number("backward_input_s");
    l.backward_weight = x.number("backward_weight_s");
    l.max_over_mean_gpu = x.number("max_over_mean_gpu");
    r.layers.push_back(std::move(l));
  }
  return r;
}

json des_json(const sim::StepSimResult& d) {
  json links = json::array();
  for (const auto& l : d.links)
    links.push_back({{"link", l.name},
                     {"kind", sim::to_string(l.kind)},
                     {"bandwidth_Bps", l.bandwidth},
                     {"bytes", l.bytes},
                     {"busy_s", l.busy_time},
                     {"busy_fraction", l.busy_fraction},
                     {"utilisation", l.utilisation}});
  const auto& e = d.settings;
  return {{"analytic_step_time_s", d.result.analytic_step_time},
          {"simulated_gpus", d.stats.simulated_gpus},
          {"ep_groups", d.stats.ep_groups},
          {"microbatches_simulated", d.stats.microbatches},
          {"compute_segments", d.stats.segments},
          {"all_to_alls", d.stats.collectives},
          {"flows", d.stats.flows},
          {"simgrid",
           {{"version", e.simgrid_version},
            {"network_model", e.network_model},
            {"network_optim", e.network_optim},
            {"crosstraffic", e.crosstraffic},
            {"tcp_gamma", e.tcp_gamma},
            {"surf_precision_s", e.surf_precision},
            {"aggregated", e.aggregated},
            {"hosts", e.hosts},
            {"links", e.links}}},
          {"links", links}};
}

}  // namespace moesim::reports
