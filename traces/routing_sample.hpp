#pragma once
/// \file RoutingSample: what routing decided for one MoE layer on one step, the unit every routing
/// source (policies on generated gate scores, recorded traces, count tables) produces and every engine
/// consumes.

#include <cstdint>
#include <vector>

namespace moesim::traces {

/// One MoE layer on one step. Counts are routed token slots (a token sent to top_k experts is top_k
/// slots). Rows are source ranks (the ranks that hold the tokens before dispatch).
struct RoutingSample {
  int step = 0;
  int layer = 0;       ///< MoE layer index (0-based, counting MoE layers only)
  int sources = 1;     ///< source ranks
  int experts = 0;     ///< logical experts
  int top_k = 0;       ///< nominal experts per token (dynamic policies may use fewer or more)
  int64_t tokens = 0;  ///< tokens routed, all sources together
  /// sources × experts, row-major: slots source s sends to expert e, after capacity dropping.
  std::vector<int64_t> counts;
  int64_t dropped = 0;  ///< slots dropped by a capacity limit
  int64_t padded = 0;   ///< empty capacity slots computed anyway (capacity buffers are padded)
  /// Optional token-level detail: for every token its experts, `top_k` entries per token, -1 where a
  /// dynamic policy chose fewer. Empty when only counts are known (count tables).
  std::vector<int32_t> token_experts;
  /// Optional: source rank of every token (empty: tokens are split into equal consecutive runs).
  std::vector<int32_t> token_source;
  /// Optional: gate weight of every entry of token_experts (empty when unknown).
  std::vector<float> token_weights;

  int64_t count(int source, int expert) const {
    return counts[static_cast<std::size_t>(source) * experts + expert];
  }
  /// Slots per expert, summed over sources.
  std::vector<int64_t> expert_counts() const {
    std::vector<int64_t> c(static_cast<std::size_t>(experts), 0);
    for (int s = 0; s < sources; ++s)
      for (int e = 0; e < experts; ++e) c[e] += count(s, e);
    return c;
  }
  /// Total routed slots kept.
  int64_t slots() const {
    int64_t t = 0;
    for (auto v : counts) t += v;
    return t;
  }
};

}  // namespace moesim::traces
