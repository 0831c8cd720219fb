// Calibration: fitting (calibrate/fit.hpp), the file format (calibrate/calibration.hpp) and the
// calibrated compute cost model (models/calibrated_cost.hpp). The formulas checked:
//   GEMM:      t = ⌈tiles / SMs⌉ · (2·128·128·k / (peak / SMs) / eff + wave_overhead) + launch,
//              tiles = ⌈m/128⌉·⌈n/128⌉ (dense) or Σ_g ⌈rows_g/128⌉·⌈n/128⌉ (grouped);
//   streaming: t = fixed + bytes / bandwidth;   attention: t = fixed + FLOPs / rate;
//   held out:  e = |predicted − measured| / measured, median and p95 by linear interpolation.
// Synthetic measurements come from known parameters with seeded multiplicative noise.

#include "calibrate/calibration.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <sstream>
#include <vector>

#include "calibrate/fit.hpp"
#include "models/analytic.hpp"
#include "models/calibrated_cost.hpp"
#include "scenarios/error.hpp"
#include "scenarios/json_reader.hpp"
#include "scenarios/loader.hpp"
#include "traces/load.hpp"

namespace moesim::calibrate {
namespace {

constexpr int kSms = 132;
constexpr double kPeak = 989e12;

// The "true" models the synthetic measurements come from.
GemmParams true_dense() {
  GemmParams p;
  p.sm_count = kSms;
  p.peak_flops = kPeak;
  p.efficiency = 0.75;
  p.wave_overhead_s = 2e-6;
  p.launch_s = 5e-6;
  return p;
}
GemmParams true_grouped() {
  GemmParams p = true_dense();
  p.efficiency = 0.62;
  p.wave_overhead_s = 3e-6;
  p.launch_s = 8e-6;
  return p;
}
StreamParams true_copy() {
  return {3e-6, 2.9e12, 0};
}
StreamParams true_attention() {
  return {1e-5, 4.5e14, 0};
}

// Multiplicative noise, uniform in [1 − amp, 1 + amp].
struct Noise {
  traces::SplitMix64 rng{42};
  double amp = 0;
  double operator()() { return 1 + amp * (2 * double(rng.next() >> 11) * 0x1.0p-53 - 1); }
};

Measurement make(KernelFamily f, double median) {
  Measurement m;
  m.family = f;
  m.variant = "ours";
  m.median_s = median;
  m.p10_s = median * 0.99;
  m.p90_s = median * 1.01;
  m.repetitions = 20;
  m.kernel_names = {"k"};
  return m;
}

std::vector<Measurement> synthetic(double noise_amp) {
  Noise noise;
  noise.amp = noise_amp;
  std::vector<Measurement> ms;
  const GemmParams d = true_dense(), g = true_grouped();
  for (double m : {128.0, 512.0, 2048.0, 8192.0})
    for (double n : {1024.0, 4096.0, 14336.0})
      for (double k : {1024.0, 4096.0, 7168.0}) {
        Measurement x = make(KernelFamily::kDenseGemm, d.time(gemm_tiles(m, n, 128, 128), k, kSms) * noise());
        x.m = m, x.n = n, x.k = k, x.flops = 2 * m * n * k;
        ms.push_back(x);
      }
  // Grouped: E experts, T routed rows, shares ∝ (e+1)^−s (s = 0 balanced, s = 1 skewed).
  for (int experts : {8, 64, 128})
    for (double tokens : {2048.0, 16384.0, 131072.0})
      for (double s : {0.0, 1.0})
        for (auto [n, k] : {std::pair{1536.0, 2048.0}, std::pair{4096.0, 7168.0}}) {
          std::vector<double> w(experts);
          double sum = 0;
          for (int e = 0; e < experts; ++e) sum += w[e] = std::pow(e + 1.0, -s);
          Measurement x = make(KernelFamily::kGroupedGemm, 0);
          for (double we : w) x.rows.push_back(std::round(tokens * we / sum));
          x.n = n, x.k = k;
          x.median_s = g.time(grouped_gemm_tiles(x.rows, n, 128, 128), k, kSms) * noise();
          x.p10_s = x.p90_s = 0;
          ms.push_back(x);
        }
  for (int i = 0; i < 20; ++i) {
    const double bytes = 1e5 * std::pow(10.0, i * 4.0 / 19);
    Measurement x = make(KernelFamily::kCopy, true_copy().time(bytes) * noise());
    x.bytes = bytes;
    x.p10_s = x.p90_s = 0;
    ms.push_back(x);
  }
  for (int i = 0; i < 12; ++i) {
    const double flops = 1e9 * std::pow(10.0, i * 4.0 / 11);
    Measurement x = make(KernelFamily::kAttention, true_attention().time(flops) * noise());
    x.flops = flops;
    x.p10_s = x.p90_s = 0;
    ms.push_back(x);
  }
  return ms;
}

FitOptions options() {
  FitOptions o;
  o.peak_flops["bf16"] = kPeak;
  return o;
}

DeviceInfo device() {
  DeviceInfo d;
  d.name = "NVIDIA H100 80GB HBM3";
  d.sm_count = kSms;
  d.sm_clock_mhz = 1980;
  d.memory_clock_mhz = 2619;
  d.memory_bytes = 85899345920.0;
  d.driver_version = "580.159.04";
  d.cuda_version = "13.0";
  d.cublas_version = "13.0.0";
  d.date = "2025-01-01T00:00:00Z";
  d.host = "test";
  return d;
}

// ------------------------------------------------------------------------------------------- fitting

// DeepGEMM's tile rule (TilePolicy::kMinWaves), worked by hand on 132 SMs:
//  - m 4096, n 7168: 128-row tiles (m > 64); width 128 gives 32 x 56 = 1792 tiles, 14 waves; width 120
//    gives 32 x 60 = 1920, 15 waves; every narrower width more: 128 x 128.
//  - m 4096, n 2112: widths 128, 120, 112 all give 5 waves (544, 576, 608 tiles; last waves of 16, 48 and
//    80 tiles), 104 gives 672 tiles, 6 waves: the fullest last wave is width 112.
//  - m 64, n 2112: 64-row tiles; width 16 gives 132 tiles, one full wave; 24 gives 88 (one wave of 88): 16.
//  - grouped, 4 groups of 8192 rows, n 4096: 4 x 64 x 32 = 8192 tiles at width 128, 63 waves (last 8);
//    width 120 gives 4 x 64 x 35 = 8960, 68 waves: 128 x 128.
// The fixed policy keeps tile_m x tile_n whatever the shape.
TEST(Fit, MinWavesTileRuleByHand) {
  GemmParams p;
  p.tile_policy = TilePolicy::kMinWaves;
  const auto pick = [&](std::vector<double> rows, double n) { return p.choose_tiles(rows, n, 132); };
  TileChoice t = pick({4096}, 7168);
  EXPECT_EQ(t.tile_m, 128);
  EXPECT_EQ(t.tile_n, 128);
  EXPECT_EQ(t.tiles, 1792);
  t = pick({4096}, 2112);
  EXPECT_EQ(t.tile_n, 112);
  EXPECT_EQ(t.tiles, 608);
  t = pick({64}, 2112);
  EXPECT_EQ(t.tile_m, 64);
  EXPECT_EQ(t.tile_n, 16);
  EXPECT_EQ(t.tiles, 132);
  t = pick({8192, 8192, 8192, 8192}, 4096);
  EXPECT_EQ(t.tile_n, 128);
  EXPECT_EQ(t.tiles, 8192);
  // time_for: the chosen tile's waves, its tile time, the bytes and the launch.
  p.peak_flops = 1979e12;
  p.sm_count = 132;
  p.efficiency = 0.75;
  p.wave_overhead_s = 1e-6;
  p.s_per_byte = 1e-13;
  p.launch_s = 2e-6;
  const double rows[1] = {4096};
  const double want = 14 * (2.0 * 128 * 128 * 16384 / (1979e12 / 132) / 0.75 + 1e-6) + 5e8 * 1e-13 + 2e-6;
  EXPECT_NEAR(p.time_for(rows, 7168, 16384, 132, 5e8), want, 1e-15);
  GemmParams f;
  f.tile_m = 64;
  f.tile_n = 128;
  t = f.choose_tiles(std::vector<double>{4096}, 7168, 132);
  EXPECT_EQ(t.tile_m, 64);
  EXPECT_EQ(t.tile_n, 128);
  EXPECT_EQ(t.tiles, 64 * 56);
}

TEST(Fit, RecoversExactParametersWithoutNoise) {
  const auto models = fit_models(synthetic(0), kSms, options());
  ASSERT_EQ(models.size(), 4u);
  for (auto [f, want] : {std::pair{KernelFamily::kDenseGemm, true_dense()},
                         std::pair{KernelFamily::kGroupedGemm, true_grouped()}}) {
    const GemmParams& got = models.at(f).gemm.at("bf16");
    EXPECT_NEAR(got.efficiency, want.efficiency, 1e-9 * want.efficiency) << to_string(f);
    EXPECT_NEAR(got.wave_overhead_s, want.wave_overhead_s, 1e-9 * want.wave_overhead_s) << to_string(f);
    EXPECT_NEAR(got.launch_s, want.launch_s, 1e-9 * want.launch_s) << to_string(f);
    EXPECT_EQ(got.sm_count, kSms);
    EXPECT_EQ(got.peak_flops, kPeak);
  }
  const StreamParams& copy = models.at(KernelFamily::kCopy).stream;
  EXPECT_NEAR(copy.rate, true_copy().rate, 1e-9 * true_copy().rate);
  EXPECT_NEAR(copy.fixed_s, true_copy().fixed_s, 1e-9 * true_copy().fixed_s);
  EXPECT_EQ(copy.fitted_on, 20);
  const StreamParams& att = models.at(KernelFamily::kAttention).stream;
  EXPECT_NEAR(att.rate, true_attention().rate, 1e-9 * true_attention().rate);
  EXPECT_NEAR(att.fixed_s, true_attention().fixed_s, 1e-9 * true_attention().fixed_s);
}

TEST(Fit, RecoversParametersWithinToleranceUnderNoise) {
  // ±2% uniform noise; every fifth configuration held out.
  std::vector<Measurement> ms = synthetic(0.02);
  mark_held_out(ms, 5);
  const auto models = fit_models(ms, kSms, options());
  const GemmParams& dense = models.at(KernelFamily::kDenseGemm).gemm.at("bf16");
  EXPECT_NEAR(dense.efficiency, 0.75, 0.75 * 0.01);
  EXPECT_NEAR(dense.wave_overhead_s, 2e-6, 0.5e-6);
  EXPECT_NEAR(dense.launch_s, 5e-6, 1e-6);
  EXPECT_EQ(dense.fitted_on, 36 - 7);  // 36 shapes, 7 held out
  const GemmParams& grouped = models.at(KernelFamily::kGroupedGemm).gemm.at("bf16");
  EXPECT_NEAR(grouped.efficiency, 0.62, 0.62 * 0.01);
  EXPECT_NEAR(grouped.wave_overhead_s, 3e-6, 1e-6);
  EXPECT_NEAR(grouped.launch_s, 8e-6, 2e-6);
  const StreamParams& copy = models.at(KernelFamily::kCopy).stream;
  EXPECT_NEAR(copy.rate, 2.9e12, 2.9e12 * 0.02);
  EXPECT_NEAR(copy.fixed_s, 3e-6, 0.2e-6);
  const StreamParams& att = models.at(KernelFamily::kAttention).stream;
  EXPECT_NEAR(att.rate, 4.5e14, 4.5e14 * 0.02);
  EXPECT_NEAR(att.fixed_s, 1e-5, 1e-6);

  // Held-out predictions of a model this close are within the noise: relative errors below ~2% + 2%.
  const HeldOut h = validate(models, ms, {});
  for (const auto& [f, s] : h.families) {
    EXPECT_GT(s.count, 0) << to_string(f);
    EXPECT_LT(s.median, 0.025) << to_string(f);
    EXPECT_LT(s.p95, 0.045) << to_string(f);
    EXPECT_LE(s.median, s.p95);
    EXPECT_LE(s.p95, s.max);
  }
}

TEST(Fit, NegativeInterceptIsClampedToZero) {
  // Data with a negative intercept (t = bytes / 1e12 − 1 µs): the constrained fit sets fixed = 0.
  std::vector<Measurement> ms;
  for (double b : {1e7, 2e7, 4e7}) {
    ms.push_back(make(KernelFamily::kCopy, b / 1e12 - 1e-6));
    ms.back().bytes = b;
    ms.back().p10_s = ms.back().p90_s = 0;
  }
  const FamilyModel m = fit_family(KernelFamily::kCopy, ms, kSms, options());
  EXPECT_EQ(m.stream.fixed_s, 0.0);
  EXPECT_GT(m.stream.rate, 1e12);
}

TEST(Fit, PercentileByLinearInterpolation) {
  // Sorted {1, 2, 3, 4}: median at h = 1.5 → 2.5; p95 at h = 2.85 → 3 + 0.85·1 = 3.85.
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 0.95), 3.85);
  EXPECT_DOUBLE_EQ(percentile({7}, 0.95), 7);
  EXPECT_DOUBLE_EQ(percentile({}, 0.5), 0);
  EXPECT_DOUBLE_EQ(percentile({1, 2}, 1.0), 2);
}

