#include "reports/serving.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <limits>
#include <sstream>

#include "reports/atomic_file.hpp"
#include "reports/context.hpp"
#include "reports/internal/format.hpp"
#include "reports/output_dir.hpp"
#include "scenarios/error.hpp"

namespace moesim::reports {
namespace {

using internal::fmt;

std::string ms(double v) {
  if (std::isinf(v)) return "unbounded";
  return std::isfinite(v) ? fmt("%.2f ms", v * 1e3) : "-";
}

}  // namespace

nlohmann::json finite_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
}

nlohmann::json latency_json(const models::LatencyStats& l) {
  return {{"mean", finite_or_null(l.mean)},
          {"p50", finite_or_null(l.p50)},
          {"p90", finite_or_null(l.p90)},
          {"p99", finite_or_null(l.p99)}};
}

nlohmann::json serving_json(const Scenario& s, const models::ServingResult& r) {
  nlohmann::json j;
  j["schema_version"] = models::kResultSchemaVersion;
  j["kind"] = "serving";
  j["scenario"] = r.scenario;
  j["source"] = s.source;
  j["model"] = s.model.name;
  j["engine"] = r.engine;
  j["fidelity"] = r.fidelity;
  j["cost_model"] = r.cost_model;
  j["seed"] = r.seed;
  j["feasible"] = r.feasible;
  if (!r.feasible) j["infeasible_reason"] = r.infeasible_reason;
  j["saturated"] = r.saturated;
  if (r.saturated) j["saturation"] = r.saturation;
  if (!r.caveat.empty()) j["caveat"] = r.caveat;
  j["gpus"] = r.gpus;
  j["nodes"] = r.nodes;
  j["load"] = {{"requests", r.requests},
               {"offered_requests_per_s", r.offered_rate},
               {"mean_input_tokens", r.mean_input},
               {"mean_output_tokens", r.mean_output},
               {"mean_cached_tokens", r.mean_cached},
               {"duration_s", r.duration}};
  if (r.window_until > 0) j["load"]["window_s"] = {r.window_from, r.window_until};
  if (!std::isnan(r.prefix_hit_rate)) j["load"]["prefix_hit_rate"] = r.prefix_hit_rate;
  if (!std::isnan(r.prefix_token_hit_rate)) j["load"]["prefix_token_hit_rate"] = r.prefix_token_hit_rate;
  j["latency"] = {
      {"ttft_s", latency_json(r.ttft)}, {"tpot_s", latency_json(r.tpot)}, {"e2e_s", latency_json(r.e2e)}};
  const double per_node = r.nodes > 0 ? 1.0 / r.nodes : 0.0;
  j["throughput"] = {{"requests_per_s", r.requests_per_s},
                     {"input_tokens_per_s", r.input_tokens_per_s},
                     {"output_tokens_per_s", r.output_tokens_per_s},
                     {"input_tokens_per_s_per_gpu", r.input_tokens_per_s_per_gpu},
                     {"output_tokens_per_s_per_gpu", r.output_tokens_per_s_per_gpu},
                     {"output_tokens_per_s_per_node", r.output_tokens_per_s * per_node}};
  j["slo"] = {{"ttft_s", s.serving.ttft_slo > 0 ? nlohmann::json(s.serving.ttft_slo) : nlohmann::json()},
              {"tpot_s", s.serving.tpot_slo > 0 ? nlohmann::json(s.serving.tpot_slo) : nlohmann::json()},
              {"attainment", r.slo_attainment},
              {"goodput_requests_per_s", r.goodput_requests_per_s}};
  j["all_to_all_share"] = r.all_to_all_share;
  j["decode_comm_bound_tpot_s"] = r.decode_comm_bound_tpot;
  nlohmann::json inst = nlohmann::json::array();
  for (const auto& i : r.instances)
    inst.push_back({{"role", to_string(i.role)},
                    {"gpu", i.gpu},
                    {"count", i.count},
                    {"gpus", i.gpus},
                    {"dp", i.dp},
                    {"decode_batch", i.decode_batch},
                    {"prefill_tokens", i.prefill_tokens},
                    {"iteration_s", i.iteration.seconds},
                    {"compute_s", i.iteration.compute},
                    {"exposed_comm_s", i.iteration.exposed_comm},
                    {"scheduler_s", i.iteration.scheduler},
                    {"all_to_all_s", i.iteration.all_to_all},
                    {"attention_s", i.iteration.attention},
                    {"experts_s", i.iteration.experts},
                    {"max_over_mean_gpu", i.iteration.max_over_mean_gpu},
                    {"utilization", finite_or_null(i.utilization)},
                    {"kv_capacity_tokens", i.kv_capacity_tokens},
                    {"kv_used_tokens", i.kv_used_tokens},
                    {"weight_bytes_per_gpu", i.weight_bytes},
                    {"workspace_bytes_per_gpu", i.workspace_bytes},
                    {"kv_bytes_per_token_per_gpu", i.kv_bytes_per_token},
                    {"state_bytes_per_sequence_per_gpu", i.state_bytes_per_sequence},
                    {"state_tokens_per_sequence", i.state_tokens_per_sequence},
                    {"input_tokens_per_s_per_gpu", i.input_tokens_per_s_per_gpu},
                    {"output_tokens_per_s_per_gpu", i.output_tokens_per_s_per_gpu},
                    {"rebalances", i.rebalances},
                    {"rebalance_s", i.rebalance_seconds}});
  for (std::size_t k = 0; k < r.instances.size(); ++k) {
    nlohmann::json ops = nlohmann::json::object();
    for (const auto& [name, sec] : r.instances[k].iteration.ops) ops[name] = sec;
    inst[k]["iteration_ops_s"] = ops;
  }
  j["instances"] = inst;
  nlohmann::json kv = nlohmann::json::array(), load = nlohmann::json::array();
  for (const auto& [t, v] : r.kv_usage) kv.push_back({t, v});
  for (const auto& [t, v] : r.expert_load) load.push_back({t, v});
  j["kv_usage"] = kv;
  j["expert_load"] = load;
  return j;
}

