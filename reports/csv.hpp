#pragma once
/// \file The result as CSV (`run --format csv`, summary.csv, layers.csv).

#include <ostream>

#include "models/result.hpp"

namespace moesim::reports {

/// CSV with one header row and one row of summary metrics (seconds; memory in GiB).
void write_summary_csv(std::ostream& out, const models::Result& r);
/// CSV with one row per block: layer, kind, pp_rank, forward_s, backward_input_s, backward_weight_s,
/// max_over_mean_gpu.
void write_layers_csv(std::ostream& out, const models::Result& r);

}  // namespace moesim::reports
