// Hugging Face config.json import. The fixtures under tests/data/hf/ are the config.json files of
// published models, one or more per family, named after the model (with their extra keys such as
// rope_scaling, quantization_config, vision_config and token ids, which the importer must ignore; the
// Phi-3.5-MoE file leaves out rope_scaling's two long-RoPE factor lists). Each is imported and read back
// with model_from_json, every modelled dimension compared with the value in the file, and the parameter
// counts of models/params.cpp compared with what the model's publisher states. Then the errors: every
// key the importer reads is range-checked and named in the message, never a pointer into the generated
// entry.

#include "scenarios/hf_import.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "models/params.hpp"
#include "scenarios/error.hpp"
#include "scenarios/json_reader.hpp"
#include "scenarios/loader.hpp"
#include "scenarios/scenario.hpp"

namespace moesim {
namespace {

std::string hf_path(const std::string& file) {
  return std::string(MOESIM_TEST_DATA) + "/hf/" + file;
}

Json hf_config(const std::string& file) {
  return read_json_file(hf_path(file));
}

// Imports a config file and reads the result back as a ModelSpec.
ModelSpec import_file(const std::string& file, const std::string& name = "") {
  const std::string src = hf_path(file);
  Json entry = import_hf_config(read_json_file(src), src, name);
  return model_from_json(entry, src + " (imported)", "");
}

ModelSpec import_json(const Json& c, const std::string& src = "cfg.json") {
  return model_from_json(import_hf_config(c, src, ""), src, "");
}

template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no exception";
  return "";
}

std::string import_error(const Json& c, const std::string& src = "cfg.json") {
  return message_of<ConfigError>([&] { import_hf_config(c, src, ""); });
}

void erase_at(Json& c, const std::string& pointer) {
  const Json::json_pointer p(pointer);
  c[p.parent_pointer()].erase(p.back());
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

const std::vector<std::string> kFixtures = {"deepseek_v2.json",
                                            "deepseek_v3.json",
                                            "deepseek_v3_2_exp.json",
                                            "kimi_k2_instruct.json",
                                            "glm_4_5.json",
                                            "glm_4_5_air.json",
                                            "qwen1_5_moe_a2_7b.json",
                                            "qwen3_30b_a3b.json",
                                            "qwen3_235b_a22b.json",
                                            "mixtral_8x7b.json",
                                            "olmoe.json",
                                            "gpt_oss_120b.json",
                                            "nemotron_3_nano_30b_a3b.json",
                                            "qwen3_next_80b_a3b.json",
                                            "llama_4_scout_17b_16e.json",
                                            "llama_4_maverick_17b_128e.json",
                                            "dbrx_instruct.json",
                                            "phi_3_5_moe_instruct.json",
                                            "llama_3_1_8b.json",
                                            "mistral_7b_v0_1.json",
                                            "qwen2_5_7b.json",
                                            "qwen3_8b.json"};

// --------------------------------------------------------------------------------- the MoE families

TEST(HfImport, DeepSeekV3) {
  // config.json of deepseek-ai/DeepSeek-V3.
  ModelSpec m = import_file("deepseek_v3.json", "deepseek-v3");
  EXPECT_EQ(m.name, "deepseek-v3");
  EXPECT_EQ(m.layers, 61);
  EXPECT_EQ(m.hidden, 7168);
  EXPECT_EQ(m.vocab, 129280);
  EXPECT_EQ(m.dense_ffn, 18432);
  EXPECT_EQ(m.activation, Activation::kSwiglu);  // hidden_act silu
  EXPECT_FALSE(m.tied_embeddings);
  EXPECT_EQ(m.mtp_depth, 1);  // num_nextn_predict_layers
  const auto& a = m.attention;
  EXPECT_EQ(a.kind, AttentionKind::kMla);
  EXPECT_EQ(a.heads, 128);
  EXPECT_EQ(a.kv_heads, 128);  // MLA: one latent per head, reported as heads
  EXPECT_EQ(a.head_dim, 128);  // qk_nope_head_dim
  EXPECT_EQ(a.v_head_dim, 128);
  EXPECT_EQ(a.q_lora_rank, 1536);
  EXPECT_EQ(a.kv_lora_rank, 512);
  EXPECT_EQ(a.rope_head_dim, 64);
  EXPECT_EQ(a.sliding_window, 0);
  const auto& e = m.moe;
  EXPECT_EQ(e.experts, 256);
  EXPECT_EQ(e.top_k, 8);
  EXPECT_EQ(e.expert_ffn, 2048);
  EXPECT_EQ(e.shared_experts, 1);
  EXPECT_EQ(e.shared_ffn, 2048);       // a shared expert is the size of a routed one
  EXPECT_EQ(e.first_dense_layers, 3);  // first_k_dense_replace
  EXPECT_EQ(e.layer_freq, 1);
  EXPECT_EQ(e.groups, 8);
  EXPECT_EQ(e.topk_groups, 4);
  EXPECT_EQ(e.score, RouterScore::kSigmoid);
}

TEST(HfImport, DeepSeekV2) {
  // config.json of deepseek-ai/DeepSeek-V2: 2 shared experts, 1 dense layer, softmax routing limited to
  // 3 of 8 groups.
  ModelSpec m = import_file("deepseek_v2.json");
  EXPECT_EQ(m.name, "deepseek_v2");  // no _name_or_path: the model_type
  EXPECT_EQ(m.layers, 60);
  EXPECT_EQ(m.hidden, 5120);
  EXPECT_EQ(m.vocab, 102400);
  EXPECT_EQ(m.dense_ffn, 12288);
  EXPECT_EQ(m.mtp_depth, 0);
  EXPECT_EQ(m.attention.kind, AttentionKind::kMla);
  EXPECT_EQ(m.attention.heads, 128);
  EXPECT_EQ(m.attention.q_lora_rank, 1536);
  EXPECT_EQ(m.attention.kv_lora_rank, 512);
  EXPECT_EQ(m.moe.experts, 160);
  EXPECT_EQ(m.moe.top_k, 6);
  EXPECT_EQ(m.moe.expert_ffn, 1536);
  EXPECT_EQ(m.moe.shared_experts, 2);
  EXPECT_EQ(m.moe.first_dense_layers, 1);
  EXPECT_EQ(m.moe.groups, 8);
  EXPECT_EQ(m.moe.topk_groups, 3);
  EXPECT_EQ(m.moe.score, RouterScore::kSoftmax);
}

TEST(HfImport, DeepSeekV32IndexerIsNamedAsNotModelled) {
  // config.json of deepseek-ai/DeepSeek-V3.2-Exp: DeepSeek-V3's MoE and MLA plus the sparse-attention
  // indexer (index_n_heads 64, index_head_dim 128, index_topk 2048), which the catalog cannot express.
  const std::string src = hf_path("deepseek_v3_2_exp.json");
  Json entry = import_hf_config(read_json_file(src), src, "");
  ModelSpec m = model_from_json(entry, src, "");
  EXPECT_EQ(m.attention.kind, AttentionKind::kMla);
  EXPECT_EQ(m.attention.kv_lora_rank, 512);
  EXPECT_EQ(m.moe.experts, 256);
  EXPECT_EQ(m.moe.top_k, 8);
  EXPECT_EQ(m.moe.first_dense_layers, 3);
  EXPECT_EQ(m.moe.score, RouterScore::kSigmoid);
  const std::string source = entry["source"];
  EXPECT_NE(source.find("model_type deepseek_v32"), std::string::npos) << source;
  EXPECT_NE(source.find("not modelled: the DeepSeek sparse attention indexer (index_n_heads 64 x "
                        "index_head_dim 128, index_topk 2048)"),
            std::string::npos)
      << source;
}

TEST(HfImport, KimiK2) {
  // config.json of moonshotai/Kimi-K2-Instruct (model_type kimi_k2, DeepSeek-V3 keys): 384 experts,
  // 64 heads, one dense layer, no group limit (n_group 1), no MTP module.
  ModelSpec m = import_file("kimi_k2_instruct.json");
  EXPECT_EQ(m.layers, 61);
  EXPECT_EQ(m.vocab, 163840);
  EXPECT_EQ(m.mtp_depth, 0);
  EXPECT_EQ(m.attention.kind, AttentionKind::kMla);
  EXPECT_EQ(m.attention.heads, 64);
  EXPECT_EQ(m.moe.experts, 384);
  EXPECT_EQ(m.moe.top_k, 8);
  EXPECT_EQ(m.moe.expert_ffn, 2048);
  EXPECT_EQ(m.moe.shared_experts, 1);
  EXPECT_EQ(m.moe.first_dense_layers, 1);
  EXPECT_EQ(m.moe.groups, 1);
  EXPECT_EQ(m.moe.topk_groups, 1);
  EXPECT_EQ(m.moe.score, RouterScore::kSigmoid);
}

TEST(HfImport, Glm45) {
  // config.json of zai-org/GLM-4.5: GQA 96 heads / 8 KV heads of 128 (not 5120 / 96), q/k/v bias, 3
  // dense layers, 160 experts + 1 shared, one MTP layer.
  const std::string src = hf_path("glm_4_5.json");
  Json entry = import_hf_config(read_json_file(src), src, "");
  ModelSpec m = model_from_json(entry, src, "");
  EXPECT_EQ(m.layers, 92);
  EXPECT_EQ(m.hidden, 5120);
  EXPECT_EQ(m.vocab, 151552);
  EXPECT_EQ(m.dense_ffn, 12288);
  EXPECT_EQ(m.mtp_depth, 1);
  EXPECT_EQ(m.attention.kind, AttentionKind::kGqa);
  EXPECT_EQ(m.attention.heads, 96);
  EXPECT_EQ(m.attention.kv_heads, 8);
  EXPECT_EQ(m.attention.head_dim, 128);
  EXPECT_TRUE(m.attention.qkv_bias);
  EXPECT_EQ(m.moe.experts, 160);
  EXPECT_EQ(m.moe.top_k, 8);
  EXPECT_EQ(m.moe.expert_ffn, 1536);
  EXPECT_EQ(m.moe.shared_experts, 1);
  EXPECT_EQ(m.moe.first_dense_layers, 3);
  EXPECT_EQ(m.moe.layer_freq, 1);
  EXPECT_EQ(m.moe.score, RouterScore::kSigmoid);
  const std::string source = entry["source"];
  EXPECT_NE(source.find("partial_rotary_factor"), std::string::npos) << source;
  EXPECT_NE(source.find("use_qk_norm"), std::string::npos) << source;
}

TEST(HfImport, Glm45Air) {
  // config.json of zai-org/GLM-4.5-Air: 46 layers, 1 dense, 128 experts of 1408.
  ModelSpec m = import_file("glm_4_5_air.json");
  EXPECT_EQ(m.layers, 46);
  EXPECT_EQ(m.hidden, 4096);
  EXPECT_EQ(m.dense_ffn, 10944);
  EXPECT_EQ(m.attention.heads, 96);
  EXPECT_EQ(m.attention.head_dim, 128);
  EXPECT_EQ(m.moe.experts, 128);
  EXPECT_EQ(m.moe.expert_ffn, 1408);
  EXPECT_EQ(m.moe.first_dense_layers, 1);
}

TEST(HfImport, Mixtral8x7B) {
  // config.json of mistralai/Mixtral-8x7B-v0.1.
  ModelSpec m = import_file("mixtral_8x7b.json", "mixtral-8x7b");
  EXPECT_EQ(m.layers, 32);
  EXPECT_EQ(m.hidden, 4096);
  EXPECT_EQ(m.vocab, 32000);
  EXPECT_EQ(m.dense_ffn, 0);
  EXPECT_EQ(m.activation, Activation::kSwiglu);
  EXPECT_EQ(m.mtp_depth, 0);
  EXPECT_EQ(m.attention.kind, AttentionKind::kGqa);  // 8 KV heads < 32 heads
  EXPECT_EQ(m.attention.heads, 32);
  EXPECT_EQ(m.attention.kv_heads, 8);
  EXPECT_EQ(m.attention.head_dim, 128);  // no head_dim key: 4096 / 32
  EXPECT_FALSE(m.attention.qkv_bias);
  EXPECT_EQ(m.attention.sliding_window, 0);  // "sliding_window": null
  EXPECT_EQ(m.moe.experts, 8);               // num_local_experts
  EXPECT_EQ(m.moe.top_k, 2);
  EXPECT_EQ(m.moe.expert_ffn, 14336);  // intermediate_size is the expert size in Mixtral
  EXPECT_EQ(m.moe.shared_experts, 0);
  EXPECT_EQ(m.moe.first_dense_layers, 0);
  EXPECT_EQ(m.moe.layer_freq, 1);
}

TEST(HfImport, Qwen3_30B_A3B) {
  // config.json of Qwen/Qwen3-30B-A3B.
  ModelSpec m = import_file("qwen3_30b_a3b.json", "qwen3-30b-a3b");
  EXPECT_EQ(m.layers, 48);
  EXPECT_EQ(m.hidden, 2048);
  EXPECT_EQ(m.vocab, 151936);
  EXPECT_EQ(m.dense_ffn, 6144);  // intermediate_size (unused: every layer is MoE)
  EXPECT_FALSE(m.tied_embeddings);
  EXPECT_EQ(m.mtp_depth, 0);
  EXPECT_EQ(m.attention.kind, AttentionKind::kGqa);
  EXPECT_EQ(m.attention.heads, 32);
  EXPECT_EQ(m.attention.kv_heads, 4);
  EXPECT_EQ(m.attention.head_dim, 128);  // explicit head_dim, not 2048 / 32 = 64
  EXPECT_EQ(m.moe.experts, 128);
  EXPECT_EQ(m.moe.top_k, 8);
  EXPECT_EQ(m.moe.expert_ffn, 768);  // moe_intermediate_size
  EXPECT_EQ(m.moe.shared_experts, 0);
  EXPECT_EQ(m.moe.first_dense_layers, 0);
  EXPECT_EQ(m.moe.layer_freq, 1);  // decoder_sparse_step
  EXPECT_EQ(m.moe.score, RouterScore::kSoftmax);
}

TEST(HfImport, Qwen15MoeSharedExpertAndQkvBias) {
  // config.json of Qwen/Qwen1.5-MoE-A2.7B (model_type qwen2_moe): 60 experts of 1408, top-4, one shared
  // expert of shared_expert_intermediate_size 5632; Qwen2 attention always has q/k/v biases.
  ModelSpec m = import_file("qwen1_5_moe_a2_7b.json");
  EXPECT_EQ(m.layers, 24);
  EXPECT_EQ(m.attention.kind, AttentionKind::kMha);
  EXPECT_TRUE(m.attention.qkv_bias);
  EXPECT_EQ(m.moe.experts, 60);
  EXPECT_EQ(m.moe.top_k, 4);
  EXPECT_EQ(m.moe.expert_ffn, 1408);
  EXPECT_EQ(m.moe.shared_experts, 1);
  EXPECT_EQ(m.moe.shared_ffn, 5632);
}

TEST(HfImport, QwenDecoderSparseStepMakesLeadingLayersDense) {
  // Qwen2-MoE: layer i is sparse when (i + 1) % decoder_sparse_step == 0, so step 2 makes layers
  // 1, 3, 5, ... MoE and layer 0 dense.
  Json c = hf_config("qwen1_5_moe_a2_7b.json");
  c["decoder_sparse_step"] = 2;
  ModelSpec m = import_json(c);
  EXPECT_EQ(m.moe.first_dense_layers, 1);
  EXPECT_EQ(m.moe.layer_freq, 2);
  EXPECT_EQ(m.dense_ffn, 5632);
  EXPECT_FALSE(models::is_moe_layer(m, 0));
  EXPECT_TRUE(models::is_moe_layer(m, 1));
  EXPECT_FALSE(models::is_moe_layer(m, 2));
  EXPECT_TRUE(models::is_moe_layer(m, 23));
}

TEST(HfImport, OLMoE) {
  // config.json of allenai/OLMoE-1B-7B-0924.
  ModelSpec m = import_file("olmoe.json", "olmoe-1b-7b");
  EXPECT_EQ(m.layers, 16);
  EXPECT_EQ(m.hidden, 2048);
  EXPECT_EQ(m.vocab, 50304);
  EXPECT_EQ(m.mtp_depth, 0);
  EXPECT_EQ(m.attention.kind, AttentionKind::kMha);  // 16 KV heads == 16 heads
  EXPECT_EQ(m.attention.heads, 16);
  EXPECT_EQ(m.attention.kv_heads, 16);
  EXPECT_EQ(m.attention.head_dim, 128);  // 2048 / 16
  EXPECT_EQ(m.moe.experts, 64);
  EXPECT_EQ(m.moe.top_k, 8);
  EXPECT_EQ(m.moe.expert_ffn, 1024);
  EXPECT_EQ(m.moe.first_dense_layers, 0);
  EXPECT_EQ(m.moe.shared_experts, 0);
}

TEST(HfImport, GptOss120B) {
  // config.json of openai/gpt-oss-120b.
  ModelSpec m = import_file("gpt_oss_120b.json", "gpt-oss-120b");
  EXPECT_EQ(m.layers, 36);
  EXPECT_EQ(m.hidden, 2880);
  EXPECT_EQ(m.vocab, 201088);
  EXPECT_EQ(m.mtp_depth, 0);
  EXPECT_EQ(m.attention.kind, AttentionKind::kGqa);
  EXPECT_EQ(m.attention.heads, 64);
  EXPECT_EQ(m.attention.kv_heads, 8);
  EXPECT_EQ(m.attention.head_dim, 64);  // explicit head_dim, not 2880 / 64 = 45
  EXPECT_TRUE(m.attention.qkv_bias);    // attention_bias true
  EXPECT_EQ(m.attention.sliding_window, 128);
  EXPECT_EQ(m.attention.sliding_window_every, 2);  // layer_types alternate sliding / full
  EXPECT_EQ(m.moe.experts, 128);                   // num_local_experts
  EXPECT_EQ(m.moe.top_k, 4);
  EXPECT_EQ(m.moe.expert_ffn, 2880);
  EXPECT_EQ(m.moe.first_dense_layers, 0);
}

TEST(HfImport, Llama4ScoutFromTextConfig) {
  // config.json of meta-llama/Llama-4-Scout-17B-16E: the language model sits in text_config; every
  // layer is MoE (interleave_moe_layer_step 1): 16 experts of intermediate_size 8192 plus one shared
  // expert of the same size; tie_word_embeddings is at the top level.
  const std::string src = hf_path("llama_4_scout_17b_16e.json");
  Json entry = import_hf_config(read_json_file(src), src, "");
  ModelSpec m = model_from_json(entry, src, "");
  EXPECT_EQ(m.layers, 48);
  EXPECT_EQ(m.hidden, 5120);
  EXPECT_EQ(m.vocab, 202048);
  EXPECT_FALSE(m.tied_embeddings);
  EXPECT_EQ(m.attention.kind, AttentionKind::kGqa);
  EXPECT_EQ(m.attention.heads, 40);
  EXPECT_EQ(m.attention.kv_heads, 8);
  EXPECT_EQ(m.attention.head_dim, 128);
  EXPECT_EQ(m.moe.experts, 16);
  EXPECT_EQ(m.moe.top_k, 1);
  EXPECT_EQ(m.moe.expert_ffn, 8192);
  EXPECT_EQ(m.moe.shared_experts, 1);
  EXPECT_EQ(m.moe.shared_ffn, 8192);
  EXPECT_EQ(m.moe.first_dense_layers, 0);
  EXPECT_EQ(m.moe.layer_freq, 1);
  EXPECT_EQ(m.dense_ffn, 16384);  // intermediate_size_mlp (no dense layer in Scout)
  const std::string source = entry["source"];
  EXPECT_NE(source.find("chunked local attention (attention_chunk_size 8192"), std::string::npos) << source;
  EXPECT_NE(source.find("vision encoder"), std::string::npos) << source;
}

TEST(HfImport, Llama4MaverickInterleavesDenseAndMoeLayers) {
  // config.json of meta-llama/Llama-4-Maverick-17B-128E-Instruct: interleave_moe_layer_step 2 makes
  // layers 1, 3, ..., 47 MoE (transformers: moe_layers = range(step - 1, layers, step)) and the even
  // ones dense with intermediate_size_mlp 16384.
  ModelSpec m = import_file("llama_4_maverick_17b_128e.json");
  EXPECT_EQ(m.moe.experts, 128);
  EXPECT_EQ(m.moe.first_dense_layers, 1);
  EXPECT_EQ(m.moe.layer_freq, 2);
  EXPECT_EQ(m.dense_ffn, 16384);
  EXPECT_FALSE(m.tied_embeddings);  // absent: Llama4Config's default
  int moe_layers = 0;
  for (int l = 0; l < m.layers; ++l) {
    EXPECT_EQ(models::is_moe_layer(m, l), l % 2 == 1) << l;
    moe_layers += models::is_moe_layer(m, l);
  }
  EXPECT_EQ(moe_layers, 24);

  // An explicit moe_layers list that agrees is accepted; one that does not is refused.
  Json c = hf_config("llama_4_maverick_17b_128e.json");
  Json listed = Json::array();
  for (int l = 1; l < 48; l += 2) listed.push_back(l);
  c["text_config"]["moe_layers"] = listed;
  EXPECT_NO_THROW(import_json(c));
  c["text_config"]["moe_layers"] = Json::array({1, 2, 3});
  EXPECT_TRUE(starts_with(import_error(c),
                          "cfg.json: /text_config/moe_layers: expected every "
                          "interleave_moe_layer_step-th layer (1, 3, ...), found an array of 3"));
}

TEST(HfImport, DbrxNestedConfigs) {
  // config.json of databricks/dbrx-instruct: ffn_config {moe_num_experts 16, moe_top_k 4,
  // ffn_hidden_size 10752}, attn_config {kv_n_heads 8}, d_model 6144, n_heads 48, n_layers 40.
  ModelSpec m = import_file("dbrx_instruct.json");
  EXPECT_EQ(m.layers, 40);
  EXPECT_EQ(m.hidden, 6144);
  EXPECT_EQ(m.vocab, 100352);
  EXPECT_EQ(m.activation, Activation::kSwiglu);  // GLU experts (w1, v1, w2)
  EXPECT_EQ(m.attention.kind, AttentionKind::kGqa);
  EXPECT_EQ(m.attention.heads, 48);
  EXPECT_EQ(m.attention.kv_heads, 8);
  EXPECT_EQ(m.attention.head_dim, 128);  // 6144 / 48
  EXPECT_EQ(m.moe.experts, 16);
  EXPECT_EQ(m.moe.top_k, 4);
  EXPECT_EQ(m.moe.expert_ffn, 10752);
  EXPECT_EQ(m.dense_ffn, 0);
}

TEST(HfImport, Phi35Moe) {
  // config.json of microsoft/Phi-3.5-MoE-instruct: 16 experts of 6400, top-2, q/k/v bias, a sliding
  // window of 131072 (the whole context).
  ModelSpec m = import_file("phi_3_5_moe_instruct.json");
  EXPECT_EQ(m.name, "Phi-3.5-MoE-instruct");  // _name_or_path
  EXPECT_EQ(m.layers, 32);
  EXPECT_EQ(m.vocab, 32064);
  EXPECT_TRUE(m.attention.qkv_bias);
  EXPECT_EQ(m.attention.kv_heads, 8);
  EXPECT_EQ(m.attention.sliding_window, 131072);
  EXPECT_EQ(m.moe.experts, 16);
  EXPECT_EQ(m.moe.top_k, 2);
  EXPECT_EQ(m.moe.expert_ffn, 6400);
}

TEST(HfImport, KimiK25WrapperReadsTextConfig) {
  // Kimi-K2.5 wraps a kimi_k2 language model in text_config (model_type kimi_k25).
  Json c = {{"model_type", "kimi_k25"}, {"text_config", hf_config("kimi_k2_instruct.json")}};
  ModelSpec m = import_json(c);
  EXPECT_EQ(m.moe.experts, 384);
  c["text_config"]["model_type"] = "deepseek_v3";
  EXPECT_TRUE(starts_with(import_error(c),
                          "cfg.json: /text_config/model_type: expected \"kimi_k2\" (the language model of "
                          "kimi_k25), found \"deepseek_v3\""));
}

// ------------------------------------------------------------------------------------ dense families

TEST(HfImport, NemotronHHybridPattern) {
  // config.json of nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16 (model_type nemotron_h): 52 layers named by
  // hybrid_override_pattern (23 Mamba-2, 23 MoE, 6 attention), Mamba-2 heads 64 x 64 with state 128 in
  // 8 groups; 128 experts of 1856, top-6, one shared expert of 3712, n_group 1; squared ReLU.
  ModelSpec m = import_file("nemotron_3_nano_30b_a3b.json");
  EXPECT_EQ(m.layers, 52);
  EXPECT_EQ(m.layer_pattern, "MEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEMEM*EMEMEMEME");
  EXPECT_EQ(std::count(m.layer_pattern.begin(), m.layer_pattern.end(), 'M'), 23);
  EXPECT_EQ(std::count(m.layer_pattern.begin(), m.layer_pattern.end(), '*'), 6);
  EXPECT_EQ(m.hidden, 2688);
  EXPECT_EQ(m.vocab, 131072);
  EXPECT_EQ(m.activation, Activation::kRelu2);
  EXPECT_EQ(m.attention.kind, AttentionKind::kGqa);
  EXPECT_EQ(m.attention.heads, 32);
  EXPECT_EQ(m.attention.kv_heads, 2);
  EXPECT_EQ(m.attention.head_dim, 128);
  EXPECT_EQ(m.mamba.heads, 64);
  EXPECT_EQ(m.mamba.head_dim, 64);
  EXPECT_EQ(m.mamba.state_dim, 128);
  EXPECT_EQ(m.mamba.groups, 8);
  EXPECT_EQ(m.mamba.conv_kernel, 4);
  EXPECT_EQ(m.mamba.chunk_size, 128);
  EXPECT_EQ(m.moe.experts, 128);
  EXPECT_EQ(m.moe.top_k, 6);
  EXPECT_EQ(m.moe.expert_ffn, 1856);
  EXPECT_EQ(m.moe.shared_experts, 1);
  EXPECT_EQ(m.moe.shared_ffn, 3712);
  EXPECT_EQ(m.moe.groups, 1);
  EXPECT_EQ(m.moe.score, RouterScore::kSigmoid);
  EXPECT_EQ(m.dense_ffn, 0);  // intermediate_size is unused: no '-' layer
  // The catalog's own entry, written from Megatron-Bridge's recipe, is the same model.
  const ModelSpec c =
      model_from_json(read_json_file(std::string(MOESIM_SOURCE_DIR) +
                                     "/scenarios/catalog/models/nemotron-3-nano-30b-a3b.json"),
                      "catalog", "");
  EXPECT_DOUBLE_EQ(models::count_params(m).total, models::count_params(c).total);
  EXPECT_DOUBLE_EQ(models::count_params(m).active, models::count_params(c).active);
}

TEST(HfImport, Qwen3NextGatedDeltaNetBlocks) {
  // config.json keys of Qwen/Qwen3-Next-80B-A3B: 48 blocks, every 4th with gated attention (16 heads,
  // 2 KV heads of 256), the others a Gated DeltaNet (16 key heads, 32 value heads, 128 each), each block
  // followed by 512 experts top-10 of 512 and a shared expert of 512. Each block is two pattern layers.
  ModelSpec m = import_file("qwen3_next_80b_a3b.json");
  EXPECT_EQ(m.layers, 96);
  std::string want;
  for (int b = 0; b < 48; ++b) want += (b + 1) % 4 == 0 ? "*E" : "GE";
  EXPECT_EQ(m.layer_pattern, want);
  EXPECT_TRUE(m.attention.output_gate);
  EXPECT_EQ(m.attention.heads, 16);
  EXPECT_EQ(m.attention.kv_heads, 2);
  EXPECT_EQ(m.attention.head_dim, 256);
  EXPECT_EQ(m.gdn.key_heads, 16);
  EXPECT_EQ(m.gdn.value_heads, 32);
  EXPECT_EQ(m.gdn.key_head_dim, 128);
  EXPECT_EQ(m.gdn.value_head_dim, 128);
  EXPECT_EQ(m.gdn.conv_kernel, 4);
  EXPECT_EQ(m.moe.experts, 512);
  EXPECT_EQ(m.moe.top_k, 10);
  EXPECT_EQ(m.moe.shared_experts, 1);
  EXPECT_EQ(m.moe.shared_ffn, 512);
  // By hand: Gated DeltaNet 2048·(2·2048 + 2·4096 + 64) + 4096·2048 + 8192·4 + 64 + 128 = 33,718,464;
  // gated attention 2048·8192 + 2·2048·512 + 4096·2048 = 27,262,976; per block 512 experts of
  // 3·2048·512, a shared one of the same, the router 2048·512 and two norms; embedding and head
  // 151936·2048 each and the final norm: 79,674,286,848 (the released checkpoint's 79,674,391,296 less
  // the q/k norms, 12 x 512, and the shared experts' gates, 48 x 2048, which are not modelled).
  const models::ParamCounts p = models::count_params(m);
  EXPECT_DOUBLE_EQ(p.gdn_per_layer, 33718464);
  EXPECT_DOUBLE_EQ(p.attention_per_layer, 27262976);
  EXPECT_DOUBLE_EQ(p.total, 79674286848.0);
  EXPECT_DOUBLE_EQ(p.active, 79674286848.0 - 48.0 * 502 * 3 * 2048 * 512);
}

TEST(HfImportErrors, Qwen3NextChecks) {
  Json c = hf_config("qwen3_next_80b_a3b.json");
  c["linear_num_value_heads"] = 24;
  EXPECT_EQ(import_error(c),
            "cfg.json: /linear_num_value_heads: expected a multiple of linear_num_key_heads (16), found 24");
  c = hf_config("qwen3_next_80b_a3b.json");
  c["layer_types"] = Json::array();
  EXPECT_EQ(import_error(c),
            "cfg.json: /layer_types: expected a list of num_hidden_layers (48) layer types, "
            "found an array of 0");
  c = hf_config("qwen3_next_80b_a3b.json");
  c["layer_types"] = Json::array();
  for (int i = 0; i < 48; ++i) c["layer_types"].push_back(i == 5 ? "sliding_attention" : "linear_attention");
  EXPECT_EQ(import_error(c),
            "cfg.json: /layer_types/5: expected \"linear_attention\" or \"full_attention\", "
            "found the string \"sliding_attention\"");
  // A Qwen3.5-MoE wrapper reads its text_config.
  Json w = {{"model_type", "qwen3_5_moe"}, {"text_config", hf_config("qwen3_next_80b_a3b.json")}};
  w["text_config"]["model_type"] = "qwen3_5_moe_text";
  EXPECT_EQ(import_json(w).layers, 96);
}

TEST(HfImportErrors, NemotronHChecks) {
  Json c = hf_config("nemotron_3_nano_30b_a3b.json");
  c["hybrid_override_pattern"] = "MEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEMEM*EMEMEMEMX";
  EXPECT_EQ(import_error(c),
            "cfg.json: /hybrid_override_pattern: expected one of M, *, -, E per layer (and | "
            "between pipeline stages), found 'X' at layer 51");
  c = hf_config("nemotron_3_nano_30b_a3b.json");
  c["num_hidden_layers"] = 50;
  EXPECT_EQ(import_error(c),
            "cfg.json: /hybrid_override_pattern: expected num_hidden_layers (50) layers, found 52 layers");
  c = hf_config("nemotron_3_nano_30b_a3b.json");
  c["mlp_hidden_act"] = "silu";
  EXPECT_EQ(import_error(c), "cfg.json: /mlp_hidden_act: expected \"relu2\" (squared ReLU), found \"silu\"");
  c = hf_config("nemotron_3_nano_30b_a3b.json");
  c["n_groups"] = 3;
  EXPECT_EQ(import_error(c), "cfg.json: /n_groups: expected a divisor of mamba_num_heads (64), found 3");
  c = hf_config("nemotron_3_nano_30b_a3b.json");
  c["moe_latent_size"] = 1024;
  EXPECT_TRUE(starts_with(import_error(c), "cfg.json: /moe_latent_size: expected null (LatentMoE"))
      << import_error(c);
  c = hf_config("nemotron_3_nano_30b_a3b.json");
  c["num_nextn_predict_layers"] = 1;
  c["mtp_hybrid_override_pattern"] = "*-*E";
  EXPECT_TRUE(starts_with(import_error(c), "cfg.json: /mtp_hybrid_override_pattern: expected \"*E\""))
      << import_error(c);
  // Pipeline-stage delimiters are dropped.
  c = hf_config("nemotron_3_nano_30b_a3b.json");
  c["hybrid_override_pattern"] = "MEMEM*EMEMEM*EMEMEM*EMEMEM*|EMEMEM*EMEMEMEM*EMEMEMEME";
  EXPECT_EQ(import_json(c).layer_pattern, "MEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEMEM*EMEMEMEME");
}

TEST(HfImport, DenseFamilies) {
  struct Case {
    const char* file;
    int layers, hidden, heads, kv_heads, head_dim, ffn, vocab, window;
    bool qkv_bias;
  };
  const Case cases[] = {
      // meta-llama/Llama-3.1-8B, mistralai/Mistral-7B-v0.1 (sliding_window 4096), Qwen/Qwen2.5-7B
      // (Qwen2 attention has q/k/v biases; use_sliding_window false), Qwen/Qwen3-8B (head_dim 128).
      {"llama_3_1_8b.json", 32, 4096, 32, 8, 128, 14336, 128256, 0, false},
      {"mistral_7b_v0_1.json", 32, 4096, 32, 8, 128, 14336, 32000, 4096, false},
      {"qwen2_5_7b.json", 28, 3584, 28, 4, 128, 18944, 152064, 0, true},
      {"qwen3_8b.json", 36, 4096, 32, 8, 128, 12288, 151936, 0, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    ModelSpec m = import_file(c.file);
    EXPECT_EQ(m.layers, c.layers);
    EXPECT_EQ(m.hidden, c.hidden);
    EXPECT_EQ(m.attention.heads, c.heads);
    EXPECT_EQ(m.attention.kv_heads, c.kv_heads);
    EXPECT_EQ(m.attention.head_dim, c.head_dim);
    EXPECT_EQ(m.attention.sliding_window, c.window);
    EXPECT_EQ(m.attention.qkv_bias, c.qkv_bias);
    EXPECT_EQ(m.dense_ffn, c.ffn);
    EXPECT_EQ(m.vocab, c.vocab);
    EXPECT_EQ(m.moe.experts, 0);
  }
}

// ------------------------------------------------------------------- parameter counts vs publishers

// How a publisher counts "active" parameters.
enum class Active {
  kAll,                // every parameter a token touches, embedding included
  kNoInputEmbedding,   // without the input embedding (a table lookup)
  kNoEmbeddingOrHead,  // without the input embedding and the output layer
};

TEST(HfImportParams, CountsMatchPublishedFigures) {
  struct Case {
    const char* file;
    double total, active;
    Active convention;
  };
  const Case cases[] = {
      // DeepSeek-V2 report (arXiv:2405.04434) abstract: 236B total, 21B activated per token.
      {"deepseek_v2.json", 236e9, 21e9, Active::kAll},
      // DeepSeek-V3 report (arXiv:2412.19437) abstract: 671B total, 37B activated (MTP module excluded).
      {"deepseek_v3.json", 671e9, 37e9, Active::kAll},
      // DeepSeek-V3.2-Exp model card: DeepSeek-V3.1-Terminus (the V3 architecture, 671B / 37B) with
      // DeepSeek Sparse Attention; the indexer's projections are not counted (see its entry's source).
      {"deepseek_v3_2_exp.json", 671e9, 37e9, Active::kAll},
      // Kimi K2 report (arXiv:2507.20534) and model card: 1.04T total, 32B activated.
      {"kimi_k2_instruct.json", 1.04e12, 32e9, Active::kAll},
      // GLM-4.5 report (arXiv:2508.06471) and model cards: GLM-4.5 355B total / 32B active, GLM-4.5-Air
      // 106B / 12B. Both active figures are the count without the embedding and the output layer (with
      // them, GLM-4.5-Air would be 13.4B).
      {"glm_4_5.json", 355e9, 32e9, Active::kNoEmbeddingOrHead},
      {"glm_4_5_air.json", 106e9, 12e9, Active::kNoEmbeddingOrHead},
      // Qwen blog "Qwen1.5-MoE: Matching 7B Model Performance with 1/3 Activated Parameters": 14.3B total,
      // 2.7B activated.
      {"qwen1_5_moe_a2_7b.json", 14.3e9, 2.7e9, Active::kAll},
      // Qwen3 Technical Report (arXiv:2505.09388) Table 2: 30B-A3B 30.5B / 3.3B, 235B-A22B 235B / 22B.
      {"qwen3_30b_a3b.json", 30.5e9, 3.3e9, Active::kAll},
      {"qwen3_235b_a22b.json", 235e9, 22e9, Active::kAll},
      // mistral.ai/news/mixtral-of-experts: 46.7B total, 12.9B used per token.
      {"mixtral_8x7b.json", 46.7e9, 12.9e9, Active::kAll},
      // OLMoE paper (arXiv:2409.02060): 6.9B total, 1.3B active.
      {"olmoe.json", 6.9e9, 1.3e9, Active::kAll},
      // gpt-oss model card (OpenAI, Aug 2025) Table 1: 116.83B total, 5.13B active, the latter without
      // the input embedding.
      {"gpt_oss_120b.json", 116.83e9, 5.13e9, Active::kNoInputEmbedding},
      // Llama 4 model card (meta-llama/Llama-4-Scout-17B-16E): Scout 17B active / 109B total, Maverick
      // 17B active / 400B total; the totals include the vision encoder, which is not imported.
      {"llama_4_scout_17b_16e.json", 109e9, 17e9, Active::kAll},
      {"llama_4_maverick_17b_128e.json", 400e9, 17e9, Active::kAll},
      // Databricks, "Introducing DBRX" (March 2024): 132B total, 36B active on any input.
      {"dbrx_instruct.json", 132e9, 36e9, Active::kAll},
      // Nemotron 3 Nano technical report (arXiv:2512.20848): 31.6B total, 3.6B active with the
      // embeddings (3.2B without).
      {"nemotron_3_nano_30b_a3b.json", 31.6e9, 3.6e9, Active::kAll},
      // microsoft/Phi-3.5-MoE-instruct model card: 6.6B active with 2 experts; 41.9B total parameters
      // (the Hub's count of the checkpoint).
      {"phi_3_5_moe_instruct.json", 41.9e9, 6.6e9, Active::kAll},
      // Dense models: Llama 3.1 model card 8.03B (the Hub's count); mistral.ai/news/announcing-mistral-7b
      // 7.3B; Qwen2.5-7B model card 7.61B; Qwen3-8B model card 8.2B.
      {"llama_3_1_8b.json", 8.03e9, 8.03e9, Active::kAll},
      {"mistral_7b_v0_1.json", 7.3e9, 7.3e9, Active::kAll},
      {"qwen2_5_7b.json", 7.61e9, 7.61e9, Active::kAll},
      {"qwen3_8b.json", 8.2e9, 8.2e9, Active::kAll},
  };
  // The same bound the catalog's own models meet (tests/catalog_test.cpp).
  constexpr double kTolerance = 0.03;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    const ModelSpec m = import_file(c.file);
    const models::ParamCounts p = models::count_params(m);
    double active = p.active;
    if (c.convention != Active::kAll) active -= p.embedding;
    if (c.convention == Active::kNoEmbeddingOrHead) active -= m.tied_embeddings ? p.embedding : p.head;
    const double dt = p.total / c.total - 1.0, da = active / c.active - 1.0;
    std::printf("%-32s total %8.2fB (%+5.1f%%)  active %7.2fB (%+5.1f%%)\n", c.file, p.total / 1e9, 100 * dt,
                active / 1e9, 100 * da);
    EXPECT_LE(std::fabs(dt), kTolerance) << "total " << p.total / 1e9 << "B vs published " << c.total / 1e9;
    EXPECT_LE(std::fabs(da), kTolerance) << "active " << active / 1e9 << "B vs published " << c.active / 1e9;
  }
}

TEST(HfImport, EveryFixtureCarriesIgnoredKeysAndImports) {
  // The fixtures really carry keys the importer does not model; import must not reject them.
  for (const auto& f : kFixtures) {
    SCOPED_TRACE(f);
    Json c = hf_config(f);
    EXPECT_TRUE(c.contains("torch_dtype") || c.contains("quantization_config"));
    EXPECT_TRUE(c.contains("architectures"));
    EXPECT_NO_THROW(import_hf_config(c, f, ""));
  }
  EXPECT_TRUE(hf_config("deepseek_v3.json")["rope_scaling"].is_object());
  EXPECT_TRUE(hf_config("gpt_oss_120b.json")["rope_scaling"].is_object());
  EXPECT_TRUE(hf_config("llama_4_scout_17b_16e.json")["vision_config"].is_object());
}

TEST(HfImport, ImportedEntryIsStrictCatalogJson) {
  // The produced entry passes the strict (unknown-key-rejecting) model reader, records its source and
  // defaults its name to the model_type when the config has no _name_or_path.
  const std::string src = hf_path("mixtral_8x7b.json");
  Json entry = import_hf_config(read_json_file(src), src, "");
  EXPECT_EQ(entry["name"], "mixtral");
  EXPECT_NE(entry["source"].get<std::string>().find(src), std::string::npos);
  EXPECT_FALSE(entry.contains("rope_theta"));
  EXPECT_FALSE(entry.contains("torch_dtype"));
  EXPECT_NO_THROW(model_from_json(entry, "entry.json", ""));

  Json c = read_json_file(src);
  c["_name_or_path"] = "mistralai/Mixtral-8x7B-v0.1";
  EXPECT_EQ(import_hf_config(c, src, "")["name"], "mistralai/Mixtral-8x7B-v0.1");
  EXPECT_EQ(import_hf_config(c, src, "override")["name"], "override");
}

TEST(HfImport, ListsTheFamilies) {
  const auto types = hf_model_types();
  for (const char* t : {"deepseek_v2", "deepseek_v3", "deepseek_v32", "kimi_k2", "glm4_moe", "qwen2_moe",
                        "qwen3_moe", "mixtral", "phimoe", "olmoe", "gpt_oss", "llama4", "dbrx", "nemotron_h",
                        "llama", "mistral", "qwen2", "qwen3"})
    EXPECT_NE(std::find(types.begin(), types.end(), t), types.end()) << t;
  EXPECT_EQ(std::find(types.begin(), types.end(), "bert"), types.end());
}

// --------------------------------------------------------------------------------------------- errors

TEST(HfImportErrors, EveryReadNumberIsRangeCheckedAndNamed) {
  // Every number in every fixture (and in its text_config, attn_config, ffn_config) is replaced by a
  // value no size or count may take. The import either ignores the key (rope_theta, token ids, ...) or
  // refuses it naming that very key, in the config's own terms: never a crash (a zero head count used
  // to divide by zero), never a pointer into the generated entry.
  // Parsed from text, as in a file: the parser stores 0 and 2^40 as unsigned, -1 as signed.
  const Json bad[] = {Json::parse("0"), Json::parse("-1"), Json::parse("1.5"), Json::parse("\"8\""),
                      Json::parse("1099511627776")};
  int refused = 0;
  for (const auto& f : kFixtures) {
    const Json base = hf_config(f);
    std::vector<std::string> pointers;
    for (auto it = base.begin(); it != base.end(); ++it) {
      if (it.value().is_number()) pointers.push_back("/" + it.key());
      if (it.value().is_object() &&
          (it.key() == "text_config" || it.key() == "attn_config" || it.key() == "ffn_config"))
        for (auto in = it.value().begin(); in != it.value().end(); ++in)
          if (in.value().is_number()) pointers.push_back("/" + it.key() + "/" + in.key());
    }
    for (const auto& ptr : pointers) {
      for (const auto& v : bad) {
        SCOPED_TRACE(f + " " + ptr + " = " + v.dump());
        Json c = base;
        c[Json::json_pointer(ptr)] = v;
        try {
          import_hf_config(c, "cfg.json", "");
        } catch (const ConfigError& e) {
          const std::string m = e.what();
          EXPECT_TRUE(starts_with(m, "cfg.json: " + ptr + ": expected ")) << m;
          EXPECT_NE(m.find(", found "), std::string::npos) << m;
          EXPECT_EQ(m.find("(imported)"), std::string::npos) << m;
          ++refused;
        }
      }
    }
  }
  EXPECT_GT(refused, 500);  // the sizes and counts of 20 files, five bad values each
}

TEST(HfImportErrors, ZeroHeadsIsRefusedNotADivisionByZero) {
  // As read from a file (0 parses as an unsigned number) and as built in code (a signed one).
  Json c = parse_json_text(R"({"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 4096,
    "vocab_size": 100, "intermediate_size": 64, "num_attention_heads": 0})",
                           "cfg.json");
  EXPECT_TRUE(c["num_attention_heads"].is_number_unsigned());
  EXPECT_EQ(import_error(c), "cfg.json: /num_attention_heads: expected a positive integer, found 0");
  c = hf_config("mixtral_8x7b.json");
  c["num_attention_heads"] = 0;
  EXPECT_EQ(import_error(c), "cfg.json: /num_attention_heads: expected a positive integer, found 0");
  c["num_attention_heads"] = -32;
  EXPECT_EQ(import_error(c), "cfg.json: /num_attention_heads: expected a positive integer, found -32");
}

