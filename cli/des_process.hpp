#pragma once
/// \file The discrete-event engine in a child process, for commands that evaluate several clusters.

#include "models/result.hpp"
#include "models/serving.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::cli {

/// Evaluates `s` with the discrete-event engine in a child process: SimGrid allows one engine per
/// process, frozen to the first cluster it simulates, and compared variants may change the cluster.
/// The child sends back the complete Result (reports/result_json.hpp) or its error with its type
/// (cli/errors.hpp), which is thrown here again: a missing calibration is a CalibrationError in the
/// parent as in the child. Throws moesim::Error if the child cannot be started or ends abnormally.
models::Result evaluate_des_isolated(const Scenario& s);

/// The same for a serving scenario (sim/serving_sim.hpp): its requests simulated in a child process; the
/// result comes back through its JSON (reports/serving.hpp).
models::ServingResult evaluate_serving_des_isolated(const Scenario& s);

}  // namespace moesim::cli
