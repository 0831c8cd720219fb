#include "sim/topology.hpp"

#include <algorithm>

#include "sim/topology_internal.hpp"

namespace moesim::sim {

using internal::config_error;

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
      case TopologyKind::kFatTree:
        build_fat_tree();
        break;
      case TopologyKind::kRailOptimized:
        build_rail_optimized();
        break;
      case TopologyKind::kDragonfly:
        build_dragonfly();
        break;
      case TopologyKind::kTorus:
        build_torus();
        break;
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

}  // namespace moesim::sim
