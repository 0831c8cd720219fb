#include "sim/step_sim.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <ostream>
#include <string_view>
#include <tuple>

#include <nlohmann/json.hpp>

#include "models/analytic.hpp"
#include "models/compute_cost.hpp"
#include "models/network.hpp"
#include "models/routing_source.hpp"
#include "models/schedule_order.hpp"
#include "scenarios/error.hpp"
#include "sim/netsim_internal.hpp"


namespace moesim::sim {
namespace {

using internal::Comm;
using internal::EngineState;
using internal::PartLink;
namespace sg4 = simgrid::s4u;
using models::ChunkPass;
using models::ChunkStep;

// ------------------------------------------------------------------------------------ block segments

// One pass of one block cut where the communication stream meets the compute stream. Seconds on the
// busiest GPU of the rank (the workload's prices); `experts` scales with each GPU's expert rows.
struct PassSegs {
  double pre = 0;          // everything before the dispatch (attention, router, permute); dense: all
  double shared_up = 0;    // shared experts' up-projection and activation (under the dispatch)
  double experts = 0;      // routed expert GEMMs and activation
  double shared_down = 0;  // shared experts' down-projection (under the combine)
  double post = 0;         // un-permute, combine weighting, residual
  double tp = 0, cp = 0;   // blocking TP collectives and exposed CP exchange, folded into pre/post
  bool recompute_a2a = false;  // full recompute repeats the forward dispatch and combine in backward
};

struct BlockSegs {
  int layer = 0;
  int moe = -1;  // MoE layer index, -1 for a dense block
  PassSegs pass[3];
};

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

BlockSegs segments_of(const models::Workload& w, int b) {
  const models::BlockCost& bc = w.blocks[static_cast<std::size_t>(b)];
  BlockSegs out;
  out.layer = bc.layer;
  out.moe = bc.moe_index;
  bool after_experts[3] = {false, false, false};
  for (const models::Op& op : models::block_ops(w, b)) {
    const int p = static_cast<int>(op.pass);
    PassSegs& ps = out.pass[p];
    const std::string_view name = op.name;
    if (op.kind == models::OpKind::kComm) {
      switch (op.comm) {
        case models::CommKind::kTensor:
        case models::CommKind::kExpertTensor:
          (after_experts[p] ? ps.post : ps.pre) += op.seconds;
          ps.tp += op.seconds;
          break;
        case models::CommKind::kExpertDispatch:
        case models::CommKind::kExpertCombine:
          if (name.find(".recompute") != std::string_view::npos) ps.recompute_a2a = true;
          break;
        default: break;  // CP: its exposed part is added below
      }
      continue;
    }
    if (out.moe >= 0 && starts_with(name, "moe.shared_down")) {
      ps.shared_down += op.seconds;
    } else if (out.moe >= 0 && starts_with(name, "moe.shared_")) {
      ps.shared_up += op.seconds;
    } else if (out.moe >= 0 && starts_with(name, "moe.expert_")) {
      ps.experts += op.seconds;
      after_experts[p] = true;
    } else if (out.moe >= 0 && (name == "moe.unpermute_combine" || name == "moe.residual")) {
      ps.post += op.seconds;
    } else {
      (after_experts[p] ? ps.post : ps.pre) += op.seconds;
    }
  }
  for (int p = 0; p < 3; ++p) {
    out.pass[p].cp = bc.pass[p].cp_exposed;
    out.pass[p].pre += bc.pass[p].cp_exposed;
  }
  return out;
}

// ------------------------------------------------------------------------------------------ programs

enum class Ins : std::uint8_t { kCompute, kExpert, kReady, kWait, kSend, kRecv, kTail };

// Collective kinds: which matrix and which bytes per copy.
enum CollKind { kDispatchF = 0, kCombineF = 1, kCombineB = 2, kDispatchB = 3 };
const char* coll_name(int k) {
  static const char* kNames[] = {"dispatch", "combine", "combine grad", "dispatch grad"};
  return kNames[k];
}

struct Instr {
  Ins op = Ins::kCompute;
  char pass = 'F';
  int moe = -1;     // kExpert: the layer whose per-GPU load scales it
  int layer = -1;   // block index (timeline)
  int mb = -1, stage = -1;
  double seconds = 0;  // kCompute, kExpert, kTail
  double tp = 0, cp = 0;
  int peer_rank = -1, key = 0;  // kSend: destination pipeline rank and message key; kRecv: key
  const char* what = "";        // segment label (timeline)
};

struct Coll {
  int moe = 0;
  int kind = kDispatchF;
  int layer = 0, mb = 0, stage = 0;
  char pass = 'F';
};

struct Program {
  std::vector<Instr> ins;
  std::vector<Coll> colls;  // in the order of the kReady instructions
};

// Builds the programs of every pipeline rank for m microbatches.
class ProgramBuilder {
 public:
  ProgramBuilder(const Scenario& s, const models::Workload& w) : s_(s), w_(w) {
    const auto& par = s.parallelism;
    pp_ = par.pp;
    vpp_ = par.schedule == Schedule::kInterleaved ? par.vpp : 1;
    stages_ = models::pipeline_stages(par.schedule, pp_, vpp_);
    // Blocks per stage: the workload's chunks (chunk ch on rank ch % pp, in order).
    const int chunks = par.pp * par.vpp;
    const std::vector<int> per_chunk = models::split_blocks(static_cast<int>(w.blocks.size()), chunks);
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

  int stages() const { return stages_; }
  double p2p_bytes() const { return p2p_bytes_; }

  // Pipeline rank and local chunk that compute stage v for chunk family c (DualPipe: direction).
  std::pair<int, int> locate(int c, int v) const {
    switch (s_.parallelism.schedule) {
      case Schedule::kInterleaved: return {v % pp_, v / pp_};
      case Schedule::kDualPipe: return {c == 0 ? v : pp_ - 1 - v, c};
      default: return {v, 0};
    }
  }

  Program build(int rank, int m) const {
    Program p;
    const auto order = models::schedule_order(s_.parallelism.schedule, pp_, vpp_, m, rank);
    std::vector<std::pair<int, int>> pending_w;  // (stage, mb) of deferred weight chunks, FIFO
    for (std::size_t i = 0; i < order.size(); ++i) {
      const ChunkStep& st = order[i];
      const int v = models::stage_of(s_.parallelism.schedule, pp_, vpp_, rank, st.chunk);
      if (st.pass == ChunkPass::kF && st.overlap_next && i + 1 < order.size()) {
        const ChunkStep& nb = order[i + 1];
        const int vb = models::stage_of(s_.parallelism.schedule, pp_, vpp_, rank, nb.chunk);
        pair(p, st, v, nb, vb);
        ++i;
        continue;
      }
      switch (st.pass) {
        case ChunkPass::kF: forward(p, st, v); break;
        case ChunkPass::kB: backward(p, st, v, false); break;
        case ChunkPass::kBW: backward(p, st, v, true); break;
        case ChunkPass::kW: weight(p, st, v); break;
      }
    }
    Instr t;
    t.op = Ins::kTail;
    t.seconds = tail_[rank];
    t.what = "dp sync + optimizer";
    t.pass = 'S';
    p.ins.push_back(t);
    return p;
  }

 private:
  // Message key of a pipeline transfer to one GPU: unique per (microbatch, direction, receiving chunk).
  int key(char kind, int chunk, int mb) const { return (mb * 2 + (kind == 'F' ? 0 : 1)) * (vpp_ + 2) + chunk; }

  static Instr instr(Ins op, char pass, int layer, int mb, int v, const char* what) {
    Instr x;
    x.op = op;
    x.pass = pass;
    x.layer = layer;
    x.mb = mb;
    x.stage = v;
    x.what = what;
    return x;
  }
  void compute(Program& p, double sec, char pass, int layer, int mb, int v, const char* what, double tp = 0,
               double cp = 0) const {
    if (!(sec > 0)) return;
    Instr x = instr(Ins::kCompute, pass, layer, mb, v, what);
    x.seconds = sec;
    x.tp = tp;
    x.cp = cp;
    p.ins.push_back(x);
  }
  void expert(Program& p, double sec, int moe, char pass, int layer, int mb, int v) const {
    if (!(sec > 0)) return;
    Instr x = instr(Ins::kExpert, pass, layer, mb, v, "experts");
    x.seconds = sec;
    x.moe = moe;
    p.ins.push_back(x);
  }
  void ready(Program& p, int moe, int kind, char pass, int layer, int mb, int v) const {
    p.ins.push_back(instr(Ins::kReady, pass, layer, mb, v, ""));
    p.colls.push_back(Coll{moe, kind, layer, mb, v, pass});
  }
  void wait(Program& p) const {
    Instr x;
    x.op = Ins::kWait;
    p.ins.push_back(x);
  }
  void recv(Program& p, char kind, int chunk, int mb, int v) const {
    Instr x = instr(Ins::kRecv, kind, -1, mb, v, kind == 'F' ? "recv activation" : "recv gradient");
    x.key = key(kind, chunk, mb);
    p.ins.push_back(x);
  }
  void send(Program& p, char kind, int c, int to_stage, int mb) const {
    const auto [rank, chunk] = locate(c, to_stage);
    Instr x;
    x.op = Ins::kSend;
    x.peer_rank = rank;
    x.key = key(kind, chunk, mb);
    x.mb = mb;
    x.seconds = p2p_bytes_;
    p.ins.push_back(x);
  }

  // Forward of one block (not paired).
  void forward_block(Program& p, int b, int mb, int v) const {
    const BlockSegs& g = segs_[b];
    const PassSegs& f = g.pass[0];
    compute(p, f.pre, 'F', g.layer, mb, v, g.moe >= 0 ? "attention+router" : "block", f.tp, f.cp);
    if (g.moe < 0) return;
    ready(p, g.moe, kDispatchF, 'F', g.layer, mb, v);
    compute(p, f.shared_up, 'F', g.layer, mb, v, "shared up");
    wait(p);
    expert(p, f.experts, g.moe, 'F', g.layer, mb, v);
    ready(p, g.moe, kCombineF, 'F', g.layer, mb, v);
    compute(p, f.shared_down, 'F', g.layer, mb, v, "shared down");
    wait(p);
    compute(p, f.post, 'F', g.layer, mb, v, "unpermute");
  }

  void backward_block(Program& p, int b, int mb, int v, bool with_w) const {
    const BlockSegs& g = segs_[b];
    const PassSegs& k = g.pass[1];
    if (g.moe >= 0 && k.recompute_a2a) {  // full recompute: the forward's all-to-alls again
      ready(p, g.moe, kDispatchF, 'B', g.layer, mb, v);
      wait(p);
      ready(p, g.moe, kCombineF, 'B', g.layer, mb, v);
      wait(p);
    }
    if (g.moe < 0) {
      compute(p, k.pre, 'B', g.layer, mb, v, "block", k.tp, k.cp);
    } else {
      compute(p, k.post, 'B', g.layer, mb, v, "unpermute");
      ready(p, g.moe, kCombineB, 'B', g.layer, mb, v);
      compute(p, k.shared_down, 'B', g.layer, mb, v, "shared down");
      wait(p);
      expert(p, k.experts, g.moe, 'B', g.layer, mb, v);
      ready(p, g.moe, kDispatchB, 'B', g.layer, mb, v);
      compute(p, k.shared_up, 'B', g.layer, mb, v, "shared up");
      wait(p);
      compute(p, k.pre, 'B', g.layer, mb, v, "attention+router", k.tp, k.cp);
    }
    if (with_w) weight_block(p, b, mb, v);
  }

  void weight_block(Program& p, int b, int mb, int v) const {
    const BlockSegs& g = segs_[b];
    const PassSegs& x = g.pass[2];
    compute(p, x.pre + x.shared_up + x.shared_down + x.post, 'W', g.layer, mb, v, "weight grads", x.tp, x.cp);
    if (g.moe >= 0) expert(p, x.experts, g.moe, 'W', g.layer, mb, v);
  }

  bool first(int v) const { return v == 0; }
  bool last(int v) const { return v == stages_ - 1; }
  const double* emb() const { return w_.ranks.front().embedding_seconds; }
  const double* head() const { return w_.ranks.back().head_seconds; }

  void forward(Program& p, const ChunkStep& st, int v, bool io = true) const {
    const int mb = st.microbatch;
    if (io && !first(v)) recv(p, 'F', st.chunk, mb, v);
    if (first(v)) compute(p, emb()[0], 'F', -1, mb, v, "embedding");
    for (int b : stage_blocks_[v]) forward_block(p, b, mb, v);
    if (last(v)) compute(p, head()[0], 'F', -1, mb, v, "head+loss");
    if (io && !last(v)) send(p, 'F', st.chunk, v + 1, mb);
  }

  void backward(Program& p, const ChunkStep& st, int v, bool with_w, bool io = true) const {
    const int mb = st.microbatch;
    if (io && !last(v)) recv(p, 'B', st.chunk, mb, v);
    if (last(v)) {
      compute(p, head()[1], 'B', -1, mb, v, "head");
      if (with_w) compute(p, head()[2], 'W', -1, mb, v, "head weight grads");
    }
    const auto& blocks = stage_blocks_[v];
    for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) backward_block(p, *it, mb, v, with_w);
    if (first(v)) {
      compute(p, emb()[1], 'B', -1, mb, v, "embedding");
      if (with_w) compute(p, emb()[2], 'W', -1, mb, v, "embedding weight grads");
    }
    if (io && !first(v)) send(p, 'B', st.chunk, v - 1, mb);
  }

