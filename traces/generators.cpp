#include "traces/generators.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <utility>

#include "scenarios/error.hpp"

namespace moesim::traces {
namespace {

constexpr double kEulerGamma = 0.57721566490153286061;  // mean of Gumbel(0, 1)
constexpr double kTwoPi = 6.28318530717958647693;

// Stream tags: each kind of draw has its own stream, so adding draws of one kind never shifts another.
enum : uint64_t { kNoise = 1, kDirichlet = 2, kBurstOn = 3, kBurstExpert = 4, kDrift = 5 };

// Seed of an independent SplitMix64 stream for (seed, tag, a, b, c): each value is folded in through
// the SplitMix64 output function, a bijective 64-bit mixer (Steele et al. 2014).
uint64_t stream_seed(uint64_t seed, uint64_t tag, int64_t a = 0, int64_t b = 0, int64_t c = 0) {
  uint64_t h = SplitMix64(seed ^ (tag * 0xd1b54a32d192ed03ULL)).next();
  for (int64_t v : {a, b, c}) h = SplitMix64(h ^ static_cast<uint64_t>(v)).next();
  return h;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

[[noreturn]] void bad(const GeneratorSpec& spec, const std::string& key, const std::string& expected,
                      const std::string& found) {
  throw ConfigError(located_message("gate generator \"" + spec.name + "\"", "/" + key, expected, found));
}

// Bias b of each of m hot experts among `experts` so that they take `fraction` of the top-1 choices
// together under softmax: m·e^b / (m·e^b + experts − m) = fraction.
double hot_bias(double fraction, int hot, int experts) {
  if (hot >= experts) return 0.0;
  return std::log(fraction * (experts - hot) / ((1.0 - fraction) * hot));
}

void check_hot_fraction(const GeneratorSpec& spec) {
  if (!(spec.hot_fraction > 0 && spec.hot_fraction < 1))
    bad(spec, "hot_fraction", "a share in (0, 1)", num(spec.hot_fraction));
}

void check_hot_expert(const GeneratorSpec& spec, int experts) {
  check_hot_fraction(spec);
  if (spec.hot_expert < 0 || spec.hot_expert >= experts)
    bad(spec, "hot_expert", "an expert id in [0, " + std::to_string(experts) + ")",
        std::to_string(spec.hot_expert));
}

}  // namespace

// The registered profiles. Each bias function writes `experts` values into `bias` (already zeroed).
struct GateProfiles {
  using CheckFn = void (*)(const GeneratorSpec& spec, int experts);
  struct Entry {
    GateScoreGenerator::BiasFn bias;
    CheckFn check;
  };

  static void uniform(const GateScoreGenerator&, int, int, std::vector<double>&) {}

  // Zipf's law over experts (Zipf 1949); the expert holding rank r is drawn by the same per-layer
  // Fisher–Yates permutation as the zipf share generator (traces/load.cpp), so both rank experts alike.
  static void zipf(const GateScoreGenerator& g, int, int layer, std::vector<double>& bias) {
    const int experts = g.experts_;
    std::vector<int> perm(static_cast<std::size_t>(experts));
    std::iota(perm.begin(), perm.end(), 0);
    SplitMix64 rng(g.spec_.seed * 0x100000001b3ULL + static_cast<uint64_t>(layer));
    for (int i = experts - 1; i > 0; --i) std::swap(perm[i], perm[rng.below(static_cast<uint64_t>(i) + 1)]);
    for (int r = 0; r < experts; ++r) bias[perm[r]] = g.zipf_log_p_[r];
  }

  // p ~ Dirichlet(alpha, …, alpha) as normalised Gamma(alpha) variates (e.g. Devroye 1986, §XI.4).
  static void dirichlet(const GateScoreGenerator& g, int step, int layer, std::vector<double>& bias) {
    SplitMix64 rng(stream_seed(g.spec_.seed, kDirichlet, step, layer));
    double sum = 0;
    for (auto& b : bias) sum += b = gamma_variate(rng, g.spec_.alpha);
    const double log_sum = std::log(sum);
    for (auto& b : bias) b = std::log(b) - log_sum;
  }

  static void hot_expert(const GateScoreGenerator& g, int, int, std::vector<double>& bias) {
    bias[g.spec_.hot_expert] = hot_bias(g.spec_.hot_fraction, 1, g.experts_);
  }

