#pragma once
/// \file The programs the discrete-event engine executes: for every pipeline rank, the instructions of
/// its compute stream for one step, built from the priced workload (models/workload.hpp) in the exact
/// chunk order of its schedule (models/schedule_order.hpp). Each block pass is cut where the compute
/// stream meets the communication stream (the expert all-to-alls): compute segments, "ready" points
/// where an all-to-all may start, and "wait" points where the compute stream needs it finished.
/// Pipeline transfers are send and receive instructions. DualPipe's follow the reference's commits
/// (models::dualpipe_comm): before each computation the rank posts the batch's receives and sends, a send
/// starting once its receiver has posted the matching receive (NCCL point-to-point), and waits for all of
/// them. No SimGrid here: sim/des_runner.hpp runs the programs.
///
/// Where the shared experts go (Megatron-Core's shared-expert overlap, workload.shared_expert_overlap):
/// with the overlap, the up-projection runs while the dispatch is in flight and the down-projection
/// while the combine is (backward mirrors it); without it, both run after the combine (backward:
/// before the combine's gradient all-to-all), so every all-to-all is exposed.

#include <cstdint>
#include <utility>
#include <vector>

#include "models/schedule_order.hpp"
#include "models/workload.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::sim {

/// One pass of one block cut where the communication stream meets the compute stream. Seconds on the
/// busiest GPU of the rank (the workload's prices); `experts` scales with each GPU's expert rows.
struct PassSegs {
  double pre = 0;              ///< everything before the dispatch (attention, router, permute); a block
                               ///< without routed experts: its attention or mixer
  double shared_up = 0;        ///< shared experts' up-projection and activation
  double experts = 0;          ///< routed expert GEMMs and activation
  double shared_down = 0;      ///< shared experts' down-projection
  double post = 0;             ///< un-permute, combine weighting, residual; a block without routed experts:
                               ///< its MLP
  double tp = 0;               ///< blocking TP collectives, folded into pre/post
  double etp = 0;              ///< expert-TP collectives: a segment of their own just before the experts
  double cp = 0;               ///< exposed CP exchange, folded into pre
  bool recompute_a2a = false;  ///< full recompute repeats the forward dispatch and combine in backward
};

/// The three passes of one block, cut into segments.
struct BlockSegs {
  int layer = 0;     ///< block index
  int moe = -1;      ///< MoE layer index, -1 for a dense block
  PassSegs pass[3];  ///< F, B, W
};

/// Cuts block `b` of `w` by its ops' roles (models::OpRole): shared experts and routed experts into their
/// segments, every other op before or after the routed experts by its position in the block. A block
/// without routed experts is cut into its attention (or mixer) and its MLP (PassCost::mlp_compute).
BlockSegs segments_of(const models::Workload& w, int b);

/// Pipeline phase of a chunk on its rank, as the analytic engine counts them (models::SchedulePhases).
enum ChunkPhase : std::uint8_t {
  kPhaseSteady = 0,  ///< steady state: between the first backward and the last forward, or an overlapped pair
  kPhaseForwardOnly,   ///< a forward before the rank's first backward (warm-up); DualPipe: any lone forward
  kPhaseBackwardOnly,  ///< a backward after the rank's last forward (cool-down); DualPipe: any lone backward
  kPhaseWeightOnly,    ///< a deferred weight chunk after the rank's last forward; DualPipe: any lone W
  kPhaseCount
};

/// The phase of every step of `order` (one rank's schedule_order for `s`). An F step with overlap_next
/// and the step after it (DualPipe's F&B pair) are steady. Other steps: DualPipe by pass (lone F, B or
/// BW, W); the other schedules by position (F before the first B or BW: forward-only; B or BW after
/// the last F: backward-only; W after the last F: weight-only; everything between: steady).
std::vector<ChunkPhase> chunk_phases(Schedule s, const std::vector<models::ChunkStep>& order);

/// Instruction kinds of a compute stream.
enum class Ins : std::uint8_t {
  kCompute,  ///< a timed segment
  kExpert,   ///< a timed segment scaled by the GPU's expert load in layer `moe`
  kReady,    ///< the next all-to-all of the program (Program::colls, in order) may start
  kWait,     ///< wait until the last started all-to-all has finished
  kSend,  ///< post a pipeline transfer to `peer_rank` (message `key`); with `rendezvous` it starts once the
          ///< receiver has posted its receive (kPost)
  kRecv,  ///< wait for pipeline message `key`
  kPost,  ///< post the receive of pipeline message `key` (DualPipe's commits; see kSend)
  kSendWait,  ///< wait until this rank's transfer `key` to `peer_rank` has been delivered
  kTail,      ///< data-parallel synchronisation and optimizer after the last backward
};

/// All-to-all kinds: which direction of the layer's traffic matrix and which bytes per token copy.
enum CollKind { kDispatchF = 0, kCombineF = 1, kCombineB = 2, kDispatchB = 3 };
/// "dispatch", "combine", "combine grad" or "dispatch grad".
const char* coll_name(int k);

