#pragma once
/// \file Published kernel-level measurements as calibration measurements (docs/calibration.md,
/// "Calibrating from published kernels"): the CSV tables of scenarios/catalog/calibrations/published/
/// (DeepGEMM FP8 GEMMs on H800, FlashAttention-3 forward on H100, the H100 BF16 GEMM, copy and launch
/// figures of a measured machine) turned into Measurement records and fitted with calibrate() like a
/// sweep on the GPU. No end-to-end figure enters: only kernels timed in isolation.

#include <string>
#include <vector>

#include "calibrate/calibration.hpp"
#include "calibrate/fit.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::calibrate {

/// DeepGEMM rows used: the README of this commit (the first release, the rows the accuracy report
/// compares against); the later revisions' faster kernels are left out so that one kernel version is fitted.
inline constexpr const char* kDeepGemmCommit = "a6d97a1c1b48a7a9d7994d0e155ee6f11d0a3f07";

/// The variant of every published measurement; kernel_names holds the library and kernel.
inline constexpr const char* kPublishedVariant = "published";

/// The output tile the published GEMMs are quantised to: 64 × 128, the smallest block of the Hopper
/// kernels these figures come from (one warpgroup's 64-row wgmma; DeepGEMM's BLOCK_M is 64 for small m),
/// so a 64-row GEMM is not priced as a 128-row one.
inline constexpr double kPublishedTileM = 64, kPublishedTileN = 128;

/// An empty kernel's time on the GPU, s (H100, the project's GPU guide, "Ceilings": 0.88 µs): the floor of
/// a published GEMM fit's launch_s, since the BF16 rows are too few to fit it (they are all large shapes).
inline constexpr double kEmptyKernelS = 0.88e-6;

/// The measurements of every published table in `dir` that this reader knows, recognised by header:
/// - DeepGEMM (columns commit, table, groups, m_per_group, n, k, tflops): rows of kDeepGemmCommit; dense →
///   dense_gemm, grouped_contiguous and grouped_masked → grouped_gemm with `groups` equal row counts; FP8;
///   median_s = 2·groups·m·n·k / tflops (DeepGEMM's time is a mean of 30 launches);
/// - FlashAttention forward (columns method, headdim, causal, seqlen, batch, heads, tflops, fwd_flops):
///   rows of method FlashAttention-3 with a figure; attention, BF16, m = batch
///   · seqlen · heads, n = seqlen, k = 2 · headdim, flops = fwd_flops, median_s = flops / tflops;
/// - attention times (columns kernel, direction, batch, heads, seqlen, qk_dim, v_dim, causal, median_us):
///   backward rows only, attention_backward, BF16, m = batch · seqlen · heads, n = seqlen, k = qk + v,
///   flops = 2.5 · 2 · scores · k (scores halved when causal), median_s = median_us (forward rows are
///   read as context and not used);
/// - figures (columns source, family, variant, precision, groups, m_per_group, n, k, bytes, published,
///   unit): one measurement per row; unit TFLOP/s (GEMMs: time = FLOPs / figure), TB/s (bytes / figure)
///   or us (the time itself).
/// Every measurement's variant is kPublishedVariant; its kernel_names names the library (DeepGEMM,
/// FlashAttention-3, or the figures row's `variant`) and `launch` the source row.
/// Files are read in name order, rows in file order. Other CSV files are an error. Every malformed field
/// is a CalibrationError naming the file, the line and the column. `sources` (if given) receives one line
/// per file: its name and the rows used.
std::vector<Measurement> published_measurements(const std::string& dir, std::vector<std::string>* sources);

/// Marks every n-th measurement of each (family, precision) held out, in order, and clears the mark on
/// the others (n ≤ 0: none held out): the BF16 GEMMs, a handful of rows, keep one held out each.
void mark_held_out_per_precision(std::vector<Measurement>& ms, int every);

/// The fit options of published calibrations on `gpu`: its datasheet peaks (fit_options_for),
/// 64 × 128 tiles, the GEMM byte term and launch_s at least kEmptyKernelS.
FitOptions published_fit_options(const GpuSpec& gpu);

/// published_measurements(dir), held out every `held_out_every`-th per family and precision, fitted on
/// `gpu` (its name and SM count are the calibration's device). Throws CalibrationError as calibrate() does.
Calibration calibrate_from_published(const std::string& dir, const GpuSpec& gpu, int held_out_every,
                                     Provenance provenance);

/// Calibration `c`, fitted on GPU `from`, carried to GPU `to` (no kernel measured on it) by datasheet
/// ratios: every GEMM keeps its fitted efficiency, tile, per-wave and launch costs and takes `to`'s peak
/// of its precision and SM count (so a tile runs at `to`'s per-SM peak times the measured efficiency);
/// its per-byte term scales by the memory bandwidth ratio from/to; attention's rate scales by the BF16
/// peak ratio to/from and its shape terms by the inverse; every memory-bound family's bandwidth scales by
/// the memory bandwidth ratio to/from, its fixed cost stays. The result holds no measurements (none was
/// taken on `to`); its sweep note and provenance name the source and the ratios. Throws CalibrationError
/// if `c` was not fitted on `from` (device name or SM count differ) or a ratio is not positive.
Calibration scale_calibration(const Calibration& c, const GpuSpec& from, const GpuSpec& to,
                              Provenance provenance);

}  // namespace moesim::calibrate
