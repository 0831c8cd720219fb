// `moesim accuracy` (reports/accuracy.hpp, reports/accuracy_kernels.hpp, docs/accuracy.md).
//   - AccuracyUnit: the statistics, and the kernel rows' predictions recomputed by hand from the
//     published setting and the catalog entry (DeepEP, DeepGEMM, FlashAttention-3), and the file errors.
//   - AccuracyGuard: the whole suite through the built binary with both engines, every row held to the
//     regression bound recorded in scenarios/validation/bounds/guards.json (today's |error| plus a margin,
//     not the project's target; docs/accuracy.md gives both).
#include "reports/accuracy.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "models/analytic.hpp"
#include "models/compute_cost.hpp"
#include "models/network.hpp"
#include "models/workload.hpp"
#include "reports/accuracy_kernels.hpp"
#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"

namespace fs = std::filesystem;
using moesim::Json;
using moesim::reports::AccuracyGroup;
using moesim::reports::AccuracyRow;

namespace {

const std::string kSrc = MOESIM_SOURCE_DIR;
const std::string kValidation = kSrc + "/scenarios/validation";

moesim::Catalog catalog() {
  return moesim::Catalog({kSrc + "/scenarios/catalog"});
}

const AccuracyRow& find_row(const std::vector<AccuracyRow>& rows, const std::string& name) {
  for (const auto& r : rows)
    if (r.name == name) return r;
  throw std::runtime_error("no row " + name);
}

// A temporary folder holding one kernel CSV.
std::string kernel_dir_with(const std::string& file, const std::string& text) {
  const fs::path d = fs::temp_directory_path() / ("moesim_accuracy_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  std::ofstream(d / file) << text;
  return d.string();
}

}  // namespace

TEST(AccuracyUnit, MedianOfOddAndEvenCounts) {
  EXPECT_DOUBLE_EQ(moesim::reports::median({3, 1, 2}), 2);
  EXPECT_DOUBLE_EQ(moesim::reports::median({4, 1, 3, 2}), 2.5);
  EXPECT_TRUE(std::isnan(moesim::reports::median({})));
}

TEST(AccuracyUnit, SummaryCountsRunsThatDoNotFitAsFailures) {
  AccuracyRow a;
  a.published = 10;
  a.analytic = 8;  // -20 %
  a.des = 11;      // +10 %
  AccuracyRow b = a;
  b.analytic = 10.5;  // +5 %, but predicted not to fit
  b.analytic_ok = false;
  b.des = NAN;  // the engine failed
  b.des_ok = false;
  EXPECT_DOUBLE_EQ(a.error(false), -0.2);
  EXPECT_DOUBLE_EQ(a.error(true), 0.1);
  const auto s = moesim::reports::accuracy_summary({a, b});
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].group, AccuracyGroup::kEndToEnd);
  EXPECT_EQ(s[0].analytic.rows, 2);
  EXPECT_EQ(s[0].analytic.failures, 1);
  EXPECT_NEAR(s[0].analytic.median_abs, 0.125, 1e-12);
  EXPECT_NEAR(s[0].analytic.max_abs, 0.2, 1e-12);
  EXPECT_EQ(s[0].des.rows, 1);
  EXPECT_EQ(s[0].des.failures, 1);
}

