#include "models/analytic.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "models/compute_cost.hpp"
#include "models/memory.hpp"
#include "models/network.hpp"
#include "models/op_table.hpp"
#include "models/routing_source.hpp"
#include "models/throughput.hpp"
#include "scenarios/error.hpp"
#include "traces/load.hpp"

namespace moesim::models {
namespace {

ChunkTimes chunk_of(const RankWork& rw) {
  ChunkTimes t;
  const PassCost& f = rw.pass[0];
  const PassCost& b = rw.pass[1];
  const PassCost& w = rw.pass[2];
  t.f = f.alone();
  t.b = b.alone();
  t.w = w.alone();
  t.f_compute = f.compute;
  t.b_compute = b.compute;
  t.w_compute = w.compute;
  t.f_overlappable = f.overlappable();
  t.b_overlappable = b.overlappable();
  // Blocking: tensor-parallel and expert-tensor-parallel collectives.
  t.f_blocking = f.tp_comm + f.etp_comm;
  t.b_blocking = b.tp_comm + b.etp_comm;
  t.p2p = rw.p2p_seconds;
  return t;
}

ChunkTimes average(const ChunkTimes& a, const ChunkTimes& b) {
  auto avg = [](double x, double y) { return 0.5 * (x + y); };
  ChunkTimes t;
  t.f = avg(a.f, b.f);
  t.b = avg(a.b, b.b);
  t.w = avg(a.w, b.w);
  t.f_compute = avg(a.f_compute, b.f_compute);
  t.b_compute = avg(a.b_compute, b.b_compute);
  t.w_compute = avg(a.w_compute, b.w_compute);
  t.f_overlappable = avg(a.f_overlappable, b.f_overlappable);
  t.b_overlappable = avg(a.b_overlappable, b.b_overlappable);
  t.f_blocking = avg(a.f_blocking, b.f_blocking);
  t.b_blocking = avg(a.b_blocking, b.b_blocking);
  t.p2p = std::max(a.p2p, b.p2p);
  return t;
}

// The per-GPU expert loads of block `b` (rows ÷ the busiest GPU's rows), or nullptr for a dense block.
const std::vector<double>* loads_of(const Workload& w, const BlockCost* b) {
  if (b == nullptr || b->moe_index < 0 || static_cast<std::size_t>(b->moe_index) >= w.moe_detail_index.size())
    return nullptr;
  const std::vector<double>& l = moe_detail_of(w, b->moe_index).rank_load;
  return l.empty() ? nullptr : &l;
}

// One overlapped DualPipe pair: the forward chunk of rank `f` and the backward chunk of rank `b`,
// block by block (the forward's i-th block beside the backward's i-th from the end). Each block pair
// runs in four slots, each slot overlapping one compute component with one communication component
// (DeepSeek-V3 report Figure 4; Megatron-Core's combined 1F1B runs the same order,
// megatron/core/models/common/model_chunk_schedule_plan.py): ATTN(F) | combine(B);
// MLP(B)+MLP(W) | dispatch(F); MLP(F) | dispatch(B); ATTN(B)+ATTN(W) | combine(F). Tensor- and
// context-parallel collectives go with their attention, expert-tensor-parallel ones with their MLP (all on
// the compute stream, as in the discrete-event engine); work outside blocks (embedding, head) adds serially.
//
// Megatron-Core's delayed weight gradients (`--delay-wgrad-compute`) leave this order as it is: every node
// of a model chunk waits for the chunk's one CUDA event and records it (ModelChunkSchedulePlan), so B's
// dispatch still follows MLP(W) and the next combine(B) ATTN(W); only the chunk's last ATTN(W) moves after
// its pipeline send (the discrete-event engine prices that).
//
// The two streams run with their real dependencies, on every GPU of the EP group: a computation needs
// the all-to-all that carries its input, and an all-to-all needs the computation that produces what it
// carries finished on every GPU of the group, and the communication stream free. A GPU therefore runs
// consecutive computations back to back when it is not the one the all-to-all between them waits for:
// with the same load on every GPU this is the sum over slots of max(compute, communication); with per-GPU
// loads that differ from layer to layer (the F chunk's layer and the B chunk's layer have different busiest
// GPUs) a GPU's expert work of one layer follows its expert work of the other without waiting, and the pair
// takes the busiest GPU of the sum, not the sum of each layer's busiest GPU (docs/model.md, Schedules).
// Routed-expert time on GPU g is the busiest GPU's price times g's rank_load, as in the discrete-event
// engine. A computation beside an all-to-all has the SMs the communication kernels leave while they run
// (overlap_stretch). `gpus`:
// uneven_gpus(w) (1 when every GPU carries the same load: one stands for all). `c` is scratch space.
// `nic_busy`: how long the previous pair's pipeline sends still hold this GPU's NIC as the pair starts
// (Megatron-Core's combined 1F1B: its forward and its backward output, f.p2p_nic + b.p2p_nic); an
// all-to-all's NIC leg waits for them, its NVLink leg does not (the discrete-event engine shares the NIC
// between the flows instead). DualPipe: 0, its commit waited for the sends before the pair began.
double dualpipe_pair(const Workload& w, const RankWork& f, const RankWork& b, std::size_t gpus,
                     std::vector<double>& c, double nic_busy) {
  const std::size_t nf = f.blocks.size(), nb = b.blocks.size(), n = std::max(nf, nb);
  c.assign(gpus, 0.0);
  const PassCost zero;
  double q = 0, fb = 0, bb = 0;
  // Runs computation `base + experts · load[g]` on every GPU g once `after` has passed (the end of the
  // all-to-all carrying its input; 0: no wait), beside an all-to-all of `beside` seconds; returns when
  // the last GPU finishes it.
  auto run = [&](double base, double experts, const std::vector<double>* load, double after, double beside,
                 double collectives = 0) {
    if (beside > 0) {
      const double k = overlap_stretch(w.overlap_slowdown, base + experts, beside);
      base *= k, experts *= k;
    }
    base += collectives;
    double top = 0;
    for (std::size_t g = 0; g < gpus; ++g) {
      const double l = load != nullptr && g < load->size() ? (*load)[g] : 1.0;
      c[g] = std::max(c[g], after) + base + experts * l;
      top = std::max(top, c[g]);
    }
    return top;
  };
  // Collectives issued on the compute stream run in their slot beside the other chunk's all-to-all, at
  // their own price: a block's tensor- and context-parallel communication among the attention's kernels,
  // its expert-tensor-parallel all-gather and reduce-scatter around the routed experts.
  const auto attention_collectives = [](const PassCost& x) { return x.tp_comm + x.cp_exposed; };
  // Starts an all-to-all of `comm` seconds (`nic` of them its NIC leg) once its input is ready everywhere
  // (`ready`) and the communication stream is free; returns its end.
  auto send = [&](double ready, double comm, double nic) {
    const double start = std::max(q, ready);
    return q = nic > 0 && nic_busy > start ? std::max(start + comm, nic_busy + nic) : start + comm;
  };
  double attn_b_done = 0;  // the previous block pair's ATTN(B) finished on every GPU
  for (std::size_t i = 0; i < n; ++i) {
    const BlockCost* bf = i < nf ? &w.blocks[f.blocks[i]] : nullptr;
    const BlockCost* bk = i < nb ? &w.blocks[b.blocks[nb - 1 - i]] : nullptr;
    const PassCost& F = bf ? bf->pass[0] : zero;
    const PassCost& B = bk ? bk->pass[1] : zero;
    const PassCost& W = bk ? bk->pass[2] : zero;
    const std::vector<double>* lf = loads_of(w, bf);
    const std::vector<double>* lb = loads_of(w, bk);
    const double combine_f_prev = q;
    const double combine_b = send(attn_b_done, B.combine, B.combine_nic);
    const double attn_f =
        run(F.attn_compute, 0, nullptr, combine_f_prev, B.combine, attention_collectives(F));
    const double dispatch_f = send(attn_f, F.dispatch, F.dispatch_nic);
    const double mlp_b = run(B.mlp_compute + W.mlp_compute - B.experts - W.experts, B.experts + W.experts, lb,
                             combine_b, F.dispatch, B.etp_comm + W.etp_comm);
    const double dispatch_b = send(mlp_b, B.dispatch, B.dispatch_nic);
    const double mlp_f = run(F.mlp_compute - F.experts, F.experts, lf, dispatch_f, B.dispatch, F.etp_comm);
    send(mlp_f, F.combine, F.combine_nic);
    attn_b_done = run(B.attn_compute + W.attn_compute, 0, nullptr, dispatch_b, F.combine,
                      attention_collectives(B) + attention_collectives(W));
    fb += F.compute;
    bb += B.compute + W.compute;
  }
  double cmax = 0;
  for (double x : c) cmax = std::max(cmax, x);
  // Embedding, head and loss: the rank totals minus what its blocks account for.
  const double fw = (f.pass[0].compute - fb) + (b.pass[1].compute + b.pass[2].compute - bb);
  return std::max(q, cmax) + fw;
}

// Whether two stages carry the same prices for an overlapped pair: the same blocks in order up to
// repetition (a block that repeats another, BlockCost::ops_from, has its passes and expert loads), the same
// embedding, head and pipeline send. Equal stages give a pair bit for bit equal, so it is priced once.
bool priced_alike(const Workload& w, const RankWork& a, const RankWork& b) {
  if (&a == &b) return true;
  if (a.blocks.size() != b.blocks.size() || a.embedding != b.embedding || a.head != b.head ||
      a.p2p_nic != b.p2p_nic)
    return false;
  for (int p = 0; p < 3; ++p)
    if (a.pass[p].compute != b.pass[p].compute) return false;
  const auto source = [&w](int i) {
    const int from = w.blocks[static_cast<std::size_t>(i)].ops_from;
    return from >= 0 ? from : i;
  };
  for (std::size_t i = 0; i < a.blocks.size(); ++i)
    if (source(a.blocks[i]) != source(b.blocks[i])) return false;
  return true;
}

// What a weight-gradient chunk run alone (zero bubble, DualPipe) saves against the sum of its blocks'
// busiest-GPU prices, seconds (<= 0). Nothing synchronises the EP group inside such a chunk (it has no
// all-to-all), so each GPU runs its own expert rows of every layer back to back and the chunk takes the
// busiest GPU of the sum: max over GPUs g of sum over blocks of W.experts * (load_g - 1), 0 when every
// layer has the same busiest GPU. `gpus`: uneven_gpus(w). `c` is scratch space.
double lone_weight_saving(const Workload& w, const RankWork& rw, std::size_t gpus, std::vector<double>& c) {
  if (gpus <= 1) return 0;  // every GPU's load is the busiest one's: nothing to save
  c.assign(gpus, 0.0);
  for (int bi : rw.blocks) {
    const BlockCost& b = w.blocks[static_cast<std::size_t>(bi)];
    const std::vector<double>* l = loads_of(w, &b);
    if (l == nullptr) continue;
    for (std::size_t g = 0; g < gpus && g < l->size(); ++g) c[g] += b.pass[2].experts * ((*l)[g] - 1.0);
  }
  return *std::max_element(c.begin(), c.end());
}

// The GPUs whose expert loads the DualPipe and lone-W sums must follow one by one: the EP degree when
// some MoE layer loads its GPUs unevenly, else 1 (with every load 1, one GPU stands for all, bit for bit).
std::size_t uneven_gpus(const Workload& w) {
  std::size_t gpus = 1;
  bool uneven = false;
  for (const auto& d : w.moe_detail) {
    gpus = std::max(gpus, d.rank_load.size());
    uneven |= d.uneven;
  }
  return uneven ? gpus : 1;
}

// Delayed weight gradients (`--delay-wgrad-compute`) in a combined-1F1B pair: per microbatch, each rank's
// attention weight gradients of the last block of each of its chunks when that block is a MoE block, the
// part that runs after the pair's pipeline sends (TransformerLayerSchedulePlan.run, is_last_layer_in_bwd).
std::vector<double> deferred_after_send(const Scenario& s, const Workload& w) {
  std::vector<double> e(static_cast<std::size_t>(s.parallelism.pp), 0.0);
  if (!s.parallelism.delay_wgrad) return e;
  const std::vector<int> per_chunk = chunk_blocks(s, static_cast<int>(w.blocks.size()));
  std::size_t next = 0;
  for (std::size_t ch = 0; ch < per_chunk.size(); ++ch) {
    next += static_cast<std::size_t>(per_chunk[ch]);
    if (per_chunk[ch] == 0 || next > w.blocks.size()) continue;
    const BlockCost& b = w.blocks[next - 1];
    if (b.moe_index >= 0) e[ch % e.size()] += b.pass[2].attn_compute;
  }
  return e;
}

Result evaluate_priced(const Scenario& s, const Workload& w);

struct RankEval {
  ChunkTimes chunk;
  SchedulePhases phases;
  RankParams held;
  double activation_bytes = 0, transient_bytes = 0;
};

}  // namespace

// Megatron-Core's combined 1F1B with pp > 1 (the interleaved schedule): what each rank's steady pair waits,
// per microbatch, for its neighbours' pipeline sends. A pair sends both of its outputs when it ends
// (ModelChunkSchedulePlan.run calls post_forward and post_backward after its last layer pair), and the
// neighbours' next pairs need them: the pipeline is a ring of virtual stages (rank pp-1 feeds rank 0 the
// next chunk, rank 0 returns the gradient to rank pp-1). With d_r one virtual pair of rank r and s one
// send, rank r's forward output reaches rank r+1 in time only if o_{r+1} >= o_r + d_r + s (o: the ranks'
// offsets in the steady state), and rank r's backward, two units later, needs rank r+1's gradient:
// 2T >= o_{r+1} - o_r + d_{r+1} + s. Together every rank repeats every
// T = max over r of max(d_r, (d_r + d_{r+1 mod pp})/2 + s). The activation and the gradient leave a GPU at
// the same moment over the same link, so s = 2·p2p. (A plain 1F1B unit sends its forward output half-way
// through and hides it.) Delayed weight gradients send e_r before the pair ends (the chunk's last attention
// weight gradients run after the sends): d_r - e_r in both send constraints. `pair`, `early`: each rank's
// pair and e per microbatch (v virtual pairs); returns T·v - pair.
std::vector<double> combined_pair_waits(const std::vector<double>& pair, const std::vector<double>& early,
                                        double p2p, int v) {
  const std::size_t n = pair.size();
  std::vector<double> wait(n, 0.0);
  if (n < 2) return wait;
  double period = 0;
  for (std::size_t r = 0; r < n; ++r) {
    const std::size_t q = (r + 1) % n;
    period = std::max({period, pair[r], 0.5 * (pair[r] - early[r] + pair[q] - early[q]) + v * 2.0 * p2p});
  }
  for (std::size_t r = 0; r < n; ++r) wait[r] = period - pair[r];
  return wait;
}

double overlapped_pair_seconds(const Workload& w, int f_stage, int b_stage) {
  MOESIM_ASSERT(f_stage >= 0 && b_stage >= 0 && static_cast<std::size_t>(f_stage) < w.ranks.size() &&
                    static_cast<std::size_t>(b_stage) < w.ranks.size(),
                "overlapped_pair_seconds: stage out of range");
  std::vector<double> scratch;
  return dualpipe_pair(w, w.ranks[static_cast<std::size_t>(f_stage)],
                       w.ranks[static_cast<std::size_t>(b_stage)], uneven_gpus(w), scratch, 0.0);
}

RankSync sync_of(const Scenario& s, const RankParams& held, const ChunkTimes& chunk, int M) {
  const auto& par = s.parallelism;
  const auto& cl = s.cluster;
  const NetworkModel net(cl);
  // Data-parallel groups: attention weights are replicated over dp·cp ranks (stride tp), experts over
  // edp ranks (stride ep·etp).
  const Group dp_group = s.layout.dp_group();
  const Group edp_group = s.layout.edp_group();
  const double grad_b = bytes_of(s.workload.grad_dtype), state_b = bytes_of(s.workload.optimizer_state_dtype);
  const double dense_p = held.params - held.expert_params, expert_p = held.expert_params;
  RankSync r;
  // Gradient synchronisation: ZeRO-0 all-reduces gradients; ZeRO>=1 reduce-scatters them and
  // all-gathers the updated BF16 parameters (Rajbhandari et al. 2020, ZeRO §5).
  if (par.zero == 0) {
    r.reduce = net.all_reduce(dense_p * grad_b, dp_group) + net.all_reduce(expert_p * grad_b, edp_group);
  } else {
    r.reduce =
        net.reduce_scatter(dense_p * grad_b, dp_group) + net.reduce_scatter(expert_p * grad_b, edp_group);
    r.gather = net.all_gather(dense_p * 2.0, dp_group) + net.all_gather(expert_p * 2.0, edp_group);
  }
  // The reduce overlaps the last microbatch's backward (bucketed, Megatron-Core overlap_grad_reduce).
  const double window = par.overlap_grad_reduce ? chunk.b + chunk.w : 0.0;
  r.exposed_dp = std::max(0.0, r.reduce - window) + (par.overlap_param_gather ? 0.0 : r.gather);
  if (par.zero == 3) {
    // ZeRO-3 gathers each layer's parameters in forward and again in backward for every microbatch,
    // prefetched under the previous layer's compute.
    const double ag = net.all_gather(dense_p * 2.0, dp_group) + net.all_gather(expert_p * 2.0, edp_group);
    r.exposed_dp += M * (std::max(0.0, ag - chunk.f_compute) + std::max(0.0, ag - chunk.b_compute));
  }
  // Optimizer (AdamW, memory-bound): per local parameter read grad, master, m, v; write master, m, v
  // and the BF16 weight. Muon reads and writes one momentum per matrix parameter (its Newton-Schulz
  // iterations are not priced); the embedding and output head keep AdamW's two moments.
  r.shard_dense = par.zero >= 1 ? dense_p / dp_group.size : dense_p;
  r.shard_expert = par.zero >= 1 ? expert_p / edp_group.size : expert_p;
  r.shard_adam = par.zero >= 1 ? held.adam_params / dp_group.size : held.adam_params;
  const double master_b = s.workload.master_weights ? 4.0 : 2.0;
  const double shard = r.shard_dense + r.shard_expert;
  const double opt_bytes = s.workload.optimizer == Optimizer::kMuon
                               ? shard * (grad_b + 2 * master_b + 2.0) + (shard + r.shard_adam) * 2 * state_b
                               : shard * (grad_b + 2 * master_b + 4 * state_b + 2.0);
  r.optimizer = opt_bytes / (cl.gpu.memory_bandwidth * cl.gpu.memory_efficiency);
  if (s.workload.optimizer == Optimizer::kMuon) {
    // Newton-Schulz runs as BF16 GEMMs on whole matrices, which the data-parallel ranks divide among them
    // (balanced by cost), at the GPU's BF16 GEMM efficiency.
    const double flops = held.muon_ns_dense / dp_group.size + held.muon_ns_expert / edp_group.size;
    r.newton_schulz = flops / (cl.gpu.flops_bf16 * cl.gpu.gemm_efficiency_bf16);
    r.optimizer += r.newton_schulz;
  }
  return r;
}

RankSync rank_sync(const Scenario& s, const Workload& w, int rank) {
  const auto& par = s.parallelism;
  const RankWork& rw = w.ranks[rank];
  ChunkTimes chunk = chunk_of(rw);
  RankParams held = RankParams::of(rw);
  if (par.schedule == Schedule::kDualPipe) {
    const RankWork& mirror = w.ranks[par.pp - 1 - rank];
    chunk = average(chunk, chunk_of(mirror));
    held += RankParams::of(mirror);
  }
  return sync_of(s, held, chunk, s.layout.microbatches);
}

Result evaluate_analytic(const Scenario& s) {
  return evaluate_analytic(s, routing_input(s));
}

Result evaluate_analytic(const Scenario& s, const RoutingInput& in) {
  auto cm = make_compute_cost_model(s);
  NetworkModel net(s.cluster);
  Result r = evaluate_analytic(s, build_workload(s, *cm, net, routing_override(in)));
  const bool balanced = s.routing.mode == RoutingMode::kExpected && traces::is_uniform(s.routing.load) &&
                        s.routing.capacity_factor == 0 && s.placement.redundant_experts == 0;
  r.balanced_step_time = balanced || s.model.moe.experts == 0 ? r.step_time : balanced_step_time(s);
  return r;
}

Scenario balanced_scenario(const Scenario& s) {
  Scenario b = s;
  b.routing.mode = RoutingMode::kExpected;
  b.routing.load.generator = "uniform";
  b.routing.capacity_factor = 0;
  b.placement.policy = "contiguous";
  b.placement.redundant_experts = 0;
  return b;
}

double balanced_step_time(const Scenario& s) {
  const Scenario b = balanced_scenario(s);
  auto cm = make_compute_cost_model(b);
  NetworkModel net(b.cluster);
  return evaluate_analytic(b, build_workload(b, *cm, net)).step_time;
}

Result evaluate_analytic(const Scenario& s, const Workload& w) {
  Result r = evaluate_priced(s, w);
  r.moe_layers = w.moe_layers;
  r.node_traffic = w.node_traffic;
  return r;
}

Result evaluate_analytic(const Scenario& s, Workload&& w) {
  Result r = evaluate_priced(s, w);
  r.moe_layers = std::move(w.moe_layers);
  r.node_traffic = std::move(w.node_traffic);
  return r;
}

namespace {

// evaluate_analytic without the per-layer routing statistics and node traffic (the callers copy or move
// them from the workload).
Result evaluate_priced(const Scenario& s, const Workload& w) {
  const auto& par = s.parallelism;
  const auto& cl = s.cluster;
  const auto& gpu = cl.gpu;
  Result r;
  r.scenario = s.name;
  r.cost_model = w.cost_model;
  r.seed = s.routing.load.seed;
  r.gpus = cl.gpus();
  r.microbatches = s.layout.microbatches;
  r.tokens_per_step = double(par.global_batch) * s.workload.seq_len;
  r.model_flops_per_token = w.model_flops_per_token;
  const int M = r.microbatches;
  const bool dualpipe = par.schedule == Schedule::kDualPipe;

  double worst = -1;
  std::vector<double> scratch;  // per-GPU compute stream of a DualPipe pair
  const bool ep_overlap = par.ep_overlap && !dualpipe && par.schedule != Schedule::kZeroBubble;
  const std::size_t gpus =
      dualpipe || ep_overlap || par.schedule == Schedule::kZeroBubble ? uneven_gpus(w) : 1;
  // DualPipe: rank r overlaps stage r's forward with stage pp-1-r's backward and the reverse, as its
  // mirror does; each ordered pair is priced once and both ranks read it.
  std::vector<double> pair_fb;
  if (dualpipe) {
    pair_fb.resize(static_cast<std::size_t>(par.pp));
    for (int rank = 0; rank < par.pp; ++rank) {
      const RankWork &f = w.ranks[rank], &b = w.ranks[par.pp - 1 - rank];
      int same = -1;  // an earlier rank whose two stages are priced as these are: the same pair
      for (int q = 0; q < rank && same < 0; ++q)
        if (priced_alike(w, f, w.ranks[q]) && priced_alike(w, b, w.ranks[par.pp - 1 - q])) same = q;
      pair_fb[rank] = same >= 0 ? pair_fb[same] : dualpipe_pair(w, f, b, gpus, scratch, 0.0);
    }
  }
  // Combined 1F1B: each rank's overlapped pair, one forward chunk beside one backward chunk, block by block
  // as a DualPipe pair; with pp > 1 the ranks' pairs pace each other (combined_pair_waits).
  std::vector<double> pair_ep, wait_ep;
  if (ep_overlap) {
    double p2p = 0;
    for (const RankWork& rw : w.ranks) {
      pair_ep.push_back(dualpipe_pair(w, rw, rw, gpus, scratch, 2 * rw.p2p_nic));
      p2p = std::max(p2p, rw.p2p_seconds);
    }
    wait_ep = combined_pair_waits(pair_ep, deferred_after_send(s, w), p2p,
                                  par.schedule == Schedule::kInterleaved ? par.vpp : 1);
  }
  // What each stage's weight-gradient chunk saves when it runs alone (zero bubble, DualPipe).
  std::vector<double> w_saving;
  if (dualpipe || par.schedule == Schedule::kZeroBubble)
    for (const RankWork& rw : w.ranks) w_saving.push_back(lone_weight_saving(w, rw, gpus, scratch));
  // DualPipe: every rank's phases from the schedule's real dependencies (models::dualpipe_timeline).
  std::vector<SchedulePhases> timeline;
  if (dualpipe) {
    std::vector<StageChunk> stages(static_cast<std::size_t>(par.pp));
    for (int v = 0; v < par.pp; ++v) {
      const RankWork& rw = w.ranks[v];
      const ChunkTimes t = chunk_of(rw);
      StageChunk& c = stages[static_cast<std::size_t>(v)];
      c.f = t.f;
      c.b = t.b;
      c.w = t.w + w_saving[static_cast<std::size_t>(v)];
      c.bw = t.b + t.w;
      c.fb_pair = pair_fb[static_cast<std::size_t>(v)];
      c.p2p = rw.p2p_seconds;
    }
    timeline = dualpipe_timeline(par.pp, M, stages);
    r.fidelity = M > 16 * par.pp ? "closed form; DualPipe by its dependency timeline, " +
                                       std::to_string(8 * par.pp) + " and " + std::to_string(8 * par.pp + 2) +
                                       " microbatches walked, " + std::to_string(M) + " extrapolated"
                                 : "exact (closed form); DualPipe by its dependency timeline";
  }
  std::vector<RankSync> syncs;  // per rank (reserved: `sync` below stays valid)
  syncs.reserve(static_cast<std::size_t>(par.pp));
  for (int rank = 0; rank < par.pp; ++rank) {
    const RankWork& rw = w.ranks[rank];
    RankEval e;
    e.chunk = chunk_of(rw);
    e.held = RankParams::of(rw);
    e.activation_bytes = rw.activation_bytes;
    e.transient_bytes = rw.transient_bytes;
    if (dualpipe) {
      // A DualPipe rank runs stage `rank` for one half of the microbatches and stage pp-1-rank for the
      // other, holding the parameters of both (DeepSeek-V3 report §3.2.1).
      const RankWork& mirror = w.ranks[par.pp - 1 - rank];
      e.chunk = average(e.chunk, chunk_of(mirror));
      e.held += RankParams::of(mirror);
      e.activation_bytes = 0.5 * (rw.activation_bytes + mirror.activation_bytes);
      e.transient_bytes = std::max(rw.transient_bytes, mirror.transient_bytes);
    }
    if (dualpipe || par.schedule == Schedule::kZeroBubble) {
      // Deferred weight-gradient chunks run alone: the busiest GPU of their sum.
      double saving = w_saving[static_cast<std::size_t>(rank)];
      if (dualpipe) saving = 0.5 * (saving + w_saving[static_cast<std::size_t>(par.pp - 1 - rank)]);
      e.chunk.w += saving;
      e.chunk.w_compute += saving;
    }
    if (dualpipe) {
      e.chunk.fb_pair = 0.5 * (pair_fb[rank] + pair_fb[par.pp - 1 - rank]);
    }
    if (ep_overlap) {
      e.chunk.fb_pair = pair_ep[static_cast<std::size_t>(rank)];
      e.chunk.pair_wait = wait_ep[static_cast<std::size_t>(rank)];
    }
    e.phases = dualpipe ? timeline[static_cast<std::size_t>(rank)]
                        : evaluate_schedule(par.schedule, par.pp, par.vpp, M, e.chunk);

    // A DualPipe rank and its mirror hold the same parameters and average the same chunks (both sums
    // commute exactly), so the mirror's synchronisation is the rank's.
    const int mirror = par.pp - 1 - rank;
    syncs.push_back(dualpipe && mirror < rank ? syncs[static_cast<std::size_t>(mirror)]
                                              : sync_of(s, e.held, e.chunk, M));
    const RankSync& sync = syncs.back();
    const double reduce = sync.reduce, gather = sync.gather, exposed_dp = sync.exposed_dp,
                 opt = sync.optimizer;
    const double total = e.phases.total() + exposed_dp + opt;
    if (total > worst) {
      worst = total;
      r.critical_rank = rank;
      r.chunk = e.chunk;
      r.phases = e.phases;
      r.step_time = total;
      r.grad_sync = reduce + gather;
      r.breakdown = Breakdown{};
      r.breakdown.exposed_dp = exposed_dp;
      r.breakdown.optimizer = opt;
      r.breakdown.bubble = e.phases.bubble;
      // Compute of all microbatches; what remains of the pipeline time is exposed communication,
      // attributed to TP, EP and CP in proportion to what each exposes when a chunk runs alone.
      const double compute = M * (e.chunk.f_compute + e.chunk.b_compute + e.chunk.w_compute);
      const double exposed = std::max(0.0, e.phases.total() - e.phases.bubble - compute);
      r.breakdown.compute = e.phases.total() - e.phases.bubble - exposed;
      const PassCost* pcs[2] = {&rw.pass[0], &rw.pass[1]};
      double tp = 0, ep = 0, cp = 0;
      for (const PassCost* pc : pcs) {
        tp += pc->tp_comm;
        ep += pc->ep_exposed;
        cp += pc->cp_exposed;
      }
      if (dualpipe) ep = std::max(ep, 1e-30);  // overlapped pairs expose mostly all-to-all
      const double sum = tp + ep + cp;
      if (sum > 0) {
        r.breakdown.exposed_tp = exposed * tp / sum;
        r.breakdown.exposed_ep = exposed * ep / sum;
        r.breakdown.exposed_cp = exposed * cp / sum;
      } else {
        r.breakdown.compute += exposed;
      }
    }

    // Memory on this rank; the result reports the rank that needs the most.
    const MemoryBreakdown mem =
        rank_memory(s,
                    RankHoldings{e.held.params, e.held.expert_params, sync.shard_dense + sync.shard_expert,
                                 sync.shard_adam, e.activation_bytes, e.transient_bytes},
                    rank);
    if (mem.total > r.memory.total) {
      r.memory = mem;
      r.memory_rank = rank;
    }
  }
  if (!r.memory.fits) {
    r.feasible = false;
    r.infeasible_reason = memory_shortfall(r.memory, r.memory_rank);
  }
  finish_throughput(r, w, gpu);

  // Per-layer times.
  r.layers.reserve(w.blocks.size());
  for (int rank = 0; rank < par.pp; ++rank) {
    for (int bi : w.ranks[rank].blocks) {
      const BlockCost& b = w.blocks[bi];
      LayerTime lt;
      lt.layer = b.layer;
      lt.kind = block_kind_name(b.kind);
      lt.pp_rank = rank;
      lt.forward = b.pass[0].alone();
      lt.backward_input = b.pass[1].alone();
      lt.backward_weight = b.pass[2].alone();
      if (b.moe_index >= 0) lt.max_over_mean_gpu = w.moe_layers[b.moe_index].max_over_mean_gpu;
      r.layers.push_back(lt);
    }
  }
  // Ranks hold consecutive layers unless stages interleave: sort only then (layers are unique).
  const auto by_layer = [](const LayerTime& a, const LayerTime& b) { return a.layer < b.layer; };
  if (!std::is_sorted(r.layers.begin(), r.layers.end(), by_layer))
    std::sort(r.layers.begin(), r.layers.end(), by_layer);
  r.traffic_nodes = w.traffic_nodes;
  if (!w.moe_layers.empty()) {
    double imb = 0, drop = 0;
    for (const auto& m : w.moe_layers) {
      imb += m.max_over_mean_gpu;
      drop += m.dropped_fraction;
    }
    r.moe_max_over_mean_gpu = imb / w.moe_layers.size();
    r.moe_dropped_fraction = drop / w.moe_layers.size();
  }
  check_finite(r);
  return r;
}

}  // namespace

}  // namespace moesim::models
