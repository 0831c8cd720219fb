#include "models/schedule_order.hpp"

#include <algorithm>
#include <deque>
#include <string>

#include "scenarios/error.hpp"

namespace moesim::models {
namespace {

[[noreturn]] void bad(Schedule s, const std::string& expected, const std::string& found) {
  throw ConfigError(std::string("pipeline schedule \"") + to_string(s) + "\": expected " + expected +
                    ", found " + found);
}

ChunkStep step(ChunkPass p, int mb, int chunk, bool overlap_next = false) {
  ChunkStep st;
  st.pass = p;
  st.microbatch = mb;
  st.chunk = chunk;
  st.overlap_next = overlap_next;
  return st;
}

// Megatron-Core forward_backward_pipelining_without_interleaving (PipeDream-Flush).
std::vector<ChunkStep> order_1f1b(int pp, int m, int rank) {
  std::vector<ChunkStep> out;
  const int warmup = std::min(m, pp - rank - 1);
  const int remaining = m - warmup;
  for (int i = 0; i < warmup; ++i) out.push_back(step(ChunkPass::kF, i, 0));
  for (int i = 0; i < remaining; ++i) {
    out.push_back(step(ChunkPass::kF, warmup + i, 0));
    out.push_back(step(ChunkPass::kBW, i, 0));
  }
  for (int i = remaining; i < m; ++i) out.push_back(step(ChunkPass::kBW, i, 0));
  return out;
}

// Megatron-Core forward_backward_pipelining_with_interleaving with microbatch groups of pp.
std::vector<ChunkStep> order_interleaved(int pp, int vpp, int m, int rank) {
  const int total = m * vpp;
  const int warmup = std::min((pp - rank - 1) * 2 + (vpp - 1) * pp, total);
  const int remaining = total - warmup;
  auto chunk_of = [&](int k, bool forward) {
    const int c = (k % (pp * vpp)) / pp;
    return forward ? c : vpp - 1 - c;
  };
  auto microbatch_of = [&](int k) { return (k / (pp * vpp)) * pp + k % pp; };
  std::vector<ChunkStep> out;
  for (int k = 0; k < warmup; ++k) out.push_back(step(ChunkPass::kF, microbatch_of(k), chunk_of(k, true)));
  for (int k = 0; k < remaining; ++k) {
    const int fk = k + warmup;
    out.push_back(step(ChunkPass::kF, microbatch_of(fk), chunk_of(fk, true)));
    out.push_back(step(ChunkPass::kBW, microbatch_of(k), chunk_of(k, false)));
  }
  for (int k = remaining; k < total; ++k)
    out.push_back(step(ChunkPass::kBW, microbatch_of(k), chunk_of(k, false)));
  return out;
}

// ZB-H1 (Qi et al. 2024), uniform B/W split as in Megatron-DeepSpeed's ZeroBubbleH1Pipeline with
// exact semantics: rank r defers the W of its first r steady-state backwards to the end.
std::vector<ChunkStep> order_zb_h1(int pp, int m, int rank) {
  std::vector<ChunkStep> out;
  int f = 0, b = 0, w = 0;
  const int warmup = std::min(m, pp - rank - 1);
  for (int i = 0; i < warmup; ++i) out.push_back(step(ChunkPass::kF, f++, 0));
  for (int i = 0; i < rank && f < m; ++i) {  // F B, W deferred
    out.push_back(step(ChunkPass::kF, f++, 0));
    out.push_back(step(ChunkPass::kB, b++, 0));
  }
  while (f < m) {  // F B W (W of the oldest pending microbatch)
    out.push_back(step(ChunkPass::kF, f++, 0));
    out.push_back(step(ChunkPass::kB, b++, 0));
    out.push_back(step(ChunkPass::kW, w++, 0));
  }
  while (b < m) {  // cool-down: B W
    out.push_back(step(ChunkPass::kB, b++, 0));
    out.push_back(step(ChunkPass::kW, w++, 0));
  }
  while (w < m) out.push_back(step(ChunkPass::kW, w++, 0));  // the deferred W
  return out;
}

// deepseek-ai/DualPipe dualpipe.py, DualPipe.step. A "phase" there is local: for the first half of
// the ranks phase 0 is direction 0, for the second half phase 0 is direction 1 (phase ^ second_half).
// Besides the chunk order it records the point-to-point transfers where the reference appends them
// (`_recv_forward`, `_send_forward`, `_recv_backward`, `_send_backward`) and the batch each
// `_commit_and_wait_comm` posts: every computation starts with one.
class DualPipeOrder {
 public:
  DualPipeOrder(int pp, int m, int rank)
      : pp_(pp), m_(m), rank_(rank), second_half_(rank >= pp / 2 ? 1 : 0) {}