// The memory verdict: every end-to-end row carries the engine's memory per GPU on its most loaded rank
// and the GPU's capacity (JSON: memory_bytes, memory_capacity_bytes); the table adds one line counting
// the published runs that fit (each run once, whatever its rows) and naming the fullest by the share of
// its GPU it fills.
TEST(AccuracyUnit, MemoryVerdictOfThePublishedRuns) {
  const double gib = 1024.0 * 1024 * 1024;
  AccuracyRow a;
  a.name = "fits";
  a.quantity = "step_time";
  a.unit = "s";
  a.published = 10;
  a.analytic = 9;
  a.analytic_memory = 70 * gib;  // 87.5 % of 80 GiB
  a.memory_capacity = 80 * gib;
  AccuracyRow a2 = a;  // the same run's second row: counted once
  a2.quantity = "tokens_per_s_per_gpu";
  AccuracyRow b = a;
  b.name = "overflows";
  b.analytic_memory = NAN;  // only the discrete-event engine ran: its figure is used
  b.des_memory = 150 * gib;
  b.memory_capacity = 141 * gib;  // 106.4 %: the fullest, and it does not fit
  AccuracyRow kernel;             // a kernel row carries no memory and is not a run
  kernel.name = "gemm";
  std::ostringstream out;
  moesim::reports::write_accuracy_table(out, {a, a2, b, kernel}, {true, true});
  EXPECT_NE(
      out.str().find("\nmemory: 1 of 2 published training runs fit on their most loaded GPU; the fullest, "
                     "overflows, 150.0 of 141.0 GiB\n"),
      std::string::npos)
      << out.str();

  // From a real evaluation: the rows carry the result's figures, and the JSON holds them.
  const moesim::Scenario s =
      moesim::load_scenario(kValidation + "/qwen3-30b-16xH100-fp8-nemo-ep16.json", catalog());
  const moesim::models::Result r = moesim::models::evaluate_analytic(s);
  const auto rows = moesim::reports::end_to_end_rows(s, &r, nullptr);
  ASSERT_FALSE(rows.empty());
  for (const auto& row : rows) {
    EXPECT_EQ(row.analytic_memory, r.memory.total);
    EXPECT_EQ(row.memory_capacity, r.memory.capacity);
    EXPECT_TRUE(std::isnan(row.des_memory));
  }
  const Json j = moesim::reports::accuracy_json(rows, {true, false});
  EXPECT_EQ(j.at("rows").at(0).at("analytic").at("memory_bytes").get<double>(), r.memory.total);
  EXPECT_EQ(j.at("rows").at(0).at("analytic").at("memory_capacity_bytes").get<double>(), r.memory.capacity);
  EXPECT_LT(r.memory.total, r.memory.capacity);
}

// DeepEP EP8 dispatch stays in one node: every token goes once to every distinct GPU it hits. With
// uniform routing of top-8 over 8 equal GPUs a GPU is hit with probability h = 1 - (7/8)^8, so each GPU
// sends 7h copies of 7408 B per token and receives as many; the all-to-all takes bytes / 160 GB/s plus
// one NVLink latency (3.33 us) on the DeepSeek cluster (catalog:deepseek-h800-2048).
TEST(AccuracyUnit, DeepEpIntranodeBandwidthFromTheNvlinkModel) {
  const auto rows = moesim::reports::kernel_rows(kValidation + "/kernels", catalog());
  const AccuracyRow& r = find_row(rows, "deepep-dispatch-ep8");
  EXPECT_EQ(r.group, AccuracyGroup::kAllToAll);
  EXPECT_DOUBLE_EQ(r.published, 153.0);  // DeepEP README, normal kernels, EP8 dispatch
  // A rank holds 32 of the 256 experts: hit with h = 1 − (7/8)^8. The all-to-all moves the 7 · h · T
  // copies from the other GPUs at 0.85 of 160 GB/s, plus the NVLink latency and the all-to-all
  // overhead; DeepEP's logical bandwidth counts 8 · h · T (its own included).
  const double h = 1 - std::pow(7.0 / 8.0, 8);
  const double bytes = 7 * h * 4096 * 7408;
  const double t = bytes / (0.85 * 160e9) + 3.33e-6 + 1.66e-6;
  EXPECT_NEAR(r.analytic, bytes * 8 / 7 / t / 1e9, 1e-6);
}

// Megatron-Core's NCCL all-to-all at EP8 on DGX H100 (arXiv 2603.07685 Table 7): the permuted rows go one
// per (token, expert) slot, so a GPU sends 8 · 7/8 = 7 copies of every token (14336 B, BF16) over NVLink at
// 0.85 of 370 GB/s, plus the NVLink latency (3 us) and the all-to-all overhead (1.66 us): 1311.6 us against
// the published 1265. Merging the copies bound for one GPU (8 · (1 − (7/8)^8) · 7/8 = 4.61 per token)
// would give 864 us, 32% short of it.
TEST(AccuracyUnit, MegatronAllToAllSendsEverySlot) {
  const auto rows = moesim::reports::kernel_rows(kValidation + "/kernels", catalog());
  const AccuracyRow& r = find_row(rows, "mcore-a2a-dispatch-ep8");
  EXPECT_EQ(r.quantity, "latency");
  EXPECT_DOUBLE_EQ(r.published, 1265.0);
  const double t = 7.0 * 4096 * 14336 / (0.85 * 370e9) + 3e-6 + 1.66e-6;
  EXPECT_NEAR(r.analytic, t * 1e6, 1e-6);
  EXPECT_LT(std::abs(r.analytic - r.published) / r.published, 0.05);
}

