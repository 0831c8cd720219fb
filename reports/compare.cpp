#include "reports/compare.hpp"

#include <algorithm>
#include <iomanip>

#include "reports/internal/format.hpp"

namespace moesim::reports {

using internal::fmt;
using internal::kGiB;
using nlohmann::json;

namespace {
void sort_rows(std::vector<CompareRow>& rows) {
  std::stable_sort(rows.begin(), rows.end(), [](const CompareRow& a, const CompareRow& b) {
    const int ra = !a.ok ? 2 : !a.result.feasible ? 1 : 0, rb = !b.ok ? 2 : !b.result.feasible ? 1 : 0;
    if (ra != rb) return ra < rb;
    return a.result.tokens_per_second > b.result.tokens_per_second;
  });
}
}  // namespace

void write_compare_table(std::ostream& out, std::vector<CompareRow> rows) {
  sort_rows(rows);
  std::size_t w = 8;
  for (const auto& r : rows) w = std::max(w, r.name.size() + 2);
  out << std::left << std::setw(static_cast<int>(w)) << "variant" << std::right << std::setw(12) << "step (s)"
      << std::setw(14) << "tokens/s" << std::setw(12) << "tok/s/GPU" << std::setw(8) << "MFU" << std::setw(10)
      << "bubble" << std::setw(10) << "exp. EP" << std::setw(10) << "GPU imb." << std::setw(10) << "mem GiB"
      << "  verdict\n";
  for (const auto& r : rows) {
    out << std::left << std::setw(static_cast<int>(w)) << r.name << std::right;
    if (!r.ok) {
      out << "  INVALID: " << r.error << "\n";
      continue;
    }
    const auto& x = r.result;
    out << std::setw(12) << fmt("%.3f", x.step_time) << std::setw(14) << fmt("%.4g", x.tokens_per_second)
        << std::setw(12) << fmt("%.1f", x.tokens_per_second_per_gpu) << std::setw(8)
        << fmt("%.1f%%", 100 * x.mfu) << std::setw(10) << fmt("%.3f", x.breakdown.bubble) << std::setw(10)
        << fmt("%.3f", x.breakdown.exposed_ep) << std::setw(10) << fmt("%.3f", x.moe_max_over_mean_gpu)
        << std::setw(10) << fmt("%.1f", x.memory.total / kGiB) << "  "
        << (x.feasible ? "ok" : "INFEASIBLE: " + x.infeasible_reason) << "\n";
  }
}

json compare_json(std::vector<CompareRow> rows) {
  sort_rows(rows);
  json a = json::array();
  for (const auto& r : rows) {
    json j{{"name", r.name}, {"valid", r.ok}};
    if (!r.ok) {
      j["error"] = r.error;
    } else {
      j["feasible"] = r.result.feasible;
      if (!r.result.feasible) j["infeasible_reason"] = r.result.infeasible_reason;
      j["step_time_s"] = r.result.step_time;
      j["tokens_per_s"] = r.result.tokens_per_second;
      j["tokens_per_s_per_gpu"] = r.result.tokens_per_second_per_gpu;
      j["mfu"] = r.result.mfu;
      j["memory_gib"] = r.result.memory.total / kGiB;
      j["moe_max_over_mean_gpu"] = r.result.moe_max_over_mean_gpu;
      j["balanced_step_time_s"] =
          r.result.balanced_step_time > 0 ? json(r.result.balanced_step_time) : json(nullptr);
    }
    a.push_back(j);
  }
  return json{{"schema_version", models::kResultSchemaVersion}, {"variants", a}};
}

}  // namespace moesim::reports
