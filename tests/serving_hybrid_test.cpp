// Serving hybrid models (Mamba-2 and Gated DeltaNet layers beside attention): the KV cache counts the
// attention layers only, each sequence's recurrent state is counted by hand from the layer shapes, a decode
// step moves those states, a prompt runs the training path's scan kernels, and the state takes cache
// blocks that cap the decode batch.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "models/block_pricing.hpp"
#include "models/compute_cost.hpp"
#include "models/network.hpp"
#include "models/params.hpp"
#include "models/serving.hpp"
#include "scenarios/catalog.hpp"
#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"

namespace moesim::models {
namespace {

const std::string kSrc = MOESIM_SOURCE_DIR;

const Catalog& catalog() {
  static const Catalog c({kSrc + "/scenarios/catalog"});
  return c;
}

Json read(const std::string& path) {
  std::ifstream in(path);
  return Json::parse(in);
}

Json example(const std::string& name) {
  return read(kSrc + "/scenarios/examples/serving/" + name + ".json");
}

Scenario load(const Json& j) {
  return scenario_from_json(j, "hybrid.json", catalog());
}

// The op of one iteration named `name`: executions per iteration over every layer, and the work and seconds
// of one (the same in every layer of its kind).
OpRow row(const IterationPricer& p, const ServingBatch& b, const std::string& name) {
  OpRow sum;
  for (const OpRow& r : p.op_rows(b)) {
    if (r.name != name) continue;
    if (sum.count > 0) {
      EXPECT_DOUBLE_EQ(r.bytes, sum.bytes) << name << " in layer " << r.layer;
      EXPECT_DOUBLE_EQ(r.seconds, sum.seconds) << name << " in layer " << r.layer;
    }
    const double count = sum.count + r.count;
    sum = r;
    sum.count = count;
  }
  if (sum.count == 0) ADD_FAILURE() << "no op " << name;
  return sum;
}

// Qwen3-Next-80B-A3B (catalog: 48 blocks of two layers; 12 gated-attention and 36 Gated DeltaNet mixers;
// 2 KV heads of 256; 32 value heads and 16 key heads of 128; convolution width 4) with tp 4:
//  - KV per token: 12 layers x max(1, 2/4) KV head x (256 + 256) x 2 B = 12,288 B;
//  - state per Gated DeltaNet layer: 32/4 heads x 128 x 128 x 2 B = 262,144 B, plus the convolution state
//    3 x (2 x 16 x 128 + 32 x 128) / 4 channels x 2 B = 12,288 B; 36 layers: 9,879,552 B;
//  - in cache tokens: 9,879,552 / 12,288 = 804 tokens -> 13 blocks of 64 = 832 tokens.
// In FP32: 36 x (524,288 + 12,288) = 19,316,736 B = 1,572 tokens -> 25 blocks = 1,600.
TEST(ServingHybrid, QwenNextKvAndStateFromTheLayerKinds) {
  Json j = example("qwen3-next-80b-a3b-h100-colocated");
  const IterationPricer p(load(j), 0);
  EXPECT_DOUBLE_EQ(p.kv_bytes_per_token(), 12288.0);
  EXPECT_DOUBLE_EQ(p.state_bytes_per_sequence(), 9879552.0);
  EXPECT_DOUBLE_EQ(p.state_tokens_per_sequence(), 832.0);
  j["serving"]["state_dtype"] = "fp32";
  const IterationPricer q(load(j), 0);
  EXPECT_DOUBLE_EQ(q.state_bytes_per_sequence(), 19316736.0);
  EXPECT_DOUBLE_EQ(q.state_tokens_per_sequence(), 1600.0);
  EXPECT_DOUBLE_EQ(q.kv_bytes_per_token(), 12288.0);
}

// Nemotron 3 Nano (23 Mamba-2 layers of 64 heads x 64 channels, state 128, 8 groups, convolution width 4;
// 6 attention layers of 2 KV heads of 128) with tp 1, states in FP32:
//  - KV per token: 6 x 2 x (128 + 128) x 2 B = 6,144 B;
//  - state per Mamba layer: 64 x 64 x 128 x 4 B = 2,097,152 B, plus 3 x (4,096 + 2 x 8 x 128) x 2 B = 36,864
//  B;
//    23 layers: 49,082,368 B = 7,988.7 tokens -> 125 blocks = 8,000 tokens.
TEST(ServingHybrid, NemotronKvAndStateFromTheLayerKinds) {
  const Scenario s = load(example("nemotron-3-nano-h100-colocated"));
  const IterationPricer p(s, 0);
  EXPECT_DOUBLE_EQ(p.kv_bytes_per_token(), 6144.0);
  EXPECT_DOUBLE_EQ(p.state_bytes_per_sequence(), 49082368.0);
  EXPECT_DOUBLE_EQ(p.state_tokens_per_sequence(), 8000.0);
  // The result reports them per instance.
  const ServingResult r = evaluate_serving_analytic(s, serving_requests(s));
  ASSERT_EQ(r.instances.size(), 1u);
  EXPECT_DOUBLE_EQ(r.instances[0].state_bytes_per_sequence, 49082368.0);
  EXPECT_DOUBLE_EQ(r.instances[0].state_tokens_per_sequence, 8000.0);
}

// With BF16 weights every GPU of an attention-DP instance holds every parameter but the routed experts,
// and 1/8 of those: 2 B x (total - routed + routed / 8), the total counted by count_params (mixers of each
// kind once per layer of that kind).
TEST(ServingHybrid, WeightsAreTheModelWithItsExpertsSplit) {
  for (const char* name : {"nemotron-3-nano-h100-colocated", "qwen3-next-80b-a3b-h100-colocated"}) {
    Json j = example(name);
    j["serving"]["instances"][0]["tp"] = 1;
    const Scenario s = load(j);
    const IterationPricer p(s, 0);
    const ParamCounts pc = count_params(s.model);
    const double routed = pc.expert * s.model.moe.experts * pc.moe_layers;
    EXPECT_NEAR(p.weight_bytes(), 2.0 * (pc.total - routed + routed / 8), 1e-6 * p.weight_bytes()) << name;
  }
}

// A decode step of b sequences: selective_state_update reads and writes each sequence's state once per
// query token, with the token's x, B, C (the convolution's 4,096 + 2,048 channels), z and y (4,096 each)
// and dt (64) in BF16, priced at the stream rate; once per Mamba layer.
TEST(ServingHybrid, DecodeStepMovesEachSequencesState) {
  const Scenario s = load(example("nemotron-3-nano-h100-colocated"));
  const IterationPricer p(s, 0);
  for (double b : {1.0, 24.0, 200.0}) {
    ServingBatch x;
    x.decode_seqs = b;
    x.decode_kv = 4096;
    const OpRow r = row(p, x, "mamba.state_update");
    const double state = 64.0 * 64 * 128 * 4 + 3.0 * 6144 * 2;
    const double bytes = b * 2 * state + b * (6144.0 + 2 * 4096 + 64) * 2;
    EXPECT_DOUBLE_EQ(r.bytes, bytes) << b;
    EXPECT_DOUBLE_EQ(r.seconds, p.cost_model().memory_bound(bytes)) << b;
    EXPECT_DOUBLE_EQ(r.count, 23.0);
  }
  // Two speculative tokens: the state is written once per query.
  ServingBatch x;
  x.decode_seqs = 10;
  x.decode_queries = 3;
  x.decode_kv = 4096;
  const double state = 64.0 * 64 * 128 * 4 + 3.0 * 6144 * 2;
  EXPECT_DOUBLE_EQ(row(p, x, "mamba.state_update").bytes, 10 * 4 * state + 30 * (6144.0 + 2 * 4096 + 64) * 2);
}

// Gated DeltaNet's recurrent step in BF16 with tp 4: per sequence its 8 heads of 128 x 128 and its
// convolution state read and written, per token q and k repeated to the value heads (2 x 8 x 128), v and o
// (2 x 1,024), beta and g (2 x 8).
TEST(ServingHybrid, DecodeStepMovesEachSequencesDeltaRuleState) {
  const IterationPricer p(load(example("qwen3-next-80b-a3b-h100-colocated")), 0);
  ServingBatch x;
  x.decode_seqs = 16;
  x.decode_kv = 2048;
  const OpRow r = row(p, x, "gdn.state_update");
  const double state = 8.0 * 128 * 128 * 2 + 3.0 * 2048 * 2;
  EXPECT_DOUBLE_EQ(r.bytes, 16 * 2 * state + 16 * (2 * 1024.0 + 2 * 1024 + 16) * 2);
  EXPECT_DOUBLE_EQ(r.count, 36.0);
}

// A prompt of L tokens runs the chunked scan's forward kernels exactly as a training microbatch of one
// sequence of L tokens does (the training path, same GPU and tp), and loads and stores its state once.
TEST(ServingHybrid, PromptRunsTheTrainingScanKernels) {
  const Scenario serve = load(example("nemotron-3-nano-h100-colocated"));
  Json t = read(kSrc + "/scenarios/validation/nemotron-3-nano-16xH100-fp8-nemo.json");
  const double L = 4096;
  t["workload"]["seq_len"] = int(L);
  const Scenario train = load(t);
  ASSERT_EQ(train.cluster.gpu.name, serve.cluster.gpu.name);
  const auto cm = make_compute_cost_model(train);
  const NetworkModel net(train.cluster);
  const PricingContext c = pricing_context(train, *cm, net, L);
  BlockCost b;
  double transient = 0;
  ASSERT_EQ(train.model.layer_pattern.at(0), 'M');
  price_block(c, b, 0, false, nullptr, EpGeometry{}, transient);

  const IterationPricer p(serve, 0);
  ServingBatch x;
  x.prefill_tokens = L;
  x.prefill_seqs = 1;
  x.prefill_kv = L / 2;
  x.prefill_context = L;
  int compared = 0;
  for (const char* name : {"mamba.ssd_state", "mamba.ssd_passing", "mamba.ssd_bmm", "mamba.ssd_scan"}) {
    for (const Op& op : b.ops)
      if (std::string(op.name) == name && op.pass == Pass::kForward && !op.recompute) {
        EXPECT_DOUBLE_EQ(row(p, x, name).seconds, op.seconds) << name;
        ++compared;
      }
  }
  EXPECT_EQ(compared, 4);
  const double state = 64.0 * 64 * 128 * 4 + 3.0 * 6144 * 2;
  EXPECT_DOUBLE_EQ(row(p, x, "mamba.state_io").bytes, 2 * state);
}

// The analytic decode batch when the cache is what limits it: a sequence holds its mean decode context and
// its state's blocks, so floor(capacity / (context + state tokens)) sequences fit.
TEST(ServingHybrid, StateBlocksCapTheAnalyticDecodeBatch) {
  Json j = example("nemotron-3-nano-h100-colocated");
  j["serving"]["requests"] = {
      {"count", 2000}, {"rate", 400}, {"input", "fixed:4000"}, {"output", "fixed:500"}};
  j["serving"].erase("tpot_slo");
  j["serving"]["instances"][0]["max_running"] = 2048;
  j["serving"]["kv_memory_fraction"] = 0.3;
  j["engine"]["kind"] = "analytic";
  const Scenario s = load(j);
  const auto rq = serving_requests(s);
  const ServingResult r = evaluate_serving_analytic(s, rq);
  const IterationPricer p(s, 0);
  ASSERT_GT(p.kv_capacity_tokens(), 0);
  const double cap = std::floor(p.kv_capacity_tokens() / (decode_context(rq) + 8000.0));
  ASSERT_EQ(r.instances.size(), 1u);
  EXPECT_TRUE(r.saturated);
  EXPECT_DOUBLE_EQ(r.instances[0].decode_batch, cap);
  EXPECT_LT(cap, std::floor(p.kv_capacity_tokens() / decode_context(rq)) / 2);  // the state matters
}

// A serving scenario's hybrid model needs an attention layer: its KV cache pages the recurrent states.
TEST(ServingHybrid, ModelWithoutAttentionIsRefused) {
  Json j = example("nemotron-3-nano-h100-colocated");
  Json m = read(kSrc + "/scenarios/catalog/models/nemotron-3-nano-30b-a3b.json");
  std::string pattern = m["layer_pattern"];
  for (char& ch : pattern)
    if (ch == '*') ch = 'M';
  m["layer_pattern"] = pattern;
  j["model"] = m;
  try {
    load(j);
    FAIL() << "accepted a serving model without attention";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("/model"), std::string::npos) << what;
    EXPECT_NE(what.find("at least one attention layer"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace moesim::models
