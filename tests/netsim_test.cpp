// NetSim (sim/netsim.cpp): SimGrid flow simulations checked against values derived by hand. ctest runs
// every TEST in its own process, which SimGrid needs: its Engine is a process singleton.
//
// Equations (CM02 = plain max-min bandwidth sharing, latency paid once before the transfer):
//   one flow of b bytes on a path of bottleneck bandwidth B and latency L:   T = L + b / B
//   n equal flows sharing that bottleneck (max-min fair):                    T = L + n · b / B
//   all-to-all on an oversubscribed fat tree: the leaf up-links carry the bytes that leave a leaf, so
//   T ≈ L_cross + bytes leaving the leaf / up-link capacity of the leaf, when that exceeds the NIC term
//   hot spot: every GPU sends b to GPU 0:                                     T ≈ L + Σ NIC bytes / NIC bw

#include "sim/netsim.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "models/network.hpp"
#include "scenarios/error.hpp"
#include "tests/support/subprocess.hpp"

namespace moesim::sim {
namespace {

// `nodes` × `gpn` GPUs on an NVSwitch per node; scale-out `kind` with NICs of `nic` bytes/s.
ClusterSpec cluster(int nodes, int gpn, double nic = 25e9, const char* kind = "fat_tree",
                    double oversub = 1.0, int radix = 16, int planes = 1) {
  ClusterSpec c;
  c.name = "netsim-test";
  c.nodes = nodes;
  c.gpus_per_node = gpn;
  c.scale_up.kind = ScaleUpKind::kNvswitch;
  c.scale_up.bandwidth = 200e9;
  c.scale_up.latency = 1e-6;
  c.scale_out.kind = topology_kinds().get(kind);
  c.scale_out.nic_bandwidth = nic;
  c.scale_out.latency = 2e-6;
  c.scale_out.latency_cross = 3e-6;
  c.scale_out.oversubscription = oversub;
  c.scale_out.planes = planes;
  c.scale_out.levels = 2;
  c.scale_out.radix = radix;
  return c;
}

// Two GPUs joined by NVLink only: the route is GPU → NVSwitch → GPU, two links of `bw` bytes/s and
// `lat`/2 each, i.e. one bottleneck of `bw` and a route latency `lat`.
ClusterSpec one_link(int gpus, double bw, double lat) {
  ClusterSpec c = cluster(1, gpus, 0.0);
  c.scale_up.bandwidth = bw;
  c.scale_up.latency = lat;
  return c;
}

// The test fat tree: 4 nodes × 4 GPUs, radix 16 (8 host ports per leaf → 2 nodes per leaf, 2 leaves),
// 2:1 oversubscribed (radix / (2 · 2) = 4 up ports per leaf at the NIC rate, to one spine).
constexpr double kNic = 25e9;
ClusterSpec oversubscribed_fat_tree() {
  return cluster(4, 4, kNic, "fat_tree", 2.0, 16);
}

std::vector<FlowSpec> uniform_all_to_all(int gpus, double bytes) {
  TrafficMatrix m(gpus);
  for (int s = 0; s < gpus; ++s)
    for (int d = 0; d < gpus; ++d)
      if (s != d) m(s, d) = bytes;
  return all_to_all_flows(m);
}

void print_settings(const SimResult& r) {
  const EngineSettings& e = r.settings;
  std::printf(
      "[settings] %s network/model:%s optim:%s crosstraffic:%d TCP-gamma:%g weight-S:%g "
      "surf/precision:%g s (expected %g s) maxmin/precision:%g latency_weighted:%d aggregated:%d "
      "hosts:%d links:%d routes:%lld simulated_flows:%d\n",
      e.simgrid_version.c_str(), e.network_model.c_str(), e.network_optim.c_str(), e.crosstraffic,
      e.tcp_gamma, e.weight_s, e.surf_precision, e.expected_duration, e.maxmin_precision,
      e.latency_weighted_sharing, e.aggregated, e.hosts, e.links, static_cast<long long>(e.routes),
      r.simulated_flows);
}

TEST(NetSim, OneFlowOneLinkCm02) {
  // T = L + b / B = 1e-6 + 1e9 / 100e9 = 0.010001 s (the guide's CM02 figure; LV08 would give 0.010322).
  const SimResult r = simulate_flows(one_link(2, 100e9, 1e-6), {{0, 1, 1e9, 0.0}});
  print_settings(r);
  ASSERT_EQ(r.flows.size(), 1u);
  EXPECT_NEAR(r.flows[0].finish, 0.010001, 0.010001 * 1e-3);
  EXPECT_DOUBLE_EQ(r.makespan, r.flows[0].finish);
  EXPECT_EQ(r.settings.network_model, "CM02");
  EXPECT_FALSE(r.settings.crosstraffic);
  EXPECT_GE(r.settings.tcp_gamma, 1e12);
  EXPECT_EQ(r.settings.weight_s, 0.0);
  EXPECT_GT(r.settings.surf_precision, 0.0);
  EXPECT_NEAR(r.settings.surf_precision, SimOptions{}.precision_fraction * 0.010001, 1e-15);
  // Both directed links of the route carried the gigabyte and were busy for the transfer.
  ASSERT_EQ(r.links.size(), 2u);
  for (const LinkUsage& u : r.links) {
    EXPECT_EQ(u.bytes, 1e9);
    EXPECT_EQ(u.kind, LinkKind::kNvlink);
    EXPECT_NEAR(u.busy_time, 0.01, 1e-9);
    EXPECT_NEAR(u.utilisation, 1e9 / (100e9 * r.makespan), 1e-12);
  }
}

TEST(NetSim, OneFlowOneLinkWithLatencyOnTheLinks) {
  // Same figure with the latency on SimGrid's links (CM02's own latency handling).
  SimOptions o;
  o.latency_weighted_sharing = true;
  const SimResult r = simulate_flows(one_link(2, 100e9, 1e-6), {{0, 1, 1e9, 0.0}}, o);
  EXPECT_NEAR(r.flows[0].finish, 0.010001, 0.010001 * 1e-3);
  EXPECT_TRUE(r.settings.latency_weighted_sharing);
}

TEST(NetSim, TwoFlowsShareALinkMaxMinFair) {
  // GPUs 1 and 2 both send b = 1 GB to GPU 0: they share GPU 0's NVLink (B = 100 GB/s) at B/2 each,
  // T = L + 2 · b / B = 1e-6 + 0.02 s for both.
  const double b = 1e9, bw = 100e9, lat = 1e-6;
  const SimResult r = simulate_flows(one_link(3, bw, lat), {{1, 0, b, 0.0}, {2, 0, b, 0.0}});
  const double expected = lat + 2 * b / bw;
  for (const FlowResult& f : r.flows) EXPECT_NEAR(f.finish, expected, expected * 1e-3);
  // GPU 0's NVLink into the GPU carried 2 GB and was saturated for the whole run.
  bool found = false;
  for (const LinkUsage& u : r.links)
    if (u.bytes == 2 * b) {
      found = true;
      EXPECT_NEAR(u.utilisation, 2 * b / (bw * r.makespan), 1e-12);
      EXPECT_NEAR(u.busy_fraction, (r.makespan - lat) / r.makespan, 1e-9);
    }
  EXPECT_TRUE(found);
}

TEST(NetSim, LateStartSharesFromItsStartOnly) {
  // Flow A (1 GB) starts at 0, flow B (1 GB) at 5 ms on the same NVLink into GPU 0 (100 GB/s, 1 µs).
  // A runs alone from 1 µs to 5.001 ms (0.5 GB), then both share: A's remaining 0.5 GB at 50 GB/s
  // ends at 15.001 ms; B has 0.5 GB left then and finishes alone at 100 GB/s: 20.001 ms.
  const SimResult r = simulate_flows(one_link(3, 100e9, 1e-6), {{1, 0, 1e9, 0.0}, {2, 0, 1e9, 5e-3}});
  EXPECT_NEAR(r.flows[0].finish, 15.001e-3, 15.001e-3 * 1e-6);
  EXPECT_NEAR(r.flows[1].finish, 20.001e-3, 20.001e-3 * 1e-6);
}

TEST(NetSim, AllToAllOnOversubscribedFatTree) {
  // 16 GPUs, b per ordered pair. Leaf 0 holds nodes 0–1 (8 GPUs); each sends b to the 8 GPUs of leaf 1:
  // 64·b leave the leaf over 4 up-links of 25 GB/s = 100 GB/s (D-mod-k spreads them 16 flows per
  // link). Each NIC carries only 12·b at 25 GB/s, NVLink 3·b at 200 GB/s, so the up-links decide:
  //   T_hand = L_cross + 64 · b / (4 · 25e9) = 3 µs + 10.24 ms for b = 16 MB.
  const double b = 16e6;
  const ClusterSpec c = oversubscribed_fat_tree();
  const SimResult r = simulate_flows(c, uniform_all_to_all(c.gpus(), b));
  print_settings(r);
  const double hand = c.scale_out.latency_cross + 64 * b / (4 * kNic);

  // The analytic model for the same traffic: per GPU 12·b over the NIC, 3·b over NVLink, 4 nodes.
  models::AllToAllBytes bytes;
  bytes.nic_out = bytes.nic_in = 12 * b;
  bytes.nvlink_out = bytes.nvlink_in = 3 * b;
  bytes.nodes = 4;
  const double analytic = models::NetworkModel(c).all_to_all(bytes);
  std::printf(
      "[all-to-all 2:1 fat tree] DES %.6f ms  hand %.6f ms (DES %+.3f%%)  analytic %.6f ms "
      "(analytic vs DES %+.3f%%)\n",
      r.makespan * 1e3, hand * 1e3, 100 * (r.makespan / hand - 1), analytic * 1e3,
      100 * (analytic / r.makespan - 1));
  RecordProperty("des_s", std::to_string(r.makespan));
  RecordProperty("hand_s", std::to_string(hand));
  RecordProperty("analytic_s", std::to_string(analytic));
  EXPECT_NEAR(r.makespan, hand, 0.05 * hand);

  // The busiest links are the up-links, each carrying 16 flows of b.
  double up_bytes = 0;
  for (const LinkUsage& u : r.links)
    if (u.kind == LinkKind::kUplink) {
      EXPECT_DOUBLE_EQ(u.bytes, 16 * b);
      up_bytes += u.bytes;
    }
  EXPECT_DOUBLE_EQ(up_bytes, 2 * 2 * 64 * b);  // 2 leaves × (up + down) × 64·b
}

TEST(NetSim, HotSpotDestinationIsBoundByItsNic) {
  // All 15 other GPUs send b to GPU 0: 3 over NVLink (3·b at 200 GB/s), 12 through GPU 0's NIC. The
  // 8 from leaf 1 also share one up-link (8·b at 25 GB/s) but GPU 0's NIC carries more:
  //   T_hand = 12 · b / 25e9 = 7.68 ms for b = 16 MB (+ a few µs of latency).
  const double b = 16e6;
  const ClusterSpec c = oversubscribed_fat_tree();
  std::vector<FlowSpec> flows;
  for (int s = 1; s < c.gpus(); ++s) flows.push_back({s, 0, b, 0.0});
  const SimResult r = simulate_flows(c, flows);
  const double hand = 12 * b / kNic;
  models::AllToAllBytes bytes;
  bytes.nic_in = 12 * b;
  bytes.nvlink_in = 3 * b;
  bytes.nodes = 4;
  const double analytic = models::NetworkModel(c).all_to_all(bytes);
  std::printf(
      "[hot spot] DES %.6f ms  hand %.6f ms (DES %+.3f%%)  analytic %.6f ms (analytic vs DES %+.3f%%)\n",
      r.makespan * 1e3, hand * 1e3, 100 * (r.makespan / hand - 1), analytic * 1e3,
      100 * (analytic / r.makespan - 1));
  EXPECT_NEAR(r.makespan, hand, 0.05 * hand);
  // NVLink senders finish early: 3 flows share GPU 0's NVLink at 200 GB/s.
  EXPECT_LT(r.flows[0].finish, 3 * b / 200e9 + 1e-5);
}

// GPU 4 (node 1, same leaf, route latency 2 µs) and GPU 8 (node 2, other leaf, 3 µs) each send b to
// GPU 0 and share its NIC (25 GB/s); nothing else binds (the cross flow's up-link is otherwise idle).
std::vector<FlowSpec> unequal_latency_pair(double b) {
  return {{4, 0, b, 0.0}, {8, 0, b, 0.0}};
}

TEST(NetSim, UnequalRouteLatenciesShareFairlyByDefault) {
  // Plain max-min: 12.5 GB/s each until the first ends, so both end near L + 2·b / 25e9 = 1.28 ms.
  const double b = 16e6;
  const SimResult r = simulate_flows(oversubscribed_fat_tree(), unequal_latency_pair(b));
  const double fair = 2 * b / kNic;
  std::printf("[sharing, default] same-leaf %.6f ms, cross-leaf %.6f ms (fair %.6f ms)\n",
              r.flows[0].finish * 1e3, r.flows[1].finish * 1e3, fair * 1e3);
  for (const FlowResult& f : r.flows) EXPECT_NEAR(f.finish, fair, 0.002 * fair);
}

TEST(NetSim, LatencyWeightedSharingReproducesCm02Bias) {
  // CM02 weights shares by 1 / route latency: 3:2 for the 2 µs and 3 µs routes, so the same-leaf flow
  // runs at 15 GB/s and ends at b / 15e9 = 1.067 ms; the cross flow then finishes alone at 2·b / 25e9.
  const double b = 16e6;
  SimOptions o;
  o.latency_weighted_sharing = true;
  const SimResult r = simulate_flows(oversubscribed_fat_tree(), unequal_latency_pair(b), o);
  std::printf("[sharing, latency-weighted] same-leaf %.6f ms, cross-leaf %.6f ms\n", r.flows[0].finish * 1e3,
              r.flows[1].finish * 1e3);
  EXPECT_NEAR(r.flows[0].finish, b / 15e9, 0.01 * b / 15e9);
  EXPECT_NEAR(r.flows[1].finish, 2 * b / kNic, 0.01 * 2 * b / kNic);
}

void expect_aggregation_matches(const ClusterSpec& c, double b, const char* label) {
  const std::vector<FlowSpec> flows = uniform_all_to_all(c.gpus(), b);
  const SimResult per_flow = simulate_flows(c, flows);
  SimOptions agg;
  agg.aggregate_node_pairs = true;
  const SimResult aggregated = simulate_flows(c, flows, agg);
  print_settings(aggregated);
  double worst = 0;
  for (std::size_t i = 0; i < flows.size(); ++i)
    worst = std::max(worst, std::fabs(aggregated.flows[i].finish / per_flow.flows[i].finish - 1));
  std::printf(
      "[aggregation %s] per-flow %.6f ms (%d flows)  aggregated %.6f ms (%d flows)  makespan %+.4f%%  "
      "worst flow %.4f%%\n",
      label, per_flow.makespan * 1e3, per_flow.simulated_flows, aggregated.makespan * 1e3,
      aggregated.simulated_flows, 100 * (aggregated.makespan / per_flow.makespan - 1), 100 * worst);
  EXPECT_NEAR(aggregated.makespan, per_flow.makespan, 0.01 * per_flow.makespan);
  EXPECT_LT(aggregated.simulated_flows, per_flow.simulated_flows);
  EXPECT_TRUE(aggregated.settings.aggregated);
  EXPECT_EQ(aggregated.settings.simulation_index, 1);
}

TEST(NetSim, NodePairAggregationMatchesPerFlowOnFatTree) {
  // Uniform all-to-all on the 2:1 fat tree: 240 flows become 4·3 node pairs + 4·12 NVLink pairs.
  // Measured: 10.243 ms both ways (difference below 1e-4%), worst single flow 0.0%.
  expect_aggregation_matches(oversubscribed_fat_tree(), 16e6, "2:1 fat tree 4x4");
}

TEST(NetSim, NodePairAggregationMatchesPerFlowOnRailPlanes) {
  // 8 nodes × 4 GPUs on 2 rail planes (GPU i on plane i mod 2), radix 8: 4 nodes per leaf, 2 leaves per
  // plane. Cross-plane pairs go over the source's plane and are forwarded over NVLink at the destination.
  // Measured: 4.482 ms both ways (992 → 240 simulated flows); single flows differ by up to 25% (NVLink-only
  // flows compete with forwarding legs that, aggregated, are no longer held back by their fabric part).
  expect_aggregation_matches(cluster(8, 4, kNic, "rail_optimized", 1.0, 8, 2), 4e6, "rail 8x4 2 planes");
}

// Bytes of a result's numbers, for bit-for-bit comparison.
std::string fingerprint(const SimResult& r) {
  std::string out;
  const auto put = [&](double v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); };
  for (const FlowResult& f : r.flows) put(f.finish);
  put(r.makespan);
  for (const LinkUsage& u : r.links) {
    out += u.name;
    put(u.bytes);
    put(u.busy_time);
  }
  return out;
}

std::vector<FlowSpec> uneven_flows(int gpus) {
  // Deterministic uneven all-to-all(v): sizes 1–8 MB from a fixed pattern, some starting at 50 µs.
  std::vector<FlowSpec> flows;
  for (int s = 0; s < gpus; ++s)
    for (int d = 0; d < gpus; ++d)
      if (s != d) flows.push_back({s, d, 1e6 * (1 + (s * 7 + d * 3) % 8), (s + d) % 3 == 0 ? 50e-6 : 0.0});
  return flows;
}

TEST(NetSim, DeterministicAcrossFreshProcesses) {
  // The same flows simulated in two fresh processes (fork before any engine exists) give the same bytes.
  const ClusterSpec c = oversubscribed_fat_tree();
  const auto flows = uneven_flows(c.gpus());
  std::vector<std::string> outputs;
  for (int run = 0; run < 2; ++run) {
    const test_support::ChildOutput child =
        test_support::run_in_child([&] { return fingerprint(simulate_flows(c, flows)); });
    ASSERT_TRUE(child.ok()) << "run " << run << ": " << child.failure;
    outputs.push_back(child.bytes);
  }
  EXPECT_FALSE(outputs[0].empty());
  EXPECT_EQ(outputs[0], outputs[1]);
}

TEST(NetSim, EngineReuseMeasuresFromItsOwnStart) {
  // A second simulation in one process reuses the engine and platform and reports times from its own
  // start: the same flows give the same results up to the rounding of the absolute clock.
  const ClusterSpec c = oversubscribed_fat_tree();
  const auto flows = uneven_flows(c.gpus());
  const SimResult first = simulate_flows(c, flows);
  const SimResult second = simulate_flows(c, flows);
  EXPECT_EQ(first.settings.simulation_index, 0);
  EXPECT_EQ(second.settings.simulation_index, 1);
  EXPECT_EQ(first.settings.clock_offset, 0.0);
  EXPECT_GE(second.settings.clock_offset, first.makespan);
  ASSERT_EQ(first.flows.size(), second.flows.size());
  double worst = 0;
  for (std::size_t i = 0; i < flows.size(); ++i) {
    EXPECT_NEAR(second.flows[i].finish, first.flows[i].finish, 1e-12 * second.settings.clock_offset + 1e-15);
    worst = std::max(worst, std::fabs(second.flows[i].finish - first.flows[i].finish));
  }
  std::printf("[reuse] makespan %.9f ms, largest difference %.3g s at clock offset %.6f ms\n",
              first.makespan * 1e3, worst, second.settings.clock_offset * 1e3);
  // Another cluster or another fixed setting in the same process is refused with a clear error.
  EXPECT_THROW(simulate_flows(cluster(2, 4), {{0, 5, 1e6, 0.0}}), ConfigError);
  SimOptions other;
  other.latency_weighted_sharing = true;
  EXPECT_THROW(simulate_flows(c, flows, other), ConfigError);
  // The engine still works after a refused call.
  EXPECT_NEAR(simulate_flows(c, flows).makespan, first.makespan, 1e-12 * 1.0 + 1e-15);
}

TEST(NetSim, PlatformBeyondMaxHostsIsAConfigError) {
  SimOptions o;
  o.max_hosts = 8;  // the 16-GPU full zone would need 16 hosts
  try {
    simulate_flows(oversubscribed_fat_tree(), {{0, 1, 1.0, 0.0}}, o);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("max_hosts = 8"), std::string::npos) << e.what();
  }
  // Aggregated, the same cluster needs only NVLink domains of 4 GPUs and 4 node hosts per plane.
  o.aggregate_node_pairs = true;
  const SimResult r = simulate_flows(oversubscribed_fat_tree(), {{0, 15, 1e6, 0.0}}, o);
  EXPECT_GT(r.makespan, 0.0);
  // Per-GPU simulation was not built in this process: asking for it now is refused.
  o.aggregate_node_pairs = false;
  EXPECT_THROW(simulate_flows(oversubscribed_fat_tree(), {{0, 1, 1.0, 0.0}}, o), ConfigError);
}

