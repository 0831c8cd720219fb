#include "calibrate/fit.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <bit>
#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>

#include "scenarios/error.hpp"

namespace moesim::calibrate {

namespace {

[[noreturn]] void fit_error(const std::string& what, const std::string& expected, const std::string& found) {
  throw CalibrationError("calibration fit: " + what + ": expected " + expected + ", found " + found);
}

// min ‖A·x − b‖² subject to x[0] > 0 (or x[0] ≥ lo0 when lo0 > 0) and x[j] ≥ 0 for j > 0. A has at most
// a handful of columns, so the exact solution is found by enumeration: with y0 = x[0] − lo0 the problem is
// non-negative least squares, whose optimum is the unconstrained least-squares solution on its support
// (the columns whose constraint is inactive), so the best feasible solution over all supports is the
// optimum (Lawson & Hanson 1974, ch. 23). Without a bound, supports must contain column 0 with x[0] > 0.
// Columns are scaled to unit norm first so that the rank test of the pivoted QR is not fooled by units
// (s versus waves). Returns nullopt if no support is feasible. Among equal residuals the smaller support
// wins.
// `lo_last` > 0 likewise bounds the last column from below (x[last] ≥ lo_last).
std::optional<Eigen::VectorXd> nonnegative_least_squares(const Eigen::MatrixXd& a, const Eigen::VectorXd& b,
                                                         double lo0 = 0, double lo_last = 0) {
  const int cols = static_cast<int>(a.cols());
  const bool bounded = lo0 > 0;
  Eigen::VectorXd lo = Eigen::VectorXd::Zero(cols);
  lo(0) = lo0;
  if (cols > 1) lo(cols - 1) = lo_last;
  const Eigen::VectorXd rhs = b - a * lo;
  Eigen::VectorXd scale(cols);
  for (int j = 0; j < cols; ++j) scale(j) = a.col(j).norm() > 0 ? a.col(j).norm() : 1.0;
  const Eigen::MatrixXd as = a * scale.cwiseInverse().asDiagonal();

  std::vector<unsigned> supports;
  for (unsigned mask = 0; mask < (1u << cols); ++mask)
    if (bounded || (mask & 1u)) supports.push_back(mask);
  std::stable_sort(supports.begin(), supports.end(),
                   [](unsigned x, unsigned y) { return std::popcount(x) < std::popcount(y); });

  std::optional<Eigen::VectorXd> best;
  double best_residual = std::numeric_limits<double>::infinity();
  for (unsigned mask : supports) {
    std::vector<int> idx;
    for (int j = 0; j < cols; ++j)
      if (mask & (1u << j)) idx.push_back(j);
    Eigen::VectorXd xs = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(idx.size()));
    Eigen::MatrixXd sub(as.rows(), static_cast<Eigen::Index>(idx.size()));
    for (std::size_t c = 0; c < idx.size(); ++c) sub.col(static_cast<Eigen::Index>(c)) = as.col(idx[c]);
    if (!idx.empty()) {
      Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(sub);
      if (qr.rank() < static_cast<Eigen::Index>(idx.size())) continue;
      xs = qr.solve(rhs);
      if (!bounded && !(xs(0) > 0)) continue;
      if ((xs.array() < 0).any()) continue;
    }
    const double residual = idx.empty() ? rhs.squaredNorm() : (sub * xs - rhs).squaredNorm();
    if (residual < best_residual * (1 - 1e-12)) {
      best_residual = residual;
      Eigen::VectorXd x = Eigen::VectorXd::Zero(cols);
      for (std::size_t c = 0; c < idx.size(); ++c)
        x(idx[c]) = xs(static_cast<Eigen::Index>(c)) / scale(idx[c]);
      best = x + lo;
    }
  }
  return best;
}

std::string variant_of(KernelFamily f, const std::vector<Measurement>& ms, const FitOptions& o) {
  if (auto it = o.variants.find(f); it != o.variants.end()) {
    for (const Measurement& m : ms)
      if (m.family == f && m.variant == it->second) return it->second;
    fit_error(to_string(f), "measurements of the chosen variant \"" + it->second + "\"", "none");
  }
  std::set<std::string> seen;
  for (const Measurement& m : ms)
    if (m.family == f) seen.insert(m.variant);
  if (seen.size() == 1) return *seen.begin();
  std::string list;
  for (const auto& v : seen) list += (list.empty() ? "" : ", ") + v;
  fit_error(to_string(f), "measurements of one variant (or a choice in FitOptions::variants)",
            seen.empty() ? "no measurements" : "the variants " + list);
}

// Fits one tile shape; nullopt if no positive efficiency fits. `residual` gets Σ relative error².
std::optional<GemmParams> fit_gemm_tile(const std::vector<const Measurement*>& pts, int sm_count, double peak,
                                        const FitOptions& o, double tile_m, double tile_n, bool per_group,
                                        bool padded, TilePolicy policy, double& residual) {
  GemmParams p;
  p.tile_m = tile_m;
  p.tile_n = tile_n;
  p.tile_policy = policy;
  p.sm_count = sm_count;
  p.peak_flops = peak;
  p.efficiency = 1.0;  // so that tile_time(k) below is the ideal time
  p.launch_per_group = per_group;
  p.padded_groups = padded;
  const auto n = static_cast<Eigen::Index>(pts.size());
  // Rows divided by the measured time: the residuals are relative errors.
  Eigen::MatrixXd a(n, o.gemm_byte_term ? 4 : 3);
  Eigen::VectorXd b = Eigen::VectorXd::Ones(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    const Measurement& m = *pts[static_cast<std::size_t>(i)];
    const bool grouped = m.family == KernelFamily::kGroupedGemm;
    const double dense_rows[1] = {m.m};
    const TileChoice t =
        p.choose_tiles(grouped ? std::span<const double>(m.rows) : dense_rows, m.n, sm_count);
    const double waves = std::ceil(t.tiles / sm_count);
    const Eigen::Index launch = o.gemm_byte_term ? 3 : 2;                 // the launch column is the last one
    a(i, 0) = waves * p.tile_time(m.k, t.tile_m, t.tile_n) / m.median_s;  // × 1/efficiency
    a(i, 1) = waves / m.median_s;                                         // × wave overhead
    a(i, launch) = (grouped ? p.launches(m.rows) : 1.0) / m.median_s;     // × launch
    if (o.gemm_byte_term) {
      const double elem = element_bytes(m.precision);
      a(i, 2) = (grouped ? p.grouped_bytes(m.rows, m.n, m.k, elem) : gemm_bytes(m.m, m.n, m.k, elem)) /
                m.median_s;  // × seconds per byte
    }
  }
  // 1/efficiency ≥ 1: no tile runs faster than the datasheet peak; launch ≥ the floor of FitOptions.
  auto x = nonnegative_least_squares(a, b, 1.0, o.min_launch_s);
  if (!x) return std::nullopt;
  p.efficiency = 1.0 / (*x)(0);
  p.wave_overhead_s = (*x)(1);
  p.launch_s = (*x)(a.cols() - 1);
  if (o.gemm_byte_term) p.s_per_byte = (*x)(2);
  p.fitted_on = static_cast<int>(pts.size());
  residual = (a * *x - b).squaredNorm();
  return p;
}

GemmParams fit_gemm(const std::vector<const Measurement*>& pts, const std::string& what, int sm_count,
                    double peak, const FitOptions& o, bool per_group, bool padded, TilePolicy policy) {
  std::vector<std::pair<double, double>> tiles = {{o.tile_m, o.tile_n}};
  if (policy == TilePolicy::kFixed)  // min_waves picks its own tile per shape
    for (const auto& t : o.tile_candidates)
      if (std::find(tiles.begin(), tiles.end(), t) == tiles.end()) tiles.push_back(t);
  std::optional<GemmParams> best;
  double best_residual = std::numeric_limits<double>::infinity();
  for (const auto& [tm, tn] : tiles) {
    double residual = 0;
    auto p = fit_gemm_tile(pts, sm_count, peak, o, tm, tn, per_group, padded, policy, residual);
    if (p && residual < best_residual * (1 - 1e-12)) {  // ties keep the earlier (default) tile
      best = p;
      best_residual = residual;
    }
  }
  if (!best)
    fit_error(what, "a positive efficiency", "none that fits (check the reference peak and the shapes)");
  return *best;
}

// `max_rate` > 0 bounds the fitted rate (the datasheet peak or bandwidth).
StreamParams fit_stream(const std::vector<const Measurement*>& pts, const std::string& what, bool flops,
                        double max_rate) {
  const auto n = static_cast<Eigen::Index>(pts.size());
  Eigen::MatrixXd a(n, flops ? 4 : 2);
  Eigen::VectorXd b = Eigen::VectorXd::Ones(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    const Measurement& m = *pts[static_cast<std::size_t>(i)];
    a(i, 0) = (flops ? m.flops : m.bytes) / m.median_s;  // × 1/rate
    a(i, 1) = 1.0 / m.median_s;                          // × fixed
    if (flops) {
      a(i, 2) = attention_scores(m) / m.median_s;  // × seconds per score (0 without a shape)
      a(i, 3) = m.m / m.median_s;                  // × seconds per query row
    }
  }
  auto x = nonnegative_least_squares(a, b, max_rate > 0 ? 1.0 / max_rate : 0.0);
  if (!x) fit_error(what, flops ? "a positive flop rate" : "a positive bandwidth", "none that fits");
  StreamParams s;
  s.rate = 1.0 / (*x)(0);
  s.fixed_s = (*x)(1);
  if (flops) {
    s.s_per_score = (*x)(2);
    s.s_per_query_row = (*x)(3);
  }
  s.fitted_on = static_cast<int>(pts.size());
  return s;
}

}  // namespace

