// Per-op output (models/op_table.hpp, reports/ops.hpp): what `moesim run --ops` prints and ops.csv holds,
// checked against counts and FLOPs worked out by hand.
//
// Scenario: tests/data/des/nvl-moe-16xB200.json: 16 MoE layers, hidden 2048, MHA 16 heads of 128, 16
// experts top-2 with SwiGLU FFN 2048, 16 B200 (the H100 calibration carried by datasheet ratios), PP4 (4
// blocks per stage), EP4, TP1, CP1, so DP = 16 / 4 = 4; seq 4096, mbs 1, global batch 64, BF16.
//   microbatches per pipeline M = 64 / (1 · 4) = 16: every block op runs 16 times per step;
//   attn.qkv: m = 4096 tokens, n = (16 + 16) · 128 + 16 · 128 = 6144, k = 2048:
//     2 · 4096 · 6144 · 2048 = 103,079,215,104 FLOPs per execution;
//   moe.expert_up on the busiest GPU: 4 EP ranks × 4096 tokens × top-2 / 16 experts = 2048 rows per
//     expert, 4 experts per GPU = 8192 rows; n = 2 · 2048 (gate and up), k = 2048:
//     2 · 8192 · 4096 · 2048 = 137,438,953,472 FLOPs.

#include "models/op_table.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <string>

#include "calibrate/calibration.hpp"
#include "models/block_pricing.hpp"
#include "models/routing_source.hpp"
#include "reports/ops.hpp"
#include "scenarios/catalog.hpp"
#include "scenarios/json_reader.hpp"
#include "scenarios/loader.hpp"