  void weight(Program& p, const ChunkStep& st, int v) const {
    const int mb = st.microbatch;
    if (last(v)) compute(p, head()[2], 'W', -1, mb, v, "head weight grads");
    const auto& blocks = stage_blocks_[v];
    for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) weight_block(p, *it, mb, v);
    if (first(v)) compute(p, emb()[2], 'W', -1, mb, v, "embedding weight grads");
  }

  // DualPipe's overlapped F&B pair (DeepSeek-V3 report §3.2.1, Figure 4): the two chunks share the
  // compute stream and take turns at their communication points. A chunk runs until it starts an
  // all-to-all, then the other chunk runs until it starts one, and so on: each all-to-all is in flight
  // while the other chunk computes (for two MoE blocks this is the report's four slots: B's combine
  // under F's attention, F's dispatch under B's MLP, B's dispatch under F's MLP, F's combine under B's
  // attention), and a chunk's dense blocks fill the other's all-to-alls. The chunk with less compute
  // before its first all-to-all goes first.
  void pair(Program& p, const ChunkStep& fs, int vf, const ChunkStep& bs, int vb) const {
    const bool with_w = bs.pass == ChunkPass::kBW;
    if (!first(vf)) recv(p, 'F', fs.chunk, fs.microbatch, vf);
    if (!last(vb)) recv(p, 'B', bs.chunk, bs.microbatch, vb);
    Program fa, fb;
    forward(fa, fs, vf, false);
    backward(fb, bs, vb, with_w, false);
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
    while (ic < cur->ins.size() || io < other->ins.size()) {
      // A chunk without all-to-alls (dense blocks only) hands over after each compute segment, so that
      // its blocks spread over the other chunk's all-to-alls instead of all hiding the first one.
      const bool dense = cur->colls.empty() && !other->colls.empty();
      while (ic < cur->ins.size()) {
        const Instr& x = cur->ins[ic++];
        p.ins.push_back(x);
        if (x.op == Ins::kReady) {
          p.colls.push_back(cur->colls[cc++]);
          break;
        }
        if (dense && x.op == Ins::kCompute && io < other->ins.size()) break;
      }
      std::swap(cur, other);
      std::swap(ic, io);
      std::swap(cc, co);
    }
    if (!last(vf)) send(p, 'F', fs.chunk, vf + 1, fs.microbatch);
    if (!first(vb)) send(p, 'B', bs.chunk, vb - 1, bs.microbatch);
  }

