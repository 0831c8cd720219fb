#pragma once
/// \file The result as a console table (`run --format table`, summary.txt).

#include <ostream>

#include "models/result.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::sim {
struct StepSimResult;
}

namespace moesim::reports {

/// Human-readable summary table, with published figures beside the model's where the scenario has a
/// reference section; with `des`, followed by write_des_extras.
void write_table(std::ostream& out, const Scenario& s, const models::Result& r,
                 const sim::StepSimResult* des = nullptr);

/// What the discrete-event engine adds to the table: the analytic engine beside it, the simulation's
/// size and the five busiest links (utilisation and busy fraction in %, bytes).
void write_des_extras(std::ostream& out, const sim::StepSimResult& d);

}  // namespace moesim::reports
