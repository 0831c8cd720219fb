// The declared parameters of the catalog entries a scenario names or inlines (model and GPU) and of its
// published reference: read by scenarios/loader.cpp, listed by `moesim list parameters`.
#include <cmath>

#include "scenarios/params.hpp"

namespace moesim {

using namespace params;

namespace {

// A number that is absent unless given (NaN inside; null in the resolved scenario).
template <class S>
Param<S> optional_number(const char* key, double S::*m, double lo, double hi, const char* help) {
  return {{key, "number in " + range_text(lo, hi), "none", help},
          [=](ObjectReader& r, S& s) {
            // null is "none", as the resolved scenario writes an absent figure.
            const Json* v = r.optional_child(key);
            s.*m = v == nullptr || v->is_null() ? NAN : r.get_number_in(key, lo, hi, NAN);
          },
          [=](const S& s) { return std::isnan(s.*m) ? Json(nullptr) : Json(s.*m); }};
}

// A quantity that is absent unless given.
template <class S>
Param<S> optional_quantity(const char* key, double S::*m, Dimension dim, const char* help) {
  return {{key, std::string(dimension_hint(dim)), "none", help},
          [=](ObjectReader& r, S& s) {
            const Json* v = r.optional_child(key);
            s.*m = v == nullptr || v->is_null() ? NAN : r.get_quantity(key, dim, NAN);
          },
          [=](const S& s) { return std::isnan(s.*m) ? Json(nullptr) : Json(exact_quantity(s.*m, dim)); }};
}

// An integer of multi-head latent attention, read only for kind "mla" (elsewhere an unknown key).
Param<AttentionSpec> mla_integer(const char* key, int AttentionSpec::*m, int64_t lo,
                                 std::optional<int64_t> def, const char* help) {
  Param<AttentionSpec> p = integer(key, m, lo, kMaxDim, def, help);
  const auto read = p.read;
  p.info.default_text = "mla: " + p.info.default_text;
  p.read = [read](ObjectReader& r, AttentionSpec& a) {
    if (a.kind == AttentionKind::kMla) read(r, a);
  };
  return p;
}

}  // namespace

const ParamTable<ModelSpec>& model_params() {
  static const ParamTable<ModelSpec> t{
      "/model",
      {text("name", &ModelSpec::name, std::nullopt, "model name"),
       integer("layers", &ModelSpec::layers, 1, 4096, std::nullopt, "transformer blocks (without MTP)"),
       integer("hidden", &ModelSpec::hidden, 1, kMaxDim, std::nullopt, "hidden size"),
       integer("vocab", &ModelSpec::vocab, 1, kMaxDim, std::nullopt, "vocabulary size"),
       integer("dense_ffn", &ModelSpec::dense_ffn, 0, kMaxDim, 0,
               "intermediate size of a dense FFN (required without moe or with first_dense_layers)"),
       choice("activation", &ModelSpec::activation, activations, Activation::kSwiglu, "FFN activation"),
       boolean("tied_embeddings", &ModelSpec::tied_embeddings, false, "output head shares the embedding"),
       integer("mtp_depth", &ModelSpec::mtp_depth, 0, 16, 0, "multi-token-prediction modules"),
       text(
           "layer_pattern", &ModelSpec::layer_pattern, "",
           "hybrid models: one character per layer, M Mamba-2, G Gated DeltaNet, * attention, - dense MLP, E "
           "MoE (\"\": transformer blocks)"),
       number("published_total_params", &ModelSpec::published_total_params, 0, 1e16, 0.0,
              "model card's total parameters, for checks (0: unknown)"),
       number("published_active_params", &ModelSpec::published_active_params, 0, 1e16, 0.0,
              "model card's active parameters per token (0: unknown)"),
       text("source", &ModelSpec::source, "", "citation of the dimensions")}};
  return t;
}

const ParamTable<AttentionSpec>& attention_params() {
  static const ParamTable<AttentionSpec> t{
      "/model/attention",
      {choice("kind", &AttentionSpec::kind, attention_kinds, AttentionKind::kMha, "attention kind"),
       integer("heads", &AttentionSpec::heads, 1, kMaxDim, std::nullopt, "query heads"),
       integer("head_dim", &AttentionSpec::head_dim, 1, kMaxDim, std::nullopt,
               "query/key head dim (mla: the non-rotary part)"),
       {{"kv_heads", "integer in " + range_text(0, kMaxDim), "heads",
         "key/value heads (gqa; ignored for mla)"},
        [](ObjectReader& r, AttentionSpec& a) {
          if (a.kind == AttentionKind::kMla) {
            a.kv_heads = a.heads;
            return;
          }
          a.kv_heads = static_cast<int>(r.get_int_in("kv_heads", 0, kMaxDim, a.heads));
          if (a.kv_heads == 0) a.kv_heads = a.heads;
        },
        [](const AttentionSpec& a) { return Json(a.kv_heads); }},
       {{"v_head_dim", "integer in " + range_text(0, kMaxDim), "head_dim", "value head dim (0: head_dim)"},
        [](ObjectReader& r, AttentionSpec& a) {
          a.v_head_dim = static_cast<int>(r.get_int_in("v_head_dim", 0, kMaxDim, 0));
          if (a.v_head_dim == 0) a.v_head_dim = a.head_dim;
        },
        [](const AttentionSpec& a) { return Json(a.v_head_dim); }},
       mla_integer("q_lora_rank", &AttentionSpec::q_lora_rank, 0, 0, "query compression rank (0: none)"),
       mla_integer("kv_lora_rank", &AttentionSpec::kv_lora_rank, 1, std::nullopt,
                   "key/value compression rank"),
       mla_integer("rope_head_dim", &AttentionSpec::rope_head_dim, 0, 0, "decoupled rotary dim per head"),
       integer("sliding_window", &AttentionSpec::sliding_window, 0, kMaxDim, 0, "window in tokens (0: full)"),
       integer("sliding_window_every", &AttentionSpec::sliding_window_every, 0, kMaxDim, 0,
               "every k-th layer uses the window (0: all)"),
       boolean("qkv_bias", &AttentionSpec::qkv_bias, false, "bias on the QKV projection"),
       boolean("output_gate", &AttentionSpec::output_gate, false,
               "gated attention: q_proj also yields a sigmoid gate on the output (Qwen3-Next)")}};
  return t;
}

const ParamTable<MoeSpec>& moe_params() {
  static const ParamTable<MoeSpec> t{
      "/model/moe",
      {integer("experts", &MoeSpec::experts, 1, 65536, std::nullopt, "routed experts per MoE layer"),
       integer("top_k", &MoeSpec::top_k, 1, kMaxDim, std::nullopt,
               "routed experts per token (at most experts)"),
       integer("expert_ffn", &MoeSpec::expert_ffn, 1, kMaxDim, std::nullopt,
               "intermediate size of one expert"),
       integer("shared_experts", &MoeSpec::shared_experts, 0, kMaxDim, 0, "always-active shared experts"),
       {{"shared_ffn", "integer in " + range_text(0, kMaxDim), "expert_ffn",
         "intermediate size of one shared expert (0: expert_ffn)"},
        [](ObjectReader& r, MoeSpec& e) {
          e.shared_ffn = static_cast<int>(r.get_int_in("shared_ffn", 0, kMaxDim, 0));
          if (e.shared_ffn == 0) e.shared_ffn = e.expert_ffn;
        },
        [](const MoeSpec& e) { return Json(e.shared_ffn); }},
       integer("first_dense_layers", &MoeSpec::first_dense_layers, 0, kMaxDim, 0,
               "leading layers with a dense FFN (at most layers)"),
       integer("layer_freq", &MoeSpec::layer_freq, 1, 1024, 1,
               "every k-th layer after the dense ones is MoE"),
       integer("groups", &MoeSpec::groups, 1, kMaxDim, 1, "expert groups for group-limited routing"),
       integer("topk_groups", &MoeSpec::topk_groups, 0, kMaxDim, 0, "groups a token may use (0: all)"),
       choice("score", &MoeSpec::score, router_scores, RouterScore::kSoftmax, "router scoring")}};
  return t;
}

const ParamTable<MambaSpec>& mamba_params() {
  static const ParamTable<MambaSpec> t{
      "/model/mamba",
      {integer("heads", &MambaSpec::heads, 1, kMaxDim, std::nullopt, "SSM heads"),
       integer("head_dim", &MambaSpec::head_dim, 1, kMaxDim, std::nullopt, "channels per SSM head"),
       integer("state_dim", &MambaSpec::state_dim, 1, kMaxDim, std::nullopt, "SSM state size (d_state)"),
       integer("groups", &MambaSpec::groups, 1, kMaxDim, 1, "B/C groups (a divisor of heads)"),
       integer("conv_kernel", &MambaSpec::conv_kernel, 1, 64, 4, "causal convolution width"),
       integer("chunk_size", &MambaSpec::chunk_size, 1, 65536, 128, "SSD chunk length")}};
  return t;
}

const ParamTable<GatedDeltaNetSpec>& gdn_params() {
  static const ParamTable<GatedDeltaNetSpec> t{
      "/model/gated_delta_net",
      {integer("key_heads", &GatedDeltaNetSpec::key_heads, 1, kMaxDim, std::nullopt, "query/key heads"),
       integer("value_heads", &GatedDeltaNetSpec::value_heads, 1, kMaxDim, std::nullopt,
               "value heads (a multiple of key_heads)"),
       integer("key_head_dim", &GatedDeltaNetSpec::key_head_dim, 1, kMaxDim, std::nullopt,
               "query/key head dim"),
       integer("value_head_dim", &GatedDeltaNetSpec::value_head_dim, 1, kMaxDim, std::nullopt,
               "value head dim"),
       integer("conv_kernel", &GatedDeltaNetSpec::conv_kernel, 1, 64, 4, "causal convolution width"),
       integer("chunk_size", &GatedDeltaNetSpec::chunk_size, 1, 65536, 64,
               "chunk length of the delta rule")}};
  return t;
}

const ParamTable<GpuSpec>& gpu_params() {
  static const ParamTable<GpuSpec> t{
      "/cluster/gpu",
      {text("name", &GpuSpec::name, std::nullopt, "GPU name"),
       quantity("flops_bf16", &GpuSpec::flops_bf16, Dimension::kFlopRate, std::nullopt,
                "dense BF16 tensor peak (positive)"),
       quantity("flops_fp8", &GpuSpec::flops_fp8, Dimension::kFlopRate, 0.0,
                "dense FP8 tensor peak (0: none)"),
       quantity("flops_fp32", &GpuSpec::flops_fp32, Dimension::kFlopRate, 0.0, "non-tensor FP32 peak"),
       quantity("memory", &GpuSpec::memory_bytes, Dimension::kBytes, std::nullopt, "HBM capacity"),
       quantity("memory_bandwidth", &GpuSpec::memory_bandwidth, Dimension::kBandwidth, std::nullopt,
                "HBM bandwidth (positive)"),
       integer("sm_count", &GpuSpec::sm_count, 1, kMaxDim, std::nullopt, "streaming multiprocessors"),
       quantity("nvlink_bandwidth", &GpuSpec::nvlink_bandwidth, Dimension::kBandwidth, 0.0,
                "NVLink per GPU per direction"),
       integer("max_gpus_per_node", &GpuSpec::max_gpus_per_node, 1, 1024, 8, "GPUs one node holds"),
       number("gemm_efficiency_bf16", &GpuSpec::gemm_efficiency_bf16, 0.01, 1.0, 0.8,
              "roofline: achievable fraction of flops_bf16 for large GEMMs"),
       number("gemm_efficiency_fp8", &GpuSpec::gemm_efficiency_fp8, 0.01, 1.0, 0.67,
              "roofline: achievable fraction of flops_fp8"),
       number("attention_efficiency", &GpuSpec::attention_efficiency, 0.01, 1.0, 0.6,
              "roofline: fused attention forward, fraction of flops_bf16"),
       number("attention_backward_efficiency", &GpuSpec::attention_backward_efficiency, 0.01, 1.0, 0.45,
              "roofline: fused attention backward"),
       number("memory_efficiency", &GpuSpec::memory_efficiency, 0.01, 1.0, 0.9,
              "roofline: achievable fraction of memory_bandwidth"),
       quantity("kernel_launch", &GpuSpec::kernel_launch, Dimension::kTime, 4e-6, "fixed cost per kernel"),
       number("price_per_hour", &GpuSpec::price_per_hour, 0, 1e6, 0.0, "USD per GPU-hour (0: unknown)"),
       text("calibration", &GpuSpec::calibration, "",
            "default calibration when the scenario names none: catalog:NAME (\"\": roofline)"),
       text("source", &GpuSpec::source, "", "citation of the datasheet")}};
  return t;
}

const ParamTable<ReferenceSpec>& reference_params() {
  static const ParamTable<ReferenceSpec> t{
      "/reference",
      {text("source", &ReferenceSpec::source, std::nullopt, "citation of the published run"),
       optional_quantity("step_time", &ReferenceSpec::step_time, Dimension::kTime, "published step time"),
       optional_number("tokens_per_second_per_gpu", &ReferenceSpec::tokens_per_second_per_gpu, 0, 1e12,
                       "published throughput"),
       optional_number("mfu", &ReferenceSpec::mfu, 0, 1, "published MFU (fraction of BF16 peak)"),
       optional_number("input_tokens_per_second_per_node", &ReferenceSpec::input_tokens_per_second_per_node,
                       0, 1e12,
                       "serving: prompt tokens (cached included) per second per prefill (or colocated) node"),
       optional_number("output_tokens_per_second_per_node", &ReferenceSpec::output_tokens_per_second_per_node,
                       0, 1e12, "serving: output tokens per second per decode (or colocated) node"),
       optional_quantity("ttft", &ReferenceSpec::ttft, Dimension::kTime, "serving: mean time to first token"),
       optional_quantity("tpot", &ReferenceSpec::tpot, Dimension::kTime,
                         "serving: mean time per output token"),
       optional_quantity("e2e", &ReferenceSpec::e2e, Dimension::kTime, "serving: mean end-to-end latency"),
       number("tolerance", &ReferenceSpec::tolerance, 0, 10, 0.15,
              "relative step-time error a check accepts")}};
  return t;
}

const ParamTable<ReferenceSpec>& reference_phase_params() {
  static const ParamTable<ReferenceSpec> t{
      "/reference/phases",
      {optional_quantity("forward_only", &ReferenceSpec::forward_only, Dimension::kTime, "pipeline warm-up"),
       optional_quantity("steady", &ReferenceSpec::steady, Dimension::kTime, "pipeline steady state"),
       optional_quantity("backward_only", &ReferenceSpec::backward_only, Dimension::kTime,
                         "pipeline cool-down"),
       optional_quantity("weight_only", &ReferenceSpec::weight_only, Dimension::kTime,
                         "weight-gradient tail"),
       optional_quantity("bubble", &ReferenceSpec::bubble, Dimension::kTime, "idle time"),
       optional_quantity("optimizer", &ReferenceSpec::optimizer, Dimension::kTime,
                         "optimizer and exposed gradient sync")}};
  return t;
}

}  // namespace moesim
