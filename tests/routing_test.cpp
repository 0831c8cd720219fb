// Load generators (traces/load.cpp), expert placement (models/placement.cpp) and the expected dispatch
// statistics of one MoE layer (models/dispatch.cpp), each against hand formulas:
//   - uniform shares 1/E; zipf shares ∝ (r+1)^-s; water-filling cap at 1/top_k preserving the sum;
//   - a token choosing top_k of the candidate slots with replacement hits a destination holding share c
//     of them with probability 1 − (1 − c)^top_k; with a node limit M ≤ top_k of N equally loaded nodes
//     each node is picked with probability M/N, and a picked node is hit and receives top_k/M of the
//     slots (checked against a Monte-Carlo sample of DeepSeek's node-limited gate).

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "models/dispatch.hpp"
#include "models/placement.hpp"
#include "scenarios/error.hpp"
#include "traces/load.hpp"

namespace moesim {
namespace {

using models::dispatch_stats;
using models::EpGeometry;
using models::place_experts;
using models::rank_shares;

double sum(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0);
}

LoadSpec zipf(double s, uint64_t seed) {
  LoadSpec l;
  l.generator = "zipf";
  l.zipf_s = s;
  l.seed = seed;
  return l;
}

// ------------------------------------------------------------------------------------ load shares

TEST(ExpertShares, UniformIsOneOverE) {
  LoadSpec l;  // uniform
  for (int e : {1, 8, 64, 256}) {
    const std::vector<double> s = traces::expert_shares(l, e, std::min(e, 8), 0);
    ASSERT_EQ(static_cast<int>(s.size()), e);
    for (double v : s) EXPECT_EQ(v, 1.0 / e);
  }
}

TEST(ExpertShares, ZipfFollowsPowerLawAfterSorting) {
  const double s_exp = 1.2;
  // top_k 1 → cap 1: no capping, the raw law is visible.
  std::vector<double> s = traces::expert_shares(zipf(s_exp, 7), 64, 1, 3);
  ASSERT_EQ(s.size(), 64u);
  EXPECT_NEAR(sum(s), 1.0, 1e-12);
  std::sort(s.begin(), s.end(), std::greater<>());
  // share(r) / share(0) = (r+1)^-s.
  for (int r = 0; r < 64; ++r) EXPECT_NEAR(s[r] / s[0], std::pow(r + 1.0, -s_exp), 1e-12) << "rank " << r;
  // share(0) = 1 / Σ_r (r+1)^-s.
  double h = 0;
  for (int r = 0; r < 64; ++r) h += std::pow(r + 1.0, -s_exp);
  EXPECT_NEAR(s[0], 1.0 / h, 1e-12);
}

TEST(ExpertShares, ZipfCappedAtOneOverTopK) {
  // s = 1.2 over 64 experts: the hottest raw share is 1/Σ(r+1)^-1.2 ≈ 0.29 > 1/8, so the cap binds.
  std::vector<double> s = traces::expert_shares(zipf(1.2, 7), 64, 8, 3);
  EXPECT_NEAR(sum(s), 1.0, 1e-12);
  for (double v : s) EXPECT_LE(v, 0.125 * (1 + 1e-12));
  std::sort(s.begin(), s.end(), std::greater<>());
  EXPECT_DOUBLE_EQ(s[0], 0.125);
  // Below the cap the power law survives (the excess is spread in proportion to the shares):
  // for uncapped ranks r, r+1: share(r+1)/share(r) = ((r+2)/(r+1))^-1.2.
  for (int r = 0; r + 1 < 64; ++r) {
    if (s[r] >= 0.125 * (1 - 1e-12)) continue;
    EXPECT_NEAR(s[r + 1] / s[r], std::pow((r + 2.0) / (r + 1.0), -1.2), 1e-12) << "rank " << r;
  }
}

TEST(ExpertShares, SameSeedBitIdenticalDifferentSeedPermutes) {
  const std::vector<double> a = traces::expert_shares(zipf(1.0, 42), 128, 8, 5);
  const std::vector<double> b = traces::expert_shares(zipf(1.0, 42), 128, 8, 5);
  EXPECT_EQ(a, b);  // bit for bit
  const std::vector<double> c = traces::expert_shares(zipf(1.0, 43), 128, 8, 5);
  EXPECT_NE(a, c);
  // Same multiset of values (only the ranking differs).
  std::vector<double> as = a, cs = c;
  std::sort(as.begin(), as.end());
  std::sort(cs.begin(), cs.end());
  for (std::size_t i = 0; i < as.size(); ++i) EXPECT_NEAR(as[i], cs[i], 1e-15);
  // The hottest expert moves.
  EXPECT_NE(std::max_element(a.begin(), a.end()) - a.begin(),
            std::max_element(c.begin(), c.end()) - c.begin());
  // Layers differ too under one seed.
  EXPECT_NE(a, traces::expert_shares(zipf(1.0, 42), 128, 8, 6));
}

TEST(ExpertShares, HotExpertCappedAtOneOverTopK) {
  LoadSpec l;
  l.generator = "hot_expert";
  l.hot_fraction = 0.5;
  l.hot_expert = 3;
  const std::vector<double> s = traces::expert_shares(l, 64, 8, 0);
  // 0.5 > 1/8: the hot expert is capped at exactly 1/8; the other 63 share 7/8 equally.
  EXPECT_EQ(s[3], 0.125);
  for (int e = 0; e < 64; ++e) {
    if (e == 3) continue;
    EXPECT_NEAR(s[e], 0.875 / 63, 1e-15);
  }
  EXPECT_NEAR(sum(s), 1.0, 1e-12);
  // Below the cap the hot fraction stands: 0.1 with top_k 8, others 0.9/63.
  l.hot_fraction = 0.1;
  const std::vector<double> t = traces::expert_shares(l, 64, 8, 0);
  EXPECT_NEAR(t[3], 0.1, 1e-15);
  EXPECT_NEAR(t[0], 0.9 / 63, 1e-15);
}

TEST(CapShares, WaterFillingByHand) {
  // {0.5, 0.3, 0.1, 0.1} capped at 0.3: 0.5 → 0.3, the 0.2 excess goes to the rest in proportion
  // (×1.4): 0.42, 0.14, 0.14; 0.42 > 0.3 → capped; the two left share 1 − 0.6 = 0.4: 0.2 each.
  std::vector<double> s{0.5, 0.3, 0.1, 0.1};
  traces::cap_shares(s, 0.3);
  EXPECT_NEAR(s[0], 0.3, 1e-15);
  EXPECT_NEAR(s[1], 0.3, 1e-15);
  EXPECT_NEAR(s[2], 0.2, 1e-15);
  EXPECT_NEAR(s[3], 0.2, 1e-15);
  // Nothing above the cap: unchanged.
  std::vector<double> u{0.25, 0.25, 0.25, 0.25};
  traces::cap_shares(u, 0.5);
  for (double v : u) EXPECT_EQ(v, 0.25);
  // The sum is kept for arbitrary inputs, and no share exceeds the cap.
  traces::SplitMix64 rng(99);
  for (int i = 0; i < 200; ++i) {
    std::vector<double> r(32);
    for (double& v : r) v = 1.0 + static_cast<double>(rng.below(1000));
    const double total = sum(r);
    for (double& v : r) v /= total;
    traces::cap_shares(r, 1.0 / 8);
    EXPECT_NEAR(sum(r), 1.0, 1e-12);
    for (double v : r) EXPECT_LE(v, 0.125 * (1 + 1e-9));
  }
}

// -------------------------------------------------------------------------------------- placement

TEST(Placement, ContiguousAndRoundRobin) {
  // 8 experts over 4 ranks: contiguous [0,2) on 0, [2,4) on 1, ...; round robin e mod 4.
  EXPECT_EQ(place_experts("contiguous", 8, 4), (std::vector<int>{0, 0, 1, 1, 2, 2, 3, 3}));
  EXPECT_EQ(place_experts("round_robin", 8, 4), (std::vector<int>{0, 1, 2, 3, 0, 1, 2, 3}));
  EXPECT_EQ(place_experts("contiguous", 4, 1), (std::vector<int>{0, 0, 0, 0}));
}

TEST(Placement, UnknownPolicyThrowsConfigError) {
  EXPECT_THROW(place_experts("eplb_magic", 8, 4), ConfigError);
  try {
    place_experts("eplb_magic", 8, 4);
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("contiguous"), std::string::npos) << msg;
    EXPECT_NE(msg.find("round_robin"), std::string::npos) << msg;
    EXPECT_NE(msg.find("eplb_magic"), std::string::npos) << msg;
  }
}

