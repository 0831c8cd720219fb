#pragma once
/// \file A result as JSON and back: the one place that names the fields of a result document
/// (result.json, `run --format json`, and what the child process of `compare --engine des` sends back).

#include <nlohmann/json.hpp>

#include "models/result.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::sim {
struct StepSimResult;
}

namespace moesim::reports {

/// How much of a result the document holds.
enum class ResultDetail {
  /// The published document: what result.json and `--format json` print.
  kPublished,
  /// The published document plus the fields it leaves out (the blocking part of each chunk's
  /// communication, the DualPipe pair, each MoE layer's node traffic, a reason or a des figure that does
  /// not apply), so that result_from_json restores every field of the Result.
  kComplete,
};

/// The result document: {"schema_version", "context", "summary", "breakdown_s", "phases", "chunk_s",
/// "grad_sync_s", "memory_bytes", "moe", "layers"}, "reference" when the scenario has published
/// figures, and "des" (des_json) when `des` is given. Seconds, bytes, tokens; a number that is not
/// finite is null.
nlohmann::json result_json(const Scenario& s, const models::Result& r,
                           const sim::StepSimResult* des = nullptr,
                           ResultDetail detail = ResultDetail::kPublished);

/// The inverse of result_json: every field of the Result the document holds (all of them for
/// ResultDetail::kComplete; null numbers come back as NaN, except balanced_step_time_s, which is null
/// for 0). Throws ParseError, naming `source`, when the document lacks a field or has the wrong type.
models::Result result_from_json(const nlohmann::json& j, const std::string& source = "result");

/// The discrete-event engine's own figures: the analytic step time of the same workload, what was
/// simulated, SimGrid's settings and every link that carried bytes (the "des" section).
nlohmann::json des_json(const sim::StepSimResult& d);

}  // namespace moesim::reports
