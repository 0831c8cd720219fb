#include "reports/output_dir.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "reports/csv.hpp"
#include "reports/result_json.hpp"
#include "reports/table.hpp"
#include "scenarios/error.hpp"

namespace moesim::reports {

namespace fs = std::filesystem;

namespace {

// The files of an output directory, in the order they are written; `format` set: only when
// outputs.formats lists it.
struct OutputFile {
  const char* name;
  std::optional<OutputFormat> format;
  void (*write)(std::ostream& out, const Scenario& s, const models::Result& r, const sim::StepSimResult* des);
};

const std::vector<OutputFile>& output_files() {
  static const std::vector<OutputFile> files{
      {"scenario.resolved.json", std::nullopt,
       [](std::ostream& out, const Scenario& s, const models::Result&, const sim::StepSimResult*) {
         out << s.resolved.dump(2) << "\n";
       }},
      {"result.json", std::nullopt,
       [](std::ostream& out, const Scenario& s, const models::Result& r, const sim::StepSimResult* des) {
         out << result_json(s, r, des).dump(2) << "\n";
       }},
      {"summary.csv", OutputFormat::kCsv,
       [](std::ostream& out, const Scenario&, const models::Result& r, const sim::StepSimResult*) {
         write_summary_csv(out, r);
       }},
      {"layers.csv", std::nullopt,
       [](std::ostream& out, const Scenario&, const models::Result& r, const sim::StepSimResult*) {
         write_layers_csv(out, r);
       }},
      {"summary.txt", OutputFormat::kTable,
       [](std::ostream& out, const Scenario& s, const models::Result& r, const sim::StepSimResult* des) {
         write_table(out, s, r, des);
       }},
  };
  return files;
}

std::vector<const OutputFile*> selected(const std::vector<OutputFormat>& formats) {
  std::vector<const OutputFile*> out;
  for (const auto& f : output_files())
    if (!f.format || std::find(formats.begin(), formats.end(), *f.format) != formats.end()) out.push_back(&f);
  return out;
}

}  // namespace

void write_file(const std::string& path, const std::string& text, bool force) {
  std::error_code ec;
  if (fs::exists(path, ec) && !force)
    throw IoError(path + ": refusing to overwrite an existing file (use --force or another --out)");
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw IoError(path + ": cannot open for writing");
  out << text;
  if (!out) throw IoError(path + ": write failed");
}

void check_not_present(const std::string& dir, const std::vector<std::string>& names, bool force) {
  if (force) return;
  std::error_code ec;
  for (const auto& n : names)
    if (fs::exists(fs::path(dir) / n, ec))
      throw IoError((fs::path(dir) / n).string() +
                    ": refusing to overwrite an existing result (use --force or another --out)");
}

std::vector<std::string> run_output_files(const std::vector<OutputFormat>& formats) {
  std::vector<std::string> names;
  for (const OutputFile* f : selected(formats)) names.push_back(f->name);
  return names;
}

void write_run_outputs(const std::string& dir, const Scenario& s, const models::Result& r, bool force,
                       const sim::StepSimResult* des) {
  const fs::path d(dir);
  std::error_code ec;
  fs::create_directories(d, ec);
  if (ec) throw IoError(dir + ": cannot create output directory: " + ec.message());
  const std::vector<const OutputFile*> files = selected(s.outputs.formats);
  check_not_present(dir, run_output_files(s.outputs.formats), force);
  std::string written;
  for (const OutputFile* f : files) {
    std::ostringstream text;
    f->write(text, s, r, des);
    write_file((d / f->name).string(), text.str(), force);
    written += (written.empty() ? "" : ",") + std::string(f->name);
  }
  std::cerr << "moesim: wrote " << d.string() << "/{" << written << "}\n";
}

}  // namespace moesim::reports
