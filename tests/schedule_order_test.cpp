// Per-rank chunk orders (models/schedule_order.cpp), executed by an independent critical-path
// evaluator written here: every rank runs its order sequentially; F(mb, v) waits for F(mb, v-1);
// B or BW (mb, v) waits for F(mb, v) and for B or BW (mb, v+1) (the last stage only for its own F);
// W(mb, v) waits for B(mb, v); point-to-point transfers are free. An overlapped DualPipe pair is one
// unit: it starts when the rank is free and both chunks' inputs are there, and takes F + B(W) (no
// overlap benefit); both chunks finish at its end. Interleaved chunks take F/vpp, BW/vpp.
//
// Closed forms checked (makespan = m(F+B+W) + bubble, B = backward for inputs, W = for weights):
//   1F1B:        (m + PP - 1)(F + B + W)
//   interleaved: m(F+B+W) + (PP-1)(F+B+W)/vpp, for m % PP == 0
//   ZB-H1:       bubble (PP-1)(F + B - W) (Qi et al. 2024) when W <= min(F, B) and m >= PP; the
//                evaluator gives (PP-1)(F + B - min(F, B, W)) for every ratio tried with m >= PP.
//                In DeepSeek-V3's Table 2 notation (B = full backward = B + W here) the same bubble
//                reads (PP-1)(F + B - 2W).
//   DualPipe:    with F = B = W = 1: m(F+B+W) + (PP/2-1)(F&B + B - 3W) with F&B = F + B + W and
//                DeepSeek's B = B + W, i.e. 3m + 2(PP/2-1); always below 1F1B.

#include "models/schedule_order.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "models/schedule.hpp"
#include "scenarios/error.hpp"

