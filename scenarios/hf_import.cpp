#include "scenarios/hf_import.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"

namespace moesim {
namespace {

constexpr int64_t kMaxDim = 1 << 24;     // the catalog reader's bound on every dimension
constexpr int64_t kMaxLayerStep = 1024;  // the catalog reader's bound on moe.layer_freq

std::string in_quotes(const std::string& s) {
  return "\"" + s + "\"";
}
std::string num(int64_t v) {
  return std::to_string(v);
}
// Numbers are shown as written ("found 0"), anything else described ("found the string \"8\"").
std::string found_text(const Json& v) {
  return v.is_number() ? v.dump() : describe_json(v);
}

// The keys that give a model routed or shared experts, in every family's spelling. A family must read
// each one that is present, or the import is refused: an expert structure silently dropped would turn an
// MoE into a dense model.
const std::vector<std::string> kExpertKeys = {"num_experts",
                                              "n_routed_experts",
                                              "num_local_experts",
                                              "moe_num_experts",
                                              "moe_intermediate_size",
                                              "num_experts_per_tok",
                                              "experts_per_token",
                                              "moe_top_k",
                                              "n_shared_experts",
                                              "num_shared_experts",
                                              "shared_expert_intermediate_size",
                                              "first_k_dense_replace",
                                              "moe_layer_freq",
                                              "decoder_sparse_step",
                                              "interleave_moe_layer_step",
                                              "moe_layers",
                                              "mlp_only_layers",
                                              "n_group",
                                              "topk_group"};

// A value that says "no experts" (null, 0, false, an empty list) is as good as an absent key.
bool meaningful(const Json& v) {
  if (v.is_null()) return false;
  if (v.is_number()) return v.get<double>() != 0.0;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_array() || v.is_object()) return !v.empty();
  return true;
}

// Reads one object of a config.json (the file itself, or a nested text_config / attn_config). Lenient
// about keys it is not asked for (configs carry dropout rates, token ids, rope scaling, ...), strict about
// the ones it reads: type, integrality and range, with the HF key's pointer in every message.
class HfReader {
 public:
  HfReader(const Json& j, const std::string& source, std::string base, std::string type)
      : j_(j), source_(source), base_(std::move(base)), type_(std::move(type)) {}

  const std::string& type() const { return type_; }
  std::string at(const std::string& k) const { return base_ + "/" + pointer_escape(k); }
  bool has(const std::string& k) const {
    auto it = j_.find(k);
    return it != j_.end() && !it->is_null();
  }
  bool used(const std::string& k) const { return used_.count(k) != 0; }
  const Json& raw(const std::string& k) const {
    used_.insert(k);
    return j_.at(k);
  }
  [[noreturn]] void fail(const std::string& k, const std::string& expected, const std::string& found) const {
    throw ConfigError(located_message(source_, at(k), expected, found));
  }
  [[noreturn]] void fail_item(const std::string& k, std::size_t i, const std::string& expected,
                              const std::string& found) const {
    throw ConfigError(located_message(source_, at(k) + "/" + std::to_string(i), expected, found));
  }
  std::string required() const { return " (required for model_type " + in_quotes(type_) + ")"; }

