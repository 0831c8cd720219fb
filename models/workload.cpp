#include "models/workload.hpp"

#include <algorithm>
#include <array>
#include <iterator>
#include <optional>
#include <string>

#include "models/block_pricing.hpp"
#include "models/pipeline_partition.hpp"
#include "models/placement.hpp"
#include "models/routing_source.hpp"
#include "scenarios/error.hpp"
#include "traces/load.hpp"

namespace moesim::models {

double dispatch_bytes_per_token(int hidden, Precision p) {
  return p == Precision::kFp8 ? hidden + hidden / 128.0 * 4.0 + 16.0 : 2.0 * hidden;
}

Precision forward_dispatch_precision(const WorkloadSpec& w) {
  switch (w.dispatch_dtype) {
    case DispatchDtype::kFp8:
      return Precision::kFp8;
    case DispatchDtype::kBf16:
      return Precision::kBf16;
    case DispatchDtype::kAuto:
      break;
  }
  return w.kind == WorkloadKind::kServing ? w.precision : Precision::kBf16;
}

double grad_dispatch_bytes_per_token(const WorkloadSpec& w, int hidden) {
  return dispatch_bytes_per_token(hidden, w.fp8_dispatch_grad ? Precision::kFp8 : Precision::kBf16);
}

double training_flops_per_token(const ModelSpec& m, int seq_len, bool causal) {
  const ParamCounts p = count_params(m);
  // Matmul parameters a token touches: active minus the input embedding (a lookup), norms and the Mamba
  // parameters no GEMM multiplies.
  const double matmul = m.layer_pattern.empty()
                            ? p.active - p.embedding - m.layers * p.norms_per_layer - m.hidden
                            : p.active - p.embedding - p.norms - m.hidden -
                                  p.mamba_layers * p.mamba_nonmatmul_per_layer -
                                  p.gdn_layers * p.gdn_nonmatmul_per_layer;
  const auto& a = m.attention;
  const double qk = a.kind == AttentionKind::kMla ? a.head_dim + a.rope_head_dim : a.head_dim;
  double attn = p.mamba_layers * 6.0 * ssd_forward_flops_per_token(m.mamba) +
                p.gdn_layers * 6.0 * gdn_forward_flops_per_token(m.gdn);
  for (int l = 0; l < m.layers; ++l) {
    if (layer_mix(m, l).mixer != Mixer::kAttention) continue;
    const bool windowed = a.sliding_window > 0 && a.sliding_window < seq_len &&
                          (a.sliding_window_every == 0 || l % a.sliding_window_every == 0);
    const double ctx = windowed ? a.sliding_window : seq_len * (causal ? 0.5 : 1.0);
    attn += 6.0 * ctx * a.heads * (qk + a.v_head_dim);
  }
  return 6.0 * matmul + attn;
}

namespace {
// The slot map of a placement policy that depends only on (policy, experts, EP ranks), kept per thread
// for the last eight such triples: the planner prices thousands of layouts that share one (a slot map
// allocates one vector per EP rank). The reference stays valid until eight other triples were asked for
// on this thread.
const SlotMap& default_slot_map(const std::string& policy, int experts, int ep) {
  struct Entry {
    std::string policy;
    int experts = -1, ep = -1;
    SlotMap map;
  };
  thread_local std::array<Entry, 8> cache;
  thread_local std::size_t next = 0;
  for (const Entry& e : cache)
    if (e.experts == experts && e.ep == ep && e.policy == policy) return e.map;
  Entry& e = cache[next];
  next = (next + 1) % cache.size();
  e.map = SlotMap::from_assignment(place_experts(policy, experts, ep), ep);
  e.policy = policy;
  e.experts = experts;
  e.ep = ep;
  return e.map;
}
}  // namespace

const std::vector<Op>& block_ops(const Workload& w, int b) {
  const BlockCost& x = w.blocks[static_cast<std::size_t>(b)];
  return x.ops_from >= 0 ? w.blocks[static_cast<std::size_t>(x.ops_from)].ops : x.ops;
}

const MoeLayerDetail& moe_detail_of(const Workload& w, int moe_index) {
  MOESIM_ASSERT(moe_index >= 0 && static_cast<std::size_t>(moe_index) < w.moe_detail_index.size(),
                "moe_detail_of: not a MoE layer of the workload");
  return w.moe_detail[static_cast<std::size_t>(w.moe_detail_index[static_cast<std::size_t>(moe_index)])];
}

Workload build_workload(const Scenario& s, const ComputeCostModel& compute, const NetworkModel& net,
                        const RoutingInput* routing, bool detail) {
  if (s.workload.kind == WorkloadKind::kServing)
    throw ConfigError(located_message(
        s.source, "/workload/kind", "\"training\" for this command (a serving scenario runs with moesim run)",
        "\"serving\""));
  Workload w;
  const auto& m = s.model;
  const auto& par = s.parallelism;
  w.params = count_params(m);
  w.cost_model = compute.name();
  w.tokens_per_microbatch = double(par.microbatch_size) * s.workload.seq_len;
  w.model_flops_per_token = training_flops_per_token(m, s.workload.seq_len, s.workload.causal);
  w.model_flops_per_token_noncausal = training_flops_per_token(m, s.workload.seq_len, false);
  const int sms = s.cluster.gpu.sm_count - s.workload.comm_sms, taken = s.workload.overlap_comm_sms;
  if (taken > 0 && sms > taken) w.overlap_slowdown = double(sms) / double(sms - taken);
  const PricingContext c = pricing_context(s, compute, net, w.tokens_per_microbatch);
  // Full recomputation by layer count: with the block method only the first recompute_num_layers
  // blocks of each pipeline stage rerun; the others are priced without recomputation.
  PricingContext c_kept = c;
  c_kept.rc = Recompute::kNone;
  // FP8 training with decoder layers kept in BF16 at the start and the end: those blocks' GEMMs are BF16.
  PricingContext c_bf16 = c, c_kept_bf16 = c_kept;
  c_bf16.prec = c_kept_bf16.prec = Precision::kBf16;
  const PricingContext* contexts[4] = {&c, &c_kept, &c_bf16, &c_kept_bf16};

  // Routing geometry: the same context every routing consumer uses (models/routing_source.hpp).
  RoutingContext rctx = routing_context(s);
  rctx.want_pair_bytes = detail;
  w.dispatch_copy_bytes = rctx.bytes_per_copy;
  w.bf16_copy_bytes = 2.0 * m.hidden;
  w.grad_dispatch_copy_bytes = grad_dispatch_bytes_per_token(s.workload, m.hidden);
  const EpGeometry& geo = rctx.geo;
  static const SlotMap kNoSlots;
  const bool own_slots = routing && !routing->slot_maps.empty();
  const SlotMap& default_slots = m.moe.experts > 0 && !own_slots
                                     ? default_slot_map(s.placement.policy, m.moe.experts, par.ep)
                                     : kNoSlots;
  const bool replay = routing != nullptr && !routing->samples.empty();
  const bool same_every_layer =
      traces::is_uniform(s.routing.load) && !replay && (routing == nullptr || routing->slot_maps.size() <= 1);
  const traces::ShareGenerator gen(s.routing.load, m.moe.experts, m.moe.top_k);
  std::optional<LayerRouting> shared_routing;  // same_every_layer: the routing every MoE layer has
  int shared_detail = -1;                      // and the moe_detail entry made from it

  // Price every block; identical blocks are priced once and copied.
  const int total_blocks = m.layers + m.mtp_depth;
  w.blocks.resize(static_cast<std::size_t>(total_blocks));
  w.moe_layers.reserve(static_cast<std::size_t>(total_blocks));
  w.moe_detail_index.reserve(static_cast<std::size_t>(total_blocks));
  std::vector<double> saved(static_cast<std::size_t>(total_blocks), 0.0);
  const bool full = par.recompute == Recompute::kFull;
  const int rc_layers = par.recompute_num_layers;
  const bool block_method = full && par.recompute_method == RecomputeMethod::kBlock;
  const bool uniform_groups = full && par.recompute_method == RecomputeMethod::kUniform && rc_layers > 1;
  // Each block's position in its pipeline stage (virtual stage): only recomputation by layer count needs it.
  std::vector<int> stage_position;
  if (block_method || uniform_groups) {
    stage_position.assign(static_cast<std::size_t>(total_blocks), 0);
    int next = 0;
    for (int n : chunk_blocks(s, total_blocks))
      for (int i = 0; i < n && next < total_blocks; ++i) stage_position[static_cast<std::size_t>(next++)] = i;
  }
  // Templates per pricing context and mixer (a hybrid model's layers differ by their mixer).
  int dense_template[4][kMixers], moe_template[4][kMixers], moe_count = 0;  // [context][mixer]
  for (auto* t : {&dense_template, &moe_template})
    for (auto& row : *t) std::fill(std::begin(row), std::end(row), -1);
  const int bf16_start = s.workload.bf16_layers_at_start, bf16_end = s.workload.bf16_layers_at_end;
  double saved_transient = 0;  // logits are consumed by the loss right away: held for one microbatch
  for (int l = 0; l < total_blocks; ++l) {
    const bool mtp = l >= m.layers;
    const LayerMix mix = mtp ? LayerMix{} : layer_mix(m, l);
    const bool moe = mtp ? m.moe.experts > 0 : mix.mlp == Mlp::kMoe;
    const int mixer = static_cast<int>(mix.mixer);
    const bool windowed_layer = m.attention.sliding_window > 0;  // attention differs by layer parity
    // Rerun by full recomputation: every block (uniform), or the first rc_layers of the stage (block).
    const bool rerun = full && (!block_method || stage_position[static_cast<std::size_t>(l)] < rc_layers);
    // A decoder layer among the first or last kept in BF16 (MTP blocks keep the workload's precision).
    const bool bf16 = !mtp && (l < bf16_start || l >= m.layers - bf16_end);
    const int key = (full && !rerun ? 1 : 0) + (bf16 ? 2 : 0);
    const PricingContext& cl = *contexts[key];
    BlockCost& b = w.blocks[l];
    auto repeat = [&](int from) {
      const BlockCost& t = w.blocks[from];
      b.kind = t.kind;
      for (int p = 0; p < 3; ++p) b.pass[p] = t.pass[p];
      b.ops_from = from;
      b.moe_index = t.moe_index;
      b.layer = l;
    };
    const int dt = dense_template[key][mixer], mt = moe_template[key][mixer];
    if (!moe && !mtp && dt >= 0 && !windowed_layer) {
      repeat(dt);
      saved[l] = saved[dt];
      continue;
    }
    if (moe && !mtp && same_every_layer && mt >= 0 && !windowed_layer) {
      repeat(mt);
      b.moe_index = moe_count++;
      MoeLayerStats st = w.moe_layers[w.blocks[mt].moe_index];
      st.layer = l;
      w.moe_layers.push_back(st);
      w.moe_detail_index.push_back(w.moe_detail_index[static_cast<std::size_t>(w.blocks[mt].moe_index)]);
      saved[l] = saved[mt];
      continue;
    }
    b.layer = l;
    b.kind = mtp                                  ? BlockKind::kMtp
             : moe                                ? BlockKind::kMoe
             : mix.mlp == Mlp::kDense             ? BlockKind::kDense
             : mix.mixer == Mixer::kMamba         ? BlockKind::kMamba
             : mix.mixer == Mixer::kGatedDeltaNet ? BlockKind::kGatedDeltaNet
                                                  : BlockKind::kAttention;
    if (!moe) {
      saved[l] = price_block(cl, b, l, mtp, nullptr, geo, saved_transient);
      if (!mtp && dense_template[key][mixer] < 0) dense_template[key][mixer] = l;
      continue;
    }
    const SlotMap& slots = routing && !routing->slot_maps.empty()
                               ? routing->slot_maps[moe_count % routing->slot_maps.size()]
                               : default_slots;
    // Layers routed alike (uniform shares, one placement) share the first one's routing; the others
    // that are priced again (MTP blocks, windowed attention) copy it rather than route once more.
    const bool shared = same_every_layer && shared_routing;
    LayerRouting r = shared ? *shared_routing
                     : replay
                         ? route_sample(routing->samples[moe_count % routing->samples.size()], slots, rctx)
                         : route_expected(gen.shares(moe_count), slots, rctx);
    if (same_every_layer && !shared_routing) shared_routing = r;
    r.summary.layer = l;
    saved[l] = price_block(cl, b, l, mtp, &r, geo, saved_transient);
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
    if (!mtp && moe_template[key][mixer] < 0) moe_template[key][mixer] = l;
    if (shared) {  // its per-GPU loads and wire bytes are the shared routing's, already kept
      w.moe_detail_index.push_back(shared_detail);
      continue;
    }
    MoeLayerDetail d;
    const double top = r.rank_rows.empty() ? 0.0 : *std::max_element(r.rank_rows.begin(), r.rank_rows.end());
    d.rank_load.reserve(r.rank_rows.size());
    for (double x : r.rank_rows) {
      d.rank_load.push_back(top > 0 ? x / top : 1.0);
      d.uneven |= d.rank_load.back() != 1.0;
    }
    if (detail) d.wire_bytes = std::move(r.wire_bytes);
    w.moe_detail_index.push_back(static_cast<int>(w.moe_detail.size()));
    if (same_every_layer) shared_detail = w.moe_detail_index.back();
    w.moe_detail.push_back(std::move(d));
  }

  // Uniform groups of rc_layers blocks keep one input per group: the group's first block's.
  if (uniform_groups)
    for (int l = 0; l < total_blocks; ++l)
      if (stage_position[static_cast<std::size_t>(l)] % rc_layers != 0)
        saved[static_cast<std::size_t>(l)] = 0;
  partition_pipeline(c, saved, saved_transient, w);
  return w;
}

}  // namespace moesim::models
