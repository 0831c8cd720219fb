#pragma once
/// \file Internals of the SimGrid platform shared by sim/netsim.cpp, sim/netsim_aggregate.cpp and the
/// step engine (sim/des_runner.cpp, sim/step_sim.cpp): the engine state of this process, the platform
/// parts and the folding of GPU-to-GPU flows into SimGrid communications. Include only from sim/*.cpp
/// (it pulls in SimGrid headers).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

// SimGrid's C headers need xbt/base.h first: keep this order.
// clang-format off
#include <simgrid/s4u.hpp>
// clang-format on

#include "sim/netsim.hpp"
#include "sim/topology.hpp"

namespace moesim::sim::internal {
namespace sg4 = simgrid::s4u;

// One split-duplex link of a platform part. Directed link id: 2 · index + (forward ? 0 : 1).
struct PartLink {
  std::string from, to;  // endpoint names (forward direction goes from → to)
  LinkKind kind = LinkKind::kNic;
  double bandwidth = 0;  // bytes/s per direction
  double latency = 0;    // s
  sg4::SplitDuplexLink* sg = nullptr;
};

struct PartHop {
  int link = 0;
  bool forward = true;
  int directed() const { return 2 * link + (forward ? 0 : 1); }
};
using PartPath = std::vector<PartHop>;

// Per-GPU platform: host = GPU id, link = topology link id, route = Topology::path.
struct GpuPart {
  std::vector<sg4::Host*> hosts;
  std::vector<PartLink> links;
  std::int64_t routes = 0;
};

// Contracted platform for node-pair aggregation. Fabric hosts are GPU classes: the GPUs of one node
// cabled to one switch (a node's NICs in one plane); switches of the same kind, plane and pod that are
// interchangeable for routing (spines, cores) become one vertex; parallel links between two contracted
// vertices become one link with the summed bandwidth. NVLink stays per GPU (one zone per domain).
struct AggPart {
  std::vector<sg4::Host*> gpu_hosts;    // by GPU (nullptr: GPU in no NVLink domain)
  std::vector<sg4::Host*> class_hosts;  // by class
  std::vector<int> class_of_gpu;        // -1 without a NIC
  std::vector<int> class_rep;           // lowest GPU of each class
  std::vector<std::string> class_name;
  std::vector<int> cvertex;  // topology vertex → contracted vertex (-1: not contracted)
  std::vector<std::string> cvertex_name;
  std::vector<int> clink_of;      // topology link → contracted link (-1: NVLink or self-loop)
  std::vector<int> clink_source;  // contracted link → contracted source vertex
  std::vector<int> nvlink_link;   // topology NVLink link → part link id
  std::vector<PartLink> links;    // contracted fabric links, then NVLinks, then pooled NVLink domains
  // Pooled NVLink domains (fold_flows with pool_nvlink): per domain two hosts joined by one link whose
  // bandwidth is the sum of the domain's NVLinks (per direction).
  std::vector<int> domain_of_gpu;  // -1: not in a simulated NVLink domain
  std::vector<sg4::Host*> pool_out, pool_in;
  std::vector<int> pool_link;  // domain → link id in `links`
  std::int64_t routes = 0;
  int hosts = 0;
};

struct EngineState {
  sg4::Engine* engine = nullptr;
  std::string cluster_key, cluster_name;
  double tcp_gamma = 0;
  bool latency_weighted = false;
  int max_hosts = 0;
  std::unique_ptr<Topology> topo;
  std::optional<GpuPart> gpu;
  std::optional<AggPart> agg;
  std::string gpu_missing, agg_missing;  // why a part was not built
  std::vector<char> used;                // GPUs on the platform (SimOptions::gpus)
  int simulations = 0;
  bool broken = false;
};

// One SimGrid communication.
struct Comm {
  sg4::Host* src = nullptr;
  sg4::Host* dst = nullptr;
  double bytes = 0;
  double start = 0;    // s, posted
  double latency = 0;  // s, route latency
  PartPath route;
  sg4::CommPtr activity;
  double finish = 0;  // s, relative to the simulation's start
};

extern EngineState* g_state;

/// SimGrid's direction of a part hop.
sg4::LinkInRoute::Direction sg_dir(bool forward);
/// Creates split-duplex link `name` of `l` in `zone` (latency 0 unless `with_latency`), sealed.
sg4::SplitDuplexLink* make_link(sg4::NetZone* zone, const std::string& name, const PartLink& l,
                                bool with_latency);

/// Builds the aggregated part (sim/netsim_aggregate.cpp) for the `used` GPUs under `root`.
AggPart build_agg_part(const Topology& t, sg4::NetZone* root, bool with_latency,
                       const std::vector<char>& used);
/// Sizes of the zones the aggregated part needs for the `used` GPUs: largest NVLink domain and largest
/// plane, in hosts.
std::pair<int, int> agg_zone_sizes(const Topology& t, const std::vector<char>& used);
/// Positions of the first and last NIC hops of a path; nullopt when it crosses no NIC.
std::optional<std::pair<std::size_t, std::size_t>> nic_span(const Topology& t, const Path& path);
/// Fabric route between GPU classes ca and cb on the contracted links (empty: no fabric between them).
PartPath class_route(const Topology& t, const AggPart& a, int ca, int cb);
/// NVLink route between GPUs src and dst on the aggregated part's NVLinks.
PartPath nvlink_route(const Topology& t, const AggPart& a, int src, int dst);

/// Creates the engine and the platform on first use; afterwards checks that the call matches them.
EngineState& engine_for(const ClusterSpec& cluster, const SimOptions& o);
/// Checks SimOptions (precision, max_hosts).
void check_options(const SimOptions& o);
/// Sum of the latencies of a route's links.
double route_latency(const std::vector<PartLink>& links, const PartPath& r);
/// Folds GPU-to-GPU flows into SimGrid communications on the per-GPU part (one each) or, with
/// `aggregate`, on the aggregated part (NVLink legs per GPU pair, fabric parts per GPU-class pair and
/// start time). comms_of (optional) receives, per flow, the communications it was folded into. Hosts,
/// bytes, start, latency and route are set; activities are not created.
/// With `pool_nvlink` (aggregated part only), every NVLink-only flow and NVLink leg of a domain is
/// folded into one communication over the domain's pooled link: exact when the domain's GPUs carry
/// equal NVLink traffic, otherwise it hides the busiest GPU's NVLink (docs/des.md).
std::vector<Comm> fold_flows(EngineState& s, const std::vector<FlowSpec>& flows, bool aggregate,
                             std::vector<std::vector<int>>* comms_of, bool pool_nvlink = false);
/// Lower bound of the time `comms` take: the latest launch (start + route latency) plus the busiest
/// directed link's bytes over its bandwidth. Scales surf/precision.
double lower_bound_duration(const std::vector<PartLink>& links, const std::vector<Comm>& comms);
/// The SimGrid settings in force, for the platform part a simulation used (aggregated or per GPU).
EngineSettings engine_settings(const EngineState& s, bool aggregated, double expected_duration,
                               int simulation_index);
/// Per-link usage of finished communications.
std::vector<LinkUsage> link_usage(const std::vector<PartLink>& links, const std::vector<Comm>& comms,
                                  double makespan);

}  // namespace moesim::sim::internal
