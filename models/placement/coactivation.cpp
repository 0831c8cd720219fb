#include "models/placement/coactivation.hpp"

#include <boost/graph/adjacency_list.hpp>
#include <string>
#include <utility>

#include "models/placement/internal/plan.hpp"

namespace moesim::models {
namespace {

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

}  // namespace

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

namespace internal {

// Co-activation-aware placement: experts a token chooses together are best served by one node (its
// dispatch then crosses the slower inter-node network once, not per expert), so keep often co-activated
// experts together, as affinity-aware placements do (e.g. ExFlow, Yao et al. 2024, arXiv:2401.08383);
// within each node, replicate and pack by load as EPLB does.
ExpertPlacement coactivation_policy(const PlacementInput& in) {
  const int n = logical_experts(in);
  const int layers = static_cast<int>(in.weight.size());
  const int matrices = static_cast<int>(in.coactivation.size());
  if (matrices != 1 && matrices != layers)
    placement_error("coactivation", "/coactivation",
                    "1 or " + std::to_string(layers) + " co-activation matrices", std::to_string(matrices));
  if (n % in.num_nodes != 0)
    placement_error("coactivation", "/num_nodes",
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

}  // namespace internal

}  // namespace moesim::models
