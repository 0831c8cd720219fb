#pragma once
/// \file The workload of one training step: for every block of the model the priced ops of one
/// microbatch (forward F, backward-input B, backward-weight W), the blocks each pipeline rank runs,
/// and the routing statistics of each MoE layer. Both engines read this.

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "models/compute_cost.hpp"
#include "models/dispatch.hpp"
#include "models/network.hpp"
#include "models/params.hpp"
#include "models/routing_model.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::models {

/// The three passes of a microbatch: forward F, backward for inputs B, backward for weights W.
enum class Pass { kForward = 0, kBackwardInput = 1, kBackwardWeight = 2 };
/// What a communication op is, so a schedule knows what it may overlap (derived from the op's role).
enum class CommKind { kNone, kTensor, kContext, kExpertDispatch, kExpertCombine, kExpertTensor };

/// What an op is in its block. Engines place and overlap ops by this tag, never by their names (a name
/// is a label for tables and traces only).
enum class OpRole {
  kNorm,                 ///< RMSNorm before attention, the MLP or the MTP projection; MLA's low-rank norms
  kAttentionProjection,  ///< Q, K, V projections (MLA down/up-projections) and the output projection
  kAttention,            ///< the fused attention kernel
  kTensorCollective,     ///< tensor-parallel all-gather, reduce-scatter or all-reduce (blocking)
  kContextExchange,      ///< context-parallel ring exchange of K and V (hidden under attention when it can)
  kResidual,             ///< residual add after attention or the MLP
  kDenseFfn,             ///< dense MLP: up-projection, activation, down-projection
  kRouter,               ///< MoE gate GEMM and top-k selection
  kPermute,              ///< permutation of token copies into expert order
  kDispatch,             ///< expert all-to-all towards the experts (backward: gradients back)
  kCombine,              ///< expert all-to-all back to the tokens (backward: gradients to the experts)
  kExpertTensorCollective,  ///< expert-tensor-parallel all-gather + reduce-scatter around the expert
                            ///< GEMMs (blocking; nothing hides it)
  kExperts,                 ///< routed experts: grouped GEMMs and activation
  kSharedUp,         ///< shared experts' up-projection and activation (under the dispatch when overlapped)
  kSharedDown,       ///< shared experts' down-projection (under the combine when overlapped)
  kUnpermute,        ///< un-permutation and weighted sum of the expert outputs
  kQuantize,         ///< FP8 quantisation of a GEMM's operands (precedes the GEMM it feeds)
  kMtpProjection,    ///< MTP module's 2h→h projection of the hidden state and the shifted embedding
  kMtpHead,          ///< MTP module's output head and its loss
  kMixerProjection,  ///< a Mamba-2 or Gated DeltaNet mixer's in_proj and out_proj
  kMambaScan,        ///< a Mamba-2 mixer's causal convolution, chunked SSD scan and gated norm
  kDeltaRule,        ///< a Gated DeltaNet mixer's convolution, q/k L2 norms, chunked delta rule, gated norm
};

/// The communication kind of a role (kNone for compute and memory-bound roles).
constexpr CommKind comm_kind(OpRole r) {
  switch (r) {
    case OpRole::kTensorCollective:
      return CommKind::kTensor;
    case OpRole::kContextExchange:
      return CommKind::kContext;
    case OpRole::kDispatch:
      return CommKind::kExpertDispatch;
    case OpRole::kCombine:
      return CommKind::kExpertCombine;
    case OpRole::kExpertTensorCollective:
      return CommKind::kExpertTensor;
    default:
      return CommKind::kNone;
  }
}

