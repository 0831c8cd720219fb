// Hybrid models (ModelSpec::layer_pattern): Mamba-2, attention, MLP and MoE layers each a layer of its own,
// as Megatron-Core's hybrid models and Nemotron-H / Nemotron 3 run them. Every figure below is worked out
// by hand from the small model of `kModel`:
//
//   hidden h 256, vocab 1024 (untied), pattern "ME*-E" (Mamba, MoE, attention, dense MLP, MoE),
//   attention GQA 4 heads / 2 KV heads of 64, Mamba-2 8 heads of P 32 (d_inner 256) with state N 16 in
//   G 2 groups, convolution 4, chunk Q 64; MoE 8 experts top-2 of 128 plus one shared expert of 256,
//   squared ReLU (two matrices); dense MLP 512.
//
//   Mamba layer: in_proj h x (2·256 + 2·2·16 + 8) = 256 x 584 = 149,504; out_proj 256 x 256 = 65,536;
//     convolution (256 + 64) channels x (4 + 1) = 1,600; dt_bias, A, D 3 x 8 = 24; gated norm 256:
//     what no GEMM multiplies 1,880; the mixer 216,920.
//   Attention: q 256·4·64 = 65,536, k and v 256·2·128 = 65,536, o 65,536: 196,608.
//   Dense MLP 2·256·512 = 262,144; expert 2·256·128 = 65,536; shared 2·256·256 = 131,072; router 2,048.
//   One pre-norm per layer (5 x 256), the final norm 256, embedding and head 262,144 each.
//   total = 196,608 + 216,920 + 1,280 + 262,144 + 2·(131,072 + 2,048) + 2·262,144 + 256 + 2·8·65,536
//         = 2,516,312; active = the same with 2·2 experts = 1,729,880.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "models/analytic.hpp"
#include "models/block_pricing.hpp"
#include "models/compute_cost.hpp"
#include "models/network.hpp"
#include "models/params.hpp"
#include "models/routing_source.hpp"
#include "models/workload.hpp"
#include "scenarios/catalog.hpp"
#include "scenarios/error.hpp"
#include "scenarios/json_reader.hpp"
#include "scenarios/loader.hpp"
#include "sim/step_sim.hpp"

namespace moesim {
namespace {

const char* kModel = R"({
  "name": "hybrid-small", "layers": 5, "layer_pattern": "ME*-E", "hidden": 256, "vocab": 1024,
  "dense_ffn": 512, "activation": "relu2",
  "attention": {"kind": "gqa", "heads": 4, "kv_heads": 2, "head_dim": 64},
  "mamba": {"heads": 8, "head_dim": 32, "state_dim": 16, "groups": 2, "conv_kernel": 4, "chunk_size": 64},
  "moe": {"experts": 8, "top_k": 2, "expert_ffn": 128, "shared_experts": 1, "shared_ffn": 256,
          "score": "sigmoid"}
})";

Json scenario_json() {
  Json j = parse_json_text(R"({
    "schema_version": 1, "name": "hybrid-small",
    "cluster": {"name": "one-node", "gpu": "catalog:h100-sxm", "nodes": 1, "gpus_per_node": 8,
                "scale_up": {"kind": "nvswitch", "bandwidth": "370GBps", "latency": "3us"},
                "scale_out": {"kind": "fat_tree", "nic_bandwidth": "46GBps", "latency": "3us"}},
    "parallelism": {"attention": {"tp": 1, "cp": 1}, "experts": {"ep": 8, "etp": 1}, "pp": 1,
                    "schedule": "1f1b", "zero": 1, "recompute": "none", "microbatch_size": 1,
                    "global_batch": 16},
    "workload": {"kind": "training", "seq_len": 1024, "precision": "bf16"},
    "routing": {"policy": "softmax_topk", "load": {"generator": "uniform", "seed": 1}},
    "placement": {"policy": "contiguous"},
    "engine": {"kind": "analytic"}
  })",
                           "hybrid.json");
  j["model"] = parse_json_text(kModel, "hybrid.json");
  return j;
}

