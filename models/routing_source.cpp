#include "models/routing_source.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

#include "models/params.hpp"
#include "models/placement.hpp"
#include "scenarios/error.hpp"
#include "traces/generators.hpp"
#include "traces/import.hpp"
#include "traces/load.hpp"
#include "traces/policies.hpp"
#include "traces/trace_format.hpp"

namespace moesim::models {
namespace {

[[noreturn]] void bad(const Scenario& s, const std::string& ptr, const std::string& expected,
                      const std::string& found) {
  throw ConfigError(located_message(s.source, ptr, expected, found));
}

traces::PolicySpec policy_spec(const Scenario& s) {
  const auto& m = s.model.moe;
  const auto& r = s.routing;
  traces::PolicySpec p;
  p.name = r.policy;
  p.top_k = m.top_k;
  p.score = m.score;
  p.groups = std::max(1, m.groups);
  p.topk_groups = m.topk_groups > 0 ? m.topk_groups : p.groups;
  p.node_limit = r.node_limit;
  p.experts_per_node = std::max(1, m.experts / std::max(1, ep_nodes(s)));
  p.capacity_factor = r.capacity_factor > 0 ? r.capacity_factor : 1.0;
  p.base = r.capacity_base;
  p.bias_update_speed = r.bias_update_speed;
  p.threshold = r.threshold;
  p.top_p = r.top_p;
  p.hash_seed = r.hash_seed;
  return p;
}

traces::GeneratorSpec generator_spec(const Scenario& s) {
  const auto& l = s.routing.load;
  traces::GeneratorSpec g;
  g.name = l.generator;
  g.seed = l.seed;
  g.noise_scale = l.noise_scale;
  g.s = l.zipf_s;
  g.alpha = l.alpha;
  g.hot_fraction = l.hot_fraction > 0 ? l.hot_fraction : 0.5;
  g.hot_expert = l.hot_expert;
  g.hot_rank = l.hot_rank;
  g.experts_per_rank = std::max(1, s.model.moe.experts / std::max(1, s.parallelism.ep));
  g.burst_probability = l.burst_probability;
  g.drift_sigma = l.drift_sigma;
  return g;
}

// Maps samples keyed by MoE-layer index (the trace format's `layer`) to the model's MoE layers (the
// nearest recorded MoE layer; a tie goes to the one recorded first) and rescales their sources to ep.
std::vector<traces::RoutingSample> map_to_layers(const Scenario& s,
                                                 std::vector<traces::RoutingSample> recorded) {
  const auto blocks = moe_blocks(s.model);
  std::vector<traces::RoutingSample> out;
  if (recorded.empty()) return out;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const int layer = static_cast<int>(i);
    const traces::RoutingSample* best = &recorded.front();
    for (const auto& r : recorded)
      if (std::abs(r.layer - layer) < std::abs(best->layer - layer)) best = &r;
    traces::RoutingSample x =
        best->sources == s.parallelism.ep ? *best : traces::rescale_sources(*best, s.parallelism.ep);
    x.layer = static_cast<int>(i);
    out.push_back(std::move(x));
  }
  return out;
}

// What the scenario's model says of a trace: its experts, its MoE layers, and the ep its sources are
// rescaled to (tokens exchangeable across ranks: ep must divide or be a multiple of the sources).
void check_trace_shape(const Scenario& s, const std::string& src, int experts, int layers, int sources,
                       const std::string& layers_what, const std::string& sources_where) {
  const int E = s.model.moe.experts;
  const int L = static_cast<int>(moe_blocks(s.model).size());
  const int ep = s.parallelism.ep;
  const std::string model = " (the model of " + s.source + ")";
  if (experts != E)
    throw ConfigError(
        located_message(src, "/experts", std::to_string(E) + " experts" + model, std::to_string(experts)));
  if (layers > L)
    throw ConfigError(located_message(src, "/layers", "at most " + std::to_string(L) + " MoE layers" + model,
                                      std::to_string(layers) + " " + layers_what));
  if (ep % sources != 0 && sources % ep != 0)
    throw ConfigError(located_message(
        src, sources_where,
        "source ranks that divide or are a multiple of ep = " + std::to_string(ep) + " (" + s.source + ")",
        std::to_string(sources)));
}

// Streams the scenario's trace as recorded, one step at a time: fn(step, samples as recorded), every
// sample checked against the model. Stops after max_steps steps when max_steps > 0.
void for_each_recorded_step(const Scenario& s, int max_steps,
                            const std::function<void(int, std::vector<traces::RoutingSample>&)>& fn) {
  const auto& t = s.routing.trace;
  const int L = static_cast<int>(moe_blocks(s.model).size());
  if (t.format == TraceFormat::kMoesim) {
    traces::TraceReader reader(t.path);
    const traces::TraceHeader& h = reader.header();
    check_trace_shape(s, t.path + ":1", h.experts, h.layers, h.sources, "(header \"layers\")", "/sources");
    traces::RoutingSample x;
    std::vector<traces::RoutingSample> step;
    int current = -1, done = 0;
    while (reader.next(x)) {
      if (x.step != current && !step.empty()) {
        fn(current, step);
        step.clear();
        if (max_steps > 0 && ++done >= max_steps) return;
      }
      current = x.step;
      step.push_back(x);
    }
    if (!step.empty()) fn(current, step);
    return;
  }
  traces::ImportSpec spec;
  spec.format = t.format;
  spec.path = t.path;
  spec.experts = s.model.moe.experts;
  spec.top_k = t.kind == "expert_counts_top1" ? 1 : s.model.moe.top_k;
  spec.model = t.model;
  spec.kind = t.kind;
  spec.domain = t.domain;
  spec.max_layers = L;
  const std::vector<traces::RoutingSample> all = traces::import_samples(spec);
  if (!all.empty())
    check_trace_shape(s, t.path, all.front().experts, 0, all.front().sources, "",
                      t.format == TraceFormat::kMegatron ? "rank files" : "sources");
  int done = 0;
  for (std::size_t i = 0; i < all.size();) {
    std::size_t j = i;
    std::vector<traces::RoutingSample> step;
    while (j < all.size() && all[j].step == all[i].step) step.push_back(all[j++]);
    fn(all[i].step, step);
    i = j;
    if (max_steps > 0 && ++done >= max_steps) return;
  }
}

// "1-6, 8-14, 20" for sorted layer numbers.
std::string layer_ranges(const std::vector<int>& v) {
  std::string out;
  for (std::size_t i = 0; i < v.size();) {
    std::size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
    out += (out.empty() ? "" : ", ") + std::to_string(v[i]) + (j > i ? "-" + std::to_string(v[j]) : "");
    i = j + 1;
  }
  return out;
}

}  // namespace