  /// An integer in [lo, hi]; `fallback` when absent or null (required if none).
  int64_t integer(const std::string& k, int64_t lo, int64_t hi, std::optional<int64_t> fallback) const {
    const std::string want = lo == 1 ? "a positive integer" : "a non-negative integer";
    used_.insert(k);
    if (!has(k)) {
      if (fallback) return *fallback;
      fail(k, want + required(), "nothing");
    }
    const Json& v = j_.at(k);
    if (v.is_number_unsigned()) {  // what the parser makes of any non-negative integer
      const uint64_t u = v.get<uint64_t>();
      if (u < static_cast<uint64_t>(lo)) fail(k, want, v.dump());
      if (u > static_cast<uint64_t>(hi)) fail(k, want + " of at most " + num(hi), v.dump());
      return static_cast<int64_t>(u);
    }
    if (v.is_number_integer()) {
      const int64_t i = v.get<int64_t>();
      if (i < lo) fail(k, want, v.dump());
      if (i > hi) fail(k, want + " of at most " + num(hi), v.dump());
      return i;
    }
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (!std::isfinite(d) || std::floor(d) != d || d < lo) fail(k, want, v.dump());
      if (d > static_cast<double>(hi)) fail(k, want + " of at most " + num(hi), v.dump());
      return static_cast<int64_t>(d);
    }
    fail(k, want, describe_json(v));
  }
  int64_t size(const std::string& k) const { return integer(k, 1, kMaxDim, std::nullopt); }
  int64_t size(const std::string& k, std::optional<int64_t> fallback) const {
    return integer(k, 1, kMaxDim, fallback);
  }
  int64_t count(const std::string& k, std::optional<int64_t> fallback) const {
    return integer(k, 0, kMaxDim, fallback);
  }
  /// A number in (0, 1].
  double fraction(const std::string& k, double fallback) const {
    used_.insert(k);
    if (!has(k)) return fallback;
    const Json& v = j_.at(k);
    if (!v.is_number() || !(v.get<double>() > 0.0 && v.get<double>() <= 1.0))
      fail(k, "a number in (0, 1]", found_text(v));
    return v.get<double>();
  }
  std::string string(const std::string& k, const std::string& fallback) const {
    used_.insert(k);
    if (!has(k)) return fallback;
    if (!j_.at(k).is_string()) fail(k, "a string", describe_json(j_.at(k)));
    return j_.at(k).get<std::string>();
  }
  bool boolean(const std::string& k, bool fallback) const {
    used_.insert(k);
    if (!has(k)) return fallback;
    if (!j_.at(k).is_boolean()) fail(k, "true or false", describe_json(j_.at(k)));
    return j_.at(k).get<bool>();
  }
  /// A nested object (DBRX's attn_config, Llama 4's text_config); required.
  const Json& object(const std::string& k, const std::string& what) const {
    used_.insert(k);
    if (!has(k)) fail(k, "an object with " + what + required(), "nothing");
    if (!j_.at(k).is_object()) fail(k, "an object with " + what, describe_json(j_.at(k)));
    return j_.at(k);
  }
  /// An optional list of non-negative integers (layer indices).
  std::optional<std::vector<int64_t>> index_list(const std::string& k) const {
    used_.insert(k);
    if (!has(k)) return std::nullopt;
    const Json& v = j_.at(k);
    if (!v.is_array()) fail(k, "a list of layer indices", describe_json(v));
    std::vector<int64_t> out;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_number_integer() && !v[i].is_number_unsigned())
        fail_item(k, i, "a layer index", found_text(v[i]));
      out.push_back(v[i].get<int64_t>());
    }
    return out;
  }

  /// Refuses expert keys this family did not read: on a dense type, any; on an MoE type, one whose
  /// meaning the family's import does not know.
  void refuse_unread_expert_keys(bool dense, const std::string& supported) const {
    for (const auto& k : kExpertKeys) {
      if (used(k) || j_.find(k) == j_.end() || !meaningful(j_.at(k))) continue;
      if (dense)
        fail(k,
             "no expert keys for the dense model_type " + in_quotes(type_) +
                 " (a mixture of experts needs its own model_type: " + supported + ")",
             found_text(j_.at(k)));
      fail(k,
           "no " + k + " for model_type " + in_quotes(type_) +
               " (its architecture has no such setting; moesim cannot tell what it would change)",
           found_text(j_.at(k)));
    }
  }

 private:
  const Json& j_;
  const std::string& source_;
  std::string base_;
  std::string type_;
  mutable std::set<std::string> used_;
};

// What one family's reader fills: the catalog entry being built and what it leaves out.
struct Import {
  Import(const HfReader& reader, const std::string& src) : r(reader), source(src) {}
  const HfReader& r;
  const std::string& source;
  int64_t layers = 0, hidden = 0;
  Json m = Json::object();
  Json attn = Json::object();
  Json moe;  // null: a dense model
  std::vector<std::string> not_modelled;
};

// Every family moesim imports uses a gated MLP (gate, up and down projections), which the catalog calls
// "swiglu" whatever the gate's nonlinearity: a GeGLU has the same matrices and FLOPs.
void gated_activation(const HfReader& r, const std::string& key) {
  static const std::set<std::string> kGated = {
      "silu", "swish", "gelu", "gelu_new", "gelu_fast", "gelu_python", "gelu_pytorch_tanh"};
  const std::string act = r.string(key, "silu");
  if (!kGated.count(act))
    r.fail(key, "one of silu, swish, gelu, gelu_new, gelu_fast, gelu_python, gelu_pytorch_tanh",
           in_quotes(act));
}

// Layers, hidden size, vocabulary and tied embeddings, as most families name them.
void base_dims(Import& x) {
  const HfReader& r = x.r;
  x.layers = r.size("num_hidden_layers");
  x.hidden = r.size("hidden_size");
  x.m["layers"] = x.layers;
  x.m["hidden"] = x.hidden;
  x.m["vocab"] = r.size("vocab_size");
  x.m["tied_embeddings"] = r.boolean("tie_word_embeddings", false);
}

// The dimensions every llama-style family names the same way.
void common_dims(Import& x) {
  const HfReader& r = x.r;
  base_dims(x);
  gated_activation(r, "hidden_act");
  x.m["activation"] = "swiglu";
}