TEST(NetSim, BadFlowsAreConfigErrors) {
  const ClusterSpec c = oversubscribed_fat_tree();
  EXPECT_THROW(simulate_flows(c, {{0, 16, 1.0, 0.0}}), ConfigError);
  EXPECT_THROW(simulate_flows(c, {{-1, 0, 1.0, 0.0}}), ConfigError);
  EXPECT_THROW(simulate_flows(c, {{0, 1, -1.0, 0.0}}), ConfigError);
  EXPECT_THROW(simulate_flows(c, {{0, 1, NAN, 0.0}}), ConfigError);
  EXPECT_THROW(simulate_flows(c, {{0, 1, 1.0, -1.0}}), ConfigError);
  // Degenerate flows need no network: a self-send finishes at its start, an empty one after the latency.
  const SimResult r = simulate_flows(c, {{3, 3, 1e6, 1e-3}, {0, 15, 0.0, 0.0}, {}});
  EXPECT_EQ(r.flows[0].finish, 1e-3);
  EXPECT_NEAR(r.flows[1].finish, c.scale_out.latency_cross, 1e-15);
  EXPECT_EQ(r.simulated_flows, 0);
}

TEST(NetSim, AllToAllFlowsFromAMatrix) {
  TrafficMatrix m(3);
  m(0, 1) = 5;
  m(1, 1) = 7;  // diagonal: skipped
  m(2, 0) = 9;
  const auto flows = all_to_all_flows(m, 2e-6);
  ASSERT_EQ(flows.size(), 2u);
  EXPECT_EQ(flows[0].src, 0);
  EXPECT_EQ(flows[0].dst, 1);
  EXPECT_EQ(flows[0].bytes, 5);
  EXPECT_EQ(flows[1].src, 2);
  EXPECT_EQ(flows[1].start, 2e-6);
}

}  // namespace
}  // namespace moesim::sim
