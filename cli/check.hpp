#pragma once
/// \file The checks every engine relies on, run before anything is evaluated.

#include "scenarios/scenario.hpp"

namespace moesim::cli {

/// Checks a loaded (hence validated) scenario the way the engines would use it: routing policy,
/// generator and placement against their registries (models::check_routing), and the scale-out
/// fabric's buildability (sim::Topology). Throws ConfigError naming the scenario file and the pointer.
/// `validate`, `run`, `compare` and `replay` call it, so a scenario that one accepts the others accept.
void check_scenario(const Scenario& s);

}  // namespace moesim::cli