std::vector<int> moe_blocks(const ModelSpec& m) {
  std::vector<int> b;
  for (int l = 0; l < m.layers; ++l)
    if (is_moe_layer(m, l)) b.push_back(l);
  if (m.moe.experts > 0)
    for (int l = 0; l < m.mtp_depth; ++l) b.push_back(m.layers + l);
  return b;
}

int tokens_per_ep_rank(const Scenario& s) {
  const auto& p = s.parallelism;
  return std::max(1,
                  static_cast<int>(int64_t(p.microbatch_size) * s.workload.seq_len / (int64_t(p.cp) * p.tp)));
}

RoutingContext routing_context(const Scenario& s) {
  const auto& p = s.parallelism;
  RoutingContext ctx;
  ctx.geo.ep = p.ep;
  ctx.geo.per_node = s.layout.ep_group().per_node;
  ctx.geo.top_k = std::max(1, s.model.moe.top_k);
  ctx.geo.node_limit = s.routing.node_limit;
  ctx.geo.hierarchical = s.workload.dispatch == DispatchMode::kHierarchical;
  if (s.routing.policy == "group_limited_topk" && s.model.moe.groups > 1) {
    // The closed form follows the group limit (dispatch_stats_grouped); sampled and trace routing count
    // the copies the policy routes.
    ctx.geo.groups = s.model.moe.groups;
    ctx.geo.topk_groups = s.model.moe.topk_groups > 0 ? s.model.moe.topk_groups : s.model.moe.groups;
  }
  ctx.experts = s.model.moe.experts;
  ctx.tokens_per_source = double(p.microbatch_size) * s.workload.seq_len / p.cp / p.tp;
  ctx.capacity_factor = s.routing.capacity_factor;
  ctx.bytes_per_copy = dispatch_bytes_per_token(s.model.hidden, forward_dispatch_precision(s.workload));
  return ctx;
}

int ep_nodes(const Scenario& s) {
  return s.layout.ep_group().nodes();
}

