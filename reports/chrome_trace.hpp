#pragma once
/// \file Chrome trace writer: the discrete-event engine's timeline as Chrome trace JSON (open in Perfetto
/// or chrome://tracing).

#include <ostream>

#include "sim/step_sim.hpp"

namespace moesim::reports {

/// Writes r.timeline as Chrome trace JSON: one process per GPU, one thread per stream (compute, expert
/// all-to-all, pipeline receive), "X" events with times in microseconds from the start of the last
/// simulated run, and an otherData block naming the scenario, engine and fidelity.
void write_chrome_trace(const sim::StepSimResult& r, std::ostream& out);

}  // namespace moesim::reports
