#pragma once
/// \file What an expert placement (models/placement.hpp) implies: the per-GPU load and imbalance of each
/// layer, the co-activation its node boundaries cut, and the weight traffic of moving from one placement
/// to another.

#include <vector>

#include "models/placement.hpp"

namespace moesim::models {

/// Per-GPU load of one layer.
struct LayerLoad {
  std::vector<double> gpu;  ///< load of each GPU [unit of the weights]
  double max = 0;           ///< largest GPU load
  double mean = 0;          ///< mean GPU load
  double imbalance = 1;     ///< max / mean (1 when every load is 0)
};

/// Per-GPU loads of every layer: a logical expert's weight is split evenly over its replicas. Throws
/// ConfigError when `weight` is not layers × num_logical.
std::vector<LayerLoad> gpu_loads(const ExpertPlacement& placement, const ExpertLoads& weight);

/// Co-activation weight cut between nodes in `layer`: Σ over pairs i < j that share no node of
/// (c[i][j] + c[j][i]) / 2. With one replica per expert this is the usual graph cut of the node
/// partition. `coactivation`: counts of tokens choosing both experts [tokens]; the result is in the same
/// unit. Throws ConfigError when `coactivation` is not num_logical × num_logical.
double coactivation_cut(const ExpertPlacement& placement, int layer,
                        const std::vector<std::vector<double>>& coactivation);

/// Weight traffic of a periodic rebalance from `from` to `to`: for each GPU, the bytes it must receive,
/// i.e. `expert_bytes` [bytes] (one expert's weights) for each (layer, logical expert) it hosts in `to`
/// but not in `from`, summed over layers [bytes]. Throws ConfigError unless both placements have the
/// same layers, logical experts and GPUs, or when expert_bytes is negative.
std::vector<double> rebalance_bytes(const ExpertPlacement& from, const ExpertPlacement& to,
                                    double expert_bytes);

}  // namespace moesim::models
