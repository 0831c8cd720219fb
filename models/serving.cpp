#include "models/serving.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <optional>

#include "models/params.hpp"
#include "models/placement.hpp"
#include "models/routing_source.hpp"
#include "models/workload.hpp"
#include "scenarios/error.hpp"
#include "traces/load.hpp"

namespace moesim::models {
namespace {

bool low_latency_kernels(const ServingInstanceSpec& in) {
  return in.all_to_all == A2aKernel::kLowLatency ||
         (in.all_to_all == A2aKernel::kAuto && in.role == ServingRole::kDecode);
}

double weight_elem_bytes(const Scenario& s) {
  return s.workload.precision == Precision::kFp8 ? 1.0 : 2.0;
}

}  // namespace

Scenario instance_scenario(const Scenario& s, int i) {
  const ServingInstanceSpec& in = s.serving.instances.at(static_cast<std::size_t>(i));
  Scenario x = s;
  x.resolved = nlohmann::json();
  x.cluster.nodes = in.nodes;
  x.cluster.gpu = in.gpu_spec;
  if (!in.gpu.empty()) {
    x.gpu_calibration = in.gpu_calibration;
    x.gpu_calibration_text = in.gpu_calibration_text;
  }
  const int gpus = in.nodes * s.cluster.gpus_per_node;
  const int dp = gpus / in.tp;
  ParallelismSpec p;
  p.tp = in.tp;
  p.sequence_parallel = false;  // inference TP all-reduces after attention; no sequence parallelism
  p.ep = s.model.moe.experts > 0 ? gpus : 1;
  p.pp = 1;
  p.recompute = Recompute::kNone;
  p.recompute_modules.clear();
  p.microbatch_size = 1;
  p.global_batch = dp;
  x.parallelism = p;
  x.placement.redundant_experts = in.redundant_experts;
  // DeepEP's normal kernels forward inside a node over NVLink (one NIC copy per destination node).
  if (!low_latency_kernels(in)) x.workload.dispatch = DispatchMode::kHierarchical;
  Layout& L = x.layout;
  L = Layout{};
  L.gpus = gpus;
  L.gpus_per_node = s.cluster.gpus_per_node;
  L.domain_gpus = s.cluster.scale_up.kind == ScaleUpKind::kNone ? 1 : s.cluster.scale_up.domain_gpus;
  L.tp = in.tp;
  L.dp = dp;
  L.ep = p.ep;
  L.edp = gpus / p.ep;
  L.stage_gpus = gpus;
  L.ep_span = p.ep;
  L.ep_groups = 1;
  L.microbatches = 1;
  return x;
}

double blom_quantile(int n) {
  if (n <= 1) return 0.0;
  // Φ⁻¹(q) by Newton's method on the normal CDF 0.5 erfc(−z/√2).
  const double q = (double(n) - 0.375) / (double(n) + 0.25);
  double z = 0;
  for (int i = 0; i < 60; ++i) {
    const double cdf = 0.5 * std::erfc(-z / std::sqrt(2.0));
    const double pdf = std::exp(-0.5 * z * z) / std::sqrt(2.0 * 3.141592653589793);
    const double step = (cdf - q) / pdf;
    z -= step;
    if (std::abs(step) < 1e-13) break;
  }
  return z;
}

double expected_busiest_load(double copies, int gpus) {
  if (gpus <= 1 || copies <= 0) return 1.0;
  const double g = gpus, mean = copies / g;
  return std::max(1.0, 1.0 + blom_quantile(gpus) * std::sqrt(mean * (1.0 - 1.0 / g)) / mean);
}

std::vector<double> rank_shares(const std::vector<double>& shares, const SlotMap& slots) {
  std::vector<double> out(static_cast<std::size_t>(slots.ranks), 0.0);
  for (int r = 0; r < slots.ranks; ++r)
    for (const auto& [e, frac] : slots.slots[static_cast<std::size_t>(r)])
      out[static_cast<std::size_t>(r)] += shares[static_cast<std::size_t>(e)] * frac;
  return out;
}

double busiest_share(const std::vector<double>& shares, const SlotMap& slots) {
  double top = 0;
  for (double p : rank_shares(shares, slots)) top = std::max(top, p);
  return top;
}

std::vector<int> sampled_layers(int layers, int n) {
  n = std::max(1, std::min(n, layers));
  std::vector<int> out;
  for (int j = 0; j < n && layers > 0; ++j) out.push_back(static_cast<int>(int64_t(j) * layers / n));
  return out;
}

double expected_trace_load(const IterationPricer& P, double copies, int sample_layers) {
  const auto& trace = P.trace_shares();
  if (trace.empty() || copies <= 0) return 1.0;
  const auto& maps = P.slot_maps();
  const auto& mean = P.shares();
  const int gpus = P.gpus();
  const double z = blom_quantile(gpus);
  double priced = 0, drawn = 0;
  const std::vector<int> layers = sampled_layers(static_cast<int>(mean.size()), sample_layers);
  for (int l : layers) {
    const SlotMap& map = maps[static_cast<std::size_t>(l) % maps.size()];
    priced += copies * busiest_share(mean[static_cast<std::size_t>(l)], map) * double(trace.size());
    for (const auto& step : trace) {
      double t = 0;
      for (double p : rank_shares(step[static_cast<std::size_t>(l)], map)) {
        const double mu = copies * p;
        t = std::max(t, mu + z * std::sqrt(mu * (1.0 - p)));
      }
      drawn += t;
    }
  }
  return priced > 0 ? std::max(1.0, drawn / priced) : 1.0;
}

double lru_hit_rate(const std::vector<double>& weights, double capacity) {
  double total = 0;
  for (double w : weights) total += w;
  if (total <= 0) return 0;
  if (capacity >= double(weights.size())) return 1;
  if (capacity <= 0) return 0;
  // Σ (1 − e^(−p_i T)) rises from 0 to the item count: bisect on T (probabilities p_i = w_i / total).
  const auto filled = [&](double T) {
    double f = 0;
    for (double w : weights) f += 1 - std::exp(-w / total * T);
    return f;
  };
  double lo = 0, hi = 1;
  while (filled(hi) < capacity) hi *= 2;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (filled(mid) < capacity ? lo : hi) = mid;
  }
  const double T = 0.5 * (lo + hi);
  double hit = 0;
  for (double w : weights) hit += w / total * (1 - std::exp(-w / total * T));
  return hit;
}

