#pragma once
/// \file Result writers, one per format: a console table, JSON (schema_version + context block) and CSV.

#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/result.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::reports {

/// The context block of every result: what produced it. Contains nothing that changes between two
/// runs of the same scenario, so results are reproducible byte for byte.
nlohmann::json context_json(const Scenario& s, const models::Result& r);

/// The full result document: {"schema_version", "context", "summary", "breakdown", "phases", "memory",
/// "moe", "layers", "reference"}.
nlohmann::json result_json(const Scenario& s, const models::Result& r);

/// Human-readable summary table, with published figures beside the model's where the scenario has a
/// reference section.
void write_table(std::ostream& out, const Scenario& s, const models::Result& r);

/// CSV with one header row and one row of summary metrics.
void write_summary_csv(std::ostream& out, const models::Result& r);
/// CSV with one row per block: layer, kind, pp_rank, forward_s, backward_input_s, backward_weight_s, imbalance.
void write_layers_csv(std::ostream& out, const models::Result& r);

/// One row of a comparison.
struct CompareRow {
  std::string name;
  bool ok = true;          ///< false: the variant failed validation (error holds the message)
  std::string error;
  models::Result result;
};
/// Side-by-side table sorted by throughput (tokens/s), infeasible and invalid rows last with reasons.
void write_compare_table(std::ostream& out, std::vector<CompareRow> rows);
nlohmann::json compare_json(std::vector<CompareRow> rows);

/// moesim's version string.
const char* version();
/// Git revision the binary was built from.
const char* git_sha();

}  // namespace moesim::reports