TEST(Placement, RankShares) {
  // Shares 0.1..0.4 (and 4 zeros) contiguous over 4 ranks: rank 0 gets 0.1 + 0.2, rank 1 0.3 + 0.4.
  const std::vector<double> s{0.1, 0.2, 0.3, 0.4, 0, 0, 0, 0};
  const std::vector<double> r = rank_shares(s, place_experts("contiguous", 8, 4), 4);
  EXPECT_NEAR(r[0], 0.3, 1e-15);
  EXPECT_NEAR(r[1], 0.7, 1e-15);
  EXPECT_EQ(r[2], 0.0);
  EXPECT_EQ(r[3], 0.0);
  // Round robin: rank 0 ← experts 0, 4; rank 1 ← 1, 5 ...
  const std::vector<double> rr = rank_shares(s, place_experts("round_robin", 8, 4), 4);
  EXPECT_NEAR(rr[0], 0.1, 1e-15);
  EXPECT_NEAR(rr[3], 0.4, 1e-15);
}

// -------------------------------------------------------------------------------- dispatch stats

std::vector<double> uniform(int e) {
  return std::vector<double>(static_cast<std::size_t>(e), 1.0 / e);
}

TEST(DispatchStats, UniformNodeLimitedHierarchical) {
  // 256 experts on EP64 (4 per rank), 8 ranks per node → 8 nodes; top-8 within at most 4 nodes.
  EpGeometry g;
  g.ep = 64;
  g.per_node = 8;
  g.top_k = 8;
  g.node_limit = 4;
  g.hierarchical = true;
  const auto s = dispatch_stats(uniform(256), place_experts("contiguous", 256, 64), g);
  // Each node is picked with probability 4/8 = 1/2, and a picked node is hit: P(hit node) = 1/2,
  // expected distinct nodes per token 4.
  const double node_hit = 0.5;
  const double distinct_nodes = 4;
  ASSERT_EQ(s.hit_node.size(), 8u);
  for (double v : s.hit_node) EXPECT_NEAR(v, node_hit, 1e-12);
  EXPECT_NEAR(sum(s.hit_node), distinct_nodes, 1e-12);
  // A picked node receives 8/4 = 2 slots; a rank holds 1/8 of its node: P(hit rank) = 1/2 · (1 − (7/8)^2).
  const double rank_hit = 0.5 * (1 - std::pow(7.0 / 8, 2));
  ASSERT_EQ(s.hit_rank.size(), 64u);
  for (double v : s.hit_rank) EXPECT_NEAR(v, rank_hit, 1e-12);
  // One NIC copy per remote node hit: 7 of the 8 nodes are remote → distinct_nodes · 7/8.
  EXPECT_NEAR(s.nic_out, distinct_nodes * 7 / 8, 1e-12);
  // Busiest receiver: one copy from each of the 7 other nodes' same-index GPU when its node is hit.
  EXPECT_NEAR(s.nic_in, 7 * node_hit, 1e-12);
  // NVLink fan-out inside the destination node: 8 source nodes (itself included) each send one copy
  // per node hit, which is forwarded to the (8 · rank_hit / node_hit) ranks hit there, 7/8 of them
  // other GPUs: 8 · node_hit · (8 · rank_hit / node_hit) · 7/8 = 56 · rank_hit; received likewise.
  EXPECT_NEAR(s.nvlink_out, 56 * rank_hit, 1e-12);
  EXPECT_NEAR(s.nvlink_in, 56 * rank_hit, 1e-12);
  // Uniform load: perfectly balanced.
  EXPECT_DOUBLE_EQ(s.max_over_mean, 1.0);
  for (double v : s.rank_share) EXPECT_DOUBLE_EQ(v, 1.0 / 64);
}

