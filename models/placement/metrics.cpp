#include "models/placement/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <utility>

#include "models/placement/internal/plan.hpp"
#include "scenarios/error.hpp"

namespace moesim::models {

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
  internal::check_matrix("coactivation_cut", "/coactivation", coactivation, n);
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
                                      "a finite non-negative size in bytes",
                                      internal::number_text(expert_bytes)));
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
