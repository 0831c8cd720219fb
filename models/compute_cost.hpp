#pragma once
/// \file Compute cost models: what one kernel costs on one GPU. The analytic engine and the DES price
/// every compute op through this interface, so a measured calibration replaces the roofline default
/// without changes elsewhere.

#include <algorithm>
#include <memory>
#include <span>
#include <string>

#include "scenarios/scenario.hpp"

namespace moesim::models {

/// How an op is priced: dense GEMM, grouped (per-expert) GEMM, fused attention, memory-bound kernel or
/// communication.
enum class OpKind { kGemm, kGroupedGemm, kAttention, kMemory, kComm };

/// Memory-bound kernel families priced apart, each at its own measured bandwidth where the cost model
/// has one: a plain stream (norms, residual adds, FP8 casts, copies), the router's softmax/sigmoid and
/// top-k, the permutation of token copies into expert order, the SwiGLU activation, and the
/// un-permutation with the weighted sum of each token's expert outputs.
enum class MemoryKernel { kStream, kRouter, kPermute, kSwiglu, kCombine };

/// "stream", "router", "permute", "swiglu", "combine".
const char* to_string(MemoryKernel k);

/// Shape of fused attention for one microbatch on one GPU.
struct AttentionShape {
  double query_tokens = 0;  ///< tokens whose queries this GPU computes
  double kv_tokens = 0;     ///< keys each query attends to (before the causal mask)
  double heads = 0;         ///< heads on this GPU
  double qk_dim = 0;        ///< per-head query/key dim (MLA: nope + rope)
  double v_dim = 0;         ///< per-head value dim
  bool causal = true;
  /// FLOPs of the forward pass: 2·Tq·Tkv·H·(dqk + dv), halved under a causal mask (FlashAttention-2,
  /// Dao 2023, §3.1 FLOP count).
  double forward_flops() const {
    return 2.0 * query_tokens * kv_tokens * heads * (qk_dim + v_dim) * (causal ? 0.5 : 1.0);
  }
};

/// Decode attention of one iteration on one GPU: each of `sequences` sequences brings `query_per_seq`
/// query tokens (1, or more with speculative tokens) and attends to `kv_per_seq` cached tokens.
struct DecodeAttentionShape {
  double sequences = 0;
  double query_per_seq = 1;
  double kv_per_seq = 0;  ///< mean attended KV tokens per sequence
  double heads = 0;       ///< query heads on this GPU
  double kv_heads = 1;    ///< KV heads on this GPU (absorbed MLA: 1)
  double qk_dim = 0;      ///< per-head query/key dim (absorbed MLA: kv_lora_rank + rope dim)
  double v_dim = 0;       ///< per-head value dim (absorbed MLA: kv_lora_rank)
  double kv_bytes = 0;    ///< KV cache bytes the kernel reads (every sequence's cache, all KV heads)
  /// FLOPs: 2 · queries · KV · heads · (dqk + dv), no mask (every cached token is visible).
  double flops() const { return 2.0 * sequences * query_per_seq * kv_per_seq * heads * (qk_dim + v_dim); }
};

class ComputeCostModel {
 public:
  virtual ~ComputeCostModel() = default;
  /// Identifies the model in results ("roofline:H800-SXM" or a calibration file).
  virtual std::string name() const = 0;
  /// Dense GEMM C[m×n] = A[m×k]·B[k×n] at precision p. Seconds.
  virtual double gemm(double m, double n, double k, Precision p) const = 0;
  /// Grouped GEMM over experts: group g has rows[g] rows, all share n and k. Seconds.
  virtual double grouped_gemm(std::span<const double> rows, double n, double k, Precision p) const = 0;
  /// The same with the expert weights stored at `weight_elem` bytes per element (packed low-bit weights,
  /// dequantised inside the kernel and multiplied at precision p): the math of p, the weight bytes of
  /// their storage. By default priced as grouped_gemm. Seconds.
  virtual double grouped_gemm_weights(std::span<const double> rows, double n, double k, Precision p,
                                      double weight_elem) const {
    (void)weight_elem;
    return grouped_gemm(rows, n, k, p);
  }
  /// Small batched matmuls inside a fused kernel (a chunked scan's per-chunk products), groups of rows[g]
  /// rows by n by k: the grouped-GEMM fit without its HBM floor, since their operands are made and kept
  /// on chip and the kernel's own bytes are priced beside them. By default grouped_gemm. Seconds.
  virtual double batched_matmul(std::span<const double> rows, double n, double k, Precision p) const {
    return grouped_gemm(rows, n, k, p);
  }
  /// The weight gradient of a dense GEMM: dW[m×n] reduced over k tokens (the forward gemm(k, n, m)'s
  /// weight). By default priced as the GEMM of that shape. Seconds.
  virtual double weight_gradient_gemm(double m, double n, double k, Precision p) const {
    return gemm(m, n, k, p);
  }
  /// The weight gradients of the expert GEMMs whose forward is grouped_gemm(rows, n, k): one dW[k×n] per
  /// group, reduced over that group's rows. By default priced as the forward. Seconds.
  virtual double grouped_weight_gradient_gemm(std::span<const double> rows, double n, double k,
                                              Precision p) const {
    return grouped_gemm(rows, n, k, p);
  }
  /// Fused attention forward (or backward: recomputation plus gradients). Seconds.
  virtual double attention(const AttentionShape& s, bool backward) const = 0;
  /// The forward attention kernel's time without its fixed cost: what its FLOPs and shape take once it
  /// runs. By default attention() less attention() of an empty shape. Seconds.
  virtual double attention_work(const AttentionShape& s) const {
    return std::max(0.0, attention(s, false) - attention(AttentionShape{}, false));
  }
  /// A streaming, memory-bound kernel moving `bytes` through HBM (reads plus writes). Seconds.
  virtual double memory_bound(double bytes) const = 0;
  /// A memory-bound kernel of family `k` moving `bytes` (reads plus writes). Seconds. By default every
  /// family streams like memory_bound.
  virtual double memory_kernel(MemoryKernel k, double bytes) const {
    (void)k;
    return memory_bound(bytes);
  }
  /// What prices a memory-bound kernel of family `k` (for per-op output); by default what prices kMemory.
  virtual std::string priced_by_memory(MemoryKernel k) const {
    (void)k;
    return priced_by(OpKind::kMemory, Precision::kBf16);
  }
  /// What prices a compute op of `kind` at precision `p` (GEMMs; others ignore it): the calibration
  /// entry ("h100-sxm.json /models/dense_gemm/precisions/fp8") or the roofline parameters
  /// ("roofline:H100-SXM gemm_efficiency_fp8=0.67"), for per-op output. kComm: "" (the network prices it).
  virtual std::string priced_by(OpKind kind, Precision p) const = 0;
  /// What prices a weight-gradient GEMM of `kind` at precision `p`; by default what prices the forward.
  virtual std::string priced_by_weight_gradient(OpKind kind, Precision p) const { return priced_by(kind, p); }
};

/// Roofline model from the GPU catalog: max(FLOPs / achievable rate, bytes / achievable bandwidth)
/// plus a launch cost, with GEMMs quantised into 128×128 output tiles and waves over the SMs left after
/// `comm_sms` are reserved for communication (Williams et al. 2009, roofline; NVIDIA "Matrix
/// Multiplication Background" guide for tile and wave quantisation).
class RooflineCostModel final : public ComputeCostModel {
 public:
  RooflineCostModel(const GpuSpec& gpu, int comm_sms);
  std::string name() const override;
  double gemm(double m, double n, double k, Precision p) const override;
  double grouped_gemm(std::span<const double> rows, double n, double k, Precision p) const override;
  double grouped_gemm_weights(std::span<const double> rows, double n, double k, Precision p,
                              double weight_elem) const override;
  double attention(const AttentionShape& s, bool backward) const override;
  double attention_work(const AttentionShape& s) const override;
  double memory_bound(double bytes) const override;
  std::string priced_by(OpKind kind, Precision p) const override;