models::ServingResult serving_result_from_json(const nlohmann::json& j, const std::string& what) {
  const auto at = [&](const std::string& ptr) -> const nlohmann::json& {
    const nlohmann::json::json_pointer p(ptr);
    if (!j.contains(p)) throw ParseError(what + ": " + ptr + ": expected a value, found nothing");
    return j.at(p);
  };
  const auto num = [&](const std::string& ptr) {
    const nlohmann::json& v = at(ptr);
    if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
    if (!v.is_number()) throw ParseError(what + ": " + ptr + ": expected a number, found " + v.dump());
    return v.get<double>();
  };
  const auto lat = [&](const std::string& ptr) {
    return models::LatencyStats{num(ptr + "/mean"), num(ptr + "/p50"), num(ptr + "/p90"), num(ptr + "/p99")};
  };
  models::ServingResult r;
  r.scenario = at("/scenario").get<std::string>();
  r.engine = at("/engine").get<std::string>();
  r.feasible = at("/feasible").get<bool>();
  if (!r.feasible) r.infeasible_reason = at("/infeasible_reason").get<std::string>();
  r.saturated = at("/saturated").get<bool>();
  if (r.saturated) r.saturation = at("/saturation").get<std::string>();
  if (j.contains("caveat")) r.caveat = at("/caveat").get<std::string>();
  r.gpus = static_cast<int>(num("/gpus"));
  r.nodes = static_cast<int>(num("/nodes"));
  r.ttft = lat("/latency/ttft_s");
  r.tpot = lat("/latency/tpot_s");
  r.e2e = lat("/latency/e2e_s");
  r.requests = static_cast<int64_t>(num("/load/requests"));
  r.offered_rate = num("/load/offered_requests_per_s");
  r.duration = num("/load/duration_s");
  if (j.contains(nlohmann::json::json_pointer("/load/window_s"))) {
    r.window_from = num("/load/window_s/0");
    r.window_until = num("/load/window_s/1");
  }
  if (j.contains(nlohmann::json::json_pointer("/load/prefix_hit_rate")))
    r.prefix_hit_rate = num("/load/prefix_hit_rate");
  if (j.contains(nlohmann::json::json_pointer("/load/prefix_token_hit_rate")))
    r.prefix_token_hit_rate = num("/load/prefix_token_hit_rate");
  r.requests_per_s = num("/throughput/requests_per_s");
  r.input_tokens_per_s = num("/throughput/input_tokens_per_s");
  r.output_tokens_per_s = num("/throughput/output_tokens_per_s");
  r.slo_attainment = num("/slo/attainment");
  r.goodput_requests_per_s = num("/slo/goodput_requests_per_s");
  r.output_tokens_per_s_per_gpu = num("/throughput/output_tokens_per_s_per_gpu");
  r.input_tokens_per_s_per_gpu = num("/throughput/input_tokens_per_s_per_gpu");
  const nlohmann::json& inst = at("/instances");
  for (std::size_t i = 0; i < inst.size(); ++i) {
    const std::string p = "/instances/" + std::to_string(i);
    models::InstanceResult ir;
    const std::string role = at(p + "/role").get<std::string>();
    const ServingRole* known = serving_roles().find(role);
    if (known == nullptr)
      throw ParseError(what + ": " + p + "/role: expected a serving role, found \"" + role + "\"");
    ir.role = *known;
    ir.count = static_cast<int>(num(p + "/count"));
    ir.gpus = static_cast<int>(num(p + "/gpus"));
    ir.input_tokens_per_s_per_gpu = num(p + "/input_tokens_per_s_per_gpu");
    ir.output_tokens_per_s_per_gpu = num(p + "/output_tokens_per_s_per_gpu");
    ir.rebalances = static_cast<int>(num(p + "/rebalances"));
    ir.rebalance_seconds = num(p + "/rebalance_s");
    r.instances.push_back(ir);
  }
  return r;
}