const Catalog& catalog() {
  static const Catalog c({std::string(MOESIM_SOURCE_DIR) + "/scenarios/catalog"});
  return c;
}

Scenario scenario(const Json& j = scenario_json()) {
  return scenario_from_json(j, "hybrid.json", catalog());
}

models::Workload workload(const Scenario& s) {
  const auto cm = models::make_compute_cost_model(s);
  const models::NetworkModel net(s.cluster);
  const models::RoutingInput in = models::routing_input(s);
  return models::build_workload(s, *cm, net, &in, false);
}

std::string error_of(const Json& j) {
  try {
    scenario(j);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Hybrid, LayerMixFollowsThePattern) {
  const ModelSpec m = scenario().model;
  using models::Mixer, models::Mlp;
  EXPECT_EQ(models::layer_mix(m, 0), (models::LayerMix{Mixer::kMamba, Mlp::kNone}));
  EXPECT_EQ(models::layer_mix(m, 1), (models::LayerMix{Mixer::kNone, Mlp::kMoe}));
  EXPECT_EQ(models::layer_mix(m, 2), (models::LayerMix{Mixer::kAttention, Mlp::kNone}));
  EXPECT_EQ(models::layer_mix(m, 3), (models::LayerMix{Mixer::kNone, Mlp::kDense}));
  EXPECT_TRUE(models::is_moe_layer(m, 4));
  EXPECT_FALSE(models::is_moe_layer(m, 0));
}

TEST(Hybrid, ParamsByHand) {
  const models::ParamCounts p = models::count_params(scenario().model);
  EXPECT_DOUBLE_EQ(p.mamba_nonmatmul_per_layer, 1880);
  EXPECT_DOUBLE_EQ(p.mamba_per_layer, 216920);
  EXPECT_DOUBLE_EQ(p.attention_per_layer, 196608);
  EXPECT_EQ(p.mamba_layers, 1);
  EXPECT_EQ(p.attention_layers, 1);
  EXPECT_EQ(p.moe_layers, 2);
  EXPECT_EQ(p.dense_layers, 1);
  EXPECT_DOUBLE_EQ(p.norms, 1280);
  EXPECT_DOUBLE_EQ(p.total, 2516312);
  EXPECT_DOUBLE_EQ(p.active, 1729880);
}

TEST(Hybrid, TrainingFlopsByHand) {
  // matmul parameters: active - embedding - norms - final norm - the Mamba ones no GEMM multiplies
  //   = 1,729,880 - 262,144 - 1,280 - 256 - 1,880 = 1,464,320, times 6;
  // SSD forward per token 2·Q·N·G + 2·Q·P·H + 4·N·P·H = 4,096 + 32,768 + 16,384 = 53,248, times 6;
  // one causal attention layer at 1024 tokens: 6 · 512 · 4 · (64 + 64) = 1,572,864.
  EXPECT_DOUBLE_EQ(models::ssd_forward_flops_per_token(scenario().model.mamba), 53248);
  EXPECT_DOUBLE_EQ(models::training_flops_per_token(scenario().model, 1024, true),
                   6.0 * 1464320 + 6.0 * 53248 + 1572864);
}

TEST(Hybrid, EachLayerPricesItsOwnSubLayerOnly) {
  const Scenario s = scenario();
  const models::Workload w = workload(s);
  ASSERT_EQ(w.blocks.size(), 5u);
  using models::BlockKind;
  const BlockKind want[] = {BlockKind::kMamba, BlockKind::kMoe, BlockKind::kAttention, BlockKind::kDense,
                            BlockKind::kMoe};
  const char* prefix[] = {"mamba.", "moe.", "attn.", "ffn.", "moe."};
  for (int b = 0; b < 5; ++b) {
    SCOPED_TRACE(b);
    EXPECT_EQ(w.blocks[b].kind, want[b]);
    for (const models::Op& op : models::block_ops(w, b))
      EXPECT_EQ(std::string(op.name).rfind(prefix[b], 0), 0u) << op.name;
  }
  EXPECT_EQ(w.moe_layers.size(), 2u);
}

TEST(Hybrid, MambaOpFlopsByHand) {
  // T = 1024 tokens, 16 chunks of 64: 128 (chunk, head) pairs, 32 (chunk, group) pairs.
  //   in_proj 2·1024·584·256; out_proj 2·1024·256·256;
  //   chunk states Bᵀ·x 2·128·(16·32·64); C·Bᵀ 2·32·(64·64·16); the scan 2·128·(64·32·64 + 64·32·16).
  //   Backward: C·Bᵀ and the states recomputed (4,194,304 + 8,388,608), dstates 8,388,608, dx 41,943,040,
  //   dB and dC 8,388,608 each, d(C·Bᵀ) 2·128·64·64·32 = 33,554,432, two C·Bᵀ backward products
  //   2·32·64·16·64 = 4,194,304 each, the dA cumsum gradient 33,554,432: 155,189,248.
  const models::Workload w = workload(scenario());
  double in_proj = 0, out_proj = 0, ssd_forward = 0, ssd_backward = 0;
  for (const models::Op& op : models::block_ops(w, 0)) {
    const std::string n = op.name;
    if (n == "mamba.in_proj" && op.pass == models::Pass::kForward) in_proj = op.work;
    if (n == "mamba.out_proj" && op.pass == models::Pass::kForward) out_proj = op.work;
    if (n.rfind("mamba.ssd_", 0) == 0 && n != "mamba.ssd_passing" && op.pass == models::Pass::kForward)
      ssd_forward += op.work;
    if (n == "mamba.ssd_backward") ssd_backward = op.work;
    EXPECT_GT(op.seconds, 0) << n;
  }
  EXPECT_DOUBLE_EQ(in_proj, 2.0 * 1024 * 584 * 256);
  EXPECT_DOUBLE_EQ(out_proj, 2.0 * 1024 * 256 * 256);
  EXPECT_DOUBLE_EQ(ssd_forward, 8388608.0 + 4194304.0 + 41943040.0);
  EXPECT_DOUBLE_EQ(ssd_forward, 1024 * models::ssd_forward_flops_per_token(scenario().model.mamba));
  EXPECT_DOUBLE_EQ(ssd_backward, 155189248.0);
}

TEST(Hybrid, ParametersPerGpuByHand) {
  // EP8: one expert per GPU. Per layer: M 256 + 216,920; E 256 + 131,072 + 2,048 + 65,536; * 256 +
  // 196,608; - 256 + 262,144; then the embedding, the head and the final norm.
  const models::Workload w = workload(scenario());
  ASSERT_EQ(w.ranks.size(), 1u);
  EXPECT_DOUBLE_EQ(w.ranks[0].params,
                   217176.0 + 198912.0 + 196864.0 + 262400.0 + 198912.0 + 524288.0 + 256.0);
  EXPECT_DOUBLE_EQ(w.ranks[0].expert_params, 2 * 65536.0);
}

TEST(Hybrid, BothEnginesRunItAndAgree) {
  const Scenario s = scenario();
  const models::Result a = models::evaluate_analytic(s);
  const sim::StepSimResult d = sim::simulate_step(s);
  ASSERT_GT(a.step_time, 0);
  // 1F1B on one stage: the same blocks in the same order; the engines differ only by the all-to-all's
  // flows.
  EXPECT_NEAR(d.result.step_time / a.step_time, 1.0, 0.02) << a.step_time << " " << d.result.step_time;
}

TEST(HybridErrors, PatternAndSectionsAgree) {
  Json j = scenario_json();
  j["model"]["layer_pattern"] = "ME*-X";
  EXPECT_EQ(
      error_of(j),
      "hybrid.json: /model/layer_pattern: expected one of M (Mamba-2), G (Gated DeltaNet), * (attention), "
      "- (dense MLP), E (MoE) per layer, found 'X' at layer 4");
  j = scenario_json();
  j["model"]["layer_pattern"] = "ME*-";
  EXPECT_EQ(error_of(j),
            "hybrid.json: /model/layer_pattern: expected one character per layer (layers 5), "
            "found 4 characters");
  j = scenario_json();
  j["model"]["layer_pattern"] = "M**-M";
  EXPECT_EQ(error_of(j),
            "hybrid.json: /model/layer_pattern: expected E layers for the \"moe\" section, "
            "found none");
  j = scenario_json();
  j["model"].erase("mamba");
  EXPECT_EQ(error_of(j),
            "hybrid.json: /model/layer_pattern: expected a \"mamba\" section for its M layers, "
            "found no \"mamba\" section");
  j = scenario_json();
  j["model"].erase("layer_pattern");
  EXPECT_EQ(error_of(j),
            "hybrid.json: /model/layer_pattern: expected a pattern placing the Mamba layers (the "
            "model has a \"mamba\" section), found nothing");
  j = scenario_json();
  j["model"]["mamba"]["groups"] = 3;
  EXPECT_EQ(error_of(j), "hybrid.json: /model/mamba/groups: expected a divisor of heads (8), found 3");
  j = scenario_json();
  j["model"]["moe"]["layer_freq"] = 2;
  EXPECT_EQ(
      error_of(j),
      "hybrid.json: /model/layer_pattern: expected moe.first_dense_layers 0 and moe.layer_freq 1 with a "
      "pattern (the pattern places the MoE layers), found first_dense_layers 0, layer_freq 2");
}

TEST(HybridErrors, ParallelismTheMambaLayersCannotTake) {
  Json j = scenario_json();
  j["parallelism"]["attention"]["tp"] = 4;  // 2 groups
  j["parallelism"]["experts"]["ep"] = 2;
  EXPECT_EQ(error_of(j),
            "hybrid.json: /parallelism/attention/tp: expected a divisor of the Mamba heads (8) "
            "and groups (2), found 4");
  j = scenario_json();
  j["parallelism"]["attention"]["cp"] = 2;
  j["parallelism"]["experts"]["ep"] = 8;
  EXPECT_EQ(error_of(j),
            "hybrid.json: /parallelism/attention/cp: expected 1 for a model with Mamba layers "
            "(context parallelism of the SSD scan is not modelled), found 2");
}

TEST(Hybrid, ChunkScanKernelIsTheBlocksOp) {
  // The accuracy suite's scan rows price models::ssd_chunk_scan; the Mamba block's mamba.ssd_scan op is the
  // same price: here T = 1024 tokens of one sequence, 8 heads of 32, 2 groups of 16 states, chunks of 64.
  const Scenario s = scenario();
  const auto cm = models::make_compute_cost_model(s);
  const models::Workload w = workload(s);
  double op = 0;
  for (const models::Op& o : models::block_ops(w, 0))
    if (std::string(o.name) == "mamba.ssd_scan" && o.pass == models::Pass::kForward) op = o.seconds;
  const models::ScanKernel k = models::ssd_chunk_scan(*cm, {1, 1024, 8, 32, 16, 2, 64});
  EXPECT_GT(op, 0);
  EXPECT_DOUBLE_EQ(op, k.seconds);
  // FLOPs, every chunk block in full: 16 chunks x 8 heads, 2·(64·32·64 + 64·32·16) each.
  EXPECT_DOUBLE_EQ(k.flops, 2.0 * 128 * (64 * 32 * 64 + 64 * 32 * 16));
  // The TileLang benchmark's shape (batch 8, seq 8192, 80 heads of 64, one group of 128 states, chunks of
  // 256): 256 chunks x 80 heads, 2·(256·64·256 + 256·64·128) each = 257,698,037,760.
  EXPECT_DOUBLE_EQ(models::ssd_chunk_scan(*cm, {8, 8192, 80, 64, 128, 1, 256}).flops, 257698037760.0);
}

// A Gated DeltaNet hybrid (Qwen3-Next's structure): pattern "GE*E", two blocks each of a mixer and an MoE
// layer; gated attention 4 heads / 2 KV heads of 64 (q_proj also yields the gate); Gated DeltaNet 2 key
// heads and 4 value heads of 32, convolution 4, chunk 64; 8 experts top-2 of 128 and a shared one of 256,
// SwiGLU (three matrices). Worked out by hand:
//   Gated DeltaNet: in_proj 256 x (2·64 + 2·128 + 2·4) = 100,352; out_proj 128 x 256 = 32,768; convolution
//     (2·64 + 128) x 4 = 1,024; dt_bias and A 2 x 4; gated norm 32: 1,064 no GEMM multiplies; 134,184.
//   Gated attention: q 65,536 and its gate 65,536, k and v 65,536, o 65,536: 262,144.
//   Expert 3·256·128 = 98,304; shared 3·256·256 = 196,608; router 2,048; four pre-norms 1,024.
//   total = 134,184 + 262,144 + 1,024 + 2·(196,608 + 2,048) + 2·262,144 + 256 + 2·8·98,304 = 2,892,072;
//   active = the same with 2·2 experts = 1,712,424.
Json gdn_scenario_json() {
  Json j = scenario_json();
  j["model"] = parse_json_text(R"({
    "name": "gdn-small", "layers": 4, "layer_pattern": "GE*E", "hidden": 256, "vocab": 1024,
    "activation": "swiglu",
    "attention": {"kind": "gqa", "heads": 4, "kv_heads": 2, "head_dim": 64, "output_gate": true},
    "gated_delta_net": {"key_heads": 2, "value_heads": 4, "key_head_dim": 32, "value_head_dim": 32,
                        "conv_kernel": 4, "chunk_size": 64},
    "moe": {"experts": 8, "top_k": 2, "expert_ffn": 128, "shared_experts": 1, "shared_ffn": 256}
  })",
                               "hybrid.json");
  return j;
}

