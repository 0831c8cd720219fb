#pragma once
/// \file The analytic engine: closed-form step time of a scenario from its priced workload.

#include <vector>

#include "models/result.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::models {

/// Evaluates a validated scenario: builds and prices the workload with the scenario's cost model, then
/// applies the pipeline schedule, data-parallel synchronisation, the optimizer and the memory model.
Result evaluate_analytic(const Scenario& s);
/// The same with the routing already resolved (models::routing_input, or the one cli::check_scenario
/// returns): the engine then reads no file.
Result evaluate_analytic(const Scenario& s, const RoutingInput& routing);

/// Evaluates an already built workload (for sweeps that reuse it). balanced_step_time is left 0.
Result evaluate_analytic(const Scenario& s, const Workload& w);
/// The same, taking the workload's per-layer routing statistics into the result instead of copying them.
Result evaluate_analytic(const Scenario& s, Workload&& w);

/// One overlapped F&B pair as both engines price it: the forward chunk of pipeline stage `f_stage` beside
/// the backward chunk (input and weight gradients) of stage `b_stage`, block by block (DeepSeek-V3
/// Figure 4), seconds. DualPipe runs stage r's forward beside stage pp-1-r's backward on rank r.
double overlapped_pair_seconds(const Workload& w, int f_stage, int b_stage);

/// Megatron-Core's combined 1F1B (ep_overlap) with pp > 1: per pipeline rank, what its steady F&B pair waits
/// per microbatch for the neighbouring ranks' pipeline sends, seconds (ChunkTimes::pair_wait). `pair`: each
/// rank's overlapped pair per microbatch (its v virtual pairs); `early`: how long before a pair ends its
/// sends leave (delayed weight gradients); `p2p`: one activation send; `v`: virtual stages per rank.
/// Every rank repeats every T = max over r of max(d_r, (d_r - e_r + d_{r+1} - e_{r+1})/2 + 2·p2p) per
/// virtual pair (d = pair / v, e = early / v, rank pp-1 followed by rank 0 on the ring of virtual stages);
/// the result is v·T - pair. All zero for one rank.
std::vector<double> combined_pair_waits(const std::vector<double>& pair, const std::vector<double>& early,
                                        double p2p, int v);

/// Data-parallel synchronisation and optimizer of one pipeline rank, seconds.
struct RankSync {
  double reduce = 0;  ///< gradient all-reduce (ZeRO-0) or reduce-scatter (ZeRO >= 1)
  double gather = 0;  ///< parameter all-gather after the update (ZeRO >= 1)
  double exposed_dp =
      0;  ///< what of reduce and gather the step waits for (ZeRO-3 per-microbatch gathers included)
  double optimizer = 0;      ///< AdamW (or Muon) update of the local shard: memory-bound, plus Muon's GEMMs
  double newton_schulz = 0;  ///< of optimizer: Muon's Newton-Schulz iterations
  double shard_dense = 0, shard_expert = 0;  ///< parameters updated locally
  double shard_adam = 0;  ///< of shard_dense: the embedding and output head (AdamW's under Muon)
};
/// What a rank holds that its gradient synchronisation and optimizer step price: RankWork's sums, both
/// stages' under DualPipe.
struct RankParams {
  double params = 0;         ///< parameters held, split by TP/EP
  double expert_params = 0;  ///< of which routed-expert parameters
  double adam_params = 0;    ///< of which the embedding and output head (AdamW's under Muon)
  /// Muon's Newton-Schulz FLOPs over the rank's dense and routed-expert matrices, which the data-parallel
  /// ranks split (Megatron-Core's layer-wise distributed optimizer packs whole matrices onto the ranks by
  /// their Newton-Schulz cost); priced under workload.optimizer muon.
  double muon_ns_dense = 0, muon_ns_expert = 0;
  static RankParams of(const RankWork& rw) {
    return {rw.params, rw.expert_params, rw.adam_params, rw.muon_ns_dense, rw.muon_ns_expert};
  }
  RankParams& operator+=(const RankParams& o) {
    params += o.params, expert_params += o.expert_params, adam_params += o.adam_params;
    muon_ns_dense += o.muon_ns_dense, muon_ns_expert += o.muon_ns_expert;
    return *this;
  }
};
/// For what a rank holds, with per-microbatch `chunk` times and `M` microbatches (the analytic engine's
/// rule; the discrete-event engine adds it after the last backward).
RankSync sync_of(const Scenario& s, const RankParams& held, const ChunkTimes& chunk, int M);
/// The same for pipeline rank `rank` of `w` (DualPipe: both stages the rank holds).
RankSync rank_sync(const Scenario& s, const Workload& w, int rank);

/// `s` with perfectly balanced routing: uniform expected shares, contiguous placement, no capacity.
Scenario balanced_scenario(const Scenario& s);

/// Step time of `s` with perfectly balanced routing: uniform expected shares, no capacity limit.
double balanced_step_time(const Scenario& s);

}  // namespace moesim::models