// Query/key/value heads of a multi-head or grouped-query attention.
void gqa_attention(Import& x, const HfReader& r, const std::string& heads_key, const HfReader& kv_r,
                   const std::string& kv_key, bool qkv_bias) {
  const int64_t heads = r.size(heads_key);
  const int64_t kv = kv_r.size(kv_key, heads);
  if (heads % kv != 0) kv_r.fail(kv_key, "a divisor of " + heads_key + " (" + num(heads) + ")", num(kv));
  int64_t head_dim = 0;
  if (r.has("head_dim")) {
    head_dim = r.size("head_dim");
  } else {
    if (x.hidden % heads != 0)
      r.fail(heads_key, "a divisor of the hidden size (" + num(x.hidden) + "), as the config has no head_dim",
             num(heads));
    head_dim = x.hidden / heads;
  }
  x.attn["kind"] = kv == heads ? "mha" : "gqa";
  x.attn["heads"] = heads;
  x.attn["kv_heads"] = kv;
  x.attn["head_dim"] = head_dim;
  x.attn["qkv_bias"] = qkv_bias;
}

void llama_attention(Import& x, bool default_bias) {
  gqa_attention(x, x.r, "num_attention_heads", x.r, "num_key_value_heads",
                x.r.boolean("attention_bias", default_bias));
}

// A window every layer uses (Mistral, Mixtral, Phi-3.5-MoE); null means full attention.
void uniform_sliding_window(Import& x) {
  if (x.r.has("sliding_window")) x.attn["sliding_window"] = x.r.size("sliding_window");
}

// Qwen's window applies from layer max_window_layers on, which the catalog cannot express.
void qwen_no_sliding_window(Import& x) {
  if (x.r.boolean("use_sliding_window", false))
    x.r.fail("use_sliding_window",
             "false (Qwen's sliding window from layer max_window_layers on is not modelled)", "true");
}

// Routed experts: count, top-k (checked against the count) and expert FFN size, by the family's keys.
void routed_experts(Import& x, const std::string& experts_key, int64_t experts, const HfReader& kr,
                    const std::string& top_k_key, int64_t top_k, int64_t expert_ffn) {
  if (top_k > experts) kr.fail(top_k_key, "at most " + experts_key + " (" + num(experts) + ")", num(top_k));
  x.moe["experts"] = experts;
  x.moe["top_k"] = top_k;
  x.moe["expert_ffn"] = expert_ffn;
  x.moe["score"] = "softmax";
}

void simple_moe(Import& x, const std::string& experts_key, const std::string& ffn_key) {
  const HfReader& r = x.r;
  routed_experts(x, experts_key, r.size(experts_key), r, "num_experts_per_tok", r.size("num_experts_per_tok"),
                 r.size(ffn_key));
}

// MoE layers every `step` layers from layer `first` on (the catalog's first_dense_layers + layer_freq).
void moe_layout(Import& x, int64_t first, int64_t step) {
  x.moe["first_dense_layers"] = first;
  x.moe["layer_freq"] = step;
}

// --------------------------------------------------------------------------------------- families

// DeepSeek-V2/V3/V3.2, Kimi K2 and GLM-4.5 share the DeepSeekMoE keys: n_routed_experts fine-grained
// experts of moe_intermediate_size, n_shared_experts shared ones, first_k_dense_replace dense layers
// first, group-limited routing over n_group groups.
void deepseek_moe(Import& x, bool v2_defaults, bool reads_layer_freq) {
  const HfReader& r = x.r;
  const int64_t experts = r.size("n_routed_experts");
  routed_experts(x, "n_routed_experts", experts, r, "num_experts_per_tok", r.size("num_experts_per_tok"),
                 r.size("moe_intermediate_size"));
  const int64_t top_k = x.moe["top_k"];
  // DeepseekV2Config leaves the shared experts, dense prefix and groups optional; the V3 line always
  // writes them, and an absent one there is more likely a truncated file than a choice.
  std::optional<int64_t> dflt0 = v2_defaults ? std::optional<int64_t>(0) : std::nullopt;
  x.moe["shared_experts"] = r.count("n_shared_experts", dflt0);
  const int64_t first_k = r.count("first_k_dense_replace", dflt0);
  if (first_k > x.layers)
    r.fail("first_k_dense_replace", "at most num_hidden_layers (" + num(x.layers) + ")", num(first_k));
  // DeepSeek's rule: layer i is MoE when i >= first_k_dense_replace and i % moe_layer_freq == 0.
  // GLM-4.5 has no moe_layer_freq: every layer after the dense ones is MoE.
  const int64_t freq = reads_layer_freq ? r.integer("moe_layer_freq", 1, kMaxLayerStep, 1) : 1;
  moe_layout(x, std::min(x.layers, (first_k + freq - 1) / freq * freq), freq);
  if (first_k > 0 || r.has("intermediate_size")) x.m["dense_ffn"] = r.size("intermediate_size");
  const int64_t groups = r.size("n_group", v2_defaults ? std::optional<int64_t>(1) : std::nullopt);
  if (experts % groups != 0)
    r.fail("n_group", "a divisor of n_routed_experts (" + num(experts) + ")", num(groups));
  const int64_t topk_groups = r.count("topk_group", dflt0);
  if (topk_groups > groups) r.fail("topk_group", "at most n_group (" + num(groups) + ")", num(topk_groups));
  if (topk_groups > 0 && top_k > topk_groups * (experts / groups))
    r.fail("num_experts_per_tok",
           "at most topk_group x routed experts per group (" + num(topk_groups) + " x " +
               num(experts / groups) + ")",
           num(top_k));
  x.moe["groups"] = groups;
  x.moe["topk_groups"] = topk_groups;
  const std::string score = r.string("scoring_func", v2_defaults ? "softmax" : "sigmoid");
  if (score != "softmax" && score != "sigmoid")
    r.fail("scoring_func", "\"softmax\" or \"sigmoid\"", in_quotes(score));
  x.moe["score"] = score;
  x.m["mtp_depth"] = r.count("num_nextn_predict_layers", 0);
}

