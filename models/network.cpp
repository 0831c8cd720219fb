#include "models/network.hpp"

#include <algorithm>
#include <cmath>

namespace moesim::models {

NetworkModel::NetworkModel(const ClusterSpec& c)
    : c_{c.scale_up, c.scale_out, c.gpus_per_node, c.all_to_all_overhead} {}

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

double NetworkModel::all_to_all_bandwidth(bool cross_node, int nodes, bool relay) const {
  return cross_node ? scale_out_bandwidth(nodes) * c_.scale_out.all_to_all_efficiency
                    : c_.scale_up.bandwidth * nvlink_fraction(relay);
}

double NetworkModel::all_to_all_wire_scale(bool cross_node, bool relay) const {
  return 1.0 / (cross_node ? c_.scale_out.all_to_all_efficiency : nvlink_fraction(relay));
}

double NetworkModel::nvlink_fraction(bool relay) const {
  return relay ? c_.scale_up.relay_efficiency : c_.scale_up.all_to_all_efficiency;
}

double NetworkModel::all_to_all_nic(const AllToAllBytes& b) const {
  if (!(b.nic_out > 0 || b.nic_in > 0)) return 0.0;
  return c_.all_to_all_overhead + std::max(b.nic_out, b.nic_in) / all_to_all_bandwidth(true, b.nodes) +
         scale_out_latency(b.nodes);
}

double NetworkModel::all_to_all(const AllToAllBytes& b) const {
  // Sustained fractions and overhead (defaults in scenarios/params.cpp) from DeepEP's H800 kernel rows,
  // shared/reference/data/kernels/deepep_h800.csv (README @3b1045db, lines 19-22 and 32-37). DeepEP
  // prints "logical" bandwidth: bytes the rank receives over NVLink, or sends per destination node over
  // RDMA, its own GPU/node included (tests/test_internode.py). Under uniform routing the real share is
  // (n-1)/n of it, so:
  //   NVLink, EP8 (line 19): 153 and 158 GB/s logical · 7/8 = 133.9, 138.3 of 160 GB/s → 0.837, 0.864;
  //     mean 0.85.
  //   RDMA, EP32 (line 21) 58/57 GB/s · 3/4 and EP64 (line 22) 51/50 GB/s · 7/8, of 50 GB/s →
  //     0.870, 0.855, 0.893, 0.875; mean 0.873.
  //   Relay, EP16 (line 20, 43 GB/s both ways): two nodes, so each GPU's NVLink leg forwards what came
  //     over RDMA, and DeepEP's maintainers name NVLink as the bound there (deepseek-ai/DeepEP#285: at
  //     43 GB/s RDMA the NVLink side passes 140 GB/s; #130: the IBGDA rewrite left EP16 almost
  //     unchanged). Time = logical RDMA bytes (4096 · 1.992 copies) / 43 GB/s; the NVLink copies that
  //     enter the busiest GPU (5.65 per token, its own and those its same-index peer received excluded)
  //     over that time less latency and overhead, of 160 GB/s: 0.764 (dispatch, 7408 B), 0.763 (combine,
  //     14336 B) → 0.76, below the intranode 0.85: the internode kernel's warps also send and receive
  //     RDMA.
  //   Overhead: each low-latency row (lines 32-37, EP8-256, 128 tokens · 8 copies, 7408 B dispatch,
  //     14336 B combine) gives two latencies for two byte counts; their intercept t_d - B_d·(t_c-t_d)/
  //     (B_c-B_d) is -2.7, 6.2, 2.4, 7.4, 2.7, 16.5 us, median 4.46 us, of which one in-leaf IB hop
  //     (2.8 us) is already the latency term: 1.66 us.
  double nic = 0, nvl = 0;
  if (b.nic_out > 0 || b.nic_in > 0)
    nic = std::max(b.nic_out, b.nic_in) / all_to_all_bandwidth(true, b.nodes) + scale_out_latency(b.nodes);
  if (b.nvlink_out > 0 || b.nvlink_in > 0)
    nvl = std::max(b.nvlink_out, b.nvlink_in) / all_to_all_bandwidth(false, 1, b.relay) + c_.scale_up.latency;
  if (nic <= 0 && nvl <= 0) return 0.0;
  return c_.all_to_all_overhead + std::max(nic, nvl);
}

}  // namespace moesim::models
