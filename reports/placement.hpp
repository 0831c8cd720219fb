#pragma once
/// \file `moesim place`: an expert placement and the per-GPU load imbalance it leaves, as JSON or a table.

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "models/placement.hpp"
#include "models/placement/metrics.hpp"

namespace moesim::reports {

/// {"phy2log", "log2phy", "logcnt", "gpu_max_over_mean"}: DeepSeek EPLB's three tables and, per layer,
/// the busiest GPU's load over the mean.
nlohmann::json placement_json(const models::ExpertPlacement& p, const std::vector<models::LayerLoad>& loads);

/// One line per layer: per-GPU max/mean and the logical expert of every physical slot.
void write_placement_table(std::ostream& out, const std::string& policy, const models::ExpertPlacement& p,
                           const std::vector<models::LayerLoad>& loads);

}  // namespace moesim::reports