// Multi-head latent attention (DeepSeek-V2 report §2.1).
void mla_attention(Import& x) {
  const HfReader& r = x.r;
  x.attn["kind"] = "mla";
  x.attn["heads"] = r.size("num_attention_heads");
  x.attn["head_dim"] = r.size("qk_nope_head_dim");
  x.attn["v_head_dim"] = r.size("v_head_dim");
  x.attn["kv_lora_rank"] = r.size("kv_lora_rank");
  x.attn["q_lora_rank"] = r.count("q_lora_rank", 0);  // null: no query compression (V2-Lite)
  x.attn["rope_head_dim"] = r.size("qk_rope_head_dim");
}

void read_deepseek(Import& x) {
  common_dims(x);
  mla_attention(x);
  deepseek_moe(x, x.r.type() == "deepseek_v2", true);
  if (x.r.type() == "deepseek_v32") {
    const int64_t n = x.r.size("index_n_heads"), d = x.r.size("index_head_dim"), k = x.r.size("index_topk");
    x.not_modelled.push_back(
        "the DeepSeek sparse attention indexer (index_n_heads " + num(n) + " x index_head_dim " + num(d) +
        ", index_topk " + num(k) +
        "): attention is costed as dense MLA and the indexer's projections are not counted");
  }
}

void read_glm4_moe(Import& x) {
  common_dims(x);
  llama_attention(x, false);
  deepseek_moe(x, false, false);
  if (x.r.fraction("partial_rotary_factor", 1.0) < 1.0)
    x.not_modelled.push_back("partial rotary embedding (partial_rotary_factor; no effect on cost)");
  if (x.r.boolean("use_qk_norm", false)) x.not_modelled.push_back("the q/k RMSNorms (use_qk_norm)");
}

// Qwen1.5/2-MoE and Qwen3-MoE: layer i is sparse when (i + 1) % decoder_sparse_step == 0.
void read_qwen_moe(Import& x) {
  const HfReader& r = x.r;
  const bool qwen2 = r.type() == "qwen2_moe";
  common_dims(x);
  if (qwen2)
    gqa_attention(x, r, "num_attention_heads", r, "num_key_value_heads", r.boolean("qkv_bias", true));
  else
    llama_attention(x, false);
  qwen_no_sliding_window(x);
  simple_moe(x, "num_experts", "moe_intermediate_size");
  if (auto only = r.index_list("mlp_only_layers"); only && !only->empty())
    r.fail("mlp_only_layers", "an empty list (dense layers chosen by index are not modelled)",
           describe_json(r.raw("mlp_only_layers")));
  const int64_t step = r.integer("decoder_sparse_step", 1, std::min(kMaxLayerStep, x.layers), 1);
  moe_layout(x, step - 1, step);
  if (step > 1 || r.has("intermediate_size")) x.m["dense_ffn"] = r.size("intermediate_size");
  if (qwen2) {
    if (const int64_t shared = r.count("shared_expert_intermediate_size", 0); shared > 0) {
      x.moe["shared_experts"] = 1;
      x.moe["shared_ffn"] = shared;
      x.not_modelled.push_back("the shared expert's sigmoid gate (hidden_size parameters per layer)");
    }
  } else {
    x.not_modelled.push_back("the per-head q/k RMSNorms");
  }
}

// Mixtral and Phi-3.5-MoE: num_local_experts experts of intermediate_size in every layer.
void read_mixtral(Import& x) {
  common_dims(x);
  llama_attention(x, false);
  uniform_sliding_window(x);
  simple_moe(x, "num_local_experts", "intermediate_size");
  if (x.r.type() == "phimoe") x.not_modelled.push_back("LayerNorm and output-layer biases");
}