// A copy model fitted exactly (fixed 2 µs, 1 TB/s) and five held-out points measured at
// predicted / (1 + e), so that each relative error is exactly e.
struct TinyCase {
  std::vector<Measurement> ms;
  std::vector<double> predicted;
};
TinyCase tiny_case() {
  TinyCase t;
  for (double b : {1e6, 1e7, 1e8}) {
    t.ms.push_back(make(KernelFamily::kCopy, 2e-6 + b / 1e12));
    t.ms.back().bytes = b;
  }
  const double bytes[] = {1e6, 2e6, 4e6, 8e6, 1.6e7};
  const double err[] = {0.3, 0.1, 0.5, 0.2, 0.4};
  for (int i = 0; i < 5; ++i) {
    const double p = 2e-6 + bytes[i] / 1e12;  // 3, 4, 6, 10, 18 µs
    t.ms.push_back(make(KernelFamily::kCopy, p / (1 + err[i])));
    t.ms.back().bytes = bytes[i];
    t.ms.back().held_out = true;
    t.ms.back().p10_s = t.ms.back().p90_s = 0;
    t.predicted.push_back(p);
  }
  // Another variant, held out, far off: not the fitted variant, so not counted.
  t.ms.push_back(make(KernelFamily::kCopy, 1.0));
  t.ms.back().variant = "torch";
  t.ms.back().bytes = 1e6;
  t.ms.back().held_out = true;
  return t;
}

TEST(Fit, HeldOutStatisticsByHand) {
  TinyCase t = tiny_case();
  FitOptions o = options();
  EXPECT_THROW(fit_models(t.ms, kSms, o), CalibrationError);  // two variants, none chosen
  o.variants[KernelFamily::kCopy] = "ours";
  const auto models = fit_models(t.ms, kSms, o);
  EXPECT_NEAR(models.at(KernelFamily::kCopy).stream.fixed_s, 2e-6, 1e-15);
  EXPECT_NEAR(models.at(KernelFamily::kCopy).stream.rate, 1e12, 1e12 * 1e-9);
  EXPECT_EQ(models.at(KernelFamily::kCopy).stream.fitted_on, 3);

  // Errors {0.3, 0.1, 0.5, 0.2, 0.4} → sorted {0.1 … 0.5}: median 0.3; p95 at h = 3.8 → 0.4 + 0.8·0.1.
  const HeldOut h =
      validate(models, t.ms, {{"default measured", {3, 5}, 0}, {"given measured", {3, 5}, 1e-5}});
  const ErrorStats& s = h.families.at(KernelFamily::kCopy);
  EXPECT_EQ(s.count, 5);
  EXPECT_NEAR(s.median, 0.3, 1e-9);
  EXPECT_NEAR(s.p95, 0.48, 1e-9);
  EXPECT_NEAR(s.max, 0.5, 1e-9);

  // Layer of measurements 3 (1 MB, e = 0.3) and 5 (4 MB, e = 0.5): predicted 3 + 6 = 9 µs; measured
  // 3/1.3 + 6/1.5 µs; then with the measured time given as 10 µs: |9 − 10| / 10 = 0.1.
  ASSERT_EQ(h.layers.size(), 2u);
  const double measured = 3e-6 / 1.3 + 6e-6 / 1.5;
  EXPECT_NEAR(h.layers[0].predicted_s, 9e-6, 1e-15);
  EXPECT_NEAR(h.layers[0].measured_s, measured, 1e-15);
  EXPECT_NEAR(h.layers[0].rel_error, (9e-6 - measured) / measured, 1e-9);
  EXPECT_NEAR(h.layers[1].rel_error, 0.1, 1e-9);
  // A component no model covers (the torch variant) is an error.
  EXPECT_THROW(validate(models, t.ms, {{"bad", {8}, 0}}), CalibrationError);
  EXPECT_THROW(validate(models, t.ms, {{"bad", {99}, 0}}), CalibrationError);
}

