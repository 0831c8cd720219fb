#pragma once
/// \file The calibration file (format "moesim-calibration", version 1; docs/calibration.md): the device,
/// the sweep plan, the raw medians, the fitted model of each kernel family, the held-out errors and the
/// provenance of one calibration run. Plain data plus the formulas that evaluate a fitted model; reading
/// and writing need no CUDA. Every reading error is a moesim::CalibrationError naming the file, the
/// JSON pointer, what was expected and what was found.

#include <cstddef>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "calibrate/measurement.hpp"

namespace moesim::calibrate {

/// Value of the top-level "format" key.
inline constexpr const char* kCalibrationFormat = "moesim-calibration";
/// The version this code writes and the only one it reads.
inline constexpr int kCalibrationVersion = 1;

/// Every kernel family, in the order files list them.
const std::vector<KernelFamily>& all_families();
/// The family whose to_string() is `name` ("dense_gemm", "copy", ...); nullopt if there is none.
std::optional<KernelFamily> family_from_string(std::string_view name);
/// Dense and grouped GEMMs: priced with tile and wave quantisation.
bool is_gemm_family(KernelFamily f);
/// Router, permute, SwiGLU, combine, copy: priced as fixed + bytes / bandwidth.
bool is_memory_bound_family(KernelFamily f);
/// attention or attention_backward: priced from FLOPs and the attention shape terms.
bool is_attention_family(KernelFamily f);
/// The "form" string files carry for a family's model: "tile_waves", "fixed_plus_bytes_over_bandwidth"
/// or "fixed_plus_flops_over_rate".
const char* model_form(KernelFamily f);

/// How the measurements were taken (written by the sweep driver; the fitter does not read it).
struct SweepPlan {
  std::string name;                     ///< e.g. "full", "quick"
  std::vector<KernelFamily> families;   ///< families measured; each must have a fitted model
  std::vector<std::string> precisions;  ///< "bf16" and/or "fp8"
  int warmup = 0;                       ///< untimed launches per configuration
  int repetitions = 0;                  ///< timed launches per configuration (medians over these)
  double flush_bytes = 0;               ///< bytes rotated through between repetitions to flush L2
  int held_out_every = 0;               ///< every n-th configuration of a family is held out (0: none)
  std::string note;                     ///< free text
};

/// Output tiles of a dense GEMM: ⌈m / tile_m⌉ · ⌈n / tile_n⌉ (0 if any dimension is ≤ 0).
double gemm_tiles(double m, double n, double tile_m, double tile_n);
/// Output tiles of a grouped GEMM: Σ_g ⌈rows[g] / tile_m⌉ · ⌈n / tile_n⌉ over groups with rows > 0.
double grouped_gemm_tiles(std::span<const double> rows, double n, double tile_m, double tile_n);
/// Bytes of an input element at `precision` ("fp8": 1, otherwise 2).
double element_bytes(const std::string& precision);
/// HBM bytes of a dense GEMM: elem·(m·k + k·n) inputs + 2·m·n BF16 output (0 if any dimension is ≤ 0).
double gemm_bytes(double m, double n, double k, double elem);
/// The same with the weight operand B[k×n] stored at `weight_elem` bytes per element (packed low-bit
/// weights: 4-bit values and their block scales).
double gemm_bytes(double m, double n, double k, double elem, double weight_elem);
/// HBM bytes of a grouped GEMM: Σ over groups with rows > 0 of elem·(rows·k + k·n) + 2·rows·n (each active
/// group reads its own weights once).
double grouped_gemm_bytes(std::span<const double> rows, double n, double k, double elem);
double grouped_gemm_bytes(std::span<const double> rows, double n, double k, double elem, double weight_elem);

/// How a GEMM model picks the output tile of a shape.
enum class TilePolicy {
  kFixed,     ///< tile_m × tile_n for every shape
  kMinWaves,  ///< DeepGEMM's rule (deep_gemm/jit_kernels/gemm.py, get_best_configs, first release): 64 rows
              ///< when no group has more than 64 rows, else 128; of the widths 16, 24, ..., 128 the one with
              ///< the fewest waves on the SMs, then the fullest last wave, then the widest
};
/// "fixed" or "min_waves".
const char* to_string(TilePolicy p);

/// The tile a GEMM model runs a shape with, and how many output tiles that makes.
struct TileChoice {
  double tile_m = 0, tile_n = 0, tiles = 0;
};

/// Fitted GEMM model of one precision (NVIDIA "Matrix Multiplication Background" guide, tile and wave
/// quantisation):
///   time = waves · (tile_time(k) + wave_overhead_s) + bytes · s_per_byte + launch_s · launches,
///   waves = ⌈tiles / SMs⌉,   tile_time(k) = 2 · tile_m · tile_n · k / (peak_flops / sm_count) / efficiency.
/// The wave overhead is the per-k term: it makes the achieved efficiency grow with k. The byte term (HBM
/// bytes of operands and output, gemm_bytes) is the traffic not hidden behind the math: it prices the
/// skinny, bandwidth-bound shapes (0 when the fit was not asked for it).
struct GemmParams {
  double tile_m = 128;    ///< output tile rows
  double tile_n = 128;    ///< output tile columns
  int sm_count = 0;       ///< SMs of the measured device (per-SM peak = peak_flops / sm_count)
  double peak_flops = 0;  ///< reference dense peak of this precision, flop/s; efficiency is relative to it
  double efficiency = 0;  ///< fitted: achieved fraction of the per-SM peak inside a tile's k loop
  double wave_overhead_s = 0;  ///< fitted: fixed cost per wave (pipeline fill, epilogue), s
  double launch_s = 0;         ///< fitted: fixed cost per launch, s
  double s_per_byte = 0;       ///< fitted: seconds per HBM byte not hidden behind the math (0: no term)
  int fitted_on = 0;           ///< measurements the fit used
  /// Grouped GEMMs run as one launch per non-empty group (a per-expert loop): launch_s is paid per group.
  bool launch_per_group = false;
  /// Grouped GEMMs run every group at the largest group's rows (a strided batch over a padded
  /// [groups, capacity] buffer): the padding costs tiles and bytes, so skew costs what it costs.
  bool padded_groups = false;
  /// How the tile is picked per shape (kFixed: tile_m × tile_n).
  TilePolicy tile_policy = TilePolicy::kFixed;
  /// HBM bytes per second no GEMM beats: the calibration's copy bandwidth (set_copy_floors; not written to
  /// the file). A GEMM takes at least its operands' and output's bytes at that rate (0: no floor).
  double floor_bytes_per_s = 0;

