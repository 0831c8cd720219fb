#pragma once
/// \file Turns a scenario's routing and placement sections into what the engines consume: per MoE
/// layer routing samples (sampled by a policy on generated gate scores, or replayed from a trace) and
/// per layer expert placements (replicated placements computed from the loads).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "models/placement.hpp"
#include "models/workload.hpp"
#include "scenarios/scenario.hpp"
#include "traces/routing_sample.hpp"

namespace moesim::models {

/// Checks routing policy, generator and placement names and parameters against the registries.
/// Throws ConfigError naming the scenario file and the pointer (/routing/policy, ...).
void check_routing(const Scenario& s);

/// Block indices (0-based, MTP blocks after the main ones) of the model's MoE layers, in order.
std::vector<int> moe_blocks(const ModelSpec& m);

/// Tokens each EP rank routes per microbatch (mbs · seq / (cp · tp)).
int tokens_per_ep_rank(const Scenario& s);

/// The EP geometry and per-copy sizes a scenario's MoE layers are routed with (rank order: etp
/// fastest, then ep; one node = one NVLink domain).
RoutingContext routing_context(const Scenario& s);

/// Nodes (NVLink domains) one EP group spans.
int ep_nodes(const Scenario& s);

/// Token-level routing samples for `step`: `sample_layers` MoE layers routed by the scenario's policy
/// on gate scores from its generator, ep sources of tokens_per_ep_rank tokens each.
std::vector<traces::RoutingSample> sample_routing(const Scenario& s, int step);

/// Every step of the scenario's trace source, grouped by step, each sample mapped to the model's MoE
/// layers (a MoE layer without a record in its step takes the nearest recorded one; a tie goes to the
/// one recorded first) and rescaled to ep sources (tokens exchangeable across ranks). Every record is
/// checked against the model: the trace's experts equal the model's, its layers (the moesim header's
/// "layers", a Megatron directory's distinct decoder layer numbers, a count table's layer column) are
/// within the model's MoE layers, its source ranks divide or are a multiple of ep; ConfigError naming
/// the trace file and line otherwise. Reads the whole trace; for long traces use for_each_trace_step.
std::vector<std::vector<traces::RoutingSample>> load_trace_steps(const Scenario& s, int max_steps = 0);

/// Streams the scenario's trace one step at a time: `fn(step, samples per MoE layer)`, with the checks
/// of load_trace_steps. Stops after max_steps steps when max_steps > 0 (the rest is not read: a cut
/// file is found by check_trace, which reads to the end).
void for_each_trace_step(const Scenario& s, int max_steps,
                         const std::function<void(int, std::vector<traces::RoutingSample>&)>& fn);

/// What a whole read of a trace found: steps, records, and the note to show when some MoE layers of
/// the model have no record (they are filled from the nearest recorded layer; empty when none is).
struct TraceCoverage {
  int steps = 0;
  int64_t records = 0;
  std::string note;
  /// The first step, mapped to the model's MoE layers (what routing_input uses).
  std::vector<traces::RoutingSample> first_step;
};
/// Reads the scenario's whole trace (routing.mode "trace" with a MoE model; otherwise returns an empty
/// coverage) with every check of the trace's reader and of load_trace_steps, so that a trace cut short
/// or broken anywhere is refused before anything is evaluated. ConfigError for a trace without records.
TraceCoverage check_trace(const Scenario& s);

/// Per MoE layer loads (layers × experts) from samples (expert slot counts) or, without samples, the
/// scenario's expected shares.
ExpertLoads layer_loads(const Scenario& s, const std::vector<traces::RoutingSample>* samples);

/// The scenario's placement for the given loads: one SlotMap per MoE layer (empty for the plain
/// contiguous/round_robin policies without replicas, which the workload applies itself), and the
/// replicated placement behind it (layers == 0 when none).
struct PlacementResult {
  std::vector<SlotMap> slot_maps;
  ExpertPlacement placement;
};
/// `samples` (may be null) give the token-level co-activation counts the "coactivation" policy needs.
PlacementResult place_for(const Scenario& s, const ExpertLoads& loads,
                          const std::vector<traces::RoutingSample>* samples = nullptr);

/// Co-activation counts (experts × experts): how many tokens chose both i and j, from token-level
/// samples. Throws ConfigError if the samples carry no token detail.
std::vector<std::vector<double>> coactivation_counts(const Scenario& s, const traces::RoutingSample& sample);

/// Everything build_workload needs for one step of a scenario: samples (sampled or trace mode, step 0
/// of the trace) and placements. With `trace` (what check_trace read), the trace's first step is taken
/// from it and no file is read.
RoutingInput routing_input(const Scenario& s, const TraceCoverage* trace = nullptr);

}  // namespace moesim::models
