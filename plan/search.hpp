#pragma once
/// \file The planner's search: every layout and cluster size of a plan, pruned by divisibility before
/// anything is priced, evaluated with the analytic engine, then ranked by cost with days, energy and
/// goodput (docs/plan.md).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "models/workload.hpp"
#include "plan/plan_file.hpp"
#include "plan/uncertainty_types.hpp"

namespace moesim::plan {

/// One evaluated candidate.
struct Candidate {
  int hardware = 0;  ///< index into PlanSpec::hardware
  int nodes = 0, gpus = 0;
  int tp = 1, cp = 1, pp = 1, vpp = 1, dp = 1, ep = 1, etp = 1, zero = 1, microbatch_size = 1;
  Recompute recompute = Recompute::kNone;
  Schedule schedule = Schedule::k1F1B;
  DispatchMode dispatch = DispatchMode::kFlat;
  bool ep_overlap = false;  ///< Megatron-Core's combined 1F1B (parallelism.ep_overlap)

  double step_time_s = 0;
  double tokens_per_s_per_gpu = 0;
  double mfu = 0;
  double memory_headroom = 0;  ///< (capacity − need) / capacity on the fullest GPU
  double solve_days = 0;       ///< failure-free
  double wall_days = 0;        ///< with interruptions, checkpoints and restarts
  double goodput = 1;
  double checkpoint_interval_s = 0;
  double gpu_hours = 0;  ///< at wall time
  double usd = 0;
  double mwh = 0;  ///< facility energy over the wall time
  double joules_per_token = 0;
  bool meets_deadline = true;
  /// Confirmation by the discrete-event engine (set by the caller): its step time (0: not confirmed) or
  /// why it could not run.
  double des_step_time_s = 0;
  std::string des_note;
};

/// What the search did.
struct SearchCounts {
  int64_t enumerated = 0;  ///< combinations of cluster size and layout values
  int64_t pruned = 0;      ///< rejected by divisibility before pricing (GPUs, batch, experts, layers)
  int64_t invalid = 0;     ///< rejected by the scenario rules (validate) before pricing
  int64_t evaluated = 0;   ///< priced by the analytic engine
  int64_t infeasible = 0;  ///< priced, but do not fit in memory
  int64_t feasible = 0;
  int64_t confirmed = 0;  ///< best plans re-run with the discrete-event engine
};

struct PlanResult {
  SearchCounts counts;
  std::vector<Candidate> best;    ///< the best `top` feasible plans, best first
  std::vector<Candidate> pareto;  ///< feasible plans no other beats on both wall days and dollars, by days
  std::vector<Candidate> pareto_energy;  ///< the same for wall days and energy (MWh)
  double checkpoint_bytes = 0;           ///< saved state: weights, master weights and Adam moments
  /// The base scenario's own layout priced as a plan (when a hardware entry is its cluster and it fits),
  /// and its rank among the feasible plans (1: none is better; the layout itself may also be enumerated).
  std::optional<Candidate> base;
  bool base_evaluated = false;
  int64_t base_rank = 0;
  /// Filled by the caller (plan/uncertainty.hpp): the spread of days and dollars the accuracy suite's
  /// measured errors give, and the best plan's sensitivity to the inputs it rests on.
  std::optional<ErrorBars> error_bars;
  std::vector<Sensitivity> sensitivity;
};

/// The routing an evaluation uses for a scenario (nullptr: the scenario's expected shares). The command
/// line resolves traces and sampled routing once per expert-parallel layout.
using RoutingFor = std::function<const models::RoutingInput*(const Scenario&)>;

/// Orders feasible plans: those meeting the deadline first, then by dollars, then by wall days, then by
/// fewer GPUs and the layout values (so the order is total and the output deterministic).
bool better(const Candidate& a, const Candidate& b);

/// Bytes a checkpoint holds for `s`: every parameter's weights in the training dtype, its FP32 master
/// copy (when kept) and two Adam moments (docs/plan.md).
double checkpoint_bytes(const Scenario& s);

/// The scenario a candidate stands for, validated.
Scenario scenario_of(const PlanSpec& p, const Candidate& c);

/// Prices the validated scenario `s` as a plan on hardware `hardware` (analytic engine, goodput, energy,
/// cost); false if it does not fit in memory.
bool price(const PlanSpec& p, int hardware, const Scenario& s, const models::RoutingInput* routing,
           double checkpoint_bytes, Candidate& out);

/// Runs the search on `jobs` threads (the result is the same for any number). `routing` must be safe to
/// call from several threads.
PlanResult search(const PlanSpec& p, const RoutingFor& routing, int jobs = 1);

}  // namespace moesim::plan
