#pragma once
/// \file Host API of the CUDA MoE layer kernels (CUDA builds only: target moesim::kernels).
///
/// Every function enqueues work on `stream` and returns without synchronising, except where a
/// comment says it reads row counts back to the host. All pointers are device pointers; shapes,
/// layouts and semantics are those of kernels/config.hpp, and kernels/reference.hpp computes the
/// same results on the host. Storage is bf16, accumulation fp32. Configurations are validated
/// (ConfigError); CUDA and cuBLAS failures throw CudaError.

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/bf16.hpp"
#include "kernels/config.hpp"
#include "scenarios/error.hpp"

namespace moesim::kernels {

/// A CUDA runtime or cuBLAS call failed; what() names the call, the error and the source line.
class CudaError : public Error {
 public:
  using Error::Error;
};

// ---------------------------------------------------------------- router

/// Device buffers of the router.
struct RouterArgs {
  const float* logits = nullptr;       ///< [T, E]
  const float* expert_bias = nullptr;  ///< [E] or nullptr: added for selection only
  int32_t* topk_idx = nullptr;         ///< out [T, K]
  float* topk_weight = nullptr;        ///< out [T, K]
  int32_t* counts = nullptr;           ///< out [E]: zeroed here (cudaMemsetAsync), then histogram
};

/// Scores, group limit, top-k, weights and histogram: one memset and one kernel. A team of lanes
/// routes one token, each lane holding a slice of its experts in registers (16-byte loads); the
/// histogram is gathered in shared memory and added to `counts` once per block.
void launch_router(const RouterConfig& c, const RouterArgs& a, cudaStream_t stream);

// ---------------------------------------------------------------- permute

/// Device buffers of permute.
struct PermuteArgs {
  const int32_t* topk_idx = nullptr;  ///< [T, K]
  const Bf16* x = nullptr;            ///< [T, H]
  Bf16* rows = nullptr;               ///< out [permuted_rows_bound, H]; padding rows are not written
  int32_t* row_map = nullptr;         ///< out [T, K]: destination row, −1 if dropped
  int32_t* kept_counts = nullptr;     ///< out [E]
  int32_t* offsets = nullptr;         ///< out [E + 1]: exclusive scan of kept_counts
  int32_t* dropped = nullptr;         ///< out [1]
  void* scratch = nullptr;            ///< permute_scratch_bytes(c) bytes, 256-byte aligned
};

/// Scratch permute needs (per-tile counts and ranks), in bytes.
size_t permute_scratch_bytes(const PermuteConfig& c);

/// Three kernels: per 256-token tile, a bitset per expert gives each assignment its rank within the
/// expert (token order) and the tile's counts; one block scans counts over tiles and experts into
/// offsets, applying the capacity; then one block per token reads its row once (16-byte loads) and
/// writes it to each kept destination.
void launch_permute(const PermuteConfig& c, const PermuteArgs& a, cudaStream_t stream);

// ---------------------------------------------------------------- SwiGLU and combine

/// a[r, j] = bf16(silu(h[r, j]) · h[r, F + j]) for r < rows: h is [rows, 2F], a is [rows, F].
/// 16-byte loads and stores when F % 8 == 0 and the pointers are 16-byte aligned.
void launch_swiglu(int64_t rows, int ffn, const Bf16* h, Bf16* a, cudaStream_t stream);

/// Device buffers of combine.
struct CombineArgs {
  const Bf16* y = nullptr;             ///< [rows, H] expert outputs
  const int32_t* row_map = nullptr;    ///< [T, K] from permute
  const float* topk_weight = nullptr;  ///< [T, K] from the router
  Bf16* out = nullptr;                 ///< out [T, H]
};

/// out[t] = bf16(Σ_k w · y[row]) in fp32, one fmaf per k in ascending k; one block per token.
void launch_combine(const CombineConfig& c, const CombineArgs& a, cudaStream_t stream);

// ---------------------------------------------------------------- expert GEMMs

/// One grouped GEMM: y[rows of e] = x[rows of e] · w[e]ᵀ for every expert e.
struct ExpertGemmArgs {
  int experts = 0;
  int n = 0;  ///< output features
  int k = 0;  ///< input features
  RowLayout layout = RowLayout::kCompact;
  int capacity = 0;  ///< padded layout: rows of expert e start at e · capacity
  /// Host array [E] of rows per expert. Needed by the per-expert and grouped backends; the
  /// strided-batched backend multiplies all `capacity` rows of every expert and ignores it.
  const int32_t* host_rows = nullptr;
  const Bf16* x = nullptr;  ///< [rows, k]
  const Bf16* w = nullptr;  ///< [E, n, k]
  Bf16* y = nullptr;        ///< out [rows, n]
};

/// cuBLAS expert GEMMs (bf16 in and out, fp32 compute). Owns a cuBLAS handle and the device arrays
/// of pointers the grouped API needs. Not thread-safe; one per stream.
class ExpertGemm {
 public:
  ExpertGemm();
  ~ExpertGemm();
  ExpertGemm(const ExpertGemm&) = delete;
  ExpertGemm& operator=(const ExpertGemm&) = delete;

