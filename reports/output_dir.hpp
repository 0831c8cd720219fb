#pragma once
/// \file A run's output directory (`run --out DIR` or the scenario's outputs.dir): the resolved scenario,
/// the result in the formats the scenario lists, never replacing an existing file without `force`.

#include <string>
#include <vector>

#include "models/result.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::sim {
struct StepSimResult;
}

namespace moesim::reports {

/// Writes `text` to `path`. Throws IoError if `path` exists and `force` is false (nothing is written),
/// or if it cannot be written.
void write_file(const std::string& path, const std::string& text, bool force);

/// Throws IoError naming the first of `names` that exists in `dir`, unless `force`: a run refuses
/// before it evaluates anything, so that an existing result is never half replaced.
void check_not_present(const std::string& dir, const std::vector<std::string>& names, bool force);

/// The files write_run_outputs writes for `formats` (outputs.formats): scenario.resolved.json,
/// result.json and layers.csv always; summary.txt for table, summary.csv for csv (json adds nothing:
/// result.json is every run's record).
std::vector<std::string> run_output_files(const std::vector<OutputFormat>& formats);

/// Creates `dir` and writes run_output_files(s.outputs.formats) into it: the resolved scenario, the
/// result document (with the "des" section when `des` is given), the per-layer CSV, and the table and
/// summary CSV as listed. Checks every target first (check_not_present); logs the files on stderr.
void write_run_outputs(const std::string& dir, const Scenario& s, const models::Result& r, bool force,
                       const sim::StepSimResult* des = nullptr);

}  // namespace moesim::reports
