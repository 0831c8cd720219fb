#pragma once
/// \file From expected expert shares and a placement to what one MoE layer's dispatch costs: the rows
/// each expert of the busiest GPU computes, and the per-GPU bytes of the all-to-all.

#include <vector>

#include "models/network.hpp"

namespace moesim::models {

/// How an EP group sits on the cluster and how tokens travel.
struct EpGeometry {
  int ep = 1;        ///< EP ranks
  int per_node = 1;  ///< EP ranks per node
  int top_k = 1;
  int node_limit = 0;  ///< at most this many nodes per token (0: unlimited)
  /// One NIC copy per destination node, then NVLink fan-out; inside a node one copy per destination GPU
  /// (DeepEP normal kernels, HybridEP). Without it (flat) every (token, expert) pair whose expert sits on
  /// another GPU is its own copy, straight to that GPU, two experts on one GPU included: Megatron-Core's
  /// alltoall dispatcher permutes tokens × top_k rows and exchanges them with one NCCL all-to-all
  /// (megatron/core/transformer/moe/token_dispatcher.py, MoEAlltoAllTokenDispatcher: num_out_tokens is
  /// routing_map.sum(), input_splits the rows per EP rank).
  bool hierarchical = false;
  /// Every (token, expert) copy straight to the expert's GPU over the NIC (RDMA), the GPU's own node
  /// included, without merging copies bound for one GPU or node (DeepEP low-latency kernels, which send
  /// each of a token's top-k copies on its own IBGDA write). Overrides `hierarchical`.
  bool low_latency = false;
  /// Group-limited routing (group_limited_topk: DeepSeek-V3's router, Megatron-Core's
  /// moe_router_num_groups / moe_router_group_topk): the experts form `groups` contiguous groups and a token
  /// takes its top_k experts inside `topk_groups` of them. Used by dispatch_stats_grouped; 0: no limit.
  int groups = 0;
  int topk_groups = 0;
};

/// Expected routing statistics of one MoE layer, per source token.
struct DispatchStats {
  std::vector<double> rank_share;  ///< share of routed slots per EP rank (sums to 1)
  int straggler = 0;               ///< EP rank with the largest share
  double max_over_mean = 1;        ///< per-GPU load imbalance, max/mean of rank_share
  std::vector<double> hit_rank;    ///< P(a token sends to rank r), node limit applied
  std::vector<double> hit_node;    ///< P(a token sends to node n)
  /// Expected copies of one source token that rank r receives: hit_rank[r] when copies bound for one GPU
  /// merge (hierarchical), the expected number of the token's top_k slots on r when they do not (flat).
  std::vector<double> copies_rank;
  /// Copies of one source token, for the busiest GPU of each direction and fabric.
  double nic_out = 0, nic_in = 0, nvlink_out = 0, nvlink_in = 0;
};

/// Computes expected dispatch statistics. A token picks top_k experts with probabilities proportional
/// to their shares; the probability that it hits a rank holding share c of its candidate slots is
/// 1 - (1 - c)^top_k (sampling with replacement, a close approximation of top-k without replacement
/// when c·top_k ≪ top_k²). With a node limit (DeepSeek-V3 report §2.1.2) it first picks node_limit
/// nodes, each with probability proportional to its share (capped at 1); when top_k ≥ node_limit every
/// picked node is hit (the nodes are ranked by their best experts), receiving top_k·q/Q of the slots
/// (q its share, Q the expected share of the picked nodes), so a token reaches node_limit nodes, as
/// sampled routing does.
DispatchStats dispatch_stats(const std::vector<double>& expert_shares, const std::vector<int>& placement,
                             const EpGeometry& g);

/// The same from the share of routed slots each EP rank receives (sums to 1).
DispatchStats dispatch_stats(std::vector<double> rank_share, const EpGeometry& g);

/// The same under group-limited routing (g.groups, g.topk_groups), from group_rank[gr · ep + r], the share
/// of the routed slots of group gr that EP rank r holds (summing to 1 over groups and ranks; a placement
/// may spread a group over ranks and nodes). Each group is picked with probability topk_groups · q_g
/// (capped at 1, the rest shared out; q_g the group's share) and the token's top_k slots fall inside the
/// picked groups in proportion to the shares. A rank or node holding m whole groups is missed when none
/// of them is picked: ∏_{i<m} (1 − p̄ · G/(G − i)) with p̄ their mean pick probability, which is
/// hypergeometric (exact) for equal shares. A picked group holds one of the token's slots (its best
/// expert picked it; when top_k ≥ topk_groups) and each of the other top_k − topk_groups falls in it with
/// probability q_g / Q (Q the picked groups' expected share); each of its slots lands on a unit holding x of
/// the group's routed slots with c = x / q_g, so a group only partly on the unit misses it with
/// 1 − p_g · (1 − (1 − c) · (1 − c · q_g / Q)^(top_k − topk_groups)). Copies per rank (flat dispatch):
/// Σ_g p_g · (1 + (top_k − topk_groups) · q_g / Q) · c_{g,r}, top_k in all.
DispatchStats dispatch_stats_grouped(const std::vector<double>& group_rank, const EpGeometry& g);

/// Whether an all-to-all of this geometry relays over NVLink what arrived over the NIC: hierarchical
/// dispatch (not low-latency) over more than one node (AllToAllBytes::relay).
bool relays_over_nvlink(const EpGeometry& g);

/// Bytes of one all-to-all for `tokens` source tokens per GPU and `bytes_per_copy` per token copy.
AllToAllBytes all_to_all_bytes(const DispatchStats& s, const EpGeometry& g, double tokens,
                               double bytes_per_copy);

}  // namespace moesim::models