TEST(HfImportErrors, MissingNumHiddenLayers) {
  Json c = hf_config("mixtral_8x7b.json");
  c.erase("num_hidden_layers");
  EXPECT_EQ(import_error(c, "mixtral/config.json"),
            "mixtral/config.json: /num_hidden_layers: expected a positive integer (required for model_type "
            "\"mixtral\"), found nothing");
}

TEST(HfImportErrors, NullRequiredKeyCountsAsMissing) {
  Json c = hf_config("olmoe.json");
  c["num_hidden_layers"] = nullptr;
  EXPECT_TRUE(
      starts_with(import_error(c), "cfg.json: /num_hidden_layers: expected a positive integer (required"));
}

TEST(HfImportErrors, MissingFamilyKeys) {
  // Each family's own required keys, named with the family.
  struct Case {
    const char* file;
    const char* pointer;
  };
  const Case cases[] = {{"deepseek_v3.json", "/kv_lora_rank"},
                        {"kimi_k2_instruct.json", "/n_shared_experts"},
                        {"glm_4_5.json", "/first_k_dense_replace"},
                        {"deepseek_v3_2_exp.json", "/index_n_heads"},
                        {"qwen3_30b_a3b.json", "/moe_intermediate_size"},
                        {"gpt_oss_120b.json", "/sliding_window"},
                        {"llama_4_maverick_17b_128e.json", "/text_config/intermediate_size_mlp"},
                        {"dbrx_instruct.json", "/ffn_config/moe_top_k"},
                        {"dbrx_instruct.json", "/attn_config"},
                        {"qwen2_5_7b.json", "/intermediate_size"}};
  for (const auto& k : cases) {
    SCOPED_TRACE(std::string(k.file) + k.pointer);
    Json c = hf_config(k.file);
    erase_at(c, k.pointer);
    const std::string m = import_error(c);
    EXPECT_TRUE(starts_with(m, std::string("cfg.json: ") + k.pointer + ": expected ")) << m;
    EXPECT_NE(m.find("(required for model_type"), std::string::npos) << m;
    EXPECT_NE(m.find("found nothing"), std::string::npos) << m;
  }
}