// DeepEP low-latency EP8 dispatch: 128 tokens, each of its 8 copies its own RDMA message (one node, still
// over the NIC); a GPU keeps 1 of 8 and sends 7 · 128 copies of 7408 B at 0.87 of 50 GB/s, plus one
// in-leaf IB latency (2.8 us) and the all-to-all overhead (1.66 us). Every low-latency row (EP8-256) is
// within 10% of DeepEP's published latency.
TEST(AccuracyUnit, DeepEpLowLatencyFromEveryCopyOverTheNic) {
  const auto rows = moesim::reports::kernel_rows(kValidation + "/kernels", catalog());
  const AccuracyRow& r = find_row(rows, "deepep-ll-dispatch-ep8");
  EXPECT_EQ(r.quantity, "latency");
  EXPECT_DOUBLE_EQ(r.published, 163.0);  // DeepEP README, low-latency kernels, EP8 dispatch
  const double t = 7.0 * 128 * 7408 / (0.87 * 50e9) + 2.8e-6 + 1.66e-6;
  EXPECT_NEAR(r.analytic, t * 1e6, 1e-6);
  int low_latency = 0;
  for (const AccuracyRow& x : rows) {
    if (x.name.rfind("deepep-ll-", 0) != 0) continue;
    ++low_latency;
    EXPECT_LT(std::abs(x.analytic - x.published) / x.published, 0.10) << x.name;
  }
  EXPECT_EQ(low_latency, 12);  // dispatch and combine at EP 8, 16, 32, 64, 128, 256
}

TEST(AccuracyUnit, AllToAllRowNeedsOnePublishedFigure) {
  const std::string head = "name,cluster,kernel,op,ep,path,tokens,top_k,node_limit,bytes_per_copy,";
  const std::string dir = kernel_dir_with(
      "a.csv",
      head +
          "published_gbps,published_us,source\nx,catalog:deepseek-h800-2048,normal,dispatch,8,NVLink,"
          "4096,8,4,7408,153,160,src\n");
  EXPECT_THROW(moesim::reports::kernel_rows(dir, catalog()), moesim::ParseError);
  fs::remove_all(dir);
  const std::string bad = kernel_dir_with(
      "b.csv",
      head + "published_us,source\nx,catalog:deepseek-h800-2048,fast,dispatch,8,RDMA,128,8,0,7408,160,src\n");
  try {
    moesim::reports::kernel_rows(bad, catalog());
    FAIL() << "an unknown kernel was accepted";
  } catch (const moesim::ParseError& e) {
    EXPECT_NE(std::string(e.what()).find("line 2, column kernel: expected normal, low_latency, alltoall or "
                                         "hybridep"),
              std::string::npos)
        << e.what();
  }
  fs::remove_all(bad);
}

// DeepGEMM dense M=4096, N=7168, K=16384 on H800, priced by the H800's calibration (its catalog default),
// whose FP8 fits pick the tile by DeepGEMM's rule: 128 rows (M > 64); of the widths 16, 24, ..., 128 only
// 128 reaches the fewest waves (32 x 56 = 1792 tiles over 132 SMs: 14 waves; width 120 makes 32 x 60 =
// 1920 tiles, 15 waves). A tile takes 2·128·128·K / (FP8 peak / 132) / efficiency, plus the wave overhead
// per wave, the FP8 operands and BF16 output at s_per_byte, the launch.
TEST(AccuracyUnit, DeepGemmDenseRowFromTileWaves) {
  const auto rows = moesim::reports::kernel_rows(kValidation + "/kernels", catalog());
  const AccuracyRow& r = find_row(rows, "deepgemm-dense-1x4096-n7168-k16384");
  EXPECT_DOUBLE_EQ(r.published, 1358.0);
  const moesim::Json g = moesim::read_json_file(kSrc + "/scenarios/catalog/gpus/h800-sxm.json");
  ASSERT_EQ(g.at("calibration").get<std::string>(), "catalog:h800-sxm");
  const moesim::Json p = moesim::read_json_file(kSrc + "/scenarios/catalog/calibrations/h800-sxm.json")
                             .at("models")
                             .at("dense_gemm")
                             .at("precisions")
                             .at("fp8");
  ASSERT_EQ(p.at("tile_policy").get<std::string>(), "min_waves");
  const double tile = 2.0 * 128 * 128 * 16384 / (1979e12 / 132) / p.at("efficiency").get<double>();
  const double bytes = 4096.0 * 16384 + 16384.0 * 7168 + 2.0 * 4096 * 7168;
  const double t = 14 * (tile + p.at("wave_overhead_s").get<double>()) +
                   bytes * p.at("s_per_byte").get<double>() + p.at("launch_s").get<double>();
  EXPECT_NEAR(r.analytic, 2.0 * 4096 * 7168 * 16384 / t / 1e12, 1e-6);
}

