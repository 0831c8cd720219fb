// CPU reference of the router (kernels/reference.hpp). Semantics: DeepSeek-V3 `Gate` (model.py of
// deepseek-ai/DeepSeek-V3), with deterministic tie-breaking (lower index first) where torch.topk
// leaves ties unspecified.

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "kernels/reference.hpp"
#include "scenarios/error.hpp"

namespace moesim::kernels {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

void check_size(const char* name, size_t found, size_t expected) {
  if (found != expected)
    throw ConfigError(std::string(name) + ": expected " + std::to_string(expected) + " elements, found " +
                      std::to_string(found));
}

// Is (a, ia) ranked before (b, ib)? Larger value first, then lower index.
bool before(float a, int ia, float b, int ib) {
  return a > b || (a == b && ia < ib);
}

}  // namespace

RouterResult router_ref(const RouterConfig& c, const std::vector<float>& logits,
                        const std::vector<float>& bias) {
  validate(c);
  const int T = c.tokens, E = c.experts, K = c.top_k;
  check_size("router logits", logits.size(), static_cast<size_t>(T) * E);
  if (!bias.empty()) check_size("router bias", bias.size(), static_cast<size_t>(E));

  RouterResult r;
  r.topk_idx.resize(static_cast<size_t>(T) * K);
  r.topk_weight.resize(static_cast<size_t>(T) * K);
  r.counts.assign(E, 0);

  const int G = c.groups, group_size = E / G;
  std::vector<float> s(E), sel(E), group_score(G);
  std::vector<bool> taken(E), group_kept(G);
  for (int t = 0; t < T; ++t) {
    const float* l = &logits[static_cast<size_t>(t) * E];
    if (c.score == ScoreFunction::kSoftmax) {
      float m = kNegInf;
      for (int e = 0; e < E; ++e) m = std::max(m, l[e]);
      float sum = 0.0f;
      for (int e = 0; e < E; ++e) {
        s[e] = std::exp(l[e] - m);
        sum += s[e];
      }
      for (int e = 0; e < E; ++e) s[e] = s[e] / sum;
    } else {
      for (int e = 0; e < E; ++e) s[e] = 1.0f / (1.0f + std::exp(-l[e]));
    }
    for (int e = 0; e < E; ++e) sel[e] = bias.empty() ? s[e] : s[e] + bias[e];

    if (G > 1) {
      for (int g = 0; g < G; ++g) {
        float top1 = kNegInf, top2 = kNegInf;
        for (int e = g * group_size; e < (g + 1) * group_size; ++e) {
          if (sel[e] > top1) {
            top2 = top1;
            top1 = sel[e];
          } else if (sel[e] > top2) {
            top2 = sel[e];
          }
        }
        group_score[g] = c.group_score_top == 1 ? top1 : top1 + top2;
      }
      for (int g = 0; g < G; ++g) {
        int rank = 0;
        for (int o = 0; o < G; ++o) rank += before(group_score[o], o, group_score[g], g) ? 1 : 0;
        group_kept[g] = rank < c.topk_groups;
      }
      for (int e = 0; e < E; ++e)
        if (!group_kept[e / group_size]) sel[e] = kNegInf;
    }

    std::fill(taken.begin(), taken.end(), false);
    float sum = 0.0f;
    for (int k = 0; k < K; ++k) {
      int best = -1;
      for (int e = 0; e < E; ++e)
        if (!taken[e] && (best < 0 || before(sel[e], e, sel[best], best))) best = e;
      taken[best] = true;
      r.topk_idx[static_cast<size_t>(t) * K + k] = best;
      r.topk_weight[static_cast<size_t>(t) * K + k] = s[best];
      sum += s[best];
      ++r.counts[best];
    }
    for (int k = 0; k < K; ++k) {
      float& w = r.topk_weight[static_cast<size_t>(t) * K + k];
      if (c.normalize) w = w / sum;
      w = w * c.scale;
    }
  }
  return r;
}

}  // namespace moesim::kernels