TEST(HfImportErrors, UnknownModelTypeIsRefusedListingTheSupportedOnes) {
  // bert-base-uncased: an encoder, not something to import as a llama.
  Json c = Json::parse(R"({
    "architectures": ["BertForMaskedLM"], "hidden_act": "gelu", "hidden_size": 768,
    "intermediate_size": 3072, "model_type": "bert", "num_attention_heads": 12,
    "num_hidden_layers": 12, "type_vocab_size": 2, "vocab_size": 30522
  })");
  std::string m = import_error(c, "bert/config.json");
  EXPECT_TRUE(starts_with(m, "bert/config.json: /model_type: expected a supported model_type (deepseek_v2, "))
      << m;
  EXPECT_NE(m.find("glm4_moe"), std::string::npos) << m;
  EXPECT_NE(m.find("found \"bert\""), std::string::npos) << m;

  // An MoE the importer does not know is refused the same way, not made dense.
  c = hf_config("mixtral_8x7b.json");
  c["model_type"] = "some_new_moe";
  EXPECT_NE(import_error(c).find("found \"some_new_moe\""), std::string::npos);
}

TEST(HfImportErrors, DenseTypeWithExpertKeysIsRefused) {
  // A llama config carrying expert keys: either mislabelled or a fork with experts; importing it as a
  // dense llama would be silently wrong.
  for (const char* key : {"num_local_experts", "num_experts", "n_routed_experts", "moe_intermediate_size"}) {
    Json c = hf_config("llama_3_1_8b.json");
    c[key] = 8;
    const std::string m = import_error(c);
    EXPECT_TRUE(starts_with(
        m, std::string("cfg.json: /") + key + ": expected no expert keys for the dense model_type \"llama\""))
        << m;
    EXPECT_NE(m.find("found 8"), std::string::npos) << m;
  }
  // Values that mean "no experts" are fine.
  Json c = hf_config("llama_3_1_8b.json");
  c["num_experts"] = 0;
  c["moe_layers"] = Json::array();
  c["n_shared_experts"] = nullptr;
  EXPECT_NO_THROW(import_json(c));
}