  void forward(int phase, bool overlap_next = false) {
    commit();
    const int d = phase ^ second_half_;
    out_.back() = step(ChunkPass::kF, microbatch(d, f_[d]++), d, overlap_next);
  }
  void backward(int phase, bool zero_bubble = false) {
    commit();
    const int d = phase ^ second_half_;
    const int mb = microbatch(d, b_[d]++);
    if (zero_bubble) {
      out_.back() = step(ChunkPass::kB, mb, d);
      pending_w_.push_back(step(ChunkPass::kW, mb, d));
    } else {
      out_.back() = step(ChunkPass::kBW, mb, d);
    }
  }
  void weight() {  // _weight_chunk: a commit, then WeightGradStore.pop(), the oldest deferred W (FIFO)
    MOESIM_ASSERT(!pending_w_.empty(), "DualPipe weight chunk with no deferred W");
    commit();
    out_.back() = pending_w_.front();
    pending_w_.pop_front();
  }
  void forward_backward(int phase0, int phase1) {  // _forward_backward_chunk's computation: one pair
    forward(phase0, true);
    backward(phase1);  // its commit is empty: the pair starts after the forward's
  }
  // The four transfer kinds. First and last stages skip theirs as the reference does.
  void recv_forward(int phase) {
    const int d = phase ^ second_half_, v = stage(d);
    if (v > 0) pending_.push_back(op(false, false, d, recv_f_[d]++, v));
  }
  void send_forward(int phase) {
    const int d = phase ^ second_half_, v = stage(d);
    if (v < pp_ - 1) pending_.push_back(op(true, false, d, send_f_[d]++, v + 1));
  }
  void recv_backward(int phase) {
    const int d = phase ^ second_half_, v = stage(d);
    if (v < pp_ - 1) pending_.push_back(op(false, true, d, recv_b_[d]++, v));
  }
  void send_backward(int phase) {
    const int d = phase ^ second_half_, v = stage(d);
    if (v > 0) pending_.push_back(op(true, true, d, send_b_[d]++, v - 1));
  }
  DualPipeComm take() {
    MOESIM_ASSERT(pending_w_.empty(), "DualPipe order ends with deferred W left");
    DualPipeComm c;
    c.order = std::move(out_);
    c.commit = std::move(commit_);
    c.last = std::move(pending_);  // step()'s final _commit_and_wait_comm
    return c;
  }

 private:
  int microbatch(int direction, int counter) const { return direction * (m_ / 2) + counter; }
  int stage(int direction) const { return direction == 0 ? rank_ : pp_ - 1 - rank_; }
  P2pOp op(bool send, bool gradient, int d, int counter, int to_stage) const {
    P2pOp o;
    o.send = send;
    o.gradient = gradient;
    o.direction = d;
    o.microbatch = microbatch(d, counter);
    o.to_stage = to_stage;
    return o;
  }
  // A new step, with the batch appended since the last commit committed before it.
  void commit() {
    out_.emplace_back();
    commit_.push_back(std::move(pending_));
    pending_.clear();
  }

