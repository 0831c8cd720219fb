// `moesim topology`: the cluster as a graph, its analyses, and the load the first MoE layer's
// dispatch puts on every link (reports/topology.hpp).
#include <iostream>
#include <sstream>

#include "cli/check.hpp"
#include "cli/commands.hpp"
#include "reports/atomic_file.hpp"
#include "reports/topology.hpp"
#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"
#include "sim/topology.hpp"

namespace moesim::cli {

int topology_cmd(const std::string& scenario, const std::string& dot, OutputFormat format, bool force,
                 bool simulate, const Catalog& cat) {
  if (!dot.empty()) reports::check_output_file(dot, force, "--dot");
  Scenario s = load_scenario(scenario, cat);
  check_scenario(s);
  sim::Topology topo(s.cluster);
  if (!dot.empty()) {
    std::ostringstream graph;
    topo.write_graphviz(graph);
    reports::write_file(dot, graph.str(), force, "--dot");
    std::cerr << "moesim: wrote " << dot << "\n";
  }
  const auto dispatch = reports::dispatch_loads(s, topo, simulate);
  if (format == OutputFormat::kJson)
    std::cout << reports::topology_json(s, topo, dispatch).dump(2) << "\n";
  else
    reports::write_topology_table(std::cout, s, topo, dispatch);
  return 0;
}

}  // namespace moesim::cli
