#pragma once
/// \file Co-activation-aware expert placement (the "coactivation" policy, models/placement.hpp): experts
/// a token chooses together are kept on one node, so its dispatch crosses the slower inter-node network
/// once rather than once per expert. The experts are partitioned over nodes to minimise the cut
/// co-activation, then replicated and packed onto each node's GPUs by load as EPLB does.

#include <vector>

#include "models/placement.hpp"

namespace moesim::models {

/// Balanced partition of one layer's n experts into `parts` parts of n / parts experts with a small
/// co-activation cut (the weight (c[i][j] + c[j][i]) / 2 of pairs in different parts): a greedy growth
/// and the contiguous partition, each refined by pair swaps, the better kept, so the cut is never larger
/// than the contiguous partition's. `c`: n × n finite non-negative co-activation counts [tokens];
/// `parts` must divide n (not checked: place() validates both). Returns the experts of each part in
/// increasing order.
std::vector<std::vector<int>> coactivation_parts(const std::vector<std::vector<double>>& c, int parts);

}  // namespace moesim::models