// DeepSeek-V3's node-limited gate (report §2.1.2), written out independently of traces/: every expert
// gets an i.i.d. score, each node is ranked by the sum of its top_k/M best scores, the M best nodes are
// kept, and the token takes the top_k experts inside them. Returns the mean distinct destination
// nodes and ranks per token over `tokens` tokens drawn with a fixed seed.
std::pair<double, double> sampled_node_limited(int nodes, int ranks_per_node, int experts_per_rank, int m,
                                               int k, int tokens) {
  std::mt19937_64 gen(20240521);
  const int per_node = ranks_per_node * experts_per_rank, experts = nodes * per_node,
            top = std::max(1, k / m);
  std::vector<double> score(static_cast<std::size_t>(experts)), node_score(static_cast<std::size_t>(nodes));
  std::vector<int> order(static_cast<std::size_t>(nodes)), cand;
  double node_sum = 0, rank_sum = 0;
  for (int t = 0; t < tokens; ++t) {
    for (double& x : score) x = double(gen() >> 11) * 0x1.0p-53;
    for (int n = 0; n < nodes; ++n) {
      std::vector<double> v(score.begin() + n * per_node, score.begin() + (n + 1) * per_node);
      std::partial_sort(v.begin(), v.begin() + top, v.end(), std::greater<>());
      node_score[n] = std::accumulate(v.begin(), v.begin() + top, 0.0);
    }
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + m, order.end(),
                      [&](int a, int b) { return node_score[a] > node_score[b]; });
    cand.clear();
    for (int i = 0; i < m; ++i)
      for (int e = order[i] * per_node; e < (order[i] + 1) * per_node; ++e) cand.push_back(e);
    std::partial_sort(cand.begin(), cand.begin() + k, cand.end(),
                      [&](int a, int b) { return score[a] > score[b]; });
    std::vector<int> hit_nodes, hit_ranks;
    for (int i = 0; i < k; ++i) {
      hit_nodes.push_back(cand[i] / per_node);
      hit_ranks.push_back(cand[i] / experts_per_rank);
    }
    for (auto* v : {&hit_nodes, &hit_ranks}) {
      std::sort(v->begin(), v->end());
      v->erase(std::unique(v->begin(), v->end()), v->end());
    }
    node_sum += double(hit_nodes.size());
    rank_sum += double(hit_ranks.size());
  }
  return {node_sum / tokens, rank_sum / tokens};
}