void check_routing(const Scenario& s) {
  const auto& pl = s.placement;
  const PlacementPolicy& policy = placement_policies().get(pl.policy, s.source, "/placement/policy");
  if (s.model.moe.experts == 0) return;
  const auto& r = s.routing;
  traces::routing_policies().require(r.policy, s.source, "/routing/policy");
  if (r.node_limit > 0 && r.mode == RoutingMode::kSampled && !traces::uses_node_limit(r.policy))
    bad(s, "/routing/policy", "\"node_limited\" when node_limit is set (the other policies ignore it)",
        "\"" + r.policy + "\"");
  if (r.mode == RoutingMode::kExpected) {
    if (!traces::load_profiles().contains(r.load.generator))
      bad(s, "/routing/load/generator",
          join_names(traces::load_profiles().names()) +
              " in mode \"expected\" (other generators need \"mode\": \"sampled\")",
          "\"" + r.load.generator + "\"");
  } else if (r.mode == RoutingMode::kSampled) {
    traces::gate_generators().require(r.load.generator, s.source, "/routing/load/generator");
    try {
      traces::make_routing_policy(policy_spec(s));
      traces::GateScoreGenerator(generator_spec(s), s.model.moe.experts);
    } catch (const ConfigError& e) {
      throw ConfigError(s.source + ": /routing: " + e.what());
    }
  }
  const int slots = s.model.moe.experts + pl.redundant_experts;
  if (slots % s.parallelism.ep != 0)
    bad(s, "/placement/redundant_experts",
        "experts + redundant_experts divisible by ep (" + std::to_string(s.parallelism.ep) + ")",
        std::to_string(pl.redundant_experts) + " (" + std::to_string(slots) + " slots)");
  if (pl.redundant_experts > 0 && !policy.load_aware)
    bad(s, "/placement/policy", "eplb or greedy for redundant experts", "\"" + pl.policy + "\"");
}

std::vector<traces::RoutingSample> sample_routing(const Scenario& s, int step) {
  std::vector<traces::RoutingSample> out;
  const auto gen = generator_spec(s);
  const int layers = std::min<int>(s.routing.sample_layers, static_cast<int>(moe_blocks(s.model).size()));
  for (int l = 0; l < layers; ++l) {
    auto policy = traces::make_routing_policy(policy_spec(s));  // one object per layer (stateful bias)
    out.push_back(traces::route_step(*policy, gen, step, l, s.parallelism.ep, tokens_per_ep_rank(s),
                                     s.model.moe.experts));
  }
  return out;
}

void for_each_trace_step(const Scenario& s, int max_steps,
                         const std::function<void(int, std::vector<traces::RoutingSample>&)>& fn) {
  for_each_recorded_step(s, max_steps, [&](int step, std::vector<traces::RoutingSample>& recorded) {
    auto mapped = map_to_layers(s, std::move(recorded));
    fn(step, mapped);
  });
}

TraceCoverage check_trace(const Scenario& s) {
  TraceCoverage c;
  if (s.model.moe.experts == 0 || s.routing.mode != RoutingMode::kTrace) return c;
  const int L = static_cast<int>(moe_blocks(s.model).size());
  std::vector<int> missing_steps(static_cast<std::size_t>(L), 0);  // per MoE layer: steps without a record
  for_each_recorded_step(s, 0, [&](int, std::vector<traces::RoutingSample>& recorded) {
    std::vector<char> seen(static_cast<std::size_t>(L), 0);
    for (const auto& x : recorded) seen[x.layer] = 1;
    if (c.steps == 0) c.first_step = map_to_layers(s, recorded);
    for (int l = 0; l < L; ++l) missing_steps[l] += seen[l] ? 0 : 1;
    ++c.steps;
    c.records += static_cast<int64_t>(recorded.size());
  });
  const std::string& path = s.routing.trace.path;
  if (c.steps == 0)
    throw ConfigError(
        located_message(path, "records", "at least one record (" + s.source + " uses it)", "none"));
  std::vector<int> always, sometimes;
  for (int l = 0; l < L; ++l) {
    if (missing_steps[l] == c.steps)
      always.push_back(l);
    else if (missing_steps[l] > 0)
      sometimes.push_back(l);
  }
  if (always.empty() && sometimes.empty()) return c;
  std::string what;
  if (!always.empty())
    what = std::to_string(always.size()) + " of the model's " + std::to_string(L) +
           " MoE layers have no record (layers " + layer_ranges(always) + ")";
  if (!sometimes.empty())
    what += (what.empty() ? "" : "; ") + std::to_string(sometimes.size()) + " have none in some of the " +
            std::to_string(c.steps) + " steps (layers " + layer_ranges(sometimes) + ")";
  c.note = path + ": " + what +
           ": each takes the counts of the nearest recorded layer of its step (a tie: the one recorded "
           "first), see docs/trace-format.md";
  return c;
}

std::vector<std::vector<traces::RoutingSample>> load_trace_steps(const Scenario& s, int max_steps) {
  std::vector<std::vector<traces::RoutingSample>> out;
  for_each_trace_step(s, max_steps,
                      [&](int, std::vector<traces::RoutingSample>& x) { out.push_back(std::move(x)); });
  return out;
}

