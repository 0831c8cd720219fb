// `moesim plan`: the cheapest layouts and cluster sizes for a training target (plan/, docs/plan.md).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <tuple>

#include "cli/check.hpp"
#include "cli/commands.hpp"
#include "cli/des_process.hpp"
#include "cli/errors.hpp"
#include "models/analytic.hpp"
#include "plan/plan_file.hpp"
#include "plan/report.hpp"
#include "plan/search.hpp"
#include "plan/uncertainty.hpp"
#include "reports/accuracy.hpp"
#include "reports/atomic_file.hpp"
#include "scenarios/loader.hpp"

namespace moesim::cli {

namespace {

// Every validation scenario of `dir` (published runs) against the analytic engine: published / predicted
// time, from the step time where the run publishes one, else from tokens/s per GPU. Runs the engine
// predicts not to fit are left out (the accuracy table counts them as failures).
std::vector<plan::TimeRatio> measured_time_ratios(const std::string& dir, const Catalog& cat) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path().string());
  if (ec)
    throw IoError(located_message(dir, "--validation", "a folder of validation scenarios", ec.message()));
  std::sort(files.begin(), files.end());
  std::vector<plan::TimeRatio> out;
  for (const auto& f : files) {
    const Scenario s = load_scenario(f, cat);
    if (s.workload.kind == WorkloadKind::kServing) continue;  // training step times only
    const models::RoutingInput routing = check_scenario(s);
    const models::Result a = models::evaluate_analytic(s, routing);
    const auto rows = reports::end_to_end_rows(s, &a, nullptr);
    const reports::AccuracyRow* step = nullptr;
    const reports::AccuracyRow* rate = nullptr;
    for (const auto& r : rows) {
      if (r.group != reports::AccuracyGroup::kEndToEnd || !r.analytic_ok || !(r.analytic > 0)) continue;
      if (r.quantity == "step_time") step = &r;
      if (r.quantity == "tokens_per_s_per_gpu") rate = &r;
    }
    if (step)
      out.push_back({s.name, step->published / step->analytic});
    else if (rate)
      out.push_back({s.name, rate->analytic / rate->published});
  }
  return out;
}

}  // namespace

int plan_cmd(const std::string& path, OutputFormat format, const std::string& output,
             const ReportTarget& report, bool force, int jobs, int confirm, const std::string& validation_dir,
             const Catalog& cat) {
  if (!output.empty()) reports::check_output_file(output, force, "--output");
  const std::optional<reports::VegaBundle> vega = prepare_report(report);
  const plan::PlanSpec p = plan::read_plan(path, cat);
  // The base scenario's routing, trace and fabric are checked once, with its own layout: a bad trace is
  // reported here rather than as every candidate being invalid.
  check_scenario(p.base);
  // Sampled and recorded routing depend on the expert-parallel layout: resolved once per cluster, size
  // and EP degree.
  std::map<std::tuple<std::string, int, int>, std::unique_ptr<models::RoutingInput>> routings;
  std::mutex routings_mutex;
  plan::RoutingFor routing;
  if (p.base.routing.mode != RoutingMode::kExpected)
    routing = [&](const Scenario& s) -> const models::RoutingInput* {
      const std::lock_guard<std::mutex> lock(routings_mutex);
      auto& slot = routings[{s.cluster.name, s.cluster.gpus(), s.parallelism.ep}];
      if (!slot) slot = std::make_unique<models::RoutingInput>(check_scenario(s));
      return slot.get();
    };
  const auto t0 = std::chrono::steady_clock::now();
  if (jobs <= 0) jobs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  plan::PlanResult r = plan::search(p, routing, jobs);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::cerr << "moesim: plan: " << r.counts.enumerated << " layouts enumerated, " << r.counts.evaluated
            << " evaluated in " << wall << " s on " << jobs << " thread" << (jobs > 1 ? "s" : "") << "\n";
  // The best plans again with the discrete-event engine, one child process at a time (SimGrid runs one
  // engine per process).
  for (int i = 0; i < std::min<int>(confirm, static_cast<int>(r.best.size())); ++i) {
    plan::Candidate& c = r.best[i];
    Scenario d = plan::scenario_of(p, c);
    d.engine.kind = EngineKind::kDes;
    std::cerr << "moesim: plan: confirming plan " << i + 1 << " with the discrete-event engine\n";
    try {
      c.des_step_time_s = evaluate_des_isolated(d).step_time;
      ++r.counts.confirmed;
    } catch (const std::exception& e) {
      c.des_note = "the discrete-event engine failed: " + error_line(e);
    }
  }
  if (!validation_dir.empty()) r.error_bars = plan::error_bars(measured_time_ratios(validation_dir, cat));
  if (!r.best.empty()) {
    const Scenario best = plan::scenario_of(p, r.best[0]);
    r.sensitivity = plan::sensitivity(p, r.best[0], routing ? routing(best) : nullptr);
  }
  std::ostringstream text;
  switch (format) {
    case OutputFormat::kJson:
      text << plan::plan_json(p, r).dump(2) << "\n";
      break;
    case OutputFormat::kCsv:
      plan::write_plan_csv(text, p, r);
      break;
    default:
      plan::write_plan_table(text, p, r);
      break;
  }
  if (output.empty()) {
    std::cout << text.str();
  } else {
    reports::write_file(output, text.str(), force, "--output");
    std::cerr << "moesim: wrote " << output << "\n";
  }
  if (vega) finish_report(report, *vega, plan::plan_json(p, r).dump(2) + "\n");
  return 0;
}

}  // namespace moesim::cli