TEST(DispatchStats, NodeLimitedMatchesSampledRouting) {
  // DeepSeek-V3 on EP64: 256 experts, 8 nodes of 8 ranks, top-8 within 4 nodes. The sample gives
  // ≈ 3.96 distinct nodes and ≈ 7.5 distinct ranks per token (the former closed form said 3.60 nodes).
  struct Case {
    int nodes, ranks_per_node, experts_per_rank, m, k;
  };
  for (const Case c : {Case{8, 8, 4, 4, 8}, Case{16, 8, 2, 4, 8}, Case{8, 8, 4, 2, 6}}) {
    EpGeometry g;
    g.ep = c.nodes * c.ranks_per_node;
    g.per_node = c.ranks_per_node;
    g.top_k = c.k;
    g.node_limit = c.m;
    g.hierarchical = true;
    const int experts = g.ep * c.experts_per_rank;
    const auto s = dispatch_stats(uniform(experts), place_experts("contiguous", experts, g.ep), g);
    const auto [nodes, ranks] =
        sampled_node_limited(c.nodes, c.ranks_per_node, c.experts_per_rank, c.m, c.k, 20000);
    SCOPED_TRACE("nodes " + std::to_string(c.nodes) + ", M " + std::to_string(c.m));
    EXPECT_NEAR(sum(s.hit_node), nodes, 0.015 * nodes);
    EXPECT_NEAR(sum(s.hit_rank), ranks, 0.03 * ranks);
  }
}

