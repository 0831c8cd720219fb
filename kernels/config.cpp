#include "kernels/config.hpp"

#include <algorithm>

#include "scenarios/error.hpp"

namespace moesim::kernels {
namespace {

[[noreturn]] void bad(const std::string& what, const std::string& field, const std::string& expected,
                      const std::string& found) {
  throw ConfigError(located_message(what, field, expected, found));
}

void check_range(const std::string& what, const std::string& field, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi)
    bad(what, field, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]",
        std::to_string(v));
}

constexpr int64_t kMaxInt = 2147483647;

}  // namespace

RouterConfig& RouterConfig::node_limited(int nodes, int max_nodes) {
  groups = nodes;
  topk_groups = max_nodes;
  group_score_top = max_nodes > 0 ? std::max(1, top_k / max_nodes) : 1;
  return *this;
}

int64_t permuted_rows_bound(const PermuteConfig& c) {
  const int64_t assignments = static_cast<int64_t>(c.tokens) * c.top_k;
  const int64_t padded = static_cast<int64_t>(c.experts) * c.capacity;
  if (c.layout == RowLayout::kPadded) return padded;
  return c.capacity > 0 ? std::min(assignments, padded) : assignments;
}

const std::vector<GemmBackendInfo>& gemm_backends() {
  static const std::vector<GemmBackendInfo> kBackends = {
      {GemmBackend::kCublasStridedBatched, "cublas_strided_batched",
       "cublasGemmStridedBatchedEx on the padded [experts, capacity, hidden] layout"},
      {GemmBackend::kCublasPerExpert, "cublas_per_expert",
       "one cublasGemmEx per non-empty expert on compact rows (host reads the row counts)"},
      {GemmBackend::kCublasGrouped, "cublas_grouped",
       "cublasGemmGroupedBatchedEx on compact rows (an Ampere-era kernel on CUDA 13.0)"},
  };
  return kBackends;
}

const std::string& to_string(GemmBackend b) {
  for (const auto& info : gemm_backends())
    if (info.backend == b) return info.name;
  MOESIM_ASSERT(false, "unregistered GemmBackend");
  return gemm_backends().front().name;  // unreachable
}

GemmBackend parse_gemm_backend(const std::string& name) {
  std::string names;
  for (const auto& info : gemm_backends()) {
    if (info.name == name) return info.backend;
    names += (names.empty() ? "" : ", ") + info.name;
  }
  throw ConfigError("unknown expert GEMM backend '" + name + "'; valid names: " + names);
}

RowLayout layout_for(GemmBackend b) {
  return b == GemmBackend::kCublasStridedBatched ? RowLayout::kPadded : RowLayout::kCompact;
}

bool needs_host_rows(GemmBackend b) {
  return b == GemmBackend::kCublasPerExpert || b == GemmBackend::kCublasGrouped;
}

PermuteConfig MoeLayerConfig::permute() const {
  PermuteConfig p;
  p.tokens = router.tokens;
  p.experts = router.experts;
  p.top_k = router.top_k;
  p.hidden = hidden;
  p.capacity = capacity;
  p.layout = layout_for(backend);
  return p;
}

CombineConfig MoeLayerConfig::combine() const {
  return CombineConfig{router.tokens, router.top_k, hidden};
}

void validate(const RouterConfig& c) {
  const std::string what = "router";
  check_range(what, "/tokens", c.tokens, 0, kMaxInt);
  check_range(what, "/experts", c.experts, 1, kMaxExperts);
  check_range(what, "/top_k", c.top_k, 1, std::min(kMaxTopK, c.experts));
  check_range(what, "/groups", c.groups, 1, std::min(kMaxGroups, c.experts));
  if (c.experts % c.groups != 0)
    bad(what, "/groups", "a divisor of experts (" + std::to_string(c.experts) + ")",
        std::to_string(c.groups));
  const int group_size = c.experts / c.groups;
  check_range(what, "/topk_groups", c.topk_groups, 1, c.groups);
  if (c.groups > 1) check_range(what, "/group_score_top", c.group_score_top, 1, std::min(2, group_size));
  if (static_cast<int64_t>(c.topk_groups) * group_size < c.top_k)
    bad(what, "/top_k",
        "at most topk_groups × experts per group (" + std::to_string(c.topk_groups * group_size) + ")",
        std::to_string(c.top_k));
  if (!(c.scale > 0.0f)) bad(what, "/scale", "a positive number", std::to_string(c.scale));
}

void validate(const PermuteConfig& c) {
  const std::string what = "permute";
  check_range(what, "/tokens", c.tokens, 0, kMaxInt);
  check_range(what, "/experts", c.experts, 1, kMaxExperts);
  check_range(what, "/top_k", c.top_k, 1, std::min(kMaxTopK, c.experts));
  check_range(what, "/hidden", c.hidden, 1, kMaxInt);
  check_range(what, "/capacity", c.capacity, 0, kMaxInt);
  if (c.layout == RowLayout::kPadded && c.capacity == 0)
    bad(what, "/capacity", "a positive capacity for the padded layout", "0 (dropless)");
  if (permuted_rows_bound(c) > kMaxInt)
    bad(what, "/capacity", "at most 2^31 − 1 permuted rows", std::to_string(permuted_rows_bound(c)));
}

void validate(const CombineConfig& c) {
  const std::string what = "combine";
  check_range(what, "/tokens", c.tokens, 0, kMaxInt);
  check_range(what, "/top_k", c.top_k, 1, kMaxTopK);
  check_range(what, "/hidden", c.hidden, 1, kMaxInt);
}

void validate(const MoeLayerConfig& c) {
  validate(c.router);
  const std::string what = "moe_layer";
  check_range(what, "/hidden", c.hidden, 1, kMaxInt);
  check_range(what, "/ffn", c.ffn, 1, kMaxInt / 2);
  check_range(what, "/capacity", c.capacity, 0, kMaxInt);
  if (c.backend == GemmBackend::kCublasStridedBatched && c.capacity == 0)
    bad(what, "/capacity", "a positive capacity for backend cublas_strided_batched (padded layout)",
        "0 (dropless)");
  validate(c.permute());
}

}  // namespace moesim::kernels