/// One priced op of one microbatch on the busiest GPU of a pipeline rank.
struct Op {
  const char* name = "";  ///< label for tables and traces (engines read `role`)
  OpRole role = OpRole::kNorm;
  Pass pass = Pass::kForward;
  OpKind kind = OpKind::kGemm;
  CommKind comm = CommKind::kNone;  ///< comm_kind(role)
  bool recompute = false;           ///< a forward op run again in backward (activation recompute)
  double seconds = 0;
  double work = 0;                         ///< FLOPs for compute ops, bytes for memory and communication ops
  Precision precision = Precision::kBf16;  ///< of a GEMM's operands (what priced it)
  MemoryKernel memory = MemoryKernel::kStream;  ///< of a memory-bound op: the kernel family that priced it
};

/// Per-pass totals of one block (one microbatch).
struct PassCost {
  double compute = 0;   ///< compute stream, seconds
  double tp_comm = 0;   ///< tensor-parallel collectives (blocking on the compute stream), seconds
  double ep_comm = 0;   ///< expert all-to-all (dispatch + combine), seconds
  double etp_comm = 0;  ///< expert-tensor-parallel collectives, seconds: blocking on the compute stream (not
                        ///< hidden under shared experts; in an overlapped pair beside the other chunk's
                        ///< all-to-all like any computation)
  double ep_exposed = 0;  ///< part of ep_comm not hidden inside the block (shared experts under dispatch and
                          ///< combine), plus etp_comm; seconds
  double cp_comm = 0;     ///< context-parallel KV exchange, seconds
  double cp_exposed = 0;  ///< part of cp_comm not hidden under the attention kernel, seconds
  double flops = 0;       ///< hardware FLOPs executed (recompute included)
  /// DualPipe's four components of a chunk (DeepSeek-V3 report §3.2.1, Figure 4): attention
  /// (everything before the dispatch), dispatch, MLP (experts, shared experts, un-permute) and combine;
  /// seconds.
  double attn_compute = 0, mlp_compute = 0, dispatch = 0, combine = 0;
  /// Of dispatch and combine: their NIC legs (NetworkModel::all_to_all_nic), which pipeline sends leaving
  /// on the same NIC delay in an overlapped pair; 0 for all-to-alls inside one NVLink domain. Seconds.
  double dispatch_nic = 0, combine_nic = 0;
  /// Of compute (and mlp_compute): the routed experts (OpRole::kExperts), priced on the busiest GPU; a
  /// GPU with fewer rows takes this times its MoeLayerDetail::rank_load, seconds.
  double experts = 0;
  /// Time when the block runs alone: compute plus every exposed communication, seconds.
  double alone() const { return compute + tp_comm + ep_exposed + cp_exposed; }
  /// Communication a co-scheduled chunk can hide (DualPipe-style overlap), seconds.
  double overlappable() const { return ep_comm + cp_comm; }
};

/// A transformer block with a dense MLP, with an MoE layer, or a multi-token-prediction module; a hybrid
/// model's Mamba-2, attention or Gated DeltaNet layer (its MLP and MoE layers are kDense and kMoe).
enum class BlockKind { kDense, kMoe, kMtp, kMamba, kAttention, kGatedDeltaNet };

/// The priced ops and per-pass totals of one block (one microbatch).
struct BlockCost {
  BlockKind kind = BlockKind::kDense;
  int layer = 0;  ///< block index (MTP blocks follow the main blocks)
  PassCost pass[3];
  std::vector<Op> ops;  ///< empty when the block repeats another one (see ops_from)
  int ops_from = -1;    ///< identical to this block's ops (-1: its own ops are in `ops`)
  int moe_index = -1;   ///< index into Workload::moe_layers, -1 for dense blocks
};

