#include "models/params.hpp"

namespace moesim::models {

bool is_moe_layer(const ModelSpec& m, int layer) {
  if (m.moe.experts == 0 || layer < m.moe.first_dense_layers) return false;
  return (layer - m.moe.first_dense_layers) % m.moe.layer_freq == 0;
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
    if (a.qkv_bias)
      p.attention_per_layer += double(a.heads) * a.head_dim + a.kv_heads * (a.head_dim + a.v_head_dim);
  }
  // SwiGLU FFN has gate, up and down matrices (Shazeer 2020); GELU has up and down.
  const double mats = m.activation == Activation::kSwiglu ? 3.0 : 2.0;
  p.dense_ffn_per_layer = mats * h * m.dense_ffn;
  p.norms_per_layer = 2.0 * h;
  if (m.moe.experts > 0) {
    p.expert = mats * h * m.moe.expert_ffn;
    p.shared_per_layer = m.moe.shared_experts * mats * h * m.moe.shared_ffn;
    p.router_per_layer = h * m.moe.experts;
  }
  for (int l = 0; l < m.layers; ++l) (is_moe_layer(m, l) ? p.moe_layers : p.dense_layers)++;
  p.embedding = double(m.vocab) * h;
  p.head = m.tied_embeddings ? 0.0 : double(m.vocab) * h;

  const double common = m.layers * (p.attention_per_layer + p.norms_per_layer) +
                        p.dense_layers * p.dense_ffn_per_layer +
                        p.moe_layers * (p.shared_per_layer + p.router_per_layer) + p.embedding + p.head + h;
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