// FlashAttention-3 forward, head dim 128, non-causal, sequence 4096, batch 4, 16 heads, priced by the
// H100's calibration: fixed + FLOPs / rate + scores · s_per_score + query rows · s_per_query_row, with
// 4·4·4096²·16·128 FLOPs, 4·4096²·16 scores and 4·4096·16 query rows.
TEST(AccuracyUnit, FlashAttentionRowFromItsFlops) {
  const auto rows = moesim::reports::kernel_rows(kValidation + "/kernels", catalog());
  const AccuracyRow& r = find_row(rows, "fa3-fwd-d128-full-s4096");
  const moesim::Json a = moesim::read_json_file(kSrc + "/scenarios/catalog/calibrations/h100-sxm.json")
                             .at("models")
                             .at("attention");
  const double flops = 4.0 * 4 * 4096.0 * 4096 * 16 * 128;
  const double t = a.at("fixed_s").get<double>() + flops / a.at("rate_flops_per_s").get<double>() +
                   4.0 * 4096 * 4096 * 16 * a.at("s_per_score").get<double>() +
                   4.0 * 4096 * 16 * a.at("s_per_query_row").get<double>();
  EXPECT_NEAR(r.analytic, flops / t / 1e12, 1e-6);
}

// DeepSeek's training trace per MoE layer against the ops of one MoE block of the DeepSeek-V3 validation
// scenario. The forward attention by hand: MLA, 128 heads, qk 192 and v 128, 4096 causal tokens, priced by
// the H800's calibration on the 112 SMs left beside DeepEP's 20: fixed + (FLOPs / rate + scores ·
// s_per_score + query rows · s_per_query_row) · 132 / 112.
TEST(AccuracyUnit, DeepSeekTraceRowsFromTheScenarioOps) {
  const auto rows = moesim::reports::kernel_rows(kValidation + "/kernels", catalog());
  const AccuracyRow& att = find_row(rows, "dsv3-trace-forward-attention");
  EXPECT_EQ(att.group, AccuracyGroup::kTrace);
  EXPECT_DOUBLE_EQ(att.published, 1237.0);
  const moesim::Json a = moesim::read_json_file(kSrc + "/scenarios/catalog/calibrations/h800-sxm.json")
                             .at("models")
                             .at("attention");
  const double scores = 4096.0 * 4096 * 128 / 2, flops = 2 * scores * (192 + 128);
  const double t = a.at("fixed_s").get<double>() + (flops / a.at("rate_flops_per_s").get<double>() +
                                                    scores * a.at("s_per_score").get<double>() +
                                                    4096.0 * 128 * a.at("s_per_query_row").get<double>()) *
                                                       132.0 / 112.0;
  EXPECT_NEAR(att.analytic, t * 1e6, 1e-6);
  // The categories partition a layer: F gemm + attention + other, B gemm + attention, B and W other, W gemm
  // (no attention in W) make the layer's total.
  double parts = 0;
  for (const char* n : {"dsv3-trace-forward-gemm", "dsv3-trace-forward-attention", "dsv3-trace-forward-other",
                        "dsv3-trace-input-grad-gemm", "dsv3-trace-input-grad-attention",
                        "dsv3-trace-backward-other", "dsv3-trace-weight-grad-gemm"})
    parts += find_row(rows, n).analytic;
  EXPECT_NEAR(find_row(rows, "dsv3-trace-layer-total").analytic, parts, 1e-6 * parts);
  // The pair row is a DualPipe pair of two four-MoE-layer chunks, as traced: rank 0 runs stage 0 (the
  // embedding and the three dense layers) and stage 15 (the head), so rank 1 is the first whose stages (1
  // and 14) hold four MoE layers each; the row is the mean of its two kinds of pair.
  const moesim::Scenario s =
      moesim::load_scenario(kValidation + "/deepseek-v3-2048xH800-fp8.json", catalog());
  const auto cm = moesim::models::make_compute_cost_model(s);
  const moesim::models::NetworkModel net(s.cluster);
  const moesim::models::Workload w = moesim::models::build_workload(s, *cm, net);
  ASSERT_EQ(w.ranks.size(), 16u);
  EXPECT_TRUE(w.ranks[0].embedding);
  EXPECT_TRUE(w.ranks[15].head);
  for (int stage : {1, 14}) {
    const moesim::models::RankWork& rw = w.ranks[static_cast<std::size_t>(stage)];
    EXPECT_FALSE(rw.embedding || rw.head);
    ASSERT_EQ(rw.blocks.size(), 4u) << "stage " << stage;
    for (int b : rw.blocks)
      EXPECT_GE(w.blocks[static_cast<std::size_t>(b)].moe_index, 0) << "stage " << stage;
  }
  const double pair = 0.5 * (moesim::models::overlapped_pair_seconds(w, 1, 14) +
                             moesim::models::overlapped_pair_seconds(w, 14, 1));
  EXPECT_GT(pair, 0);
  EXPECT_NEAR(find_row(rows, "dsv3-trace-overlapped-pair").analytic, pair * 1e6, 1e-9 * pair * 1e6);
}

