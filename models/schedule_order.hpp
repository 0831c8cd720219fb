#pragma once
/// \file Per-rank issue order of pipeline chunks for the four schedules, as the reference
/// implementations issue them, for a discrete-event engine that executes them with real dependencies.
///
/// Sources:
///  - 1F1B (PipeDream-Flush): Megatron-Core `forward_backward_pipelining_without_interleaving`.
///  - interleaved: Megatron-Core `forward_backward_pipelining_with_interleaving` (warm-up count from
///    `get_pp_rank_microbatches`, chunk and microbatch of the k-th virtual microbatch from
///    `get_model_chunk_id` / `get_microbatch_id_in_model_chunk`, microbatch group size = pp).
///  - zero bubble: ZB-H1 of Qi et al. 2024 ("Zero Bubble Pipeline Parallelism", ICLR 2024), the
///    uniform B/W split of Megatron-DeepSpeed's `ZeroBubbleH1Pipeline` with exact 1F1B semantics
///    (warm-up F, then r steps F B, then F B W, then B W, then the r deferred W).
///  - DualPipe: deepseek-ai/DualPipe `dualpipe/dualpipe.py`, `DualPipe.step`, steps 1-8.
///
/// Conventions:
///  - Microbatches are global indices 0..m-1. Along one microbatch's path, "stage" 0 is the first
///    stage (it holds the embedding) and the last stage computes the loss.
///  - Dependencies an executor must honour: F(mb, v) after F(mb, v-1); B or BW (mb, v) after F(mb, v)
///    and after B or BW (mb, v+1) (the last stage only after its own F); W(mb, v) after B(mb, v). For
///    DualPipe, v is the stage along the microbatch's direction (see stage_of), so the chain of
///    direction 0 runs over ranks 0 -> pp-1 and the chain of direction 1 over ranks pp-1 -> 0.
///  - The orders say only in which sequence a rank launches computations. DualPipe's transfers, which
///    the reference batches and commits before each computation, are given by dualpipe_comm.

#include <vector>

#include "scenarios/scenario.hpp"

