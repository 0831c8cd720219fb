#include "models/workload.hpp"

#include <algorithm>
#include <string_view>
#include <cmath>
#include <numeric>

#include "models/placement.hpp"
#include "models/routing_source.hpp"
#include "traces/load.hpp"

namespace moesim::models {

std::vector<int> split_blocks(int blocks, int chunks) {
  std::vector<int> n(static_cast<std::size_t>(chunks), blocks / chunks);
  int rem = blocks % chunks;
  // Middle chunks first, then the last, then the first.
  for (int c = 1; c < chunks - 1 && rem > 0; ++c, --rem) ++n[c];
  if (rem > 0 && chunks > 1) ++n[chunks - 1], --rem;
  if (rem > 0) ++n[0], --rem;
  return n;
}

double dispatch_bytes_per_token(int hidden, Precision p) {
  return p == Precision::kFp8 ? hidden + hidden / 128.0 * 4.0 + 16.0 : 2.0 * hidden;
}

double training_flops_per_token(const ModelSpec& m, int seq_len, bool causal) {
  const ParamCounts p = count_params(m);
  // Matmul parameters a token touches: active minus the input embedding (a lookup) and norms.
  const double matmul = p.active - p.embedding - m.layers * p.norms_per_layer - m.hidden;
  const auto& a = m.attention;
  const double qk = a.kind == AttentionKind::kMla ? a.head_dim + a.rope_head_dim : a.head_dim;
  double attn = 0;
  for (int l = 0; l < m.layers; ++l) {
    const bool windowed = a.sliding_window > 0 && a.sliding_window < seq_len &&
                          (a.sliding_window_every == 0 || l % a.sliding_window_every == 0);
    const double ctx = windowed ? a.sliding_window : seq_len * (causal ? 0.5 : 1.0);
    attn += 6.0 * ctx * a.heads * (qk + a.v_head_dim);
  }
  return 6.0 * matmul + attn;
}

namespace {

constexpr double kAct = 2.0;  // BF16 activation bytes

struct Ctx {
  const Scenario& s;
  const ComputeCostModel& cm;
  const NetworkModel& net;
  Precision prec;
  double T, T_sp, T_moe;  // tokens per GPU: attention GEMMs, elementwise, MoE routing
  int tp, cp, etp;
  Group tp_group, cp_group, ep_etp_group;
  Recompute rc;
};

struct Builder {
  const Ctx& c;
  BlockCost& b;
  bool mlp = false;  // ops added now belong to the MLP component

