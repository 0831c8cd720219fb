// Gate-score generators (traces/generators.cpp) and routing policies (traces/policies.cpp), checked
// against values derived independently of the code under test:
//   - hand-made 4 × 6 logits written as log-probabilities (logit = ln p, so softmax gives p back) or
//     log-odds (logit = ln(s / (1 − s)), so sigmoid gives s back), with the experts and weights each
//     policy must produce worked out by hand in the comments;
//   - naive CPU references written inline (full sorts, no shortcuts) for group-limited routing;
//   - statistical bounds with fixed seeds: with Gumbel noise the top-1 choice is distributed as
//     softmax(bias), so a profile's top-1 shares are known in closed form.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "scenarios/error.hpp"
#include "traces/generators.hpp"
#include "traces/policies.hpp"

namespace moesim::traces {
namespace {

constexpr double kWeightTol = 1e-6;  // logits are floats: softmax recovers p to ~1e-7

// logit rows whose softmax is the given probabilities.
std::vector<float> log_probs(const std::vector<std::vector<double>>& rows) {
  std::vector<float> l;
  for (const auto& r : rows)
    for (double p : r) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

// logit rows whose sigmoid is the given scores.
std::vector<float> log_odds(const std::vector<std::vector<double>>& rows) {
  std::vector<float> l;
  for (const auto& r : rows)
    for (double s : r) l.push_back(static_cast<float>(std::log(s / (1 - s))));
  return l;
}

std::unique_ptr<RoutingPolicy> make(PolicySpec spec) {
  return make_routing_policy(spec);
}

RoutedTokens route(RoutingPolicy& policy, const std::vector<float>& logits, int experts, int64_t first = 0) {
  RoutedTokens out;
  policy.route(logits.data(), static_cast<int>(logits.size()) / experts, experts, out, first);
  return out;
}

// Token t must use exactly `experts` (strongest first, then -1) with `weights`.
void expect_token(const RoutedTokens& r, int t, const std::vector<int>& experts,
                  const std::vector<double>& weights) {
  SCOPED_TRACE("token " + std::to_string(t));
  ASSERT_EQ(r.used(t), static_cast<int>(experts.size()));
  for (int j = 0; j < r.width; ++j) {
    if (j < static_cast<int>(experts.size())) {
      EXPECT_EQ(r.expert(t, j), experts[j]) << "entry " << j;
      EXPECT_NEAR(r.weight(t, j), weights[j], kWeightTol) << "entry " << j;
    } else {
      EXPECT_EQ(r.expert(t, j), -1) << "entry " << j;
      EXPECT_EQ(r.weight(t, j), 0.0f) << "entry " << j;
    }
  }
}

std::vector<double> softmax(const float* l, int n) {
  std::vector<double> p(l, l + n);
  const double mx = *std::max_element(p.begin(), p.end());
  double sum = 0;
  for (auto& v : p) sum += v = std::exp(v - mx);
  for (auto& v : p) v /= sum;
  return p;
}

GeneratorSpec gen(const std::string& name, uint64_t seed = 7) {
  GeneratorSpec g;
  g.name = name;
  g.seed = seed;
  return g;
}

// The 4 × 6 probabilities used by several hand cases.
const std::vector<std::vector<double>> kProbs{
    {0.40, 0.30, 0.10, 0.10, 0.05, 0.05},
    {0.05, 0.05, 0.10, 0.20, 0.25, 0.35},
    {0.10, 0.50, 0.05, 0.05, 0.20, 0.10},
    {0.15, 0.15, 0.30, 0.10, 0.20, 0.10},
};

// ------------------------------------------------------------------------------------ registries

TEST(RoutingPolicies, RegistryNamesAndErrors) {
  std::vector<std::string> names;
  for (const auto& p : routing_policies()) {
    names.push_back(p.name);
    EXPECT_FALSE(p.description.empty()) << p.name;
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"softmax_topk", "sigmoid_topk", "group_limited_topk", "node_limited",
                                      "capacity", "expert_choice", "hash", "threshold", "top_p"}));
  PolicySpec bad_name;
  bad_name.name = "softmax";
  try {
    make(bad_name);
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("expected one of softmax_topk, sigmoid_topk"), std::string::npos) << m;
    EXPECT_NE(m.find("found \"softmax\""), std::string::npos) << m;
  }
  PolicySpec bad_k;
  bad_k.top_k = 0;
  try {
    make(bad_k);
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "routing policy \"softmax_topk\": /top_k: expected at least 1 expert per token, found 0");
  }
  PolicySpec groups;
  groups.name = "group_limited_topk";
  groups.groups = 4;
  groups.topk_groups = 2;
  auto p = make(groups);
  const std::vector<float> logits(6, 0.0f);
  RoutedTokens out;
  EXPECT_THROW(p->route(logits.data(), 1, 6, out), ConfigError);  // 4 groups do not divide 6 experts
  PolicySpec cap;
  cap.name = "capacity";
  cap.capacity_factor = 0;
  EXPECT_THROW(make(cap), ConfigError);
  cap.capacity_factor = 1;
  cap.base = "expert_choice";
  EXPECT_THROW(make(cap), ConfigError);
  PolicySpec topp;
  topp.name = "top_p";
  topp.top_p = 1.5;
  EXPECT_THROW(make(topp), ConfigError);
}

