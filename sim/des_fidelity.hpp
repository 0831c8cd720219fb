#pragma once
/// \file The discrete-event engine's fidelity choices (StepOptions, sim/step_sim.hpp): which GPUs are
/// simulated (representative EP groups), how flows are aggregated (per GPU pair, per node pair, NVLink
/// pooled per domain), whether one fabric plane stands for all, and how many microbatches are simulated
/// and extrapolated. Each choice that is exact only under a condition checks that condition here; the
/// measured errors of the others are in docs/des.md. No SimGrid here.

#include <string>
#include <vector>

#include "models/workload.hpp"
#include "scenarios/scenario.hpp"
#include "sim/step_sim.hpp"

namespace moesim::sim {

/// Throws ConfigError for options outside their sets (groups, aggregation, microbatches, precision).
void check_step_options(const StepOptions& o);

/// EP groups per pipeline stage: tp · cp · dp GPUs over ep · etp.
int ep_groups_per_stage(const Scenario& s);

/// EP groups simulated per pipeline rank: every group ("all") or one ("representative").
int simulated_groups(const Scenario& s, const StepOptions& o);

/// Global ids of the simulated GPUs: for every pipeline rank and simulated group, its EP ranks (the
/// first GPU of each expert-TP group).
std::vector<int> simulated_gpu_ids(const Scenario& s, const StepOptions& o);

/// True when pooling NVLink per domain (and folding fabric flows per node pair, which pooling implies)
/// changes nothing: every NVLink domain holds the simulated GPUs of one EP group of one pipeline rank
/// only, and in every MoE layer's all-to-all the GPUs of a domain send and receive equal bytes, both
/// inside the domain and across the fabric. `groups`: simulated groups per rank. Where it is false and
/// `why` is given, *why says which condition fails (left as it is where there is nothing to pool: no
/// NVLink domain, or no all-to-all).
bool balanced_nvlink(const Scenario& s, const models::Workload& w, int groups, std::string* why = nullptr);

/// True when one fabric plane can stand for all: a rail-optimised fabric with one plane per GPU of a
/// node, every fabric leg of every all-to-all in its plane, and the same bytes on every plane for every
/// pair of nodes.
bool symmetric_planes(const Scenario& s, const models::Workload& w);

/// How the flows of a run are folded.
struct FlowAggregation {
  bool node_pairs = false;  ///< fabric flows folded per (source node, destination node, plane)
  bool pool = false;        ///< NVLink traffic pooled per domain
  /// "auto" only, where it keeps one flow per GPU pair inside the NVLink domains: why pooling them would
  /// not be exact (empty otherwise).
  std::string not_pooled;
};

/// The aggregation `o` asks for; "auto": NVLink pooled per domain when balanced_nvlink holds, else per
/// GPU pair while the `simulated_gpus` fit `max_hosts` (the per-GPU platform limit), per node pair
/// beyond.
FlowAggregation choose_aggregation(const Scenario& s, const models::Workload& w, const StepOptions& o,
                                   int simulated_gpus, int max_hosts);

/// Microbatch counts to simulate for the scenario's m: {m}, or {mA, mA + one schedule period} (DualPipe
/// 2, interleaved pp, else 1) to extrapolate linearly. "auto" (0) simulates every microbatch when
/// m <= 4·pp, otherwise mA = 3·pp. Throws ConfigError (pointing at /engine/microbatches) for a count
/// the schedule cannot run.
std::vector<int> microbatch_plan(const Scenario& s, const StepOptions& o);

/// The value at the scenario's `m` microbatches of a quantity measured `a` at sim_m[0] and `b` at
/// sim_m[1] (linear; `a` when only one count was simulated).
double extrapolate(double a, double b, int m, const std::vector<int>& sim_m);

/// The fidelity sentence every result carries (Result::fidelity).
std::string fidelity_text(const StepOptions& o, const FlowAggregation& agg, bool one_plane, int planes,
                          int groups, int groups_per_stage, int m, const std::vector<int>& sim_m);

}  // namespace moesim::sim
