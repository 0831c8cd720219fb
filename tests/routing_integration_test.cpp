// Routing integration: from routing samples, expected shares, scenarios and recorded traces to the
// per-layer statistics and step times the engines report. Every expected value is derived by hand in a
// comment next to its assertion (token by token for the tiny samples), or computed in the test from the
// raw inputs (the OLMoE trace counts, the loads written into a trace) with the formula stated.
//
//   1. route_sample on hand-built samples: rows per slot, per-GPU imbalance, flat and hierarchical
//      dispatch copies, node × node traffic, round-robin replicas, counts-only samples.
//   2. route_expected: uniform shares against dispatch_stats; capacity padding and dropping.
//   3. The OLMoE arXiv replay example: per-layer expert and GPU imbalance from the trace's counts;
//      EPLB and greedy placements with 16 redundant slots.
//   4. Sampled routing: determinism, seeds, node-limited routing.
//   5. check_routing errors.
//   6. replay(): rebalancing cost, mean step time, non-trace scenarios; trace layers on models with
//      dense blocks; Megatron trace layers (numbered from 1) on MoE layers 0..L-1.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "models/analytic.hpp"
#include "models/compute_cost.hpp"
#include "models/dispatch.hpp"
#include "models/network.hpp"
#include "models/params.hpp"
#include "models/placement.hpp"
#include "models/placement/metrics.hpp"
#include "models/replay.hpp"
#include "models/routing_model.hpp"
#include "models/routing_source.hpp"
#include "models/workload.hpp"
#include "scenarios/catalog.hpp"
#include "scenarios/error.hpp"
#include "scenarios/json_reader.hpp"
#include "scenarios/loader.hpp"
#include "scenarios/scenario.hpp"
#include "traces/policies.hpp"
#include "traces/routing_sample.hpp"
#include "traces/trace_format.hpp"