/// What one pipeline rank runs per microbatch (all its virtual stages).
struct RankWork {
  std::vector<int> blocks;  ///< indices into Workload::blocks
  bool embedding = false, head = false;
  PassCost pass[3];          ///< totals over blocks, embedding and head
  double p2p_seconds = 0;    ///< activation send to the next stage
  double p2p_nic = 0;        ///< p2p_seconds when the send leaves over the NIC (to another node)
  double params = 0;         ///< parameters held (before DualPipe duplication), split by TP/EP
  double expert_params = 0;  ///< of which routed-expert parameters
  double adam_params = 0;    ///< of which the embedding and output head (AdamW's under Muon)
  /// Muon's Newton-Schulz FLOPs over the rank's weight matrices (its TP and expert-TP shares), before the
  /// data-parallel ranks split them: the dense matrices' (over dp) and the routed experts' (over edp).
  double muon_ns_dense = 0, muon_ns_expert = 0;
  double embedding_seconds[3] = {};  ///< of pass[].compute: the embedding (first stage)
  double head_seconds[3] = {};       ///< of pass[].compute: final norm, output head and loss (last stage)
  double p2p_bytes = 0;              ///< activation bytes one GPU sends to the next stage per microbatch
  double activation_bytes = 0;       ///< activations saved per microbatch (after recompute)
  double transient_bytes = 0;        ///< working memory of one microbatch not kept in flight (FP32 logits)
};

/// What the engines need beyond the busiest GPU's prices (Workload::moe_detail).
struct MoeLayerDetail {
  std::vector<double> rank_load;   ///< rows each EP rank computes ÷ the busiest rank's rows (1 for it)
  bool uneven = false;             ///< some rank_load is not 1
  std::vector<double> wire_bytes;  ///< ep × ep forward-dispatch bytes as they travel (LayerRouting);
                                   ///< filled only when build_workload is asked for detail
};

/// The priced workload of one training step (build_workload).
struct Workload {
  ParamCounts params;
  double tokens_per_microbatch = 0;  ///< per pipeline (mbs · seq)
  double model_flops_per_token = 0;  ///< training FLOPs per token, main model, causal per scenario
  double model_flops_per_token_noncausal = 0;
  std::vector<BlockCost> blocks;
  std::vector<MoeLayerStats> moe_layers;  ///< their node_traffic is left empty (see node_traffic)
  std::vector<double> node_traffic;  ///< first MoE layer's dispatch bytes, nodes × nodes (MoeLayerStats)
  int traffic_nodes = 0;
  std::vector<RankWork> ranks;  ///< per pipeline rank
  std::string cost_model;       ///< name of the compute cost model
  /// One per distinct routing (MoE layers that repeat an earlier one's routing share its entry; read a
  /// layer's through moe_detail_of): the per-GPU loads always (DualPipe's overlapped pairs need them in
  /// the analytic engine), the wire bytes only when build_workload is asked for detail.
  std::vector<MoeLayerDetail> moe_detail;
  std::vector<int> moe_detail_index;    ///< per MoE layer (same index as moe_layers): its moe_detail entry
  double dispatch_copy_bytes = 0;       ///< bytes of one forward-dispatched token copy (wire_bytes' unit)
  double bf16_copy_bytes = 0;           ///< bytes of one BF16 token copy (combine, backward)
  double grad_dispatch_copy_bytes = 0;  ///< bytes of one copy of the combine's gradient (backward, toward
                                        ///< the experts): FP8 with scales or BF16 (fp8_dispatch_grad)
  /// Compute that runs while an expert all-to-all is in flight (DualPipe and combined-1F1B pairs) loses
  /// the SMs the all-to-all kernels take (workload.overlap_comm_sms) for as long as they run: meanwhile it
  /// progresses at 1 / overlap_slowdown of its rate, overlap_slowdown = (sm_count − comm_sms) / (sm_count −
  /// comm_sms − overlap_comm_sms), throughput in proportion to SMs (overlap_stretch).
  double overlap_slowdown = 1;
};

