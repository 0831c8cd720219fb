// Expert placement with redundant experts (models/placement/), each assertion against a value derived
// independently of the library:
//   - DeepSeek EPLB's README example (github.com/deepseek-ai/EPLB): phy2log as printed there; logcnt,
//     log2phy and GPU loads derived by hand by stepping through eplb.py;
//   - the global policy (groups not divisible by nodes) on a small case stepped through by hand;
//   - 200 seeded random cases: structural validity, per-GPU load recomputed from phy2log alone, EPLB's
//     replica rule and group-per-node property, EPLB against the no-replica contiguous layout;
//   - greedy (LPT) packing against Graham-style bounds and a brute-force optimum;
//   - co-activation partitioning: zero cut on two disjoint clusters, the hand-derived minimum bisection,
//     never a larger cut than the contiguous layout;
//   - rebalance traffic on a hand example; ConfigError for every invalid argument.

#include "models/placement/eplb.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "models/placement/metrics.hpp"
#include "scenarios/error.hpp"

namespace moesim {
namespace {

using models::ExpertLoads;
using models::ExpertPlacement;
using models::PlacementInput;
using Matrix = std::vector<std::vector<double>>;

// std::mt19937's sequence is fixed by the standard (the std:: distributions are not), so every platform
// draws the same cases.
double uniform01(std::mt19937& rng) {
  return rng() / 4294967296.0;
}

struct Shape {
  int layers, logical, replicas, groups, nodes, gpus;
};

const std::vector<Shape> kShapes{
    {2, 12, 16, 4, 2, 8},     // the README's shape (hierarchical)
    {3, 16, 16, 4, 2, 4},     // no redundant experts
    {2, 64, 72, 8, 2, 8},     // hierarchical, one redundant slot per GPU
    {2, 32, 40, 4, 4, 8},     // one group per node
    {2, 24, 32, 3, 2, 8},     // 3 groups on 2 nodes: global policy
    {1, 256, 288, 8, 4, 32},  // DeepSeek-V3-like: 256 experts, 32 redundant
    {2, 8, 8, 1, 1, 8},       // one expert per GPU
    {2, 10, 20, 5, 1, 4},     // one node, many replicas
    {2, 60, 64, 6, 4, 16},    // 6 groups on 4 nodes: global policy
};

// kind 0: continuous, heavy-tailed (u^4); 1: integer counts (many ties); 2: Zipf(1.2) over a random
// permutation; 3: uniform (not skewed).
ExpertLoads random_loads(std::mt19937& rng, int layers, int logical, int kind) {
  ExpertLoads w(static_cast<std::size_t>(layers), std::vector<double>(static_cast<std::size_t>(logical)));
  for (auto& row : w) {
    std::vector<int> rank(row.size());
    std::iota(rank.begin(), rank.end(), 0);
    for (int i = logical - 1; i > 0; --i) std::swap(rank[i], rank[rng() % static_cast<unsigned>(i + 1)]);
    for (int e = 0; e < logical; ++e) {
      const double u = uniform01(rng);
      switch (kind) {
        case 0:
          row[e] = 1000.0 * u * u * u * u;
          break;
        case 1:
          row[e] = static_cast<double>(static_cast<int>(20.0 * u * u));
          break;
        case 2:
          row[e] = 1000.0 * std::pow(rank[e] + 1.0, -1.2);
          break;
        default:
          row[e] = 100.0 * u;
          break;
      }
    }
  }
  return w;
}

// Sparse symmetric co-activation counts, zero diagonal.
Matrix random_coactivation(std::mt19937& rng, int n) {
  Matrix c(static_cast<std::size_t>(n), std::vector<double>(static_cast<std::size_t>(n), 0.0));
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j)
      if (uniform01(rng) < 0.15) c[i][j] = c[j][i] = static_cast<double>(1 + rng() % 50);
  return c;
}

std::vector<int> count_replicas(const std::vector<int>& row, int logical) {
  std::vector<int> cnt(static_cast<std::size_t>(logical), 0);
  for (int e : row) ++cnt[e];
  return cnt;
}

// GPU loads from phy2log alone: expert e's load is split evenly over the slots that hold it, and slot s
// sits on GPU s / (slots / gpus).
std::vector<double> loads_by_hand(const std::vector<int>& row, const std::vector<double>& w, int gpus) {
  const std::vector<int> cnt = count_replicas(row, static_cast<int>(w.size()));
  const int per_gpu = static_cast<int>(row.size()) / gpus;
  std::vector<double> load(static_cast<std::size_t>(gpus), 0.0);
  for (std::size_t s = 0; s < row.size(); ++s) load[s / per_gpu] += w[row[s]] / cnt[row[s]];
  return load;
}

double max_over_mean(const std::vector<double>& load) {
  const double mean = std::accumulate(load.begin(), load.end(), 0.0) / static_cast<double>(load.size());
  return mean > 0 ? *std::max_element(load.begin(), load.end()) / mean : 1.0;
}

// Each slot holds a valid expert, every expert has ≥ 1 replica, replicas sum to the slot count, equal
// slots per GPU, logcnt = counts from phy2log, log2phy lists exactly the slots of each expert, once each,
// padded with -1 to the largest count.
void expect_valid(const ExpertPlacement& p, const Shape& s) {
  ASSERT_EQ(p.layers, s.layers);
  ASSERT_EQ(p.num_physical, s.replicas);
  ASSERT_EQ(p.num_logical, s.logical);
  ASSERT_EQ(p.num_gpus, s.gpus);
  ASSERT_EQ(p.slots_per_gpu() * s.gpus, s.replicas);
  ASSERT_EQ(p.phy2log.size(), static_cast<std::size_t>(s.layers));
  ASSERT_EQ(p.logcnt.size(), static_cast<std::size_t>(s.layers));
  ASSERT_EQ(p.log2phy.size(), static_cast<std::size_t>(s.layers));
  int width = 0;
  for (int l = 0; l < s.layers; ++l) {
    ASSERT_EQ(p.phy2log[l].size(), static_cast<std::size_t>(s.replicas));
    for (int e : p.phy2log[l]) ASSERT_TRUE(e >= 0 && e < s.logical) << "slot holds " << e;
    const std::vector<int> cnt = count_replicas(p.phy2log[l], s.logical);
    for (int c : cnt) EXPECT_GE(c, 1);
    EXPECT_EQ(p.logcnt[l], cnt) << "layer " << l;
    EXPECT_EQ(std::accumulate(p.logcnt[l].begin(), p.logcnt[l].end(), 0), s.replicas);
    width = std::max(width, *std::max_element(cnt.begin(), cnt.end()));
  }
  for (int l = 0; l < s.layers; ++l) {
    ASSERT_EQ(p.log2phy[l].size(), static_cast<std::size_t>(s.logical));
    std::vector<int> seen(static_cast<std::size_t>(s.replicas), 0);
    for (int e = 0; e < s.logical; ++e) {
      ASSERT_EQ(p.log2phy[l][e].size(), static_cast<std::size_t>(width));
      for (int r = 0; r < width; ++r) {
        const int slot = p.log2phy[l][e][r];
        if (r < p.logcnt[l][e]) {
          ASSERT_TRUE(slot >= 0 && slot < s.replicas);
          EXPECT_EQ(p.phy2log[l][slot], e);
          ++seen[slot];
        } else {
          EXPECT_EQ(slot, -1);
        }
      }
    }
    for (int v : seen) EXPECT_EQ(v, 1);  // with the counts above: log2phy is the inverse of phy2log
  }
}

void expect_loads_match(const ExpertPlacement& p, const ExpertLoads& w) {
  const std::vector<models::LayerLoad> lib = models::gpu_loads(p, w);
  ASSERT_EQ(lib.size(), w.size());
  for (std::size_t l = 0; l < w.size(); ++l) {
    const std::vector<double> hand = loads_by_hand(p.phy2log[l], w[l], p.num_gpus);
    const double mx = *std::max_element(hand.begin(), hand.end());
    ASSERT_EQ(lib[l].gpu.size(), hand.size());
    for (std::size_t g = 0; g < hand.size(); ++g) EXPECT_NEAR(lib[l].gpu[g], hand[g], 1e-12 * (1 + mx));
    EXPECT_NEAR(lib[l].max, mx, 1e-12 * (1 + mx));
    EXPECT_NEAR(lib[l].imbalance, max_over_mean(hand), 1e-12);
  }
}

// The replica rule "one more replica to the expert with the highest load per replica" leaves, for every
// expert e with c_e > 1 replicas, w_e / (c_e − 1) ≥ w_f / c_f for every f replicated in the same scope:
// when e got its last replica its load per replica was the largest, and counts only grow afterwards.
// scope[e] is e's node (hierarchical) or 0 (global).
void expect_replica_rule(const std::vector<int>& cnt, const std::vector<double>& w,
                         const std::vector<int>& scope, double rel_tol) {
  for (std::size_t e = 0; e < w.size(); ++e) {
    if (cnt[e] < 2) continue;
    const double before = w[e] / (cnt[e] - 1);
    for (std::size_t f = 0; f < w.size(); ++f) {
      if (scope[f] == scope[e]) {
        EXPECT_GE(before * (1 + rel_tol), w[f] / cnt[f]) << "experts " << e << ", " << f;
      }
    }
  }
}

// Node of each expert's first slot.
std::vector<int> node_of_expert(const ExpertPlacement& p, int layer) {
  std::vector<int> node(static_cast<std::size_t>(p.num_logical), -1);
  for (int s = p.num_physical - 1; s >= 0; --s) node[p.phy2log[layer][s]] = p.node_of_gpu(p.gpu_of_slot(s));
  return node;
}

// Every slot of expert e sits on node node[e] (replicas never leave their node).
void expect_replicas_stay_on_node(const ExpertPlacement& p, int layer) {
  const std::vector<int> node = node_of_expert(p, layer);
  for (int s = 0; s < p.num_physical; ++s)
    EXPECT_EQ(p.node_of_gpu(p.gpu_of_slot(s)), node[p.phy2log[layer][s]]) << "slot " << s;
}

PlacementInput input_for(const Shape& s, ExpertLoads w) {
  PlacementInput in;
  in.weight = std::move(w);
  in.num_replicas = s.replicas;
  in.num_groups = s.groups;
  in.num_nodes = s.nodes;
  in.num_gpus = s.gpus;
  return in;
}

// ------------------------------------------------------------------------------------- DeepSeek EPLB

const ExpertLoads kReadme{{90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86},
                          {20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27}};

TEST(Eplb, ReadmeExampleBitForBit) {
  const ExpertPlacement p = models::rebalance_experts(kReadme, 16, 4, 2, 8);
  // Printed in the README of github.com/deepseek-ai/EPLB.
  const std::vector<std::vector<int>> phy2log{{5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1},
                                              {7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1}};
  EXPECT_EQ(p.phy2log, phy2log);
  // Counted in the rows above.
  const std::vector<std::vector<int>> logcnt{{1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1},
                                             {1, 2, 1, 1, 1, 2, 2, 1, 2, 1, 1, 1}};
  EXPECT_EQ(p.logcnt, logcnt);
  // Replica order (original first) from stepping through eplb.py. Layer 0: groups {3,4,5},{6,7,8} on
  // node 0 (loads 330, 116), {9,10,11},{0,1,2} on node 1 (325, 262). Node 0 replicates 5 (165) then 4
  // (104); per-replica loads of its 8 physical experts 3,4,5,6,7,8,5',4' are 61,52,82.5,39,4,73,82.5,52,
  // packed heaviest first: 5→GPU0, 5'→GPU1, 8→GPU2, 3→GPU3, 4→GPU3, 4'→GPU2, 6→GPU0, 7→GPU1, so 5 is
  // at slots 0 then 2 and 4 at slots 7 then 5. Node 1 replicates 10 (183) then 1 (132): 10 at slots 8,
  // 10 and 1 at slots 15, 13. Layer 1 likewise: nodes {6..11} and {3,4,5,0,1,2}; node 0 replicates 6
  // (187) then 8 (172) and the three loads of 86 (8, 9, 8') tie, taken in that order: 6 at 2, 4 and 8 at
  // 6, 3; node 1 replicates 5 (197) then 1 (107): 5 at 10, 12 and 1 at 15, 11.
  const std::vector<std::vector<std::vector<int>>> log2phy{{{12, -1},
                                                            {15, 13},
                                                            {11, -1},
                                                            {6, -1},
                                                            {7, 5},
                                                            {0, 2},
                                                            {1, -1},
                                                            {3, -1},
                                                            {4, -1},
                                                            {9, -1},
                                                            {8, 10},
                                                            {14, -1}},
                                                           {{13, -1},
                                                            {15, 11},
                                                            {8, -1},
                                                            {14, -1},
                                                            {9, -1},
                                                            {10, 12},
                                                            {2, 4},
                                                            {0, -1},
                                                            {6, 3},
                                                            {7, -1},
                                                            {1, -1},
                                                            {5, -1}}};
  EXPECT_EQ(p.log2phy, log2phy);
  expect_valid(p, {2, 12, 16, 4, 2, 8});
  // GPU loads of layer 0 from the packing above: 82.5+39, 82.5+4, 73+52, 61+52 | 91.5+56, 91.5+40, 90+66,
  // 86+66; the total is the layer's 1033 tokens.
  const std::vector<models::LayerLoad> load = models::gpu_loads(p, kReadme);
  const std::vector<double> gpu0{121.5, 86.5, 125, 113, 147.5, 131.5, 156, 152};
  EXPECT_EQ(load[0].gpu, gpu0);  // halves of integers: exact
  EXPECT_DOUBLE_EQ(load[0].max, 156);
  EXPECT_DOUBLE_EQ(load[0].mean, 1033.0 / 8);
  EXPECT_DOUBLE_EQ(load[0].imbalance, 156 / (1033.0 / 8));
  // Same thing through the registry.
  PlacementInput in = input_for({2, 12, 16, 4, 2, 8}, kReadme);
  EXPECT_EQ(models::place("eplb", in).phy2log, phy2log);
}

TEST(Eplb, GlobalPolicyWhenNodesDoNotDivideGroups) {
  // 3 groups on 2 nodes → global policy. By hand: replicate 5 (60 → 30 each), then 1 (50 → 25 each).
  // Physical experts 0,1,2,3,4,5,5',1' carry 10,25,30,20,40,30,30,25; heaviest first onto 4 GPUs of 2
  // slots: 4→G0, 2→G1, 5→G2, 5'→G3 (ties in index order), 1→G1 (55), 1'→G2 (55), 3→G3 (50), 0→G0 (50).
  const ExpertLoads w{{10, 50, 30, 20, 40, 60}};
  const ExpertPlacement p = models::rebalance_experts(w, 8, 3, 2, 4);
  EXPECT_EQ(p.phy2log, (std::vector<std::vector<int>>{{4, 0, 2, 1, 5, 1, 5, 3}}));
  EXPECT_EQ(p.logcnt, (std::vector<std::vector<int>>{{1, 2, 1, 1, 1, 2}}));
  EXPECT_EQ(
      p.log2phy,
      (std::vector<std::vector<std::vector<int>>>{{{1, -1}, {3, 5}, {2, -1}, {7, -1}, {0, -1}, {4, 6}}}));
  EXPECT_EQ(models::gpu_loads(p, w)[0].gpu, (std::vector<double>{50, 55, 55, 50}));
  // The global policy is the hierarchical one with one group on one node.
  EXPECT_EQ(models::rebalance_experts(w, 8, 1, 1, 4).phy2log, p.phy2log);
}

TEST(Eplb, OneExpertPerGpuKeepsInputOrder) {
  // eplb.py puts item i in pack i when packs hold one item each: no redundancy, one group per node and
  // one slot per GPU give the identity placement whatever the loads.
  const ExpertLoads w{{1, 9, 3, 7}};
  EXPECT_EQ(models::rebalance_experts(w, 4, 2, 2, 4).phy2log, (std::vector<std::vector<int>>{{0, 1, 2, 3}}));
  // Greedy (plain LPT) puts the heaviest on GPU 0 instead.
  PlacementInput in = input_for({1, 4, 4, 1, 1, 4}, w);
  EXPECT_EQ(models::place("greedy", in).phy2log, (std::vector<std::vector<int>>{{1, 3, 2, 0}}));
}

TEST(Eplb, ReplicaTiesGoToTheLowerIndex) {
  // Experts 0 and 1 tie at 12 for the one redundant slot; torch.max picks the first, expert 0. Physical
  // experts 0,1,2,0' carry 6,12,3,6: 1→G0, 0→G1, 0'→G1 (6 < 12), 2→G0. (Giving it to expert 1 instead
  // would yield {0,2},{1,1}.)
  const ExpertPlacement p = models::rebalance_experts({{12, 12, 3}}, 4, 1, 1, 2);
  EXPECT_EQ(p.phy2log, (std::vector<std::vector<int>>{{1, 2, 0, 0}}));
  EXPECT_EQ(p.log2phy, (std::vector<std::vector<std::vector<int>>>{{{2, 3}, {0, -1}, {1, -1}}}));
}

TEST(Eplb, LoadsAreComparedInFloat32LikeTheReference) {
  // eplb.py calls weight.float(): 2^24 + 1 rounds to 2^24 and ties with expert 0, which then goes first
  // (0→G0, 1→G1, 2→G0 on equal loads, 3→G1). In double, expert 1 is heavier and goes first, as greedy
  // (double precision) shows: 1→G0, 0→G1, 2→G1, 3→G0.
  const ExpertLoads w{{16777216, 16777217, 3, 1}};
  EXPECT_EQ(models::rebalance_experts(w, 4, 1, 1, 2).phy2log, (std::vector<std::vector<int>>{{0, 2, 1, 3}}));
  EXPECT_EQ(models::place("greedy", input_for({1, 4, 4, 1, 1, 2}, w)).phy2log,
            (std::vector<std::vector<int>>{{1, 3, 0, 2}}));
}

TEST(ReplicatedPlacement, RandomCasesValidLoadsMatchAndEplbBeatsContiguous) {
  double eplb_sum = 0, contiguous_sum = 0;
  int compared = 0;
  for (int seed = 0; seed < 200; ++seed) {
    const Shape& s = kShapes[seed % kShapes.size()];
    const int kind = static_cast<int>(seed / kShapes.size()) % 4;
    SCOPED_TRACE("seed " + std::to_string(seed) + ", kind " + std::to_string(kind) + ", " +
                 std::to_string(s.logical) + " experts");
    std::mt19937 rng(static_cast<unsigned>(seed));
    PlacementInput in = input_for(s, random_loads(rng, s.layers, s.logical, kind));
    in.coactivation = {random_coactivation(rng, s.logical)};
    const bool hierarchical = s.groups % s.nodes == 0;

    const ExpertPlacement eplb = models::place("eplb", in);
    expect_valid(eplb, s);
    expect_loads_match(eplb, in.weight);
    for (int l = 0; l < s.layers; ++l) {
      // EPLB works in float32 like the reference: tolerance at float rounding.
      const std::vector<int> scope =
          hierarchical ? node_of_expert(eplb, l) : std::vector<int>(static_cast<std::size_t>(s.logical), 0);
      expect_replica_rule(eplb.logcnt[l], in.weight[l], scope, 1e-6);
      if (!hierarchical) continue;
      // Hierarchical: replicas stay on their node and every group lies on one node.
      expect_replicas_stay_on_node(eplb, l);
      const std::vector<int> node = node_of_expert(eplb, l);
      const int group_size = s.logical / s.groups;
      for (int e = 0; e < s.logical; ++e) EXPECT_EQ(node[e], node[e - e % group_size]) << "expert " << e;
    }

    const ExpertPlacement greedy = models::place("greedy", in);
    expect_valid(greedy, s);
    expect_loads_match(greedy, in.weight);
    for (int l = 0; l < s.layers; ++l)
      expect_replica_rule(greedy.logcnt[l], in.weight[l],
                          std::vector<int>(static_cast<std::size_t>(s.logical), 0), 1e-12);

    const ExpertPlacement co = models::place("coactivation", in);
    expect_valid(co, s);
    expect_loads_match(co, in.weight);
    for (int l = 0; l < s.layers; ++l) {
      expect_replicas_stay_on_node(co, l);
      expect_replica_rule(co.logcnt[l], in.weight[l], node_of_expert(co, l), 1e-12);
    }

    if (s.logical % s.gpus != 0) continue;  // no no-replica layout for this shape
    PlacementInput flat = in;
    flat.num_replicas = s.logical;
    const Shape flat_shape{s.layers, s.logical, s.logical, s.groups, s.nodes, s.gpus};
    const ExpertPlacement contiguous = models::place("contiguous", flat);
    const ExpertPlacement round_robin = models::place("round_robin", flat);
    for (const ExpertPlacement* p : {&contiguous, &round_robin}) {
      expect_valid(*p, flat_shape);
      expect_loads_match(*p, in.weight);
    }
    const int per_gpu = s.logical / s.gpus;
    for (int e = 0; e < s.logical; ++e) {
      EXPECT_EQ(contiguous.gpu_of_slot(contiguous.log2phy[0][e][0]), e / per_gpu);
      EXPECT_EQ(round_robin.gpu_of_slot(round_robin.log2phy[0][e][0]), e % s.gpus);
    }
    // The co-activation partition is refined from the contiguous one too and refinement never raises the
    // cut, so it never cuts more than the contiguous layout (up to summation order).
    const double cut_contiguous = models::coactivation_cut(contiguous, 0, in.coactivation[0]);
    EXPECT_LE(models::coactivation_cut(co, 0, in.coactivation[0]), cut_contiguous * (1 + 1e-12));
    EXPECT_LE(models::coactivation_cut(models::place("coactivation", flat), 0, in.coactivation[0]),
              cut_contiguous * (1 + 1e-12));

    // EPLB against the load-blind contiguous layout on skewed loads. Not a theorem case by case (greedy
    // packing is a heuristic and contiguous may happen to be balanced, and with no redundant slots EPLB
    // only reorders), so it is asserted on the mean max/mean over the seeds.
    if (kind == 3) continue;
    for (int l = 0; l < s.layers; ++l) {
      eplb_sum += max_over_mean(loads_by_hand(eplb.phy2log[l], in.weight[l], s.gpus));
      contiguous_sum += max_over_mean(loads_by_hand(contiguous.phy2log[l], in.weight[l], s.gpus));
      ++compared;
    }
  }
  ASSERT_GT(compared, 50);
  EXPECT_LT(eplb_sum / compared, contiguous_sum / compared);
  std::printf("mean GPU max/mean over %d skewed layers: eplb %.3f, contiguous %.3f\n", compared,
              eplb_sum / compared, contiguous_sum / compared);
}

// ------------------------------------------------------------------------------------ greedy (LPT)

// Items of a placement: per-replica loads w_e / c_e, one per slot.
std::vector<double> items_of(const ExpertPlacement& p, const std::vector<double>& w) {
  std::vector<double> items;
  for (int e : p.phy2log[0]) items.push_back(w[e] / p.logcnt[0][e]);
  return items;
}

TEST(GreedyPlacement, WithinFourThirdsOfLowerBound) {
  // Graham (1969): LPT ≤ 4/3 · OPT, and OPT ≥ LB = max(mean GPU load, largest item). The bound against
  // LB is not a theorem once GPUs hold a fixed number of slots (items 3,3,3,3,0,0 on 3 GPUs of 2 slots:
  // OPT = 6 > 4/3 · 4), so it is asserted over these random families of positive loads.
  for (int seed = 0; seed < 200; ++seed) {
    std::mt19937 rng(static_cast<unsigned>(1000 + seed));
    const int gpus = 2 + static_cast<int>(rng() % 15);
    const int per_gpu = 1 + static_cast<int>(rng() % 8);
    const int extra = static_cast<int>(rng() % 3);  // redundant slots per GPU
    const int logical = gpus * per_gpu;
    PlacementInput in = input_for({1, logical, gpus * (per_gpu + extra), 1, 1, gpus},
                                  random_loads(rng, 1, logical, seed % 4));
    for (double& v : in.weight[0]) v += 1;  // positive loads
    const ExpertPlacement p = models::place("greedy", in);
    const std::vector<double> items = items_of(p, in.weight[0]);
    const models::LayerLoad load = models::gpu_loads(p, in.weight)[0];
    const double lb = std::max(load.mean, *std::max_element(items.begin(), items.end()));
    EXPECT_LE(load.max, 4.0 / 3.0 * lb * (1 + 1e-12)) << "seed " << seed;
    EXPECT_GE(load.max, lb * (1 - 1e-12)) << "seed " << seed;
  }
}

// Smallest possible max GPU load with exactly k items per GPU, by enumerating the partitions.
double brute_force_optimum(const std::vector<double>& items, int k) {
  const int n = static_cast<int>(items.size());
  std::vector<char> used(static_cast<std::size_t>(n), 0);
  double best = 1e300;
  std::function<void(double)> next_pack = [&](double worst) {
    int first = 0;
    while (first < n && used[first]) ++first;
    if (first == n) {
      best = std::min(best, worst);
      return;
    }
    used[first] = 1;
    // Choose the other k − 1 members (indices ascending) of the pack holding the first unused item.
    std::function<void(int, int, double)> pick = [&](int from, int left, double sum) {
      if (left == 0) return next_pack(std::max(worst, sum));
      for (int j = from; j < n; ++j)
        if (!used[j]) {
          used[j] = 1;
          pick(j + 1, left - 1, sum + items[j]);
          used[j] = 0;
        }
    };
    pick(first + 1, k - 1, items[first]);
    used[first] = 0;
  };
  next_pack(0);
  return best;
}

TEST(GreedyPlacement, TwoSlotsOptimalThreeSlotsWithinKellererWoeginger) {
  // With 2 slots per GPU the greedy pairs the i-th largest with the i-th smallest, which is optimal;
  // with 3 it is the "modified LPT" of Kellerer & Woeginger (1993, Discrete Appl. Math. 45(3)),
  // within (4/3 − 1/(3m)) of the optimum on m GPUs.
  for (int seed = 0; seed < 60; ++seed) {
    std::mt19937 rng(static_cast<unsigned>(5000 + seed));
    const int k = 2 + seed % 2;
    const int gpus = k == 2 ? 2 + static_cast<int>(rng() % 4) : 2 + static_cast<int>(rng() % 3);
    PlacementInput in =
        input_for({1, gpus * k, gpus * k, 1, 1, gpus}, random_loads(rng, 1, gpus * k, seed % 4));
    const ExpertPlacement p = models::place("greedy", in);
    const double opt = brute_force_optimum(in.weight[0], k);
    const double got = models::gpu_loads(p, in.weight)[0].max;
    if (k == 2) {
      EXPECT_NEAR(got, opt, 1e-9 * (1 + opt)) << "seed " << seed;
    } else {
      EXPECT_LE(got, (4.0 / 3.0 - 1.0 / (3.0 * gpus)) * opt * (1 + 1e-12) + 1e-12) << "seed " << seed;
    }
  }
}

// ---------------------------------------------------------------------------------- co-activation

// Experts of equal parity are co-activated (weight 10 + i + j, i ≠ j), others by `cross`.
Matrix parity_clusters(int n, double cross) {
  Matrix c(static_cast<std::size_t>(n), std::vector<double>(static_cast<std::size_t>(n), 0.0));
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      if (i != j) c[i][j] = (i % 2 == j % 2) ? 10.0 + i + j : cross;
  return c;
}

TEST(CoactivationPlacement, DisjointClustersGetZeroCut) {
  const Matrix c = parity_clusters(8, 0);
  for (int replicas : {8, 12}) {
    SCOPED_TRACE("replicas " + std::to_string(replicas));
    PlacementInput in = input_for({1, 8, replicas, 1, 2, 4}, {{5, 1, 4, 2, 3, 3, 2, 4}});
    in.coactivation = {c};
    const ExpertPlacement p = models::place("coactivation", in);
    expect_valid(p, {1, 8, replicas, 1, 2, 4});
    EXPECT_EQ(models::coactivation_cut(p, 0, c), 0.0);
    const std::vector<int> node = node_of_expert(p, 0);
    for (int e = 2; e < 8; ++e) EXPECT_EQ(node[e], node[e % 2]) << "expert " << e;
    EXPECT_NE(node[0], node[1]);
  }
  // The contiguous layout (experts 0–3 on node 0) cuts the 8 equal-parity pairs (i, j) with i < 4 ≤ j,
  // weights 10 + i + j: (0,4) 14, (0,6) 16, (2,4) 16, (2,6) 18, (1,5) 16, (1,7) 18, (3,5) 18, (3,7) 20.
  PlacementInput flat = input_for({1, 8, 8, 1, 2, 4}, {{1, 1, 1, 1, 1, 1, 1, 1}});
  EXPECT_EQ(models::coactivation_cut(models::place("contiguous", flat), 0, c), 136.0);
}

TEST(CoactivationPlacement, FindsTheMinimumBisection) {
  // Cross-parity weight 1: a split with k evens and 4 − k odds on node 0 cuts 2k(4 − k) equal-parity pairs
  // of weight ≥ 10 (≥ 60 for k = 1..3), so the parity split, cutting the 16 cross pairs, is the unique
  // minimum: 16.
  const Matrix c = parity_clusters(8, 1);
  PlacementInput in = input_for({2, 8, 8, 1, 2, 4}, {{1, 2, 3, 4, 5, 6, 7, 8}, {8, 7, 6, 5, 4, 3, 2, 1}});
  in.coactivation = {c, c};
  const ExpertPlacement p = models::place("coactivation", in);
  for (int l = 0; l < 2; ++l) EXPECT_DOUBLE_EQ(models::coactivation_cut(p, l, c), 16.0);
  // Within a node, experts go heaviest first to the lighter of its 2 GPUs of 2 slots. Layer 0: evens
  // 6,4,2,0 with loads 7,5,3,1 → {6,0} = 8, {4,2} = 8; odds 7,5,3,1 with loads 8,6,4,2 → {7,1} = 10,
  // {5,3} = 10.
  EXPECT_DOUBLE_EQ(models::gpu_loads(p, in.weight)[0].max, 10.0);
}

TEST(CoactivationPlacement, SwapsEscapeAGreedyTrap) {
  // Triangles {0,2,4} and {1,3,5} (edges 5) joined by 1–2 (6). Growing from the heaviest expert (1, degree
  // 16) takes 2 (link 6) and then 0, giving {0,1,2} | {3,4,5}, which is also the contiguous split: cut 20.
  // Any split but the two triangles cuts both triangles (≥ 20), so the minimum is 6 and only the swaps
  // reach it.
  Matrix c(6, std::vector<double>(6, 0.0));
  auto link = [&](int i, int j, double v) { c[i][j] = c[j][i] = v; };
  for (auto [i, j] : {std::pair{0, 2}, {0, 4}, {2, 4}, {1, 3}, {1, 5}, {3, 5}}) link(i, j, 5);
  link(1, 2, 6);
  PlacementInput in = input_for({1, 6, 6, 1, 2, 2}, {{1, 1, 1, 1, 1, 1}});
  in.coactivation = {c};
  EXPECT_EQ(models::coactivation_cut(models::place("contiguous", in), 0, c), 20.0);
  const ExpertPlacement p = models::place("coactivation", in);
  EXPECT_EQ(models::coactivation_cut(p, 0, c), 6.0);
  const std::vector<int> node = node_of_expert(p, 0);
  EXPECT_TRUE(node[0] == node[2] && node[2] == node[4] && node[1] == node[3] && node[3] == node[5]);
}

// ------------------------------------------------------------------------------------ rebalancing

ExpertPlacement by_hand(const std::vector<std::vector<int>>& phy2log, int logical, int gpus) {
  ExpertPlacement p;
  p.layers = static_cast<int>(phy2log.size());
  p.num_physical = static_cast<int>(phy2log[0].size());
  p.num_logical = logical;
  p.num_gpus = gpus;
  p.phy2log = phy2log;
  for (const auto& row : phy2log) p.logcnt.push_back(count_replicas(row, logical));
  return p;
}

TEST(Rebalance, BytesOfNewlyHostedExperts) {
  // Layer 0: GPU0 {0,1} → {0,2,3} receives 2 and 3; GPU1 {2,3} → {1,2,3} receives 1.
  // Layer 1: same sets in another order, and a second copy of an expert GPU1 already holds: nothing.
  const ExpertPlacement from = by_hand({{0, 1, 2, 3}, {1, 0, 3, 2}}, 4, 2);
  const ExpertPlacement to = by_hand({{0, 2, 3, 1, 2, 3}, {0, 1, 1, 2, 3, 3}}, 4, 2);
  const double mib = 1024.0 * 1024.0;
  EXPECT_EQ(models::rebalance_bytes(from, to, 3 * mib), (std::vector<double>{6 * mib, 3 * mib}));
  EXPECT_EQ(models::rebalance_bytes(to, to, 3 * mib), (std::vector<double>{0, 0}));
  // Back again: GPU0 {0,2,3} → {0,1} receives 1; GPU1 {1,2,3} → {2,3} receives nothing.
  EXPECT_EQ(models::rebalance_bytes(to, from, 3 * mib), (std::vector<double>{3 * mib, 0}));
}

// ------------------------------------------------------------------------------------------ errors

void expect_config_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no ConfigError";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("expected"), std::string::npos) << m;
    for (const std::string& p : parts) EXPECT_NE(m.find(p), std::string::npos) << m << " lacks " << p;
  }
}

