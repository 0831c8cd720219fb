#include "models/placement.hpp"

#include <cmath>
#include <numeric>
#include <utility>

#include "models/placement/internal/plan.hpp"
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

std::vector<double> rank_shares(const std::vector<double>& shares, const std::vector<int>& placement,
                                int ep) {
  std::vector<double> r(static_cast<std::size_t>(ep), 0.0);
  for (std::size_t e = 0; e < shares.size(); ++e) r[placement[e]] += shares[e];
  return r;
}

// ------------------------------------------------------------------ no-replica layouts and validation

namespace {

using internal::assemble;
using internal::LayerPlan;
using internal::logical_experts;
using internal::number_text;
using internal::placement_error;

void require_no_replicas(const std::string& policy, const PlacementInput& in) {
  if (in.num_replicas != logical_experts(in))
    placement_error(policy, "/num_replicas",
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

void validate(const std::string& policy, const PlacementInput& in) {
  for (const auto& [name, v] : {std::pair<const char*, int>{"/num_gpus", in.num_gpus},
                                {"/num_nodes", in.num_nodes},
                                {"/num_groups", in.num_groups}})
    if (v < 1) placement_error(policy, name, "a positive integer", std::to_string(v));
  if (in.weight.empty()) placement_error(policy, "/weight", "at least one layer of expert loads", "none");
  const std::size_t n = in.weight.front().size();
  if (n == 0) placement_error(policy, "/weight/0", "at least one logical expert", "an empty row");
  for (std::size_t l = 0; l < in.weight.size(); ++l) {
    if (in.weight[l].size() != n)
      placement_error(policy, "/weight/" + std::to_string(l), std::to_string(n) + " loads (as in row 0)",
                      std::to_string(in.weight[l].size()));
    for (std::size_t e = 0; e < n; ++e)
      if (!std::isfinite(in.weight[l][e]) || in.weight[l][e] < 0)
        placement_error(policy, "/weight/" + std::to_string(l) + "/" + std::to_string(e),
                        "a finite non-negative load", number_text(in.weight[l][e]));
  }
  if (in.num_gpus % in.num_nodes != 0)
    placement_error(policy, "/num_gpus", "a multiple of num_nodes (" + std::to_string(in.num_nodes) + ")",
                    std::to_string(in.num_gpus));
  if (in.num_replicas < 1 || in.num_replicas % in.num_gpus != 0)
    placement_error(policy, "/num_replicas",
                    "a positive multiple of num_gpus (" + std::to_string(in.num_gpus) + ")",
                    std::to_string(in.num_replicas));
  if (in.num_replicas < static_cast<int>(n))
    placement_error(policy, "/num_replicas",
                    "at least the number of logical experts (" + std::to_string(n) + ")",
                    std::to_string(in.num_replicas));
  if (static_cast<int>(n) % in.num_groups != 0)
    placement_error(policy, "/num_groups",
                    "a divisor of the number of logical experts (" + std::to_string(n) + ")",
                    std::to_string(in.num_groups));
}

}  // namespace

// ------------------------------------------------------------------------------------------- registry

const Registry<PlacementPolicy>& placement_policies() {
  static const Registry<PlacementPolicy> r{
      "placement policy",
      "placement policies (placement.policy, moesim place --policy)",
      {{"contiguous",
        "no replicas; GPU g holds experts [g*E/G, (g+1)*E/G) (Megatron-Core default)",
        {contiguous, contiguous_assignment, false, false}},
       {"round_robin",
        "no replicas; expert e on GPU e mod G",
        {round_robin, round_robin_assignment, false, false}},
       {"eplb",
        "DeepSeek EPLB: groups packed onto nodes, hottest experts replicated, replicas packed onto GPUs",
        {internal::eplb_policy, contiguous_assignment, true, false}},
       {"greedy",
        "hottest experts replicated, replicas packed heaviest first onto the least loaded GPU (LPT)",
        {internal::greedy_policy, contiguous_assignment, true, false}},
       {"coactivation",
        "experts split over nodes to minimise co-activation cut, then replicated and packed by load",
        {internal::coactivation_policy, contiguous_assignment, true, true}}}};
  return r;
}

ExpertPlacement place(const std::string& policy, const PlacementInput& input) {
  const PlacementPolicy& p = placement_policies().get(policy);
  validate(policy, input);
  return p.place(input);
}

}  // namespace moesim::models