ExpertLoads layer_loads(const Scenario& s, const std::vector<traces::RoutingSample>* samples) {
  const int E = s.model.moe.experts;
  const auto blocks = moe_blocks(s.model);
  ExpertLoads loads(blocks.size(), std::vector<double>(static_cast<std::size_t>(E), 0.0));
  if (samples && !samples->empty()) {
    for (std::size_t l = 0; l < blocks.size(); ++l) {
      const auto c = (*samples)[l % samples->size()].expert_counts();
      for (int e = 0; e < E; ++e) loads[l][e] = static_cast<double>(c[e]);
    }
  } else {
    const traces::ShareGenerator gen(s.routing.load, E, s.model.moe.top_k);
    for (std::size_t l = 0; l < blocks.size(); ++l) loads[l] = gen.shares(static_cast<int>(l));
  }
  return loads;
}

std::vector<std::vector<double>> coactivation_counts(const Scenario& s, const traces::RoutingSample& x) {
  if (x.token_experts.empty() || x.top_k <= 0)
    bad(s, "/placement/policy",
        "token-level routing (routing.mode \"sampled\", or a trace with token detail) for \"coactivation\"",
        "expert counts only");
  const int E = x.experts;
  std::vector<std::vector<double>> c(static_cast<std::size_t>(E),
                                     std::vector<double>(static_cast<std::size_t>(E), 0.0));
  const std::size_t tokens = x.token_experts.size() / x.top_k;
  for (std::size_t t = 0; t < tokens; ++t)
    for (int i = 0; i < x.top_k; ++i)
      for (int j = i + 1; j < x.top_k; ++j) {
        const int a = x.token_experts[t * x.top_k + i], b = x.token_experts[t * x.top_k + j];
        if (a < 0 || b < 0 || a == b) continue;
        c[a][b] += 1;
        c[b][a] += 1;
      }
  return c;
}

PlacementResult place_for(const Scenario& s, const ExpertLoads& loads,
                          const std::vector<traces::RoutingSample>* samples) {
  PlacementResult out;
  const auto& pl = s.placement;
  if (!placement_policies().get(pl.policy).load_aware && pl.redundant_experts == 0) return out;
  PlacementInput in;
  in.weight = loads;
  in.num_replicas = s.model.moe.experts + pl.redundant_experts;
  in.num_gpus = s.parallelism.ep;
  in.num_nodes = pl.nodes > 0 ? pl.nodes : ep_nodes(s);
  in.num_groups = pl.groups > 0 ? pl.groups : std::max(1, s.model.moe.groups);
  if (placement_policies().get(pl.policy).needs_coactivation) {
    if (samples == nullptr || samples->empty())
      bad(s, "/placement/policy",
          "token-level routing (routing.mode \"sampled\", or a trace with token detail) for \"coactivation\"",
          std::string("routing mode \"") + to_string(s.routing.mode) + "\"");
    // One matrix per MoE layer, the samples reused cyclically like their loads.
    for (std::size_t l = 0; l < loads.size(); ++l)
      in.coactivation.push_back(coactivation_counts(s, (*samples)[l % samples->size()]));
  }
  try {
    out.placement = place(pl.policy, in);
  } catch (const ConfigError& e) {
    throw ConfigError(s.source + ": /placement: " + e.what());
  }
  for (const auto& p2l : out.placement.phy2log)
    out.slot_maps.push_back(SlotMap::from_phy2log(p2l, s.parallelism.ep, s.model.moe.experts));
  return out;
}

RoutingInput routing_input(const Scenario& s, const TraceCoverage* trace) {
  RoutingInput in;
  if (s.model.moe.experts == 0) return in;
  check_routing(s);
  if (s.routing.mode == RoutingMode::kSampled) in.samples = sample_routing(s, 0);
  if (s.routing.mode == RoutingMode::kTrace && trace != nullptr) {
    in.samples = trace->first_step;
  } else if (s.routing.mode == RoutingMode::kTrace) {
    auto steps = load_trace_steps(s, 1);
    if (steps.empty())
      bad(s, "/routing/trace", "a trace with at least one step", "no record in " + s.routing.trace.path);
    in.samples = std::move(steps.front());
  }
  const auto& pl = s.placement;
  if (!placement_policies().get(pl.policy).load_aware && pl.redundant_experts == 0) return in;
  const ExpertLoads loads = layer_loads(s, in.samples.empty() ? nullptr : &in.samples);
  in.slot_maps = place_for(s, loads, in.samples.empty() ? nullptr : &in.samples).slot_maps;
  return in;
}

}  // namespace moesim::models