TEST(Fit, ErrorsOnTooFewPointsAndMissingPeak) {
  std::vector<Measurement> ms = synthetic(0);
  ms.resize(2);  // two dense GEMMs: three unknowns
  EXPECT_THROW(fit_models(ms, kSms, options()), CalibrationError);
  ms = synthetic(0);
  for (auto& m : ms) m.precision = "fp8";
  EXPECT_THROW(fit_models(ms, kSms, options()), CalibrationError);  // no fp8 peak
  try {
    fit_models(ms, kSms, options());
  } catch (const CalibrationError& e) {
    EXPECT_NE(std::string(e.what()).find("fp8"), std::string::npos) << e.what();
  }
}

TEST(Fit, CalibrateChecksTheSweepPlan) {
  SweepPlan sweep;
  sweep.families = {KernelFamily::kDenseGemm, KernelFamily::kGroupedGemm,
                    KernelFamily::kCopy};  // no attention
  EXPECT_THROW(calibrate(device(), sweep, synthetic(0), {}, options(), {}), CalibrationError);
  sweep.families.push_back(KernelFamily::kAttention);
  sweep.families.push_back(KernelFamily::kRouter);  // swept, never measured
  EXPECT_THROW(calibrate(device(), sweep, synthetic(0), {}, options(), {}), CalibrationError);
  sweep.families.pop_back();
  EXPECT_EQ(calibrate(device(), sweep, synthetic(0), {}, options(), {}).models.size(), 4u);
}

TEST(Fit, MarkHeldOutEveryNthPerFamily) {
  std::vector<Measurement> ms = synthetic(0);
  mark_held_out(ms, 4);
  int dense = 0, held = 0;
  for (const auto& m : ms)
    if (m.family == KernelFamily::kDenseGemm) held += m.held_out, ++dense;
  EXPECT_EQ(dense, 36);
  EXPECT_EQ(held, 9);
  EXPECT_FALSE(ms[2].held_out);
  EXPECT_TRUE(ms[3].held_out);
  mark_held_out(ms, 0);
  for (const auto& m : ms) EXPECT_FALSE(m.held_out);
}

// ------------------------------------------------------------------------------------------- format

std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / "moesim_calibration_test";
  std::filesystem::create_directories(dir);
  const auto p = dir / name;
  std::filesystem::remove(p);
  return p.string();
}

Calibration full_calibration() {
  std::vector<Measurement> ms = synthetic(0.02);
  mark_held_out(ms, 5);
  SweepPlan sweep;
  sweep.name = "test";
  sweep.precisions = {"bf16"};
  sweep.warmup = 5;
  sweep.repetitions = 20;
  sweep.flush_bytes = 256e6;
  sweep.held_out_every = 5;
  return calibrate(device(), sweep, ms, {{"layer", {0, 36, 72}, 0}}, options(),
                   {"moesim calibrate --out h100.json", "0123456789ab", "2025-01-01T00:00:00Z"});
}

void expect_same(const Measurement& a, const Measurement& b) {
  EXPECT_EQ(a.family, b.family);
  EXPECT_EQ(a.variant, b.variant);
  EXPECT_EQ(a.precision, b.precision);
  EXPECT_EQ(a.m, b.m);
  EXPECT_EQ(a.n, b.n);
  EXPECT_EQ(a.k, b.k);
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.bytes, b.bytes);
  EXPECT_EQ(a.flops, b.flops);
  EXPECT_EQ(a.median_s, b.median_s);
  EXPECT_EQ(a.p10_s, b.p10_s);
  EXPECT_EQ(a.p90_s, b.p90_s);
  EXPECT_EQ(a.repetitions, b.repetitions);
  EXPECT_EQ(a.kernel_names, b.kernel_names);
  EXPECT_EQ(a.launch, b.launch);
  EXPECT_EQ(a.held_out, b.held_out);
}

TEST(Format, WriteReadRoundTripIsIdentical) {
  const Calibration c = full_calibration();
  const std::string path = temp_path("roundtrip.json");
  write_calibration(c, path);
  const Calibration r = read_calibration(path);
  EXPECT_EQ(r.source, path);
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  EXPECT_EQ(bytes.str(), to_text(c));
  EXPECT_EQ(to_text(r), to_text(c));

  ASSERT_EQ(r.measurements.size(), c.measurements.size());
  for (std::size_t i = 0; i < c.measurements.size(); ++i) expect_same(r.measurements[i], c.measurements[i]);
  EXPECT_EQ(r.device.name, c.device.name);
  EXPECT_EQ(r.device.memory_bytes, c.device.memory_bytes);
  EXPECT_EQ(r.sweep.families, c.sweep.families);
  EXPECT_EQ(r.sweep.flush_bytes, c.sweep.flush_bytes);
  ASSERT_EQ(r.models.size(), 4u);
  for (const auto& [f, m] : c.models) {
    const FamilyModel& g = r.models.at(f);
    EXPECT_EQ(g.variant, m.variant);
    EXPECT_EQ(g.stream.rate, m.stream.rate);
    EXPECT_EQ(g.stream.fixed_s, m.stream.fixed_s);
    for (const auto& [prec, p] : m.gemm) {
      EXPECT_EQ(g.gemm.at(prec).efficiency, p.efficiency);
      EXPECT_EQ(g.gemm.at(prec).wave_overhead_s, p.wave_overhead_s);
      EXPECT_EQ(g.gemm.at(prec).launch_s, p.launch_s);
    }
    EXPECT_EQ(r.held_out.families.at(f).p95, c.held_out.families.at(f).p95);
  }
  ASSERT_EQ(r.held_out.layers.size(), 1u);
  EXPECT_EQ(r.held_out.layers[0].rel_error, c.held_out.layers[0].rel_error);
  EXPECT_EQ(r.provenance.git_sha, "0123456789ab");
}

TEST(Format, WriterRefusesToOverwriteUnlessAsked) {
  const Calibration c = full_calibration();
  const std::string path = temp_path("overwrite.json");
  write_calibration(c, path);
  EXPECT_THROW(write_calibration(c, path), IoError);
  EXPECT_NO_THROW(write_calibration(c, path, /*overwrite=*/true));
  // A calibration the reader would reject is never written.
  Calibration bad = c;
  bad.measurements[0].median_s = -1;
  const std::string bad_path = temp_path("invalid.json");
  EXPECT_THROW(write_calibration(bad, bad_path), CalibrationError);
  EXPECT_FALSE(std::filesystem::exists(bad_path));
}

// Writes the valid calibration with `edit` applied and expects a CalibrationError naming the file, the
// pointer and `expected` (a fragment of the message).
void expect_rejected(const std::string& name, const std::function<void(Json&)>& edit,
                     const std::string& pointer, const std::string& expected) {
  static const std::string valid = to_text(full_calibration());
  Json j = Json::parse(valid);
  edit(j);
  const std::string path = temp_path(name + ".json");
  std::ofstream(path) << j.dump(2);
  try {
    read_calibration(path);
    ADD_FAILURE() << name << ": no error";
  } catch (const CalibrationError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path + ": " + pointer + ": expected"), std::string::npos) << name << ": " << what;
    EXPECT_NE(what.find(expected), std::string::npos) << name << ": " << what;
  }
}

