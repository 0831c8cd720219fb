#pragma once
/// \file What plan/uncertainty.hpp computes, as plain data a PlanResult carries.

#include <string>
#include <vector>

namespace moesim::plan {

/// One published end-to-end run held against the engine: published time / predicted time (from the step
/// time, or from tokens/s per GPU when the run publishes only a rate). > 1: moesim was too fast.
struct TimeRatio {
  std::string run;
  double ratio = 1;
};

/// Quantiles of those ratios: days and dollars of a plan scale with its time, so days·p10 .. days·p90 is
/// the spread the measured errors give.
struct ErrorBars {
  std::string engine = "analytic";
  std::vector<TimeRatio> runs;
  double p10 = 1, p50 = 1, p90 = 1;
};

/// One input moved down and up, and the best plan's days and dollars at each end.
struct Sensitivity {
  std::string factor;     ///< "routing imbalance", "network bandwidth", "failure rate"
  std::string low, high;  ///< the two settings, in words
  double days_low = 0, days_high = 0, usd_low = 0, usd_high = 0;
  bool fits_low = true, fits_high = true;  ///< whether the plan still fits in memory there
};

}  // namespace moesim::plan
