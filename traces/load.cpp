#include "traces/load.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace moesim::traces {

uint64_t SplitMix64::next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

const Registry<LoadProfile>& load_profiles() {
  static const Registry<LoadProfile> r{
      "load profile",
      "load profiles (routing.load.generator in routing mode \"expected\")",
      {{"uniform", "every expert receives the same share of routed slots", LoadProfile::kUniform},
       {"zipf",
        "share of the expert ranked r is proportional to (r+1)^-s; ranks permuted per layer by the seed",
        LoadProfile::kZipf},
       {"hot_expert",
        "expert hot_expert takes hot_fraction of the routed slots in every layer; the rest share equally",
        LoadProfile::kHotExpert}}};
  return r;
}

bool is_uniform(const LoadSpec& load) {
  const LoadProfile* p = load_profiles().find(load.generator);
  return p && *p == LoadProfile::kUniform;
}

void cap_shares(std::vector<double>& shares, double cap) {
  // Water-filling: repeatedly clamp the experts above the cap and rescale the rest.
  const double total = std::accumulate(shares.begin(), shares.end(), 0.0);
  thread_local std::vector<char> capped;  // reused: skewed routing caps every layer's shares
  capped.assign(shares.size(), 0);
  for (std::size_t iter = 0; iter < shares.size(); ++iter) {
    double fixed = 0, free_sum = 0;
    for (std::size_t i = 0; i < shares.size(); ++i)
      (capped[i] ? fixed : free_sum) += capped[i] ? cap : shares[i];
    const double scale = free_sum > 0 ? (total - fixed) / free_sum : 0.0;
    bool changed = false;
    for (std::size_t i = 0; i < shares.size(); ++i) {
      if (capped[i]) {
        shares[i] = cap;
      } else {
        shares[i] *= scale;
        if (shares[i] > cap * (1 + 1e-12)) {
          capped[i] = 1;
          changed = true;
        }
      }
    }
    if (!changed) break;
  }
}

ShareGenerator::ShareGenerator(const LoadSpec& load, int experts, int top_k)
    : load_(load), profile_(load_profiles().find(load.generator)), experts_(experts), top_k_(top_k) {
  if (profile_ && *profile_ == LoadProfile::kZipf) {
    rank_weight_.resize(static_cast<std::size_t>(experts));
    double sum = 0;
    for (int r = 0; r < experts; ++r) sum += rank_weight_[r] = std::pow(r + 1.0, -load.zipf_s);
    for (auto& w : rank_weight_) w /= sum;
  }
}

std::vector<double> ShareGenerator::shares(int layer) const {
  const int experts = experts_;
  std::vector<double> s(static_cast<std::size_t>(experts), 1.0 / experts);
  if (!profile_) load_profiles().require(load_.generator);  // throws, naming the valid profiles
  if (*profile_ == LoadProfile::kUniform || experts <= 1) return s;
  if (*profile_ == LoadProfile::kHotExpert) {
    const double rest = (1.0 - load_.hot_fraction) / (experts - 1);
    for (int e = 0; e < experts; ++e) s[e] = e == load_.hot_expert ? load_.hot_fraction : rest;
    if (top_k_ > 0) cap_shares(s, 1.0 / top_k_);
    return s;
  }
  // A per-layer permutation decides which expert gets which rank (Fisher-Yates).
  thread_local std::vector<int> perm;  // reused: one permutation per MoE layer of every evaluation
  perm.resize(static_cast<std::size_t>(experts));
  std::iota(perm.begin(), perm.end(), 0);
  SplitMix64 rng(load_.seed * 0x100000001b3ULL + static_cast<uint64_t>(layer));
  for (int i = experts - 1; i > 0; --i) std::swap(perm[i], perm[rng.below(static_cast<uint64_t>(i) + 1)]);
  for (int r = 0; r < experts; ++r) s[perm[r]] = rank_weight_[r];
  if (top_k_ > 0) cap_shares(s, 1.0 / top_k_);
  return s;
}

std::vector<double> expert_shares(const LoadSpec& load, int experts, int top_k, int layer) {
  return ShareGenerator(load, experts, top_k).shares(layer);
}

}  // namespace moesim::traces