  const Scenario& s_;
  const models::Workload& w_;
  int pp_ = 1, vpp_ = 1, stages_ = 1;
  std::vector<std::vector<int>> stage_blocks_;
  std::vector<BlockSegs> segs_;
  std::vector<double> tail_;
  double p2p_bytes_ = 0;
};

// ------------------------------------------------------------------------------------------ the run

// One compute actor: the GPUs of an EP group whose expert loads are identical in every MoE layer run the
// same program with the same durations, and the all-to-all is a barrier over the group, so they reach
// every synchronisation point at the same time: one actor stands for all of them (exact). Each member
// still sends and receives its own pipeline flows.
struct GpuState {
  int gpu = 0;   // global id of the first member
  int rank = 0, group = 0, ep_index = 0;  // ep_index of the first member
  std::vector<int> members;               // EP indices of the GPUs this actor stands for
  bool traced = false;
  sg4::SemaphorePtr ready, done;
  double busy = 0, tp = 0, cp = 0, wait_comm = 0, wait_p2p = 0, tail = 0, finish = -1;
  long long segments = 0;
};

// A pipeline transfer to one GPU: its legs each release `arrived` once done (once in all when it has none).
struct Message {
  sg4::SemaphorePtr arrived;  // released once per leg when it is posted (once in all when it has none)
  int legs = 0;
  std::vector<const internal::Comm*> leg;
  std::vector<sg4::CommPtr> comms;
  std::vector<double> posted;
};

struct LinkAcc {
  double bytes = 0, busy = 0, lo = 0, hi = -1;
  void add(double b, double a, double z) {
    bytes += b;
    if (hi < lo || a > hi) {
      if (hi >= lo) busy += hi - lo;
      lo = a;
      hi = z;
    } else {
      hi = std::max(hi, z);
    }
  }
  double total() const { return busy + (hi >= lo ? hi - lo : 0.0); }
};

class Runner {
 public:
  Runner(const Scenario& s, const models::Workload& w, const StepOptions& o, EngineState& st, bool agg, bool pool,
         bool one_plane)
      : s_(s), w_(w), o_(o), st_(st), agg_(agg), pool_(pool), one_plane_(one_plane), builder_(s, w) {
    gpn_ = std::max(1, s.cluster.gpus_per_node);
    const auto& par = s.parallelism;
    stage_gpus_ = s.layout.stage_gpus;
    span_ = std::max(1, par.ep) * par.etp;
    ep_ = std::max(1, par.ep);
    groups_per_stage_ = std::max(1, stage_gpus_ / span_);
    groups_ = o.groups == DesGroups::kAll ? groups_per_stage_ : 1;
    links_ = agg ? &st.agg->links : &st.gpu->links;
    if (st.gpu)
      actor_host_ = st.gpu->hosts.front();
    else
      for (auto* h : st.agg->class_hosts)
        if (h != nullptr && actor_host_ == nullptr) actor_host_ = h;
    if (actor_host_ == nullptr)
      for (auto* h : st.agg->gpu_hosts)
        if (h != nullptr && actor_host_ == nullptr) actor_host_ = h;
  }

  int gpu_of(int rank, int group, int a) const { return rank * stage_gpus_ + group * span_ + a * s_.parallelism.etp; }
  int simulated_gpus() const { return s_.parallelism.pp * groups_ * ep_; }
  int groups() const { return groups_; }

  // The folded communications of one all-to-all of pipeline rank `rank`, group `g` (cached).
  const std::vector<Comm>& collective(int rank, int g, int moe, int kind) {
    const auto k = std::make_tuple(moe, kind, rank, g);
    auto it = coll_cache_.find(k);
    if (it != coll_cache_.end()) return it->second;
    const models::MoeLayerDetail& d = w_.moe_detail[static_cast<std::size_t>(moe)];
    const double scale = kind == kDispatchF ? 1.0 : w_.bf16_copy_bytes / w_.dispatch_copy_bytes;
    const bool transpose = kind == kCombineF || kind == kDispatchB;
    std::vector<FlowSpec> fl;
    for (int x = 0; x < ep_; ++x)
      for (int y = 0; y < ep_; ++y) {
        const double b = d.wire_bytes[static_cast<std::size_t>(x) * ep_ + y] * scale;
        if (b <= 0 || x == y) continue;
        const int src = gpu_of(rank, g, transpose ? y : x), dst = gpu_of(rank, g, transpose ? x : y);
        // One plane stands for all when every plane carries the same traffic (planes share no link).
        if (one_plane_ && src / gpn_ != dst / gpn_ && st_.topo->plane_of(src) != 0) continue;
        fl.push_back(FlowSpec{src, dst, b, 0});
      }
    return coll_cache_.emplace(k, internal::fold_flows(st_, fl, agg_, nullptr, pool_)).first->second;
  }

