#include "traces/policies.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <numeric>
#include <utility>

#include "scenarios/error.hpp"

namespace moesim::traces {
namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

[[noreturn]] void bad(const std::string& policy, const std::string& field, const std::string& expected,
                      const std::string& found) {
  throw ConfigError(located_message("routing policy \"" + policy + "\"", "/" + field, expected, found));
}

using Score = RouterScore;

// Scores of one token's experts, in double: softmax p_e = exp(l_e − max) / Σ exp(l − max), or
// sigmoid s_e = 1 / (1 + exp(−l_e)).
void scores(Score fn, const float* logits, int experts, double* out) {
  if (fn == Score::kSigmoid) {
    for (int e = 0; e < experts; ++e) out[e] = 1.0 / (1.0 + std::exp(-static_cast<double>(logits[e])));
    return;
  }
  const double mx = *std::max_element(logits, logits + experts);
  double sum = 0;
  for (int e = 0; e < experts; ++e) sum += out[e] = std::exp(logits[e] - mx);
  for (int e = 0; e < experts; ++e) out[e] /= sum;
}

// Strict total order on indices: larger key first, lower index on ties, so every choice is unique.
struct Descending {
  const double* key;
  bool operator()(int a, int b) const { return key[a] > key[b] || (key[a] == key[b] && a < b); }
};

// The k indices of [0, n) with the largest keys, strongest first, into idx[0..k) (idx has n entries).
void top_indices(const double* key, int n, int k, std::vector<int>& idx) {
  idx.resize(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), Descending{key});
}

// Writes the n chosen experts of token t with weights score[e], divided by their sum when normalising.
void write_token(RoutedTokens& out, int t, const int* chosen, int n, const double* score, bool normalize) {
  double sum = 0;
  for (int j = 0; j < n; ++j) sum += score[chosen[j]];
  const double scale = normalize && sum > 0 ? 1.0 / sum : 1.0;
  const std::size_t row = static_cast<std::size_t>(t) * out.width;
  for (int j = 0; j < n; ++j) {
    out.experts[row + j] = chosen[j];
    out.weights[row + j] = static_cast<float>(score[chosen[j]] * scale);
  }
}

// Slots per expert, ⌈capacity_factor · tokens · top_k / experts⌉ (Megatron-Core rounds up too); the
// 1e-9 keeps an exact product from rounding up through floating-point error.
int64_t capacity_slots(double capacity_factor, int tokens, int top_k, int experts) {
  const double x = capacity_factor * tokens * top_k / experts;
  return std::max<int64_t>(0, static_cast<int64_t>(std::ceil(x - 1e-9)));
}

// ---------------------------------------------------------------------------------------------- top-k

// Token-choice top-k, optionally restricted to the best groups of experts and with the aux-loss-free
// bias. Covers softmax_topk, sigmoid_topk, group_limited_topk and node_limited.
class TopK : public RoutingPolicy {
 public:
  struct Options {
    std::string name;
    int top_k = 1;
    Score score = Score::kSoftmax;
    bool normalize = true;
    double gamma = 0;          // bias update speed; 0: no bias
    int groups = 0;            // group_limited: groups; 0: no group limit
    int experts_per_node = 0;  // node_limited: experts per group; 0: no node limit
    int keep_groups = 0;       // groups (nodes) a token may use
  };
  explicit TopK(Options o) : o_(std::move(o)) {}

  std::string name() const override { return o_.name; }
  int max_width(int) const override { return o_.top_k; }

  // DeepSeek-V3 report §2.1.2: b_e −= γ if expert e is overloaded, += γ if underloaded, relative to the
  // mean load of the step.
  void end_step(const std::vector<int64_t>& counts) override {
    if (o_.gamma <= 0 || counts.empty()) return;
    if (bias_.empty()) bias_.assign(counts.size(), 0.0);
    if (bias_.size() != counts.size())
      bad(o_.name, "experts", std::to_string(bias_.size()) + " expert counts (as routed)",
          std::to_string(counts.size()));
    const double mean =
        std::accumulate(counts.begin(), counts.end(), 0.0) / static_cast<double>(counts.size());
    for (std::size_t e = 0; e < counts.size(); ++e) {
      const double load = static_cast<double>(counts[e]);
      if (load > mean) bias_[e] -= o_.gamma;
      if (load < mean) bias_[e] += o_.gamma;
    }
  }