double prefix_hit_rate(const Scenario& s, const std::vector<traces::Request>& requests, int ranks) {
  std::map<int64_t, double> count;
  double cached = 0, with = 0;
  for (const traces::Request& r : requests)
    if (r.prefix >= 0 && r.cached_tokens > 0)
      count[r.prefix] += 1, cached += double(r.cached_tokens), with += 1;
  if (with == 0 || ranks <= 0) return std::numeric_limits<double>::quiet_NaN();
  const double capacity = std::floor(double(s.serving.prefix_cache_tokens) / (cached / with));
  std::vector<double> w;
  for (const auto& [id, n] : count) w.push_back(n);
  if (!s.serving.prefix_routing) return lru_hit_rate(w, capacity);
  // Each prefix sticks to one rank: most popular first, to the rank with the least popularity so far.
  std::sort(w.begin(), w.end(), std::greater<double>());
  std::vector<std::vector<double>> per(static_cast<std::size_t>(ranks));
  std::vector<double> load(static_cast<std::size_t>(ranks), 0.0);
  for (double x : w) {
    const std::size_t r = static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    per[r].push_back(x);
    load[r] += x;
  }
  double hit = 0;
  for (std::size_t r = 0; r < per.size(); ++r)
    if (load[r] > 0) hit += load[r] / with * lru_hit_rate(per[r], capacity);
  return hit;
}

double decode_context(const std::vector<traces::Request>& requests) {
  double num = 0, den = 0;
  for (const traces::Request& q : requests) {
    const double I = double(q.input_tokens), O = double(q.output_tokens);
    num += I * O + O * (O - 1) / 2, den += O;
  }
  return den > 0 ? num / den : 0.0;
}

