#include "cli/check.hpp"

#include <iostream>
#include <set>
#include <string>

#include "models/routing_source.hpp"
#include "scenarios/error.hpp"
#include "sim/topology.hpp"

namespace moesim::cli {

void check_scenario(const Scenario& s) {
  models::check_routing(s);
  // The whole trace, so that one cut short or broken anywhere stops every command before it evaluates.
  const models::TraceCoverage trace = models::check_trace(s);
  static std::set<std::string> noted;  // each note once per process (compare checks every variant)
  if (!trace.note.empty() && noted.insert(trace.note).second)
    std::cerr << "moesim: note: " << trace.note << "\n";
  try {
    const sim::Topology fabric(s.cluster);
  } catch (const ConfigError& e) {
    // The topology names the cluster setting in its own terms; the scenario file and the pointer of
    // the cluster section locate it.
    throw ConfigError(s.source + ": /cluster: " + e.what());
  }
}

}  // namespace moesim::cli
