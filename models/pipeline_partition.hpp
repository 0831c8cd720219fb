#pragma once
/// \file The pipeline partition: which blocks each pipeline rank runs, and what that rank adds up to per
/// microbatch (per-pass totals, parameters held, saved activations, embedding, head, pipeline sends).

#include <vector>

#include "models/block_pricing.hpp"
#include "models/workload.hpp"

namespace moesim::models {

/// Assigns w.blocks to pipeline ranks (pp · vpp chunks of split_blocks(blocks, chunks) consecutive
/// blocks, chunk ch on rank ch % pp; the first chunk holds the embedding, the last the head) and fills
/// w.ranks. `saved` holds each block's saved activation bytes per microbatch; `saved_transient` the
/// largest MTP head's logits bytes (models/block_pricing.hpp).
void partition_pipeline(const PricingContext& c, const std::vector<double>& saved, double saved_transient,
                        Workload& w);

}  // namespace moesim::models