 protected:
  void check(int experts) const override {
    if (o_.top_k > experts)
      bad(o_.name, "top_k", "at most the " + std::to_string(experts) + " experts", std::to_string(o_.top_k));
    if (!bias_.empty() && static_cast<int>(bias_.size()) != experts)
      bad(o_.name, "experts", std::to_string(bias_.size()) + " experts (as in earlier calls)",
          std::to_string(experts));
    if (o_.groups > 0) {
      if (experts % o_.groups != 0)
        bad(o_.name, "groups", "a divisor of the " + std::to_string(experts) + " experts",
            std::to_string(o_.groups));
      if (o_.top_k > o_.keep_groups * (experts / o_.groups))
        bad(o_.name, "top_k",
            "at most topk_groups · experts/groups = " +
                std::to_string(o_.keep_groups * (experts / o_.groups)),
            std::to_string(o_.top_k));
    }
    if (o_.experts_per_node > 0) {
      if (experts % o_.experts_per_node != 0)
        bad(o_.name, "experts_per_node", "a divisor of the " + std::to_string(experts) + " experts",
            std::to_string(o_.experts_per_node));
      const int reach = std::min(o_.keep_groups, experts / o_.experts_per_node) * o_.experts_per_node;
      if (o_.top_k > reach)
        bad(o_.name, "top_k", "at most node_limit · experts_per_node = " + std::to_string(reach),
            std::to_string(o_.top_k));
    }
  }

  void do_route(const float* logits, int tokens, int experts, int64_t, RoutedTokens& out) override {
    const bool biased = o_.gamma > 0;
    if (biased && bias_.empty()) bias_.assign(static_cast<std::size_t>(experts), 0.0);
    // Group layout: group_limited has `groups` groups scored by their top-2 (DeepSeek-V3's released
    // gate); node_limited has one group per node scored by its top ⌊top_k / node_limit⌋ (report §2.1.2:
    // "the sum of the highest K_r/M affinity scores of the experts distributed on each node").
    int group_size = 0, group_top = 0, keep = 0;
    if (o_.groups > 0) {
      group_size = experts / o_.groups;
      group_top = 2;
      keep = o_.keep_groups;
    } else if (o_.experts_per_node > 0) {
      group_size = o_.experts_per_node;
      group_top = std::max(1, o_.top_k / o_.keep_groups);
      keep = o_.keep_groups;
    }
    const int n_groups = group_size > 0 ? experts / group_size : 0;
    std::vector<double> score(static_cast<std::size_t>(experts)), key(score.size()), group_key(n_groups), buf;
    std::vector<int> idx, group_idx;
    for (int t = 0; t < tokens; ++t) {
      scores(o_.score, logits + static_cast<std::size_t>(t) * experts, experts, score.data());
      // Selection uses score + bias; the gate weights use the score alone (report §2.1.2).
      for (int e = 0; e < experts; ++e) key[e] = biased ? score[e] + bias_[e] : score[e];
      if (n_groups > 1 && keep < n_groups) {
        for (int g = 0; g < n_groups; ++g) {
          buf.assign(key.begin() + g * group_size, key.begin() + (g + 1) * group_size);
          const int n = std::min(group_top, group_size);
          std::partial_sort(buf.begin(), buf.begin() + n, buf.end(), std::greater<>());
          group_key[g] = std::accumulate(buf.begin(), buf.begin() + n, 0.0);
        }
        top_indices(group_key.data(), n_groups, keep, group_idx);
        std::vector<char> allowed(static_cast<std::size_t>(n_groups), 0);
        for (int j = 0; j < keep; ++j) allowed[group_idx[j]] = 1;
        for (int e = 0; e < experts; ++e)
          if (!allowed[e / group_size]) key[e] = -std::numeric_limits<double>::infinity();
      }
      top_indices(key.data(), experts, o_.top_k, idx);
      write_token(out, t, idx.data(), o_.top_k, score.data(), o_.normalize);
    }
  }

