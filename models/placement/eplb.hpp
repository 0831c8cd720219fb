#pragma once
/// \file DeepSeek EPLB (github.com/deepseek-ai/EPLB, eplb.py) as published, and the load-aware greedy
/// (LPT) packing built from its replica rule. Both are registered placement policies ("eplb", "greedy";
/// models/placement.hpp); this header adds the reference's own entry point.

#include "models/placement.hpp"

namespace moesim::models {

/// DeepSeek EPLB (eplb.py, rebalance_experts): the hierarchical policy when num_groups % num_nodes == 0
/// (groups packed onto nodes, experts replicated within nodes, replicas packed onto GPUs), otherwise the
/// global policy (replicate over all experts, pack onto all GPUs). Reproduces the reference's choices,
/// ties included. `weight`: layers × logical experts [any non-negative unit]; `num_replicas`: physical
/// slots per layer. Same as place("eplb", ...), and throws ConfigError as it does.
ExpertPlacement rebalance_experts(const ExpertLoads& weight, int num_replicas, int num_groups, int num_nodes,
                                  int num_gpus);

}  // namespace moesim::models
