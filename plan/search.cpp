#include "plan/search.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <thread>
#include <tuple>

#include "models/analytic.hpp"
#include "models/params.hpp"
#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"

namespace moesim::plan {

namespace {

auto layout_key(const Candidate& c) {
  return std::make_tuple(c.hardware, c.gpus, c.tp, c.cp, c.pp, c.vpp, c.ep, c.etp, c.zero, c.microbatch_size,
                         static_cast<int>(c.recompute), static_cast<int>(c.schedule),
                         static_cast<int>(c.dispatch), c.ep_overlap);
}

// Keeps `front` the feasible plans that no other plan beats on both wall days and `cost` (dollars or
// energy); among equal ones, the first by layout.
template <double Candidate::*cost>
void add_to_front(std::vector<Candidate>& front, const Candidate& c) {
  for (const auto& f : front)
    if (f.wall_days <= c.wall_days && f.*cost <= c.*cost &&
        (f.wall_days < c.wall_days || f.*cost < c.*cost || layout_key(f) < layout_key(c)))
      return;
  front.erase(
      std::remove_if(front.begin(), front.end(),
                     [&](const Candidate& f) { return c.wall_days <= f.wall_days && c.*cost <= f.*cost; }),
      front.end());
  front.push_back(c);
}

void add_to_fronts(std::vector<Candidate>& usd, std::vector<Candidate>& energy, const Candidate& c) {
  add_to_front<&Candidate::usd>(usd, c);
  add_to_front<&Candidate::mwh>(energy, c);
}

void add_to_best(std::vector<Candidate>& best, const Candidate& c, int top) {
  auto at = std::upper_bound(best.begin(), best.end(), c, better);
  if (at - best.begin() >= top) return;
  best.insert(at, c);
  if (static_cast<int>(best.size()) > top) best.pop_back();
}

}  // namespace

bool better(const Candidate& a, const Candidate& b) {
  if (a.meets_deadline != b.meets_deadline) return a.meets_deadline;
  if (a.usd != b.usd) return a.usd < b.usd;
  if (a.wall_days != b.wall_days) return a.wall_days < b.wall_days;
  return layout_key(a) < layout_key(b);
}

double checkpoint_bytes(const Scenario& s) {
  const models::ParamCounts pc = models::count_params(s.model);
  const double params = pc.total + pc.mtp;
  const double weights = 2.0;  // BF16 weights, as the memory model holds them
  const double master = s.workload.master_weights ? 4.0 : 0.0;
  const double moment = bytes_of(s.workload.optimizer_state_dtype);
  if (s.workload.optimizer == Optimizer::kMuon) {
    // One momentum per weight-matrix parameter; AdamW's two for the embedding and output head.
    const double adam = pc.embedding + pc.head;
    return params * (weights + master + moment) + adam * moment;
  }
  return params * (weights + master + 2.0 * moment);
}

bool price(const PlanSpec& p, int hi, const Scenario& c, const models::RoutingInput* ri, double ckpt_bytes,
           Candidate& k) {
  const Hardware& hw = p.hardware[hi];
  const models::Result r = ri ? models::evaluate_analytic(c, *ri) : models::evaluate_analytic(c);
  if (!r.feasible || !r.memory.fits) return false;
  const ParallelismSpec& par = c.parallelism;
  k.hardware = hi;
  k.nodes = c.cluster.nodes;
  k.gpus = c.cluster.gpus();
  k.tp = par.tp, k.cp = par.cp, k.pp = par.pp, k.vpp = par.vpp, k.dp = c.layout.dp, k.ep = par.ep;
  k.etp = par.etp, k.zero = par.zero, k.microbatch_size = par.microbatch_size;
  k.recompute = par.recompute, k.schedule = par.schedule, k.dispatch = c.workload.dispatch;
  k.ep_overlap = par.ep_overlap;
  k.step_time_s = r.step_time;
  k.tokens_per_s_per_gpu = r.tokens_per_second_per_gpu;
  k.mfu = r.mfu;
  k.memory_headroom = r.memory.capacity > 0 ? (r.memory.capacity - r.memory.total) / r.memory.capacity : 0;
  // Seconds per token at the full batch; a ramp's tokens at the mean of the per-token times at its two
  // ends (linear ramp, trapezoid rule).
  const double per_token = r.step_time / r.tokens_per_step;
  double ramp_per_token = per_token;
  if (p.ramp_start_batch > 0 && p.ramp_tokens > 0) {
    Scenario small = c;
    small.parallelism.global_batch = p.ramp_start_batch;
    const models::Result rs = ri ? models::evaluate_analytic(small, *ri) : models::evaluate_analytic(small);
    ramp_per_token = 0.5 * (per_token + rs.step_time / rs.tokens_per_step);
  }
  const double solve_s = (p.tokens - p.ramp_tokens) * per_token + p.ramp_tokens * ramp_per_token;
  const double steps = solve_s / r.step_time;  // full-batch step equivalents
  const Goodput g = goodput(solve_s, k.gpus, ckpt_bytes, p.reliability);
  const double wall_s = solve_s * g.wall_over_solve;
  k.solve_days = solve_s / 86400.0;
  k.wall_days = wall_s / 86400.0;
  k.goodput = g.goodput;
  k.checkpoint_interval_s = g.interval_s;
  k.gpu_hours = k.gpus * wall_s / 3600.0;
  k.usd = k.gpu_hours * hw.usd_per_gpu_hour;
  const auto& b = r.breakdown;
  StepTimes t;
  t.compute = b.compute + b.optimizer;
  t.communication = b.exposed_tp + b.exposed_ep + b.exposed_cp + b.exposed_dp;
  t.idle = b.bubble;
  const double joules = step_energy_j(t, k.gpus, k.nodes, hw.power) * steps * g.wall_over_solve;
  k.mwh = joules / 3.6e9;
  k.joules_per_token = joules / p.tokens;
  k.meets_deadline = p.within_days <= 0 || k.wall_days <= p.within_days;
  return true;
}

Scenario scenario_of(const PlanSpec& p, const Candidate& k) {
  Scenario c = p.base;
  const Hardware& hw = p.hardware[k.hardware];
  c.cluster = hw.cluster;
  c.cluster.nodes = k.nodes;
  // Without a calibration of its own, the base scenario is priced on each hardware by that GPU's default
  // calibration, not by the one its own GPU's entry named.
  if (p.base.calibration.empty()) {
    c.gpu_calibration = hw.gpu_calibration;
    c.gpu_calibration_text = hw.gpu_calibration_text;
  }
  ParallelismSpec& par = c.parallelism;
  par.tp = k.tp, par.cp = k.cp, par.pp = k.pp, par.vpp = k.vpp, par.dp = 0;
  par.ep = k.ep, par.etp = k.etp, par.edp = 0, par.zero = k.zero;
  par.microbatch_size = k.microbatch_size, par.recompute = k.recompute, par.schedule = k.schedule;
  par.ep_overlap = k.ep_overlap;
  par.delay_wgrad = k.ep_overlap && p.base.parallelism.delay_wgrad;  // the base's choice, where it applies
  c.workload.dispatch = k.dispatch;
  // The base scenario's pipeline layout names its own stage count; other stage counts split evenly.
  if (k.pp * k.vpp != p.base.parallelism.pp * p.base.parallelism.vpp) par.pipeline_layout.clear();
  // Node-limited routing (DeepSeek-V3: at most 4 nodes per token) bounds nothing once an EP group spans
  // fewer nodes: such a layout routes without the limit, it is not invalid.
  if (c.routing.node_limit > 0) {
    const int64_t per_node = std::max(1, c.cluster.gpus_per_node);
    const int ep_nodes = static_cast<int>((int64_t(k.ep) * k.etp + per_node - 1) / per_node);
    c.routing.node_limit = std::min(c.routing.node_limit, std::max(1, ep_nodes));
  }
  validate(c);
  return c;
}

namespace {

// What one worker found over its share of the tasks.
struct Partial {
  SearchCounts counts;
  std::vector<Candidate> best, pareto, pareto_energy;
  int64_t above_base = 0;
};

void run_tasks(const PlanSpec& p, const RoutingFor& routing, const std::vector<Candidate>& tasks,
               std::atomic<std::size_t>& next, double ckpt_bytes, const std::optional<Candidate>& base,
               Partial& out) {
  constexpr std::size_t kChunk = 64;
  for (;;) {
    const std::size_t first = next.fetch_add(kChunk);
    if (first >= tasks.size()) return;
    const std::size_t last = std::min(tasks.size(), first + kChunk);
    for (std::size_t i = first; i < last; ++i) {
      const models::RoutingInput* ri = nullptr;
      Scenario c;
      try {
        c = scenario_of(p, tasks[i]);
        if (routing) ri = routing(c);
      } catch (const Error&) {
        ++out.counts.invalid;
        continue;
      }
      ++out.counts.evaluated;
      Candidate k;
      if (!price(p, tasks[i].hardware, c, ri, ckpt_bytes, k)) {
        ++out.counts.infeasible;
        continue;
      }
      ++out.counts.feasible;
      if (base && better(k, *base)) ++out.above_base;
      add_to_best(out.best, k, p.top);
      add_to_fronts(out.pareto, out.pareto_energy, k);
    }
  }
}

}  // namespace

PlanResult search(const PlanSpec& p, const RoutingFor& routing, int jobs) {
  PlanResult out;
  out.checkpoint_bytes = checkpoint_bytes(p.base);
  // The base scenario's own layout, priced like any plan on the first hardware entry whose cluster is the
  // base's (so that a user sees where the layout they run today ranks).
  for (int hi = 0; hi < static_cast<int>(p.hardware.size()); ++hi) {
    if (p.hardware[hi].cluster.name != p.base.cluster.name) continue;
    Candidate k;
    const models::RoutingInput* ri = routing ? routing(p.base) : nullptr;
    if (price(p, hi, p.base, ri, out.checkpoint_bytes, k)) out.base = k;
    out.base_evaluated = true;
    break;
  }
  // Enumerate and prune (cheap, in order), then validate and price in parallel.
  const SearchSpace& x = p.search;
  const int experts = p.base.model.moe.experts;
  const int64_t batch = p.base.parallelism.global_batch;
  std::vector<Candidate> tasks;  // layouts that passed the divisibility checks, to validate and price
  for (int hi = 0; hi < static_cast<int>(p.hardware.size()); ++hi) {
    const Hardware& hw = p.hardware[hi];
    const int gpn = hw.cluster.gpus_per_node;
    const int domain = hw.cluster.scale_up.domain_gpus > 0 ? hw.cluster.scale_up.domain_gpus : gpn;
    for (int nodes = hw.min_nodes; static_cast<int64_t>(nodes) * gpn <= hw.max_gpus; nodes += hw.node_step) {
      const int gpus = nodes * gpn;
      for (int tp : x.tp)
        for (int cp : x.cp)
          for (int pp : x.pp)
            for (int vpp : x.vpp)
              for (int ep : x.ep)
                for (int etp : x.etp)
                  for (int zero : x.zero)
                    for (int mbs : x.microbatch_size)
                      for (Recompute rc : x.recompute)
                        for (Schedule sch : x.schedule)
                          for (DispatchMode dm : x.dispatch)
                            for (bool ov : x.ep_overlap) {
                              ++out.counts.enumerated;
                              const int64_t mp = int64_t{tp} * cp * pp;
                              const bool interleaved = sch == Schedule::kInterleaved;
                              // Combined 1F1B pairs steady-state chunks of 1F1B without a pipeline or of
                              // the interleaved schedule, of a model with experts.
                              const bool overlap_ok =
                                  !ov ||
                                  (experts > 0 && (interleaved || (sch == Schedule::k1F1B && pp == 1)));
                              if (gpus % mp != 0 || (x.tp_within_node && tp * cp > domain) ||
                                  (experts == 0 ? ep != 1 || etp != 1 : experts % ep != 0) ||
                                  pp > p.base.model.layers || (vpp > 1) != interleaved ||
                                  (interleaved && pp < 2) || !overlap_ok) {
                                ++out.counts.pruned;
                                continue;
                              }
                              const int64_t dp = gpus / mp;
                              if (batch % (dp * mbs) != 0 ||
                                  (p.ramp_start_batch > 0 && p.ramp_start_batch % (dp * mbs) != 0) ||
                                  (int64_t{tp} * cp * dp) % (int64_t{ep} * etp) != 0) {
                                ++out.counts.pruned;
                                continue;
                              }
                              Candidate t;
                              t.hardware = hi, t.nodes = nodes, t.tp = tp, t.cp = cp, t.pp = pp, t.vpp = vpp;
                              t.ep = ep, t.etp = etp, t.zero = zero, t.microbatch_size = mbs;
                              t.recompute = rc, t.schedule = sch, t.dispatch = dm, t.ep_overlap = ov;
                              tasks.push_back(t);
                            }
    }
  }
  const int workers = std::max(1, std::min<int>(jobs, static_cast<int>(tasks.size() / 64) + 1));
  std::vector<Partial> parts(workers);
  std::atomic<std::size_t> next{0};
  std::vector<std::exception_ptr> errors(workers);
  {
    std::vector<std::thread> threads;
    for (int w = 1; w < workers; ++w)
      threads.emplace_back([&, w] {
        try {
          run_tasks(p, routing, tasks, next, out.checkpoint_bytes, out.base, parts[w]);
        } catch (...) {
          errors[w] = std::current_exception();
        }
      });
    try {
      run_tasks(p, routing, tasks, next, out.checkpoint_bytes, out.base, parts[0]);
    } catch (...) {
      errors[0] = std::current_exception();
    }
    for (auto& t : threads) t.join();
  }
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  // Merge: the orders are total, so the result does not depend on how the tasks were shared.
  for (const Partial& part : parts) {
    out.counts.invalid += part.counts.invalid;
    out.counts.evaluated += part.counts.evaluated;
    out.counts.infeasible += part.counts.infeasible;
    out.counts.feasible += part.counts.feasible;
    out.base_rank += part.above_base;
    for (const auto& c : part.best) add_to_best(out.best, c, p.top);
    for (const auto& c : part.pareto) add_to_front<&Candidate::usd>(out.pareto, c);
    for (const auto& c : part.pareto_energy) add_to_front<&Candidate::mwh>(out.pareto_energy, c);
  }
  if (out.base) ++out.base_rank;  // 1-based: plans ranked above it, plus one
  for (auto* front : {&out.pareto, &out.pareto_energy})
    std::sort(front->begin(), front->end(), [](const Candidate& a, const Candidate& b) {
      return a.wall_days != b.wall_days ? a.wall_days < b.wall_days : layout_key(a) < layout_key(b);
    });
  return out;
}

}  // namespace moesim::plan
