#pragma once
/// \file Per-op output (`moesim run --ops`, ops.csv): every op each GPU of each pipeline rank runs in one
/// training step, with how often it runs, its FLOPs or bytes, its time and what priced it, so that a
/// prediction can be laid beside a profiler trace kernel by kernel.

#include <string>
#include <vector>

#include "models/compute_cost.hpp"
#include "models/network.hpp"
#include "models/workload.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::models {

/// One op on one GPU of a pipeline rank (the busiest GPU for expert ops, as the engines price them).
struct OpRow {
  int pp_rank = 0;    ///< pipeline rank whose GPU runs it
  int stage = 0;      ///< pipeline stage whose blocks these are (DualPipe: the rank's own or its mirror)
  int layer = -1;     ///< block index; -1 for the embedding and the head
  std::string block;  ///< dense, moe, mtp, embedding, head
  std::string name;   ///< op label (attn.qkv, moe.expert_up, ...)
  Pass pass = Pass::kForward;
  OpKind kind = OpKind::kGemm;
  bool recompute = false;  ///< a forward op run again in backward
  double count = 0;        ///< executions per training step on one GPU of the rank
  double flops = 0;        ///< per execution: GEMM and attention FLOPs (0 for memory and communication)
  double bytes = 0;        ///< per execution: bytes moved by a memory-bound kernel or a collective
  double seconds = 0;      ///< per execution
  std::string priced_by;   ///< the calibration entry, roofline parameters or network model that priced it
};

/// What priced `op`: its calibration entry or roofline parameters (compute and memory-bound kernels), or
/// the network model's parameters (collectives).
std::string op_priced_by(const Op& op, const ComputeCostModel& cm);

/// "dense", "moe" or "mtp".
const char* block_kind_name(BlockKind k);

/// The row of block op `op` (layer `layer`, block kind `block`), executed `count` times: its FLOPs (GEMMs,
/// attention) or bytes (memory-bound kernels, collectives), time and what priced it; pp_rank and stage 0.
OpRow op_row(const Op& op, int layer, const std::string& block, double count, const ComputeCostModel& cm);

/// The rows of every pipeline rank, in rank, stage, block and execution order. `cm` and `net` must be the
/// models `w` was priced with. A rank runs each of its blocks once per microbatch; under DualPipe a rank
/// holds stage r and pp-1-r and runs each for half the microbatches. The step-level work (data-parallel
/// gradient reduce, optimizer, pipeline sends) is in the result's breakdown, not here.
std::vector<OpRow> op_rows(const Scenario& s, const Workload& w, const ComputeCostModel& cm,
                           const NetworkModel& net);

/// The rows of scenario `s` priced as the engines price it: its compute cost model, the analytic network
/// model, and `routing` (the routing check_scenario resolved) where it replaces the expected shares.
std::vector<OpRow> op_rows(const Scenario& s, const RoutingInput& routing);

/// Per MoE layer of `w`, in order (Workload::moe_detail): each EP rank's routed-expert rows over the mean
/// of its group (all 1 under balanced routing; the busiest rank gates the layer's all-to-alls).
std::vector<std::vector<double>> expert_gpu_loads(const Workload& w);

/// What a run's output directory lists beside the result: the op rows and the per-GPU expert loads of
/// one priced workload (as op_rows(s, routing) prices it).
struct RunTables {
  std::vector<OpRow> ops;
  std::vector<std::vector<double>> gpu_load;  ///< expert_gpu_loads
};
RunTables run_tables(const Scenario& s, const RoutingInput& routing);

/// "F", "B" or "W".
const char* pass_name(Pass p);
/// gemm, grouped_gemm, attention, memory, comm.
const char* op_kind_name(OpKind k);

}  // namespace moesim::models