  const std::vector<Comm>& p2p(int src, int dst) {
    auto it = p2p_cache_.find({src, dst});
    if (it != p2p_cache_.end()) return it->second;
    std::vector<FlowSpec> f{FlowSpec{src, dst, builder_.p2p_bytes(), 0}};
    return p2p_cache_.emplace(std::make_pair(src, dst), internal::fold_flows(st_, f, agg_, nullptr, pool_)).first->second;
  }

  // Lower bound of the first forward dispatch (busiest directed link), to scale surf/precision.
  double expected_collective() {
    if (w_.moe_detail.empty() || ep_ < 2) return 0;
    int moe0 = -1;
    for (const auto& b : w_.blocks)
      if (b.moe_index >= 0) {
        moe0 = b.moe_index;
        break;
      }
    int rank0 = 0;
    for (int r = 0; r < s_.parallelism.pp; ++r)
      for (int b : w_.ranks[r].blocks)
        if (w_.blocks[b].moe_index == moe0) rank0 = r;
    return internal::lower_bound_duration(*links_, collective(rank0, 0, moe0, kDispatchF));
  }

  struct Outcome {
    double makespan = 0;
    int critical = 0;  // index into gpus
    std::vector<GpuState> gpus;
  };

  Outcome run(int m, bool record) {
    const auto& par = s_.parallelism;
    std::vector<Program> programs;
    for (int r = 0; r < par.pp; ++r) programs.push_back(builder_.build(r, m));
    gpus_.clear();
    class_of_.assign(static_cast<std::size_t>(par.pp * groups_ * ep_), -1);
    for (int r = 0; r < par.pp; ++r)
      for (int g = 0; g < groups_; ++g)
        for (int a = 0; a < ep_; ++a) {
          if (class_of_[index(r, g, a)] >= 0) continue;
          GpuState x;
          x.gpu = gpu_of(r, g, a);
          x.rank = r;
          x.group = g;
          x.ep_index = a;
          x.ready = sg4::Semaphore::create(0);
          x.done = sg4::Semaphore::create(0);
          const int ci = static_cast<int>(gpus_.size());
          for (int b = a; b < ep_; ++b)
            if (class_of_[index(r, g, b)] < 0 && same_loads(a, b)) {
              class_of_[index(r, g, b)] = ci;
              x.members.push_back(b);
            }
          gpus_.push_back(std::move(x));
        }
    // Traced actors: the first of group 0 on every rank, then the others.
    const int limit = o_.timeline_gpus < 0 ? static_cast<int>(gpus_.size()) : o_.timeline_gpus;
    int traced = 0;
    for (int a = 0; a < ep_ && traced < limit; ++a)
      for (int r = 0; r < par.pp && traced < limit; ++r) {
        GpuState& x = gpus_[class_of_[index(r, 0, a)]];
        if (x.traced || x.ep_index != a) continue;
        x.traced = record;
        ++traced;
      }
    inbox_.clear();
    timeline_.clear();
    link_acc_.assign(2 * links_->size(), LinkAcc{});
    t0_ = sg4::Engine::get_clock();
    programs_ = &programs;

    groups_state_.assign(static_cast<std::size_t>(par.pp * groups_), Group{});
    sinks_.clear();
    posters_.clear();
    // Every sink exists, with its mailbox's permanent receiver set, before the first message: a sink
    // created on demand from an actor would let other actors post to its mailbox before the receiver
    // is set, and those transfers would wait for a rendez-vous instead of starting at once.
    for (int r = 0; r < par.pp; ++r)
      for (int g = 0; g < groups_; ++g) {
        for (const Coll& c : programs[r].colls)
          for (const Comm& leg : collective(r, g, c.moe, c.kind)) sink(leg.dst);
        for (const Instr& x : programs[r].ins)
          if (x.op == Ins::kSend)
            for (int a = 0; a < ep_; ++a)
              for (const Comm& leg : p2p(gpu_of(r, g, a), gpu_of(x.peer_rank, g, a))) {
                sink(leg.dst);
                auto [it, fresh] = posters_.try_emplace(leg.src);
                if (fresh) {
                  it->second.go = sg4::Semaphore::create(0);
                  Poster* pp = &it->second;
                  sg4::ActorPtr actor = sg4::Actor::create("post", leg.src, [this, pp] { poster(*pp); });
                  actor->daemonize();
                }
              }
      }
    for (int r = 0; r < par.pp; ++r)
      for (int g = 0; g < groups_; ++g) {
        if (!programs[r].colls.empty()) {
          groups_state_[static_cast<std::size_t>(r * groups_ + g)].finished = sg4::Semaphore::create(0);
          sg4::Actor::create("comm-r" + std::to_string(r) + "g" + std::to_string(g), actor_host_,
                             [this, r, g] { comm_stream(r, g); });
        }
        for (int a = 0; a < ep_; ++a) {
          const int gi = class_of_[index(r, g, a)];
          if (gpus_[gi].ep_index != a) continue;
          sg4::Actor::create("gpu" + std::to_string(gpus_[gi].gpu), actor_host_, [this, gi] { compute_stream(gi); });
        }
      }
    st_.engine->run();
    Outcome out;
    for (std::size_t i = 0; i < gpus_.size(); ++i) {
      if (gpus_[i].finish < 0)
        throw Error("simulate_step: GPU " + std::to_string(gpus_[i].gpu) +
                    " did not finish its program (the schedule's dependencies deadlocked)");
      if (gpus_[i].finish > out.makespan) {
        out.makespan = gpus_[i].finish;
        out.critical = static_cast<int>(i);
      }
    }
    out.gpus = gpus_;
    programs_ = nullptr;
    return out;
  }

  std::vector<TimelineEvent> take_timeline() { return std::move(timeline_); }

  std::vector<LinkUsage> link_usage(double makespan) const {
    std::vector<LinkUsage> out;
    for (std::size_t d = 0; d < link_acc_.size(); ++d) {
      const LinkAcc& a = link_acc_[d];
      if (a.bytes <= 0) continue;
      const PartLink& l = (*links_)[d / 2];
      LinkUsage u;
      u.name = d % 2 == 0 ? l.from + ">" + l.to : l.to + ">" + l.from;
      u.kind = l.kind;
      u.bandwidth = l.bandwidth;
      u.bytes = a.bytes;
      u.busy_time = a.total();
      u.busy_fraction = makespan > 0 ? u.busy_time / makespan : 0;
      u.utilisation = makespan > 0 ? a.bytes / (l.bandwidth * makespan) : 0;
      out.push_back(std::move(u));
    }
    return out;
  }