void read_olmoe(Import& x) {
  common_dims(x);
  llama_attention(x, false);
  simple_moe(x, "num_experts", "intermediate_size");
  x.not_modelled.push_back("the q/k RMSNorms");
}

// gpt-oss: experts_per_token (the original key) and num_experts_per_tok (transformers) must agree;
// layer_types alternate sliding and full attention from layer 0.
void read_gpt_oss(Import& x) {
  const HfReader& r = x.r;
  common_dims(x);
  llama_attention(x, false);
  const int64_t experts = r.size("num_local_experts");
  std::string top_key = r.has("num_experts_per_tok") ? "num_experts_per_tok" : "experts_per_token";
  const int64_t top_k = r.size(top_key);
  if (r.has("num_experts_per_tok") && r.has("experts_per_token") && r.size("experts_per_token") != top_k)
    r.fail("experts_per_token", "the same value as num_experts_per_tok (" + num(top_k) + ")",
           found_text(r.raw("experts_per_token")));
  routed_experts(x, "num_local_experts", experts, r, top_key, top_k, r.size("intermediate_size"));
  x.attn["sliding_window"] = r.size("sliding_window");
  x.attn["sliding_window_every"] = 2;
  if (r.has("layer_types")) {
    const Json& t = r.raw("layer_types");
    if (!t.is_array() || static_cast<int64_t>(t.size()) != x.layers)
      r.fail("layer_types", "a list of num_hidden_layers (" + num(x.layers) + ") layer types",
             describe_json(t));
    for (std::size_t i = 0; i < t.size(); ++i) {
      const char* want = i % 2 == 0 ? "sliding_attention" : "full_attention";
      if (t[i] != want)
        r.fail_item("layer_types", i,
                    in_quotes(want) + " (sliding_attention and full_attention alternate from layer 0)",
                    found_text(t[i]));
    }
  }
  x.not_modelled.push_back("attention sinks and the o_proj, router and expert biases");
}

// Llama 4: every interleave_moe_layer_step-th layer is MoE (routed experts of intermediate_size plus one
// shared expert of the same size), the others dense with intermediate_size_mlp.
void read_llama4(Import& x) {
  const HfReader& r = x.r;
  common_dims(x);
  llama_attention(x, false);
  simple_moe(x, "num_local_experts", "intermediate_size");
  x.moe["shared_experts"] = 1;
  x.moe["score"] = "sigmoid";  // Llama4Router: top-k on the logits, then a sigmoid
  const int64_t step = r.integer("interleave_moe_layer_step", 1, std::min(kMaxLayerStep, x.layers), 1);
  moe_layout(x, step - 1, step);
  if (auto listed = r.index_list("moe_layers")) {
    std::vector<int64_t> want;
    for (int64_t l = step - 1; l < x.layers; l += step) want.push_back(l);
    if (*listed != want)
      r.fail(
          "moe_layers",
          "every interleave_moe_layer_step-th layer (" + num(step - 1) + ", " + num(2 * step - 1) + ", ...)",
          describe_json(r.raw("moe_layers")));
  }
  if (step > 1 || r.has("intermediate_size_mlp")) x.m["dense_ffn"] = r.size("intermediate_size_mlp");
  if (r.has("attention_chunk_size"))
    x.not_modelled.push_back("chunked local attention (attention_chunk_size " +
                             num(r.size("attention_chunk_size")) +
                             ", on the RoPE layers): costed as full attention");
  x.not_modelled.push_back("the vision encoder");
}

// DBRX keeps its MoE settings in ffn_config and its KV heads in attn_config (transformers DbrxConfig).
void read_dbrx(Import& x) {
  const std::string& source = x.source;
  const HfReader& r = x.r;
  x.layers = r.size("n_layers");
  x.hidden = r.size("d_model");
  x.m["layers"] = x.layers;
  x.m["hidden"] = x.hidden;
  x.m["vocab"] = r.size("vocab_size");
  x.m["tied_embeddings"] = r.boolean("tie_word_embeddings", false);
  x.m["activation"] = "swiglu";
  HfReader attn(r.object("attn_config", "kv_n_heads"), source, r.at("attn_config"), r.type());
  HfReader ffn(r.object("ffn_config", "ffn_hidden_size, moe_num_experts and moe_top_k"), source,
               r.at("ffn_config"), r.type());
  gqa_attention(x, r, "n_heads", attn, "kv_n_heads", false);
  if (ffn.has("ffn_act_fn"))
    gated_activation(
        HfReader(ffn.object("ffn_act_fn", "the activation's name"), source, ffn.at("ffn_act_fn"), r.type()),
        "name");
  const int64_t experts = ffn.size("moe_num_experts");
  routed_experts(x, "moe_num_experts", experts, ffn, "moe_top_k", ffn.size("moe_top_k"),
                 ffn.size("ffn_hidden_size"));
  ffn.refuse_unread_expert_keys(false, "");
  x.not_modelled.push_back("LayerNorm instead of RMSNorm and clip_qkv (no effect on cost)");
}