  /// One tile_m × tile_n × k tile on one SM, excluding the wave overhead. Seconds.
  double tile_time(double k) const;
  /// One tm × tn × k tile on one SM, excluding the wave overhead. Seconds.
  double tile_time(double k, double tm, double tn) const;
  /// The tile and the output tiles of a GEMM of `rows` (one entry per group; a dense GEMM has one) by n
  /// on `sms` SMs, under tile_policy (padded_groups counts every group at the largest group's rows).
  TileChoice choose_tiles(std::span<const double> rows, double n, int sms) const;
  /// The model's time for a GEMM of `rows` × n × k (one entry of rows per group) moving `bytes` through
  /// HBM in `launches` launches on `sms` SMs, with the tile choose_tiles picks. Seconds.
  double time_for(std::span<const double> rows, double n, double k, int sms, double bytes,
                  double launches = 1) const;
  /// The model's time for `tiles` output tiles of depth k moving `bytes` through HBM on `sms` SMs in
  /// `launches` launches (0 if tiles ≤ 0 or k ≤ 0). Seconds.
  double time(double tiles, double k, int sms, double bytes = 0, double launches = 1) const;
  /// The same for the tile and tiles of `t` (tile_time(k, t.tile_m, t.tile_n) per tile).
  double time(const TileChoice& t, double k, int sms, double bytes = 0, double launches = 1) const;
  /// Launches of a grouped GEMM over `rows`: the non-empty groups with launch_per_group, else 1.
  double launches(std::span<const double> rows) const;
  /// Output tiles of a grouped GEMM over `rows` (grouped_gemm_tiles, or every group at the largest
  /// group's rows with padded_groups).
  double grouped_tiles(std::span<const double> rows, double n) const;
  /// HBM bytes of a grouped GEMM over `rows` with `elem`-byte inputs (grouped_gemm_bytes, or padded).
  double grouped_bytes(std::span<const double> rows, double n, double k, double elem) const;
  /// The same with weights of `weight_elem` bytes per element.
  double grouped_bytes(std::span<const double> rows, double n, double k, double elem,
                       double weight_elem) const;
};

/// Fitted model of a streaming family (amount = bytes read + written, rate = bytes/s) or of attention
/// (amount = FLOPs, rate = flop/s): time = fixed_s + amount / rate. Attention adds two shape terms
/// (FlashAttention-3, Shah et al. 2024, §3: the softmax's exponentials run on the multi-function units,
/// not the tensor cores, so their cost grows with the score elements, not with the head dim; and every
/// query tile pays a prologue and epilogue, loading Q and writing O):
///   time = fixed_s + FLOPs / rate + scores · s_per_score + query_rows · s_per_query_row,
/// scores = query tokens · kv tokens · heads (halved under a causal mask), query_rows = query tokens · heads.
struct StreamParams {
  double fixed_s = 0;          ///< fitted: fixed cost per launch, s
  double rate = 0;             ///< fitted: bytes/s or flop/s
  int fitted_on = 0;           ///< measurements the fit used
  double s_per_score = 0;      ///< attention only, fitted: seconds per score element
  double s_per_query_row = 0;  ///< attention only, fitted: seconds per query row (token · head)