FitOptions fit_options_for(const GpuSpec& gpu) {
  FitOptions o;
  if (gpu.flops_bf16 > 0) o.peak_flops["bf16"] = gpu.flops_bf16;
  if (gpu.flops_fp8 > 0)
    o.peak_flops["fp8"] = o.peak_flops["fp8_tensor"] = o.peak_flops["fp8_wgrad"] = gpu.flops_fp8;
  o.memory_bandwidth = gpu.memory_bandwidth;
  return o;
}

void mark_held_out(std::vector<Measurement>& ms, int every) {
  std::map<KernelFamily, int> seen;
  for (Measurement& m : ms) m.held_out = every > 0 && ++seen[m.family] % every == 0;
}

void mark_held_out_points(std::vector<Measurement>& ms, const std::vector<std::string>& points, int every) {
  if (points.empty()) return mark_held_out(ms, every);
  std::map<KernelFamily, int> seen;
  for (Measurement& m : ms)
    m.held_out = m.point.empty() ? every > 0 && ++seen[m.family] % every == 0
                                 : std::find(points.begin(), points.end(), m.point) != points.end();
}

FamilyModel fit_family(KernelFamily f, const std::vector<Measurement>& ms, int sm_count,
                       const FitOptions& o) {
  if (sm_count < 1) fit_error(to_string(f), "a device with at least one SM", std::to_string(sm_count));
  FamilyModel model;
  model.family = f;
  model.variant = variant_of(f, ms, o);
  const std::string what = std::string(to_string(f)) + " (variant \"" + model.variant + "\"";
  std::map<std::string, std::vector<const Measurement*>> by_precision;
  for (const Measurement& m : ms)
    if (m.family == f && m.variant == model.variant && !m.held_out)
      by_precision[is_gemm_family(f) ? m.precision : std::string()].push_back(&m);
  if (by_precision.empty()) fit_error(what + ")", "measurements that are not held out", "none");

  for (const auto& [prec, pts] : by_precision) {
    const std::string w = what + (prec.empty() ? "" : ", " + prec) + ")";
    const std::size_t need = is_gemm_family(f) ? 3 : 2;
    if (pts.size() < need)
      fit_error(w, "at least " + std::to_string(need) + " measurements that are not held out",
                std::to_string(pts.size()));
    if (is_gemm_family(f)) {
      auto peak = o.peak_flops.find(prec);
      if (peak == o.peak_flops.end() || !(peak->second > 0))
        fit_error(w, "a reference peak for " + prec + " in FitOptions::peak_flops", "none");
      const auto named = [&](const std::vector<std::string>& list) {
        return f == KernelFamily::kGroupedGemm &&
               std::find(list.begin(), list.end(), model.variant) != list.end();
      };
      const bool per_group = named(o.per_group_launch_variants), padded = named(o.padded_variants);
      const auto policy = o.tile_policy.find(prec);
      model.gemm[prec] = fit_gemm(pts, w, sm_count, peak->second, o, per_group, padded,
                                  policy == o.tile_policy.end() ? TilePolicy::kFixed : policy->second);
    } else {
      const bool attention = is_attention_family(f);
      double max_rate = o.memory_bandwidth;
      if (attention) {
        auto peak = o.peak_flops.find("bf16");
        max_rate = peak == o.peak_flops.end() ? 0.0 : peak->second;
      }
      model.stream = fit_stream(pts, w, attention, max_rate);
    }
  }
  return model;
}