  long long collectives = 0, flows = 0;

 private:
  int index(int r, int g, int a) const { return (r * groups_ + g) * ep_ + a; }

  void event(const GpuState& g, int stream, std::string name, double a, double z, int mb, int stage) {
    timeline_.push_back(TimelineEvent{g.gpu, stream, std::move(name), a - t0_, z - t0_, mb, stage});
  }

  static std::string label(const Instr& x) {
    std::string n(1, x.pass);
    if (x.layer >= 0) n += " L" + std::to_string(x.layer);
    n += " ";
    n += x.what;
    return n;
  }

  void compute_stream(int gi) {
    GpuState& me = gpus_[gi];
    const Program& prog = (*programs_)[me.rank];
    for (const Instr& x : prog.ins) {
      switch (x.op) {
        case Ins::kCompute:
        case Ins::kExpert:
        case Ins::kTail: {
          double sec = x.seconds;
          if (x.op == Ins::kExpert) sec *= w_.moe_detail[static_cast<std::size_t>(x.moe)].rank_load[me.ep_index];
          if (!(sec > 0)) break;
          const double a = sg4::Engine::get_clock();
          sg4::this_actor::sleep_for(sec);
          if (x.op == Ins::kTail) {
            me.tail += sec;
          } else {
            me.busy += sec;
            me.tp += x.tp;
            me.cp += x.cp;
            ++me.segments;
          }
          if (me.traced) event(me, 0, label(x), a, sg4::Engine::get_clock(), x.mb, x.stage);
          break;
        }
        case Ins::kReady: me.ready->release(); break;
        case Ins::kWait: {
          const double a = sg4::Engine::get_clock();
          me.done->acquire();
          me.wait_comm += sg4::Engine::get_clock() - a;
          break;
        }
        case Ins::kSend: {
          for (int member : me.members) {
            const int src = gpu_of(me.rank, me.group, member), dst = gpu_of(x.peer_rank, me.group, member);
            Message& msg = slot(dst, x.key);
            const std::vector<Comm>& legs = p2p(src, dst);
            msg.legs = static_cast<int>(legs.size());
            if (legs.empty()) msg.arrived->release();
            for (const Comm& c : legs) {
              // The poster actor of the source host sends the leg to the sink on the destination host.
              Poster& po = posters_.at(c.src);
              po.jobs.push_back({&c, &msg});
              po.go->release();
              ++flows;
            }
          }
          break;
        }
        case Ins::kRecv: {
          const double a = sg4::Engine::get_clock();
          double arrival = a;
          for (int member : me.members) {
            const int dst = gpu_of(me.rank, me.group, member);
            Message& msg = slot(dst, x.key);
            msg.arrived->acquire();
            for (int k = 1; k < msg.legs; ++k) msg.arrived->acquire();
            for (std::size_t k = 0; k < msg.comms.size(); ++k) {
              msg.comms[k]->wait();
              const double fin = msg.comms[k]->get_finish_time();
              const internal::Comm& leg = *msg.leg[k];
              for (const auto& h : leg.route) link_acc_[h.directed()].add(leg.bytes, msg.posted[k], fin);
              arrival = std::max(arrival, fin + leg.latency);
            }
            inbox_.erase({dst, x.key});
          }
          const double now = sg4::Engine::get_clock();
          if (arrival > now) sg4::this_actor::sleep_for(arrival - now);
          me.wait_p2p += sg4::Engine::get_clock() - a;
          if (me.traced && sg4::Engine::get_clock() > a)
            event(me, 2, x.pass == 'F' ? "recv activation" : "recv gradient", a, sg4::Engine::get_clock(), x.mb,
                  x.stage);
          break;
        }
      }
    }
    me.finish = sg4::Engine::get_clock() - t0_;
  }

  Message& slot(int gpu, int key) {
    auto [it, fresh] = inbox_.try_emplace(std::make_pair(gpu, key));
    if (fresh) it->second.arrived = sg4::Semaphore::create(0);
    return it->second;
  }

  // True when EP ranks a and b compute the same rows in every MoE layer.
  bool same_loads(int a, int b) const {
    for (const auto& d : w_.moe_detail)
      if (d.rank_load[static_cast<std::size_t>(a)] != d.rank_load[static_cast<std::size_t>(b)]) return false;
    return true;
  }

  void comm_stream(int r, int g) {
    const Program& prog = (*programs_)[r];
    std::vector<int> members;  // compute actors of the group
    for (int a = 0; a < ep_; ++a) {
      const int ci = class_of_[index(r, g, a)];
      if (gpus_[ci].ep_index == a) members.push_back(ci);
    }
    for (const Coll& c : prog.colls) {
      for (int gi : members) gpus_[gi].ready->acquire();
      const std::vector<Comm>& legs = collective(r, g, c.moe, c.kind);
      const double a = sg4::Engine::get_clock();
      double lat = 0;
      for (const Comm& leg : legs) lat = std::max(lat, leg.latency);
      // The legs are started by sender actors on their source hosts as mailbox messages to a sink
      // actor on the destination host (a permanent receiver, so each transfer starts at once). SimGrid
      // 3.32 keeps host-to-host communications (Comm::sendto) in one list that it scans at every
      // completion (72% of a 256-GPU run); actor-to-actor messages are not in it.
      Group& grp = groups_state_[static_cast<std::size_t>(r * groups_ + g)];
      grp.legs = &legs;
      grp.acts.assign(legs.size(), nullptr);
      const std::vector<std::pair<sg4::Host*, std::vector<int>>>& parts = parts_of(legs);
      for (const auto& [host, idx] : parts) {
        auto [it, fresh] = grp.senders.try_emplace(host);
        if (fresh) {
          Sender& snd = it->second;
          snd.go = sg4::Semaphore::create(0);
          Sender* sp = &snd;
          Group* gp = &grp;
          sg4::ActorPtr actor = sg4::Actor::create("send", host, [this, sp, gp] { sender(*gp, *sp); });
          actor->daemonize();
        }
        it->second.idx = &idx;
        it->second.go->release();
      }
      for (std::size_t k = 0; k < parts.size(); ++k) grp.finished->acquire();
      for (std::size_t i = 0; i < legs.size(); ++i)
        for (const auto& h : legs[i].route) link_acc_[h.directed()].add(legs[i].bytes, a, grp.acts[i]->get_finish_time());
      grp.acts.clear();
      if (lat > 0) sg4::this_actor::sleep_for(lat);
      ++collectives;
      flows += static_cast<long long>(legs.size());
      const double z = sg4::Engine::get_clock();
      for (int gi : members) {
        if (gpus_[gi].traced)
          event(gpus_[gi], 1, std::string(1, c.pass) + " L" + std::to_string(c.layer) + " " + coll_name(c.kind), a, z,
                c.mb, c.stage);
        gpus_[gi].done->release();
      }
    }
  }