 private:
  Options o_;
  std::vector<double> bias_;  ///< aux-loss-free bias per expert (score units); empty until used
};

// ------------------------------------------------------------------------------------------- capacity

// Expert capacity (GShard, Lepikhin et al. 2021, §2.2 and Algorithm 1; Switch Transformer, Fedus et al.
// 2022, §2.2): each expert takes at most `capacity` slots of one call; the base policy's slots are
// admitted in token order (then in the token's own order, strongest first) and the overflow is dropped,
// the token keeping its other experts with their weights unchanged (the dropped part rides the residual).
class Capacity : public RoutingPolicy {
 public:
  Capacity(std::unique_ptr<RoutingPolicy> base, double capacity_factor, int top_k)
      : base_(std::move(base)), capacity_factor_(capacity_factor), top_k_(top_k) {}

  std::string name() const override { return "capacity"; }
  int max_width(int experts) const override { return base_->max_width(experts); }
  void end_step(const std::vector<int64_t>& counts) override { base_->end_step(counts); }

 protected:
  void check(int) const override {}  // the base checks itself when it routes

  void do_route(const float* logits, int tokens, int experts, int64_t first_token,
                RoutedTokens& out) override {
    base_->route(logits, tokens, experts, out, first_token);
    const int64_t cap = capacity_slots(capacity_factor_, tokens, top_k_, experts);
    std::vector<int64_t> kept(static_cast<std::size_t>(experts), 0);
    for (int t = 0; t < tokens; ++t) {
      const std::size_t row = static_cast<std::size_t>(t) * out.width;
      int w = 0;
      for (int j = 0; j < out.width; ++j) {
        const int32_t e = out.experts[row + j];
        if (e < 0) continue;
        if (kept[e] < cap) {
          ++kept[e];
          out.weights[row + w] = out.weights[row + j];
          out.experts[row + w++] = e;
        } else {
          ++out.dropped;
        }
      }
      for (int j = w; j < out.width; ++j) {
        out.experts[row + j] = -1;
        out.weights[row + j] = 0.0f;
      }
    }
    out.capacity = cap;
    out.padded = 0;
    for (auto k : kept) out.padded += cap - k;
  }

 private:
  std::unique_ptr<RoutingPolicy> base_;
  double capacity_factor_;
  int top_k_;
};

// --------------------------------------------------------------------------------------- expert choice

// Expert choice (Zhou et al. 2022, "Mixture-of-Experts with Expert Choice Routing", §3.1): token-expert
// scores S = softmax over experts per token; each expert takes the `capacity` tokens with the highest
// S[t][e] (ties: earlier token); the gate weight is S[t][e] itself. A token gets 0 to all experts;
// every expert buffer is exactly full, so nothing is dropped or padded.
class ExpertChoice : public RoutingPolicy {
 public:
  ExpertChoice(int top_k, double capacity_factor, Score score)
      : top_k_(top_k), capacity_factor_(capacity_factor), score_(score) {}

  std::string name() const override { return "expert_choice"; }
  int max_width(int experts) const override { return experts; }

 protected:
  void check(int) const override {}

