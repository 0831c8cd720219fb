#pragma once
/// \file Block pricing: the ops of one transformer block (attention, dense MLP or MoE layer, MTP module)
/// for one microbatch on the busiest GPU of a pipeline rank, each priced by the compute cost model or
/// the analytic network model and tagged with its role (models/workload.hpp). Also the embedding and
/// the output head, which run outside the blocks on the first and last pipeline stage. build_workload
/// (models/workload.cpp) calls these; the pipeline partition (models/pipeline_partition.hpp) sums them.

#include "models/compute_cost.hpp"
#include "models/network.hpp"
#include "models/routing_model.hpp"
#include "models/workload.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::models {

/// BF16 activation bytes per element.
inline constexpr double kActivationBytes = 2.0;

/// One serving iteration on one attention-DP rank, as its attention kernels see it: the decoding sequences
/// (a few query tokens each against their KV cache) and the prompt tokens prefilled in the same iteration.
struct ServingBatch {
  double decode_seqs = 0;     ///< sequences decoding
  double decode_queries = 1;  ///< query tokens per decoding sequence (1 + speculative tokens)
  double decode_kv = 0;       ///< mean cached tokens a decoding sequence attends to
  double prefill_tokens = 0;  ///< prompt tokens computed this iteration
  double prefill_seqs = 0;    ///< sequences those tokens belong to
  double prefill_kv = 0;      ///< mean tokens a prompt token attends to (cached prefix and earlier tokens)
  double prefill_context =
      0;  ///< cached plus new tokens of the prefilled sequences (MLA expands their latents)
  double kv_elem_bytes = 2;  ///< KV cache element size, bytes
  /// Tokens the GEMMs of this iteration process.
  double tokens() const { return decode_seqs * decode_queries + prefill_tokens; }
};

/// What pricing a block needs: the scenario, the cost models, tokens per GPU and the groups.
struct PricingContext {
  const Scenario& s;            ///< the validated scenario
  const ComputeCostModel& cm;   ///< prices compute and memory-bound kernels, seconds
  const NetworkModel& net;      ///< prices collectives, seconds
  Precision prec;               ///< GEMM precision of the workload
  double T = 0;                 ///< tokens per GPU of the attention GEMMs (microbatch tokens ÷ cp)
  double T_sp = 0;              ///< tokens per GPU of elementwise kernels (÷ tp under sequence parallelism)
  double T_moe = 0;             ///< tokens per GPU entering the MoE router (T ÷ tp)
  int tp = 1, cp = 1, etp = 1;  ///< tensor-, context- and expert-tensor-parallel degrees
  Group tp_group, cp_group, ep_etp_group;  ///< tensor-, context- and expert-tensor-parallel groups
  Recompute rc = Recompute::kNone;         ///< activation recompute policy
  /// Serving: the iteration's attention (null: a training microbatch of sequences of seq_len tokens). With
  /// it, only forward ops are priced.
  const ServingBatch* serving = nullptr;
  /// Serving: bytes per routed expert weight as stored (serving.expert_dtype; 0: the precision's).
  double expert_weight_elem = 0;
  unsigned rc_modules = 0;       ///< with selective recompute: bit m set = RecomputeModule m reruns
  unsigned offload_modules = 0;  ///< bit m set = OffloadModule m's saved input waits in host memory

  /// True when selective recomputation reruns module `m`.
  bool recomputes(RecomputeModule m) const {
    return rc == Recompute::kSelective && (rc_modules >> static_cast<unsigned>(m) & 1u) != 0;
  }
  /// True when fine-grained activation offloading keeps module `m`'s saved input in host memory.
  bool offloads(OffloadModule m) const { return (offload_modules >> static_cast<unsigned>(m) & 1u) != 0; }
};

/// The pricing context of scenario `s` for `tokens_per_microbatch` tokens per pipeline (mbs · seq).
PricingContext pricing_context(const Scenario& s, const ComputeCostModel& cm, const NetworkModel& net,
                               double tokens_per_microbatch);

/// Prices block `layer` into `b` (its ops and per-pass totals; b.kind and b.layer are set by the
/// caller): MTP prologue when `mtp`, attention, then the MoE layer when `routing` is given (its routing
/// on `geo`; also fills routing->summary.straggler_seconds) or the dense MLP, then the MTP head.
/// Returns the activation bytes one microbatch saves for backward; `transient` is raised to the
/// working bytes an MTP head's FP32 logits need (held for one microbatch only).
double price_block(const PricingContext& c, BlockCost& b, int layer, bool mtp, LayerRouting* routing,
                   const EpGeometry& geo, double& transient);

/// A Mamba-2 chunked SSD scan on one GPU: `sequences` of `seq_len` tokens, `heads` of `head_dim` channels,
/// `groups` of `state_dim` states, chunks of `chunk` tokens.
struct SsdScanShape {
  double sequences = 0, seq_len = 0, heads = 0, head_dim = 0, state_dim = 0, groups = 0, chunk = 0;
};
/// One kernel of a chunked scan: its price, its FLOPs (every chunk block in full) and, for a memory-bound
/// one without matmuls, the bytes it moves.
struct ScanKernel {
  double seconds = 0, flops = 0, bytes = 0;
};
/// mamba_ssm's chunk-scan forward kernel (_chunk_scan_fwd: the intra-chunk (C·Bᵀ ∘ decay)·x and the
/// inter-chunk C·state, op mamba.ssd_scan): the slower of its batched matmuls on the grouped-GEMM fit and
/// its bytes (C·Bᵀ in FP32; x, C, the states and the output in BF16) at the stream rate.
ScanKernel ssd_chunk_scan(const ComputeCostModel& cm, const SsdScanShape& s);

/// Recurrent state one sequence keeps per layer on one GPU in serving, bytes: a Mamba-2 layer's SSM state
/// (heads/tp x head_dim x state_dim elements of `state_elem` bytes) and its convolution state (conv_kernel -
/// 1 columns of x, B and C, BF16); a Gated DeltaNet layer's dk x dv state per value head and its convolution
/// state over q, k and v.
double mamba_state_bytes(const MambaSpec& m, int tp, double state_elem);
double gdn_state_bytes(const GatedDeltaNetSpec& g, int tp, double state_elem);

/// Seconds of the embedding lookup per pass (F, B, W: scatter-add of FP32 gradients).
void price_embedding(const PricingContext& c, double seconds[3]);

/// The final norm, output head and loss of the last stage (the head stays in BF16, DeepSeek-V3 report
/// §3.3.1).
struct HeadCost {
  double seconds[3] = {};   ///< per pass (F, B, W), seconds
  double flops = 0;         ///< head GEMM FLOPs of each pass
  double logits_bytes = 0;  ///< FP32 logits of one microbatch, bytes (working memory, not kept in flight)
};
/// Prices the last stage's head for one microbatch.
HeadCost price_head(const PricingContext& c);

}  // namespace moesim::models
