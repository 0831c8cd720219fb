#pragma once
/// \file Pipeline schedules: how a rank's per-microbatch forward (F), backward-input (B) and
/// backward-weight (W) chunks add up to a step, with the bubble each schedule implies.

#include <string>
#include <vector>

#include "scenarios/scenario.hpp"

namespace moesim::models {

/// Per-microbatch times of the critical pipeline rank (all its virtual stages together).
struct ChunkTimes {
  double f = 0, b = 0, w = 0;  ///< each chunk alone: compute plus exposed communication
  double f_compute = 0, b_compute = 0, w_compute = 0;
  double f_overlappable = 0, b_overlappable = 0;  ///< communication a co-scheduled chunk can hide
  double f_blocking = 0, b_blocking = 0;          ///< communication nothing can hide (TP collectives)
  double p2p = 0;                                 ///< activation send/recv between neighbouring stages
  double fb_pair = 0;    ///< DualPipe, or 1F1B/interleaved with ep_overlap: one overlapped F&B pair, from
                         ///< its components (0: from sums)
  double pair_wait = 0;  ///< combined 1F1B with pp > 1: what each steady pair waits, per microbatch, for the
                         ///< neighbouring ranks' pipeline sends (models::combined_pair_waits)
};

/// The step's pipeline part on the critical rank, split into phases.
struct SchedulePhases {
  double forward_only = 0;   ///< chunks of F with nothing to overlap (warm-up)
  double steady = 0;         ///< F and B chunks in steady state (overlapped pairs for DualPipe)
  double backward_only = 0;  ///< chunks of B with nothing to overlap (cool-down)
  double weight_only = 0;    ///< deferred W chunks (zero-bubble, DualPipe)
  double bubble = 0;         ///< idle time waiting on other stages
  int lone_f = 0, pairs = 0, lone_b = 0;
  double pair_time = 0;              ///< one steady-state unit: F+B(+W), or an overlapped F&B pair
  double activations_in_flight = 0;  ///< microbatches of one stage's activations held at the peak
  double parameter_copies = 1;       ///< model copies per rank (DualPipe: 2)
  double total() const { return forward_only + steady + backward_only + weight_only + bubble; }
};

/// Microbatches of one stage's activations pipeline rank `rank` holds at its peak: 1F1B and ZB1P
/// PP - rank (PipeDream-Flush warm-up plus one); interleaved ((PP - rank - 1)·2 + (v - 1)·PP + 1) / v
/// (Megatron-Core warm-up count, in stage units); DualPipe PP + 1 on every rank (DeepSeek-V3 Table 2).
double activations_in_flight(Schedule s, int pp, int vpp, int rank);

/// Evaluates a schedule for `pp` ranks, `vpp` virtual stages, `m` microbatches per pipeline.
/// Bubbles (DeepSeek-V3 report Table 2, where B is the full backward; Narayanan et al. 2021 for
/// interleaving; Qi et al. 2024 for zero bubble): 1F1B (PP-1)(F+B), interleaved (PP-1)(F+B)/v, ZB1P
/// (PP-1)(F+B-2W), DualPipe (PP/2-1)(F&B+B-3W); with ChunkTimes' b (input gradients only) these are
/// ZB1P (PP-1)(F+b-w) and DualPipe (PP/2-1)(F&B+b-2w). models/schedule_order.hpp has the exact orders,
/// checked against these.
SchedulePhases evaluate_schedule(Schedule s, int pp, int vpp, int m, const ChunkTimes& t);

/// What one pipeline stage costs a DualPipe rank per microbatch, each chunk alone.
struct StageChunk {
  double f = 0;        ///< forward
  double b = 0;        ///< input gradients only (a zero-bubble backward)
  double w = 0;        ///< weight gradients run as their own chunk
  double bw = 0;       ///< full backward (input and weight gradients together)
  double fb_pair = 0;  ///< this stage's forward overlapped with stage pp-1-v's backward (its rank's pair)
  double p2p = 0;      ///< activation send to the next stage along a microbatch's path
};

/// DualPipe with its real dependencies instead of DeepSeek-V3 Table 2's uniform-stage bubble: every rank
/// issues its chunks in deepseek-ai/DualPipe's order (models::schedule_order), each chunk starting when the
/// rank is free and its inputs have arrived (a forward after the previous stage's forward and send, a
/// backward after its own forward and the next stage's backward and send, a weight chunk after its
/// backward); an overlapped F&B pair starts when both inputs are there. Stages may differ (the first holds
/// the embedding and dense layers, the last the head), so ranks differ in busy time and bubble.
/// `stages[v]` for v in 0..pp-1; pp even, m even, m >= 2·pp (check_schedule_order_args). Returns the phases
/// of every rank 0..pp-1 with counts as the discrete-event engine reports them (a lone BW chunk is
/// backward-only, every lone W weight-only); each rank's total() is the moment its last chunk ends, its
/// bubble what it waited. Rank r and rank pp-1-r run mirrored timelines (their stages and orders are the
/// same with the directions swapped), so each microbatch's chunk of stage v ends at the same time in both
/// directions and only the first pp/2 ranks are walked. With `extrapolate` and m > 16·pp, the timelines
/// of 8·pp and 8·pp + 2 microbatches are walked and the increment repeated (m - 8·pp)/2 times, as the
/// discrete-event engine extrapolates its steady state (each further step-4 iteration adds two pairs); the
/// counts stay exact, the ends are off by up to about 1 % where a slower cycle of ranks takes over late
/// (tests/schedule_test.cpp).
std::vector<SchedulePhases> dualpipe_timeline(int pp, int m, const std::vector<StageChunk>& stages,
                                              bool extrapolate = true);

}  // namespace moesim::models
