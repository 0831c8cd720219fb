#include "cli/check.hpp"

#include "models/routing_source.hpp"
#include "scenarios/error.hpp"
#include "sim/topology.hpp"

namespace moesim::cli {

void check_scenario(const Scenario& s) {
  // Routing and fabric do not depend on each other: both are checked, every problem reported.
  Problems problems;
  problems.check([&] { models::check_routing(s); });
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
}

}  // namespace moesim::cli