void write_serving_table(std::ostream& out, const Scenario& s, const models::ServingResult& r) {
  out << "moesim " << version() << "  scenario: " << s.name << "  engine: " << r.engine << "\n";
  out << "  model " << s.model.name << " | " << r.gpus << " GPUs (" << r.nodes << " nodes) | "
      << to_string(s.workload.precision) << ", KV " << to_string(s.serving.kv_dtype) << "\n";
  out << "  cost model: " << r.cost_model << " | fidelity: " << r.fidelity << " | seed " << r.seed << "\n";
  if (!r.feasible) out << "  INFEASIBLE: " << r.infeasible_reason << "\n";
  if (r.saturated) out << "  SATURATED (queues grow): " << r.saturation << "\n";
  if (!r.caveat.empty()) out << "  NOTE: " << r.caveat << "\n";
  out << "  load: " << r.requests << " requests at " << fmt("%.4g", r.offered_rate) << " req/s, mean input "
      << fmt("%.0f", r.mean_input) << " (cached " << fmt("%.0f", r.mean_cached) << "), output "
      << fmt("%.0f", r.mean_output) << " tokens";
  if (r.window_until > 0)
    out << "; measured from " << fmt("%.4g", r.window_from) << " to " << fmt("%.4g", r.window_until)
        << " s after the first arrival";
  if (!std::isnan(r.prefix_hit_rate))
    out << "; prefix cache per rank: " << fmt("%.1f%%", 100 * r.prefix_hit_rate) << " of prefixes hit ("
        << fmt("%.1f%%", 100 * r.prefix_token_hit_rate) << " of cached tokens)";
  out << "\n\n";
  auto row = [&](const std::string& name, const std::string& a, const std::string& b = "",
                 const std::string& c = "", const std::string& d = "") {
    out << "  " << std::left << std::setw(30) << name << std::right << std::setw(12) << a << std::setw(12)
        << b << std::setw(12) << c << std::setw(12) << d << "\n";
  };
  row("latency", "mean", "p50", "p90", "p99");
  for (const auto& [name, l] : {std::pair{"TTFT", r.ttft}, {"TPOT", r.tpot}, {"end-to-end", r.e2e}})
    row(name, ms(l.mean), ms(l.p50), ms(l.p90), ms(l.p99));
  out << "\n";
  row("throughput", "total", "per GPU", "per node");
  const double n = r.nodes > 0 ? r.nodes : 1;
  row("requests/s", fmt("%.4g", r.requests_per_s));
  row("input tokens/s", fmt("%.4g", r.input_tokens_per_s), fmt("%.4g", r.input_tokens_per_s_per_gpu),
      fmt("%.4g", r.input_tokens_per_s / n));
  row("output tokens/s", fmt("%.4g", r.output_tokens_per_s), fmt("%.4g", r.output_tokens_per_s_per_gpu),
      fmt("%.4g", r.output_tokens_per_s / n));
  row("goodput (requests/s in SLO)", fmt("%.4g", r.goodput_requests_per_s), "", "",
      fmt("%.1f%% in SLO", 100 * r.slo_attainment));
  out << "\n";
  for (const auto& i : r.instances) {
    out << "  " << to_string(i.role) << " x" << i.count << ": " << i.gpus << " x " << i.gpu << ", DP " << i.dp
        << " | batch " << fmt("%.1f", i.decode_batch) << " seqs + " << fmt("%.0f", i.prefill_tokens)
        << " prompt tokens per DP rank | iteration " << ms(i.iteration.seconds) << " | utilisation "
        << fmt("%.1f%%", 100 * i.utilization) << "\n";
    out << "    compute " << ms(i.iteration.compute) << " (attention " << ms(i.iteration.attention)
        << ", experts " << ms(i.iteration.experts) << "), exposed communication "
        << ms(i.iteration.exposed_comm) << ", expert all-to-all " << ms(i.iteration.all_to_all)
        << ", expert load max/mean " << fmt("%.3f", i.iteration.max_over_mean_gpu)
        << (i.iteration.scheduler > 0 ? ", scheduler (CPU) " + ms(i.iteration.scheduler) : std::string())
        << (i.rebalances > 0 ? ", " + std::to_string(i.rebalances) + " online EPLB rebalances (" +
                                   fmt("%.3f", i.rebalance_seconds) + " s paused moving expert weights)"
                             : std::string())
        << "\n";
    if (!i.iteration.ops.empty()) {
      auto ops = i.iteration.ops;
      std::stable_sort(ops.begin(), ops.end(),
                       [](const auto& a, const auto& b) { return a.second > b.second; });
      out << "    largest ops:";
      for (std::size_t k = 0; k < std::min<std::size_t>(6, ops.size()); ++k)
        out << (k ? ", " : " ") << ops[k].first << " " << ms(ops[k].second);
      out << "\n";
    }
    out << "    throughput per GPU: " << fmt("%.4g", i.input_tokens_per_s_per_gpu) << " input, "
        << fmt("%.4g", i.output_tokens_per_s_per_gpu) << " output tokens/s; per node ("
        << s.cluster.gpus_per_node
        << " GPUs): " << fmt("%.4g", i.input_tokens_per_s_per_gpu * s.cluster.gpus_per_node) << " input, "
        << fmt("%.4g", i.output_tokens_per_s_per_gpu * s.cluster.gpus_per_node) << " output\n";
    out << "    per GPU: weights " << fmt("%.1f", i.weight_bytes / 1e9) << " GB, workspace "
        << fmt("%.1f", i.workspace_bytes / 1e9) << " GB, KV " << fmt("%.0f", i.kv_bytes_per_token)
        << " B/token; KV capacity " << fmt("%.0f", i.kv_capacity_tokens) << " tokens per DP rank, in use "
        << fmt("%.0f", i.kv_used_tokens) << "\n";
    if (i.state_bytes_per_sequence > 0)
      out << "    recurrent state per sequence: " << fmt("%.2f", i.state_bytes_per_sequence / 1e6)
          << " MB per GPU, " << fmt("%.0f", i.state_tokens_per_sequence) << " tokens of the KV cache\n";
  }
  if (r.decode_comm_bound_tpot > 0)
    out << "\n  decode all-to-all bound: " << ms(r.decode_comm_bound_tpot) << " per output token ("
        << fmt("%.1f%%", 100 * r.all_to_all_share) << " of a decode iteration is expert all-to-all)\n";
}

