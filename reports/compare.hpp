#pragma once
/// \file `moesim compare`: scenarios and their variants side by side, as a table or JSON.

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "models/result.hpp"
#include "models/serving.hpp"

namespace moesim::reports {

/// One row of a comparison.
struct CompareRow {
  std::string name;
  bool ok = true;  ///< false: the variant failed validation (error holds the message)
  std::string error;
  models::Result result;
};
/// Side-by-side table sorted by throughput (tokens/s), infeasible and invalid rows last with reasons.
void write_compare_table(std::ostream& out, std::vector<CompareRow> rows);
/// The same rows as {"schema_version", "variants": [...]}, in the table's order.
nlohmann::json compare_json(std::vector<CompareRow> rows);

/// One row of a comparison of serving scenarios.
struct ServingCompareRow {
  std::string name;
  bool ok = true;  ///< false: the variant failed validation (error holds the message)
  std::string error;
  models::ServingResult result;
};
/// Side-by-side serving table sorted by goodput (requests/s meeting both SLOs), then output tokens/s;
/// saturated and infeasible rows after the others, invalid rows last with reasons.
void write_serving_compare_table(std::ostream& out, std::vector<ServingCompareRow> rows);
/// The same rows as {"schema_version", "kind": "serving", "variants": [...]}, in the table's order.
nlohmann::json serving_compare_json(std::vector<ServingCompareRow> rows);

}  // namespace moesim::reports