  /// Seconds for `amount` bytes or FLOPs (0 if amount ≤ 0).
  double time(double amount) const;
  /// Attention: seconds for `flops` with `scores` score elements over `query_rows` query rows (0 if
  /// flops ≤ 0).
  double attention_time(double flops, double scores, double query_rows) const;
};

/// Attention measurements record their shape as m = query rows (query tokens · heads), k = the qk plus v
/// head dims, flops = 2 · scores · k (a backward measurement: 2.5 times that). These give the shape terms
/// of StreamParams::attention_time.
double attention_scores(const Measurement& m);

/// The fitted model of one kernel family.
struct FamilyModel {
  KernelFamily family = KernelFamily::kDenseGemm;
  std::string variant;                     ///< the measurements' variant this was fitted to
  std::map<std::string, GemmParams> gemm;  ///< GEMM families: one fit per precision ("bf16", "fp8")
  StreamParams stream;                     ///< the other families

  /// Whether this model prices `m`: same family and variant, and for GEMMs a fit of its precision.
  bool covers(const Measurement& m) const;
  /// The model's time for the configuration `m` (must be covered). Seconds.
  double predict(const Measurement& m) const;
};

/// Gives every GEMM fit of `models` the copy family's bandwidth as its floor (GemmParams::floor_bytes_per_s;
/// none without a copy model): reading a calibration, fitting, completing or scaling one sets them.
void set_copy_floors(std::map<KernelFamily, FamilyModel>& models);

/// Relative errors |predicted − measured| / measured over a set of measurements.
struct ErrorStats {
  int count = 0;      ///< measurements (the values below are 0 when count is 0)
  double median = 0;  ///< 50th percentile
  double p95 = 0;     ///< 95th percentile (linear interpolation between order statistics)
  double max = 0;
};

/// A whole layer (or any set of kernels run back to back): sum of predictions against measured.
struct LayerCheck {
  std::string name;                     ///< e.g. "qwen3-30b-a3b MoE layer forward, 16384 tokens"
  std::vector<std::size_t> components;  ///< indices into Calibration::measurements
  double measured_s = 0;                ///< the measured time of the whole (by default Σ component medians)
  double predicted_s = 0;               ///< Σ predictions of the components
  double rel_error = 0;                 ///< |predicted_s − measured_s| / measured_s
};

/// Validation of the fitted models on measurements the fit did not see.
struct HeldOut {
  std::map<KernelFamily, ErrorStats> families;  ///< one entry per fitted family
  std::vector<LayerCheck> layers;
};

/// Where a calibration came from.
struct Provenance {
  std::string command;  ///< the command line that produced the file
  std::string git_sha;  ///< moesim's commit
  std::string date;     ///< ISO 8601, when the file was written
};

/// One calibration file in memory.
struct Calibration {
  int version = kCalibrationVersion;
  DeviceInfo device;
  SweepPlan sweep;
  std::vector<Measurement> measurements;
  std::map<KernelFamily, FamilyModel> models;
  HeldOut held_out;
  Provenance provenance;
  std::string source;  ///< the file it was read from (empty if built in memory; never written)

  /// The model of family `f`, or nullptr if the calibration has none.
  const FamilyModel* model(KernelFamily f) const;
};

/// The measurements that make up one layer, for the whole-layer check.
struct LayerSpec {
  std::string name;
  std::vector<std::size_t> components;  ///< indices into the measurements
  double measured_s = 0;  ///< the layer's measured time, s; 0: the sum of the components' medians
};

inline constexpr const char* kProfileFormat = "moesim-kernel-profile";
inline constexpr int kProfileVersion = 1;

/// A profiling run before any fit (`moesim calibrate --measurements FILE` writes it, `--refit FILE`
/// fits it): the device, the sweep, every measurement of every variant, and the whole layers timed.
struct Profile {
  DeviceInfo device;
  SweepPlan sweep;
  std::vector<Measurement> measurements;
  std::vector<LayerSpec> layers;
};

/// The profile file's exact text (deterministic, one measurement per line).
std::string profile_to_text(const Profile& p);
/// Reads and checks a profile file; CalibrationError ("FILE: POINTER: expected ..., found ...") for a
/// wrong format or version, an unknown key, a wrong type, an impossible value, a measurement of a family
/// the sweep does not list, or a layer component index out of range.
Profile parse_profile(const std::string& text, const std::string& source);
Profile read_profile(const std::string& path);

/// Reads and checks a calibration file. Throws CalibrationError ("FILE: POINTER: expected ..., found
/// ...") for a missing or unreadable file, malformed JSON, a wrong format or version, an unknown key, a
/// wrong type, an impossible value (negative time, zero bytes, ...) or an inconsistency (a swept or
/// measured family without a model, held-out counts that do not match the measurements).
Calibration read_calibration(const std::string& path);
/// Same checks on JSON text; `source` names it in errors.
Calibration parse_calibration(const std::string& text, const std::string& source);

/// The file's exact text: deterministic (same calibration, same bytes), one measurement per line.
std::string to_text(const Calibration& c);
/// Checks `c` as the reader would (errors name `path`), then writes it to `path`. Refuses to replace
/// an existing file unless `overwrite` (IoError); CalibrationError if `c` would not read back.
void write_calibration(const Calibration& c, const std::string& path, bool overwrite = false);

}  // namespace moesim::calibrate