  void do_route(const float* logits, int tokens, int experts, int64_t, RoutedTokens& out) override {
    const int64_t cap = std::min<int64_t>(tokens, capacity_slots(capacity_factor_, tokens, top_k_, experts));
    std::vector<double> s(static_cast<std::size_t>(tokens) * experts);
    for (int t = 0; t < tokens; ++t)
      scores(score_, logits + static_cast<std::size_t>(t) * experts, experts,
             s.data() + static_cast<std::size_t>(t) * experts);
    std::vector<double> column(static_cast<std::size_t>(tokens));
    std::vector<int> idx, used(static_cast<std::size_t>(tokens), 0);
    for (int e = 0; e < experts; ++e) {
      for (int t = 0; t < tokens; ++t) column[t] = s[static_cast<std::size_t>(t) * experts + e];
      top_indices(column.data(), tokens, static_cast<int>(cap), idx);
      for (int64_t j = 0; j < cap; ++j) {
        const int t = idx[j];
        const std::size_t at = static_cast<std::size_t>(t) * out.width + used[t]++;
        out.experts[at] = e;
        out.weights[at] = static_cast<float>(column[t]);
      }
    }
    // Strongest first within each token, as for the other policies.
    std::vector<std::pair<float, int32_t>> row;
    for (int t = 0; t < tokens; ++t) {
      const std::size_t base = static_cast<std::size_t>(t) * out.width;
      row.clear();
      for (int j = 0; j < used[t]; ++j) row.emplace_back(out.weights[base + j], out.experts[base + j]);
      std::sort(row.begin(), row.end(), [](const auto& a, const auto& b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
      });
      for (int j = 0; j < used[t]; ++j) {
        out.weights[base + j] = row[j].first;
        out.experts[base + j] = row[j].second;
      }
    }
    out.capacity = cap;
  }

 private:
  int top_k_;
  double capacity_factor_;
  Score score_;
};

// ----------------------------------------------------------------------------------------------- hash

// Hash layers (Roller et al. 2021, "Hash Layers For Large Sparse Models", §3): the expert is a fixed
// random hash, ignoring the gate. The paper hashes the token id; a generated batch has no ids, so the
// token's position in the step's batch stands in. top_k distinct experts by successive draws from a
// SplitMix64 stream seeded with hash(seed, position); gate weight 1/top_k each.
class Hash : public RoutingPolicy {
 public:
  Hash(int top_k, uint64_t seed) : top_k_(top_k), seed_(seed) {}

  std::string name() const override { return "hash"; }
  int max_width(int) const override { return top_k_; }

 protected:
  void check(int experts) const override {
    if (top_k_ > experts)
      bad("hash", "top_k", "at most the " + std::to_string(experts) + " experts", std::to_string(top_k_));
  }

  void do_route(const float*, int tokens, int experts, int64_t first_token, RoutedTokens& out) override {
    const uint64_t key = SplitMix64(seed_).next();
    std::vector<int> chosen;
    for (int t = 0; t < tokens; ++t) {
      SplitMix64 rng(key ^ static_cast<uint64_t>(first_token + t));
      chosen.clear();
      while (static_cast<int>(chosen.size()) < top_k_) {
        const int e = static_cast<int>(rng.below(static_cast<uint64_t>(experts)));
        if (std::find(chosen.begin(), chosen.end(), e) == chosen.end()) chosen.push_back(e);
      }
      const std::size_t row = static_cast<std::size_t>(t) * out.width;
      for (int j = 0; j < top_k_; ++j) {
        out.experts[row + j] = chosen[j];
        out.weights[row + j] = 1.0f / static_cast<float>(top_k_);
      }
    }
  }

 private:
  int top_k_;
  uint64_t seed_;
};

// -------------------------------------------------------------------------------------------- dynamic

// Dynamic routing on softmax probabilities, experts taken strongest first:
//   top_p: the smallest set whose cumulative probability reaches p (Huang et al. 2024, "Harder Tasks Need
//          More Experts: Dynamic Routing in MoE Models", §3, top-p routing);
//   threshold: every expert whose own probability reaches the threshold, the per-expert form of the same
//          confidence rule.
// Both keep at least the strongest expert and at most max_width.
class Dynamic : public RoutingPolicy {
 public:
  Dynamic(std::string name, bool cumulative, double level, int max_width, bool normalize)
      : name_(std::move(name)),
        cumulative_(cumulative),
        level_(level),
        max_width_(max_width),
        normalize_(normalize) {}

