#pragma once
/// \file A run's output directory (`run --out DIR` or the scenario's outputs.dir): the resolved scenario,
/// the result in the formats the scenario lists, and the discrete-event trace and link usage. The files
/// of one run are written as one OutputSet (reports/atomic_file.hpp): they appear together or not at
/// all, and never replace an existing result without `force`.

#include <string>
#include <vector>

#include "models/op_table.hpp"
#include "models/result.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::sim {
struct StepSimResult;
}

namespace moesim::reports {

/// Every file a run can write into its output directory, in the order they are written:
/// scenario.resolved.json, result.json, summary.csv, layers.csv, ops.csv, expert_load.csv, summary.txt,
/// trace.json, links.csv; and a serving run's requests.csv and kv_usage.csv (reports/serving.hpp).
/// These are the only files `force` removes; nothing else in the directory is ever touched.
std::vector<std::string> known_output_files();

/// The files write_run_outputs writes for `formats` (outputs.formats): scenario.resolved.json,
/// result.json, layers.csv, ops.csv and expert_load.csv always; summary.txt for table, summary.csv for csv
/// (json adds nothing: result.json is every run's record); trace.json and links.csv when `des` (a
/// discrete-event run).
std::vector<std::string> run_output_files(const std::vector<OutputFormat>& formats, bool des);

/// Checks, before anything is evaluated, that `dir` can receive a run whose files are `names`:
/// check_output_dir(dir, option) (creates it); without `force`, none of known_output_files() exists
/// there (IoError "DIR/NAME: refusing to overwrite an existing result"); with it, none of `names` is a
/// directory or other non-regular file (never replaced).
void check_run_outputs(const std::string& dir, const std::vector<std::string>& names, bool force,
                       const std::string& option);

/// Writes run_output_files(s.outputs.formats, des != nullptr) into `dir` as one set: the resolved
/// scenario, the result document (with the "des" section when `des` is given), the per-layer CSV, the
/// per-op CSV of `ops` (reports/ops.hpp), the per-GPU expert loads `gpu_load` (models::expert_gpu_loads;
/// expert_load.csv: moe_layer, layer, ep_rank, load_over_mean), the table and summary CSV as listed, the
/// Chrome trace and the link usage. With `force`, the known output files this run does not write (an earlier
/// run's trace.json or summary.csv) are removed with the same commit. Checks first (check_run_outputs); logs
/// the files on stderr. `option` names where the directory came from ("--out", or the scenario's
/// /outputs/dir), for messages.
void write_run_outputs(const std::string& dir, const Scenario& s, const models::Result& r, bool force,
                       const sim::StepSimResult* des, const std::vector<models::OpRow>& ops,
                       const std::string& option, const std::vector<std::vector<double>>& gpu_load = {});

}  // namespace moesim::reports
