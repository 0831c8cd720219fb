#include "sim/topology.hpp"

#include <algorithm>
#include <boost/graph/graphviz.hpp>
#include <boost/graph/push_relabel_max_flow.hpp>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <sstream>

#include "scenarios/error.hpp"

namespace moesim::sim {
namespace {

constexpr Direction kF = Direction::kForward;
constexpr Direction kB = Direction::kBackward;

std::string str(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string bandwidth_text(double bytes_per_s) {
  return str(bytes_per_s / 1e9) + " GB/s";
}

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

[[noreturn]] void config_error(const std::string& what) {
  throw ConfigError("cluster topology: " + what);
}

}  // namespace

const char* to_string(VertexKind k) {
  static const char* const kNames[] = {"gpu", "nvswitch", "leaf", "spine", "core", "router"};
  return kNames[static_cast<int>(k)];
}

const char* to_string(LinkKind k) {
  static const char* const kNames[] = {"nvlink", "nic", "uplink", "global", "torus"};
  return kNames[static_cast<int>(k)];
}

// ------------------------------------------------------------------------------------ construction

int Topology::add_vertex(VertexProps p) {
  return static_cast<int>(boost::add_vertex(p, g_));
}

int Topology::add_link(int u, int v, double bandwidth, double latency, LinkKind kind) {
  const int id = static_cast<int>(links_.size());
  links_.push_back(boost::add_edge(u, v, LinkProps{bandwidth, latency, kind, id}, g_).first);
  return id;
}

Topology::Topology(const ClusterSpec& c) : c_(c) {
  const int gpn = c.gpus_per_node;
  if (c.nodes <= 0 || gpn <= 0)
    config_error("expected positive nodes and gpus_per_node, found " + std::to_string(c.nodes) + " × " +
                 std::to_string(gpn));
  domain_gpus_ = c.scale_up.domain_gpus > 0 ? c.scale_up.domain_gpus : gpn;
  if (domain_gpus_ % gpn != 0 && gpn % domain_gpus_ != 0)
    config_error("scale_up.domain_gpus: expected a multiple or divisor of gpus_per_node, found " +
                 std::to_string(domain_gpus_));
  for (int gpu = 0; gpu < c.gpus(); ++gpu)
    gpu_vertex_.push_back(add_vertex({VertexKind::kGpu, gpu, gpu / gpn, 0, -1}));
  nvlink_.assign(c.gpus(), -1);
  nic_.assign(c.gpus(), -1);
  build_scale_up();

  const double cross = c.scale_out.latency_cross > 0 ? c.scale_out.latency_cross : c.scale_out.latency;
  switch_link_latency_ = std::max(0.0, (cross - c.scale_out.latency) / 2);
  shape_.kind = "none";
  if (c.scale_out.nic_bandwidth > 0) {
    shape_.kind = to_string(c.scale_out.kind);
    switch (c.scale_out.kind) {
      case TopologyKind::kFatTree: build_fat_tree(); break;
      case TopologyKind::kRailOptimized: build_rail_optimized(); break;
      case TopologyKind::kDragonfly: build_dragonfly(); break;
      case TopologyKind::kTorus: build_torus(); break;
    }
  } else if (c.nodes > 1) {
    config_error("scale_out.nic_bandwidth: expected a positive bandwidth for " + std::to_string(c.nodes) +
                 " nodes, found 0");
  } else if (c.gpus() > 1 && nvswitch_of_.size() != 1) {
    config_error(
        "no link joins the GPUs of the node: they are not in one NVLink domain and there is no NIC "
        "bandwidth");
  }
}

void Topology::build_scale_up() {
  if (c_.scale_up.kind == ScaleUpKind::kNone || domain_gpus_ == 1) return;
  if (c_.scale_up.bandwidth <= 0) config_error("scale_up.bandwidth: expected a positive bandwidth, found 0");
  const int domains = (c_.gpus() + domain_gpus_ - 1) / domain_gpus_;
  for (int d = 0; d < domains; ++d)
    nvswitch_of_.push_back(
        add_vertex({VertexKind::kNvSwitch, d, d * domain_gpus_ / c_.gpus_per_node, -1, -1}));
  // One NVSwitch vertex per domain: the NVSwitch chips are non-blocking, so a GPU's NVLink bundle is
  // its only constraint (DGX H100 / GB200 NVL72 system architecture).
  for (int gpu = 0; gpu < c_.gpus(); ++gpu)
    nvlink_[gpu] = add_link(gpu_vertex_[gpu], nvswitch_of_[gpu / domain_gpus_], c_.scale_up.bandwidth,
                            c_.scale_up.latency / 2, LinkKind::kNvlink);
}

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
    config_error("scale_out.oversubscription: expected ≥ 1, found " + str(so.oversubscription));
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

// ------------------------------------------------------------------------------------------ queries

int Topology::count(VertexKind k) const {
  int n = 0;
  for (auto v : boost::make_iterator_range(boost::vertices(g_))) n += g_[v].kind == k;
  return n;
}

int Topology::count(LinkKind k) const {
  int n = 0;
  for (const auto& e : links_) n += g_[e].kind == k;
  return n;
}

int Topology::attach_vertex(int gpu) const {
  return nic_[gpu] < 0 ? -1 : link_target(nic_[gpu]);
}

int Topology::plane_of(int gpu) const {
  return shape_.planes > 1 ? gpu % c_.gpus_per_node % shape_.planes : 0;
}

std::string Topology::vertex_name(int v) const {
  const VertexProps& p = vertex(v);
  const std::string i = std::to_string(p.index);
  switch (p.kind) {
    case VertexKind::kGpu:
      return "gpu" + std::to_string(p.node) + "." + std::to_string(p.index % c_.gpus_per_node);
    case VertexKind::kNvSwitch:
      return "nvs" + i;
    case VertexKind::kRouter:
      if (p.group < 0) return "router" + i;
      return "router" + std::to_string(p.index - p.group * shape_.routers_per_group) + ".g" +
             std::to_string(p.group);
    default:
      return to_string(p.kind) + i + ".p" + std::to_string(p.plane);
  }
}

// ------------------------------------------------------------------------------------------ routing

int Topology::forwarding_gpu(int src, int dst) const {
  // The GPU of dst's node and NVLink domain on src's plane, preferring the one with dst's index
  // within its group of `planes` (DeepSeek-V3 §3.2.2: IB to the same in-node index, then NVLink).
  const int gpn = c_.gpus_per_node, planes = shape_.planes, jd = dst % gpn, want = plane_of(src);
  const int len = std::min(domain_gpus_, gpn), start = jd / len * len;
  int l = jd - jd % planes + want;
  if (l < start || l >= start + len) {
    l = start;
    while (l % planes != want) ++l;
  }
  return dst - jd + l;
}

void Topology::fabric_path(int src, int dst, Path& out) const {
  out.push_back({nic_[src], kF});
  if (!leaf_of_.empty()) {
    // D-mod-k: the up port is chosen from the destination's host id, as SimGrid's FatTreeZone does
    // (Zahavi, "D-Mod-K routing providing non-blocking traffic for shift permutations", 2010).
    const int ls = leaf_of_[src], ld = leaf_of_[dst];
    if (ls != ld) {
      const int plane = plane_of(dst), u = shape_.up_ports, half = shape_.down_ports, id = host_id_[dst];
      const int j = id % u;
      const auto up = [&](int leaf) { return uplink_[(plane * shape_.leaves + leaf) * u + j]; };
      out.push_back({up(ls), kF});
      if (shape_.levels == 3 && ls / half != ld / half) {
        const int q = id / u % half;
        const auto core = [&](int pod) {
          return spine_up_[((plane * shape_.pods + pod) * u + j) * half + q];
        };
        out.push_back({core(ls / half), kF});
        out.push_back({core(ld / half), kB});
      }
      out.push_back({up(ld), kB});
    }
  } else if (shape_.groups > 0) {
    const int a = shape_.routers_per_group, rs = router_of_[src], rd = router_of_[dst];
    const auto local = [&](int x, int y) {
      if (x == y) return;
      const int lo = std::min(x, y) % a, hi = std::max(x, y) % a;
      out.push_back({local_[(x / a * a + lo) * a + hi], x < y ? kF : kB});
    };
    if (rs / a == rd / a) {
      local(rs, rd);
    } else {
      // Minimal routing: local hop to the router holding the global cable, global, local hop.
      const int gs = rs / a, gd = rd / a, m = shape_.parallel_global, G = shape_.groups;
      const int e = global_[(std::min(gs, gd) * G + std::max(gs, gd)) * m + dst % m];
      const int x = vertex(link_source(e)).index, y = vertex(link_target(e)).index;
      const bool fwd = x / a == gs;
      local(rs, fwd ? x : y);
      out.push_back({e, fwd ? kF : kB});
      local(fwd ? y : x, rd);
    }
  } else if (!torus_plus_.empty()) {
    // Dimension order: x, then y, then z, each the shorter way round (ties: the + direction).
    const auto& dims = shape_.dims;
    const int stride[3] = {1, dims[0], dims[0] * dims[1]};
    int cur = router_of_[src];
    const int target = router_of_[dst];
    for (int dim = 0; dim < 3; ++dim) {
      const int ext = dims[dim];
      const int delta = (target / stride[dim] % ext - cur / stride[dim] % ext + ext) % ext;
      const bool plus = 2 * delta <= ext;
      for (int s = 0; s < (plus ? delta : ext - delta); ++s) {
        const int coord = cur / stride[dim] % ext;
        if (plus) {
          const int next = cur + ((coord + 1) % ext - coord) * stride[dim];
          if (ext == 2 && coord == 1)
            out.push_back({torus_plus_[next][dim], kB});
          else
            out.push_back({torus_plus_[cur][dim], kF});
          cur = next;
        } else {
          const int prev = cur + ((coord + ext - 1) % ext - coord) * stride[dim];
          out.push_back({torus_plus_[prev][dim], kB});
          cur = prev;
        }
      }
    }
  }
  out.push_back({nic_[dst], kB});
}

void Topology::path(int src, int dst, Path& out) const {
  out.clear();
  if (src == dst) return;
  if (!nvswitch_of_.empty() && domain_of(src) == domain_of(dst)) {
    out.push_back({nvlink_[src], kF});
    out.push_back({nvlink_[dst], kB});
    return;
  }
  if (shape_.planes > 1 && plane_of(src) != plane_of(dst)) {
    const int w = forwarding_gpu(src, dst);
    fabric_path(src, w, out);
    out.push_back({nvlink_[w], kF});
    out.push_back({nvlink_[dst], kB});
    return;
  }
  fabric_path(src, dst, out);
}

Path Topology::path(int src, int dst) const {
  Path p;
  path(src, dst, p);
  return p;
}

int Topology::hops(int src, int dst) const {
  return static_cast<int>(path(src, dst).size());
}

double Topology::path_latency(int src, int dst) const {
  double t = 0;
  for (const Hop& h : path(src, dst)) t += link(h.link).latency;
  return t;
}

HopStats Topology::hop_stats() const {
  HopStats s;
  Path p;
  double total = 0;
  for (int a = 0; a < gpus(); ++a)
    for (int b = 0; b < gpus(); ++b) {
      if (a == b) continue;
      path(a, b, p);
      total += static_cast<double>(p.size());
      s.diameter = std::max(s.diameter, static_cast<int>(p.size()));
      ++s.pairs;
    }
  s.average = s.pairs > 0 ? total / static_cast<double>(s.pairs) : 0.0;
  return s;
}

// ----------------------------------------------------------------------------------------- analyses

double Topology::bisection_bandwidth() const {
  if (c_.nodes < 2) return 0.0;
  using Traits = boost::adjacency_list_traits<boost::vecS, boost::vecS, boost::directedS>;
  using Flow = boost::adjacency_list<
      boost::vecS, boost::vecS, boost::directedS, boost::no_property,
      boost::property<boost::edge_capacity_t, long long,
                      boost::property<boost::edge_residual_capacity_t, long long,
                                      boost::property<boost::edge_reverse_t, Traits::edge_descriptor>>>>;
  const int n = num_vertices(), source = n, sink = n + 1;
  Flow f(static_cast<std::size_t>(n) + 2);
  auto cap = boost::get(boost::edge_capacity, f);
  auto rev = boost::get(boost::edge_reverse, f);
  // Capacities in whole bytes/s (exact integer arithmetic). Each direction of a full-duplex link is an
  // arc of its bandwidth paired with a zero-capacity residual arc, the form push-relabel expects.
  const auto arc = [&](int u, int v, long long c) {
    const auto a = boost::add_edge(u, v, f).first, b = boost::add_edge(v, u, f).first;
    cap[a] = c;
    cap[b] = 0;
    rev[a] = b;
    rev[b] = a;
  };
  std::vector<long long> incident(static_cast<std::size_t>(n), 0);
  for (int id = 0; id < num_links(); ++id) {
    const long long c = std::llround(link(id).bandwidth);
    arc(link_source(id), link_target(id), c);
    arc(link_target(id), link_source(id), c);
    incident[link_source(id)] += c;
    incident[link_target(id)] += c;
  }
  // A GPU can never move more than its own links carry: that bounds the super-source/sink arcs
  // without risking overflow.
  const int half = c_.nodes / 2;
  for (int gpu = 0; gpu < gpus(); ++gpu) {
    const int v = gpu_vertex_[gpu];
    if (gpu / c_.gpus_per_node < half)
      arc(source, v, incident[v]);
    else
      arc(v, sink, incident[v]);
  }
  return static_cast<double>(boost::push_relabel_max_flow(f, source, sink));
}

double Topology::fat_tree_bisection(const ClusterSpec& c) {
  return (c.nodes / 2) * c.gpus_per_node * c.scale_out.nic_bandwidth /
         std::max(1.0, c.scale_out.oversubscription);
}

LinkLoads Topology::link_loads(const TrafficMatrix& traffic) const {
  if (traffic.gpus != gpus())
    throw ConfigError("link_loads: expected a " + std::to_string(gpus()) + "-GPU traffic matrix, found " +
                      std::to_string(traffic.gpus));
  LinkLoads l;
  l.bytes.assign(2 * links_.size(), 0.0);
  Path p;
  for (int a = 0; a < gpus(); ++a)
    for (int b = 0; b < gpus(); ++b) {
      const double bytes = traffic(a, b);
      if (bytes <= 0 || a == b) continue;
      path(a, b, p);
      for (const Hop& h : p) l.bytes[h.directed()] += bytes;
    }
  for (int i = 0; i < static_cast<int>(l.bytes.size()); ++i) {
    const double t = l.bytes[i] / link(i / 2).bandwidth;
    if (l.bytes[i] > 0 && t > l.time_lower_bound) {
      l.time_lower_bound = t;
      l.busiest = i;
    }
  }
  return l;
}

void Topology::write_graphviz(std::ostream& os) const {
  std::vector<std::string> names;
  for (int v = 0; v < num_vertices(); ++v) names.push_back(vertex_name(v));
  const auto ids = boost::make_iterator_property_map(names.begin(), boost::get(boost::vertex_index, g_));
  const auto vertex_writer = [&](std::ostream& out, Graph::vertex_descriptor v) {
    out << "[label=\"" << names[v] << "\" shape=" << (g_[v].kind == VertexKind::kGpu ? "ellipse" : "box")
        << "]";
  };
  const auto edge_writer = [&](std::ostream& out, Graph::edge_descriptor e) {
    out << "[label=\"" << bandwidth_text(g_[e].bandwidth) << " " << to_string(g_[e].kind) << "\"]";
  };
  boost::write_graphviz(os, g_, vertex_writer, edge_writer, boost::default_writer(), ids);
}

std::string Topology::summary() const {
  std::ostringstream os;
  const FabricShape& s = shape_;
  os << "topology " << (c_.name.empty() ? "(unnamed)" : c_.name) << ": " << c_.nodes << " nodes × "
     << c_.gpus_per_node << " GPUs, NVLink domains of " << domain_gpus_ << " GPUs, scale-out " << s.kind;
  if (s.levels > 0)
    os << " (" << s.planes << " plane(s), " << s.levels << " levels, radix " << c_.scale_out.radix
       << "; per plane " << s.leaves << " leaves, " << s.spines << " spines, " << s.cores << " cores)";
  else if (s.groups > 0)
    os << " (" << s.groups << " groups of " << s.routers_per_group << " routers, p = h = " << s.global_ports
       << ")";
  else if (c_.scale_out.kind == TopologyKind::kTorus && c_.scale_out.nic_bandwidth > 0)
    os << " (" << s.dims[0] << " × " << s.dims[1] << " × " << s.dims[2] << ")";
  os << "\nvertices " << num_vertices() << ":";
  for (int k = 0; k <= static_cast<int>(VertexKind::kRouter); ++k)
    if (const int n = count(static_cast<VertexKind>(k)); n > 0)
      os << " " << to_string(static_cast<VertexKind>(k)) << " " << n;
  os << "\nlinks " << num_links() << ":";
  for (int k = 0; k <= static_cast<int>(LinkKind::kTorus); ++k)
    if (const int n = count(static_cast<LinkKind>(k)); n > 0)
      os << " " << to_string(static_cast<LinkKind>(k)) << " " << n;
  const HopStats h = hop_stats();
  os << "\nroutes: average " << str(h.average) << " hops, diameter " << h.diameter << " (" << h.pairs
     << " GPU pairs)";
  os << "\nbisection: " << bandwidth_text(bisection_bandwidth()) << " (max flow, first " << c_.nodes / 2
     << " nodes to the other " << c_.nodes - c_.nodes / 2 << ")\n";
  return os.str();
}

}  // namespace moesim::sim
