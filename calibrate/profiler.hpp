#pragma once
/// \file The kernel profiler: runs a sweep of MoE layer shapes over the kernels of kernels/ on the
/// current CUDA device and returns one Measurement per (kernel family, variant, shape), timed by the
/// CUPTI Activity API (kernel start/end on the GPU, summed over the kernels of one launch).
///
/// Hygiene (see /work/shared/guide/gpu.md): warm-up launches first; fresh seeded random data for
/// every sweep point; the L2 flushed between repetitions by writing a buffer larger than it; at least
/// 20 repetitions, reporting median and p10/p90; the SM clock read on the device during the run;
/// dense cuBLAS GEMMs and a device-to-device copy measured in the same run as ceilings.
///
/// The result feeds calibrate() (calibrate/fit.hpp): device, sweep description, measurements (about
/// 20% held out by mark_held_out) and whole-layer checks.
///
/// This header needs no CUDA; the implementation (calibrate/profiler.cpp) is only built with CUDA
/// (target moesim::profiler) and throws CalibrationError when no device or no CUPTI is available.

#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "calibrate/calibration.hpp"
#include "calibrate/fit.hpp"
#include "calibrate/measurement.hpp"
#include "kernels/config.hpp"

namespace moesim::calibrate {

/// One MoE layer shape of a profiling sweep.
struct ProfilePoint {
  std::string name;  ///< label for logs, e.g. "deepseek-v3"
  int tokens = 0;    ///< T, tokens in the layer's batch
  int experts = 0;   ///< E
  int hidden = 0;    ///< H
  int ffn = 0;       ///< F, per-expert intermediate size
  int top_k = 1;     ///< K
  /// Routing skew: router logits = zipf profile + Gumbel noise, so the expert of rank r gets top-1
  /// share ∝ (r + 1)^−zipf_s (0 = balanced).
  double zipf_s = 0.0;
  /// Router scoring: softmax when groups == 1, DeepSeek-V3 sigmoid with group limit otherwise.
  int groups = 1;
  int topk_groups = 1;
};

/// What to run and how.
struct ProfilePlan {
  std::string name = "custom";  ///< written to SweepPlan::name
  std::vector<ProfilePoint> points;
  /// Expert GEMM backends timed at every point.
  std::vector<kernels::GemmBackend> backends = {kernels::GemmBackend::kCublasStridedBatched,
                                                kernels::GemmBackend::kCublasPerExpert,
                                                kernels::GemmBackend::kCublasGrouped};
  int warmup = 3;        ///< untimed launches before the repetitions
  int repetitions = 25;  ///< timed launches (≥ 20)
  /// Bytes written between repetitions to evict the L2 (H100: 50 MB L2).
  double flush_bytes = 256.0 * 1024 * 1024;
  /// Sizes of the device-to-device copy ceiling, in bytes (read once and written once each).
  std::vector<double> copy_bytes = {128.0 * 1024 * 1024, 512.0 * 1024 * 1024, 2048.0 * 1024 * 1024};
  bool dense_ceiling = true;  ///< time a dense cuBLAS GEMM of the same total rows beside each expert GEMM
  /// The strided-batched backend is skipped at a point whose padded [E, max rows, H] buffers would
  /// exceed this many bytes (skewed routing pads every expert to the largest).
  double padded_limit_bytes = 8.0 * 1024 * 1024 * 1024;
  uint64_t seed = 1;  ///< every random choice derives from it
  /// false: time each launch with CUDA events instead of CUPTI (no kernel names), so the profiler can
  /// run under Nsight Compute or compute-sanitizer, which cannot share the device with CUPTI tracing.
  bool use_cupti = true;
  /// Every measurement at these points (ProfilePoint::name) is held out, the others' none: the fit is
  /// validated on models it never saw. Measurements without a point (the copy ceilings) and every
  /// measurement when this is empty: every n-th of each family (in sweep order) is held out.
  std::vector<std::string> held_out_points;
  int held_out_every = 5;
};

/// The sweep behind a calibration file (name "full"): Mixtral-8x7B, Qwen3-30B-A3B, Qwen3-235B-A22B,
/// DeepSeek-V3 (sigmoid, 8 groups, 4 per token), OLMoE and gpt-oss-120b expert shapes at training batch
/// sizes, balanced and zipf-skewed, and decode-sized DeepSeek-V3, Qwen3-30B-A3B and gpt-oss-120b points.
/// OLMoE, gpt-oss-120b (training and decode) and the Qwen3-30B-A3B decode point are held out whole.
ProfilePlan default_profile_plan();

/// A tiny plan (three small points, 20 repetitions, name "smoke") that checks the profiler in seconds.
ProfilePlan smoke_profile_plan();

/// One whole-layer forward (MoeLayer::forward) timed beside its components.
struct ProfiledLayer {
  kernels::GemmBackend backend;
  /// Components (router, permute, gate/up GEMM, SwiGLU, down GEMM, combine) as indices into
  /// ProfileResult::measurements, and the measured forward (CUPTI sum of its kernels).
  LayerSpec spec;
};

/// What a profiling run produced.
struct ProfileResult {
  DeviceInfo device;
  SweepPlan sweep;  ///< the plan as the calibration file records it
  std::vector<Measurement> measurements;
  std::vector<ProfiledLayer> layers;
};

/// Variants the profiler writes, per family: router "ours_softmax" or "ours_sigmoid_grouped";
/// permute "ours" (compact) or "ours_padded"; swiglu, combine "ours"; grouped_gemm the backend name
/// ("cublas_strided_batched", "cublas_per_expert", "cublas_grouped"); dense_gemm "cublas"; copy
/// "cuda_memcpy" or "ours". calibrate_profile() fits one variant per family (profiler_variants()).

/// Runs `plan` on the current CUDA device. Progress lines go to `log` when given. Throws
/// CalibrationError (no device, CUPTI unavailable, invalid plan) and kernels::CudaError.
ProfileResult run_profile(const ProfilePlan& plan, std::ostream* log = nullptr);

/// The run as a profile file holds it (every measurement, the whole layers' timings).
Profile to_profile(const ProfileResult& r);

/// A fixed-width table: family, variant, shape, median µs, achieved TFLOP/s or TB/s, kernels.
void print_table(std::ostream& os, const ProfileResult& r);

}  // namespace moesim::calibrate