int64_t largest_batch(int64_t most, const std::function<bool(int64_t)>& meets) {
  int64_t lo = 1, hi = most;
  if (!meets(lo)) return 1;
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    (meets(mid) ? lo : hi) = mid;
  }
  return meets(hi) ? hi : lo;
}

double tokens_per_iteration(int mtp, double p) {
  double t = 1, q = 1;
  for (int i = 0; i < mtp; ++i) t += (q *= p);
  return t;
}

// ------------------------------------------------------------------------------------------ pricer

struct IterationPricer::Impl {
  RoutingContext rctx;
  std::vector<SlotMap> slot_maps;           ///< per MoE layer (one entry when every layer is placed alike)
  std::vector<std::vector<double>> shares;  ///< per MoE layer, expected shares
  std::vector<std::vector<std::vector<double>>> trace;  ///< routing trace: per step, per MoE layer shares
  bool same_every_layer = false;
  bool two_microbatch = false;
  double overlap_slowdown = 1;  ///< compute beside the normal all-to-all kernels runs on fewer SMs
  int mtp_blocks = 0;
};

IterationPricer::IterationPricer(const Scenario& s, int instance)
    : inst_(instance_scenario(s, instance)), impl_(std::make_unique<Impl>()) {
  const ServingInstanceSpec& in = s.serving.instances.at(static_cast<std::size_t>(instance));
  cm_ = make_compute_cost_model(inst_);
  net_ = std::make_unique<NetworkModel>(inst_.cluster);
  const auto& m = inst_.model;
  Impl& d = *impl_;
  d.mtp_blocks = s.serving.mtp_tokens > 0 ? std::min(m.mtp_depth, s.serving.mtp_tokens) : 0;
  d.two_microbatch = in.two_microbatch;
  // DeepEP's normal kernels take workload.overlap_comm_sms SMs from the computation they overlap; its
  // low-latency kernels receive through hooks and take none (DeepEP README).
  const int sms = inst_.cluster.gpu.sm_count - s.workload.comm_sms, taken = s.workload.overlap_comm_sms;
  if (!low_latency_kernels(in) && taken > 0 && sms > taken)
    d.overlap_slowdown = double(sms) / double(sms - taken);
  if (m.moe.experts > 0) {
    d.rctx = routing_context(inst_);
    d.rctx.geo.low_latency = low_latency_kernels(in);
    d.rctx.capacity_factor = 0;  // inference drops no token
    ExpertLoads loads;
    if (inst_.routing.mode == RoutingMode::kTrace) {
      // Each step's counts as shares; the placement and the prices take their mean over the steps (what
      // EPLB computes from the history it has seen).
      check_trace(inst_);
      for_each_trace_step(inst_, 0, [&](int, std::vector<traces::RoutingSample>& layers) {
        std::vector<std::vector<double>> step;
        step.reserve(layers.size());
        for (const traces::RoutingSample& x : layers) {
          const std::vector<int64_t> c = x.expert_counts();
          double total = 0;
          for (int64_t v : c) total += double(v);
          std::vector<double> sh(c.size(), 0.0);
          for (std::size_t e = 0; e < c.size(); ++e) sh[e] = total > 0 ? double(c[e]) / total : 0.0;
          step.push_back(std::move(sh));
        }
        d.trace.push_back(std::move(step));
      });
      loads.assign(d.trace.front().size(), std::vector<double>(static_cast<std::size_t>(m.moe.experts), 0.0));
      for (const auto& step : d.trace)
        for (std::size_t l = 0; l < loads.size(); ++l)
          for (std::size_t e = 0; e < loads[l].size(); ++e)
            loads[l][e] += step[l][e] / double(d.trace.size());
    } else {
      loads = layer_loads(inst_, nullptr);
    }
    d.shares = loads;
    PlacementResult placed = place_for(inst_, loads);
    if (!placed.slot_maps.empty())
      d.slot_maps = std::move(placed.slot_maps);
    else
      d.slot_maps.push_back(SlotMap::from_assignment(
          place_experts(inst_.placement.policy, m.moe.experts, inst_.parallelism.ep), inst_.parallelism.ep));
    d.same_every_layer = traces::is_uniform(inst_.routing.load) && d.slot_maps.size() == 1 && d.trace.empty();
  }
  if (m.attention.sliding_window > 0) d.same_every_layer = false;

  // Memory: weights per GPU, the activation workspace of one iteration, the KV cache per token.
  const ParamCounts pc = count_params(m);
  const double tp = inst_.parallelism.tp, w = weight_elem_bytes(inst_);
  const double stored = expert_weight_bytes(s.serving.expert_dtype);
  expert_bytes_ = (stored > 0 ? stored : w) * pc.expert;
  const int gpus = inst_.layout.gpus;
  const double slots = m.moe.experts > 0 ? double(m.moe.experts + in.redundant_experts) / gpus : 0.0;
  // A hybrid model's layers are each one mixer (attention, Mamba-2, Gated DeltaNet) or one MLP; its MTP
  // modules, like every layer of a model of transformer blocks, hold attention and an MLP.
  const bool hybrid = !m.layer_pattern.empty();
  const double mtp_modules = d.mtp_blocks > 0 ? m.mtp_depth : 0;
  const double blocks = m.layers + mtp_modules;
  const double attention_blocks = hybrid ? pc.attention_layers + mtp_modules : blocks;
  const double norms = hybrid ? pc.norms + pc.norms_per_layer * mtp_modules : pc.norms_per_layer * blocks;
  weight_bytes_ =
      w * (pc.attention_per_layer / tp * attention_blocks + pc.mamba_per_layer / tp * pc.mamba_layers +
           pc.gdn_per_layer / tp * pc.gdn_layers + pc.dense_ffn_per_layer / tp * pc.dense_layers +
           (pc.shared_per_layer / tp + slots * pc.expert * (stored > 0 ? stored / w : 1.0)) * pc.moe_layers) +
      2.0 * (pc.router_per_layer * pc.moe_layers + norms + (pc.embedding + pc.head) / tp +
             (d.mtp_blocks > 0 ? pc.mtp / tp : 0.0));
  const auto& a = m.attention;
  const double kv_elem = s.serving.kv_dtype == KvDtype::kFp8 ? 1.0 : 2.0;
  const double per_layer = a.kind == AttentionKind::kMla ? double(a.kv_lora_rank + a.rope_head_dim) * kv_elem
                                                         : std::max(1.0, double(a.kv_heads) / tp) *
                                                               (a.head_dim + a.v_head_dim) * kv_elem;
  kv_bytes_per_token_ = per_layer * attention_blocks;
  // Recurrent layers keep a state per sequence instead; paged in the KV cache's blocks (as vLLM's hybrid
  // cache manager pages them), it takes whole blocks of the cache beside the sequence's tokens.
  const double elem = s.serving.state_dtype == StateDtype::kFp32 ? 4.0 : 2.0;
  state_bytes_per_sequence_ = pc.mamba_layers * mamba_state_bytes(m.mamba, int(tp), elem) +
                              pc.gdn_layers * gdn_state_bytes(m.gdn, int(tp), elem);
  if (state_bytes_per_sequence_ > 0 && kv_bytes_per_token_ > 0)
    state_tokens_per_sequence_ =
        std::ceil(state_bytes_per_sequence_ / kv_bytes_per_token_ / s.serving.kv_block_tokens) *
        s.serving.kv_block_tokens;
  // Workspace: the live activations of one layer at max_batch_tokens tokens (residual, normed input,
  // attention output, the top-k permuted copies, the widest FFN intermediate), BF16, and the FP32 logits
  // of max_running sequences.
  const double T = in.max_batch_tokens, h = m.hidden;
  const double ffn = std::max(double(m.dense_ffn) / tp, double(m.moe.expert_ffn) * std::max(1, m.moe.top_k));
  workspace_bytes_ =
      T * (4.0 * h + m.moe.top_k * h + 2.0 * ffn) * 2.0 + double(in.max_running) * m.vocab / tp * 4.0;
  const double budget =
      inst_.cluster.gpu.memory_bytes * s.serving.kv_memory_fraction - weight_bytes_ - workspace_bytes_;
  const double block = s.serving.kv_block_tokens;
  kv_capacity_tokens_ =
      budget <= 0 ? budget / kv_bytes_per_token_ : std::floor(budget / kv_bytes_per_token_ / block) * block;
}