// DeepSeek-V3's group-limited gate, written out independently of traces/: every expert gets an i.i.d.
// score, each of `groups` contiguous groups is ranked by the sum of its 2 best scores (the released
// router), the `topk_groups` best groups are kept and the token takes the top_k experts inside them.
// Returns the mean distinct destination nodes and ranks per token, experts placed contiguously.
std::pair<double, double> sampled_group_limited(int experts, int groups, int topk_groups, int k, int ranks,
                                                int per_node, int tokens) {
  std::mt19937_64 gen(20240522);
  const int per_group = experts / groups, per_rank = experts / ranks;
  std::vector<double> score(static_cast<std::size_t>(experts)), group_score(static_cast<std::size_t>(groups));
  std::vector<int> order(static_cast<std::size_t>(groups)), cand;
  double node_sum = 0, rank_sum = 0;
  for (int t = 0; t < tokens; ++t) {
    for (double& x : score) x = double(gen() >> 11) * 0x1.0p-53;
    for (int gr = 0; gr < groups; ++gr) {
      std::vector<double> v(score.begin() + gr * per_group, score.begin() + (gr + 1) * per_group);
      std::partial_sort(v.begin(), v.begin() + 2, v.end(), std::greater<>());
      group_score[gr] = v[0] + v[1];
    }
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + topk_groups, order.end(),
                      [&](int a, int b) { return group_score[a] > group_score[b]; });
    cand.clear();
    for (int i = 0; i < topk_groups; ++i)
      for (int e = order[i] * per_group; e < (order[i] + 1) * per_group; ++e) cand.push_back(e);
    std::partial_sort(cand.begin(), cand.begin() + k, cand.end(),
                      [&](int a, int b) { return score[a] > score[b]; });
    std::vector<int> hit_nodes, hit_ranks;
    for (int i = 0; i < k; ++i) {
      hit_ranks.push_back(cand[i] / per_rank);
      hit_nodes.push_back(cand[i] / per_rank / per_node);
    }
    for (auto* v : {&hit_nodes, &hit_ranks}) {
      std::sort(v->begin(), v->end());
      v->erase(std::unique(v->begin(), v->end()), v->end());
    }
    node_sum += double(hit_nodes.size());
    rank_sum += double(hit_ranks.size());
  }
  return {node_sum / tokens, rank_sum / tokens};
}

// Group-limited routing's closed form (dispatch_stats_grouped) against the sampled gate: DeepSeek-V3's
// 256 experts in 8 groups, 4 kept, top-8, on EP32 (4 nodes holding 2 groups each: the limit is not one
// of nodes), EP64 (a group per node), EP16 (4 groups per node) and EP128 (a group over 2 nodes). Uniform
// shares: each node is missed with the hypergeometric C(8 − m, 4)/C(8, 4) for its m whole groups (EP32:
// 15/70, so 4 · 55/70 = 3.14 nodes per token, where no limit would give 4 · (1 − (3/4)^8) = 3.60).
TEST(DispatchStats, GroupLimitedMatchesSampledRouting) {
  struct Case {
    int ranks, per_node;
  };
  for (const Case c : {Case{32, 8}, Case{64, 8}, Case{16, 8}, Case{128, 8}}) {
    EpGeometry g;
    g.ep = c.ranks;
    g.per_node = c.per_node;
    g.top_k = 8;
    g.groups = 8;
    g.topk_groups = 4;
    g.hierarchical = true;
    const int experts = 256, per_group = 32, per_rank = experts / c.ranks;
    std::vector<double> group_rank(static_cast<std::size_t>(8 * c.ranks), 0.0);
    for (int e = 0; e < experts; ++e)
      group_rank[static_cast<std::size_t>(e / per_group) * c.ranks + e / per_rank] += 1.0 / experts;
    const auto s = models::dispatch_stats_grouped(group_rank, g);
    const auto [nodes, ranks] = sampled_group_limited(experts, 8, 4, 8, c.ranks, c.per_node, 20000);
    SCOPED_TRACE("EP" + std::to_string(c.ranks));
    EXPECT_NEAR(sum(s.hit_node), nodes, 0.02 * nodes);
    EXPECT_NEAR(sum(s.hit_rank), ranks, 0.03 * ranks);
    // Flat dispatch: every slot is a copy somewhere, the copies sum to top_k.
    g.hierarchical = false;
    EXPECT_NEAR(sum(models::dispatch_stats_grouped(group_rank, g).copies_rank), 8.0, 1e-9);
    if (c.ranks == 32) {
      EXPECT_NEAR(sum(s.hit_node), 4 * 55.0 / 70, 1e-12);
    }
    std::printf(
        "[measured] group-limited EP%d: nodes per token %.4f closed form, %.4f sampled; ranks %.4f, %.4f\n",
        c.ranks, sum(s.hit_node), nodes, sum(s.hit_rank), ranks);
  }
}

