#pragma once
/// \file `moesim accuracy`: moesim's distance to every published figure of a validation folder, row by
/// row and engine by engine, with the median and largest |error| of each group (docs/accuracy.md).
/// End-to-end rows come from scenarios with a "reference" block; kernel rows from the published
/// microbenchmarks under its kernels/ folder (reports/accuracy_kernels.hpp).

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "models/result.hpp"
#include "models/serving.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::reports {

/// What a row measures: a whole training step, or one kernel family of the cost model.
/// (Pipeline phases are rows of their own group: one run publishes several.)
enum class AccuracyGroup { kEndToEnd, kPhase, kServing, kAllToAll, kGemm, kAttention, kScan, kTrace };
/// "end-to-end", "phase", "serving", "all-to-all", "GEMM", "attention", "scan", "trace".
const char* to_string(AccuracyGroup g);

/// The engines a report shows.
struct AccuracyEngines {
  bool analytic = true;
  bool des = true;
};

/// One published figure and what moesim predicts for it.
struct AccuracyRow {
  AccuracyGroup group = AccuracyGroup::kEndToEnd;
  std::string name;      ///< validation scenario or kernel row
  std::string quantity;  ///< step_time, tokens_per_s_per_gpu, mfu, phase_*, bandwidth, tflops
  std::string unit;      ///< s, tokens/s, fraction, GB/s, TFLOP/s
  double published = 0;
  /// Predicted per engine; NaN where the engine does not predict this quantity or failed.
  double analytic = NAN, des = NAN;
  /// Whether the engine's prediction counts: false where it found the published run does not fit in
  /// memory, or where it failed (`analytic_note` / `des_note` say which).
  bool analytic_ok = true, des_ok = true;
  std::string analytic_note, des_note;
  /// End-to-end and phase rows: memory per GPU on the most loaded pipeline rank as each engine found it,
  /// and the GPU's capacity, bytes; NaN elsewhere.
  double analytic_memory = NAN, des_memory = NAN, memory_capacity = NAN;
  std::string source;  ///< where the published figure comes from
  /// Kernel rows: the cost model prices compute the same way under both engines, and the all-to-all
  /// rows use the analytic network model; those rows carry one prediction, shown as the analytic one.
  bool shared_prediction = false;

  /// Signed relative error (predicted - published) / published of one engine; NaN without a prediction.
  double error(bool des_engine) const;
};

/// Median and largest |error| of one engine over one group.
struct AccuracyStats {
  int rows = 0;      ///< rows with a prediction
  int failures = 0;  ///< published runs predicted not to fit, or engine failures
  double median_abs = NAN, max_abs = NAN;
};

struct AccuracyGroupStats {
  AccuracyGroup group = AccuracyGroup::kEndToEnd;
  AccuracyStats analytic, des;
};

/// Per group (in the order of AccuracyGroup, groups without rows left out): the statistics of each
/// engine. A row whose run was predicted not to fit counts as a failure and its error still counts.
std::vector<AccuracyGroupStats> accuracy_summary(const std::vector<AccuracyRow>& rows);

/// The median of `v` (the mean of the two middle values for an even count); NaN when empty.
double median(std::vector<double> v);

/// The rows of one validation scenario's published figures: step time, tokens/s/GPU, MFU and the
/// pipeline phases its "reference" block gives (phases for the analytic engine only: the DES executes
/// the schedule and reports no phases). `analytic` / `des` may be null (engine not run).
std::vector<AccuracyRow> end_to_end_rows(const Scenario& s, const models::Result* analytic,
                                         const models::Result* des);

/// The rows of a serving validation scenario (workload.kind "serving") its "reference" block gives, group
/// "serving": input_tokens_per_s_per_node (prompt tokens, cached included, per node of the prefill or
/// colocated instances), output_tokens_per_s_per_node (per node of the decode or colocated instances),
/// ttft, tpot and e2e (means, s). `analytic` / `des` may be null.
std::vector<AccuracyRow> serving_rows(const Scenario& s, const models::ServingResult* analytic,
                                      const models::ServingResult* des);

/// Aligned table: one line per row, then the per-group summary.
void write_accuracy_table(std::ostream& out, const std::vector<AccuracyRow>& rows, AccuracyEngines engines);
/// {"schema_version", "engines", "rows": [...], "summary": [...]}.
nlohmann::json accuracy_json(const std::vector<AccuracyRow>& rows, AccuracyEngines engines);
/// One line per row: group,name,quantity,unit,published,analytic,analytic_error,des,des_error,status.
void write_accuracy_csv(std::ostream& out, const std::vector<AccuracyRow>& rows, AccuracyEngines engines);

}  // namespace moesim::reports
