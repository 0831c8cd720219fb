#include "reports/output_dir.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>

#include "reports/atomic_file.hpp"
#include "reports/chrome_trace.hpp"
#include "reports/csv.hpp"
#include "reports/link_usage.hpp"
#include "reports/ops.hpp"
#include "reports/result_json.hpp"
#include "reports/table.hpp"
#include "scenarios/error.hpp"
#include "sim/step_sim.hpp"

namespace moesim::reports {

namespace fs = std::filesystem;

namespace {

// What a run's files are written from.
struct Run {
  const Scenario& s;
  const models::Result& r;
  const sim::StepSimResult* des;
  const std::vector<models::OpRow>& ops;
  const std::vector<std::vector<double>>& gpu_load;
};

// expert_load.csv: one row per MoE layer and EP rank.
void write_expert_load_csv(std::ostream& out, const Run& x) {
  out << "moe_layer,layer,ep_rank,load_over_mean\n";
  char b[32];
  for (std::size_t i = 0; i < x.gpu_load.size(); ++i) {
    const int layer = i < x.r.moe_layers.size() ? x.r.moe_layers[i].layer : -1;
    for (std::size_t g = 0; g < x.gpu_load[i].size(); ++g) {
      std::snprintf(b, sizeof b, "%.10g", x.gpu_load[i][g]);
      out << i << "," << layer << "," << g << "," << b << "\n";
    }
  }
}

// The files of an output directory, in the order they are written; `format` set: only when
// outputs.formats lists it; `des`: only for a discrete-event run (the writer is then given its result).
struct OutputFile {
  const char* name;
  std::optional<OutputFormat> format;
  bool des;
  void (*write)(std::ostream& out, const Run& run);
};

const std::vector<OutputFile>& output_files() {
  static const std::vector<OutputFile> files{
      {"scenario.resolved.json", std::nullopt, false,
       [](std::ostream& out, const Run& x) { out << x.s.resolved.dump(2) << "\n"; }},
      {"result.json", std::nullopt, false,
       [](std::ostream& out, const Run& x) { out << result_json(x.s, x.r, x.des).dump(2) << "\n"; }},
      {"summary.csv", OutputFormat::kCsv, false,
       [](std::ostream& out, const Run& x) { write_summary_csv(out, x.r); }},
      {"layers.csv", std::nullopt, false,
       [](std::ostream& out, const Run& x) { write_layers_csv(out, x.r); }},
      {"ops.csv", std::nullopt, false, [](std::ostream& out, const Run& x) { write_ops_csv(out, x.ops); }},
      {"expert_load.csv", std::nullopt, false, write_expert_load_csv},
      {"summary.txt", OutputFormat::kTable, false,
       [](std::ostream& out, const Run& x) { write_table(out, x.s, x.r, x.des); }},
      {"trace.json", std::nullopt, true,
       [](std::ostream& out, const Run& x) { write_chrome_trace(*x.des, out); }},
      {"links.csv", std::nullopt, true,
       [](std::ostream& out, const Run& x) { write_link_usage_csv(x.des->links, out); }},
  };
  return files;
}

std::vector<const OutputFile*> selected(const std::vector<OutputFormat>& formats, bool des) {
  std::vector<const OutputFile*> out;
  for (const auto& f : output_files())
    if ((!f.format || std::find(formats.begin(), formats.end(), *f.format) != formats.end()) &&
        (!f.des || des))
      out.push_back(&f);
  return out;
}

}  // namespace

std::vector<std::string> known_output_files() {
  std::vector<std::string> names;
  for (const auto& f : output_files()) names.push_back(f.name);
  // A serving run's own files (reports/serving.hpp).
  for (const char* n : {"requests.csv", "kv_usage.csv"}) names.push_back(n);
  return names;
}

std::vector<std::string> run_output_files(const std::vector<OutputFormat>& formats, bool des) {
  std::vector<std::string> names;
  for (const OutputFile* f : selected(formats, des)) names.push_back(f->name);
  return names;
}

void check_run_outputs(const std::string& dir, const std::vector<std::string>& names, bool force,
                       const std::string& option) {
  check_output_dir(dir, option);
  std::error_code ec;
  for (const auto& n : known_output_files()) {
    const fs::path p = fs::path(dir) / n;
    const fs::file_status st = fs::symlink_status(p, ec);
    if (!fs::exists(st)) continue;
    if (!force)
      throw IoError(p.string() + ": refusing to overwrite an existing result (use --force or another --out)");
    if (std::find(names.begin(), names.end(), n) != names.end() && !fs::is_regular_file(fs::status(p, ec))) {
      const bool directory = fs::is_directory(fs::status(p, ec));
      throw IoError(p.string() + ": " + option + ": expected a result file to replace, found " +
                    (directory ? "a directory (a directory is never replaced, even with --force)"
                               : "something other than a regular file"));
    }
  }
}

void write_run_outputs(const std::string& dir, const Scenario& s, const models::Result& r, bool force,
                       const sim::StepSimResult* des, const std::vector<models::OpRow>& ops,
                       const std::string& option, const std::vector<std::vector<double>>& gpu_load) {
  const fs::path d(dir);
  const std::vector<const OutputFile*> files = selected(s.outputs.formats, des != nullptr);
  const std::vector<std::string> names = run_output_files(s.outputs.formats, des != nullptr);
  check_run_outputs(dir, names, force, option);
  OutputSet set;
  for (const OutputFile* f : files) {
    std::ostringstream text;
    f->write(text, Run{s, r, des, ops, gpu_load});
    set.add((d / f->name).string(), text.str());
  }
  // --force replaces the previous run's whole set: what it wrote and this run does not goes with it.
  for (const auto& n : known_output_files())
    if (std::find(names.begin(), names.end(), n) == names.end()) set.remove_on_commit((d / n).string());
  set.commit();
  std::string written;
  for (const auto& n : names) written += (written.empty() ? "" : ",") + n;
  std::cerr << "moesim: wrote " << d.string() << "/{" << written << "}"
            << (des != nullptr ? " (open trace.json in Perfetto)" : "") << "\n";
}

}  // namespace moesim::reports
