// The cluster graph (sim/topology.cpp) on small hand-built clusters. Every expected value is derived by
// hand in the comment above it from the constructions of docs/topology.md:
//   fat tree: leaf host ports d = radix/2, up ports u = radix/(2·o); r NICs per node per plane; a leaf
//     holds floor(d/r) whole nodes, or a node takes ceil(r/d) leaves; two levels: m = the largest
//     divisor of u with m·leaves ≤ radix cables per leaf–spine pair, u/m spines; three levels: pods of
//     d leaves with u spines each, core groups of d/mc cores (mc: largest divisor of d with mc·pods ≤ radix);
//   D-mod-k: the up port is (destination host id = leaf·d + port) mod u;
//   dragonfly: h = p = floor((radix+1)/4), a = 2h routers per group, m = floor(a·h/(groups−1)) cables
//     per pair of groups;
//   torus: 3D when nodes is a perfect cube, else the most square X × Y; node id = x + X·y + X·Y·z;
//   link ids in construction order: NVLink per GPU, NIC per GPU, then fabric links.

#include "sim/topology.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>

#include "models/network.hpp"
#include "scenarios/error.hpp"

namespace moesim::sim {
namespace {

constexpr double kNvl = 100e9;  // bytes/s per GPU per direction
constexpr double kNvlLat = 2e-6;
constexpr double kNic = 25e9;
constexpr double kLat = 3e-6;
constexpr double kCross = 5e-6;
constexpr double kRel = 1e-12;

ClusterSpec cluster(int nodes, int gpn, const char* kind, int radix, double oversub = 1.0, int planes = 1,
                    int levels = 2) {
  ClusterSpec c;
  c.name = "test";
  c.nodes = nodes;
  c.gpus_per_node = gpn;
  c.scale_up.kind = ScaleUpKind::kNvswitch;
  c.scale_up.bandwidth = kNvl;
  c.scale_up.latency = kNvlLat;
  c.scale_out.kind = topology_kinds().get(kind);
  c.scale_out.nic_bandwidth = kNic;
  c.scale_out.latency = kLat;
  c.scale_out.latency_cross = kCross;
  c.scale_out.oversubscription = oversub;
  c.scale_out.planes = planes;
  c.scale_out.levels = levels;
  c.scale_out.radix = radix;
  return c;
}

// The DeepSeek-V3 cluster: 256 nodes × 8 H800, 8-plane two-layer fat tree of 64-port switches.
ClusterSpec deepseek() {
  ClusterSpec c = cluster(256, 8, "rail_optimized", 64, 1.0, 8);
  c.scale_up.bandwidth = 160e9;
  c.scale_out.nic_bandwidth = 50e9;
  return c;
}

int vertex_at(const Topology& t, const Path& p, std::size_t i) {
  return t.hop_to(p[i]);
}

// ---------------------------------------------------------------------------------------- counts

TEST(Topology, RegisteredKinds) {
  const auto& kinds = topology_kinds();
  ASSERT_EQ(kinds.size(), 4u);
  EXPECT_EQ(kinds.names()[0], "fat_tree");
  EXPECT_EQ(kinds.names()[1], "rail_optimized");
  EXPECT_EQ(kinds.names()[2], "dragonfly");
  EXPECT_EQ(kinds.names()[3], "torus");
}

TEST(Topology, FatTreeRadix8FourNodes) {
  // 4 × 8, radix 8: d = 4 < r = 8 → 2 leaves per node, 8 leaves; u = 4; m = largest divisor of 4
  // with m·8 ≤ 8 = 1 → 4 spines, each using 8 ports (one per leaf).
  // Vertices 32 GPU + 4 NVSwitch + 8 + 4 = 48; links 32 NVLink + 32 NIC + 8·4 uplinks = 96.
  Topology t(cluster(4, 8, "fat_tree", 8));
  EXPECT_EQ(t.count(VertexKind::kGpu), 32);
  EXPECT_EQ(t.count(VertexKind::kNvSwitch), 4);
  EXPECT_EQ(t.count(VertexKind::kLeaf), 8);
  EXPECT_EQ(t.count(VertexKind::kSpine), 4);
  EXPECT_EQ(t.count(VertexKind::kCore), 0);
  EXPECT_EQ(t.num_vertices(), 48);
  EXPECT_EQ(t.count(LinkKind::kNvlink), 32);
  EXPECT_EQ(t.count(LinkKind::kNic), 32);
  EXPECT_EQ(t.count(LinkKind::kUplink), 32);
  EXPECT_EQ(t.num_links(), 96);
  EXPECT_EQ(t.shape().switches_per_node, 2);
  EXPECT_EQ(t.shape().parallel_uplinks, 1);
  // GPU 5 = node 0, local 5 → leaf 0·2 + 5/4 = 1.
  EXPECT_EQ(t.vertex_name(t.attach_vertex(5)), "leaf1.p0");
}

TEST(Topology, FatTreeRadix64ThirtyTwoNodes) {
  // 32 × 8, radix 64: d = 32 → 4 nodes per leaf, 8 leaves; u = 32; m = largest divisor of 32 with
  // m·8 ≤ 64 = 8 → 4 spines with 8 cables to every leaf (8·8 = 64 ports).
  // Vertices 256 + 32 + 8 + 4 = 300; links 256 + 256 + 8·32 = 768.
  Topology t(cluster(32, 8, "fat_tree", 64));
  EXPECT_EQ(t.shape().nodes_per_switch, 4);
  EXPECT_EQ(t.shape().leaves, 8);
  EXPECT_EQ(t.shape().spines, 4);
  EXPECT_EQ(t.shape().parallel_uplinks, 8);
  EXPECT_EQ(t.num_vertices(), 300);
  EXPECT_EQ(t.num_links(), 768);
  // Comparable with the analytic model: the same nodes per leaf.
  EXPECT_EQ(t.shape().nodes_per_switch, models::NetworkModel(t.cluster()).nodes_per_leaf());
}

TEST(Topology, DeepSeekEightPlanes) {
  // Per plane r = 1 NIC per node, d = 32 → 32 nodes per leaf, 256/32 = 8 leaves; u = 32; m = largest
  // divisor of 32 with m·8 ≤ 64 = 8 → 4 spines per plane. 8 planes: 64 leaves, 32 spines.
  // Vertices 2048 + 256 + 64 + 32 = 2400; links 2048 NVLink + 2048 NIC + 8·8·32 = 2048 uplinks = 6144.
  Topology t(deepseek());
  EXPECT_EQ(t.shape().leaves, 8);
  EXPECT_EQ(t.shape().spines, 4);
  EXPECT_EQ(t.count(VertexKind::kLeaf), 64);
  EXPECT_EQ(t.count(VertexKind::kSpine), 32);
  EXPECT_EQ(t.num_vertices(), 2400);
  EXPECT_EQ(t.count(LinkKind::kUplink), 2048);
  EXPECT_EQ(t.num_links(), 6144);
  EXPECT_EQ(t.shape().nodes_per_switch, models::NetworkModel(t.cluster()).nodes_per_leaf());
  // GPU 8·37 + 5 = node 37, local 5 → plane 5, leaf 37/32 = 1.
  EXPECT_EQ(t.vertex_name(t.attach_vertex(8 * 37 + 5)), "leaf1.p5");
}

TEST(Topology, ThreeLevelAlFaresK4) {
  // Al-Fares k = 4: 16 hosts (16 nodes × 1 GPU, no NVSwitch for a 1-GPU domain). d = 2 → 2 nodes per
  // leaf, 8 leaves; pods = 8/2 = 4, u = 2 spines each → 8; mc = largest divisor of 2 with mc·4 ≤ 4 = 1
  // → core groups of 2, u·2 = 4 cores. Links 16 NIC + 8·2 + 8·2 = 48 (k³/4 hosts, k³/4 each layer).
  Topology t(cluster(16, 1, "fat_tree", 4, 1.0, 1, 3));
  EXPECT_EQ(t.count(VertexKind::kNvSwitch), 0);
  EXPECT_EQ(t.count(VertexKind::kLeaf), 8);
  EXPECT_EQ(t.count(VertexKind::kSpine), 8);
  EXPECT_EQ(t.count(VertexKind::kCore), 4);
  EXPECT_EQ(t.num_links(), 48);
  // Hops: same leaf (nodes 0, 1) 2; same pod (0 → 2) 4; across pods (0 → 4) 6 = diameter.
  EXPECT_EQ(t.hops(0, 1), 2);
  EXPECT_EQ(t.hops(0, 2), 4);
  EXPECT_EQ(t.hops(0, 4), 6);
  EXPECT_EQ(t.hop_stats().diameter, 6);
  // Across pods: 2 NIC (lat/2 each) + 4 switch links ((cross − lat)/2 each) = lat + 2·(cross − lat).
  EXPECT_NEAR(t.path_latency(0, 4), kLat + 2 * (kCross - kLat), kRel);
  // Full bisection: 8 hosts · 25 GB/s.
  EXPECT_NEAR(t.bisection_bandwidth(), 8 * kNic, 1.0);
  EXPECT_NEAR(Topology::fat_tree_bisection(t.cluster()), 8 * kNic, 1.0);
}

TEST(Topology, ThreeLevelPartialPods) {
  // 4 × 2 GPUs, radix 4, 3 levels: r = 2 = d → 1 node per leaf, 4 leaves; pods 2, spines 2·2 = 4;
  // mc = largest divisor of 2 with mc·2 ≤ 4 = 2 → 1 core per group, 2 cores, 2 cables per spine–core.
  // Vertices 8 + 4 NVSwitch + 4 + 4 + 2 = 22; links 8 + 8 + 4·2 + 4·2 = 32.
  Topology t(cluster(4, 2, "fat_tree", 4, 1.0, 1, 3));
  EXPECT_EQ(t.count(VertexKind::kCore), 2);
  EXPECT_EQ(t.shape().parallel_core_links, 2);
  EXPECT_EQ(t.num_vertices(), 22);
  EXPECT_EQ(t.num_links(), 32);
}

TEST(Topology, DragonflyRadix8) {
  // radix 8: h = p = 2, a = 4. 16 nodes × 2 GPUs: r = 2 = p → one node per router, 16 routers, 4 groups;
  // m = floor(4·2 / 3) = 2 cables per group pair. Vertices 32 + 16 NVSwitch + 16 routers = 64;
  // links 32 NVLink + 32 NIC + 4·C(4,2) = 24 local + C(4,2)·2 = 12 global = 100.
  Topology t(cluster(16, 2, "dragonfly", 8));
  EXPECT_EQ(t.shape().groups, 4);
  EXPECT_EQ(t.shape().parallel_global, 2);
  EXPECT_EQ(t.count(VertexKind::kRouter), 16);
  EXPECT_EQ(t.num_vertices(), 64);
  EXPECT_EQ(t.count(LinkKind::kUplink), 24);
  EXPECT_EQ(t.count(LinkKind::kGlobal), 12);
  EXPECT_EQ(t.num_links(), 100);
  // Groups 0–1, cable c: slot c·3 + 0 on group 0 → router (c·3) mod 4; slot c·3 + (0−1−1+4) mod 4 = c·3 + 2
  // on group 1 → router (c·3 + 2) mod 4. c = 0: router0.g0 – router2.g1; c = 1: router3.g0 – router1.g1.
  // GPU 2 (node 1, router1.g0) → GPU 14 (node 7, router3.g1): c = 14 mod 2 = 0, so
  // router1.g0 → router0.g0 (local) → router2.g1 (global) → router3.g1 (local): 5 hops.
  const Path p = t.path(2, 14);
  ASSERT_EQ(p.size(), 5u);
  EXPECT_EQ(t.vertex_name(vertex_at(t, p, 0)), "router1.g0");
  EXPECT_EQ(t.vertex_name(vertex_at(t, p, 1)), "router0.g0");
  EXPECT_EQ(t.vertex_name(vertex_at(t, p, 2)), "router2.g1");
  EXPECT_EQ(t.vertex_name(vertex_at(t, p, 3)), "router3.g1");
  EXPECT_EQ(t.vertex_name(vertex_at(t, p, 4)), "gpu7.0");
  EXPECT_EQ(t.link(p[2].link).kind, LinkKind::kGlobal);
  // Same group (node 0 → node 3): NIC, local, NIC; same node: NVSwitch.
  EXPECT_EQ(t.hops(0, 6), 3);
  EXPECT_EQ(t.hops(0, 1), 2);
  // Minimal routing is at most local-global-local: 5 links with the NICs.
  EXPECT_EQ(t.hop_stats().diameter, 5);
}

// ----------------------------------------------------------------------------------------- torus

TEST(Topology, TorusDimensions) {
  // 36 → 6 × 6; 12 → 3 × 4; 7 (prime) → 1 × 7 ring; 64 = 4³ → 4 × 4 × 4.
  EXPECT_EQ(Topology(cluster(36, 1, "torus", 8)).shape().dims, (std::array<int, 3>{6, 6, 1}));
  EXPECT_EQ(Topology(cluster(12, 1, "torus", 8)).shape().dims, (std::array<int, 3>{3, 4, 1}));
  EXPECT_EQ(Topology(cluster(7, 1, "torus", 8)).shape().dims, (std::array<int, 3>{1, 7, 1}));
  EXPECT_EQ(Topology(cluster(64, 1, "torus", 8)).shape().dims, (std::array<int, 3>{4, 4, 4}));
  // 6 × 6: 2 links per node = 72; 4 × 4 × 4: 3 per node = 192; 3 × 4: 12 + 12 = 24;
  // 2 × 2 × 2 (extent 2: one link per pair, not two): 4 links per dimension = 12.
  EXPECT_EQ(Topology(cluster(36, 1, "torus", 8)).count(LinkKind::kTorus), 72);
  EXPECT_EQ(Topology(cluster(64, 1, "torus", 8)).count(LinkKind::kTorus), 192);
  EXPECT_EQ(Topology(cluster(12, 1, "torus", 8)).count(LinkKind::kTorus), 24);
  EXPECT_EQ(Topology(cluster(8, 1, "torus", 8)).count(LinkKind::kTorus), 12);
}

TEST(Topology, TorusDimensionOrderDistances) {
  // 6 × 6, 1 GPU per node. Node 0 (0,0) → node 21 (3,3): x +3 (a tie goes +), y +3 → 6 + 2 NIC = 8.
  // Node 0 → node 35 (5,5): x −1 (wrap), y −1 → 2 + 2 = 4, through router5 (5,0) first (x before y).
  Topology t(cluster(36, 1, "torus", 8));
  EXPECT_EQ(t.hops(0, 21), 8);
  const Path p = t.path(0, 35);
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(t.vertex_name(vertex_at(t, p, 1)), "router5");
  EXPECT_EQ(t.vertex_name(vertex_at(t, p, 2)), "router35");
  // Diameter: 3 + 3 torus hops + 2 NIC = 8.
  EXPECT_EQ(t.hop_stats().diameter, 8);
  // 4 × 4 × 4: node 0 → 63 (3,3,3): −1 in each dimension → 3 + 2 = 5; → 42 (2,2,2): ties, +2 each → 8.
  Topology cube(cluster(64, 1, "torus", 8));
  EXPECT_EQ(cube.hops(0, 63), 5);
  EXPECT_EQ(cube.hops(0, 42), 8);
  // Extent 2 (2 × 2 × 2): node 1 → node 0 goes + through the single x link, backward.
  Topology small(cluster(8, 1, "torus", 8));
  const Path q = small.path(1, 0);
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(q[1].dir, Direction::kBackward);
}

TEST(Topology, TorusBisection) {
  // 6 × 6, 2 GPUs per node, torus links 2 · 25 GB/s. First 18 nodes = rows y = 0..2: the cut crosses
  // the 6 links between rows 2 and 3 and the 6 wrap links between rows 5 and 0 → 12 · 50 GB/s = 600 GB/s
  // (below the half's 36 NICs · 25 GB/s = 900 GB/s).
  Topology t(cluster(36, 2, "torus", 8));
  EXPECT_NEAR(t.bisection_bandwidth(), 12 * 2 * kNic, 1.0);
  // 4 × 4 × 4, 1 GPU: first 32 nodes = z = 0, 1: 16 + 16 links · 25 GB/s.
  EXPECT_NEAR(Topology(cluster(64, 1, "torus", 8)).bisection_bandwidth(), 32 * kNic, 1.0);
}

// ---------------------------------------------------------------------------------- fat-tree hops

TEST(Topology, FatTreeHopsAndLatency) {
  // 32 × 8, radix 64, 4 nodes per leaf. GPU 0 → 7 (same node): GPU–NVSwitch–GPU = 2; 0 → 8 (node 1,
  // leaf 0): GPU–leaf–GPU = 2; 0 → 32 (node 4, leaf 1): GPU–leaf–spine–leaf–GPU = 4.
  Topology t(cluster(32, 8, "fat_tree", 64));
  EXPECT_EQ(t.hops(0, 7), 2);
  EXPECT_EQ(t.link(t.path(0, 7)[0].link).kind, LinkKind::kNvlink);
  EXPECT_EQ(t.hops(0, 8), 2);
  EXPECT_EQ(t.link(t.path(0, 8)[0].link).kind, LinkKind::kNic);
  EXPECT_EQ(t.hops(0, 32), 4);
  EXPECT_EQ(t.hops(5, 5), 0);
  // Latencies match the scenario's: NVLink, one leaf, across leaves (models::NetworkModel's).
  EXPECT_NEAR(t.path_latency(0, 7), kNvlLat, kRel);
  EXPECT_NEAR(t.path_latency(0, 8), kLat, kRel);
  EXPECT_NEAR(t.path_latency(0, 32), kCross, kRel);
  // From any GPU: 7 same node (2), 24 same leaf (2), 224 other leaves (4):
  // (31·2 + 224·4) / 255 = 958/255.
  const HopStats s = t.hop_stats();
  EXPECT_EQ(s.pairs, 256 * 255);
  EXPECT_EQ(s.diameter, 4);
  EXPECT_NEAR(s.average, 958.0 / 255.0, 1e-12);
}

TEST(Topology, FatTreeDModK) {
  // 4 × 8, radix 8: link ids NVLink 0..31, NIC 32..63, uplinks 64 + leaf·4 + port. GPU 8 (node 1,
  // local 0, leaf 2) → GPU 0 (leaf 0, host id 0): port 0 mod 4 = 0 → up 64 + 8 = 72, down 64.
  Topology t(cluster(4, 8, "fat_tree", 8));
  const Path p = t.path(8, 0);
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0], (Hop{40, Direction::kForward}));
  EXPECT_EQ(p[1], (Hop{72, Direction::kForward}));
  EXPECT_EQ(p[2], (Hop{64, Direction::kBackward}));
  EXPECT_EQ(p[3], (Hop{32, Direction::kBackward}));
  // GPU 0 → GPU 15 (node 1, local 7, leaf 3, port 3, host id 15): port 15 mod 4 = 3 → spine 3.
  EXPECT_EQ(t.vertex_name(t.hop_to(t.path(0, 15)[1])), "spine3.p0");
  // Every GPU of the node is 2 hops away, every other GPU 4: (7·2 + 24·4)/31 = 110/31.
  EXPECT_NEAR(t.hop_stats().average, 110.0 / 31.0, 1e-12);
}