TEST(HybridGdn, ParamsAndFlopsByHand) {
  const ModelSpec m = scenario(gdn_scenario_json()).model;
  const models::ParamCounts p = models::count_params(m);
  EXPECT_DOUBLE_EQ(p.gdn_nonmatmul_per_layer, 1064);
  EXPECT_DOUBLE_EQ(p.gdn_per_layer, 134184);
  EXPECT_DOUBLE_EQ(p.attention_per_layer, 262144);
  EXPECT_EQ(p.gdn_layers, 1);
  EXPECT_EQ(p.attention_layers, 1);
  EXPECT_DOUBLE_EQ(p.total, 2892072);
  EXPECT_DOUBLE_EQ(p.active, 1712424);
  // Per token and value head (C 64, dk = dv = 32): 6·C·dk + 4·C·dv + 6·dk·dv = 26,624; four heads.
  EXPECT_DOUBLE_EQ(models::gdn_forward_flops_per_token(m.gdn), 4 * 26624.0);
  // matmul parameters 1,712,424 - 262,144 - 1,024 - 256 - 1,064 = 1,447,936; one causal attention layer at
  // 1024 tokens 6 · 512 · 4 · 128.
  EXPECT_DOUBLE_EQ(models::training_flops_per_token(m, 1024, true),
                   6.0 * 1447936 + 6.0 * 4 * 26624 + 6.0 * 512 * 4 * 128);
}

