#pragma once
/// \file Expert placement: which expert-parallel rank holds each expert, registered by name.

#include <string>
#include <vector>

namespace moesim::models {

struct PlacementInfo {
  std::string name;
  std::string description;
};
/// Registered placement policies (for `moesim list` and validation).
const std::vector<PlacementInfo>& placement_policies();

/// Expert → EP rank for `experts` experts over `ep` ranks (ep divides experts). Throws ConfigError for
/// an unknown policy, listing the registered ones.
std::vector<int> place_experts(const std::string& policy, int experts, int ep);

/// Sum of `shares` per EP rank under `placement`.
std::vector<double> rank_shares(const std::vector<double>& shares, const std::vector<int>& placement, int ep);

}  // namespace moesim::models
