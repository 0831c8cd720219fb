// `moesim report DIR`: the HTML report of an output folder (reports/html_report.hpp, docs/report.md).

#include <filesystem>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/errors.hpp"
#include "reports/atomic_file.hpp"
#include "reports/html_report.hpp"

namespace moesim::cli {

int report_html_cmd(const std::string& dir) {
  // The libraries first: a missing vendored file is reported before any input is read.
  const reports::VegaBundle vega = reports::load_vega_bundle();
  const reports::HtmlReport r = reports::build_report(dir);
  const std::string page = reports::write_report(dir, r, vega);
  std::cerr << "moesim: report: " << r.charts.size() << " charts into " << page << "\n";
  return kOk;
}

std::optional<reports::VegaBundle> prepare_report(const ReportTarget& t) {
  if (t.dir.empty()) return std::nullopt;
  reports::check_output_dir(t.dir, "--report");
  reports::check_output_file((std::filesystem::path(t.dir) / t.name).string(), t.force, "--report");
  return reports::load_vega_bundle();
}

void finish_report(const ReportTarget& t, const reports::VegaBundle& vega, const std::string& json_text) {
  const std::string file = (std::filesystem::path(t.dir) / t.name).string();
  reports::write_file(file, json_text, t.force, "--report");
  const std::string page = reports::write_report(t.dir, reports::build_report(t.dir), vega);
  std::cerr << "moesim: wrote " << file << " and " << page << "\n";
}

}  // namespace moesim::cli