namespace moesim::models {
namespace {

constexpr double kTol = 1e-9;
constexpr Schedule kAll[] = {Schedule::k1F1B, Schedule::kInterleaved, Schedule::kZeroBubble,
                             Schedule::kDualPipe};

struct Times {
  double f = 1, b = 1, w = 1;
};

// Stage along the microbatch's path, independent of stage_of (which is tested on its own).
int path_stage(Schedule s, int pp, int rank, int chunk) {
  switch (s) {
    case Schedule::kInterleaved:
      return chunk * pp + rank;
    case Schedule::kDualPipe:
      return chunk == 0 ? rank : pp - 1 - rank;
    default:
      return rank;
  }
}

struct Eval {
  bool ok = true;
  std::string error;
  double makespan = 0;
};

Eval evaluate(Schedule s, int pp, int vpp, int m, Times t, bool reverse_sweep = false) {
  Eval res;
  const int v = s == Schedule::kInterleaved ? vpp : 1;
  const int stages = pp * v;
  const double scale = 1.0 / v;
  std::vector<std::vector<ChunkStep>> orders;
  for (int r = 0; r < pp; ++r) orders.push_back(schedule_order(s, pp, vpp, m, r));

  // done[kind][mb][stage]: finish time, kind 0 = F, 1 = B or BW, 2 = W or BW; -1 while not done.
  std::vector<std::vector<std::vector<double>>> done(
      3, std::vector<std::vector<double>>(m, std::vector<double>(stages, -1)));
  // count[pass][mb][stage]
  std::vector<std::vector<std::vector<int>>> count(
      4, std::vector<std::vector<int>>(m, std::vector<int>(stages, 0)));

  auto fail = [&](const std::string& e) {
    res.ok = false;
    if (res.error.empty()) res.error = e;
  };
  auto duration = [&](ChunkPass p) {
    switch (p) {
      case ChunkPass::kF:
        return t.f * scale;
      case ChunkPass::kB:
        return t.b * scale;
      case ChunkPass::kW:
        return t.w * scale;
      case ChunkPass::kBW:
        return (t.b + t.w) * scale;
    }
    return 0.0;
  };
  // Latest finish of the inputs of `st` on rank r, or -1 if one is not done yet.
  auto ready = [&](const ChunkStep& st, int r) -> double {
    const int v_ = path_stage(s, pp, r, st.chunk);
    const int mb = st.microbatch;
    double at = 0;
    auto need = [&](int kind, int stage) {
      const double d = done[kind][mb][stage];
      if (d < 0) return false;
      at = std::max(at, d);
      return true;
    };
    switch (st.pass) {
      case ChunkPass::kF:
        return v_ == 0 || need(0, v_ - 1) ? at : -1;
      case ChunkPass::kB:
      case ChunkPass::kBW:
        if (!need(0, v_)) return -1;
        if (v_ + 1 < stages && !need(1, v_ + 1)) return -1;
        return at;
      case ChunkPass::kW:
        return need(1, v_) ? at : -1;
    }
    return -1;
  };
  auto finish = [&](const ChunkStep& st, int r, double at) {
    const int v_ = path_stage(s, pp, r, st.chunk);
    const int mb = st.microbatch;
    ++count[static_cast<int>(st.pass)][mb][v_];
    switch (st.pass) {
      case ChunkPass::kF:
        done[0][mb][v_] = at;
        break;
      case ChunkPass::kB:
        done[1][mb][v_] = at;
        break;
      case ChunkPass::kW:
        done[2][mb][v_] = at;
        break;
      case ChunkPass::kBW:
        done[1][mb][v_] = done[2][mb][v_] = at;
        break;
    }
  };

  // Structural checks before running.
  for (int r = 0; r < pp; ++r) {
    const auto& o = orders[r];
    for (size_t i = 0; i < o.size(); ++i) {
      const ChunkStep& st = o[i];
      const int chunks = s == Schedule::kInterleaved ? vpp : s == Schedule::kDualPipe ? 2 : 1;
      if (st.microbatch < 0 || st.microbatch >= m || st.chunk < 0 || st.chunk >= chunks) {
        fail("rank " + std::to_string(r) + " step " + std::to_string(i) + " out of range");
        return res;
      }
      if (s == Schedule::kDualPipe && st.chunk != (st.microbatch >= m / 2 ? 1 : 0)) {
        fail("DualPipe microbatch " + std::to_string(st.microbatch) + " on the wrong direction");
        return res;
      }
      if (st.overlap_next) {
        if (s != Schedule::kDualPipe || st.pass != ChunkPass::kF || i + 1 >= o.size() ||
            (o[i + 1].pass != ChunkPass::kB && o[i + 1].pass != ChunkPass::kBW) || o[i + 1].overlap_next) {
          fail("malformed overlapped pair on rank " + std::to_string(r));
          return res;
        }
      }
    }
  }

  std::vector<size_t> pos(pp, 0);
  std::vector<double> free_at(pp, 0);
  size_t total = 0, executed = 0;
  for (const auto& o : orders) total += o.size();
  while (executed < total) {
    bool progress = false;
    for (int i = 0; i < pp; ++i) {
      const int r = reverse_sweep ? pp - 1 - i : i;
      const auto& o = orders[r];
      while (pos[r] < o.size()) {
        const ChunkStep& st = o[pos[r]];
        if (st.overlap_next) {
          const ChunkStep& nx = o[pos[r] + 1];
          const double a = ready(st, r), b = ready(nx, r);
          if (a < 0 || b < 0) break;
          const double end = std::max({free_at[r], a, b}) + duration(st.pass) + duration(nx.pass);
          finish(st, r, end);
          finish(nx, r, end);
          free_at[r] = end;
          pos[r] += 2;
          executed += 2;
        } else {
          const double a = ready(st, r);
          if (a < 0) break;
          const double end = std::max(free_at[r], a) + duration(st.pass);
          finish(st, r, end);
          free_at[r] = end;
          pos[r] += 1;
          executed += 1;
        }
        progress = true;
      }
    }
    if (!progress) {
      std::ostringstream os;
      os << "deadlock at steps";
      for (int r = 0; r < pp; ++r) os << ' ' << pos[r] << '/' << orders[r].size();
      fail(os.str());
      return res;
    }
  }

  // Every (microbatch, stage) ran F once and its backward exactly once, split or not as the schedule says.
  const bool split_allowed = s == Schedule::kZeroBubble || s == Schedule::kDualPipe;
  const bool split_required = s == Schedule::kZeroBubble;
  for (int mb = 0; mb < m; ++mb) {
    for (int v_ = 0; v_ < stages; ++v_) {
      const int f = count[0][mb][v_], b = count[1][mb][v_], w = count[2][mb][v_], bw = count[3][mb][v_];
      const bool whole = bw == 1 && b == 0 && w == 0;
      const bool split = bw == 0 && b == 1 && w == 1;
      const bool ok = f == 1 && (split_required ? split : split_allowed ? (whole || split) : whole);
      if (!ok)
        fail("microbatch " + std::to_string(mb) + " stage " + std::to_string(v_) + ": F " +
             std::to_string(f) + " B " + std::to_string(b) + " W " + std::to_string(w) + " BW " +
             std::to_string(bw));
    }
  }
  res.makespan = *std::max_element(free_at.begin(), free_at.end());
  return res;
}

const Times kRatios[] = {{1, 1, 1}, {1, 2, 1}, {2, 3, 1}};

std::string label(Schedule s, int pp, int vpp, int m, Times t) {
  std::ostringstream os;
  os << to_string(s) << " pp=" << pp << " vpp=" << vpp << " m=" << m << " F=" << t.f << " B=" << t.b
     << " W=" << t.w;
  return os.str();
}

// ------------------------------------------------------------------------------------------- 1F1B

// Combined 1F1B: every backward with a forward after it waits for that forward and pairs with it.
// PP2, 4 microbatches. Rank 0 (1F1B: F0 F1 B0 F2 B1 F3 B2 B3) becomes F0 F1 F2* B0 F3* B1 B2 B3; the last
// rank (F0 B0 F1 B1 F2 B2 F3 B3) becomes F0 F1* B0 F2* B1 F3* B2 B3: never a backward beside its own
// microbatch's forward, one more warm-up forward than 1F1B.
TEST(ScheduleOrder, CombinedOneFOneBPairsEachBackwardWithTheNextForward) {
  const auto text = [](const std::vector<ChunkStep>& o) {
    std::string t;
    for (const ChunkStep& st : o) {
      t += st.pass == ChunkPass::kF ? "F" : "B";
      t += std::to_string(st.microbatch);
      if (st.overlap_next) t += "*";
      t += " ";
    }
    return t;
  };
  EXPECT_EQ(text(overlap_ep_pairs(schedule_order(Schedule::k1F1B, 2, 1, 4, 0))),
            "F0 F1 F2* B0 F3* B1 B2 B3 ");
  EXPECT_EQ(text(overlap_ep_pairs(schedule_order(Schedule::k1F1B, 2, 1, 4, 1))),
            "F0 F1* B0 F2* B1 F3* B2 B3 ");
  // One stage: one lone forward, M - 1 pairs, one lone backward.
  EXPECT_EQ(text(overlap_ep_pairs(schedule_order(Schedule::k1F1B, 1, 1, 3, 0))), "F0 F1* B0 F2* B1 B2 ");
  // Interleaved keeps every step, and every pair is a forward followed by a backward of another microbatch
  // or chunk.
  const auto base = schedule_order(Schedule::kInterleaved, 2, 2, 4, 0);
  const auto o = overlap_ep_pairs(base);
  ASSERT_EQ(o.size(), base.size());
  int pairs = 0;
  for (std::size_t i = 0; i < o.size(); ++i)
    if (o[i].overlap_next) {
      ++pairs;
      ASSERT_LT(i + 1, o.size());
      EXPECT_EQ(o[i].pass, ChunkPass::kF);
      EXPECT_NE(o[i + 1].pass, ChunkPass::kF);
      EXPECT_FALSE(o[i].microbatch == o[i + 1].microbatch && o[i].chunk == o[i + 1].chunk);
    }
  EXPECT_GT(pairs, 0);
}

TEST(ScheduleOrder, OneFOneBMakespan) {
  for (Times t : kRatios)
    for (int pp : {2, 4, 8})
      for (int m : {1, pp - 1, pp, pp + 1, 2 * pp, 3 * pp + 1}) {
        if (m < 1) continue;
        SCOPED_TRACE(label(Schedule::k1F1B, pp, 1, m, t));
        const Eval e = evaluate(Schedule::k1F1B, pp, 1, m, t);
        ASSERT_TRUE(e.ok) << e.error;
        EXPECT_NEAR(e.makespan, (m + pp - 1) * (t.f + t.b + t.w), kTol);
      }
}

TEST(ScheduleOrder, OneFOneBShape) {
  // PipeDream-Flush on rank 1 of 4 with 5 microbatches: F0 F1 | F2 BW0 F3 BW1 F4 BW2 | BW3 BW4.
  const auto o = schedule_order(Schedule::k1F1B, 4, 1, 5, 1);
  std::string got;
  for (const auto& st : o) got += std::string(pass_name(st.pass)) + std::to_string(st.microbatch) + " ";
  EXPECT_EQ(got, "F0 F1 F2 BW0 F3 BW1 F4 BW2 BW3 BW4 ");
  // Fewer microbatches than warm-up slots: all forwards, then all backwards.
  const auto o2 = schedule_order(Schedule::k1F1B, 8, 1, 2, 0);
  ASSERT_EQ(o2.size(), 4u);
  EXPECT_EQ(o2[0].pass, ChunkPass::kF);
  EXPECT_EQ(o2[1].pass, ChunkPass::kF);
  EXPECT_EQ(o2[2].pass, ChunkPass::kBW);
  EXPECT_EQ(o2[3].pass, ChunkPass::kBW);
}

// ------------------------------------------------------------------------------------ interleaved

TEST(ScheduleOrder, InterleavedMakespan) {
  for (Times t : kRatios)
    for (int pp : {2, 4, 8})
      for (int vpp : {2, 3, 4})
        for (int m : {pp, 2 * pp, 3 * pp}) {
          SCOPED_TRACE(label(Schedule::kInterleaved, pp, vpp, m, t));
          const Eval e = evaluate(Schedule::kInterleaved, pp, vpp, m, t);
          ASSERT_TRUE(e.ok) << e.error;
          const double full = t.f + t.b + t.w;
          EXPECT_NEAR(e.makespan, m * full + (pp - 1) * full / vpp, kTol);
        }
}

TEST(ScheduleOrder, InterleavedMegatronIndices) {
  // pp=2, vpp=2, m=4, rank 0: warm-up (2-0-1)*2 + (2-1)*2 = 4 virtual microbatches.
  // Forward k -> chunk (k/2)%2, microbatch (k/4)*2 + k%2; backward chunk 1 - (k/2)%2.
  const auto o = schedule_order(Schedule::kInterleaved, 2, 2, 4, 0);
  std::string got;
  for (const auto& st : o)
    got += std::string(pass_name(st.pass)) + std::to_string(st.microbatch) + "c" + std::to_string(st.chunk) +
           " ";
  EXPECT_EQ(got, "F0c0 F1c0 F0c1 F1c1 F2c0 BW0c1 F3c0 BW1c1 F2c1 BW0c0 F3c1 BW1c0 BW2c1 BW3c1 BW2c0 BW3c0 ");
  // Last rank: warm-up (vpp-1)*pp = 2.
  const auto last = schedule_order(Schedule::kInterleaved, 2, 2, 4, 1);
  EXPECT_EQ(last[2].pass, ChunkPass::kF);
  EXPECT_EQ(last[3].pass, ChunkPass::kBW);
  // Warm-up capped at m*vpp: pp=4, vpp=2, m=4, rank 0 wants 6+4 = 10 > 8, so all 8 forwards come first.
  const auto capped = schedule_order(Schedule::kInterleaved, 4, 2, 4, 0);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(capped[i].pass, ChunkPass::kF) << i;
  for (int i = 8; i < 16; ++i) EXPECT_EQ(capped[i].pass, ChunkPass::kBW) << i;
}

// ------------------------------------------------------------------------------------ zero bubble

TEST(ScheduleOrder, ZeroBubbleH1MakespanMatchesPaper) {
  // Qi et al. 2024: ZB-H1 bubble (p-1)(T_F + T_B - T_W); holds for these ratios (W <= min(F, B)).
  for (Times t : kRatios)
    for (int pp : {2, 4, 8})
      for (int m : {pp, pp + 1, 2 * pp, 3 * pp + 1}) {
        SCOPED_TRACE(label(Schedule::kZeroBubble, pp, 1, m, t));
        const Eval e = evaluate(Schedule::kZeroBubble, pp, 1, m, t);
        ASSERT_TRUE(e.ok) << e.error;
        EXPECT_NEAR(e.makespan, m * (t.f + t.b + t.w) + (pp - 1) * (t.f + t.b - t.w), kTol);
        // One third of 1F1B's bubble at F = B = W.
        if (t.f == t.b && t.b == t.w) {
          EXPECT_NEAR(e.makespan - 3 * m * t.f, (pp - 1) * t.f, kTol);
        }
      }
}

TEST(ScheduleOrder, ZeroBubbleH1LargeWeightChunks) {
  // When W exceeds F or B the published pattern cannot hide a full W per bubble slot: the bubble is
  // (p-1)(F + B - min(F, B, W)) rather than the paper's (p-1)(F + B - W).
  const Times cases[] = {{1, 1, 2}, {1, 2, 2}, {2, 1, 3}, {3, 1, 2}};
  for (Times t : cases)
    for (int pp : {2, 4, 8})
      for (int m : {pp, 2 * pp, 3 * pp + 1}) {
        SCOPED_TRACE(label(Schedule::kZeroBubble, pp, 1, m, t));
        const Eval e = evaluate(Schedule::kZeroBubble, pp, 1, m, t);
        ASSERT_TRUE(e.ok) << e.error;
        EXPECT_NEAR(e.makespan, m * (t.f + t.b + t.w) + (pp - 1) * (t.f + t.b - std::min({t.f, t.b, t.w})),
                    kTol);
      }
}

TEST(ScheduleOrder, ZeroBubbleFewMicrobatchesRunsAndBeats1F1B) {
  for (int pp : {2, 4, 8})
    for (int m = 1; m < pp; ++m) {
      SCOPED_TRACE(label(Schedule::kZeroBubble, pp, 1, m, Times{}));
      const Eval z = evaluate(Schedule::kZeroBubble, pp, 1, m, Times{});
      ASSERT_TRUE(z.ok) << z.error;
      EXPECT_LT(z.makespan, evaluate(Schedule::k1F1B, pp, 1, m, Times{}).makespan);
    }
}

TEST(ScheduleOrder, ZeroBubbleH1Shape) {
  // Rank r of p: p-r-1 warm-up F, r steps F B with W deferred, F B W, cool-down B W, then the r
  // deferred W; W in microbatch order.
  const int pp = 4, m = 8;
  for (int r = 0; r < pp; ++r) {
    const auto o = schedule_order(Schedule::kZeroBubble, pp, 1, m, r);
    ASSERT_EQ(o.size(), 3u * m);
    int leading_f = 0;
    while (o[leading_f].pass == ChunkPass::kF) ++leading_f;
    EXPECT_EQ(leading_f, pp - r);  // warm-up plus the first steady F
    int trailing_w = 0;
    for (auto it = o.rbegin(); it != o.rend() && it->pass == ChunkPass::kW; ++it) ++trailing_w;
    EXPECT_EQ(trailing_w, r + 1) << r;  // the r deferred W after the last B's own W
    int next_w = 0;
    for (const auto& st : o) {
      EXPECT_NE(st.pass, ChunkPass::kBW);
      if (st.pass == ChunkPass::kW) {
        EXPECT_EQ(st.microbatch, next_w++);
      }
    }
  }
  std::string got;
  for (const auto& st : schedule_order(Schedule::kZeroBubble, 4, 1, 6, 2))
    got += std::string(pass_name(st.pass)) + std::to_string(st.microbatch) + " ";
  EXPECT_EQ(got, "F0 F1 B0 F2 B1 F3 B2 W0 F4 B3 W1 F5 B4 W2 B5 W3 W4 W5 ");
}

// ---------------------------------------------------------------------------------------- DualPipe

int expected_pairs(int pp, int m, int rank) {
  // Step 4 issues two _forward_backward_chunk per iteration (one on the middle ranks' first
  // iteration), step 5 one per iteration.
  const int h = std::min(rank, pp - 1 - rank);
  const bool middle = h == pp / 2 - 1;
  const int step4 = m / 2 - pp + h + 1;
  const int step5 = pp / 2 - h - 1;
  return 2 * step4 + step5 - (middle ? 1 : 0);
}

TEST(ScheduleOrder, DualPipeCounts) {
  for (int pp : {2, 4, 6, 8})
    for (int m : {2 * pp, 2 * pp + 2, 3 * pp + (3 * pp) % 2, 4 * pp}) {
      for (int r = 0; r < pp; ++r) {
        SCOPED_TRACE(label(Schedule::kDualPipe, pp, 1, m, Times{}) + " rank " + std::to_string(r));
        const auto o = schedule_order(Schedule::kDualPipe, pp, 1, m, r);
        int f = 0, back = 0, b = 0, w = 0, pairs = 0;
        int per_dir_f[2] = {0, 0}, per_dir_b[2] = {0, 0};
        for (const auto& st : o) {
          if (st.pass == ChunkPass::kF) ++f, ++per_dir_f[st.chunk];
          if (st.pass == ChunkPass::kB || st.pass == ChunkPass::kBW) ++back, ++per_dir_b[st.chunk];
          if (st.pass == ChunkPass::kB) ++b;
          if (st.pass == ChunkPass::kW) ++w;
          if (st.overlap_next) ++pairs;
        }
        EXPECT_EQ(f, m);
        EXPECT_EQ(back, m);
        EXPECT_EQ(per_dir_f[0], m / 2);
        EXPECT_EQ(per_dir_f[1], m / 2);
        EXPECT_EQ(per_dir_b[0], m / 2);
        EXPECT_EQ(per_dir_b[1], m / 2);
        EXPECT_EQ(b, w);
        // Zero-bubble backwards: step 3 (PP/2-h-1), half of step 6 (h+1 chunks), step 7 (PP/2-h-1).
        const int h = std::min(r, pp - 1 - r);
        EXPECT_EQ(b, pp - 1 - h);
        EXPECT_EQ(pairs, expected_pairs(pp, m, r));
        if (r == 0 && pp >= 4) {  // schedule.cpp's lone chunks on rank 0
          EXPECT_EQ(pairs, m - (3 * pp / 2 - 1));
        }
      }
    }
}

TEST(ScheduleOrder, DualPipeRankZeroOrder) {
  // pp=4, m=8, rank 0 (half_rank 0, not a middle rank); microbatches 0..3 go direction 0 (chunk 0),
  // 4..7 direction 1 (chunk 1). '+' marks an overlapped F&B pair.
  const auto o = schedule_order(Schedule::kDualPipe, 4, 1, 8, 0);
  std::string got;
  for (const auto& st : o) {
    got += std::string(pass_name(st.pass)) + std::to_string(st.microbatch);
    got += st.overlap_next ? "+" : " ";
  }
  EXPECT_EQ(got,
            // step 1: F0 x2; step 2: F0 F1; step 3: B1 W1 F1; step 4 (2 iterations): F0&B1, F1&B0;
            // step 5: B1, F1&B0; step 6: B1 B0 (zero bubble from B0); step 7: W B0; step 8: W
            "F0 F1 F2 F4 B4 W4 F5 F3+BW5 F6+BW0 BW6 F7+BW1 BW7 B2 W2 B3 W3 ");
}

TEST(ScheduleOrder, DualPipeMiddleRankFirstMainStepNotOverlapped) {
  // pp=4: ranks 1 and 2 are the middle ranks; their first step-4 F and B are issued separately.
  for (int r : {1, 2}) {
    const auto o = schedule_order(Schedule::kDualPipe, 4, 1, 8, r);
    // step 1: none; step 2: 2x (F0 F1) = 4 F; step 3: none; then step 4 starts.
    ASSERT_GE(o.size(), 6u);
    EXPECT_EQ(o[4].pass, ChunkPass::kF);
    EXPECT_FALSE(o[4].overlap_next);
    EXPECT_EQ(o[5].pass, ChunkPass::kBW);
    EXPECT_TRUE(o[6].overlap_next);
  }
}

TEST(ScheduleOrder, DualPipeMirrorSymmetry) {
  // Rank r and rank pp-1-r run the same program with the directions swapped.
  for (int pp : {2, 4, 8}) {
    const int m = 3 * pp;
    for (int r = 0; r < pp / 2; ++r) {
      const auto a = schedule_order(Schedule::kDualPipe, pp, 1, m, r);
      const auto b = schedule_order(Schedule::kDualPipe, pp, 1, m, pp - 1 - r);
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i].pass, b[i].pass);
        EXPECT_EQ(a[i].chunk, 1 - b[i].chunk);
        EXPECT_EQ(a[i].microbatch % (m / 2), b[i].microbatch % (m / 2));
        EXPECT_EQ(a[i].overlap_next, b[i].overlap_next);
      }
    }
  }
}

