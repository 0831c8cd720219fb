#pragma once
/// \file Expert placement with redundant experts: which logical expert each physical expert slot holds,
/// per MoE layer, chosen by a named policy (DeepSeek EPLB, load-aware greedy, co-activation-aware, and
/// the no-replica contiguous / round-robin layouts); the per-GPU load a placement implies; and the
/// weight traffic of moving from one placement to another.
///
/// Layout convention (the same as DeepSeek EPLB, github.com/deepseek-ai/EPLB, eplb.py): a layer has
/// `num_physical` slots; GPU g holds slots [g*S, (g+1)*S) with S = num_physical / num_gpus, and node n
/// holds GPUs [n*G, (n+1)*G) with G = num_gpus / num_nodes.

#include <string>
#include <vector>

#include "models/placement.hpp"  // placement_policies()

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

/// Places the experts of every layer with `policy`. Throws ConfigError for an unknown policy (listing the
/// registered ones) and for invalid input (message says what was expected and what was found).
ExpertPlacement place(const std::string& policy, const PlacementInput& input);

/// DeepSeek EPLB (eplb.py, rebalance_experts): the hierarchical policy when num_groups % num_nodes == 0
/// (groups packed onto nodes, experts replicated within nodes, replicas packed onto GPUs), otherwise the
/// global policy (replicate over all experts, pack onto all GPUs). Reproduces the reference's choices,
/// ties included. Same as place("eplb", ...).
ExpertPlacement rebalance_experts(const ExpertLoads& weight, int num_replicas, int num_groups, int num_nodes,
                                  int num_gpus);

/// Per-GPU load of one layer.
struct LayerLoad {
  std::vector<double> gpu;  ///< load of each GPU [unit of the weights]
  double max = 0;           ///< largest GPU load
  double mean = 0;          ///< mean GPU load
  double imbalance = 1;     ///< max / mean (1 when every load is 0)
};

/// Per-GPU loads of every layer: a logical expert's weight is split evenly over its replicas. Throws
/// ConfigError when `weight` is not layers × num_logical.
std::vector<LayerLoad> gpu_loads(const ExpertPlacement& placement, const ExpertLoads& weight);

/// Co-activation weight cut between nodes in `layer`: Σ over pairs i < j that share no node of
/// (c[i][j] + c[j][i]) / 2. With one replica per expert this is the usual graph cut of the node
/// partition. Throws ConfigError when `coactivation` is not num_logical × num_logical.
double coactivation_cut(const ExpertPlacement& placement, int layer,
                        const std::vector<std::vector<double>>& coactivation);

/// Weight traffic of a periodic rebalance from `from` to `to`: for each GPU, the bytes it must receive,
/// i.e. `expert_bytes` [bytes] (one expert's weights) for each (layer, logical expert) it hosts in `to`
/// but not in `from`, summed over layers [bytes]. Throws ConfigError unless both placements have the
/// same layers, logical experts and GPUs, or when expert_bytes is negative.
std::vector<double> rebalance_bytes(const ExpertPlacement& from, const ExpertPlacement& to,
                                    double expert_bytes);

}  // namespace moesim::models
