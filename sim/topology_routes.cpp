// Deterministic routing on the cluster graph: one path per GPU pair (docs/topology.md).
#include <algorithm>

#include "sim/topology.hpp"

namespace moesim::sim {
namespace {

constexpr Direction kF = Direction::kForward;
constexpr Direction kB = Direction::kBackward;

}  // namespace

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

}  // namespace moesim::sim
