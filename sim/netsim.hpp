#pragma once
/// \file NetSim: a flow-level discrete-event simulation of network transfers on a cluster, run by
/// SimGrid 3.32 (S4U, no actors). One SimGrid host per GPU, one split-duplex link per link of the
/// cluster graph (sim/topology.hpp) with its bandwidth and latency, and explicit routes equal to
/// Topology::path. Bandwidth is shared max-min fairly among the flows crossing a link; the sharing
/// is re-solved whenever a flow starts or ends.
///
/// Units: bytes, seconds, bytes/s. SimGrid headers stay inside sim/*.cpp.
///
/// One simulation engine per process. SimGrid's Engine is a process singleton whose platform is
/// frozen once a simulation has run, so the first call to simulate_flows() creates the engine and
/// builds the platform of its cluster; later calls in the same process reuse them, measuring every
/// time from the clock at their own start (clock deltas), and must name the same cluster and the
/// same engine settings (tcp_gamma, latency_weighted_sharing, max_hosts) or they throw ConfigError.
/// Relative times of a reused engine agree with a fresh process to rounding (about 1e-15 of the
/// absolute clock), not bit for bit. Not thread-safe: run parallel simulations as processes.
///
/// Cost. SimGrid 3.32 keeps every host-to-host Comm in the maestro's activity list and scans it at
/// each completion (CommImpl::finish, fixed in 3.34), and re-solves max-min at each completion: time
/// grows as flows². Measured on 2 cores (RelWithDebInfo): uniform all-to-all of 256 GPUs (65,280
/// flows) 38 s; random (±50%) of 128 GPUs (16,256 flows) 15 s; aggregated per node pair and plane,
/// random traffic on 8-plane rail fabrics: 128 GPUs (3,712 flows) 0.07 s, 256 GPUs 0.9 s, 512 GPUs
/// 49 s. A 2048-GPU all-to-all is out of reach even aggregated (522k node-pair-plane flows): simulate
/// a representative group.

#include <cstdint>
#include <string>
#include <vector>

#include "scenarios/scenario.hpp"
#include "sim/topology.hpp"

