#include "sim/des_program.hpp"

#include <algorithm>
#include <iterator>

#include "models/analytic.hpp"

namespace moesim::sim {

using models::ChunkPass;
using models::ChunkStep;
using models::OpRole;

BlockSegs segments_of(const models::Workload& w, int b) {
  const models::BlockCost& bc = w.blocks[static_cast<std::size_t>(b)];
  BlockSegs out;
  out.layer = bc.layer;
  out.moe = bc.moe_index;
  bool after_experts[3] = {false, false, false};
  for (const models::Op& op : models::block_ops(w, b)) {
    const int p = static_cast<int>(op.pass);
    PassSegs& ps = out.pass[p];
    double& positional = after_experts[p] ? ps.post : ps.pre;
    switch (op.role) {
      case OpRole::kTensorCollective:
        positional += op.seconds;
        ps.tp += op.seconds;
        break;
      case OpRole::kExpertTensorCollective:
        ps.etp += op.seconds;  // its own segment, around the routed experts
        break;
      case OpRole::kDispatch:
      case OpRole::kCombine:
        if (op.recompute) ps.recompute_a2a = true;
        break;
      case OpRole::kContextExchange:
        break;  // its exposed part is added below
      case OpRole::kSharedDown:
        ps.shared_down += op.seconds;
        break;
      case OpRole::kSharedUp:
        ps.shared_up += op.seconds;
        break;
      case OpRole::kExperts:
        ps.experts += op.seconds;
        after_experts[p] = true;
        break;
      case OpRole::kUnpermute:
        ps.post += op.seconds;
        break;
      default:
        positional += op.seconds;
        break;
    }
  }
  for (int p = 0; p < 3; ++p) {
    PassSegs& ps = out.pass[p];
    // A block without routed experts is its attention (or mixer) and its MLP, two segments (Megatron-Core's
    // fine-grained callables: a dense layer's pre-dispatch computation is its attention, then its MLP), so
    // that in an overlapped pair each can run beside one of the other chunk's all-to-alls.
    if (bc.moe_index < 0) {
      const double mlp = std::min(ps.pre, bc.pass[p].mlp_compute);
      ps.pre -= mlp;
      ps.post += mlp;
    }
    ps.cp = bc.pass[p].cp_exposed;
    ps.pre += bc.pass[p].cp_exposed;
  }
  return out;
}

const char* coll_name(int k) {
  static const char* kNames[] = {"dispatch", "combine", "combine grad", "dispatch grad"};
  return kNames[k];
}

ProgramBuilder::ProgramBuilder(const Scenario& s, const models::Workload& w) : s_(s), w_(w) {
  const auto& par = s.parallelism;
  pp_ = par.pp;
  vpp_ = par.schedule == Schedule::kInterleaved ? par.vpp : 1;
  stages_ = models::pipeline_stages(par.schedule, pp_, vpp_);
  shared_overlap_ = s.workload.shared_expert_overlap;
  // Blocks per stage: the workload's chunks (chunk ch on rank ch % pp, in order).
  const int chunks = par.pp * par.vpp;
  const std::vector<int> per_chunk = models::chunk_blocks(s, static_cast<int>(w.blocks.size()));
  std::vector<std::vector<int>> chunk_blocks(static_cast<std::size_t>(chunks));
  int next = 0;
  for (int ch = 0; ch < chunks; ++ch)
    for (int i = 0; i < per_chunk[ch]; ++i) chunk_blocks[ch].push_back(next++);
  stage_blocks_.resize(static_cast<std::size_t>(stages_));
  if (par.schedule == Schedule::kInterleaved) {
    stage_blocks_ = chunk_blocks;
  } else {
    for (int v = 0; v < stages_; ++v) stage_blocks_[v] = w.ranks[v].blocks;
  }
  segs_.resize(w.blocks.size());
  for (std::size_t b = 0; b < w.blocks.size(); ++b) segs_[b] = segments_of(w, static_cast<int>(b));
  for (const auto& rw : w.ranks) p2p_bytes_ = std::max(p2p_bytes_, rw.p2p_bytes);
  for (int r = 0; r < pp_; ++r) {
    const models::RankSync sync = models::rank_sync(s, w, r);
    tail_.push_back(sync.exposed_dp + sync.optimizer);
  }
}

std::pair<int, int> ProgramBuilder::locate(int c, int v) const {
  switch (s_.parallelism.schedule) {
    case Schedule::kInterleaved:
      return {v % pp_, v / pp_};
    case Schedule::kDualPipe:
      return {c == 0 ? v : pp_ - 1 - v, c};
    default:
      return {v, 0};
  }
}

std::vector<ChunkPhase> chunk_phases(Schedule s, const std::vector<ChunkStep>& order) {
  const std::size_t n = order.size();
  std::vector<ChunkPhase> out(n, kPhaseSteady);
  const auto lone = [&](std::size_t i) {
    const ChunkPass ps = order[i].pass;
    return ps == ChunkPass::kF   ? kPhaseForwardOnly
           : ps == ChunkPass::kW ? kPhaseWeightOnly
                                 : kPhaseBackwardOnly;
  };
  if (s == Schedule::kDualPipe) {
    for (std::size_t i = 0; i < n; ++i) {
      if (order[i].pass == ChunkPass::kF && order[i].overlap_next && i + 1 < n)
        ++i;  // an overlapped F&B pair: both steady
      else
        out[i] = lone(i);
    }
    return out;
  }
  // Warm-up forwards, then steady units (F then B or BW, zero bubble with its W), then the cool-down.
  // The steady state starts with the forward just before the first backward and ends with the first
  // backward (and W) after the last forward; without a forward after the first backward there is none.
  std::size_t first_b = n, last_f = n;
  for (std::size_t i = 0; i < n; ++i) {
    const ChunkPass ps = order[i].pass;
    if (ps == ChunkPass::kF) last_f = i;
    if ((ps == ChunkPass::kB || ps == ChunkPass::kBW) && first_b == n) first_b = i;
  }
  const bool steady = first_b < n && last_f < n && last_f > first_b;
  if (!steady) {
    for (std::size_t i = 0; i < n; ++i) out[i] = lone(i);
    return out;
  }
  std::size_t last_warm = first_b;  // the forward just before the first backward opens the steady state
  while (last_warm > 0 && order[last_warm - 1].pass != ChunkPass::kF) --last_warm;
  for (std::size_t i = 0; i + 1 < last_warm; ++i)
    if (order[i].pass == ChunkPass::kF) out[i] = kPhaseForwardOnly;
  bool b_seen = false, w_seen = false;  // after the last forward: the first B and W close the steady state
  for (std::size_t i = last_f + 1; i < n; ++i) {
    bool& seen = order[i].pass == ChunkPass::kW ? w_seen : b_seen;
    if (seen) out[i] = lone(i);
    seen = true;
  }
  return out;
}

Program ProgramBuilder::build(int rank, int m) const {
  Program p;
  const bool dualpipe = s_.parallelism.schedule == Schedule::kDualPipe;
  models::DualPipeComm comm;
  if (dualpipe)
    comm = models::dualpipe_comm(pp_, m, rank);
  else
    comm.order = models::schedule_order(s_.parallelism.schedule, pp_, vpp_, m, rank);
  auto& order = comm.order;
  if (s_.parallelism.ep_overlap) order = models::overlap_ep_pairs(order);
  const std::vector<ChunkPhase> phases = chunk_phases(s_.parallelism.schedule, order);
  // DualPipe's transfers go in its commits; the other schedules receive before and send after each chunk.
  const bool io = !dualpipe;
  for (std::size_t i = 0; i < order.size(); ++i) {
    const ChunkStep& st = order[i];
    const std::size_t from = p.ins.size();
    const ChunkPhase ph = phases[i];
    if (dualpipe) commit(p, comm.commit[i]);
    const int v = models::stage_of(s_.parallelism.schedule, pp_, vpp_, rank, st.chunk);
    if (st.pass == ChunkPass::kF && st.overlap_next && i + 1 < order.size()) {
      const ChunkStep& nb = order[i + 1];
      const int vb = models::stage_of(s_.parallelism.schedule, pp_, vpp_, rank, nb.chunk);
      pair(p, st, v, nb, vb, io);
      ++i;
    } else if (st.pass == ChunkPass::kF) {
      forward(p, st, v, io);
    } else if (st.pass == ChunkPass::kW) {
      weight(p, st, v);
    } else {
      backward(p, st, v, st.pass == ChunkPass::kBW, io);
    }
    for (std::size_t k = from; k < p.ins.size(); ++k) p.ins[k].phase = ph;  // the step's instructions
  }
  if (dualpipe) {
    const std::size_t from = p.ins.size();
    commit(p, comm.last);
    for (std::size_t k = from; k < p.ins.size(); ++k) p.ins[k].phase = kPhaseWeightOnly;
  }
  Instr t;
  t.op = Ins::kTail;
  t.seconds = tail_[rank];
  t.what = "dp sync + optimizer";
  t.pass = 'S';
  p.ins.push_back(t);
  return p;
}

// Message key of a pipeline transfer to one GPU: unique per (microbatch, direction, receiving chunk).
int ProgramBuilder::key(char kind, int chunk, int mb) const {
  return (mb * 2 + (kind == 'F' ? 0 : 1)) * (vpp_ + 2) + chunk;
}

namespace {
Instr instr(Ins op, char pass, int layer, int mb, int v, const char* what) {
  Instr x;
  x.op = op;
  x.pass = pass;
  x.layer = layer;
  x.mb = mb;
  x.stage = v;
  x.what = what;
  return x;
}
}  // namespace

void ProgramBuilder::compute(Program& p, double sec, char pass, int layer, int mb, int v, const char* what,
                             double tp, double cp, double etp) const {
  if (!(sec > 0)) return;
  Instr x = instr(Ins::kCompute, pass, layer, mb, v, what);
  x.seconds = sec;
  x.tp = tp;
  x.etp = etp;
  x.cp = cp;
  p.ins.push_back(x);
}

void ProgramBuilder::expert(Program& p, double sec, int moe, char pass, int layer, int mb, int v) const {
  if (!(sec > 0)) return;
  Instr x = instr(Ins::kExpert, pass, layer, mb, v, "experts");
  x.seconds = sec;
  x.moe = moe;
  p.ins.push_back(x);
}

void ProgramBuilder::ready(Program& p, int moe, int kind, char pass, int layer, int mb, int v) const {
  p.ins.push_back(instr(Ins::kReady, pass, layer, mb, v, ""));
  p.colls.push_back(Coll{moe, kind, layer, mb, v, pass});
}

void ProgramBuilder::wait(Program& p) const {
  Instr x;
  x.op = Ins::kWait;
  p.ins.push_back(x);
}

void ProgramBuilder::recv(Program& p, char kind, int chunk, int mb, int v) const {
  Instr x = instr(Ins::kRecv, kind, -1, mb, v, kind == 'F' ? "recv activation" : "recv gradient");
  x.key = key(kind, chunk, mb);
  p.ins.push_back(x);
}

void ProgramBuilder::send(Program& p, char kind, int c, int to_stage, int mb, bool rendezvous) const {
  const auto [rank, chunk] = locate(c, to_stage);
  Instr x;
  x.op = Ins::kSend;
  x.peer_rank = rank;
  x.key = key(kind, chunk, mb);
  x.mb = mb;
  x.seconds = p2p_bytes_;
  x.rendezvous = rendezvous;
  p.ins.push_back(x);
}

void ProgramBuilder::commit(Program& p, const std::vector<models::P2pOp>& batch) const {
  const auto kind = [](const models::P2pOp& o) { return o.gradient ? 'B' : 'F'; };
  // Posting never blocks: every receive and send of the batch is posted, then each is waited for.
  for (const models::P2pOp& o : batch)
    if (!o.send) {
      Instr x = instr(Ins::kPost, kind(o), -1, o.microbatch, o.to_stage, "post receive");
      x.key = key(kind(o), o.direction, o.microbatch);
      p.ins.push_back(x);
    }
  for (const models::P2pOp& o : batch)
    if (o.send) send(p, kind(o), o.direction, o.to_stage, o.microbatch, true);
  for (const models::P2pOp& o : batch) {
    if (!o.send) {
      recv(p, kind(o), o.direction, o.microbatch, o.to_stage);
      continue;
    }
    Instr x = instr(Ins::kSendWait, kind(o), -1, o.microbatch, o.to_stage, "send");
    x.peer_rank = locate(o.direction, o.to_stage).first;
    x.key = key(kind(o), o.direction, o.microbatch);
    p.ins.push_back(x);
  }
}

// The expert-TP collectives sit in the segment before or after the routed experts, where the block's
// op order puts them (the pre segment holds the forward all-gather + reduce-scatter pair).
void ProgramBuilder::forward_block(Program& p, int b, int mb, int v) const {
  const BlockSegs& g = segs_[b];
  const PassSegs& f = g.pass[0];
  if (g.moe < 0) {  // attention (or a mixer), then the MLP
    compute(p, f.pre, 'F', g.layer, mb, v, f.post > 0 ? "attention" : "block", f.tp, f.cp);
    compute(p, f.post, 'F', g.layer, mb, v, "mlp");
    return;
  }
  compute(p, f.pre, 'F', g.layer, mb, v, "attention+router", f.tp, f.cp);
  ready(p, g.moe, kDispatchF, 'F', g.layer, mb, v);
  if (shared_overlap_) compute(p, f.shared_up, 'F', g.layer, mb, v, "shared up");
  wait(p);
  compute(p, f.etp, 'F', g.layer, mb, v, "expert-TP collectives", 0, 0, f.etp);
  expert(p, f.experts, g.moe, 'F', g.layer, mb, v);
  ready(p, g.moe, kCombineF, 'F', g.layer, mb, v);
  if (shared_overlap_) compute(p, f.shared_down, 'F', g.layer, mb, v, "shared down");
  wait(p);
  if (!shared_overlap_) {
    compute(p, f.shared_up, 'F', g.layer, mb, v, "shared up");
    compute(p, f.shared_down, 'F', g.layer, mb, v, "shared down");
  }
  compute(p, f.post, 'F', g.layer, mb, v, "unpermute");
}

// The routed experts' weight gradients go where Megatron-Core computes them: with the input gradients,
// before the dispatch all-to-all that carries those (TE's grouped GEMM backward computes both), and the
// attention's after its input gradients. `defer_attention_w`: the attention's are left for the caller.
void ProgramBuilder::backward_block(Program& p, int b, int mb, int v, bool with_w,
                                    bool defer_attention_w) const {
  const BlockSegs& g = segs_[b];
  const PassSegs& k = g.pass[1];
  if (g.moe >= 0 && k.recompute_a2a) {  // full recompute: the forward's all-to-alls again
    ready(p, g.moe, kDispatchF, 'B', g.layer, mb, v);
    wait(p);
    ready(p, g.moe, kCombineF, 'B', g.layer, mb, v);
    wait(p);
  }
  if (g.moe < 0) {  // the MLP's gradients, then the attention's (or the mixer's)
    compute(p, k.post, 'B', g.layer, mb, v, "mlp");
    compute(p, k.pre, 'B', g.layer, mb, v, k.post > 0 ? "attention" : "block", k.tp, k.cp, k.etp);
    if (with_w) weight_block(p, b, mb, v);
    return;
  }
  compute(p, k.post, 'B', g.layer, mb, v, "unpermute");
  if (!shared_overlap_) {
    compute(p, k.shared_down, 'B', g.layer, mb, v, "shared down");
    compute(p, k.shared_up, 'B', g.layer, mb, v, "shared up");
  }
  ready(p, g.moe, kCombineB, 'B', g.layer, mb, v);
  if (shared_overlap_) compute(p, k.shared_down, 'B', g.layer, mb, v, "shared down");
  wait(p);
  compute(p, k.etp, 'B', g.layer, mb, v, "expert-TP collectives", 0, 0, k.etp);
  expert(p, k.experts, g.moe, 'B', g.layer, mb, v);
  if (with_w) mlp_weight(p, b, mb, v);
  ready(p, g.moe, kDispatchB, 'B', g.layer, mb, v);
  if (shared_overlap_) compute(p, k.shared_up, 'B', g.layer, mb, v, "shared up");
  wait(p);
  compute(p, k.pre, 'B', g.layer, mb, v, "attention+router", k.tp, k.cp);
  if (with_w && !defer_attention_w) attention_weight(p, b, mb, v);
}

// A block's weight gradients outside the routed and shared experts (attention, router, norms).
void ProgramBuilder::attention_weight(Program& p, int b, int mb, int v) const {
  const BlockSegs& g = segs_[b];
  const PassSegs& x = g.pass[2];
  compute(p, x.pre, 'W', g.layer, mb, v, "weight grads", x.tp, x.cp, x.etp);
}

// A block's expert weight gradients: shared experts, unpermute, routed experts.
void ProgramBuilder::mlp_weight(Program& p, int b, int mb, int v) const {
  const BlockSegs& g = segs_[b];
  const PassSegs& x = g.pass[2];
  compute(p, x.shared_up + x.shared_down + x.post, 'W', g.layer, mb, v, "expert weight grads");
  expert(p, x.experts, g.moe, 'W', g.layer, mb, v);
}

void ProgramBuilder::weight_block(Program& p, int b, int mb, int v) const {
  const BlockSegs& g = segs_[b];
  const PassSegs& x = g.pass[2];
  compute(p, x.pre + x.shared_up + x.shared_down + x.post, 'W', g.layer, mb, v, "weight grads", x.tp, x.cp,
          x.etp);
  if (g.moe >= 0) expert(p, x.experts, g.moe, 'W', g.layer, mb, v);
}

void ProgramBuilder::forward(Program& p, const ChunkStep& st, int v, bool io) const {
  const int mb = st.microbatch;
  const double* emb = w_.ranks.front().embedding_seconds;
  const double* head = w_.ranks.back().head_seconds;
  if (io && !first(v)) recv(p, 'F', st.chunk, mb, v);
  if (first(v)) compute(p, emb[0], 'F', -1, mb, v, "embedding");
  for (int b : stage_blocks_[v]) forward_block(p, b, mb, v);
  if (last(v)) compute(p, head[0], 'F', -1, mb, v, "head+loss");
  if (io && !last(v)) send(p, 'F', st.chunk, v + 1, mb);
}

void ProgramBuilder::backward(Program& p, const ChunkStep& st, int v, bool with_w, bool io,
                              int* deferred) const {
  const int mb = st.microbatch;
  const double* emb = w_.ranks.front().embedding_seconds;
  const double* head = w_.ranks.back().head_seconds;
  if (io && !last(v)) recv(p, 'B', st.chunk, mb, v);
  if (last(v)) {
    compute(p, head[1], 'B', -1, mb, v, "head");
    if (with_w) compute(p, head[2], 'W', -1, mb, v, "head weight grads");
  }
  const auto& blocks = stage_blocks_[v];
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) {
    // Delayed weight gradients: the chunk's last block leaves its attention's to the caller (after the
    // pipeline send), when that block is a MoE block.
    const bool defer = deferred != nullptr && std::next(it) == blocks.rend() && with_w && segs_[*it].moe >= 0;
    backward_block(p, *it, mb, v, with_w, defer);
    if (defer) *deferred = *it;
  }
  if (first(v)) {
    compute(p, emb[1], 'B', -1, mb, v, "embedding");
    if (with_w) compute(p, emb[2], 'W', -1, mb, v, "embedding weight grads");
  }
  if (io && !first(v)) send(p, 'B', st.chunk, v - 1, mb);
}