// The analytic engine's DualPipe phases on DeepSeek-V3 (PP16, 120 microbatches) count rank 0's chunks as
// deepseek-ai/DualPipe's step() issues them (half_rank 0, 8 half ranks): lone forwards 2·7 + 1 of stage 0
// (steps 1 and 2) and 1 + 7 of stage 15 (steps 2 and 3); lone backwards 7 input-only of stage 15 (step 3,
// zero bubble), 7 + 1 full of stage 15 (steps 5 and 6), 1 + 7 input-only of stage 0 (steps 6 and 7); the
// deferred weight chunks of those 15 input-only backwards; 120 - 23 = 97 overlapped pairs. Each chunk at its
// own stage's price (uniform routing: a weight chunk run alone saves nothing).
TEST(AccuracyUnit, DeepSeekDualPipePhasesCountTheReferenceChunks) {
  const moesim::Scenario s =
      moesim::load_scenario(kValidation + "/deepseek-v3-2048xH800-fp8.json", catalog());
  const auto cm = moesim::models::make_compute_cost_model(s);
  const moesim::models::NetworkModel net(s.cluster);
  const moesim::models::Workload w = moesim::models::build_workload(s, *cm, net);
  const moesim::models::Result r = moesim::models::evaluate_analytic(s, w);
  ASSERT_EQ(s.layout.microbatches, 120);
  EXPECT_EQ(r.critical_rank, 0);
  EXPECT_EQ(r.phases.lone_f, 23);
  EXPECT_EQ(r.phases.lone_b, 23);
  EXPECT_EQ(r.phases.pairs, 97);
  const auto& s0 = w.ranks[0].pass;
  const auto& s15 = w.ranks[15].pass;
  const double f0 = s0[0].alone(), b0 = s0[1].alone(), w0 = s0[2].alone();
  const double f15 = s15[0].alone(), b15 = s15[1].alone(), w15 = s15[2].alone();
  EXPECT_NEAR(r.phases.forward_only, 15 * f0 + 8 * f15, 1e-9);
  EXPECT_NEAR(r.phases.backward_only, 7 * b15 + 8 * (b15 + w15) + 8 * b0, 1e-9);
  EXPECT_NEAR(r.phases.weight_only, 7 * w15 + 8 * w0, 1e-9);
  // Rank 0's pairs: step 4 runs 60 - 16 + 1 = 45 iterations of both kinds (stage 0's forward beside stage
  // 15's backward, then stage 15's forward beside stage 0's backward), step 5 seven more of the second
  // kind: 45 + 52 = 97.
  const double p0 = moesim::models::overlapped_pair_seconds(w, 0, 15);
  const double p15 = moesim::models::overlapped_pair_seconds(w, 15, 0);
  EXPECT_NEAR(r.phases.steady, 45 * p0 + 52 * p15, 1e-9);
}