TEST(ScheduleOrder, DualPipeMakespan) {
  for (Times t : kRatios)
    for (int pp : {2, 4, 8})
      for (int m : {2 * pp, 2 * pp + 2, 3 * pp, 4 * pp}) {
        SCOPED_TRACE(label(Schedule::kDualPipe, pp, 1, m, t));
        const Eval e = evaluate(Schedule::kDualPipe, pp, 1, m, t);
        ASSERT_TRUE(e.ok) << e.error;
        const Eval again = evaluate(Schedule::kDualPipe, pp, 1, m, t, /*reverse_sweep=*/true);
        ASSERT_TRUE(again.ok) << again.error;
        EXPECT_EQ(e.makespan, again.makespan);
        const double one_f_one_b = (m + pp - 1) * (t.f + t.b + t.w);
        EXPECT_LE(e.makespan, one_f_one_b + kTol);
        if (pp > 2) {
          EXPECT_LT(e.makespan, one_f_one_b);
        }
        if (t.f == 1 && t.b == 1 && t.w == 1) {
          // DeepSeek-V3 Table 2 with F&B = F + B + W (no overlap benefit), full backward B + W.
          const double fb = t.f + t.b + t.w, full_b = t.b + t.w;
          EXPECT_NEAR(e.makespan, m * (t.f + t.b + t.w) + (pp / 2 - 1) * (fb + full_b - 3 * t.w), kTol);
        }
      }
}