  struct Sender {
    sg4::SemaphorePtr go;
    const std::vector<int>* idx = nullptr;  // legs of the current collective this sender starts
  };
  struct Group {
    std::map<sg4::Host*, Sender> senders;  // by source host (node-based map: stable addresses)
    sg4::SemaphorePtr finished;
    const std::vector<Comm>* legs = nullptr;
    std::vector<sg4::CommPtr> acts;
  };

  // Pipeline transfers leave from a daemon per source host (one actor per host rather than one per
  // transfer): it posts each leg to the destination's sink and hands the communication to the receiver.
  struct Poster {
    sg4::SemaphorePtr go;
    std::deque<std::pair<const Comm*, Message*>> jobs;
  };
  std::map<sg4::Host*, Poster> posters_;

  void poster(Poster& me) {
    static int token = 0;
    for (;;) {
      me.go->acquire();
      auto [leg, msg] = me.jobs.front();
      me.jobs.pop_front();
      msg->comms.push_back(sink(leg->dst)->put_async(&token, static_cast<std::uint64_t>(std::llround(leg->bytes))));
      msg->leg.push_back(leg);
      msg->posted.push_back(sg4::Engine::get_clock());
      msg->arrived->release();
    }
  }

  // The mailbox of the sink actor on `host`, created on first use in this run.
  sg4::Mailbox* sink(sg4::Host* host) {
    auto it = sinks_.find(host);
    if (it != sinks_.end()) return it->second;
    // Registered before the actor is created: creating an actor yields to the others, which may ask for
    // the same sink meanwhile.
    sg4::Mailbox* mb = sg4::Mailbox::by_name("sink:" + host->get_name());
    sinks_.emplace(host, mb);
    sg4::ActorPtr a = sg4::Actor::create("sink", host, [mb] {
      for (;;) mb->get<int>();
    });
    a->daemonize();
    mb->set_receiver(a);
    return mb;
  }

  // A daemon: each time it is woken, starts its legs of the group's current collective and waits for them.
  void sender(Group& grp, Sender& me) {
    static int token = 0;
    std::vector<sg4::CommPtr> mine;
    for (;;) {
      me.go->acquire();
      const std::vector<Comm>& legs = *grp.legs;
      mine.clear();
      for (int i : *me.idx) {
        sg4::CommPtr act = sink(legs[i].dst)->put_async(&token, static_cast<std::uint64_t>(std::llround(legs[i].bytes)));
        grp.acts[i] = act;
        mine.push_back(act);
      }
      if (!mine.empty()) sg4::Comm::wait_all(mine);
      grp.finished->release();
    }
  }

  // Legs of a folded collective grouped by source host (cached with the collective).
  const std::vector<std::pair<sg4::Host*, std::vector<int>>>& parts_of(const std::vector<Comm>& legs) {
    auto [it, fresh] = parts_cache_.try_emplace(&legs);
    if (fresh) {
      std::map<sg4::Host*, std::vector<int>> by;
      for (std::size_t i = 0; i < legs.size(); ++i) by[legs[i].src].push_back(static_cast<int>(i));
      // Deterministic order: by the first leg of each host.
      std::vector<std::pair<sg4::Host*, std::vector<int>>> v(by.begin(), by.end());
      std::sort(v.begin(), v.end(), [](const auto& x, const auto& y) { return x.second.front() < y.second.front(); });
      it->second = std::move(v);
    }
    return it->second;
  }

  std::map<sg4::Host*, sg4::Mailbox*> sinks_;
  std::map<const std::vector<Comm>*, std::vector<std::pair<sg4::Host*, std::vector<int>>>> parts_cache_;
  std::vector<Group> groups_state_;