namespace moesim::models {

/// kF forward; kB backward for inputs only; kW backward for weights only (a deferred weight-gradient
/// chunk); kBW backward for inputs and weights together (no split).
enum class ChunkPass { kF, kB, kW, kBW };

/// "F", "B", "W" or "BW".
const char* pass_name(ChunkPass p);

struct ChunkStep {
  ChunkPass pass = ChunkPass::kF;
  int microbatch = 0;         ///< 0..m-1, global microbatch index
  int chunk = 0;              ///< local chunk of this rank: 0..vpp-1 for interleaved (0 for 1F1B and
                              ///< zero bubble); DualPipe: 0 = the rank's forward-direction stage,
                              ///< 1 = its reverse-direction stage
  bool overlap_next = false;  ///< DualPipe: this F step and the next (B or BW) step are one overlapped
                              ///< F&B pair (`_forward_backward_chunk`), launched together
};

/// Smallest valid microbatch count per pipeline: 1 for 1F1B and zero bubble, pp for interleaved
/// (m must also be a multiple of pp, as Megatron-Core requires), 2·pp for DualPipe (m must also be
/// even, as deepseek-ai/DualPipe asserts).
int min_microbatches(Schedule s, int pp);

/// Throws moesim::ConfigError (message "expected ..., found ...") unless pp >= 1, for interleaved
/// vpp >= 2 and m a positive multiple of pp, for DualPipe pp even and m even with m >= 2·pp, and
/// otherwise m >= 1. vpp is ignored by the other schedules.
void check_schedule_order_args(Schedule s, int pp, int vpp, int m);

/// Order in which pipeline rank `rank` (0..pp-1) issues its chunks for m microbatches. Every rank
/// issues m·vpp F steps (interleaved) or m F steps (others), as many B-or-BW steps, and one W per B.
///  - 1F1B: min(m, pp-rank-1) warm-up F, then F/BW pairs, then the remaining BW. Passes kF, kBW.
///  - interleaved: warm-up min((pp-rank-1)·2 + (vpp-1)·pp, m·vpp) virtual microbatches, then 1F1B
///    over virtual microbatches, then cool-down. The k-th forward uses chunk (k/pp)%vpp and
///    microbatch (k/(pp·vpp))·pp + k%pp; the k-th backward chunk vpp-1-(k/pp)%vpp and the same
///    microbatch formula. Passes kF, kBW.
///  - zero bubble (ZB-H1): min(m, pp-rank-1) warm-up F; then up to `rank` steps F,B whose W are
///    deferred; then F,B,W while forwards remain; then B,W; then the deferred W. W always completes
///    the oldest pending microbatch (FIFO). Passes kF, kB, kW on every rank (on rank 0 every B is
///    followed at once by its W, which is the full backward the reference code runs there).
///  - DualPipe: steps 1-8 of `DualPipe.step`; chunk = direction, microbatch = m/2·direction + the
///    per-direction counter. Backward chunks run with zero bubble (step 3, second half of step 6,
///    step 7) are kB and their W come later as kW in FIFO order; the others are kBW. Each
///    `_forward_backward_chunk` is an F step with overlap_next = true followed by its BW step; the
///    middle ranks' first step-4 F and B are issued separately (not overlapped), as in the reference.
/// Throws ConfigError as check_schedule_order_args does, and when rank is outside 0..pp-1.
/// `order` (a 1F1B or interleaved rank order) as Megatron-Core's combined 1F1B runs it
/// (ParallelismSpec::ep_overlap, `--overlap-moe-expert-parallel-comm`): every backward step that has a
/// forward step after it waits for that forward and runs overlapped with it (the F step's overlap_next),
/// so each rank runs one more warm-up forward, then pairs of one microbatch's forward with an earlier
/// microbatch's backward, then one more cool-down backward. A backward never pairs with its own
/// microbatch's forward, and the pipeline keeps its dependencies (rank r+1's backward of a microbatch
/// precedes rank r's).
std::vector<ChunkStep> overlap_ep_pairs(const std::vector<ChunkStep>& order);

std::vector<ChunkStep> schedule_order(Schedule s, int pp, int vpp, int m, int rank);

/// One point-to-point transfer of a DualPipe rank, where deepseek-ai/DualPipe appends it
/// (`_recv_forward`, `_send_forward`, `_recv_backward`, `_send_backward`). A send and a receive with the
/// same (gradient, direction, microbatch, to_stage) are the two ends of one transfer.
struct P2pOp {
  bool send = false;      ///< false: a receive
  bool gradient = false;  ///< false: a forward activation; true: a backward gradient
  int direction = 0;      ///< the microbatch's direction (ChunkStep::chunk)
  int microbatch = 0;     ///< global microbatch index
  int to_stage = 0;       ///< the receiving stage along the direction
};

/// A DualPipe rank's chunks and its transfers as the reference commits them: `_commit_and_wait_comm`,
/// which starts every computation, posts the operations appended since the previous commit as one
/// `batch_isend_irecv` and waits for all of them, receives and sends alike. A receive can be posted a
/// commit ahead of the chunk that consumes it (step 2's forwards, step 3's), and a chunk's outputs go
/// out with the next computation's commit.
struct DualPipeComm {
  std::vector<ChunkStep> order;            ///< as schedule_order
  std::vector<std::vector<P2pOp>> commit;  ///< commit[i]: the batch committed before step i (always
                                           ///< empty for the backward of an overlapped pair)
  std::vector<P2pOp> last;                 ///< the batch of the final commit, after the last step
};

/// DualPipe's order and commits for rank `rank` of pp with m microbatches. Throws ConfigError as
/// schedule_order does.
DualPipeComm dualpipe_comm(int pp, int m, int rank);

/// Stages along one microbatch's path: pp·vpp for interleaved, pp otherwise.
int pipeline_stages(Schedule s, int pp, int vpp);

/// Pipeline stage (0 = first, holds the embedding) that chunk `chunk` of rank `rank` computes.
/// 1F1B and zero bubble: rank (chunk must be 0). Interleaved: chunk·pp + rank, stages 0..pp·vpp-1.
/// DualPipe: both directions run the same pp stages; microbatches 0..m/2-1 travel direction 0,
/// computed by chunk 0 with stage = rank, and microbatches m/2..m-1 travel direction 1, computed by
/// chunk 1 with stage = pp-1-rank (so direction 1 enters at rank pp-1). Throws ConfigError when
/// rank or chunk is out of range.
int stage_of(Schedule s, int pp, int vpp, int rank, int chunk);

}  // namespace moesim::models