TEST(AccuracyUnit, TraceRowNamesItsBadField) {
  const fs::path root = fs::temp_directory_path() / ("moesim_trace_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "kernels");
  fs::copy_file(kValidation + "/deepseek-v3-2048xH800-fp8.json", root / "s.json");
  const std::string head = "name,scenario,pass,category,published_us,source\n";
  const auto message = [&](const std::string& row) {
    std::ofstream(root / "kernels" / "t.csv") << head << row;
    try {
      moesim::reports::kernel_rows((root / "kernels").string(), catalog());
    } catch (const moesim::ParseError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message("x,s.json,FX,gemm,1,src\n").find("line 2, column pass"), std::string::npos);
  EXPECT_NE(message("x,s.json,F,gemms,1,src\n")
                .find("line 2, column category: expected gemm, attention, "
                      "other, all or pair"),
            std::string::npos);
  EXPECT_NE(message("x,none.json,F,gemm,1,src\n").find("line 2, column scenario"), std::string::npos);
  EXPECT_EQ(message("x,s.json,F,gemm,1,src\n"), "accepted");
  fs::remove_all(root);
}

TEST(AccuracyUnit, MalformedKernelFileIsNamedWithLineAndColumn) {
  const std::string dir =
      kernel_dir_with("g.csv",
                      "# comment\nname,gpu,table,groups,m_per_group,n,k,published_tflops,source\n"
                      "x,catalog:h800-sxm,dense,1,64,2112,seven,206,src\n");
  try {
    moesim::reports::kernel_rows(dir, catalog());
    FAIL() << "a malformed number was accepted";
  } catch (const moesim::ParseError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("g.csv"), std::string::npos) << m;
    EXPECT_NE(m.find("line 3, column k"), std::string::npos) << m;
    EXPECT_NE(m.find("expected a number"), std::string::npos) << m;
    EXPECT_NE(m.find("found \"seven\""), std::string::npos) << m;
  }
  fs::remove_all(dir);
}

TEST(AccuracyUnit, UnknownKernelFileKindIsRefused) {
  const std::string dir = kernel_dir_with("u.csv", "name,what\nx,y\n");
  EXPECT_THROW(moesim::reports::kernel_rows(dir, catalog()), moesim::ParseError);
  fs::remove_all(dir);
}

// The whole suite through the binary, both engines, held to the recorded per-row bounds.
TEST(AccuracyGuard, EveryRowWithinItsRecordedBound) {
  const std::string cmd =
      std::string(MOESIM_BINARY) + " accuracy " + kValidation + " --engine both --format json 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string text;
  char buf[4096];
  for (std::size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) text.append(buf, n);
  ASSERT_EQ(pclose(p), 0) << cmd;
  const Json out = Json::parse(text);
  const Json guards = moesim::read_json_file(kValidation + "/bounds/guards.json").at("rows");

  std::set<std::string> seen;
  for (const auto& row : out.at("rows")) {
    const std::string id = row.at("group").get<std::string>() + "/" + row.at("name").get<std::string>() +
                           "/" + row.at("quantity").get<std::string>();
    SCOPED_TRACE(id);
    seen.insert(id);
    ASSERT_TRUE(guards.contains(id)) << "no bound recorded (tools/accuracy_guards.py writes them)";
    const Json& g = guards.at(id);
    for (const char* engine : {"analytic", "des"}) {
      if (!g.contains(engine)) continue;
      const Json& e = row.at(engine);
      if (g.at(engine).at("ok").get<bool>()) {
        EXPECT_TRUE(e.at("ok").get<bool>()) << engine << ": " << e.value("note", "");
      }
      ASSERT_FALSE(e.at("error").is_null()) << engine << ": no prediction";
      EXPECT_LE(std::fabs(e.at("error").get<double>()), g.at(engine).at("bound").get<double>())
          << engine << ": predicted " << e.at("predicted") << " against published " << row.at("published");
    }
  }
  for (auto it = guards.begin(); it != guards.end(); ++it)
    EXPECT_TRUE(seen.count(it.key())) << it.key() << ": recorded but no longer produced";
}