TEST(HybridGdn, DeltaRuleAndGatedAttentionOpsByHand) {
  // T = 1024 tokens, 16 chunks of 64, 4 value heads: 64 (chunk, head) pairs.
  //   β·K·Kᵀ 2·64·(64·64·32) = 16,777,216; w and u 2·64·(64·32·64)·2 = 33,554,432; the states
  //   2·64·(32·32·64 + 64·32·32) = 16,777,216; the output 2·64·(64·32·32 + 64·64·32 + 64·32·64) =
  //   41,943,040: 109,051,904 = 1024 tokens x 106,496.
  //   Backward: w, u and the states again (50,331,648), local dv 33,554,432, the state recurrence
  //   backward 25,165,824, dq/dk/dw/ds 75,497,472, the WY backward 67,108,864: 251,658,240.
  //   in_proj 2·1024·392·256; out_proj 2·1024·256·128; the gated attention's qkv 2·1024·(384 + 128 +
  //   256)·256.
  const Scenario s = scenario(gdn_scenario_json());
  const models::Workload w = workload(s);
  ASSERT_EQ(w.blocks.size(), 4u);
  EXPECT_EQ(w.blocks[0].kind, models::BlockKind::kGatedDeltaNet);
  EXPECT_EQ(w.blocks[2].kind, models::BlockKind::kAttention);
  double rule_forward = 0, rule_backward = 0, in_proj = 0, out_proj = 0, qkv = 0;
  bool gate = false;
  for (int b : {0, 2})
    for (const models::Op& op : models::block_ops(w, b)) {
      const std::string n = op.name;
      const bool f = op.pass == models::Pass::kForward;
      if (n.rfind("gdn.rule_", 0) == 0 && n != "gdn.rule_solve" && f) rule_forward += op.work;
      if (n == "gdn.rule_backward") rule_backward = op.work;
      if (n == "gdn.in_proj" && f) in_proj = op.work;
      if (n == "gdn.out_proj" && f) out_proj = op.work;
      if (n == "attn.qkv" && f) qkv = op.work;
      gate = gate || n == "attn.output_gate";
      EXPECT_GT(op.seconds, 0) << n;
    }
  EXPECT_DOUBLE_EQ(rule_forward, 109051904.0);
  EXPECT_DOUBLE_EQ(rule_forward, 1024 * models::gdn_forward_flops_per_token(s.model.gdn));
  EXPECT_DOUBLE_EQ(rule_backward, 251658240.0);
  EXPECT_DOUBLE_EQ(in_proj, 2.0 * 1024 * 392 * 256);
  EXPECT_DOUBLE_EQ(out_proj, 2.0 * 1024 * 256 * 128);
  EXPECT_DOUBLE_EQ(qkv, 2.0 * 1024 * 768 * 256);
  EXPECT_TRUE(gate);
  const models::Result a = models::evaluate_analytic(s);
  EXPECT_GT(a.step_time, 0);
}

