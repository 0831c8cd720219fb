#pragma once
/// \file Seeded gate-score generators: synthetic router logits (tokens × experts, dimensionless
/// pre-softmax scores) for one (step, MoE layer, source rank), the input that routing policies
/// (traces/policies.hpp) turn into routes. A logit is
///
///     logit[t][e] = bias[e] + noise_scale · (G[t][e] − γ_EM),    G ~ Gumbel(0, 1), γ_EM = 0.5772…
///
/// where the bias profile (uniform, zipf, dirichlet, …) depends on (seed, step, layer) only and the noise
/// on (seed, step, layer, source, token, expert). The noise is Gumbel, not normal, because of the
/// Gumbel-max trick (Gumbel 1954; Maddison et al. 2014): at noise_scale 1 the arg max of bias + G is
/// distributed exactly as softmax(bias), and the top k are k draws without replacement in proportion
/// to exp(bias) (Plackett–Luce; Kool et al. 2019). So a profile written as bias = log p gives its top-1
/// shares p exactly; normal noise has no closed form for them. The noise is centred (γ_EM subtracted)
/// so that sigmoid scores are not shifted; the shift changes no softmax and no top-k choice.
///
/// Every draw comes from SplitMix64 (traces/load.hpp) with transcendental functions from <cmath>, never
/// from std:: distributions, so the same inputs give the same logits on every standard library.

#include <cstdint>
#include <string>
#include <vector>

#include "traces/load.hpp"

namespace moesim::traces {

/// Parameters of a gate-score generator. Logits and biases are in logit units (dimensionless).
struct GeneratorSpec {
  std::string name = "uniform";  ///< registered bias profile, see gate_generators()
  uint64_t seed = 1;             ///< every random choice derives from it
  /// Temperature: the Gumbel noise is multiplied by it (logit units, ≥ 0). At 1 the top-1 shares equal
  /// softmax(bias); above 1 routing is more uniform, below 1 more concentrated; 0 gives logits = bias.
  double noise_scale = 1.0;
  double s = 1.0;      ///< zipf: exponent (≥ 0); the expert of rank r gets top-1 share ∝ (r+1)^-s
  double alpha = 1.0;  ///< dirichlet: concentration of the symmetric Dirichlet (> 0)
  /// hot_expert, rotating, bursts: top-1 share of the hot expert at noise_scale 1; hot_rank: top-1
  /// share of all experts of the hot rank together. In (0, 1). With top_k > 1 a hot expert's share of
  /// routed slots is smaller (an expert takes at most one slot of a token, at most 1/top_k of them).
  double hot_fraction = 0.5;
  int hot_expert = 0;        ///< hot_expert: the hot expert id; rotating: the hot expert on step 0
  int hot_rank = 0;          ///< hot_rank: the hot EP rank id
  int experts_per_rank = 1;  ///< hot_rank: experts per EP rank; rank r holds [r·n, (r+1)·n) (contiguous)
  double burst_probability = 0.1;  ///< bursts: probability that a step is hot, in [0, 1]
  /// drift: standard deviation of each expert's bias change from one step to the next (logit units, ≥ 0).
  double drift_sigma = 0.1;
};

/// Registered gate-score generators (bias profiles, routing.load.generator in routing mode "sampled").
const RegistryBase& gate_generators();

/// A validated generator for a fixed number of experts. Stateless after construction: every call is a
/// pure function of (spec, experts, step, layer, source, tokens), so calls may come in any order and
/// the same arguments give bit-identical logits.
class GateScoreGenerator {
 public:
  /// Throws ConfigError for an unknown name (listing the registered ones) or an invalid parameter
  /// (saying expected and found), e.g. experts not divisible by experts_per_rank for hot_rank.
  GateScoreGenerator(GeneratorSpec spec, int experts);

  /// The parameters it was built from.
  const GeneratorSpec& spec() const { return spec_; }
  /// Experts per token row of logits.
  int experts() const { return experts_; }

  /// The bias profile of (step ≥ 0, layer ≥ 0), one value per expert, logit units; the same for every
  /// source. drift replays its random walk from step 0, O(step · experts).
  std::vector<double> bias(int step, int layer) const;

  /// Writes tokens × experts logits (row-major, logit units) of (step, layer, source) into `out`.
  void logits(int step, int layer, int source, int tokens, float* out) const;
  /// The same, returned.
  std::vector<float> logits(int step, int layer, int source, int tokens) const;
  /// The same with a bias already computed by bias(step, layer): adds the noise of (step, layer, source).
  /// Saves recomputing the bias for every source of a step.
  void add_noise(const std::vector<double>& bias, int step, int layer, int source, int tokens,
                 float* out) const;

 private:
  friend struct GateProfiles;  // the registered profiles (generators.cpp)
  using BiasFn = void (*)(const GateScoreGenerator& g, int step, int layer, std::vector<double>& bias);

  GeneratorSpec spec_;
  int experts_;
  BiasFn bias_fn_ = nullptr;
  std::vector<double> zipf_log_p_;  ///< zipf: log of the share of rank r, (r+1)^-s / Σ
};

/// Uniform in the open interval (0, 1) from 53 random bits.
double uniform_open01(SplitMix64& rng);
/// Standard normal N(0, 1) by the Box–Muller transform (Box & Muller 1958), cosine branch; consumes
/// two draws.
double standard_normal(SplitMix64& rng);
/// Standard Gumbel(0, 1): −log(−log U).
double standard_gumbel(SplitMix64& rng);
/// Gamma(shape, 1) variate, shape > 0: Marsaglia & Tsang (2000) squeeze method for shape ≥ 1, and
/// Gamma(shape + 1) · U^(1/shape) for shape < 1 (the boost they give). Never 0 (floored at DBL_MIN).
double gamma_variate(SplitMix64& rng, double shape);

}  // namespace moesim::traces