// Nemotron-H and Nemotron 3 (NemotronHConfig): hybrid_override_pattern names every layer (M Mamba-2, *
// attention, - MLP, E MoE; '|' marks pipeline stages and is dropped), Mamba-2 mixers of mamba_num_heads
// heads of mamba_head_dim with ssm_state_size states in n_groups groups, squared-ReLU MLPs
// (mlp_hidden_act relu2), MoE layers of n_routed_experts experts of moe_intermediate_size with shared
// experts of moe_shared_expert_intermediate_size and a sigmoid router.
void read_nemotron_h(Import& x) {
  const HfReader& r = x.r;
  base_dims(x);
  const std::string act = r.string("mlp_hidden_act", "relu2");
  if (act != "relu2") r.fail("mlp_hidden_act", "\"relu2\" (squared ReLU)", in_quotes(act));
  x.m["activation"] = "relu2";
  std::string pattern;
  for (char ch : r.string("hybrid_override_pattern", ""))
    if (ch != '|') pattern += ch;
  if (pattern.empty()) r.fail("hybrid_override_pattern", "one character per layer" + r.required(), "nothing");
  for (std::size_t i = 0; i < pattern.size(); ++i)
    if (std::string("M*-E").find(pattern[i]) == std::string::npos)
      r.fail("hybrid_override_pattern", "one of M, *, -, E per layer (and | between pipeline stages)",
             "'" + std::string(1, pattern[i]) + "' at layer " + std::to_string(i));
  if (static_cast<int64_t>(pattern.size()) != x.layers)
    r.fail("hybrid_override_pattern", "num_hidden_layers (" + num(x.layers) + ") layers",
           std::to_string(pattern.size()) + " layers");
  x.m["layer_pattern"] = pattern;
  const auto has = [&](char ch) { return pattern.find(ch) != std::string::npos; };

  const int64_t heads = r.size("num_attention_heads"), kv = r.size("num_key_value_heads", heads);
  if (heads % kv != 0)
    r.fail("num_key_value_heads", "a divisor of num_attention_heads (" + num(heads) + ")", num(kv));
  const std::string hd_key = r.has("head_dim") ? "head_dim" : "attention_head_dim";
  x.attn["kind"] = kv == heads ? "mha" : "gqa";
  x.attn["heads"] = heads;
  x.attn["kv_heads"] = kv;
  x.attn["head_dim"] = r.has(hd_key) ? r.size(hd_key) : r.size("head_dim", x.hidden / heads);
  x.attn["qkv_bias"] = r.boolean("attention_bias", false);

  if (has('M')) {
    const int64_t mh = r.size("mamba_num_heads"), groups = r.size("n_groups", 1);
    if (mh % groups != 0) r.fail("n_groups", "a divisor of mamba_num_heads (" + num(mh) + ")", num(groups));
    x.m["mamba"] = {{"heads", mh},
                    {"head_dim", r.size("mamba_head_dim")},
                    {"state_dim", r.size("ssm_state_size")},
                    {"groups", groups},
                    {"conv_kernel", r.integer("conv_kernel", 1, 64, 4)},
                    {"chunk_size", r.integer("chunk_size", 1, 65536, 128)}};
  }
  if (has('-')) x.m["dense_ffn"] = r.size("intermediate_size");
  if (r.has("moe_latent_size") && meaningful(r.raw("moe_latent_size")))
    r.fail("moe_latent_size", "null (LatentMoE's latent projections are not modelled)",
           found_text(r.raw("moe_latent_size")));
  if (has('E')) {
    const int64_t experts = r.size("n_routed_experts");
    routed_experts(x, "n_routed_experts", experts, r, "num_experts_per_tok", r.size("num_experts_per_tok"),
                   r.size("moe_intermediate_size"));
    const int64_t shared = r.count("n_shared_experts", 1);
    x.moe["shared_experts"] = shared;
    if (shared > 0) x.moe["shared_ffn"] = r.size("moe_shared_expert_intermediate_size");
    const int64_t groups = r.size("n_group", 1);
    if (experts % groups != 0)
      r.fail("n_group", "a divisor of n_routed_experts (" + num(experts) + ")", num(groups));
    x.moe["groups"] = groups;
    x.moe["topk_groups"] = r.count("topk_group", 0);
    x.moe["score"] = "sigmoid";
    x.not_modelled.push_back("the router's expert bias");
  } else {
    // NemotronHConfig writes its MoE defaults into every config: without E layers they describe nothing.
    for (const char* k : {"n_routed_experts", "num_experts_per_tok", "moe_intermediate_size",
                          "n_shared_experts", "n_group", "topk_group"})
      if (r.has(k)) r.raw(k);
  }
  const int64_t mtp = r.count("num_nextn_predict_layers", 0);
  if (mtp > 0) {
    const std::string mp = r.string("mtp_hybrid_override_pattern", "*E");
    if (mp != "*E" && !(mp == "*-" && !has('E')))
      r.fail("mtp_hybrid_override_pattern",
             "\"*E\" (an MTP module of attention and the model's MoE layer, as moesim prices one)",
             in_quotes(mp));
    x.m["mtp_depth"] = mtp;
  }
}

