// CPU references of the MoE layer kernels (kernels/reference.hpp), checked two ways:
//   - tiny cases worked out by hand in the comments (router with bias and group limits, permute
//     offsets and capacity drops, SwiGLU, expert GEMM, combine, bf16 rounding);
//   - properties on seeded random inputs: every token routed top_k times minus drops, histogram
//     sums, permute ∘ combine = identity with unit weights, the layer against a naive per-token loop.
// The GPU kernels are compared against these references in kernels_gpu_test.cpp.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "kernels/bf16.hpp"
#include "kernels/config.hpp"
#include "kernels/reference.hpp"
#include "scenarios/error.hpp"

namespace moesim::kernels {
namespace {

constexpr float kTol = 2e-6f;  // softmax/sigmoid of float logits recover p to ~1e-7

// Logit rows whose softmax is the given probabilities (logit = ln p).
std::vector<float> log_probs(const std::vector<std::vector<double>>& rows) {
  std::vector<float> l;
  for (const auto& r : rows)
    for (double p : r) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

// Logit rows whose sigmoid is the given scores (logit = ln(s / (1 − s))).
std::vector<float> log_odds(const std::vector<std::vector<double>>& rows) {
  std::vector<float> l;
  for (const auto& r : rows)
    for (double s : r) l.push_back(static_cast<float>(std::log(s / (1 - s))));
  return l;
}

std::vector<Bf16> bf16s(const std::vector<float>& v) {
  std::vector<Bf16> b;
  for (float f : v) b.push_back(to_bf16(f));
  return b;
}

std::vector<float> floats(const std::vector<Bf16>& v) {
  std::vector<float> f;
  for (Bf16 b : v) f.push_back(to_float(b));
  return f;
}

void expect_route(const RouterResult& r, int t, int k, const std::vector<int>& experts,
                  const std::vector<double>& weights) {
  SCOPED_TRACE("token " + std::to_string(t));
  for (int j = 0; j < k; ++j) {
    EXPECT_EQ(r.topk_idx[t * k + j], experts[j]) << "slot " << j;
    EXPECT_NEAR(r.topk_weight[t * k + j], weights[j], kTol) << "slot " << j;
  }
}

// ---------------------------------------------------------------- bf16

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(to_float(to_bf16(1.0f)), 1.0f);
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa, 1.
  EXPECT_EQ(to_float(to_bf16(1.0f + 0x1p-8f)), 1.0f);
  // 1 + 3·2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): 1 + 2^-6.
  EXPECT_EQ(to_float(to_bf16(1.0f + 3 * 0x1p-8f)), 1.0f + 0x1p-6f);
  EXPECT_EQ(to_float(to_bf16(-2.75f)), -2.75f);
  EXPECT_TRUE(std::isinf(to_float(to_bf16(3.4e38f))));  // FLT_MAX rounds up to +inf
  EXPECT_TRUE(is_nan(to_bf16(std::nanf(""))));
  EXPECT_TRUE(is_nan(kBf16NaN));
}

// ---------------------------------------------------------------- router

TEST(RouterRef, SoftmaxTopKNormalised) {
  // softmax(ln p) = p = [0.1, 0.4, 0.2, 0.3]: top-2 is expert 1 (0.4) then 3 (0.3);
  // normalised: 0.4/0.7 and 0.3/0.7. Token 1: p = [0.25, 0.25, 0.3, 0.2]: expert 2, then the
  // 0.25 tie between 0 and 1 goes to the lower id, 0.
  RouterConfig c;
  c.tokens = 2;
  c.experts = 4;
  c.top_k = 2;
  const auto logits = log_probs({{0.1, 0.4, 0.2, 0.3}, {0.25, 0.25, 0.3, 0.2}});
  auto r = router_ref(c, logits);
  expect_route(r, 0, 2, {1, 3}, {0.4 / 0.7, 0.3 / 0.7});
  expect_route(r, 1, 2, {2, 0}, {0.3 / 0.55, 0.25 / 0.55});
  EXPECT_EQ(r.counts, (std::vector<int32_t>{1, 1, 1, 1}));

  c.normalize = false;  // raw softmax probabilities
  r = router_ref(c, logits);
  expect_route(r, 0, 2, {1, 3}, {0.4, 0.3});
}

TEST(RouterRef, BiasSteersSelectionNotWeights) {
  // Auxiliary-loss-free balancing: sel = p + bias = [0.6, 0.4, 0.2, 0.3] picks experts 0 and 1,
  // but the weights come from p: [0.1, 0.4] → normalised [0.2, 0.8].
  RouterConfig c;
  c.tokens = 1;
  c.experts = 4;
  c.top_k = 2;
  const auto r = router_ref(c, log_probs({{0.1, 0.4, 0.2, 0.3}}), {0.5f, 0.0f, 0.0f, 0.0f});
  expect_route(r, 0, 2, {0, 1}, {0.2, 0.8});
}

TEST(RouterRef, SigmoidGroupLimitedTop2Sum) {
  // DeepSeek-V3 style: 8 experts in 4 groups of 2, a token may use 2 groups, a group scores the sum of
  // its 2 best sigmoid scores. s = [0.9 0.1 | 0.6 0.6 | 0.8 0.05 | 0.3 0.3]: group scores 1.0, 1.2,
  // 0.85, 0.6 → groups 1 and 0 kept. Top-2 among experts 0..3: 0 (0.9), then the 0.6 tie → 2. Expert 4
  // (0.8) is excluded by the group limit. Weights 0.9, 0.6 → 0.6, 0.4, times scale 2.5 → 1.5, 1.0.
  RouterConfig c;
  c.tokens = 1;
  c.experts = 8;
  c.top_k = 2;
  c.score = ScoreFunction::kSigmoid;
  c.groups = 4;
  c.topk_groups = 2;
  c.group_score_top = 2;
  c.scale = 2.5f;
  const auto logits = log_odds({{0.9, 0.1, 0.6, 0.6, 0.8, 0.05, 0.3, 0.3}});
  expect_route(router_ref(c, logits), 0, 2, {0, 2}, {1.5, 1.0});

  // Group score = max (DeepSeek-V2): 0.9, 0.6, 0.8, 0.3 → groups 0 and 2 → experts 0 (0.9), 4 (0.8).
  c.group_score_top = 1;
  expect_route(router_ref(c, logits), 0, 2, {0, 4}, {0.9 / 1.7 * 2.5, 0.8 / 1.7 * 2.5});

  // A bias of 0.5 on group 3 lifts its sum to 1.6: groups 3 and 1 are kept; sel of experts 2, 3, 6, 7
  // is 0.6, 0.6, 0.8, 0.8 → experts 6, 7; weights from s (0.3, 0.3) → 0.5 each, times 2.5.
  c.group_score_top = 2;
  const auto r = router_ref(c, logits, {0, 0, 0, 0, 0, 0, 0.5f, 0.5f});
  expect_route(r, 0, 2, {6, 7}, {1.25, 1.25});
}

TEST(RouterRef, NodeLimitedIsGroupLimitedPerNode) {
  // 256 experts on 8 nodes, at most 4 nodes per token, top-8: nodes rank by their best 8/4 = 2 scores.
  RouterConfig c;
  c.experts = 256;
  c.top_k = 8;
  c.node_limited(8, 4);
  EXPECT_EQ(c.groups, 8);
  EXPECT_EQ(c.topk_groups, 4);
  EXPECT_EQ(c.group_score_top, 2);
  EXPECT_NO_THROW(validate(c));
}

TEST(RouterRef, RejectsImpossibleConfigurations) {
  RouterConfig c;
  c.tokens = 1;
  c.experts = 8;
  c.top_k = 2;
  c.groups = 3;  // does not divide 8
  EXPECT_THROW(validate(c), ConfigError);
  c.groups = 2;
  c.topk_groups = 1;
  c.top_k = 5;  // one group of 4 cannot supply 5 experts
  EXPECT_THROW(validate(c), ConfigError);
  c.top_k = 2;
  EXPECT_NO_THROW(validate(c));
  c.experts = kMaxExperts + 1;
  EXPECT_THROW(validate(c), ConfigError);
  c.experts = 8;
  EXPECT_THROW(router_ref(c, std::vector<float>(7)), ConfigError);  // logits must be [1, 8]
}

// Independent naive router: full sorts instead of the reference's rank counting and argmax loop.
RouterResult naive_router(const RouterConfig& c, const std::vector<float>& logits,
                          const std::vector<float>& bias) {
  const int E = c.experts, K = c.top_k, G = c.groups, gs = E / G;
  RouterResult r;
  r.counts.assign(E, 0);
  for (int t = 0; t < c.tokens; ++t) {
    std::vector<double> s(E), sel(E);
    double m = -INFINITY, sum = 0;
    for (int e = 0; e < E; ++e) m = std::max<double>(m, logits[t * E + e]);
    for (int e = 0; e < E; ++e) {
      const double l = logits[t * E + e];
      s[e] = c.score == ScoreFunction::kSoftmax ? std::exp(l - m) : 1 / (1 + std::exp(-l));
      sum += s[e];
    }
    if (c.score == ScoreFunction::kSoftmax)
      for (double& v : s) v /= sum;
    for (int e = 0; e < E; ++e) sel[e] = s[e] + (bias.empty() ? 0.0 : bias[e]);
    std::vector<int> allowed(E);
    std::iota(allowed.begin(), allowed.end(), 0);
    if (G > 1) {
      std::vector<std::pair<double, int>> gscore;
      for (int g = 0; g < G; ++g) {
        std::vector<double> v(sel.begin() + g * gs, sel.begin() + (g + 1) * gs);
        std::sort(v.rbegin(), v.rend());
        gscore.push_back({c.group_score_top == 1 ? v[0] : v[0] + v[1], g});
      }
      std::stable_sort(gscore.begin(), gscore.end(), [](auto a, auto b) { return a.first > b.first; });
      allowed.clear();
      for (int i = 0; i < c.topk_groups; ++i)
        for (int e = gscore[i].second * gs; e < (gscore[i].second + 1) * gs; ++e) allowed.push_back(e);
      std::sort(allowed.begin(), allowed.end());
    }
    std::stable_sort(allowed.begin(), allowed.end(), [&](int a, int b) { return sel[a] > sel[b]; });
    double wsum = 0;
    for (int k = 0; k < K; ++k) wsum += s[allowed[k]];
    for (int k = 0; k < K; ++k) {
      r.topk_idx.push_back(allowed[k]);
      r.topk_weight.push_back(
          static_cast<float>((c.normalize ? s[allowed[k]] / wsum : s[allowed[k]]) * c.scale));
      ++r.counts[allowed[k]];
    }
  }
  return r;
}

struct RouterCase {
  int tokens, experts, top_k;
  ScoreFunction score;
  int groups, topk_groups, group_top;
  bool bias;
};

class RouterRefRandom : public ::testing::TestWithParam<RouterCase> {};

TEST_P(RouterRefRandom, MatchesNaiveSortAndCountsEveryChoice) {
  const RouterCase p = GetParam();
  RouterConfig c;
  c.tokens = p.tokens;
  c.experts = p.experts;
  c.top_k = p.top_k;
  c.score = p.score;
  c.groups = p.groups;
  c.topk_groups = p.topk_groups;
  c.group_score_top = p.group_top;
  c.scale = p.score == ScoreFunction::kSigmoid ? 2.5f : 1.0f;
  std::mt19937 rng(1234 + p.experts);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(static_cast<size_t>(c.tokens) * c.experts), bias;
  for (float& l : logits) l = normal(rng);
  if (p.bias) {
    std::uniform_real_distribution<float> u(-0.05f, 0.05f);
    for (int e = 0; e < c.experts; ++e) bias.push_back(u(rng));
  }
  const auto r = router_ref(c, logits, bias);
  const auto n = naive_router(c, logits, bias);
  ASSERT_EQ(r.topk_idx.size(), static_cast<size_t>(c.tokens) * c.top_k);
  for (int t = 0; t < c.tokens; ++t) {
    std::set<int> distinct;
    double wsum = 0;
    for (int k = 0; k < c.top_k; ++k) {
      const size_t i = static_cast<size_t>(t) * c.top_k + k;
      ASSERT_EQ(r.topk_idx[i], n.topk_idx[i]) << "token " << t << " slot " << k;
      EXPECT_NEAR(r.topk_weight[i], n.topk_weight[i], 1e-5 * c.scale);
      distinct.insert(r.topk_idx[i]);
      wsum += r.topk_weight[i];
    }
    EXPECT_EQ(distinct.size(), static_cast<size_t>(c.top_k)) << "an expert picked twice by token " << t;
    EXPECT_NEAR(wsum, c.scale, 1e-5 * c.scale);  // normalised weights sum to the scale
    if (c.groups > 1) {
      std::set<int> groups_used;
      for (int e : distinct) groups_used.insert(e / (c.experts / c.groups));
      EXPECT_LE(static_cast<int>(groups_used.size()), c.topk_groups);
    }
  }
  EXPECT_EQ(r.counts, n.counts);
  EXPECT_EQ(std::accumulate(r.counts.begin(), r.counts.end(), int64_t{0}), int64_t{c.tokens} * c.top_k);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, RouterRefRandom,
    ::testing::Values(RouterCase{257, 8, 2, ScoreFunction::kSoftmax, 1, 1, 2, false},    // Mixtral
                      RouterCase{300, 64, 6, ScoreFunction::kSoftmax, 1, 1, 2, true},    // OLMoE-like
                      RouterCase{200, 160, 6, ScoreFunction::kSoftmax, 8, 3, 1, false},  // DeepSeek-V2
                      RouterCase{211, 256, 8, ScoreFunction::kSigmoid, 8, 4, 2, true},   // DeepSeek-V3
                      RouterCase{150, 8, 2, ScoreFunction::kSigmoid, 4, 2, 2, true},     // 2-expert groups
                      RouterCase{120, 1000, 4, ScoreFunction::kSigmoid, 10, 5, 2, false}),
    [](const ::testing::TestParamInfo<RouterCase>& i) {
      const RouterCase& p = i.param;
      return "T" + std::to_string(p.tokens) + "_E" + std::to_string(p.experts) + "_K" +
             std::to_string(p.top_k) + (p.score == ScoreFunction::kSoftmax ? "_softmax" : "_sigmoid") +
             (p.groups > 1 ? "_G" + std::to_string(p.topk_groups) + "of" + std::to_string(p.groups) : "") +
             (p.bias ? "_bias" : "");
    });

// ---------------------------------------------------------------- permute

// Hand case: T = 4, E = 3, K = 2, topk_idx = [[0,2],[2,1],[0,1],[2,0]].
// Expert 0 gets tokens 0, 2, 3; expert 1 tokens 1, 2; expert 2 tokens 0, 1, 3 (token order).
const std::vector<int32_t> kHandIdx = {0, 2, 2, 1, 0, 1, 2, 0};
const std::vector<Bf16> kHandX = bf16s({1, -1, 2, -2, 3, -3, 4, -4});  // x[t] = [t+1, −(t+1)]

PermuteConfig hand_permute(int capacity, RowLayout layout) {
  PermuteConfig c;
  c.tokens = 4;
  c.experts = 3;
  c.top_k = 2;
  c.hidden = 2;
  c.capacity = capacity;
  c.layout = layout;
  return c;
}

TEST(PermuteRef, DroplessOffsetsAndRows) {
  // Counts [3, 2, 3] → offsets [0, 3, 5, 8]. Row of (t, k) = offset[e] + rank of t within e:
  // (0,0)→0 (0,1)→5 (1,0)→6 (1,1)→3 (2,0)→1 (2,1)→4 (3,0)→7 (3,1)→2.
  const auto r = permute_ref(hand_permute(0, RowLayout::kCompact), kHandIdx, kHandX);
  EXPECT_EQ(r.kept_counts, (std::vector<int32_t>{3, 2, 3}));
  EXPECT_EQ(r.offsets, (std::vector<int32_t>{0, 3, 5, 8}));
  EXPECT_EQ(r.row_map, (std::vector<int32_t>{0, 5, 6, 3, 1, 4, 7, 2}));
  EXPECT_EQ(r.dropped, 0);
  // Rows: expert 0 = tokens 0, 2, 3; expert 1 = tokens 1, 2; expert 2 = tokens 0, 1, 3.
  EXPECT_EQ(floats(r.rows), (std::vector<float>{1, -1, 3, -3, 4, -4, 2, -2, 3, -3, 1, -1, 2, -2, 4, -4}));
}

TEST(PermuteRef, CapacityDropsLaterTokens) {
  // Capacity 2: expert 0 drops token 3 (its third), expert 2 drops token 3: 2 dropped.
  // Kept [2, 2, 2], offsets [0, 2, 4, 6]; (0,0)→0 (0,1)→4 (1,0)→5 (1,1)→2 (2,0)→1 (2,1)→3, (3,·)→−1.
  const auto r = permute_ref(hand_permute(2, RowLayout::kCompact), kHandIdx, kHandX);
  EXPECT_EQ(r.kept_counts, (std::vector<int32_t>{2, 2, 2}));
  EXPECT_EQ(r.offsets, (std::vector<int32_t>{0, 2, 4, 6}));
  EXPECT_EQ(r.row_map, (std::vector<int32_t>{0, 4, 5, 2, 1, 3, -1, -1}));
  EXPECT_EQ(r.dropped, 2);
}

TEST(PermuteRef, PaddedLayoutUsesExpertTimesCapacity) {
  // Capacity 3, padded [3 experts, 3 rows]: row = 3e + rank. Expert 1 has 2 rows, so row 5 is padding.
  const auto r = permute_ref(hand_permute(3, RowLayout::kPadded), kHandIdx, kHandX);
  EXPECT_EQ(r.row_map, (std::vector<int32_t>{0, 6, 7, 3, 1, 4, 8, 2}));
  EXPECT_EQ(r.dropped, 0);
  ASSERT_EQ(r.rows.size(), 9u * 2);
  EXPECT_EQ(to_float(r.rows[5 * 2]), 0.0f);
  EXPECT_EQ(to_float(r.rows[6 * 2]), 1.0f);  // expert 2, rank 0 = token 0
  EXPECT_EQ(permuted_rows_bound(hand_permute(3, RowLayout::kPadded)), 9);
  EXPECT_THROW(permute_ref(hand_permute(0, RowLayout::kPadded), kHandIdx, kHandX), ConfigError);
}

TEST(PermuteRef, RandomRoutingKeepsEveryAssignmentOnce) {
  for (int capacity : {0, 5, 40}) {
    SCOPED_TRACE("capacity " + std::to_string(capacity));
    PermuteConfig c;
    c.tokens = 301;
    c.experts = 16;
    c.top_k = 4;
    c.hidden = 8;
    c.capacity = capacity;
    std::mt19937 rng(7);
    RouterConfig rc;
    rc.tokens = c.tokens;
    rc.experts = c.experts;
    rc.top_k = c.top_k;
    std::normal_distribution<float> normal(0.0f, 1.5f);
    std::vector<float> logits(static_cast<size_t>(c.tokens) * c.experts);
    for (size_t i = 0; i < logits.size(); ++i) logits[i] = normal(rng) + 0.2f * static_cast<float>(i % 16);
    const auto route = router_ref(rc, logits);
    std::vector<Bf16> x(static_cast<size_t>(c.tokens) * c.hidden);
    for (size_t i = 0; i < x.size(); ++i) x[i] = to_bf16(static_cast<float>(i % 251) - 125.0f);
    const auto r = permute_ref(c, route.topk_idx, x);

    int64_t kept = 0;
    for (int e = 0; e < c.experts; ++e) {
      EXPECT_EQ(r.kept_counts[e], capacity > 0 ? std::min(route.counts[e], capacity) : route.counts[e]);
      kept += r.kept_counts[e];
    }
    // Every token is routed top_k times minus the drops.
    EXPECT_EQ(kept + r.dropped, int64_t{c.tokens} * c.top_k);
    EXPECT_EQ(r.offsets.back(), kept);
    std::vector<int> hits(kept, 0);
    for (int t = 0; t < c.tokens; ++t)
      for (int k = 0; k < c.top_k; ++k) {
        const int row = r.row_map[t * c.top_k + k];
        const int e = route.topk_idx[t * c.top_k + k];
        if (row < 0) continue;
        ASSERT_GE(row, r.offsets[e]);
        ASSERT_LT(row, r.offsets[e + 1]);
        ++hits[row];
        EXPECT_TRUE(std::equal(&x[t * c.hidden], &x[(t + 1) * c.hidden], &r.rows[row * c.hidden],
                               [](Bf16 a, Bf16 b) { return a.bits == b.bits; }));
      }
    EXPECT_TRUE(std::all_of(hits.begin(), hits.end(), [](int h) { return h == 1; }));
    // Token order within an expert: rows of expert e hold increasing token ids.
    for (int e = 0; e < c.experts; ++e) {
      std::vector<int> tokens_of_e;
      for (int t = 0; t < c.tokens; ++t)
        for (int k = 0; k < c.top_k; ++k)
          if (route.topk_idx[t * c.top_k + k] == e && r.row_map[t * c.top_k + k] >= 0)
            tokens_of_e.push_back(r.row_map[t * c.top_k + k]);
      EXPECT_TRUE(std::is_sorted(tokens_of_e.begin(), tokens_of_e.end()));
    }
  }
}

// ---------------------------------------------------------------- SwiGLU, GEMM, combine

TEST(SwigluRef, HandValues) {
  // Row [g0 g1 | u0 u1] = [0 1 | 3 −2]: silu(0)·3 = 0; silu(1)·(−2) = −1.4621172 → bf16 −1.4609375
  // (step 2^-7 in [1, 2): 187 steps). Row [−2 0.5 | 1 4]: silu(−2) = −0.23840584 → bf16 −0.23828125
  // (step 2^-10 in [1/8, 1/4)); silu(0.5)·4 = 1.2449186 → bf16 1.2421875 (159 steps of 2^-7).
  const auto a = swiglu_ref(2, 2, bf16s({0, 1, 3, -2, -2, 0.5f, 1, 4}));
  EXPECT_EQ(floats(a), (std::vector<float>{0.0f, -1.4609375f, -0.23828125f, 1.2421875f}));
}

TEST(ExpertGemmRef, HandValues) {
  // Two experts, one row each (compact). y = x · wᵀ with w[e] as [n, k]:
  // expert 0: w = I → y = [1, 2]; expert 1: w = [[1, 1], [2, −1]], x = [3, 4] → y = [7, 2].
  ExpertRows er;
  er.rows = {1, 1};
  const auto y = expert_gemm_ref(er, 2, 2, bf16s({1, 2, 3, 4}), bf16s({1, 0, 0, 1, 1, 1, 2, -1}));
  EXPECT_EQ(floats(y), (std::vector<float>{1, 2, 7, 2}));
  // Padded, capacity 2: expert 0 has 1 row at row 0, expert 1 has 1 row at row 2; rows 1, 3 are padding.
  er.layout = RowLayout::kPadded;
  er.capacity = 2;
  const auto yp =
      expert_gemm_ref(er, 2, 2, bf16s({1, 2, 9, 9, 3, 4, 9, 9}), bf16s({1, 0, 0, 1, 1, 1, 2, -1}));
  EXPECT_EQ(floats(yp), (std::vector<float>{1, 2, 0, 0, 7, 2, 0, 0}));
}

TEST(CombineRef, HandValues) {
  // y rows [1 2], [3 4], [5 6]; token 0 uses rows 0 and 2 with weights 0.25, 0.75 → [4, 5];
  // token 1 uses row 1 (0.5) and a dropped slot → [1.5, 2].
  CombineConfig c{2, 2, 2};
  const auto out = combine_ref(c, bf16s({1, 2, 3, 4, 5, 6}), {0, 2, 1, -1}, {0.25f, 0.75f, 0.5f, 0.5f});
  EXPECT_EQ(floats(out), (std::vector<float>{4, 5, 1.5f, 2}));
}

TEST(CombineRef, PermuteThenCombineIsIdentityWithUnitWeights) {
  // K = 1 with weight 1, and K = 4 with weights 1/4 (exact in binary): combine ∘ permute = x, bit for bit.
  // With drops, a token keeps bf16((kept slots / 4) · x): the fp32 sum of quarters of x is exact.
  for (int k : {1, 4}) {
    for (int capacity : {0, 30}) {
      SCOPED_TRACE("top_k " + std::to_string(k) + " capacity " + std::to_string(capacity));
      PermuteConfig pc;
      pc.tokens = 129;
      pc.experts = 8;
      pc.top_k = k;
      pc.hidden = 16;
      pc.capacity = capacity;
      std::mt19937 rng(11);
      std::vector<int32_t> idx;
      for (int t = 0; t < pc.tokens; ++t) {
        std::vector<int32_t> e(pc.experts);
        std::iota(e.begin(), e.end(), 0);
        std::shuffle(e.begin(), e.end(), rng);
        idx.insert(idx.end(), e.begin(), e.begin() + k);
      }
      std::uniform_real_distribution<float> u(-3.0f, 3.0f);
      std::vector<Bf16> x(static_cast<size_t>(pc.tokens) * pc.hidden);
      for (auto& v : x) v = to_bf16(u(rng));
      const auto p = permute_ref(pc, idx, x);
      const std::vector<float> w(idx.size(), 1.0f / static_cast<float>(k));
      const auto out = combine_ref(CombineConfig{pc.tokens, k, pc.hidden}, p.rows, p.row_map, w);
      for (int t = 0; t < pc.tokens; ++t) {
        int kept = 0;
        for (int j = 0; j < k; ++j) kept += p.row_map[t * k + j] >= 0 ? 1 : 0;
        for (int h = 0; h < pc.hidden; ++h)
          ASSERT_EQ(
              to_float(out[t * pc.hidden + h]),
              round_bf16(to_float(x[t * pc.hidden + h]) * static_cast<float>(kept) / static_cast<float>(k)))
              << "token " << t << " element " << h;
      }
      if (capacity == 0) {
        EXPECT_EQ(p.dropped, 0);
      }
    }
  }
}

// ---------------------------------------------------------------- the layer

// The whole layer against a naive per-token loop: for each token and each kept slot, gate/up as a
// triple loop, SwiGLU, down, then the weighted sum — no permutation at all.
std::vector<Bf16> naive_layer(const MoeLayerConfig& c, const MoeLayerInputs& in, const RouterResult& route,
                              const std::vector<int32_t>& row_map) {
  const int T = c.router.tokens, K = c.router.top_k, H = c.hidden, F = c.ffn;
  std::vector<Bf16> out(static_cast<size_t>(T) * H);
  std::vector<float> hg(2 * F), a(F), y(H), acc(H);
  for (int t = 0; t < T; ++t) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int k = 0; k < K; ++k) {
      if (row_map[t * K + k] < 0) continue;
      const int e = route.topk_idx[t * K + k];
      for (int j = 0; j < 2 * F; ++j) {
        float s = 0;
        for (int i = 0; i < H; ++i)
          s += to_float(in.x[static_cast<size_t>(t) * H + i]) *
               to_float(in.w_gate_up[(static_cast<size_t>(e) * 2 * F + j) * H + i]);
        hg[j] = round_bf16(s);
      }
      for (int j = 0; j < F; ++j) a[j] = round_bf16(hg[j] / (1.0f + std::exp(-hg[j])) * hg[F + j]);
      for (int j = 0; j < H; ++j) {
        float s = 0;
        for (int i = 0; i < F; ++i) s += a[i] * to_float(in.w_down[(static_cast<size_t>(e) * H + j) * F + i]);
        y[j] = round_bf16(s);
      }
      for (int j = 0; j < H; ++j) acc[j] = std::fma(route.topk_weight[t * K + k], y[j], acc[j]);
    }
    for (int j = 0; j < H; ++j) out[static_cast<size_t>(t) * H + j] = to_bf16(acc[j]);
  }
  return out;
}