std::map<KernelFamily, FamilyModel> fit_models(const std::vector<Measurement>& ms, int sm_count,
                                               const FitOptions& o) {
  std::map<KernelFamily, FamilyModel> models;
  for (KernelFamily f : all_families())
    if (std::any_of(ms.begin(), ms.end(), [f](const Measurement& m) { return m.family == f; }))
      models[f] = fit_family(f, ms, sm_count, o);
  return models;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const double h = (static_cast<double>(values.size()) - 1) * std::clamp(p, 0.0, 1.0);
  const auto lo = static_cast<std::size_t>(std::floor(h));
  if (lo + 1 >= values.size()) return values.back();
  return values[lo] + (h - static_cast<double>(lo)) * (values[lo + 1] - values[lo]);
}

ErrorStats error_stats(const std::vector<double>& rel_errors) {
  ErrorStats s;
  s.count = static_cast<int>(rel_errors.size());
  if (rel_errors.empty()) return s;
  s.median = percentile(rel_errors, 0.5);
  s.p95 = percentile(rel_errors, 0.95);
  s.max = *std::max_element(rel_errors.begin(), rel_errors.end());
  return s;
}

HeldOut validate(const std::map<KernelFamily, FamilyModel>& models, const std::vector<Measurement>& ms,
                 const std::vector<LayerSpec>& layers) {
  HeldOut h;
  for (const auto& [f, model] : models) {
    std::vector<double> errors;
    for (const Measurement& m : ms)
      if (m.held_out && model.covers(m))
        errors.push_back(std::fabs(model.predict(m) - m.median_s) / m.median_s);
    h.families[f] = error_stats(errors);
  }
  for (const LayerSpec& spec : layers) {
    LayerCheck l;
    l.name = spec.name;
    l.components = spec.components;
    double measured = 0;
    for (std::size_t i : spec.components) {
      const std::string what = "layer check \"" + spec.name + "\"";
      if (i >= ms.size())
        fit_error(what, "measurement indices below " + std::to_string(ms.size()), std::to_string(i));
      const Measurement& m = ms[i];
      auto it = models.find(m.family);
      if (it == models.end() || !it->second.covers(m))
        fit_error(what, "components that a fitted model prices",
                  "measurement " + std::to_string(i) + " (" + to_string(m.family) + ", variant \"" +
                      m.variant + "\", " + m.precision + ")");
      l.predicted_s += it->second.predict(m);
      measured += m.median_s;
    }
    if (spec.components.empty())
      fit_error("layer check \"" + spec.name + "\"", "at least one component", "none");
    l.measured_s = spec.measured_s > 0 ? spec.measured_s : measured;
    l.rel_error = std::fabs(l.predicted_s - l.measured_s) / l.measured_s;
    h.layers.push_back(std::move(l));
  }
  return h;
}

