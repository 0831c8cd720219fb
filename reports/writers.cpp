#include "reports/writers.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <sstream>

#include "scenarios/units.hpp"

#ifndef MOESIM_VERSION
#define MOESIM_VERSION "0.0.0"
#endif
#ifndef MOESIM_GIT_SHA
#define MOESIM_GIT_SHA "unknown"
#endif

namespace moesim::reports {
namespace {

using nlohmann::json;
constexpr double kGiB = 1073741824.0;

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string pct_err(double model, double ref) {
  if (!std::isfinite(ref) || ref == 0) return "";
  return fmt("%+.1f%%", 100.0 * (model - ref) / ref);
}

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

}  // namespace

const char* version() { return MOESIM_VERSION; }
const char* git_sha() { return MOESIM_GIT_SHA; }

json context_json(const Scenario& s, const models::Result& r) {
  json c;
  c["moesim_version"] = version();
  c["git_sha"] = git_sha();
  c["scenario"] = s.name;
  c["scenario_file"] = s.source;
  c["engine"] = r.engine;
  c["fidelity"] = r.fidelity;
  c["cost_model"] = r.cost_model;
  c["calibration"] = s.calibration.empty()
                         ? "none (roofline defaults from the GPU catalog: datasheet peaks x achievable fractions)"
                         : s.calibration;
  c["seed"] = r.seed;
  return c;
}

json result_json(const Scenario& s, const models::Result& r) {
  json j;
  j["schema_version"] = r.schema_version;
  j["context"] = context_json(s, r);
  json& sm = j["summary"];
  sm["feasible"] = r.feasible;
  if (!r.feasible) sm["infeasible_reason"] = r.infeasible_reason;
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
  sm["imbalance_cost_s"] = r.balanced_step_time > 0 ? json(r.step_time - r.balanced_step_time) : json(nullptr);
  if (r.engine == "des") sm["analytic_step_time_s"] = r.analytic_step_time;
  const auto& b = r.breakdown;
  j["breakdown_s"] = {{"compute", b.compute},       {"exposed_tp", b.exposed_tp}, {"exposed_ep", b.exposed_ep},
                      {"exposed_cp", b.exposed_cp}, {"bubble", b.bubble},         {"exposed_dp", b.exposed_dp},
                      {"optimizer", b.optimizer}};
  const auto& p = r.phases;
  j["phases"] = {{"forward_only_s", p.forward_only}, {"steady_s", p.steady},   {"backward_only_s", p.backward_only},
                 {"weight_only_s", p.weight_only},   {"bubble_s", p.bubble},   {"lone_forward_chunks", p.lone_f},
                 {"steady_units", p.pairs},          {"lone_backward_chunks", p.lone_b},
                 {"steady_unit_s", p.pair_time},     {"activations_in_flight", p.activations_in_flight},
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
  for (const auto& l : r.moe_layers)
    moe.push_back({{"layer", l.layer},
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
                   {"busiest_nic_dispatch_bytes", l.nic_bytes}});
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
    j["reference"] = {{"source", rf.source},
                      {"step_time_s", num(rf.step_time)},
                      {"step_time_error", std::isfinite(rf.step_time) ? json((r.step_time - rf.step_time) / rf.step_time)
                                                                      : json(nullptr)},
                      {"forward_only_s", num(rf.forward_only)},
                      {"steady_s", num(rf.steady)},
                      {"backward_only_s", num(rf.backward_only)},
                      {"weight_only_s", num(rf.weight_only)},
                      {"bubble_s", num(rf.bubble)},
                      {"optimizer_s", num(rf.optimizer)},
                      {"tokens_per_s_per_gpu", num(rf.tokens_per_second_per_gpu)},
                      {"mfu", num(rf.mfu)}};
  }
  return j;
}

void write_table(std::ostream& out, const Scenario& s, const models::Result& r) {
  const auto& rf = s.reference;
  const bool ref = !rf.empty();
  auto row = [&](const std::string& name, const std::string& model, double model_v, double ref_v,
                 const std::string& ref_s) {
    out << "  " << std::left << std::setw(34) << name << std::right << std::setw(14) << model;
    if (ref && std::isfinite(ref_v)) out << std::setw(14) << ref_s << std::setw(10) << pct_err(model_v, ref_v);
    out << "\n";
  };
  auto secs = [](double v) { return fmt("%.3f s", v); };
  out << "moesim " << version() << "  scenario: " << s.name << "  engine: " << r.engine << "\n";
  out << "  model " << s.model.name << " | " << r.gpus << " x " << s.cluster.gpu.name << " (" << s.cluster.nodes
      << " nodes x " << s.cluster.gpus_per_node << ") | TP" << s.parallelism.tp << " CP" << s.parallelism.cp << " DP"
      << s.parallelism.dp << " PP" << s.parallelism.pp << " EP" << s.parallelism.ep << " ETP" << s.parallelism.etp
      << " EDP" << s.parallelism.edp << " | " << to_string(s.parallelism.schedule) << ", ZeRO-" << s.parallelism.zero
      << ", " << to_string(s.workload.precision) << "\n";
  out << "  cost model: " << r.cost_model << " | fidelity: " << r.fidelity << " | seed " << r.seed << "\n";
  if (!r.feasible) out << "  INFEASIBLE: " << r.infeasible_reason << "\n";
  out << "\n  " << std::left << std::setw(34) << "quantity" << std::right << std::setw(14) << "moesim";
  if (ref) out << std::setw(14) << "published" << std::setw(10) << "error";
  out << "\n";
  row("step time", secs(r.step_time), r.step_time, rf.step_time, secs(rf.step_time));
  row("tokens/s", fmt("%.4g", r.tokens_per_second), r.tokens_per_second, NAN, "");
  row("tokens/s/GPU", fmt("%.1f", r.tokens_per_second_per_gpu), r.tokens_per_second_per_gpu,
      rf.tokens_per_second_per_gpu, fmt("%.1f", rf.tokens_per_second_per_gpu));
  row("MFU (non-causal, BF16 peak)", fmt("%.2f%%", 100 * r.mfu), r.mfu, rf.mfu, fmt("%.2f%%", 100 * rf.mfu));
  row("achieved TFLOP/s per GPU", fmt("%.1f", r.achieved_tflops_per_gpu), r.achieved_tflops_per_gpu, NAN, "");
  row("GPU-hours per 1T tokens", fmt("%.4g", r.gpu_hours_per_trillion_tokens), 0, NAN, "");
  if (r.cost_per_trillion_tokens > 0) row("USD per 1T tokens", fmt("%.4g", r.cost_per_trillion_tokens), 0, NAN, "");
  const auto& p = r.phases;
  if (r.engine == "des") {
    out << "\n  pipeline (" << to_string(s.parallelism.schedule) << ", " << r.microbatches
        << " microbatches): executed in the simulation; the critical GPU is on PP rank " << r.critical_rank << "\n";
  } else {
  out << "\n  pipeline phases on PP rank " << r.critical_rank << " (" << to_string(s.parallelism.schedule) << ", "
      << r.microbatches << " microbatches)\n";
  row("forward-only chunks (1F) x" + std::to_string(p.lone_f), secs(p.forward_only), p.forward_only, rf.forward_only,
      secs(rf.forward_only));
  row("steady state (1F1B) x" + std::to_string(p.pairs), secs(p.steady), p.steady, rf.steady, secs(rf.steady));
  row("backward-only chunks (1B) x" + std::to_string(p.lone_b), secs(p.backward_only), p.backward_only,
      rf.backward_only, secs(rf.backward_only));
  row("deferred weight chunks (1W)", secs(p.weight_only), p.weight_only, rf.weight_only, secs(rf.weight_only));
  row("bubble", secs(p.bubble), p.bubble, rf.bubble, secs(rf.bubble));
  const double opt = r.breakdown.optimizer + r.breakdown.exposed_dp;
  row("optimizer + exposed grad sync", secs(opt), opt, rf.optimizer, secs(rf.optimizer));
  }
  out << "\n  per microbatch chunk: F " << format_seconds(r.chunk.f) << ", B " << format_seconds(r.chunk.b) << ", W "
      << format_seconds(r.chunk.w);
  if (r.engine != "des") out << ", steady unit " << format_seconds(p.pair_time);
  out << " (each alone on the critical rank)\n";
  const auto& b = r.breakdown;
  out << "\n  step breakdown\n";
  const double st = r.step_time > 0 ? r.step_time : 1;
  auto brow = [&](const char* n, double v) {
    out << "  " << std::left << std::setw(34) << n << std::right << std::setw(14) << secs(v) << std::setw(9)
        << fmt("%.1f%%", 100 * v / st) << "\n";
  };
  brow("compute", b.compute);
  brow("exposed EP all-to-all", b.exposed_ep);
  brow("exposed TP collectives", b.exposed_tp);
  brow("exposed CP ring", b.exposed_cp);
  brow("pipeline bubble", b.bubble);
  brow("exposed DP grad sync", b.exposed_dp);
  brow("optimizer", b.optimizer);
  const auto& m = r.memory;
  out << "\n  memory per GPU (PP rank " << r.memory_rank << ", the most loaded): " << fmt("%.1f", m.total / kGiB) << " of "
      << fmt("%.1f", m.capacity / kGiB) << " GiB" << (m.fits ? "" : "  DOES NOT FIT") << "\n    weights "
      << fmt("%.1f", m.weights / kGiB) << ", master " << fmt("%.1f", m.master_weights / kGiB) << ", gradients "
      << fmt("%.1f", m.gradients / kGiB) << ", optimizer " << fmt("%.1f", m.optimizer_states / kGiB)
      << ", activations " << fmt("%.1f", m.activations / kGiB) << ", reserve " << fmt("%.1f", m.overhead / kGiB)
      << " GiB\n";
  if (!r.moe_layers.empty()) {
    const double cost = r.step_time - r.balanced_step_time;
    if (r.balanced_step_time > 0)
      out << "\n  imbalance: step " << secs(r.step_time) << " vs " << secs(r.balanced_step_time)
          << " with perfectly balanced routing (" << fmt("%+.1f%%", 100 * cost / r.balanced_step_time) << ")\n";
    else
      out << "\n  imbalance: the balanced-routing step is not simulated by this engine (the analytic engine reports it)\n";
    out << "  MoE routing: per-GPU load max/mean " << fmt("%.3f", r.moe_max_over_mean_gpu) << " (mean over "
        << r.moe_layers.size() << " layers), dropped " << fmt("%.2f%%", 100 * r.moe_dropped_fraction)
        << ", dispatch " << format_seconds(r.moe_layers.front().dispatch_seconds) << " + combine "
        << format_seconds(r.moe_layers.front().combine_seconds) << " per layer (first MoE layer)\n";
  }
  if (ref) out << "\n  published figures: " << rf.source << "\n";
}

void write_summary_csv(std::ostream& out, const models::Result& r) {
  out << "schema_version,scenario,engine,feasible,gpus,step_time_s,tokens_per_s,tokens_per_s_per_gpu,mfu,mfu_causal,"
         "compute_s,exposed_ep_s,exposed_tp_s,exposed_cp_s,bubble_s,exposed_dp_s,optimizer_s,memory_gib,"
         "moe_max_over_mean_gpu\n";
  out << std::setprecision(10) << r.schema_version << "," << r.scenario << "," << r.engine << "," << (r.feasible ? 1 : 0) << "," << r.gpus << ","
      << r.step_time << "," << r.tokens_per_second << "," << r.tokens_per_second_per_gpu << "," << r.mfu << ","
      << r.mfu_causal << "," << r.breakdown.compute << "," << r.breakdown.exposed_ep << "," << r.breakdown.exposed_tp
      << "," << r.breakdown.exposed_cp << "," << r.breakdown.bubble << "," << r.breakdown.exposed_dp << ","
      << r.breakdown.optimizer << "," << r.memory.total / kGiB << "," << r.moe_max_over_mean_gpu << "\n";
}

void write_layers_csv(std::ostream& out, const models::Result& r) {
  out << "layer,kind,pp_rank,forward_s,backward_input_s,backward_weight_s,max_over_mean_gpu\n" << std::setprecision(10);
  for (const auto& l : r.layers)
    out << l.layer << "," << l.kind << "," << l.pp_rank << "," << l.forward << "," << l.backward_input << ","
        << l.backward_weight << "," << l.max_over_mean_gpu << "\n";
}

namespace {
void sort_rows(std::vector<CompareRow>& rows) {
  std::stable_sort(rows.begin(), rows.end(), [](const CompareRow& a, const CompareRow& b) {
    const int ra = !a.ok ? 2 : !a.result.feasible ? 1 : 0, rb = !b.ok ? 2 : !b.result.feasible ? 1 : 0;
    if (ra != rb) return ra < rb;
    return a.result.tokens_per_second > b.result.tokens_per_second;
  });
}
}  // namespace

void write_compare_table(std::ostream& out, std::vector<CompareRow> rows) {
  sort_rows(rows);
  std::size_t w = 8;
  for (const auto& r : rows) w = std::max(w, r.name.size() + 2);
  out << std::left << std::setw(static_cast<int>(w)) << "variant" << std::right << std::setw(12) << "step (s)"
      << std::setw(14) << "tokens/s" << std::setw(12) << "tok/s/GPU" << std::setw(8) << "MFU" << std::setw(10)
      << "bubble" << std::setw(10) << "exp. EP" << std::setw(10) << "GPU imb." << std::setw(10) << "mem GiB"
      << "  verdict\n";
  for (const auto& r : rows) {
    out << std::left << std::setw(static_cast<int>(w)) << r.name << std::right;
    if (!r.ok) {
      out << "  INVALID: " << r.error << "\n";
      continue;
    }
    const auto& x = r.result;
    out << std::setw(12) << fmt("%.3f", x.step_time) << std::setw(14) << fmt("%.4g", x.tokens_per_second)
        << std::setw(12) << fmt("%.1f", x.tokens_per_second_per_gpu) << std::setw(8) << fmt("%.1f%%", 100 * x.mfu)
        << std::setw(10) << fmt("%.3f", x.breakdown.bubble) << std::setw(10) << fmt("%.3f", x.breakdown.exposed_ep)
        << std::setw(10) << fmt("%.3f", x.moe_max_over_mean_gpu) << std::setw(10) << fmt("%.1f", x.memory.total / kGiB)
        << "  "
        << (x.feasible ? "ok" : "INFEASIBLE: " + x.infeasible_reason) << "\n";
  }
}

json compare_json(std::vector<CompareRow> rows) {
  sort_rows(rows);
  json a = json::array();
  for (const auto& r : rows) {
    json j{{"name", r.name}, {"valid", r.ok}};
    if (!r.ok) {
      j["error"] = r.error;
    } else {
      j["feasible"] = r.result.feasible;
      if (!r.result.feasible) j["infeasible_reason"] = r.result.infeasible_reason;
      j["step_time_s"] = r.result.step_time;
      j["tokens_per_s"] = r.result.tokens_per_second;
      j["tokens_per_s_per_gpu"] = r.result.tokens_per_second_per_gpu;
      j["mfu"] = r.result.mfu;
      j["memory_gib"] = r.result.memory.total / kGiB;
      j["moe_max_over_mean_gpu"] = r.result.moe_max_over_mean_gpu;
      j["balanced_step_time_s"] = r.result.balanced_step_time > 0 ? json(r.result.balanced_step_time) : json(nullptr);
    }
    a.push_back(j);
  }
  return json{{"schema_version", models::kResultSchemaVersion}, {"variants", a}};
}

}  // namespace moesim::reports
