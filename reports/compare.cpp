#include "reports/compare.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>

#include "reports/internal/format.hpp"
#include "reports/serving.hpp"

namespace moesim::reports {

using internal::fmt;
using internal::kGiB;
using nlohmann::json;

namespace {
// The variant column: the longest name plus two spaces, at least 8.
template <class Row>
int name_width(const std::vector<Row>& rows) {
  std::size_t w = 8;
  for (const auto& r : rows) w = std::max(w, r.name.size() + 2);
  return static_cast<int>(w);
}

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
  const int w = name_width(rows);
  out << std::left << std::setw(w) << "variant" << std::right << std::setw(12) << "step (s)" << std::setw(14)
      << "tokens/s" << std::setw(12) << "tok/s/GPU" << std::setw(8) << "MFU" << std::setw(10) << "bubble"
      << std::setw(10) << "exp. EP" << std::setw(10) << "GPU imb." << std::setw(10) << "mem GiB"
      << "  verdict\n";
  for (const auto& r : rows) {
    out << std::left << std::setw(w) << r.name << std::right;
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

namespace {
int serving_rank(const ServingCompareRow& r) {
  if (!r.ok) return 3;
  if (!r.result.feasible) return 2;
  return r.result.saturated ? 1 : 0;
}

void sort_serving_rows(std::vector<ServingCompareRow>& rows) {
  std::stable_sort(rows.begin(), rows.end(), [](const ServingCompareRow& a, const ServingCompareRow& b) {
    const int ra = serving_rank(a), rb = serving_rank(b);
    if (ra != rb) return ra < rb;
    if (a.result.goodput_requests_per_s != b.result.goodput_requests_per_s)
      return a.result.goodput_requests_per_s > b.result.goodput_requests_per_s;
    return a.result.output_tokens_per_s > b.result.output_tokens_per_s;
  });
}

int rebalances(const models::ServingResult& r) {
  int n = 0;
  for (const auto& i : r.instances) n += i.rebalances;
  return n;
}

std::string ms_or_dash(double seconds) {
  return std::isfinite(seconds) ? fmt("%.1f ms", 1e3 * seconds) : "-";
}
}  // namespace

void write_serving_compare_table(std::ostream& out, std::vector<ServingCompareRow> rows) {
  sort_serving_rows(rows);
  const int w = name_width(rows);
  out << std::left << std::setw(w) << "variant" << std::right << std::setw(10) << "engine" << std::setw(10)
      << "req/s" << std::setw(12) << "out tok/s" << std::setw(10) << "/GPU" << std::setw(11) << "TTFT mean"
      << std::setw(11) << "TTFT p99" << std::setw(11) << "TPOT mean" << std::setw(11) << "TPOT p99"
      << std::setw(10) << "goodput" << std::setw(8) << "SLO" << std::setw(9) << "prefix" << std::setw(7)
      << "EPLB"
      << "  verdict\n";
  for (const auto& r : rows) {
    out << std::left << std::setw(w) << r.name << std::right;
    if (!r.ok) {
      out << "  INVALID: " << r.error << "\n";
      continue;
    }
    const auto& x = r.result;
    out << std::setw(10) << x.engine << std::setw(10) << fmt("%.2f", x.requests_per_s) << std::setw(12)
        << fmt("%.4g", x.output_tokens_per_s) << std::setw(10) << fmt("%.1f", x.output_tokens_per_s_per_gpu)
        << std::setw(11) << ms_or_dash(x.ttft.mean) << std::setw(11) << ms_or_dash(x.ttft.p99)
        << std::setw(11) << ms_or_dash(x.tpot.mean) << std::setw(11) << ms_or_dash(x.tpot.p99)
        << std::setw(10) << fmt("%.2f", x.goodput_requests_per_s) << std::setw(8)
        << fmt("%.1f%%", 100 * x.slo_attainment) << std::setw(9)
        << (std::isfinite(x.prefix_hit_rate) ? fmt("%.3f", x.prefix_hit_rate) : std::string("-"))
        << std::setw(7) << rebalances(x) << "  "
        << (!x.feasible   ? "INFEASIBLE: " + x.infeasible_reason
            : x.saturated ? "SATURATED: " + x.saturation
                          : std::string("ok"))
        << (x.caveat.empty() ? std::string() : " (NOTE: " + x.caveat + ")") << "\n";
  }
  out << "(p99: the discrete-event engine's; the analytic engine gives means only)\n";
}

json serving_compare_json(std::vector<ServingCompareRow> rows) {
  sort_serving_rows(rows);
  json a = json::array();
  for (const auto& r : rows) {
    json j{{"name", r.name}, {"valid", r.ok}};
    if (!r.ok) {
      j["error"] = r.error;
    } else {
      const auto& x = r.result;
      j["engine"] = x.engine;
      j["feasible"] = x.feasible;
      if (!x.feasible) j["infeasible_reason"] = x.infeasible_reason;
      j["saturated"] = x.saturated;
      if (x.saturated) j["saturation"] = x.saturation;
      if (!x.caveat.empty()) j["caveat"] = x.caveat;
      j["requests_per_s"] = x.requests_per_s;
      j["output_tokens_per_s"] = x.output_tokens_per_s;
      j["output_tokens_per_s_per_gpu"] = x.output_tokens_per_s_per_gpu;
      j["input_tokens_per_s_per_gpu"] = x.input_tokens_per_s_per_gpu;
      for (const auto& [key, st] : {std::pair<const char*, const models::LatencyStats*>{"ttft_s", &x.ttft},
                                    {"tpot_s", &x.tpot},
                                    {"e2e_s", &x.e2e}})
        j[key] = latency_json(*st);
      j["goodput_requests_per_s"] = x.goodput_requests_per_s;
      j["slo_attainment"] = x.slo_attainment;
      j["prefix_hit_rate"] = finite_or_null(x.prefix_hit_rate);
      j["rebalances"] = rebalances(x);
    }
    a.push_back(j);
  }
  return json{{"schema_version", models::kResultSchemaVersion}, {"kind", "serving"}, {"variants", a}};
}

}  // namespace moesim::reports
