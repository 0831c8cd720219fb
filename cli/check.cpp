#include "cli/check.hpp"

#include <iostream>
#include <set>
#include <string>

#include "models/routing_source.hpp"
#include "models/serving.hpp"
#include "scenarios/error.hpp"
#include "sim/topology.hpp"

namespace moesim::cli {

models::RoutingInput check_scenario(const Scenario& s) {
  // Routing, the trace and the fabric do not depend on each other: all are checked, every problem reported.
  Problems problems;
  models::TraceCoverage trace;
  const bool serving = s.workload.kind == WorkloadKind::kServing;
  if (serving)
    problems.check([&] { models::check_serving(s); });
  else
    problems.check([&] { models::check_routing(s); });
  if (!serving)
    problems.check([&] {
      // The whole trace, so that one cut short or broken anywhere stops every command before it evaluates.
      trace = models::check_trace(s);
      static std::set<std::string> noted;  // each note once per process (compare checks every variant)
      if (!trace.note.empty() && noted.insert(trace.note).second)
        std::cerr << "moesim: note: " << trace.note << "\n";
    });
  problems.check([&] {
    try {
      const sim::Topology fabric(s.cluster);
    } catch (const ConfigError& e) {
      // The topology names the cluster setting in its own terms; the scenario file and the pointer of
      // the cluster section locate it.
      throw ConfigError(s.source + ": /cluster: " + e.what());
    }
  });
  problems.raise();
  if (serving) return {};  // a serving scenario's routing is per iteration (models/serving.hpp)
  return models::routing_input(s, &trace);
}

}  // namespace moesim::cli
