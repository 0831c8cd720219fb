#pragma once
/// \file `moesim replay`: a trace replayed step by step, as a table or JSON.

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "models/replay.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::reports {

/// Per step: step time, rebalancing time, GPU and expert load max/mean; the mean step against perfectly
/// balanced routing; per MoE layer of the last step: imbalance and straggler time (ms).
void write_replay_table(std::ostream& out, const Scenario& s, const std::string& trace,
                        const models::ReplayResult& r);

/// {"schema_version", "scenario", "trace", "engine", "placement", "mean_step_time_s",
/// "balanced_step_time_s", "steps": [...], "last_step_layers": [...]} (seconds, bytes).
nlohmann::json replay_json(const Scenario& s, const std::string& trace, const models::ReplayResult& r);

}  // namespace moesim::reports
