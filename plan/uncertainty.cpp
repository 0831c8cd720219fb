#include "plan/uncertainty.hpp"

#include <algorithm>
#include <cmath>

#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"

namespace moesim::plan {

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const double h = (static_cast<double>(v.size()) - 1) * q;
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (h - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

ErrorBars error_bars(std::vector<TimeRatio> runs) {
  ErrorBars e;
  std::sort(runs.begin(), runs.end(), [](const TimeRatio& a, const TimeRatio& b) { return a.run < b.run; });
  e.runs = std::move(runs);
  if (e.runs.empty()) return e;
  std::vector<double> r;
  for (const auto& x : e.runs) r.push_back(x.ratio);
  e.p10 = quantile(r, 0.1);
  e.p50 = quantile(r, 0.5);
  e.p90 = quantile(r, 0.9);
  return e;
}

namespace {

// Prices `s` (validated) like `c`'s plan under `p`; false when it no longer fits.
bool reprice(const PlanSpec& p, const Candidate& c, Scenario s, const models::RoutingInput* routing,
             Candidate& out) {
  validate(s);
  return price(p, c.hardware, s, routing, checkpoint_bytes(p.base), out);
}

void fill(Sensitivity& x, bool low, bool fits, const Candidate& k) {
  (low ? x.fits_low : x.fits_high) = fits;
  (low ? x.days_low : x.days_high) = fits ? k.wall_days : NAN;
  (low ? x.usd_low : x.usd_high) = fits ? k.usd : NAN;
}

}  // namespace

std::vector<Sensitivity> sensitivity(const PlanSpec& p, const Candidate& c,
                                     const models::RoutingInput* routing) {
  std::vector<Sensitivity> out;
  const Scenario base = scenario_of(p, c);
  Candidate k;
  {
    Sensitivity x{"routing imbalance", "balanced (every expert equally loaded)",
                  "zipf(1.0) expert popularity"};
    Scenario lo = base, hi = base;
    for (Scenario* s : {&lo, &hi}) {
      s->routing.mode = RoutingMode::kExpected;
      s->routing.capacity_factor = 0;
    }
    lo.routing.load.generator = "uniform";
    hi.routing.load.generator = "zipf";
    hi.routing.load.zipf_s = 1.0;
    fill(x, true, reprice(p, c, lo, nullptr, k), k);
    fill(x, false, reprice(p, c, hi, nullptr, k), k);
    out.push_back(x);
  }
  {
    Sensitivity x{"network bandwidth", "x0.8 (NVLink and NIC)", "x1.2 (NVLink and NIC)"};
    for (const double f : {0.8, 1.2}) {
      Scenario s = base;
      s.cluster.scale_up.bandwidth *= f;
      s.cluster.scale_out.nic_bandwidth *= f;
      fill(x, f < 1, reprice(p, c, s, routing, k), k);
    }
    out.push_back(x);
  }
  {
    // Every kernel's rate (the calibration's or the roofline's) at x0.8 and x1.2: the size of the
    // compute model's kernel-level errors (docs/accuracy.md: GEMM and attention rows within about 25%).
    Sensitivity x{"compute speed", "x0.8 (every kernel)", "x1.2 (every kernel)"};
    for (const double f : {0.8, 1.2}) {
      Scenario s = base;
      s.compute_speed = f;
      fill(x, f < 1, reprice(p, c, s, routing, k), k);
    }
    out.push_back(x);
  }
  {
    Sensitivity x{"failure rate", "x0.5", "x2"};
    for (const double f : {0.5, 2.0}) {
      PlanSpec q = p;
      q.reliability.failures_per_gpu_hour *= f;
      fill(x, f < 1, price(q, c.hardware, base, routing, checkpoint_bytes(p.base), k), k);
    }
    out.push_back(x);
  }
  return out;
}

}  // namespace moesim::plan
