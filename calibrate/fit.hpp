#pragma once
/// \file Fitting the per-family cost models of a calibration to measured medians, and validating them on
/// held-out measurements (docs/calibration.md, "Fitting"). Least squares with Eigen, weighted so that
/// every measurement counts by its relative error; no CUDA.

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "calibrate/calibration.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::calibrate {

/// What the fitter needs beyond the measurements.
struct FitOptions {
  /// Reference dense peak per precision ("bf16", "fp8"), flop/s, for the whole device: GEMM efficiencies
  /// are fractions of it. Required for every precision that GEMM measurements use.
  std::map<std::string, double> peak_flops;
  /// The variant to fit per family. A family not listed here must have measurements of one variant only.
  std::map<KernelFamily, std::string> variants;
  double tile_m = 128;  ///< output tile rows the GEMM models quantise to
  double tile_n = 128;  ///< output tile columns
  /// More (tile_m, tile_n) shapes to try: each GEMM precision keeps the tile (of these and the one above)
  /// whose fit has the least squared relative residual, as cuBLAS's heuristics pick a tile per shape
  /// family (128×256 and 256×128 for large Hopper GEMMs, 128×64 for small ones).
  std::vector<std::pair<double, double>> tile_candidates;
  /// The tile policy of each GEMM precision's fit ("fp8": DeepGEMM's min_waves); absent: kFixed, with the
  /// tile above or the best of tile_candidates.
  std::map<std::string, TilePolicy> tile_policy;
  /// Grouped-GEMM variants that launch once per non-empty group (GemmParams::launch_per_group).
  std::vector<std::string> per_group_launch_variants = {"cublas_per_expert"};
  /// Grouped-GEMM variants that pad every group to the largest (GemmParams::padded_groups).
  std::vector<std::string> padded_variants = {"cublas_strided_batched"};
  /// Fit GEMMs with a fourth unknown, seconds per HBM byte (GemmParams::s_per_byte); off: that term is 0.
  bool gemm_byte_term = false;
  /// The least fixed cost per GEMM launch, s (a fitted launch_s is at least this; 0: no floor).
  double min_launch_s = 0;
  /// HBM bandwidth of the device, bytes/s: the fitted bandwidths of memory-bound families are at most
  /// this (0: unbounded). Attention rates are at most peak_flops["bf16"] when it is given.
  double memory_bandwidth = 0;
};

/// Options with the datasheet peaks of a catalog GPU (flops_bf16, and flops_fp8 when it has FP8) and its
/// memory bandwidth.
FitOptions fit_options_for(const GpuSpec& gpu);

/// Marks the n-th, 2n-th, ... measurement of each family (in their order in `ms`) held out and clears the
/// mark on all others; `every` ≤ 0 clears every mark. Deterministic: no random choice.
void mark_held_out(std::vector<Measurement>& ms, int every);

/// Holds out every measurement whose point is in `points` (validation on models the fit never saw) and
/// none of the other points' measurements; measurements without a point follow mark_held_out(ms, every),
/// as every measurement does when `points` is empty.
void mark_held_out_points(std::vector<Measurement>& ms, const std::vector<std::string>& points, int every);

/// Fits the model of family `f` to the measurements of `ms` that are of that family and its variant
/// and not held out, on a device with `sm_count` SMs:
/// - GEMMs, per precision: time = waves · (tile_time(k) / efficiency + wave_overhead) + launch
///   [+ bytes · s_per_byte with FitOptions::gemm_byte_term] (GemmParams), unknowns 1/efficiency ≥ 1
///   (efficiency at most 1), wave_overhead ≥ 0, launch ≥ FitOptions::min_launch_s, s_per_byte ≥ 0;
/// - memory-bound families: time = fixed + bytes / bandwidth, unknowns 1/bandwidth > 0 (bandwidth at
///   most FitOptions::memory_bandwidth when given), fixed ≥ 0;
/// - attention: time = fixed + FLOPs / rate + scores · s_per_score + query_rows · s_per_query_row
///   (StreamParams::attention_time; the shape terms are 0 for measurements without m and k), rate at most
///   the BF16 peak when given, the others ≥ 0.
/// Minimises Σ ((predicted − measured) / measured)² under those sign constraints (exactly, by trying
/// every support of the few unknowns, each solved by column-pivoting Householder QR). Throws
/// CalibrationError if there are too few measurements (3 per GEMM precision, 2 otherwise), a GEMM
/// precision has no reference peak, the variant is ambiguous, or no positive rate fits.
FamilyModel fit_family(KernelFamily f, const std::vector<Measurement>& ms, int sm_count, const FitOptions& o);

/// fit_family for every family that has measurements in `ms`.
std::map<KernelFamily, FamilyModel> fit_models(const std::vector<Measurement>& ms, int sm_count,
                                               const FitOptions& o);

/// The p-th quantile (p in [0, 1]) by linear interpolation between order statistics: with the values
/// sorted, h = (n − 1)·p, result = v[⌊h⌋] + (h − ⌊h⌋)·(v[⌊h⌋+1] − v[⌊h⌋]) (Hyndman & Fan 1996, type 7;
/// numpy's default). 0 for an empty set.
double percentile(std::vector<double> values, double p);

/// Count, median, 95th percentile and maximum of relative errors.
ErrorStats error_stats(const std::vector<double>& rel_errors);

/// Held-out validation: for each model, the relative errors |predicted − measured| / measured of the
/// held-out measurements it covers; and for each layer, Σ predictions of its components against its
/// measured time. Throws CalibrationError if a layer component has no model that covers it or an index
/// is out of range.
HeldOut validate(const std::map<KernelFamily, FamilyModel>& models, const std::vector<Measurement>& ms,
                 const std::vector<LayerSpec>& layers);

/// Fits, validates and assembles a calibration. An empty sweep.families is filled with the measured
/// families. Throws CalibrationError as fit_family and validate do, or if a swept family has no
/// measurements.
Calibration calibrate(DeviceInfo device, SweepPlan sweep, std::vector<Measurement> ms,
                      const std::vector<LayerSpec>& layers, const FitOptions& o, Provenance provenance);

/// The variant fitted per family for the profiler's measurements (calibrate/profiler.hpp lists what it
/// writes): router "ours_softmax", permute "ours" (compact rows), grouped_gemm "cublas_grouped" (one
/// cuBLAS grouped launch over the real rows, as Transformer Engine's grouped GEMM runs), dense_gemm
/// "cublas", copy "cuda_memcpy"; swiglu and combine have one variant each.
std::map<KernelFamily, std::string> profiler_variants();

/// The layer checks of `layers` whose every component has the variant `variants` names for its family
/// (families not named accept any variant): what calibrate() can validate after fitting those variants.
std::vector<LayerSpec> layers_with_variants(const std::vector<Measurement>& ms,
                                            const std::vector<LayerSpec>& layers,
                                            const std::map<KernelFamily, std::string>& variants);

/// Completes `c` with what `other` (a calibration of a device with the same SM count) has and `c` lacks:
/// whole families (the model, its held-out statistics, the measurements it covers) and, for GEMM
/// families `c` has, the precisions it lacks (their parameters only: the measurements belong to another
/// variant). The sweep's note names `other` and what came from it. Throws CalibrationError (naming
/// other.source) when the SM counts differ.
Calibration fill_from(Calibration c, const Calibration& other);

/// Fits a recorded profile: `o.variants` (profiler_variants() when empty) picks the variant per family,
/// the layer checks of those variants are validated, and the calibration is assembled (calibrate()).
Calibration calibrate_profile(const Profile& p, FitOptions o, Provenance provenance);

}  // namespace moesim::calibrate
