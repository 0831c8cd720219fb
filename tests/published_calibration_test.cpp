// Published-kernel calibrations (calibrate/published.hpp, scenarios/catalog/calibrations/): the fitted
// files reproduce held-out published kernel rows, stay within physical bounds, are what the tool fits
// today, and price GEMMs of a scenario that names no calibration. Expected values come from the CSV rows
// read here and the model formulas written out by hand:
//   GEMM:      t = ⌈tiles / SMs⌉ · (2·64·128·k / (peak / SMs) / eff + wave_overhead) + bytes · s_per_byte +
//   launch,
//              tiles = groups · ⌈m/64⌉ · ⌈n/128⌉, bytes = groups · (e·(m·k + k·n) + 2·m·n), e = 1 (FP8), 2
//              (BF16);
//   attention: t = fixed + FLOPs / rate + scores · s_per_score + query_rows · s_per_query_row.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "calibrate/calibration.hpp"
#include "calibrate/fit.hpp"
#include "calibrate/published.hpp"
#include "models/compute_cost.hpp"
#include "scenarios/catalog.hpp"
#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"

namespace moesim::calibrate {
namespace {

const std::string kRepo = MOESIM_SOURCE_DIR;
const std::string kPublished = kRepo + "/scenarios/catalog/calibrations/published";

const Catalog& catalog() {
  static const Catalog c({kRepo + "/scenarios/catalog"});
  return c;
}

GpuSpec catalog_gpu(const std::string& name) {
  return gpu_from_json(catalog().load(CatalogKind::kGpu, name, "test", ""),
                       catalog().path(CatalogKind::kGpu, name, "test", ""), "");
}

// A CSV as rows of column → text (header first; '#' lines skipped).
std::vector<std::map<std::string, std::string>> read_csv(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::map<std::string, std::string>> rows;
  std::vector<std::string> header;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f;
    std::string cell;
    std::istringstream ls(line);
    while (std::getline(ls, cell, ',')) f.push_back(cell);
    if (line.back() == ',') f.emplace_back();
    if (header.empty()) {
      header = f;
      continue;
    }
    std::map<std::string, std::string> r;
    for (std::size_t i = 0; i < header.size() && i < f.size(); ++i) r[header[i]] = f[i];
    rows.push_back(r);
  }
  return rows;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The GEMM formula of the file header, by hand, with DeepGEMM's tile rule (deep_gemm/jit_kernels/gemm.py,
// get_best_configs, first release): 64 rows when m <= 64 else 128; of the widths 16, 24, ..., 128 the one
// with the fewest waves over 132 SMs, then the fullest last wave, then the widest.
double gemm_by_hand(const GemmParams& p, double groups, double m, double n, double k, double elem) {
  const double bm = m <= 64 ? 64 : 128;
  double tiles = 0, bn = 0, best_waves = 0, best_last = 0;
  for (int w = 16; w <= 128; w += 8) {
    const double t = groups * std::ceil(m / bm) * std::ceil(n / w);
    const double waves = std::ceil(t / 132);
    const double last = std::fmod(t, 132) == 0 ? 132 : std::fmod(t, 132);
    if (bn == 0 || waves < best_waves || (waves == best_waves && last >= best_last)) {
      tiles = t;
      bn = w;
      best_waves = waves;
      best_last = last;
    }
  }
  const double waves = std::ceil(tiles / 132);
  const double tile = 2.0 * bm * bn * k / (p.peak_flops / 132) / p.efficiency;
  const double bytes = groups * (elem * (m * k + k * n) + 2 * m * n);
  return waves * (tile + p.wave_overhead_s) + bytes * p.s_per_byte + p.launch_s;
}

TEST(PublishedCalibration, HeldOutDeepGemmRowsWithinTenPercent) {
  const Calibration c = read_calibration(kRepo + "/scenarios/catalog/calibrations/h800-sxm.json");
  // Rows of the first release, in file order; every 4th of dense and of grouped was held out of the fit.
  std::map<std::string, int> seen;
  std::vector<double> errors;
  for (const auto& r : read_csv(kPublished + "/deepgemm_h800_fp8.csv")) {
    if (r.at("commit") != kDeepGemmCommit) continue;
    const bool dense = r.at("table") == "dense";
    if (++seen[dense ? "dense" : "grouped"] % 4 != 0) continue;
    const double g = std::stod(r.at("groups")), m = std::stod(r.at("m_per_group")), n = std::stod(r.at("n")),
                 k = std::stod(r.at("k"));
    const double measured = 2 * g * m * n * k / (std::stod(r.at("tflops")) * 1e12);
    const auto& p = c.model(dense ? KernelFamily::kDenseGemm : KernelFamily::kGroupedGemm)->gemm.at("fp8");
    EXPECT_EQ(p.tile_policy, moesim::calibrate::TilePolicy::kMinWaves);
    errors.push_back(std::fabs(gemm_by_hand(p, g, m, n, k, 1.0) - measured) / measured);
  }
  ASSERT_EQ(errors.size(), 4u + 2u);  // 18 dense rows, 10 grouped rows
  EXPECT_LT(median(errors), 0.10);
}

// DeepGEMM's FP8 weight-gradient rows (pull request 95): the fp8_wgrad fits (fixed 64 × 128 tiles) by hand,
// output M × N per group reduced over K; every 4th of dense and of grouped held out, and all of them within
// 10 % at the median.
TEST(PublishedCalibration, DeepGemmWeightGradientRowsWithinTenPercent) {
  const Calibration c = read_calibration(kRepo + "/scenarios/catalog/calibrations/h800-sxm.json");
  std::map<std::string, int> seen;
  std::vector<double> held_out, all;
  for (const auto& r : read_csv(kPublished + "/deepgemm_wgrad_h800_fp8.csv")) {
    const bool dense = r.at("family") == "dense_gemm";
    const auto& p =
        c.model(dense ? KernelFamily::kDenseGemm : KernelFamily::kGroupedGemm)->gemm.at("fp8_wgrad");
    EXPECT_EQ(p.tile_policy, moesim::calibrate::TilePolicy::kFixed);
    const double g = std::stod(r.at("groups")), m = std::stod(r.at("m_per_group")), n = std::stod(r.at("n")),
                 k = std::stod(r.at("k"));
    const double measured = 2 * g * m * n * k / (std::stod(r.at("published")) * 1e12);
    const double tiles = g * std::ceil(m / p.tile_m) * std::ceil(n / p.tile_n);
    const double tile = 2.0 * p.tile_m * p.tile_n * k / (p.peak_flops / 132) / p.efficiency;
    const double bytes = g * (m * k + k * n + 2 * m * n);
    const double predicted =
        std::ceil(tiles / 132) * (tile + p.wave_overhead_s) + bytes * p.s_per_byte + p.launch_s;
    const double error = std::fabs(predicted - measured) / measured;
    all.push_back(error);
    if (++seen[r.at("family")] % 4 == 0) held_out.push_back(error);
  }
  ASSERT_EQ(all.size(), 14u);  // 9 dense, 5 grouped
  ASSERT_EQ(held_out.size(), 2u + 1u);
  EXPECT_LT(median(held_out), 0.10);
  EXPECT_LT(median(all), 0.10);
}

TEST(PublishedCalibration, HeldOutFlashAttentionRowsWithinTenPercent) {
  const Calibration c = read_calibration(kRepo + "/scenarios/catalog/calibrations/h100-sxm.json");
  const StreamParams& a = c.model(KernelFamily::kAttention)->stream;
  int seen = 0;
  std::vector<double> errors;
  for (const auto& r : read_csv(kPublished + "/fa3_h100_fwd.csv")) {
    if (r.at("method") != "FlashAttention-3" || r.at("tflops").empty()) continue;
    if (++seen % 4 != 0) continue;
    const double d = std::stod(r.at("headdim")), s = std::stod(r.at("seqlen")), b = std::stod(r.at("batch")),
                 h = std::stod(r.at("heads"));
    const double half = r.at("causal") == "1" ? 0.5 : 1.0;
    const double flops = 4 * b * s * s * h * d * half, scores = b * s * s * h * half;
    const double measured = flops / (std::stod(r.at("tflops")) * 1e12);
    const double predicted =
        a.fixed_s + flops / a.rate + scores * a.s_per_score + b * s * h * a.s_per_query_row;
    errors.push_back(std::fabs(predicted - measured) / measured);
  }
  ASSERT_EQ(errors.size(), 8u);  // 35 FlashAttention-3 rows with a figure
  EXPECT_LT(median(errors), 0.10);
}

TEST(PublishedCalibration, FittedValuesArePhysical) {
  for (const char* gpu : {"h100-sxm", "h800-sxm"}) {
    const Calibration c = read_calibration(kRepo + "/scenarios/catalog/calibrations/" + gpu + ".json");
    const GpuSpec spec = catalog_gpu(gpu);
    for (auto f : {KernelFamily::kDenseGemm, KernelFamily::kGroupedGemm})
      for (const char* prec : {"bf16", "fp8"}) {
        const GemmParams& p = c.model(f)->gemm.at(prec);
        EXPECT_GT(p.efficiency, 0.3) << gpu << " " << to_string(f) << " " << prec;
        EXPECT_LE(p.efficiency, 1.0) << gpu << " " << to_string(f) << " " << prec;
        EXPECT_EQ(p.peak_flops, std::string(prec) == "fp8" ? spec.flops_fp8 : spec.flops_bf16);
      }
    EXPECT_LE(c.model(KernelFamily::kAttention)->stream.rate, spec.flops_bf16);
    // Copy: the two guide figures, 0.88 µs for an empty kernel and 3.02 TB/s for a large copy.
    const StreamParams& copy = c.model(KernelFamily::kCopy)->stream;
    EXPECT_NEAR(copy.fixed_s, 0.88e-6, 0.01e-6);
    EXPECT_NEAR(copy.rate, 3.02e12, 0.01e12);
    // Memory-bound families, each from its guide figure with the empty kernel as its launch floor:
    // permute 2.66 and 2.82 TB/s at 1 GiB (least squares through both: about their mean), combine
    // 0.475 TB/s, SwiGLU 1.07 TB/s.
    const StreamParams& permute = c.model(KernelFamily::kPermute)->stream;
    EXPECT_NEAR(permute.fixed_s, 0.88e-6, 0.01e-6);
    EXPECT_GT(permute.rate, 2.66e12);
    EXPECT_LT(permute.rate, 2.82e12);
    EXPECT_NEAR(c.model(KernelFamily::kCombine)->stream.rate, 0.475e12, 0.001e12);
    EXPECT_NEAR(c.model(KernelFamily::kSwiglu)->stream.rate, 1.07e12, 0.001e12);
    // Router: 35 us at 4·8192·8 + 8·8192·2 = 393216 B and 167 us at 4·8192·256 + 8·8192·8 = 8912896 B:
    // the line through both has 8519680 B per 132 us, 64.54 GB/s, and 35 - 393216 / 64.54e9 s = 28.908 us.
    const StreamParams& router = c.model(KernelFamily::kRouter)->stream;
    EXPECT_NEAR(router.rate, 8519680.0 / 132e-6, 1e6);
    EXPECT_NEAR(router.fixed_s, 35e-6 - 393216.0 / (8519680.0 / 132e-6), 1e-9);
    EXPECT_EQ(c.device.sm_count, 132);
  }
}

TEST(PublishedCalibration, MoeMemoryKernelsArePricedByTheirFamily) {
  // The MoE block's memory-bound ops take their family's rate: on DeepSeek-V3 (h = 7168, top-8 of 256)
  // with 4096 tokens, the forward un-permutation and weighted sum moves 4096·8·7168·2 + 4096·7168·4 bytes
  // at the combine rate, the permutation 2·4096·8·7168·2 at the permute rate, and the routed SwiGLU
  // 3·(rows)·2048·2 at the SwiGLU rate; the per-op table names each family.
  const Scenario s = load_scenario(kRepo + "/scenarios/examples/deepseek-v3-2048xH800.json", catalog());
  const auto cm = models::make_compute_cost_model(s);
  const Calibration c = read_calibration(kRepo + "/scenarios/catalog/calibrations/h800-sxm.json");
  const auto at = [&](KernelFamily f, double bytes) { return c.model(f)->stream.time(bytes); };
  const double combine = 4096.0 * 8 * 7168 * 2 + 4096.0 * 7168 * 4, permute = 2.0 * 4096 * 8 * 7168 * 2;
  EXPECT_NEAR(cm->memory_kernel(models::MemoryKernel::kCombine, combine), at(KernelFamily::kCombine, combine),
              1e-15);
  EXPECT_NEAR(cm->memory_kernel(models::MemoryKernel::kPermute, permute), at(KernelFamily::kPermute, permute),
              1e-15);
  // The combine at 0.475 TB/s is 6.4x slower than a copy of the same bytes at 3.02 TB/s.
  EXPECT_GT(cm->memory_kernel(models::MemoryKernel::kCombine, combine), 6.0 * cm->memory_bound(combine));
  EXPECT_EQ(cm->memory_kernel(models::MemoryKernel::kStream, combine), cm->memory_bound(combine));
  EXPECT_EQ(cm->priced_by_memory(models::MemoryKernel::kCombine), "h800-sxm.json /models/combine");
  EXPECT_EQ(cm->priced_by_memory(models::MemoryKernel::kStream), "h800-sxm.json /models/copy");
}

TEST(PublishedCalibration, CatalogFilesAreWhatTheToolFits) {
  for (const char* gpu : {"h100-sxm", "h800-sxm"}) {
    const Calibration file = read_calibration(kRepo + "/scenarios/catalog/calibrations/" + gpu + ".json");
    const Calibration fresh = calibrate_from_published(kPublished, catalog_gpu(gpu), 4, file.provenance);
    EXPECT_EQ(to_text(fresh), to_text(file)) << gpu << ": regenerate with moesim calibrate --from-published";
  }
}

// B200, GB200, B300, GB300 and H200 have no published kernel table of their own: the H100's carried by
// datasheet ratios (b200.json, gb200.json, b300.json, gb300.json, h200-sxm-scaled.json), and the files are
// what the tool writes.
TEST(PublishedCalibration, ScaledCatalogFilesAreTheH100sByDatasheetRatios) {
  const Calibration h100 = read_calibration(kRepo + "/scenarios/catalog/calibrations/h100-sxm.json");
  // By hand, from the catalog entries' datasheet figures: HBM bandwidth and dense BF16 peak against the
  // H100's 3.35 TB/s and 989 TFLOP/s.
  struct Scaled {
    const char* gpu;
    double mem, bf16;
  };
  for (const Scaled& sc :
       {Scaled{"b200", 8.0 / 3.35, 2250.0 / 989}, Scaled{"gb200", 8.0 / 3.35, 2500.0 / 989},
        Scaled{"b300", 8.0 / 3.35, 2250.0 / 989}, Scaled{"gb300", 8.0 / 3.35, 2500.0 / 989},
        Scaled{"h200-sxm", 4.8 / 3.35, 1.0}}) {
    const std::string gpu = sc.gpu;
    // The H200's scaled file is kept beside its measured calibration, which takes what it lacks from it.
    const std::string file_name = gpu == "h200-sxm" ? "h200-sxm-scaled" : gpu;
    const Calibration file =
        read_calibration(kRepo + "/scenarios/catalog/calibrations/" + file_name + ".json");
    const GpuSpec to = catalog_gpu(gpu), from = catalog_gpu("h100-sxm");
    Calibration source = h100;
    source.source.clear();
    EXPECT_EQ(to_text(scale_calibration(source, from, to, file.provenance)), to_text(file))
        << gpu << ": regenerate with moesim calibrate --scale-from";
    EXPECT_EQ(file.device.sm_count, to.sm_count);
    EXPECT_TRUE(file.measurements.empty());
    const double mem = sc.mem, bf16 = sc.bf16;
    for (auto f : {KernelFamily::kCopy, KernelFamily::kPermute, KernelFamily::kCombine, KernelFamily::kSwiglu,
                   KernelFamily::kRouter}) {
      EXPECT_NEAR(file.model(f)->stream.rate, h100.model(f)->stream.rate * mem,
                  1e-6 * file.model(f)->stream.rate)
          << gpu;
      EXPECT_EQ(file.model(f)->stream.fixed_s, h100.model(f)->stream.fixed_s);
    }
    const StreamParams &a = file.model(KernelFamily::kAttention)->stream,
                       &b = h100.model(KernelFamily::kAttention)->stream;
    EXPECT_NEAR(a.rate, b.rate * bf16, 1e-9 * a.rate);
    EXPECT_NEAR(a.s_per_score, b.s_per_score / bf16, 1e-9 * b.s_per_score);
    for (auto f : {KernelFamily::kDenseGemm, KernelFamily::kGroupedGemm})
      for (const char* prec : {"bf16", "fp8"}) {
        const GemmParams &g = file.model(f)->gemm.at(prec), &h = h100.model(f)->gemm.at(prec);
        EXPECT_EQ(g.efficiency, h.efficiency);
        EXPECT_EQ(g.peak_flops, std::string(prec) == "fp8" ? to.flops_fp8 : to.flops_bf16);
        EXPECT_EQ(g.sm_count, to.sm_count);
        EXPECT_NEAR(g.s_per_byte, h.s_per_byte / mem, 1e-9 * h.s_per_byte + 1e-30);
      }
  }
  // A calibration of another GPU than the one it is said to come from is refused, naming the file.
  try {
    scale_calibration(h100, catalog_gpu("b200"), catalog_gpu("h200-sxm"), {});
    ADD_FAILURE() << "expected a CalibrationError";
  } catch (const CalibrationError& e) {
    EXPECT_NE(std::string(e.what()).find("h100-sxm.json: /device: expected a calibration of b200"),
              std::string::npos)
        << e.what();
  }
}

// The H200's catalog calibration is measured on an H200 (tools/gpu_run.sh; the profile is committed):
// the file is what `moesim calibrate --refit` fits from that profile, completed from the scaled file
// with what the profiler does not measure (attention, FP8 GEMMs), and it is the H200's default.
TEST(PublishedCalibration, H200CalibrationIsTheMeasuredProfileFitted) {
  const std::string dir = kRepo + "/scenarios/catalog/calibrations/";
  const Calibration file = read_calibration(dir + "h200-sxm.json");
  const Profile profile = read_profile(dir + "measured/h200-sxm-profile.json");
  Calibration fresh =
      fill_from(calibrate_profile(profile, fit_options_for(catalog_gpu("h200-sxm")), file.provenance),
                read_calibration(dir + "h200-sxm-scaled.json"));
  EXPECT_EQ(to_text(fresh), to_text(file))
      << "regenerate with moesim calibrate --refit (docs/calibration.md)";
  EXPECT_EQ(file.device.name, "NVIDIA H200");
  EXPECT_EQ(file.model(KernelFamily::kGroupedGemm)->variant, "cublas_per_expert");
  EXPECT_EQ(file.model(KernelFamily::kAttention)->variant, "published");
  EXPECT_EQ(file.model(KernelFamily::kDenseGemm)->gemm.count("fp8"), 1u);
  EXPECT_EQ(catalog_gpu("h200-sxm").calibration, "catalog:h200-sxm");
  // Validated on models it never saw: every grouped-GEMM and SwiGLU kernel of OLMoE and gpt-oss-120b
  // within 25% and 5% (the measured errors: 20.4% and 4.0% at most).
  EXPECT_LT(file.held_out.families.at(KernelFamily::kGroupedGemm).max, 0.25);
  EXPECT_LT(file.held_out.families.at(KernelFamily::kSwiglu).max, 0.05);
  EXPECT_GE(file.held_out.families.at(KernelFamily::kGroupedGemm).count, 10);
}

TEST(PublishedCalibration, EfficiencyIsBoundedByOne) {
  // Tiles that run 1.25x faster than the datasheet allows: the fit stops at efficiency 1 and lets the
  // other terms take up what they can, rather than write an efficiency the reader refuses.
  GemmParams truth;
  truth.tile_m = 64;
  truth.tile_n = 128;
  truth.sm_count = 132;
  truth.peak_flops = 989e12;
  truth.efficiency = 1.25;
  std::vector<Measurement> ms;
  for (double m : {1024.0, 8192.0, 65536.0})
    for (double k : {1024.0, 8192.0}) {
      Measurement x;
      x.family = KernelFamily::kDenseGemm;
      x.variant = "v";
      x.m = m, x.n = 4096, x.k = k;
      x.median_s = truth.time(gemm_tiles(m, 4096, 64, 128), k, 132);
      x.repetitions = 1;
      ms.push_back(x);
    }
  FitOptions o;
  o.peak_flops["bf16"] = 989e12;
  o.tile_m = 64;
  const FamilyModel fit = fit_family(KernelFamily::kDenseGemm, ms, 132, o);
  EXPECT_EQ(fit.gemm.at("bf16").efficiency, 1.0);
}

TEST(PublishedCalibration, ScenarioWithoutCalibrationUsesTheGpuDefault) {
  const Scenario s = load_scenario(kRepo + "/scenarios/examples/mixtral-8x7b-64xH100.json", catalog());
  ASSERT_TRUE(s.calibration.empty());
  ASSERT_EQ(s.cluster.gpu.calibration, "catalog:h100-sxm");
  const auto cm = models::make_compute_cost_model(s);
  EXPECT_EQ(cm->name(), "calibration:h100-sxm.json");
  // 8192 x 14336 x 4096 BF16 dense GEMM on the SMs left after comm_sms, by hand from the file's fit.
  const Calibration c = read_calibration(kRepo + "/scenarios/catalog/calibrations/h100-sxm.json");
  const GemmParams& p = c.model(KernelFamily::kDenseGemm)->gemm.at("bf16");
  const int sms = 132 - s.workload.comm_sms;
  const double tiles = (8192 / 64) * (14336 / 128);
  const double bytes = 2.0 * (8192.0 * 4096 + 4096.0 * 14336) + 2.0 * 8192 * 14336;
  const double want =
      std::ceil(tiles / sms) * (2.0 * 64 * 128 * 4096 / (989e12 / 132) / p.efficiency + p.wave_overhead_s) +
      bytes * p.s_per_byte + p.launch_s;
  EXPECT_NEAR(cm->gemm(8192, 14336, 4096, Precision::kBf16), want, 1e-12 * want);
}

TEST(PublishedCalibration, BadTablesNameFileLineAndColumn) {
  const auto dir = std::filesystem::temp_directory_path() / "moesim_published_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    std::ofstream f(dir / "figures.csv");
    f << "source,family,variant,precision,groups,m_per_group,n,k,bytes,published,unit\n"
      << "x,copy,memcpy,bf16,0,0,0,0,1e9,fast,TB/s\n";
  }
  try {
    published_measurements(dir.string(), nullptr);
    FAIL() << "expected a CalibrationError";
  } catch (const CalibrationError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("figures.csv"), std::string::npos) << what;
    EXPECT_NE(what.find("line 2, column published"), std::string::npos) << what;
    EXPECT_NE(what.find("expected a number"), std::string::npos) << what;
    EXPECT_NE(what.find("found \"fast\""), std::string::npos) << what;
  }
  EXPECT_THROW(published_measurements((dir / "missing").string(), nullptr), CalibrationError);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace moesim::calibrate
