// Hugging Face config.json import: the five real public configs under tests/data/hf/ (with their extra
// keys such as rope_scaling, quantization_config, torch_dtype and architectures, which the importer must
// ignore) are imported, read back with model_from_json, and every modelled dimension is compared with
// the value in the config file. Then the importer's errors.

#include "scenarios/hf_import.hpp"

#include <gtest/gtest.h>

#include <string>

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

// ------------------------------------------------------------------------------------- the five files

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

TEST(HfImport, ExtraKeysArePresentAndIgnored) {
  // The fixtures really carry keys the importer does not model; import must not reject them.
  for (const char* f :
       {"deepseek_v3.json", "mixtral_8x7b.json", "qwen3_30b_a3b.json", "olmoe.json", "gpt_oss_120b.json"}) {
    Json c = hf_config(f);
    EXPECT_TRUE(c.contains("torch_dtype") || c.contains("quantization_config")) << f;
    EXPECT_TRUE(c.contains("architectures")) << f;
    EXPECT_NO_THROW(import_hf_config(c, f, "")) << f;
  }
  EXPECT_TRUE(hf_config("deepseek_v3.json")["rope_scaling"].is_object());
  EXPECT_TRUE(hf_config("gpt_oss_120b.json")["rope_scaling"].is_object());
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

TEST(HfImport, DenseLlamaStyleModel) {
  // meta-llama/Meta-Llama-3-8B: 32 layers, hidden 4096, 32 heads, 8 KV heads, FFN 14336, vocab 128256.
  Json c = Json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 128000,
    "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336,
    "max_position_embeddings": 8192, "model_type": "llama", "num_attention_heads": 32,
    "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
    "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 128256
  })");
  ModelSpec m = model_from_json(import_hf_config(c, "llama3.json", "llama-3-8b"), "llama3.json", "");
  EXPECT_EQ(m.layers, 32);
  EXPECT_EQ(m.dense_ffn, 14336);
  EXPECT_EQ(m.moe.experts, 0);
  EXPECT_EQ(m.attention.kind, AttentionKind::kGqa);
  EXPECT_EQ(m.attention.kv_heads, 8);
  EXPECT_EQ(m.vocab, 128256);
}

// --------------------------------------------------------------------------------------------- errors

TEST(HfImportErrors, MissingNumHiddenLayers) {
  Json c = hf_config("mixtral_8x7b.json");
  c.erase("num_hidden_layers");
  std::string m = message_of<ConfigError>([&] { import_hf_config(c, "mixtral/config.json", ""); });
  EXPECT_EQ(m.rfind("mixtral/config.json: /num_hidden_layers: expected ", 0), 0u) << m;
  EXPECT_NE(m.find("an integer (required)"), std::string::npos) << m;
  EXPECT_NE(m.find("found nothing"), std::string::npos) << m;
}

TEST(HfImportErrors, NullRequiredKeyCountsAsMissing) {
  Json c = hf_config("olmoe.json");
  c["num_hidden_layers"] = nullptr;
  std::string m = message_of<ConfigError>([&] { import_hf_config(c, "olmoe/config.json", ""); });
  EXPECT_NE(m.find("/num_hidden_layers"), std::string::npos) << m;
}

TEST(HfImportErrors, MissingDeepSeekKey) {
  Json c = hf_config("deepseek_v3.json");
  c.erase("kv_lora_rank");
  std::string m = message_of<ConfigError>([&] { import_hf_config(c, "ds/config.json", ""); });
  EXPECT_EQ(m.rfind("ds/config.json: /kv_lora_rank: expected an integer (required), found nothing", 0), 0u)
      << m;
}

