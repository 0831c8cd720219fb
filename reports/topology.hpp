#pragma once
/// \file `moesim topology`: the cluster as a graph (its analyses) and the load the first MoE layer's
/// dispatch puts on its links, as a table or JSON.

#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>

#include "scenarios/scenario.hpp"
#include "sim/topology.hpp"

namespace moesim::reports {

/// One EP group's dispatch simulated alone on SimGrid (flows share links with max-min fairness).
struct SimulatedDispatch {
  double makespan = 0;          ///< s
  long long flows = 0;          ///< SimGrid flows
  bool aggregated = false;      ///< flows per node pair instead of per GPU pair
  double time_lower_bound = 0;  ///< s, the busiest link's bytes over its bandwidth
  std::string network_model;    ///< SimGrid's network model, e.g. "CM02"
};

/// The first MoE layer's dispatch, every EP group of every stage at once, on the fabric's static routes
/// (one copy per token and destination GPU).
struct DispatchLoads {
  std::string busiest_link = "none";  ///< "a -> b (kind)"
  double busiest_link_bytes = 0;
  double time_lower_bound = 0;     ///< s: ignores latency, the busiest link never idle
  double analytic_all_to_all = 0;  ///< s, the analytic network model's all-to-all of the same bytes
  std::optional<SimulatedDispatch> simulated;  ///< with `simulate`: EP group 0 of stage 0 on SimGrid
};

/// The dispatch loads of scenario `s` on `topo` (built from s.cluster); nothing when the model has no
/// experts or ep is 1. `simulate` adds the SimGrid run of one EP group.
std::optional<DispatchLoads> dispatch_loads(const Scenario& s, const sim::Topology& topo, bool simulate);

/// The graph's summary (sim::Topology::summary), then the dispatch loads.
void write_topology_table(std::ostream& out, const Scenario& s, const sim::Topology& topo,
                          const std::optional<DispatchLoads>& dispatch);

/// {"scenario", "kind", "gpus", "vertices", "links", "hops_average", "diameter", "bisection_bandwidth_Bps",
/// "dispatch"} (dispatch null without experts; seconds, bytes).
nlohmann::json topology_json(const Scenario& s, const sim::Topology& topo,
                             const std::optional<DispatchLoads>& dispatch);

}  // namespace moesim::reports