  void add(const char* name, Pass pass, OpKind kind, double seconds, double work, CommKind comm = CommKind::kNone) {
    b.ops.push_back(Op{name, pass, kind, comm, seconds, work});
    PassCost& pc = b.pass[static_cast<int>(pass)];
    switch (comm) {
      case CommKind::kNone:
        pc.compute += seconds;
        (mlp ? pc.mlp_compute : pc.attn_compute) += seconds;
        if (kind != OpKind::kMemory) pc.flops += work;
        break;
      case CommKind::kTensor: pc.tp_comm += seconds; break;
      case CommKind::kContext: pc.cp_comm += seconds; break;
      case CommKind::kExpertDispatch: pc.ep_comm += seconds; pc.dispatch += seconds; break;
      case CommKind::kExpertCombine: pc.ep_comm += seconds; pc.combine += seconds; break;
      default: pc.ep_comm += seconds; pc.dispatch += seconds; break;
    }
  }
  // FP8 GEMMs need their operands quantised with fine-grained scales: the activation before Fprop,
  // the output gradient before Dgrad, and transposed copies of both before Wgrad (DeepSeek-V3 report
  // §3.3.2). Each reads BF16 and writes FP8 plus scales: 3 bytes per element moved.
  void quantize(const char* name, double m, double n, double k, Precision p) {
    if (p != Precision::kFp8) return;
    add(name, Pass::kForward, OpKind::kMemory, c.cm.memory_bound(3 * m * k), 3 * m * k);
    add(name, Pass::kBackwardInput, OpKind::kMemory, c.cm.memory_bound(3 * m * n), 3 * m * n);
    add(name, Pass::kBackwardWeight, OpKind::kMemory, c.cm.memory_bound(3 * (m * k + m * n)), 3 * (m * k + m * n));
  }
  // A GEMM in forward, its data-gradient in B and its weight-gradient in W (each 2·m·n·k FLOPs).
  void gemm(const char* name, double m, double n, double k, Precision p, bool recomputed = false) {
    quantize("fp8.quantize", m, n, k, p);
    add(name, Pass::kForward, OpKind::kGemm, c.cm.gemm(m, n, k, p), 2 * m * n * k);
    add(name, Pass::kBackwardInput, OpKind::kGemm, c.cm.gemm(m, k, n, p), 2 * m * n * k);
    add(name, Pass::kBackwardWeight, OpKind::kGemm, c.cm.gemm(k, n, m, p), 2 * m * n * k);
    if (recomputed) add(name, Pass::kBackwardInput, OpKind::kGemm, c.cm.gemm(m, n, k, p), 2 * m * n * k);
  }
  void grouped(const char* name, const std::vector<double>& rows, double n, double k, Precision p, bool recomputed) {
    const double total = std::accumulate(rows.begin(), rows.end(), 0.0);
    quantize("fp8.quantize", total, n, k, p);
    const double f = c.cm.grouped_gemm(rows, n, k, p);
    add(name, Pass::kForward, OpKind::kGroupedGemm, f, 2 * total * n * k);
    // dgrad has the same shape per expert with n and k swapped; wgrad reduces over each expert's rows.
    add(name, Pass::kBackwardInput, OpKind::kGroupedGemm, c.cm.grouped_gemm(rows, k, n, p), 2 * total * n * k);
    add(name, Pass::kBackwardWeight, OpKind::kGroupedGemm, f, 2 * total * n * k);
    if (recomputed) add(name, Pass::kBackwardInput, OpKind::kGroupedGemm, f, 2 * total * n * k);
  }
  // A memory-bound kernel: backward moves about twice the bytes (gradient in, gradient out, saved input).
  void memory(const char* name, double bytes, bool recomputed = false) {
    add(name, Pass::kForward, OpKind::kMemory, c.cm.memory_bound(bytes), bytes);
    add(name, Pass::kBackwardInput, OpKind::kMemory, c.cm.memory_bound(2 * bytes), 2 * bytes);
    if (recomputed) add(name, Pass::kBackwardInput, OpKind::kMemory, c.cm.memory_bound(bytes), bytes);
  }
};

bool full_rc(const Ctx& c) { return c.rc == Recompute::kFull; }
bool sel_rc(const Ctx& c) { return c.rc != Recompute::kNone; }

// Attention sub-block: norm, (TP all-gather), projections, fused attention, output projection,
// (TP reduce-scatter). Saved activations are returned in bytes.
double attention_block(const Ctx& c, Builder& bl, int layer) {
  const auto& m = c.s.model;
  const auto& a = m.attention;
  const double h = m.hidden, T = c.T;
  const double H = double(a.heads) / c.tp;
  const bool fr = full_rc(c), sr = sel_rc(c);
  double saved = 0;
  bl.memory("attn.norm", c.T_sp * h * kAct * 2, sr);
  saved += c.T_sp * h * kAct;
  if (c.tp > 1) {
    const double bytes = T * h * kAct;
    const double t = c.s.parallelism.sequence_parallel ? c.net.all_gather(bytes, c.tp_group) : 0.0;
    bl.add("attn.tp_all_gather", Pass::kForward, OpKind::kComm, t, bytes, CommKind::kTensor);
    // Backward of an all-gather is a reduce-scatter (and of an all-reduce, an all-reduce).
    const double tb = c.s.parallelism.sequence_parallel ? c.net.reduce_scatter(bytes, c.tp_group)
                                                        : c.net.all_reduce(bytes, c.tp_group);
    bl.add("attn.tp_all_gather", Pass::kBackwardInput, OpKind::kComm, tb, bytes, CommKind::kTensor);
  }
  double qk_dim = a.head_dim, kv_bytes_per_token;
  if (a.kind == AttentionKind::kMla) {
    qk_dim = a.head_dim + a.rope_head_dim;
    if (a.q_lora_rank > 0) {
      bl.gemm("attn.q_down", T, a.q_lora_rank, h, c.prec, fr);
      bl.memory("attn.q_norm", T * a.q_lora_rank * kAct * 2, sr);
      bl.gemm("attn.q_up", T, H * qk_dim, a.q_lora_rank, c.prec, sr);
      saved += T * a.q_lora_rank * kAct * (sr ? 1 : 2);
    } else {
      bl.gemm("attn.q_proj", T, H * qk_dim, h, c.prec, fr);
    }
    bl.gemm("attn.kv_down", T, a.kv_lora_rank + a.rope_head_dim, h, c.prec, fr);
    bl.memory("attn.kv_norm", T * a.kv_lora_rank * kAct * 2, sr);
    bl.gemm("attn.kv_up", T, H * (a.head_dim + a.v_head_dim), a.kv_lora_rank, c.prec, sr);
    saved += T * (a.kv_lora_rank + a.rope_head_dim) * kAct * (sr ? 1 : 2);
    if (!sr) saved += T * H * (qk_dim + qk_dim + a.v_head_dim) * kAct;  // q, k, v after up-projection
    kv_bytes_per_token = H * (qk_dim + a.v_head_dim) * kAct;
  } else {
    const double kvh = std::max(1.0, double(a.kv_heads) / c.tp);
    const double qkv = (H + kvh) * a.head_dim + kvh * a.v_head_dim;
    bl.gemm("attn.qkv", T, qkv, h, c.prec, fr);
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
  bl.add("attn.core", Pass::kForward, OpKind::kAttention, af, sh.forward_flops());
  bl.add("attn.core", Pass::kBackwardInput, OpKind::kAttention, ab, 2.5 * sh.forward_flops());
  if (sr) bl.add("attn.core.recompute", Pass::kBackwardInput, OpKind::kAttention, af, sh.forward_flops());
  saved += T * H * a.v_head_dim * kAct + T * H * 4.0;  // output and softmax statistics (FP32)
  if (c.cp > 1) {
    // Ring attention passes K and V around the cp ranks: (cp-1) hops of this rank's KV, hidden under
    // the attention kernel when it is long enough (Liu et al. 2023, Ring Attention); backward also
    // returns dK, dV.
    const double bytes = (c.cp - 1) * T * kv_bytes_per_token;
    const double t = (c.cp - 1) * c.net.send_recv(T * kv_bytes_per_token, c.cp_group.nodes() > 1);
    bl.add("attn.cp_ring", Pass::kForward, OpKind::kComm, t, bytes, CommKind::kContext);
    bl.add("attn.cp_ring", Pass::kBackwardInput, OpKind::kComm, 2 * t, 2 * bytes, CommKind::kContext);
    bl.b.pass[0].cp_exposed += std::max(0.0, t - af);
    bl.b.pass[1].cp_exposed += std::max(0.0, 2 * t - ab);
  }
  bl.gemm("attn.out", T, h, H * a.v_head_dim, c.prec, fr);
  if (c.tp > 1) {
    const double bytes = T * h * kAct;
    const bool sp = c.s.parallelism.sequence_parallel;
    const double t = sp ? c.net.reduce_scatter(bytes, c.tp_group) : c.net.all_reduce(bytes, c.tp_group);
    bl.add(sp ? "attn.tp_reduce_scatter" : "attn.tp_all_reduce", Pass::kForward, OpKind::kComm, t, bytes,
           CommKind::kTensor);
    const double tb = sp ? c.net.all_gather(bytes, c.tp_group) : 0.0;
    if (sp) bl.add("attn.tp_reduce_scatter", Pass::kBackwardInput, OpKind::kComm, tb, bytes, CommKind::kTensor);
  }
  bl.memory("attn.residual", c.T_sp * h * kAct * 3);
  return fr ? c.T_sp * h * kAct : saved;
}

double dense_ffn_block(const Ctx& c, Builder& bl) {
  bl.mlp = true;
  const auto& m = c.s.model;
  const double h = m.hidden, T = c.T, f = double(m.dense_ffn) / c.tp;
  const bool fr = full_rc(c), swiglu = m.activation == Activation::kSwiglu;
  bl.memory("ffn.norm", c.T_sp * h * kAct * 2, sel_rc(c));
  if (c.tp > 1 && c.s.parallelism.sequence_parallel) {
    const double bytes = T * h * kAct;
    bl.add("ffn.tp_all_gather", Pass::kForward, OpKind::kComm, c.net.all_gather(bytes, c.tp_group), bytes,
           CommKind::kTensor);
    bl.add("ffn.tp_all_gather", Pass::kBackwardInput, OpKind::kComm, c.net.reduce_scatter(bytes, c.tp_group), bytes,
           CommKind::kTensor);
  }
  bl.gemm("ffn.up", T, (swiglu ? 2 : 1) * f, h, c.prec, fr);
  bl.memory("ffn.act", T * f * kAct * (swiglu ? 3 : 2), fr);
  bl.gemm("ffn.down", T, h, f, c.prec, fr);
  if (c.tp > 1) {
    const double bytes = T * h * kAct;
    const bool sp = c.s.parallelism.sequence_parallel;
    bl.add("ffn.tp_reduce", Pass::kForward, OpKind::kComm,
           sp ? c.net.reduce_scatter(bytes, c.tp_group) : c.net.all_reduce(bytes, c.tp_group), bytes, CommKind::kTensor);
    bl.add("ffn.tp_reduce", Pass::kBackwardInput, OpKind::kComm,
           sp ? c.net.all_gather(bytes, c.tp_group) : c.net.all_reduce(bytes, c.tp_group), bytes, CommKind::kTensor);
  }
  bl.memory("ffn.residual", c.T_sp * h * kAct * 3);
  if (fr) return 0;
  return c.T_sp * h * kAct + T * h * kAct + T * f * kAct * (swiglu ? 3 : 2);
}

double moe_block(const Ctx& c, Builder& bl, LayerRouting& r, const EpGeometry& geo) {
  const auto& m = c.s.model;
  const auto& e = m.moe;
  const double h = m.hidden, Tm = c.T_moe, f = double(e.expert_ffn) / c.etp;
  const bool fr = full_rc(c), swiglu = m.activation == Activation::kSwiglu;
  const double mats = swiglu ? 2 : 1;
  double saved = 0;
  bl.memory("moe.norm", c.T_sp * h * kAct * 2, sel_rc(c));
  bl.gemm("moe.router", Tm, e.experts, h, Precision::kBf16, fr);
  bl.memory("moe.topk", Tm * e.experts * 4.0 * 3, fr);
  bl.memory("moe.permute", Tm * e.top_k * h * kAct * 2, fr);
  // The permuted copy needs no saving (its backward is an index scatter); the expert inputs below are.
  saved += c.T_sp * h * kAct + Tm * e.experts * 4.0;
  // FP8 training caches the expert GEMM inputs and the SwiGLU input in FP8 and recomputes the SwiGLU
  // output in backward (DeepSeek-V3 report §3.3.3).
  const double cache = c.prec == Precision::kFp8 ? 1.0 : kAct;

  // Dispatch and combine all-to-all on the EP group. Backward sends gradients the opposite way in BF16.
  const double fwd_copy = dispatch_bytes_per_token(m.hidden, c.prec), bf16_copy = 2.0 * h;
  const double t_disp = c.net.all_to_all(all_to_all_bytes(r.stats, geo, Tm, fwd_copy));
  const double t_comb = c.net.all_to_all(all_to_all_bytes(r.stats, geo, Tm, bf16_copy));
  const double t_bf16 = t_comb;
  bl.add("moe.dispatch", Pass::kForward, OpKind::kComm, t_disp, Tm * fwd_copy, CommKind::kExpertDispatch);
  bl.add("moe.combine", Pass::kForward, OpKind::kComm, t_comb, Tm * bf16_copy, CommKind::kExpertCombine);
  bl.add("moe.combine", Pass::kBackwardInput, OpKind::kComm, t_bf16, Tm * bf16_copy, CommKind::kExpertCombine);
  bl.add("moe.dispatch", Pass::kBackwardInput, OpKind::kComm, t_bf16, Tm * bf16_copy, CommKind::kExpertDispatch);
  if (fr) {
    bl.add("moe.dispatch.recompute", Pass::kBackwardInput, OpKind::kComm, t_disp, Tm * fwd_copy,
           CommKind::kExpertDispatch);
    bl.add("moe.combine.recompute", Pass::kBackwardInput, OpKind::kComm, t_comb, Tm * bf16_copy,
           CommKind::kExpertCombine);
  }
  const double rows_total = std::accumulate(r.rows.begin(), r.rows.end(), 0.0);
  bl.mlp = true;
  if (c.etp > 1) {
    const double bytes = rows_total * h * kAct;
    const double t = c.net.all_gather(bytes, c.ep_etp_group) + c.net.reduce_scatter(bytes, c.ep_etp_group);
    bl.add("moe.etp_collectives", Pass::kForward, OpKind::kComm, t, 2 * bytes, CommKind::kExpertTensor);
    bl.add("moe.etp_collectives", Pass::kBackwardInput, OpKind::kComm, t, 2 * bytes, CommKind::kExpertTensor);
  }
  // The busiest GPU's excess over a GPU with the mean load: what imbalance costs in expert GEMMs.
  r.summary.straggler_seconds =
      c.cm.grouped_gemm(r.rows, mats * f, h, c.prec) + c.cm.grouped_gemm(r.rows, h, f, c.prec) -
      c.cm.grouped_gemm(r.mean_rank_rows, mats * f, h, c.prec) - c.cm.grouped_gemm(r.mean_rank_rows, h, f, c.prec);
  bl.grouped("moe.expert_up", r.rows, mats * f, h, c.prec, fr);
  bl.memory("moe.expert_act", rows_total * f * kAct * (swiglu ? 3 : 2), fr);
  bl.grouped("moe.expert_down", r.rows, h, f, c.prec, fr);
  saved += rows_total * (h * cache + mats * f * cache + (c.prec == Precision::kFp8 ? 0.0 : f * kAct));

  // Shared experts run on the compute stream while the dispatch is in flight.
  // Megatron-Core's shared-expert overlap: the shared up-projection (and activation) runs while the
  // dispatch is in flight, the down-projection while the combine is; backward mirrors it.
  double shared_up[2] = {0, 0}, shared_down[2] = {0, 0};
  if (e.shared_experts > 0) {
    const double sf = double(e.shared_experts) * e.shared_ffn;
    const std::size_t before = bl.b.ops.size();
    bl.gemm("moe.shared_up", Tm, mats * sf, h, c.prec, fr);
    bl.memory("moe.shared_act", Tm * sf * kAct * (swiglu ? 3 : 2), fr);
    bl.gemm("moe.shared_down", Tm, h, sf, c.prec, fr);
    for (std::size_t i = before; i < bl.b.ops.size(); ++i) {
      const Op& op = bl.b.ops[i];
      if (op.pass == Pass::kBackwardWeight) continue;
      const bool down = std::string_view(op.name) == "moe.shared_down";
      (down ? shared_down : shared_up)[op.pass == Pass::kForward ? 0 : 1] += op.seconds;
    }
    saved += Tm * (h + (mats + 1) * sf) * kAct;
  }
  bl.memory("moe.unpermute_combine", Tm * e.top_k * h * kAct + Tm * h * 4.0, fr);
  bl.memory("moe.residual", c.T_sp * h * kAct * 3);
  const bool hide = c.s.workload.shared_expert_overlap;
  for (int p = 0; p < 2; ++p) {
    PassCost& pc = bl.b.pass[p];
    pc.ep_exposed = hide ? std::max(0.0, pc.dispatch - shared_up[p]) + std::max(0.0, pc.combine - shared_down[p]) +
                               (pc.ep_comm - pc.dispatch - pc.combine)
                         : pc.ep_comm;
  }
  return fr ? c.T_sp * h * kAct : saved;
}

}  // namespace

const std::vector<Op>& block_ops(const Workload& w, int b) {
  const BlockCost& x = w.blocks[static_cast<std::size_t>(b)];
  return x.ops_from >= 0 ? w.blocks[static_cast<std::size_t>(x.ops_from)].ops : x.ops;
}

Workload build_workload(const Scenario& s, const ComputeCostModel& compute, const NetworkModel& net,
                        const RoutingInput* routing, bool detail) {
  Workload w;
  const auto& m = s.model;
  const auto& par = s.parallelism;
  w.params = count_params(m);
  w.cost_model = compute.name();
  w.tokens_per_microbatch = double(par.microbatch_size) * s.workload.seq_len;
  w.model_flops_per_token = training_flops_per_token(m, s.workload.seq_len, s.workload.causal);
  w.model_flops_per_token_noncausal = training_flops_per_token(m, s.workload.seq_len, false);

  // Rank order inside a stage: tp fastest, then cp, then dp (Megatron-Core); experts: etp, ep, edp.
  const int gpn = s.layout.domain_gpus;
  Ctx c{s, compute, net, s.workload.precision, 0, 0, 0, par.tp, par.cp, par.etp, {}, {}, {}, par.recompute};
  c.T = w.tokens_per_microbatch / par.cp;
  c.T_sp = par.sequence_parallel ? c.T / par.tp : c.T;
  c.T_moe = c.T / par.tp;
  c.tp_group = Group{par.tp, std::min(par.tp, gpn)};
  c.cp_group = Group{par.cp, std::max(1, std::min(par.cp, gpn / std::min(gpn, par.tp)))};
  c.ep_etp_group = Group{par.etp, std::min(par.etp, gpn)};

  // Routing geometry: the same context every routing consumer uses (models/routing_source.hpp).
  RoutingContext rctx = routing_context(s);
  rctx.want_pair_bytes = detail;
  w.dispatch_copy_bytes = rctx.bytes_per_copy;
  w.bf16_copy_bytes = 2.0 * m.hidden;
  const EpGeometry& geo = rctx.geo;
  SlotMap default_slots;
  if (m.moe.experts > 0)
    default_slots = SlotMap::from_assignment(
        place_experts(s.placement.policy, m.moe.experts, par.ep), par.ep);
  const bool replay = routing != nullptr && !routing->samples.empty();
  const bool same_every_layer = traces::is_uniform(s.routing.load) && !replay &&
                                (routing == nullptr || routing->slot_maps.size() <= 1);
  const traces::ShareGenerator gen(s.routing.load, m.moe.experts, m.moe.top_k);

  // Price every block; identical blocks are priced once and copied.
  const int total_blocks = m.layers + m.mtp_depth;
  w.blocks.resize(static_cast<std::size_t>(total_blocks));
  std::vector<double> saved(static_cast<std::size_t>(total_blocks), 0.0);
  int dense_template = -1, moe_template = -1, moe_count = 0;
  double saved_transient = 0;  // logits are consumed by the loss right away: held for one microbatch
  for (int l = 0; l < total_blocks; ++l) {
    const bool mtp = l >= m.layers;
    const bool moe = mtp ? m.moe.experts > 0 : is_moe_layer(m, l);
    const bool windowed_layer = m.attention.sliding_window > 0;  // attention differs by layer parity
    BlockCost& b = w.blocks[l];
    auto repeat = [&](int from) {
      const BlockCost& t = w.blocks[from];
      b.kind = t.kind;
      for (int p = 0; p < 3; ++p) b.pass[p] = t.pass[p];
      b.ops_from = from;
      b.moe_index = t.moe_index;
      b.layer = l;
    };
    if (!moe && !mtp && dense_template >= 0 && !windowed_layer) {
      repeat(dense_template);
      saved[l] = saved[dense_template];
      continue;
    }
    if (moe && !mtp && same_every_layer && moe_template >= 0 && !windowed_layer) {
      repeat(moe_template);
      b.moe_index = moe_count++;
      MoeLayerStats st = w.moe_layers[w.blocks[moe_template].moe_index];
      st.layer = l;
      w.moe_layers.push_back(st);
      if (detail) w.moe_detail.push_back(w.moe_detail[w.blocks[moe_template].moe_index]);
      saved[l] = saved[moe_template];
      continue;
    }
    b.layer = l;
    b.kind = mtp ? BlockKind::kMtp : moe ? BlockKind::kMoe : BlockKind::kDense;
    Builder bl{c, b};
    double act = 0;
    if (mtp) {
      // MTP module (DeepSeek-V3 §2.2): RMSNorm of the hidden state and of the shifted embedding, a
      // 2h→h projection, one block, then the shared output head and its loss.
      bl.memory("mtp.norms", 2 * c.T_sp * m.hidden * kAct * 2);
      bl.gemm("mtp.proj", c.T, m.hidden, 2.0 * m.hidden, c.prec);
      act += c.T_sp * m.hidden * kAct * 3;
    }
    act += attention_block(c, bl, l);
    bl.mlp = false;
    if (moe) {
      const SlotMap& slots = routing && !routing->slot_maps.empty()
                                 ? routing->slot_maps[moe_count % routing->slot_maps.size()]
                                 : default_slots;
      LayerRouting r = replay ? route_sample(routing->samples[moe_count % routing->samples.size()], slots, rctx)
                              : route_expected(gen.shares(moe_count), slots, rctx);
      r.summary.layer = l;
      act += moe_block(c, bl, r, geo);
      for (const Op& op : b.ops) {
        if (op.pass != Pass::kForward) continue;
        if (op.comm == CommKind::kExpertDispatch) r.summary.dispatch_seconds += op.seconds;
        if (op.comm == CommKind::kExpertCombine) r.summary.combine_seconds += op.seconds;
      }
      b.moe_index = moe_count++;
      // Only the first MoE layer's node × node traffic is kept (results report that one).
      if (w.node_traffic.empty()) {
        w.node_traffic = std::move(r.summary.node_traffic);
        w.traffic_nodes = r.summary.nodes;
      }
      r.summary.node_traffic.clear();
      w.moe_layers.push_back(r.summary);
      if (detail) {
        MoeLayerDetail d;
        const double top = r.rank_rows.empty() ? 0.0 : *std::max_element(r.rank_rows.begin(), r.rank_rows.end());
        for (double x : r.rank_rows) d.rank_load.push_back(top > 0 ? x / top : 1.0);
        d.wire_bytes = std::move(r.wire_bytes);
        w.moe_detail.push_back(std::move(d));
      }
      if (!mtp && moe_template < 0) moe_template = l;
    } else {
      act += dense_ffn_block(c, bl);
      if (!mtp && dense_template < 0) dense_template = l;
    }
    if (mtp) {
      bl.mlp = true;
      const double V = double(m.vocab) / par.tp;
      bl.gemm("mtp.head", c.T, V, m.hidden, Precision::kBf16);
      bl.memory("mtp.loss", c.T * V * 4.0 * 3);
      saved_transient = std::max(saved_transient, c.T * V * 4.0);
    }
    saved[l] = act;
  }

  // Pipeline ranks and their blocks.
  const int chunks = par.pp * par.vpp;
  const std::vector<int> per_chunk = split_blocks(total_blocks, chunks);
  w.ranks.resize(static_cast<std::size_t>(par.pp));
  int next = 0;
  for (int ch = 0; ch < chunks; ++ch) {
    RankWork& rw = w.ranks[ch % par.pp];
    for (int i = 0; i < per_chunk[ch]; ++i) rw.blocks.push_back(next++);
    if (ch == 0) rw.embedding = true;
    if (ch == chunks - 1) rw.head = true;
  }
  const double h = m.hidden;
  const int experts_per_rank = m.moe.experts > 0 ? m.moe.experts / par.ep : 0;
  for (int r = 0; r < par.pp; ++r) {
    RankWork& rw = w.ranks[r];
    for (int bi : rw.blocks) {
      const BlockCost& b = w.blocks[bi];
      for (int p = 0; p < 3; ++p) {
        PassCost& t = rw.pass[p];
        const PassCost& x = b.pass[p];
        t.compute += x.compute;
        t.tp_comm += x.tp_comm;
        t.ep_comm += x.ep_comm;
        t.ep_exposed += x.ep_exposed;
        t.cp_comm += x.cp_comm;
        t.cp_exposed += x.cp_exposed;
        t.flops += x.flops;
      }
      rw.activation_bytes += saved[bi];
      const bool moe = b.kind == BlockKind::kMoe || (b.kind == BlockKind::kMtp && m.moe.experts > 0);
      const ParamCounts& pc = w.params;
      double p_block = (pc.attention_per_layer + pc.norms_per_layer * par.tp) / par.tp;
      if (moe) {
        p_block += (pc.shared_per_layer + pc.router_per_layer);
        rw.expert_params += experts_per_rank * pc.expert / par.etp;
        p_block += experts_per_rank * pc.expert / par.etp;
      } else {
        p_block += pc.dense_ffn_per_layer / par.tp;
      }
      if (b.kind == BlockKind::kMtp) p_block += 2 * h * h;
      rw.params += p_block;
    }
    if (rw.embedding) {
      const double bytes = c.T_sp * h * kAct;
      rw.embedding_seconds[0] = compute.memory_bound(bytes);
      rw.embedding_seconds[1] = compute.memory_bound(2 * bytes);
      rw.embedding_seconds[2] = compute.memory_bound(2 * c.T * h * 4.0);  // scatter-add of FP32 gradients
      for (int p = 0; p < 3; ++p) rw.pass[p].compute += rw.embedding_seconds[p];
      rw.params += w.params.embedding / par.tp;
    }
    if (rw.head) {
      const double V = double(m.vocab) / par.tp, T = c.T;
      const double f = compute.gemm(T, V, h, Precision::kBf16);  // DeepSeek-V3 keeps the head in BF16 (§3.3.1)
      rw.head_seconds[0] = f + compute.memory_bound(T * V * 4.0 * 3) + compute.memory_bound(c.T_sp * h * kAct * 2);
      rw.head_seconds[1] = compute.gemm(T, h, V, Precision::kBf16) + compute.memory_bound(T * V * 4.0 * 2);
      rw.head_seconds[2] = compute.gemm(h, V, T, Precision::kBf16);
      for (int p = 0; p < 3; ++p) rw.pass[p].compute += rw.head_seconds[p];
      rw.transient_bytes = std::max(saved_transient, T * V * 4.0);
      rw.pass[0].flops += 2 * T * V * h;
      rw.pass[1].flops += 2 * T * V * h;
      rw.pass[2].flops += 2 * T * V * h;
      // The final RMSNorm lives with the head; with tied embeddings and pp > 1 the last rank keeps its
      // own copy of the embedding matrix for the output projection (Megatron-Core).
      rw.params += (m.tied_embeddings && par.pp > 1 ? w.params.embedding : w.params.head) / par.tp + h;
    }
    if (par.pp > 1) {  // every rank of a pipeline sends: activations forward, gradients backward
      const double bytes = c.T_sp * h * kAct;
      const bool cross = s.layout.stage_gpus >= gpn;
      rw.p2p_seconds = net.send_recv(bytes, cross);
      rw.p2p_bytes = bytes;
    }
  }
  return w;
}

}  // namespace moesim::models
