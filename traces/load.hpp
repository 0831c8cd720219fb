#pragma once
/// \file Seeded load generators: the expected share of routed token slots each expert receives in one
/// MoE layer. Shares sum to 1 and no expert exceeds 1/top_k (a token picks an expert at most once).

#include <cstdint>
#include <string>
#include <vector>

#include "scenarios/registry.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::traces {

/// Load profiles: the closed-form expected shares of routing mode "expected" (routing.load.generator).
enum class LoadProfile { kUniform, kZipf, kHotExpert };
/// Registered load profiles.
const Registry<LoadProfile>& load_profiles();
/// True when `load` names the uniform profile (every expert the same share in every layer).
bool is_uniform(const LoadSpec& load);

/// Expected share of routed slots per expert for MoE layer `layer`. The zipf generator assigns ranks
/// to experts by a permutation drawn from (seed, layer), so layers differ but the same seed gives the
/// same shares, bit for bit; hot_expert puts the same expert first in every layer.
std::vector<double> expert_shares(const LoadSpec& load, int experts, int top_k, int layer);

/// The same as expert_shares, with the per-rank weights computed once for all layers (sweeps price
/// every MoE layer of every configuration).
class ShareGenerator {
 public:
  ShareGenerator(const LoadSpec& load, int experts, int top_k);
  /// Throws ConfigError when load.generator is not a registered load profile (a gate-score generator
  /// of routing mode "sampled" has no closed-form shares).
  std::vector<double> shares(int layer) const;

 private:
  LoadSpec load_;
  const LoadProfile* profile_;  ///< nullptr: load.generator is no load profile (shares() throws)
  int experts_, top_k_;
  std::vector<double> rank_weight_;  ///< zipf: (r+1)^-s / sum
};

/// Caps shares at `cap` and spreads the excess over the uncapped experts in proportion to their
/// shares (water-filling), preserving the sum.
void cap_shares(std::vector<double>& shares, double cap);

/// splitmix64: a tiny, portable, seeded generator (Steele et al. 2014) used wherever moesim draws
/// random numbers, so results do not depend on the standard library's distributions.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next();
  /// Uniform in [0, n).
  uint64_t below(uint64_t n) { return next() % n; }

 private:
  uint64_t state_;
};

}  // namespace moesim::traces