TEST(Topology, RailOptimizedCrossPlane) {
  // DeepSeek: GPU 0 (node 0, plane 0) → GPU 8 (node 1, plane 0, same leaf): 2 hops;
  // → GPU 9 (node 1, plane 1): IB on plane 0 to GPU 8, then NVLink to GPU 9: 4 hops;
  // → GPU 256 (node 32, plane 0, leaf 1): 4; → GPU 257 (plane 1, leaf 1): 6.
  Topology t(deepseek());
  EXPECT_EQ(t.hops(0, 8), 2);
  const Path p = t.path(0, 9);
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(t.hop_to(p[1]), t.gpu_vertex(8));
  EXPECT_EQ(t.link(p[2].link).kind, LinkKind::kNvlink);
  EXPECT_EQ(t.hops(0, 256), 4);
  EXPECT_EQ(t.hops(0, 257), 6);
  EXPECT_EQ(t.hops(0, 3), 2);
}

TEST(Topology, RailOptimizedHopAverage) {
  // 64 nodes × 8, 8 planes, radix 64: 32 nodes per leaf, 2 leaves per plane. From GPU 0: 7 on its node
  // (2 hops); 31 other nodes on its leaf: local 0 at 2, locals 1..7 at 4; 32 nodes on the other leaf:
  // 4 and 6. (7·2 + 31·(2 + 7·4) + 32·(4 + 7·6)) / 511 = (14 + 930 + 1472) / 511 = 2416/511.
  Topology t(cluster(64, 8, "rail_optimized", 64, 1.0, 8));
  const HopStats s = t.hop_stats();
  EXPECT_EQ(s.diameter, 6);
  EXPECT_NEAR(s.average, 2416.0 / 511.0, 1e-12);
}