// models::dualpipe_timeline (the analytic engine's compiled walk over half the ranks, mirrored) against this
// file's event-level walk over every rank, with equal stages, no sends and pairs as long as their parts.
TEST(ScheduleOrder, DualPipeTimelineMatchesTheEventWalk) {
  for (Times t : kRatios)
    for (int pp : {2, 4, 8, 16})
      for (int m : {2 * pp, 2 * pp + 2, 3 * pp, 4 * pp, 16 * pp}) {
        if (m % 2 != 0) continue;
        SCOPED_TRACE(label(Schedule::kDualPipe, pp, 1, m, t));
        const Eval e = evaluate(Schedule::kDualPipe, pp, 1, m, t);
        ASSERT_TRUE(e.ok) << e.error;
        std::vector<StageChunk> st(static_cast<std::size_t>(pp));
        for (StageChunk& c : st) {
          c.f = t.f;
          c.b = t.b;
          c.w = t.w;
          c.bw = t.b + t.w;
          c.fb_pair = t.f + t.b + t.w;
        }
        double end = 0;
        for (const SchedulePhases& ph : dualpipe_timeline(pp, m, st)) end = std::max(end, ph.total());
        EXPECT_NEAR(end, e.makespan, kTol);
      }
}

// ------------------------------------------------------------------------------------------ common

