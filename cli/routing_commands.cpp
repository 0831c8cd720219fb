// `moesim place`, `replay` and `trace import|stats`: the commands about routing, traces and placement.
#include <cstdio>
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
#include "traces/requests.hpp"
#include "traces/trace_format.hpp"

namespace moesim::cli {
int place_cmd(const PlaceArgs& a) {
  if (!a.output.empty()) reports::check_output_file(a.output, a.force, "-o");
  models::PlacementInput in;
  in.weight = traces::read_expert_loads(a.weights);
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
               OutputFormat format, const ReportTarget& report, std::optional<EngineKind> engine_kind,
               const Catalog& cat) {
  const std::optional<reports::VegaBundle> vega = prepare_report(report);  // refuse before any work
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
  if (vega) finish_report(report, *vega, reports::replay_json(s, trace, r).dump(2) + "\n");
  return 0;
}

int trace_import_cmd(const TraceImportArgs& a) {
  reports::check_output_file(a.output, a.force, "-o");
  traces::ImportSpec spec;
  spec.format = a.format;
  spec.path = a.input;
  spec.experts = a.experts;
  spec.top_k = a.top_k;
  spec.model = a.model;
  spec.kind = a.kind;
  spec.domain = a.domain;
  const std::vector<traces::RoutingSample> samples = traces::import_samples(spec);
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

int trace_upgrade_cmd(const std::string& input, const std::string& output, bool force) {
  reports::check_output_file(output, force, "-o");
  int64_t records = 0;
  reports::OutputSet out;  // written to a temporary, renamed over the output (reports/atomic_file.hpp)
  out.add_with(output,
               [&](const std::string& temporary) { records = traces::upgrade_trace(input, temporary); });
  out.commit();
  std::cerr << "moesim: wrote " << records << " records to " << output << " (version "
            << traces::kTraceFormatVersion << "); version 1 has no end record, so check that " << input
            << " was whole\n";
  return 0;
}

int generate_requests_cmd(const GenerateRequestsArgs& a) {
  traces::RequestGeneratorSpec spec = a.spec;
  spec.input = traces::parse_length_dist(a.input, "--input-tokens");
  spec.output = traces::parse_length_dist(a.output_dist, "--output-tokens");
  reports::check_output_file(a.output, a.force, "-o");
  const std::vector<traces::Request> requests = traces::generate_requests(spec);
  reports::OutputSet out;
  out.add(a.output, traces::request_trace_csv(requests));
  out.commit();
  std::cerr << "moesim: wrote " << requests.size() << " requests to " << a.output << "\n";
  return 0;
}

int request_trace_cmd(const std::string& path, traces::RequestFormat format, bool skip_failed,
                      OutputFormat out) {
  const traces::RequestTrace t = traces::read_request_trace(path, format, skip_failed);
  const traces::RequestStats s = traces::request_stats(t.requests);
  const auto lengths = [](const traces::RequestStats::Lengths& l) {
    return Json{{"mean", l.mean}, {"p50", l.p50}, {"p90", l.p90}, {"p99", l.p99}, {"max", l.max}};
  };
  if (out == OutputFormat::kJson) {
    Json j = {{"file", path},
              {"format", moesim::to_string(t.format)},
              {"requests", s.requests},
              {"skipped_failed", t.skipped_failed},
              {"duration_s", s.duration_s},
              {"rate_per_s", s.rate_per_s},
              {"interarrival_cv", s.interarrival_cv},
              {"cached_share", s.cached_share},
              {"prefixes", s.prefixes},
              {"requests_with_prefix", s.with_prefix},
              {"input_tokens", lengths(s.input)},
              {"output_tokens", lengths(s.output)}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  char buf[256];
  std::cout << path << " (" << moesim::to_string(t.format) << "): " << s.requests << " requests";
  if (t.skipped_failed > 0) std::cout << " (failed requests skipped: " << t.skipped_failed << ")";
  std::snprintf(buf, sizeof buf, "\n  over %.6g s: %.6g requests/s, inter-arrival CV %.3g (1: Poisson)\n",
                s.duration_s, s.rate_per_s, s.interarrival_cv);
  std::cout << buf;
  std::snprintf(buf, sizeof buf, "  %-14s %10s %10s %10s %10s %10s\n", "tokens", "mean", "p50", "p90", "p99",
                "max");
  std::cout << buf;
  for (const auto& [name, l] : {std::pair{"input", &s.input}, std::pair{"output", &s.output}}) {
    std::snprintf(buf, sizeof buf, "  %-14s %10.1f %10.0f %10.0f %10.0f %10.0f\n", name, l->mean, l->p50,
                  l->p90, l->p99, l->max);
    std::cout << buf;
  }
  std::snprintf(buf, sizeof buf, "  prefix-cache share of input tokens: %.1f%%\n", 100.0 * s.cached_share);
  std::cout << buf;
  if (s.prefixes > 0) {
    std::snprintf(buf, sizeof buf, "  shared prefixes (prefix_id): %lld, named by %lld requests\n",
                  static_cast<long long>(s.prefixes), static_cast<long long>(s.with_prefix));
    std::cout << buf;
  }
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
