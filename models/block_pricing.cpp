#include "models/block_pricing.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>
#include <vector>

namespace moesim::models {
namespace {

constexpr double kAct = kActivationBytes;
using R = OpRole;

struct Builder {
  const PricingContext& c;
  BlockCost& b;
  bool mlp = false;  // ops added now belong to the MLP component

  void add(const char* name, OpRole role, Pass pass, OpKind kind, double seconds, double work,
           bool recompute = false, Precision precision = Precision::kBf16,
           MemoryKernel memory = MemoryKernel::kStream) {
    if (c.serving != nullptr && pass != Pass::kForward) return;  // inference runs the forward pass only
    const CommKind comm = comm_kind(role);
    b.ops.push_back(Op{name, role, pass, kind, comm, recompute, seconds, work, precision, memory});
    PassCost& pc = b.pass[static_cast<int>(pass)];
    switch (comm) {
      case CommKind::kNone:
        pc.compute += seconds;
        (mlp ? pc.mlp_compute : pc.attn_compute) += seconds;
        if (role == R::kExperts) pc.experts += seconds;
        if (kind != OpKind::kMemory) pc.flops += work;
        break;
      case CommKind::kTensor:
        pc.tp_comm += seconds;
        break;
      case CommKind::kContext:
        pc.cp_comm += seconds;
        break;
      case CommKind::kExpertDispatch:
        pc.ep_comm += seconds;
        pc.dispatch += seconds;
        break;
      case CommKind::kExpertCombine:
        pc.ep_comm += seconds;
        pc.combine += seconds;
        break;
      case CommKind::kExpertTensor:
        pc.etp_comm += seconds;
        break;
    }
  }
  // FP8 GEMMs need their operands quantised with fine-grained scales: the activation before Fprop,
  // the output gradient before Dgrad, and transposed copies of both before Wgrad (DeepSeek-V3 report
  // §3.3.2). Each reads BF16 and writes FP8 plus scales: 3 bytes per element moved.
  void quantize(double m, double n, double k, Precision p) {
    if (p != Precision::kFp8) return;
    const char* name = "fp8.quantize";
    // Per-tensor current scaling finds the tensor's amax in a pass of its own (2 bytes read per element)
    // before casting the activation (F) and the output gradient (B); the transposed copies for Wgrad reuse
    // those scales. The other recipes compute their scales inside the cast.
    if (c.s.workload.fp8_recipe == Fp8Recipe::kCurrent) {
      add("fp8.amax", R::kQuantize, Pass::kForward, OpKind::kMemory, c.cm.memory_bound(2 * m * k), 2 * m * k);
      add("fp8.amax", R::kQuantize, Pass::kBackwardInput, OpKind::kMemory, c.cm.memory_bound(2 * m * n),
          2 * m * n);
    }
    add(name, R::kQuantize, Pass::kForward, OpKind::kMemory, c.cm.memory_bound(3 * m * k), 3 * m * k);
    add(name, R::kQuantize, Pass::kBackwardInput, OpKind::kMemory, c.cm.memory_bound(3 * m * n), 3 * m * n);
    add(name, R::kQuantize, Pass::kBackwardWeight, OpKind::kMemory, c.cm.memory_bound(3 * (m * k + m * n)),
        3 * (m * k + m * n));
  }
  // A GEMM in forward, its data-gradient in B and its weight-gradient in W (each 2·m·n·k FLOPs).
  void gemm(const char* name, OpRole role, double m, double n, double k, Precision p,
            bool recomputed = false) {
    quantize(m, n, k, p);
    add(name, role, Pass::kForward, OpKind::kGemm, c.cm.gemm(m, n, k, p), 2 * m * n * k, false, p);
    add(name, role, Pass::kBackwardInput, OpKind::kGemm, c.cm.gemm(m, k, n, p), 2 * m * n * k, false, p);
    add(name, role, Pass::kBackwardWeight, OpKind::kGemm, c.cm.weight_gradient_gemm(k, n, m, p),
        2 * m * n * k, false, p);
    if (recomputed)
      add(name, role, Pass::kBackwardInput, OpKind::kGemm, c.cm.gemm(m, n, k, p), 2 * m * n * k, true, p);
  }
  void grouped(const char* name, const std::vector<double>& rows, double n, double k, Precision p,
               bool recomputed) {
    const double total = std::accumulate(rows.begin(), rows.end(), 0.0);
    quantize(total, n, k, p);
    const double f = c.expert_weight_elem > 0 ? c.cm.grouped_gemm_weights(rows, n, k, p, c.expert_weight_elem)
                                              : c.cm.grouped_gemm(rows, n, k, p);
    add(name, R::kExperts, Pass::kForward, OpKind::kGroupedGemm, f, 2 * total * n * k, false, p);
    // dgrad has the same shape per expert with n and k swapped; wgrad reduces over each expert's rows.
    add(name, R::kExperts, Pass::kBackwardInput, OpKind::kGroupedGemm, c.cm.grouped_gemm(rows, k, n, p),
        2 * total * n * k, false, p);
    add(name, R::kExperts, Pass::kBackwardWeight, OpKind::kGroupedGemm,
        c.cm.grouped_weight_gradient_gemm(rows, n, k, p), 2 * total * n * k, false, p);
    if (recomputed)
      add(name, R::kExperts, Pass::kBackwardInput, OpKind::kGroupedGemm, f, 2 * total * n * k, true, p);
  }
  // A memory-bound kernel of family `k`: backward moves about twice the bytes (gradient in, gradient
  // out, saved input) through the backward kernel of the same family, priced at the family's rate.
  void memory(const char* name, OpRole role, double bytes, bool recomputed = false,
              MemoryKernel k = MemoryKernel::kStream) {
    const auto P = Precision::kBf16;
    add(name, role, Pass::kForward, OpKind::kMemory, c.cm.memory_kernel(k, bytes), bytes, false, P, k);
    add(name, role, Pass::kBackwardInput, OpKind::kMemory, c.cm.memory_kernel(k, 2 * bytes), 2 * bytes, false,
        P, k);
    if (recomputed)
      add(name, role, Pass::kBackwardInput, OpKind::kMemory, c.cm.memory_kernel(k, bytes), bytes, true, P, k);
  }
  // A collective in one pass; an expert all-to-all also carries its NIC leg (`nic`, seconds), which goes
  // with its time to the pass's dispatch or combine.
  void comm(const char* name, OpRole role, Pass pass, double seconds, double bytes, bool recompute = false,
            double nic = 0) {
    add(name, role, pass, OpKind::kComm, seconds, bytes, recompute);
    PassCost& pc = b.pass[static_cast<int>(pass)];
    const CommKind k = comm_kind(role);
    if (k == CommKind::kExpertDispatch) pc.dispatch_nic += nic;
    if (k == CommKind::kExpertCombine) pc.combine_nic += nic;
  }
};

// The activation's kernel family: SwiGLU has its own measured rate; other activations stream.
MemoryKernel act_kernel(bool swiglu) {
  return swiglu ? MemoryKernel::kSwiglu : MemoryKernel::kStream;
}

bool full_rc(const PricingContext& c) {
  return c.rc == Recompute::kFull;
}
// The module is rerun in the backward: by full recomputation or by selective recomputation naming it.
bool rc(const PricingContext& c, RecomputeModule m) {
  return full_rc(c) || c.recomputes(m);
}

// Bytes per element a GEMM keeps of its input for its weight gradient: its FP8 copy when it runs in FP8
// (Transformer Engine saves the quantized input, not the BF16 tensor), else the BF16 tensor itself.
double gemm_input_bytes(const PricingContext& c) {
  return c.prec == Precision::kFp8 ? 1.0 : kAct;
}

// Bytes per element a SwiGLU keeps of its input for its backward: BF16, or FP8 where the workload stores
// it so (Megatron-Core activation_func_fp8_input_store, cast back before the backward).
double act_input_bytes(const PricingContext& c) {
  return c.s.workload.activation_fp8_input_store ? 1.0 : kAct;
}

// What a norm fused with the column-parallel GEMM after it (Transformer Engine's LayerNormLinear and
// LayerNormMLP, as Megatron-Core builds the QKV, FC1 and Mamba/GDN in_proj) keeps of its output, `width`
// channels: under sequence parallelism only the local sequence shard (T_sp tokens), gathered again in the
// backward for the weight gradient (NVIDIA/TransformerEngine transformer_engine/pytorch/module/
// layernorm_linear.py, _LayerNormLinear: ctx.ln_out_needs_gather for a column-parallel, sequence-parallel
// layer), in the GEMM's input precision.
double fused_norm_output(const PricingContext& c, double width) {
  return c.T_sp * width * gemm_input_bytes(c);
}

// Attention of a serving iteration: norm, projections, the decode and prefill attention kernels, the KV
// cache write, output projection and (tp > 1) its all-reduce. MLA decodes with the up-projections absorbed
// into the query and output (DeepSeek-V2 report §2.1.2: attention over the 576-wide latent, one KV head)
// and prefills with them expanded (multi-head attention over the up-projected keys and values), as SGLang
// and vLLM run it.
double serving_attention_block(const PricingContext& c, Builder& bl, int layer) {
  const ServingBatch& sb = *c.serving;
  const auto& m = c.s.model;
  const auto& a = m.attention;
  const double h = m.hidden, T = c.T;
  const double H = double(a.heads) / c.tp;
  const double Td = sb.decode_seqs * sb.decode_queries, Tp = sb.prefill_tokens;
  const R proj = R::kAttentionProjection;
  const bool windowed =
      a.sliding_window > 0 && (a.sliding_window_every == 0 || layer % a.sliding_window_every == 0);
  const double window = windowed ? double(a.sliding_window) : 0.0;
  const auto seen = [&](double kv) { return window > 0 ? std::min(kv, window) : kv; };
  bl.memory("attn.norm", R::kNorm, T * h * kAct * 2);
  double kv_per_token = 0;  // KV cache bytes one token adds to this layer on this GPU
  if (a.kind == AttentionKind::kMla) {
    const double qk_dim = a.head_dim + a.rope_head_dim, latent = a.kv_lora_rank + a.rope_head_dim;
    if (a.q_lora_rank > 0) {
      bl.gemm("attn.q_down", proj, T, a.q_lora_rank, h, c.prec);
      bl.memory("attn.q_norm", R::kNorm, T * a.q_lora_rank * kAct * 2);
      bl.gemm("attn.q_up", proj, T, H * qk_dim, a.q_lora_rank, c.prec);
    } else {
      bl.gemm("attn.q_proj", proj, T, H * qk_dim, h, c.prec);
    }
    bl.gemm("attn.kv_down", proj, T, latent, h, c.prec);
    bl.memory("attn.kv_norm", R::kNorm, T * a.kv_lora_rank * kAct * 2);
    kv_per_token = latent * sb.kv_elem_bytes;
    if (Td > 0) {
      // Absorbed: each head's query is mapped into the latent space and its output back (one small GEMM
      // per head over the decode tokens, BF16 batched GEMMs).
      const std::vector<double> rows(static_cast<std::size_t>(H), Td);
      bl.add("attn.q_absorb", proj, Pass::kForward, OpKind::kGroupedGemm,
             c.cm.grouped_gemm(rows, a.kv_lora_rank, a.head_dim, Precision::kBf16),
             2 * Td * H * a.kv_lora_rank * a.head_dim);
      DecodeAttentionShape d;
      d.sequences = sb.decode_seqs;
      d.query_per_seq = sb.decode_queries;
      d.kv_per_seq = seen(sb.decode_kv);
      d.heads = H;
      d.kv_heads = 1;
      d.qk_dim = latent;
      d.v_dim = a.kv_lora_rank;
      d.kv_bytes = sb.decode_seqs * d.kv_per_seq * kv_per_token;
      bl.add("attn.decode", R::kAttention, Pass::kForward, OpKind::kAttention,
             decode_attention_seconds(c.cm, d), d.flops());
      bl.add("attn.o_absorb", proj, Pass::kForward, OpKind::kGroupedGemm,
             c.cm.grouped_gemm(rows, a.v_head_dim, a.kv_lora_rank, Precision::kBf16),
             2 * Td * H * a.kv_lora_rank * a.v_head_dim);
    }
    if (Tp > 0) {
      // Expanded: the latents of every context token of the prefilled sequences are up-projected.
      bl.gemm("attn.kv_up", proj, sb.prefill_context, H * (a.head_dim + a.v_head_dim), a.kv_lora_rank,
              c.prec);
      AttentionShape sh;
      sh.query_tokens = Tp;
      sh.kv_tokens = seen(sb.prefill_kv);
      sh.heads = H;
      sh.qk_dim = qk_dim;
      sh.v_dim = a.v_head_dim;
      sh.causal = false;  // prefill_kv already counts only the visible keys
      bl.add("attn.prefill", R::kAttention, Pass::kForward, OpKind::kAttention, c.cm.attention(sh, false),
             sh.forward_flops());
    }
  } else {
    const double kvh = std::max(1.0, double(a.kv_heads) / c.tp);
    bl.gemm("attn.qkv", proj, T,
            (H + kvh) * a.head_dim + kvh * a.v_head_dim + (a.output_gate ? H * a.head_dim : 0.0), h, c.prec);
    kv_per_token = kvh * (a.head_dim + a.v_head_dim) * sb.kv_elem_bytes;
    if (Td > 0) {
      DecodeAttentionShape d;
      d.sequences = sb.decode_seqs;
      d.query_per_seq = sb.decode_queries;
      d.kv_per_seq = seen(sb.decode_kv);
      d.heads = H;
      d.kv_heads = kvh;
      d.qk_dim = a.head_dim;
      d.v_dim = a.v_head_dim;
      d.kv_bytes = sb.decode_seqs * d.kv_per_seq * kv_per_token;
      bl.add("attn.decode", R::kAttention, Pass::kForward, OpKind::kAttention,
             decode_attention_seconds(c.cm, d), d.flops());
    }
    if (Tp > 0) {
      AttentionShape sh;
      sh.query_tokens = Tp;
      sh.kv_tokens = seen(sb.prefill_kv);
      sh.heads = H;
      sh.qk_dim = a.head_dim;
      sh.v_dim = a.v_head_dim;
      sh.causal = false;
      bl.add("attn.prefill", R::kAttention, Pass::kForward, OpKind::kAttention, c.cm.attention(sh, false),
             sh.forward_flops());
    }
  }
  bl.memory("attn.kv_write", R::kAttention, T * kv_per_token * 2);  // read the new K, V; write the cache
  if (a.output_gate) bl.memory("attn.output_gate", R::kAttention, T * H * a.v_head_dim * kAct * 3);
  bl.gemm("attn.out", proj, T, h, H * a.v_head_dim, c.prec);
  if (c.tp > 1) {
    const double bytes = T * h * kAct;
    bl.comm("attn.tp_all_reduce", R::kTensorCollective, Pass::kForward, c.net.all_reduce(bytes, c.tp_group),
            bytes);
  }
  bl.memory("attn.residual", R::kResidual, T * h * kAct * 3);
  return 0;
}

// A tensor-parallel mixer's entry: under sequence parallelism the all-gather of its input (backward: a
// reduce-scatter); without it, nothing forward and the all-reduce of the input gradient backward.
void tp_enter(const PricingContext& c, Builder& bl, const char* name) {
  if (c.tp <= 1 || c.serving != nullptr) return;  // serving replicates the input over tp: nothing to gather
  const double bytes = c.T * c.s.model.hidden * kAct;
  const double t = c.s.parallelism.sequence_parallel ? c.net.all_gather(bytes, c.tp_group) : 0.0;
  bl.comm(name, R::kTensorCollective, Pass::kForward, t, bytes);
  // Backward of an all-gather is a reduce-scatter (and of an all-reduce, an all-reduce).
  const double tb = c.s.parallelism.sequence_parallel ? c.net.reduce_scatter(bytes, c.tp_group)
                                                      : c.net.all_reduce(bytes, c.tp_group);
  bl.comm(name, R::kTensorCollective, Pass::kBackwardInput, tb, bytes);
}

// Its exit after the row-parallel output projection: a reduce-scatter under sequence parallelism
// (backward: an all-gather), an all-reduce without it.
void tp_exit(const PricingContext& c, Builder& bl, const char* rs_name, const char* ar_name) {
  if (c.tp <= 1) return;
  const double bytes = c.T * c.s.model.hidden * kAct;
  const bool sp = c.s.parallelism.sequence_parallel;
  const double t = sp ? c.net.reduce_scatter(bytes, c.tp_group) : c.net.all_reduce(bytes, c.tp_group);
  bl.comm(sp ? rs_name : ar_name, R::kTensorCollective, Pass::kForward, t, bytes);
  const double tb = sp ? c.net.all_gather(bytes, c.tp_group) : 0.0;
  if (sp) bl.comm(rs_name, R::kTensorCollective, Pass::kBackwardInput, tb, bytes);
}

// Attention sub-block: norm, (TP all-gather), projections, fused attention, output projection,
// (TP reduce-scatter). Saved activations are returned in bytes.
double attention_block(const PricingContext& c, Builder& bl, int layer) {
  if (c.serving != nullptr) return serving_attention_block(c, bl, layer);
  const auto& m = c.s.model;
  const auto& a = m.attention;
  const double h = m.hidden, T = c.T;
  const double H = double(a.heads) / c.tp;
  const bool fr = full_rc(c), ln = rc(c, RecomputeModule::kLayernorm);
  const bool up = rc(c, RecomputeModule::kMlaUpProj), core = rc(c, RecomputeModule::kCoreAttn);
  double saved = 0;
  // The norm keeps its input (the residual stream) for its backward and, unless recomputed, its output
  // for the projection's weight gradient: MLA's down-projections take the gathered output (Megatron-Core
  // gathers the sequence before them), the fused QKV projection keeps its shard (fused_norm_output).
  bl.memory("attn.norm", R::kNorm, c.T_sp * h * kAct * 2, ln);
  saved += c.T_sp * h * kAct + (ln                              ? 0.0
                                : a.kind == AttentionKind::kMla ? T * h * kAct
                                                                : fused_norm_output(c, h));
  tp_enter(c, bl, "attn.tp_all_gather");
  double qk_dim = a.head_dim, kv_bytes_per_token;
  const R proj = R::kAttentionProjection;
  if (a.kind == AttentionKind::kMla) {
    qk_dim = a.head_dim + a.rope_head_dim;
    if (a.q_lora_rank > 0) {
      bl.gemm("attn.q_down", proj, T, a.q_lora_rank, h, c.prec, fr);
      bl.memory("attn.q_norm", R::kNorm, T * a.q_lora_rank * kAct * 2, up);
      bl.gemm("attn.q_up", proj, T, H * qk_dim, a.q_lora_rank, c.prec, up);
      saved += T * a.q_lora_rank * kAct * (up ? 1 : 2);
    } else {
      bl.gemm("attn.q_proj", proj, T, H * qk_dim, h, c.prec, fr);
    }
    bl.gemm("attn.kv_down", proj, T, a.kv_lora_rank + a.rope_head_dim, h, c.prec, fr);
    bl.memory("attn.kv_norm", R::kNorm, T * a.kv_lora_rank * kAct * 2, up);
    bl.gemm("attn.kv_up", proj, T, H * (a.head_dim + a.v_head_dim), a.kv_lora_rank, c.prec, up);
    saved += T * (a.kv_lora_rank + a.rope_head_dim) * kAct * (up ? 1 : 2);
    if (!up) saved += T * H * (qk_dim + qk_dim + a.v_head_dim) * kAct;  // q, k, v after up-projection
    kv_bytes_per_token = H * (qk_dim + a.v_head_dim) * kAct;
  } else {
    const double kvh = std::max(1.0, double(a.kv_heads) / c.tp);
    // Gated attention: q_proj also yields the output gate, one value per query channel.
    const double qkv = (H + kvh) * a.head_dim + kvh * a.v_head_dim + (a.output_gate ? H * a.head_dim : 0.0);
    bl.gemm("attn.qkv", proj, T, qkv, h, c.prec, fr);
    saved += T * qkv * kAct;
    kv_bytes_per_token = kvh * (a.head_dim + a.v_head_dim) * kAct;
  }
  AttentionShape sh;
  sh.query_tokens = T;
  sh.heads = H;
  sh.qk_dim = qk_dim;
  sh.v_dim = a.v_head_dim;
  const int seq = c.s.workload.seq_len;
  const bool windowed = a.sliding_window > 0 && a.sliding_window < seq &&
                        (a.sliding_window_every == 0 || layer % a.sliding_window_every == 0);
  sh.kv_tokens = windowed ? a.sliding_window : seq;
  sh.causal = windowed ? false : c.s.workload.causal;
  const double af = c.cm.attention(sh, false), ab = c.cm.attention(sh, true);
  bl.add("attn.core", R::kAttention, Pass::kForward, OpKind::kAttention, af, sh.forward_flops());
  bl.add("attn.core", R::kAttention, Pass::kBackwardInput, OpKind::kAttention, ab, 2.5 * sh.forward_flops());
  if (core)
    bl.add("attn.core.recompute", R::kAttention, Pass::kBackwardInput, OpKind::kAttention, af,
           sh.forward_flops(), true);
  saved += T * H * a.v_head_dim * kAct + T * H * 4.0;  // output and softmax statistics (FP32)
  if (a.output_gate) {  // sigmoid(gate) x output: reads both, writes the product; keeps the gated output
    bl.memory("attn.output_gate", R::kAttention, T * H * a.v_head_dim * kAct * 3, fr);
    saved += T * H * a.v_head_dim * kAct;
  }
  if (c.cp > 1) {
    // Ring attention passes K and V around the cp ranks: (cp-1) hops of this rank's KV, hidden under
    // the attention kernel when it is long enough (Liu et al. 2023, Ring Attention); backward also
    // returns dK, dV.
    const double bytes = (c.cp - 1) * T * kv_bytes_per_token;
    const double t = (c.cp - 1) * c.net.send_recv(T * kv_bytes_per_token, c.cp_group.nodes() > 1);
    bl.comm("attn.cp_ring", R::kContextExchange, Pass::kForward, t, bytes);
    bl.comm("attn.cp_ring", R::kContextExchange, Pass::kBackwardInput, 2 * t, 2 * bytes);
    bl.b.pass[0].cp_exposed += std::max(0.0, t - af);
    bl.b.pass[1].cp_exposed += std::max(0.0, 2 * t - ab);
  }
  bl.gemm("attn.out", proj, T, h, H * a.v_head_dim, c.prec, fr);
  tp_exit(c, bl, "attn.tp_reduce_scatter", "attn.tp_all_reduce");
  bl.memory("attn.residual", R::kResidual, c.T_sp * h * kAct * 3);
  return fr ? c.T_sp * h * kAct : saved;
}

// A kernel of a chunked linear-recurrence scan (Mamba-2's SSD, Gated DeltaNet's delta rule): batched small
// matmuls, `groups` of rows x n x k per family (one per chunk and head or group), that move `bytes`. Priced
// as the slower of the matmuls on the grouped-GEMM fit (BF16) and the bytes at the stream rate.
struct MatmulFamily {
  double groups = 0, rows = 0, n = 0, k = 0;
};
ScanKernel memory_kernel(const ComputeCostModel& cm, double bytes) {
  return {cm.memory_bound(bytes), 0, bytes};
}
ScanKernel chunk_kernel(const ComputeCostModel& cm, double bytes,
                        std::initializer_list<MatmulFamily> families) {
  // Beyond kPriced equal groups (long sequences, many heads) the price of kPriced groups is scaled: equal
  // groups fill whole waves, so their time grows in proportion, and no list of millions is built.
  constexpr double kPriced = 65536;
  ScanKernel x;
  double gemm = 0;
  for (const MatmulFamily& f : families) {
    if (f.groups <= 0) continue;
    x.flops += 2 * f.groups * f.rows * f.n * f.k;
    const double priced = std::min(f.groups, kPriced);
    gemm += cm.batched_matmul(std::vector<double>(static_cast<std::size_t>(priced), f.rows), f.n, f.k,
                              Precision::kBf16) *
            (f.groups / priced);
  }
  x.seconds = std::max(gemm, cm.memory_bound(bytes));
  return x;
}

// Chunks of one GPU's microbatch for a chunked scan: each sequence of seq_len / cp tokens cut into chunks.
double chunks_of(const PricingContext& c, double chunk) {
  const double local_seq = double(c.s.workload.seq_len) / c.cp;
  return c.T / local_seq * std::ceil(local_seq / chunk);
}

}  // namespace

ScanKernel ssd_chunk_scan(const ComputeCostModel& cm, const SsdScanShape& s) {
  const double chunks = s.sequences * std::ceil(s.seq_len / s.chunk), T = s.sequences * s.seq_len;
  const double X = T * s.heads * s.head_dim * kAct, Bb = T * s.groups * s.state_dim * kAct;
  const double S2 = chunks * s.heads * s.head_dim * s.state_dim * 2,
               CB4 = chunks * s.groups * s.chunk * s.chunk * 4;
  const double g = chunks * s.heads, Q = s.chunk;
  return chunk_kernel(cm, CB4 + 2 * X + Bb + S2, {{g, Q, s.head_dim, Q}, {g, Q, s.head_dim, s.state_dim}});
}

double mamba_state_bytes(const MambaSpec& m, int tp, double state_elem) {
  const double H = double(m.heads) / tp, G = double(m.groups) / tp;
  const double conv = H * m.head_dim + 2 * G * m.state_dim;
  return H * m.head_dim * m.state_dim * state_elem + (m.conv_kernel - 1) * conv * kAct;
}

double gdn_state_bytes(const GatedDeltaNetSpec& g, int tp, double state_elem) {
  const double Hv = double(g.value_heads) / tp, conv = (2 * g.qk_dim() + g.v_dim()) / tp;
  return Hv * g.key_head_dim * g.value_head_dim * state_elem + (g.conv_kernel - 1) * conv * kAct;
}

namespace {

// A scan's forward kernels, one op each (rerun in the backward under full recomputation), and its backward
// kernels summed into one op.
void add_scan(Builder& bl, OpRole role, bool rerun,
              std::initializer_list<std::pair<const char*, ScanKernel>> fwd, const char* backward,
              std::initializer_list<ScanKernel> back) {
  for (const auto& [name, k] : fwd) {
    const OpKind kind = k.flops > 0 ? OpKind::kGroupedGemm : OpKind::kMemory;
    const double work = k.flops > 0 ? k.flops : k.bytes;
    bl.add(name, role, Pass::kForward, kind, k.seconds, work);
    if (rerun) bl.add(name, role, Pass::kBackwardInput, kind, k.seconds, work, true);
  }
  ScanKernel b;
  for (const ScanKernel& k : back) b.seconds += k.seconds, b.flops += k.flops;
  bl.add(backward, role, Pass::kBackwardInput, OpKind::kGroupedGemm, b.seconds, b.flops);
}

// The op labels of what Mamba-2 and Gated DeltaNet layers share around their scan.
struct MixerOps {
  const char *norm, *tp_all_gather, *in_proj, *conv1d, *gated_norm, *out_proj, *tp_reduce_scatter,
      *tp_all_reduce, *residual;
};

// Before the scan: the norm, (TP all-gather), in_proj to `proj` channels per token and the causal depthwise
// convolution over `conv` of them (read, then written convolved with its SiLU).
void mixer_enter(const PricingContext& c, Builder& bl, const MixerOps& n, R role, double proj, double conv,
                 bool fr, bool ln) {
  bl.memory(n.norm, R::kNorm, c.T_sp * c.s.model.hidden * kAct * 2, ln);
  tp_enter(c, bl, n.tp_all_gather);
  bl.gemm(n.in_proj, R::kMixerProjection, c.T, proj, c.s.model.hidden, c.prec, fr);
  bl.memory(n.conv1d, role, c.T * conv * kAct * 2, fr);
}

// After it: the gated RMSNorm over `width` channels (reads the scan's output and z, writes their product),
// out_proj, (TP reduce-scatter or all-reduce), the residual.
void mixer_exit(const PricingContext& c, Builder& bl, const MixerOps& n, R role, double width, bool fr) {
  const double h = c.s.model.hidden;
  bl.memory(n.gated_norm, role, c.T * width * kAct * 3, fr);
  bl.gemm(n.out_proj, R::kMixerProjection, c.T, h, width, c.prec, fr);
  tp_exit(c, bl, n.tp_reduce_scatter, n.tp_all_reduce);
  bl.memory(n.residual, R::kResidual, c.T_sp * h * kAct * 3);
}

// The forward kernels of Mamba-2's chunked SSD scan over `T` tokens cut into `chunks` chunks (`shape`: the
// sequences and their lengths), with the sizes its backward reuses.
struct SsdForward {
  double chunks = 0, X = 0, Bb = 0, S4 = 0, S2 = 0, CB4 = 0;
  ScanKernel state, passing, bmm, out;
};
SsdForward ssd_forward(const ComputeCostModel& cm, double T, double chunks, const SsdScanShape& shape) {
  const double H = shape.heads, P = shape.head_dim, N = shape.state_dim, G = shape.groups, Q = shape.chunk;
  SsdForward f;
  f.chunks = chunks;
  f.X = T * H * P * kAct, f.Bb = T * G * N * kAct;  // x (or dout), B (or C): BF16
  f.S4 = chunks * H * P * N * 4, f.S2 = f.S4 / 2, f.CB4 = chunks * G * Q * Q * 4;  // FP32 / BF16
  f.state = chunk_kernel(cm, f.X + f.Bb + f.S4, {{chunks * H, N, P, Q}});          // chunk states Bᵀ·x
  f.passing = memory_kernel(cm, f.S4 + f.S2);                           // states carried across chunks
  f.bmm = chunk_kernel(cm, 2 * f.Bb + f.CB4, {{chunks * G, Q, Q, N}});  // C·Bᵀ inside each chunk
  f.out = ssd_chunk_scan(cm, shape);
  return f;
}

// The forward kernels of the chunked gated delta rule over `T` tokens in `n` chunks of C, `Hv` value heads.
struct DeltaRuleForward {
  double cg = 0, V = 0, A4 = 0, S = 0;
  ScanKernel kkt, solve, wu, hs, out;
};
DeltaRuleForward delta_rule_forward(const ComputeCostModel& cm, double T, double n, double Hv, double dk,
                                    double dv, double C) {
  DeltaRuleForward f;
  const double QK = T * Hv * dk * kAct;  // q (or k) per value head, BF16
  f.cg = n * Hv;                         // (chunk, value head) pairs
  const double cg = f.cg;
  f.V = T * Hv * dv * kAct, f.A4 = cg * C * C * 4, f.S = cg * dk * dv * kAct;
  const double V = f.V, A4 = f.A4, S = f.S;
  f.kkt = chunk_kernel(cm, QK + A4, {{cg, C, C, dk}});  // β·K·Kᵀ per chunk
  f.solve = memory_kernel(cm, A4 + A4 / 2);             // (I + A)⁻¹, FP32 in, BF16 out
  f.wu = chunk_kernel(cm, A4 / 2 + QK + V + QK + V, {{cg, C, dk, C}, {cg, C, dv, C}});
  f.hs = chunk_kernel(cm, 2 * QK + 2 * V + S, {{cg, dk, dv, C}, {cg, C, dv, dk}});  // states
  f.out = chunk_kernel(cm, 2 * QK + V + S + V, {{cg, C, dv, dk}, {cg, C, C, dk}, {cg, C, dv, C}});
  return f;
}

double state_elem_bytes(const PricingContext& c) {
  return c.s.serving.state_dtype == StateDtype::kFp32 ? 4.0 : 2.0;
}

// The prefilled sequences of a serving iteration: their number and new tokens each (a prompt, or the chunk
// of one that chunked prefill computes this iteration).
std::pair<double, double> prefill_sequences(const ServingBatch& sb) {
  const double seqs = sb.prefill_seqs > 0 ? sb.prefill_seqs : 1.0;
  return {seqs, sb.prefill_tokens / seqs};
}

// A recurrent layer's decode step (op `name`): each decoding sequence's `state` bytes read and written back
// once per query token (speculative tokens keep a state per position), with `token_bytes` in and out per
// query token.
void decode_state_step(Builder& bl, const ServingBatch& sb, R role, const char* name, double state,
                       double token_bytes) {
  if (sb.decode_seqs <= 0) return;
  const double q = sb.decode_queries;
  bl.memory(name, role, sb.decode_seqs * (1 + q) * state + sb.decode_seqs * q * token_bytes);
}

constexpr MixerOps kMambaOps{
    "mamba.norm",     "mamba.tp_all_gather",     "mamba.in_proj",       "mamba.conv1d",  "mamba.gated_norm",
    "mamba.out_proj", "mamba.tp_reduce_scatter", "mamba.tp_all_reduce", "mamba.residual"};
constexpr MixerOps kGdnOps{
    "gdn.norm",     "gdn.tp_all_gather",     "gdn.in_proj",       "gdn.conv1d",  "gdn.gated_norm",
    "gdn.out_proj", "gdn.tp_reduce_scatter", "gdn.tp_all_reduce", "gdn.residual"};

// A Mamba-2 layer in a serving iteration, as vLLM runs it: in_proj and the convolution over every token;
// the prompt tokens through the chunked SSD scan (mamba_chunk_scan_combined, its forward kernels), each
// prefilled sequence loading the state it starts from (a cached prefix, an earlier chunk) and storing the
// one it ends with; each decoding sequence through selective_state_update, which reads its SSM and
// convolution states and writes them back once per query token (speculative tokens keep a state per
// position), with the token's x, B, C, z and dt in and y out. Memory-bound at the stream rate.
double serving_mamba_block(const PricingContext& c, Builder& bl) {
  const ServingBatch& sb = *c.serving;
  const MambaSpec& ms = c.s.model.mamba;
  const double H = double(ms.heads) / c.tp, G = double(ms.groups) / c.tp;
  const double P = ms.head_dim, N = ms.state_dim, Q = ms.chunk_size;
  const double di = H * P, conv = di + 2 * G * N, proj = 2 * di + 2 * G * N + H;
  const double state = mamba_state_bytes(ms, c.tp, state_elem_bytes(c));
  const R scan = R::kMambaScan;
  mixer_enter(c, bl, kMambaOps, scan, proj, conv, false, false);
  if (sb.prefill_tokens > 0) {
    const auto [seqs, len] = prefill_sequences(sb);
    const SsdForward f =
        ssd_forward(c.cm, sb.prefill_tokens, seqs * std::ceil(len / Q), {seqs, len, H, P, N, G, Q});
    add_scan(bl, scan, false,
             {{"mamba.ssd_state", f.state},
              {"mamba.ssd_passing", f.passing},
              {"mamba.ssd_bmm", f.bmm},
              {"mamba.ssd_scan", f.out}},
             "mamba.ssd_backward", {});
    bl.memory("mamba.state_io", scan, seqs * 2 * state);
  }
  decode_state_step(bl, sb, scan, "mamba.state_update", state, (conv + 2 * di + H) * kAct);
  mixer_exit(c, bl, kMambaOps, scan, di, false);
  return 0;
}

// A Gated DeltaNet layer in a serving iteration, as vLLM runs Qwen3-Next's: in_proj, the convolution and the
// q/k L2 norms over every token; the prompt tokens through the chunked gated delta rule (its forward
// kernels), each prefilled sequence loading and storing its dk x dv state per value head and its
// convolution state; each decoding sequence through fused_recurrent_gated_delta_rule, which reads its
// states and writes them back once per query token, with the token's q, k, v, beta and g in and o out.
double serving_gdn_block(const PricingContext& c, Builder& bl) {
  const ServingBatch& sb = *c.serving;
  const GatedDeltaNetSpec& g = c.s.model.gdn;
  const double Hk = double(g.key_heads) / c.tp, Hv = double(g.value_heads) / c.tp;
  const double dk = g.key_head_dim, dv = g.value_head_dim, C = g.chunk_size;
  const double qk = Hk * dk, v = Hv * dv, conv = 2 * qk + v, proj = 2 * qk + 2 * v + 2 * Hv;
  const double state = gdn_state_bytes(g, c.tp, state_elem_bytes(c));
  const R rule = R::kDeltaRule;
  mixer_enter(c, bl, kGdnOps, rule, proj, conv, false, false);
  bl.memory("gdn.qk_l2norm", rule, c.T * 2 * qk * kAct + 2 * c.T * Hv * dk * kAct);
  if (sb.prefill_tokens > 0) {
    const auto [seqs, len] = prefill_sequences(sb);
    const DeltaRuleForward f =
        delta_rule_forward(c.cm, sb.prefill_tokens, seqs * std::ceil(len / C), Hv, dk, dv, C);
    add_scan(bl, rule, false,
             {{"gdn.rule_kkt", f.kkt},
              {"gdn.rule_solve", f.solve},
              {"gdn.rule_wu", f.wu},
              {"gdn.rule_states", f.hs},
              {"gdn.rule_output", f.out}},
             "gdn.rule_backward", {});
    bl.memory("gdn.state_io", rule, seqs * 2 * state);
  }
  decode_state_step(bl, sb, rule, "gdn.state_update", state, (2 * Hv * dk + 2 * v + 2 * Hv) * kAct);
  mixer_exit(c, bl, kGdnOps, rule, v, false);
  return 0;
}

// A Mamba-2 mixer layer (Megatron-Core MambaMixer on mamba_ssm's Triton kernels, the memory-efficient
// path mamba_split_conv1d_scan_combined): norm, (TP all-gather), in_proj to [z, x, B, C, dt], the causal
// depthwise convolution over [x, B, C], the chunked SSD scan (Dao & Gu 2024 §6), the gated RMSNorm,
// out_proj, (TP reduce-scatter), residual. Heads and groups split over tp. Each SSD kernel is priced as
// the slower of its batched matmuls (the grouped-GEMM model: one small GEMM per chunk and head or group)
// and the bytes it moves (the stream rate): states and C·Bᵀ blocks in FP32, x, B, C and outputs in BF16,
// as mamba_ssm's ssd_combined.py allocates them. Its backward is the kernel list of
// _mamba_chunk_scan_combined_bwd: C·Bᵀ, the chunk states and their passing recomputed, then dstates,
// their passing backward, dx, dB, dC, d(C·Bᵀ), two C·Bᵀ backward products and the dA cumsum gradient.
double mamba_block(const PricingContext& c, Builder& bl) {
  if (c.serving != nullptr) return serving_mamba_block(c, bl);
  const auto& m = c.s.model;
  const MambaSpec& ms = m.mamba;
  const double h = m.hidden, T = c.T;
  const double H = double(ms.heads) / c.tp, G = double(ms.groups) / c.tp;
  const double P = ms.head_dim, N = ms.state_dim, Q = ms.chunk_size;
  const double di = H * P, conv = di + 2 * G * N, proj = 2 * di + 2 * G * N + H;
  const bool fr = full_rc(c), ln = rc(c, RecomputeModule::kLayernorm);
  const R scan = R::kMambaScan;
  mixer_enter(c, bl, kMambaOps, scan, proj, conv, fr, ln);  // the convolution over [x, B, C]

  const double local_seq = double(c.s.workload.seq_len) / c.cp;
  const SsdForward f = ssd_forward(c.cm, T, chunks_of(c, Q), {T / local_seq, local_seq, H, P, N, G, Q});
  const double chunks = f.chunks, X = f.X, Bb = f.Bb, S4 = f.S4, S2 = f.S2, CB4 = f.CB4;
  const ScanKernel &state = f.state, &passing = f.passing, &bmm = f.bmm, &out = f.out;
  add_scan(bl, scan, fr,
           {{"mamba.ssd_state", state},
            {"mamba.ssd_passing", passing},
            {"mamba.ssd_bmm", bmm},
            {"mamba.ssd_scan", out}},
           "mamba.ssd_backward",
           {bmm, state, passing,                                      // recomputed
            chunk_kernel(c.cm, 2 * X + S4, {{chunks * H, N, P, Q}}),  // dstates = Cᵀ·dout
            memory_kernel(c.cm, 2 * (S4 + S2)),                       // their passing backward
            chunk_kernel(c.cm, CB4 + 3 * X + Bb + S2, {{chunks * H, Q, P, Q}, {chunks * H, Q, P, N}}),  // dx
            chunk_kernel(c.cm, X + S2 + Bb, {{chunks * H, Q, N, P}}),    // dB = x·dstatesᵀ
            chunk_kernel(c.cm, X + S2 + Bb, {{chunks * H, Q, N, P}}),    // dC = dout·statesᵀ
            chunk_kernel(c.cm, 2 * X + CB4, {{chunks * H, Q, Q, P}}),    // d(C·Bᵀ) = dout·xᵀ
            chunk_kernel(c.cm, CB4 + 2 * Bb, {{chunks * G, Q, N, Q}}),   // dB += d(C·Bᵀ)·C
            chunk_kernel(c.cm, CB4 + 2 * Bb, {{chunks * G, Q, N, Q}}),   // dC += d(C·Bᵀ)ᵀ·B
            chunk_kernel(c.cm, 2 * X + CB4, {{chunks * H, Q, Q, P}})});  // dA cumsum gradient

  mixer_exit(c, bl, kMambaOps, scan, di, fr);
  if (fr) return c.T_sp * h * kAct;
  // The norm's input and (unless recomputed) its output, in_proj's output [z, x, B, C, dt] and the scan
  // output before the gate (the combined kernel's saved tensors), and out_proj's input (in its GEMM's
  // precision).
  return c.T_sp * h * kAct + (ln ? 0.0 : fused_norm_output(c, h)) + T * proj * kAct + T * di * kAct +
         T * di * gemm_input_bytes(c);
}

// A Gated DeltaNet mixer layer (Megatron-Core GatedDeltaNet on flash-linear-attention's kernels, as
// Qwen3-Next and Qwen3.5 run it): norm, (TP all-gather), in_proj to [q, k, v, z, beta, alpha], the causal
// depthwise convolution over [q, k, v], L2 norms of q and k (repeated to the value heads), the chunked
// gated delta rule, the gated RMSNorm, out_proj, (TP reduce-scatter), residual. Key and value heads split
// over tp. The delta rule is priced kernel by kernel as chunk_gated_delta_rule runs it on chunks of C
// tokens, each kernel the slower of its batched matmuls and its bytes (chunk_kernel): β·K·Kᵀ (FP32 out),
// its triangular solve (memory-bound), the WY products w and u, the state recurrence (dk x dv states,
// BF16), the output. The backward is chunk_gated_delta_rule_bwd's list: w, u and the states recomputed,
// the local dv, the backward state recurrence, dq/dk/dw with the score gradient, and the WY
// representation's backward.
double gdn_block(const PricingContext& c, Builder& bl) {
  if (c.serving != nullptr) return serving_gdn_block(c, bl);
  const auto& m = c.s.model;
  const GatedDeltaNetSpec& g = m.gdn;
  const double h = m.hidden, T = c.T;
  const double Hk = double(g.key_heads) / c.tp, Hv = double(g.value_heads) / c.tp;
  const double dk = g.key_head_dim, dv = g.value_head_dim, C = g.chunk_size;
  const double qk = Hk * dk, v = Hv * dv, conv = 2 * qk + v, proj = 2 * qk + 2 * v + 2 * Hv;
  const bool fr = full_rc(c), ln = rc(c, RecomputeModule::kLayernorm);
  const R rule = R::kDeltaRule;
  mixer_enter(c, bl, kGdnOps, rule, proj, conv, fr, ln);  // the convolution over [q, k, v]
  // L2 norms of q and k, written repeated to the value heads.
  const double QK = T * Hv * dk * kAct;  // q (or k) per value head, BF16
  bl.memory("gdn.qk_l2norm", rule, T * 2 * qk * kAct + 2 * QK, fr);

  const DeltaRuleForward f = delta_rule_forward(c.cm, T, chunks_of(c, C), Hv, dk, dv, C);
  const double cg = f.cg, V = f.V, A4 = f.A4, S = f.S;
  const ScanKernel &kkt = f.kkt, &solve = f.solve, &wu = f.wu, &hs = f.hs, &out = f.out;
  add_scan(
      bl, rule, fr,
      {{"gdn.rule_kkt", kkt},
       {"gdn.rule_solve", solve},
       {"gdn.rule_wu", wu},
       {"gdn.rule_states", hs},
       {"gdn.rule_output", out}},
      "gdn.rule_backward",
      {wu, hs,                                                                // recomputed
       chunk_kernel(c.cm, 2 * QK + 2 * V, {{cg, C, dv, C}, {cg, C, C, dk}}),  // local dv
       chunk_kernel(c.cm, 2 * QK + 2 * V + 2 * S, {{cg, dk, dv, C}, {cg, dk, dv, C}, {cg, C, dv, dk}}),  // dh
       chunk_kernel(c.cm, 4 * QK + 2 * V + S,  // dq, dk, dw, ds
                    {{cg, C, dk, dv},
                     {cg, C, dk, dv},
                     {cg, C, dk, dv},
                     {cg, C, dk, C},
                     {cg, C, dk, C},
                     {cg, C, C, dv}}),
       chunk_kernel(c.cm, A4 / 2 + 2 * QK + 2 * V,  // WY backward
                    {{cg, C, C, dk}, {cg, C, C, dv}, {cg, C, dk, C}, {cg, C, dv, C}})});

  mixer_exit(c, bl, kGdnOps, rule, v, fr);
  if (fr) return c.T_sp * h * kAct;
  // The norm's input and (unless recomputed) its output, in_proj's output, the convolved [q, k, v], the
  // rule's output and out_proj's input (in its GEMM's precision).
  return c.T_sp * h * kAct + (ln ? 0.0 : fused_norm_output(c, h)) + T * proj * kAct + T * conv * kAct + V +
         V / kAct * gemm_input_bytes(c);
}

double dense_ffn_block(const PricingContext& c, Builder& bl) {
  bl.mlp = true;
  const auto& m = c.s.model;
  const double h = m.hidden, T = c.T, f = double(m.dense_ffn) / c.tp;
  // "mlp" reruns the whole dense MLP (the norm before it is "layernorm").
  const bool fr = rc(c, RecomputeModule::kMlp), ln = rc(c, RecomputeModule::kLayernorm);
  const bool swiglu = m.activation == Activation::kSwiglu;
  bl.memory("ffn.norm", R::kNorm, c.T_sp * h * kAct * 2, ln);
  if (c.tp > 1 && c.s.parallelism.sequence_parallel) {
    const double bytes = T * h * kAct;
    bl.comm("ffn.tp_all_gather", R::kTensorCollective, Pass::kForward, c.net.all_gather(bytes, c.tp_group),
            bytes);
    bl.comm("ffn.tp_all_gather", R::kTensorCollective, Pass::kBackwardInput,
            c.net.reduce_scatter(bytes, c.tp_group), bytes);
  }
  bl.gemm("ffn.up", R::kDenseFfn, T, (swiglu ? 2 : 1) * f, h, c.prec, fr);
  bl.memory("ffn.act", R::kDenseFfn, T * f * kAct * (swiglu ? 3 : 2), fr, act_kernel(swiglu));
  bl.gemm("ffn.down", R::kDenseFfn, T, h, f, c.prec, fr);
  if (c.tp > 1) {
    const double bytes = T * h * kAct;
    const bool sp = c.s.parallelism.sequence_parallel;
    bl.comm("ffn.tp_reduce", R::kTensorCollective, Pass::kForward,
            sp ? c.net.reduce_scatter(bytes, c.tp_group) : c.net.all_reduce(bytes, c.tp_group), bytes);
    bl.comm("ffn.tp_reduce", R::kTensorCollective, Pass::kBackwardInput,
            sp ? c.net.all_gather(bytes, c.tp_group) : c.net.all_reduce(bytes, c.tp_group), bytes);
  }
  bl.memory("ffn.residual", R::kResidual, c.T_sp * h * kAct * 3);
  if (full_rc(c)) return 0;
  // The norm's input, then (unless recomputed) its output, the MLP's input.
  const double input = c.T_sp * h * kAct + (ln ? 0.0 : fused_norm_output(c, h));
  // The checkpointed MLP keeps its input, the norm's output as it is (BF16, the sequence shard).
  if (fr) return 2 * c.T_sp * h * kAct;
  // FC1's output (the activation's input, BF16 unless stored in FP8) and FC2's input (in its GEMM's
  // precision).
  return input + T * f * (swiglu ? 2 * act_input_bytes(c) : kAct) + T * f * gemm_input_bytes(c);
}

double moe_block(const PricingContext& c, Builder& bl, LayerRouting& r, const EpGeometry& geo) {
  const auto& m = c.s.model;
  const auto& e = m.moe;
  const double h = m.hidden, Tm = c.T_moe, f = double(e.expert_ffn) / c.etp;
  // "moe" reruns the whole MoE layer (its all-to-alls included) as full recomputation does.
  const bool fr = rc(c, RecomputeModule::kMoe), ln = rc(c, RecomputeModule::kLayernorm);
  const bool swiglu = m.activation == Activation::kSwiglu;
  const double mats = swiglu ? 2 : 1;
  double saved = 0;
  bl.memory("moe.norm", R::kNorm, c.T_sp * h * kAct * 2, ln);
  // The norm's input and, unless recomputed, its output (the router's and the permute's input).
  const double input = c.T_sp * h * kAct + (ln ? 0.0 : Tm * h * kAct);
  bl.gemm("moe.router", R::kRouter, Tm, e.experts, h, Precision::kBf16, fr);
  // Softmax/sigmoid and top-k read the FP32 logits once (4·T·E bytes) and write each token's K expert
  // indices and weights (4 + 4 bytes each): 4·T·E + 8·T·K.
  bl.memory("moe.topk", R::kRouter, Tm * e.experts * 4.0 + Tm * e.top_k * 8.0, fr, MemoryKernel::kRouter);
  // DeepEP's low-latency kernels need neither pass of their own: the dispatch writes each token straight
  // into its experts' receive buffers and the combine sums the returning copies with the routing weights
  // (DeepEP README, low_latency_dispatch and low_latency_combine), inside the latencies its table gives.
  const bool in_kernel = geo.low_latency;
  if (!in_kernel)
    bl.memory("moe.permute", R::kPermute, Tm * e.top_k * h * kAct * 2, fr, MemoryKernel::kPermute);
  // The permuted copy needs no saving (its backward is an index scatter); the expert inputs below are.
  saved += input + Tm * e.experts * 4.0;
  // Each expert GEMM keeps its input in its own precision (Transformer Engine saves the FP8 copy); the
  // SwiGLU keeps its input in BF16 unless the workload stores it in FP8 (activation_fp8_input_store).
  // Its output, FC2's input, is kept unless "moe_act" recomputes it in the backward (Megatron-Core's
  // TEGroupedMLP: FP8 alone recomputes nothing; DeepSeek-V3's own FP8 practice is both, report §3.3.3).
  const double cache = gemm_input_bytes(c), act_in = act_input_bytes(c);
  const bool act_rc = fr || rc(c, RecomputeModule::kMoeAct);

  // Dispatch and combine all-to-all on the EP group; backward sends gradients the opposite way. Toward
  // the experts (forward dispatch, the combine's gradient) in FP8 where the recipe says so, back to the
  // tokens (forward combine, the dispatch's gradient) in BF16 (DeepSeek-V3 report §3.3.2).
  const double fwd_copy = dispatch_bytes_per_token(m.hidden, forward_dispatch_precision(c.s.workload)),
               bf16_copy = 2.0 * h;
  const double grad_copy = grad_dispatch_bytes_per_token(c.s.workload, m.hidden);
  const AllToAllBytes b_disp = all_to_all_bytes(r.stats, geo, Tm, fwd_copy);
  const AllToAllBytes b_comb = all_to_all_bytes(r.stats, geo, Tm, bf16_copy);
  const AllToAllBytes b_grad = all_to_all_bytes(r.stats, geo, Tm, grad_copy);
  const double t_disp = c.net.all_to_all(b_disp), t_comb = c.net.all_to_all(b_comb),
               t_grad = c.net.all_to_all(b_grad);
  const double n_disp = c.net.all_to_all_nic(b_disp), n_comb = c.net.all_to_all_nic(b_comb),
               n_grad = c.net.all_to_all_nic(b_grad);
  bl.comm("moe.dispatch", R::kDispatch, Pass::kForward, t_disp, Tm * fwd_copy, false, n_disp);
  bl.comm("moe.combine", R::kCombine, Pass::kForward, t_comb, Tm * bf16_copy, false, n_comb);
  bl.comm("moe.combine", R::kCombine, Pass::kBackwardInput, t_grad, Tm * grad_copy, false, n_grad);
  bl.comm("moe.dispatch", R::kDispatch, Pass::kBackwardInput, t_comb, Tm * bf16_copy, false, n_comb);
  if (fr) {
    bl.comm("moe.dispatch.recompute", R::kDispatch, Pass::kBackwardInput, t_disp, Tm * fwd_copy, true,
            n_disp);
    bl.comm("moe.combine.recompute", R::kCombine, Pass::kBackwardInput, t_comb, Tm * bf16_copy, true, n_comb);
  }
  const double rows_total = std::accumulate(r.rows.begin(), r.rows.end(), 0.0);
  bl.mlp = true;
  if (c.etp > 1) {
    // Expert tensor parallelism: the dispatched tokens are all-gathered over the etp ranks before the
    // expert GEMMs and the outputs reduce-scattered after them. The experts wait for the gather and
    // the combine for the scatter: blocking, like TP collectives (etp_comm, not the dispatch).
    const double bytes = rows_total * h * kAct;
    const double t = c.net.all_gather(bytes, c.ep_etp_group) + c.net.reduce_scatter(bytes, c.ep_etp_group);
    bl.comm("moe.etp_collectives", R::kExpertTensorCollective, Pass::kForward, t, 2 * bytes);
    bl.comm("moe.etp_collectives", R::kExpertTensorCollective, Pass::kBackwardInput, t, 2 * bytes);
  }
  // The busiest GPU's excess over a GPU with the mean load: what imbalance costs in expert GEMMs.
  r.summary.straggler_seconds = c.cm.grouped_gemm(r.rows, mats * f, h, c.prec) +
                                c.cm.grouped_gemm(r.rows, h, f, c.prec) -
                                c.cm.grouped_gemm(r.mean_rank_rows, mats * f, h, c.prec) -
                                c.cm.grouped_gemm(r.mean_rank_rows, h, f, c.prec);
  bl.grouped("moe.expert_up", r.rows, mats * f, h, c.prec, fr);
  bl.memory("moe.expert_act", R::kExperts, rows_total * f * kAct * (swiglu ? 3 : 2), act_rc,
            act_kernel(swiglu));
  bl.grouped("moe.expert_down", r.rows, h, f, c.prec, fr);
  // Offloaded inputs wait in host memory between the forward and the backward.
  const double fc1_in = c.offloads(OffloadModule::kExpertFc1) ? 0.0 : h * cache;
  const double act_kept = c.offloads(OffloadModule::kMoeAct) ? 0.0 : mats * f * act_in;
  saved += rows_total * (fc1_in + act_kept + (act_rc ? 0.0 : f * cache));

  // Megatron-Core's shared-expert overlap: the shared up-projection (and activation) runs while the
  // dispatch is in flight, the down-projection while the combine is; backward mirrors it. What hides
  // the dispatch is every shared-expert op but the down-projection (their FP8 quantisations included).
  double shared_up[2] = {0, 0}, shared_down[2] = {0, 0};
  if (e.shared_experts > 0) {
    const double sf = double(e.shared_experts) * e.shared_ffn;
    const bool src = fr || rc(c, RecomputeModule::kSharedExperts);
    const std::size_t before = bl.b.ops.size();
    bl.gemm("moe.shared_up", R::kSharedUp, Tm, mats * sf, h, c.prec, src);
    bl.memory("moe.shared_act", R::kSharedUp, Tm * sf * kAct * (swiglu ? 3 : 2), src, act_kernel(swiglu));
    bl.gemm("moe.shared_down", R::kSharedDown, Tm, h, sf, c.prec, src);
    for (std::size_t i = before; i < bl.b.ops.size(); ++i) {
      const Op& op = bl.b.ops[i];
      if (op.pass == Pass::kBackwardWeight) continue;
      const bool down = op.role == R::kSharedDown;
      (down ? shared_down : shared_up)[op.pass == Pass::kForward ? 0 : 1] += op.seconds;
    }
    if (!src) saved += Tm * (h + (mats + 1) * sf) * kAct;
  }
  if (!in_kernel)
    bl.memory("moe.unpermute_combine", R::kUnpermute, Tm * e.top_k * h * kAct + Tm * h * 4.0, fr,
              MemoryKernel::kCombine);
  bl.memory("moe.residual", R::kResidual, c.T_sp * h * kAct * 3);
  // Exposed expert communication: without the overlap every all-to-all; with it, what the shared
  // experts do not cover. The expert-TP collectives are exposed either way. (ep_comm - dispatch -
  // combine is zero up to rounding: kept so that the sums stay bit for bit what they were.)
  const bool hide = c.s.workload.shared_expert_overlap;
  for (int p = 0; p < 2; ++p) {
    PassCost& pc = bl.b.pass[p];
    pc.ep_exposed =
        (hide ? std::max(0.0, pc.dispatch - shared_up[p]) + std::max(0.0, pc.combine - shared_down[p]) +
                    (pc.ep_comm - pc.dispatch - pc.combine)
              : pc.ep_comm) +
        pc.etp_comm;
  }
  if (full_rc(c)) return c.T_sp * h * kAct;
  return fr ? input : saved;
}

}  // namespace

PricingContext pricing_context(const Scenario& s, const ComputeCostModel& cm, const NetworkModel& net,
                               double tokens_per_microbatch) {
  const auto& par = s.parallelism;
  // Rank order inside a stage: tp fastest, then cp, then dp (Megatron-Core); experts: etp, ep, edp.
  const Layout& L = s.layout;
  PricingContext c{s,  cm, net, s.workload.precision, 0, 0, 0, par.tp, par.cp, par.etp,
                   {}, {}, {},  par.recompute};
  for (RecomputeModule m : par.recompute_modules) c.rc_modules |= 1u << static_cast<unsigned>(m);
  for (OffloadModule m : par.offload_modules) c.offload_modules |= 1u << static_cast<unsigned>(m);
  c.T = tokens_per_microbatch / par.cp;
  c.T_sp = par.sequence_parallel ? c.T / par.tp : c.T;
  c.T_moe = c.T / par.tp;
  c.tp_group = L.tp_group();
  c.cp_group = L.cp_group();
  c.ep_etp_group = L.etp_group();
  return c;
}

double price_block(const PricingContext& c, BlockCost& b, int layer, bool mtp, LayerRouting* routing,
                   const EpGeometry& geo, double& transient) {
  const auto& m = c.s.model;
  Builder bl{c, b};
  b.ops.reserve(96);  // an FP8 MoE block with shared experts adds about 80 ops
  double act = 0;
  if (mtp) {
    // MTP module (DeepSeek-V3 §2.2): RMSNorm of the hidden state and of the shifted embedding, a
    // 2h→h projection, one block, then the shared output head and its loss.
    bl.memory("mtp.norms", R::kNorm, 2 * c.T_sp * m.hidden * kAct * 2);
    bl.gemm("mtp.proj", R::kMtpProjection, c.T, m.hidden, 2.0 * m.hidden, c.prec);
    act += c.T_sp * m.hidden * kAct * 3;
  }
  // A transformer block (and an MTP module) has attention and an MLP; a hybrid model's layer one of its
  // mixer or its MLP (ModelSpec::layer_pattern).
  const LayerMix mix = mtp ? LayerMix{} : layer_mix(m, layer);
  if (mix.mixer == Mixer::kAttention) act += attention_block(c, bl, layer);
  if (mix.mixer == Mixer::kMamba) act += mamba_block(c, bl);
  if (mix.mixer == Mixer::kGatedDeltaNet) act += gdn_block(c, bl);
  bl.mlp = false;
  if (routing != nullptr)
    act += moe_block(c, bl, *routing, geo);
  else if (mix.mlp == Mlp::kDense)
    act += dense_ffn_block(c, bl);
  if (mtp) {
    bl.mlp = true;
    const double V = double(m.vocab) / c.s.parallelism.tp;
    bl.gemm("mtp.head", R::kMtpHead, c.T, V, m.hidden, Precision::kBf16);
    bl.memory("mtp.loss", R::kMtpHead, c.T * V * 4.0 * 3);
    transient = std::max(transient, c.T * V * 4.0);
  }
  return act;
}

void price_embedding(const PricingContext& c, double seconds[3]) {
  const double h = c.s.model.hidden;
  const double bytes = c.T_sp * h * kAct;
  seconds[0] = c.cm.memory_bound(bytes);
  seconds[1] = c.cm.memory_bound(2 * bytes);
  seconds[2] = c.cm.memory_bound(2 * c.T * h * 4.0);  // scatter-add of FP32 gradients
}

HeadCost price_head(const PricingContext& c) {
  const double h = c.s.model.hidden;
  const double V = double(c.s.model.vocab) / c.s.parallelism.tp, T = c.T;
  HeadCost x;
  const double f = c.cm.gemm(T, V, h, Precision::kBf16);
  x.seconds[0] = f + c.cm.memory_bound(T * V * 4.0 * 3) + c.cm.memory_bound(c.T_sp * h * kAct * 2);
  x.seconds[1] = c.cm.gemm(T, h, V, Precision::kBf16) + c.cm.memory_bound(T * V * 4.0 * 2);
  x.seconds[2] = c.cm.gemm(h, V, T, Precision::kBf16);
  x.flops = 2 * T * V * h;
  x.logits_bytes = T * V * 4.0;
  return x;
}

}  // namespace moesim::models
