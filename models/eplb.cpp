#include "models/eplb.hpp"

#include <algorithm>
#include <boost/graph/adjacency_list.hpp>
#include <cmath>
#include <numeric>
#include <sstream>
#include <utility>

#include "scenarios/error.hpp"

namespace moesim::models {
namespace {

std::string str(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

[[noreturn]] void fail(const std::string& policy, const std::string& pointer, const std::string& expected,
                       const std::string& found) {
  throw ConfigError(located_message("expert placement \"" + policy + "\"", pointer, expected, found));
}

// ------------------------------------------------------------------------------ shared building blocks

/// One layer before log2phy exists: slot → logical expert, slot → replica rank, replicas per expert.
struct LayerPlan {
  std::vector<int> phy2log, rank, logcnt;
};

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

// Builds log2phy: slot s is replica rank[s] of its expert; rows padded with -1 to the largest count.
ExpertPlacement assemble(const PlacementInput& in, std::vector<LayerPlan> plans) {
  ExpertPlacement p;
  p.layers = static_cast<int>(plans.size());
  p.num_physical = in.num_replicas;
  p.num_logical = static_cast<int>(in.weight.front().size());
  p.num_gpus = in.num_gpus;
  p.num_nodes = in.num_nodes;
  int width = 1;
  for (const LayerPlan& l : plans)
    width = std::max(width, *std::max_element(l.logcnt.begin(), l.logcnt.end()));
  for (LayerPlan& l : plans) {
    std::vector<std::vector<int>> inv(static_cast<std::size_t>(p.num_logical),
                                      std::vector<int>(static_cast<std::size_t>(width), -1));
    for (int s = 0; s < p.num_physical; ++s) {
      MOESIM_ASSERT(l.phy2log[s] >= 0 && l.rank[s] < l.logcnt[l.phy2log[s]],
                    "slot left empty or rank past count");
      inv[l.phy2log[s]][l.rank[s]] = s;
    }
    p.phy2log.push_back(std::move(l.phy2log));
    p.logcnt.push_back(std::move(l.logcnt));
    p.log2phy.push_back(std::move(inv));
  }
  return p;
}

int logical_experts(const PlacementInput& in) {
  return static_cast<int>(in.weight.front().size());
}

// ------------------------------------------------------------------------------------------- policies

void require_no_replicas(const std::string& policy, const PlacementInput& in) {
  if (in.num_replicas != logical_experts(in))
    fail(policy, "/num_replicas",
         "the number of logical experts (" + std::to_string(logical_experts(in)) +
             "; this policy makes no replicas)",
         std::to_string(in.num_replicas));
}

ExpertPlacement contiguous(const PlacementInput& in) {
  require_no_replicas("contiguous", in);
  const int n = logical_experts(in);
  std::vector<LayerPlan> plans;
  for (std::size_t l = 0; l < in.weight.size(); ++l) {
    LayerPlan p{std::vector<int>(static_cast<std::size_t>(n)),
                std::vector<int>(static_cast<std::size_t>(n), 0),
                std::vector<int>(static_cast<std::size_t>(n), 1)};
    std::iota(p.phy2log.begin(), p.phy2log.end(), 0);
    plans.push_back(std::move(p));
  }
  return assemble(in, std::move(plans));
}

ExpertPlacement round_robin(const PlacementInput& in) {
  require_no_replicas("round_robin", in);
  const int n = logical_experts(in);
  const int per_gpu = n / in.num_gpus;
  std::vector<LayerPlan> plans;
  for (std::size_t l = 0; l < in.weight.size(); ++l) {
    LayerPlan p{std::vector<int>(static_cast<std::size_t>(n)),
                std::vector<int>(static_cast<std::size_t>(n), 0),
                std::vector<int>(static_cast<std::size_t>(n), 1)};
    // Slot k of GPU g holds expert g + k * num_gpus, so expert e lands on GPU e mod num_gpus.
    for (int s = 0; s < n; ++s) p.phy2log[s] = s / per_gpu + (s % per_gpu) * in.num_gpus;
    plans.push_back(std::move(p));
  }
  return assemble(in, std::move(plans));
}

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

ExpertPlacement eplb(const PlacementInput& in) {
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
ExpertPlacement greedy(const PlacementInput& in) {
  std::vector<std::vector<int>> all(1, std::vector<int>(static_cast<std::size_t>(logical_experts(in))));
  std::iota(all[0].begin(), all[0].end(), 0);
  std::vector<LayerPlan> plans;
  for (const auto& row : in.weight)
    plans.push_back(place_in_nodes(row, all, in.num_replicas, in.num_gpus, false));
  return assemble(in, std::move(plans));
}

// ------------------------------------------------------------------------------- co-activation graph

using CoGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::undirectedS, boost::no_property,
                                      boost::property<boost::edge_weight_t, double>>;

CoGraph coactivation_graph(const std::vector<std::vector<double>>& c) {
  const int n = static_cast<int>(c.size());
  CoGraph g(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) {
      const double v = 0.5 * (c[i][j] + c[j][i]);
      if (v > 0) boost::add_edge(static_cast<std::size_t>(i), static_cast<std::size_t>(j), v, g);
    }
  return g;
}

double partition_cut(const CoGraph& g, const std::vector<int>& part) {
  const auto weight = boost::get(boost::edge_weight, g);
  double cut = 0;
  for (auto [e, end] = boost::edges(g); e != end; ++e)
    if (part[boost::source(*e, g)] != part[boost::target(*e, g)]) cut += weight[*e];
  return cut;
}

// Greedy balanced partition: every part but the last starts from the unassigned expert with the largest
// total co-activation and grows by the unassigned expert most co-activated with the part (lowest index on
// ties); the last part takes the rest.
std::vector<int> grow_parts(const CoGraph& g, int parts) {
  const auto weight = boost::get(boost::edge_weight, g);
  const int n = static_cast<int>(boost::num_vertices(g));
  const int size = n / parts;
  std::vector<double> degree(static_cast<std::size_t>(n), 0.0);
  for (int x = 0; x < n; ++x)
    for (auto [e, end] = boost::out_edges(static_cast<std::size_t>(x), g); e != end; ++e)
      degree[x] += weight[*e];
  std::vector<int> part(static_cast<std::size_t>(n), parts - 1);
  std::vector<char> taken(static_cast<std::size_t>(n), 0);
  for (int p = 0; p + 1 < parts; ++p) {
    std::vector<double> link(static_cast<std::size_t>(n), 0.0);
    for (int k = 0; k < size; ++k) {
      const std::vector<double>& key = k == 0 ? degree : link;
      int best = -1;
      for (int x = 0; x < n; ++x)
        if (!taken[x] && (best < 0 || key[x] > key[best])) best = x;
      taken[best] = 1;
      part[best] = p;
      for (auto [e, end] = boost::out_edges(static_cast<std::size_t>(best), g); e != end; ++e)
        link[boost::target(*e, g)] += weight[*e];
    }
  }
  return part;
}

// Pair-swap refinement in the spirit of Kernighan & Lin (1970, Bell Syst. Tech. J. 49(2)): repeatedly
// swap the two experts in different parts whose exchange lowers the cut most, until no swap lowers it.
// Part sizes never change and the cut never rises (a local optimum under swaps, without KL's tentative
// uphill moves).
void refine_parts(const CoGraph& g, std::vector<int>& part, int parts) {
  const auto weight = boost::get(boost::edge_weight, g);
  const int n = static_cast<int>(part.size());
  // conn[x][p]: co-activation between expert x and the experts of part p.
  std::vector<std::vector<double>> conn(static_cast<std::size_t>(n),
                                        std::vector<double>(static_cast<std::size_t>(parts), 0.0));
  double total = 0;
  for (int x = 0; x < n; ++x)
    for (auto [e, end] = boost::out_edges(static_cast<std::size_t>(x), g); e != end; ++e) {
      conn[x][part[boost::target(*e, g)]] += weight[*e];
      total += weight[*e];
    }
  const double tolerance = 1e-12 * total;  // ignore gains at rounding level so the loop ends
  auto move = [&](int x, int from, int to) {
    for (auto [e, end] = boost::out_edges(static_cast<std::size_t>(x), g); e != end; ++e) {
      conn[boost::target(*e, g)][from] -= weight[*e];
      conn[boost::target(*e, g)][to] += weight[*e];
    }
    part[x] = to;
  };
  for (int iter = 0; iter < n * n; ++iter) {
    double best_gain = tolerance;
    int best_a = -1, best_b = -1;
    for (int a = 0; a < n; ++a)
      for (int b = a + 1; b < n; ++b) {
        const int pa = part[a], pb = part[b];
        if (pa == pb) continue;
        double gain = conn[a][pb] - conn[a][pa] + conn[b][pa] - conn[b][pb];
        if (gain <= best_gain) continue;  // the a–b edge below can only lower it
        const auto [e, linked] = boost::edge(static_cast<std::size_t>(a), static_cast<std::size_t>(b), g);
        if (linked) gain -= 2 * weight[e];  // the a–b edge stays cut after the swap
        if (gain > best_gain) best_gain = gain, best_a = a, best_b = b;
      }
    if (best_a < 0) return;
    const int pa = part[best_a], pb = part[best_b];
    move(best_a, pa, pb);
    move(best_b, pb, pa);
  }
}

// Balanced partition of one layer's experts into `parts` equal parts with a small co-activation cut:
// refine both the greedy partition and the contiguous one and keep the better, so the result never cuts
// more than the contiguous placement does.
std::vector<std::vector<int>> coactivation_parts(const std::vector<std::vector<double>>& c, int parts) {
  const CoGraph g = coactivation_graph(c);
  const int n = static_cast<int>(c.size());
  std::vector<int> grown = grow_parts(g, parts);
  std::vector<int> blocks(static_cast<std::size_t>(n));
  for (int x = 0; x < n; ++x) blocks[x] = x / (n / parts);
  refine_parts(g, grown, parts);
  refine_parts(g, blocks, parts);
  const std::vector<int>& best = partition_cut(g, grown) <= partition_cut(g, blocks) ? grown : blocks;
  std::vector<std::vector<int>> members(static_cast<std::size_t>(parts));
  for (int x = 0; x < n; ++x) members[best[x]].push_back(x);
  return members;
}

void check_matrix(const std::string& policy, const std::string& pointer,
                  const std::vector<std::vector<double>>& c, int n) {
  if (static_cast<int>(c.size()) != n)
    fail(policy, pointer, std::to_string(n) + " rows (one per logical expert)", std::to_string(c.size()));
  for (int i = 0; i < n; ++i) {
    if (static_cast<int>(c[i].size()) != n)
      fail(policy, pointer + "/" + std::to_string(i), std::to_string(n) + " entries",
           std::to_string(c[i].size()));
    for (int j = 0; j < n; ++j)
      if (!std::isfinite(c[i][j]) || c[i][j] < 0)
        fail(policy, pointer + "/" + std::to_string(i) + "/" + std::to_string(j),
             "a finite non-negative count", str(c[i][j]));
  }
}

// Co-activation-aware placement: experts a token chooses together are best served by one node (its
// dispatch then crosses the slower inter-node network once, not per expert), so keep often co-activated
// experts together, as affinity-aware placements do (e.g. ExFlow, Yao et al. 2024, arXiv:2401.08383);
// within each node, replicate and pack by load as EPLB does.
ExpertPlacement coactivation(const PlacementInput& in) {
  const int n = logical_experts(in);
  const int layers = static_cast<int>(in.weight.size());
  const int matrices = static_cast<int>(in.coactivation.size());
  if (matrices != 1 && matrices != layers)
    fail("coactivation", "/coactivation", "1 or " + std::to_string(layers) + " co-activation matrices",
         std::to_string(matrices));
  if (n % in.num_nodes != 0)
    fail("coactivation", "/num_nodes",
         "a divisor of the number of logical experts (" + std::to_string(n) + ")",
         std::to_string(in.num_nodes));
  for (int m = 0; m < matrices; ++m)
    check_matrix("coactivation", "/coactivation/" + std::to_string(m), in.coactivation[m], n);
  std::vector<LayerPlan> plans;
  std::vector<std::vector<int>> members;
  for (int l = 0; l < layers; ++l) {
    if (l < matrices) members = coactivation_parts(in.coactivation[l], in.num_nodes);
    plans.push_back(place_in_nodes(in.weight[l], members, in.num_replicas, in.num_gpus, false));
  }
  return assemble(in, std::move(plans));
}

// ------------------------------------------------------------------------------------------- registry

void validate(const std::string& policy, const PlacementInput& in) {
  for (const auto& [name, v] : {std::pair<const char*, int>{"/num_gpus", in.num_gpus},
                                {"/num_nodes", in.num_nodes},
                                {"/num_groups", in.num_groups}})
    if (v < 1) fail(policy, name, "a positive integer", std::to_string(v));
  if (in.weight.empty()) fail(policy, "/weight", "at least one layer of expert loads", "none");
  const std::size_t n = in.weight.front().size();
  if (n == 0) fail(policy, "/weight/0", "at least one logical expert", "an empty row");
  for (std::size_t l = 0; l < in.weight.size(); ++l) {
    if (in.weight[l].size() != n)
      fail(policy, "/weight/" + std::to_string(l), std::to_string(n) + " loads (as in row 0)",
           std::to_string(in.weight[l].size()));
    for (std::size_t e = 0; e < n; ++e)
      if (!std::isfinite(in.weight[l][e]) || in.weight[l][e] < 0)
        fail(policy, "/weight/" + std::to_string(l) + "/" + std::to_string(e), "a finite non-negative load",
             str(in.weight[l][e]));
  }
  if (in.num_gpus % in.num_nodes != 0)
    fail(policy, "/num_gpus", "a multiple of num_nodes (" + std::to_string(in.num_nodes) + ")",
         std::to_string(in.num_gpus));
  if (in.num_replicas < 1 || in.num_replicas % in.num_gpus != 0)
    fail(policy, "/num_replicas", "a positive multiple of num_gpus (" + std::to_string(in.num_gpus) + ")",
         std::to_string(in.num_replicas));
  if (in.num_replicas < static_cast<int>(n))
    fail(policy, "/num_replicas", "at least the number of logical experts (" + std::to_string(n) + ")",
         std::to_string(in.num_replicas));
  if (static_cast<int>(n) % in.num_groups != 0)
    fail(policy, "/num_groups", "a divisor of the number of logical experts (" + std::to_string(n) + ")",
         std::to_string(in.num_groups));
}

}  // namespace

const Registry<PlacementPolicy>& placement_policies() {
  static const Registry<PlacementPolicy> r{
      "placement policy",
      "placement policies (placement.policy, moesim place --policy)",
      {{"contiguous", "no replicas; GPU g holds experts [g*E/G, (g+1)*E/G) (Megatron-Core default)",
        {contiguous, contiguous_assignment, false, false}},
       {"round_robin", "no replicas; expert e on GPU e mod G", {round_robin, round_robin_assignment, false, false}},
       {"eplb", "DeepSeek EPLB: groups packed onto nodes, hottest experts replicated, replicas packed onto GPUs",
        {eplb, contiguous_assignment, true, false}},
       {"greedy", "hottest experts replicated, replicas packed heaviest first onto the least loaded GPU (LPT)",
        {greedy, contiguous_assignment, true, false}},
       {"coactivation",
        "experts split over nodes to minimise co-activation cut, then replicated and packed by load",
        {coactivation, contiguous_assignment, true, true}}}};
  return r;
}

ExpertPlacement place(const std::string& policy, const PlacementInput& input) {
  const PlacementPolicy& p = placement_policies().get(policy);
  validate(policy, input);
  return p.place(input);
}

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

std::vector<LayerLoad> gpu_loads(const ExpertPlacement& placement, const ExpertLoads& weight) {
  if (static_cast<int>(weight.size()) != placement.layers)
    throw ConfigError(located_message("gpu_loads", "/weight", std::to_string(placement.layers) + " layers",
                                      std::to_string(weight.size())));
  std::vector<LayerLoad> out;
  for (int l = 0; l < placement.layers; ++l) {
    if (static_cast<int>(weight[l].size()) != placement.num_logical)
      throw ConfigError(located_message("gpu_loads", "/weight/" + std::to_string(l),
                                        std::to_string(placement.num_logical) + " loads",
                                        std::to_string(weight[l].size())));
    LayerLoad ll;
    ll.gpu.assign(static_cast<std::size_t>(placement.num_gpus), 0.0);
    for (int s = 0; s < placement.num_physical; ++s) {
      const int e = placement.phy2log[l][s];
      ll.gpu[placement.gpu_of_slot(s)] += weight[l][e] / placement.logcnt[l][e];
    }
    ll.max = *std::max_element(ll.gpu.begin(), ll.gpu.end());
    ll.mean = std::accumulate(ll.gpu.begin(), ll.gpu.end(), 0.0) / placement.num_gpus;
    ll.imbalance = ll.mean > 0 ? ll.max / ll.mean : 1.0;
    out.push_back(std::move(ll));
  }
  return out;
}

double coactivation_cut(const ExpertPlacement& placement, int layer,
                        const std::vector<std::vector<double>>& coactivation) {
  if (layer < 0 || layer >= placement.layers)
    throw ConfigError(located_message("coactivation_cut", "/layer",
                                      "a layer in [0, " + std::to_string(placement.layers) + ")",
                                      std::to_string(layer)));
  const int n = placement.num_logical;
  check_matrix("coactivation_cut", "/coactivation", coactivation, n);
  // on[e][node]: whether a replica of e sits on that node.
  std::vector<std::vector<char>> on(static_cast<std::size_t>(n),
                                    std::vector<char>(static_cast<std::size_t>(placement.num_nodes), 0));
  for (int s = 0; s < placement.num_physical; ++s)
    on[placement.phy2log[layer][s]][placement.node_of_gpu(placement.gpu_of_slot(s))] = 1;
  double cut = 0;
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) {
      bool shared = false;
      for (int node = 0; node < placement.num_nodes && !shared; ++node) shared = on[i][node] && on[j][node];
      if (!shared) cut += 0.5 * (coactivation[i][j] + coactivation[j][i]);
    }
  return cut;
}

std::vector<double> rebalance_bytes(const ExpertPlacement& from, const ExpertPlacement& to,
                                    double expert_bytes) {
  auto mismatch = [](const char* what, int a, int b) {
    throw ConfigError(located_message("rebalance_bytes", std::string("/") + what,
                                      "the same value in both placements (" + std::to_string(a) + ")",
                                      std::to_string(b)));
  };
  if (from.layers != to.layers) mismatch("layers", from.layers, to.layers);
  if (from.num_logical != to.num_logical) mismatch("num_logical", from.num_logical, to.num_logical);
  if (from.num_gpus != to.num_gpus) mismatch("num_gpus", from.num_gpus, to.num_gpus);
  if (!std::isfinite(expert_bytes) || expert_bytes < 0)
    throw ConfigError(located_message("rebalance_bytes", "/expert_bytes",
                                      "a finite non-negative size in bytes", str(expert_bytes)));
  std::vector<double> bytes(static_cast<std::size_t>(to.num_gpus), 0.0);
  for (int l = 0; l < to.layers; ++l) {
    // hosted[g][e]: 1 when GPU g holds expert e before, 2 when it holds it after.
    std::vector<std::vector<char>> hosted(static_cast<std::size_t>(to.num_gpus),
                                          std::vector<char>(static_cast<std::size_t>(to.num_logical), 0));
    for (int s = 0; s < from.num_physical; ++s) hosted[from.gpu_of_slot(s)][from.phy2log[l][s]] |= 1;
    for (int s = 0; s < to.num_physical; ++s) hosted[to.gpu_of_slot(s)][to.phy2log[l][s]] |= 2;
    for (int g = 0; g < to.num_gpus; ++g)
      for (char h : hosted[g])
        if (h == 2) bytes[g] += expert_bytes;
  }
  return bytes;
}

}  // namespace moesim::models
