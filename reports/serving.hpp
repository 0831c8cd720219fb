#pragma once
/// \file The result of a serving scenario (models/serving.hpp) as a table, JSON and CSV, and a serving
/// run's output directory: scenario.resolved.json, result.json, summary.txt (format table), summary.csv
/// (format csv), and for a discrete-event run requests.csv (one row per request) and kv_usage.csv.

#include <ostream>
#include <string>
#include <vector>

#include "models/serving.hpp"
#include "nlohmann/json.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::reports {

/// The result document: {"schema_version", "kind": "serving", scenario, engine, ..., "latency": {"ttft":
/// {mean, p50, p90, p99}, "tpot", "e2e"}, "throughput", "slo", "instances": [...], "kv_usage",
/// "expert_load"}; seconds and tokens; a figure the engine does not give is null.
/// A finite number, or JSON null (NaN: not known, e.g. the analytic engine's percentiles).
nlohmann::json finite_or_null(double v);
/// {"mean", "p50", "p90", "p99"} of a latency, each finite_or_null.
nlohmann::json latency_json(const models::LatencyStats& l);

nlohmann::json serving_json(const Scenario& s, const models::ServingResult& r);
/// Back from serving_json: the scalars, the latencies and the instances (not the time series). Throws
/// ParseError naming `what` and the pointer for a document that is not one.
models::ServingResult serving_result_from_json(const nlohmann::json& j, const std::string& what);
/// The console table.
void write_serving_table(std::ostream& out, const Scenario& s, const models::ServingResult& r);
/// One header line and one row.
void write_serving_csv(std::ostream& out, const models::ServingResult& r);

/// The files write_serving_outputs writes for `formats`.
std::vector<std::string> serving_output_files(const std::vector<OutputFormat>& formats, bool des);
/// Writes them into `dir` as one set (reports/atomic_file.hpp), after check_run_outputs; `requests` only for
/// a discrete-event run.
void write_serving_outputs(const std::string& dir, const Scenario& s, const models::ServingResult& r,
                           bool force, const std::string& option,
                           const std::vector<models::ServedRequest>* requests);

}  // namespace moesim::reports