TEST(ScheduleOrder, EvaluationIndependentOfSweepOrder) {
  for (Schedule s : kAll)
    for (int pp : {2, 4, 8}) {
      const int m = 2 * pp;  // valid for every schedule
      const Eval a = evaluate(s, pp, 2, m, Times{1, 2, 1});
      const Eval b = evaluate(s, pp, 2, m, Times{1, 2, 1}, true);
      ASSERT_TRUE(a.ok && b.ok) << a.error << b.error;
      EXPECT_EQ(a.makespan, b.makespan) << to_string(s);
    }
}

TEST(ScheduleOrder, PeakInFlightMatchesActivationModel) {
  // Forwards issued minus backwards issued, at the peak, equals schedule.hpp's activations_in_flight
  // (in stage units: divided by vpp for interleaved).
  for (Schedule s : kAll)
    for (int pp : {2, 4, 8}) {
      const int vpp = s == Schedule::kInterleaved ? 2 : 1;
      const int m = 4 * pp;
      for (int r = 0; r < pp; ++r) {
        int live = 0, peak = 0;
        for (const auto& st : schedule_order(s, pp, vpp, m, r)) {
          if (st.pass == ChunkPass::kF) ++live;
          if (st.pass == ChunkPass::kB || st.pass == ChunkPass::kBW) --live;
          peak = std::max(peak, live);
        }
        EXPECT_NEAR(double(peak) / vpp, activations_in_flight(s, pp, vpp, r), kTol)
            << to_string(s) << " pp=" << pp << " rank " << r;
      }
    }
}

