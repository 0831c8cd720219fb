// `moesim plan`: the cheapest layouts and cluster sizes for a training target (plan/, docs/plan.md).
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <tuple>

#include "cli/check.hpp"
#include "cli/commands.hpp"
#include "plan/plan_file.hpp"
#include "plan/report.hpp"
#include "plan/search.hpp"
#include "reports/atomic_file.hpp"

namespace moesim::cli {

int plan_cmd(const std::string& path, OutputFormat format, const std::string& output, bool force, int jobs,
             const Catalog& cat) {
  if (!output.empty()) reports::check_output_file(output, force, "--output");
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
  const plan::PlanResult r = plan::search(p, routing, jobs);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::cerr << "moesim: plan: " << r.counts.enumerated << " layouts enumerated, " << r.counts.evaluated
            << " evaluated in " << wall << " s on " << jobs << " thread" << (jobs > 1 ? "s" : "") << "\n";
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
  return 0;
}

}  // namespace moesim::cli