Calibration calibrate(DeviceInfo device, SweepPlan sweep, std::vector<Measurement> ms,
                      const std::vector<LayerSpec>& layers, const FitOptions& o, Provenance provenance) {
  Calibration c;
  c.models = fit_models(ms, device.sm_count, o);
  set_copy_floors(c.models);
  if (sweep.families.empty())
    for (const auto& [f, _] : c.models) sweep.families.push_back(f);
  for (KernelFamily f : sweep.families)
    if (!c.models.count(f)) fit_error(to_string(f), "measurements of every swept family", "none");
  for (const auto& [f, _] : c.models)
    if (std::find(sweep.families.begin(), sweep.families.end(), f) == sweep.families.end())
      fit_error(to_string(f), "measured families listed in the sweep plan",
                "measurements of an unlisted family");
  c.held_out = validate(c.models, ms, layers);
  c.device = std::move(device);
  c.sweep = std::move(sweep);
  c.measurements = std::move(ms);
  c.provenance = std::move(provenance);
  return c;
}

std::map<KernelFamily, std::string> profiler_variants() {
  return {{KernelFamily::kRouter, "ours_softmax"},
          {KernelFamily::kPermute, "ours"},
          {KernelFamily::kGroupedGemm, "cublas_per_expert"},
          {KernelFamily::kDenseGemm, "cublas"},
          {KernelFamily::kCopy, "cuda_memcpy"}};
}

