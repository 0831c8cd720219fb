#pragma once
/// \file The cluster as a graph: GPUs, NVSwitches and the scale-out fabric (fat tree, multi-plane
/// rail-optimised fat tree, dragonfly or torus) as a Boost.Graph adjacency list built from a
/// ClusterSpec, with the deterministic routing SimGrid would use (one path per GPU pair) and the
/// analyses that follow from it: hop counts, bisection bandwidth (max flow), link loads of a traffic
/// matrix, a GraphViz export and a text summary. Constructions and their sources: docs/topology.md.
/// Library moesim::topology (no SimGrid); the fabric builders, routing and analyses are defined in
/// sim/topology_builders.cpp, sim/topology_routes.cpp and sim/topology_analysis.cpp.
///
/// Units: bytes, seconds, bytes/s. Every link is full duplex: `bandwidth` is per direction.

#include <array>
#include <boost/graph/adjacency_list.hpp>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "scenarios/scenario.hpp"

namespace moesim::sim {

/// What a vertex of the cluster graph is.
enum class VertexKind : std::uint8_t {
  kGpu,       ///< one GPU (its NIC is the GPU's `nic` link)
  kNvSwitch,  ///< the NVSwitch fabric of one NVLink domain, as one vertex
  kLeaf,      ///< fat-tree edge switch (GPU NICs below it)
  kSpine,     ///< fat-tree aggregation switch
  kCore,      ///< fat-tree core switch (three levels only)
  kRouter,    ///< dragonfly router or torus node router
};

/// What a link (undirected edge, full duplex) of the cluster graph is.
enum class LinkKind : std::uint8_t {
  kNvlink,  ///< GPU ↔ NVSwitch
  kNic,     ///< GPU NIC ↔ leaf or router
  kUplink,  ///< leaf ↔ spine, spine ↔ core; dragonfly local (intra-group) links
  kGlobal,  ///< dragonfly global (inter-group) link
  kTorus,   ///< torus neighbour link between node routers
};

/// Lower-case name of a vertex kind ("gpu", "nvswitch", "leaf", "spine", "core", "router").
const char* to_string(VertexKind k);
/// Lower-case name of a link kind ("nvlink", "nic", "uplink", "global", "torus").
const char* to_string(LinkKind k);

/// Bundled vertex properties.
struct VertexProps {
  VertexKind kind = VertexKind::kGpu;
  int index = 0;   ///< GPU: global GPU id; NVSwitch: domain id; leaf/spine/core: index within its
                   ///< plane; router: global router id (torus: = node)
  int node = -1;   ///< GPU, torus router: its node; NVSwitch: first node of its domain; else -1
  int plane = -1;  ///< GPU: the plane its NIC joins; fat-tree switch: its plane; else -1
  int group = -1;  ///< three-level fat tree: pod of a leaf/spine; dragonfly: group of a router; else -1
};

/// Bundled edge properties.
struct LinkProps {
  double bandwidth = 0;  ///< bytes/s per direction
  double latency = 0;    ///< s, one traversal
  LinkKind kind = LinkKind::kNvlink;
  int id = 0;  ///< dense link id, 0 .. num_links()-1, in construction order
};

/// The cluster graph. Parallel edges are allowed (several cables between two switches).
using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::undirectedS, VertexProps, LinkProps>;

/// Which way a hop crosses a link: forward goes from the link's `link_source` to its `link_target`.
enum class Direction : std::uint8_t { kForward = 0, kBackward = 1 };

/// One hop of a route: a link and the direction it is crossed in.
struct Hop {
  int link = 0;                         ///< link id
  Direction dir = Direction::kForward;  ///< direction of travel
  /// Index of the directed link, 2·link + dir: the index into LinkLoads::bytes.
  int directed() const { return 2 * link + static_cast<int>(dir); }
  /// Same link, same direction.
  bool operator==(const Hop&) const = default;
};
/// A route: its hops in order of travel.
using Path = std::vector<Hop>;

/// The shape a ClusterSpec was turned into (fields that do not apply to the kind stay 0).
struct FabricShape {
  std::string kind;             ///< fat_tree | rail_optimized | dragonfly | torus | none (no fabric)
  int planes = 1;               ///< independent fabric planes (rail_optimized: scale_out.planes)
  int levels = 0;               ///< fat trees: 2 or 3 switch levels
  int nics_per_node = 0;        ///< NICs one node puts into one plane (gpus_per_node / planes)
  int down_ports = 0;           ///< host ports of a leaf (radix/2) or terminal ports of a dragonfly router
  int up_ports = 0;             ///< leaf up ports, radix / (2 · oversubscription)
  int nodes_per_switch = 0;     ///< nodes whose NICs share one leaf/router (0: a node spans several)
  int switches_per_node = 0;    ///< leaves/routers one node's NICs span (1 when nodes_per_switch ≥ 1)
  int leaves = 0;               ///< per plane
  int spines = 0;               ///< per plane
  int parallel_uplinks = 0;     ///< cables between one leaf and one spine
  int pods = 0;                 ///< three levels: pods of radix/2 leaves per plane
  int cores = 0;                ///< per plane
  int parallel_core_links = 0;  ///< cables between one spine and one core
  int routers = 0;              ///< dragonfly and torus
  int routers_per_group = 0;    ///< dragonfly a
  int global_ports = 0;         ///< dragonfly h, global ports per router
  int groups = 0;               ///< dragonfly groups
  int parallel_global = 0;      ///< dragonfly cables between one pair of groups
  std::array<int, 3> dims{0, 0, 0};  ///< torus extent per dimension (1 for an unused dimension)
};

/// Bytes each GPU sends to each GPU, row-major (source × destination).
struct TrafficMatrix {
  explicit TrafficMatrix(int n) : gpus(n), bytes(static_cast<std::size_t>(n) * n, 0.0) {}
  int gpus;                   ///< matrix side
  std::vector<double> bytes;  ///< bytes, [src · gpus + dst]
  double& operator()(int src, int dst) { return bytes[static_cast<std::size_t>(src) * gpus + dst]; }
  double operator()(int src, int dst) const { return bytes[static_cast<std::size_t>(src) * gpus + dst]; }
};

/// Bytes per directed link for one traffic matrix under the routing function.
struct LinkLoads {
  std::vector<double> bytes;    ///< bytes per directed link, indexed by Hop::directed()
  int busiest = -1;             ///< directed link with the largest bytes / bandwidth (-1: no traffic)
  double time_lower_bound = 0;  ///< s, max over directed links of bytes / bandwidth: no schedule of
                                ///< this traffic on these routes can finish sooner
};

/// Hop counts over all ordered pairs of distinct GPUs.
struct HopStats {
  double average = 0;      ///< links per route, mean over pairs
  int diameter = 0;        ///< links on the longest route
  std::int64_t pairs = 0;  ///< ordered pairs counted, gpus · (gpus − 1)
};

/// A cluster as a graph with deterministic routing. Immutable after construction; all queries are
/// const and thread-compatible.
class Topology {
 public:
  /// Builds the graph. Throws ConfigError for an unknown scale_out.kind (listing the registered
  /// ones) or a cluster the construction cannot wire (see docs/topology.md).
  explicit Topology(const ClusterSpec& cluster);