TEST(Topology, Nvl72DomainsSpanNodes) {
  // 36 nodes × 4 GPUs, domains of 72 GPUs: 2 NVSwitch vertices (nodes 0..17 and 18..35).
  ClusterSpec c = cluster(36, 4, "fat_tree", 64);
  c.scale_up.domain_gpus = 72;
  Topology t(c);
  EXPECT_EQ(t.count(VertexKind::kNvSwitch), 2);
  EXPECT_EQ(t.vertex_name(t.hop_to(t.path(0, 71)[0])), "nvs0");
  EXPECT_EQ(t.hops(0, 71), 2);
  // GPU 72 (node 18): d = 32, r = 4 → 8 nodes per leaf; leaf 2 vs leaf 0 → 4 hops.
  EXPECT_EQ(t.hops(0, 72), 4);
  // Bisection: halves = the two domains; 72 NICs · 25 GB/s through a non-blocking tree.
  EXPECT_NEAR(t.bisection_bandwidth(), 72 * kNic, 1.0);
}

TEST(Topology, NoNvSwitchGoesThroughTheLeaf) {
  // scale_up none: GPU 0 → 1 of the same node through its leaf (2 NIC hops); 4-GPU domains inside an
  // 8-GPU node: GPU 0 → 4 likewise, GPU 0 → 3 through nvs0.
  ClusterSpec c = cluster(2, 8, "fat_tree", 64);
  c.scale_up.kind = ScaleUpKind::kNone;
  Topology t(c);
  EXPECT_EQ(t.count(VertexKind::kNvSwitch), 0);
  EXPECT_EQ(t.hops(0, 1), 2);
  EXPECT_EQ(t.link(t.path(0, 1)[0].link).kind, LinkKind::kNic);
  ClusterSpec split = cluster(2, 8, "fat_tree", 64);
  split.scale_up.domain_gpus = 4;
  Topology s(split);
  EXPECT_EQ(s.count(VertexKind::kNvSwitch), 4);
  EXPECT_EQ(s.link(s.path(0, 4)[0].link).kind, LinkKind::kNic);
  EXPECT_EQ(s.link(s.path(0, 3)[0].link).kind, LinkKind::kNvlink);
}

