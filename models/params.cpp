#include "models/params.hpp"

#include <algorithm>

namespace moesim::models {

double ssd_forward_flops_per_token(const MambaSpec& s) {
  const double Q = s.chunk_size, N = s.state_dim, P = s.head_dim, H = s.heads, G = s.groups;
  return 2 * Q * N * G + 2 * Q * P * H + 4 * N * P * H;
}

double gdn_forward_flops_per_token(const GatedDeltaNetSpec& s) {
  const double C = s.chunk_size, dk = s.key_head_dim, dv = s.value_head_dim;
  return s.value_heads * (6 * C * dk + 4 * C * dv + 6 * dk * dv);
}

double transformer_block_params_per_gpu(const ParamCounts& p, bool moe, int tp) {
  const double v = (p.attention_per_layer + p.norms_per_layer * tp) / tp;
  return v + (moe ? p.shared_per_layer + p.router_per_layer : p.dense_ffn_per_layer / tp);
}

double newton_schulz_flops(double a, double b, int steps) {
  const double m = std::min(a, b), n = std::max(a, b);
  return steps * (4 * m * m * n + 2 * m * m * m);
}

double layer_newton_schulz_flops(const ModelSpec& m, int layer, bool moe, bool mtp, int tp) {
  const double h = m.hidden;
  const LayerMix x = mtp ? LayerMix{Mixer::kAttention, moe ? Mlp::kMoe : Mlp::kDense} : layer_mix(m, layer);
  const double fc1 = m.activation == Activation::kSwiglu ? 2.0 : 1.0;  // fc1 holds gate and up
  double sharded = 0, whole = 0;
  if (x.mixer == Mixer::kAttention) {
    const auto& a = m.attention;
    const double v = a.v_head_dim > 0 ? a.v_head_dim : a.head_dim;
    if (a.kind == AttentionKind::kMla) {
      const double qk = a.head_dim + a.rope_head_dim;
      sharded += a.q_lora_rank > 0 ? newton_schulz_flops(h, a.q_lora_rank) +
                                         newton_schulz_flops(a.q_lora_rank, a.heads * qk)
                                   : newton_schulz_flops(h, a.heads * qk);
      sharded += newton_schulz_flops(h, a.kv_lora_rank + a.rope_head_dim) +
                 newton_schulz_flops(a.kv_lora_rank, double(a.heads) * (a.head_dim + a.v_head_dim));
    } else {
      sharded += newton_schulz_flops(h, (a.output_gate ? 2.0 : 1.0) * a.heads * a.head_dim) +
                 newton_schulz_flops(h, double(a.kv_heads) * a.head_dim) +
                 newton_schulz_flops(h, a.kv_heads * v);
    }
    sharded += newton_schulz_flops(double(a.heads) * v, h);
  }
  if (x.mixer == Mixer::kMamba) {
    const auto& s = m.mamba;
    const double di = s.inner();
    sharded +=
        newton_schulz_flops(h, 2 * di + 2.0 * s.groups * s.state_dim + s.heads) + newton_schulz_flops(di, h);
  }
  if (x.mixer == Mixer::kGatedDeltaNet) {
    const auto& g = m.gdn;
    sharded += newton_schulz_flops(h, 2 * g.qk_dim() + 2 * g.v_dim() + 2.0 * g.value_heads) +
               newton_schulz_flops(g.v_dim(), h);
  }
  if (x.mlp == Mlp::kDense)
    sharded += newton_schulz_flops(fc1 * m.dense_ffn, h) + newton_schulz_flops(h, m.dense_ffn);
  if (x.mlp == Mlp::kMoe) {
    whole += newton_schulz_flops(m.moe.experts, h);
    const double sf = double(m.moe.shared_experts) * m.moe.shared_ffn;
    if (sf > 0) whole += newton_schulz_flops(fc1 * sf, h) + newton_schulz_flops(h, sf);
  }
  if (mtp) sharded += newton_schulz_flops(2 * h, h);
  return sharded / tp + whole;
}

double expert_newton_schulz_flops(const ModelSpec& m, int etp) {
  const double fc1 = m.activation == Activation::kSwiglu ? 2.0 : 1.0;
  const double f = m.moe.expert_ffn, h = m.hidden;
  return (newton_schulz_flops(fc1 * f, h) + newton_schulz_flops(h, f)) / etp;
}

double layer_params_per_gpu(const ParamCounts& p, const ModelSpec& m, int layer, int tp) {
  const LayerMix x = layer_mix(m, layer);
  if (m.layer_pattern.empty()) return transformer_block_params_per_gpu(p, x.mlp == Mlp::kMoe, tp);
  double v = m.hidden;  // the layer's pre-norm
  if (x.mixer == Mixer::kAttention) v += p.attention_per_layer / tp;
  if (x.mixer == Mixer::kMamba) v += p.mamba_per_layer / tp;
  if (x.mixer == Mixer::kGatedDeltaNet) v += p.gdn_per_layer / tp;
  if (x.mlp == Mlp::kDense) v += p.dense_ffn_per_layer / tp;
  if (x.mlp == Mlp::kMoe) v += p.shared_per_layer + p.router_per_layer;
  return v;
}

ParamCounts count_params(const ModelSpec& m) {
  ParamCounts p;
  const double h = m.hidden;
  const auto& a = m.attention;
  if (a.kind == AttentionKind::kMla) {
    // MLA (DeepSeek-V2 report §2.1.2; config names q_lora_rank, kv_lora_rank, qk_nope/rope_head_dim):
    // q: h→q_lora→heads·(nope+rope) (or h→heads·(nope+rope) without q compression),
    // kv: h→kv_lora+rope, kv_lora→heads·(nope+v), out: heads·v→h; plus the two latent RMSNorms.
    const double qk = a.head_dim + a.rope_head_dim;
    double q =
        a.q_lora_rank > 0 ? h * a.q_lora_rank + double(a.q_lora_rank) * a.heads * qk : h * a.heads * qk;
    double kv = h * (a.kv_lora_rank + a.rope_head_dim) +
                double(a.kv_lora_rank) * a.heads * (a.head_dim + a.v_head_dim);
    double o = double(a.heads) * a.v_head_dim * h;
    p.attention_per_layer = q + kv + o + a.q_lora_rank + a.kv_lora_rank;
  } else {
    // MHA/GQA (Vaswani et al. 2017; Ainslie et al. 2023): Wq h×H·d, Wk and Wv h×KV·d, Wo H·d×h.
    const double q = h * a.heads * a.head_dim, kv = h * a.kv_heads * (a.head_dim + a.v_head_dim);
    const double o = double(a.heads) * a.v_head_dim * h;
    p.attention_per_layer = q + kv + o;
    if (a.output_gate) p.attention_per_layer += q;  // q_proj's second half: the output gate
    if (a.qkv_bias)
      p.attention_per_layer += double(a.heads) * a.head_dim + a.kv_heads * (a.head_dim + a.v_head_dim);
  }
  // Mamba-2 mixer (Megatron-Core MambaMixer): in_proj h -> [z, x, B, C, dt] (2·d_inner + 2·G·N + H),
  // a depthwise causal convolution with bias over [x, B, C], dt_bias, A_log and D per head, the gated
  // RMSNorm over d_inner and out_proj d_inner -> h.
  if (m.mamba.heads > 0) {
    const auto& s = m.mamba;
    const double di = s.inner(), conv = di + 2.0 * s.groups * s.state_dim;
    p.mamba_nonmatmul_per_layer = conv * (s.conv_kernel + 1) + 3.0 * s.heads + di;
    p.mamba_per_layer =
        h * (2 * di + 2.0 * s.groups * s.state_dim + s.heads) + di * h + p.mamba_nonmatmul_per_layer;
  }
  // Gated DeltaNet mixer (Megatron-Core GatedDeltaNet, Qwen3-Next): in_proj h -> [q, k, v, z, beta, alpha]
  // (2·qk + 2·v + 2·value_heads), a depthwise causal convolution over [q, k, v] without bias, dt_bias and
  // A_log per value head, the gated RMSNorm over one value head and out_proj v -> h.
  if (m.gdn.key_heads > 0) {
    const auto& g = m.gdn;
    const double qk = g.qk_dim(), v = g.v_dim();
    p.gdn_nonmatmul_per_layer = (2 * qk + v) * g.conv_kernel + 2.0 * g.value_heads + g.value_head_dim;
    p.gdn_per_layer = h * (2 * qk + 2 * v + 2.0 * g.value_heads) + v * h + p.gdn_nonmatmul_per_layer;
  }
  // SwiGLU FFN has gate, up and down matrices (Shazeer 2020); GELU and squared ReLU have up and down.
  const double mats = m.activation == Activation::kSwiglu ? 3.0 : 2.0;
  p.dense_ffn_per_layer = mats * h * m.dense_ffn;
  p.norms_per_layer = 2.0 * h;
  if (m.moe.experts > 0) {
    p.expert = mats * h * m.moe.expert_ffn;
    p.shared_per_layer = m.moe.shared_experts * mats * h * m.moe.shared_ffn;
    p.router_per_layer = h * m.moe.experts;
  }
  p.embedding = double(m.vocab) * h;
  p.head = m.tied_embeddings ? 0.0 : double(m.vocab) * h;
  double common = 0;
  if (m.layer_pattern.empty()) {
    for (int l = 0; l < m.layers; ++l) (is_moe_layer(m, l) ? p.moe_layers : p.dense_layers)++;
    p.attention_layers = m.layers;
    p.norms = m.layers * p.norms_per_layer;
    common = m.layers * (p.attention_per_layer + p.norms_per_layer) + p.dense_layers * p.dense_ffn_per_layer +
             p.moe_layers * (p.shared_per_layer + p.router_per_layer) + p.embedding + p.head + h;
  } else {
    // One pre-norm per layer; each layer its mixer or its MLP.
    for (int l = 0; l < m.layers; ++l) {
      const LayerMix x = layer_mix(m, l);
      p.mamba_layers += x.mixer == Mixer::kMamba;
      p.gdn_layers += x.mixer == Mixer::kGatedDeltaNet;
      p.attention_layers += x.mixer == Mixer::kAttention;
      p.moe_layers += x.mlp == Mlp::kMoe;
      p.dense_layers += x.mlp == Mlp::kDense;
    }
    p.norms = m.layers * h;
    common = p.attention_layers * p.attention_per_layer + p.mamba_layers * p.mamba_per_layer +
             p.gdn_layers * p.gdn_per_layer + p.norms + p.dense_layers * p.dense_ffn_per_layer +
             p.moe_layers * (p.shared_per_layer + p.router_per_layer) + p.embedding + p.head + h;
  }
  p.total = common + double(p.moe_layers) * m.moe.experts * p.expert;
  p.active = common + double(p.moe_layers) * m.moe.top_k * p.expert;
  // An MTP module (DeepSeek-V3 §2.2): one more MoE block plus a 2h→h projection and two norms; it shares
  // the embedding and head with the main model.
  const double block = p.attention_per_layer + p.norms_per_layer +
                       (m.moe.experts > 0 ? p.shared_per_layer + p.router_per_layer + m.moe.experts * p.expert
                                          : p.dense_ffn_per_layer);
  p.mtp = m.mtp_depth * (block + 2.0 * h * h + 2.0 * h);
  return p;
}

}  // namespace moesim::models
