// The analytic network model (models/network.cpp) on hand-built clusters. Expected values follow the
// textbook formulas, written out in the comment above each assertion:
//   ring all-reduce  2(n-1)/n · bytes / bw + 2(n-1) · latency   (nccl-tests bus-bandwidth factor)
//   reduce-scatter / all-gather  (n-1)/n · bytes / bw + (n-1) · latency
//   hierarchical across nodes: intra-node phase over NVLink with the local count l, then the same ring
//   formula over the N nodes for a shard bytes / l over each GPU's NIC.

#include "models/network.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <utility>

namespace moesim::models {
namespace {

constexpr double kNvl = 100e9;  // bytes/s per GPU per direction
constexpr double kNvlLat = 2e-6;
constexpr double kNic = 50e9;
constexpr double kNicLat = 3e-6;
constexpr double kNicLatCross = 5e-6;

// `nodes` nodes of 8 GPUs on NVSwitch, one 50 GB/s NIC per GPU, 64-port switches.
ClusterSpec cluster(int nodes, const char* kind = "fat_tree", double oversub = 1.0) {
  ClusterSpec c;
  c.name = "test";
  c.nodes = nodes;
  c.gpus_per_node = 8;
  c.scale_up.kind = ScaleUpKind::kNvswitch;
  c.scale_up.bandwidth = kNvl;
  c.scale_up.latency = kNvlLat;
  c.scale_up.domain_gpus = 8;
  c.scale_out.kind = topology_kinds().get(kind);
  c.scale_out.nic_bandwidth = kNic;
  c.scale_out.latency = kNicLat;
  c.scale_out.latency_cross = kNicLatCross;
  c.scale_out.oversubscription = oversub;
  c.scale_out.radix = 64;
  return c;
}

constexpr double kRel = 1e-12;

TEST(Network, TrivialGroupsCostNothing) {
  NetworkModel net(cluster(4));
  EXPECT_EQ(net.all_reduce(1e9, Group{1, 8}), 0.0);
  EXPECT_EQ(net.all_reduce(0.0, Group{8, 8}), 0.0);
  EXPECT_EQ(net.reduce_scatter(1e9, Group{1, 1}), 0.0);
  EXPECT_EQ(net.all_gather(0.0, Group{8, 8}), 0.0);
  EXPECT_EQ(net.send_recv(0.0, true), 0.0);
  EXPECT_EQ(net.all_to_all(AllToAllBytes{}), 0.0);
}

TEST(Network, GroupNodes) {
  // ceil(size / per_node).
  EXPECT_EQ((Group{8, 8}).nodes(), 1);
  EXPECT_EQ((Group{9, 8}).nodes(), 2);
  EXPECT_EQ((Group{64, 8}).nodes(), 8);
  EXPECT_EQ((Group{4, 1}).nodes(), 4);
}

TEST(Network, AllReduceInsideOneNvlinkDomain) {
  NetworkModel net(cluster(4));
  const double bytes = 1e9;
  // n = 8: 2·7/8 · 1e9 / 100e9 = 0.0175 s, + 2·7 · 2 µs = 28 µs → 0.017528 s.
  EXPECT_NEAR(net.all_reduce(bytes, Group{8, 8}), 0.017528, 0.017528 * kRel);
  // n = 4 inside a node: 2·3/4 · 1e9 / 100e9 = 0.015 s + 2·3 · 2 µs = 12 µs.
  EXPECT_NEAR(net.all_reduce(bytes, Group{4, 8}), 0.015012, 0.015012 * kRel);
  // n = 2: 2·1/2 · 0.01 = 0.01 s + 2 · 2 µs.
  EXPECT_NEAR(net.all_reduce(bytes, Group{2, 8}), 0.010004, 0.010004 * kRel);
}

TEST(Network, ReduceScatterAndAllGatherInsideOneDomain) {
  NetworkModel net(cluster(4));
  const double bytes = 2e9;
  // n = 8: 7/8 · 2e9 / 100e9 = 0.0175 s + 7 · 2 µs = 14 µs.
  const double want = 0.0175 + 14e-6;
  EXPECT_NEAR(net.reduce_scatter(bytes, Group{8, 8}), want, want * kRel);
  EXPECT_NEAR(net.all_gather(bytes, Group{8, 8}), want, want * kRel);
  // An all-reduce is a reduce-scatter plus an all-gather.
  EXPECT_NEAR(net.all_reduce(bytes, Group{8, 8}), 2 * want, 2 * want * kRel);
}

TEST(Network, AllReduceHierarchicalAcrossNodes) {
  NetworkModel net(cluster(4));
  const double bytes = 1.6e9;
  // 32 GPUs, 8 per node, 4 nodes (inside one leaf: 64-port leaf, 32 host ports / 8 NICs = 4 nodes,
  // so full NIC rate and same-leaf latency).
  // intra: 2·7/8 · 1.6e9 / 100e9 = 0.028 s + 2·7 · 2 µs = 28 µs
  // inter: shard 1.6e9 / 8 = 0.2e9; 2·3/4 · 0.2e9 / 50e9 = 0.006 s + 2·3 · 3 µs = 18 µs
  const double want = 0.028 + 28e-6 + 0.006 + 18e-6;
  EXPECT_NEAR(net.all_reduce(bytes, Group{32, 8}), want, want * kRel);
  // A strided data-parallel group: one GPU per node on 4 nodes, no NVLink phase.
  // 2·3/4 · 1.6e9 / 50e9 = 0.048 s + 2·3 · 3 µs.
  const double strided = 0.048 + 18e-6;
  EXPECT_NEAR(net.all_reduce(bytes, Group{4, 1}), strided, strided * kRel);
}

TEST(Network, ReduceScatterHierarchicalAcrossNodes) {
  NetworkModel net(cluster(4));
  const double bytes = 1.6e9;
  // intra: 7/8 · 1.6e9 / 100e9 = 0.014 s + 7 · 2 µs; inter: 3/4 · 0.2e9 / 50e9 = 0.003 s + 3 · 3 µs.
  const double want = 0.014 + 14e-6 + 0.003 + 9e-6;
  EXPECT_NEAR(net.reduce_scatter(bytes, Group{32, 8}), want, want * kRel);
  EXPECT_NEAR(net.all_gather(bytes, Group{32, 8}), want, want * kRel);
  // 2 GPUs per node over 4 nodes: intra 1/2 · 1.6e9/100e9 = 0.008 s + 2 µs;
  // inter shard 0.8e9: 3/4 · 0.8e9 / 50e9 = 0.012 s + 3 · 3 µs.
  const double two = 0.008 + 2e-6 + 0.012 + 9e-6;
  EXPECT_NEAR(net.reduce_scatter(bytes, Group{8, 2}), two, two * kRel);
}

TEST(Network, NodesPerLeaf) {
  // Fat tree: a 64-port leaf gives 32 ports to hosts; a node brings all its 8 NICs → 4 nodes per leaf.
  EXPECT_EQ(NetworkModel(cluster(16)).nodes_per_leaf(), 4);
  // Rail-optimised: one NIC per node per leaf → radix / 2 = 32 nodes per leaf.
  EXPECT_EQ(NetworkModel(cluster(16, "rail_optimized")).nodes_per_leaf(), 32);
  ClusterSpec c = cluster(16, "rail_optimized");
  c.scale_out.radix = 40;
  EXPECT_EQ(NetworkModel(c).nodes_per_leaf(), 20);
}

TEST(Network, ScaleOutBandwidthWithOversubscription) {
  // 2:1 oversubscribed fat tree, 4 nodes per leaf.
  NetworkModel net(cluster(16, "fat_tree", 2.0));
  // One node or a group inside one leaf: the NIC rate.
  EXPECT_EQ(net.scale_out_bandwidth(1), kNic);
  EXPECT_EQ(net.scale_out_bandwidth(4), kNic);
  // 16 nodes: a GPU spreads its traffic over 15 peers, 3 of them on its own leaf, so 12/15 = 0.8
  // leaves the leaf and meets the 2:1 up-links: factor max(1, 2 · 0.8) = 1.6 → 50e9 / 1.6 = 31.25e9.
  EXPECT_NEAR(net.scale_out_bandwidth(16), 31.25e9, 31.25e9 * kRel);
  // 8 nodes: 4 of 7 peers off-leaf: factor 2 · 4/7 = 8/7 → 50e9 · 7/8 = 43.75e9.
  EXPECT_NEAR(net.scale_out_bandwidth(8), 43.75e9, 43.75e9 * kRel);
  // 5 nodes: 1 of 4 peers off-leaf: 2 · 0.25 = 0.5 < 1, the NIC is the bottleneck.
  EXPECT_EQ(net.scale_out_bandwidth(5), kNic);
  // Latency: inside a leaf vs across leaves.
  EXPECT_EQ(net.scale_out_latency(4), kNicLat);
  EXPECT_EQ(net.scale_out_latency(5), kNicLatCross);
  // Non-oversubscribed: full rate at any size.
  EXPECT_EQ(NetworkModel(cluster(16)).scale_out_bandwidth(16), kNic);
  // Rail-optimised with 2:1: 32 nodes per leaf, so 16 nodes never leave the leaf.
  EXPECT_EQ(NetworkModel(cluster(16, "rail_optimized", 2.0)).scale_out_bandwidth(16), kNic);
}

TEST(Network, OversubscriptionSlowsCrossLeafAllReduce) {
  NetworkModel net(cluster(16, "fat_tree", 2.0));
  const double bytes = 1.6e9;
  // 16 nodes, one GPU each (strided group): 2·15/16 · 1.6e9 / 31.25e9 + 2·15 · 5 µs.
  const double want = 2.0 * 15 / 16 * 1.6e9 / 31.25e9 + 30 * 5e-6;
  EXPECT_NEAR(net.all_reduce(bytes, Group{16, 1}), want, want * kRel);
}

TEST(Network, TorusBisectionLimit) {
  // Torus with no oversubscription: 16 nodes → factor max(1, 16/8) = 2 → 25e9.
  NetworkModel net(cluster(16, "torus"));
  EXPECT_NEAR(net.scale_out_bandwidth(16), 25e9, 25e9 * kRel);
  // 4 nodes: 4/8 < 1 → full NIC.
  EXPECT_EQ(net.scale_out_bandwidth(4), kNic);
}

TEST(Network, SendRecv) {
  NetworkModel net(cluster(4));
  // Across nodes: 1e8 / 50e9 = 2 ms + 3 µs; inside: 1e8 / 100e9 = 1 ms + 2 µs.
  EXPECT_NEAR(net.send_recv(1e8, true), 2e-3 + 3e-6, 1e-15);
  EXPECT_NEAR(net.send_recv(1e8, false), 1e-3 + 2e-6, 1e-15);
}

TEST(Network, AllToAllIsMaxOfFabricsWithLatency) {
  // Round figures for the all-to-all's sustained fractions and fixed cost: NVLink 0.8 · 100 = 80 GB/s,
  // NIC 0.5 · 50 = 25 GB/s, 1 µs per collective.
  ClusterSpec c = cluster(4);
  c.scale_up.all_to_all_efficiency = 0.8;
  c.scale_out.all_to_all_efficiency = 0.5;
  c.all_to_all_overhead = 1e-6;
  NetworkModel net(c);
  AllToAllBytes b;
  b.nic_out = 1e8;
  b.nic_in = 2e8;
  b.nvlink_out = 3e8;
  b.nvlink_in = 1e8;
  b.nodes = 4;
  // 1 µs + max(NIC: max(1e8, 2e8) / 25e9 = 8 ms + 3 µs, NVLink: 3e8 / 80e9 = 3.75 ms + 2 µs).
  EXPECT_NEAR(net.all_to_all(b), 1e-6 + 8e-3 + 3e-6, 1e-15);
  // Its NIC leg alone, what a send on the same NIC delays: the same 1 µs + 8 ms + 3 µs.
  EXPECT_NEAR(net.all_to_all_nic(b), 1e-6 + 8e-3 + 3e-6, 1e-15);
  // Make NVLink the bottleneck: 8e8 / 80e9 = 10 ms + 2 µs; the NIC leg stays.
  b.nvlink_in = 8e8;
  EXPECT_NEAR(net.all_to_all(b), 1e-6 + 10e-3 + 2e-6, 1e-15);
  EXPECT_NEAR(net.all_to_all_nic(b), 1e-6 + 8e-3 + 3e-6, 1e-15);
  // NVLink only (single node): 3e8 / 80e9 + 2 µs.
  AllToAllBytes local;
  local.nvlink_out = 3e8;
  EXPECT_NEAR(net.all_to_all(local), 1e-6 + 3.75e-3 + 2e-6, 1e-15);
  EXPECT_EQ(net.all_to_all_nic(local), 0.0);
  // NIC only across 16 nodes of a 2:1 fat tree: 2e8 / (0.5 · 31.25e9) + 5 µs (cross-leaf latency).
  c.nodes = 16;
  c.scale_out.oversubscription = 2.0;
  NetworkModel over(c);
  AllToAllBytes wide;
  wide.nic_out = 2e8;
  wide.nodes = 16;
  EXPECT_NEAR(over.all_to_all(wide), 1e-6 + 2e8 / 15.625e9 + 5e-6, 1e-15);
  // The discrete-event engine carries bytes / efficiency at full link rate: 1/0.5 and 1/0.8.
  EXPECT_DOUBLE_EQ(net.all_to_all_wire_scale(true), 2.0);
  EXPECT_DOUBLE_EQ(net.all_to_all_wire_scale(false), 1.25);
  // A relaying NVLink leg runs at relay_efficiency instead: 4e8 / (0.4 · 100e9) = 10 ms + 2 µs, and the
  // discrete-event engine scales its NVLink bytes by 1/0.4.
  c.scale_up.relay_efficiency = 0.4;
  const NetworkModel relay(c);
  AllToAllBytes fwd;
  fwd.nvlink_in = 4e8;
  fwd.nic_out = 1e8;
  fwd.nodes = 4;
  fwd.relay = true;
  EXPECT_NEAR(relay.all_to_all(fwd), 1e-6 + 10e-3 + 2e-6, 1e-15);
  fwd.relay = false;
  EXPECT_NEAR(relay.all_to_all(fwd), 1e-6 + 5e-3 + 2e-6, 1e-15);
  EXPECT_DOUBLE_EQ(relay.all_to_all_wire_scale(false, true), 2.5);
  EXPECT_DOUBLE_EQ(relay.all_to_all_wire_scale(false, false), 1.25);
  EXPECT_DOUBLE_EQ(relay.all_to_all_wire_scale(true, true), 2.0);
}

// DeepEP normal kernels on H800 (shared/reference/data/kernels/deepep_h800.csv, README @3b1045db lines
// 19-22): 4096 tokens per GPU, top-8 of 256 experts in at most 4 nodes, dispatch 7408 B (FP8 + scales),
// combine 14336 B (BF16), published as "logical" GB/s (own GPU / own node included). The cluster is
// DeepSeek's: 160 GB/s NVLink (3.33 µs), one 50 GB/s NIC per GPU (2.8 µs), rail-optimised, 64 ports;
// the all-to-all fractions and overhead are the defaults.
TEST(Network, DeepEpNormalKernelRows) {
  ClusterSpec c;
  c.nodes = 256;
  c.gpus_per_node = 8;
  c.scale_up.bandwidth = 160e9;
  c.scale_up.latency = 3.33e-6;
  c.scale_out.kind = TopologyKind::kRailOptimized;
  c.scale_out.nic_bandwidth = 50e9;
  c.scale_out.latency = 2.8e-6;
  c.scale_out.latency_cross = 3.7e-6;
  c.scale_out.radix = 64;
  const NetworkModel net(c);
  const double T = 4096, fp8 = 7408, bf16 = 14336, lat_nvl = 3.33e-6 + 1.66e-6, lat_nic = 2.8e-6 + 1.66e-6;

  // EP8 (one node): a rank is hit with p = 1 − (7/8)^8 (32 of 256 experts). It receives 7 · p · T
  // copies over NVLink at 0.85 · 160 GB/s; DeepEP counts 8 · p · T (its own included).
  const double p8 = 1 - std::pow(7.0 / 8, 8);
  for (auto [bytes, published] : {std::pair{fp8, 153.0}, std::pair{bf16, 158.0}}) {
    AllToAllBytes b;
    b.nvlink_in = b.nvlink_out = 7 * p8 * T * bytes;
    const double t = net.all_to_all(b);
    EXPECT_NEAR(t, b.nvlink_in / (0.85 * 160e9) + lat_nvl, 1e-12);
    // 0.85 was taken from these two rows (mean of 0.837 and 0.864): each within 3 %.
    EXPECT_NEAR(8 * p8 * T * bytes / t / 1e9, published, 0.03 * published);
  }
  // EP32 (4 nodes; DeepEP's test keeps min(nodes, 4) groups, so no limit): a node is hit with
  // q = 1 − (3/4)^8; 3 · q · T copies leave over the NIC at 0.87 · 50 GB/s, DeepEP counts 4 · q · T.
  // The NVLink forwarding (4 · q · T arrivals, each to 8 · p32 / q ranks, 7/8 of them other GPUs,
  // p32 = 1 − (31/32)^8), a relay at 0.76 · 160 GB/s, stays below it.
  const double q32 = 1 - std::pow(0.75, 8), p32 = 1 - std::pow(31.0 / 32, 8);
  for (auto [bytes, published] : {std::pair{fp8, 58.0}, std::pair{bf16, 57.0}}) {
    AllToAllBytes b;
    b.nic_in = b.nic_out = 3 * q32 * T * bytes;
    b.nvlink_in = b.nvlink_out = 4 * q32 * (8 * p32 / q32) * 7.0 / 8 * T * bytes;
    b.nodes = 4;
    b.relay = true;
    ASSERT_LT(b.nvlink_in / (0.76 * 160e9), b.nic_out / (0.87 * 50e9));
    const double t = net.all_to_all(b);
    EXPECT_NEAR(t, b.nic_out / (0.87 * 50e9) + lat_nic, 1e-12);
    EXPECT_NEAR(4 * q32 * T * bytes / t / 1e9, published, 0.03 * published);
  }
  // EP16 (2 nodes, the input of relay_efficiency): q = 1 − (1/2)^8 and a rank is hit with
  // p = 1 − (15/16)^8; the NVLink forwarding, 2 · q · (8p/q) · 7/8 = 14 p copies per token, is the
  // bottleneck: 14 p · T · bytes / (0.76 · 160 GB/s). DeepEP counts 2 · q · T RDMA copies: published
  // 43 GB/s both ways; 0.76 was taken from these rows (0.764 and 0.763): each within 1 %. Priced at the
  // intranode fraction (no relay) the forwarding would be 0.85 / 0.76 faster: 47.8 GB/s, +11 %.
  const double q16 = 1 - std::pow(0.5, 8), p16 = 1 - std::pow(15.0 / 16, 8);
  for (double bytes : {fp8, bf16}) {
    AllToAllBytes b16;
    b16.nic_in = b16.nic_out = q16 * T * bytes;
    b16.nvlink_in = b16.nvlink_out = 14 * p16 * T * bytes;
    b16.nodes = 2;
    b16.relay = true;
    const double t16 = net.all_to_all(b16);
    EXPECT_NEAR(t16, b16.nvlink_out / (0.76 * 160e9) + lat_nvl, 1e-12);
    EXPECT_NEAR(2 * q16 * T * bytes / t16 / 1e9, 43.0, 0.01 * 43.0);
    b16.relay = false;
    EXPECT_NEAR(2 * q16 * T * bytes / net.all_to_all(b16) / 1e9, 47.8, 0.01 * 47.8);
  }
}

}  // namespace
}  // namespace moesim::models
