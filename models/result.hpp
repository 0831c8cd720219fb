#pragma once
/// \file The result of evaluating a scenario: one schema for every engine.

#include <string>
#include <vector>

#include "models/schedule.hpp"
#include "models/workload.hpp"

namespace moesim::models {

inline constexpr int kResultSchemaVersion = 1;

/// Where the critical rank's step time goes. Sums to the step time.
struct Breakdown {
  double compute = 0;     ///< compute kernels of all microbatches
  double exposed_tp = 0;  ///< tensor-parallel collectives not hidden
  double exposed_ep = 0;  ///< expert all-to-all (and expert-TP) not hidden
  double exposed_cp = 0;  ///< context-parallel KV exchange not hidden
  double bubble = 0;      ///< pipeline idle time (including pipeline send/recv on the critical path)
  double exposed_dp = 0;  ///< data-parallel gradient reduce and parameter gather not hidden
  double optimizer = 0;   ///< optimizer update kernel
};

/// Memory per GPU on the most loaded pipeline rank, bytes.
struct MemoryBreakdown {
  double weights = 0, master_weights = 0, gradients = 0, optimizer_states = 0, activations = 0, overhead = 0;
  double total = 0, capacity = 0;
  bool fits = true;
};

/// Times of one block, one microbatch, on its pipeline rank.
struct LayerTime {
  int layer = 0;
  std::string kind;  ///< dense, moe, mtp; mamba, attention (hybrid models' mixer layers)
  int pp_rank = 0;
  double forward = 0, backward_input = 0, backward_weight = 0;  ///< alone, one microbatch, seconds
  double max_over_mean_gpu = 1;                                 ///< MoE layers: per-GPU load imbalance
};

/// What an engine reports for one scenario (units in each field's comment; times in seconds).
struct Result {
  int schema_version = kResultSchemaVersion;
  std::string scenario;
  std::string engine = "analytic";
  std::string fidelity = "exact (closed form)";
  std::string cost_model;
  uint64_t seed = 0;
  bool feasible = true;
  std::string infeasible_reason;

  int gpus = 0;
  int microbatches = 0;  ///< per pipeline per step
  double tokens_per_step = 0;
  double step_time = 0;  ///< seconds
  double tokens_per_second = 0;
  double tokens_per_second_per_gpu = 0;
  double model_flops_per_token = 0;    ///< causal per scenario, main model
  double achieved_tflops_per_gpu = 0;  ///< non-causal convention (as Megatron and DeepSeek report)
  double mfu = 0;                      ///< non-causal model FLOPs / BF16 peak
  double mfu_causal = 0;
  double gpu_hours_per_trillion_tokens = 0;
  double cost_per_trillion_tokens = 0;  ///< USD, 0 if the GPU has no price

  int critical_rank = 0;
  ChunkTimes chunk;       ///< per-microbatch chunk times of the critical rank
  SchedulePhases phases;  ///< pipeline phases of the critical rank
  Breakdown breakdown;
  double grad_sync = 0;    ///< full DP gradient reduce + parameter gather time
  MemoryBreakdown memory;  ///< of the pipeline rank that needs the most
  int memory_rank = 0;
  std::vector<LayerTime> layers;
  std::vector<MoeLayerStats> moe_layers;
  std::vector<double> node_traffic;  ///< first MoE layer's dispatch bytes between nodes, nodes × nodes
  int traffic_nodes = 0;
  /// The same scenario with perfectly balanced routing (every expert equally loaded): the step-time
  /// cost of the routing imbalance is step_time - balanced_step_time.
  double balanced_step_time = 0;
  /// Discrete-event engine: the analytic engine's step time of the same workload (0 for analytic).
  double analytic_step_time = 0;
  double moe_max_over_mean_gpu = 1;  ///< mean over MoE layers
  double moe_dropped_fraction = 0;   ///< mean over MoE layers
};

}  // namespace moesim::models