TEST(Format, MalformedInputsAreCalibrationErrors) {
  expect_rejected(
      "version", [](Json& j) { j["version"] = 2; }, "/version", "found the number 2");
  expect_rejected(
      "format", [](Json& j) { j["format"] = "moesim-routing-trace"; }, "/format", "\"moesim-calibration\"");
  expect_rejected(
      "unknown_top", [](Json& j) { j["extra"] = 1; }, "/extra", "unknown key \"extra\"");
  expect_rejected(
      "unknown_measurement_key", [](Json& j) { j["measurements"][0]["colour"] = "red"; },
      "/measurements/0/colour", "unknown key");
  expect_rejected(
      "negative_time", [](Json& j) { j["measurements"][1]["median_s"] = -1e-6; }, "/measurements/1/median_s",
      "positive median time");
  expect_rejected(
      "missing_family", [](Json& j) { j["models"].erase("copy"); }, "/models",
      "a model for every swept family, including \"copy\"");
  expect_rejected(
      "family_not_swept", [](Json& j) { j["sweep"]["families"].erase(3); }, "/measurements/92/family",
      "a family listed in /sweep/families");
  expect_rejected(
      "sm_count_string", [](Json& j) { j["device"]["sm_count"] = "132"; }, "/device/sm_count",
      "expected an integer, found the string \"132\"");
  expect_rejected(
      "rows_string", [](Json& j) { j["measurements"][36]["rows"] = "many"; }, "/measurements/36/rows",
      "found the string \"many\"");
  expect_rejected(
      "efficiency_string",
      [](Json& j) { j["models"]["dense_gemm"]["precisions"]["bf16"]["efficiency"] = "high"; },
      "/models/dense_gemm/precisions/bf16/efficiency", "a number");
  expect_rejected(
      "unknown_family", [](Json& j) { j["models"]["flash"] = Json::object(); }, "/models/flash",
      "unknown key \"flash\"");
  expect_rejected(
      "wrong_form", [](Json& j) { j["models"]["copy"]["form"] = "tile_waves"; }, "/models/copy/form",
      "fixed_plus_bytes_over_bandwidth");
  expect_rejected(
      "missing_section", [](Json& j) { j.erase("provenance"); }, "/provenance", "required");
  expect_rejected(
      "zero_bytes", [](Json& j) { j["measurements"][72]["bytes"] = 0; }, "/measurements/72/bytes",
      "positive bytes");
  expect_rejected(
      "precision", [](Json& j) { j["measurements"][0]["precision"] = "fp16"; }, "/measurements/0/precision",
      "one of bf16, fp8");
  expect_rejected(
      "held_out_count", [](Json& j) { j["held_out"]["families"]["copy"]["count"] = 7; },
      "/held_out/families/copy/count", "found 7");
  expect_rejected(
      "held_out_missing", [](Json& j) { j["held_out"]["families"].erase("attention"); }, "/held_out/families",
      "\"attention\"");
  expect_rejected(
      "layer_index", [](Json& j) { j["held_out"]["layers"][0]["components"][0] = 100000; },
      "/held_out/layers/0/components/0", "an index into /measurements");
  expect_rejected(
      "layer_rel_error", [](Json& j) { j["held_out"]["layers"][0]["rel_error"] = 0.5; },
      "/held_out/layers/0/rel_error", "|predicted_s − measured_s| / measured_s");
  expect_rejected(
      "sm_mismatch", [](Json& j) { j["models"]["grouped_gemm"]["precisions"]["bf16"]["sm_count"] = 114; },
      "/models/grouped_gemm/precisions/bf16/sm_count", "the device's SM count 132");
}