  /// Enqueues the GEMM with `backend`. Throws ConfigError for a layout the backend cannot use or for
  /// missing host_rows.
  void run(GemmBackend backend, const ExpertGemmArgs& a, cudaStream_t stream);

  /// The underlying handle (for dense GEMMs measured beside the expert GEMMs).
  void* cublas_handle() const { return handle_; }

 private:
  void* handle_ = nullptr;  // cublasHandle_t
  struct Pointers;          // device + pinned host arrays for cublasGemmGroupedBatchedEx
  std::unique_ptr<Pointers> ptrs_;
};

/// Dense bf16 GEMM Y[m, n] = X[m, k] · W[n, k]ᵀ with fp32 compute (the roofline ceiling).
void dense_gemm(ExpertGemm& g, int m, int n, int k, const Bf16* x, const Bf16* w, Bf16* y,
                cudaStream_t stream);

// ---------------------------------------------------------------- the layer

/// Inputs and output of one layer forward (device pointers).
struct MoeLayerArgs {
  const float* logits = nullptr;       ///< [T, E] (the router GEMM is done by the caller)
  const float* expert_bias = nullptr;  ///< [E] or nullptr
  const Bf16* x = nullptr;             ///< [T, H]
  const Bf16* w_gate_up = nullptr;     ///< [E, 2F, H]
  const Bf16* w_down = nullptr;        ///< [E, H, F]
  Bf16* out = nullptr;                 ///< out [T, H]
  void* workspace = nullptr;           ///< MoeLayer::workspace_bytes(), 256-byte aligned
};

/// Intermediates of a forward, carved out of the workspace (for tests and profiling).
struct MoeLayerBuffers {
  int32_t* topk_idx;     ///< [T, K]
  float* topk_weight;    ///< [T, K]
  int32_t* counts;       ///< [E]
  int32_t* row_map;      ///< [T, K]
  int32_t* kept_counts;  ///< [E]
  int32_t* offsets;      ///< [E + 1]
  int32_t* dropped;      ///< [1]
  Bf16* rows;            ///< [R, H], R = permuted_rows_bound
  Bf16* h;               ///< [R, 2F]
  Bf16* a;               ///< [R, F]
  Bf16* y;               ///< [R, H]
  void* permute_scratch;
};

/// One MoE layer: router → permute → gate/up GEMM → SwiGLU → down GEMM → combine.
class MoeLayer {
 public:
  /// Validates the configuration (ConfigError) and creates the cuBLAS handle.
  explicit MoeLayer(const MoeLayerConfig& c);

  const MoeLayerConfig& config() const { return config_; }
  /// Device workspace the forward needs, in bytes.
  size_t workspace_bytes() const;
  /// Where each intermediate lives inside `workspace`.
  MoeLayerBuffers buffers(void* workspace) const;

  /// Enqueues the forward. Backends that need host row counts (per-expert, grouped) copy kept_counts
  /// to the host and synchronise `stream` once, between permute and the first GEMM.
  void forward(const MoeLayerArgs& a, cudaStream_t stream);

  /// Rows per expert of the last forward, when the backend read them (empty otherwise).
  const std::vector<int32_t>& host_rows() const { return host_rows_; }

 private:
  MoeLayerConfig config_;
  ExpertGemm gemm_;
  std::vector<int32_t> host_rows_;
};

}  // namespace moesim::kernels
