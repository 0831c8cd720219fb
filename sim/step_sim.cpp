#include "sim/step_sim.hpp"

#include <algorithm>
#include <exception>
#include <string>

#include "models/analytic.hpp"
#include "models/compute_cost.hpp"
#include "models/network.hpp"
#include "models/routing_source.hpp"
#include "models/schedule.hpp"
#include "models/schedule_order.hpp"
#include "models/throughput.hpp"
#include "scenarios/error.hpp"
#include "sim/des_fidelity.hpp"
#include "sim/des_runner.hpp"
#include "sim/netsim_internal.hpp"

namespace moesim::sim {

using internal::EngineState;
using internal::GpuState;
using internal::Runner;
namespace sg4 = simgrid::s4u;

StepOptions step_options(const EngineSpec& e) {
  StepOptions o;
  o.groups = e.groups;
  o.aggregation = e.aggregation;
  o.microbatches = e.microbatches;
  o.precision_fraction = e.precision;
  o.timeline_gpus = e.timeline_gpus;
  return o;
}

namespace {
// The pipeline phases of rank `rank` as executed: each phase's chunks' compute and all-to-all waits
// (`phase_time(ChunkPhase)`, extrapolated), the bubble as the rest of the pipeline part `pipeline`
// (pipeline receive waits), chunk counts from the rank's schedule order at m microbatches.
template <class PhaseTime>
models::SchedulePhases executed_phases(const Scenario& s, int rank, int m, double pipeline,
                                       PhaseTime phase_time) {
  const auto& par = s.parallelism;
  const int vpp = par.schedule == Schedule::kInterleaved ? par.vpp : 1;
  models::SchedulePhases ph;
  ph.forward_only = phase_time(kPhaseForwardOnly);
  ph.steady = phase_time(kPhaseSteady);
  ph.backward_only = phase_time(kPhaseBackwardOnly);
  ph.weight_only = phase_time(kPhaseWeightOnly);
  ph.bubble = std::max(0.0, pipeline - (ph.forward_only + ph.steady + ph.backward_only + ph.weight_only));
  auto order = models::schedule_order(par.schedule, par.pp, vpp, m, rank);
  if (par.ep_overlap) order = models::overlap_ep_pairs(order);
  const auto phases = chunk_phases(par.schedule, order);
  for (std::size_t i = 0; i < order.size(); ++i) {
    const bool f = order[i].pass == models::ChunkPass::kF;
    const bool b = order[i].pass == models::ChunkPass::kB || order[i].pass == models::ChunkPass::kBW;
    if (phases[i] == kPhaseForwardOnly && f) ++ph.lone_f;
    if (phases[i] == kPhaseBackwardOnly && b) ++ph.lone_b;
    if (phases[i] == kPhaseSteady && f) ++ph.pairs;
  }
  ph.activations_in_flight = models::activations_in_flight(par.schedule, par.pp, vpp, rank);
  ph.parameter_copies = par.schedule == Schedule::kDualPipe ? 2 : 1;
  return ph;
}
}  // namespace

StepSimResult simulate_step(const Scenario& s, const StepOptions& o, const models::RoutingInput* routing) {
  check_step_options(o);
  const auto& par = s.parallelism;
  const int m = s.layout.microbatches;
  const int vpp = par.schedule == Schedule::kInterleaved ? par.vpp : 1;
  models::check_schedule_order_args(par.schedule, par.pp, vpp, m);

  auto cm = models::make_compute_cost_model(s);
  const models::NetworkModel net(s.cluster);
  models::RoutingInput in;
  if (routing == nullptr) {
    in = models::routing_input(s);
    if (!in.samples.empty() || !in.slot_maps.empty()) routing = &in;
  }
  const models::Workload w = models::build_workload(s, *cm, net, routing, true);

  // The platform holds only the simulated GPUs.
  SimOptions so;
  so.precision_fraction = o.precision_fraction;
  so.gpus = simulated_gpu_ids(s, o);
  const FlowAggregation agg = choose_aggregation(s, w, o, static_cast<int>(so.gpus.size()), so.max_hosts);
  so.aggregate_node_pairs = agg.node_pairs;
  internal::check_options(so);
  EngineState& st = internal::engine_for(s.cluster, so);
  if (agg.node_pairs && !st.agg) throw ConfigError(st.agg_missing);
  if (!agg.node_pairs && !st.gpu) throw ConfigError(st.gpu_missing);
  const std::vector<int> sim_m = microbatch_plan(s, o);

  StepSimResult out;
  const bool one_plane =
      (o.aggregation == moesim::Aggregation::kAuto || o.aggregation == moesim::Aggregation::kNode) &&
      symmetric_planes(s, w);
  Runner runner(s, w, o, st, agg.node_pairs, agg.pool, one_plane);
  const double expected = runner.expected_collective();
  const double precision = expected > 0 ? o.precision_fraction * expected : 1e-9;
  std::vector<Runner::Outcome> runs;
  try {
    sg4::Engine::set_config("surf/precision", precision);
    for (std::size_t i = 0; i < sim_m.size(); ++i)
      runs.push_back(runner.run(sim_m[i], i + 1 == sim_m.size()));
  } catch (const moesim::Error&) {
    st.broken = true;
    throw;
  } catch (const std::exception& e) {
    st.broken = true;
    throw Error(std::string("simulate_step: SimGrid failed: ") + e.what());
  }
  ++st.simulations;

  // Step time and the critical GPU's breakdown, extrapolated linearly in the microbatch count; the same
  // GPU in every run (the critical one of the last run).
  const Runner::Outcome& last = runs.back();
  const GpuState& crit = last.gpus[last.critical];
  auto extrap = [&](auto field) {
    const double a = field(runs[0].gpus[last.critical]);
    return extrapolate(a, runs.size() == 1 ? a : field(runs[1].gpus[last.critical]), m, sim_m);
  };

  models::Result r = models::evaluate_analytic(s, w);
  const double analytic_step = r.step_time;
  r.engine = "des";
  r.fidelity = fidelity_text(o, agg, one_plane, s.cluster.scale_out.planes, runner.groups(),
                             ep_groups_per_stage(s), m, sim_m);
  r.step_time = extrapolate(runs[0].makespan, runs.size() == 1 ? 0.0 : runs[1].makespan, m, sim_m);
  r.critical_rank = crit.rank;
  models::Breakdown& bd = r.breakdown;
  bd = models::Breakdown{};
  const double busy = extrap([](const GpuState& g) { return g.busy; });
  bd.exposed_tp = extrap([](const GpuState& g) { return g.tp; });
  bd.exposed_cp = extrap([](const GpuState& g) { return g.cp; });
  // Expert-TP collectives count as exposed expert communication (as in the analytic engine).
  const double etp = extrap([](const GpuState& g) { return g.etp; });
  bd.compute = busy - bd.exposed_tp - bd.exposed_cp - etp;
  const double wait_comm = extrap([](const GpuState& g) { return g.wait_comm; });
  bd.exposed_ep = wait_comm + etp;
  const models::RankSync sync = models::rank_sync(s, w, crit.rank);
  bd.exposed_dp = sync.exposed_dp;
  bd.optimizer = sync.optimizer;
  // Pipeline receive waits, and whatever the critical GPU finished before the step's end.
  bd.bubble = std::max(0.0, r.step_time - (busy + wait_comm + bd.exposed_dp + bd.optimizer));
  r.grad_sync = sync.reduce + sync.gather;
  r.phases = executed_phases(s, crit.rank, m, r.step_time - bd.exposed_dp - bd.optimizer,
                             [&](int k) { return extrap([k](const GpuState& g) { return g.phase[k]; }); });
  r.balanced_step_time = 0;
  models::finish_throughput(r, w, s.cluster.gpu);
  r.analytic_step_time = analytic_step;
  models::check_finite(r);
  out.result = std::move(r);

  out.timeline = runner.take_timeline();
  out.links = runner.link_usage(last.makespan);
  out.stats.simulated_gpus = runner.simulated_gpus();
  out.stats.ep_groups = runner.groups() * par.pp;
  out.stats.microbatches = sim_m;
  for (const auto& run : runs) {
    for (const auto& g : run.gpus) out.stats.segments += g.segments;
    out.stats.simulated_seconds += run.makespan;
  }
  out.stats.collectives = runner.collectives;
  out.stats.flows = runner.flows;

  out.settings = internal::engine_settings(st, agg.node_pairs, expected, st.simulations - 1);
  return out;
}

}  // namespace moesim::sim