TEST(HfImportErrors, UnsupportedMoeModelType) {
  // microsoft/Phi-3.5-MoE-instruct: an MoE (num_local_experts 16) of a type the importer does not know.
  Json c = Json::parse(R"({
    "architectures": ["PhiMoEForCausalLM"], "hidden_act": "silu", "hidden_size": 4096,
    "intermediate_size": 6400, "model_type": "phimoe", "num_attention_heads": 32,
    "num_experts_per_tok": 2, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "num_local_experts": 16, "vocab_size": 32064, "torch_dtype": "bfloat16"
  })");
  std::string m = message_of<ConfigError>([&] { import_hf_config(c, "phimoe/config.json", ""); });
  EXPECT_EQ(m.rfind("phimoe/config.json: /model_type: expected a supported MoE model_type", 0), 0u) << m;
  EXPECT_NE(m.find("found \"phimoe\""), std::string::npos) << m;
  EXPECT_NE(m.find("mixtral"), std::string::npos) << m;  // lists what is supported

  // Same with "num_experts" as the expert-count key.
  c.erase("num_local_experts");
  c["num_experts"] = 16;
  c["model_type"] = "some_new_moe";
  m = message_of<ConfigError>([&] { import_hf_config(c, "x.json", ""); });
  EXPECT_NE(m.find("found \"some_new_moe\""), std::string::npos) << m;
}

TEST(HfImportErrors, NonIntegerHiddenSize) {
  Json c = hf_config("mixtral_8x7b.json");
  c["hidden_size"] = 4096.5;
  std::string m = message_of<ConfigError>([&] { import_hf_config(c, "mixtral/config.json", ""); });
  EXPECT_EQ(m, "mixtral/config.json: /hidden_size: expected an integer, found the number 4096.5");

  c["hidden_size"] = "4096";
  m = message_of<ConfigError>([&] { import_hf_config(c, "mixtral/config.json", ""); });
  EXPECT_EQ(m, "mixtral/config.json: /hidden_size: expected an integer, found the string \"4096\"");
}

TEST(HfImportErrors, MissingModelType) {
  Json c = hf_config("olmoe.json");
  c.erase("model_type");
  std::string m = message_of<ConfigError>([&] { import_hf_config(c, "olmoe/config.json", ""); });
  EXPECT_NE(m.find("/model_type"), std::string::npos) << m;
  EXPECT_NE(m.find("expected"), std::string::npos) << m;
}

TEST(HfImportErrors, NotAnObject) {
  std::string m = message_of<ConfigError>([&] { import_hf_config(Json::array({1, 2}), "c.json", ""); });
  EXPECT_NE(m.find("c.json"), std::string::npos) << m;
  EXPECT_NE(m.find("an array of 2"), std::string::npos) << m;
}

TEST(HfImportErrors, WrongTypeForBoolean) {
  Json c = hf_config("mixtral_8x7b.json");
  c["tie_word_embeddings"] = "false";
  std::string m = message_of<ConfigError>([&] { import_hf_config(c, "m.json", ""); });
  EXPECT_EQ(m, "m.json: /tie_word_embeddings: expected true or false, found the string \"false\"");
}

TEST(HfImportErrors, ImpossibleDimensionsFailValidation) {
  // top_k 10 of 8 experts: the imported entry is rejected by model_from_json, naming the field.
  Json c = hf_config("mixtral_8x7b.json");
  c["num_experts_per_tok"] = 10;
  std::string m = message_of<ConfigError>([&] { import_hf_config(c, "m.json", ""); });
  EXPECT_NE(m.find("m.json (imported)"), std::string::npos) << m;
  EXPECT_NE(m.find("/moe/top_k"), std::string::npos) << m;
  EXPECT_NE(m.find("found 10"), std::string::npos) << m;
}

TEST(HfImportErrors, QwenInterleavedDenseLayersRejected) {
  Json c = hf_config("qwen3_30b_a3b.json");
  c["mlp_only_layers"] = Json::array({0, 1});
  std::string m = message_of<ConfigError>([&] { import_hf_config(c, "q.json", ""); });
  EXPECT_NE(m.find("q.json: /mlp_only_layers: expected an empty list"), std::string::npos) << m;
  EXPECT_NE(m.find("found an array of 2"), std::string::npos) << m;
}

TEST(HfImportErrors, MissingFileIsIoError) {
  EXPECT_THROW(read_json_file(hf_path("no_such_model.json")), IoError);
}

}  // namespace
}  // namespace moesim