// Qwen3-Next and Qwen3.5 (Qwen3NextConfig, Qwen3_5MoeTextConfig): transformer blocks whose token mixer is
// a Gated DeltaNet (layer_types "linear_attention") or gated attention ("full_attention"; without
// layer_types, every full_attention_interval-th layer), followed by an MoE layer (routed experts of
// moe_intermediate_size and one shared expert) or, by decoder_sparse_step and mlp_only_layers, a dense MLP.
// Each block becomes two characters of the catalog's layer_pattern: its mixer (G or *), then E or -.
void read_qwen3_next(Import& x) {
  const HfReader& r = x.r;
  common_dims(x);
  const int64_t blocks = x.layers;
  gqa_attention(x, r, "num_attention_heads", r, "num_key_value_heads", r.boolean("attention_bias", false));
  x.attn["output_gate"] = r.boolean("attn_output_gate", true);
  const int64_t kh = r.size("linear_num_key_heads"), vh = r.size("linear_num_value_heads");
  if (vh % kh != 0)
    r.fail("linear_num_value_heads", "a multiple of linear_num_key_heads (" + num(kh) + ")", num(vh));
  x.m["gated_delta_net"] = {{"key_heads", kh},
                            {"value_heads", vh},
                            {"key_head_dim", r.size("linear_key_head_dim")},
                            {"value_head_dim", r.size("linear_value_head_dim")},
                            {"conv_kernel", r.integer("linear_conv_kernel_dim", 1, 64, 4)}};
  std::vector<bool> full(static_cast<std::size_t>(blocks), false);
  if (r.has("layer_types")) {
    const Json& t = r.raw("layer_types");
    if (!t.is_array() || static_cast<int64_t>(t.size()) != blocks)
      r.fail("layer_types", "a list of num_hidden_layers (" + num(blocks) + ") layer types",
             describe_json(t));
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (t[i] != "linear_attention" && t[i] != "full_attention")
        r.fail_item("layer_types", i, "\"linear_attention\" or \"full_attention\"", found_text(t[i]));
      full[i] = t[i] == "full_attention";
    }
  } else {
    const int64_t every = r.integer("full_attention_interval", 1, std::min(kMaxLayerStep, blocks), 4);
    for (int64_t i = 0; i < blocks; ++i) full[static_cast<std::size_t>(i)] = (i + 1) % every == 0;
  }
  simple_moe(x, "num_experts", "moe_intermediate_size");
  const int64_t step = r.integer("decoder_sparse_step", 1, std::min(kMaxLayerStep, blocks), 1);
  std::set<int64_t> dense_only;
  if (auto only = r.index_list("mlp_only_layers"))
    for (std::size_t i = 0; i < only->size(); ++i) {
      if ((*only)[i] >= blocks)
        r.fail_item("mlp_only_layers", i, "a layer index below num_hidden_layers (" + num(blocks) + ")",
                    num((*only)[i]));
      dense_only.insert((*only)[i]);
    }
  std::string pattern;
  bool any_dense = false;
  for (int64_t i = 0; i < blocks; ++i) {
    const bool moe = (i + 1) % step == 0 && !dense_only.count(i);
    any_dense = any_dense || !moe;
    pattern += full[static_cast<std::size_t>(i)] ? '*' : 'G';
    pattern += moe ? 'E' : '-';
  }
  if (any_dense) x.m["dense_ffn"] = r.size("intermediate_size");
  x.layers = 2 * blocks;
  x.m["layers"] = x.layers;
  x.m["layer_pattern"] = pattern;
  if (const int64_t shared = r.count("shared_expert_intermediate_size", 0); shared > 0) {
    x.moe["shared_experts"] = 1;
    x.moe["shared_ffn"] = shared;
  }
  const std::string mtp_key =
      r.has("mtp_num_hidden_layers") ? "mtp_num_hidden_layers" : "num_nextn_predict_layers";
  x.m["mtp_depth"] = r.count(mtp_key, 0);
  x.not_modelled.push_back(
      "the q/k RMSNorms, the shared expert's sigmoid gate and partial rotary embedding (no effect on cost "
      "beyond a few parameters per layer); each block is two layers of the pattern, its mixer and its MLP");
}

