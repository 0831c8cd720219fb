#include "scenarios/hf_import.hpp"

#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"

namespace moesim {
namespace {

// HF configs carry many keys we do not model (rope scaling, dropout, ...), so this reader is lenient
// about unknown keys but strict about the ones it needs.
struct HfReader {
  const Json& j;
  const std::string& source;

  bool has(const char* k) const { return j.contains(k) && !j[k].is_null(); }
  int64_t integer(const char* k) const {
    if (!has(k))
      throw ConfigError(located_message(source, std::string("/") + k, "an integer (required)", "nothing"));
    const Json& v = j[k];
    if (!v.is_number_integer() && !v.is_number_unsigned())
      throw ConfigError(located_message(source, std::string("/") + k, "an integer", describe_json(v)));
    return v.get<int64_t>();
  }
  int64_t integer(const char* k, int64_t fallback) const { return has(k) ? integer(k) : fallback; }
  std::string string(const char* k, const std::string& fallback) const {
    if (!has(k)) return fallback;
    if (!j[k].is_string())
      throw ConfigError(located_message(source, std::string("/") + k, "a string", describe_json(j[k])));
    return j[k].get<std::string>();
  }
  bool boolean(const char* k, bool fallback) const {
    if (!has(k)) return fallback;
    if (!j[k].is_boolean())
      throw ConfigError(located_message(source, std::string("/") + k, "true or false", describe_json(j[k])));
    return j[k].get<bool>();
  }
};

}  // namespace

Json import_hf_config(const Json& config, const std::string& source, const std::string& name) {
  if (!config.is_object())
    throw ConfigError(located_message(source, "", "a JSON object (config.json)", describe_json(config)));
  HfReader r{config, source};
  const std::string type = r.string("model_type", "");
  if (type.empty())
    throw ConfigError(located_message(source, "/model_type", "a Hugging Face model_type string", "nothing"));

  Json m;
  m["name"] = !name.empty() ? name : r.string("_name_or_path", type);
  m["layers"] = r.integer("num_hidden_layers");
  const int64_t hidden = r.integer("hidden_size");
  m["hidden"] = hidden;
  m["vocab"] = r.integer("vocab_size");
  m["tied_embeddings"] = r.boolean("tie_word_embeddings", false);
  m["source"] = "imported from Hugging Face config (" + source + ")";
  const std::string act = r.string("hidden_act", "silu");
  m["activation"] = (act == "gelu" || act == "gelu_new" || act == "gelu_pytorch_tanh") ? "gelu" : "swiglu";

  const int64_t heads = r.integer("num_attention_heads");
  Json attn;
  attn["heads"] = heads;
  Json moe;

  if (type == "deepseek_v2" || type == "deepseek_v3") {
    attn["kind"] = "mla";
    attn["head_dim"] = r.integer("qk_nope_head_dim");
    attn["v_head_dim"] = r.integer("v_head_dim");
    attn["kv_lora_rank"] = r.integer("kv_lora_rank");
    attn["q_lora_rank"] = r.integer("q_lora_rank", 0);
    attn["rope_head_dim"] = r.integer("qk_rope_head_dim");
    m["dense_ffn"] = r.integer("intermediate_size");
    moe["experts"] = r.integer("n_routed_experts");
    moe["top_k"] = r.integer("num_experts_per_tok");
    moe["expert_ffn"] = r.integer("moe_intermediate_size");
    moe["shared_experts"] = r.integer("n_shared_experts", 0);
    moe["first_dense_layers"] = r.integer("first_k_dense_replace", 0);
    moe["layer_freq"] = r.integer("moe_layer_freq", 1);
    moe["groups"] = r.integer("n_group", 1);
    moe["topk_groups"] = r.integer("topk_group", 0);
    moe["score"] = r.string("scoring_func", "softmax");
    m["mtp_depth"] = r.integer("num_nextn_predict_layers", 0);
  } else {
    const int64_t kv = r.integer("num_key_value_heads", heads);
    attn["kind"] = kv == heads ? "mha" : "gqa";
    attn["kv_heads"] = kv;
    attn["head_dim"] = r.integer("head_dim", hidden / heads);
    attn["qkv_bias"] = r.boolean("attention_bias", r.boolean("qkv_bias", false));
    if (type == "mixtral") {
      moe["experts"] = r.integer("num_local_experts");
      moe["top_k"] = r.integer("num_experts_per_tok");
      moe["expert_ffn"] = r.integer("intermediate_size");
    } else if (type == "qwen2_moe" || type == "qwen3_moe") {
      moe["experts"] = r.integer("num_experts");
      moe["top_k"] = r.integer("num_experts_per_tok");
      moe["expert_ffn"] = r.integer("moe_intermediate_size");
      moe["layer_freq"] = r.integer("decoder_sparse_step", 1);
      if (r.has("shared_expert_intermediate_size") && r.integer("shared_expert_intermediate_size") > 0) {
        moe["shared_experts"] = 1;
        moe["shared_ffn"] = r.integer("shared_expert_intermediate_size");
      }
      if (r.has("mlp_only_layers") && config["mlp_only_layers"].is_array() &&
          !config["mlp_only_layers"].empty())
        throw ConfigError(located_message(
            source, "/mlp_only_layers", "an empty list (dense layers interleaved by index are not modelled)",
            describe_json(config["mlp_only_layers"])));
      m["dense_ffn"] = r.integer("intermediate_size", 0);
      moe["score"] = "softmax";
    } else if (type == "olmoe") {
      moe["experts"] = r.integer("num_experts");
      moe["top_k"] = r.integer("num_experts_per_tok");
      moe["expert_ffn"] = r.integer("intermediate_size");
    } else if (type == "gpt_oss") {
      moe["experts"] = r.integer("num_local_experts");
      moe["top_k"] = r.integer("num_experts_per_tok", r.integer("experts_per_token", 0));
      moe["expert_ffn"] = r.integer("intermediate_size");
      if (r.has("sliding_window")) {
        attn["sliding_window"] = r.integer("sliding_window");
        attn["sliding_window_every"] = 2;
      }
    } else if (r.has("num_local_experts") || r.has("num_experts")) {
      throw ConfigError(
          located_message(source, "/model_type",
                          "a supported MoE model_type (deepseek_v2, deepseek_v3, mixtral, qwen2_moe, "
                          "qwen3_moe, olmoe, gpt_oss)",
                          "\"" + type + "\""));
    } else {
      m["dense_ffn"] = r.integer("intermediate_size");  // llama-style dense model
    }
  }
  m["attention"] = attn;
  if (!moe.empty()) m["moe"] = moe;
  model_from_json(m, source + " (imported)", "");  // validate what we produce
  return m;
}

}  // namespace moesim