namespace moesim::models {
namespace {

const Catalog& catalog() {
  static const Catalog c({std::string(MOESIM_SOURCE_DIR) + "/scenarios/catalog"});
  return c;
}

Scenario scenario(const Json& patch = Json::object()) {
  const std::string file = std::string(MOESIM_TEST_DATA) + "/des/nvl-moe-16xB200.json";
  Json j = read_json_file(file);
  j.erase("variants");
  for (auto it = patch.begin(); it != patch.end(); ++it) j[Json::json_pointer(it.key())] = it.value();
  return scenario_from_json(j, file, catalog());
}

std::vector<OpRow> rows_of(const Scenario& s) {
  return op_rows(s, routing_input(s));
}

// The activation bytes rank 1 (4 MoE blocks) keeps for one microbatch's backward, with `patch` applied.
double saved(const Json& patch) {
  const Scenario s = scenario(patch);
  const auto cm = make_compute_cost_model(s);
  const NetworkModel net(s.cluster);
  return build_workload(s, *cm, net).ranks[1].activation_bytes;
}

TEST(OpTable, CountsAndFlopsByHand) {
  const Scenario s = scenario();
  const std::vector<OpRow> rows = rows_of(s);
  int qkv_forward = 0, up_forward = 0;
  for (const OpRow& r : rows) {
    EXPECT_DOUBLE_EQ(r.count, 16.0) << r.name;
    if (r.name == "attn.qkv" && r.pass == Pass::kForward) {
      ++qkv_forward;
      EXPECT_DOUBLE_EQ(r.flops, 103079215104.0);
      EXPECT_EQ(r.kind, OpKind::kGemm);
      EXPECT_EQ(r.bytes, 0.0);
      EXPECT_EQ(r.layer / 4, r.pp_rank) << "4 consecutive blocks per stage";
    }
    if (r.name == "moe.expert_up" && r.pass == Pass::kForward) {
      ++up_forward;
      EXPECT_DOUBLE_EQ(r.flops, 137438953472.0);
      EXPECT_EQ(r.kind, OpKind::kGroupedGemm);
    }
  }
  EXPECT_EQ(qkv_forward, 16);  // one per block, every block on one rank
  EXPECT_EQ(up_forward, 16);
}

// Selective recomputation by module (Megatron-Core's --recompute-modules), against the shapes of the file
// header: the busiest GPU's 8192 expert rows, expert FFN 2048, SwiGLU, BF16, 4 MoE blocks per stage.
//   moe.expert_act moves rows · f · 2 bytes · 3 (gate and up read, output written) = 100,663,296 bytes;
//   dropping its output saves rows · f · 2 bytes = 33,554,432 per block, 134,217,728 per stage;
//   layernorm drops the two norm outputs, 2 · 4096 · 2048 · 2 bytes = 33,554,432 per block.
std::vector<OpRow> recomputed(const std::vector<OpRow>& rows, int rank) {
  std::vector<OpRow> out;
  for (const OpRow& r : rows)
    if (r.pp_rank == rank && r.recompute) out.push_back(r);
  return out;
}

double forward_seconds(const std::vector<OpRow>& rows, const std::string& name, int rank) {
  for (const OpRow& r : rows)
    if (r.pp_rank == rank && r.name == name && r.pass == Pass::kForward && !r.recompute) return r.seconds;
  return -1;
}

TEST(OpTable, SelectiveRecomputeRerunsTheNamedModules) {
  // The default module list: the attention core only, once per block, priced as its forward.
  const std::vector<OpRow> core = rows_of(scenario({{"/parallelism/recompute", "selective"}}));
  const auto core_rc = recomputed(core, 1);
  ASSERT_EQ(core_rc.size(), 4u);
  for (const OpRow& r : core_rc) {
    EXPECT_EQ(r.name, "attn.core.recompute");
    EXPECT_EQ(r.pass, Pass::kBackwardInput);
    EXPECT_DOUBLE_EQ(r.seconds, forward_seconds(core, "attn.core", 1));
  }
  // moe_act: the experts' SwiGLU again in the backward, nothing else.
  const std::vector<OpRow> act = rows_of(
      scenario({{"/parallelism/recompute", "selective"}, {"/parallelism/recompute_modules", {"moe_act"}}}));
  const auto act_rc = recomputed(act, 1);
  ASSERT_EQ(act_rc.size(), 4u);
  for (const OpRow& r : act_rc) {
    EXPECT_EQ(r.name, "moe.expert_act");
    EXPECT_DOUBLE_EQ(r.bytes, 8192.0 * 2048 * 2 * 3);
    EXPECT_DOUBLE_EQ(r.seconds, forward_seconds(act, "moe.expert_act", 1));
  }
  // moe: the whole MoE layer, its dispatch and combine included.
  const std::vector<OpRow> moe = rows_of(
      scenario({{"/parallelism/recompute", "selective"}, {"/parallelism/recompute_modules", {"moe"}}}));
  int up = 0, dispatch = 0, combine = 0, attention = 0;
  for (const OpRow& r : recomputed(moe, 1)) {
    if (r.name == "moe.expert_up") {
      ++up;
      EXPECT_DOUBLE_EQ(r.flops, 137438953472.0);
    }
    dispatch += r.name == "moe.dispatch.recompute";
    combine += r.name == "moe.combine.recompute";
    attention += r.name.rfind("attn.", 0) == 0;
  }
  EXPECT_EQ(up, 4);
  EXPECT_EQ(dispatch, 4);
  EXPECT_EQ(combine, 4);
  EXPECT_EQ(attention, 0);
  // Recompute is not what "none" or "full" read: the list is ignored there.
  const std::vector<OpRow> none = rows_of(scenario({{"/parallelism/recompute_modules", {"moe"}}}));
  EXPECT_TRUE(recomputed(none, 1).empty());
}

TEST(OpTable, SelectiveRecomputeDropsTheModulesActivations) {
  const double core = saved({{"/parallelism/recompute", "selective"}});
  const double none = saved({{"/parallelism/recompute", "none"}});
  EXPECT_DOUBLE_EQ(core, none) << "fused attention keeps nothing the core recompute could drop";
  const double act =
      saved({{"/parallelism/recompute", "selective"}, {"/parallelism/recompute_modules", {"moe_act"}}});
  EXPECT_DOUBLE_EQ(none - act, 4 * 8192.0 * 2048 * 2);
  const double ln =
      saved({{"/parallelism/recompute", "selective"}, {"/parallelism/recompute_modules", {"layernorm"}}});
  EXPECT_DOUBLE_EQ(none - ln, 4 * 2 * 4096.0 * 2048 * 2);
}

// What the routed experts keep for the backward, as Megatron-Core's TEGroupedMLP keeps it (rows = 8192 on
// the busiest GPU, f = 2048, h = 2048, 4 MoE blocks on rank 1): FC1's input in its GEMM's precision, the
// SwiGLU's input (2·f per row) in BF16 unless activation_fp8_input_store keeps it in FP8, and FC2's
// input (f per row) in its GEMM's precision unless "moe_act" recomputes it. FP8 alone recomputes
// nothing; offloading drops the offloaded inputs from the GPU.
TEST(OpTable, ExpertActivationsKeptAsMegatronCoreKeepsThem) {
  const double blocks = 4, rows = 8192, f = 2048, h = 2048;
  const Json fp8 = {{"/workload/precision", "fp8"}};
  // FP8 without moe_act: no expert op rerun in the backward.
  for (const OpRow& r : recomputed(rows_of(scenario(fp8)), 1)) EXPECT_NE(r.name, "moe.expert_act");
  const double kept = saved(fp8);
  Json store = fp8;
  store["/workload/activation_fp8_input_store"] = true;
  EXPECT_DOUBLE_EQ(kept - saved(store), blocks * rows * 2 * f * (2 - 1));
  Json act = fp8;
  act["/parallelism/recompute"] = "selective";
  act["/parallelism/recompute_modules"] = {"moe_act"};
  EXPECT_DOUBLE_EQ(kept - saved(act), blocks * rows * f * 1);  // FC2's FP8 input, recomputed instead
  Json fc1 = fp8;
  fc1["/parallelism/offload_modules"] = {"expert_fc1"};
  EXPECT_DOUBLE_EQ(kept - saved(fc1), blocks * rows * h * 1);  // FC1's FP8 input in host memory
  Json both = store;
  both["/parallelism/offload_modules"] = {"moe_act", "expert_fc1"};
  EXPECT_DOUBLE_EQ(saved(store) - saved(both), blocks * rows * (h * 1 + 2 * f * 1));
  // BF16: FC2's input 2 bytes.
  const double bf16 = saved(Json::object());
  Json bf16_act = {{"/parallelism/recompute", "selective"}, {"/parallelism/recompute_modules", {"moe_act"}}};
  EXPECT_DOUBLE_EQ(bf16 - saved(bf16_act), blocks * rows * f * 2);
}

// The norm outputs a block keeps, what "layernorm" recompute drops: the attention norm's, fused with the
// QKV projection (Transformer Engine's LayerNormLinear keeps the local sequence shard under sequence
// parallelism and gathers it again in the backward; an FP8 projection keeps its FP8 copy), and the MoE
// norm's, the router's BF16 input (a shard of the sequence as well: the MoE layer runs on it). 4 blocks
// on rank 1, hidden 2048, 4096 tokens.
TEST(OpTable, NormOutputsKeptAsTransformerEngineKeepsThem) {
  const auto dropped = [](const Json& patch) {
    Json ln = patch;
    ln["/parallelism/recompute"] = "selective";
    ln["/parallelism/recompute_modules"] = {"layernorm"};
    Json none = patch;
    none["/parallelism/recompute"] = "none";
    return saved(none) - saved(ln);
  };
  const double h = 2048;
  // TP1, BF16: both outputs whole, 2 bytes.
  EXPECT_DOUBLE_EQ(dropped(Json::object()), 4 * (4096 * h * 2 + 4096 * h * 2));
  // TP2 with sequence parallelism: 2048 tokens each.
  EXPECT_DOUBLE_EQ(dropped({{"/parallelism/attention/tp", 2}}), 4 * (2048 * h * 2 + 2048 * h * 2));
  // FP8: the QKV projection's input in 1 byte, the router's still in 2.
  EXPECT_DOUBLE_EQ(dropped({{"/workload/precision", "fp8"}}), 4 * (4096 * h * 1 + 4096 * h * 2));
}

// Full recomputation by layer count (Megatron-Core --recompute-method, --recompute-num-layers), 4 blocks
// per stage: "block" with 1 reruns the first block of each stage only, so rank 1 has 1 block's recompute
// ops where full uniform has 4, and keeps 3 blocks' activations whole plus 1 block's inputs; "uniform" with 2
// reruns every block and keeps one block's inputs per group of 2 (2 per stage instead of 4).
TEST(OpTable, FullRecomputeByLayerCount) {
  const auto workload = [](const Json& patch) {
    const Scenario s = scenario(patch);
    const auto cm = make_compute_cost_model(s);
    const NetworkModel net(s.cluster);
    return build_workload(s, *cm, net);
  };
  const auto qkv_reruns = [](const Json& patch) {
    int n = 0;
    for (const OpRow& r : rows_of(scenario(patch)))
      n += r.pp_rank == 1 && r.recompute && r.name == "attn.qkv";
    return n;
  };
  const Json full = {{"/parallelism/recompute", "full"}};
  const Json block1 = {{"/parallelism/recompute", "full"},
                       {"/parallelism/recompute_method", "block"},
                       {"/parallelism/recompute_num_layers", 1}};
  const Json uniform2 = {{"/parallelism/recompute", "full"},
                         {"/parallelism/recompute_method", "uniform"},
                         {"/parallelism/recompute_num_layers", 2}};
  EXPECT_EQ(qkv_reruns(full), 4);
  EXPECT_EQ(qkv_reruns(block1), 1);
  EXPECT_EQ(qkv_reruns(uniform2), 4);
  const Workload w_full = workload(full), w_none = workload({{"/parallelism/recompute", "none"}});
  const Workload w_block = workload(block1), w_uniform = workload(uniform2);
  // What a rerun block keeps: its input and its MoE sub-block's, each 4096 tokens × hidden 2048 × 2 bytes.
  const double input = 2 * 4096.0 * 2048 * 2;
  EXPECT_DOUBLE_EQ(w_full.ranks[1].activation_bytes, 4 * input);
  EXPECT_DOUBLE_EQ(w_uniform.ranks[1].activation_bytes, 2 * input);
  EXPECT_DOUBLE_EQ(w_block.ranks[1].activation_bytes, input + 3 * w_none.ranks[1].activation_bytes / 4);
  // Backward compute: block 1 adds one block's rerun to no recompute, a quarter of what full adds.
  const double rerun_all = w_full.ranks[1].pass[1].compute - w_none.ranks[1].pass[1].compute;
  EXPECT_GT(rerun_all, 0);
  EXPECT_NEAR(w_block.ranks[1].pass[1].compute - w_none.ranks[1].pass[1].compute, rerun_all / 4,
              1e-9 * rerun_all);
  EXPECT_DOUBLE_EQ(w_uniform.ranks[1].pass[1].compute, w_full.ranks[1].pass[1].compute);
  // Unset, the layer count changes nothing: uniform with 1 is full recomputation as before.
  const Workload w_uniform1 =
      workload({{"/parallelism/recompute", "full"}, {"/parallelism/recompute_num_layers", 1}});
  EXPECT_DOUBLE_EQ(w_uniform1.ranks[1].activation_bytes, w_full.ranks[1].activation_bytes);
  EXPECT_DOUBLE_EQ(w_uniform1.ranks[1].pass[1].compute, w_full.ranks[1].pass[1].compute);
}

// FP8 training with the first and last decoder layers in BF16 (Megatron-Core --first-last-layers-bf16):
// layers 0 and 15 of the 16 price their GEMMs at BF16 and quantize nothing; layers 1-14 are FP8.
TEST(OpTable, Fp8WithFirstAndLastLayersInBf16) {
  const Scenario s = scenario({{"/workload/precision", "fp8"},
                               {"/workload/bf16_layers_at_start", 1},
                               {"/workload/bf16_layers_at_end", 1}});
  std::map<int, int> quantize;
  std::map<int, std::string> qkv;
  for (const OpRow& r : rows_of(s)) {
    if (r.name == "fp8.quantize") ++quantize[r.layer];
    if (r.name == "attn.qkv" && r.pass == Pass::kForward) qkv[r.layer] = r.priced_by;
  }
  ASSERT_EQ(qkv.size(), 16u);
  for (int l = 0; l < 16; ++l) {
    const bool bf16 = l == 0 || l == 15;
    EXPECT_EQ(quantize.count(l), bf16 ? 0u : 1u) << "layer " << l;
    EXPECT_NE(qkv[l].find(bf16 ? "precisions/bf16" : "precisions/fp8"), std::string::npos) << qkv[l];
  }
  // Unset, every layer is FP8.
  int all = 0;
  for (const OpRow& r : rows_of(scenario({{"/workload/precision", "fp8"}})))
    all += r.name == "attn.qkv" && r.pass == Pass::kForward &&
           r.priced_by.find("precisions/fp8") != std::string::npos;
  EXPECT_EQ(all, 16);
}

// A pipeline layout decides the blocks of each rank: "Et*7|t*3|t*3|t*3L" puts 7 of the 16 blocks on
// rank 0 and 3 on each other rank; the per-rank op rows follow, and the ranks' compute sums with them.
TEST(OpTable, PipelineLayoutPlacesTheBlocks) {
  const Scenario s = scenario({{"/parallelism/pipeline_layout", "Et*7|t*3|t*3|t*3L"}});
  const std::vector<OpRow> rows = rows_of(s);
  int qkv[4] = {0, 0, 0, 0};
  for (const OpRow& r : rows)
    if (r.name == "attn.qkv" && r.pass == Pass::kForward) ++qkv[r.pp_rank];
  EXPECT_EQ(qkv[0], 7);
  EXPECT_EQ(qkv[1], 3);
  EXPECT_EQ(qkv[2], 3);
  EXPECT_EQ(qkv[3], 3);
  const auto cm = make_compute_cost_model(s);
  const NetworkModel net(s.cluster);
  const Workload w = build_workload(s, *cm, net);
  const Workload even = build_workload(scenario(), *cm, net);
  // Rank 0 has its 4 blocks of the even split plus 3 more, each priced alike (same shapes, balanced).
  const double block = even.ranks[1].pass[0].compute / 4;
  EXPECT_NEAR(w.ranks[0].pass[0].compute - even.ranks[0].pass[0].compute, 3 * block, 1e-12 * block);
}

// FP8 current scaling (workload.fp8_recipe "current") adds an amax pass before each activation and
// gradient cast: for attn.qkv (m 4096, n 6144, k 2048) 2·m·k = 16,777,216 bytes read in forward and
// 2·m·n = 50,331,648 in backward; the blockwise recipe computes its scales inside the cast and adds none.
TEST(OpTable, CurrentScalingAddsAnAmaxPassPerCast) {
  const auto amax_rows = [](const std::vector<OpRow>& rows) {
    std::vector<OpRow> out;
    for (const OpRow& r : rows)
      if (r.name == "fp8.amax" && r.pp_rank == 0) out.push_back(r);
    return out;
  };
  const std::vector<OpRow> block = rows_of(scenario({{"/workload/precision", "fp8"}}));
  EXPECT_TRUE(amax_rows(block).empty());
  const std::vector<OpRow> current =
      rows_of(scenario({{"/workload/precision", "fp8"}, {"/workload/fp8_recipe", "current"}}));
  const auto rows = amax_rows(current);
  ASSERT_FALSE(rows.empty());
  bool f = false, b = false;
  for (const OpRow& r : rows) {
    EXPECT_NE(r.pass, Pass::kBackwardWeight);
    f = f || (r.pass == Pass::kForward && r.bytes == 2.0 * 4096 * 2048);
    b = b || (r.pass == Pass::kBackwardInput && r.bytes == 2.0 * 4096 * 6144);
  }
  EXPECT_TRUE(f);
  EXPECT_TRUE(b);
}

TEST(OpTable, EmbeddingOnFirstStageHeadOnLast) {
  const std::vector<OpRow> rows = rows_of(scenario());
  int embedding = 0, head = 0;
  for (const OpRow& r : rows) {
    if (r.block == "embedding") {
      ++embedding;
      EXPECT_EQ(r.pp_rank, 0);
    }
    if (r.block == "head") {
      ++head;
      EXPECT_EQ(r.pp_rank, 3);
      // Head GEMM: 2 · 4096 tokens · vocab 1024 · hidden 2048 per pass.
      EXPECT_DOUBLE_EQ(r.flops, 2.0 * 4096 * 1024 * 2048);
    }
  }
  EXPECT_EQ(embedding, 3);  // F, B, W
  EXPECT_EQ(head, 3);
}

// Every compute and memory-bound op of a rank, times its count, adds up to the rank's compute per
// microbatch (the engines' sum) times the microbatches.
TEST(OpTable, RowsAddUpToTheRanksCompute) {
  const Scenario s = scenario();
  const auto cm = make_compute_cost_model(s);
  const NetworkModel net(s.cluster);
  const Workload w = build_workload(s, *cm, net);
  const std::vector<OpRow> rows = op_rows(s, w, *cm, net);
  for (int rank = 0; rank < 4; ++rank) {
    double sum = 0;
    for (const OpRow& r : rows)
      if (r.pp_rank == rank && r.kind != OpKind::kComm) sum += r.count * r.seconds;
    const RankWork& rw = w.ranks[rank];
    const double expected = 16 * (rw.pass[0].compute + rw.pass[1].compute + rw.pass[2].compute);
    EXPECT_NEAR(sum, expected, 1e-12 * expected) << "rank " << rank;
  }
}

// A GPU without a calibration (the A100: no kernel table, and no Hopper figures carry over to it) is
// priced by the roofline of its catalog entry, and every row says so.
TEST(OpTable, PricedByNamesTheRooflineParameters) {
  const Scenario s = scenario({{"/cluster/gpu", "catalog:a100-80gb"}});
  for (const OpRow& r : rows_of(s)) {
    if (r.kind == OpKind::kComm) {
      EXPECT_EQ(r.priced_by.rfind("network ", 0), 0u) << r.priced_by;
      continue;
    }
    EXPECT_EQ(r.priced_by.rfind("roofline:" + s.cluster.gpu.name, 0), 0u) << r.priced_by;
    if (r.kind == OpKind::kGemm || r.kind == OpKind::kGroupedGemm) {
      std::ostringstream eff;
      eff << "gemm_efficiency_bf16=" << s.cluster.gpu.gemm_efficiency_bf16;
      EXPECT_NE(r.priced_by.find(eff.str()), std::string::npos) << r.priced_by;
    }
  }
}

// On an H100 in FP8 the GPU's default calibration prices the expert GEMMs: the row names its entry.
TEST(OpTable, PricedByNamesTheCalibrationEntry) {
  const Scenario s = scenario({{"/cluster/gpu", "catalog:h100-sxm"}, {"/workload/precision", "fp8"}});
  bool seen = false;
  for (const OpRow& r : rows_of(s)) {
    if (r.name != "moe.expert_up") continue;
    seen = true;
    EXPECT_NE(r.priced_by.find("/models/grouped_gemm/precisions/fp8"), std::string::npos) << r.priced_by;
  }
  EXPECT_TRUE(seen);
}

// The MoE block's memory-bound ops are priced by their own kernel family of the H100 calibration, at the
// bytes worked out by hand (4096 tokens, top-2 of 16 experts, h = 2048, expert FFN 2048, 8192 rows on the
// busiest GPU): router 4·4096·16 + 8·4096·2 = 327,680; permute 2·4096·2·2048·2 = 67,108,864; SwiGLU
// 3·8192·2048·2 = 100,663,296; un-permute and weighted sum 4096·2·2048·2 + 4096·2048·4 = 67,108,864.
TEST(OpTable, MoeMemoryOpsArePricedByTheirKernelFamily) {
  const Scenario s = scenario({{"/cluster/gpu", "catalog:h100-sxm"}});
  const calibrate::Calibration c = calibrate::read_calibration(
      std::string(MOESIM_SOURCE_DIR) + "/scenarios/catalog/calibrations/h100-sxm.json");
  struct Want {
    const char* op;
    calibrate::KernelFamily family;
    double bytes;
  };
  const Want wants[] = {{"moe.topk", calibrate::KernelFamily::kRouter, 327680.0},
                        {"moe.permute", calibrate::KernelFamily::kPermute, 67108864.0},
                        {"moe.expert_act", calibrate::KernelFamily::kSwiglu, 100663296.0},
                        {"moe.unpermute_combine", calibrate::KernelFamily::kCombine, 67108864.0},
                        {"moe.norm", calibrate::KernelFamily::kCopy, 4096.0 * 2048 * 2 * 2}};
  int seen = 0;
  for (const OpRow& r : rows_of(s)) {
    if (r.pass != Pass::kForward || r.layer != 0) continue;
    for (const Want& w : wants) {
      if (r.name != w.op) continue;
      ++seen;
      EXPECT_DOUBLE_EQ(r.bytes, w.bytes) << w.op;
      const double want = c.model(w.family)->stream.time(w.bytes);
      EXPECT_NEAR(r.seconds, want, 1e-12 * want) << w.op;
      EXPECT_EQ(r.priced_by, std::string("h100-sxm.json /models/") + calibrate::to_string(w.family)) << w.op;
    }
  }
  EXPECT_EQ(seen, 5);
}

// DualPipe: a rank holds stage r and stage pp-1-r, each for half the microbatches.
TEST(OpTable, DualPipeHalvesTheCountsOverTwoStages) {
  const Scenario s = scenario({{"/parallelism/schedule", "dualpipe"}});
  const std::vector<OpRow> rows = rows_of(s);
  bool own = false, mirror = false;
  for (const OpRow& r : rows) {
    EXPECT_DOUBLE_EQ(r.count, 8.0) << r.name;
    if (r.pp_rank != 0) continue;
    EXPECT_TRUE(r.stage == 0 || r.stage == 3) << r.stage;
    own |= r.stage == 0;
    mirror |= r.stage == 3;
  }
  EXPECT_TRUE(own);
  EXPECT_TRUE(mirror);
}

TEST(OpsCsv, OneLinePerRowAndQuotedFields) {
  OpRow r;
  r.name = "attn.qkv";
  r.block = "moe";
  r.layer = 2;
  r.count = 16;
  r.flops = 1e11;
  r.seconds = 2e-4;
  r.priced_by = "entry, with a comma and \"quotes\"";
  std::ostringstream out;
  reports::write_ops_csv(out, {r, r});
  const std::string text = out.str();
  EXPECT_EQ(text.rfind("pp_rank,stage,layer,block,op,pass,kind,recompute,count,flops,bytes,seconds,"
                       "total_seconds,priced_by\n",
                       0),
            0u);
  EXPECT_NE(text.find("0,0,2,moe,attn.qkv,F,gemm,0,16,1e+11,0,0.0002,0.0032,"
                      "\"entry, with a comma and \"\"quotes\"\"\"\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
}

}  // namespace
}  // namespace moesim::models
