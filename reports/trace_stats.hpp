#pragma once
/// \file `moesim trace stats`: per step and MoE layer expert-load statistics of a routing trace, written
/// as the trace is read (a table row per record, or one JSON array at the end).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <ostream>

#include "scenarios/kinds.hpp"
#include "traces/import.hpp"
#include "traces/routing_sample.hpp"

namespace moesim::reports {

/// Writes trace statistics in one format (table or JSON) to `out`, one record at a time.
class TraceStatsWriter {
 public:
  /// A table starts with its header row.
  TraceStatsWriter(std::ostream& out, OutputFormat format);
  /// One record: step, layer, routed slots, expert max/mean, coefficient of variation, dropped slots.
  void add(const traces::RoutingSample& x, const traces::ExpertLoadStats& st);
  /// Ends the output (JSON: prints the array).
  void finish();

 private:
  std::ostream& out_;
  OutputFormat format_;
  nlohmann::json rows_ = nlohmann::json::array();
};

}  // namespace moesim::reports