// ------------------------------------------------------------------------------------- bisection

TEST(Topology, FatTreeBisection) {
  // Full bisection: nodes/2 · gpus_per_node · nic = 2 · 8 · 25 GB/s = 400 GB/s.
  Topology full(cluster(4, 8, "fat_tree", 8));
  EXPECT_NEAR(full.bisection_bandwidth(), 2 * 8 * kNic, 1.0);
  EXPECT_NEAR(Topology::fat_tree_bisection(full.cluster()), 2 * 8 * kNic, 1.0);
  // 2:1: u = 8/4 = 2 up ports on each of the half's 4 leaves → 8 · 25 GB/s = 200 GB/s (halves).
  Topology over(cluster(4, 8, "fat_tree", 8, 2.0));
  EXPECT_NEAR(over.bisection_bandwidth(), 8 * kNic, 1.0);
  EXPECT_NEAR(Topology::fat_tree_bisection(over.cluster()), 8 * kNic, 1.0);
  // 32 × 8, radix 64: 16 · 8 · 25 GB/s.
  EXPECT_NEAR(Topology(cluster(32, 8, "fat_tree", 64)).bisection_bandwidth(), 128 * kNic, 1.0);
  // One node: no halves.
  EXPECT_EQ(Topology(cluster(1, 8, "fat_tree", 64)).bisection_bandwidth(), 0.0);
}

