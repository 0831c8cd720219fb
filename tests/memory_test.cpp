// The analytic engine's memory model and step-time bookkeeping (models/analytic.cpp) on small inline
// scenarios whose parameter counts are worked out by hand:
//   weights 2 B per parameter held by the rank (ZeRO-3: sharded over data parallelism),
//   FP32 master 4 B / dp, gradients 4 B (FP32; ZeRO-2 shards them), Adam moments 2 × 4 B / dp
//   (ZeRO-1, Rajbhandari et al. 2020), experts sharded over the expert-data-parallel group instead.
// Plus: an impossible layout is reported infeasible with a message in GiB, results are bit-for-bit
// deterministic, and the breakdown sums to the step time.

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "models/analytic.hpp"
#include "models/compute_cost.hpp"
#include "models/network.hpp"
#include "models/result.hpp"
#include "models/workload.hpp"
#include "scenarios/catalog.hpp"
#include "scenarios/loader.hpp"

namespace moesim {
namespace {

using models::evaluate_analytic;
using models::Result;

Catalog catalog() {
  return Catalog({std::string(MOESIM_SOURCE_DIR) + "/scenarios/catalog"});
}

// A small dense GQA model:
//   attention: Wq 1024·16·64 = 1,048,576; Wk + Wv 2·1024·4·64 = 524,288; Wo 16·64·1024 = 1,048,576
//              → 2,621,440 per layer
//   norms 2·1024 = 2,048; SwiGLU FFN 3·1024·4096 = 12,582,912
//   per layer 15,206,400; 4 layers 60,825,600; embedding and head 32000·1024 = 32,768,000 each.
// A dense GQA model with a SwiGLU FFN.
Json dense_gqa(const char* name, int layers, int hidden, int vocab, int ffn, int heads, int kv_heads,
               int head_dim) {
  return Json{
      {"name", name},
      {"layers", layers},
      {"hidden", hidden},
      {"vocab", vocab},
      {"dense_ffn", ffn},
      {"attention", {{"kind", "gqa"}, {"heads", heads}, {"kv_heads", kv_heads}, {"head_dim", head_dim}}}};
}
Json dense_model() {
  return dense_gqa("dense-small", 4, 1024, 32000, 4096, 16, 4, 64);
}
constexpr double kDenseLayer = 2621440.0 + 2048.0 + 12582912.0;
constexpr double kEmb = 32000.0 * 1024;
// Parameters on the only pipeline rank with tp 1: 4 layers + embedding + head + the final RMSNorm
// (1024) = 126,362,624.
constexpr double kDenseRank = 4 * kDenseLayer + 2 * kEmb + 1024;

// The same with 8 routed experts of width 1024, top-2, instead of the dense FFN:
//   per layer attention 2,621,440 + norms 2,048 + router 1024·8 = 8,192 → 2,631,680 non-expert;
//   one expert 3·1024·1024 = 3,145,728.
Json moe_model() {
  Json m = dense_model();
  m["name"] = "moe-small";
  m.erase("dense_ffn");
  m["moe"] = {{"experts", 8}, {"top_k", 2}, {"expert_ffn", 1024}};
  return m;
}
constexpr double kMoeNonExpertLayer = 2621440.0 + 2048.0 + 8192.0;
constexpr double kExpert = 3.0 * 1024 * 1024;

Json gpu() {
  return Json{{"name", "test-h100"},
              {"flops_bf16", "989TFlops"},
              {"flops_fp8", "1979TFlops"},
              {"memory", "80GiB"},
              {"memory_bandwidth", "3.35TBps"},
              {"sm_count", 132},
              {"nvlink_bandwidth", "450GBps"}};
}

Json cluster(int nodes, int gpus_per_node) {
  Json c{{"name", "test-cluster"},
         {"gpu", gpu()},
         {"nodes", nodes},
         {"gpus_per_node", gpus_per_node},
         {"scale_up", {{"kind", "nvswitch"}, {"bandwidth", "370GBps"}, {"latency", "3us"}}}};
  if (nodes > 1)
    c["scale_out"] = {{"kind", "fat_tree"}, {"nic_bandwidth", "46GBps"}, {"latency", "3us"}, {"radix", 64}};
  return c;
}

Json scenario_json(const Json& model, int tp = 1, int pp = 1, int ep = 1, int zero = 1,
                   const char* schedule = "1f1b") {
  return Json{{"schema_version", 1},
              {"name", "memory-test"},
              {"model", model},
              {"cluster", cluster(1, 8)},
              {"parallelism",
               {{"attention", {{"tp", tp}, {"cp", 1}}},
                {"experts", {{"ep", ep}, {"etp", 1}}},
                {"pp", pp},
                {"schedule", schedule},
                {"zero", zero},
                {"recompute", "none"},
                {"microbatch_size", 1},
                {"global_batch", 16}}},
              {"workload", {{"kind", "training"}, {"seq_len", 1024}, {"precision", "bf16"}}}};
}

Result eval(const Json& j) {
  return evaluate_analytic(scenario_from_json(j, "memory_test", catalog()));
}

constexpr double kRel = 1e-12;
#define EXPECT_REL(actual, expected) EXPECT_NEAR((actual), (expected), std::abs(expected) * kRel + 1e-9)

TEST(Memory, DenseZero1) {
  // 8 GPUs, tp 1, pp 1 → dp 8. P = 126,361,600 on the rank.
  const Result r = eval(scenario_json(dense_model()));
  const double P = kDenseRank;
  EXPECT_REL(r.memory.weights, 2.0 * P);                   // BF16 weights, replicated
  EXPECT_REL(r.memory.master_weights, 4.0 * P / 8);        // FP32 master, ZeRO-1 sharded over dp 8
  EXPECT_REL(r.memory.gradients, 4.0 * P);                 // FP32 gradients, not sharded under ZeRO-1
  EXPECT_REL(r.memory.optimizer_states, 2 * 4.0 * P / 8);  // Adam m and v in FP32, sharded
  EXPECT_GT(r.memory.activations, 0.0);
  // The total is the sum of its parts and is compared with the 80 GiB capacity.
  const auto& m = r.memory;
  EXPECT_REL(m.total,
             m.weights + m.master_weights + m.gradients + m.optimizer_states + m.activations + m.overhead);
  EXPECT_EQ(m.capacity, 80.0 * 1024 * 1024 * 1024);
  EXPECT_EQ(m.fits, m.total <= m.capacity);
  EXPECT_TRUE(r.feasible);
  EXPECT_TRUE(r.infeasible_reason.empty());
}

// Muon (workload.optimizer "muon", Megatron-Core's dist_muon): one momentum per weight-matrix parameter,
// AdamW's two moments for the embedding and the output head. The dense model above on 8 GPUs (ZeRO-1,
// dp 8): the shard is P / 8 with P = 126,362,624, of which the embedding and head are 2 · 32,768,000 / 8, so
// the states are 4 B · (P + 2 · 32,768,000) / 8, against Adam's 2 · 4 B · P / 8; the rest of the memory
// is the same. The optimizer step moves 2 · 4 B less per matrix parameter (one moment read and written
// instead of two).
TEST(Memory, MuonKeepsOneMomentumPerMatrix) {
  Json j = scenario_json(dense_model());
  const Result adam = eval(j);
  j["workload"]["optimizer"] = "muon";
  const Result muon = eval(j);
  const double P = kDenseRank, eh = 2 * kEmb;
  EXPECT_REL(muon.memory.optimizer_states, 4.0 * (P + eh) / 8);
  EXPECT_REL(adam.memory.optimizer_states, 2 * 4.0 * P / 8);
  EXPECT_REL(muon.memory.weights, adam.memory.weights);
  EXPECT_REL(muon.memory.master_weights, adam.memory.master_weights);
  EXPECT_REL(muon.memory.gradients, adam.memory.gradients);
  EXPECT_REL(muon.memory.activations, adam.memory.activations);
  // Optimizer: Adam reads and writes grad 4, master 2 · 4, m and v 4 · 4, weight 2 bytes per parameter of
  // the shard; Muon the same but one moment for the matrices: 2 · 4 · (P - eh) / 8 bytes less.
  const double bw = 3.35e12 * 0.9;  // the GPU's HBM at the default memory_efficiency
  EXPECT_REL(adam.breakdown.optimizer, P / 8 * (4 + 8 + 16 + 2) / bw);
  // Muon also orthogonalises every weight matrix: five Newton-Schulz steps, each 4·m²·n + 2·m³ FLOPs for
  // an m x n matrix (m the smaller side). Per layer: Wq and Wo 1024 x 1024, Wk and Wv 256 x 1024, fc1
  // (gate and up) 1024 x 8192, fc2 1024 x 4096; four layers, split over the 8 data-parallel GPUs, as BF16
  // GEMMs at 989 TFLOP/s x the default 0.8.
  const auto ns = [](double m, double n) { return 5 * (4 * m * m * n + 2 * m * m * m); };
  const double layer = 2 * ns(1024, 1024) + 2 * ns(256, 1024) + ns(1024, 8192) + ns(1024, 4096);
  EXPECT_REL(layer, 5 * (12.0 * 1073741824 + 2 * 301989888 + 36507222016.0 + 19327352832.0));
  const double newton_schulz = 4 * layer / 8 / (989e12 * 0.8);
  EXPECT_REL(muon.breakdown.optimizer, (P / 8 * (4 + 8 + 2) + (P + eh) / 8 * 8) / bw + newton_schulz);
}

TEST(Memory, DenseZero2ShardsGradients) {
  const Result r = eval(scenario_json(dense_model(), 1, 1, 1, 2));
  const double P = kDenseRank;
  EXPECT_REL(r.memory.weights, 2.0 * P);
  EXPECT_REL(r.memory.master_weights, 4.0 * P / 8);
  EXPECT_REL(r.memory.gradients, 4.0 * P / 8);  // ZeRO-2: gradients sharded over dp 8
  EXPECT_REL(r.memory.optimizer_states, 8.0 * P / 8);
}

TEST(Memory, DenseZero3ShardsWeightsZero0ShardsNothing) {
  const double P = kDenseRank;
  const Result z3 = eval(scenario_json(dense_model(), 1, 1, 1, 3));
  EXPECT_REL(z3.memory.weights, 2.0 * P / 8);  // ZeRO-3: parameters sharded too
  EXPECT_REL(z3.memory.gradients, 4.0 * P / 8);
  const Result z0 = eval(scenario_json(dense_model(), 1, 1, 1, 0));
  EXPECT_REL(z0.memory.weights, 2.0 * P);
  EXPECT_REL(z0.memory.master_weights, 4.0 * P);  // no sharding at all
  EXPECT_REL(z0.memory.gradients, 4.0 * P);
  EXPECT_REL(z0.memory.optimizer_states, 8.0 * P);
}

TEST(Memory, DenseTensorParallelSplitsMatricesNotNorms) {
  // tp 2 → dp 4. Per rank: 4·(2,621,440/2 + 2,048 + 12,582,912/2) + 2·32,768,000/2 + 1024 (final
  // norm) = 63,185,920 (matrices split, RMSNorm weights replicated).
  const Result r = eval(scenario_json(dense_model(), 2));
  const double P = 4 * (2621440.0 / 2 + 2048 + 12582912.0 / 2) + kEmb + 1024;
  EXPECT_EQ(P, 63185920.0);
  EXPECT_REL(r.memory.weights, 2.0 * P);
  EXPECT_REL(r.memory.master_weights, 4.0 * P / 4);
  EXPECT_REL(r.memory.optimizer_states, 8.0 * P / 4);
}

TEST(Memory, LowPrecisionStatesAndNoMaster) {
  Json j = scenario_json(dense_model());
  j["workload"]["grad_dtype"] = "bf16";
  j["workload"]["optimizer_state_dtype"] = "bf16";
  j["workload"]["master_weights"] = false;
  const Result r = eval(j);
  const double P = kDenseRank;
  EXPECT_EQ(r.memory.master_weights, 0.0);
  EXPECT_REL(r.memory.gradients, 2.0 * P);                 // BF16 gradients
  EXPECT_REL(r.memory.optimizer_states, 2 * 2.0 * P / 8);  // two BF16 moments, sharded
}

TEST(Memory, MoeExpertsShardedOverExpertDataParallel) {
  // 8 GPUs, ep 4 → 2 experts per rank, edp = 8 / 4 = 2; dense part sharded over dp 8.
  const Result r = eval(scenario_json(moe_model(), 1, 1, 4, 1));
  const double dense = 4 * kMoeNonExpertLayer + 2 * kEmb + 1024;  // 76,063,744 (with the final norm)
  const double expert = 4 * 2 * kExpert;                          // 25,165,824
  EXPECT_EQ(dense, 76063744.0);
  EXPECT_EQ(expert, 25165824.0);
  EXPECT_REL(r.memory.weights, 2.0 * (dense + expert));
  EXPECT_REL(r.memory.master_weights, 4.0 * (dense / 8 + expert / 2));
  EXPECT_REL(r.memory.gradients, 4.0 * (dense + expert));
  EXPECT_REL(r.memory.optimizer_states, 8.0 * (dense / 8 + expert / 2));
  // ZeRO-2: gradients follow the same sharding.
  const Result z2 = eval(scenario_json(moe_model(), 1, 1, 4, 2));
  EXPECT_REL(z2.memory.gradients, 4.0 * (dense / 8 + expert / 2));
}

TEST(Memory, DualPipeHoldsBothStages) {
  // pp 2 with DualPipe: each rank holds its own stage and the mirror stage, i.e. the whole model
  // plus the final norm (1024) on the head stage; dp = 8 / 2 = 4; M = 16 / 4 = 4 = 2·pp.
  const Result r = eval(scenario_json(dense_model(), 1, 2, 1, 1, "dualpipe"));
  const double P = kDenseRank;
  EXPECT_REL(r.memory.weights, 2.0 * P);
  EXPECT_REL(r.memory.master_weights, 4.0 * P / 4);
  EXPECT_EQ(r.phases.parameter_copies, 2);
  // 1F1B with pp 2 holds only one stage: blocks split 2/2, rank 0 has the embedding, rank 1 the head
  // and the final norm, so the most loaded (rank 1) holds 2 layers + one 32,768,000 table + 1024.
  const Result one = eval(scenario_json(dense_model(), 1, 2, 1, 1, "1f1b"));
  EXPECT_REL(one.memory.weights, 2.0 * (2 * kDenseLayer + kEmb + 1024));  // rank 1
  EXPECT_EQ(one.memory_rank, 1);
}

TEST(Memory, ReportsTheMostLoadedRank) {
  // Tied embeddings, pp 2, 1F1B, dp 4. Rank 0: 2 layers + the embedding = 2·15,206,400 + 32,768,000
  // = 63,180,800 parameters. Rank 1: 2 layers + its own copy of the tied table for the output
  // projection (Megatron-Core keeps one on the last stage) + the final norm = 63,181,824, plus the FP32
  // logits (1024 tokens · 32000 · 4 B) held transiently. Rank 1 is the most loaded.
  Json model = dense_model();
  model["tied_embeddings"] = true;
  const Result r = eval(scenario_json(model, 1, 2, 1, 1, "1f1b"));
  const double rank1 = 2 * kDenseLayer + kEmb + 1024;
  EXPECT_EQ(rank1, 63181824.0);
  EXPECT_EQ(r.memory_rank, 1);
  EXPECT_REL(r.memory.weights, 2.0 * rank1);
}

TEST(Memory, FinalNormCountedOnLastRank) {
  // The model's final RMSNorm (hidden = 1024 weights, counted in ParamCounts::total) lives on the
  // last pipeline rank, so that rank holds 4 layers + embedding + head + 1024 = 126,362,624.
  const Result r = eval(scenario_json(dense_model()));
  const double P = kDenseRank;
  EXPECT_REL(r.memory.weights, 2.0 * P);
}

TEST(Memory, BigDenseModelOnOneGpuIsInfeasible) {
  // ~41B parameters (48 layers of 8192-wide attention and a 28672 SwiGLU FFN) on one 80 GiB GPU:
  // 2 + 4 + 4 + 8 = 18 bytes per parameter ≈ 740 GB, far above 80 GiB.
  const Json model = dense_gqa("dense-41b", 48, 8192, 128000, 28672, 64, 8, 128);
  Json j = scenario_json(model);
  j["cluster"] = cluster(1, 1);
  j["parallelism"]["global_batch"] = 4;
  const Result r = eval(j);
  EXPECT_FALSE(r.memory.fits);
  EXPECT_FALSE(r.feasible);
  EXPECT_NE(r.infeasible_reason.find("GiB"), std::string::npos) << r.infeasible_reason;
  // weights alone: 2 B · (48·(8192·8192·2 + 2·8192·1024 + 3·8192·28672 + 2·8192) + 2·128000·8192
  // + 8192 for the final norm).
  const double P = 48 * (8192.0 * 8192 * 2 + 2.0 * 8192 * 1024 + 3.0 * 8192 * 28672 + 2 * 8192) +
                   2 * 128000.0 * 8192 + 8192;
  EXPECT_REL(r.memory.weights, 2.0 * P);
  EXPECT_GT(r.memory.total, r.memory.capacity);
}

// A run that was published as running must fit. Llama-3 70B pre-training on 64 H100 (8 DGX nodes) as
// Megatron-Bridge's benchmark recipe runs it (src/megatron/bridge/perf_recipes/llama/h100/llama3.py,
// llama3_70b_pretrain_64gpu_h100_fp8cs_config, commit 067f987d; 1,664 tokens/s/GPU in the 26.04.01
// performance archive): TP4 with sequence parallelism, PP8 VP5 with the recipe's layout, MBS 1, GBS 256,
// seq 8192, FP8 current scaling, BF16 gradients, no recompute. Model: 80 layers, hidden 8192, 64 query
// and 8 KV heads of 128, SwiGLU FFN 28672, vocabulary 128256 (Llama-3 config.json).
// Per layer and microbatch a rank keeps, with T = 8192 tokens, T/4 = 2048 in its sequence shard, 16 query
// and 2 KV heads, FFN width 7168:
//   attention: norm input 2048·8192·2, its output as the QKV projection's FP8 shard 2048·8192·1, q, k, v
//     8192·(16+2+2)·128·2, the attention output 8192·16·128·2 and its FP32 statistics 8192·16·4;
//   MLP: norm input 2048·8192·2, its output 2048·8192·1, FC1's output 8192·2·7168·2, FC2's FP8 input
//     8192·7168·1.
// Rank 1 holds virtual stages 1, 9, 17, 25 and 33, two layers each.
TEST(Memory, PublishedLlama3_70bLayoutFits) {
  const Json model = dense_gqa("llama3-70b", 80, 8192, 128256, 28672, 64, 8, 128);
  Json j = scenario_json(model, 4, 8);
  j["cluster"] = cluster(8, 8);
  j["parallelism"]["vpp"] = 5;
  j["parallelism"]["schedule"] = "interleaved";
  j["parallelism"]["global_batch"] = 256;
  j["parallelism"]["pipeline_layout"] = "Et*2|(t*2|)*34,t*3|(t*2|)*3,tL";
  j["workload"] = {{"kind", "training"},
                   {"seq_len", 8192},
                   {"precision", "fp8"},
                   {"fp8_recipe", "current"},
                   {"grad_dtype", "bf16"}};
  const Scenario s = scenario_from_json(j, "memory_test", catalog());
  const auto cm = models::make_compute_cost_model(s);
  const models::NetworkModel net(s.cluster);
  const models::Workload w = models::build_workload(s, *cm, net);
  const double attention =
      2048.0 * 8192 * 2 + 2048.0 * 8192 + 8192.0 * 20 * 128 * 2 + 8192.0 * 16 * 128 * 2 + 8192.0 * 16 * 4;
  const double mlp = 2048.0 * 8192 * 2 + 2048.0 * 8192 + 8192.0 * 2 * 7168 * 2 + 8192.0 * 7168;
  EXPECT_REL(w.ranks[1].activation_bytes, 10 * (attention + mlp));
  const Result r = evaluate_analytic(s);
  EXPECT_TRUE(r.memory.fits) << r.memory.total / (1 << 30) << " GiB";
  EXPECT_TRUE(r.feasible) << r.infeasible_reason;
}

Json moe_zipf(const char* schedule, int pp) {
  Json j = scenario_json(moe_model(), 1, pp, 4 / pp, 1, schedule);
  j["routing"] = {{"load", {{"generator", "zipf"}, {"s", 1.1}, {"seed", 7}}}};
  return j;
}

TEST(StepTime, DeterministicBitForBit) {
  const Json j = moe_zipf("1f1b", 1);
  const Result a = eval(j), b = eval(j);
  EXPECT_EQ(a.step_time, b.step_time);  // exact, not near
  EXPECT_EQ(a.breakdown.compute, b.breakdown.compute);
  EXPECT_EQ(a.breakdown.exposed_ep, b.breakdown.exposed_ep);
  EXPECT_EQ(a.memory.total, b.memory.total);
  EXPECT_EQ(a.moe_max_over_mean_gpu, b.moe_max_over_mean_gpu);
  // The zipf load is actually imbalanced, so the check above is not on a trivial uniform case.
  EXPECT_GT(a.moe_max_over_mean_gpu, 1.0);
}

void expect_breakdown_sums(const Result& r, const std::string& what) {
  const auto& b = r.breakdown;
  const double sum =
      b.compute + b.exposed_tp + b.exposed_ep + b.exposed_cp + b.bubble + b.exposed_dp + b.optimizer;
  EXPECT_NEAR(sum, r.step_time, 1e-9 * r.step_time) << what;
  EXPECT_GT(r.step_time, 0.0) << what;
  // Throughput follows from the step time: global batch 16 × 1024 tokens over 8 GPUs.
  EXPECT_NEAR(r.tokens_per_second_per_gpu, 16.0 * 1024 / r.step_time / 8, 1e-9 * r.tokens_per_second_per_gpu)
      << what;
}

TEST(StepTime, BreakdownSumsToStepTime) {
  expect_breakdown_sums(eval(scenario_json(dense_model())), "dense 1f1b pp1");
  expect_breakdown_sums(eval(scenario_json(dense_model(), 2)), "dense tp2");
  expect_breakdown_sums(eval(scenario_json(dense_model(), 1, 2, 1, 1, "1f1b")), "dense 1f1b pp2");
  expect_breakdown_sums(eval(scenario_json(dense_model(), 1, 2, 1, 1, "zero_bubble")), "dense zb pp2");
  expect_breakdown_sums(eval(scenario_json(dense_model(), 1, 2, 1, 3, "dualpipe")), "dense dualpipe zero3");
  {
    Json j = scenario_json(dense_model(), 1, 2, 1, 1, "interleaved");
    j["parallelism"]["vpp"] = 2;
    expect_breakdown_sums(eval(j), "dense interleaved pp2 vpp2");
  }
  expect_breakdown_sums(eval(moe_zipf("1f1b", 1)), "moe zipf 1f1b");
  expect_breakdown_sums(eval(moe_zipf("dualpipe", 2)), "moe zipf dualpipe");
  expect_breakdown_sums(eval(moe_zipf("zero_bubble", 2)), "moe zipf zb");
}

}  // namespace
}  // namespace moesim
