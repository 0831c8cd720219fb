// `moesim calibrate`: measure kernels on this machine's GPU and fit a calibration file (CUDA builds),
// and `moesim calibrate --check FILE`: predicted against measured for the held-out shapes (any build).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <map>

#include "calibrate/calibration.hpp"
#include "calibrate/fit.hpp"
#include "calibrate/published.hpp"
#include "cli/commands.hpp"
#include "reports/atomic_file.hpp"
#include "reports/context.hpp"
#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"
#ifdef MOESIM_WITH_PROFILER
#include "calibrate/profiler.hpp"
#endif

namespace moesim::cli {
namespace {

// The catalog GPU `ref` names ("catalog:NAME" or NAME); `where` names the flag or field in errors.
GpuSpec catalog_gpu_spec(const std::string& ref, const std::string& where, const Catalog& cat) {
  std::string name;
  if (!is_catalog_ref(ref, name)) name = ref;
  return gpu_from_json(cat.load(CatalogKind::kGpu, name, where, ""),
                       cat.path(CatalogKind::kGpu, name, where, ""), "");
}

// A calibration's provenance: the command line and the time now (UTC); the caller adds the commit.
calibrate::Provenance provenance_now(const std::string& command_line) {
  calibrate::Provenance prov;
  prov.command = command_line;
  const std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  prov.date = date;
  return prov;
}

// Writes `c` to `out` atomically (nothing half-written) and says so.
void write_calibration_file(const calibrate::Calibration& c, const std::string& out) {
  reports::OutputSet file;
  file.add_with(out, [&](const std::string& temporary) { calibrate::write_calibration(c, temporary); });
  file.commit();
  std::cerr << "moesim: wrote " << out << "\n";
}

std::string shape_of(const calibrate::Measurement& m) {
  char buf[128];
  if (!m.rows.empty())
    std::snprintf(buf, sizeof buf, "%zu groups, %.0f rows, n=%.0f k=%.0f", m.rows.size(), m.m, m.n, m.k);
  else if (m.bytes > 0)
    std::snprintf(buf, sizeof buf, "%.3g bytes", m.bytes);
  else
    std::snprintf(buf, sizeof buf, "m=%.0f n=%.0f k=%.0f", m.m, m.n, m.k);
  return buf;
}

}  // namespace

int calibrate_check_cmd(const std::string& path) {
  const calibrate::Calibration c = calibrate::read_calibration(path);
  // Published and scaled calibrations have no driver, CUDA version or date: say only what the file has.
  std::string where = std::to_string(c.device.sm_count) + " SMs";
  if (!c.device.driver_version.empty()) where += ", driver " + c.device.driver_version;
  if (!c.device.cuda_version.empty()) where += ", CUDA " + c.device.cuda_version;
  if (!c.device.date.empty()) where += ", " + c.device.date;
  std::cout << "calibration " << path << ": " << c.device.name << " (" << where << ")\n\n";
  std::cout << "held-out prediction error per kernel family:\n"
            << std::setw(19) << "family" << std::setw(8) << "points" << std::setw(10) << "median"
            << std::setw(10) << "p95" << std::setw(10) << "max"
            << "\n";
  for (const auto& [family, e] : c.held_out.families) {
    std::cout << std::setw(19) << calibrate::to_string(family) << std::setw(8) << e.count;
    if (e.count == 0) {  // nothing of this family held out in this file (e.g. carried from another)
      std::cout << std::setw(10) << "-" << std::setw(10) << "-" << std::setw(10) << "-"
                << "\n";
      continue;
    }
    std::cout << std::setw(9) << std::fixed << std::setprecision(2) << 100 * e.median << "%" << std::setw(9)
              << 100 * e.p95 << "%" << std::setw(9) << 100 * e.max << "%\n";
  }
  // Per point: whole models the fit never saw, training shapes and decode shapes reported apart.
  std::map<std::string, std::vector<double>> by_point;
  for (const auto& m : c.measurements) {
    if (!m.held_out || m.point.empty()) continue;
    const calibrate::FamilyModel* fm = c.model(m.family);
    if (fm == nullptr || !fm->covers(m)) continue;
    by_point[m.point].push_back(std::fabs(fm->predict(m) - m.median_s) / m.median_s);
  }
  if (!by_point.empty()) {
    std::cout << "\nheld-out error per point (every kernel of a model shape the fit never saw):\n"
              << std::setw(24) << "point" << std::setw(8) << "points" << std::setw(10) << "median"
              << std::setw(10) << "max"
              << "\n";
    for (const auto& [point, errors] : by_point) {
      const calibrate::ErrorStats e = calibrate::error_stats(errors);
      std::cout << std::setw(24) << point << std::setw(8) << e.count << std::setw(9) << std::fixed
                << std::setprecision(2) << 100 * e.median << "%" << std::setw(9) << 100 * e.max << "%\n";
    }
  }
  std::cout << "\nheld-out shapes, predicted against measured:\n";
  for (const auto& m : c.measurements) {
    if (!m.held_out) continue;
    const calibrate::FamilyModel* fm = c.model(m.family);
    if (fm == nullptr || !fm->covers(m)) continue;
    const double p = fm->predict(m);
    std::cout << "  " << std::left << std::setw(19) << calibrate::to_string(m.family) << std::setw(24)
              << m.variant << std::setw(40) << shape_of(m) << std::right << std::setw(11)
              << std::setprecision(2) << m.median_s * 1e6 << " us" << std::setw(11) << p * 1e6 << " us"
              << std::setw(9) << std::showpos << 100 * (p - m.median_s) / m.median_s << "%" << std::noshowpos
              << "\n";
  }
  if (!c.held_out.layers.empty()) {
    std::cout << "\nwhole layers:\n";
    for (const auto& l : c.held_out.layers)
      std::cout << "  " << std::left << std::setw(60) << l.name << std::right << std::setw(11)
                << l.measured_s * 1e6 << " us" << std::setw(11) << l.predicted_s * 1e6 << " us"
                << std::setw(8) << 100 * l.rel_error << "%\n";
  }
  return 0;
}

const Registry<CalibrationPlan>& calibration_plans() {
  static const Registry<CalibrationPlan> r{
      "calibration plan",
      "calibration sweeps (moesim calibrate --plan)",
      {{"full", "every kernel family over the shapes of docs/calibration.md", CalibrationPlan::kFull},
       {"smoke", "a few shapes per family: checks the pipeline in seconds", CalibrationPlan::kSmoke}}};
  return r;
}

int calibrate_published_cmd(const std::string& dir, const std::string& out, const std::string& gpu,
                            bool force, const std::string& command_line, const Catalog& cat) {
  reports::check_output_file(out, force, "--out");
  const GpuSpec spec = catalog_gpu_spec(gpu, "--gpu", cat);
  calibrate::Provenance prov = provenance_now(command_line);
  prov.git_sha = reports::git_sha();
  const calibrate::Calibration c = calibrate::calibrate_from_published(dir, spec, 4, prov);
  write_calibration_file(c, out);
  return calibrate_check_cmd(out);
}

int calibrate_scaled_cmd(const std::string& from_file, const std::string& out, const std::string& gpu,
                         bool force, const std::string& command_line, const Catalog& cat) {
  reports::check_output_file(out, force, "--out");
  const GpuSpec to = catalog_gpu_spec(gpu, "--gpu", cat);
  const calibrate::Calibration c = calibrate::read_calibration(from_file);
  const GpuSpec from = catalog_gpu_spec(c.device.name, from_file + ": /device/name", cat);
  calibrate::Provenance prov = provenance_now(command_line);
  prov.git_sha = reports::git_sha();
  const calibrate::Calibration scaled = calibrate::scale_calibration(c, from, to, prov);
  write_calibration_file(scaled, out);
  return 0;
}

int calibrate_refit_cmd(const std::string& profile_file, const std::string& fill, const std::string& out,
                        const std::string& gpu, bool force, const std::string& command_line,
                        const Catalog& cat) {
  reports::check_output_file(out, force, "--out");
  const calibrate::Profile p = calibrate::read_profile(profile_file);
  const GpuSpec spec = catalog_gpu_spec(gpu, "--gpu", cat);
  calibrate::Provenance prov = provenance_now(command_line);
  prov.git_sha = reports::git_sha();
  calibrate::Calibration c = calibrate::calibrate_profile(p, calibrate::fit_options_for(spec), prov);
  if (!fill.empty()) c = calibrate::fill_from(std::move(c), calibrate::read_calibration(fill));
  write_calibration_file(c, out);
  return calibrate_check_cmd(out);
}

int calibrate_run_cmd(const std::string& out, const std::string& measurements, const std::string& plan,
                      const std::string& gpu, bool force, const std::string& command_line,
                      const Catalog& cat) {
  // Checked before hours of profiling, and in every build, so a bad --out is the same error everywhere.
  reports::check_output_file(out, force, "--out");
  if (!measurements.empty()) reports::check_output_file(measurements, force, "--measurements");
#ifdef MOESIM_WITH_PROFILER
  const GpuSpec spec = catalog_gpu_spec(gpu, "--gpu", cat);
  const calibrate::ProfilePlan p = calibration_plans().get(plan) == CalibrationPlan::kSmoke
                                       ? calibrate::smoke_profile_plan()
                                       : calibrate::default_profile_plan();
  const calibrate::ProfileResult r = calibrate::run_profile(p, &std::cerr);
  calibrate::print_table(std::cerr, r);
  calibrate::Profile profile = calibrate::to_profile(r);
  if (!measurements.empty()) {
    // Written before the fit, so the measurements survive a fit that fails (`--refit` fits them again).
    reports::check_output_file(measurements, force, "--measurements");
    reports::OutputSet file;
    file.add(measurements, calibrate::profile_to_text(profile));
    file.commit();
    std::cerr << "moesim: wrote " << measurements << "\n";
  }
  calibrate::Provenance prov = provenance_now(command_line);
  prov.git_sha = reports::git_sha();
  const calibrate::Calibration c =
      calibrate::calibrate_profile(profile, calibrate::fit_options_for(spec), prov);
  reports::check_output_file(out, force, "--out");  // again: profiling took long
  write_calibration_file(c, out);
  return calibrate_check_cmd(out);
#else
  (void)plan, (void)gpu, (void)command_line, (void)cat;
  throw CalibrationError(
      "moesim calibrate: expected a build with CUDA and CUPTI (nvcc found at configure time) to measure "
      "kernels, found a build without them; `moesim calibrate --check FILE` and `--refit FILE` work in "
      "every build");
#endif
}

}  // namespace moesim::cli
