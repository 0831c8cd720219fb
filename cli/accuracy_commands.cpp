// `moesim accuracy`: every validation scenario and every published kernel row, predicted by the engines
// and held against the published figure (reports/accuracy.hpp, docs/accuracy.md).
#include <algorithm>
#include <filesystem>
#include <iostream>

#include "cli/check.hpp"
#include "cli/commands.hpp"
#include "cli/des_process.hpp"
#include "cli/errors.hpp"
#include "models/analytic.hpp"
#include "models/serving.hpp"
#include "reports/accuracy.hpp"
#include "reports/accuracy_kernels.hpp"
#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"

namespace moesim::cli {

namespace fs = std::filesystem;

const Registry<AccuracyEngine>& accuracy_engines() {
  static const Registry<AccuracyEngine> r{
      "accuracy engine",
      "which engines `moesim accuracy` runs on the validation scenarios",
      {{"analytic", "the analytic engine only (seconds for the whole suite)", AccuracyEngine::kAnalytic},
       {"des", "the discrete-event engine only, each scenario in its own process", AccuracyEngine::kDes},
       {"both", "both engines, side by side", AccuracyEngine::kBoth}}};
  return r;
}

int accuracy_cmd(const std::string& dir, AccuracyEngine engine, OutputFormat format,
                 const ReportTarget& report, const Catalog& cat) {
  const std::optional<reports::VegaBundle> vega = prepare_report(report);  // refuse before any work
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw IoError(located_message(dir, "DIR", "a folder of validation scenarios (*.json)",
                                  fs::exists(dir, ec) ? "a file" : "nothing there"));
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  const reports::AccuracyEngines engines{engine != AccuracyEngine::kDes, engine != AccuracyEngine::kAnalytic};

  std::vector<reports::AccuracyRow> rows;
  for (const auto& f : files) {
    Scenario s = load_scenario(f, cat);
    if (s.reference.empty())
      throw ConfigError(located_message(f, "/reference",
                                        "a published reference (every validation scenario has one)", "none"));
    check_scenario(s);
    if (s.workload.kind == WorkloadKind::kServing) {
      std::optional<models::ServingResult> analytic, des;
      std::string des_error;
      if (engines.analytic) analytic = models::evaluate_serving_analytic(s, models::serving_requests(s));
      if (engines.des) {
        std::cerr << "moesim: accuracy: simulating " << s.name << "\n";
        try {
          des = evaluate_serving_des_isolated(s);
        } catch (const std::exception& e) {
          des_error = error_line(e);
        }
      }
      auto r = reports::serving_rows(s, analytic ? &*analytic : nullptr, des ? &*des : nullptr);
      if (!des_error.empty())
        for (auto& row : r) {
          row.des_ok = false;
          row.des_note = "the discrete-event engine failed: " + des_error;
        }
      rows.insert(rows.end(), r.begin(), r.end());
      continue;
    }
    std::optional<models::Result> analytic, des;
    std::string des_error;
    if (engines.analytic) analytic = models::evaluate_analytic(s);
    if (engines.des) {
      std::cerr << "moesim: accuracy: simulating " << s.name << "\n";
      Scenario d = s;
      d.engine.kind = EngineKind::kDes;
      try {
        des = evaluate_des_isolated(d);
      } catch (const std::exception& e) {
        des_error = error_line(e);
      }
    }
    auto r = reports::end_to_end_rows(s, analytic ? &*analytic : nullptr, des ? &*des : nullptr);
    if (!des_error.empty())
      for (auto& row : r) {
        row.des_ok = false;
        row.des_note = "the discrete-event engine failed: " + des_error;
      }
    rows.insert(rows.end(), r.begin(), r.end());
  }
  const auto kernels = reports::kernel_rows((fs::path(dir) / "kernels").string(), cat);
  rows.insert(rows.end(), kernels.begin(), kernels.end());
  // One block per group (end-to-end, phase, all-to-all, GEMM, attention), files' order within it.
  std::stable_sort(
      rows.begin(), rows.end(),
      [](const reports::AccuracyRow& a, const reports::AccuracyRow& b) { return a.group < b.group; });

  switch (format) {
    case OutputFormat::kJson:
      std::cout << reports::accuracy_json(rows, engines).dump(2) << "\n";
      break;
    case OutputFormat::kCsv:
      reports::write_accuracy_csv(std::cout, rows, engines);
      break;
    case OutputFormat::kTable:
      reports::write_accuracy_table(std::cout, rows, engines);
      break;
  }
  if (vega) finish_report(report, *vega, reports::accuracy_json(rows, engines).dump(2) + "\n");
  return kOk;
}

}  // namespace moesim::cli