TEST(DispatchStats, UniformFlatWithoutNodeLimit) {
  EpGeometry g;
  g.ep = 64;
  g.per_node = 8;
  g.top_k = 8;
  const auto s = dispatch_stats(uniform(256), place_experts("contiguous", 256, 64), g);
  // Every rank holds 1/64 of the slots: P(hit) = 1 − (1 − 1/64)^8, expected slots 8/64.
  const double hit = 1 - std::pow(1 - 1.0 / 64, 8);
  for (double v : s.hit_rank) EXPECT_NEAR(v, hit, 1e-12);
  for (double v : s.copies_rank) EXPECT_NEAR(v, 8.0 / 64, 1e-15);
  // Flat (NCCL all-to-all of the permuted rows): one copy per slot, 56 of the 64 ranks on other nodes:
  // 8 · 56/64 = 7 copies over the NIC per token.
  EXPECT_NEAR(s.nic_out, 8.0 * 56 / 64, 1e-12);
  // Busiest receiver: 8/64 of every token of the 56 GPUs of other nodes.
  EXPECT_NEAR(s.nic_in, 56 * 8.0 / 64, 1e-12);
  // NVLink: the 7 other local GPUs.
  EXPECT_NEAR(s.nvlink_out, 8.0 * 7 / 64, 1e-12);
  EXPECT_NEAR(s.nvlink_in, 7 * 8.0 / 64, 1e-12);
  EXPECT_DOUBLE_EQ(s.max_over_mean, 1.0);
}

TEST(DispatchStats, SingleNodeStaysOnNvlink) {
  // EP8 inside one node, 64 experts, top-8; no NIC traffic.
  EpGeometry g;
  g.ep = 8;
  g.per_node = 8;
  g.top_k = 8;
  auto s = dispatch_stats(uniform(64), place_experts("contiguous", 64, 8), g);
  EXPECT_EQ(s.nic_out, 0.0);
  EXPECT_EQ(s.nic_in, 0.0);
  // Flat: each of the 8 slots is a copy; 7/8 of them go to other GPUs; each GPU holds 1/8 of the slots,
  // so the busiest receiver gets 8 · 1/8 = 1 copy of every token of each of its 7 peers.
  EXPECT_NEAR(s.nvlink_out, 8 * 7.0 / 8, 1e-12);
  EXPECT_NEAR(s.nvlink_in, 7 * 1.0, 1e-12);
  // Hierarchical inside one node (DeepEP intranode, HybridEP): one copy per distinct GPU,
  // P(hit rank) = 1 − (7/8)^8: 8 · hit copies per token, 7/8 of them to other GPUs.
  g.hierarchical = true;
  s = dispatch_stats(uniform(64), place_experts("contiguous", 64, 8), g);
  const double hit = 1 - std::pow(7.0 / 8, 8);
  EXPECT_EQ(s.nic_out, 0.0);
  EXPECT_NEAR(s.nvlink_out, 8 * hit * 7 / 8, 1e-12);
  EXPECT_NEAR(s.nvlink_in, 7 * hit, 1e-12);
}

TEST(DispatchStats, LowLatencySendsEveryCopyOverTheNic) {
  // DeepEP low-latency kernels: each of a token's 8 copies is its own RDMA message, one node or many.
  EpGeometry g;
  g.ep = 8;
  g.per_node = 8;
  g.top_k = 8;
  g.hierarchical = true;  // overridden
  g.low_latency = true;
  auto s = dispatch_stats(uniform(64), place_experts("contiguous", 64, 8), g);
  // Uniform: a GPU keeps its own 8/8 · 1 = 1 copy per token and sends 7; the busiest receiver gets 1 copy
  // from each of 7 peers per source token.
  EXPECT_NEAR(s.nic_out, 7.0, 1e-12);
  EXPECT_NEAR(s.nic_in, 7.0, 1e-12);
  EXPECT_EQ(s.nvlink_out, 0.0);
  EXPECT_EQ(s.nvlink_in, 0.0);
  // 256 GPUs over 32 nodes: 8 · 255/256 copies out, 255 · 8/256 in; 128 tokens of 7408 bytes.
  g.ep = 256;
  s = dispatch_stats(uniform(256), place_experts("contiguous", 256, 256), g);
  EXPECT_NEAR(s.nic_out, 8.0 * 255 / 256, 1e-12);
  EXPECT_NEAR(s.nic_in, 255 * 8.0 / 256, 1e-12);
  const auto b = all_to_all_bytes(s, g, 128, 7408);
  EXPECT_NEAR(b.nic_out, 128 * 7408 * 8.0 * 255 / 256, 1e-6);
  EXPECT_EQ(b.nodes, 32);
}

