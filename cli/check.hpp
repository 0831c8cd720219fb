#pragma once
/// \file The checks every engine relies on, run before anything is evaluated.

#include "models/workload.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::cli {

/// Checks a loaded (hence validated) scenario the way the engines would use it: routing policy,
/// generator and placement against their registries (models::check_routing), the whole routing trace
/// in trace mode (models::check_trace; its note on MoE layers filled from the nearest recorded one is
/// printed once on stderr), and the scale-out fabric's buildability (sim::Topology). Throws
/// ConfigError naming the scenario file and the pointer (trace errors: the trace file and line).
/// `validate`, `run`, `compare` and `replay` call it, so a scenario that one accepts the others accept.
/// Returns the scenario's routing resolved once (the trace's first step as read here, sampled routing,
/// placements), which the engines take so that they read no file. A serving scenario is checked by
/// models::check_serving instead of the routing and trace checks (its request trace read whole) and
/// gets an empty RoutingInput.
models::RoutingInput check_scenario(const Scenario& s);

}  // namespace moesim::cli
