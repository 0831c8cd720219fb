#include "models/placement/eplb.hpp"

#include <algorithm>
#include <numeric>
#include <utility>
#include <vector>

#include "models/placement/internal/plan.hpp"

namespace moesim::models {
namespace internal {
namespace {

struct Packing {
  std::vector<int> pack, rank;  // per item: its pack, and its position inside the pack
};

// Balanced packing (DeepSeek EPLB, eplb.py, balanced_packing): n items into `packs` packs of exactly
// n / packs items. Items are taken heaviest first and each goes to the lightest pack that still has room,
// the lowest-numbered one on equal loads (Python's min() keeps the first minimum). The reference sorts with
// torch.sort(descending=True) without stable=True, whose order among equal keys is unspecified in general;
// we fix it to input order, which is what PyTorch's CPU path (libstdc++ std::sort, an insertion sort up to
// 16 items) gives on short rows, and what the README example needs (layer 1, node 0 has three replicas of
// load 86). When every pack takes one item the reference skips the greedy and puts item i in pack i;
// `identity_when_single` reproduces that (plain LPT does not).
template <class T>
Packing balanced_packing(const std::vector<T>& w, int packs, bool identity_when_single) {
  const int n = static_cast<int>(w.size());
  const int per_pack = n / packs;
  Packing out{std::vector<int>(w.size()), std::vector<int>(w.size(), 0)};
  if (per_pack == 1 && identity_when_single) {
    std::iota(out.pack.begin(), out.pack.end(), 0);
    return out;
  }
  std::vector<int> order(w.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return w[a] > w[b]; });
  std::vector<T> load(static_cast<std::size_t>(packs), T(0));
  std::vector<int> items(static_cast<std::size_t>(packs), 0);
  for (int i : order) {
    int best = -1;
    for (int p = 0; p < packs; ++p)
      if (items[p] < per_pack && (best < 0 || load[p] < load[best])) best = p;
    out.pack[i] = best;
    out.rank[i] = items[best]++;
    load[best] += w[i];
  }
  return out;
}

struct Replication {
  std::vector<int> phy2local, rank, count;  // per physical: expert, replica rank; per expert: replicas
};

// Redundant experts (eplb.py, replicate_experts): the first n physical experts are the n experts; each
// further one replicates the expert with the highest load per replica, the lowest index on ties
// (torch.max over a dimension returns the first maximal index).
template <class T>
Replication replicate(const std::vector<T>& w, int slots) {
  const int n = static_cast<int>(w.size());
  Replication r{std::vector<int>(static_cast<std::size_t>(slots)),
                std::vector<int>(static_cast<std::size_t>(slots), 0), std::vector<int>(w.size(), 1)};
  std::iota(r.phy2local.begin(), r.phy2local.begin() + n, 0);
  for (int s = n; s < slots; ++s) {
    int best = 0;
    T best_load = w[0] / static_cast<T>(r.count[0]);
    for (int e = 1; e < n; ++e) {
      const T l = w[e] / static_cast<T>(r.count[e]);
      if (l > best_load) best = e, best_load = l;
    }
    r.phy2local[s] = best;
    r.rank[s] = r.count[best]++;
  }
  return r;
}

}  // namespace

// Steps 2 and 3 of eplb.py's rebalance_experts_hierarchical: node n holds the experts members[n] (their
// order matters for ties) on its num_physical / nodes slots; replicate them within the node, then pack
// the replicas (each carrying load / replicas) onto the node's GPUs.
template <class T>
LayerPlan place_in_nodes(const std::vector<T>& w, const std::vector<std::vector<int>>& members,
                         int num_physical, int num_gpus, bool identity_when_single) {
  const int nodes = static_cast<int>(members.size());
  const int slots_per_node = num_physical / nodes;
  const int slots_per_gpu = num_physical / num_gpus;
  LayerPlan plan{std::vector<int>(static_cast<std::size_t>(num_physical), -1),
                 std::vector<int>(static_cast<std::size_t>(num_physical), 0), std::vector<int>(w.size(), 0)};
  for (int n = 0; n < nodes; ++n) {
    const std::vector<int>& m = members[n];
    std::vector<T> local(m.size());
    for (std::size_t j = 0; j < m.size(); ++j) local[j] = w[m[j]];
    const Replication r = replicate(local, slots_per_node);
    std::vector<T> per_replica(static_cast<std::size_t>(slots_per_node));
    for (int p = 0; p < slots_per_node; ++p)
      per_replica[p] = local[r.phy2local[p]] / static_cast<T>(r.count[r.phy2local[p]]);
    const Packing pk = balanced_packing(per_replica, num_gpus / nodes, identity_when_single);
    for (int p = 0; p < slots_per_node; ++p) {
      const int slot = n * slots_per_node + pk.pack[p] * slots_per_gpu + pk.rank[p];
      plan.phy2log[slot] = m[r.phy2local[p]];
      plan.rank[slot] = r.rank[p];
    }
    for (std::size_t j = 0; j < m.size(); ++j) plan.logcnt[m[j]] = r.count[j];
  }
  return plan;
}

template LayerPlan place_in_nodes<double>(const std::vector<double>&, const std::vector<std::vector<int>>&,
                                          int, int, bool);

namespace {

// DeepSeek EPLB, eplb.py (rebalance_experts_hierarchical), one layer. The reference works in float32
// (weight.float()), so loads, per-replica loads and pack sums are float here too: equal keys, and hence
// tie-breaking, are those of the reference. Group sums are formed in double and rounded once, which equals
// the reference's float32 sum whenever its partial sums are exact (integer counts below 2^24).
LayerPlan eplb_layer(const std::vector<float>& w, int groups, int nodes, int num_physical, int num_gpus) {
  const int n = static_cast<int>(w.size());
  const int group_size = n / groups;
  std::vector<float> group_load(static_cast<std::size_t>(groups));
  for (int g = 0; g < groups; ++g) {
    double s = 0;
    for (int j = 0; j < group_size; ++j) s += w[g * group_size + j];
    group_load[g] = static_cast<float>(s);
  }
  // Step 1: groups onto nodes. A node lists its groups in packing order, each group's experts in order.
  const Packing gp = balanced_packing(group_load, nodes, true);
  std::vector<std::vector<int>> members(static_cast<std::size_t>(nodes),
                                        std::vector<int>(static_cast<std::size_t>(n / nodes)));
  for (int g = 0; g < groups; ++g)
    for (int j = 0; j < group_size; ++j)
      members[gp.pack[g]][gp.rank[g] * group_size + j] = g * group_size + j;
  // Steps 2 and 3: replicas within each node, replicas onto the node's GPUs.
  return place_in_nodes(w, members, num_physical, num_gpus, true);
}

}  // namespace

ExpertPlacement eplb_policy(const PlacementInput& in) {
  // Hierarchical when nodes divide groups; otherwise the global policy, i.e. one group on one node.
  const bool hierarchical = in.num_groups % in.num_nodes == 0;
  const int groups = hierarchical ? in.num_groups : 1;
  const int nodes = hierarchical ? in.num_nodes : 1;
  std::vector<LayerPlan> plans;
  for (const auto& row : in.weight) {
    const std::vector<float> w(row.begin(), row.end());
    plans.push_back(eplb_layer(w, groups, nodes, in.num_replicas, in.num_gpus));
  }
  return assemble(in, std::move(plans));
}

// Longest-processing-time packing (Graham 1969, SIAM J. Appl. Math. 17(2)) with equal slots per GPU over
// all GPUs, nodes and groups ignored, after giving the redundant slots to the hottest experts by EPLB's
// replica rule. In double precision and without EPLB's one-item-per-pack shortcut.
ExpertPlacement greedy_policy(const PlacementInput& in) {
  std::vector<std::vector<int>> all(1, std::vector<int>(static_cast<std::size_t>(logical_experts(in))));
  std::iota(all[0].begin(), all[0].end(), 0);
  std::vector<LayerPlan> plans;
  for (const auto& row : in.weight)
    plans.push_back(place_in_nodes(row, all, in.num_replicas, in.num_gpus, false));
  return assemble(in, std::move(plans));
}

}  // namespace internal

ExpertPlacement rebalance_experts(const ExpertLoads& weight, int num_replicas, int num_groups, int num_nodes,
                                  int num_gpus) {
  PlacementInput in;
  in.weight = weight;
  in.num_replicas = num_replicas;
  in.num_groups = num_groups;
  in.num_nodes = num_nodes;
  in.num_gpus = num_gpus;
  return place("eplb", in);
}

}  // namespace moesim::models
