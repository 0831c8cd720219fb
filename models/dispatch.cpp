#include "models/dispatch.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "models/placement.hpp"
#include "traces/load.hpp"

namespace moesim::models {

namespace {
// (1 - c)^k for the small integer k = top_k: repeated squaring, no libm pow.
double miss_prob(double c, int k) {
  double base = 1.0 - c, r = 1.0;
  for (; k > 0; k >>= 1, base *= base)
    if (k & 1) r *= base;
  return r;
}
}  // namespace

namespace {
// The EP rank with the largest share and its load over the mean.
void set_straggler(DispatchStats& s) {
  s.straggler =
      static_cast<int>(std::max_element(s.rank_share.begin(), s.rank_share.end()) - s.rank_share.begin());
  s.max_over_mean = s.rank_share[s.straggler] / (1.0 / static_cast<double>(s.rank_share.size()));
}

// The busiest GPU's copies per source token over each fabric, from the hit and copy expectations.
void link_copies(DispatchStats& s, const EpGeometry& g) {
  const int per_node = std::max(1, std::min(g.per_node, g.ep));
  const int nodes = (g.ep + per_node - 1) / per_node;
  const int k = g.top_k;
  if (g.low_latency) {
    // Each of a token's top_k slots is its own message: rank r receives top_k · share(r) copies of each
    // source token, all over the NIC; a GPU keeps the copies for its own experts.
    const double max_share = s.rank_share[s.straggler];
    double out = 0;
    for (int r = 0; r < g.ep; ++r) out = std::max(out, k * (1.0 - s.rank_share[r]));
    s.nic_out = out;
    s.nic_in = k * max_share * (g.ep - 1);
    return;
  }
  if (g.hierarchical) s.copies_rank = s.hit_rank;
  // Copies per destination GPU: merged (hierarchical), one per slot (flat).
  const std::vector<double>& per_rank = s.copies_rank;
  const double sum_rank = std::accumulate(per_rank.begin(), per_rank.end(), 0.0);
  const double sum_node = std::accumulate(s.hit_node.begin(), s.hit_node.end(), 0.0);
  const double max_rank = *std::max_element(per_rank.begin(), per_rank.end());
  const double max_node = *std::max_element(s.hit_node.begin(), s.hit_node.end());
  if (nodes == 1) {
    // Everything stays on NVLink: a token goes to every GPU it hits except its own, once per GPU
    // (hierarchical) or once per slot (flat).
    s.nvlink_out = sum_rank * (g.ep - 1) / g.ep;
    s.nvlink_in = max_rank * (g.ep - 1);
    return;
  }
  if (g.hierarchical) {
    // One NIC copy per remote destination node (rail: to the same local index), then NVLink fan-out
    // inside the destination node to every further GPU hit there.
    s.nic_out = sum_node * (nodes - 1) / nodes;
    s.nic_in = max_node * (nodes - 1);
    const double fan = per_node > 1 ? double(per_node - 1) / per_node : 0.0;
    double worst_fwd = 0;
    for (int n = 0; n < nodes; ++n) {
      double ranks_hit = 0;
      for (int r = n * per_node; r < std::min(g.ep, (n + 1) * per_node); ++r) ranks_hit += s.hit_rank[r];
      const double per_hit = s.hit_node[n] > 0 ? ranks_hit / s.hit_node[n] : 0.0;
      // Tokens landing on one GPU of node n: from (nodes-1) remote peers plus its own.
      worst_fwd = std::max(worst_fwd, ((nodes - 1) * s.hit_node[n] + s.hit_node[n]) * per_hit * fan);
    }
    s.nvlink_out = worst_fwd;
    s.nvlink_in = max_rank * g.ep * fan;
  } else {
    // Straight to the destination GPU, one copy per slot: NIC for other nodes, NVLink inside the node.
    s.nic_out = sum_rank * double(g.ep - per_node) / g.ep;
    s.nic_in = max_rank * (g.ep - per_node);
    s.nvlink_out = sum_rank * double(per_node - 1) / g.ep;
    s.nvlink_in = max_rank * (per_node - 1);
  }
}
}  // namespace

DispatchStats dispatch_stats(const std::vector<double>& shares, const std::vector<int>& placement,
                             const EpGeometry& g) {
  return dispatch_stats(rank_shares(shares, placement, g.ep), g);
}

DispatchStats dispatch_stats(std::vector<double> rank_share, const EpGeometry& g) {
  DispatchStats s;
  s.rank_share = std::move(rank_share);
  set_straggler(s);

  const int per_node = std::max(1, std::min(g.per_node, g.ep));
  const int nodes = (g.ep + per_node - 1) / per_node;
  std::vector<double> q(static_cast<std::size_t>(nodes), 0.0);
  for (int r = 0; r < g.ep; ++r) q[r / per_node] += s.rank_share[r];

  // Probability that a node is among the token's candidate nodes.
  std::vector<double> sel(static_cast<std::size_t>(nodes), 1.0);
  if (g.node_limit > 0 && g.node_limit < nodes) {
    sel = q;
    for (auto& v : sel) v *= g.node_limit;  // expected selections sum to node_limit
    traces::cap_shares(sel, 1.0);           // a node is selected at most once
  }
  double Q = 0;  // expected share of slots inside the selected nodes
  for (int n = 0; n < nodes; ++n) Q += sel[n] * q[n];
  if (Q <= 0) Q = 1;
  const int k = g.top_k;
  s.hit_rank.assign(static_cast<std::size_t>(g.ep), 0.0);
  s.hit_node.assign(static_cast<std::size_t>(nodes), 0.0);
  const bool limited = g.node_limit > 0 && g.node_limit < nodes;
  // Expected top_k slots landing on rank r: inside the picked nodes, in proportion to the ranks' shares.
  s.copies_rank.assign(static_cast<std::size_t>(g.ep), 0.0);
  for (int r = 0; r < g.ep; ++r) s.copies_rank[r] = sel[r / per_node] * k * s.rank_share[r] / Q;
  if (limited && k >= g.node_limit) {
    // Node-limited routing (DeepSeek-V3 report §2.1.2) ranks nodes by the sum of their best
    // top_k/node_limit expert scores and then takes the top_k experts inside the chosen nodes, so every
    // chosen node holds some of them: a selected node is hit. Its expected slots are top_k · q_n / Q
    // (at least one), drawn inside it in proportion to its ranks' shares.
    for (int n = 0; n < nodes; ++n) s.hit_node[n] = sel[n];
    for (int r = 0; r < g.ep; ++r) {
      const int n = r / per_node;
      if (q[n] <= 0) continue;
      const double slots = std::max(1.0, k * q[n] / Q);
      const double c = std::min(1.0, s.rank_share[r] / q[n]);
      s.hit_rank[r] = sel[n] * (1.0 - std::pow(1.0 - c, slots));
    }
  } else {
    for (int r = 0; r < g.ep; ++r) {
      const int n = r / per_node;
      const double c = std::min(1.0, s.rank_share[r] / Q);
      s.hit_rank[r] = sel[n] * (1.0 - miss_prob(c, k));
    }
    for (int n = 0; n < nodes; ++n) {
      const double c = std::min(1.0, q[n] / Q);
      s.hit_node[n] = sel[n] * (1.0 - miss_prob(c, k));
    }
  }

  link_copies(s, g);
  return s;
}

DispatchStats dispatch_stats_grouped(const std::vector<double>& group_rank, const EpGeometry& g) {
  const int G = std::max(1, g.groups), R = g.ep;
  const int per_node = std::max(1, std::min(g.per_node, g.ep));
  const int nodes = (R + per_node - 1) / per_node;
  DispatchStats s;
  s.rank_share.assign(static_cast<std::size_t>(R), 0.0);
  std::vector<double> q(static_cast<std::size_t>(G), 0.0);
  for (int gr = 0; gr < G; ++gr)
    for (int r = 0; r < R; ++r) {
      const double x = group_rank[static_cast<std::size_t>(gr) * R + r];
      s.rank_share[r] += x;
      q[gr] += x;
    }
  set_straggler(s);

  const int kg = g.topk_groups > 0 ? std::min(g.topk_groups, G) : G;
  std::vector<double> sel = q;
  for (auto& v : sel) v *= kg;   // expected picks sum to topk_groups
  traces::cap_shares(sel, 1.0);  // a group is picked at most once
  double Q = 0;                  // expected share of slots inside the picked groups
  for (int gr = 0; gr < G; ++gr) Q += sel[gr] * q[gr];
  if (Q <= 0) Q = 1;
  const int k = g.top_k;
  const bool first = k >= kg;           // every picked group holds a slot
  const int rest = first ? k - kg : k;  // the slots spread over the picked groups by their shares
  // P(a unit is missed) from x[gr], the unit's share of the routed slots of each group.
  auto missed = [&](const std::vector<double>& x) {
    int whole = 0;
    double picked = 0, miss = 1;
    for (int gr = 0; gr < G; ++gr) {
      if (x[gr] <= 0 || q[gr] <= 0) continue;
      if (x[gr] >= q[gr] * (1 - 1e-12)) {
        ++whole;
        picked += sel[gr];
      } else {
        // A picked group holds one of the token's slots (its best expert picked it), and each of the
        // other top_k − topk_groups falls in it with probability q_g / Q; each slot lands on the unit
        // with probability c = x / q_g.
        const double c = x[gr] / q[gr];
        miss *= 1.0 - sel[gr] * (1.0 - (first ? 1.0 - c : 1.0) * std::pow(1.0 - q[gr] / Q * c, rest));
      }
    }
    const double p = whole > 0 ? picked / whole : 0.0;
    for (int i = 0; i < whole; ++i) miss *= std::max(0.0, 1.0 - p * G / double(G - i));
    return miss;
  };
  s.hit_rank.assign(static_cast<std::size_t>(R), 0.0);
  s.copies_rank.assign(static_cast<std::size_t>(R), 0.0);
  std::vector<double> x(static_cast<std::size_t>(G));
  for (int r = 0; r < R; ++r) {
    for (int gr = 0; gr < G; ++gr) {
      x[gr] = group_rank[static_cast<std::size_t>(gr) * R + r];
      if (q[gr] > 0) s.copies_rank[r] += sel[gr] * ((first ? 1.0 : 0.0) + rest * q[gr] / Q) * x[gr] / q[gr];
    }
    s.hit_rank[r] = 1.0 - missed(x);
  }
  s.hit_node.assign(static_cast<std::size_t>(nodes), 0.0);
  for (int n = 0; n < nodes; ++n) {
    std::fill(x.begin(), x.end(), 0.0);
    for (int r = n * per_node; r < std::min(R, (n + 1) * per_node); ++r)
      for (int gr = 0; gr < G; ++gr) x[gr] += group_rank[static_cast<std::size_t>(gr) * R + r];
    s.hit_node[n] = 1.0 - missed(x);
  }
  link_copies(s, g);
  return s;
}

bool relays_over_nvlink(const EpGeometry& g) {
  const int per_node = std::max(1, std::min(g.per_node, g.ep));
  return g.hierarchical && !g.low_latency && g.ep > per_node;
}

AllToAllBytes all_to_all_bytes(const DispatchStats& s, const EpGeometry& g, double tokens,
                               double bytes_per_copy) {
  AllToAllBytes b;
  const double f = tokens * bytes_per_copy;
  b.nic_out = s.nic_out * f;
  b.nic_in = s.nic_in * f;
  b.nvlink_out = s.nvlink_out * f;
  b.nvlink_in = s.nvlink_in * f;
  const int per_node = std::max(1, std::min(g.per_node, g.ep));
  b.nodes = (g.ep + per_node - 1) / per_node;
  b.relay = relays_over_nvlink(g);
  return b;
}

}  // namespace moesim::models