void ProgramBuilder::weight(Program& p, const ChunkStep& st, int v) const {
  const int mb = st.microbatch;
  if (last(v)) compute(p, w_.ranks.back().head_seconds[2], 'W', -1, mb, v, "head weight grads");
  const auto& blocks = stage_blocks_[v];
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) weight_block(p, *it, mb, v);
  if (first(v)) compute(p, w_.ranks.front().embedding_seconds[2], 'W', -1, mb, v, "embedding weight grads");
}

// DualPipe's overlapped F&B pair (DeepSeek-V3 report §3.2.1, Figure 4): the two chunks share the
// compute stream and take turns at their communication points. A chunk runs until it starts an
// all-to-all, then the other chunk runs until it starts one, and so on: each all-to-all is in flight
// while the other chunk computes (for two MoE blocks this is the report's four slots: B's combine
// under F's attention, F's dispatch under B's MLP, B's dispatch under F's MLP, F's combine under B's
// attention), and a chunk's dense blocks fill the other's all-to-alls. The chunk with less compute
// before its first all-to-all goes first.
void ProgramBuilder::pair(Program& p, const ChunkStep& fs, int vf, const ChunkStep& bs, int vb,
                          bool transfers) const {
  const bool with_w = bs.pass == ChunkPass::kBW;
  // Both inputs are received before the pair and both outputs sent after it (DualPipe, and Megatron-Core's
  // combined 1F1B, whose pipeline offsets between ranks leave room for it: interleaved warm-ups differ
  // by two chunks from one rank to the next).
  if (transfers && !first(vf)) recv(p, 'F', fs.chunk, fs.microbatch, vf);
  if (transfers && !last(vb)) recv(p, 'B', bs.chunk, bs.microbatch, vb);
  Program fa, fb;
  forward(fa, fs, vf, false);
  // Megatron-Core's delayed weight gradients defer the backward chunk's last attention weight gradients
  // past its pipeline send (TransformerLayerSchedulePlan.run, is_last_layer_in_bwd); every other weight
  // gradient keeps its place, the chunk's nodes running in order on one CUDA event.
  int deferred = -1;
  backward(fb, bs, vb, with_w, false, s_.parallelism.delay_wgrad ? &deferred : nullptr);
  const auto lead = [](const Program& x) {
    double t = 0;
    for (const Instr& i : x.ins) {
      if (i.op == Ins::kReady) return t;
      t += i.seconds;
    }
    return t;
  };
  const Program* cur = lead(fb) <= lead(fa) ? &fb : &fa;
  const Program* other = cur == &fb ? &fa : &fb;
  std::size_t ic = 0, io = 0, cc = 0, co = 0;  // next instruction and collective of cur / other
  // Computation issued while an all-to-all runs has the SMs its kernels leave for as long as it runs (its
  // TP, expert-TP and CP communication keeps its time): `busy` is how much longer the all-to-alls started
  // so far hold the communication stream, at their analytic prices (PassCost), each new one queued behind
  // the last; an instruction progresses at 1 / overlap_slowdown while busy lasts and at full rate after
  // it (models::overlap_stretch). Like the analytic engine's slots, which stretch a computation by the
  // whole all-to-all beside it, this counts no time the stream spends waiting.
  const double slow = w_.overlap_slowdown;
  double busy = 0;
  const auto price = [this](const Coll& c) {
    const models::PassCost& pc =
        w_.blocks[static_cast<std::size_t>(c.layer)].pass[c.kind >= kCombineB ? 1 : 0];
    return c.kind == kDispatchF || c.kind == kDispatchB ? pc.dispatch : pc.combine;
  };
  const auto emit = [&](Instr x) {
    if (busy > 0 && slow > 1.0 && (x.op == Ins::kCompute || x.op == Ins::kExpert)) {
      const double comm = x.tp + x.etp + x.cp, t = x.seconds - comm;
      if (t > 0) {
        const double stretched = t * models::overlap_stretch(slow, t, busy);
        busy = std::max(0.0, busy - stretched);
        x.seconds = comm + stretched;
      }
    }
    p.ins.push_back(x);
  };
  while (ic < cur->ins.size() || io < other->ins.size()) {
    // A chunk without all-to-alls (dense blocks only) hands over after each compute segment, so that
    // its blocks spread over the other chunk's all-to-alls instead of all hiding the first one.
    const bool dense = cur->colls.empty() && !other->colls.empty();
    while (ic < cur->ins.size()) {
      const Instr& x = cur->ins[ic++];
      emit(x);
      if (x.op == Ins::kReady) {
        p.colls.push_back(cur->colls[cc++]);
        busy += price(p.colls.back());
        break;
      }
      if (dense && x.op == Ins::kCompute && io < other->ins.size()) break;
    }
    std::swap(cur, other);
    std::swap(ic, io);
    std::swap(cc, co);
  }
  if (transfers && !last(vf)) send(p, 'F', fs.chunk, vf + 1, fs.microbatch);
  if (transfers && !first(vb)) send(p, 'B', bs.chunk, vb - 1, bs.microbatch);
  if (deferred >= 0) attention_weight(p, deferred, bs.microbatch, vb);
}

}  // namespace moesim::sim