  std::string name() const override { return name_; }
  int max_width(int experts) const override {
    return max_width_ > 0 ? std::min(max_width_, experts) : experts;
  }

 protected:
  void check(int) const override {}

  void do_route(const float* logits, int tokens, int experts, int64_t, RoutedTokens& out) override {
    const int width = max_width(experts);
    std::vector<double> p(static_cast<std::size_t>(experts));
    std::vector<int> idx;
    for (int t = 0; t < tokens; ++t) {
      scores(Score::kSoftmax, logits + static_cast<std::size_t>(t) * experts, experts, p.data());
      top_indices(p.data(), experts, width, idx);
      int n = 0;
      double cum = 0;
      while (n < width) {
        if (!cumulative_ && n > 0 && p[idx[n]] < level_) break;
        cum += p[idx[n++]];
        if (cumulative_ && cum >= level_) break;
      }
      write_token(out, t, idx.data(), n, p.data(), normalize_);
    }
  }

 private:
  std::string name_;
  bool cumulative_;
  double level_;
  int max_width_;
  bool normalize_;
};

// ------------------------------------------------------------------------------------------- registry

TopK::Options topk_options(const PolicySpec& spec, Score score) {
  TopK::Options o;
  o.name = spec.name;
  o.top_k = spec.top_k;
  o.score = score;
  o.normalize = spec.normalize_weights;
  if (!(spec.bias_update_speed >= 0 && std::isfinite(spec.bias_update_speed)))
    bad(spec.name, "bias_update_speed", "a step >= 0", num(spec.bias_update_speed));
  o.gamma = score == Score::kSigmoid ? spec.bias_update_speed : 0.0;
  return o;
}

// Shazeer et al. 2017, "Outrageously Large Neural Networks", §2.1: G(x) = softmax(KeepTopK(logits, k)).
// Computed as the softmax over all experts renormalised over the selected, which equals it.
std::unique_ptr<RoutingPolicy> make_softmax_topk(const PolicySpec& spec) {
  return std::make_unique<TopK>(topk_options(spec, Score::kSoftmax));
}

// DeepSeek-V3 technical report (arXiv:2412.19437) §2.1.2: sigmoid affinities, top-k of affinity + bias,
// gates = the selected affinities normalised to sum 1, bias moved by γ per step against the load.
std::unique_ptr<RoutingPolicy> make_sigmoid_topk(const PolicySpec& spec) {
  return std::make_unique<TopK>(topk_options(spec, Score::kSigmoid));
}

// DeepSeek-V3 (report §2.1.2, released gate with n_group/topk_group): experts in `groups` contiguous
// groups, each scored by the sum of its two highest scores; top_k among the best topk_groups groups.
std::unique_ptr<RoutingPolicy> make_group_limited(const PolicySpec& spec) {
  if (spec.groups < 1) bad(spec.name, "groups", "at least 1 group", std::to_string(spec.groups));
  if (spec.topk_groups < 1 || spec.topk_groups > spec.groups)
    bad(spec.name, "topk_groups", "a group count in [1, " + std::to_string(spec.groups) + "]",
        std::to_string(spec.topk_groups));
  auto o = topk_options(spec, spec.score);
  o.groups = spec.groups;
  o.keep_groups = spec.topk_groups;
  return std::make_unique<TopK>(o);
}

// DeepSeek-V3 report §2.1.2, "Node-Limited Routing" (device-limited routing in DeepSeek-V2, §2.2.2):
// the groups are the nodes of the EP layout; a token uses at most node_limit nodes.
std::unique_ptr<RoutingPolicy> make_node_limited(const PolicySpec& spec) {
  if (spec.node_limit < 0)
    bad(spec.name, "node_limit", "a node count >= 0 (0: unlimited)", std::to_string(spec.node_limit));
  if (spec.experts_per_node < 1)
    bad(spec.name, "experts_per_node", "at least 1 expert per node", std::to_string(spec.experts_per_node));
  auto o = topk_options(spec, spec.score);
  o.experts_per_node = spec.experts_per_node;
  o.keep_groups = spec.node_limit > 0 ? spec.node_limit : std::numeric_limits<int>::max();
  return std::make_unique<TopK>(o);
}

