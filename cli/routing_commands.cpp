// `moesim place`, `replay` and `trace import|stats`: the commands about routing, traces and placement.
#include <filesystem>
#include <iostream>
#include <sstream>

#include "cli/check.hpp"
#include "cli/commands.hpp"
#include "models/placement.hpp"
#include "models/placement/metrics.hpp"
#include "models/replay.hpp"
#include "reports/atomic_file.hpp"
#include "reports/placement.hpp"
#include "reports/replay.hpp"
#include "reports/trace_stats.hpp"
#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"
#include "sim/step_sim.hpp"
#include "traces/import.hpp"
#include "traces/trace_format.hpp"

namespace moesim::cli {
namespace {

models::ExpertLoads read_weights(const std::string& path) {
  Json j = read_json_file(path);
  if (!j.is_array() || j.empty())
    throw ConfigError(located_message(path, "", "a non-empty array of layers, each an array of expert loads",
                                      describe_json(j)));
  models::ExpertLoads w;
  for (std::size_t l = 0; l < j.size(); ++l) {
    const Json& row = j[l];
    if (!row.is_array())
      throw ConfigError(
          located_message(path, "/" + std::to_string(l), "an array of expert loads", describe_json(row)));
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
  if (!a.output.empty()) reports::check_output_file(a.output, a.force, "-o");
  models::PlacementInput in;
  in.weight = read_weights(a.weights);
  in.num_replicas = a.replicas > 0 ? a.replicas : static_cast<int>(in.weight.front().size());
  in.num_groups = a.groups;
  in.num_nodes = a.nodes;
  in.num_gpus = a.gpus;
  const models::ExpertPlacement p = models::place(a.policy, in);
  const auto loads = models::gpu_loads(p, in.weight);
  std::ostringstream text;
  if (a.format == OutputFormat::kJson)
    text << reports::placement_json(p, loads).dump() << "\n";
  else
    reports::write_placement_table(text, a.policy, p, loads);
  if (a.output.empty()) {
    std::cout << text.str();
  } else {
    reports::write_file(a.output, text.str(), a.force, "-o");
    std::cerr << "moesim: wrote " << a.output << "\n";
  }
  return 0;
}

int replay_cmd(const std::string& trace, TraceFormat trace_format, const std::string& scenario, int max_steps,
               OutputFormat format, std::optional<EngineKind> engine_kind, const Catalog& cat) {
  Json j = read_json_file(scenario);
  if (!j.is_object()) throw ConfigError(located_message(scenario, "", "a scenario object", describe_json(j)));
  // The trace replaces the scenario's routing source; its path is taken as given on the command line.
  Json& routing = j["routing"];
  if (!routing.is_object()) routing = Json::object();
  routing["mode"] = to_string(RoutingMode::kTrace);
  Json src{{"path", std::filesystem::absolute(trace).string()}, {"format", to_string(trace_format)}};
  if (routing.contains("trace") && routing["trace"].is_object())
    for (const char* k : {"model", "kind", "domain"})
      if (routing["trace"].contains(k)) src[k] = routing["trace"][k];
  routing["trace"] = src;
  Scenario s = scenario_from_json(j, scenario, cat);
  if (engine_kind) s.engine.kind = *engine_kind;
  check_scenario(s);
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
  if (format == OutputFormat::kJson)
    std::cout << reports::replay_json(s, trace, r).dump(2) << "\n";
  else
    reports::write_replay_table(std::cout, s, trace, r);
  return 0;
}

int trace_import_cmd(const TraceImportArgs& a) {
  reports::check_output_file(a.output, a.force, "-o");
  std::vector<traces::RoutingSample> samples;
  switch (a.format) {
    case TraceFormat::kMegatron:
      for (auto& m : traces::import_megatron_router_traces(a.input, a.experts))
        if (m.block == traces::MegatronBlock::decoder) samples.push_back(std::move(m.sample));
      break;
    case TraceFormat::kCountTable: {
      traces::CountTableQuery q;
      q.model = a.model;
      q.kind = a.kind;
      q.domain = a.domain;
      q.experts = a.experts;
      q.top_k = a.top_k;
      samples = traces::import_expert_count_table(a.input, q);
      break;
    }
    case TraceFormat::kMoesim:
      throw ConfigError(
          "trace import: expected a format to convert from, found \"moesim\" (the format it writes)");
  }
  if (samples.empty()) throw ConfigError(located_message(a.input, "", "at least one routing record", "none"));
  traces::TraceHeader h;
  h.experts = a.experts;
  h.top_k = samples.front().top_k;
  h.sources = samples.front().sources;
  for (const auto& x : samples) h.layers = std::max(h.layers, x.layer + 1);
  h.model = a.model;
  h.note = "imported from " + a.input + " (" + to_string(a.format) + ")";
  // The trace is written to a temporary and renamed over the output (reports/atomic_file.hpp); a
  // directory at the output is refused above, even with --force.
  reports::OutputSet out;
  out.add_with(a.output, [&](const std::string& temporary) {
    traces::TraceWriter w(temporary, h);
    for (const auto& x : samples) w.write(x);
    w.close();
  });
  out.commit();
  std::cerr << "moesim: wrote " << samples.size() << " records to " << a.output << "\n";
  return 0;
}

int trace_stats_cmd(const std::string& path, OutputFormat format) {
  traces::TraceReader r(path);
  traces::RoutingSample x;
  reports::TraceStatsWriter out(std::cout, format);
  while (r.next(x)) out.add(x, traces::expert_load_stats(x));
  out.finish();
  return 0;
}

}  // namespace moesim::cli
