// Pipeline schedules (models/schedule.cpp) against the closed forms of their papers:
//   1F1B (PipeDream-Flush): step = (M + PP − 1)(F + B + W), bubble (PP − 1)(F + B + W)
//   interleaved (Narayanan et al. 2021): bubble (PP − 1)(F + B + W) / v
//   ZB1P (Qi et al. 2024, ZB-H1): bubble (PP − 1)(F + B − W), B the input-gradient chunk alone
//   DualPipe (DeepSeek-V3 report Table 2): bubble (PP/2 − 1)(F&B + B − 3W), 3PP/2 − 1 lone chunks of
//   each kind on rank 0, 2× parameters, PP + 1 microbatches of activations.
// Here B is the backward-input chunk alone and W the backward-weight chunk.

#include "models/schedule.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace moesim::models {
namespace {

constexpr double kTol = 1e-12;

ChunkTimes simple(double f, double b, double w, double p2p = 0) {
  ChunkTimes t;
  t.f = f;
  t.b = b;
  t.w = w;
  t.f_compute = f;
  t.b_compute = b;
  t.w_compute = w;
  t.p2p = p2p;
  return t;
}

TEST(Schedule, RegistryListsFourSchedules) {
  const auto& s = schedules();
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s.names(), (std::vector<std::string>{"1f1b", "interleaved", "zero_bubble", "dualpipe"}));
  EXPECT_EQ(s.get("dualpipe"), Schedule::kDualPipe);
}

TEST(Schedule, OneFOneBTotal) {
  const double F = 1.0, B = 2.0, W = 0.5;
  for (int pp : {1, 2, 4, 8}) {
    for (int m : {8, 16, 33}) {
      const SchedulePhases ph = evaluate_schedule(Schedule::k1F1B, pp, 1, m, simple(F, B, W));
      // (M + PP − 1)(F + B + W).
      const double want = (m + pp - 1) * (F + B + W);
      EXPECT_NEAR(ph.total(), want, want * kTol) << "pp " << pp << " m " << m;
      // bubble (PP − 1)(F + B + W).
      EXPECT_NEAR(ph.bubble, (pp - 1) * (F + B + W), kTol);
      // PP − 1 warm-up forwards and cool-down backwards; M − PP + 1 steady pairs.
      EXPECT_EQ(ph.lone_f, pp - 1);
      EXPECT_EQ(ph.lone_b, pp - 1);
      EXPECT_EQ(ph.pairs, m - pp + 1);
      // Rank 0 holds PP microbatches of activations; one copy of the parameters.
      EXPECT_EQ(ph.activations_in_flight, pp);
      EXPECT_EQ(ph.parameter_copies, 1);
    }
  }
}

TEST(Schedule, OneFOneBP2pOnTheCriticalPath) {
  // Each of the PP − 1 warm-up and cool-down hops adds one send: bubble + 2(PP − 1)·p2p.
  const SchedulePhases ph = evaluate_schedule(Schedule::k1F1B, 4, 1, 8, simple(1, 2, 0.5, 0.01));
  EXPECT_NEAR(ph.bubble, 3 * 3.5 + 2 * 3 * 0.01, kTol);
  // A single stage has no neighbour: p2p ignored.
  const SchedulePhases one = evaluate_schedule(Schedule::k1F1B, 1, 1, 8, simple(1, 2, 0.5, 0.01));
  EXPECT_NEAR(one.total(), 8 * 3.5, kTol);
}

TEST(Schedule, InterleavedBubbleDividedByV) {
  const double F = 1.0, B = 2.0, W = 0.5;
  for (int v : {2, 3, 4}) {
    const SchedulePhases ph = evaluate_schedule(Schedule::kInterleaved, 4, v, 16, simple(F, B, W));
    // (PP − 1)(F + B + W) / v.
    EXPECT_NEAR(ph.bubble, 3 * (F + B + W) / v, kTol) << "v " << v;
    // Everything else is the M microbatches' work.
    EXPECT_NEAR(ph.total(), 16 * (F + B + W) + 3 * (F + B + W) / v, kTol);
    // Megatron: PP·(1 + (PP − 1)/(PP·v)) microbatches in flight on rank 0.
    EXPECT_NEAR(ph.activations_in_flight, 4 * (1 + 3.0 / (4 * v)), kTol);
  }
}

TEST(Schedule, ZeroBubble) {
  const double F = 1.0, B = 2.0, W = 0.5;
  const SchedulePhases ph = evaluate_schedule(Schedule::kZeroBubble, 4, 1, 12, simple(F, B, W));
  // (PP − 1)(F + B − W) = 3 · 2.5 = 7.5.
  EXPECT_NEAR(ph.bubble, 3 * (F + B - W), kTol);
  // M(F + B + W) + bubble = 12 · 3.5 + 7.5 = 49.5.
  EXPECT_NEAR(ph.total(), 49.5, kTol);
  // Deferred W of the cool-down: (PP − 1)·W.
  EXPECT_NEAR(ph.weight_only, 3 * W, kTol);
  EXPECT_EQ(ph.activations_in_flight, 4);
  // W large enough to fill the bubble: F + B − W < 0 → no bubble.
  const SchedulePhases full = evaluate_schedule(Schedule::kZeroBubble, 4, 1, 12, simple(1, 1, 2.5));
  EXPECT_EQ(full.bubble, 0.0);
}

