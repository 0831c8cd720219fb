#pragma once
/// \file The analytic engine: closed-form step time of a scenario from its priced workload.

#include "models/result.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::models {

/// Evaluates a validated scenario: builds and prices the workload with the scenario's cost model, then
/// applies the pipeline schedule, data-parallel synchronisation, the optimizer and the memory model.
Result evaluate_analytic(const Scenario& s);

/// Evaluates an already built workload (for sweeps that reuse it). balanced_step_time is left 0.
Result evaluate_analytic(const Scenario& s, const Workload& w);

/// Step time of `s` with perfectly balanced routing: uniform expected shares, no capacity limit.
double balanced_step_time(const Scenario& s);

}  // namespace moesim::models
