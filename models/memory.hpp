#pragma once
/// \file The memory model: bytes per GPU of a pipeline rank — weights, master weights, gradients and
/// optimizer states by ZeRO stage (Rajbhandari et al. 2020, ZeRO §5), activations in flight by
/// schedule, and a reserve for the CUDA context, communication buffers and allocator fragmentation.

#include <string>

#include "models/result.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::models {

/// What one pipeline rank holds, as the memory model needs it.
struct RankHoldings {
  double params = 0;             ///< parameters held (DualPipe: both stages), of which
  double expert_params = 0;      ///< routed-expert parameters
  double shard_params = 0;       ///< parameters the rank updates itself (its ZeRO shard), of which
  double adam_shard_params = 0;  ///< the embedding and output head (AdamW's two moments under Muon)
  double activation_bytes = 0;   ///< activations saved per microbatch, bytes
  double transient_bytes = 0;    ///< working memory of one microbatch not kept in flight, bytes
};

/// Memory per GPU of pipeline rank `rank`: weights in BF16 (ZeRO-3: the rank's shard), FP32 master
/// weights of the shard, gradients in the scenario's dtype (ZeRO >= 2: sharded), two Adam moments of
/// the shard (Muon: one momentum per matrix parameter, two moments for the embedding and output head),
/// activations × the microbatches the schedule keeps in flight on that rank, and a reserve of 2.5 GiB plus 5%
/// of what is allocated. Bytes; fits = total <= the GPU's memory.
MemoryBreakdown rank_memory(const Scenario& s, const RankHoldings& h, int rank);

/// The infeasibility message of a breakdown that does not fit on pipeline rank `rank` (GiB).
std::string memory_shortfall(const MemoryBreakdown& m, int rank);

}  // namespace moesim::models
