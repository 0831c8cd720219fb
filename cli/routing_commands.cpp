#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "cli/commands.hpp"
#include "models/placement.hpp"
#include "models/placement/metrics.hpp"
#include "models/replay.hpp"
#include "sim/step_sim.hpp"
#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"
#include "traces/import.hpp"
#include "traces/trace_format.hpp"

namespace moesim::cli {
namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

models::ExpertLoads read_weights(const std::string& path) {
  Json j = read_json_file(path);
  if (!j.is_array() || j.empty())
    throw ConfigError(located_message(path, "", "a non-empty array of layers, each an array of expert loads",
                                      describe_json(j)));
  models::ExpertLoads w;
  for (std::size_t l = 0; l < j.size(); ++l) {
    const Json& row = j[l];
    if (!row.is_array())
      throw ConfigError(located_message(path, "/" + std::to_string(l), "an array of expert loads", describe_json(row)));
    std::vector<double> r;
    for (std::size_t e = 0; e < row.size(); ++e) {
      if (!row[e].is_number())
        throw ConfigError(located_message(path, "/" + std::to_string(l) + "/" + std::to_string(e), "a number",
                                          describe_json(row[e])));
      r.push_back(row[e].get<double>());
    }
    w.push_back(std::move(r));
  }
  return w;
}

}  // namespace

int place_cmd(const PlaceArgs& a) {
  models::PlacementInput in;
  in.weight = read_weights(a.weights);
  in.num_replicas = a.replicas > 0 ? a.replicas : static_cast<int>(in.weight.front().size());
  in.num_groups = a.groups;
  in.num_nodes = a.nodes;
  in.num_gpus = a.gpus;
  const models::ExpertPlacement p = models::place(a.policy, in);
  const auto loads = models::gpu_loads(p, in.weight);
  if (a.format == "json") {
    Json j{{"phy2log", p.phy2log}, {"log2phy", p.log2phy}, {"logcnt", p.logcnt}};
    Json imb = Json::array();
    for (const auto& l : loads) imb.push_back(l.imbalance);
    j["gpu_max_over_mean"] = imb;
    std::cout << j.dump() << "\n";
  } else {
    std::cout << "policy " << a.policy << ": " << p.num_physical << " slots per layer on " << p.num_gpus << " GPUs ("
              << p.num_nodes << " nodes)\n";
    for (std::size_t l = 0; l < loads.size(); ++l) {
      std::cout << "layer " << l << ": per-GPU max/mean " << fmt("%.4f", loads[l].imbalance) << "  phy2log";
      for (int x : p.phy2log[l]) std::cout << " " << x;
      std::cout << "\n";
    }
  }
  return 0;
}

int replay_cmd(const std::string& trace, const std::string& format, const std::string& scenario, int max_steps,
               const std::string& out_format, const std::string& engine_kind, const Catalog& cat) {
  Json j = read_json_file(scenario);
  if (!j.is_object()) throw ConfigError(located_message(scenario, "", "a scenario object", describe_json(j)));
  // The trace replaces the scenario's routing source; its path is taken as given on the command line.
  Json& routing = j["routing"];
  if (!routing.is_object()) routing = Json::object();
  routing["mode"] = "trace";
  Json src{{"path", std::filesystem::absolute(trace).string()}, {"format", format}};
  if (routing.contains("trace") && routing["trace"].is_object())
    for (const char* k : {"model", "kind", "domain"})
      if (routing["trace"].contains(k)) src[k] = routing["trace"][k];
  routing["trace"] = src;
  Scenario s = scenario_from_json(j, scenario, cat);
  if (!engine_kind.empty()) s.engine.kind = engine_kinds().get(engine_kind);
  models::ReplayEngine engine;
  if (s.engine.kind == EngineKind::kDes) {
    // Every step and the balanced reference are simulated in this process on the same cluster (one
    // SimGrid engine, reused with clock deltas).
    const sim::StepOptions opt = sim::step_options(s.engine);
    engine.name = "des";
    engine.step = [opt](const Scenario& sc, const models::RoutingInput& in) {
      return sim::simulate_step(sc, opt, &in).result;
    };
    engine.balanced = [opt](const Scenario& sc) { return sim::simulate_step(sc, opt).result.step_time; };
  }
  const models::ReplayResult r = models::replay(s, max_steps, engine);
  if (out_format == "json") {
    Json steps = Json::array();
    for (const auto& st : r.steps)
      steps.push_back({{"step", st.step},
                       {"step_time_s", st.step_time},
                       {"rebalance_s", st.rebalance_seconds},
                       {"rebalance_bytes", st.rebalance_bytes},
                       {"max_over_mean_gpu", st.max_over_mean_gpu},
                       {"max_over_mean_expert", st.max_over_mean_expert},
                       {"dropped_fraction", st.dropped_fraction}});
    Json layers = Json::array();
    for (const auto& l : r.last.moe_layers)
      layers.push_back({{"layer", l.layer},
                        {"max_over_mean_expert", l.max_over_mean_expert},
                        {"cv_expert", l.cv_expert},
                        {"max_over_mean_gpu", l.max_over_mean_gpu},
                        {"cv_gpu", l.cv_gpu},
                        {"straggler_s", l.straggler_seconds}});
    std::cout << Json{{"schema_version", models::kResultSchemaVersion},
                      {"scenario", s.name},
                      {"trace", trace},
                      {"engine", r.engine},
                      {"placement", s.placement.policy},
                      {"mean_step_time_s", r.mean_step_time},
                      {"balanced_step_time_s", r.balanced_step_time},
                      {"steps", steps},
                      {"last_step_layers", layers}}
                     .dump(2)
              << "\n";
    return 0;
  }
  std::cout << "replay of " << trace << " through " << s.name << " (" << r.engine << " engine, placement " << s.placement.policy
            << (s.placement.redundant_experts ? " +" + std::to_string(s.placement.redundant_experts) + " redundant" : "")
            << ")\n\n";
  std::cout << std::setw(8) << "step" << std::setw(14) << "step (s)" << std::setw(16) << "rebalance (s)"
            << std::setw(15) << "GPU max/mean" << std::setw(18) << "expert max/mean" << "\n";
  for (const auto& st : r.steps)
    std::cout << std::setw(8) << st.step << std::setw(14) << fmt("%.4f", st.step_time) << std::setw(16)
              << fmt("%.4f", st.rebalance_seconds) << std::setw(15) << fmt("%.3f", st.max_over_mean_gpu) << std::setw(18)
              << fmt("%.3f", st.max_over_mean_expert) << "\n";
  std::cout << "\nmean step " << fmt("%.4f", r.mean_step_time) << " s; with perfectly balanced routing "
            << fmt("%.4f", r.balanced_step_time) << " s (" << fmt("%+.1f%%", 100 * (r.mean_step_time / r.balanced_step_time - 1))
            << ")\n\nlast step, per MoE layer:\n"
            << std::setw(8) << "layer" << std::setw(16) << "expert max/mean" << std::setw(12) << "expert CV" << std::setw(14)
            << "GPU max/mean" << std::setw(10) << "GPU CV" << std::setw(16) << "straggler (ms)" << "\n";
  for (const auto& l : r.last.moe_layers)
    std::cout << std::setw(8) << l.layer << std::setw(16) << fmt("%.3f", l.max_over_mean_expert) << std::setw(12)
              << fmt("%.3f", l.cv_expert) << std::setw(14) << fmt("%.3f", l.max_over_mean_gpu) << std::setw(10)
              << fmt("%.3f", l.cv_gpu) << std::setw(16) << fmt("%.3f", l.straggler_seconds * 1e3) << "\n";
  return 0;
}