void check_capacity_factor(const PolicySpec& spec) {
  if (!(spec.capacity_factor > 0 && std::isfinite(spec.capacity_factor)))
    bad(spec.name, "capacity_factor", "a factor > 0", num(spec.capacity_factor));
}

std::unique_ptr<RoutingPolicy> make_expert_choice(const PolicySpec& spec);

std::unique_ptr<RoutingPolicy> make_capacity(const PolicySpec& spec) {
  check_capacity_factor(spec);
  const PolicyFactory* base_factory = routing_policies().find(spec.base);
  if (base_factory && (*base_factory == make_capacity || *base_factory == make_expert_choice))
    bad(spec.name, "base", "a token-choice policy (not capacity or expert_choice)", "\"" + spec.base + "\"");
  if (!routing_policies().contains(spec.base))
    bad(spec.name, "base", "a registered routing policy", "\"" + spec.base + "\"");
  PolicySpec base = spec;
  base.name = spec.base;
  return std::make_unique<Capacity>(make_routing_policy(base), spec.capacity_factor, spec.top_k);
}

std::unique_ptr<RoutingPolicy> make_expert_choice(const PolicySpec& spec) {
  check_capacity_factor(spec);
  return std::make_unique<ExpertChoice>(spec.top_k, spec.capacity_factor, spec.score);
}

std::unique_ptr<RoutingPolicy> make_hash(const PolicySpec& spec) {
  return std::make_unique<Hash>(spec.top_k, spec.hash_seed);
}

std::unique_ptr<RoutingPolicy> make_threshold(const PolicySpec& spec) {
  if (!(spec.threshold > 0 && spec.threshold <= 1))
    bad(spec.name, "threshold", "a probability in (0, 1]", num(spec.threshold));
  return std::make_unique<Dynamic>(spec.name, false, spec.threshold, spec.max_width, spec.normalize_weights);
}

std::unique_ptr<RoutingPolicy> make_top_p(const PolicySpec& spec) {
  if (!(spec.top_p > 0 && spec.top_p <= 1))
    bad(spec.name, "top_p", "a probability in (0, 1]", num(spec.top_p));
  return std::make_unique<Dynamic>(spec.name, true, spec.top_p, spec.max_width, spec.normalize_weights);
}

}  // namespace

const Registry<PolicyFactory>& routing_policies() {
  static const Registry<PolicyFactory> r{
      "routing policy",
      "routing policies (routing.policy)",
      {{"softmax_topk",
        "top_k experts by softmax probability, weights renormalised over them (Shazeer et al. 2017)",
        make_softmax_topk},
       {"sigmoid_topk", "top_k by sigmoid score + aux-loss-free balancing bias (DeepSeek-V3)",
        make_sigmoid_topk},
       {"group_limited_topk",
        "top_k within the topk_groups best expert groups, groups ranked by top-2 sum (DeepSeek-V3)",
        make_group_limited},
       {"node_limited",
        "top_k within at most node_limit nodes (0: any) of experts_per_node experts (DeepSeek-V3)",
        make_node_limited},
       {"capacity",
        "policy `base` then capacity_factor·tokens·top_k/experts slots per expert, overflow dropped",
        make_capacity},
       {"expert_choice",
        "each expert takes its capacity_factor·tokens·top_k/experts best tokens (Zhou et al. 2022)",
        make_expert_choice},
       {"hash", "top_k distinct experts from a seeded hash of the token position (Roller et al. 2021)",
        make_hash},
       {"threshold", "every expert with softmax probability >= threshold, at least 1, at most max_width",
        make_threshold},
       {"top_p", "smallest set of experts with cumulative softmax probability >= top_p (Huang et al. 2024)",
        make_top_p}}};
  return r;
}