IterationPricer::~IterationPricer() = default;

// Forward-only totals of one block: what an iteration adds for it.
struct IterationPricer::BlockTotals {
  double compute = 0, tp = 0, ep = 0, ep_exposed = 0, attention = 0, experts = 0, imbalance = 1;
  /// The block's forward split as the two-microbatch schedules run it: the computation before the
  /// dispatch up to the attention kernel (attn_pre) and from it (attn_core: the attention kernel, the
  /// output projection, the router and the permute), the shared experts, the rest of the MLP (routed
  /// experts, un-permute, expert-TP collectives); the dispatch and the combine.
  double attn_pre = 0, attn_core = 0, shared = 0, mlp = 0, dispatch = 0, combine = 0;
  bool moe = false;
  int layer = 0;
  BlockKind kind = BlockKind::kDense;
  std::vector<Op> ops;  // forward ops, in block order
};

namespace {

// One of the two microbatches an iteration is split into (two_microbatch).
ServingBatch half_of(const ServingBatch& batch) {
  ServingBatch half = batch;
  half.decode_seqs /= 2;
  half.prefill_tokens /= 2;
  half.prefill_seqs /= 2;
  half.prefill_context /= 2;
  return half;
}

IterationPricer::BlockTotals totals(const BlockCost& b) {
  IterationPricer::BlockTotals t;
  const PassCost& f = b.pass[0];
  t.compute = f.compute;
  t.tp = f.tp_comm;
  t.ep = f.ep_comm + f.etp_comm;
  t.ep_exposed = f.ep_exposed;
  t.experts = f.experts;
  t.layer = b.layer;
  t.kind = b.kind;
  t.dispatch = f.dispatch;
  t.combine = f.combine;
  t.ops = b.ops;
  // The computation before the attention kernel opens the block's attention component
  // (PassCost::attn_compute); a block without one (a Mamba-2 or Gated DeltaNet mixer) has all of that
  // component before its dispatch. An FP8 cast counts with the GEMM it feeds, the op after it.
  bool core = false;
  double pre = 0;
  for (std::size_t i = 0; i < t.ops.size(); ++i) {
    const Op& op = t.ops[i];
    if (op.kind == OpKind::kAttention) {
      core = true;
      if (op.role == OpRole::kAttention) t.attention += op.seconds;
    }
    if (op.comm != CommKind::kNone) continue;
    if (!core) pre += op.seconds;
    std::size_t fed = i;
    while (fed + 1 < t.ops.size() && t.ops[fed].role == OpRole::kQuantize) ++fed;
    const OpRole r = t.ops[fed].role;
    if (r == OpRole::kSharedUp || r == OpRole::kSharedDown) t.shared += op.seconds;
  }
  t.attn_pre = core ? pre : f.attn_compute;
  t.attn_core = f.attn_compute - t.attn_pre;
  t.mlp = std::max(0.0, f.mlp_compute - t.shared) + f.etp_comm;
  return t;
}

}  // namespace

