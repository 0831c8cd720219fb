#pragma once
/// \file `moesim report PATH`: one self-contained HTML page (DIR/report.html) with interactive Vega-Lite
/// charts of whatever moesim wrote into an output folder: a run (result.json, with ops.csv, and for the
/// discrete-event engine trace.json and links.csv), a merged sweep (merged.json), a plan (plan.json), a
/// comparison (compare.json), a trace replay (replay.json) and an accuracy suite (accuracy.json). Vega,
/// Vega-Lite and vega-embed are the vendored builds in third_party/vega (tools/refresh_vega.sh), inlined into
/// the page, so it opens offline; nothing is fetched. Every chart has a table of the same numbers beside it,
/// and each chart's Vega-Lite spec (data inline) is also written to DIR/report-specs/ID.vl.json.
/// docs/report.md.

#include <string>
#include <utility>
#include <vector>

#include "scenarios/json_reader.hpp"

namespace moesim::reports {

/// The numbers of one chart as a table (the fallback shown beside it).
struct HtmlTable {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
};

/// One chart: a Vega-Lite spec with its data inline, and the same numbers as a table.
struct HtmlChart {
  std::string id;       ///< [a-z0-9-]+, unique in the report: element id and spec file name
  std::string title;    ///< heading
  std::string caption;  ///< what it shows and where the numbers come from
  Json spec;            ///< Vega-Lite
  HtmlTable table;
};

/// A report: sections of charts, in order.
struct HtmlReport {
  std::string title;
  std::vector<std::pair<std::string, std::string>> facts;  ///< shown under the title
  std::vector<std::string> sources;                        ///< files the report was built from
  std::vector<HtmlChart> charts;
};

/// The vendored libraries' text.
struct VegaBundle {
  std::string dir;  ///< where they were read
  std::string vega, vega_lite, vega_embed, versions;
};

/// Reads vega.min.js, vega-lite.min.js, vega-embed.min.js and VERSIONS from the folder named by the
/// environment variable MOESIM_VEGA_DIR, else the source tree's third_party/vega. IoError naming the
/// file when one is missing or unreadable.
VegaBundle load_vega_bundle();

/// Builds the report of an output folder from every file it recognises there (result.json, merged.json,
/// plan.json, compare.json, replay.json, accuracy.json; a run's ops.csv, expert_load.csv, trace.json and
/// links.csv add charts).
/// Throws IoError when `dir` is not a readable folder or holds none of them (the message lists what was
/// looked for), ParseError or ConfigError naming the file and JSON pointer (or CSV line and column) when
/// one of them is malformed.
HtmlReport build_report(const std::string& dir);

/// The page: every chart's container, its table and its spec, the libraries inlined. Each container gets
/// data-state="drawn" once its view has rendered marks, or data-state="error" with data-error set.
std::string render_html(const HtmlReport& r, const VegaBundle& v);

/// Writes DIR/report.html and DIR/report-specs/ID.vl.json as one set of files (reports/atomic_file.hpp):
/// they replace an earlier report of the folder together or not at all. Returns the page's path.
std::string write_report(const std::string& dir, const HtmlReport& r, const VegaBundle& v);

}  // namespace moesim::reports
