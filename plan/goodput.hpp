#pragma once
/// \file What a training run costs beyond its step time: failures and checkpoints (goodput), energy and
/// money. Plain formulas on plain numbers, each with its source; the planner (plan/search.hpp) applies
/// them to every candidate layout.

namespace moesim::plan {

/// Failure and checkpoint settings of a run.
struct Reliability {
  /// Unexpected interruptions per GPU-hour. Default: the Llama 3 report (Dubey et al. 2024, §3.3.4): 419
  /// unexpected interruptions in 54 days on 16,384 H100 GPUs = 419 / (54 · 24 · 16384) per GPU-hour.
  double failures_per_gpu_hour = 419.0 / (54.0 * 24.0 * 16384.0);
  double restart_s = 600;  ///< from an interruption to training again (reload included), seconds
  /// Checkpoint write bandwidth per GPU, bytes/s: every GPU writes its shard at once, so a checkpoint
  /// takes checkpoint_bytes / (this · GPUs).
  double checkpoint_bytes_per_s_per_gpu = 1e9;
};

/// Checkpointing under exponentially distributed failures (Daly 2006, "A higher order estimate of the
/// optimum checkpoint interval for restart dumps", FGCS 22(3)).
struct Goodput {
  double mtbf_s = 0;                  ///< mean time between interruptions of the whole job, M
  double checkpoint_s = 0;            ///< time to write one checkpoint, δ
  double interval_s = 0;              ///< compute time between checkpoints, τ (Daly's optimum)
  double wall_over_solve = 1;         ///< expected wall-clock time per unit of failure-free compute time
  double goodput = 1;                 ///< 1 / wall_over_solve
  double expected_interruptions = 0;  ///< over the run (wall time / M)
};

/// Daly's optimum interval: τ = √(2δM)·(1 + ⅓√(δ/(2M)) + ⅑·δ/(2M)) − δ for δ < 2M, else τ = M (Daly 2006);
/// for M = ∞ (no failures) τ = ∞.
double daly_interval(double checkpoint_s, double mtbf_s);

/// Expected wall time of `solve_s` of failure-free compute for `gpus` GPUs holding `checkpoint_bytes`
/// of saved state. Daly 2006: T_wall = M · e^(R/M) · (e^((τ+δ)/M) − 1) · T_s / τ, the exact
/// expectation for exponential failures with restart time R, checkpoint time δ and interval τ.
Goodput goodput(double solve_s, int gpus, double checkpoint_bytes, const Reliability& r);

/// Power of one GPU by what it is doing, and what the rest of the data centre adds.
struct Power {
  double busy_w = 0;           ///< running compute kernels
  double communication_w = 0;  ///< waiting on exposed communication (links busy, SMs mostly idle)
  double idle_w = 0;           ///< pipeline bubble, waiting
  double node_overhead_w = 0;  ///< per node: CPUs, NICs, fans, switches' share
  double pue = 1.0;            ///< facility power usage effectiveness (1: IT power only)
};

/// Where one step's time goes on a GPU, seconds (a models::Breakdown, summed by kind).
struct StepTimes {
  double compute = 0;        ///< compute kernels and the optimizer
  double communication = 0;  ///< exposed TP, EP, CP and DP communication
  double idle = 0;           ///< pipeline bubble
  double total() const { return compute + communication + idle; }
};

/// Energy of one step on `gpus` GPUs in `nodes` nodes, joules at the facility meter:
/// PUE · (gpus · (busy·compute + communication_w·communication + idle_w·idle) + nodes · overhead · step).
double step_energy_j(const StepTimes& t, int gpus, int nodes, const Power& p);

}  // namespace moesim::plan