TEST(ReplicatedPlacement, InvalidArgumentsThrowConfigError) {
  const PlacementInput ok = input_for({2, 12, 16, 4, 2, 8}, kReadme);
  auto with = [&](const std::function<void(PlacementInput&)>& change, const std::string& policy = "eplb") {
    PlacementInput in = ok;
    change(in);
    return [in, policy] { models::place(policy, in); };
  };
  expect_config_error([&] { models::place("lpt", ok); },
                      {"contiguous, round_robin, eplb, greedy, coactivation", "found \"lpt\""});
  expect_config_error(with([](PlacementInput& in) { in.num_replicas = 20; }),
                      {"/num_replicas", "multiple of num_gpus (8)", "found 20"});
  expect_config_error(with([](PlacementInput& in) {
                        in.num_gpus = 6;
                        in.num_replicas = 18;
                        in.num_nodes = 4;
                      }),
                      {"/num_gpus", "multiple of num_nodes (4)", "found 6"});
  expect_config_error(with([](PlacementInput& in) { in.num_replicas = 8; }),
                      {"/num_replicas", "at least the number of logical experts (12)", "found 8"});
  expect_config_error(with([](PlacementInput& in) { in.num_groups = 5; }),
                      {"/num_groups", "divisor of the number of logical experts (12)", "found 5"});
  expect_config_error(with([](PlacementInput& in) { in.weight[1].pop_back(); }),
                      {"/weight/1", "12 loads", "found 11"});
  expect_config_error(with([](PlacementInput& in) { in.weight[1][3] = -2; }),
                      {"/weight/1/3", "non-negative", "found -2"});
  expect_config_error(with([](PlacementInput& in) { in.weight[0][0] = std::nan(""); }), {"/weight/0/0"});
  expect_config_error(with([](PlacementInput& in) { in.weight.clear(); }), {"/weight"});
  expect_config_error(with([](PlacementInput& in) { in.num_gpus = 0; }), {"/num_gpus", "positive"});
  expect_config_error(with([](PlacementInput&) {}, "contiguous"),
                      {"contiguous", "/num_replicas", "found 16"});
  expect_config_error(with([](PlacementInput&) {}, "coactivation"), {"/coactivation", "found 0"});
  expect_config_error(
      with([](PlacementInput& in) { in.coactivation = {Matrix(12, std::vector<double>(11, 0))}; },
           "coactivation"),
      {"/coactivation/0/0", "12 entries", "found 11"});
  const ExpertPlacement p = models::place("eplb", ok);
  expect_config_error([&] { models::gpu_loads(p, {kReadme[0]}); }, {"2 layers", "found 1"});
  expect_config_error([&] { models::rebalance_bytes(p, p, -1); }, {"/expert_bytes"});
  PlacementInput four = ok;
  four.num_gpus = 4;
  expect_config_error([&] { models::rebalance_bytes(p, models::place("eplb", four), 1); },
                      {"/num_gpus", "(8)", "found 4"});
}

TEST(ReplicatedPlacement, RegistryListsEveryPolicyWithADescription) {
  std::vector<std::string> names;
  for (const auto& info : models::placement_policies()) {
    names.push_back(info.name);
    EXPECT_FALSE(info.description.empty()) << info.name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"contiguous", "round_robin", "eplb", "greedy", "coactivation"}));
}

}  // namespace
}  // namespace moesim