void RoutingPolicy::route(const float* logits, int tokens, int experts, RoutedTokens& out,
                          int64_t first_token) {
  if (experts < 1) bad(name(), "experts", "at least 1 expert", std::to_string(experts));
  if (tokens < 0) bad(name(), "tokens", "a token count >= 0", std::to_string(tokens));
  MOESIM_ASSERT(tokens == 0 || logits != nullptr, "logits must not be null");
  check(experts);
  out.tokens = tokens;
  out.width = max_width(experts);
  const std::size_t n = static_cast<std::size_t>(tokens) * out.width;
  out.experts.assign(n, -1);
  out.weights.assign(n, 0.0f);
  out.capacity = out.dropped = out.padded = 0;
  do_route(logits, tokens, experts, first_token, out);
}

bool uses_node_limit(const std::string& name) {
  const PolicyFactory* f = routing_policies().find(name);
  return f && *f == make_node_limited;
}

std::unique_ptr<RoutingPolicy> make_routing_policy(const PolicySpec& spec) {
  const PolicyFactory make = routing_policies().get(spec.name);
  if (spec.top_k < 1) bad(spec.name, "top_k", "at least 1 expert per token", std::to_string(spec.top_k));
  if (spec.max_width < 0)
    bad(spec.name, "max_width", "a width >= 0 (0: all experts)", std::to_string(spec.max_width));
  return make(spec);
}

RoutingSample route_step(RoutingPolicy& policy, const GeneratorSpec& generator, int step, int layer,
                         int sources, int tokens_per_source, int experts) {
  if (sources < 1)
    throw ConfigError(
        located_message("route_step", "/sources", "at least 1 source rank", std::to_string(sources)));
  if (tokens_per_source < 0)
    throw ConfigError(located_message("route_step", "/tokens_per_source", "a token count >= 0",
                                      std::to_string(tokens_per_source)));
  if (experts < 1)
    throw ConfigError(
        located_message("route_step", "/experts", "at least 1 expert", std::to_string(experts)));
  const GateScoreGenerator gen(generator, experts);
  const std::vector<double> bias = gen.bias(step, layer);

  RoutingSample sample;
  sample.step = step;
  sample.layer = layer;
  sample.sources = sources;
  sample.experts = experts;
  sample.top_k = policy.max_width(experts);
  sample.tokens = static_cast<int64_t>(sources) * tokens_per_source;
  sample.counts.assign(static_cast<std::size_t>(sources) * experts, 0);
  const std::size_t entries = static_cast<std::size_t>(sample.tokens) * sample.top_k;
  sample.token_experts.reserve(entries);
  sample.token_weights.reserve(entries);
  sample.token_source.reserve(static_cast<std::size_t>(sample.tokens));

  std::vector<float> logits(static_cast<std::size_t>(tokens_per_source) * experts);
  RoutedTokens routed;
  for (int s = 0; s < sources; ++s) {
    gen.add_noise(bias, step, layer, s, tokens_per_source, logits.data());
    policy.route(logits.data(), tokens_per_source, experts, routed,
                 static_cast<int64_t>(s) * tokens_per_source);
    MOESIM_ASSERT(routed.width == sample.top_k, "a policy's width is max_width(experts)");
    for (auto e : routed.experts)
      if (e >= 0) ++sample.counts[static_cast<std::size_t>(s) * experts + e];
    sample.token_experts.insert(sample.token_experts.end(), routed.experts.begin(), routed.experts.end());
    sample.token_weights.insert(sample.token_weights.end(), routed.weights.begin(), routed.weights.end());
    sample.token_source.insert(sample.token_source.end(), static_cast<std::size_t>(tokens_per_source), s);
    sample.dropped += routed.dropped;
    sample.padded += routed.padded;
  }
  return sample;
}

}  // namespace moesim::traces