namespace moesim::sim {

/// One transfer between two GPUs.
struct FlowSpec {
  int src = 0;       ///< sending GPU, global id node · gpus_per_node + local index
  int dst = 0;       ///< receiving GPU
  double bytes = 0;  ///< payload, bytes (rounded to whole bytes)
  double start = 0;  ///< s, when the sender posts the transfer, from the start of this simulation
};

/// When one flow completed.
struct FlowResult {
  double finish = 0;  ///< s, when its last byte arrived (same clock as FlowSpec::start): start + route
                      ///< latency + transfer under sharing. A flow with src == dst or 0 bytes needs
                      ///< no network: finish = start (+ route latency when bytes are 0 and src ≠ dst)
};

/// Load of one direction of one simulated link.
struct LinkUsage {
  std::string name;  ///< "from>to" with the topology's vertex names (aggregated: class names)
  LinkKind kind = LinkKind::kNic;
  double bandwidth = 0;      ///< bytes/s of this direction
  double bytes = 0;          ///< bytes that crossed it
  double busy_time = 0;      ///< s, time during which at least one flow was transferring across it
  double busy_fraction = 0;  ///< busy_time / makespan
  double utilisation = 0;    ///< bytes / (bandwidth · makespan): mean share of capacity used
};

/// The SimGrid settings a simulation ran with: recorded with every result.
struct EngineSettings {
  std::string simgrid_version;   ///< SIMGRID_VERSION_STRING of the headers the library was built with
  std::string network_model;     ///< `network/model` (pinned: CM02, plain max-min without TCP factors)
  std::string network_optim;     ///< `network/optim` (Lazy)
  bool crosstraffic = false;     ///< `network/crosstraffic` (pinned off: no 5% reverse ACK load)
  double tcp_gamma = 0;          ///< `network/TCP-gamma`, bytes: per-flow cap gamma / (2 · route latency)
  double weight_s = 0;           ///< `network/weight-S` (CM02: 0, no bandwidth term in the sharing weight)
  double surf_precision = 0;     ///< `surf/precision`, s: completions closer than this are merged
  double maxmin_precision = 0;   ///< `maxmin/precision`, bytes and bytes/s
  double expected_duration = 0;  ///< s, lower bound the precision was scaled to (latest launch + busiest
                                 ///< directed link's bytes / bandwidth)
  bool latency_weighted_sharing = false;  ///< see SimOptions::latency_weighted_sharing
  bool aggregated = false;                ///< flows were aggregated per node pair and plane
  int hosts = 0;                          ///< SimGrid hosts of the platform part used
  int links = 0;                          ///< split-duplex links of the platform part used
  std::int64_t routes = 0;                ///< explicit routes of the platform part used
  int simulation_index = 0;               ///< 0 for the first simulation of this process, then 1, 2, …
  double clock_offset = 0;                ///< s, SimGrid clock at the start of this simulation (0 when fresh)
};

/// How to simulate.
struct SimOptions {
  /// Aggregate flows that cross the scale-out fabric into one flow per (source node, destination
  /// node, plane) and start time carrying their summed bytes, on a contracted platform (one host per
  /// node and plane, the NICs of a node in a plane as one link, parallel switches of a level as one
  /// switch, parallel cables as one link); NVLink legs and NVLink-only flows are simulated apart, per
  /// GPU pair. A flow's finish is the latest finish of the simulated flows it was folded into.
  /// Measured against per-flow runs (makespan): uniform all-to-all 0.000% (4×4 GPUs on a 2:1 fat tree,
  /// 8×4 on 2 rail planes; tests); random ±50% pair sizes −8.7% (64 GPUs) and −4.5% (128 GPUs) on a
  /// one-plane fat tree, where pooling a node's 8 NICs into one link hides the busiest NIC, but +0.009%
  /// on an 8-plane rail fabric (128 GPUs), where a node has one NIC per plane. Individual finishes
  /// differ more (NVLink legs are not rate-coupled to their fabric part: up to 25% on NVLink-only
  /// flows of the rail test). Also assumes perfect spreading over interchangeable switches.
  bool aggregate_node_pairs = false;
  /// `surf/precision` = this × the expected duration (s). SimGrid merges completions closer than
  /// surf/precision, trading solver steps for accuracy (guide: 1e-5 s on a 75 µs all-to-all cost −21%).
  /// Measured on a random (±50%) all-to-all of 128 GPUs against 1e-6: 1e-3 → −0.21% in 4.8 s, 1e-4 →
  /// −0.009% in 15 s, 1e-5 → −0.0005% in 37 s, 1e-6 → 73 s.
  double precision_fraction = 1e-4;
  /// false (default): plain max-min fairness. CM02 weights each flow's share by its route latency (a
  /// TCP RTT bias, network_cm02.cpp: sharing_penalty = latency), which RDMA fabrics do not show, so
  /// links get zero latency in SimGrid and each flow is started after its route latency instead
  /// (same uncontended time: latency + bytes / bandwidth). true: latencies on the links, CM02's bias.
  bool latency_weighted_sharing = false;
  /// `network/TCP-gamma`, bytes. Huge: no TCP window cap (4 MiB, the default, caps a 450 GB/s link
  /// with 10 µs of latency at 209 GB/s). Only matters with latency_weighted_sharing.
  double tcp_gamma = 1e18;
  /// Largest full zone (hosts) built with explicit routes: routes, memory and build time grow with
  /// hosts². Measured (fat tree of 8-GPU nodes): 256 hosts 0.05 s / 42 MB, 512 hosts 0.2 s / 70 MB,
  /// 1024 hosts 0.75 s / 172 MB (1M routes); 2048 would need about 4M routes and 0.6 GB. Beyond it
  /// per-GPU simulation throws ConfigError; aggregation needs zones of only one NVLink domain and of
  /// the node classes of one plane. The first call of a process builds every part that fits.
  int max_hosts = 1024;
  /// GPUs the platform needs (empty: every GPU of the cluster). Hosts and routes are built only for
  /// these (routes grow with hosts²), so a simulation of a few representative groups of a large cluster
  /// stays small. Fixed by the first simulation of a process; later flows must stay within it.
  std::vector<int> gpus;
  /// Compute per-link usage (SimResult::links).
  bool link_usage = true;
};

/// Outcome of one simulation.
struct SimResult {
  std::vector<FlowResult> flows;  ///< one per input flow, in input order
  double makespan = 0;            ///< s, latest finish (0 without flows)
  std::vector<LinkUsage> links;   ///< directed links that carried bytes, by link id then direction
  int simulated_flows = 0;        ///< SimGrid communications started (after aggregation)
  EngineSettings settings;
};

/// Simulates `flows` on `cluster` (see the file comment for the one-engine-per-process rule). Throws
/// ConfigError for a flow naming a GPU outside the cluster, negative or non-finite bytes or start, a
/// cluster whose platform exceeds options.max_hosts, or a cluster / setting different from the one
/// this process's engine was built for; moesim::Error if SimGrid fails.
SimResult simulate_flows(const ClusterSpec& cluster, const std::vector<FlowSpec>& flows,
                         const SimOptions& options = {});

/// The flows of one all-to-all(v): traffic(src, dst) bytes from every GPU to every other GPU (zero
/// entries and the diagonal are skipped), all posted at `start` (s), in row-major order.
std::vector<FlowSpec> all_to_all_flows(const TrafficMatrix& traffic, double start = 0);

}  // namespace moesim::sim