TEST(GateGenerators, RegistryNamesAndErrors) {
  std::vector<std::string> names;
  for (const auto& g : gate_generators()) names.push_back(g.name);
  EXPECT_EQ(names, (std::vector<std::string>{"uniform", "zipf", "dirichlet", "hot_expert", "hot_rank",
                                             "rotating", "bursts", "drift"}));
  try {
    GateScoreGenerator g(gen("zipfian"), 8);
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("expected one of uniform, zipf, dirichlet"), std::string::npos)
        << e.what();
  }
  auto rank = gen("hot_rank");
  rank.experts_per_rank = 3;
  try {
    GateScoreGenerator g(rank, 8);
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(
        e.what(),
        "gate generator \"hot_rank\": /experts_per_rank: expected a divisor of the 8 experts, found 3");
  }
  auto hot = gen("hot_expert");
  hot.hot_fraction = 1.0;
  EXPECT_THROW(GateScoreGenerator(hot, 8), ConfigError);
}

// ------------------------------------------------------------------------------ hand-made logits

TEST(RoutingPolicies, SoftmaxTopkByHand) {
  // Top-2 of p, weights p_e / (p_a + p_b): token 0 {0, 1} 0.4/0.7, 0.3/0.7; token 1 {5, 4} 0.35/0.6,
  // 0.25/0.6; token 2 {1, 4} 0.5/0.7, 0.2/0.7; token 3 {2, 4} 0.3/0.5, 0.2/0.5.
  PolicySpec spec;
  spec.top_k = 2;
  auto p = make(spec);
  const auto r = route(*p, log_probs(kProbs), 6);
  ASSERT_EQ(r.width, 2);
  expect_token(r, 0, {0, 1}, {4.0 / 7, 3.0 / 7});
  expect_token(r, 1, {5, 4}, {7.0 / 12, 5.0 / 12});
  expect_token(r, 2, {1, 4}, {5.0 / 7, 2.0 / 7});
  expect_token(r, 3, {2, 4}, {0.6, 0.4});
  EXPECT_EQ(r.dropped, 0);
  // Without renormalisation the weights are the probabilities themselves.
  spec.normalize_weights = false;
  const auto raw = route(*make(spec), log_probs(kProbs), 6);
  expect_token(raw, 0, {0, 1}, {0.40, 0.30});
  expect_token(raw, 3, {2, 4}, {0.30, 0.20});
}

TEST(RoutingPolicies, SigmoidTopkAndAuxLossFreeBiasByHand) {
  // s = {0.9, 0.8, 0.7, 0.2, 0.1, 0.3}: top-2 {0, 1}, weights 0.9/1.7, 0.8/1.7.
  PolicySpec spec;
  spec.name = "sigmoid_topk";
  spec.top_k = 2;
  spec.bias_update_speed = 0.15;
  auto p = make(spec);
  const auto logits = log_odds({{0.9, 0.8, 0.7, 0.2, 0.1, 0.3}});
  expect_token(route(*p, logits, 6), 0, {0, 1}, {9.0 / 17, 8.0 / 17});
  // Loads {10, 10, 0, 4, 4, 2}, mean 5: experts 0, 1 over (b −= 0.15), the rest under (b += 0.15).
  // Selection keys s + b = {0.75, 0.65, 0.85, 0.35, 0.25, 0.45} → {2, 0}; weights use s alone:
  // 0.7/1.6, 0.9/1.6.
  p->end_step({10, 10, 0, 4, 4, 2});
  expect_token(route(*p, logits, 6), 0, {2, 0}, {7.0 / 16, 9.0 / 16});
  // Perfectly balanced loads leave the bias alone.
  p->end_step({3, 3, 3, 3, 3, 3});
  expect_token(route(*p, logits, 6), 0, {2, 0}, {7.0 / 16, 9.0 / 16});
}

