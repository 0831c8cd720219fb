#pragma once
/// \file From a routing source (expected shares from a load generator, or a sampled/recorded
/// RoutingSample) and an expert placement to what one MoE layer costs: the rows each expert slot of the
/// busiest GPU computes, the all-to-all bytes of the busiest GPUs, and the layer's load statistics.

#include <utility>
#include <vector>

#include "models/dispatch.hpp"
#include "traces/routing_sample.hpp"

namespace moesim::models {

/// Expert slots of every EP rank for one layer: (logical expert, share of that expert's tokens the
/// slot receives). Without replicas every share is 1; a logical expert with r replicas has r slots of
/// share 1/r (load split evenly over replicas, as DeepSeek's EPLB assumes).
struct SlotMap {
  int ranks = 0;
  int experts = 0;
  std::vector<std::vector<std::pair<int, double>>> slots;  ///< per EP rank

  /// One slot per expert: expert e on rank expert_rank[e].
  static SlotMap from_assignment(const std::vector<int>& expert_rank, int ranks);
  /// Physical slots in rank order (slot p on rank p / (slots/ranks)), each holding logical phy2log[p].
  static SlotMap from_phy2log(const std::vector<int>& phy2log, int ranks, int experts);
  /// Logical expert → the EP rank of each of its replicas.
  std::vector<std::vector<int>> replica_ranks() const;
};

/// Routing outcome of one MoE layer on one microbatch.
struct MoeLayerStats {
  int layer = 0;
  double max_over_mean_gpu = 1;     ///< per-GPU load max/mean in the EP group
  double cv_gpu = 0;                ///< coefficient of variation of per-GPU load
  double max_over_mean_expert = 1;  ///< per-expert load max/mean
  double cv_expert = 0;             ///< coefficient of variation of per-expert load
  double straggler_rows = 0;        ///< rows the busiest GPU computes
  double mean_rows = 0;             ///< rows an average GPU computes
  double dropped_fraction = 0;      ///< routed slots dropped by capacity
  double padded_rows = 0;           ///< rows of padding computed by the busiest GPU
  double dispatch_seconds = 0;      ///< forward dispatch all-to-all
  double combine_seconds = 0;
  double straggler_seconds = 0;  ///< forward expert GEMMs: busiest GPU minus a GPU with mean load
  double nic_bytes = 0;          ///< busiest NIC, dispatch, bytes
  int nodes = 0;                 ///< nodes (NVLink domains) of the EP group
  /// Dispatch bytes between nodes of the EP group, nodes × nodes row-major (source node, destination
  /// node), one microbatch; the diagonal is traffic that stays on NVLink.
  std::vector<double> node_traffic;
};

/// The part of a layer's routing the workload prices.
struct LayerRouting {
  DispatchStats stats;
  std::vector<double> rows;            ///< rows per slot of the straggler rank
  std::vector<double> mean_rank_rows;  ///< rows per slot of a rank with exactly the mean load
  std::vector<double> rank_rows;       ///< rows each EP rank computes (padding included)
  MoeLayerStats summary;
  /// ep × ep dispatch bytes (row = source rank, column = destination rank), one copy per (token,
  /// destination GPU); filled only when RoutingContext::want_pair_bytes.
  std::vector<double> pair_bytes;
  /// ep × ep dispatch bytes as they travel (row = sending rank, column = receiving rank): flat dispatch
  /// sends pair_bytes directly; hierarchical dispatch sends one copy per destination node to the rank
  /// of that node with the sender's local index (the fabric leg), which forwards it over NVLink to the
  /// other ranks of its node that need it. Diagonal 0. Filled only when RoutingContext::want_pair_bytes.
  std::vector<double> wire_bytes;
};

/// Routing parameters shared by both sources.
struct RoutingContext {
  EpGeometry geo;
  int experts = 0;
  double tokens_per_source = 0;  ///< tokens each EP rank routes per microbatch
  double capacity_factor = 0;    ///< 0: no capacity (expected mode only; sampled policies drop themselves)
  double bytes_per_copy = 0;     ///< dispatch bytes of one token copy
  bool want_pair_bytes =
      false;  ///< also fill LayerRouting::pair_bytes and wire_bytes (discrete-event engine)
};

/// Expected routing from per-expert shares (sum 1) under `slots`.
LayerRouting route_expected(const std::vector<double>& shares, const SlotMap& slots,
                            const RoutingContext& ctx);

/// Routing from a sample. The sample's distribution is scaled to ctx.tokens_per_source tokens per
/// source; its source s feeds EP rank s (sources must equal ranks: rescale traces first). With token-level
/// detail the dispatch copies are counted exactly (one per slot for flat dispatch; for hierarchical
/// dispatch one per distinct destination node over the NIC and per distinct GPU over NVLink; a replicated
/// expert's tokens go to replicas round-robin); with counts only, each source row's shares give hit
/// probabilities as in dispatch_stats.
LayerRouting route_sample(const traces::RoutingSample& sample, const SlotMap& slots,
                          const RoutingContext& ctx);

/// Dispatch bytes between every pair of EP ranks (ep × ep, row = source rank, column = destination
/// rank; the diagonal stays on the GPU) for one microbatch: from expected shares every source sends
/// tokens_per_source · copies_rank[r] copies to rank r (one per slot, or per distinct GPU when
/// hierarchical).
std::vector<double> expected_pair_bytes(const LayerRouting& r, const RoutingContext& ctx);

/// The wire_bytes of expected routing (see LayerRouting::wire_bytes) from the hit probabilities.
std::vector<double> expected_wire_bytes(const LayerRouting& r, const RoutingContext& ctx);

/// max/mean and coefficient of variation of a non-empty vector.
std::pair<double, double> max_mean_cv(const std::vector<double>& v);

}  // namespace moesim::models
