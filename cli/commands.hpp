#pragma once
// The subcommands of the moesim command line. Each returns an exit code (cli/errors.hpp,
// docs/exit-codes.md) and throws moesim errors for main() to map. Settings chosen on the command line
// arrive as enumerators, parsed once from their registries (scenarios/kinds.hpp) after CLI11 has
// checked the names.
#include <optional>
#include <string>
#include <vector>

#include "reports/html_report.hpp"
#include "scenarios/catalog.hpp"
#include "scenarios/kinds.hpp"
#include "traces/requests.hpp"

namespace moesim::cli {

/// `--report DIR` of compare, plan and accuracy: the command's JSON result as DIR/NAME and the HTML report
/// of DIR (reports/html_report.hpp). Empty dir: no report.
struct ReportTarget {
  std::string dir;
  std::string name;    ///< compare.json, plan.json, accuracy.json
  bool force = false;  ///< replace an existing DIR/NAME
};

/// `moesim compare SCENARIO...`: every scenario and its variants, side by side (`engine`: overrides each
/// scenario's engine.kind; the discrete-event engine runs each evaluation in its own process).
int compare_cmd(const std::vector<std::string>& paths, OutputFormat format, const ReportTarget& report,
                std::optional<EngineKind> engine, const Catalog& cat);

/// `moesim plan PLAN`: the search of plan/search.hpp; the ranked plans and the Pareto front on stdout or
/// in `output` (never replaced without `force`); `jobs` threads (0: one per core); the best `confirm`
/// plans re-run with the discrete-event engine; error bars from the published runs of `validation_dir`
/// (empty: none).
int plan_cmd(const std::string& path, OutputFormat format, const std::string& output,
             const ReportTarget& report, bool force, int jobs, int confirm, const std::string& validation_dir,
             const Catalog& cat);

/// `moesim validate SCENARIO...`: loads every file and every variant and runs check_scenario on each;
/// prints every problem (one line each, naming file and pointer) and returns the exit code of the first.
int validate_cmd(const std::vector<std::string>& paths, const Catalog& cat);

/// `moesim list [WHAT]`: catalog entries (models, gpus, clusters) and every registry (policies).
/// What `moesim list` shows.
enum class ListTopic { kModels, kGpus, kClusters, kPolicies, kParameters };
const Registry<ListTopic>& list_topics();
/// `moesim list [TOPIC]`: catalog entries, registries, or the scenario parameters (all but parameters
/// when no topic is given).
int list_cmd(std::optional<ListTopic> what, const Catalog& cat);

/// `moesim import hf CONFIG`: a Hugging Face config.json as a catalog model entry, on stdout or to `out`.
int import_hf_cmd(const std::string& path, const std::string& name, const std::string& out, bool force);

struct PlaceArgs {
  std::string policy = "eplb", weights;
  OutputFormat format = OutputFormat::kJson;
  int replicas = 0, groups = 1, nodes = 1, gpus = 1;
  std::string output;  ///< file to write instead of stdout (empty: stdout)
  bool force = false;  ///< replace `output` if it exists
};
/// `moesim place`: a placement of a layers × experts load matrix; prints {"phy2log","log2phy","logcnt"}
/// (or writes it to `output`).
int place_cmd(const PlaceArgs& a);

/// `moesim replay TRACE SCENARIO`: the scenario with its routing replaced by the trace (read in
/// `trace_format`), step by step (`engine`: overrides the scenario's engine.kind).
int replay_cmd(const std::string& trace, TraceFormat trace_format, const std::string& scenario, int max_steps,
               OutputFormat format, const ReportTarget& report, std::optional<EngineKind> engine,
               const Catalog& cat);

struct SweepArgs {
  std::string file, out;
  int jobs = 1;       ///< worker processes
  std::string shard;  ///< "K/N"; empty: from Slurm or MPI variables, else 0/1
  std::optional<EngineKind> engine;
};
/// `moesim sweep SWEEP --out DIR`: this shard's points not yet in DIR/points, each evaluated in a worker
/// process and written to DIR/points/ID.json (ID: a stable hash of the patched scenario); a failed point
/// records its error and exit code. docs/sweep.md.
int sweep_cmd(const SweepArgs& a, const Catalog& cat);
/// `moesim report merge DIR`: every point file of a sweep folder into DIR/merged.csv and merged.json,
/// in point order, one file at a time.
int report_merge_cmd(const std::string& dir);
/// `moesim report DIR`: DIR/report.html and DIR/report-specs/ from the results in DIR (run, merged sweep,
/// plan.json, compare.json, accuracy.json). docs/report.md.
int report_html_cmd(const std::string& dir);

/// Checks a ReportTarget before any work: DIR can be created and written, DIR/NAME is not there unless
/// force, the chart libraries are readable. Returns them (nullopt without a target).
std::optional<reports::VegaBundle> prepare_report(const ReportTarget& t);
/// Writes `json_text` as DIR/NAME, then DIR/report.html from the folder.
void finish_report(const ReportTarget& t, const reports::VegaBundle& vega, const std::string& json_text);

struct TraceImportArgs {
  TraceFormat format = TraceFormat::kMegatron;
  std::string input, output, model, kind = "expert_counts", domain;
  int experts = 0, top_k = 0;
  bool force = false;
};
/// `moesim trace import`: a Megatron router-trace folder or a count table → moesim trace format.
int trace_import_cmd(const TraceImportArgs& a);
/// `moesim trace stats TRACE`: per step and layer, expert load max/mean and coefficient of variation.
int trace_stats_cmd(const std::string& path, OutputFormat format);
/// `moesim trace generate-requests`: the generator's options and where to write.
struct GenerateRequestsArgs {
  traces::RequestGeneratorSpec spec;
  std::string input = "lognormal:1024:1", output_dist = "lognormal:256:1";
  std::string output;
  bool force = false;
};
int generate_requests_cmd(const GenerateRequestsArgs& a);
/// `moesim trace requests`: reads a serving request trace, every row checked, and prints its statistics.
int request_trace_cmd(const std::string& path, traces::RequestFormat format, bool skip_failed,
                      OutputFormat out);
/// `moesim trace upgrade`: rewrites a version 1 trace in the current version (traces::upgrade_trace).
int trace_upgrade_cmd(const std::string& input, const std::string& output, bool force);

/// `moesim topology SCENARIO`: the cluster as a graph (summary or JSON, optional GraphViz file) and the
/// link loads of the first MoE layer's dispatch.
int topology_cmd(const std::string& scenario, const std::string& dot, OutputFormat format, bool force,
                 bool simulate, const Catalog& cat);

/// `moesim calibrate --check FILE`: held-out errors and predicted vs measured per shape.
int calibrate_check_cmd(const std::string& path);
/// Calibration sweeps `moesim calibrate --plan` chooses.
enum class CalibrationPlan { kFull, kSmoke };
const Registry<CalibrationPlan>& calibration_plans();
/// `moesim calibrate --from-published DIR --out FILE`: fit published kernel tables
/// (calibrate/published.hpp), every 4th row of each family and precision held out, write, then check.
int calibrate_published_cmd(const std::string& dir, const std::string& out, const std::string& gpu,
                            bool force, const std::string& command_line, const Catalog& cat);
/// `moesim calibrate --scale-from CAL --gpu GPU --out FILE`: carry calibration CAL (fitted on the catalog
/// GPU its device names) to GPU by datasheet ratios (calibrate::scale_calibration) and write it.
int calibrate_scaled_cmd(const std::string& from_file, const std::string& out, const std::string& gpu,
                         bool force, const std::string& command_line, const Catalog& cat);
/// `moesim calibrate --out FILE [--measurements RAW]`: profile the kernels on this GPU, write every
/// measurement to RAW first when given, fit the profiler's variants, write, then check (CUDA builds).
int calibrate_run_cmd(const std::string& out, const std::string& measurements, const std::string& plan,
                      const std::string& gpu, bool force, const std::string& command_line,
                      const Catalog& cat);
/// `moesim calibrate --refit RAW [--fill-from CAL] --out FILE`: fit a recorded profile (any build),
/// complete it with what CAL has and the profile lacks (calibrate::fill_from), write, then check.
int calibrate_refit_cmd(const std::string& profile_file, const std::string& fill, const std::string& out,
                        const std::string& gpu, bool force, const std::string& command_line,
                        const Catalog& cat);

/// Which engines `moesim accuracy` runs.
enum class AccuracyEngine { kAnalytic, kDes, kBoth };
const Registry<AccuracyEngine>& accuracy_engines();
/// `moesim accuracy [DIR]`: every validation scenario of DIR (its "reference" figures) and every kernel
/// row of DIR/kernels, predicted and held against the published figure, with per-group median and
/// largest |error| per engine (docs/accuracy.md).
int accuracy_cmd(const std::string& dir, AccuracyEngine engine, OutputFormat format,
                 const ReportTarget& report, const Catalog& cat);

}  // namespace moesim::cli
