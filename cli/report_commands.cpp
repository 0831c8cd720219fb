// `moesim report DIR`: the HTML report of an output folder (reports/html_report.hpp, docs/report.md).

#include <iostream>

#include "cli/commands.hpp"
#include "cli/errors.hpp"
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

}  // namespace moesim::cli