TEST(Topology, DeepSeekBisection) {
  // 128 nodes · 8 NICs · 50 GB/s = 51.2 TB/s, over the 8 planes together.
  Topology t(deepseek());
  EXPECT_NEAR(t.bisection_bandwidth(), 128 * 8 * 50e9, 1.0);
  EXPECT_NEAR(Topology::fat_tree_bisection(t.cluster()), 128 * 8 * 50e9, 1.0);
}

// ------------------------------------------------------------------------------------ link loads

TEST(Topology, AllToAllOnOversubscribedTree) {
  // 4 × 8, radix 8, 2:1: d = 4, u = 2, 8 leaves (2 per node), 2 spines. B bytes between every pair.
  // Host id = leaf·4 + local mod 4, so the up port is local mod 2. Up port p of a leaf carries its 4 GPUs'
  // bytes to the GPUs of the 3 other nodes with local mod 2 = p (12): 48 B; down the same by symmetry.
  // A NIC carries 24 B each way (the other nodes' GPUs; its own node goes over NVLink, 7 B).
  // Bound: 48 B / 25 GB/s = the analytic model's 24 B / (nic / 2).
  const double b = 1e6;
  Topology t(cluster(4, 8, "fat_tree", 8, 2.0));
  TrafficMatrix m(32);
  for (int s = 0; s < 32; ++s)
    for (int d = 0; d < 32; ++d) m(s, d) = s == d ? 0 : b;
  const LinkLoads l = t.link_loads(m);
  double uplink_max = 0, uplink_min = 1e300;
  for (int id = 0; id < t.num_links(); ++id) {
    const auto kind = t.link(id).kind;
    for (int dir = 0; dir < 2; ++dir) {
      const double bytes = l.bytes[2 * id + dir];
      if (kind == LinkKind::kUplink) {
        uplink_max = std::max(uplink_max, bytes);
        uplink_min = std::min(uplink_min, bytes);
      }
      if (kind == LinkKind::kNic) {
        EXPECT_NEAR(bytes, 24 * b, 1e-6);
      } else if (kind == LinkKind::kNvlink) {
        EXPECT_NEAR(bytes, 7 * b, 1e-6);
      }
    }
  }
  EXPECT_NEAR(uplink_max, 48 * b, 1e-6);
  EXPECT_NEAR(uplink_min, 48 * b, 1e-6);
  EXPECT_EQ(t.link(l.busiest / 2).kind, LinkKind::kUplink);
  EXPECT_NEAR(l.time_lower_bound, 48 * b / kNic, 1e-15);
  // The link-level bound is at full link rate: the analytic model with the all-to-all fractions at 1
  // and no fixed overhead.
  ClusterSpec line_rate = t.cluster();
  line_rate.scale_up.all_to_all_efficiency = line_rate.scale_out.all_to_all_efficiency = 1.0;
  line_rate.all_to_all_overhead = 0;
  models::NetworkModel net(line_rate);
  models::AllToAllBytes bytes;
  bytes.nic_out = bytes.nic_in = 24 * b;
  bytes.nvlink_out = bytes.nvlink_in = 7 * b;
  bytes.nodes = 4;
  EXPECT_NEAR(l.time_lower_bound, net.all_to_all(bytes) - net.scale_out_latency(4), 1e-15);
  // Non-blocking (radix 8, 1:1): u = 4, the up port is local mod 4, 4 GPUs × 6 destinations = 24 B:
  // uplinks no busier than the NICs, bound 24 B / nic.
  EXPECT_NEAR(Topology(cluster(4, 8, "fat_tree", 8)).link_loads(m).time_lower_bound, 24 * b / kNic, 1e-15);
}