/// How much longer `t` seconds of computation take beside an all-to-all of `comm` seconds whose kernels
/// hold SMs for as long as they run (`slowdown`: Workload::overlap_slowdown), as a factor of `t`: the
/// computation progresses at 1/slowdown while the all-to-all runs and at full rate after it, so it ends at
/// min(t · slowdown, t + comm · (1 − 1/slowdown)). GEMMs and other kernels launched on the whole GPU
/// (cuBLAS and Transformer Engine, which Megatron-Core launches without an SM margin) take the SMs back as
/// the communication kernel exits; a framework that sizes its kernels to the SMs left for the whole step
/// sets workload.comm_sms instead (DeepSeek-V3's DeepGEMM).
inline double overlap_stretch(double slowdown, double t, double comm) {
  if (!(slowdown > 1.0) || !(t > 0.0) || !(comm > 0.0)) return 1.0;
  const double extra = std::min(t * (slowdown - 1.0), comm * (1.0 - 1.0 / slowdown));
  return (t + extra) / t;
}

/// The ops of block `b` (shared with an identical earlier block where the workload priced it once).
const std::vector<Op>& block_ops(const Workload& w, int b);

/// The per-GPU loads and wire bytes of MoE layer `moe_index` (an index into Workload::moe_layers).
const MoeLayerDetail& moe_detail_of(const Workload& w, int moe_index);

/// Routing that replaces the scenario's expected shares: samples and placements per MoE layer.
struct RoutingInput {
  /// Per MoE layer (index = MoE layer, MTP layers after the main ones); when shorter than the MoE
  /// layers, sample i serves layers i, i + n, i + 2n, ... Each must have `ep` sources.
  std::vector<traces::RoutingSample> samples;
  /// Per MoE layer, the same convention; empty: the scenario's placement policy for every layer.
  std::vector<SlotMap> slot_maps;
};

/// `in` when it replaces the expected shares (it holds samples or placements), else nullptr: what
/// build_workload takes for a resolved RoutingInput.
inline const RoutingInput* routing_override(const RoutingInput& in) {
  return in.samples.empty() && in.slot_maps.empty() ? nullptr : &in;
}

/// Builds and prices the workload of one step. Without `routing`, every MoE layer uses the expected
/// shares of the scenario's load generator. `detail` also fills MoeLayerDetail::wire_bytes.
Workload build_workload(const Scenario& s, const ComputeCostModel& compute, const NetworkModel& net,
                        const RoutingInput* routing = nullptr, bool detail = false);

/// Blocks per virtual stage: `blocks` spread over `chunks`; uneven remainders go to the middle
/// chunks first (the first and last also carry the embedding and the head).
std::vector<int> split_blocks(int blocks, int chunks);

/// Blocks per virtual stage (pp · vpp chunks, chunk ch on rank ch % pp) for scenario `s` with `blocks`
/// blocks: the pipeline layout's blocks per stage (Layout::stage_blocks) when the scenario names one,
/// else split_blocks.
std::vector<int> chunk_blocks(const Scenario& s, int blocks);

/// Bytes of one dispatched token copy: FP8 with one FP32 scale per 128 values plus 16 bytes of routing
/// metadata (DeepEP README: 7168 → 7408 bytes), or BF16.
double dispatch_bytes_per_token(int hidden, Precision p);

/// The precision the forward dispatch sends its copies in (workload.dispatch_dtype; "auto": BF16 in
/// training, the GEMMs' precision in serving).
Precision forward_dispatch_precision(const WorkloadSpec& w);
/// Bytes of one copy of the combine's gradient sent back toward the experts: FP8 as the forward
/// dispatch when the workload's fp8_dispatch_grad says so (DeepSeek-V3 report §3.3.2), BF16 otherwise.
double grad_dispatch_bytes_per_token(const WorkloadSpec& w, int hidden);

/// Model training FLOPs per token (forward + backward = 3× forward), main model without MTP, as in the
/// DeepSeek-V3 ISCA'25 Table 2 convention: 6·(active matmul parameters) + attention 6·S·H·(dqk+dv)·(½ if
/// causal) per layer.
double training_flops_per_token(const ModelSpec& m, int seq_len, bool causal);

}  // namespace moesim::models