TEST(ScheduleOrder, StageOf) {
  EXPECT_EQ(stage_of(Schedule::k1F1B, 4, 1, 3, 0), 3);
  EXPECT_EQ(stage_of(Schedule::kZeroBubble, 4, 1, 2, 0), 2);
  EXPECT_EQ(stage_of(Schedule::kInterleaved, 4, 3, 1, 0), 1);
  EXPECT_EQ(stage_of(Schedule::kInterleaved, 4, 3, 1, 2), 9);
  EXPECT_EQ(stage_of(Schedule::kInterleaved, 4, 3, 3, 2), 11);
  EXPECT_EQ(stage_of(Schedule::kDualPipe, 8, 1, 0, 0), 0);
  EXPECT_EQ(stage_of(Schedule::kDualPipe, 8, 1, 0, 1), 7);
  EXPECT_EQ(stage_of(Schedule::kDualPipe, 8, 1, 5, 1), 2);
  EXPECT_EQ(pipeline_stages(Schedule::kInterleaved, 4, 3), 12);
  EXPECT_EQ(pipeline_stages(Schedule::kDualPipe, 4, 1), 4);
  // Every stage is computed by exactly one (rank, chunk).
  for (Schedule s : kAll) {
    const int pp = 4, vpp = s == Schedule::kInterleaved ? 3 : 1;
    const int chunks = s == Schedule::kInterleaved ? vpp : s == Schedule::kDualPipe ? 2 : 1;
    std::map<int, int> seen;
    for (int r = 0; r < pp; ++r)
      for (int c = 0; c < chunks; ++c) ++seen[stage_of(s, pp, vpp, r, c)];
    const int per_stage = s == Schedule::kDualPipe ? 2 : 1;  // once per direction
    EXPECT_EQ(int(seen.size()), pipeline_stages(s, pp, vpp)) << to_string(s);
    for (const auto& [stage, n] : seen) EXPECT_EQ(n, per_stage) << to_string(s) << " stage " << stage;
  }
  EXPECT_THROW(stage_of(Schedule::k1F1B, 4, 1, 4, 0), ConfigError);
  EXPECT_THROW(stage_of(Schedule::k1F1B, 4, 1, 0, 1), ConfigError);
  EXPECT_THROW(stage_of(Schedule::kDualPipe, 4, 1, 0, 2), ConfigError);
  EXPECT_THROW(stage_of(Schedule::kInterleaved, 4, 2, 0, 2), ConfigError);
}