TEST(RoutingPolicies, GroupLimitedByHand) {
  // 3 groups of 2: {0,1} {2,3} {4,5}. p = {0.30, 0.02, 0.20, 0.18, 0.15, 0.15}; group scores (sum of the
  // top 2) 0.32, 0.38, 0.30. One group: {2, 3}, weights 0.20/0.38, 0.18/0.38 (plain top-2 is {0, 2}).
  // Two groups {1, 0}: top-2 of {0..3} = {0, 2}, weights 0.3/0.5, 0.2/0.5.
  PolicySpec spec;
  spec.name = "group_limited_topk";
  spec.top_k = 2;
  spec.groups = 3;
  spec.topk_groups = 1;
  const auto logits = log_probs({{0.30, 0.02, 0.20, 0.18, 0.15, 0.15}});
  expect_token(route(*make(spec), logits, 6), 0, {2, 3}, {10.0 / 19, 9.0 / 19});
  spec.topk_groups = 2;
  expect_token(route(*make(spec), logits, 6), 0, {0, 2}, {0.6, 0.4});
}

TEST(RoutingPolicies, NodeLimitedByHand) {
  // 2 nodes of 3 experts, node_limit 1, top_k 2: nodes scored by their top ⌊2/1⌋ = 2 probabilities.
  // p = {0.30, 0.05, 0.05, 0.25, 0.20, 0.15}: node 0 0.35, node 1 0.45 → {3, 4}, weights 5/9, 4/9
  // (plain top-2 is {0, 3}, two nodes).
  PolicySpec spec;
  spec.name = "node_limited";
  spec.top_k = 2;
  spec.experts_per_node = 3;
  spec.node_limit = 1;
  const auto logits = log_probs({{0.30, 0.05, 0.05, 0.25, 0.20, 0.15}});
  expect_token(route(*make(spec), logits, 6), 0, {3, 4}, {5.0 / 9, 4.0 / 9});
  spec.node_limit = 2;
  expect_token(route(*make(spec), logits, 6), 0, {0, 3}, {0.30 / 0.55, 0.25 / 0.55});
}

TEST(RoutingPolicies, CapacityByHand) {
  // softmax top-2 then capacity ⌈1.0 · 4 tokens · 2 / 6⌉ = 2 slots per expert, admitted in token order:
  //   token 0 {0, 1}          kept: e0 1, e1 1
  //   token 1 {0, 2}          kept: e0 2, e2 1
  //   token 2 {0, 1} → 0 full, dropped; keeps {1} with weight 0.25/0.70
  //   token 3 {1, 4} → 1 full, dropped; keeps {4} with weight 0.25/0.65
  // dropped 2, kept 6 = 8 − 2, padded = 6 experts · 2 − 6 = 6.
  PolicySpec spec;
  spec.name = "capacity";
  spec.base = "softmax_topk";
  spec.top_k = 2;
  spec.capacity_factor = 1.0;
  auto p = make(spec);
  const auto r = route(*p,
                       log_probs({{0.40, 0.30, 0.10, 0.10, 0.05, 0.05},
                                  {0.35, 0.05, 0.30, 0.10, 0.10, 0.10},
                                  {0.45, 0.25, 0.10, 0.10, 0.05, 0.05},
                                  {0.10, 0.40, 0.05, 0.05, 0.25, 0.15}}),
                       6);
  EXPECT_EQ(r.capacity, 2);
  expect_token(r, 0, {0, 1}, {4.0 / 7, 3.0 / 7});
  expect_token(r, 1, {0, 2}, {7.0 / 13, 6.0 / 13});
  expect_token(r, 2, {1}, {5.0 / 14});
  expect_token(r, 3, {4}, {5.0 / 13});
  EXPECT_EQ(r.dropped, 2);
  EXPECT_EQ(r.padded, 6);
}