  /// The Boost.Graph graph; vertex descriptors are vertex ids 0 .. num_vertices()-1.
  const Graph& graph() const { return g_; }
  /// The cluster it was built from.
  const ClusterSpec& cluster() const { return c_; }
  /// Switch counts and parameters the construction chose.
  const FabricShape& shape() const { return shape_; }

  /// GPUs, nodes · gpus_per_node; GPU ids are 0 .. gpus()-1.
  int gpus() const { return c_.gpus(); }
  /// Vertices: GPUs first (vertex id = GPU id), then NVSwitches, then fabric switches/routers.
  int num_vertices() const { return static_cast<int>(boost::num_vertices(g_)); }
  /// Links (undirected, full duplex); directed links are 2 · num_links().
  int num_links() const { return static_cast<int>(links_.size()); }
  /// Vertices of one kind.
  int count(VertexKind k) const;
  /// Links of one kind.
  int count(LinkKind k) const;

  /// Vertex of GPU `gpu` (global id node · gpus_per_node + local index).
  int gpu_vertex(int gpu) const { return gpu_vertex_[gpu]; }
  /// Switch or router vertex GPU `gpu`'s NIC is cabled to (-1 without a scale-out fabric).
  int attach_vertex(int gpu) const;
  /// Fabric plane GPU `gpu`'s NIC joins.
  int plane_of(int gpu) const;
  /// Properties of vertex `v`.
  const VertexProps& vertex(int v) const { return g_[static_cast<std::size_t>(v)]; }
  /// Properties of link `id` (bandwidth bytes/s per direction, latency s).
  const LinkProps& link(int id) const { return g_[links_[id]]; }
  /// Vertex link `id` comes from as built (its forward direction goes source → target).
  int link_source(int id) const { return static_cast<int>(boost::source(links_[id], g_)); }
  /// Vertex link `id` goes to in its forward direction.
  int link_target(int id) const { return static_cast<int>(boost::target(links_[id], g_)); }
  /// Vertex a hop leaves from.
  int hop_from(Hop h) const {
    return h.dir == Direction::kForward ? link_source(h.link) : link_target(h.link);
  }
  /// Vertex a hop arrives at.
  int hop_to(Hop h) const { return h.dir == Direction::kForward ? link_target(h.link) : link_source(h.link); }
  /// Readable vertex name: gpu<node>.<local>, nvs<domain>, leaf<i>.p<plane>, spine<i>.p<plane>,
  /// core<i>.p<plane>, router<node> (torus), router<i>.g<group> (dragonfly).
  std::string vertex_name(int v) const;

