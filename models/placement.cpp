#include "models/placement.hpp"

#include "scenarios/error.hpp"

namespace moesim::models {
namespace {

using PlaceFn = std::vector<int> (*)(int experts, int ep);

std::vector<int> contiguous(int experts, int ep) {
  std::vector<int> p(static_cast<std::size_t>(experts));
  const int per = experts / ep;
  for (int e = 0; e < experts; ++e) p[e] = e / per;
  return p;
}

std::vector<int> round_robin(int experts, int ep) {
  std::vector<int> p(static_cast<std::size_t>(experts));
  for (int e = 0; e < experts; ++e) p[e] = e % ep;
  return p;
}

struct Entry {
  PlacementInfo info;
  PlaceFn fn;
};

const std::vector<Entry>& registry() {
  static const std::vector<Entry> kEntries{
      {{"contiguous", "experts [r*E/ep, (r+1)*E/ep) on EP rank r (Megatron-Core default)"}, contiguous},
      {{"round_robin", "expert e on EP rank e mod ep"}, round_robin},
  };
  return kEntries;
}

}  // namespace

const std::vector<PlacementInfo>& placement_policies() {
  static const std::vector<PlacementInfo> kInfos = [] {
    std::vector<PlacementInfo> v;
    for (const auto& e : registry()) v.push_back(e.info);
    return v;
  }();
  return kInfos;
}

std::vector<int> place_experts(const std::string& policy, int experts, int ep) {
  for (const auto& e : registry())
    if (e.info.name == policy) return e.fn(experts, ep);
  std::string list;
  for (const auto& e : registry()) list += (list.empty() ? "" : ", ") + e.info.name;
  throw ConfigError("placement policy: expected one of " + list + ", found \"" + policy + "\"");
}

std::vector<double> rank_shares(const std::vector<double>& shares, const std::vector<int>& placement, int ep) {
  std::vector<double> r(static_cast<std::size_t>(ep), 0.0);
  for (std::size_t e = 0; e < shares.size(); ++e) r[placement[e]] += shares[e];
  return r;
}

}  // namespace moesim::models
