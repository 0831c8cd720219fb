#pragma once
/// \file How sure a plan is: error bars from the accuracy suite's measured errors, and how the best plans
/// move when the inputs they rest on move (tornado data). docs/plan.md.

#include <string>
#include <vector>

#include "plan/plan_file.hpp"
#include "plan/search.hpp"

namespace moesim::plan {

/// q-quantile (0 ≤ q ≤ 1) with linear interpolation between order statistics (Hyndman and Fan type 7, as
/// numpy's default); NaN for no values.
double quantile(std::vector<double> values, double q);

/// The error bars of `runs` (empty runs: every quantile 1 and no run named).
ErrorBars error_bars(std::vector<TimeRatio> runs);

/// Re-prices the plan `c` with each factor moved: routing from perfectly balanced to zipf(1.0) expert
/// popularity (expected shares), network bandwidth (NVLink and NIC) ×0.8 and ×1.2, failure rate ×0.5 and
/// ×2; the last two with `routing` (the plan's resolved routing for c's layout; nullptr: expected shares).
std::vector<Sensitivity> sensitivity(const PlanSpec& p, const Candidate& c,
                                     const models::RoutingInput* routing);

}  // namespace moesim::plan