TEST(DispatchStats, HotExpertImbalance) {
  // 256 experts, expert 5 takes hot_fraction 0.5 → capped at 1/8; the other 255 share 7/8.
  LoadSpec l;
  l.generator = "hot_expert";
  l.hot_fraction = 0.5;
  l.hot_expert = 5;
  const std::vector<double> shares = traces::expert_shares(l, 256, 8, 0);
  EpGeometry g;
  g.ep = 64;
  g.per_node = 8;
  g.top_k = 8;
  const auto s = dispatch_stats(shares, place_experts("contiguous", 256, 64), g);
  // Contiguous, 4 experts per rank: rank 1 holds experts 4..7, the hot one among them:
  // share 1/8 + 3 · (7/8)/255; mean 1/64 → max/mean = 64 · (1/8 + 3 · 0.875/255) ≈ 8.659.
  const double hot_rank = 0.125 + 3 * 0.875 / 255;
  EXPECT_EQ(s.straggler, 1);
  EXPECT_NEAR(s.rank_share[1], hot_rank, 1e-15);
  EXPECT_NEAR(s.max_over_mean, hot_rank * 64, 1e-12);
  // The other ranks: 4 · 0.875/255.
  EXPECT_NEAR(s.rank_share[0], 4 * 0.875 / 255, 1e-15);
  // The hot rank is hit by 1 − (1 − hot_rank)^8 of the tokens.
  EXPECT_NEAR(s.hit_rank[1], 1 - std::pow(1 - hot_rank, 8), 1e-12);
  // Round robin puts expert 5 on rank 5 with experts 69, 133, 197: the same share, another rank.
  const auto rr = dispatch_stats(shares, place_experts("round_robin", 256, 64), g);
  EXPECT_EQ(rr.straggler, 5);
  EXPECT_NEAR(rr.max_over_mean, hot_rank * 64, 1e-12);
}

TEST(DispatchStats, AllToAllBytesScaleWithTokensAndCopySize) {
  EpGeometry g;
  g.ep = 64;
  g.per_node = 8;
  g.top_k = 8;
  const auto s = dispatch_stats(uniform(256), place_experts("contiguous", 256, 64), g);
  // bytes = copies per token · tokens · bytes per copy; 4096 tokens of 7408 B; flat: 8 · 56/64 NIC copies.
  const auto b = models::all_to_all_bytes(s, g, 4096, 7408);
  EXPECT_NEAR(b.nic_out, 7.0 * 4096 * 7408, 1e-3);
  EXPECT_NEAR(b.nic_in, 7.0 * 4096 * 7408, 1e-3);
  EXPECT_NEAR(b.nvlink_out, 8.0 * 7 / 64 * 4096 * 7408, 1e-3);
  EXPECT_EQ(b.nodes, 8);
  // Flat copies go straight to their GPU: no NVLink leg relays NIC traffic.
  EXPECT_FALSE(b.relay);
  // Hierarchical across nodes relays; inside one node, or as low-latency copies, it does not.
  g.hierarchical = true;
  EXPECT_TRUE(models::all_to_all_bytes(dispatch_stats(uniform(256), place_experts("contiguous", 256, 64), g),
                                       g, 4096, 7408)
                  .relay);
  g.low_latency = true;
  EXPECT_FALSE(models::all_to_all_bytes(s, g, 4096, 7408).relay);
  g.low_latency = false;
  g.ep = 8;
  EXPECT_FALSE(models::all_to_all_bytes(dispatch_stats(uniform(256), place_experts("contiguous", 256, 8), g),
                                        g, 4096, 7408)
                   .relay);
}

}  // namespace
}  // namespace moesim
