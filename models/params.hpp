#pragma once
/// \file Parameter and FLOP counts of a model, from its dimensions alone.

#include "scenarios/scenario.hpp"

namespace moesim::models {

/// What one layer of a model holds: a token mixer and an MLP. A transformer block has attention and a
/// dense MLP or an MoE layer; a layer of a hybrid model (ModelSpec::layer_pattern) has one of the four.
enum class Mixer { kAttention, kMamba, kNone, kGatedDeltaNet };
inline constexpr int kMixers = 4;  ///< values of Mixer (build_workload keeps a block template per mixer)
enum class Mlp { kDense, kMoe, kNone };
struct LayerMix {
  Mixer mixer = Mixer::kAttention;
  Mlp mlp = Mlp::kDense;
  bool operator==(const LayerMix&) const = default;
};

/// Layer `layer` (0-based, main model) of `m` (inline: the planner asks it for every layer of every layout).
inline LayerMix layer_mix(const ModelSpec& m, int layer) {
  if (!m.layer_pattern.empty()) {
    switch (m.layer_pattern[static_cast<std::size_t>(layer)]) {
      case 'M':
        return {Mixer::kMamba, Mlp::kNone};
      case 'G':
        return {Mixer::kGatedDeltaNet, Mlp::kNone};
      case '*':
        return {Mixer::kAttention, Mlp::kNone};
      case 'E':
        return {Mixer::kNone, Mlp::kMoe};
      default:
        return {Mixer::kNone, Mlp::kDense};
    }
  }
  if (m.moe.experts == 0 || layer < m.moe.first_dense_layers) return {Mixer::kAttention, Mlp::kDense};
  const bool moe = (layer - m.moe.first_dense_layers) % m.moe.layer_freq == 0;
  return {Mixer::kAttention, moe ? Mlp::kMoe : Mlp::kDense};
}

/// True if block `layer` (0-based, main model) is an MoE block.
inline bool is_moe_layer(const ModelSpec& m, int layer) {
  return layer_mix(m, layer).mlp == Mlp::kMoe;
}

/// Parameter counts (number of parameters, not bytes).
struct ParamCounts {
  double attention_per_layer = 0;  ///< projections (and MLA norms) of one block's attention
  double dense_ffn_per_layer = 0;  ///< one dense FFN
  double expert = 0;               ///< one routed expert
  double shared_per_layer = 0;     ///< all shared experts of one MoE layer
  double router_per_layer = 0;     ///< gate matrix hidden x experts
  double norms_per_layer = 0;      ///< RMSNorm weights of one transformer block (two norms)
  double mamba_per_layer = 0;      ///< one Mamba-2 mixer: projections, convolution, dt bias, A, D, gated norm
  double mamba_nonmatmul_per_layer = 0;  ///< of mamba_per_layer: what no GEMM multiplies (convolution, ...)
  double norms = 0;                      ///< pre-norm weights of all layers of the main model
  double gdn_per_layer = 0;  ///< one Gated DeltaNet mixer: projections, convolution, dt bias, A, gated norm
  double gdn_nonmatmul_per_layer = 0;  ///< of gdn_per_layer: what no GEMM multiplies
  int gdn_layers = 0;
  int mamba_layers = 0;
  int attention_layers = 0;
  double embedding = 0;  ///< input embedding (vocab x hidden)
  double head = 0;       ///< output projection (0 when tied)
  double mtp = 0;        ///< all MTP modules (not part of total/active, as model cards count)
  int moe_layers = 0;
  int dense_layers = 0;
  double total = 0;   ///< all parameters of the main model (embedding and head included)
  double active = 0;  ///< parameters a token uses: top_k routed experts instead of all
};

/// Counts parameters. Formulas per block type are in params.cpp with their sources.
ParamCounts count_params(const ModelSpec& m);

/// Parameters of one transformer block (attention, both norms, then its dense MLP or, with `moe`, its
/// router and shared experts; routed experts excluded) one GPU holds with tensor parallelism `tp`. An MTP
/// module is such a block.
double transformer_block_params_per_gpu(const ParamCounts& p, bool moe, int tp);

/// Parameters of layer `layer` one GPU holds with tensor parallelism `tp` (routed experts excluded; MTP
/// modules are counted by the caller): the mixer and the dense MLP split over tp, norms, router and
/// shared experts whole (Megatron-Core replicates shared experts over the expert-tensor ranks' TP).
double layer_params_per_gpu(const ParamCounts& p, const ModelSpec& m, int layer, int tp);

/// Muon's orthogonalisation of one a x b weight matrix (Jordan et al. 2024; Megatron-Core's
/// emerging_optimizers newton_schulz with num_ns_steps 5): each step X <- aX + (bA + cA²)X with A = XXᵀ on
/// the m x n orientation (m = min(a, b)) costs XXᵀ 2m²n, A² 2m³ and the product with X 2m²n FLOPs.
double newton_schulz_flops(double a, double b, int steps = 5);

/// Newton-Schulz FLOPs of the weight matrices of layer `layer` of `m` (routed experts excluded), one GPU's
/// share with tensor parallelism `tp` (Megatron-Core's newton_schulz_tp splits a TP-sharded matrix's work
/// over its ranks; router and shared experts whole): the attention projections (MLA: q down/up, kv down/up,
/// out; GQA: q, k, v, out), the Mamba-2 or Gated DeltaNet in/out projections, the dense MLP's fc1 and fc2
/// or the router and the shared experts' fc1 and fc2. `mtp`: an MTP module (a transformer block of the
/// model's kind with its 2h -> h projection).
double layer_newton_schulz_flops(const ModelSpec& m, int layer, bool moe, bool mtp, int tp);

/// Newton-Schulz FLOPs of one routed expert's fc1 and fc2, split over `etp` expert-tensor ranks.
double expert_newton_schulz_flops(const ModelSpec& m, int etp);

/// Forward FLOPs per token of one Mamba-2 layer's chunked SSD scan (Dao & Gu 2024 §6, as mamba_ssm's
/// kernels compute it, every chunk block in full): C·Bᵀ per chunk and group 2·Q·N·G, the intra-chunk
/// product with x 2·Q·P·H, the chunk states Bᵀ·x 2·N·P·H and their contribution C·state 2·N·P·H.
double ssd_forward_flops_per_token(const MambaSpec& s);

/// Forward FLOPs per token of one Gated DeltaNet layer's chunked delta rule (flash-linear-attention's
/// chunk_gated_delta_rule, q and k repeated to the value heads, every chunk block in full), per value head
/// with chunk C: β·K·Kᵀ 2·C·dk, the WY products w and u 2·C·dk + 2·C·dv, the state update w·h and
/// kᵀ·v_new 4·dk·dv, the output q·h 2·dk·dv and (q·kᵀ)·v_new 2·C·dk + 2·C·dv.
double gdn_forward_flops_per_token(const GatedDeltaNetSpec& s);

}  // namespace moesim::models
