#include "models/replay.hpp"

#include <algorithm>
#include <numeric>

#include "models/analytic.hpp"
#include "models/placement.hpp"
#include "models/placement/metrics.hpp"
#include "models/routing_source.hpp"
#include "scenarios/error.hpp"

namespace moesim::models {

ReplayResult replay(const Scenario& s, int max_steps, const ReplayEngine& engine) {
  if (s.routing.mode != RoutingMode::kTrace)
    throw ConfigError(located_message(s.source, "/routing/mode",
                                      "\"trace\" (with a routing.trace source) to replay",
                                      std::string("\"") + to_string(s.routing.mode) + "\""));
  check_routing(s);
  ReplayResult out;
  out.engine = engine.name;
  auto cm = make_compute_cost_model(s);
  NetworkModel net(s.cluster);
  const ParamCounts pc = count_params(s.model);
  // Bytes that follow an expert when it moves: BF16 weights, the FP32 master copy and two Adam moments.
  const double state_b = bytes_of(s.workload.optimizer_state_dtype);
  const double expert_bytes =
      pc.expert / s.parallelism.etp * (2.0 + (s.workload.master_weights ? 4.0 : 0.0) + 2 * state_b);
  const bool replicated =
      placement_policies().get(s.placement.policy).load_aware || s.placement.redundant_experts > 0;

  PlacementResult current;
  ExpertLoads window;
  int since = 0, index = 0;
  for_each_trace_step(s, max_steps, [&](int step, std::vector<traces::RoutingSample>& samples) {
    ReplayStep rs;
    rs.step = step;
    const ExpertLoads loads = layer_loads(s, &samples);
    if (replicated &&
        (index == 0 || (s.placement.rebalance_every > 0 && since >= s.placement.rebalance_every))) {
      PlacementResult next = place_for(s, index == 0 ? loads : window, &samples);
      if (index > 0) {
        const auto moved = rebalance_bytes(current.placement, next.placement, expert_bytes);
        rs.rebalance_bytes = moved.empty() ? 0.0 : *std::max_element(moved.begin(), moved.end());
        rs.rebalance_seconds =
            rs.rebalance_bytes > 0 ? net.send_recv(rs.rebalance_bytes, ep_nodes(s) > 1) : 0.0;
      }
      current = std::move(next);
      since = 0;
      window.assign(loads.size(), std::vector<double>(loads.empty() ? 0 : loads[0].size(), 0.0));
    }
    if (window.empty())
      window.assign(loads.size(), std::vector<double>(loads.empty() ? 0 : loads[0].size(), 0.0));
    for (std::size_t l = 0; l < loads.size(); ++l)
      for (std::size_t e = 0; e < loads[l].size(); ++e) window[l][e] += loads[l][e];
    ++since;

    RoutingInput in;
    in.samples = std::move(samples);
    in.slot_maps = current.slot_maps;
    Result r = engine.step ? engine.step(s, in) : evaluate_analytic(s, build_workload(s, *cm, net, &in));
    rs.step_time = r.step_time + rs.rebalance_seconds;
    rs.max_over_mean_gpu = r.moe_max_over_mean_gpu;
    rs.dropped_fraction = r.moe_dropped_fraction;
    double expert = 0;
    for (const auto& l : r.moe_layers) expert += l.max_over_mean_expert;
    rs.max_over_mean_expert = r.moe_layers.empty() ? 1.0 : expert / r.moe_layers.size();
    out.steps.push_back(rs);
    out.last = std::move(r);
    ++index;
  });
  if (out.steps.empty())
    throw ConfigError(located_message(s.source, "/routing/trace", "a trace with at least one step", "none"));
  double sum = 0;
  for (const auto& st : out.steps) sum += st.step_time;
  out.mean_step_time = sum / out.steps.size();
  out.balanced_step_time = engine.balanced ? engine.balanced(balanced_scenario(s)) : balanced_step_time(s);
  out.last.balanced_step_time = out.balanced_step_time;
  return out;
}

}  // namespace moesim::models