  /// Route from GPU `src` to GPU `dst` (empty when equal), written into `out`. Deterministic, one
  /// path per pair: NVSwitch inside an NVLink domain; otherwise NIC, fabric, NIC with D-mod-k up-port
  /// choice (fat trees), minimal local-global-local (dragonfly) or dimension order (torus); on a
  /// multi-plane fabric a destination on another plane is reached through the GPU of the destination
  /// node on the source's plane, then NVLink (DeepSeek-V3 dispatch).
  void path(int src, int dst, Path& out) const;
  /// The same route, returned.
  Path path(int src, int dst) const;
  /// Links on the route from `src` to `dst`.
  int hops(int src, int dst) const;
  /// s, sum of link latencies on the route.
  double path_latency(int src, int dst) const;
  /// Hop counts over all ordered pairs of distinct GPUs (O(gpus²) routes).
  HopStats hop_stats() const;

  /// bytes/s, max flow from the GPUs of the first floor(nodes/2) nodes to those of the remaining
  /// nodes, every link a capacity in each direction (push-relabel, Boost.Graph). 0 for one node.
  double bisection_bandwidth() const;
  /// bytes/s, closed form of a fat tree's bisection: min(halves) · gpus_per_node · nic_bandwidth /
  /// max(1, oversubscription); exact when the halves split at leaf boundaries (Al-Fares et al. 2008).
  static double fat_tree_bisection(const ClusterSpec& cluster);

  /// Bytes on each directed link when every GPU pair sends traffic(src, dst) along path(src, dst)
  /// (the diagonal is ignored), and the resulting lower bound on completion time. Throws ConfigError
  /// unless traffic.gpus equals gpus().
  LinkLoads link_loads(const TrafficMatrix& traffic) const;

  /// The graph in GraphViz dot: vertex ids are vertex_name(), edge labels bandwidth and kind.
  void write_graphviz(std::ostream& os) const;
  /// A few lines: vertices and links by kind, shape, hop average and diameter, bisection.
  std::string summary() const;

 private:
  // The graph and its NVLink domains: sim/topology.cpp.
  int add_vertex(VertexProps p);
  int add_link(int u, int v, double bandwidth, double latency, LinkKind kind);
  void build_scale_up();
  // The scale-out fabrics: sim/topology_builders.cpp.
  void build_fat_tree();        // one plane, scale_out.levels levels
  void build_rail_optimized();  // scale_out.planes planes
  void build_fat_tree_planes(int planes, int levels);
  void build_dragonfly();
  void build_torus();
  // Routing: sim/topology_routes.cpp (the analyses: sim/topology_analysis.cpp).
  void fabric_path(int src, int dst, Path& out) const;
  int forwarding_gpu(int src, int dst) const;
  int domain_of(int gpu) const { return nvswitch_of_.empty() ? -1 : gpu / domain_gpus_; }

  ClusterSpec c_;
  Graph g_;
  FabricShape shape_;
  std::vector<Graph::edge_descriptor> links_;  // by link id
  std::vector<int> gpu_vertex_;
  std::vector<int> nvswitch_of_;  // NVSwitch vertex per domain (empty: no scale-up fabric)
  std::vector<int> nvlink_;       // NVLink link id per GPU (-1: none)
  std::vector<int> nic_;          // NIC link id per GPU (-1: no fabric)
  int domain_gpus_ = 0;
  double switch_link_latency_ = 0;  // s, one switch-to-switch link

  // Fat trees: per GPU its leaf (within its plane) and D-mod-k destination id (leaf · down + port).
  std::vector<int> leaf_of_, host_id_;
  std::vector<int> uplink_;    // [(plane · leaves + leaf) · up + port] → link id (leaf → spine)
  std::vector<int> spine_up_;  // [((plane · pods + pod) · up + j) · radix/2 + q] → link (spine → core)
  // Dragonfly: per GPU its router; per group the router-pair local links; global links per group pair.
  std::vector<int> router_of_;  // router index per GPU (dragonfly and torus)
  std::vector<int> router_vertex_;
  std::vector<int> local_;   // [(group · a + i) · a + j] → link id, i < j
  std::vector<int> global_;  // [(gi · groups + gj) · parallel + c] → link id, gi < gj
  // Torus: per node and dimension the link to its + neighbour (for extent 2 only coordinate 0 owns it).
  std::vector<std::array<int, 3>> torus_plus_;
};

}  // namespace moesim::sim