TEST(Topology, HotSpotDestination) {
  // Every GPU sends X to GPU 0 (4 × 8, radix 8). Its NIC, backward, carries the 24 other nodes' GPUs' bytes;
  // its NVLink the 7 of its own node: all 31 X arrive. D-mod-k sends everything for GPU 0 down one
  // uplink (leaf 0, port 0 = link 64), also 24 X. Bound 24 X / 25 GB/s.
  const double x = 3e6;
  Topology t(cluster(4, 8, "fat_tree", 8));
  TrafficMatrix m(32);
  for (int s = 1; s < 32; ++s) m(s, 0) = x;
  const LinkLoads l = t.link_loads(m);
  EXPECT_NEAR(l.bytes[(Hop{32, Direction::kBackward}.directed())], 24 * x, 1e-6);
  EXPECT_NEAR(l.bytes[(Hop{0, Direction::kBackward}.directed())], 7 * x, 1e-6);
  EXPECT_NEAR(l.bytes[(Hop{64, Direction::kBackward}.directed())], 24 * x, 1e-6);
  EXPECT_NEAR(l.time_lower_bound, 24 * x / kNic, 1e-15);
  EXPECT_THROW(t.link_loads(TrafficMatrix(8)), ConfigError);
}

// ---------------------------------------------------------------------------------- export, errors

