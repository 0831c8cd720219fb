#pragma once
/// \file Routing policies: how an MoE router turns per-token gate logits into experts and gate weights,
/// registered by name (softmax top-k, DeepSeek-V3 sigmoid top-k with aux-loss-free bias, group- and
/// node-limited top-k, capacity dropping, expert choice, hash, dynamic threshold and top-p), and
/// route_step, which routes generated logits (traces/generators.hpp) into a RoutingSample.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "scenarios/kinds.hpp"
#include "traces/generators.hpp"
#include "traces/routing_sample.hpp"

namespace moesim::traces {

/// Parameters of a routing policy; each policy reads the fields its comment names and ignores the rest.
struct PolicySpec {
  std::string name = "softmax_topk";  ///< registered policy, see routing_policies()
  /// Experts per token (≥ 1). Top-k policies and hash: exactly top_k; capacity and expert_choice: the
  /// nominal k of the capacity formula.
  int top_k = 2;
  /// group_limited_topk, node_limited and expert_choice: the scoring function (softmax_topk,
  /// threshold and top_p always use softmax, sigmoid_topk always sigmoid).
  RouterScore score = RouterScore::kSoftmax;
  /// Top-k policies, threshold, top_p: true = gate weights are the scores renormalised to sum to 1 over
  /// the token's selected experts; false = the raw scores (GShard, Switch, DeepSeek-V2).
  bool normalize_weights = true;
  int groups = 1;            ///< group_limited_topk: expert groups, contiguous blocks of experts/groups
  int topk_groups = 1;       ///< group_limited_topk: groups a token may use, in [1, groups]
  int node_limit = 0;        ///< node_limited: most nodes a token may use (0: unlimited, as in RoutingSpec)
  int experts_per_node = 1;  ///< node_limited: experts per node; node n holds [n·m, (n+1)·m)
  /// capacity, expert_choice: capacity per expert = ⌈capacity_factor · tokens · top_k / experts⌉
  /// slots for the tokens of one route() call (> 0).
  double capacity_factor = 1.0;
  std::string base = "softmax_topk";  ///< capacity: the policy whose choices are capped
  /// Aux-loss-free balancing step γ of sigmoid-scored top-k policies (sigmoid_topk; group_limited_topk
  /// and node_limited with score "sigmoid"), in sigmoid-score units per step (≥ 0); 0 turns the bias
  /// off. DeepSeek-V3 used 0.001.
  double bias_update_speed = 0.001;
  double threshold = 0.1;  ///< threshold: least softmax probability of a selected expert, in (0, 1]
  double top_p = 0.5;      ///< top_p: least cumulative softmax probability of the selected, in (0, 1]
  int max_width = 0;       ///< threshold, top_p: most experts per token (0: all experts)
  uint64_t hash_seed = 0;  ///< hash: seed of the token-position hash
};

/// The routes of the tokens of one route() call.
struct RoutedTokens {
  int tokens = 0;  ///< tokens routed in the call
  /// Entries per token: top_k for fixed-width policies, the policy's max_width(experts) otherwise.
  int width = 0;
  /// tokens × width, row-major: the token's experts, strongest first, then -1 (slots chosen by no
  /// expert, dropped by a capacity limit, or not used by a dynamic policy).
  std::vector<int32_t> experts;
  /// tokens × width: gate weight of each entry (dimensionless), 0 where the expert is -1.
  std::vector<float> weights;
  int64_t capacity = 0;  ///< slots per expert in this call (capacity, expert_choice); 0 = unlimited
  int64_t dropped = 0;   ///< slots dropped by the capacity limit
  int64_t padded = 0;    ///< empty capacity slots: Σ over experts of (capacity − slots kept)

  /// Expert of entry j of token t (-1 if none).
  int32_t expert(int t, int j) const { return experts[static_cast<std::size_t>(t) * width + j]; }
  /// Gate weight of entry j of token t.
  float weight(int t, int j) const { return weights[static_cast<std::size_t>(t) * width + j]; }
  /// Number of experts token t uses (entries other than -1).
  int used(int t) const {
    int n = 0;
    for (int j = 0; j < width; ++j) n += expert(t, j) >= 0;
    return n;
  }
};

/// A routing policy. One object routes one MoE layer: stateful policies (the aux-loss-free bias of
/// sigmoid_topk) keep one value per expert, so use one object per layer.
class RoutingPolicy {
 public:
  virtual ~RoutingPolicy() = default;
  /// The registered name.
  virtual std::string name() const = 0;
  /// Entries per token (RoutedTokens::width) with `experts` experts.
  virtual int max_width(int experts) const = 0;
  /// Routes `tokens` tokens: `logits` is tokens × experts, row-major, logit units. `first_token` is
  /// the position of the first token in the step's batch (hash hashes positions; others ignore it).
  /// Resizes and fills `out`. Throws ConfigError if the spec does not fit `experts` (top_k > experts,
  /// experts not divisible into groups or nodes, a different expert count than earlier calls).
  void route(const float* logits, int tokens, int experts, RoutedTokens& out, int64_t first_token = 0);
  /// Called once at the end of each training step with the slots each expert received in the step
  /// (all sources, after dropping). Policies that adapt between steps update here; others ignore it.
  virtual void end_step(const std::vector<int64_t>& expert_counts) { (void)expert_counts; }

 protected:
  /// Checks the spec against `experts`; throws ConfigError.
  virtual void check(int experts) const = 0;
  /// Fills `out`, already sized tokens × max_width(experts) with experts -1, weights 0, counters 0.
  virtual void do_route(const float* logits, int tokens, int experts, int64_t first_token,
                        RoutedTokens& out) = 0;
};

/// Creates a routing policy from its parameters (the spec's name is the registry's).
using PolicyFactory = std::unique_ptr<RoutingPolicy> (*)(const PolicySpec&);
/// Registered routing policies (what PolicySpec::name selects).
const Registry<PolicyFactory>& routing_policies();

/// True when policy `name` reads PolicySpec::node_limit (the others ignore it).
bool uses_node_limit(const std::string& name);

/// Creates the policy `spec.name`. Throws ConfigError for an unknown name (listing the registered
/// ones) or an invalid parameter ("routing policy \"NAME\": /FIELD: expected …, found …").
std::unique_ptr<RoutingPolicy> make_routing_policy(const PolicySpec& spec);

/// Routes step `step` of MoE layer `layer`: generates the logits of `tokens_per_source` tokens on each
/// of `sources` source ranks with `generator`, routes each source's tokens with one route() call (so
/// capacities are per source rank, as in GShard's local groups; token positions run on across sources),
/// and fills a RoutingSample: counts (sources × experts, kept slots), tokens, dropped, padded,
/// token_experts and token_weights (top_k = policy.max_width(experts) entries per token, -1 padded) and
/// token_source. Does not call end_step: the caller passes sample.expert_counts() when the step ends.
/// Throws ConfigError for sources < 1, tokens_per_source < 0, experts < 1, or a generator or policy
/// that does not fit.
RoutingSample route_step(RoutingPolicy& policy, const GeneratorSpec& generator, int step, int layer,
                         int sources, int tokens_per_source, int experts);

}  // namespace moesim::traces
