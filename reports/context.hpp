#pragma once
/// \file What produced a result: the build (version, git revision) and the context block every JSON
/// result opens with.

#include <nlohmann/json.hpp>

#include "models/result.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::reports {

/// moesim's version string.
const char* version();
/// Git revision the binary was built from.
const char* git_sha();

/// The context block of every result: what produced it. Contains nothing that changes between two
/// runs of the same scenario, so results are reproducible byte for byte.
nlohmann::json context_json(const Scenario& s, const models::Result& r);

/// Whether `r` was produced by the discrete-event engine (its reports add the simulation's own figures).
bool is_des(const models::Result& r);

}  // namespace moesim::reports
