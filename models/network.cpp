#include "models/network.hpp"

#include <algorithm>
#include <cmath>

namespace moesim::models {

NetworkModel::NetworkModel(const ClusterSpec& c) : c_(c) {}

int NetworkModel::nodes_per_leaf() const {
  // A leaf switch gives half its ports to hosts. A rail-optimised plane connects one NIC per node to
  // each leaf, so a leaf serves radix/2 nodes; a classic fat tree connects all of a node's NICs to the
  // same leaf (DeepSeek-V3 report §3.2.2; NVIDIA DGX SuperPOD reference architecture).
  const int host_ports = std::max(1, c_.scale_out.radix / 2);
  if (c_.scale_out.kind == TopologyKind::kRailOptimized) return host_ports;
  const int nics_per_node = std::max(1, c_.gpus_per_node);
  return std::max(1, host_ports / nics_per_node);
}

double NetworkModel::scale_out_bandwidth(int nodes) const {
  const double nic = c_.scale_out.nic_bandwidth;
  if (nodes <= 1 || nic <= 0) return nic;
  // Traffic spread evenly over the other nodes of the group; the share that leaves the leaf meets the
  // leaf's up-link oversubscription o: per-GPU rate = nic / max(1, o · cross_share).
  const int per_leaf = std::min(nodes, nodes_per_leaf());
  const double cross = nodes > 1 ? 1.0 - double(per_leaf - 1) / double(nodes - 1) : 0.0;
  double factor = std::max(1.0, c_.scale_out.oversubscription * cross);
  if (c_.scale_out.kind == TopologyKind::kTorus) {
    // k-ary torus: uniform traffic among n nodes crosses on average n/4 links per dimension ring;
    // the per-node injection rate is limited by bisection: ≈ nic · 8 / n for n ≥ 8 (Dally & Towles ch.3).
    factor = std::max(factor, double(nodes) / 8.0);
  }
  return nic / factor;
}

double NetworkModel::scale_out_latency(int nodes) const {
  return nodes <= nodes_per_leaf() ? c_.scale_out.latency : c_.scale_out.latency_cross;
}

double NetworkModel::all_reduce(double bytes, Group g) const {
  if (g.size <= 1 || bytes <= 0) return 0.0;
  const int n_nodes = g.nodes();
  const int local = std::min(g.size, g.per_node);
  double t = 0;
  if (local > 1) {
    // intra-node reduce-scatter + all-gather over NVLink: 2(l-1)/l · bytes.
    t += 2.0 * (local - 1) / local * bytes / c_.scale_up.bandwidth + 2.0 * (local - 1) * c_.scale_up.latency;
  }
  if (n_nodes > 1) {
    const double shard = bytes / local;
    t += 2.0 * (n_nodes - 1) / n_nodes * shard / scale_out_bandwidth(n_nodes) +
         2.0 * (n_nodes - 1) * scale_out_latency(n_nodes);
  }
  return t;
}

double NetworkModel::reduce_scatter(double bytes, Group g) const {
  if (g.size <= 1 || bytes <= 0) return 0.0;
  const int n_nodes = g.nodes();
  const int local = std::min(g.size, g.per_node);
  double t = 0;
  if (local > 1)
    t += double(local - 1) / local * bytes / c_.scale_up.bandwidth + (local - 1) * c_.scale_up.latency;
  if (n_nodes > 1) {
    const double shard = bytes / local;
    t += double(n_nodes - 1) / n_nodes * shard / scale_out_bandwidth(n_nodes) +
         (n_nodes - 1) * scale_out_latency(n_nodes);
  }
  return t;
}

double NetworkModel::all_gather(double bytes, Group g) const {
  return reduce_scatter(bytes, g);
}

double NetworkModel::send_recv(double bytes, bool cross_node) const {
  if (bytes <= 0) return 0.0;
  if (cross_node) return bytes / c_.scale_out.nic_bandwidth + c_.scale_out.latency;
  return bytes / c_.scale_up.bandwidth + c_.scale_up.latency;
}

double NetworkModel::all_to_all(const AllToAllBytes& b) const {
  double nic = 0, nvl = 0;
  if (b.nic_out > 0 || b.nic_in > 0)
    nic = std::max(b.nic_out, b.nic_in) / scale_out_bandwidth(b.nodes) + scale_out_latency(b.nodes);
  if (b.nvlink_out > 0 || b.nvlink_in > 0)
    nvl = std::max(b.nvlink_out, b.nvlink_in) / c_.scale_up.bandwidth + c_.scale_up.latency;
  return std::max(nic, nvl);
}

}  // namespace moesim::models
