#pragma once
/// \file The mapping of a scenario's parallel ranks onto its GPUs, derived once from a validated
/// scenario (scenarios/validate.cpp builds it into Scenario::layout). Engines, the topology and the
/// command line ask it; nothing else recomputes a domain size, a group's shape or a rank's GPU.
///
/// Rank order (Megatron-Core, megatron/core/parallel_state.py): inside one pipeline stage the attention
/// ranks run tp fastest, then cp, then dp; the expert ranks of the same GPUs run etp fastest, then ep,
/// then edp. Stage r holds GPUs [r·stage_gpus, (r+1)·stage_gpus).

#include <vector>

namespace moesim {

/// Shape of one communication group: its size and how many of its members share one NVLink domain.
struct Group {
  int size = 1;      ///< ranks in the group
  int per_node = 1;  ///< members per NVLink domain (1: every member in its own domain)
  int nodes() const { return (size + per_node - 1) / per_node; }  ///< domains the group spans
};

struct Layout {
  int gpus = 1;           ///< nodes · gpus_per_node
  int gpus_per_node = 1;  ///< GPUs one node holds
  int domain_gpus = 1;    ///< GPUs per NVLink domain (1 when the cluster has no scale-up network)
  int tp = 1, cp = 1, dp = 1, pp = 1, vpp = 1;  ///< attention degrees; dp = gpus / (tp·cp·pp)
  int ep = 1, etp = 1, edp = 1;                 ///< expert degrees; ep·etp·edp = stage_gpus
  int stage_gpus = 1;                           ///< GPUs of one pipeline stage: tp·cp·dp
  int ep_span = 1;                              ///< GPUs of one EP group with its expert-TP ranks: ep·etp
  int ep_groups = 1;                            ///< EP groups per pipeline stage: stage_gpus / ep_span
  int microbatches = 0;  ///< per pipeline and step: global_batch / (microbatch_size · dp)
  /// Blocks (decoder and MTP layers) of each of the pp · vpp stages that parallelism.pipeline_layout
  /// names, parsed once here; empty without a layout (the blocks are split evenly).
  std::vector<int> stage_blocks;

  /// Member of a group of `size` ranks whose consecutive members are `stride` GPUs apart: members per
  /// NVLink domain.
  int per_domain(int size, int stride) const;
  Group tp_group() const { return {tp, per_domain(tp, 1)}; }
  Group cp_group() const { return {cp, per_domain(cp, tp)}; }
  Group dp_group() const { return {dp * cp, per_domain(dp * cp, tp)}; }  ///< gradient sync: dp·cp ranks
  Group etp_group() const { return {etp, per_domain(etp, 1)}; }
  Group ep_group() const { return {ep, per_domain(ep, etp)}; }
  Group edp_group() const { return {edp, per_domain(edp, ep_span)}; }
  /// Global GPU id of expert-parallel rank `ep_rank` (its first expert-TP rank) of EP group `group` in
  /// pipeline stage `stage`.
  int ep_gpu(int stage, int group, int ep_rank) const {
    return stage * stage_gpus + group * ep_span + ep_rank * etp;
  }
  /// NVLink domain of a GPU.
  int domain_of(int gpu) const { return gpu / domain_gpus; }
};

}  // namespace moesim
