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
class DualPipeOrder {
 public:
  DualPipeOrder(int pp, int m, int rank) : m_(m), second_half_(rank >= pp / 2 ? 1 : 0) {}

  void forward(int phase, bool overlap_next = false) {
    const int d = phase ^ second_half_;
    out_.push_back(step(ChunkPass::kF, microbatch(d, f_[d]++), d, overlap_next));
  }
  void backward(int phase, bool zero_bubble = false) {
    const int d = phase ^ second_half_;
    const int mb = microbatch(d, b_[d]++);
    if (zero_bubble) {
      out_.push_back(step(ChunkPass::kB, mb, d));
      pending_w_.push_back(step(ChunkPass::kW, mb, d));
    } else {
      out_.push_back(step(ChunkPass::kBW, mb, d));
    }
  }
  void weight() {  // WeightGradStore.pop(): the oldest deferred W (FIFO)
    MOESIM_ASSERT(!pending_w_.empty(), "DualPipe weight chunk with no deferred W");
    out_.push_back(pending_w_.front());
    pending_w_.pop_front();
  }
  void forward_backward(int phase0, int phase1) {  // _forward_backward_chunk: one overlapped pair
    forward(phase0, true);
    backward(phase1);
  }
  std::vector<ChunkStep> take() {
    MOESIM_ASSERT(pending_w_.empty(), "DualPipe order ends with deferred W left");
    return std::move(out_);
  }

 private:
  int microbatch(int direction, int counter) const { return direction * (m_ / 2) + counter; }

  int m_;
  int second_half_;
  int f_[2] = {0, 0};
  int b_[2] = {0, 0};
  std::deque<ChunkStep> pending_w_;
  std::vector<ChunkStep> out_;
};

std::vector<ChunkStep> order_dualpipe(int pp, int m, int rank) {
  const int half_ranks = pp / 2;
  const int half_rank = std::min(rank, pp - 1 - rank);
  const int half_chunks = m / 2;
  const bool middle = rank == half_ranks - 1 || rank == half_ranks;
  DualPipeOrder o(pp, m, rank);

  // Step 1: nF0
  for (int i = 0; i < (half_ranks - half_rank - 1) * 2; ++i) o.forward(0);
  // Step 2: nF0F1
  for (int i = 0; i < half_rank + 1; ++i) {
    o.forward(0);
    o.forward(1);
  }
  // Step 3: nB1W1F1 (zero bubble)
  for (int i = 0; i < half_ranks - half_rank - 1; ++i) {
    o.backward(1, true);
    o.weight();
    o.forward(1);
  }
  // Step 4 (main step): nF0B1F1B0
  for (int i = 0; i < half_chunks - pp + half_rank + 1; ++i) {
    if (i == 0 && middle) {
      // The reference does not overlap these two chunks on the middle ranks.
      o.forward(0);
      o.backward(1);
    } else {
      o.forward_backward(0, 1);
    }
    o.forward_backward(1, 0);
  }
  // Step 5: nB1F1B0
  for (int i = 0; i < half_ranks - half_rank - 1; ++i) {
    o.backward(1);
    o.forward_backward(1, 0);
  }
  // Step 6: nB1B0; zero bubble switches on half-way (before B1 for odd half_rank, before B0 for even).
  const int step6 = half_rank + 1;
  bool zero_bubble = false;
  for (int i = 0; i < step6; ++i) {
    if (i == step6 / 2 && half_rank % 2 == 1) zero_bubble = true;
    o.backward(1, zero_bubble);
    if (i == step6 / 2 && half_rank % 2 == 0) zero_bubble = true;
    o.backward(0, zero_bubble);
  }
  // Step 7: nWB0 (zero bubble)
  for (int i = 0; i < half_ranks - half_rank - 1; ++i) {
    o.weight();
    o.backward(0, true);
  }
  // Step 8: nW
  for (int i = 0; i < half_rank + 1; ++i) o.weight();
  return o.take();
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