TEST(RoutingPolicies, ExpertChoiceByHand) {
  // Capacity ⌈1.0 · 4 · 3 / 6⌉ = 2 tokens per expert; each column's two largest probabilities:
  //   e0 {.40 .05 .22 .10} → t0, t2    e1 {.30 .10 .05 .20} → t0, t3    e2 {.10 .35 .15 .05} → t1, t2
  //   e3 {.08 .20 .30 .12} → t2, t1    e4 {.07 .16 .10 .45} → t3, t1    e5 {.05 .14 .18 .08} → t2, t1
  // Per token, strongest first, weights = the probabilities.
  PolicySpec spec;
  spec.name = "expert_choice";
  spec.top_k = 3;
  spec.capacity_factor = 1.0;
  const auto r = route(*make(spec),
                       log_probs({{0.40, 0.30, 0.10, 0.08, 0.07, 0.05},
                                  {0.05, 0.10, 0.35, 0.20, 0.16, 0.14},
                                  {0.22, 0.05, 0.15, 0.30, 0.10, 0.18},
                                  {0.10, 0.20, 0.05, 0.12, 0.45, 0.08}}),
                       6);
  EXPECT_EQ(r.width, 6);
  EXPECT_EQ(r.capacity, 2);
  expect_token(r, 0, {0, 1}, {0.40, 0.30});
  expect_token(r, 1, {2, 3, 4, 5}, {0.35, 0.20, 0.16, 0.14});
  expect_token(r, 2, {3, 0, 5, 2}, {0.30, 0.22, 0.18, 0.15});
  expect_token(r, 3, {4, 1}, {0.45, 0.20});
}

TEST(RoutingPolicies, DynamicByHand) {
  const auto logits = log_probs({{0.40, 0.30, 0.10, 0.10, 0.05, 0.05},
                                 {0.19, 0.17, 0.16, 0.16, 0.16, 0.16},
                                 {0.21, 0.22, 0.23, 0.24, 0.05, 0.05}});
  // threshold 0.2: t0 {0, 1}; t1 nothing reaches 0.2 → the strongest alone, weight 1; t2 {3, 2, 1, 0}
  // normalised by 0.90.
  PolicySpec spec;
  spec.name = "threshold";
  spec.threshold = 0.2;
  auto r = route(*make(spec), logits, 6);
  EXPECT_EQ(r.width, 6);
  expect_token(r, 0, {0, 1}, {4.0 / 7, 3.0 / 7});
  expect_token(r, 1, {0}, {1.0});
  expect_token(r, 2, {3, 2, 1, 0}, {0.24 / 0.9, 0.23 / 0.9, 0.22 / 0.9, 0.21 / 0.9});
  spec.max_width = 3;  // at most 3: t2 {3, 2, 1} normalised by 0.69
  r = route(*make(spec), logits, 6);
  EXPECT_EQ(r.width, 3);
  expect_token(r, 2, {3, 2, 1}, {0.24 / 0.69, 0.23 / 0.69, 0.22 / 0.69});
  // top_p 0.6: t0 0.4, 0.7 → {0, 1}; t1 0.19, 0.36, 0.52, 0.68 → {0, 1, 2, 3} (equal 0.16s: lower id
  // first); t2 0.24, 0.47, 0.69 → {3, 2, 1}.
  PolicySpec top_p;
  top_p.name = "top_p";
  top_p.top_p = 0.6;
  r = route(*make(top_p), logits, 6);
  expect_token(r, 0, {0, 1}, {4.0 / 7, 3.0 / 7});
  expect_token(r, 1, {0, 1, 2, 3}, {0.19 / 0.68, 0.17 / 0.68, 0.16 / 0.68, 0.16 / 0.68});
  expect_token(r, 2, {3, 2, 1}, {0.24 / 0.69, 0.23 / 0.69, 0.22 / 0.69});
}

TEST(RoutingPolicies, HashIgnoresLogitsAndIsDeterministic) {
  PolicySpec spec;
  spec.name = "hash";
  spec.top_k = 3;
  spec.hash_seed = 42;
  GateScoreGenerator g(gen("zipf"), 16);
  const auto a = route(*make(spec), g.logits(0, 0, 0, 64), 16);
  const auto b = route(*make(spec), g.logits(5, 3, 1, 64), 16);  // different logits, same positions
  EXPECT_EQ(a.experts, b.experts);
  EXPECT_EQ(a.weights, b.weights);
  // The documented hash, recomputed naively: a SplitMix64 stream seeded with
  // SplitMix64(seed).next() XOR position; draws mod 16, repeats skipped.
  const uint64_t key = SplitMix64(42).next();
  for (int t = 0; t < 64; ++t) {
    SplitMix64 rng(key ^ static_cast<uint64_t>(t));
    std::vector<int> want;
    while (want.size() < 3) {
      const int e = static_cast<int>(rng.next() % 16);
      if (std::find(want.begin(), want.end(), e) == want.end()) want.push_back(e);
    }
    expect_token(a, t, want, {1.0 / 3, 1.0 / 3, 1.0 / 3});
  }
  // Positions, not call boundaries, decide: tokens 40..63 routed alone with first_token 40.
  const auto tail = route(*make(spec), std::vector<float>(24 * 16, 0.0f), 16, 40);
  for (int t = 0; t < 24; ++t)
    for (int j = 0; j < 3; ++j) EXPECT_EQ(tail.expert(t, j), a.expert(40 + t, j));
  spec.hash_seed = 43;
  EXPECT_NE(route(*make(spec), g.logits(0, 0, 0, 64), 16).experts, a.experts);
}