namespace moesim {
namespace {

namespace fs = std::filesystem;
using models::EpGeometry;
using models::LayerRouting;
using models::RoutingContext;
using models::SlotMap;
using traces::RoutingSample;

const Catalog& catalog() {
  static const Catalog c({std::string(MOESIM_SOURCE_DIR) + "/scenarios/catalog"});
  return c;
}

// A temporary directory, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / ("moesim_routing_it_" + std::to_string(::getpid()) + "_" +
                                         info->test_suite_name() + "_" + info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

double rel_tol(double x) {
  return 1e-12 * std::max(1.0, std::abs(x));
}

// ============================================================================ 1. route_sample, tiny

// 4 EP ranks, 2 per node (node n = ranks 2n, 2n+1), top_k 2, 8 experts.
EpGeometry geo4(bool hierarchical) {
  EpGeometry g;
  g.ep = 4;
  g.per_node = 2;
  g.top_k = 2;
  g.hierarchical = hierarchical;
  return g;
}

// tokens_per_source T = 4 while the sample has 2 tokens per source: every token counts scale = 4/2 = 2.
// bytes_per_copy B = 1000.
constexpr double kT = 4, kB = 1000, kScale = 2;

RoutingContext ctx4(bool hierarchical) {
  RoutingContext c;
  c.geo = geo4(hierarchical);
  c.experts = 8;
  c.tokens_per_source = kT;
  c.capacity_factor = 0;
  c.bytes_per_copy = kB;
  return c;
}

// Contiguous: rank r holds experts 2r, 2r+1.
SlotMap contiguous4() {
  return SlotMap::from_assignment({0, 0, 1, 1, 2, 2, 3, 3}, 4);
}

// Eight tokens, two per source, sources interleaved (token_source is honoured, not equal runs):
//   t0 src0 {0,1}   t1 src1 {4,6}   t2 src2 {0,4}   t3 src3 {4,2}
//   t4 src0 {2,4}   t5 src1 {5,7}   t6 src2 {4,5}   t7 src3 {6,0}
// counts (source × expert):
//   src0: e0 1, e1 1, e2 1, e4 1      src1: e4 1, e5 1, e6 1, e7 1
//   src2: e0 1, e4 2, e5 1            src3: e0 1, e2 1, e4 1, e6 1
// expert totals: e0 3, e1 1, e2 2, e3 0, e4 5, e5 2, e6 2, e7 1 (16 = 8 tokens × 2).
RoutingSample tiny_sample() {
  RoutingSample s;
  s.sources = 4;
  s.experts = 8;
  s.top_k = 2;
  s.tokens = 8;
  s.token_experts = {0, 1, 4, 6, 0, 4, 4, 2, 2, 4, 5, 7, 4, 5, 6, 0};
  s.token_source = {0, 1, 2, 3, 0, 1, 2, 3};
  s.counts = {
      1, 1, 1, 0, 1, 0, 0, 0,  //
      0, 0, 0, 0, 1, 1, 1, 1,  //
      1, 0, 0, 0, 2, 1, 0, 0,  //
      1, 0, 1, 0, 1, 0, 1, 0,  //
  };
  return s;
}

TEST(RouteSampleTiny, RowsPerSlotAndImbalance) {
  const LayerRouting r = models::route_sample(tiny_sample(), contiguous4(), ctx4(false));
  // Rows per rank before scaling: r0 = e0 3 + e1 1 = 4; r1 = e2 2 + e3 0 = 2; r2 = e4 5 + e5 2 = 7;
  // r3 = e6 2 + e7 1 = 3. Scaled ×2: 8, 4, 14, 6; mean 8.
  EXPECT_EQ(r.stats.straggler, 2);
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_DOUBLE_EQ(r.rows[0], 10.0);  // e4: 5 × 2
  EXPECT_DOUBLE_EQ(r.rows[1], 4.0);   // e5: 2 × 2
  EXPECT_DOUBLE_EQ(r.summary.straggler_rows, 14.0);
  EXPECT_DOUBLE_EQ(r.summary.mean_rows, 8.0);
  // A mean-load rank: the straggler's slots scaled by 8/14.
  ASSERT_EQ(r.mean_rank_rows.size(), 2u);
  EXPECT_NEAR(r.mean_rank_rows[0], 10.0 * 8 / 14, 1e-12);
  EXPECT_NEAR(r.mean_rank_rows[1], 4.0 * 8 / 14, 1e-12);
  // max/mean = 14/8; cv = sqrt(((8-8)² + (4-8)² + (14-8)² + (6-8)²)/4) / 8 = sqrt(14)/8.
  EXPECT_NEAR(r.summary.max_over_mean_gpu, 1.75, 1e-12);
  EXPECT_NEAR(r.stats.max_over_mean, 1.75, 1e-12);
  EXPECT_NEAR(r.summary.cv_gpu, std::sqrt(14.0) / 8, 1e-12);
  // Experts: counts 3,1,2,0,5,2,2,1, mean 2: max/mean 2.5; variance (1+1+0+4+9+0+0+1)/8 = 2, cv = √2/2.
  EXPECT_NEAR(r.summary.max_over_mean_expert, 2.5, 1e-12);
  EXPECT_NEAR(r.summary.cv_expert, std::sqrt(2.0) / 2, 1e-12);
  EXPECT_EQ(r.summary.dropped_fraction, 0.0);
}

TEST(RouteSampleTiny, FlatDispatchCopiesAndNodeTraffic) {
  const LayerRouting r = models::route_sample(tiny_sample(), contiguous4(), ctx4(false));
  // Flat: one copy per distinct destination rank other than the source; NIC if on the other node.
  //   t0 s0: {r0} self.                    t1 s1: r2, r3 remote.
  //   t2 s2: r0 remote, r2 self.           t3 s3: r2 NVLink, r1 remote.
  //   t4 s0: r1 NVLink, r2 remote.         t5 s1: r2, r3 remote.
  //   t6 s2: {r2} self.                    t7 s3: r3 self, r0 remote.
  // NIC out per source: s0 1, s1 4, s2 1, s3 2 → 4.  NIC in: r0 2 (t2,t7), r1 1, r2 3 (t1,t4,t5), r3 2 → 3.
  // NVLink out: s0 1 (t4), s3 1 (t3) → 1.  NVLink in: r1 1, r2 1 → 1.
  // Copies per source token = count × scale 2 / T 4.
  EXPECT_NEAR(r.stats.nic_out, 4 * kScale / kT, 1e-12);     // 2.0
  EXPECT_NEAR(r.stats.nic_in, 3 * kScale / kT, 1e-12);      // 1.5
  EXPECT_NEAR(r.stats.nvlink_out, 1 * kScale / kT, 1e-12);  // 0.5
  EXPECT_NEAR(r.stats.nvlink_in, 1 * kScale / kT, 1e-12);   // 0.5
  // Busiest NIC bytes: max(2.0, 1.5) copies per token × T × B = 8000.
  EXPECT_NEAR(r.summary.nic_bytes, 2.0 * kT * kB, 1e-9);
  // Node traffic in copies: (0→0) t4 = 1; (0→1) t1 2 + t4 1 + t5 2 = 5; (1→0) t2, t3, t7 = 3;
  // (1→1) t3 = 1. Bytes = copies × scale 2 × B.
  EXPECT_EQ(r.summary.nodes, 2);
  const std::vector<double> want{1 * kScale * kB, 5 * kScale * kB, 3 * kScale * kB, 1 * kScale * kB};
  ASSERT_EQ(r.summary.node_traffic.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(r.summary.node_traffic[i], want[i], 1e-9) << "entry " << i;
}

TEST(RouteSampleTiny, HierarchicalDispatchCopies) {
  const LayerRouting r = models::route_sample(tiny_sample(), contiguous4(), ctx4(true));
  // Hierarchical: one NIC copy per remote destination node, landing on the GPU with the source's local
  // index (landing = 2n + s mod 2), then NVLink from the landing GPU to every other GPU hit there.
  //   t0 s0: node0 only self.
  //   t1 s1: node1, landing r3: NIC s1→r3; NVLink r3→r2.
  //   t2 s2: node0, landing r0: NIC s2→r0 (r0 is the landing). node1: self.
  //   t3 s3: node1 (landing r3 = self): NVLink r3→r2. node0, landing r1: NIC s3→r1.
  //   t4 s0: node0 (landing r0 = self): NVLink r0→r1. node1, landing r2: NIC s0→r2.
  //   t5 s1: node1, landing r3: NIC s1→r3; NVLink r3→r2.
  //   t6 s2: node1 only self.
  //   t7 s3: node1 self. node0, landing r1: NIC s3→r1; NVLink r1→r0.
  // NIC out: s0 1, s1 2, s2 1, s3 2 → 2. NIC in: r0 1, r1 2, r2 1, r3 2 → 2.
  // NVLink out: r0 1, r1 1, r3 3 → 3. NVLink in: r0 1, r1 1, r2 3 → 3.
  EXPECT_NEAR(r.stats.nic_out, 2 * kScale / kT, 1e-12);     // 1.0
  EXPECT_NEAR(r.stats.nic_in, 2 * kScale / kT, 1e-12);      // 1.0
  EXPECT_NEAR(r.stats.nvlink_out, 3 * kScale / kT, 1e-12);  // 1.5
  EXPECT_NEAR(r.stats.nvlink_in, 3 * kScale / kT, 1e-12);   // 1.5
  EXPECT_NEAR(r.summary.nic_bytes, 1.0 * kT * kB, 1e-9);
  // Off-diagonal traffic = NIC copies between the nodes: (0→1) t1, t4, t5 = 3; (1→0) t2, t3, t7 = 3.
  ASSERT_EQ(r.summary.node_traffic.size(), 4u);
  EXPECT_NEAR(r.summary.node_traffic[1], 3 * kScale * kB, 1e-9);
  EXPECT_NEAR(r.summary.node_traffic[2], 3 * kScale * kB, 1e-9);
  // Rows do not depend on the dispatch mode.
  EXPECT_DOUBLE_EQ(r.summary.straggler_rows, 14.0);
}

TEST(RouteSampleTiny, HierarchicalTrafficDiagonalIsTrafficThatStaysOnNvlink) {
  const LayerRouting r = models::route_sample(tiny_sample(), contiguous4(), ctx4(true));
  // MoeLayerStats::node_traffic: "the diagonal is traffic that stays on NVLink". Inside the source's
  // own node the landing GPU is the source itself (2n + s mod 2 = s), so what stays on NVLink is one
  // copy per other GPU of that node the token hits: (0→0) t4 → r1 = 1; (1→1) t3 → r2 = 1. Tokens that
  // only hit their own GPU (t0, t6) and the own-node "landing" of t2 and t7 (self) move nothing.
  const double want00 = 1 * kScale * kB, want11 = 1 * kScale * kB;
  EXPECT_NEAR(r.summary.node_traffic[0], want00, 1e-9);
  EXPECT_NEAR(r.summary.node_traffic[3], want11, 1e-9);
}

// Replicated slots, 3 per rank (12 physical slots over 8 experts):
//   rank0 [e0, e1, e4]   rank1 [e2, e3, e0]   rank2 [e4, e5, e6]   rank3 [e6, e7, e4]
// Replicas in rank order: e0 → {r0, r1}; e4 → {r0, r2, r3}; e6 → {r2, r3}.
SlotMap replicated4() {
  return SlotMap::from_phy2log({0, 1, 4, 2, 3, 0, 4, 5, 6, 6, 7, 4}, 4, 8);
}

TEST(RouteSampleTiny, SlotMapFromPhy2logSharesAndReplicas) {
  const SlotMap m = replicated4();
  EXPECT_EQ(m.ranks, 4);
  EXPECT_EQ(m.experts, 8);
  ASSERT_EQ(m.slots.size(), 4u);
  // Slot p on rank p / 3; a logical expert with r replicas gets share 1/r per slot.
  ASSERT_EQ(m.slots[1].size(), 3u);
  EXPECT_EQ(m.slots[1][2].first, 0);
  EXPECT_DOUBLE_EQ(m.slots[1][2].second, 0.5);      // e0: 2 replicas
  EXPECT_DOUBLE_EQ(m.slots[0][2].second, 1.0 / 3);  // e4: 3 replicas
  EXPECT_DOUBLE_EQ(m.slots[0][1].second, 1.0);      // e1: 1
  const auto reps = m.replica_ranks();
  EXPECT_EQ(reps[0], (std::vector<int>{0, 1}));
  EXPECT_EQ(reps[4], (std::vector<int>{0, 2, 3}));
  EXPECT_EQ(reps[6], (std::vector<int>{2, 3}));
  EXPECT_EQ(reps[7], (std::vector<int>{3}));
}

TEST(RouteSampleTiny, ReplicatedExpertRoundRobin) {
  const LayerRouting r = models::route_sample(tiny_sample(), replicated4(), ctx4(false));
  // routing_model.hpp: a replicated expert's tokens go to replicas round-robin; token t picks replica
  // t mod (replicas):
  //   t0 {e0 → 0%2=0 r0, e1 r0}   t1 {e4 → 1%3=1 r2, e6 → 1%2=1 r3}   t2 {e0 → 0 r0, e4 → 2 r3}
  //   t3 {e4 → 0 r0, e2 r1}       t4 {e2 r1, e4 → 1 r2}               t5 {e5 r2, e7 r3}
  //   t6 {e4 → 0 r0, e5 r2}       t7 {e6 → 1 r3, e0 → 1 r1}
  // Slot rows before scaling: r0 [e0 2, e1 1, e4 2] = 5; r1 [e2 2, e3 0, e0 1] = 3;
  //                           r2 [e4 2, e5 2, e6 0] = 4; r3 [e6 2, e7 1, e4 1] = 4.
  // (Always the first replica would put e0's 3 and e4's 5 on r0: 9 rows.)
  EXPECT_EQ(r.stats.straggler, 0);
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_DOUBLE_EQ(r.rows[0], 2 * kScale);
  EXPECT_DOUBLE_EQ(r.rows[1], 1 * kScale);
  EXPECT_DOUBLE_EQ(r.rows[2], 2 * kScale);
  EXPECT_DOUBLE_EQ(r.summary.straggler_rows, 5 * kScale);
  EXPECT_DOUBLE_EQ(r.summary.mean_rows, 4 * kScale);
  // max/mean 5/4; cv = sqrt((1 + 1 + 0 + 0)/4)/4 = sqrt(0.5)/4.
  EXPECT_NEAR(r.summary.max_over_mean_gpu, 1.25, 1e-12);
  EXPECT_NEAR(r.summary.cv_gpu, std::sqrt(0.5) / 4, 1e-12);
  // The expert statistics are about logical experts: unchanged by replication (2.5, √2/2).
  EXPECT_NEAR(r.summary.max_over_mean_expert, 2.5, 1e-12);
  // Flat copies: t0 self; t1 s1→r2,r3 NIC; t2 s2→r0 NIC, →r3 NVLink; t3 s3→r0,r1 NIC;
  // t4 s0→r1 NVLink, →r2 NIC; t5 s1→r2,r3 NIC; t6 s2→r0 NIC (r2 self); t7 s3→r1 NIC (r3 self).
  // NIC out: s0 1, s1 4, s2 2, s3 3 → 4. NIC in: r0 3, r1 2, r2 3, r3 2 → 3. NVLink out/in max 1.
  EXPECT_NEAR(r.stats.nic_out, 4 * kScale / kT, 1e-12);
  EXPECT_NEAR(r.stats.nic_in, 3 * kScale / kT, 1e-12);
  EXPECT_NEAR(r.stats.nvlink_out, 1 * kScale / kT, 1e-12);
  EXPECT_NEAR(r.stats.nvlink_in, 1 * kScale / kT, 1e-12);
  // Traffic copies: (0→0) t4 1; (0→1) t1 2 + t4 1 + t5 2 = 5; (1→0) t2 1 + t3 2 + t6 1 + t7 1 = 5;
  // (1→1) t2 1.
  const std::vector<double> want{1 * kScale * kB, 5 * kScale * kB, 5 * kScale * kB, 1 * kScale * kB};
  ASSERT_EQ(r.summary.node_traffic.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(r.summary.node_traffic[i], want[i], 1e-9) << "entry " << i;
}

TEST(RouteSampleTiny, FlatSendsEverySlotHierarchicalOneCopyPerGpu) {
  // Megatron-Core's alltoall dispatcher exchanges tokens × top_k permuted rows: a token whose two experts
  // sit on one remote GPU crosses twice; DeepEP/HybridEP send it once. 2 ranks on 2 nodes, experts
  // {0, 1} on rank 0 and {2, 3} on rank 1, top_k 2, one token per source: s0 picks e2 and e3 (both on
  // rank 1), s1 picks e1 and e3 (rank 0 and itself).
  EpGeometry g;
  g.ep = 2;
  g.per_node = 1;
  g.top_k = 2;
  RoutingContext c;
  c.geo = g;
  c.experts = 4;
  c.tokens_per_source = 1;
  c.bytes_per_copy = 1;
  RoutingSample x;
  x.sources = 2;
  x.experts = 4;
  x.top_k = 2;
  x.tokens = 2;
  x.token_experts = {2, 3, 1, 3};
  x.token_source = {0, 1};
  x.counts = {0, 0, 1, 1, 0, 1, 0, 1};
  const SlotMap slots = SlotMap::from_phy2log({0, 1, 2, 3}, 2, 4);
  const LayerRouting flat = models::route_sample(x, slots, c);
  // Flat: s0 sends 2 copies to rank 1, s1 sends 1 to rank 0: NIC out max 2, in max 2 (rank 1).
  EXPECT_NEAR(flat.stats.nic_out, 2.0, 1e-12);
  EXPECT_NEAR(flat.stats.nic_in, 2.0, 1e-12);
  c.geo.hierarchical = true;
  const LayerRouting hier = models::route_sample(x, slots, c);
  // Hierarchical: one copy per destination node: 1 each way.
  EXPECT_NEAR(hier.stats.nic_out, 1.0, 1e-12);
  EXPECT_NEAR(hier.stats.nic_in, 1.0, 1e-12);
}

TEST(RouteSampleTiny, TwoReplicasOnOneRankEachKeepTheirRows) {
  // EPLB may put two replicas of a hot expert on the same GPU (the replay example's placements do).
  // 2 ranks on one node, slots rank0 [e0, e0], rank1 [e1, e1]; top_k 1; T = 2 with 2 tokens per source
  // (scale 1): t0 s0 e0, t1 s1 e0, t2 s0 e0, t3 s1 e1. e0's replicas in slot order are (rank0 slot 0,
  // rank0 slot 1); round-robin t mod 2: t0 → slot 0, t1 → slot 1, t2 → slot 0. Each slot is its own
  // group of the grouped GEMM (route_expected also prices both slots, share 1/2 each), so rank 0's slot
  // rows are {2, 1}; e1's t3 goes to rank 1 slot 1 ({0, 1}).
  EpGeometry g;
  g.ep = 2;
  g.per_node = 2;
  g.top_k = 1;
  RoutingContext c;
  c.geo = g;
  c.experts = 2;
  c.tokens_per_source = 2;
  c.bytes_per_copy = 1;
  RoutingSample x;
  x.sources = 2;
  x.experts = 2;
  x.top_k = 1;
  x.tokens = 4;
  x.token_experts = {0, 0, 0, 1};
  x.token_source = {0, 1, 0, 1};
  x.counts = {2, 0, 1, 1};
  const LayerRouting r = models::route_sample(x, SlotMap::from_phy2log({0, 0, 1, 1}, 2, 2), c);
  EXPECT_EQ(r.stats.straggler, 0);
  EXPECT_DOUBLE_EQ(r.summary.straggler_rows, 3.0);
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_DOUBLE_EQ(r.rows[0], 2.0);
  EXPECT_DOUBLE_EQ(r.rows[1], 1.0);
}

// Counts only (no token detail), 4 sources with different row totals:
//   src0 [4,0,0,0,4,0,0,0] (8)   src1 [0,0,2,2,0,0,0,0] (4)
//   src2 [1,1,1,1,1,1,1,1] (8)   src3 [0,0,0,0,0,0,6,2] (8)
RoutingSample counts_sample() {
  RoutingSample s;
  s.sources = 4;
  s.experts = 8;
  s.top_k = 2;
  s.tokens = 14;
  s.dropped = 4;
  s.counts = {4, 0, 0, 0, 4, 0, 0, 0,  //
              0, 0, 2, 2, 0, 0, 0, 0,  //
              1, 1, 1, 1, 1, 1, 1, 1,  //
              0, 0, 0, 0, 0, 0, 6, 2};
  return s;
}

TEST(RouteSampleTiny, CountsOnlyRowsAndCopies) {
  RoutingContext c = ctx4(false);
  c.tokens_per_source = 10;
  c.bytes_per_copy = 1;
  const LayerRouting r = models::route_sample(counts_sample(), contiguous4(), c);
  // Each source sends T·top_k = 20 slots spread as its own row's shares; rows per expert = 20·Σ_s c(s,e)/R_s:
  //   e0 20(.5 + .125) = 12.5, e1 2.5, e2 20(.5 + .125) = 12.5, e3 12.5, e4 12.5, e5 2.5,
  //   e6 20(.125 + .75) = 17.5, e7 20(.125 + .25) = 7.5.
  // Per rank: r0 15, r1 25, r2 15, r3 25 → straggler r1 (first of the two), mean 20.
  EXPECT_EQ(r.stats.straggler, 1);
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_NEAR(r.rows[0], 12.5, 1e-12);
  EXPECT_NEAR(r.rows[1], 12.5, 1e-12);
  EXPECT_NEAR(r.summary.straggler_rows, 25, 1e-12);
  EXPECT_NEAR(r.summary.mean_rows, 20, 1e-12);
  EXPECT_NEAR(r.summary.max_over_mean_gpu, 1.25, 1e-12);
  EXPECT_NEAR(r.summary.cv_gpu, 0.25, 1e-12);  // sqrt(4·25/4)/20
  // Expert counts 5,1,3,3,5,1,7,3 (28), mean 3.5: max/mean 2. Dropped 4 of 28 + 4 slots = 0.125.
  EXPECT_NEAR(r.summary.max_over_mean_expert, 2.0, 1e-12);
  EXPECT_NEAR(r.summary.dropped_fraction, 0.125, 1e-12);
  // Flat copies, one per slot: top_k · c of each source's rank shares c per token:
  //   src0 (r0, node0): c = (.5, 0, .5, 0) → r2 (remote) 2·.5 = 1 copy: NIC out 10 of T = 10.
  //   src1 (r1): c = (0, 1, 0, 0) → only itself.
  //   src2 (r2, node1): c = .25 each → .5 copies per rank: remote r0, r1: NIC out 10; NVLink r3: 5.
  //   src3 (r3): c = (0, 0, 0, 1) → only itself.
  // NIC out max 10/10; NIC in: r0 5, r1 5, r2 10 → 1; NVLink out/in 5/10.
  EXPECT_NEAR(r.stats.nic_out, 1.0, 1e-12);
  EXPECT_NEAR(r.stats.nic_in, 1.0, 1e-12);
  EXPECT_NEAR(r.stats.nvlink_out, 0.5, 1e-12);
  EXPECT_NEAR(r.stats.nvlink_in, 0.5, 1e-12);
  // Traffic (B = 1): (0→0) 0; (0→1) 10; (1→0) 10; (1→1) 5.
  const std::vector<double> want{0, 10, 10, 5};
  ASSERT_EQ(r.summary.node_traffic.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(r.summary.node_traffic[i], want[i], 1e-12) << "entry " << i;
}

// ========================================================================== 2. route_expected

void expect_same_stats(const models::DispatchStats& a, const models::DispatchStats& b) {
  EXPECT_EQ(a.straggler, b.straggler);
  EXPECT_NEAR(a.max_over_mean, b.max_over_mean, 1e-12);
  ASSERT_EQ(a.rank_share.size(), b.rank_share.size());
  for (std::size_t i = 0; i < a.rank_share.size(); ++i) EXPECT_NEAR(a.rank_share[i], b.rank_share[i], 1e-15);
  ASSERT_EQ(a.hit_rank.size(), b.hit_rank.size());
  for (std::size_t i = 0; i < a.hit_rank.size(); ++i) EXPECT_NEAR(a.hit_rank[i], b.hit_rank[i], 1e-15);
  ASSERT_EQ(a.hit_node.size(), b.hit_node.size());
  for (std::size_t i = 0; i < a.hit_node.size(); ++i) EXPECT_NEAR(a.hit_node[i], b.hit_node[i], 1e-15);
  ASSERT_EQ(a.copies_rank.size(), b.copies_rank.size());
  for (std::size_t i = 0; i < a.copies_rank.size(); ++i)
    EXPECT_NEAR(a.copies_rank[i], b.copies_rank[i], 1e-15);
  EXPECT_NEAR(a.nic_out, b.nic_out, 1e-15);
  EXPECT_NEAR(a.nic_in, b.nic_in, 1e-15);
  EXPECT_NEAR(a.nvlink_out, b.nvlink_out, 1e-15);
  EXPECT_NEAR(a.nvlink_in, b.nvlink_in, 1e-15);
}

TEST(RouteExpected, UniformSharesReproduceDispatchStats) {
  const std::vector<double> uniform(8, 1.0 / 8);
  for (bool hier : {false, true}) {
    for (int node_limit : {0, 1}) {
      SCOPED_TRACE(std::string(hier ? "hierarchical" : "flat") + " node_limit " + std::to_string(node_limit));
      RoutingContext c = ctx4(hier);
      c.geo.node_limit = node_limit;
      c.tokens_per_source = 100;
      const LayerRouting r = models::route_expected(uniform, contiguous4(), c);
      // Rank shares 2/8 each, straight into dispatch_stats.
      expect_same_stats(r.stats, models::dispatch_stats(std::vector<double>(4, 0.25), c.geo));
      // Rows per slot = ep·T·top_k/experts = 4·100·2/8 = 100.
      ASSERT_EQ(r.rows.size(), 2u);
      for (double x : r.rows) EXPECT_NEAR(x, 100.0, 1e-12);
      EXPECT_NEAR(r.summary.straggler_rows, 200.0, 1e-12);
      EXPECT_NEAR(r.summary.mean_rows, 200.0, 1e-12);
      EXPECT_NEAR(r.summary.max_over_mean_gpu, 1.0, 1e-12);
      EXPECT_NEAR(r.summary.cv_gpu, 0.0, 1e-12);
      EXPECT_NEAR(r.summary.max_over_mean_expert, 1.0, 1e-12);
      EXPECT_EQ(r.summary.dropped_fraction, 0.0);
      EXPECT_EQ(r.summary.padded_rows, 0.0);
      EXPECT_NEAR(r.summary.nic_bytes, std::max(r.stats.nic_out, r.stats.nic_in) * 100 * kB, 1e-6);
      if (node_limit == 0 && !hier) {
        // By hand, one copy per slot: 2 · 1/4 = 1/2 copy per rank; NIC out = 2 slots · (4−2)/4 = 1,
        // NIC in = 1/2 · 2 = 1, NVLink out = 2 · 1/4 = 1/2, in = 1/2 · 1.
        EXPECT_NEAR(r.stats.nic_out, 1.0, 1e-12);
        EXPECT_NEAR(r.stats.nic_in, 1.0, 1e-12);
        EXPECT_NEAR(r.stats.nvlink_out, 0.5, 1e-12);
        EXPECT_NEAR(r.stats.nvlink_in, 0.5, 1e-12);
        // Off-diagonal traffic: 2 senders × T × (copies to the 2 remote ranks 2·1/2) × B = 200000.
        EXPECT_NEAR(r.summary.node_traffic[1], 2 * 100 * 1.0 * kB, 1e-6);
        EXPECT_NEAR(r.summary.node_traffic[2], 2 * 100 * 1.0 * kB, 1e-6);
      }
      if (node_limit == 0 && hier) {
        // Hit per node 1 − (1/2)² = 3/4: NIC out = (3/4 + 3/4)·1/2 = 3/4 = NIC in (3/4·1).
        EXPECT_NEAR(r.stats.nic_out, 0.75, 1e-12);
        EXPECT_NEAR(r.stats.nic_in, 0.75, 1e-12);
        // Off-diagonal traffic: 2 senders × T × 3/4 × B = 150000.
        EXPECT_NEAR(r.summary.node_traffic[1], 2 * 100 * 0.75 * kB, 1e-6);
        EXPECT_NEAR(r.summary.node_traffic[2], 2 * 100 * 0.75 * kB, 1e-6);
      }
    }
  }
}

// route_expected keeps its last results per thread (the planner prices thousands of layouts that share
// an EP group): each input must still get its own result when calls alternate between inputs that differ
// in one field or one share.
TEST(RouteExpected, AlternatingInputsGetTheirOwnResults) {
  const std::vector<double> uniform(8, 1.0 / 8);
  std::vector<double> skew = uniform;
  skew[0] += 0.125;  // expert 0 (rank 0) twice as popular, expert 7 (rank 3) never chosen
  skew[7] -= 0.125;
  RoutingContext a = ctx4(false);
  a.tokens_per_source = 100;
  RoutingContext b = a;
  b.tokens_per_source = 50;
  for (int round = 0; round < 3; ++round) {
    // Rows of the busiest rank: ep·T·top_k/ranks = 4·T·2/4 = 2T under uniform shares.
    EXPECT_NEAR(models::route_expected(uniform, contiguous4(), a).summary.straggler_rows, 200.0, 1e-12);
    EXPECT_NEAR(models::route_expected(uniform, contiguous4(), b).summary.straggler_rows, 100.0, 1e-12);
    // Skewed: rank 0 holds 3/8 of the slots, mean 1/4: max/mean 1.5.
    EXPECT_NEAR(models::route_expected(skew, contiguous4(), a).summary.max_over_mean_gpu, 1.5, 1e-12);
    EXPECT_NEAR(models::route_expected(uniform, contiguous4(), a).summary.max_over_mean_gpu, 1.0, 1e-12);
  }
}

TEST(RouteExpected, FlatTrafficDiagonalExcludesCopiesToSelf) {
  RoutingContext c = ctx4(false);
  c.tokens_per_source = 100;
  const LayerRouting r = models::route_expected(std::vector<double>(8, 1.0 / 8), contiguous4(), c);
  // "the diagonal is traffic that stays on NVLink": per sender the NVLink copies are nvlink_out = 1/2
  // (the one other GPU of its node holds 2 of 8 experts: top_k 2 · 1/4 slots), so (0→0) = 2 senders × 100 ×
  // 1/2 × 1000 = 100000. route_sample (flat) skips r == s the same way
  // (RouteSampleTiny.FlatDispatchCopiesAndNodeTraffic).
  const double want = 2 * 100 * 0.5 * kB;
  EXPECT_NEAR(r.summary.node_traffic[0], want, 1e-6);
  EXPECT_NEAR(r.summary.node_traffic[3], want, 1e-6);
}

// One hot expert: e0 has 0.3 of the slots, e1..e7 0.1 each. ep 4, T = 100, top_k 2: 800 slots in the group.
const std::vector<double> kHot{0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1};

TEST(RouteExpected, HotExpertWithoutCapacity) {
  RoutingContext c = ctx4(false);
  c.tokens_per_source = 100;
  const LayerRouting r = models::route_expected(kHot, contiguous4(), c);
  // Expert rows 800·share: e0 240, others 80. Ranks: r0 320, r1..r3 160; mean 200.
  expect_same_stats(r.stats, models::dispatch_stats(std::vector<double>{0.4, 0.2, 0.2, 0.2}, c.geo));
  EXPECT_EQ(r.stats.straggler, 0);
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_NEAR(r.rows[0], 240, 1e-9);
  EXPECT_NEAR(r.rows[1], 80, 1e-9);
  EXPECT_NEAR(r.mean_rank_rows[0], 240 * 200.0 / 320, 1e-9);
  EXPECT_NEAR(r.mean_rank_rows[1], 80 * 200.0 / 320, 1e-9);
  EXPECT_NEAR(r.summary.straggler_rows, 320, 1e-9);
  EXPECT_NEAR(r.summary.mean_rows, 200, 1e-9);
  EXPECT_NEAR(r.summary.max_over_mean_gpu, 1.6, 1e-12);
  // cv: deviations 120, −40 ×3 → sqrt((14400 + 3·1600)/4)/200 = sqrt(4800)/200.
  EXPECT_NEAR(r.summary.cv_gpu, std::sqrt(4800.0) / 200, 1e-12);
  // Experts: 240 vs mean 100 → 2.4; cv sqrt((140² + 7·20²)/8)/100 = sqrt(2800)/100.
  EXPECT_NEAR(r.summary.max_over_mean_expert, 2.4, 1e-12);
  EXPECT_NEAR(r.summary.cv_expert, std::sqrt(2800.0) / 100, 1e-12);
  EXPECT_EQ(r.summary.dropped_fraction, 0.0);
}

TEST(RouteExpected, CapacityPadsAndDrops) {
  RoutingContext c = ctx4(false);
  c.tokens_per_source = 100;
  c.capacity_factor = 1.5;
  const LayerRouting r = models::route_expected(kHot, contiguous4(), c);
  // Capacity per expert = 1.5 · 800 / 8 = 150 rows; every slot computes 150 (padded buffers).
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_NEAR(r.rows[0], 150, 1e-9);
  EXPECT_NEAR(r.rows[1], 150, 1e-9);
  EXPECT_NEAR(r.summary.straggler_rows, 300, 1e-9);
  EXPECT_NEAR(r.summary.mean_rows, 300, 1e-9);
  EXPECT_NEAR(r.summary.max_over_mean_gpu, 1.0, 1e-12);  // padded: every GPU computes the same
  // All ranks tie at 300 rows: the straggler is the first, r0 (e0, e1). Kept there: min(150, 240) +
  // min(150, 80) = 230 → padding 300 − 230 = 70.
  EXPECT_EQ(r.stats.straggler, 0);
  EXPECT_NEAR(r.summary.padded_rows, 70, 1e-9);
  // Dropped: e0 240 − 150 = 90 of 800 slots = 0.1125.
  EXPECT_NEAR(r.summary.dropped_fraction, 0.1125, 1e-12);
  // The expert statistics describe the routed (uncapped) demand: 2.4.
  EXPECT_NEAR(r.summary.max_over_mean_expert, 2.4, 1e-12);
}

// ====================================================================== 3. OLMoE arXiv replay

std::string olmoe_example() {
  return std::string(MOESIM_SOURCE_DIR) + "/scenarios/examples/olmoe-arxiv-replay-16xH100.json";
}

// The trace's records (layer → per-expert counts), parsed here with nlohmann::json.
std::vector<std::pair<int, std::vector<double>>> olmoe_trace_counts() {
  std::ifstream in(std::string(MOESIM_SOURCE_DIR) + "/traces/data/olmoe-1b-7b-arxiv.jsonl");
  std::vector<std::pair<int, std::vector<double>>> out;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    if (j.contains("end")) break;  // the end record (docs/trace-format.md)
    std::vector<double> c(64, 0.0);
    for (const auto& row : j.at("counts"))
      for (int e = 0; e < 64; ++e) c[e] += row.at(e).get<double>();
    out.emplace_back(j.at("layer").get<int>(), c);
  }
  return out;
}

double max_over_mean(const std::vector<double>& v) {
  return *std::max_element(v.begin(), v.end()) / (std::accumulate(v.begin(), v.end(), 0.0) / v.size());
}

Scenario olmoe_scenario(const Json* placement) {
  Json j = read_json_file(olmoe_example());
  if (placement) j["placement"] = *placement;
  return scenario_from_json(j, olmoe_example(), catalog());
}

TEST(OlmoeReplay, ContiguousImbalanceFromTraceCounts) {
  const auto recorded = olmoe_trace_counts();
  ASSERT_EQ(recorded.size(), 3u);
  // Recorded layers 0, 7, 15; each layer's counts sum to 208896 tokens × 8 = 1671168.
  EXPECT_EQ(recorded[0].first, 0);
  EXPECT_EQ(recorded[1].first, 7);
  EXPECT_EQ(recorded[2].first, 15);
  for (const auto& [layer, c] : recorded) EXPECT_EQ(std::accumulate(c.begin(), c.end(), 0.0), 1671168.0);
  // docs/trace-format.md: layer 0 gives 204013 / (1671168 / 64) = 7.8129...
  EXPECT_NEAR(max_over_mean(recorded[0].second), 204013.0 / (1671168.0 / 64), 1e-12);

  const Scenario s = olmoe_scenario(nullptr);
  const models::Result r = models::evaluate_analytic(s);
  ASSERT_EQ(r.moe_layers.size(), 16u);
  // Nearest recorded block: 0 → 0; 1..3 → 0 (|3−0| = 3 < |3−7| = 4); 4..11 → 7 (11 ties 7 and 15: the
  // first recorded wins); 12..15 → 15.
  auto record_of = [&](int block) -> const std::vector<double>& {
    if (block <= 3) return recorded[0].second;
    if (block <= 11) return recorded[1].second;
    return recorded[2].second;
  };
  for (int l = 0; l < 16; ++l) {
    SCOPED_TRACE("MoE layer " + std::to_string(l));
    const auto& c = record_of(l);
    EXPECT_EQ(r.moe_layers[l].layer, l);
    EXPECT_NEAR(r.moe_layers[l].max_over_mean_expert, max_over_mean(c), 1e-12);
    // Contiguous EP16: GPU g holds experts 4g..4g+3. The 1-source trace is split into 16 rows of
    // 1671168 / 16 = 104448 slots each (equal totals), so each GPU's rows are proportional to the sum
    // of its four experts' counts.
    std::vector<double> gpu(16, 0.0);
    for (int e = 0; e < 64; ++e) gpu[e / 4] += c[e];
    EXPECT_NEAR(r.moe_layers[l].max_over_mean_gpu, max_over_mean(gpu), 1e-9);
    // The straggler computes (its share of the slots) × 16 GPUs × 8192 tokens × top_k 8.
    const double T = 2.0 * 4096;  // microbatch 2 × seq 4096, tp = cp = 1
    EXPECT_NEAR(r.moe_layers[l].straggler_rows,
                *std::max_element(gpu.begin(), gpu.end()) / 1671168.0 * 16 * T * 8, 1e-6);
  }
  // Recorded here (contiguous): expert max/mean 7.8130 (blocks 0-3), 6.2831 (4-11), 7.4950 (12-15);
  // GPU max/mean 2.6317, 1.9154, 2.2653. Layer 0 by hand: GPU 0 holds experts 0..3 = 204013 + 19281 +
  // 19395 + 32186 = 274875 slots, the mean GPU 1671168 / 16 = 104448 → 2.63169...
  std::vector<double> gpu0(16, 0.0);
  for (int e = 0; e < 64; ++e) gpu0[e / 4] += recorded[0].second[e];
  EXPECT_EQ(gpu0[0], 274875.0);
  EXPECT_NEAR(r.moe_layers[0].max_over_mean_gpu, 274875.0 / 104448.0, 1e-9);
}

TEST(OlmoeReplay, RedundantPlacementsLowerImbalanceAndStepTime) {
  const Scenario base = olmoe_scenario(nullptr);
  const models::Result rb = models::evaluate_analytic(base);
  const auto recorded = olmoe_trace_counts();
  for (const char* policy : {"eplb", "greedy"}) {
    SCOPED_TRACE(policy);
    const Json pl = {{"policy", policy}, {"redundant_experts", 16}};
    const Scenario s = olmoe_scenario(&pl);
    const models::Result r = models::evaluate_analytic(s);
    ASSERT_EQ(r.moe_layers.size(), 16u);
    // The same placement computed here from the per-layer expert counts (80 slots, 5 per GPU, 2 nodes,
    // 1 group): its per-GPU loads (a replicated expert's load split evenly) give the same max/mean as
    // the routed rows.
    models::PlacementInput in;
    for (int l = 0; l < 16; ++l)
      in.weight.push_back(l <= 3 ? recorded[0].second : l <= 11 ? recorded[1].second : recorded[2].second);
    in.num_replicas = 80;
    in.num_gpus = 16;
    in.num_nodes = 2;
    in.num_groups = 1;
    const auto placement = models::place(policy, in);
    const auto loads = models::gpu_loads(placement, in.weight);
    for (int l = 0; l < 16; ++l) {
      SCOPED_TRACE("MoE layer " + std::to_string(l));
      EXPECT_LT(r.moe_layers[l].max_over_mean_gpu, rb.moe_layers[l].max_over_mean_gpu);
      EXPECT_NEAR(r.moe_layers[l].max_over_mean_gpu, loads[l].imbalance, 1e-9);
      // Logical-expert statistics do not depend on the placement.
      EXPECT_NEAR(r.moe_layers[l].max_over_mean_expert, rb.moe_layers[l].max_over_mean_expert, 1e-12);
    }
    // Recorded here: contiguous 7.1378 s/step (balanced 4.3797 s); eplb and greedy (1 group, so EPLB
    // takes its global policy, which packs like greedy) both 4.4728 s, GPU max/mean 1.0349 (blocks 0-3),
    // 1.0329 (4-11), 1.0347 (12-15).
    EXPECT_LT(r.step_time, rb.step_time);
    // Balanced routing is the floor.
    EXPECT_LE(r.balanced_step_time, r.step_time);
  }
}

// ============================================================================ 4. sampled mode

// A 16-expert top-2 model with 4 MoE layers on 2 nodes × 4 H100 (ep 8: node n holds GPUs 4n..4n+3 and,
// contiguous, experts 8n..8n+7). 256 tokens per EP rank (microbatch 1 × seq 256).
Json small_scenario() {
  return Json::parse(R"({
    "name": "routing-it",
    "model": {
      "name": "tiny-moe-16",
      "layers": 4, "hidden": 512, "vocab": 8000,
      "attention": {"kind": "mha", "heads": 8, "head_dim": 64},
      "moe": {"experts": 16, "top_k": 2, "expert_ffn": 512}
    },
    "cluster": {
      "name": "two-by-four",
      "gpu": "catalog:h100-sxm",
      "nodes": 2, "gpus_per_node": 4,
      "scale_up": {"kind": "nvswitch", "bandwidth": "400GBps", "latency": "3us"},
      "scale_out": {"kind": "fat_tree", "nic_bandwidth": "50GBps", "latency": "5us"}
    },
    "parallelism": {
      "attention": {"tp": 1, "cp": 1},
      "experts": {"ep": 8, "etp": 1},
      "pp": 1, "microbatch_size": 1, "global_batch": 8
    },
    "workload": {"seq_len": 256, "precision": "bf16"},
    "routing": {"policy": "softmax_topk", "mode": "expected"},
    "placement": {"policy": "contiguous"}
  })");
}

const std::string kSmallSource = "/virtual/routing-it.json";

Scenario small(const Json& j) {
  return scenario_from_json(j, kSmallSource, catalog());
}

Json sampled_zipf(uint64_t seed) {
  Json j = small_scenario();
  j["routing"] = {{"policy", "softmax_topk"},
                  {"mode", "sampled"},
                  {"load", {{"generator", "zipf"}, {"s", 1.2}, {"seed", seed}}}};
  return j;
}

void expect_identical(const models::MoeLayerStats& a, const models::MoeLayerStats& b) {
  EXPECT_EQ(a.layer, b.layer);
  EXPECT_EQ(a.max_over_mean_gpu, b.max_over_mean_gpu);
  EXPECT_EQ(a.cv_gpu, b.cv_gpu);
  EXPECT_EQ(a.max_over_mean_expert, b.max_over_mean_expert);
  EXPECT_EQ(a.cv_expert, b.cv_expert);
  EXPECT_EQ(a.straggler_rows, b.straggler_rows);
  EXPECT_EQ(a.mean_rows, b.mean_rows);
  EXPECT_EQ(a.dropped_fraction, b.dropped_fraction);
  EXPECT_EQ(a.padded_rows, b.padded_rows);
  EXPECT_EQ(a.dispatch_seconds, b.dispatch_seconds);
  EXPECT_EQ(a.combine_seconds, b.combine_seconds);
  EXPECT_EQ(a.straggler_seconds, b.straggler_seconds);
  EXPECT_EQ(a.nic_bytes, b.nic_bytes);
  EXPECT_EQ(a.nodes, b.nodes);
  EXPECT_EQ(a.node_traffic, b.node_traffic);
}

TEST(SampledRouting, DeterministicForASeed) {
  const Scenario s = small(sampled_zipf(7));
  const models::Result a = models::evaluate_analytic(s);
  const models::Result b = models::evaluate_analytic(s);
  EXPECT_EQ(a.step_time, b.step_time);  // bit-identical
  ASSERT_EQ(a.moe_layers.size(), 4u);
  ASSERT_EQ(b.moe_layers.size(), 4u);
  for (int l = 0; l < 4; ++l) {
    SCOPED_TRACE("MoE layer " + std::to_string(l));
    expect_identical(a.moe_layers[l], b.moe_layers[l]);
  }
  // The samples themselves: 8 sources × 256 tokens × top_k 2 entries, identical on a second draw.
  const auto x = models::sample_routing(s, 0), y = models::sample_routing(s, 0);
  ASSERT_EQ(x.size(), 4u);  // sample_layers 4, 4 MoE layers
  for (std::size_t l = 0; l < x.size(); ++l) {
    EXPECT_EQ(x[l].sources, 8);
    EXPECT_EQ(x[l].token_experts.size(), 8u * 256 * 2);
    EXPECT_EQ(x[l].token_experts, y[l].token_experts);
    EXPECT_EQ(x[l].counts, y[l].counts);
  }
}

TEST(SampledRouting, DifferentSeedDifferentResult) {
  const models::Result a = models::evaluate_analytic(small(sampled_zipf(7)));
  const models::Result b = models::evaluate_analytic(small(sampled_zipf(8)));
  ASSERT_EQ(a.moe_layers.size(), b.moe_layers.size());
  // Zipf shares over a seeded permutation of the experts: another seed puts the hot experts elsewhere.
  int differing = 0;
  for (std::size_t l = 0; l < a.moe_layers.size(); ++l)
    differing += a.moe_layers[l].max_over_mean_gpu != b.moe_layers[l].max_over_mean_gpu;
  EXPECT_GT(differing, 0);
  EXPECT_NE(a.step_time, b.step_time);
}

// Largest number of distinct nodes (expert / 8) any token of the samples uses.
int max_nodes_per_token(const std::vector<RoutingSample>& samples) {
  int worst = 0;
  for (const auto& x : samples) {
    const std::size_t tokens = x.token_experts.size() / x.top_k;
    for (std::size_t t = 0; t < tokens; ++t) {
      std::set<int> nodes;
      for (int k = 0; k < x.top_k; ++k) {
        const int e = x.token_experts[t * x.top_k + k];
        if (e >= 0) nodes.insert(e / 8);
      }
      worst = std::max(worst, static_cast<int>(nodes.size()));
    }
  }
  return worst;
}

TEST(SampledRouting, NodeLimitedKeepsTokensWithinNodeLimit) {
  Json j = sampled_zipf(3);
  j["routing"]["policy"] = "node_limited";
  j["routing"]["node_limit"] = 1;
  const Scenario s = small(j);
  const auto samples = models::sample_routing(s, 0);
  ASSERT_EQ(samples.size(), 4u);
  for (const auto& x : samples) EXPECT_EQ(x.token_experts.size(), 8u * 256 * 2);
  // Contiguous EP8 over 2 nodes of 4 GPUs: node n holds experts 8n..8n+7; with node_limit 1 no token
  // may use both.
  EXPECT_EQ(max_nodes_per_token(samples), 1);
  // Without the limit some of the 8192 tokens do use both nodes (the check above is not vacuous).
  Json u = sampled_zipf(3);
  EXPECT_EQ(max_nodes_per_token(models::sample_routing(small(u), 0)), 2);
  // And the whole scenario evaluates.
  const models::Result r = models::evaluate_analytic(s);
  EXPECT_GT(r.step_time, 0);
}

// =========================================================================== 5. check_routing

std::string routing_error(const Json& j) {
  const Scenario s = small(j);
  try {
    models::check_routing(s);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// MoE layers whose routing is the same (uniform expected shares, one placement) share one per-GPU load
// entry; a skewed generator gives each layer its own. The tiny model: 4 MoE layers, 16 experts on EP 8
// (two per GPU, contiguous), top-2.
TEST(WorkloadDetail, LayersRoutedAlikeShareOneEntry) {
  {
    const Scenario s = small(small_scenario());
    auto cm = models::make_compute_cost_model(s);
    const models::NetworkModel net(s.cluster);
    const models::Workload w = models::build_workload(s, *cm, net, nullptr, true);
    ASSERT_EQ(w.moe_layers.size(), 4u);
    ASSERT_EQ(w.moe_detail.size(), 1u);
    EXPECT_EQ(w.moe_detail_index, (std::vector<int>{0, 0, 0, 0}));
    for (int i = 0; i < 4; ++i) {
      const models::MoeLayerDetail& d = models::moe_detail_of(w, i);
      EXPECT_EQ(d.rank_load, std::vector<double>(8, 1.0)) << "MoE layer " << i;
      EXPECT_FALSE(d.uneven);
      EXPECT_EQ(d.wire_bytes.size(), 64u);
    }
  }
  {
    // An MTP module is priced again (its own ops) with the same routing: it reads the same entry.
    Json j = small_scenario();
    j["model"]["mtp_depth"] = 1;
    const Scenario s = small(j);
    auto cm = models::make_compute_cost_model(s);
    const models::NetworkModel net(s.cluster);
    const models::Workload w = models::build_workload(s, *cm, net);
    ASSERT_EQ(w.moe_layers.size(), 5u);
    EXPECT_EQ(w.moe_detail.size(), 1u);
    EXPECT_EQ(w.moe_detail_index, (std::vector<int>{0, 0, 0, 0, 0}));
    EXPECT_EQ(models::moe_detail_of(w, 4).rank_load, std::vector<double>(8, 1.0));
  }
  {
    // Expert 5 (GPU 2) takes 30 % of the routed slots, the other 15 share 70 %: GPU 2 computes
    // 0.3 + 0.7/15 of them, every other GPU 2 · 0.7/15, so each of those loads is (1.4/15) / (0.3 + 0.7/15)
    // = 7/26 of GPU 2's (top-2 caps a share at 1/2: not reached).
    Json j = small_scenario();
    j["routing"]["load"] = {
        {"generator", "hot_expert"}, {"hot_fraction", 0.3}, {"hot_expert", 5}, {"seed", 1}};
    const Scenario s = small(j);
    auto cm = models::make_compute_cost_model(s);
    const models::NetworkModel net(s.cluster);
    const models::Workload w = models::build_workload(s, *cm, net);
    ASSERT_EQ(w.moe_detail.size(), 4u);
    EXPECT_EQ(w.moe_detail_index, (std::vector<int>{0, 1, 2, 3}));
    for (int i = 0; i < 4; ++i) {
      const models::MoeLayerDetail& d = models::moe_detail_of(w, i);
      ASSERT_EQ(d.rank_load.size(), 8u);
      EXPECT_TRUE(d.uneven);
      for (int g = 0; g < 8; ++g)
        EXPECT_NEAR(d.rank_load[g], g == 2 ? 1.0 : 7.0 / 26.0, 1e-12) << "MoE layer " << i << " GPU " << g;
      EXPECT_TRUE(d.wire_bytes.empty());  // not asked for detail
    }
  }
}

TEST(CheckRouting, ValidScenariosPass) {
  EXPECT_NO_THROW(models::check_routing(small(small_scenario())));
  EXPECT_NO_THROW(models::check_routing(small(sampled_zipf(1))));
  Json j = small_scenario();
  j["placement"] = {{"policy", "eplb"}, {"redundant_experts", 8}};  // 24 slots, 3 per GPU
  EXPECT_NO_THROW(models::check_routing(small(j)));
  // node_limit with another policy is only an error in sampled mode (expected mode applies the limit
  // in dispatch_stats whatever the policy).
  Json e = small_scenario();
  e["routing"]["node_limit"] = 1;
  EXPECT_NO_THROW(models::check_routing(small(e)));
}

TEST(CheckRouting, UnknownPolicyListsNames) {
  Json j = small_scenario();
  j["routing"]["policy"] = "no_such_policy";
  const std::string msg = routing_error(j);
  ASSERT_FALSE(msg.empty());
  EXPECT_NE(msg.find(kSmallSource), std::string::npos) << msg;
  EXPECT_NE(msg.find("/routing/policy"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"no_such_policy\""), std::string::npos) << msg;
  for (const char* name : {"softmax_topk", "sigmoid_topk", "group_limited_topk", "node_limited", "capacity",
                           "expert_choice", "hash", "threshold", "top_p"})
    EXPECT_NE(msg.find(name), std::string::npos) << name << " missing from: " << msg;
  for (const auto& p : traces::routing_policies()) EXPECT_NE(msg.find(p.name), std::string::npos) << p.name;
  // evaluate_analytic checks it too.
  EXPECT_THROW(models::evaluate_analytic(small(j)), ConfigError);
}

TEST(CheckRouting, GeneratorNotAllowedInExpectedMode) {
  for (const char* gen : {"dirichlet", "rotating", "drift"}) {
    Json j = small_scenario();
    j["routing"]["load"] = {{"generator", gen}};
    const std::string msg = routing_error(j);
    ASSERT_FALSE(msg.empty()) << gen;
    EXPECT_NE(msg.find("/routing/load/generator"), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::string("\"") + gen + "\""), std::string::npos) << msg;
    EXPECT_NE(msg.find("sampled"), std::string::npos) << msg;
    // The same generator is fine in sampled mode.
    j["routing"]["mode"] = "sampled";
    EXPECT_EQ(routing_error(j), "") << gen;
  }
}

TEST(CheckRouting, RedundantSlotsMustDivideByEp) {
  Json j = small_scenario();
  j["placement"] = {{"policy", "eplb"}, {"redundant_experts", 3}};  // 16 + 3 = 19 slots, 19 mod 8 ≠ 0
  const std::string msg = routing_error(j);
  EXPECT_NE(msg.find("/placement/redundant_experts"), std::string::npos) << msg;
  EXPECT_NE(msg.find("19 slots"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(8)"), std::string::npos) << msg;
}

TEST(CheckRouting, RedundantExpertsNeedAReplicatingPolicy) {
  for (const char* policy : {"contiguous", "round_robin"}) {
    Json j = small_scenario();
    j["placement"] = {{"policy", policy}, {"redundant_experts", 8}};  // 24 slots: divisible, wrong policy
    const std::string msg = routing_error(j);
    EXPECT_NE(msg.find("/placement/policy"), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::string("\"") + policy + "\""), std::string::npos) << msg;
  }
}

TEST(CheckRouting, NodeLimitNeedsNodeLimitedPolicyInSampledMode) {
  Json j = sampled_zipf(1);
  j["routing"]["node_limit"] = 1;  // policy softmax_topk
  const std::string msg = routing_error(j);
  EXPECT_NE(msg.find("/routing/policy"), std::string::npos) << msg;
  EXPECT_NE(msg.find("node_limited"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"softmax_topk\""), std::string::npos) << msg;
  j["routing"]["policy"] = "node_limited";
  EXPECT_EQ(routing_error(j), "");
}

// ================================================================================ 6. replay

// Loads of MoE layer l on step k, per source row (8 rows, 100 tokens × top_k 2 = 200 slots each):
// 10 per expert, +30 on expert (4k + l) mod 16 and +10 on (4k + l + 8) mod 16.
std::vector<int64_t> row_counts(int step, int layer) {
  std::vector<int64_t> row(16, 10);
  row[(4 * step + layer) % 16] += 30;
  row[(4 * step + layer + 8) % 16] += 10;
  return row;
}

// Writes a 3-step count-level trace for the 4 MoE layers of small_scenario(), 8 sources (= ep).
std::string write_trace(const fs::path& dir) {
  const std::string path = (dir / "shift.jsonl").string();
  traces::TraceHeader h;
  h.experts = 16;
  h.top_k = 2;
  h.sources = 8;
  h.layers = 4;
  h.model = "tiny-moe-16";
  traces::TraceWriter w(path, h);
  for (int step = 0; step < 3; ++step)
    for (int layer = 0; layer < 4; ++layer) {
      RoutingSample x;
      x.step = step;
      x.layer = layer;
      x.sources = 8;
      x.experts = 16;
      x.top_k = 2;
      x.tokens = 800;
      for (int s = 0; s < 8; ++s) {
        const auto row = row_counts(step, layer);
        x.counts.insert(x.counts.end(), row.begin(), row.end());
      }
      w.write_counts(x);
    }
  w.close();
  return path;
}

// Loads (layers × experts) of step k, summed over the 8 sources.
models::ExpertLoads step_loads(int step) {
  models::ExpertLoads l(4, std::vector<double>(16, 0.0));
  for (int layer = 0; layer < 4; ++layer) {
    const auto row = row_counts(step, layer);
    for (int e = 0; e < 16; ++e) l[layer][e] = 8.0 * row[e];
  }
  return l;
}

// EPLB with 8 redundant slots (24 slots, 3 per GPU), 2 nodes, 1 group, as the scenario asks.
models::ExpertPlacement eplb_for(const models::ExpertLoads& loads) {
  models::PlacementInput in;
  in.weight = loads;
  in.num_replicas = 24;
  in.num_gpus = 8;
  in.num_nodes = 2;
  in.num_groups = 1;
  return models::place("eplb", in);
}

Json replay_scenario(const std::string& trace, int rebalance_every) {
  Json j = small_scenario();
  j["routing"] = {{"policy", "softmax_topk"}, {"mode", "trace"}, {"trace", {{"path", trace}}}};
  j["placement"] = {{"policy", "eplb"}, {"redundant_experts", 8}, {"rebalance_every", rebalance_every}};
  return j;
}

// Step time of one step priced here from the trace's samples (read back with TraceReader) and a
// placement, without any rebalancing.
double priced_step(const Scenario& s, const std::string& trace, int step, const models::ExpertPlacement& p) {
  traces::TraceReader reader(trace);
  models::RoutingInput in;
  RoutingSample x;
  while (reader.next(x))
    if (x.step == step) in.samples.push_back(x);
  for (const auto& p2l : p.phy2log) in.slot_maps.push_back(SlotMap::from_phy2log(p2l, 8, 16));
  auto cm = models::make_compute_cost_model(s);
  models::NetworkModel net(s.cluster);
  return models::evaluate_analytic(s, models::build_workload(s, *cm, net, &in)).step_time;
}

TEST(Replay, RebalanceChargesMovedExpertBytesOverTheNic) {
  TempDir dir;
  const std::string trace = write_trace(dir.path());
  const Scenario s = small(replay_scenario(trace, 1));
  const models::ReplayResult r = models::replay(s);
  ASSERT_EQ(r.steps.size(), 3u);
  for (int k = 0; k < 3; ++k) EXPECT_EQ(r.steps[k].step, k);

  // Bytes that follow an expert: params per expert × (BF16 weights 2 + FP32 master 4 + two FP32 Adam
  // moments 2·4) = 14 bytes per parameter (etp 1). One expert: 3 matrices 512 × 512 (SwiGLU).
  const double expert_params = models::count_params(s.model).expert;
  EXPECT_EQ(expert_params, 3.0 * 512 * 512);
  const double expert_bytes = expert_params * (2 + 4 + 2 * 4);
  // rebalance_every 1: before step k (k ≥ 1) the experts are re-placed from the loads seen since the
  // last placement, i.e. step k−1's. Step 0 is placed from its own loads.
  const models::ExpertPlacement p0 = eplb_for(step_loads(0));
  const models::ExpertPlacement p1 = eplb_for(step_loads(0));  // window before step 1 = step 0
  const models::ExpertPlacement p2 = eplb_for(step_loads(1));
  auto busiest = [&](const models::ExpertPlacement& a, const models::ExpertPlacement& b) {
    const auto v = models::rebalance_bytes(a, b, expert_bytes);
    return *std::max_element(v.begin(), v.end());
  };
  // NIC 50 GB/s, latency 5 us (the EP group spans 2 nodes).
  const double nic = 50e9, lat = 5e-6;
  EXPECT_DOUBLE_EQ(s.cluster.scale_out.nic_bandwidth, nic);
  EXPECT_DOUBLE_EQ(s.cluster.scale_out.latency, lat);

  // Step 0: nothing to move.
  EXPECT_EQ(r.steps[0].rebalance_bytes, 0.0);
  EXPECT_EQ(r.steps[0].rebalance_seconds, 0.0);
  // Step 1: same loads, same placement: nothing moves.
  EXPECT_EQ(busiest(p0, p1), 0.0);
  EXPECT_EQ(r.steps[1].rebalance_bytes, 0.0);
  EXPECT_EQ(r.steps[1].rebalance_seconds, 0.0);
  // Step 2: the hot experts moved (step 1 heats 4 + l and 12 + l instead of l and 8 + l).
  const double b2 = busiest(p1, p2);
  ASSERT_GT(b2, 0.0);
  EXPECT_NEAR(std::fmod(b2, expert_bytes), 0.0, 1e-6);  // whole experts
  EXPECT_NEAR(r.steps[2].rebalance_bytes, b2, 1e-6);
  EXPECT_NEAR(r.steps[2].rebalance_seconds, b2 / nic + lat, 1e-15);
  // Recorded here: GPUs newly host 4 4 4 4 8 7 7 7 experts over the 4 layers; GPU 4's 8 experts give
  // b2 = 8 × 14 × 786432 = 88080384 bytes → 88080384 / 50e9 + 5e-6 = 1.7666 ms.

  // Each step's time = the step priced with its placement + its rebalancing.
  const models::ExpertPlacement* placed[3] = {&p0, &p1, &p2};
  for (int k = 0; k < 3; ++k) {
    SCOPED_TRACE("step " + std::to_string(k));
    const double t = priced_step(s, trace, k, *placed[k]);
    EXPECT_NEAR(r.steps[k].step_time, t + r.steps[k].rebalance_seconds, rel_tol(t));
  }
  EXPECT_NEAR(r.mean_step_time, (r.steps[0].step_time + r.steps[1].step_time + r.steps[2].step_time) / 3,
              rel_tol(r.mean_step_time));
}

TEST(Replay, NoRebalanceAfterStepZeroWhenRebalanceEveryIsZero) {
  TempDir dir;
  const std::string trace = write_trace(dir.path());
  const Scenario s = small(replay_scenario(trace, 0));
  const models::ReplayResult r = models::replay(s);
  ASSERT_EQ(r.steps.size(), 3u);
  const models::ExpertPlacement p0 = eplb_for(step_loads(0));
  double sum = 0;
  for (int k = 0; k < 3; ++k) {
    SCOPED_TRACE("step " + std::to_string(k));
    EXPECT_EQ(r.steps[k].rebalance_bytes, 0.0);
    EXPECT_EQ(r.steps[k].rebalance_seconds, 0.0);
    // Every step keeps step 0's placement.
    EXPECT_NEAR(r.steps[k].step_time, priced_step(s, trace, k, p0), rel_tol(r.steps[k].step_time));
    sum += r.steps[k].step_time;
  }
  EXPECT_NEAR(r.mean_step_time, sum / 3, rel_tol(sum));
  // max_steps stops early.
  EXPECT_EQ(models::replay(s, 2).steps.size(), 2u);
}

TEST(Replay, RequiresTraceMode) {
  const Scenario s = small(small_scenario());  // mode "expected"
  try {
    models::replay(s);
    FAIL() << "replay of an expected-mode scenario did not throw";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("/routing/mode"), std::string::npos) << msg;
    EXPECT_NE(msg.find("\"expected\""), std::string::npos) << msg;
  }
  EXPECT_THROW(models::replay(small(sampled_zipf(1))), ConfigError);
}

// Trace layers count MoE layers only (traces/routing_sample.hpp: "MoE layer index (0-based, counting
// MoE layers only)"; docs/trace-format.md: "layers: MoE layers L"). With a dense first block the MoE
// layers are blocks 1, 2, 3 and trace layers 0, 1, 2 belong to them in that order.
TEST(Replay, TraceLayersAreMoeLayerIndicesWithDenseBlocks) {
  TempDir dir;
  const std::string path = (dir.path() / "dense-first.jsonl").string();
  {
    traces::TraceHeader h;
    h.experts = 16;
    h.top_k = 2;
    h.sources = 8;
    h.layers = 3;
    traces::TraceWriter w(path, h);
    // Layer i: expert 0 takes 10·(3 − i) extra slots per row over 10 each: max/mean of layer 0 =
    // 40/(190/16), of layer 1 = 30/(180/16), of layer 2 = 20/(170/16).
    for (int layer = 0; layer < 3; ++layer) {
      RoutingSample x;
      x.step = 0;
      x.layer = layer;
      x.sources = 8;
      x.experts = 16;
      x.top_k = 2;
      std::vector<int64_t> row(16, 10);
      row[0] += 10 * (3 - layer);
      for (int s = 0; s < 8; ++s) x.counts.insert(x.counts.end(), row.begin(), row.end());
      x.tokens = 8 * (160 + 10 * (3 - layer)) / 2;
      w.write_counts(x);
    }
    w.close();
  }
  Json j = small_scenario();
  j["model"]["dense_ffn"] = 1024;
  j["model"]["moe"]["first_dense_layers"] = 1;
  j["routing"] = {{"mode", "trace"}, {"trace", {{"path", path}}}};
  const models::Result r = models::evaluate_analytic(small(j));
  ASSERT_EQ(r.moe_layers.size(), 3u);
  const double want[3] = {40.0 / (190.0 / 16), 30.0 / (180.0 / 16), 20.0 / (170.0 / 16)};
  bool all = true;
  for (int i = 0; i < 3; ++i) all = all && std::abs(r.moe_layers[i].max_over_mean_expert - want[i]) < 1e-12;
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(r.moe_layers[i].max_over_mean_expert, want[i], 1e-12);
}

// A Megatron-Core router trace replayed (models/routing_source.cpp, trace format "megatron").
// tests/data/traces/megatron-moe-layers records the 4 MoE layers of small_scenario() as Megatron writes
// them, layers 1, 2, 3, 4 (README there): at Megatron layer n expert 2n-2 gets 3 of the 6 slots, 2n-1
// gets 2 and expert 15 gets 1. MoE layer i is Megatron layer i + 1, so its loads are 3 on expert 2i, 2 on
// 2i + 1, 1 on 15. (Keeping Megatron's numbers, MoE layers 0..3 took the nearest recorded layers
// 1, 1, 2, 3: hot experts 0, 0, 2, 4.) The 2 ranks are split into ep = 8 sources; the totals stay.
TEST(Replay, MegatronTraceLayersMapToMoeLayers) {
  Json j = small_scenario();
  j["routing"] = {
      {"mode", "trace"},
      {"trace",
       {{"path", std::string(MOESIM_TEST_DATA) + "/traces/megatron-moe-layers"}, {"format", "megatron"}}}};
  const Scenario s = small(j);
  const auto steps = models::load_trace_steps(s);
  ASSERT_EQ(steps.size(), 1u);
  ASSERT_EQ(steps[0].size(), 4u);
  for (int i = 0; i < 4; ++i) {
    SCOPED_TRACE("MoE layer " + std::to_string(i));
    const RoutingSample& x = steps[0][i];
    EXPECT_EQ(x.layer, i);
    EXPECT_EQ(x.sources, 8);
    std::vector<int64_t> want(16, 0);
    want[2 * i] = 3;
    want[2 * i + 1] = 2;
    want[15] = 1;
    EXPECT_EQ(x.expert_counts(), want);
  }
}

// The trace against the model (models::check_trace, models/routing_source.hpp). small_scenario(): 4 MoE
// layers of 16 experts, ep 8.
std::string write_layers_trace(const fs::path& dir, const std::string& name, traces::TraceHeader h,
                               const std::vector<std::pair<int, int>>& step_layer) {
  const std::string path = (dir / name).string();
  traces::TraceWriter w(path, h);
  for (const auto& [step, layer] : step_layer) {
    RoutingSample x;
    x.step = step;
    x.layer = layer;
    x.sources = h.sources;
    x.experts = h.experts;
    x.top_k = h.top_k;
    x.counts.assign(static_cast<std::size_t>(h.sources) * h.experts, 1);  // every expert 1 slot per row
    x.tokens = static_cast<int64_t>(h.sources) * h.experts / h.top_k;
    w.write_counts(x);
  }
  w.close();
  return path;
}

Scenario trace_scenario(const std::string& path) {
  Json j = small_scenario();
  j["routing"] = {{"mode", "trace"}, {"trace", {{"path", path}}}};
  return small(j);
}

TEST(CheckTrace, NoteNamesTheLayersFilledFromTheNearestRecorded) {
  // The OLMoE example records layers 0, 7 and 15 of 16: 13 layers (1-6, 8-14) are filled.
  const models::TraceCoverage olmoe = models::check_trace(olmoe_scenario(nullptr));
  EXPECT_EQ(olmoe.steps, 1);
  EXPECT_EQ(olmoe.records, 3);
  EXPECT_NE(olmoe.note.find("13 of the model's 16 MoE layers have no record (layers 1-6, 8-14)"),
            std::string::npos)
      << olmoe.note;

  TempDir dir;
  const traces::TraceHeader h{traces::kTraceFormatVersion, 16, 2, 8, 4, "", ""};
  // Every layer in both steps: no note.
  const auto full = models::check_trace(trace_scenario(write_layers_trace(
      dir.path(), "full.jsonl", h, {{0, 0}, {0, 1}, {0, 2}, {0, 3}, {1, 0}, {1, 1}, {1, 2}, {1, 3}})));
  EXPECT_EQ(full.steps, 2);
  EXPECT_EQ(full.records, 8);
  EXPECT_EQ(full.note, "");
  // Step 0 has all 4 layers, step 1 only layer 2: layers 0, 1, 3 miss in one of the 2 steps.
  const auto part = models::check_trace(trace_scenario(
      write_layers_trace(dir.path(), "part.jsonl", h, {{0, 0}, {0, 1}, {0, 2}, {0, 3}, {1, 2}})));
  EXPECT_NE(part.note.find("3 have none in some of the 2 steps (layers 0-1, 3)"), std::string::npos)
      << part.note;
  // Layer 3 only: 3 of 4 (0-2) never recorded; each takes layer 3's counts.
  const Scenario s = trace_scenario(write_layers_trace(dir.path(), "last.jsonl", h, {{0, 3}}));
  EXPECT_NE(models::check_trace(s).note.find("3 of the model's 4 MoE layers have no record (layers 0-2)"),
            std::string::npos);
  const auto steps = models::load_trace_steps(s);
  ASSERT_EQ(steps.size(), 1u);
  ASSERT_EQ(steps[0].size(), 4u);
  for (const auto& x : steps[0]) EXPECT_EQ(x.expert_counts(), std::vector<int64_t>(16, 8));  // 8 rows of 1
}

// Calls check_trace and returns the error message ("" if none).
template <class E>
std::string trace_error(const Scenario& s) {
  try {
    models::check_trace(s);
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

TEST(CheckTrace, TraceMustFitTheModel) {
  TempDir dir;
  // More layers than the model's 4 MoE layers (a trace of layer 99 only would say 100 here).
  const std::string deep =
      write_layers_trace(dir.path(), "deep.jsonl",
                         traces::TraceHeader{traces::kTraceFormatVersion, 16, 2, 8, 100, "", ""}, {{0, 99}});
  std::string m = trace_error<ConfigError>(trace_scenario(deep));
  EXPECT_NE(m.find(deep + ":1: /layers: expected at most 4 MoE layers"), std::string::npos) << m;
  EXPECT_NE(m.find("found 100"), std::string::npos) << m;
  // 8 experts where the model has 16.
  const std::string narrow =
      write_layers_trace(dir.path(), "narrow.jsonl",
                         traces::TraceHeader{traces::kTraceFormatVersion, 8, 2, 8, 4, "", ""}, {{0, 0}});
  m = trace_error<ConfigError>(trace_scenario(narrow));
  EXPECT_NE(m.find(narrow + ":1: /experts: expected 16 experts"), std::string::npos) << m;
  // 3 source ranks cannot be rescaled to ep 8 (neither divides the other); 2 and 16 can.
  const std::string three =
      write_layers_trace(dir.path(), "three.jsonl",
                         traces::TraceHeader{traces::kTraceFormatVersion, 16, 2, 3, 4, "", ""}, {{0, 0}});
  m = trace_error<ConfigError>(trace_scenario(three));
  EXPECT_NE(m.find(three + ":1: /sources: expected source ranks that divide or are a multiple of ep = 8"),
            std::string::npos)
      << m;
  for (int sources : {2, 16}) {
    const std::string ok = write_layers_trace(
        dir.path(), "s" + std::to_string(sources) + ".jsonl",
        traces::TraceHeader{traces::kTraceFormatVersion, 16, 2, sources, 4, "", ""}, {{0, 0}});
    EXPECT_EQ(trace_error<ConfigError>(trace_scenario(ok)), "") << sources;
  }
}

TEST(CheckTrace, CutTraceIsFoundByTheWholeRead) {
  TempDir dir;
  const traces::TraceHeader h{traces::kTraceFormatVersion, 16, 2, 8, 4, "", ""};
  const std::string whole = write_layers_trace(dir.path(), "whole.jsonl", h, {{0, 0}, {1, 0}, {2, 0}});
  // Drop the end record and the last record: every line left is whole.
  std::ifstream in(whole);
  std::string text, line;
  for (int i = 0; i < 3 && std::getline(in, line); ++i) text += line + "\n";
  const std::string cut = (dir.path() / "cut.jsonl").string();
  std::ofstream(cut) << text;
  const Scenario s = trace_scenario(cut);
  const std::string m = trace_error<ParseError>(s);
  EXPECT_NE(m.find(cut + ":4: expected the end record"), std::string::npos) << m;
  // The first step alone (what `run` prices) is still read; replay, which reads to the end, is refused.
  EXPECT_EQ(models::load_trace_steps(s, 1).size(), 1u);
  Json j = small_scenario();
  j["routing"] = {{"mode", "trace"}, {"trace", {{"path", cut}}}};
  EXPECT_THROW(models::replay(small(j)), ParseError);
}

}  // namespace
}  // namespace moesim

namespace moesim {
namespace {

// Co-activation counts from token-level samples: c[a][b] = tokens that chose both a and b.
TEST(Coactivation, CountsFromTokensByHand) {
  const Scenario s = small(sampled_zipf(7));
  traces::RoutingSample x;
  x.experts = 16;
  x.top_k = 2;
  x.sources = 1;
  x.counts.assign(16, 0);
  // Tokens {0,1}, {1,0}, {2,3}, {0,2}: c[0][1] = 2, c[2][3] = 1, c[0][2] = 1, symmetric, zero diagonal.
  x.token_experts = {0, 1, 1, 0, 2, 3, 0, 2};
  const auto c = models::coactivation_counts(s, x);
  EXPECT_EQ(c[0][1], 2.0);
  EXPECT_EQ(c[1][0], 2.0);
  EXPECT_EQ(c[2][3], 1.0);
  EXPECT_EQ(c[0][2], 1.0);
  EXPECT_EQ(c[0][0], 0.0);
  EXPECT_EQ(c[1][3], 0.0);
  x.token_experts.clear();
  EXPECT_THROW(models::coactivation_counts(s, x), ConfigError);
}

// The coactivation policy on sampled routing places every layer and never cuts more co-activation
// between the two nodes than the contiguous placement of the same samples.
TEST(Coactivation, SampledScenarioPlacesAndCutsNoMoreThanContiguous) {
  Json j = sampled_zipf(7);
  j["placement"] = {{"policy", "coactivation"}};
  const Scenario s = small(j);
  const auto samples = models::sample_routing(s, 0);
  const auto loads = models::layer_loads(s, &samples);
  const auto placed = models::place_for(s, loads, &samples);
  ASSERT_EQ(placed.slot_maps.size(), loads.size());
  Json jc = sampled_zipf(7);
  jc["placement"] = {{"policy", "contiguous"}, {"redundant_experts", 0}};
  models::PlacementInput in;
  in.weight = loads;
  in.num_replicas = 16;
  in.num_gpus = 8;
  in.num_nodes = 2;
  const auto contiguous = models::place("contiguous", in);
  for (std::size_t l = 0; l < loads.size(); ++l) {
    const auto c = models::coactivation_counts(s, samples[l % samples.size()]);
    EXPECT_LE(models::coactivation_cut(placed.placement, static_cast<int>(l), c),
              models::coactivation_cut(contiguous, static_cast<int>(l), c));
  }
  // And it evaluates end to end.
  EXPECT_GT(models::evaluate_analytic(s).step_time, 0);
  // Without token detail the policy has nothing to work from: a clear error naming the placement.
  Json je = small_scenario();
  je["placement"] = {{"policy", "coactivation"}};
  try {
    models::evaluate_analytic(small(je));
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/placement/policy"), std::string::npos) << e.what();
  }
}

// The routing is resolved once, before any engine runs: what check_trace read is all the engines need,
// so the trace file can be gone by the time the step is evaluated, with the same result.
TEST(CheckTrace, EnginesReadNoFileOnceRoutingIsResolved) {
  TempDir dir;
  const traces::TraceHeader h{traces::kTraceFormatVersion, 16, 2, 8, 4, "", ""};
  const std::string path =
      write_layers_trace(dir.path(), "once.jsonl", h, {{0, 0}, {0, 1}, {0, 2}, {0, 3}, {1, 0}});
  const Scenario s = trace_scenario(path);
  const models::Result read_by_engine = models::evaluate_analytic(s);
  const models::TraceCoverage trace = models::check_trace(s);
  ASSERT_EQ(trace.first_step.size(), 4u);
  const models::RoutingInput resolved = models::routing_input(s, &trace);
  std::filesystem::remove(path);
  const models::Result r = models::evaluate_analytic(s, resolved);
  EXPECT_EQ(r.step_time, read_by_engine.step_time);
  EXPECT_EQ(r.moe_max_over_mean_gpu, read_by_engine.moe_max_over_mean_gpu);
  EXPECT_THROW(models::evaluate_analytic(s), Error);  // without it, the engine would need the file
}
}  // namespace
}  // namespace moesim
