#include "sim/des_fidelity.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>

#include "models/schedule_order.hpp"
#include "scenarios/error.hpp"

namespace moesim::sim {

void check_step_options(const StepOptions& o) {
  if (o.microbatches < 0)
    throw ConfigError("des options: microbatches: expected 0 (auto) or a positive count, found " +
                      std::to_string(o.microbatches));
  if (!(o.precision_fraction > 0) || o.precision_fraction > 0.1)
    throw ConfigError("des options: precision: expected a fraction in (0, 0.1], found " +
                      std::to_string(o.precision_fraction));
}

std::string fidelity_text(const StepOptions& o, const FlowAggregation& a, bool one_plane, int planes,
                          int groups, int groups_per_stage, int m, const std::vector<int>& sim_m) {
  const bool agg = a.node_pairs, pool = a.pool;
  std::string f = groups == groups_per_stage ? "every EP group of every stage"
                                             : "one representative EP group per pipeline rank (of " +
                                                   std::to_string(groups_per_stage) + ")";
  f += agg ? "; fabric flows aggregated per node pair and plane" : "; one flow per GPU pair";
  if (pool) f += "; NVLink traffic pooled per domain";
  if (!a.not_pooled.empty())
    f += " (NVLink not pooled per domain, which would not be exact: " + a.not_pooled +
         "; engine.aggregation \"node\" pools it approximately, in fewer flows)";
  if (pool && o.aggregation == moesim::Aggregation::kAuto) f += " (balanced in every all-to-all: exact)";
  if (one_plane)
    f += "; all-to-alls on fabric plane 0 of " + std::to_string(planes) +
         " only (every plane carries the same traffic: exact; link usage covers plane 0)";
  if (sim_m.size() == 1) {
    f += "; all " + std::to_string(m) + " microbatches";
  } else {
    f += "; " + std::to_string(sim_m[0]) + " and " + std::to_string(sim_m[1]) + " microbatches simulated, " +
         std::to_string(m) + " extrapolated linearly";
  }
  return f;
}

int ep_groups_per_stage(const Scenario& s) {
  return s.layout.ep_groups;
}

int simulated_groups(const Scenario& s, const StepOptions& o) {
  return o.groups == DesGroups::kAll ? s.layout.ep_groups : 1;
}

std::vector<int> simulated_gpu_ids(const Scenario& s, const StepOptions& o) {
  const Layout& L = s.layout;
  const int groups = simulated_groups(s, o);
  std::vector<int> gpus;
  for (int r = 0; r < L.pp; ++r)
    for (int g = 0; g < groups; ++g)
      for (int a = 0; a < L.ep; ++a) gpus.push_back(L.ep_gpu(r, g, a));
  return gpus;
}

// True when pooling NVLink per domain (and folding fabric flows per node pair, which pooling implies)
// changes nothing: every NVLink domain holds the simulated GPUs of one EP group of one pipeline rank only
// (so no two collectives and no pipeline transfer share it), and in every MoE layer's all-to-all the GPUs
// of a domain send and receive equal bytes, both inside the domain and across the fabric (the combine
// and the backward all-to-alls are scaled transposes of the dispatch, so checking the dispatch covers
// them; pipeline transfers are equal for every GPU).
bool balanced_nvlink(const Scenario& s, const models::Workload& w, int groups, std::string* why) {
  const auto fail = [why](const char* reason) {
    if (why != nullptr) *why = reason;
    return false;
  };
  // Nothing to pool, and nothing to explain: no NVLink domain, or no all-to-all.
  if (s.cluster.scale_up.kind == ScaleUpKind::kNone || w.moe_detail.empty()) return false;
  const auto& par = s.parallelism;
  const int ep = std::max(1, par.ep), etp = par.etp, stage_gpus = s.layout.stage_gpus, span = ep * etp;
  const int domain = std::max(1, s.cluster.scale_up.domain_gpus);
  std::map<int, int> owner;  // domain → rank · groups + group
  for (int r = 0; r < par.pp; ++r)
    for (int g = 0; g < groups; ++g)
      for (int a = 0; a < ep; ++a) {
        const int dom = (r * stage_gpus + g * span + a * etp) / domain;
        const auto [it, fresh] = owner.try_emplace(dom, r * groups + g);
        if (!fresh && it->second != r * groups + g)
          return fail("an NVLink domain holds GPUs of more than one EP group or pipeline stage");
      }
  // Per GPU: bytes to and from its own domain (NVLink) and to and from other domains (the fabric, which
  // pooling also folds per node pair: exact when the GPUs of a node load their NICs equally).
  const auto same = [](double a, double b) { return std::abs(a - b) <= 1e-9 * std::max({1.0, a, b}); };
  for (const auto& d : w.moe_detail) {
    std::vector<std::array<double, 4>> load(static_cast<std::size_t>(ep),
                                            {0, 0, 0, 0});  // nvl out, in; fabric out, in
    for (int x = 0; x < ep; ++x)
      for (int y = 0; y < ep; ++y) {
        if (x == y) continue;
        const double b = d.wire_bytes[static_cast<std::size_t>(x) * ep + y];
        const int k = (x * etp) / domain == (y * etp) / domain ? 0 : 2;
        load[x][k] += b;
        load[y][k + 1] += b;
      }
    for (int x = 0; x < ep; ++x) {
      const int first = ((x * etp) / domain) * domain / etp;  // first EP rank of x's domain
      for (int k = 0; k < 4; ++k)
        if (!same(load[x][k], load[first][k]))
          return fail("the all-to-all loads the GPUs of an NVLink domain unequally");
    }
  }
  return true;
}

// True when one fabric plane can stand for all: a rail-optimised fabric with one plane per GPU of a node
// (planes share no link), every fabric leg of every all-to-all stays in its plane (the sender's and the
// receiver's local index are equal: DeepEP-style hierarchical dispatch), and for every pair of nodes each
// plane carries the same bytes. Then every plane's flows meet the same contention as plane 0's, and the
// collectives end when plane 0's do. Pipeline transfers stay simulated on every plane.
bool symmetric_planes(const Scenario& s, const models::Workload& w) {
  const auto& c = s.cluster;
  const auto& par = s.parallelism;
  const int gpn = c.gpus_per_node, ep = std::max(1, par.ep);
  if (c.scale_out.kind != TopologyKind::kRailOptimized || c.scale_out.planes != gpn || gpn < 2 ||
      par.etp != 1 || w.moe_detail.empty() || (ep * par.etp) % gpn != 0)
    return false;
  const auto same = [](double a, double b) { return std::abs(a - b) <= 1e-9 * std::max({1.0, a, b}); };
  for (const auto& d : w.moe_detail) {
    std::map<std::pair<int, int>, double> first;  // (node a, node b) → plane 0's bytes
    for (int x = 0; x < ep; ++x)
      for (int y = 0; y < ep; ++y) {
        const double b = d.wire_bytes[static_cast<std::size_t>(x) * ep + y];
        if (x == y || x / gpn == y / gpn) continue;
        if (x % gpn != y % gpn) {
          if (b > 0) return false;
          continue;
        }
        const auto [it, fresh] = first.try_emplace({x / gpn, y / gpn}, b);
        if (!fresh && !same(it->second, b)) return false;
      }
  }
  return true;
}

FlowAggregation choose_aggregation(const Scenario& s, const models::Workload& w, const StepOptions& o,
                                   int simulated_gpus, int max_hosts) {
  FlowAggregation a;
  a.node_pairs =
      o.aggregation == moesim::Aggregation::kNodePair || o.aggregation == moesim::Aggregation::kNode;
  a.pool = o.aggregation == moesim::Aggregation::kNode;
  // auto: NVLink pooled per domain when that changes nothing (every GPU of every domain sends and
  // receives the same NVLink bytes in every all-to-all); otherwise per GPU pair while the simulated GPUs
  // fit the per-GPU platform, aggregated per node pair beyond.
  if (o.aggregation == moesim::Aggregation::kAuto) {
    std::string why;
    a.pool = balanced_nvlink(s, w, o.groups == DesGroups::kAll ? ep_groups_per_stage(s) : 1, &why);
    a.node_pairs = a.pool || simulated_gpus > max_hosts;
    // Worth saying only where a domain holds several GPUs (why is empty where nothing could be pooled).
    if (!a.pool && s.layout.domain_gpus > 1) a.not_pooled = why;
  }
  return a;
}

std::vector<int> microbatch_plan(const Scenario& s, const StepOptions& o) {
  const auto& par = s.parallelism;
  const int m = s.layout.microbatches;
  const int vpp = par.schedule == Schedule::kInterleaved ? par.vpp : 1;
  std::vector<int> sim_m;
  // mB - mA: the schedule's period in microbatches (DualPipe adds one per direction, interleaving a
  // group of pp).
  const int step = par.schedule == Schedule::kDualPipe      ? 2
                   : par.schedule == Schedule::kInterleaved ? par.pp
                                                            : 1;
  const int base = o.microbatches > 0 ? o.microbatches : 3 * par.pp;
  if (o.microbatches == 0 && m <= 4 * par.pp) {
    sim_m = {m};
  } else if (base + step >= m) {
    sim_m = {m};
  } else {
    sim_m = {base, base + step};
  }
  for (int x : sim_m) {
    try {
      models::check_schedule_order_args(par.schedule, par.pp, vpp, x);
    } catch (const ConfigError& e) {
      throw ConfigError(located_message(s.source, "/engine/microbatches",
                                        "a count the schedule can run (" + std::string(e.what()) + ")",
                                        std::to_string(o.microbatches)));
    }
  }
  return sim_m;
}

double extrapolate(double a, double b, int m, const std::vector<int>& sim_m) {
  if (sim_m.size() == 1) return a;
  return a + (m - sim_m[0]) * (b - a) / (sim_m[1] - sim_m[0]);
}

}  // namespace moesim::sim