TEST(ScheduleOrder, MinMicrobatches) {
  EXPECT_EQ(min_microbatches(Schedule::k1F1B, 8), 1);
  EXPECT_EQ(min_microbatches(Schedule::kZeroBubble, 8), 1);
  EXPECT_EQ(min_microbatches(Schedule::kInterleaved, 8), 8);
  EXPECT_EQ(min_microbatches(Schedule::kDualPipe, 8), 16);
  for (Schedule s : kAll)
    for (int pp : {2, 4, 8}) EXPECT_NO_THROW(schedule_order(s, pp, 2, min_microbatches(s, pp), 0));
}

TEST(ScheduleOrder, InvalidMicrobatchCountsThrow) {
  EXPECT_THROW(schedule_order(Schedule::k1F1B, 4, 1, 0, 0), ConfigError);
  EXPECT_THROW(schedule_order(Schedule::kZeroBubble, 4, 1, -1, 0), ConfigError);
  EXPECT_THROW(schedule_order(Schedule::kInterleaved, 4, 2, 6, 0), ConfigError);  // not a multiple of pp
  EXPECT_THROW(schedule_order(Schedule::kInterleaved, 4, 2, 0, 0), ConfigError);
  EXPECT_THROW(schedule_order(Schedule::kInterleaved, 4, 1, 8, 0), ConfigError);  // vpp < 2
  EXPECT_THROW(schedule_order(Schedule::kDualPipe, 4, 1, 6, 0), ConfigError);     // m < 2 pp
  EXPECT_THROW(schedule_order(Schedule::kDualPipe, 4, 1, 9, 0), ConfigError);     // odd m
  EXPECT_THROW(schedule_order(Schedule::kDualPipe, 3, 1, 12, 0), ConfigError);    // odd pp
  EXPECT_THROW(schedule_order(Schedule::k1F1B, 4, 1, 8, 4), ConfigError);         // rank out of range
  EXPECT_THROW(schedule_order(Schedule::k1F1B, 0, 1, 8, 0), ConfigError);
  try {
    schedule_order(Schedule::kDualPipe, 4, 1, 6, 0);
    FAIL() << "no exception";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("expected an even number of microbatches of at least 2 x pp = 8"), std::string::npos)
        << what;
    EXPECT_NE(what.find("found 6 microbatches"), std::string::npos) << what;
  }
  try {
    schedule_order(Schedule::kInterleaved, 4, 2, 6, 0);
    FAIL() << "no exception";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("divisible by pp=4"), std::string::npos) << what;
    EXPECT_NE(what.find("found 6 microbatches"), std::string::npos) << what;
  }
}

