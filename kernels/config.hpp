#pragma once
/// \file Shapes and options of the MoE layer kernels, shared by the CUDA kernels (kernels/device.hpp)
/// and their CPU references (kernels/reference.hpp). Plain C++: no CUDA header.
///
/// Data layout (row-major throughout; T tokens, E experts, K = top_k, H hidden, F expert FFN size):
///   logits       fp32 [T, E]           router scores before the score function
///   expert_bias  fp32 [E]              added for selection only (auxiliary-loss-free balancing)
///   topk_idx     int32 [T, K]          experts of each token, strongest selection score first
///   topk_weight  fp32 [T, K]           combine weights (from the score without bias)
///   x            bf16 [T, H]           layer input
///   rows         bf16 [R, H]           x permuted into expert-contiguous rows
///   w_gate_up    bf16 [E, 2F, H]       per expert: rows 0..F-1 gate, F..2F-1 up (nn.Linear: out × in)
///   h            bf16 [R, 2F]          gate | up activations
///   a            bf16 [R, F]           silu(gate) · up
///   w_down       bf16 [E, H, F]
///   y            bf16 [R, H]           expert outputs
///   out          bf16 [T, H]           Σ_k weight · y, fp32 accumulation

#include <cstdint>
#include <string>
#include <vector>

namespace moesim::kernels {

/// Largest expert count the router kernel supports (32 lanes × 32 values per lane).
inline constexpr int kMaxExperts = 1024;
/// Largest top_k.
inline constexpr int kMaxTopK = 32;
/// Largest number of expert groups (groups are ranked inside one warp).
inline constexpr int kMaxGroups = 32;

/// How router logits become scores.
enum class ScoreFunction {
  kSoftmax,  ///< softmax over all experts (Mixtral, Qwen3, DeepSeek-V2)
  kSigmoid,  ///< independent sigmoid per expert (DeepSeek-V3)
};

/// Router: scores, optional group/node limit, top-k, weights, histogram. Semantics follow the
/// DeepSeek-V3 reference gate (DeepSeek-AI 2024, arXiv:2412.19437, §2.1.2 and its model.py `Gate`):
///   s = score(logits);  sel = s + bias (bias for selection only)
///   groups > 1: group score = sum of the group's `group_score_top` largest sel; keep the
///               `topk_groups` best groups, the others' experts are masked out
///   idx = top_k of sel (ties: lower expert id first);  w = s[idx]
///   normalize: w /= Σ w  (summed in selection order);  w *= scale
/// Node-limited routing (each token reaches at most M nodes) is group-limited routing with one group
/// per node: see node_limited().
struct RouterConfig {
  int tokens = 0;   ///< rows of logits, ≥ 0
  int experts = 0;  ///< columns of logits, 1..kMaxExperts
  int top_k = 1;    ///< experts per token, 1..kMaxTopK
  ScoreFunction score = ScoreFunction::kSoftmax;
  int groups = 1;           ///< expert groups (contiguous, experts / groups each); 1 = no group limit
  int topk_groups = 1;      ///< groups a token may use, 1..groups (DeepSeek-V3: 4 of 8)
  int group_score_top = 2;  ///< a group's score sums its n best sel: 2 = DeepSeek-V3, 1 = max (V2)
  bool normalize = true;    ///< divide the top-k weights by their sum
  float scale = 1.0f;       ///< routed scaling factor applied last (DeepSeek-V3: 2.5)

  /// DeepSeek-V3 node-limited routing: experts spread contiguously over `nodes` nodes, each token
  /// reaches at most `max_nodes`; nodes are ranked by the sum of their top_k / max_nodes best scores.
  RouterConfig& node_limited(int nodes, int max_nodes);
};

/// How permuted rows are laid out.
enum class RowLayout {
  kCompact,  ///< expert e's rows are [offsets[e], offsets[e+1]): no padding
  kPadded,   ///< expert e's rows are [e·capacity, e·capacity + kept[e]): [E, capacity, H]
};

/// Permute: tokens → expert-contiguous rows, in token order within each expert.
struct PermuteConfig {
  int tokens = 0;
  int experts = 0;
  int top_k = 1;
  int hidden = 0;  ///< H, elements per row
  /// Most rows an expert keeps; the rest are dropped, later tokens first (token order). 0 = dropless
  /// (compact layout only).
  int capacity = 0;
  RowLayout layout = RowLayout::kCompact;
};

/// Rows the permuted buffer must hold: padded E·capacity, compact min(T·K, E·capacity) or T·K.
int64_t permuted_rows_bound(const PermuteConfig& c);

/// Combine: out[t] = Σ_k topk_weight[t,k] · y[row_map[t,k]] over kept assignments (row ≥ 0).
struct CombineConfig {
  int tokens = 0;
  int top_k = 1;
  int hidden = 0;
};

/// Expert GEMM backends (registered by name, see gemm_backends()).
enum class GemmBackend {
  kCublasStridedBatched,  ///< cublasGemmStridedBatchedEx over the padded [E, capacity, ·] layout
  kCublasPerExpert,       ///< one cublasGemmEx per non-empty expert (host needs the row counts)
  kCublasGrouped,         ///< cublasGemmGroupedBatchedEx, one group per non-empty expert
  // A backend of our own (e.g. a Hopper wgmma/TMA grouped GEMM) is added here: docs/kernels.md,
  // "Adding a backend".
};

/// A registered backend: its name and a one-line description.
struct GemmBackendInfo {
  GemmBackend backend;
  std::string name;
  std::string description;
};
const std::vector<GemmBackendInfo>& gemm_backends();
/// Name of a backend, e.g. "cublas_strided_batched".
const std::string& to_string(GemmBackend b);
/// Backend by name; throws ConfigError listing the valid names.
GemmBackend parse_gemm_backend(const std::string& name);
/// The row layout a backend consumes (padded for strided-batched, compact otherwise).
RowLayout layout_for(GemmBackend b);
/// Whether a backend needs the per-expert row counts on the host (a device → host sync).
bool needs_host_rows(GemmBackend b);

/// One MoE layer forward.
struct MoeLayerConfig {
  RouterConfig router;  ///< tokens, experts, top_k and routing options
  int hidden = 0;       ///< H
  int ffn = 0;          ///< F, per-expert intermediate size
  /// Rows an expert keeps (0 = dropless). Required (> 0) for the strided-batched backend, whose
  /// padded layout is [E, capacity, H]; for dropless routing there, use the largest expert count.
  int capacity = 0;
  GemmBackend backend = GemmBackend::kCublasStridedBatched;

  PermuteConfig permute() const;
  CombineConfig combine() const;
};

/// Each validate() throws ConfigError naming the field, the expected range and the value found.
void validate(const RouterConfig& c);
void validate(const PermuteConfig& c);
void validate(const CombineConfig& c);
void validate(const MoeLayerConfig& c);

}  // namespace moesim::kernels