  static void hot_rank(const GateScoreGenerator& g, int, int, std::vector<double>& bias) {
    const int n = g.spec_.experts_per_rank;
    const double b = hot_bias(g.spec_.hot_fraction, n, g.experts_);
    for (int e = g.spec_.hot_rank * n; e < (g.spec_.hot_rank + 1) * n; ++e) bias[e] = b;
  }

  static void rotating(const GateScoreGenerator& g, int step, int, std::vector<double>& bias) {
    const int hot = static_cast<int>((static_cast<int64_t>(g.spec_.hot_expert) + step) % g.experts_);
    bias[hot] = hot_bias(g.spec_.hot_fraction, 1, g.experts_);
  }

  // Whether a step is hot is drawn per step (the batch is unusual in every layer); the hot expert is
  // drawn per (step, layer), as expert ids mean different things in different layers.
  static void bursts(const GateScoreGenerator& g, int step, int layer, std::vector<double>& bias) {
    SplitMix64 on(stream_seed(g.spec_.seed, kBurstOn, step));
    if (!(uniform_open01(on) < g.spec_.burst_probability)) return;
    SplitMix64 which(stream_seed(g.spec_.seed, kBurstExpert, step, layer));
    bias[which.below(static_cast<uint64_t>(g.experts_))] = hot_bias(g.spec_.hot_fraction, 1, g.experts_);
  }

  // Gaussian random walk per (layer, expert): b(0) = 0, b(n) = b(n−1) + drift_sigma · N(0, 1).
  static void drift(const GateScoreGenerator& g, int step, int layer, std::vector<double>& bias) {
    SplitMix64 rng(stream_seed(g.spec_.seed, kDrift, layer));
    for (int n = 1; n <= step; ++n)
      for (auto& b : bias) b += g.spec_.drift_sigma * standard_normal(rng);
  }

  static void check_none(const GeneratorSpec&, int) {}
  static void check_zipf(const GeneratorSpec& spec, int) {
    if (!(spec.s >= 0 && std::isfinite(spec.s))) bad(spec, "s", "an exponent >= 0", num(spec.s));
  }
  static void check_dirichlet(const GeneratorSpec& spec, int) {
    if (!(spec.alpha > 0 && std::isfinite(spec.alpha)))
      bad(spec, "alpha", "a concentration > 0", num(spec.alpha));
  }
  static void check_hot_rank(const GeneratorSpec& spec, int experts) {
    check_hot_fraction(spec);
    const int n = spec.experts_per_rank;
    if (n < 1 || experts % n != 0)
      bad(spec, "experts_per_rank", "a divisor of the " + std::to_string(experts) + " experts",
          std::to_string(n));
    if (spec.hot_rank < 0 || spec.hot_rank >= experts / n)
      bad(spec, "hot_rank", "a rank id in [0, " + std::to_string(experts / n) + ")",
          std::to_string(spec.hot_rank));
  }
  static void check_bursts(const GeneratorSpec& spec, int) {
    check_hot_fraction(spec);
    if (!(spec.burst_probability >= 0 && spec.burst_probability <= 1))
      bad(spec, "burst_probability", "a probability in [0, 1]", num(spec.burst_probability));
  }
  static void check_drift(const GeneratorSpec& spec, int) {
    if (!(spec.drift_sigma >= 0 && std::isfinite(spec.drift_sigma)))
      bad(spec, "drift_sigma", "a standard deviation >= 0", num(spec.drift_sigma));
  }

