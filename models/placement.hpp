#pragma once
/// \file Expert placement: which expert-parallel rank holds each expert, registered by name.

#include <string>
#include <vector>

#include "scenarios/registry.hpp"

namespace moesim::models {

struct ExpertPlacement;
struct PlacementInput;

/// A placement policy: how the physical expert slots of every MoE layer are filled (models/eplb.hpp).
struct PlacementPolicy {
  /// Places every layer's experts (and replicas) from the observed loads.
  ExpertPlacement (*place)(const PlacementInput& input);
  /// Expert → EP rank before any load is observed (ep divides experts).
  std::vector<int> (*assign)(int experts, int ep);
  /// True when the placement follows observed loads (replicas, packing); false when `assign` fixes it.
  bool load_aware;
  /// True when the policy needs token-level routing (PlacementInput::coactivation).
  bool needs_coactivation;
};
/// Registered placement policies (placement.policy, `moesim place --policy`).
const Registry<PlacementPolicy>& placement_policies();

/// Experts [r·E/ep, (r+1)·E/ep) on EP rank r (Megatron-Core's default).
std::vector<int> contiguous_assignment(int experts, int ep);
/// Expert e on EP rank e mod ep.
std::vector<int> round_robin_assignment(int experts, int ep);

/// Expert → EP rank of placement policy `policy` before loads are observed. Throws ConfigError for an
/// unknown policy, listing the registered ones.
std::vector<int> place_experts(const std::string& policy, int experts, int ep);

/// Sum of `shares` per EP rank under `placement`.
std::vector<double> rank_shares(const std::vector<double>& shares, const std::vector<int>& placement, int ep);

}  // namespace moesim::models