// The blocks of one iteration over `batch`, forward only; identical blocks priced once.
std::vector<IterationPricer::BlockTotals> IterationPricer::price_blocks(const ServingBatch& batch) const {
  const auto& m = inst_.model;
  const Impl& d = *impl_;
  PricingContext c = pricing_context(inst_, *cm_, *net_, batch.tokens());
  c.serving = &batch;
  c.expert_weight_elem = expert_weight_bytes(inst_.serving.expert_dtype);
  RoutingContext rctx = d.rctx;
  rctx.tokens_per_source = c.T_moe;
  double transient = 0;
  const int total = m.layers + d.mtp_blocks;
  int moe_index = 0;
  // The first block of each kind (mixer and MLP) stands for the others when every layer prices alike.
  constexpr int kMlps = 3;
  std::array<std::optional<BlockTotals>, std::size_t(kMixers * kMlps)> first;
  std::vector<BlockTotals> out;
  out.reserve(static_cast<std::size_t>(total));
  for (int l = 0; l < total; ++l) {
    const bool mtp = l >= m.layers;
    const LayerMix mix = mtp ? LayerMix{} : layer_mix(m, l);
    const bool moe = m.moe.experts > 0 && (mtp || mix.mlp == Mlp::kMoe);
    std::optional<BlockTotals>& kind =
        first[std::size_t(int(mix.mixer) * kMlps + int(moe ? Mlp::kMoe : mix.mlp))];
    if (!mtp && d.same_every_layer && kind) {
      out.push_back(*kind);
      moe_index += moe ? 1 : 0;
      continue;
    }
    BlockCost b;
    b.layer = l;
    if (moe) {
      const std::size_t li = static_cast<std::size_t>(moe_index++);
      LayerRouting r =
          route_expected(d.shares[li % d.shares.size()], d.slot_maps[li % d.slot_maps.size()], rctx);
      price_block(c, b, l, mtp, &r, rctx.geo, transient);
      BlockTotals t = totals(b);
      t.moe = true;
      t.imbalance = r.summary.max_over_mean_gpu;
      if (!mtp && !kind) kind = t;
      out.push_back(t);
    } else {
      price_block(c, b, l, mtp, nullptr, rctx.geo, transient);
      const BlockTotals t = totals(b);
      if (!mtp && !kind) kind = t;
      out.push_back(t);
    }
  }
  return out;
}