  static constexpr double kTile = 128;  ///< output tile edge (rows and columns)

 private:
  double tile_time(double k, Precision p) const;  ///< one 128×128×k tile on one SM
  GpuSpec gpu_;
  int sms_;  ///< SMs available to compute
};

/// Decode attention (flash-decoding): the slower of its FLOPs at the fused-attention rate and its KV cache
/// read at the streaming rate (memory_bound, with the streaming kernel's fixed cost). The FLOPs are priced
/// as attention_work() of the same FLOPs with the query heads that share a KV head stacked as the rows of
/// one tile (decode kernels do this: FlashMLA puts h_q · s_q rows against one latent KV head), no mask;
/// the fused kernel's fixed cost, fitted on prefill-sized kernels, is left out (decode kernels split the
/// KV sequence over the SMs instead). Decode kernels
/// read each cached token once per KV head group, so large batches run at the streaming rate (cuDNN SDPA
/// decode on an H200: 4.3-4.4 TB/s, scenarios/catalog/calibrations/measured/h200-torch-serving.json;
/// FlashMLA on an H800: 3000 GB/s memory-bound, 660 TFLOP/s compute-bound).
double decode_attention_seconds(const ComputeCostModel& cm, const DecodeAttentionShape& s);

/// The compute cost model a scenario asks for: its calibration (the text the loader read, parsed here;
/// throws CalibrationError if malformed or for another GPU), else its GPU's default calibration
/// (GpuSpec::calibration, read by the loader likewise), else the roofline default of the GPU catalog;
/// every kernel at Scenario::compute_speed times its rate. Reads no file.
std::unique_ptr<ComputeCostModel> make_compute_cost_model(const Scenario& s);

}  // namespace moesim::models