TEST(HfImportErrors, ExpertKeyTheFamilyDoesNotHaveIsRefused) {
  Json c = hf_config("mixtral_8x7b.json");
  c["n_shared_experts"] = 2;
  EXPECT_TRUE(starts_with(import_error(c),
                          "cfg.json: /n_shared_experts: expected no n_shared_experts for "
                          "model_type \"mixtral\""));
  c = hf_config("qwen3_30b_a3b.json");
  c["shared_expert_intermediate_size"] = 768;  // Qwen3-MoE has no shared expert (Qwen2-MoE does)
  EXPECT_TRUE(starts_with(import_error(c), "cfg.json: /shared_expert_intermediate_size: expected no "));
}

TEST(HfImportErrors, NonIntegerHiddenSize) {
  Json c = hf_config("mixtral_8x7b.json");
  c["hidden_size"] = 4096.5;
  EXPECT_EQ(import_error(c, "mixtral/config.json"),
            "mixtral/config.json: /hidden_size: expected a positive integer, found 4096.5");
  c["hidden_size"] = "4096";
  EXPECT_EQ(import_error(c, "mixtral/config.json"),
            "mixtral/config.json: /hidden_size: expected a positive integer, found the string \"4096\"");
  c["hidden_size"] = 4096.0;  // integral: what some exporters write
  EXPECT_EQ(import_json(c).hidden, 4096);
  c["hidden_size"] = int64_t(1) << 25;
  EXPECT_EQ(import_error(c),
            "cfg.json: /hidden_size: expected a positive integer of at most 16777216, found "
            "33554432");
}

