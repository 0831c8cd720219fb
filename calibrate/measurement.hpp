#pragma once
/// \file One timed kernel configuration: what the profiler records and the fitter consumes. Plain data,
/// no CUDA.

#include <cstdint>
#include <string>
#include <vector>

namespace moesim::calibrate {

/// A kernel family: the unit a cost model is fitted for.
enum class KernelFamily {
  kDenseGemm,          ///< cuBLAS dense GEMM (attention projections, dense FFN): m, n, k
  kGroupedGemm,        ///< expert GEMM over per-expert row counts (rows), shared n, k
  kRouter,             ///< router scoring + top-k: tokens, experts, top_k
  kPermute,            ///< tokens → expert-contiguous rows: bytes moved
  kSwiglu,             ///< SwiGLU activation: bytes moved
  kCombine,            ///< unpermute + weighted combine: bytes moved
  kCopy,               ///< device-to-device copy (bandwidth ceiling): bytes moved
  kAttention,          ///< fused attention forward: FLOPs
  kAttentionBackward,  ///< fused attention backward: FLOPs (2.5 × the forward's), same shape terms
};

const char* to_string(KernelFamily f);

/// One measured configuration: the shape, the medians of ≥ 20 repetitions, and what ran.
struct Measurement {
  KernelFamily family = KernelFamily::kDenseGemm;
  std::string variant;  ///< backend, e.g. "cublas_strided_batched", "per_expert_loop", "ours"
  std::string precision = "bf16";
  double m = 0, n = 0,
         k = 0;  ///< GEMM shape (m = rows); attention: m = query tokens · heads, n = kv tokens, k = qk + v
                 ///< head dims; other families: m = tokens, n = experts, k = top_k or hidden
  std::vector<double> rows;  ///< grouped GEMM: rows per expert
  double bytes = 0;          ///< bytes read + written (memory-bound families)
  double flops = 0;          ///< useful FLOPs
  double median_s = 0;  ///< median kernel time (CUPTI end − start, summed over the kernels of one launch)
  double p10_s = 0, p90_s = 0;  ///< spread
  int repetitions = 0;
  std::vector<std::string> kernel_names;  ///< CUPTI kernel names of one launch (to see which kernel ran)
  std::string launch;                     ///< grid/block of the main kernel, free text
  bool held_out = false;                  ///< not used for fitting; used to report prediction error
  /// The profile point (a model's layer shape, e.g. "deepseek-v3") it was measured at; empty for the
  /// copy ceilings and published rows. Whole points are held out to validate on unseen models.
  std::string point;
};

/// The device and software a set of measurements came from.
struct DeviceInfo {
  std::string name;  ///< e.g. "NVIDIA H100 80GB HBM3"
  int sm_count = 0;
  int sm_clock_mhz = 0;  ///< clock read during the run
  int memory_clock_mhz = 0;
  double memory_bytes = 0;
  std::string driver_version, cuda_version, cublas_version;
  std::string date;  ///< ISO 8601, when the run happened
  std::string host;
};

}  // namespace moesim::calibrate