const std::vector<std::vector<std::vector<double>>>& IterationPricer::trace_shares() const {
  return impl_->trace;
}
const std::vector<std::vector<double>>& IterationPricer::shares() const {
  return impl_->shares;
}
const std::vector<SlotMap>& IterationPricer::slot_maps() const {
  return impl_->slot_maps;
}

// Embedding lookup; the output head and sampling over the tokens that need logits (every decode query, the
// last prompt token of each prefilled sequence).
IterationPricer::Ends IterationPricer::ends(const ServingBatch& batch) const {
  const auto& m = inst_.model;
  Ends e;
  const double h = m.hidden, V = double(m.vocab) / inst_.parallelism.tp;
  e.tokens_with_logits = batch.decode_seqs * batch.decode_queries + batch.prefill_seqs;
  e.embedding_bytes = batch.tokens() * h * kActivationBytes;
  e.embedding = cm_->memory_bound(e.embedding_bytes);
  e.head_flops = 2 * e.tokens_with_logits * V * h;
  e.sampling_bytes = e.tokens_with_logits * V * 4.0 * 2;
  if (e.tokens_with_logits > 0) {
    e.head_gemm = cm_->gemm(e.tokens_with_logits, V, h, Precision::kBf16);
    e.sampling = cm_->memory_bound(e.sampling_bytes);
  }
  return e;
}

std::vector<OpRow> IterationPricer::op_rows(const ServingBatch& batch) const {
  std::vector<OpRow> rows;
  if (batch.tokens() <= 0) return rows;
  const ServingBatch b = impl_->two_microbatch ? half_of(batch) : batch;
  const double count = impl_->two_microbatch ? 2 : 1;
  // The work outside the blocks, once per iteration.
  const auto add = [&](const std::string& block, const std::string& name, OpKind kind, double flops,
                       double bytes, double seconds, const std::string& by) {
    OpRow r;
    r.layer = -1;
    r.block = block;
    r.name = name;
    r.kind = kind;
    r.count = 1;
    r.flops = flops;
    r.bytes = bytes;
    r.seconds = seconds;
    r.priced_by = by;
    rows.push_back(std::move(r));
  };
  for (const BlockTotals& t : price_blocks(b))
    for (const Op& op : t.ops) rows.push_back(op_row(op, t.layer, block_kind_name(t.kind), count, *cm_));
  const Ends e = ends(batch);
  add("embedding", "embedding", OpKind::kMemory, 0, e.embedding_bytes, e.embedding,
      cm_->priced_by_memory(MemoryKernel::kStream));
  if (e.tokens_with_logits > 0) {
    add("head", "head", OpKind::kGemm, e.head_flops, 0, e.head_gemm,
        cm_->priced_by(OpKind::kGemm, Precision::kBf16));
    add("head", "sampling", OpKind::kMemory, 0, e.sampling_bytes, e.sampling,
        cm_->priced_by_memory(MemoryKernel::kStream));
  }
  return rows;
}