TEST(Format, MissingFileAndBadJsonAreCalibrationErrors) {
  const std::string missing = temp_path("does_not_exist.json");
  try {
    read_calibration(missing);
    ADD_FAILURE() << "no error";
  } catch (const CalibrationError& e) {
    EXPECT_NE(std::string(e.what()).find(missing + ": /: expected a readable calibration file"),
              std::string::npos)
        << e.what();
  }
  const std::string bad = temp_path("syntax.json");
  std::ofstream(bad) << "{\n  \"format\": \"moesim-calibration\",\n  \"version\": 1,,\n}";
  try {
    read_calibration(bad);
    ADD_FAILURE() << "no error";
  } catch (const CalibrationError& e) {
    EXPECT_NE(std::string(e.what()).find(bad + ":3:"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace moesim::calibrate

// ------------------------------------------------------------------------------------- cost model

namespace moesim::models {
namespace {

using calibrate::Calibration;
using calibrate::GemmParams;
using calibrate::KernelFamily;
using calibrate::StreamParams;

// The roofline test GPU of compute_cost_test.cpp: 100 SMs, 1 PFLOP/s BF16 at 50%.
GpuSpec gpu() {
  GpuSpec g;
  g.name = "testgpu";
  g.sm_count = 100;
  g.flops_bf16 = 1e15;
  g.gemm_efficiency_bf16 = 0.5;
  g.flops_fp8 = 2e15;
  g.gemm_efficiency_fp8 = 0.5;
  g.attention_efficiency = 0.6;
  g.attention_backward_efficiency = 0.45;
  g.memory_bandwidth = 1e14;
  g.memory_efficiency = 1.0;
  g.kernel_launch = 4e-6;
  return g;
}

calibrate::FamilyModel gemm_model(KernelFamily f, double eff, double overhead, double launch) {
  calibrate::FamilyModel m;
  m.family = f;
  m.variant = "ours";
  GemmParams p;
  p.sm_count = 100;
  p.peak_flops = 1e15;
  p.efficiency = eff;
  p.wave_overhead_s = overhead;
  p.launch_s = launch;
  p.fitted_on = 10;
  m.gemm["bf16"] = p;
  return m;
}

calibrate::FamilyModel stream_model(KernelFamily f, double fixed, double rate) {
  calibrate::FamilyModel m;
  m.family = f;
  m.variant = "ours";
  m.stream = StreamParams{fixed, rate, 10};
  return m;
}

Calibration hand_calibration() {
  Calibration c;
  c.device.name = "testdevice";
  c.device.sm_count = 100;
  c.models[KernelFamily::kDenseGemm] = gemm_model(KernelFamily::kDenseGemm, 0.5, 1e-6, 5e-6);
  c.models[KernelFamily::kGroupedGemm] = gemm_model(KernelFamily::kGroupedGemm, 0.4, 2e-6, 7e-6);
  c.models[KernelFamily::kCopy] = stream_model(KernelFamily::kCopy, 3e-6, 2e12);
  c.models[KernelFamily::kPermute] = stream_model(KernelFamily::kPermute, 4e-6, 1e12);
  c.models[KernelFamily::kAttention] = stream_model(KernelFamily::kAttention, 1e-5, 4e14);
  return c;
}

// The hand calibration with a copy as fast as the GPU's memory: no GEMM below is held to its bytes.
Calibration fast_copy_calibration() {
  Calibration c = hand_calibration();
  c.models[KernelFamily::kCopy] = stream_model(KernelFamily::kCopy, 3e-6, 1e14);
  return c;
}

TEST(CalibratedCost, GemmIsTheFittedFormula) {
  const CalibratedCostModel cm(fast_copy_calibration(), gpu(), 0);
  // One 128×128×4096 tile on one SM: 2·128·128·4096 / (1e15 / 100) / 0.5 = 26.8435456 µs.
  const double tile = 26.8435456e-6;
  // 128 × 12800: 100 tiles = 1 wave on 100 SMs → 26.8435456 + 1 (overhead) + 5 (launch) µs.
  EXPECT_NEAR(cm.gemm(128, 12800, 4096, Precision::kBf16), tile + 1e-6 + 5e-6, 1e-15);
  // 129 × 12800: 200 tiles = 2 waves.
  EXPECT_NEAR(cm.gemm(129, 12800, 4096, Precision::kBf16), 2 * (tile + 1e-6) + 5e-6, 1e-15);
  EXPECT_EQ(cm.gemm(0, 12800, 4096, Precision::kBf16), 0.0);
  // 20 SMs for communication: 80 left, 100 tiles → 2 waves.
  const CalibratedCostModel comm(fast_copy_calibration(), gpu(), 20);
  EXPECT_NEAR(comm.gemm(128, 12800, 4096, Precision::kBf16), 2 * (tile + 1e-6) + 5e-6, 1e-15);
}

// No GEMM moves its operands and output through HBM faster than the calibration's copy (2 TB/s here):
// 128 × 12800 × 4096 in BF16 moves 2·(128·4096 + 4096·12800) + 2·128·12800 = 109,182,976 bytes, 54.591488
// µs, above the 32.84 µs of its one wave. Two experts of 16 rows, n 12800, k 4096: 200 tiles, 2 waves,
// 2 · (33.554432 + 2) + 7 = 78.108864 µs of tiles, but 2 · (2·16·4096 + 2·4096·12800 + 2·16·12800) =
// 210,796,544 bytes in BF16, 105.398272 µs; stored in MXFP4 (4.25 bits) their weights move 56,786,944
// bytes, 28.39 µs, under the tiles. The small matmuls of a fused scan keep their operands on chip: no floor.
TEST(CalibratedCost, GemmsMoveTheirBytesNoFasterThanTheCopy) {
  const CalibratedCostModel cm(hand_calibration(), gpu(), 0), fast(fast_copy_calibration(), gpu(), 0);
  EXPECT_NEAR(cm.gemm(128, 12800, 4096, Precision::kBf16), 109182976 / 2e12, 1e-15);
  const std::vector<double> rows{16, 16};
  const double tiles = 2 * (33.554432e-6 + 2e-6) + 7e-6;
  EXPECT_NEAR(fast.grouped_gemm(rows, 12800, 4096, Precision::kBf16), tiles, 1e-15);
  EXPECT_NEAR(cm.grouped_gemm(rows, 12800, 4096, Precision::kBf16), 210796544 / 2e12, 1e-15);
  EXPECT_NEAR(cm.grouped_gemm_weights(rows, 12800, 4096, Precision::kBf16, 0.53125), tiles, 1e-15);
  EXPECT_NEAR(2 * (2.0 * 16 * 4096 + 0.53125 * 4096 * 12800 + 2.0 * 16 * 12800), 56786944, 1e-6);
  EXPECT_NEAR(cm.batched_matmul(rows, 12800, 4096, Precision::kBf16), tiles, 1e-15);
}

TEST(CalibratedCost, GroupedGemmCountsTilesPerExpert) {
  const CalibratedCostModel cm(fast_copy_calibration(), gpu(), 0);
  // rows {300, 0, 128, 1}, n = 256: tiles 3·2 + 0 + 1·2 + 1·2 = 10 → 1 wave.
  // Tile: 2·128·128·2048 / 1e13 / 0.4 = 16.777216 µs; + 2 µs overhead + 7 µs launch.
  const std::vector<double> rows{300, 0, 128, 1};
  EXPECT_NEAR(cm.grouped_gemm(rows, 256, 2048, Precision::kBf16), 16.777216e-6 + 2e-6 + 7e-6, 1e-15);
  // 10 SMs left (90 for communication): 10 tiles still 1 wave; 11 tiles → 2 waves.
  const CalibratedCostModel comm(fast_copy_calibration(), gpu(), 90);
  const std::vector<double> rows11{300, 0, 128, 1, 1};  // 12 tiles
  EXPECT_NEAR(comm.grouped_gemm(rows11, 256, 2048, Precision::kBf16), 2 * (16.777216e-6 + 2e-6) + 7e-6,
              1e-15);
}

// Per-tensor FP8 recipes price dense and grouped FP8 GEMMs with the "fp8_tensor" fits (cuBLASLt), the
// others with "fp8" (blockwise kernels).
TEST(CalibratedCost, PerTensorFp8TakesItsOwnDenseFit) {
  Calibration c = hand_calibration();
  c.models[KernelFamily::kDenseGemm].gemm["fp8"] = c.models[KernelFamily::kDenseGemm].gemm.at("bf16");
  c.models[KernelFamily::kDenseGemm].gemm["fp8"].efficiency = 0.25;
  c.models[KernelFamily::kDenseGemm].gemm["fp8_tensor"] = c.models[KernelFamily::kDenseGemm].gemm.at("bf16");
  c.models[KernelFamily::kDenseGemm].gemm["fp8_tensor"].efficiency = 0.5;
  const CalibratedCostModel blockwise(c, gpu(), 0), tensor(c, gpu(), 0, true);
  // One 128×128×4096 tile on one SM at 1e15 / 100 flop/s: 2·128·128·4096 / 1e13 = 13.4217728 µs ÷ efficiency,
  // + 1 µs wave overhead + 5 µs launch.
  EXPECT_NEAR(blockwise.gemm(128, 128, 4096, Precision::kFp8), 13.4217728e-6 / 0.25 + 1e-6 + 5e-6, 1e-15);
  EXPECT_NEAR(tensor.gemm(128, 128, 4096, Precision::kFp8), 13.4217728e-6 / 0.5 + 1e-6 + 5e-6, 1e-15);
  EXPECT_NE(tensor.priced_by(OpKind::kGemm, Precision::kFp8).find("precisions/fp8_tensor"),
            std::string::npos);
  EXPECT_NE(blockwise.priced_by(OpKind::kGemm, Precision::kFp8).find("precisions/fp8"), std::string::npos);
  EXPECT_EQ(tensor.gemm(128, 128, 4096, Precision::kBf16), blockwise.gemm(128, 128, 4096, Precision::kBf16));
  // Grouped: no fp8_tensor fit here, so both price with "fp8" (here: none, the roofline) alike; with one,
  // the per-tensor model takes it.
  const std::vector<double> rows{300, 0, 128, 1};
  EXPECT_EQ(tensor.grouped_gemm(rows, 256, 2048, Precision::kFp8),
            blockwise.grouped_gemm(rows, 256, 2048, Precision::kFp8));
  c.models[KernelFamily::kGroupedGemm].gemm["fp8_tensor"] =
      c.models[KernelFamily::kGroupedGemm].gemm.at("bf16");
  const CalibratedCostModel grouped_tensor(c, gpu(), 0, true);
  // Its fp8_tensor fit is the BF16 one (no byte term): the same time, which the blockwise model does not
  // give.
  EXPECT_EQ(grouped_tensor.grouped_gemm(rows, 256, 2048, Precision::kFp8),
            grouped_tensor.grouped_gemm(rows, 256, 2048, Precision::kBf16));
  EXPECT_NE(grouped_tensor.grouped_gemm(rows, 256, 2048, Precision::kFp8),
            blockwise.grouped_gemm(rows, 256, 2048, Precision::kFp8));
  EXPECT_NE(grouped_tensor.priced_by(OpKind::kGroupedGemm, Precision::kFp8)
                .find("grouped_gemm/precisions/fp8_tensor"),
            std::string::npos);
  // Without an fp8_tensor fit the flag changes nothing.
  Calibration only_blockwise = c;
  only_blockwise.models[KernelFamily::kDenseGemm].gemm.erase("fp8_tensor");
  EXPECT_EQ(CalibratedCostModel(only_blockwise, gpu(), 0, true).gemm(128, 128, 4096, Precision::kFp8),
            blockwise.gemm(128, 128, 4096, Precision::kFp8));
}

// Blockwise FP8 prices weight gradients with the "fp8_wgrad" fits (DeepGEMM's wgrad kernels); a grouped
// one as the k-grouped kernel runs it: one dW[k×n] per expert that received tokens, over their mean rows.
TEST(CalibratedCost, BlockwiseWeightGradientsTakeTheirOwnFits) {
  Calibration c = hand_calibration();
  auto& dense = c.models[KernelFamily::kDenseGemm].gemm;
  auto& grouped = c.models[KernelFamily::kGroupedGemm].gemm;
  dense["fp8"] = dense.at("bf16");
  dense["fp8"].efficiency = 0.5;
  dense["fp8_wgrad"] = dense.at("bf16");
  dense["fp8_wgrad"].efficiency = 0.25;
  grouped["fp8"] = grouped.at("bf16");
  grouped["fp8_wgrad"] = grouped.at("bf16");
  grouped["fp8_wgrad"].efficiency = 0.2;
  const CalibratedCostModel plain(c, gpu(), 0), wgrad(c, gpu(), 0, false, true);
  // Dense dW[128×128] over 4096 tokens: one tile, 2·128·128·4096 / 1e13 = 13.4217728 µs ÷ 0.25, + 1 µs
  // wave overhead + 5 µs launch; the forward of that shape keeps efficiency 0.5.
  EXPECT_NEAR(wgrad.weight_gradient_gemm(128, 128, 4096, Precision::kFp8), 13.4217728e-6 / 0.25 + 6e-6,
              1e-15);
  EXPECT_NEAR(wgrad.gemm(128, 128, 4096, Precision::kFp8), 13.4217728e-6 / 0.5 + 6e-6, 1e-15);
  EXPECT_EQ(plain.weight_gradient_gemm(128, 128, 4096, Precision::kFp8),
            plain.gemm(128, 128, 4096, Precision::kFp8));
  EXPECT_EQ(wgrad.weight_gradient_gemm(128, 128, 4096, Precision::kBf16),
            wgrad.gemm(128, 128, 4096, Precision::kBf16));
  // Experts with rows {3000, 0, 1000} of a forward n = 256, k = 128: two dW[128×256] outputs (2 tiles
  // each, 4 tiles, one wave on 100 SMs) over their mean 2000 rows: 2·128·128·2000 / 1e13 / 0.2 = 32.768 µs
  // + 2 µs wave overhead + 7 µs launch.
  const std::vector<double> rows{3000, 0, 1000};
  EXPECT_NEAR(wgrad.grouped_weight_gradient_gemm(rows, 256, 128, Precision::kFp8), 32.768e-6 + 9e-6, 1e-15);
  EXPECT_EQ(plain.grouped_weight_gradient_gemm(rows, 256, 128, Precision::kFp8),
            plain.grouped_gemm(rows, 256, 128, Precision::kFp8));
  EXPECT_EQ(wgrad.grouped_weight_gradient_gemm(std::vector<double>{0, 0}, 256, 128, Precision::kFp8), 0.0);
  EXPECT_NE(wgrad.priced_by_weight_gradient(OpKind::kGroupedGemm, Precision::kFp8)
                .find("grouped_gemm/precisions/fp8_wgrad"),
            std::string::npos);
  EXPECT_EQ(plain.priced_by_weight_gradient(OpKind::kGemm, Precision::kFp8),
            plain.priced_by(OpKind::kGemm, Precision::kFp8));
}

TEST(CalibratedCost, MemoryBoundAndAttention) {
  const CalibratedCostModel cm(hand_calibration(), gpu(), 0);
  // memory_bound prices with the copy model: 3 µs + 4e9 B / 2e12 B/s = 2.003 ms.
  EXPECT_NEAR(cm.memory_bound(4e9), 2.003e-3, 1e-15);
  // Permute has its own model: 4 µs + 1e9 / 1e12 = 1.004 ms; combine has none → the copy model.
  EXPECT_NEAR(cm.memory_kernel(MemoryKernel::kPermute, 1e9), 1.004e-3, 1e-15);
  EXPECT_NEAR(cm.memory_kernel(MemoryKernel::kCombine, 4e9), 2.003e-3, 1e-15);
  // Attention: 4096 × 4096 tokens, 32 heads, 128 + 128 dims, causal: 2·4096²·32·256 / 2 = 137438953472
  // FLOPs; forward 10 µs + F / 4e14; backward 2.5 F at 4e14 · 0.45 / 0.6 = 3e14.
  AttentionShape s;
  s.query_tokens = s.kv_tokens = 4096;
  s.heads = 32;
  s.qk_dim = s.v_dim = 128;
  const double f = 137438953472.0;
  EXPECT_NEAR(cm.attention(s, false), 1e-5 + f / 4e14, 1e-15);
  EXPECT_NEAR(cm.attention(s, true), 1e-5 + 2.5 * f / 3e14, 1e-15);
  // 20 SMs for communication: the rate scales by 80 / 100.
  const CalibratedCostModel comm(hand_calibration(), gpu(), 20);
  EXPECT_NEAR(comm.attention(s, false), 1e-5 + f / (4e14 * 0.8), 1e-15);
  // A measured backward replaces the ratio: 20 µs + 2.5 F / 2.5e14 + scores · 1e-13 + query rows · 1e-9,
  // scores = 4096² · 32 / 2 (causal) = 268435456, query rows = 4096 · 32; on 80 of 100 SMs the variable
  // part takes 100 / 80.
  Calibration with_backward = hand_calibration();
  calibrate::FamilyModel b = stream_model(KernelFamily::kAttentionBackward, 2e-5, 2.5e14);
  b.stream.s_per_score = 1e-13;
  b.stream.s_per_query_row = 1e-9;
  with_backward.models[KernelFamily::kAttentionBackward] = b;
  const double variable = 2.5 * f / 2.5e14 + 268435456.0 * 1e-13 + 4096.0 * 32 * 1e-9;
  EXPECT_NEAR(CalibratedCostModel(with_backward, gpu(), 0).attention(s, true), 2e-5 + variable, 1e-15);
  EXPECT_NEAR(CalibratedCostModel(with_backward, gpu(), 20).attention(s, true), 2e-5 + variable / 0.8, 1e-15);
  EXPECT_NEAR(CalibratedCostModel(with_backward, gpu(), 0).attention(s, false), 1e-5 + f / 4e14, 1e-15);
  EXPECT_NE(CalibratedCostModel(with_backward, gpu(), 0)
                .priced_by(OpKind::kAttention, Precision::kBf16)
                .find("/models/attention_backward"),
            std::string::npos);
}

TEST(CalibratedCost, FallsBackToTheRooflineAndSaysSo) {
  Calibration c = hand_calibration();
  EXPECT_EQ(CalibratedCostModel(c, gpu(), 0).name(),
            "calibration:testdevice (roofline for dense_gemm fp8, grouped_gemm fp8)");
  c.models.erase(KernelFamily::kAttention);
  c.models.erase(KernelFamily::kCopy);
  c.source = "/some/dir/h100.json";
  const CalibratedCostModel cm(c, gpu(), 20);
  EXPECT_EQ(cm.name(),
            "calibration:h100.json (roofline for dense_gemm fp8, grouped_gemm fp8, attention, memory_bound)");
  const RooflineCostModel roof(gpu(), 20);
  AttentionShape s;
  s.query_tokens = s.kv_tokens = 2048;
  s.heads = 16;
  s.qk_dim = s.v_dim = 128;
  EXPECT_EQ(cm.attention(s, false), roof.attention(s, false));
  EXPECT_EQ(cm.attention(s, true), roof.attention(s, true));
  EXPECT_EQ(cm.gemm(4096, 4096, 4096, Precision::kFp8), roof.gemm(4096, 4096, 4096, Precision::kFp8));
  const std::vector<double> rows{512, 100, 0, 700};
  EXPECT_EQ(cm.grouped_gemm(rows, 1536, 2048, Precision::kFp8),
            roof.grouped_gemm(rows, 1536, 2048, Precision::kFp8));
  EXPECT_EQ(cm.memory_bound(1e9), roof.memory_bound(1e9));
  EXPECT_EQ(cm.memory_kernel(MemoryKernel::kSwiglu, 1e9), roof.memory_bound(1e9));
  EXPECT_TRUE(cm.calibrated(KernelFamily::kPermute));
  EXPECT_FALSE(cm.calibrated(KernelFamily::kAttention));
  EXPECT_FALSE(cm.calibrated(KernelFamily::kDenseGemm, Precision::kFp8));
}

TEST(CalibratedCost, RejectsAnotherGpuAndAgreesWithTheFit) {
  GpuSpec other = gpu();
  other.sm_count = 132;
  try {
    CalibratedCostModel(hand_calibration(), other, 0);
    ADD_FAILURE() << "no error";
  } catch (const CalibrationError& e) {
    EXPECT_NE(std::string(e.what()).find("/device/sm_count"), std::string::npos) << e.what();
  }
  // On the measured device, the cost model reproduces the fitted model's prediction of every measurement.
  Calibration c = hand_calibration();
  auto cm = make_calibrated_cost_model(c, gpu(), 0);
  calibrate::Measurement d;
  d.family = KernelFamily::kDenseGemm;
  d.variant = "ours";
  d.m = 3000, d.n = 5000, d.k = 1000;
  EXPECT_DOUBLE_EQ(cm->gemm(d.m, d.n, d.k, Precision::kBf16),
                   c.models.at(KernelFamily::kDenseGemm).predict(d));
  calibrate::Measurement g = d;
  g.family = KernelFamily::kGroupedGemm;
  g.rows = {1000, 0, 2000, 5};
  EXPECT_DOUBLE_EQ(cm->grouped_gemm(g.rows, g.n, g.k, Precision::kBf16),
                   c.models.at(KernelFamily::kGroupedGemm).predict(g));
}

}  // namespace
}  // namespace moesim::models

// End to end: a scenario that names a calibration file is priced by it, and says so.
namespace moesim::calibrate {
namespace {

TEST(Scenario, NamedCalibrationPricesTheRun) {
  const std::string path = temp_path("scenario-calibration.json");
  write_calibration(full_calibration(), path);
  Json j = read_json_file(std::string(MOESIM_SOURCE_DIR) + "/scenarios/examples/mixtral-8x7b-64xH100.json");
  j.erase("variants");
  j["calibration"] = path;  // absolute: used as given
  const Catalog cat({std::string(MOESIM_SOURCE_DIR) + "/scenarios/catalog"});
  const Scenario s = scenario_from_json(j, "calibrated-mixtral.json", cat);
  const auto cm = models::make_compute_cost_model(s);
  EXPECT_EQ(cm->name().rfind("calibration:", 0), 0u) << cm->name();
  const models::Result calibrated = models::evaluate_analytic(s);
  j.erase("calibration");
  const models::Result roofline =
      models::evaluate_analytic(scenario_from_json(j, "roofline-mixtral.json", cat));
  EXPECT_EQ(calibrated.cost_model, cm->name());
  EXPECT_NE(calibrated.step_time, roofline.step_time);  // different compute prices, different step
  // The file is read once, when the scenario is loaded: the engines read no files, so removing it
  // afterwards changes nothing.
  std::filesystem::remove(path);
  const models::Result again = models::evaluate_analytic(s);
  EXPECT_EQ(again.step_time, calibrated.step_time);
  EXPECT_EQ(again.cost_model, calibrated.cost_model);
  // The built cost model is shared between evaluations of the same calibration, GPU and SM reservation
  // only: the same calibration on a GPU whose BF16 peak is below the fitted rate is refused every time
  // (it is never taken from the first scenario's model), and the first scenario still prices as before.
  Scenario slow = s;
  slow.cluster.gpu.flops_bf16 = 1e12;
  for (int i = 0; i < 2; ++i) EXPECT_THROW((void)models::evaluate_analytic(slow), CalibrationError);
  Scenario reserved = s;
  reserved.workload.comm_sms = 20;  // fewer SMs for the GEMM waves: a model of its own, slower compute
  EXPECT_GT(models::evaluate_analytic(reserved).breakdown.compute, calibrated.breakdown.compute);
  EXPECT_EQ(models::evaluate_analytic(s).step_time, calibrated.step_time);
  // A calibration that cannot be read stops loading with a CalibrationError naming the file.
  j["calibration"] = "/nonexistent/cal.json";
  try {
    (void)scenario_from_json(j, "bad.json", cat);
    FAIL() << "expected CalibrationError";
  } catch (const CalibrationError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/cal.json"), std::string::npos) << e.what();
  }
}

// ------------------------------------------------------------------------------- profiles (measured)

// Measurements shaped as the profiler writes them (calibrate/profiler.cpp): every family in several
// variants, points named, whole layers of each backend. Times come from known models, so the fit of
// the profiler's variants must give those models back.
GemmParams true_per_expert() {
  GemmParams p = true_dense();
  p.tile_n = 256;  // not the default tile: the fit must find it among its candidates
  p.efficiency = 0.7;
  p.wave_overhead_s = 1e-6;
  p.launch_s = 4e-6;
  p.s_per_byte = 1.0 / 4e12;
  p.launch_per_group = true;
  return p;
}

Profile profiler_shaped() {
  Profile p;
  p.device = device();
  p.sweep.name = "test";
  p.sweep.families = {KernelFamily::kDenseGemm, KernelFamily::kGroupedGemm, KernelFamily::kRouter,
                      KernelFamily::kPermute,   KernelFamily::kSwiglu,      KernelFamily::kCombine,
                      KernelFamily::kCopy};
  const GemmParams g = true_per_expert();
  const StreamParams stream{2e-6, 3e12, 0};
  auto add = [&](Measurement m, const std::string& point) {
    m.point = point;
    p.measurements.push_back(std::move(m));
    return p.measurements.size() - 1;
  };
  for (double bytes : {1e8, 1e9}) {
    for (const char* v : {"cuda_memcpy", "ours"}) {
      Measurement x = make(KernelFamily::kCopy, stream.time(bytes) * (v[0] == 'o' ? 1.1 : 1.0));
      x.variant = v;
      x.bytes = bytes;
      add(x, "");
    }
  }
  int i = 0;
  for (const char* point : {"a", "b", "c", "d"}) {
    const int experts = 8 << (2 * (i++ % 3));  // 8, 32, 128, 8
    const double tokens = 4096.0 * i;
    auto stream_m = [&](KernelFamily f, const char* variant, double bytes) {
      Measurement x = make(f, stream.time(bytes));
      x.variant = variant;
      x.bytes = bytes;
      return add(x, point);
    };
    const std::size_t router = stream_m(KernelFamily::kRouter, "ours_softmax", 4 * tokens * experts);
    stream_m(KernelFamily::kRouter, "ours_sigmoid_grouped", 5 * tokens * experts);
    const std::size_t permute = stream_m(KernelFamily::kPermute, "ours", 1e7 * i);
    const std::size_t permute_padded = stream_m(KernelFamily::kPermute, "ours_padded", 2e7 * i);
    const std::size_t swiglu = stream_m(KernelFamily::kSwiglu, "ours", 3e7 * i);
    const std::size_t combine = stream_m(KernelFamily::kCombine, "ours", 4e7 * i);
    std::vector<double> rows(experts);
    for (int e = 0; e < experts; ++e)
      rows[e] = e % 3 == 2 ? 0 : std::round(2 * tokens / experts * (1 + e % 2));
    std::map<std::string, std::vector<std::size_t>> gemms;
    for (auto [n, k] : {std::pair{2048.0 * i, 4096.0}, std::pair{4096.0, 1024.0 * i}}) {
      for (const char* v : {"cublas_per_expert", "cublas_grouped", "cublas_strided_batched"}) {
        GemmParams q = g;
        if (v[7] != 'p') q.efficiency = 0.4, q.launch_per_group = false;  // other backends: other speeds
        q.padded_groups = v[7] == 's';  // the strided batch pads every expert to the largest
        Measurement x =
            make(KernelFamily::kGroupedGemm,
                 q.time(q.grouped_tiles(rows, n), k, kSms, q.grouped_bytes(rows, n, k, 2), q.launches(rows)));
        x.variant = v;
        x.rows = rows;
        x.n = n, x.k = k;
        gemms[v].push_back(add(x, point));
      }
      const double m = std::accumulate(rows.begin(), rows.end(), 0.0);
      Measurement d = make(KernelFamily::kDenseGemm, true_dense().time(gemm_tiles(m, n, 128, 128), k, kSms));
      d.variant = "cublas";
      d.m = m, d.n = n, d.k = k;
      add(d, point);
    }
    for (const auto& [v, gi] : gemms) {
      const bool padded = v == "cublas_strided_batched";
      p.layers.push_back(LayerSpec{std::string(point) + " " + v,
                                   {router, padded ? permute_padded : permute, gi[0], swiglu, gi[1], combine},
                                   1e-3});
    }
  }
  return p;
}

TEST(Profile, FileRoundTripIsIdentical) {
  Profile p = profiler_shaped();
  const std::string text = profile_to_text(p);
  const Profile back = parse_profile(text, "round trip");
  EXPECT_EQ(profile_to_text(back), text);
  ASSERT_EQ(back.measurements.size(), p.measurements.size());
  for (std::size_t i = 0; i < p.measurements.size(); ++i) {
    expect_same(back.measurements[i], p.measurements[i]);
    EXPECT_EQ(back.measurements[i].point, p.measurements[i].point);
  }
  ASSERT_EQ(back.layers.size(), p.layers.size());
  EXPECT_EQ(back.layers[3].components, p.layers[3].components);
  EXPECT_EQ(back.layers[3].name, p.layers[3].name);
  EXPECT_EQ(back.device.name, p.device.name);
}

TEST(Profile, ProfilerVariantsFitTheKnownModels) {
  Profile p = profiler_shaped();
  mark_held_out_points(p.measurements, {"d"}, 5);
  FitOptions o = options();
  const Calibration c = calibrate_profile(p, o, {});
  for (const auto& [f, v] : profiler_variants()) EXPECT_EQ(c.model(f)->variant, v) << to_string(f);
  // The per-expert backend's model comes back: its tile among the candidates, a launch per non-empty
  // expert, the byte term.
  const GemmParams want = true_per_expert(), got = c.model(KernelFamily::kGroupedGemm)->gemm.at("bf16");
  EXPECT_EQ(got.tile_m, want.tile_m);
  EXPECT_EQ(got.tile_n, want.tile_n);
  EXPECT_TRUE(got.launch_per_group);
  EXPECT_NEAR(got.efficiency, want.efficiency, 1e-6);
  EXPECT_NEAR(got.launch_s, want.launch_s, 1e-6 * want.launch_s);
  EXPECT_NEAR(got.s_per_byte, want.s_per_byte, 1e-6 * want.s_per_byte);
  EXPECT_NEAR(got.wave_overhead_s, want.wave_overhead_s, 1e-6 * want.wave_overhead_s);
  // Held out: point d whole, nothing of a, b, c; d's per-expert GEMMs are predicted exactly.
  for (const Measurement& m : c.measurements) EXPECT_EQ(m.held_out, m.point == "d") << m.point;
  EXPECT_NEAR(c.held_out.families.at(KernelFamily::kGroupedGemm).max, 0.0, 1e-9);
  EXPECT_EQ(c.held_out.families.at(KernelFamily::kGroupedGemm).count, 2);
  // Layer checks: the per-expert layer of each point (softmax router, compact permute), not the others.
  ASSERT_EQ(c.held_out.layers.size(), 4u);
  for (const LayerCheck& l : c.held_out.layers)
    EXPECT_NE(l.name.find("cublas_per_expert"), std::string::npos) << l.name;
  // And the calibration file reads back.
  EXPECT_EQ(to_text(parse_calibration(to_text(c), "fit")), to_text(c));
}

// The strided-batched backend computes every expert at the largest expert's rows: fitted as such, its
// efficiency is the kernel's, not one that absorbed the padding.
TEST(Profile, PaddedVariantIsFittedOnPaddedRows) {
  Profile p = profiler_shaped();
  FitOptions o = options();
  o.variants = profiler_variants();
  o.variants[KernelFamily::kGroupedGemm] = "cublas_strided_batched";
  const Calibration c = calibrate_profile(p, o, {});
  const GemmParams& g = c.model(KernelFamily::kGroupedGemm)->gemm.at("bf16");
  EXPECT_TRUE(g.padded_groups);
  EXPECT_FALSE(g.launch_per_group);
  EXPECT_NEAR(g.efficiency, 0.4, 1e-6);
  // By hand: rows {300, 0, 128, 1}, n 256, 128 × 128 tiles: real rows 3·2 + 0 + 1·2 + 1·2 = 10 tiles;
  // padded, four groups of 300 rows: 4 · 3 · 2 = 24 tiles, and 4 · (2·(300·64 + 64·256) + 2·300·256) bytes.
  GemmParams q;
  const std::vector<double> rows{300, 0, 128, 1};
  EXPECT_EQ(q.grouped_tiles(rows, 256), 10.0);
  q.padded_groups = true;
  EXPECT_EQ(q.grouped_tiles(rows, 256), 24.0);
  EXPECT_EQ(q.grouped_bytes(rows, 256, 64, 2), 4 * (2.0 * (300 * 64 + 64 * 256) + 2.0 * 300 * 256));
}

TEST(Profile, PerGroupLaunchesCountNonEmptyGroups) {
  GemmParams p;
  p.sm_count = 100;
  p.peak_flops = 1e15;
  p.efficiency = 0.5;
  p.launch_s = 5e-6;
  const std::vector<double> rows{300, 0, 128, 1};
  EXPECT_EQ(p.launches(rows), 1.0);
  p.launch_per_group = true;
  EXPECT_EQ(p.launches(rows), 3.0);
  // 10 tiles of 128×128 at n = 256: one wave, 2·128·128·2048 / 1e13 / 0.5 = 13.4217728 µs, 3 launches.
  EXPECT_NEAR(p.time(grouped_gemm_tiles(rows, 256, 128, 128), 2048, 100, 0, p.launches(rows)),
              13.4217728e-6 + 3 * 5e-6, 1e-15);
  // The flag survives the file and is absent when off (older files read unchanged).
  Calibration c = full_calibration();
  c.models[KernelFamily::kGroupedGemm].gemm["bf16"].launch_per_group = true;
  const std::string text = to_text(c);
  EXPECT_NE(text.find("\"launch_per_group\": true"), std::string::npos);
  EXPECT_TRUE(
      parse_calibration(text, "t").model(KernelFamily::kGroupedGemm)->gemm.at("bf16").launch_per_group);
  EXPECT_EQ(to_text(full_calibration()).find("launch_per_group"), std::string::npos);
}

TEST(Profile, HeldOutPointsAndEveryNth) {
  std::vector<Measurement> ms;
  for (const char* point : {"", "a", "b", "", "a", "", "b", ""}) {
    ms.push_back(make(KernelFamily::kCopy, 1e-3));
    ms.back().point = point;
  }
  mark_held_out_points(ms, {"b"}, 2);
  // Pointless copies: the 2nd and 4th of them; points: b only.
  const std::vector<bool> want{false, false, true, true, false, false, true, true};
  for (std::size_t i = 0; i < ms.size(); ++i) EXPECT_EQ(ms[i].held_out, want[i]) << i;
  mark_held_out_points(ms, {}, 3);  // no points named: every 3rd of the family
  for (std::size_t i = 0; i < ms.size(); ++i) EXPECT_EQ(ms[i].held_out, i % 3 == 2) << i;
}

TEST(Profile, FillFromTakesMissingFamiliesAndPrecisions) {
  Profile p = profiler_shaped();
  const Calibration measured = calibrate_profile(p, options(), {});
  Calibration other = full_calibration();  // dense, grouped (bf16), copy, attention: see full_calibration
  other.models[KernelFamily::kDenseGemm].gemm["fp8"] = true_dense();
  other.models[KernelFamily::kDenseGemm].gemm["fp8"].fitted_on = 10;
  other.source = "/x/other.json";
  ASSERT_EQ(measured.model(KernelFamily::kAttention), nullptr);
  const Calibration c = fill_from(measured, other);
  ASSERT_NE(c.model(KernelFamily::kAttention), nullptr);
  EXPECT_EQ(c.model(KernelFamily::kAttention)->stream.rate,
            other.model(KernelFamily::kAttention)->stream.rate);
  EXPECT_EQ(c.model(KernelFamily::kDenseGemm)->gemm.count("fp8"), 1u);
  // What was measured stays as measured.
  EXPECT_EQ(c.model(KernelFamily::kDenseGemm)->gemm.at("bf16").efficiency,
            measured.model(KernelFamily::kDenseGemm)->gemm.at("bf16").efficiency);
  EXPECT_EQ(c.model(KernelFamily::kCopy)->variant, "cuda_memcpy");
  EXPECT_NE(c.sweep.note.find("from other.json: dense_gemm fp8, attention"), std::string::npos)
      << c.sweep.note;
  EXPECT_EQ(to_text(parse_calibration(to_text(c), "filled")), to_text(c));
  other.device.sm_count = 148;
  try {
    (void)fill_from(measured, other);
    FAIL() << "expected CalibrationError";
  } catch (const CalibrationError& e) {
    EXPECT_NE(std::string(e.what()).find("/x/other.json: /device/sm_count: expected 132"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace moesim::calibrate