  const Scenario& s_;
  const models::Workload& w_;
  const StepOptions& o_;
  EngineState& st_;
  bool agg_;
  bool pool_;
  bool one_plane_;
  int gpn_ = 1;
  ProgramBuilder builder_;
  int stage_gpus_ = 1, span_ = 1, ep_ = 1, groups_per_stage_ = 1, groups_ = 1;
  const std::vector<PartLink>* links_ = nullptr;
  sg4::Host* actor_host_ = nullptr;
  std::map<std::tuple<int, int, int, int>, std::vector<Comm>> coll_cache_;
  std::map<std::pair<int, int>, std::vector<Comm>> p2p_cache_;
  std::vector<GpuState> gpus_;
  std::map<std::pair<int, int>, Message> inbox_;  // (destination GPU, key)
  std::vector<int> class_of_;                     // (rank, group, EP index) → compute actor
  std::vector<TimelineEvent> timeline_;
  std::vector<LinkAcc> link_acc_;
  const std::vector<Program>* programs_ = nullptr;
  double t0_ = 0;
};

// True when pooling NVLink per domain (and folding fabric flows per node pair, which pooling implies)
// changes nothing: every NVLink domain holds the simulated GPUs of one EP group of one pipeline rank only
// (so no two collectives and no pipeline transfer share it), and in every MoE layer's all-to-all the GPUs
// of a domain send and receive equal bytes, both inside the domain and across the fabric (the combine
// and the backward all-to-alls are scaled transposes of the dispatch, so checking the dispatch covers
// them; pipeline transfers are equal for every GPU).
bool balanced_nvlink(const Scenario& s, const models::Workload& w, int groups) {
  if (s.cluster.scale_up.kind == ScaleUpKind::kNone || w.moe_detail.empty()) return false;
  const auto& par = s.parallelism;
  const int ep = std::max(1, par.ep), etp = par.etp, stage_gpus = s.layout.stage_gpus, span = ep * etp;
  const int domain = std::max(1, s.cluster.scale_up.domain_gpus);
  std::map<int, int> owner;  // domain → rank · groups + group
  for (int r = 0; r < par.pp; ++r)
    for (int g = 0; g < groups; ++g)
      for (int a = 0; a < ep; ++a) {
        const int dom = (r * stage_gpus + g * span + a * etp) / domain;
        const auto [it, fresh] = owner.try_emplace(dom, r * groups + g);
        if (!fresh && it->second != r * groups + g) return false;
      }
  // Per GPU: bytes to and from its own domain (NVLink) and to and from other domains (the fabric, which
  // pooling also folds per node pair: exact when the GPUs of a node load their NICs equally).
  const auto same = [](double a, double b) { return std::abs(a - b) <= 1e-9 * std::max({1.0, a, b}); };
  for (const auto& d : w.moe_detail) {
    std::vector<std::array<double, 4>> load(static_cast<std::size_t>(ep), {0, 0, 0, 0});  // nvl out, in; fabric out, in
    for (int x = 0; x < ep; ++x)
      for (int y = 0; y < ep; ++y) {
        if (x == y) continue;
        const double b = d.wire_bytes[static_cast<std::size_t>(x) * ep + y];
        const int k = (x * etp) / domain == (y * etp) / domain ? 0 : 2;
        load[x][k] += b;
        load[y][k + 1] += b;
      }
    for (int x = 0; x < ep; ++x) {
      const int first = ((x * etp) / domain) * domain / etp;  // first EP rank of x's domain
      for (int k = 0; k < 4; ++k)
        if (!same(load[x][k], load[first][k])) return false;
    }
  }
  return true;
}

// True when one fabric plane can stand for all: a rail-optimised fabric with one plane per GPU of a node
// (planes share no link), every fabric leg of every all-to-all stays in its plane (the sender's and the
// receiver's local index are equal: DeepEP-style hierarchical dispatch), and for every pair of nodes each
// plane carries the same bytes. Then every plane's flows meet the same contention as plane 0's, and the
// collectives end when plane 0's do. Pipeline transfers stay simulated on every plane.
bool symmetric_planes(const Scenario& s, const models::Workload& w) {
  const auto& c = s.cluster;
  const auto& par = s.parallelism;
  const int gpn = c.gpus_per_node, ep = std::max(1, par.ep);
  if (c.scale_out.kind != TopologyKind::kRailOptimized || c.scale_out.planes != gpn || gpn < 2 || par.etp != 1 ||
      w.moe_detail.empty() || (ep * par.etp) % gpn != 0)
    return false;
  const auto same = [](double a, double b) { return std::abs(a - b) <= 1e-9 * std::max({1.0, a, b}); };
  for (const auto& d : w.moe_detail) {
    std::map<std::pair<int, int>, double> first;  // (node a, node b) → plane 0's bytes
    for (int x = 0; x < ep; ++x)
      for (int y = 0; y < ep; ++y) {
        const double b = d.wire_bytes[static_cast<std::size_t>(x) * ep + y];
        if (x == y || x / gpn == y / gpn) continue;
        if (x % gpn != y % gpn) {
          if (b > 0) return false;
          continue;
        }
        const auto [it, fresh] = first.try_emplace({x / gpn, y / gpn}, b);
        if (!fresh && !same(it->second, b)) return false;
      }
  }
  return true;
}

void check(const StepOptions& o) {
  if (o.microbatches < 0)
    throw ConfigError("des options: microbatches: expected 0 (auto) or a positive count, found " +
                      std::to_string(o.microbatches));
  if (!(o.precision_fraction > 0) || o.precision_fraction > 0.1)
    throw ConfigError("des options: precision: expected a fraction in (0, 0.1], found " +
                      std::to_string(o.precision_fraction));
}

std::string fidelity_text(const StepOptions& o, bool agg, bool pool, bool one_plane, int planes, int groups,
                          int groups_per_stage, int m, const std::vector<int>& sim_m) {
  std::string f = groups == groups_per_stage
                      ? "every EP group of every stage"
                      : "one representative EP group per pipeline rank (of " + std::to_string(groups_per_stage) + ")";
  f += agg ? "; fabric flows aggregated per node pair and plane" : "; one flow per GPU pair";
  if (pool) f += "; NVLink traffic pooled per domain";
  if (pool && o.aggregation == Aggregation::kAuto) f += " (balanced in every all-to-all: exact)";
  if (one_plane)
    f += "; all-to-alls on fabric plane 0 of " + std::to_string(planes) +
         " only (every plane carries the same traffic: exact; link usage covers plane 0)";
  if (sim_m.size() == 1) {
    f += "; all " + std::to_string(m) + " microbatches";
  } else {
    f += "; " + std::to_string(sim_m[0]) + " and " + std::to_string(sim_m[1]) + " microbatches simulated, " +
         std::to_string(m) + " extrapolated linearly";
  }
  return f;
}

}  // namespace

StepOptions step_options(const EngineSpec& e) {
  StepOptions o;
  o.groups = e.groups;
  o.aggregation = e.aggregation;
  o.microbatches = e.microbatches;
  o.precision_fraction = e.precision;
  o.timeline_gpus = e.timeline_gpus;
  return o;
}