TEST(MoeLayerRef, MatchesNaivePerTokenLoop) {
  for (GemmBackend backend : {GemmBackend::kCublasPerExpert, GemmBackend::kCublasStridedBatched}) {
    SCOPED_TRACE(to_string(backend));
    MoeLayerConfig c;
    c.router.tokens = 37;
    c.router.experts = 6;
    c.router.top_k = 2;
    c.hidden = 24;
    c.ffn = 16;
    c.backend = backend;
    c.capacity = backend == GemmBackend::kCublasStridedBatched ? 12 : 0;  // 12 < 37·2/6: drops
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    MoeLayerInputs in;
    in.logits.resize(static_cast<size_t>(c.router.tokens) * c.router.experts);
    for (float& l : in.logits) l = normal(rng);
    auto fill = [&](std::vector<Bf16>& v, size_t n, float scale) {
      v.resize(n);
      for (auto& b : v) b = to_bf16(scale * normal(rng));
    };
    fill(in.x, static_cast<size_t>(c.router.tokens) * c.hidden, 1.0f);
    fill(in.w_gate_up, static_cast<size_t>(c.router.experts) * 2 * c.ffn * c.hidden, 0.2f);
    fill(in.w_down, static_cast<size_t>(c.router.experts) * c.hidden * c.ffn, 0.25f);

    const auto r = moe_layer_ref(c, in);
    if (c.capacity > 0) {
      EXPECT_GT(r.permute.dropped, 0);
    }
    const auto naive = naive_layer(c, in, r.router, r.permute.row_map);
    ASSERT_EQ(r.out.size(), naive.size());
    for (size_t i = 0; i < naive.size(); ++i) ASSERT_EQ(r.out[i].bits, naive[i].bits) << "element " << i;
  }
}

TEST(GemmBackends, RegisteredByName) {
  EXPECT_EQ(parse_gemm_backend("cublas_grouped"), GemmBackend::kCublasGrouped);
  EXPECT_EQ(to_string(GemmBackend::kCublasStridedBatched), "cublas_strided_batched");
  EXPECT_EQ(layout_for(GemmBackend::kCublasStridedBatched), RowLayout::kPadded);
  EXPECT_EQ(layout_for(GemmBackend::kCublasGrouped), RowLayout::kCompact);
  try {
    parse_gemm_backend("cutlass");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("cublas_per_expert"), std::string::npos) << e.what();
  }
  MoeLayerConfig c;
  c.router.tokens = 4;
  c.router.experts = 4;
  c.hidden = 8;
  c.ffn = 8;
  c.backend = GemmBackend::kCublasStridedBatched;  // needs a capacity
  EXPECT_THROW(validate(c), ConfigError);
}

}  // namespace
}  // namespace moesim::kernels