ChunkTimes dualpipe_chunk() {
  ChunkTimes t;
  t.f = 1.2;  // alone: compute + exposed communication
  t.b = 2.3;
  t.w = 0.4;
  t.f_compute = 1.0;
  t.b_compute = 2.0;
  t.w_compute = 0.4;
  t.f_overlappable = 1.5;
  t.b_overlappable = 1.8;
  t.f_blocking = 0.05;
  t.b_blocking = 0.07;
  t.p2p = 0;
  return t;
}

TEST(Schedule, DualPipePhases) {
  const int pp = 8, m = 20;
  const ChunkTimes t = dualpipe_chunk();
  const SchedulePhases ph = evaluate_schedule(Schedule::kDualPipe, pp, 1, m, t);
  // Lone chunks on rank 0: 3PP/2 − 1 = 11 of each kind; pairs M − 11 = 9.
  EXPECT_EQ(ph.lone_f, 11);
  EXPECT_EQ(ph.lone_b, 11);
  EXPECT_EQ(ph.pairs, 9);
  // Pair = max(compute 1.0 + 2.0 + 0.4 = 3.4, communication 1.5 + 1.8 = 3.3) + blocking 0.12 = 3.52.
  EXPECT_NEAR(ph.pair_time, 3.52, kTol);
  // Bubble (PP/2 − 1)(pair + B_full − 3W), B_full = b + w: 3 · (3.52 + 2.7 − 1.2) = 15.06.
  EXPECT_NEAR(ph.bubble, 3 * (3.52 + 2.3 + 0.4 - 1.2), kTol);
  // Lone phases: 11·F, 11·B, 11·W; steady 9 pairs.
  EXPECT_NEAR(ph.forward_only, 11 * 1.2, kTol);
  EXPECT_NEAR(ph.backward_only, 11 * 2.3, kTol);
  EXPECT_NEAR(ph.weight_only, 11 * 0.4, kTol);
  EXPECT_NEAR(ph.steady, 9 * 3.52, kTol);
  // DualPipe holds two copies of the parameters and PP + 1 microbatches of activations.
  EXPECT_EQ(ph.parameter_copies, 2);
  EXPECT_EQ(ph.activations_in_flight, pp + 1);
}

TEST(Schedule, DualPipeCommunicationBoundPair) {
  ChunkTimes t = dualpipe_chunk();
  t.f_overlappable = 2.5;
  t.b_overlappable = 2.0;
  t.p2p = 0.1;
  const SchedulePhases ph = evaluate_schedule(Schedule::kDualPipe, 4, 1, 8, t);
  // Pair = max(3.4, 2.5 + 2.0 + 2·0.1 = 4.7) + 0.12 = 4.82.
  EXPECT_NEAR(ph.pair_time, 4.82, kTol);
  // PP = 4: lone 3·4/2 − 1 = 5, pairs 3; bubble (2 − 1)(4.82 + (2.3 + 0.4) − 1.2) + (PP − 1)·p2p = 6.32 +
  // 0.3.
  EXPECT_EQ(ph.lone_f, 5);
  EXPECT_EQ(ph.pairs, 3);
  EXPECT_NEAR(ph.bubble, 6.32 + 0.3, kTol);
}

TEST(Schedule, DualPipeWithPublishedDeepSeekChunks) {
  // ISCA'25 Table 4 (2048 H800, PP16): 1F 1.13 s, 1B 1.99 s, 1W 0.48 s over 3·16/2 − 1 = 23 lone
  // chunks → F = 49 ms, B = 86.5 ms, W = 20.9 ms per chunk; overlapped 1F1B phase 13.95 s over
  // M − 23 = 120 − 23 = 97 pairs (M = 15360 sequences / dp 128) → pair = 13.95 / 97 s.
  const double F = 0.049, B = 0.0865, W = 0.0209, pair = 13.95 / 97;
  ChunkTimes t;
  t.f = F;
  t.b = B;
  t.w = W;
  // A compute-bound pair of exactly `pair` seconds.
  t.f_compute = pair * 0.3;
  t.b_compute = pair * 0.5;
  t.w_compute = pair * 0.2;
  t.f_overlappable = pair * 0.4;
  t.b_overlappable = pair * 0.4;
  const SchedulePhases ph = evaluate_schedule(Schedule::kDualPipe, 16, 1, 120, t);
  EXPECT_EQ(ph.lone_f, 23);
  EXPECT_EQ(ph.pairs, 97);
  EXPECT_NEAR(ph.pair_time, pair, 1e-12);
  // (PP/2 − 1)(pair + B_full − 3W), Table 4 lists 1B and 1W apart so B_full = B + W:
  // 7 · (0.143814 + 0.1074 − 0.0627) ≈ 1.320 s.
  const double want = (8 - 1) * (pair + (B + W) - 3 * W);
  EXPECT_NEAR(ph.bubble, want, 1e-12);
  // The lone and steady phases reproduce the published ones.
  EXPECT_NEAR(ph.forward_only, 1.127, 1e-9);    // 23 · 49 ms (published 1.13 s)
  EXPECT_NEAR(ph.backward_only, 1.9895, 1e-9);  // 23 · 86.5 ms (published 1.99 s)
  EXPECT_NEAR(ph.weight_only, 0.4807, 1e-9);    // 23 · 20.9 ms (published 0.48 s)
  EXPECT_NEAR(ph.steady, 13.95, 1e-9);
  // Note: the published measured bubble is 2.06 s; Table 2's formula gives ≈ 1.32 s from the same
  // chunk times, so the measured bubble includes more than the formula accounts for.
  EXPECT_LT(ph.bubble, 2.06);
}

}  // namespace
}  // namespace moesim::models
