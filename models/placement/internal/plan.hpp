#pragma once
/// \file Building blocks the placement policies and metrics share (models/placement.cpp and
/// models/placement/*.cpp); not part of the API.

#include <string>
#include <vector>

#include "models/placement.hpp"

namespace moesim::models::internal {

/// A number as an error message shows it: up to 17 significant digits.
std::string number_text(double v);

/// Throws ConfigError "expert placement "POLICY": POINTER: expected EXPECTED, found FOUND".
[[noreturn]] void placement_error(const std::string& policy, const std::string& pointer,
                                  const std::string& expected, const std::string& found);

/// Throws ConfigError unless `c` is an n × n matrix of finite non-negative counts; `pointer` locates
/// `c` in the message.
void check_matrix(const std::string& policy, const std::string& pointer,
                  const std::vector<std::vector<double>>& c, int n);

/// One layer before log2phy exists: slot → logical expert, slot → replica rank, replicas per expert.
struct LayerPlan {
  std::vector<int> phy2log, rank, logcnt;
};

/// Logical experts per layer of validated input (the length of its first load row).
int logical_experts(const PlacementInput& in);

/// The placement of validated input from one plan per layer; builds log2phy (slot s is replica rank[s]
/// of its expert; rows padded with -1 to the largest count).
ExpertPlacement assemble(const PlacementInput& in, std::vector<LayerPlan> plans);

/// Steps 2 and 3 of DeepSeek EPLB's hierarchical policy (models/placement/eplb.cpp): node n holds the
/// experts members[n] on num_physical / members.size() slots; they are replicated within the node and
/// the replicas packed onto its GPUs. `w`: loads of all logical experts [any unit]. Defined for float
/// and double.
template <class T>
LayerPlan place_in_nodes(const std::vector<T>& w, const std::vector<std::vector<int>>& members,
                         int num_physical, int num_gpus, bool identity_when_single);

/// The load-aware policies of the registry (models/placement.cpp), on input place() has validated.
ExpertPlacement eplb_policy(const PlacementInput& in);          ///< models/placement/eplb.cpp
ExpertPlacement greedy_policy(const PlacementInput& in);        ///< models/placement/eplb.cpp
ExpertPlacement coactivation_policy(const PlacementInput& in);  ///< models/placement/coactivation.cpp

}  // namespace moesim::models::internal
