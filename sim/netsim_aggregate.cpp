// The aggregated platform part for node-pair aggregation (SimOptions::aggregate_node_pairs): the fabric
// contracted to one host per GPU class (a node's NICs in one plane), interchangeable switches merged,
// parallel links summed; NVLink per GPU in one zone per domain, plus each domain's pooled link.

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "sim/netsim_internal.hpp"

namespace moesim::sim::internal {
namespace {

// Contracted vertices and links of the fabric (every link but NVLink).
void contract(const Topology& t, AggPart& a) {
  const int gpn = t.cluster().gpus_per_node;
  std::map<std::pair<int, int>, int> class_id;  // (node, attach vertex)
  a.class_of_gpu.assign(t.gpus(), -1);
  a.cvertex.assign(t.num_vertices(), -1);
  for (int g = 0; g < t.gpus(); ++g) {
    const int att = t.attach_vertex(g);
    if (att < 0) continue;
    auto [it, fresh] = class_id.try_emplace({g / gpn, att}, static_cast<int>(class_id.size()));
    if (fresh) {
      a.class_rep.push_back(g);
      a.class_name.push_back("node" + std::to_string(g / gpn) + "@" + t.vertex_name(att));
      a.cvertex_name.push_back(a.class_name.back());
    }
    a.class_of_gpu[g] = it->second;
    a.cvertex[t.gpu_vertex(g)] = it->second;
  }
  std::map<std::tuple<int, int, int>, int> merged;  // (kind, plane, group) of spines and cores
  for (int v = 0; v < t.num_vertices(); ++v) {
    const VertexProps& vp = t.vertex(v);
    if (vp.kind == VertexKind::kGpu || vp.kind == VertexKind::kNvSwitch) continue;
    if (vp.kind == VertexKind::kSpine || vp.kind == VertexKind::kCore) {
      auto [it, fresh] = merged.try_emplace({static_cast<int>(vp.kind), vp.plane, vp.group},
                                            static_cast<int>(a.cvertex_name.size()));
      if (fresh) {
        std::string n = std::string(to_string(vp.kind)) + "s.p" + std::to_string(vp.plane);
        if (vp.group >= 0) n += ".g" + std::to_string(vp.group);
        a.cvertex_name.push_back(n);
      }
      a.cvertex[v] = it->second;
    } else {
      a.cvertex[v] = static_cast<int>(a.cvertex_name.size());
      a.cvertex_name.push_back(t.vertex_name(v));
    }
  }
  std::map<std::pair<int, int>, int> clink;  // unordered contracted vertex pair → contracted link
  a.clink_of.assign(t.num_links(), -1);
  for (int id = 0; id < t.num_links(); ++id) {
    const LinkProps& lp = t.link(id);
    if (lp.kind == LinkKind::kNvlink) continue;
    const int u = a.cvertex[t.link_source(id)], w = a.cvertex[t.link_target(id)];
    if (u < 0 || w < 0 || u == w) continue;
    auto [it, fresh] = clink.try_emplace({std::min(u, w), std::max(u, w)}, static_cast<int>(a.links.size()));
    if (fresh) {
      a.links.push_back({a.cvertex_name[u], a.cvertex_name[w], lp.kind, 0.0, 0.0});
      a.clink_source.push_back(u);
    }
    PartLink& l = a.links[it->second];
    l.bandwidth += lp.bandwidth;
    l.latency = std::max(l.latency, lp.latency);
    a.clink_of[id] = it->second;
  }
}

// The fabric segment of a topology path (first NIC hop to last NIC hop) on the contracted links.
PartPath contracted_segment(const Topology& t, const AggPart& a, const Path& path, std::size_t first,
                            std::size_t last) {
  PartPath out;
  for (std::size_t i = first; i <= last; ++i) {
    const int c = a.clink_of[path[i].link];
    if (c < 0) continue;
    out.push_back({c, a.cvertex[t.hop_from(path[i])] == a.clink_source[c]});
  }
  return out;
}

}  // namespace

// Positions of the first and last NIC hops of a path; nullopt when it crosses no NIC.
std::optional<std::pair<std::size_t, std::size_t>> nic_span(const Topology& t, const Path& path) {
  std::optional<std::pair<std::size_t, std::size_t>> span;
  for (std::size_t i = 0; i < path.size(); ++i)
    if (t.link(path[i].link).kind == LinkKind::kNic) {
      if (!span) span = std::pair{i, i};
      span->second = i;
    }
  return span;
}

PartPath class_route(const Topology& t, const AggPart& a, int ca, int cb) {
  const Path path = t.path(a.class_rep[ca], a.class_rep[cb]);
  const auto span = nic_span(t, path);
  if (!span) return {};
  return contracted_segment(t, a, path, span->first, span->second);
}

PartPath nvlink_route(const Topology& t, const AggPart& a, int src, int dst) {
  PartPath out;
  for (const Hop& h : t.path(src, dst)) out.push_back({a.nvlink_link[h.link], h.dir == Direction::kForward});
  return out;
}

// Sizes of the zones the aggregated part needs: largest NVLink domain and largest plane (in hosts).
std::pair<int, int> agg_zone_sizes(const Topology& t, const std::vector<char>& used) {
  std::map<int, int> domain, plane;
  const int gpn = t.cluster().gpus_per_node;
  std::map<std::pair<int, int>, bool> seen;
  for (int g = 0; g < t.gpus(); ++g) {
    if (!used[g]) continue;
    const int att = t.attach_vertex(g);
    if (att >= 0 && seen.try_emplace({g / gpn, att}, true).second) ++plane[std::max(0, t.vertex(att).plane)];
  }
  for (int id = 0; id < t.num_links(); ++id)
    if (t.link(id).kind == LinkKind::kNvlink) {
      const bool src_is_switch = t.vertex(t.link_source(id)).kind == VertexKind::kNvSwitch;
      if (!used[t.vertex(src_is_switch ? t.link_target(id) : t.link_source(id)).index]) continue;
      ++domain[src_is_switch ? t.link_source(id) : t.link_target(id)];
    }
  int dmax = 0, pmax = 0;
  for (auto& [k, v] : domain) dmax = std::max(dmax, v);
  for (auto& [k, v] : plane) pmax = std::max(pmax, v);
  return {dmax, pmax};
}

AggPart build_agg_part(const Topology& t, sg4::NetZone* root, bool with_latency,
                       const std::vector<char>& used) {
  AggPart a;
  contract(t, a);
  const int fabric_links = static_cast<int>(a.links.size());
  // NVLink: one full zone per domain (the NVSwitch vertex), GPU hosts and their NVLinks.
  std::map<int, std::vector<int>> domain_gpus;  // NVSwitch vertex → GPUs
  std::vector<int> nvlink_of_gpu(t.gpus(), -1);
  a.nvlink_link.assign(t.num_links(), -1);
  for (int id = 0; id < t.num_links(); ++id) {
    if (t.link(id).kind != LinkKind::kNvlink) continue;
    const bool src_is_switch = t.vertex(t.link_source(id)).kind == VertexKind::kNvSwitch;
    const int gpu = t.vertex(src_is_switch ? t.link_target(id) : t.link_source(id)).index;
    if (!used[gpu]) continue;
    domain_gpus[src_is_switch ? t.link_source(id) : t.link_target(id)].push_back(gpu);
    nvlink_of_gpu[gpu] = id;
  }
  a.gpu_hosts.assign(t.gpus(), nullptr);
  a.domain_of_gpu.assign(t.gpus(), -1);
  for (auto& [sw, gpus] : domain_gpus) {
    auto* zone = sg4::create_full_zone("a:" + t.vertex_name(sw));
    zone->set_parent(root);
    std::sort(gpus.begin(), gpus.end());
    for (int g : gpus) {
      a.gpu_hosts[g] = zone->create_host("a:" + t.vertex_name(t.gpu_vertex(g)), 1.0);
      const int id = nvlink_of_gpu[g];
      const LinkProps& lp = t.link(id);
      PartLink l{t.vertex_name(t.link_source(id)), t.vertex_name(t.link_target(id)), lp.kind, lp.bandwidth,
                 lp.latency};
      l.sg = make_link(zone, "an" + std::to_string(id) + ":" + l.from + "-" + l.to, l, with_latency);
      a.nvlink_link[id] = static_cast<int>(a.links.size());
      a.links.push_back(l);
    }
    std::vector<sg4::LinkInRoute> route;
    for (int s : gpus)
      for (int d : gpus) {
        if (s == d) continue;
        route.clear();
        for (const PartHop& h : nvlink_route(t, a, s, d))
          route.emplace_back(a.links[h.link].sg, sg_dir(h.forward));
        zone->add_route(a.gpu_hosts[s]->get_netpoint(), a.gpu_hosts[d]->get_netpoint(), nullptr, nullptr,
                        route, false);
        ++a.routes;
      }
    // The pooled domain: every GPU's NVLink bandwidth summed into one link between two hosts.
    const int dom = static_cast<int>(a.pool_out.size());
    double pooled = 0;
    for (int g : gpus) {
      pooled += t.link(nvlink_of_gpu[g]).bandwidth;
      a.domain_of_gpu[g] = dom;
    }
    const std::string dn = t.vertex_name(sw);
    a.pool_out.push_back(zone->create_host("a:" + dn + ".pool-out", 1.0));
    a.pool_in.push_back(zone->create_host("a:" + dn + ".pool-in", 1.0));
    // Latency of a GPU → NVSwitch → GPU route: two NVLinks.
    PartLink pl{dn + ".gpus", dn + ".gpus", LinkKind::kNvlink, pooled,
                2 * t.link(nvlink_of_gpu[gpus.front()]).latency};
    pl.sg = make_link(zone, "ap:" + dn, pl, with_latency);
    a.pool_link.push_back(static_cast<int>(a.links.size()));
    a.links.push_back(pl);
    zone->add_route(a.pool_out.back()->get_netpoint(), a.pool_in.back()->get_netpoint(), nullptr, nullptr,
                    {sg4::LinkInRoute(pl.sg, sg4::LinkInRoute::Direction::UP)}, false);
    ++a.routes;
    zone->seal();
    a.hosts += static_cast<int>(gpus.size()) + 2;
  }
  // Fabric: one full zone per plane (planes never exchange traffic on the scale-out fabric).
  std::map<int, std::vector<int>> plane_classes;
  std::vector<char> class_used(a.class_rep.size(), 0);
  for (int g = 0; g < t.gpus(); ++g)
    if (used[g] && a.class_of_gpu[g] >= 0) class_used[a.class_of_gpu[g]] = 1;
  for (int c = 0; c < static_cast<int>(a.class_rep.size()); ++c)
    if (class_used[c])
      plane_classes[std::max(0, t.vertex(t.attach_vertex(a.class_rep[c])).plane)].push_back(c);
  a.class_hosts.assign(a.class_rep.size(), nullptr);
  std::vector<bool> created(fabric_links, false);
  for (auto& [plane, classes] : plane_classes) {
    auto* zone = sg4::create_full_zone("a:fabric.p" + std::to_string(plane));
    zone->set_parent(root);
    for (int c : classes) a.class_hosts[c] = zone->create_host("a:" + a.class_name[c], 1.0);
    // Links of this plane: every contracted link on a route between two of its classes.
    std::vector<sg4::LinkInRoute> route;
    for (int ca : classes)
      for (int cb : classes) {
        if (ca == cb) continue;
        const PartPath r = class_route(t, a, ca, cb);
        if (r.empty()) continue;  // same NVLink domain: no fabric route needed
        route.clear();
        for (const PartHop& h : r) {
          if (!created[h.link]) {
            const PartLink& l = a.links[h.link];
            a.links[h.link].sg =
                make_link(zone, "af" + std::to_string(h.link) + ":" + l.from + "-" + l.to, l, with_latency);
            created[h.link] = true;
          }
          route.emplace_back(a.links[h.link].sg, sg_dir(h.forward));
        }
        zone->add_route(a.class_hosts[ca]->get_netpoint(), a.class_hosts[cb]->get_netpoint(), nullptr,
                        nullptr, route, false);
        ++a.routes;
      }
    zone->seal();
    a.hosts += static_cast<int>(classes.size());
  }
  return a;
}

}  // namespace moesim::sim::internal
