#pragma once
/// \file Step-by-step replay of recorded routing through the analytic engine, with periodic expert
/// rebalancing charged for the network cost of moving expert weights.

#include <functional>
#include <string>
#include <vector>

#include "models/result.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::models {

struct ReplayStep {
  int step = 0;                     ///< step id in the trace
  double step_time = 0;             ///< s, including any rebalancing on this step
  double rebalance_seconds = 0;     ///< s, moving expert weights before this step (0 if none)
  double rebalance_bytes = 0;       ///< bytes received by the busiest GPU when rebalancing
  double max_over_mean_gpu = 1;     ///< mean over MoE layers
  double max_over_mean_expert = 1;  ///< mean over MoE layers
  double dropped_fraction = 0;      ///< mean over MoE layers
};

/// Which engine prices each replayed step. Empty functions: the analytic engine.
struct ReplayEngine {
  std::string name = "analytic";
  /// One step of `s` routed by `in` (the step's samples and the current placement).
  std::function<Result(const Scenario& s, const RoutingInput& in)> step;
  /// The step of `s` with perfectly balanced routing (balanced_scenario).
  std::function<double(const Scenario& s)> balanced;
};

struct ReplayResult {
  std::string engine = "analytic";
  std::vector<ReplayStep> steps;
  double mean_step_time = 0;      ///< s
  double balanced_step_time = 0;  ///< s, the same scenario with perfectly balanced routing
  Result last;                    ///< full result of the last step
};

/// Replays the scenario's trace (routing.trace) step by step: each step's samples price the MoE layers;
/// a replicated placement (EPLB, greedy, co-activation) is computed from the first step's loads and,
/// when placement.rebalance_every > 0, recomputed every that many steps from the loads observed since
/// the last placement, moving the weights, master copy and optimizer states of every expert a GPU newly
/// hosts over its NIC before the step. `max_steps` > 0 stops early.
ReplayResult replay(const Scenario& s, int max_steps = 0, const ReplayEngine& engine = {});

}  // namespace moesim::models
