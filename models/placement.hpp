#pragma once
/// \file Expert placement: which expert-parallel rank holds each expert, registered by name. A placement
/// policy fills the physical expert slots of every MoE layer, with redundant experts where it is
/// load-aware: DeepSeek EPLB and load-aware greedy packing (models/placement/eplb.hpp), co-activation-aware
/// partitioning (models/placement/coactivation.hpp), and the no-replica contiguous / round-robin layouts
/// (here). What a placement implies, per-GPU loads and weight traffic: models/placement/metrics.hpp.
///
/// Layout convention (the same as DeepSeek EPLB, github.com/deepseek-ai/EPLB, eplb.py): a layer has
/// `num_physical` slots; GPU g holds slots [g*S, (g+1)*S) with S = num_physical / num_gpus, and node n
/// holds GPUs [n*G, (n+1)*G) with G = num_gpus / num_nodes.

#include <string>
#include <vector>

#include "scenarios/registry.hpp"

namespace moesim::models {

/// Load statistics of the logical experts: layers × logical experts, e.g. tokens routed to each expert
/// over a window [tokens, or any non-negative unit; only ratios matter].
using ExpertLoads = std::vector<std::vector<double>>;

/// A replicated expert placement for every MoE layer.
struct ExpertPlacement {
  int layers = 0;        ///< MoE layers
  int num_physical = 0;  ///< physical expert slots per layer (logical experts + redundant replicas)
  int num_logical = 0;   ///< logical experts per layer
  int num_gpus = 1;      ///< GPUs the slots are spread over (num_physical / num_gpus slots each)
  int num_nodes = 1;     ///< nodes the GPUs are grouped into (num_gpus / num_nodes GPUs each)
  /// layers × num_physical: the logical expert held by each slot.
  std::vector<std::vector<int>> phy2log;
  /// layers × num_logical × R: the slots holding each logical expert, in replica order (the original
  /// first), padded with -1 up to R = the largest replica count over all layers and experts.
  std::vector<std::vector<std::vector<int>>> log2phy;
  /// layers × num_logical: number of replicas (slots) of each logical expert, ≥ 1.
  std::vector<std::vector<int>> logcnt;

  /// Slots per GPU.
  int slots_per_gpu() const { return num_physical / num_gpus; }
  /// GPU holding `slot`.
  int gpu_of_slot(int slot) const { return slot / slots_per_gpu(); }
  /// Node holding `gpu`.
  int node_of_gpu(int gpu) const { return gpu / (num_gpus / num_nodes); }
};

/// Everything a placement policy may use. Policies ignore what they do not need.
struct PlacementInput {
  ExpertLoads weight;    ///< layers × logical experts, non-negative loads
  int num_replicas = 0;  ///< physical slots per layer: a multiple of num_gpus, ≥ logical experts
  int num_groups = 1;    ///< expert groups (group-limited routing); divides the logical experts
  int num_nodes = 1;     ///< nodes; divides num_gpus
  int num_gpus = 1;      ///< GPUs (expert-parallel ranks)
  /// Co-activation counts for the "coactivation" policy: how often experts i and j are chosen by the
  /// same token. Either one logical × logical matrix shared by every layer or one per layer; non-negative;
  /// an asymmetric matrix is symmetrised as (c[i][j] + c[j][i]) / 2.
  std::vector<std::vector<std::vector<double>>> coactivation;
};

/// A placement policy: how the physical expert slots of every MoE layer are filled.
struct PlacementPolicy {
  /// Places every layer's experts (and replicas) from the observed loads.
  ExpertPlacement (*place)(const PlacementInput& input);
  /// Expert → EP rank before any load is observed (ep divides experts).
  std::vector<int> (*assign)(int experts, int ep);
  /// True when the placement follows observed loads (replicas, packing); false when `assign` fixes it.
  bool load_aware;
  /// True when the policy needs token-level routing (PlacementInput::coactivation).
  bool needs_coactivation;
};
/// Registered placement policies (placement.policy, `moesim place --policy`).
const Registry<PlacementPolicy>& placement_policies();

/// Places the experts of every layer with `policy`. Throws ConfigError for an unknown policy (listing the
/// registered ones) and for invalid input (message says what was expected and what was found).
ExpertPlacement place(const std::string& policy, const PlacementInput& input);

/// Experts [r·E/ep, (r+1)·E/ep) on EP rank r (Megatron-Core's default).
std::vector<int> contiguous_assignment(int experts, int ep);
/// Expert e on EP rank e mod ep.
std::vector<int> round_robin_assignment(int experts, int ep);

/// Expert → EP rank of placement policy `policy` before loads are observed. Throws ConfigError for an
/// unknown policy, listing the registered ones.
std::vector<int> place_experts(const std::string& policy, int experts, int ep);

/// Sum of `shares` per EP rank under `placement`.
std::vector<double> rank_shares(const std::vector<double>& shares, const std::vector<int>& placement, int ep);

}  // namespace moesim::models