// ------------------------------------------------------------------------- generated logits

TEST(RoutingPolicies, GroupLimitedMatchesNaiveReference) {
  // Reference: group score = sum of the 2 largest p in the group (full sort); keep the topk_groups best
  // groups (ties: lower id); top_k of the kept experts by p (ties: lower id); weights p / Σ selected.
  const int experts = 32, groups = 8, keep = 3, top_k = 6, size = experts / groups;
  PolicySpec spec;
  spec.name = "group_limited_topk";
  spec.top_k = top_k;
  spec.groups = groups;
  spec.topk_groups = keep;
  auto g = gen("zipf");
  g.s = 0.8;
  const auto logits = GateScoreGenerator(g, experts).logits(3, 1, 0, 500);
  const auto r = route(*make(spec), logits, experts);
  for (int t = 0; t < 500; ++t) {
    const auto p = softmax(logits.data() + t * experts, experts);
    std::vector<double> gs(groups);
    for (int k = 0; k < groups; ++k) {
      std::vector<double> v(p.begin() + k * size, p.begin() + (k + 1) * size);
      std::sort(v.rbegin(), v.rend());
      gs[k] = v[0] + v[1];
    }
    std::vector<int> order(groups);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [&](int a, int b) { return gs[a] > gs[b] || (gs[a] == gs[b] && a < b); });
    std::vector<int> cand;
    for (int e = 0; e < experts; ++e)
      if (std::find(order.begin(), order.begin() + keep, e / size) != order.begin() + keep) cand.push_back(e);
    std::sort(cand.begin(), cand.end(), [&](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    cand.resize(top_k);
    double sum = 0;
    for (int e : cand) sum += p[e];
    std::vector<double> w;
    for (int e : cand) w.push_back(p[e] / sum);
    expect_token(r, t, cand, w);
    std::set<int> used;
    for (int j = 0; j < top_k; ++j) used.insert(r.expert(t, j) / size);
    EXPECT_LE(static_cast<int>(used.size()), keep);
  }
}

TEST(RoutingPolicies, NodeLimitedUsesAtMostNodeLimitNodes) {
  PolicySpec spec;
  spec.name = "node_limited";
  spec.top_k = 8;
  spec.experts_per_node = 4;
  spec.node_limit = 2;
  spec.score = RouterScore::kSigmoid;
  auto p = make(spec);
  const auto s = route_step(*p, gen("uniform"), 0, 0, 4, 256, 32);
  int max_nodes = 0;
  for (int64_t t = 0; t < s.tokens; ++t) {
    std::set<int> nodes;
    for (int j = 0; j < s.top_k; ++j) nodes.insert(s.token_experts[t * s.top_k + j] / 4);
    EXPECT_LE(static_cast<int>(nodes.size()), 2);
    max_nodes = std::max(max_nodes, static_cast<int>(nodes.size()));
  }
  EXPECT_EQ(max_nodes, 2);  // the limit binds: 8 experts from 2 nodes of 4 need both nodes whole
}

TEST(RoutingPolicies, CapacityInvariantsOnGeneratedLoad) {
  // C = ⌈1.0 · 128 · 2 / 8⌉ = 32 per (source, expert); kept + dropped = tokens · top_k;
  // padded = Σ (C − kept).
  PolicySpec spec;
  spec.name = "capacity";
  spec.base = "sigmoid_topk";
  spec.top_k = 2;
  spec.capacity_factor = 1.0;
  auto hot = gen("hot_expert");
  hot.hot_fraction = 0.6;
  auto p = make(spec);
  const auto s = route_step(*p, hot, 0, 0, 4, 128, 8);
  int64_t padded = 0;
  for (int src = 0; src < 4; ++src)
    for (int e = 0; e < 8; ++e) {
      EXPECT_LE(s.count(src, e), 32);
      padded += 32 - s.count(src, e);
    }
  EXPECT_GT(s.dropped, 0);
  EXPECT_EQ(s.slots() + s.dropped, s.tokens * 2);
  EXPECT_EQ(s.padded, padded);
  int64_t entries = 0;
  for (auto e : s.token_experts) entries += e >= 0;
  EXPECT_EQ(entries, s.slots());
}

TEST(RoutingPolicies, ExpertChoiceFillsEveryExpertExactly) {
  PolicySpec spec;
  spec.name = "expert_choice";
  spec.top_k = 2;
  spec.capacity_factor = 1.25;
  auto p = make(spec);
  const auto s = route_step(*p, gen("zipf"), 0, 0, 3, 100, 16);  // C = ⌈1.25 · 100 · 2 / 16⌉ = 16
  EXPECT_EQ(s.top_k, 16);
  for (int src = 0; src < 3; ++src)
    for (int e = 0; e < 16; ++e) EXPECT_EQ(s.count(src, e), 16);
  EXPECT_EQ(s.dropped, 0);
  EXPECT_EQ(s.padded, 0);
}

TEST(RoutingPolicies, DynamicPropertiesOnGeneratedLogits) {
  const int experts = 16, tokens = 400;
  auto g = gen("dirichlet");
  g.alpha = 0.3;
  const auto logits = GateScoreGenerator(g, experts).logits(2, 0, 0, tokens);
  PolicySpec th;
  th.name = "threshold";
  th.threshold = 0.15;
  th.max_width = 4;
  PolicySpec tp;
  tp.name = "top_p";
  tp.top_p = 0.7;
  const auto rt = route(*make(th), logits, experts);
  const auto rp = route(*make(tp), logits, experts);
  for (int t = 0; t < tokens; ++t) {
    const auto p = softmax(logits.data() + t * experts, experts);
    // threshold: ≥ 1 expert; each chosen one (but a lone fallback) has p ≥ 0.15; unchosen ones have
    // p < 0.15 unless the width 4 is full.
    ASSERT_GE(rt.used(t), 1);
    std::vector<char> chosen(experts, 0);
    for (int j = 0; j < rt.used(t); ++j) chosen[rt.expert(t, j)] = 1;
    const double top = *std::max_element(p.begin(), p.end());
    for (int e = 0; e < experts; ++e) {
      if (chosen[e] && rt.used(t) > 1) {
        EXPECT_GE(p[e], 0.15);
      }
      if (chosen[e] && rt.used(t) == 1) {
        EXPECT_EQ(p[e], top);
      }
      if (!chosen[e] && rt.used(t) < 4) {
        EXPECT_LT(p[e], 0.15);
      }
    }
    // top_p: ≥ 1 expert; the chosen ones are the most probable, their sum reaches 0.7, and without the
    // weakest chosen one it does not (smallest such set).
    ASSERT_GE(rp.used(t), 1);
    double sum = 0, weakest = 1, best_unchosen = 0;
    std::vector<char> in(experts, 0);
    for (int j = 0; j < rp.used(t); ++j) in[rp.expert(t, j)] = 1;
    for (int e = 0; e < experts; ++e) {
      if (in[e]) {
        sum += p[e];
        weakest = std::min(weakest, p[e]);
      } else {
        best_unchosen = std::max(best_unchosen, p[e]);
      }
    }
    EXPECT_GE(sum, 0.7 - 1e-12);
    EXPECT_LT(sum - weakest, 0.7);
    EXPECT_GE(weakest, best_unchosen);
    double w = 0;
    for (int j = 0; j < rp.used(t); ++j) w += rp.weight(t, j);
    EXPECT_NEAR(w, 1.0, 1e-5);
  }
}

TEST(RoutingPolicies, AuxLossFreeBiasFlattensHotExpert) {
  // Expert 3 takes ~60% of the top-1 choices; the bias update (γ = 0.01 per step) must pull the
  // max/mean load down: the worst of the last 20 steps beats step 0.
  PolicySpec spec;
  spec.name = "sigmoid_topk";
  spec.top_k = 2;
  spec.bias_update_speed = 0.01;
  auto hot = gen("hot_expert");
  hot.hot_expert = 3;
  hot.hot_fraction = 0.6;
  auto p = make(spec);
  auto max_over_mean = [](const std::vector<int64_t>& c) {
    const double mean = std::accumulate(c.begin(), c.end(), 0.0) / c.size();
    return *std::max_element(c.begin(), c.end()) / mean;
  };
  double first = 0, last20 = 0;
  for (int step = 0; step < 200; ++step) {
    const auto s = route_step(*p, hot, step, 0, 4, 256, 8);
    const auto c = s.expert_counts();
    if (step == 0) first = max_over_mean(c);
    if (step >= 180) last20 = std::max(last20, max_over_mean(c));
    p->end_step(c);
  }
  EXPECT_GT(first, 2.0);
  EXPECT_LT(last20, first);
  EXPECT_LT(last20, 1.5);
}

TEST(RoutingPolicies, RouteStepFillsSample) {
  PolicySpec spec;
  spec.top_k = 2;
  auto p = make(spec);
  const auto s = route_step(*p, gen("uniform"), 4, 2, 3, 10, 8);
  EXPECT_EQ(s.step, 4);
  EXPECT_EQ(s.layer, 2);
  EXPECT_EQ(s.sources, 3);
  EXPECT_EQ(s.experts, 8);
  EXPECT_EQ(s.top_k, 2);
  EXPECT_EQ(s.tokens, 30);
  ASSERT_EQ(s.token_experts.size(), 60u);
  ASSERT_EQ(s.token_weights.size(), 60u);
  ASSERT_EQ(s.token_source.size(), 30u);
  // counts recomputed from the token-level detail.
  std::vector<int64_t> counts(3 * 8, 0);
  for (int t = 0; t < 30; ++t) {
    EXPECT_EQ(s.token_source[t], t / 10);
    for (int j = 0; j < 2; ++j) ++counts[s.token_source[t] * 8 + s.token_experts[t * 2 + j]];
  }
  EXPECT_EQ(s.counts, counts);
  EXPECT_EQ(s.slots(), 60);
}

// ------------------------------------------------------------------------------------ generators

TEST(GateGenerators, SameSeedBitIdenticalLogitsAndSamples) {
  for (const auto& info : gate_generators()) {
    SCOPED_TRACE(info.name);
    const auto spec = gen(info.name, 11);
    const GateScoreGenerator a(spec, 16), b(spec, 16);
    const auto la = a.logits(9, 2, 1, 64), lb = b.logits(9, 2, 1, 64);
    EXPECT_EQ(std::memcmp(la.data(), lb.data(), la.size() * sizeof(float)), 0);
    EXPECT_NE(la, a.logits(9, 2, 0, 64));  // another source, other noise
    EXPECT_NE(la, GateScoreGenerator(gen(info.name, 12), 16).logits(9, 2, 1, 64));
  }
  for (const auto& pol : routing_policies()) {
    SCOPED_TRACE(pol.name);
    PolicySpec spec;
    spec.name = pol.name;
    auto p1 = make(spec), p2 = make(spec);
    const auto s1 = route_step(*p1, gen("drift", 3), 5, 1, 2, 64, 16);
    const auto s2 = route_step(*p2, gen("drift", 3), 5, 1, 2, 64, 16);
    EXPECT_EQ(s1.counts, s2.counts);
    EXPECT_EQ(s1.token_experts, s2.token_experts);
    EXPECT_EQ(std::memcmp(s1.token_weights.data(), s2.token_weights.data(),
                          s1.token_weights.size() * sizeof(float)),
              0);
    EXPECT_EQ(s1.dropped, s2.dropped);
    EXPECT_EQ(s1.padded, s2.padded);
  }
}

TEST(GateGenerators, ZipfSharesFollowRanks) {
  // bias = ln p_r with p_r = (r+1)^-s / Σ; top-1 of bias + Gumbel picks rank r with probability p_r.
  const int experts = 8;
  auto z = gen("zipf");
  z.s = 1.2;
  std::vector<double> pr(experts);
  double h = 0;
  for (int r = 0; r < experts; ++r) h += pr[r] = std::pow(r + 1.0, -1.2);
  for (auto& v : pr) v /= h;
  const auto bias = GateScoreGenerator(z, experts).bias(0, 0);
  std::vector<int> rank(experts);  // rank[r] = the expert holding rank r
  std::iota(rank.begin(), rank.end(), 0);
  std::sort(rank.begin(), rank.end(), [&](int a, int b) { return bias[a] > bias[b]; });
  for (int r = 0; r < experts; ++r) EXPECT_NEAR(bias[rank[r]], std::log(pr[r]), 1e-12);
  PolicySpec top1;
  top1.top_k = 1;
  auto p = make(top1);
  const auto c = route_step(*p, z, 0, 0, 8, 4096, experts).expert_counts();
  for (int r = 0; r < experts; ++r) {
    EXPECT_NEAR(c[rank[r]] / 32768.0, pr[r], 0.01) << "rank " << r;  // σ ≤ 0.003
    if (r + 1 < experts) {
      EXPECT_GT(c[rank[r]], c[rank[r + 1]]) << "rank " << r;
    }
  }
  // Another layer, another permutation, same shares.
  EXPECT_NE(GateScoreGenerator(z, experts).bias(0, 1), bias);
}

TEST(GateGenerators, HotExpertAndHotRankTakeTheirFraction) {
  // Gumbel-max: the hot expert's top-1 share is hot_fraction; the hot rank's experts together too.
  PolicySpec top1;
  top1.top_k = 1;
  auto hot = gen("hot_expert");
  hot.hot_expert = 5;
  hot.hot_fraction = 0.3;
  auto p = make(top1);
  auto c = route_step(*p, hot, 0, 0, 8, 4096, 8).expert_counts();
  EXPECT_NEAR(c[5] / 32768.0, 0.3, 0.01);
  auto rank = gen("hot_rank");
  rank.hot_rank = 1;
  rank.experts_per_rank = 4;
  rank.hot_fraction = 0.7;
  c = route_step(*p, rank, 0, 0, 8, 4096, 16).expert_counts();
  EXPECT_NEAR((c[4] + c[5] + c[6] + c[7]) / 32768.0, 0.7, 0.01);
  // rotating: the hot expert of step n is (hot_expert + n) mod E.
  auto rot = gen("rotating");
  rot.hot_expert = 6;
  const GateScoreGenerator rg(rot, 8);
  for (int step = 0; step < 10; ++step) {
    const auto b = rg.bias(step, 0);
    EXPECT_EQ(std::max_element(b.begin(), b.end()) - b.begin(), (6 + step) % 8) << "step " << step;
  }
}

TEST(GateGenerators, DirichletMeanSharesAreUniform) {
  // p ~ Dirichlet(α = 0.5) over E = 8: E[p_e] = 1/8, Var[p_e] = (1/8)(7/8) / (8 · 0.5 + 1) = 0.021875.
  const int experts = 8, steps = 2000;
  auto d = gen("dirichlet");
  d.alpha = 0.5;
  const GateScoreGenerator g(d, experts);
  double sum = 0, sum2 = 0;
  for (int step = 0; step < steps; ++step) {
    const auto b = g.bias(step, 0);
    double total = 0;
    for (double v : b) total += std::exp(v);
    EXPECT_NEAR(total, 1.0, 1e-9);
    sum += std::exp(b[2]);
    sum2 += std::exp(2 * b[2]);
  }
  const double mean = sum / steps, var = sum2 / steps - mean * mean;
  EXPECT_NEAR(mean, 0.125, 0.01);      // σ of the mean ≈ 0.0033
  EXPECT_NEAR(var, 0.021875, 0.0035);  // ≈ 16 %
  // Routed shares averaged over 400 steps of top-1 routing: 1/8 each (σ ≈ 0.008).
  PolicySpec top1;
  top1.top_k = 1;
  auto p = make(top1);
  std::vector<double> share(experts, 0.0);
  for (int step = 0; step < 400; ++step) {
    const auto c = route_step(*p, d, step, 0, 1, 256, experts).expert_counts();
    for (int e = 0; e < experts; ++e) share[e] += c[e] / (256.0 * 400);
  }
  for (int e = 0; e < experts; ++e) EXPECT_NEAR(share[e], 0.125, 0.03) << "expert " << e;
}

TEST(GateGenerators, BurstsAndDrift) {
  // bursts: a fraction q = 0.2 of the steps is hot (σ ≈ 0.009 over 2000 steps).
  auto b = gen("bursts");
  b.burst_probability = 0.2;
  const GateScoreGenerator bg(b, 8);
  int hot_steps = 0;
  for (int step = 0; step < 2000; ++step) {
    const auto v = bg.bias(step, 0);
    hot_steps += *std::max_element(v.begin(), v.end()) > 0;
  }
  EXPECT_NEAR(hot_steps / 2000.0, 0.2, 0.03);
  // drift: b(0) = 0 and b(n) − b(n−1) ~ N(0, σ²): sample σ over 300 steps × 8 experts within 10 %.
  auto d = gen("drift");
  d.drift_sigma = 0.05;
  const GateScoreGenerator dg(d, 8);
  auto prev = dg.bias(0, 0);
  for (double v : prev) EXPECT_EQ(v, 0.0);
  double ss = 0;
  for (int step = 1; step <= 300; ++step) {
    const auto cur = dg.bias(step, 0);
    for (int e = 0; e < 8; ++e) ss += (cur[e] - prev[e]) * (cur[e] - prev[e]);
    prev = cur;
  }
  EXPECT_NEAR(std::sqrt(ss / (300 * 8)), 0.05, 0.005);
}

}  // namespace
}  // namespace moesim::traces