/// One instruction of a compute stream.
struct Instr {
  Ins op = Ins::kCompute;
  char pass = 'F';                  ///< 'F', 'B', 'W'; 'S' for the tail
  int moe = -1;                     ///< kExpert: the layer whose per-GPU load scales it
  int layer = -1;                   ///< block index (timeline), -1 outside blocks
  int mb = -1, stage = -1;          ///< microbatch and pipeline stage
  double seconds = 0;               ///< kCompute, kExpert, kTail: s; kSend: bytes per GPU
  double tp = 0, etp = 0, cp = 0;   ///< of `seconds`: TP, expert-TP and CP communication, s
  int peer_rank = -1, key = 0;      ///< kSend, kSendWait: destination pipeline rank and message key; kRecv,
                                    ///< kPost: key
  bool rendezvous = false;          ///< kSend: waits for the receiver's kPost
  const char* what = "";            ///< segment label (timeline)
  ChunkPhase phase = kPhaseSteady;  ///< pipeline phase of the chunk the instruction belongs to
};

/// One all-to-all of a program.
struct Coll {
  int moe = 0;                       ///< MoE layer index
  int kind = kDispatchF;             ///< CollKind
  int layer = 0, mb = 0, stage = 0;  ///< block index, microbatch, pipeline stage (timeline)
  char pass = 'F';                   ///< 'F' or 'B' (full recompute repeats forward all-to-alls in 'B')
};

/// The compute-stream program of one pipeline rank and the all-to-alls its group runs, in the order of
/// its kReady instructions.
struct Program {
  std::vector<Instr> ins;   ///< the compute stream, in order
  std::vector<Coll> colls;  ///< the group's all-to-alls, one per kReady
};

/// Builds the program of every pipeline rank for m microbatches.
class ProgramBuilder {
 public:
  /// For scenario `s` (validated) and its workload `w` (both must outlive the builder).
  ProgramBuilder(const Scenario& s, const models::Workload& w);

  /// Pipeline stages along one microbatch's path.
  int stages() const { return stages_; }
  /// Bytes one GPU sends to the next stage per microbatch (the largest of the ranks).
  double p2p_bytes() const { return p2p_bytes_; }

  /// Pipeline rank and local chunk that compute stage v for chunk family c (DualPipe: direction).
  std::pair<int, int> locate(int c, int v) const;

  /// The program of pipeline rank `rank` for m microbatches, ending with its tail.
  Program build(int rank, int m) const;

 private:
  int key(char kind, int chunk, int mb) const;
  void compute(Program& p, double sec, char pass, int layer, int mb, int v, const char* what, double tp = 0,
               double cp = 0, double etp = 0) const;
  void expert(Program& p, double sec, int moe, char pass, int layer, int mb, int v) const;
  void ready(Program& p, int moe, int kind, char pass, int layer, int mb, int v) const;
  void wait(Program& p) const;
  void recv(Program& p, char kind, int chunk, int mb, int v) const;
  void send(Program& p, char kind, int c, int to_stage, int mb, bool rendezvous = false) const;
  /// DualPipe: one `_commit_and_wait_comm` batch: post its receives and sends, then wait for all of them.
  void commit(Program& p, const std::vector<models::P2pOp>& batch) const;
  void forward_block(Program& p, int b, int mb, int v) const;
  /// `defer_attention_w`: the block's attention weight gradients are left to the caller.
  void backward_block(Program& p, int b, int mb, int v, bool with_w, bool defer_attention_w) const;
  void attention_weight(Program& p, int b, int mb, int v) const;
  void mlp_weight(Program& p, int b, int mb, int v) const;
  void weight_block(Program& p, int b, int mb, int v) const;
  bool first(int v) const { return v == 0; }
  bool last(int v) const { return v == stages_ - 1; }
  void forward(Program& p, const models::ChunkStep& st, int v, bool io = true) const;
  /// `deferred` (delayed weight gradients): receives the last MoE block whose attention weight gradients
  /// were not emitted (-1 when none), for the caller to emit after its pipeline send.
  void backward(Program& p, const models::ChunkStep& st, int v, bool with_w, bool io = true,
                int* deferred = nullptr) const;
  void weight(Program& p, const models::ChunkStep& st, int v) const;
  /// `transfers`: receive both inputs before the pair and send both outputs after it.
  void pair(Program& p, const models::ChunkStep& fs, int vf, const models::ChunkStep& bs, int vb,
            bool transfers = true) const;

  const Scenario& s_;
  const models::Workload& w_;
  int pp_ = 1, vpp_ = 1, stages_ = 1;
  bool shared_overlap_ = true;
  std::vector<std::vector<int>> stage_blocks_;
  std::vector<BlockSegs> segs_;
  std::vector<double> tail_;
  double p2p_bytes_ = 0;
};

}  // namespace moesim::sim
