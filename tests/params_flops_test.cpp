// Parameter and FLOP counts (models/params.cpp, models/block_pricing.cpp) against hand computations from
// the model dimensions and against published figures:
//   - DeepSeek-V3: 671B total / 37B active (DeepSeek-V3 report §4.2), 250 GFLOP per token at sequence
//     4096 (ISCA'25 Table 2), 432 TFLOP/s per GPU at 1541.7 tokens/s/GPU (ISCA'25 Table 4).
//   - DeepEP README: an FP8 dispatch copy of a 7168-wide token is 7408 bytes, a BF16 one 14336.
// Every expected value below is worked out in the comment above its assertion, not taken from the code.

#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/params.hpp"
#include "models/workload.hpp"
#include "scenarios/pipeline_layout.hpp"
#include "traces/load.hpp"

namespace moesim::models {
namespace {

// DeepSeek-V3 as in its config_671B.json (github deepseek-ai/DeepSeek-V3, inference/configs/), built
// inline: every figure is written here, nothing is read from outside the repository.
ModelSpec deepseek_v3() {
  ModelSpec m;
  m.name = "deepseek-v3-inline";
  m.layers = 61;
  m.hidden = 7168;
  m.vocab = 129280;
  m.dense_ffn = 18432;
  m.activation = Activation::kSwiglu;
  m.tied_embeddings = false;
  m.mtp_depth = 1;
  m.attention.kind = AttentionKind::kMla;
  m.attention.heads = 128;
  m.attention.kv_heads = 128;
  m.attention.head_dim = 128;  // qk_nope_head_dim
  m.attention.v_head_dim = 128;
  m.attention.q_lora_rank = 1536;
  m.attention.kv_lora_rank = 512;
  m.attention.rope_head_dim = 64;
  m.moe.experts = 256;
  m.moe.top_k = 8;
  m.moe.expert_ffn = 2048;
  m.moe.shared_experts = 1;
  m.moe.shared_ffn = 2048;
  m.moe.first_dense_layers = 3;
  m.moe.layer_freq = 1;
  m.moe.groups = 8;
  m.moe.topk_groups = 4;
  m.moe.score = RouterScore::kSigmoid;
  return m;
}

// ------------------------------------------------------------------------------------ DeepSeek-V3

TEST(CountParams, DeepSeekV3AttentionPerLayerExact) {
  const ParamCounts p = count_params(deepseek_v3());
  // q_a 7168·1536 = 11,010,048; q_b 1536·128·(128+64) = 37,748,736; kv_a 7168·(512+64) = 4,128,768;
  // kv_b 512·128·(128+128) = 16,777,216; o 128·128·7168 = 117,440,512; latent norms 1536 + 512 = 2048.
  // Sum: 187,107,328.
  const double expected =
      7168.0 * 1536 + 1536.0 * 128 * 192 + 7168.0 * 576 + 512.0 * 128 * 256 + 128.0 * 128 * 7168 + 1536 + 512;
  EXPECT_EQ(expected, 187107328.0);
  EXPECT_EQ(p.attention_per_layer, expected);
}

TEST(CountParams, DeepSeekV3PerBlockPieces) {
  const ParamCounts p = count_params(deepseek_v3());
  // SwiGLU: gate, up, down = 3·h·f.
  // Routed expert: 3·7168·2048 = 44,040,192.
  EXPECT_EQ(p.expert, 3.0 * 7168 * 2048);
  EXPECT_EQ(p.expert, 44040192.0);
  // One shared expert of the same width.
  EXPECT_EQ(p.shared_per_layer, 44040192.0);
  // Dense FFN of the first 3 layers: 3·7168·18432 = 396,361,728.
  EXPECT_EQ(p.dense_ffn_per_layer, 396361728.0);
  // Router: hidden × experts = 7168·256 = 1,835,008.
  EXPECT_EQ(p.router_per_layer, 1835008.0);
  // Two RMSNorms per block: 2·7168.
  EXPECT_EQ(p.norms_per_layer, 14336.0);
  // Embedding and (untied) head: 129280·7168 = 926,679,040 each.
  EXPECT_EQ(p.embedding, 926679040.0);
  EXPECT_EQ(p.head, 926679040.0);
  // first_k_dense_replace 3 → 3 dense blocks and 58 MoE blocks.
  EXPECT_EQ(p.dense_layers, 3);
  EXPECT_EQ(p.moe_layers, 58);
}

TEST(CountParams, DeepSeekV3TotalAndActiveMatchPublished) {
  const ParamCounts p = count_params(deepseek_v3());
  // Model card: 671B total, 37B active (main model, MTP excluded).
  EXPECT_NEAR(p.total / 671e9, 1.0, 0.005);
  EXPECT_NEAR(p.active / 37e9, 1.0, 0.02);
  // Exact hand total: 61·(attn + norms) + 3·dense + 58·(shared + router) + emb + head + final norm
  //   + 58·256·expert (total) or 58·8·expert (active).
  const double h = 7168, attn = 187107328.0, expert = 3 * h * 2048;
  const double common =
      61 * (attn + 2 * h) + 3 * (3 * h * 18432) + 58 * (expert + h * 256) + 2 * 129280 * h + h;
  EXPECT_EQ(p.total, common + 58.0 * 256 * expert);
  EXPECT_EQ(p.active, common + 58.0 * 8 * expert);
}

TEST(CountParams, DeepSeekV3MtpModule) {
  const ParamCounts p = count_params(deepseek_v3());
  // One MTP module (DeepSeek-V3 §2.2): one MoE block (attention, 2 norms, shared expert, router,
  // 256 experts) + a 2h→h projection (2·h²) + two more norms (2·h); embedding and head are shared.
  // ≈ 11.61B (the hub's 685B − 671B ≈ 14B also counts the shared embedding/head copies).
  const double h = 7168, expert = 3 * h * 2048;
  const double expected = 187107328.0 + 2 * h + expert + h * 256 + 256 * expert + 2 * h * h + 2 * h;
  EXPECT_EQ(p.mtp, expected);
  // MTP is not part of total.
  EXPECT_LT(p.total, 672e9);
}

// ------------------------------------------------------------------------------- small, by hand

TEST(CountParams, SmallMhaGeluTiedByHand) {
  ModelSpec m;
  m.layers = 2;
  m.hidden = 64;
  m.vocab = 100;
  m.dense_ffn = 256;
  m.activation = Activation::kGelu;
  m.tied_embeddings = true;
  m.attention.kind = AttentionKind::kMha;
  m.attention.heads = 4;
  m.attention.kv_heads = 4;
  m.attention.head_dim = 16;
  m.attention.v_head_dim = 16;
  const ParamCounts p = count_params(m);
  // Wq, Wk, Wv, Wo each 64 × (4·16) = 4096 → 16,384.
  EXPECT_EQ(p.attention_per_layer, 16384.0);
  // GELU FFN: up + down = 2·64·256 = 32,768.
  EXPECT_EQ(p.dense_ffn_per_layer, 32768.0);
  EXPECT_EQ(p.norms_per_layer, 128.0);
  EXPECT_EQ(p.embedding, 6400.0);
  EXPECT_EQ(p.head, 0.0);  // tied
  EXPECT_EQ(p.dense_layers, 2);
  EXPECT_EQ(p.moe_layers, 0);
  // total = 2·(16384 + 128 + 32768) + 6400 (embedding) + 0 (tied head) + 64 (final norm) = 105,024.
  EXPECT_EQ(p.total, 105024.0);
  EXPECT_EQ(p.active, 105024.0);  // dense: every parameter is active
  EXPECT_EQ(p.mtp, 0.0);
}

TEST(CountParams, SmallMhaSwigluUntiedByHand) {
  ModelSpec m;
  m.layers = 2;
  m.hidden = 64;
  m.vocab = 100;
  m.dense_ffn = 256;
  m.activation = Activation::kSwiglu;
  m.attention.kind = AttentionKind::kMha;
  m.attention.heads = 4;
  m.attention.kv_heads = 4;
  m.attention.head_dim = 16;
  m.attention.v_head_dim = 16;
  const ParamCounts p = count_params(m);
  // SwiGLU: 3·64·256 = 49,152. total = 2·(16384 + 128 + 49152) + 6400 + 6400 + 64 = 144,192.
  EXPECT_EQ(p.dense_ffn_per_layer, 49152.0);
  EXPECT_EQ(p.total, 144192.0);
  EXPECT_EQ(p.active, 144192.0);
}

TEST(CountParams, SmallGqaMoeByHand) {
  ModelSpec m;
  m.layers = 4;
  m.hidden = 128;
  m.vocab = 1000;
  m.dense_ffn = 512;
  m.activation = Activation::kSwiglu;
  m.attention.kind = AttentionKind::kGqa;
  m.attention.heads = 8;
  m.attention.kv_heads = 2;
  m.attention.head_dim = 16;
  m.attention.v_head_dim = 16;
  m.attention.qkv_bias = true;
  m.moe.experts = 8;
  m.moe.top_k = 2;
  m.moe.expert_ffn = 64;
  m.moe.shared_experts = 1;
  m.moe.shared_ffn = 64;
  m.moe.first_dense_layers = 1;
  m.moe.layer_freq = 1;
  const ParamCounts p = count_params(m);
  // Wq 128·8·16 = 16,384; Wk + Wv 2·128·2·16 = 8,192; Wo 8·16·128 = 16,384;
  // biases q 8·16 = 128, k and v 2·2·16 = 64 → 41,152.
  EXPECT_EQ(p.attention_per_layer, 41152.0);
  // expert 3·128·64 = 24,576; shared the same; router 128·8 = 1,024; dense 3·128·512 = 196,608.
  EXPECT_EQ(p.expert, 24576.0);
  EXPECT_EQ(p.shared_per_layer, 24576.0);
  EXPECT_EQ(p.router_per_layer, 1024.0);
  EXPECT_EQ(p.dense_ffn_per_layer, 196608.0);
  EXPECT_EQ(p.dense_layers, 1);
  EXPECT_EQ(p.moe_layers, 3);
  // common = 4·(41152 + 256) + 1·196608 + 3·(24576 + 1024) + 2·128000 + 128 = 695,168
  // total  = common + 3·8·24576 = 1,284,992; active = common + 3·2·24576 = 842,624.
  EXPECT_EQ(p.total, 1284992.0);
  EXPECT_EQ(p.active, 842624.0);
}

TEST(CountParams, GqaValueHeadDimDiffersFromKeyHeadDim) {
  ModelSpec m;
  m.layers = 1;
  m.hidden = 128;
  m.vocab = 10;
  m.dense_ffn = 64;
  m.attention.kind = AttentionKind::kGqa;
  m.attention.heads = 8;
  m.attention.kv_heads = 2;
  m.attention.head_dim = 16;
  m.attention.v_head_dim = 32;  // the loader accepts v_head_dim for every attention kind
  const ParamCounts p = count_params(m);
  // Wq 128·8·16 = 16,384; Wk 128·2·16 = 4,096; Wv 128·2·32 = 8,192; Wo 8·32·128 = 32,768 → 61,440.
  const double expected = 16384.0 + 4096.0 + 8192.0 + 32768.0;
  EXPECT_EQ(p.attention_per_layer, expected);
}

TEST(CountParams, LayerFrequencyAndFirstDense) {
  ModelSpec m;
  m.layers = 8;
  m.moe.experts = 4;
  m.moe.first_dense_layers = 2;
  m.moe.layer_freq = 2;
  // Layers 0,1 dense (first_dense); then every 2nd from layer 2: 2, 4, 6 MoE; 3, 5, 7 dense.
  const bool want[8] = {false, false, true, false, true, false, true, false};
  for (int l = 0; l < 8; ++l) EXPECT_EQ(is_moe_layer(m, l), want[l]) << "layer " << l;
  m.moe.experts = 0;  // dense model: no MoE layer anywhere
  for (int l = 0; l < 8; ++l) EXPECT_FALSE(is_moe_layer(m, l));
}

// ----------------------------------------------------------------------------------------- FLOPs

TEST(TrainingFlops, DeepSeekV3CausalMatchesPublished250GFlop) {
  // ISCA'25 Table 2: 250 GFLOP per token at sequence 4096.
  const double f = training_flops_per_token(deepseek_v3(), 4096, true);
  EXPECT_NEAR(f / 250e9, 1.0, 0.02);
}

TEST(TrainingFlops, DeepSeekV3NonCausalMatchesPublished432TFlops) {
  // ISCA'25 Table 4: 432 TFLOP/s per GPU (non-causal convention) at 1541.7 tokens/s/GPU.
  const double f = training_flops_per_token(deepseek_v3(), 4096, false);
  EXPECT_NEAR(f * 1541.7 / 432e12, 1.0, 0.02);
}

TEST(TrainingFlops, DeepSeekV3ExactFormula) {
  const ModelSpec m = deepseek_v3();
  const ParamCounts p = count_params(m);
  // Matmul parameters: active − embedding (a lookup) − 61 blocks' norms − final norm.
  const double h = 7168;
  const double matmul = p.active - 129280 * h - 61 * 2 * h - h;
  // Attention scores and values: 6·ctx·heads·(dqk + dv) per layer, dqk = 128 + 64, dv = 128;
  // causal ctx = S/2 = 2048, non-causal ctx = S = 4096.
  const double attn_causal = 61 * 6.0 * 2048 * 128 * (192 + 128);
  const double attn_full = 61 * 6.0 * 4096 * 128 * (192 + 128);
  EXPECT_NEAR(training_flops_per_token(m, 4096, true), 6 * matmul + attn_causal, 1.0);
  EXPECT_NEAR(training_flops_per_token(m, 4096, false), 6 * matmul + attn_full, 1.0);
  // The causal mask halves exactly the attention term.
  EXPECT_NEAR(training_flops_per_token(m, 4096, false) - training_flops_per_token(m, 4096, true), attn_causal,
              1.0);
}

TEST(TrainingFlops, SmallMhaByHand) {
  ModelSpec m;
  m.layers = 2;
  m.hidden = 64;
  m.vocab = 100;
  m.dense_ffn = 256;
  m.activation = Activation::kSwiglu;
  m.attention.kind = AttentionKind::kMha;
  m.attention.heads = 4;
  m.attention.kv_heads = 4;
  m.attention.head_dim = 16;
  m.attention.v_head_dim = 16;
  // matmul params = 2·(16384 + 49152) + 6400 (head) = 137,472 → 6·137,472 = 824,832.
  // attention at S = 128 causal: 2 layers · 6 · 64 · 4 · (16 + 16) = 98,304 → 923,136.
  EXPECT_DOUBLE_EQ(training_flops_per_token(m, 128, true), 923136.0);
  // Non-causal: attention 196,608 → 1,021,440.
  EXPECT_DOUBLE_EQ(training_flops_per_token(m, 128, false), 1021440.0);
}

// ------------------------------------------------------------------------------------ split_blocks

TEST(SplitBlocks, DeepSeekV3SixtyTwoOverSixteen) {
  // 61 blocks + 1 MTP = 62 over PP16: 62 = 16·3 + 14, so 14 middle chunks get 4, first and last 3.
  const std::vector<int> n = split_blocks(62, 16);
  ASSERT_EQ(n.size(), 16u);
  EXPECT_EQ(n.front(), 3);
  EXPECT_EQ(n.back(), 3);
  for (int c = 1; c < 15; ++c) EXPECT_EQ(n[c], 4) << "chunk " << c;
}

// ---------------------------------------------------------------------------------- pipeline layout

// Decoder and MTP layers per stage of a parsed layout.
std::vector<int> blocks_per_stage(const std::string& layout) {
  std::vector<int> n;
  for (const LayoutStage& st : parse_pipeline_layout(layout)) n.push_back(st.decoder + st.mtp);
  return n;
}

TEST(PipelineLayout, DeepSeekV3RecipeLayoutIsTheEvenSplit) {
  // Megatron-Bridge's DeepSeek-V3 PP8 VP4 layout "Et|(tt|)*30mL": 32 stages, embedding and one layer,
  // thirty stages of two layers, then MTP and loss. 62 blocks over 32 chunks split evenly give the same.
  const auto st = parse_pipeline_layout("Et|(tt|)*30mL");
  ASSERT_EQ(st.size(), 32u);
  EXPECT_TRUE(st.front().embedding);
  EXPECT_EQ(st.front().decoder, 1);
  EXPECT_TRUE(st.back().loss);
  EXPECT_EQ(st.back().mtp, 1);
  EXPECT_EQ(st.back().decoder, 0);
  EXPECT_EQ(blocks_per_stage("Et|(tt|)*30mL"), split_blocks(62, 32));
  EXPECT_TRUE(check_pipeline_layout(st, 61, 1, 32).expected.empty());
}

TEST(PipelineLayout, RepeatsSymbolsGroupsAndEmptyStages) {
  // "Et*4|(t*4|)*14tmL" (DeepSeek-V3 at PP8 VP2): 4, then fourteen 4s, then 1 + MTP = 2.
  std::vector<int> want{4};
  want.insert(want.end(), 14, 4);
  want.push_back(2);
  EXPECT_EQ(blocks_per_stage("Et*4|(t*4|)*14tmL"), want);
  EXPECT_EQ(blocks_per_stage("Etttt|(tttt|)*14tmL"), want);
  // Embedding and loss on stages of their own: 0, 1 x 3, 0. Nested groups multiply; spaces are ignored.
  EXPECT_EQ(blocks_per_stage("E|(t|)*3L"), (std::vector<int>{0, 1, 1, 1, 0}));
  EXPECT_EQ(blocks_per_stage("E| ((t|)*2)*2 L"), (std::vector<int>{0, 1, 1, 1, 1, 0}));
  // Commas are cosmetic, as Megatron-Core reads them: Megatron-Bridge's Llama-3 70B H100 recipe (PP8 VP5,
  // perf_recipes/llama/h100/llama3.py) gives 2, thirty-four 2s, 3, three 2s, then 1: 40 stages, 80 layers.
  std::vector<int> llama{2};
  llama.insert(llama.end(), 34, 2);
  llama.push_back(3);
  llama.insert(llama.end(), 3, 2);
  llama.push_back(1);
  EXPECT_EQ(blocks_per_stage("Et*2|(t*2|)*34,t*3|(t*2|)*3,tL"), llama);
  EXPECT_EQ(blocks_per_stage("E,t,t|,(t|)*2,L"), (std::vector<int>{2, 1, 1, 0}));  // "Ett|(t|)*2L"
}

TEST(PipelineLayout, MalformedStringsNameTheCharacter) {
  const auto message = [](const std::string& layout) {
    try {
      parse_pipeline_layout(layout);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message("E|(t|*3L"), "at character 9: expected ')' before the end");
  EXPECT_EQ(message("Et)"), "at character 3: ')' without '('");
  EXPECT_EQ(message("Etx|L"), "at character 3: unknown symbol 'x' (expected E, t, m, L, '|', '(' or ')')");
  EXPECT_EQ(message("Et*|L"), "at character 4: expected a repeat count after '*'");
  EXPECT_EQ(message("(t|)*0"), "at character 7: a repeat count of 0 (counts start at 1)");
  EXPECT_EQ(message("(t*1000|)*1000"), "expands beyond 1000000 symbols");
  // Positions count the commas the parser skips.
  EXPECT_EQ(message("Et,,x|L"), "at character 5: unknown symbol 'x' (expected E, t, m, L, '|', '(' or ')')");
  EXPECT_EQ(message("E|(t|,"), "at character 7: expected ')' before the end");
}

TEST(PipelineLayout, ChecksWhatTheModelAndPipelineNeed) {
  const auto problem = [](const std::string& layout, int layers, int mtp, int stages) {
    const LayoutProblem p = check_pipeline_layout(parse_pipeline_layout(layout), layers, mtp, stages);
    return p.expected + " / " + p.found;
  };
  EXPECT_EQ(problem("Et|tL", 2, 0, 3), "3 stages (pp x vpp) / 2");
  EXPECT_EQ(problem("Et|tL", 3, 0, 2), "3 decoder layers 't' / 2");
  EXPECT_EQ(problem("Et|tL", 2, 1, 2), "1 MTP layers 'm' / 0");
  EXPECT_EQ(problem("Et|mtL", 2, 1, 2),
            "MTP layers after every decoder layer / a decoder layer in stage 1 after an MTP layer");
  EXPECT_EQ(problem("t|EtL", 2, 0, 2), "the embedding 'E' in stage 0 / it in stage 1");
  EXPECT_EQ(problem("EtL|t", 2, 0, 2), "the loss 'L' in the last stage / it in stage 0");
  EXPECT_EQ(problem("t|t", 2, 0, 2), "one embedding 'E' (in stage 0) / 0");
  EXPECT_EQ(problem("Et|t", 2, 0, 2), "one loss 'L' (in the last stage) / 0");
  EXPECT_EQ(problem("Et|tL", 2, 0, 2), " / ");
}

TEST(SplitBlocks, EvenSplitAndSingleChunk) {
  // 64 over 16: 4 each. 7 over 1: everything in the one chunk.
  EXPECT_EQ(split_blocks(64, 16), std::vector<int>(16, 4));
  EXPECT_EQ(split_blocks(7, 1), std::vector<int>{7});
  // 10 over 4: 2 each + remainder 2 → middle chunks 1, 2 get 3: {2, 3, 3, 2}.
  EXPECT_EQ(split_blocks(10, 4), (std::vector<int>{2, 3, 3, 2}));
  // 5 over 2: no middle chunk; remainder 1 goes to the last: {2, 3}.
  EXPECT_EQ(split_blocks(5, 2), (std::vector<int>{2, 3}));
  // 11 over 4: remainder 3 fills both middle chunks, then the last: {2, 3, 3, 3}.
  EXPECT_EQ(split_blocks(11, 4), (std::vector<int>{2, 3, 3, 3}));
}

TEST(SplitBlocks, RandomCasesPreserveSumAndBalance) {
  traces::SplitMix64 rng(12345);
  for (int i = 0; i < 2000; ++i) {
    const int chunks = 1 + static_cast<int>(rng.below(64));
    const int blocks = chunks + static_cast<int>(rng.below(256));  // at least one block per chunk
    const std::vector<int> n = split_blocks(blocks, chunks);
    ASSERT_EQ(static_cast<int>(n.size()), chunks);
    // Sum preserved; every chunk gets floor(blocks/chunks) or one more.
    EXPECT_EQ(std::accumulate(n.begin(), n.end(), 0), blocks) << blocks << " over " << chunks;
    const int lo = blocks / chunks;
    for (int v : n) {
      EXPECT_GE(v, lo);
      EXPECT_LE(v, lo + 1);
    }
    // The first chunk (embedding) never gets more than the middle ones.
    if (chunks > 2) {
      EXPECT_LE(n.front(), n[1]);
    }
  }
}

// --------------------------------------------------------------------------------- dispatch bytes

TEST(DispatchBytes, DeepEpReadme) {
  // FP8: 7168 values + 7168/128 = 56 FP32 scales (224 B) + 16 B metadata = 7408 B (DeepEP README).
  EXPECT_EQ(dispatch_bytes_per_token(7168, Precision::kFp8), 7408.0);
  // BF16 combine: 2·7168 = 14336 B.
  EXPECT_EQ(dispatch_bytes_per_token(7168, Precision::kBf16), 14336.0);
  // A 4096-wide token: 4096 + 32·4 + 16 = 4240 (FP8), 8192 (BF16).
  EXPECT_EQ(dispatch_bytes_per_token(4096, Precision::kFp8), 4240.0);
  EXPECT_EQ(dispatch_bytes_per_token(4096, Precision::kBf16), 8192.0);
}

TEST(DispatchBytes, GradientTowardTheExpertsFollowsTheRecipe) {
  // DeepSeek-V3 (§3.3.2) sends the activation gradient before the MoE down-projections in FP8: the
  // combine's gradient costs 7408 B per copy for hidden 7168, like the forward dispatch; without the
  // flag BF16, 14336 B.
  WorkloadSpec w;
  w.precision = Precision::kFp8;
  EXPECT_EQ(grad_dispatch_bytes_per_token(w, 7168), 14336.0);
  w.fp8_dispatch_grad = true;
  EXPECT_EQ(grad_dispatch_bytes_per_token(w, 7168), 7408.0);
}

TEST(DispatchBytes, ForwardDispatchFollowsTheFramework) {
  // Megatron-Core's DeepEP and HybridEP dispatchers send BF16 hidden states and quantize after the
  // dispatch (megatron/core/transformer/moe/fused_a2a.py: "we do not support fp8 dispatch"), so FP8
  // training dispatches 2 bytes per element unless the scenario says fp8 (DeepSeek-V3's own framework);
  // serving dispatches at the GEMMs' precision (DeepEP's FP8 dispatch).
  WorkloadSpec w;
  w.precision = Precision::kFp8;
  EXPECT_EQ(forward_dispatch_precision(w), Precision::kBf16);
  EXPECT_EQ(dispatch_bytes_per_token(7168, forward_dispatch_precision(w)), 14336.0);
  w.dispatch_dtype = DispatchDtype::kFp8;
  EXPECT_EQ(dispatch_bytes_per_token(7168, forward_dispatch_precision(w)), 7408.0);
  w.dispatch_dtype = DispatchDtype::kAuto;
  w.kind = WorkloadKind::kServing;
  EXPECT_EQ(forward_dispatch_precision(w), Precision::kFp8);
  w.dispatch_dtype = DispatchDtype::kBf16;
  EXPECT_EQ(forward_dispatch_precision(w), Precision::kBf16);
  w.precision = Precision::kBf16;
  w.dispatch_dtype = DispatchDtype::kAuto;
  EXPECT_EQ(forward_dispatch_precision(w), Precision::kBf16);
}

}  // namespace
}  // namespace moesim::models
