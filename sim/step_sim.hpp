#pragma once
/// \file The discrete-event step engine: one training step of a scenario executed on SimGrid 3.32.
///
/// The workload (models/workload.hpp, the same priced ops as the analytic engine) becomes a program per
/// pipeline rank, the exact chunk order of its schedule (models/schedule_order.hpp), split per block
/// into compute segments and communication points. Every simulated GPU runs that program in a SimGrid
/// actor (its compute stream: one segment after another, each a timed SimGrid activity); every EP group
/// of a pipeline rank has a second actor, the group's communication stream, which runs the expert
/// all-to-alls as SimGrid flows carrying the real per-pair bytes of the layer's routing and placement
/// (LayerRouting::wire_bytes). Pipeline activations and gradients are SimGrid flows between the stages'
/// GPUs. Flows share links with max-min fairness (sim/netsim.hpp settings), so contention between the
/// all-to-alls of different stages and the pipeline traffic emerges; so do overlap (shared experts and
/// DualPipe's paired chunks under the all-to-alls), pipeline bubbles as the schedule leaves them, and
/// stragglers: a GPU with more expert rows computes longer and every GPU of its group waits for it at
/// the next all-to-all.
///
/// What is not simulated as flows (priced by the analytic network model and run as timed segments):
/// tensor-, expert-tensor- and context-parallel collectives (blocking, on the compute stream;
/// NVLink-local), and the data-parallel gradient synchronisation and optimizer after a rank's last
/// backward (RankSync). Shared experts overlap the all-to-alls only when the scenario's
/// workload.shared_expert_overlap is on (sim/des_program.hpp).
///
/// Fidelity controls (every result names the ones used, Result::fidelity):
/// - groups: "representative" simulates one EP group per pipeline rank (the model routes every EP
///   group of a stage with the same sample, so groups differ only in the network contention between
///   them); "all" simulates every EP group of every stage.
/// - aggregation: "node_pair" folds fabric flows per (source node, destination node, plane) (SimOptions::
///   aggregate_node_pairs); "node" also pools each NVLink domain's traffic into one flow over one link of
///   the domain's summed NVLink bandwidth (exact when every GPU of the domain carries the same NVLink
///   bytes); "auto" pools when that holds for every all-to-all, else simulates per GPU pair up to the
///   per-GPU platform limit and folds per node pair beyond.
/// - microbatches: simulate mA and mB = mA + one schedule period (DualPipe 2, interleaved pp, else 1)
///   microbatches and extrapolate the step linearly to the scenario's m (exact once the pipeline is in
///   its periodic steady state); "auto" simulates every microbatch when m <= 4·pp, otherwise mA = 3·pp
///   (DualPipe at mA = 2·pp is not yet periodic: +1.07% on a 256-GPU DeepSeek-V3 layout, 3·pp: -0.01%).
/// Errors measured against the full simulation are in docs/des.md.
///
/// Files: sim/des_program.hpp builds the programs (no SimGrid), sim/des_runner.hpp runs them on SimGrid,
/// sim/des_fidelity.hpp makes the fidelity choices, this file's simulate_step puts them together.
/// Writers of the outputs: reports/chrome_trace.hpp (timeline), reports/link_usage.hpp (links).

#include <string>
#include <vector>

#include "models/result.hpp"
#include "models/workload.hpp"
#include "scenarios/scenario.hpp"
#include "sim/netsim.hpp"

namespace moesim::sim {

/// The engine's fidelity options (the scenario's engine section).
struct StepOptions {
  DesGroups groups = DesGroups::kRepresentative;  ///< EP groups simulated per stage
  Aggregation aggregation = Aggregation::kAuto;   ///< fabric flows per GPU pair, node pair or domain
  int microbatches = 0;                           ///< simulated microbatches mA (0: auto); mB = mA + period
  double precision_fraction = 1e-4;  ///< surf/precision = this × the first all-to-all's lower bound
  int timeline_gpus = 16;            ///< GPUs whose streams the timeline records (-1: all simulated)
};

/// The options a scenario's engine section sets.
StepOptions step_options(const EngineSpec& e);

/// One segment on one GPU stream (Chrome trace "X" event).
struct TimelineEvent {
  int gpu = 0;                ///< global GPU id
  int stream = 0;             ///< 0 compute, 1 expert all-to-all (communication stream), 2 pipeline receive
  std::string name;           ///< e.g. "F L3 experts", "B L3 combine", "recv F"
  double start = 0, end = 0;  ///< s from the start of the (last) simulation
  int microbatch = -1;
  int stage = -1;
};

/// Counters of one engine run.
struct StepStats {
  int simulated_gpus = 0;
  int ep_groups = 0;              ///< simulated EP groups (communication actors)
  std::vector<int> microbatches;  ///< simulated microbatch counts (one, or mA and mB)
  long long segments = 0;         ///< compute segments executed
  long long collectives = 0;      ///< all-to-alls executed
  long long flows = 0;            ///< SimGrid communications started
  double simulated_seconds = 0;   ///< simulated time of all runs
};

/// What one step simulation returns.
struct StepSimResult {
  models::Result result;                ///< engine "des"; same schema as the analytic engine
  std::vector<TimelineEvent> timeline;  ///< of the last simulation (the mB run when extrapolating)
  std::vector<LinkUsage> links;         ///< directed links that carried bytes, of the last simulation
  StepStats stats;
  EngineSettings settings;
};

/// Simulates one step of a validated scenario. `routing` as for build_workload (nullptr: the
/// scenario's routing source). One engine per process (see sim/netsim.hpp): later calls must use the
/// same cluster. Throws ConfigError for options outside their sets or a schedule the microbatch count
/// does not fit, moesim::Error if SimGrid fails.
StepSimResult simulate_step(const Scenario& s, const StepOptions& options = {},
                            const models::RoutingInput* routing = nullptr);

}  // namespace moesim::sim
