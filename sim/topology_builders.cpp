// The four scale-out fabrics of the cluster graph (docs/topology.md), each after its source.
#include <algorithm>
#include <cmath>
#include <utility>

#include "sim/topology.hpp"
#include "sim/topology_internal.hpp"

namespace moesim::sim {
namespace {

using internal::config_error;

// Largest divisor m of n with m · count ≤ limit; 0 if even m = 1 does not fit.
int largest_divisor_within(int n, int count, int limit) {
  for (int m = n; m >= 1; --m)
    if (n % m == 0 && static_cast<long long>(m) * count <= limit) return m;
  return 0;
}

// Cabling of hosts to switches that never splits a node across a switch unless a node has more NICs
// than a switch has host ports: with r NICs per node and d host ports per switch, floor(d/r) whole
// nodes share a switch (spare ports stay empty), else each node takes ceil(r/d) switches of its own.
struct Cabling {
  int nodes_per_switch = 0;
  int switches_per_node = 1;
  int switches = 0;
  Cabling(int nodes, int r, int d) {
    if (d >= r) {
      nodes_per_switch = d / r;
      switches = (nodes + nodes_per_switch - 1) / nodes_per_switch;
    } else {
      switches_per_node = (r + d - 1) / d;
      switches = nodes * switches_per_node;
    }
  }
  // Switch and port of NIC `k` (0..r-1) of node `n`.
  std::pair<int, int> attach(int n, int k, int r, int d) const {
    if (nodes_per_switch > 0) return {n / nodes_per_switch, (n % nodes_per_switch) * r + k};
    return {n * switches_per_node + k / d, k % d};
  }
};

}  // namespace

void Topology::build_fat_tree() {
  build_fat_tree_planes(1, c_.scale_out.levels);
}

void Topology::build_rail_optimized() {
  build_fat_tree_planes(c_.scale_out.planes, c_.scale_out.levels);
}

// Fat tree after Al-Fares, Loukissas & Vahdat, "A scalable, commodity data center network
// architecture", SIGCOMM 2008: radix-k switches, a leaf gives k/2 ports to hosts and k/(2o) to spines;
// three levels group k/2 leaves and their spines into pods under a core layer. Switch counts are the
// fewest that wire the given nodes. Multi-plane: DeepSeek-V3 report §3.1 and "Insights into
// DeepSeek-V3" (ISCA'25) §5, an 8-plane two-layer fat tree, each GPU–NIC pair on its own plane.
void Topology::build_fat_tree_planes(int planes, int levels) {
  const auto& so = c_.scale_out;
  const int gpn = c_.gpus_per_node, k = so.radix;
  if (k < 2) config_error("scale_out.radix: expected at least 2 ports, found " + std::to_string(k));
  if (levels != 2 && levels != 3)
    config_error("scale_out.levels: expected 2 or 3, found " + std::to_string(levels));
  if (so.oversubscription < 1)
    config_error("scale_out.oversubscription: expected ≥ 1, found " +
                 internal::number_text(so.oversubscription));
  if (planes < 1 || gpn % planes != 0)
    config_error("scale_out.planes: expected a divisor of gpus_per_node (" + std::to_string(gpn) +
                 "), found " + std::to_string(planes));
  if (planes > 1 && (nvswitch_of_.empty() || std::min(domain_gpus_, gpn) < planes))
    config_error("scale_out.planes: " + std::to_string(planes) +
                 " planes need NVLink domains of at least as many GPUs to forward between planes");
  const int d = k / 2, u = std::max(1, static_cast<int>(std::floor(k / (2 * so.oversubscription) + 1e-9)));
  const int r = gpn / planes;
  const Cabling cab(c_.nodes, r, d);
  const int leaves = cab.switches;
  int spines = 0, m = 0, pods = 0, cores = 0, mc = 0;
  if (leaves > 1 && levels == 2) {
    m = largest_divisor_within(u, leaves, k);
    if (m == 0)
      config_error(std::to_string(leaves) + " leaves per plane exceed a two-level fat tree of radix " +
                   std::to_string(k) + " (at most " + std::to_string(k) + "); use scale_out.levels 3");
    spines = u / m;
  } else if (leaves > 1) {
    pods = (leaves + d - 1) / d;
    spines = pods * u;
    m = 1;
    if (pods > 1) {
      mc = largest_divisor_within(d, pods, k);
      if (mc == 0)
        config_error(std::to_string(pods) + " pods per plane exceed a three-level fat tree of radix " +
                     std::to_string(k) + " (at most " + std::to_string(k) + ")");
      cores = u * (d / mc);
    }
  }
  shape_.planes = planes;
  shape_.levels = levels;
  shape_.nics_per_node = r;
  shape_.down_ports = d;
  shape_.up_ports = u;
  shape_.nodes_per_switch = cab.nodes_per_switch;
  shape_.switches_per_node = cab.switches_per_node;
  shape_.leaves = leaves;
  shape_.spines = spines;
  shape_.parallel_uplinks = m;
  shape_.pods = pods;
  shape_.cores = cores;
  shape_.parallel_core_links = mc;

  std::vector<int> leaf_v, spine_v, core_v;
  for (int p = 0; p < planes; ++p) {
    for (int i = 0; i < leaves; ++i)
      leaf_v.push_back(add_vertex({VertexKind::kLeaf, i, -1, p, pods ? i / d : -1}));
    for (int i = 0; i < spines; ++i)
      spine_v.push_back(add_vertex({VertexKind::kSpine, i, -1, p, pods ? i / u : -1}));
    for (int i = 0; i < cores; ++i) core_v.push_back(add_vertex({VertexKind::kCore, i, -1, p, -1}));
  }
  leaf_of_.assign(c_.gpus(), 0);
  host_id_.assign(c_.gpus(), 0);
  for (int gpu = 0; gpu < c_.gpus(); ++gpu) {
    const int local = gpu % gpn, p = local % planes;
    const auto [leaf, port] = cab.attach(gpu / gpn, local / planes, r, d);
    leaf_of_[gpu] = leaf;
    host_id_[gpu] = leaf * d + port;
    nic_[gpu] = add_link(gpu_vertex_[gpu], leaf_v[p * leaves + leaf], so.nic_bandwidth, so.latency / 2,
                         LinkKind::kNic);
  }
  // Every switch port runs at the NIC rate; up port `port` of a leaf goes to spine port mod spines (two
  // levels, `m` cables per leaf–spine pair) or to spine `port` of its pod (three levels).
  if (spines > 0) {
    uplink_.assign(static_cast<std::size_t>(planes) * leaves * u, -1);
    for (int p = 0; p < planes; ++p)
      for (int l = 0; l < leaves; ++l)
        for (int port = 0; port < u; ++port) {
          const int s = levels == 2 ? port % spines : (l / d) * u + port;
          uplink_[(p * leaves + l) * u + port] =
              add_link(leaf_v[p * leaves + l], spine_v[p * spines + s], so.nic_bandwidth,
                       switch_link_latency_, LinkKind::kUplink);
        }
  }
  // Spine j of every pod reaches the core group j; up port q goes to core q mod (d/mc) of the group.
  if (cores > 0) {
    const int group = d / mc;
    spine_up_.assign(static_cast<std::size_t>(planes) * pods * u * d, -1);
    for (int p = 0; p < planes; ++p)
      for (int pod = 0; pod < pods; ++pod)
        for (int j = 0; j < u; ++j)
          for (int q = 0; q < d; ++q)
            spine_up_[((p * pods + pod) * u + j) * d + q] =
                add_link(spine_v[p * spines + pod * u + j], core_v[p * cores + j * group + q % group],
                         so.nic_bandwidth, switch_link_latency_, LinkKind::kUplink);
  }
}

// Dragonfly after Kim, Dally, Scott & Abts, "Technology-driven, highly-scalable dragonfly topology",
// ISCA 2008: routers of radix k = p + (a-1) + h, balanced a = 2p = 2h, so h = p = floor((k+1)/4).
void Topology::build_dragonfly() {
  const auto& so = c_.scale_out;
  if (so.radix < 3)
    config_error("scale_out.radix: a dragonfly router needs at least 3 ports, found " +
                 std::to_string(so.radix));
  const int h = std::max(1, (so.radix + 1) / 4), p = h, a = 2 * h, r = c_.gpus_per_node;
  const Cabling cab(c_.nodes, r, p);
  const int routers = cab.switches, groups = (routers + a - 1) / a;
  int m = 0;
  if (groups > 1) {
    if (groups - 1 > a * h)
      config_error(std::to_string(groups) + " dragonfly groups exceed a·h + 1 = " +
                   std::to_string(a * h + 1) + " for radix " + std::to_string(so.radix));
    m = std::max(1, a * h / (groups - 1));
  }
  shape_.nics_per_node = r;
  shape_.down_ports = p;
  shape_.nodes_per_switch = cab.nodes_per_switch;
  shape_.switches_per_node = cab.switches_per_node;
  shape_.routers = routers;
  shape_.routers_per_group = a;
  shape_.global_ports = h;
  shape_.groups = groups;
  shape_.parallel_global = m;
  for (int i = 0; i < routers; ++i)
    router_vertex_.push_back(add_vertex({VertexKind::kRouter, i, -1, -1, i / a}));
  router_of_.assign(c_.gpus(), 0);
  for (int gpu = 0; gpu < c_.gpus(); ++gpu) {
    router_of_[gpu] = cab.attach(gpu / r, gpu % r, r, p).first;
    nic_[gpu] = add_link(gpu_vertex_[gpu], router_vertex_[router_of_[gpu]], so.nic_bandwidth, so.latency / 2,
                         LinkKind::kNic);
  }
  const auto size = [&](int g) { return std::min(a, routers - g * a); };
  local_.assign(static_cast<std::size_t>(groups) * a * a, -1);
  for (int g = 0; g < groups; ++g)
    for (int i = 0; i < size(g); ++i)
      for (int j = i + 1; j < size(g); ++j)
        local_[(g * a + i) * a + j] = add_link(router_vertex_[g * a + i], router_vertex_[g * a + j],
                                               so.nic_bandwidth, switch_link_latency_, LinkKind::kUplink);
  // Global port slot q = c·(G-1) + offset of the peer group, dealt round-robin over the group's routers:
  // at most h global ports per router and m cables between every pair of groups.
  global_.assign(static_cast<std::size_t>(groups) * groups * std::max(1, m), -1);
  for (int gi = 0; gi < groups; ++gi)
    for (int gj = gi + 1; gj < groups; ++gj)
      for (int cc = 0; cc < m; ++cc) {
        const int qi = cc * (groups - 1) + (gj - gi - 1),
                  qj = cc * (groups - 1) + (gi - gj - 1 + groups) % groups;
        global_[(gi * groups + gj) * m + cc] =
            add_link(router_vertex_[gi * a + qi % size(gi)], router_vertex_[gj * a + qj % size(gj)],
                     so.nic_bandwidth, switch_link_latency_, LinkKind::kGlobal);
      }
}

// k-ary n-cube (Dally & Towles, "Principles and Practices of Interconnection Networks", ch. 5): one
// router per node, 3D when the node count is a perfect cube, otherwise the most square 2D X × Y.
void Topology::build_torus() {
  const int n = c_.nodes;
  const int cube = static_cast<int>(std::lround(std::cbrt(n)));
  if (cube >= 2 && cube * cube * cube == n) {
    shape_.dims = {cube, cube, cube};
  } else {
    int x = static_cast<int>(std::sqrt(static_cast<double>(n)));
    while (n % x != 0) --x;
    shape_.dims = {x, n / x, 1};
  }
  shape_.nics_per_node = c_.gpus_per_node;
  shape_.nodes_per_switch = 1;
  shape_.switches_per_node = 1;
  shape_.routers = n;
  for (int i = 0; i < n; ++i) router_vertex_.push_back(add_vertex({VertexKind::kRouter, i, i, -1, -1}));
  router_of_.assign(c_.gpus(), 0);
  for (int gpu = 0; gpu < c_.gpus(); ++gpu) {
    router_of_[gpu] = gpu / c_.gpus_per_node;
    nic_[gpu] = add_link(gpu_vertex_[gpu], router_vertex_[router_of_[gpu]], c_.scale_out.nic_bandwidth,
                         c_.scale_out.latency / 2, LinkKind::kNic);
  }
  // A torus link carries a node's whole injection rate (gpus_per_node · nic_bandwidth), the link the
  // analytic model's ring bound assumes (models/network.cpp). Extent 2: one link, not two parallel ones.
  const double bw = c_.gpus_per_node * c_.scale_out.nic_bandwidth;
  const auto& dims = shape_.dims;
  const int stride[3] = {1, dims[0], dims[0] * dims[1]};
  torus_plus_.assign(n, {-1, -1, -1});
  for (int i = 0; i < n; ++i)
    for (int dim = 0; dim < 3; ++dim) {
      const int ext = dims[dim], coord = i / stride[dim] % ext;
      if (ext < 2 || (ext == 2 && coord == 1)) continue;
      const int next = i + ((coord + 1) % ext - coord) * stride[dim];
      torus_plus_[i][dim] =
          add_link(router_vertex_[i], router_vertex_[next], bw, switch_link_latency_, LinkKind::kTorus);
    }
}

}  // namespace moesim::sim