int trace_import_cmd(const TraceImportArgs& a) {
  std::error_code ec;
  if (!a.force && std::filesystem::exists(a.output, ec))
    throw IoError(a.output + ": refusing to overwrite an existing file (use --force or another --output)");
  std::vector<traces::RoutingSample> samples;
  if (a.format == "megatron") {
    for (auto& m : traces::import_megatron_router_traces(a.input, a.experts))
      if (m.block == traces::MegatronBlock::decoder) samples.push_back(std::move(m.sample));
  } else {
    traces::CountTableQuery q;
    q.model = a.model;
    q.kind = a.kind;
    q.domain = a.domain;
    q.experts = a.experts;
    q.top_k = a.top_k;
    samples = traces::import_expert_count_table(a.input, q);
  }
  if (samples.empty()) throw ConfigError(located_message(a.input, "", "at least one routing record", "none"));
  traces::TraceHeader h;
  h.experts = a.experts;
  h.top_k = samples.front().top_k;
  h.sources = samples.front().sources;
  for (const auto& x : samples) h.layers = std::max(h.layers, x.layer + 1);
  h.model = a.model;
  h.note = "imported from " + a.input + " (" + a.format + ")";
  if (a.force) std::filesystem::remove(a.output);
  traces::TraceWriter w(a.output, h);
  for (const auto& x : samples) w.write(x);
  w.close();
  std::cerr << "moesim: wrote " << samples.size() << " records to " << a.output << "\n";
  return 0;
}

int trace_stats_cmd(const std::string& path, const std::string& format) {
  traces::TraceReader r(path);
  traces::RoutingSample x;
  Json rows = Json::array();
  if (format != "json")
    std::cout << std::setw(8) << "step" << std::setw(8) << "layer" << std::setw(12) << "slots" << std::setw(16)
              << "expert max/mean" << std::setw(10) << "CV" << std::setw(10) << "dropped" << "\n";
  while (r.next(x)) {
    const auto st = traces::expert_load_stats(x);
    if (format == "json") {
      rows.push_back({{"step", x.step}, {"layer", x.layer}, {"slots", x.slots()}, {"max_over_mean", st.max_over_mean},
                      {"cv", st.cv}, {"dropped", x.dropped}});
    } else {
      std::cout << std::setw(8) << x.step << std::setw(8) << x.layer << std::setw(12) << x.slots() << std::setw(16)
                << fmt("%.3f", st.max_over_mean) << std::setw(10) << fmt("%.3f", st.cv) << std::setw(10) << x.dropped
                << "\n";
    }
  }
  if (format == "json") std::cout << rows.dump(2) << "\n";
  return 0;
}

}  // namespace moesim::cli