TEST(Topology, GraphvizAndSummary) {
  Topology t(cluster(4, 8, "fat_tree", 8));
  std::ostringstream os;
  t.write_graphviz(os);
  const std::string dot = os.str();
  EXPECT_EQ(dot.rfind("graph G {", 0), 0u);
  for (const char* name :
       {"gpu0.3", "gpu3.7", "nvs0", "leaf2.p0", "spine3.p0", "25 GB/s nic", "100 GB/s nvlink"})
    EXPECT_NE(dot.find(name), std::string::npos) << name;
  // One "--" per link (96) and one ";"-terminated line per vertex and link (48 + 96).
  std::size_t edges = 0, lines = 0;
  for (std::size_t at = dot.find("--"); at != std::string::npos; at = dot.find("--", at + 2)) ++edges;
  for (char ch : dot) lines += ch == ';';
  EXPECT_EQ(edges, 96u);
  EXPECT_EQ(lines, 48u + 96u);
  const std::string s = t.summary();
  EXPECT_NE(s.find("gpu 32 nvswitch 4 leaf 8 spine 4"), std::string::npos) << s;
  EXPECT_NE(s.find("nvlink 32 nic 32 uplink 32"), std::string::npos) << s;
  EXPECT_NE(s.find("diameter 4"), std::string::npos) << s;
  EXPECT_NE(s.find("bisection: 400 GB/s"), std::string::npos) << s;
}