void write_serving_csv(std::ostream& out, const models::ServingResult& r) {
  out << "schema_version,scenario,engine,feasible,saturated,gpus,requests,offered_requests_per_s,ttft_mean_s,"
         "ttft_p50_s,ttft_p90_s,ttft_p99_s,tpot_mean_s,tpot_p50_s,tpot_p90_s,tpot_p99_s,e2e_mean_s,e2e_p99_s,"
         "requests_per_s,output_tokens_per_s_per_gpu,input_tokens_per_s_per_gpu,goodput_requests_per_s,"
         "slo_attainment\n";
  const auto v = [](double x) {
    std::ostringstream o;
    if (std::isfinite(x)) o << std::setprecision(10) << x;
    return o.str();
  };
  out << models::kResultSchemaVersion << "," << r.scenario << "," << r.engine << "," << (r.feasible ? 1 : 0)
      << "," << (r.saturated ? 1 : 0) << "," << r.gpus << "," << r.requests << "," << v(r.offered_rate) << ","
      << v(r.ttft.mean) << "," << v(r.ttft.p50) << "," << v(r.ttft.p90) << "," << v(r.ttft.p99) << ","
      << v(r.tpot.mean) << "," << v(r.tpot.p50) << "," << v(r.tpot.p90) << "," << v(r.tpot.p99) << ","
      << v(r.e2e.mean) << "," << v(r.e2e.p99) << "," << v(r.requests_per_s) << ","
      << v(r.output_tokens_per_s_per_gpu) << "," << v(r.input_tokens_per_s_per_gpu) << ","
      << v(r.goodput_requests_per_s) << "," << v(r.slo_attainment) << "\n";
}