TEST(HfImportErrors, TopKAboveExpertsNamesTheHfKey) {
  Json c = hf_config("mixtral_8x7b.json");
  c["num_experts_per_tok"] = 10;
  EXPECT_EQ(import_error(c),
            "cfg.json: /num_experts_per_tok: expected at most num_local_experts (8), found 10");
  c = hf_config("dbrx_instruct.json");
  c["ffn_config"]["moe_top_k"] = 17;
  EXPECT_EQ(import_error(c),
            "cfg.json: /ffn_config/moe_top_k: expected at most moe_num_experts (16), found 17");
}

TEST(HfImportErrors, GroupLimitedRoutingIsChecked) {
  Json c = hf_config("deepseek_v3.json");
  c["n_group"] = 7;
  EXPECT_EQ(import_error(c), "cfg.json: /n_group: expected a divisor of n_routed_experts (256), found 7");
  c = hf_config("deepseek_v3.json");
  c["topk_group"] = 9;
  EXPECT_EQ(import_error(c), "cfg.json: /topk_group: expected at most n_group (8), found 9");
  c = hf_config("deepseek_v3.json");
  c["topk_group"] = 1;  // one group of 32 experts, top-8: fine; top-40 is not
  EXPECT_NO_THROW(import_json(c));
  c["num_experts_per_tok"] = 40;
  EXPECT_EQ(import_error(c),
            "cfg.json: /num_experts_per_tok: expected at most topk_group x routed experts per "
            "group (1 x 32), found 40");
}