StepSimResult simulate_step(const Scenario& s, const StepOptions& o, const models::RoutingInput* routing) {
  check(o);
  const auto& par = s.parallelism;
  const int m = s.layout.microbatches;
  const int vpp = par.schedule == Schedule::kInterleaved ? par.vpp : 1;
  models::check_schedule_order_args(par.schedule, par.pp, vpp, m);

  auto cm = models::make_compute_cost_model(s);
  const models::NetworkModel net(s.cluster);
  models::RoutingInput in;
  if (routing == nullptr) {
    in = models::routing_input(s);
    if (!in.samples.empty() || !in.slot_maps.empty()) routing = &in;
  }
  const models::Workload w = models::build_workload(s, *cm, net, routing, true);

  SimOptions so;
  bool agg = o.aggregation == Aggregation::kNodePair || o.aggregation == Aggregation::kNode;
  bool pool = o.aggregation == Aggregation::kNode;
  so.aggregate_node_pairs = agg;
  so.precision_fraction = o.precision_fraction;
  {  // The platform holds only the simulated GPUs.
    const Layout& L = s.layout;
    const int groups = o.groups == DesGroups::kAll ? L.ep_groups : 1;
    for (int r = 0; r < L.pp; ++r)
      for (int g = 0; g < groups; ++g)
        for (int a = 0; a < L.ep; ++a) so.gpus.push_back(L.ep_gpu(r, g, a));
  }
  // auto: NVLink pooled per domain when that changes nothing (every GPU of every domain sends and
  // receives the same NVLink bytes in every all-to-all); otherwise per GPU pair while the simulated GPUs
  // fit the per-GPU platform, aggregated per node pair beyond.
  if (o.aggregation == Aggregation::kAuto) {
    pool = balanced_nvlink(s, w, o.groups == DesGroups::kAll ? s.layout.ep_groups : 1);
    agg = so.aggregate_node_pairs = pool || static_cast<int>(so.gpus.size()) > so.max_hosts;
  }
  internal::check_options(so);
  EngineState& st = internal::engine_for(s.cluster, so);
  if (agg && !st.agg) throw ConfigError(st.agg_missing);
  if (!agg && !st.gpu) throw ConfigError(st.gpu_missing);

  // Microbatch counts to simulate.
  std::vector<int> sim_m;
  // mB - mA: the schedule's period in microbatches (DualPipe adds one per direction, interleaving a
  // group of pp).
  const int step = par.schedule == Schedule::kDualPipe ? 2 : par.schedule == Schedule::kInterleaved ? par.pp : 1;
  const int base = o.microbatches > 0 ? o.microbatches : 3 * par.pp;
  if (o.microbatches == 0 && m <= 4 * par.pp) {
    sim_m = {m};
  } else if (base + step >= m) {
    sim_m = {m};
  } else {
    sim_m = {base, base + step};
  }
  for (int x : sim_m) {
    try {
      models::check_schedule_order_args(par.schedule, par.pp, vpp, x);
    } catch (const ConfigError& e) {
      throw ConfigError(located_message(s.source, "/engine/microbatches",
                                        "a count the schedule can run (" + std::string(e.what()) + ")",
                                        std::to_string(o.microbatches)));
    }
  }

  StepSimResult out;
  const bool one_plane = (o.aggregation == Aggregation::kAuto || o.aggregation == Aggregation::kNode) && symmetric_planes(s, w);
  Runner runner(s, w, o, st, agg, pool, one_plane);
  const double expected = runner.expected_collective();
  const double precision = expected > 0 ? o.precision_fraction * expected : 1e-9;
  std::vector<Runner::Outcome> runs;
  try {
    sg4::Engine::set_config("surf/precision", precision);
    for (std::size_t i = 0; i < sim_m.size(); ++i) runs.push_back(runner.run(sim_m[i], i + 1 == sim_m.size()));
  } catch (const moesim::Error&) {
    st.broken = true;
    throw;
  } catch (const std::exception& e) {
    st.broken = true;
    throw Error(std::string("simulate_step: SimGrid failed: ") + e.what());
  }
  ++st.simulations;

  // Step time and the critical GPU's breakdown, extrapolated linearly in the microbatch count.
  const Runner::Outcome& last = runs.back();
  const GpuState& crit = last.gpus[last.critical];
  auto at = [&](const Runner::Outcome& r, auto field) {
    // The same GPU in every run (the critical one of the last run).
    return field(r.gpus[last.critical]);
  };
  auto extrap = [&](auto field) {
    if (runs.size() == 1) return at(runs[0], field);
    const double a = at(runs[0], field), b = at(runs[1], field);
    return a + (m - sim_m[0]) * (b - a) / (sim_m[1] - sim_m[0]);
  };
  auto extrap_makespan = [&] {
    if (runs.size() == 1) return runs[0].makespan;
    return runs[0].makespan + (m - sim_m[0]) * (runs[1].makespan - runs[0].makespan) / (sim_m[1] - sim_m[0]);
  };

  models::Result r = models::evaluate_analytic(s, w);
  const double analytic_step = r.step_time;
  r.engine = "des";
  r.fidelity = fidelity_text(o, agg, pool, one_plane, s.cluster.scale_out.planes, runner.groups(), s.layout.ep_groups,
                             m, sim_m);
  r.step_time = extrap_makespan();
  r.critical_rank = crit.rank;
  models::Breakdown& bd = r.breakdown;
  bd = models::Breakdown{};
  const double busy = extrap([](const GpuState& g) { return g.busy; });
  bd.exposed_tp = extrap([](const GpuState& g) { return g.tp; });
  bd.exposed_cp = extrap([](const GpuState& g) { return g.cp; });
  bd.compute = busy - bd.exposed_tp - bd.exposed_cp;
  bd.exposed_ep = extrap([](const GpuState& g) { return g.wait_comm; });
  const models::RankSync sync = models::rank_sync(s, w, crit.rank);
  bd.exposed_dp = sync.exposed_dp;
  bd.optimizer = sync.optimizer;
  // Pipeline receive waits, and whatever the critical GPU finished before the step's end.
  bd.bubble = std::max(0.0, r.step_time - (busy + bd.exposed_ep + bd.exposed_dp + bd.optimizer));
  r.grad_sync = sync.reduce + sync.gather;
  r.phases = models::SchedulePhases{};
  r.phases.bubble = bd.bubble;
  r.phases.steady = r.step_time - bd.bubble - bd.exposed_dp - bd.optimizer;
  r.balanced_step_time = 0;
  r.tokens_per_second = r.tokens_per_step / r.step_time;
  r.tokens_per_second_per_gpu = r.tokens_per_second / r.gpus;
  r.achieved_tflops_per_gpu = w.model_flops_per_token_noncausal * r.tokens_per_second_per_gpu / 1e12;
  r.mfu = r.achieved_tflops_per_gpu * 1e12 / s.cluster.gpu.flops_bf16;
  r.mfu_causal = w.model_flops_per_token * r.tokens_per_second_per_gpu / s.cluster.gpu.flops_bf16;
  r.gpu_hours_per_trillion_tokens = 1e12 / r.tokens_per_second_per_gpu / 3600.0;
  r.cost_per_trillion_tokens = r.gpu_hours_per_trillion_tokens * s.cluster.gpu.price_per_hour;
  r.analytic_step_time = analytic_step;
  out.result = std::move(r);

  out.timeline = runner.take_timeline();
  out.links = runner.link_usage(last.makespan);
  out.stats.simulated_gpus = runner.simulated_gpus();
  out.stats.ep_groups = runner.groups() * par.pp;
  out.stats.microbatches = sim_m;
  for (const auto& run : runs) {
    for (const auto& g : run.gpus) out.stats.segments += g.segments;
    out.stats.simulated_seconds += run.makespan;
  }
  out.stats.collectives = runner.collectives;
  out.stats.flows = runner.flows;

  out.settings = internal::engine_settings(st, agg, expected, st.simulations - 1);
  return out;
}

void write_chrome_trace(const StepSimResult& r, std::ostream& out) {
  using nlohmann::json;
  static const char* kStreams[] = {"compute", "expert all-to-all", "pipeline receive"};
  json events = json::array();
  std::map<int, int> seen;  // gpu → stage of its first event
  for (const TimelineEvent& e : r.timeline) {
    seen.try_emplace(e.gpu, e.stage);
    json args = {{"microbatch", e.microbatch}, {"stage", e.stage}};
    events.push_back({{"name", e.name},
                      {"ph", "X"},
                      {"pid", e.gpu},
                      {"tid", e.stream},
                      {"ts", e.start * 1e6},
                      {"dur", (e.end - e.start) * 1e6},
                      {"args", args}});
  }
  for (const auto& [gpu, stage] : seen) {
    events.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", gpu}, {"args", {{"name", "GPU " + std::to_string(gpu)}}}});
    events.push_back({{"name", "process_sort_index"}, {"ph", "M"}, {"pid", gpu}, {"args", {{"sort_index", gpu}}}});
    for (int t = 0; t < 3; ++t)
      events.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", gpu}, {"tid", t}, {"args", {{"name", kStreams[t]}}}});
  }
  json doc = {{"traceEvents", events},
              {"displayTimeUnit", "ms"},
              {"otherData",
               {{"scenario", r.result.scenario},
                {"engine", r.result.engine},
                {"fidelity", r.result.fidelity},
                {"note", "times of the last simulated run, from its start"}}}};
  out << doc.dump() << "\n";
}

}  // namespace moesim::sim