std::vector<std::string> serving_output_files(const std::vector<OutputFormat>& formats, bool des) {
  const auto has = [&](OutputFormat f) {
    return std::find(formats.begin(), formats.end(), f) != formats.end();
  };
  std::vector<std::string> names{"scenario.resolved.json", "result.json"};
  if (has(OutputFormat::kCsv)) names.push_back("summary.csv");
  if (has(OutputFormat::kTable)) names.push_back("summary.txt");
  if (des) {
    names.push_back("requests.csv");
    names.push_back("kv_usage.csv");
  }
  return names;
}

void write_serving_outputs(const std::string& dir, const Scenario& s, const models::ServingResult& r,
                           bool force, const std::string& option,
                           const std::vector<models::ServedRequest>* requests) {
  namespace fs = std::filesystem;
  const std::vector<std::string> names = serving_output_files(s.outputs.formats, requests != nullptr);
  check_run_outputs(dir, names, force, option);
  OutputSet set;
  const fs::path d(dir);
  for (const std::string& n : names) {
    std::ostringstream text;
    if (n == "scenario.resolved.json") text << s.resolved.dump(2) << "\n";
    if (n == "result.json") text << serving_json(s, r).dump(2) << "\n";
    if (n == "summary.csv") write_serving_csv(text, r);
    if (n == "summary.txt") write_serving_table(text, s, r);
    if (n == "requests.csv") {
      text
          << "request,arrival_s,first_token_s,finish_s,ttft_s,e2e_s,input_tokens,output_tokens,cached_tokens,"
             "instance,preemptions\n"
          << std::setprecision(10);
      for (std::size_t i = 0; i < requests->size(); ++i) {
        const models::ServedRequest& q = (*requests)[i];
        text << i << "," << q.arrival << "," << q.first_token << "," << q.finish << ","
             << q.first_token - q.arrival << "," << q.finish - q.arrival << "," << q.input << "," << q.output
             << "," << q.cached << "," << q.instance << "," << q.preemptions << "\n";
      }
    }
    if (n == "kv_usage.csv") {
      text << "time_s,kv_tokens_per_dp_rank\n" << std::setprecision(10);
      for (const auto& [t, v] : r.kv_usage) text << t << "," << v << "\n";
    }
    set.add((d / n).string(), text.str());
  }
  for (const auto& n : known_output_files())
    if (std::find(names.begin(), names.end(), n) == names.end()) set.remove_on_commit((d / n).string());
  set.commit();
  std::string written;
  for (const auto& n : names) written += (written.empty() ? "" : ",") + n;
  std::cerr << "moesim: wrote " << d.string() << "/{" << written << "}\n";
}

}  // namespace moesim::reports
