#include "models/schedule.hpp"

#include <algorithm>

namespace moesim::models {

double activations_in_flight(Schedule s, int pp, int vpp, int rank) {
  switch (s) {
    case Schedule::k1F1B:
    case Schedule::kZeroBubble:
      return pp - rank;
    case Schedule::kInterleaved:
      return ((pp - rank - 1) * 2.0 + (vpp - 1.0) * pp + 1.0) / vpp;
    case Schedule::kDualPipe:
      return pp + 1.0;
  }
  return pp;
}

SchedulePhases evaluate_schedule(Schedule s, int pp, int vpp, int m, const ChunkTimes& t) {
  SchedulePhases ph;
  const double P = pp;
  const double p2p = pp > 1 ? t.p2p : 0.0;
  switch (s) {
    case Schedule::k1F1B:
    case Schedule::kInterleaved: {
      const double v = s == Schedule::kInterleaved ? vpp : 1;
      const double B = t.b + t.w;
      // Rank 0: PP-1 warm-up forwards, M-PP+1 steady F+B, PP-1 cool-down backwards; idle (PP-1)(F+B)/v.
      // Combined 1F1B (ep_overlap, fb_pair > 0): one more warm-up forward and cool-down backward, and
      // each steady unit one overlapped pair (models/schedule_order.hpp, overlap_ep_pairs).
      const int warm = std::min(m, pp - 1 + (t.fb_pair > 0 ? 1 : 0));
      ph.lone_f = warm;
      ph.lone_b = warm;
      ph.pairs = m - warm;
      // Combined 1F1B (ep_overlap): a steady unit is one overlapped F&B pair (fb_pair), plus what it waits
      // for its neighbours' pipeline sends (pair_wait, from all ranks' pairs: models/analytic.cpp).
      ph.pair_time = t.fb_pair > 0 ? t.fb_pair + t.pair_wait : t.f + B;
      ph.forward_only = warm * t.f;
      ph.steady = ph.pairs * ph.pair_time;
      ph.backward_only = warm * B;
      // Fill and drain each cross the v·PP - 1 stage boundaries of one microbatch's path once, one send
      // per boundary (interleaving adds the hops from the last rank back to the first).
      ph.bubble = (P - 1) * (t.f + B) / v + 2 * (v * P - 1) * p2p;
      ph.activations_in_flight = activations_in_flight(s, pp, vpp, 0);
      break;
    }
    case Schedule::kZeroBubble: {
      const int warm = std::min(m, pp - 1);
      ph.lone_f = warm;
      ph.lone_b = warm;
      ph.pairs = m - warm;
      ph.pair_time = t.f + t.b + t.w;
      ph.forward_only = warm * t.f;
      ph.steady = ph.pairs * ph.pair_time;
      ph.backward_only = warm * t.b;
      ph.weight_only = warm * t.w;
      // Qi et al. 2024 (ZB-H1): (PP-1)(F + B - W) with B the input-gradient chunk alone, i.e. DeepSeek-V3
      // Table 2's (PP-1)(F + B - 2W) with B the full backward (b + w).
      ph.bubble = std::max(0.0, (P - 1) * (t.f + t.b - t.w)) + 2 * (P - 1) * p2p;
      ph.activations_in_flight = activations_in_flight(s, pp, vpp, 0);
      break;
    }
    case Schedule::kDualPipe: {
      // Rank 0 of DualPipe (deepseek-ai/DualPipe, steps 1-8): PP + PP/2 - 1 forward chunks and as many
      // backward chunks run alone; the remaining M - (3PP/2 - 1) run as overlapped F&B pairs, where one
      // chunk's all-to-all and pipeline traffic hide under the other chunk's computation.
      const int lone = std::min(m, pp + pp / 2 - 1);
      ph.lone_f = lone;
      ph.lone_b = lone;
      ph.pairs = m - lone;
      const double compute = t.f_compute + t.b_compute + t.w_compute;
      const double comm = t.f_overlappable + t.b_overlappable + 2 * p2p;
      ph.pair_time = t.fb_pair > 0 ? t.fb_pair : std::max(compute, comm) + t.f_blocking + t.b_blocking;
      ph.forward_only = lone * t.f;
      ph.steady = ph.pairs * ph.pair_time;
      ph.backward_only = lone * t.b;
      ph.weight_only = lone * t.w;
      // DeepSeek-V3 Table 2: (PP/2-1)(F&B + B - 3W) with B the full backward, here b + w.
      ph.bubble = std::max(0.0, (P / 2 - 1) * (ph.pair_time + t.b - 2 * t.w)) + (P - 1) * p2p;
      ph.activations_in_flight = activations_in_flight(s, pp, vpp, 0);
      ph.parameter_copies = 2;
      break;
    }
  }
  return ph;
}

}  // namespace moesim::models