TEST(HfImportErrors, LayerCountsAreChecked) {
  Json c = hf_config("glm_4_5_air.json");
  c["first_k_dense_replace"] = 47;
  EXPECT_EQ(import_error(c),
            "cfg.json: /first_k_dense_replace: expected at most num_hidden_layers (46), found 47");
  c = hf_config("qwen3_30b_a3b.json");
  c["decoder_sparse_step"] = 49;
  EXPECT_EQ(import_error(c),
            "cfg.json: /decoder_sparse_step: expected a positive integer of at most 48, found 49");
  c = hf_config("qwen3_30b_a3b.json");
  c["mlp_only_layers"] = Json::array({0, 1});
  EXPECT_EQ(import_error(c),
            "cfg.json: /mlp_only_layers: expected an empty list (dense layers chosen by index are "
            "not modelled), found an array of 2");
}

TEST(HfImport, DeepSeekLayerFreqFollowsDeepSeeksRule) {
  // DeepSeek: layer i is MoE when i >= first_k_dense_replace and i % moe_layer_freq == 0; with 3 dense
  // layers and freq 2 the first MoE layer is 4, then 6, 8, ...
  Json c = hf_config("deepseek_v3.json");
  c["moe_layer_freq"] = 2;
  ModelSpec m = import_json(c);
  for (int l = 0; l < m.layers; ++l) EXPECT_EQ(models::is_moe_layer(m, l), l >= 3 && l % 2 == 0) << l;
}

