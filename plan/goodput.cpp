#include "plan/goodput.hpp"

#include <cmath>
#include <limits>

namespace moesim::plan {

double daly_interval(double delta, double m) {
  if (!std::isfinite(m)) return std::numeric_limits<double>::infinity();
  if (delta >= 2 * m) return m;
  const double x = delta / (2 * m);
  return std::sqrt(2 * delta * m) * (1 + std::sqrt(x) / 3 + x / 9) - delta;
}

Goodput goodput(double solve_s, int gpus, double checkpoint_bytes, const Reliability& r) {
  Goodput g;
  const double rate_per_s = r.failures_per_gpu_hour * gpus / 3600.0;
  g.mtbf_s = rate_per_s > 0 ? 1.0 / rate_per_s : std::numeric_limits<double>::infinity();
  g.checkpoint_s = r.checkpoint_bytes_per_s_per_gpu > 0 && gpus > 0
                       ? checkpoint_bytes / (r.checkpoint_bytes_per_s_per_gpu * gpus)
                       : 0;
  if (!std::isfinite(g.mtbf_s)) {
    // No failures: no checkpoint is needed for recovery, the run takes its compute time.
    g.interval_s = std::numeric_limits<double>::infinity();
    return g;
  }
  const double m = g.mtbf_s, delta = g.checkpoint_s, tau = daly_interval(delta, m);
  g.interval_s = tau;
  g.wall_over_solve = tau > 0 ? m * std::exp(r.restart_s / m) * std::expm1((tau + delta) / m) / tau
                              : std::numeric_limits<double>::infinity();
  g.goodput = 1.0 / g.wall_over_solve;
  g.expected_interruptions = solve_s * g.wall_over_solve / m;
  return g;
}

double step_energy_j(const StepTimes& t, int gpus, int nodes, const Power& p) {
  const double gpu_j = p.busy_w * t.compute + p.communication_w * t.communication + p.idle_w * t.idle;
  return p.pue * (gpus * gpu_j + nodes * p.node_overhead_w * t.total());
}

}  // namespace moesim::plan