// The transfers of DualPipe rank 0 of PP2 with 4 microbatches, read off deepseek-ai/DualPipe's step()
// by hand. Rank 0 computes stage 0 of direction 0 (microbatches 0, 1) and stage 1 of direction 1
// (microbatches 2, 3). "s"/"r": send/receive; "F"/"B": activation/gradient; then direction:microbatch and
// the receiving stage. Step 2: F0:0 (no receive: first stage), its output sent with the next commit, where
// F1:2's input is received. Step 4 (middle rank, first iteration not overlapped): F0:1, BW1:2 (last stage
// of direction 1: no receive), then both outputs go with the pair's commit, which also receives the pair's
// two inputs. Step 6: BW1:3, then B0:1 (zero bubble) with its input, W0:1, and nothing left at the end.
TEST(ScheduleOrder, DualPipeCommitsFollowTheReference) {
  const DualPipeComm c = dualpipe_comm(2, 4, 0);
  const auto ops = [](const std::vector<P2pOp>& v) {
    std::string s;
    for (const P2pOp& o : v)
      s += std::string(o.send ? "s" : "r") + (o.gradient ? "B" : "F") + std::to_string(o.direction) + ":" +
           std::to_string(o.microbatch) + ">" + std::to_string(o.to_stage) + " ";
    return s;
  };
  ASSERT_EQ(c.order.size(), 9u);  // F0:0 F1:2 F0:1 BW1:2 F1:3&BW0:0 BW1:3 B0:1 W0:1
  ASSERT_EQ(c.commit.size(), 9u);
  const std::vector<std::string> want = {"", "sF0:0>1 rF1:2>1 ", "", "", "sF0:1>1 sB1:2>0 rF1:3>1 rB0:0>0 ",
                                         "",  // the pair's backward
                                         "", "sB1:3>0 rB0:1>0 ", ""};
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_EQ(ops(c.commit[i]), want[i]) << "before step " << i;
  EXPECT_EQ(ops(c.last), "");
  EXPECT_EQ(c.order.back().pass, ChunkPass::kW);

  // Rank 1 of PP4 (a middle rank, nothing in step 1): step 2 appends the first F0 input's receive before
  // its loop, so it is committed with that F0.
  const DualPipeComm d = dualpipe_comm(4, 8, 1);
  EXPECT_EQ(ops(d.commit[0]), "rF0:0>1 ");
  EXPECT_EQ(d.order[0].pass, ChunkPass::kF);
  EXPECT_EQ(d.order[0].chunk, 0);
  // F1:4's commit carries F0:0's output (a middle rank appends it right after the F0), the next F0's input
  // (received a commit ahead) and F1:4's own.
  EXPECT_EQ(ops(d.commit[1]), "sF0:0>2 rF0:1>1 rF1:4>2 ");
}

// Every transfer has one send and one receive; the receive is committed no later than the computation
// that uses its data, and the send after the computation that made it.
TEST(ScheduleOrder, DualPipeTransfersPairUp) {
  for (int pp : {2, 4, 6, 8, 16})
    for (int m : {2 * pp, 2 * pp + 2, 4 * pp}) {
      std::map<std::tuple<bool, int, int, int>, int> sends, recvs;
      for (int r = 0; r < pp; ++r) {
        SCOPED_TRACE("pp " + std::to_string(pp) + " m " + std::to_string(m) + " rank " + std::to_string(r));
        const DualPipeComm c = dualpipe_comm(pp, m, r);
        ASSERT_EQ(c.commit.size(), c.order.size());
        // When each chunk ran (step index) and where each transfer end was committed.
        std::map<std::tuple<bool, int, int, int>, std::size_t> made, used, sent_at, recv_at;
        for (std::size_t i = 0; i <= c.order.size(); ++i) {
          const auto& batch = i < c.order.size() ? c.commit[i] : c.last;
          for (const P2pOp& o : batch) {
            const auto k = std::make_tuple(o.gradient, o.direction, o.microbatch, o.to_stage);
            ++(o.send ? sends : recvs)[k];
            (o.send ? sent_at : recv_at)[k] = i;
          }
          if (i == c.order.size()) break;
          const ChunkStep& st = c.order[i];
          const int v = stage_of(Schedule::kDualPipe, pp, 1, r, st.chunk);
          if (st.pass == ChunkPass::kF) {
            if (v > 0) used[{false, st.chunk, st.microbatch, v}] = i;
            if (v < pp - 1) made[{false, st.chunk, st.microbatch, v + 1}] = i;
          } else if (st.pass != ChunkPass::kW) {
            if (v < pp - 1) used[{true, st.chunk, st.microbatch, v}] = i;
            if (v > 0) made[{true, st.chunk, st.microbatch, v - 1}] = i;
          }
        }
        EXPECT_EQ(made.size(), sent_at.size());
        EXPECT_EQ(used.size(), recv_at.size());
        for (const auto& [k, i] : made) {
          ASSERT_TRUE(sent_at.count(k));
          EXPECT_GT(sent_at[k], i);
        }
        for (const auto& [k, i] : used) {
          ASSERT_TRUE(recv_at.count(k));
          EXPECT_LE(recv_at[k], i);
        }
      }
      EXPECT_EQ(sends.size(), recvs.size());
      for (const auto& [k, n] : sends) {
        EXPECT_EQ(n, 1);
        EXPECT_EQ(recvs[k], 1);
      }
    }
}

}  // namespace
}  // namespace moesim::models