IterationCost IterationPricer::price(const ServingBatch& batch) const {
  IterationCost out;
  const double T = batch.tokens();
  if (T <= 0) return out;
  double imbalance = 0;
  int moe_layers = 0;
  const auto add_ops = [&](const BlockTotals& t, double times) {
    for (const Op& op : t.ops) {
      const std::string name = op.name;
      auto it = std::find_if(out.ops.begin(), out.ops.end(), [&](const auto& o) { return o.first == name; });
      if (it == out.ops.end())
        out.ops.emplace_back(name, times * op.seconds);
      else
        it->second += times * op.seconds;
    }
  };
  if (impl_->two_microbatch) {
    // Two halves alternate, each one's all-to-alls beside the other's computation, in the stages of
    // DeepSeek's inference schedules (github deepseek-ai/profile-data, README and its prefill and decode
    // figures), which SGLang's two-batch overlap follows. A stage lasts as long as the longer of its
    // computation and its communication, and each waits for the one before it. With the normal kernels
    // (prefill) a block is four stages: [attention of one half, shared experts of the other | combine],
    // [attention | dispatch], [MLP | dispatch], [MLP, shared experts | combine]. With the low-latency
    // kernels (decode) each half is three: [its shared experts, the other's attention up to the attention
    // kernel | dispatch], [MLP], [the other's attention kernel onward | combine]. TP collectives wait with
    // the dispatch. A half's computation beside the normal kernels runs on the SMs they leave.
    const double slow = impl_->overlap_slowdown;
    const bool low_latency = impl_->rctx.geo.low_latency;
    for (const BlockTotals& t : price_blocks(half_of(batch))) {
      const double A0 = t.attn_pre * slow, A1 = t.attn_core * slow, A = A0 + A1, S = t.shared * slow,
                   M = t.mlp * slow, D = t.dispatch + t.tp, C = t.combine;
      const double block = low_latency
                               ? 2 * (std::max(S + A0, D) + M + std::max(A1, C))
                               : std::max(A + S, C) + std::max(A, D) + std::max(M, D) + std::max(M + S, C);
      out.compute += 2 * t.compute * slow;
      out.exposed_comm += std::max(0.0, block - 2 * t.compute * slow);
      out.all_to_all += 2 * t.ep;
      out.attention += 2 * t.attention;
      out.experts += 2 * t.experts;
      if (t.moe) imbalance += t.imbalance, ++moe_layers;
      add_ops(t, 2);
    }
  } else {
    for (const BlockTotals& t : price_blocks(batch)) {
      out.compute += t.compute;
      out.exposed_comm += t.tp + t.ep_exposed;
      out.all_to_all += t.ep;
      out.attention += t.attention;
      out.experts += t.experts;
      if (t.moe) imbalance += t.imbalance, ++moe_layers;
      add_ops(t, 1);
    }
  }
  const Ends e = ends(batch);
  const double embedding = e.embedding, head = e.head_gemm + e.sampling;
  out.compute += embedding + head;
  out.ops.emplace_back("embedding", embedding);
  out.ops.emplace_back("head", head);
  const double gpu = out.compute + out.exposed_comm;
  const ServingSpec& sv = inst_.serving;
  out.scheduler =
      sv.scheduler_time + sv.scheduler_time_per_sequence * (batch.decode_seqs + batch.prefill_seqs);
  out.seconds = sv.overlap_scheduler ? std::max(gpu, out.scheduler) : gpu + out.scheduler;
  out.max_over_mean_gpu = moe_layers > 0 ? imbalance / moe_layers : 1.0;
  return out;
}

}  // namespace moesim::models