  static const Registry<Entry>& registry() {
    static const Registry<Entry> kEntries{
        "gate generator",
        "gate-score generators (routing.load.generator in routing mode \"sampled\")",
        {
            {"uniform", "bias 0: every expert equally likely", {uniform, check_none}},
            {"zipf",
             "bias = log of zipf(s) shares (r+1)^-s over a seeded per-layer permutation of the experts",
             {zipf, check_zipf}},
            {"dirichlet",
             "bias = log p, p ~ Dirichlet(alpha) drawn afresh for every (step, layer)",
             {dirichlet, check_dirichlet}},
            {"hot_expert",
             "expert hot_expert raised to take hot_fraction of the top-1 choices",
             {hot_expert, check_hot_expert}},
            {"hot_rank",
             "the experts of EP rank hot_rank raised to take hot_fraction of the top-1 choices together",
             {hot_rank, check_hot_rank}},
            {"rotating",
             "like hot_expert, the hot expert moving to the next id every step",
             {rotating, check_hot_expert}},
            {"bursts",
             "with probability burst_probability a step is hot (hot_fraction) on a random expert",
             {bursts, check_bursts}},
            {"drift",
             "bias performs a seeded Gaussian random walk across steps, drift_sigma per step, from 0",
             {drift, check_drift}},
        }};
    return kEntries;
  }
};

const RegistryBase& gate_generators() {
  return GateProfiles::registry();
}

GateScoreGenerator::GateScoreGenerator(GeneratorSpec spec, int experts)
    : spec_(std::move(spec)), experts_(experts) {
  const GateProfiles::Entry* entry = &GateProfiles::registry().get(spec_.name);
  if (experts < 1) bad(spec_, "experts", "at least 1 expert", std::to_string(experts));
  if (!(spec_.noise_scale >= 0 && std::isfinite(spec_.noise_scale)))
    bad(spec_, "noise_scale", "a scale >= 0", num(spec_.noise_scale));
  entry->check(spec_, experts);
  bias_fn_ = entry->bias;
  if (bias_fn_ == &GateProfiles::zipf) {
    zipf_log_p_.resize(static_cast<std::size_t>(experts));
    double sum = 0;
    for (int r = 0; r < experts; ++r) sum += std::pow(r + 1.0, -spec_.s);
    for (int r = 0; r < experts; ++r) zipf_log_p_[r] = -spec_.s * std::log(r + 1.0) - std::log(sum);
  }
}

std::vector<double> GateScoreGenerator::bias(int step, int layer) const {
  MOESIM_ASSERT(step >= 0 && layer >= 0, "step and layer must be >= 0");
  std::vector<double> b(static_cast<std::size_t>(experts_), 0.0);
  bias_fn_(*this, step, layer, b);
  return b;
}

void GateScoreGenerator::add_noise(const std::vector<double>& bias, int step, int layer, int source,
                                   int tokens, float* out) const {
  MOESIM_ASSERT(static_cast<int>(bias.size()) == experts_, "bias has one value per expert");
  MOESIM_ASSERT(step >= 0 && layer >= 0 && source >= 0 && tokens >= 0,
                "negative step, layer, source or tokens");
  SplitMix64 rng(stream_seed(spec_.seed, kNoise, step, layer, source));
  const double scale = spec_.noise_scale;
  for (int64_t i = 0, n = static_cast<int64_t>(tokens) * experts_; i < n; ++i)
    out[i] = static_cast<float>(bias[i % experts_] + scale * (standard_gumbel(rng) - kEulerGamma));
}

void GateScoreGenerator::logits(int step, int layer, int source, int tokens, float* out) const {
  add_noise(bias(step, layer), step, layer, source, tokens, out);
}

std::vector<float> GateScoreGenerator::logits(int step, int layer, int source, int tokens) const {
  std::vector<float> out(static_cast<std::size_t>(tokens) * experts_);
  logits(step, layer, source, tokens, out.data());
  return out;
}

double uniform_open01(SplitMix64& rng) {
  return (static_cast<double>(rng.next() >> 11) + 0.5) * 0x1.0p-53;
}

double standard_normal(SplitMix64& rng) {
  const double u1 = uniform_open01(rng);
  const double u2 = uniform_open01(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2);
}

double standard_gumbel(SplitMix64& rng) {
  return -std::log(-std::log(uniform_open01(rng)));
}

double gamma_variate(SplitMix64& rng, double shape) {
  MOESIM_ASSERT(shape > 0, "gamma shape must be > 0");
  if (shape < 1) {
    const double g = gamma_variate(rng, shape + 1.0);
    return std::max(g * std::pow(uniform_open01(rng), 1.0 / shape), DBL_MIN);
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = standard_normal(rng);
      v = 1.0 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = uniform_open01(rng);
    if (u < 1.0 - 0.0331 * x * x * x * x || std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v)))
      return std::max(d * v, DBL_MIN);
  }
}

}  // namespace moesim::traces