TEST(Topology, ConfigErrors) {
  EXPECT_THROW(Topology(cluster(4, 8, "hypercube", 8)), ConfigError);
  try {
    Topology(cluster(4, 8, "hypercube", 8));
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("fat_tree, rail_optimized, dragonfly, torus"), std::string::npos);
  }
  // Two levels of radix 4 connect at most 4 leaves; 16 single-GPU nodes need 8.
  EXPECT_THROW(Topology(cluster(16, 1, "fat_tree", 4)), ConfigError);
  // 3 planes do not divide 8 GPUs; planes without NVSwitch cannot forward.
  EXPECT_THROW(Topology(cluster(4, 8, "rail_optimized", 64, 1.0, 3)), ConfigError);
  ClusterSpec none = cluster(4, 8, "rail_optimized", 64, 1.0, 8);
  none.scale_up.kind = ScaleUpKind::kNone;
  EXPECT_THROW(Topology{none}, ConfigError);
  ClusterSpec no_nic = cluster(4, 8, "fat_tree", 64);
  no_nic.scale_out.nic_bandwidth = 0;
  EXPECT_THROW(Topology{no_nic}, ConfigError);
  // One node without a NIC is fine while one NVLink domain holds all its GPUs, not with two.
  no_nic.nodes = 1;
  Topology alone(no_nic);
  EXPECT_EQ(alone.shape().kind, "none");
  EXPECT_EQ(alone.num_links(), 8);
  EXPECT_EQ(alone.hops(0, 7), 2);
  no_nic.scale_up.domain_gpus = 4;
  EXPECT_THROW(Topology{no_nic}, ConfigError);
}

}  // namespace
}  // namespace moesim::sim