void read_dense(Import& x) {
  common_dims(x);
  const std::string& t = x.r.type();
  if (t == "qwen2")
    gqa_attention(x, x.r, "num_attention_heads", x.r, "num_key_value_heads", x.r.boolean("qkv_bias", true));
  else
    llama_attention(x, false);
  if (t == "mistral") uniform_sliding_window(x);
  if (t == "qwen2" || t == "qwen3") qwen_no_sliding_window(x);
  x.m["dense_ffn"] = x.r.size("intermediate_size");
}

struct Family {
  const char* type;
  void (*read)(Import&);
  bool dense;
};

const Family kFamilies[] = {
    {"deepseek_v2", read_deepseek, false},
    {"deepseek_v3", read_deepseek, false},
    {"deepseek_v32", read_deepseek, false},
    {"kimi_k2", read_deepseek, false},
    {"glm4_moe", read_glm4_moe, false},
    {"qwen2_moe", read_qwen_moe, false},
    {"qwen3_moe", read_qwen_moe, false},
    {"mixtral", read_mixtral, false},
    {"phimoe", read_mixtral, false},
    {"olmoe", read_olmoe, false},
    {"gpt_oss", read_gpt_oss, false},
    {"llama4_text", read_llama4, false},
    {"dbrx", read_dbrx, false},
    {"nemotron_h", read_nemotron_h, false},
    {"qwen3_next", read_qwen3_next, false},
    {"qwen3_5_moe_text", read_qwen3_next, false},
    {"llama", read_dense, true},
    {"mistral", read_dense, true},
    {"qwen2", read_dense, true},
    {"qwen3", read_dense, true},
};

// Multimodal wrappers whose language model sits in text_config, with the inner model_types accepted.
struct Wrapper {
  const char* type;
  const char* inner;
};
const Wrapper kWrappers[] = {
    {"llama4", "llama4_text"}, {"kimi_k25", "kimi_k2"}, {"qwen3_5_moe", "qwen3_5_moe_text"}};

std::string supported_types() {
  std::string s;
  for (const auto& f : kFamilies) s += (s.empty() ? "" : ", ") + std::string(f.type);
  for (const auto& w : kWrappers) s += ", " + std::string(w.type);
  return s;
}

const Family* find_family(const std::string& type) {
  for (const auto& f : kFamilies)
    if (type == f.type) return &f;
  return nullptr;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (const auto& e : v) s += (s.empty() ? "" : sep) + e;
  return s;
}

}  // namespace

std::vector<std::string> hf_model_types() {
  std::vector<std::string> out;
  for (const auto& f : kFamilies) out.push_back(f.type);
  for (const auto& w : kWrappers) out.push_back(w.type);
  return out;
}

Json import_hf_config(const Json& config, const std::string& source, const std::string& name) {
  if (!config.is_object())
    throw ConfigError(located_message(source, "", "a JSON object (config.json)", describe_json(config)));
  HfReader top(config, source, "", "");
  const std::string outer = top.string("model_type", "");
  if (outer.empty())
    throw ConfigError(located_message(source, "/model_type", "a Hugging Face model_type string", "nothing"));

  // A multimodal wrapper: the language model is the text_config, which names its own model_type.
  const Json* text = &config;
  std::string base, type = outer;
  for (const auto& w : kWrappers) {
    if (outer != w.type) continue;
    HfReader wrapper(config, source, "", outer);
    text = &wrapper.object("text_config", "the language model's settings");
    base = "/text_config";
    HfReader inner(*text, source, base, outer);
    type = inner.string("model_type", w.inner);
    if (type != w.inner)
      inner.fail("model_type", in_quotes(w.inner) + " (the language model of " + outer + ")",
                 in_quotes(type));
  }
  const Family* family = find_family(type);
  if (!family)
    throw ConfigError(located_message(
        source, "/model_type", "a supported model_type (" + supported_types() + ")", in_quotes(outer)));

  HfReader r(*text, source, base, type);
  Import x{r, source};
  family->read(x);
  // A wrapper may keep tie_word_embeddings at the top level only.
  if (!base.empty() && !r.has("tie_word_embeddings"))
    x.m["tied_embeddings"] = HfReader(config, source, "", outer).boolean("tie_word_embeddings", false);
  r.refuse_unread_expert_keys(family->dense, supported_types());

  x.m["name"] = !name.empty() ? name : top.string("_name_or_path", outer);
  x.m["attention"] = x.attn;
  if (!x.moe.is_null()) x.m["moe"] = x.moe;
  std::string src = "imported from Hugging Face config " + source + " (model_type " + type + ")";
  if (!x.not_modelled.empty()) src += "; not modelled: " + join(x.not_modelled, "; ");
  x.m["source"] = src;
  // Every value was checked above against the key it came from; this is the catalog's own check of the
  // entry, which should never fire.
  model_from_json(x.m, source + " (imported)", "");
  return x.m;
}

}  // namespace moesim