std::vector<LayerSpec> layers_with_variants(const std::vector<Measurement>& ms,
                                            const std::vector<LayerSpec>& layers,
                                            const std::map<KernelFamily, std::string>& variants) {
  std::vector<LayerSpec> out;
  for (const LayerSpec& l : layers) {
    const bool covered = std::all_of(l.components.begin(), l.components.end(), [&](std::size_t i) {
      if (i >= ms.size()) return true;  // validate() names the bad index
      const auto v = variants.find(ms[i].family);
      return v == variants.end() || v->second == ms[i].variant;
    });
    if (covered) out.push_back(l);
  }
  return out;
}

Calibration calibrate_profile(const Profile& p, FitOptions o, Provenance provenance) {
  if (o.variants.empty()) o.variants = profiler_variants();
  // The byte term prices the weight-bound shapes (decode: a few rows per expert against all its weights);
  // cuBLAS picks its tile per shape, so the fit tries the common Hopper tiles.
  o.gemm_byte_term = true;
  if (o.tile_candidates.empty()) o.tile_candidates = {{128, 256}, {256, 128}, {128, 64}, {64, 128}};
  // A family the profile has no measurements of keeps no variant choice (variant_of would reject it).
  for (auto it = o.variants.begin(); it != o.variants.end();) {
    const KernelFamily f = it->first;
    const bool measured = std::any_of(p.measurements.begin(), p.measurements.end(),
                                      [f](const Measurement& m) { return m.family == f; });
    it = measured ? std::next(it) : o.variants.erase(it);
  }
  return calibrate(p.device, p.sweep, p.measurements,
                   layers_with_variants(p.measurements, p.layers, o.variants), o, std::move(provenance));
}

Calibration fill_from(Calibration c, const Calibration& other) {
  const std::string src = other.source.empty() ? "calibration of " + other.device.name : other.source;
  if (other.device.sm_count != c.device.sm_count)
    throw CalibrationError(src + ": /device/sm_count: expected " + std::to_string(c.device.sm_count) +
                           " (the SMs of the calibration it completes), found " +
                           std::to_string(other.device.sm_count));
  std::vector<std::string> filled;
  for (KernelFamily f : all_families()) {
    const FamilyModel* theirs = other.model(f);
    if (theirs == nullptr) continue;
    auto mine = c.models.find(f);
    if (mine == c.models.end()) {
      c.models[f] = *theirs;
      for (const Measurement& m : other.measurements)
        if (theirs->covers(m)) c.measurements.push_back(m);
      if (auto st = other.held_out.families.find(f); st != other.held_out.families.end())
        c.held_out.families[f] = st->second;
      if (std::find(c.sweep.families.begin(), c.sweep.families.end(), f) == c.sweep.families.end())
        c.sweep.families.push_back(f);
      filled.push_back(to_string(f));
      continue;
    }
    if (!is_gemm_family(f)) continue;
    for (const auto& [prec, params] : theirs->gemm)
      if (!mine->second.gemm.count(prec)) {
        mine->second.gemm[prec] = params;
        filled.push_back(std::string(to_string(f)) + " " + prec);
      }
  }
  if (!filled.empty()) {
    std::string list;
    for (const auto& x : filled) list += (list.empty() ? "" : ", ") + x;
    c.sweep.note += (c.sweep.note.empty() ? "" : "; ") + std::string("not measured here, from ") +
                    std::filesystem::path(src).filename().string() + ": " + list;
  }
  set_copy_floors(c.models);
  return c;
}

}  // namespace moesim::calibrate