TEST(HfImportErrors, HeadsAreChecked) {
  Json c = hf_config("mixtral_8x7b.json");
  c["num_key_value_heads"] = 5;
  EXPECT_EQ(import_error(c),
            "cfg.json: /num_key_value_heads: expected a divisor of num_attention_heads (32), "
            "found 5");
  c = hf_config("mixtral_8x7b.json");
  c["num_attention_heads"] = 48;
  c["num_key_value_heads"] = 8;
  EXPECT_EQ(import_error(c),
            "cfg.json: /num_attention_heads: expected a divisor of the hidden size (4096), as the "
            "config has no head_dim, found 48");
  c = hf_config("dbrx_instruct.json");
  c["attn_config"]["kv_n_heads"] = 7;
  EXPECT_EQ(import_error(c),
            "cfg.json: /attn_config/kv_n_heads: expected a divisor of n_heads (48), found 7");
}

TEST(HfImportErrors, FamilySpecificChecks) {
  Json c = hf_config("gpt_oss_120b.json");
  c["experts_per_token"] = 2;
  EXPECT_EQ(import_error(c),
            "cfg.json: /experts_per_token: expected the same value as num_experts_per_tok (4), "
            "found 2");
  c = hf_config("gpt_oss_120b.json");
  c["layer_types"][3] = "sliding_attention";
  EXPECT_EQ(import_error(c),
            "cfg.json: /layer_types/3: expected \"full_attention\" (sliding_attention and "
            "full_attention alternate from layer 0), found the string \"sliding_attention\"");
  c = hf_config("qwen2_5_7b.json");
  c["use_sliding_window"] = true;
  EXPECT_TRUE(starts_with(import_error(c), "cfg.json: /use_sliding_window: expected false"));
  c = hf_config("deepseek_v3.json");
  c["scoring_func"] = "sqrtsoftplus";
  EXPECT_EQ(import_error(c),
            "cfg.json: /scoring_func: expected \"softmax\" or \"sigmoid\", found \"sqrtsoftplus\"");
  c = hf_config("mistral_7b_v0_1.json");
  c["hidden_act"] = "relu";
  EXPECT_TRUE(starts_with(import_error(c), "cfg.json: /hidden_act: expected one of silu, swish, gelu"));
  c = hf_config("llama_4_scout_17b_16e.json");
  c["text_config"]["model_type"] = "llama";
  EXPECT_TRUE(starts_with(import_error(c), "cfg.json: /text_config/model_type: expected \"llama4_text\""));
  c.erase("text_config");
  EXPECT_TRUE(starts_with(import_error(c),
                          "cfg.json: /text_config: expected an object with the language model's "
                          "settings (required for model_type \"llama4\"), found nothing"));
}

TEST(HfImportErrors, MissingModelType) {
  Json c = hf_config("olmoe.json");
  c.erase("model_type");
  EXPECT_EQ(import_error(c),
            "cfg.json: /model_type: expected a Hugging Face model_type string, found nothing");
  c["model_type"] = 3;
  EXPECT_EQ(import_error(c), "cfg.json: /model_type: expected a string, found the number 3");
}

TEST(HfImportErrors, NotAnObject) {
  std::string m = message_of<ConfigError>([&] { import_hf_config(Json::array({1, 2}), "c.json", ""); });
  EXPECT_NE(m.find("c.json"), std::string::npos) << m;
  EXPECT_NE(m.find("an array of 2"), std::string::npos) << m;
}

TEST(HfImportErrors, WrongTypeForBoolean) {
  Json c = hf_config("mixtral_8x7b.json");
  c["tie_word_embeddings"] = "false";
  EXPECT_EQ(import_error(c, "m.json"),
            "m.json: /tie_word_embeddings: expected true or false, found the string \"false\"");
}

TEST(HfImportErrors, MissingFileIsIoError) {
  EXPECT_THROW(read_json_file(hf_path("no_such_model.json")), IoError);
}

}  // namespace
}  // namespace moesim