TEST(HybridGdn, Errors) {
  Json j = gdn_scenario_json();
  j["model"]["gated_delta_net"]["value_heads"] = 3;
  EXPECT_EQ(error_of(j),
            "hybrid.json: /model/gated_delta_net/value_heads: expected a multiple of key_heads (2), "
            "found 3");
  j = gdn_scenario_json();
  j["model"].erase("gated_delta_net");
  EXPECT_EQ(error_of(j),
            "hybrid.json: /model/layer_pattern: expected a \"gated_delta_net\" section for its G "
            "layers, found no \"gated_delta_net\" section");
  j = gdn_scenario_json();
  j["model"]["attention"]["kind"] = "mla";
  j["model"]["attention"]["kv_lora_rank"] = 64;
  j["model"]["attention"].erase("kv_heads");
  EXPECT_EQ(error_of(j),
            "hybrid.json: /model/attention/output_gate: expected false for kind \"mla\" (gated "
            "attention is priced for MHA and GQA), found true");
  j = gdn_scenario_json();
  j["parallelism"]["attention"]["tp"] = 4;  // 2 key heads
  j["parallelism"]["experts"]["ep"] = 2;
  EXPECT_EQ(error_of(j),
            "hybrid.json: /parallelism/attention/tp: expected a divisor of the Gated DeltaNet key "
            "heads (2) and value heads (4), found 4");
}

}  // namespace
}  // namespace moesim
