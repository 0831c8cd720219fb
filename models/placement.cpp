#include "models/placement.hpp"

#include "models/eplb.hpp"
#include "scenarios/error.hpp"

namespace moesim::models {
std::vector<int> contiguous_assignment(int experts, int ep) {
  std::vector<int> p(static_cast<std::size_t>(experts));
  const int per = experts / ep;
  for (int e = 0; e < experts; ++e) p[e] = e / per;
  return p;
}

std::vector<int> round_robin_assignment(int experts, int ep) {
  std::vector<int> p(static_cast<std::size_t>(experts));
  for (int e = 0; e < experts; ++e) p[e] = e % ep;
  return p;
}

std::vector<int> place_experts(const std::string& policy, int experts, int ep) {
  return placement_policies().get(policy).assign(experts, ep);
}

std::vector<double> rank_shares(const std::vector<double>& shares, const std::vector<int>& placement, int ep) {
  std::vector<double> r(static_cast<std::size_t>(ep), 0.0);
  for (std::size_t e = 0; e < shares.size(); ++e) r[placement[e]] += shares[e];
  return r;
}

}  // namespace moesim::models
