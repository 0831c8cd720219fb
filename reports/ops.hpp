#pragma once
/// \file Per-op output of a run (`moesim run --ops`, ops.csv under --out): models/op_table.hpp's rows as
/// CSV (every row), as JSON, and as a table of the critical rank's ops summed over its blocks.

#include <ostream>
#include <vector>

#include "models/op_table.hpp"
#include "scenarios/json_reader.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::reports {

/// One line per row: pp_rank,stage,layer,block,op,pass,kind,recompute,count,flops,bytes,seconds,
/// total_seconds,priced_by (total_seconds = count × seconds; priced_by quoted as CSV requires).
void write_ops_csv(std::ostream& out, const std::vector<models::OpRow>& rows);

/// The rows as a JSON array of objects with the CSV's columns.
Json ops_json(const std::vector<models::OpRow>& rows);

/// The ops of pipeline rank `rank` summed over its blocks by (op, pass, recompute), largest total time
/// first: count, TFLOP or GB per execution, time per execution and per step, share of the rank's op
/// time, and what priced it.
void write_ops_table(std::ostream& out, const std::vector<models::OpRow>& rows, int rank);

/// The words of an ops table: its first line, the heading and scale of the total-time column (seconds
/// per `per`), and what follows the total on the last line.
struct OpsTableText {
  std::string title;
  std::string heading = "s/step";
  double scale = 1;
  std::string unit = "s";
  std::string after_total;
};
void write_ops_table(std::ostream& out, const std::vector<models::OpRow>& rows, int rank,
                     const OpsTableText& text);

/// Serving (`moesim run --ops` on a serving scenario): every instance kind's iteration ops, one list per
/// kind in scenario order, as CSV (instance,role,layer,block,op,kind,count,flops,bytes,seconds,
/// total_seconds,priced_by; count per iteration) and as JSON.
void write_serving_ops_csv(std::ostream& out, const std::vector<std::vector<models::OpRow>>& per_instance,
                           const Scenario& s);
Json serving_ops_json(const std::vector<std::vector<models::OpRow>>& per_instance, const Scenario& s);

}  // namespace moesim::reports