  int pp_, m_, rank_;
  int second_half_;
  int f_[2] = {0, 0};
  int b_[2] = {0, 0};
  int recv_f_[2] = {0, 0}, send_f_[2] = {0, 0}, recv_b_[2] = {0, 0}, send_b_[2] = {0, 0};
  std::deque<ChunkStep> pending_w_;
  std::vector<ChunkStep> out_;
  std::vector<std::vector<P2pOp>> commit_;
  std::vector<P2pOp> pending_;
};

DualPipeComm walk_dualpipe(int pp, int m, int rank) {
  const int half_ranks = pp / 2;
  const int half_rank = std::min(rank, pp - 1 - rank);
  const int half_chunks = m / 2;
  const bool middle = rank == half_ranks - 1 || rank == half_ranks;
  DualPipeOrder o(pp, m, rank);
  // _forward_chunk, _backward_chunk and _forward_backward_chunk with their receives and sends.
  const auto fwd = [&o](int phase, bool recv, bool send) {
    if (recv) o.recv_forward(phase);
    o.forward(phase);
    if (send) o.send_forward(phase);
  };
  const auto bwd = [&o](int phase, bool zero_bubble, bool send) {
    o.recv_backward(phase);
    o.backward(phase, zero_bubble);
    if (send) o.send_backward(phase);
  };
  const auto fwd_bwd = [&o](int phase0, int phase1, bool recv0) {
    if (recv0) o.recv_forward(phase0);
    o.recv_backward(phase1);
    o.forward_backward(phase0, phase1);
    o.send_forward(phase0);
    o.send_backward(phase1);
  };

  // Step 1: nF0
  for (int i = 0; i < (half_ranks - half_rank - 1) * 2; ++i) fwd(0, true, true);
  // Step 2: nF0F1 (each F0's input is received one commit ahead)
  const int step2 = half_rank + 1;
  o.recv_forward(0);
  for (int i = 0; i < step2; ++i) {
    fwd(0, false, middle);
    o.recv_forward(0);
    fwd(1, true, !middle || i < step2 - 1);
    if (!middle) o.send_forward(0);
  }
  // Step 3: nB1W1F1 (zero bubble)
  for (int i = 0; i < half_ranks - half_rank - 1; ++i) {
    bwd(1, true, true);
    o.recv_forward(1);
    o.weight();
    fwd(1, false, true);
  }
  // Step 4 (main step): nF0B1F1B0
  for (int i = 0; i < half_chunks - pp + half_rank + 1; ++i) {
    if (i == 0) {
      if (middle) {
        // The reference does not overlap these two chunks on the middle ranks.
        fwd(0, false, false);
        o.send_forward(1);
        bwd(1, false, false);
        o.send_forward(0);
        o.send_backward(1);
      } else {
        fwd_bwd(0, 1, false);
      }
    } else {
      fwd_bwd(0, 1, true);
    }
    fwd_bwd(1, 0, true);
  }
  // Step 5: nB1F1B0
  for (int i = 0; i < half_ranks - half_rank - 1; ++i) {
    bwd(1, false, true);
    fwd_bwd(1, 0, true);
  }
  // Step 6: nB1B0; zero bubble switches on half-way (before B1 for odd half_rank, before B0 for even).
  const int step6 = half_rank + 1;
  bool zero_bubble = false;
  for (int i = 0; i < step6; ++i) {
    if (i == step6 / 2 && half_rank % 2 == 1) zero_bubble = true;
    bwd(1, zero_bubble, true);
    if (i == step6 / 2 && half_rank % 2 == 0) zero_bubble = true;
    bwd(0, zero_bubble, true);
  }
  // Step 7: nWB0 (zero bubble)
  for (int i = 0; i < half_ranks - half_rank - 1; ++i) {
    o.weight();
    bwd(0, true, true);
  }
  // Step 8: nW
  for (int i = 0; i < half_rank + 1; ++i) o.weight();
  return o.take();
}

std::vector<ChunkStep> order_dualpipe(int pp, int m, int rank) {
  return walk_dualpipe(pp, m, rank).order;
}

void check_rank(Schedule s, int pp, int rank) {
  if (rank < 0 || rank >= pp)
    bad(s, "a pipeline rank in 0.." + std::to_string(pp - 1), "rank " + std::to_string(rank));
}

}  // namespace

const char* pass_name(ChunkPass p) {
  switch (p) {
    case ChunkPass::kF:
      return "F";
    case ChunkPass::kB:
      return "B";
    case ChunkPass::kW:
      return "W";
    case ChunkPass::kBW:
      return "BW";
  }
  return "?";
}

int min_microbatches(Schedule s, int pp) {
  switch (s) {
    case Schedule::k1F1B:
    case Schedule::kZeroBubble:
      return 1;
    case Schedule::kInterleaved:
      return std::max(pp, 1);
    case Schedule::kDualPipe:
      return 2 * std::max(pp, 1);
  }
  return 1;
}

void check_schedule_order_args(Schedule s, int pp, int vpp, int m) {
  const std::string found_m = std::to_string(m) + " microbatches";
  if (pp < 1) bad(s, "pp of at least 1", "pp=" + std::to_string(pp));
  switch (s) {
    case Schedule::k1F1B:
    case Schedule::kZeroBubble:
      if (m < 1) bad(s, "at least 1 microbatch", found_m);
      break;
    case Schedule::kInterleaved:
      if (vpp < 2) bad(s, "vpp of at least 2 for the interleaved schedule", "vpp=" + std::to_string(vpp));
      if (m < pp || m % pp != 0)
        bad(s,
            "a positive number of microbatches divisible by pp=" + std::to_string(pp) +
                " (Megatron-Core interleaved schedule)",
            found_m);
      break;
    case Schedule::kDualPipe:
      if (pp % 2 != 0) bad(s, "an even pp for DualPipe", "pp=" + std::to_string(pp));
      if (m % 2 != 0 || m < 2 * pp)
        bad(s,
            "an even number of microbatches of at least 2 x pp = " + std::to_string(2 * pp) + " for DualPipe",
            found_m);
      break;
  }
}

std::vector<ChunkStep> overlap_ep_pairs(const std::vector<ChunkStep>& order) {
  std::vector<ChunkStep> out;
  out.reserve(order.size());
  std::size_t last_f = order.size();  // the last forward step
  for (std::size_t i = 0; i < order.size(); ++i)
    if (order[i].pass == ChunkPass::kF) last_f = i;
  bool pending = false;
  ChunkStep held;  // a backward waiting for the next forward
  for (std::size_t i = 0; i < order.size(); ++i) {
    ChunkStep st = order[i];
    const bool backward = st.pass == ChunkPass::kB || st.pass == ChunkPass::kBW;
    if (st.pass == ChunkPass::kF && pending) {
      st.overlap_next = true;
      out.push_back(st);
      out.push_back(held);
      pending = false;
    } else if (backward && last_f < order.size() && i < last_f && !pending) {
      held = st;
      pending = true;
    } else {
      if (pending) out.push_back(held);
      pending = false;
      out.push_back(st);
    }
  }
  if (pending) out.push_back(held);
  return out;
}

std::vector<ChunkStep> schedule_order(Schedule s, int pp, int vpp, int m, int rank) {
  check_schedule_order_args(s, pp, vpp, m);
  check_rank(s, pp, rank);
  switch (s) {
    case Schedule::k1F1B:
      return order_1f1b(pp, m, rank);
    case Schedule::kInterleaved:
      return order_interleaved(pp, vpp, m, rank);
    case Schedule::kZeroBubble:
      return order_zb_h1(pp, m, rank);
    case Schedule::kDualPipe:
      return order_dualpipe(pp, m, rank);
  }
  return {};
}

DualPipeComm dualpipe_comm(int pp, int m, int rank) {
  check_schedule_order_args(Schedule::kDualPipe, pp, 1, m);
  check_rank(Schedule::kDualPipe, pp, rank);
  return walk_dualpipe(pp, m, rank);
}

int pipeline_stages(Schedule s, int pp, int vpp) {
  return s == Schedule::kInterleaved ? pp * vpp : pp;
}

int stage_of(Schedule s, int pp, int vpp, int rank, int chunk) {
  if (pp < 1) bad(s, "pp of at least 1", "pp=" + std::to_string(pp));
  check_rank(s, pp, rank);
  const int chunks = s == Schedule::kInterleaved ? vpp : s == Schedule::kDualPipe ? 2 : 1;
  if (s == Schedule::kInterleaved && vpp < 1) bad(s, "vpp of at least 1", "vpp=" + std::to_string(vpp));
  if (chunk < 0 || chunk >= chunks)
    bad(s, "a local chunk in 0.." + std::to_string(chunks - 1), "chunk " + std::to_string(chunk));
  switch (s) {
    case Schedule::k1F1B:
    case Schedule::kZeroBubble:
      return rank;
    case Schedule::kInterleaved:
      return chunk * pp + rank;
    case Schedule::kDualPipe:
      return chunk == 0 ? rank : pp - 1 - rank;
  }
  return rank;
}

}  // namespace moesim::models
