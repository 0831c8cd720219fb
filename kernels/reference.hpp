#pragma once
/// \file CPU references of the MoE layer kernels: the same operations as kernels/device.hpp on host
/// vectors, written for clarity, not speed. Where a kernel stores an fp32 result as bf16 the
/// reference rounds the same way (to nearest even), and where a kernel's arithmetic order is fixed
/// (router weights, combine) the reference uses the same order, so differences against the GPU come
/// only from exp() implementations and from summation order inside reductions and GEMMs.
///
/// Layouts and semantics: kernels/config.hpp. Every function validates its configuration
/// (ConfigError) and checks vector sizes (ConfigError naming the argument).

#include <cstdint>
#include <vector>

#include "kernels/bf16.hpp"
#include "kernels/config.hpp"

namespace moesim::kernels {

/// Router outputs.
struct RouterResult {
  std::vector<int32_t> topk_idx;   ///< [T, K], strongest selection score first
  std::vector<float> topk_weight;  ///< [T, K]
  std::vector<int32_t> counts;     ///< [E], tokens routed to each expert (before capacity drops)
};

/// Scores, group limit, top-k, weights and histogram of `logits` [T, E]. `bias` is empty or [E].
RouterResult router_ref(const RouterConfig& c, const std::vector<float>& logits,
                        const std::vector<float>& bias = {});

/// Permute outputs.
struct PermuteResult {
  std::vector<Bf16> rows;            ///< [permuted_rows_bound, H]; padding rows are zero here
  std::vector<int32_t> row_map;      ///< [T, K]: destination row of (t, k), −1 if dropped
  std::vector<int32_t> kept_counts;  ///< [E]: rows kept per expert (≤ capacity)
  std::vector<int32_t> offsets;      ///< [E + 1]: exclusive scan of kept_counts
  int32_t dropped = 0;               ///< assignments dropped by the capacity limit
};

/// Tokens into expert-contiguous rows, token order within an expert; x is [T, H].
PermuteResult permute_ref(const PermuteConfig& c, const std::vector<int32_t>& topk_idx,
                          const std::vector<Bf16>& x);

/// a[r, j] = bf16(silu(h[r, j]) · h[r, F + j]) for r < rows, j < F; h is [rows, 2F], a is [rows, F].
/// silu(g) = g / (1 + e^−g) in fp32 (Shazeer 2020, "GLU Variants Improve Transformer").
std::vector<Bf16> swiglu_ref(int64_t rows, int ffn, const std::vector<Bf16>& h);

/// Rows of one expert GEMM problem: expert e owns rows [row_start(e), row_start(e) + rows[e]).
struct ExpertRows {
  RowLayout layout = RowLayout::kCompact;
  int capacity = 0;                ///< padded: row_start(e) = e · capacity
  std::vector<int32_t> rows;       ///< [E], rows per expert
  int64_t row_start(int e) const;  ///< first row of expert e
  int64_t total_rows() const;      ///< rows of the buffer: E · capacity or Σ rows
};

/// y[r, :] = bf16(Σ_k x[r, k] · w[e, :, k]) for every row r of every expert e, fp32 accumulation.
/// x is [total_rows, k], w is [E, n, k] (nn.Linear: out × in), y is [total_rows, n]; rows that
/// belong to no expert (padding) are zero.
std::vector<Bf16> expert_gemm_ref(const ExpertRows& er, int n, int k, const std::vector<Bf16>& x,
                                  const std::vector<Bf16>& w);

/// out[t, :] = bf16(Σ_k w[t,k] · y[row_map[t,k], :]) over k with row_map ≥ 0, accumulated in fp32
/// with one fused multiply-add per k in ascending k (as the kernel does).
std::vector<Bf16> combine_ref(const CombineConfig& c, const std::vector<Bf16>& y,
                              const std::vector<int32_t>& row_map, const std::vector<float>& topk_weight);

/// Host inputs of one MoE layer forward.
struct MoeLayerInputs {
  std::vector<float> logits;    ///< [T, E]
  std::vector<float> bias;      ///< [E] or empty
  std::vector<Bf16> x;          ///< [T, H]
  std::vector<Bf16> w_gate_up;  ///< [E, 2F, H]
  std::vector<Bf16> w_down;     ///< [E, H, F]
};

/// Every intermediate of one reference forward.
struct MoeLayerResult {
  RouterResult router;
  PermuteResult permute;
  ExpertRows expert_rows;
  std::vector<Bf16> h;    ///< [rows, 2F]
  std::vector<Bf16> a;    ///< [rows, F]
  std::vector<Bf16> y;    ///< [rows, H]
  std::vector<Bf16> out;  ///< [T, H]
};

/// router → permute → gate/up GEMM → SwiGLU → down GEMM → combine. The backend only picks the row
/// layout (padded or compact); the arithmetic is the same.
MoeLayerResult moe_layer_ref(const MoeLayerConfig& c, const MoeLayerInputs& in);

}  // namespace moesim::kernels
