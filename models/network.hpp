#pragma once
/// \file Analytic network model: collectives over a hierarchical fabric (NVLink domain per node or
/// NVL72-style, scale-out NIC per GPU with oversubscription), and expert all-to-all from expected
/// per-destination traffic.

#include "scenarios/scenario.hpp"

namespace moesim::models {

/// A communication group: `size` GPUs, `per_node` of which share one NVLink domain (scenarios/layout.hpp).
using moesim::Group;

/// Per-GPU bytes of one all-to-all on the busiest GPU, split by fabric.
struct AllToAllBytes {
  double nic_out = 0;     ///< bytes sent through the NIC by the busiest sender
  double nic_in = 0;      ///< bytes received through the NIC by the busiest receiver
  double nvlink_out = 0;  ///< bytes over NVLink from the busiest sender
  double nvlink_in = 0;   ///< bytes over NVLink into the busiest receiver
  int nodes = 1;          ///< nodes the group spans
  /// The NVLink leg forwards copies that arrived over the NIC (hierarchical dispatch over more than one
  /// node): it runs at the fabric's relay_efficiency instead of its all_to_all_efficiency.
  bool relay = false;
};

class NetworkModel {
 public:
  explicit NetworkModel(const ClusterSpec& c);

  /// Ring all-reduce of `bytes` (nccl-tests bus-bandwidth factor 2(n-1)/n), hierarchical across nodes:
  /// intra-node reduce-scatter, inter-node all-reduce of bytes/per_node over each GPU's NIC, intra-node
  /// all-gather (Thakur et al. 2005; NCCL's tree/ring split by domain). Seconds.
  double all_reduce(double bytes, Group g) const;
  /// Ring reduce-scatter of a `bytes` buffer (each GPU ends with bytes/size): factor (n-1)/n. Seconds.
  double reduce_scatter(double bytes, Group g) const;
  /// Ring all-gather producing a `bytes` buffer: factor (n-1)/n. Seconds.
  double all_gather(double bytes, Group g) const;
  /// Point-to-point transfer between neighbouring pipeline stages. Seconds.
  double send_recv(double bytes, bool cross_node) const;
  /// Expert all-to-all(v): the cluster's fixed all-to-all overhead plus the slower fabric, each fabric
  /// taking its busiest GPU's bytes over the bandwidth an all-to-all kernel sustains on it
  /// (all_to_all_bandwidth) plus its latency. The NIC and NVLink legs run concurrently (DeepEP's RDMA
  /// senders and NVLink forwarders are pipelined in chunks). Seconds.
  double all_to_all(const AllToAllBytes& b) const;
  /// The NIC leg of all_to_all(b) with the fixed overhead: what of it a transfer already on the same NIC
  /// delays (0 when no byte crosses a NIC). Seconds.
  double all_to_all_nic(const AllToAllBytes& b) const;
  /// Bandwidth per GPU per direction an expert all-to-all sustains over the NIC (`nodes` > 1) or over
  /// NVLink: the link rate times the fabric's all_to_all_efficiency (NVLink with `relay`: its
  /// relay_efficiency, see AllToAllBytes::relay). Bytes/s.
  double all_to_all_bandwidth(bool cross_node, int nodes, bool relay = false) const;
  /// Factor on an all-to-all message's bytes that makes a simulated link at full rate take the time the
  /// analytic model gives it: 1 / the fraction all_to_all_bandwidth applies on the fabric it crosses.
  double all_to_all_wire_scale(bool cross_node, bool relay = false) const;
  /// Fixed cost of one expert all-to-all beyond link latency (notify/handshake). Seconds.
  double all_to_all_overhead() const { return c_.all_to_all_overhead; }

  /// Scale-out bandwidth per GPU for traffic among `nodes` consecutive nodes: the NIC rate divided by
  /// the oversubscription met by the share of traffic that must leave the leaf switch.
  double scale_out_bandwidth(int nodes) const;
  /// NVLink bandwidth per GPU per direction.
  double scale_up_bandwidth() const { return c_.scale_up.bandwidth; }
  /// Latency of one message between two nodes `nodes` apart in a group spanning `nodes`.
  double scale_out_latency(int nodes) const;
  /// Nodes attached to one leaf switch of one plane.
  int nodes_per_leaf() const;

 private:
  /// The NVLink fraction an all-to-all sustains: relay_efficiency when its leg relays, else
  /// all_to_all_efficiency.
  double nvlink_fraction(bool relay) const;
  /// What of the cluster the model reads: plain numbers, copied without the GPU entry's and the cluster's
  /// strings (the planner builds a model for every layout it prices).
  struct Fabric {
    ScaleUpSpec scale_up;
    ScaleOutSpec scale_out;
    int gpus_per_node = 0;
    double all_to_all_overhead = 0;
  };
  Fabric c_;
};

}  // namespace moesim::models
