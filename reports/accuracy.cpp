#include "reports/accuracy.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <set>

#include "reports/internal/format.hpp"

namespace moesim::reports {

using internal::fmt;
using nlohmann::json;

const char* to_string(AccuracyGroup g) {
  switch (g) {
    case AccuracyGroup::kEndToEnd:
      return "end-to-end";
    case AccuracyGroup::kPhase:
      return "phase";
    case AccuracyGroup::kServing:
      return "serving";
    case AccuracyGroup::kAllToAll:
      return "all-to-all";
    case AccuracyGroup::kGemm:
      return "GEMM";
    case AccuracyGroup::kAttention:
      return "attention";
    case AccuracyGroup::kScan:
      return "scan";
    case AccuracyGroup::kTrace:
      return "trace";
  }
  return "?";
}

double AccuracyRow::error(bool des_engine) const {
  const double p = des_engine ? des : analytic;
  if (!std::isfinite(p) || !std::isfinite(published) || published == 0) return NAN;
  return (p - published) / published;
}

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

namespace {

AccuracyStats stats_of(const std::vector<AccuracyRow>& rows, AccuracyGroup g, bool des_engine) {
  AccuracyStats st;
  std::vector<double> abs_err;
  for (const auto& r : rows) {
    if (r.group != g) continue;
    const bool d = des_engine && !r.shared_prediction;  // one prediction serves both engines
    if (!(d ? r.des_ok : r.analytic_ok)) ++st.failures;
    const double e = r.error(d);
    if (std::isfinite(e)) abs_err.push_back(std::fabs(e));
  }
  st.rows = static_cast<int>(abs_err.size());
  st.median_abs = median(abs_err);
  if (!abs_err.empty()) st.max_abs = *std::max_element(abs_err.begin(), abs_err.end());
  return st;
}

// The rows of one engine of a scenario.
void fill(std::vector<AccuracyRow>& rows, const models::Result& r, bool des_engine) {
  for (auto& row : rows) {
    double v = NAN;
    if (row.quantity == "step_time") v = r.step_time;
    if (row.quantity == "tokens_per_s_per_gpu") v = r.tokens_per_second_per_gpu;
    if (row.quantity == "mfu") v = r.mfu;
    {
      const auto& p = r.phases;
      if (row.quantity == "phase_forward_only") v = p.forward_only;
      if (row.quantity == "phase_steady") v = p.steady;
      if (row.quantity == "phase_backward_only") v = p.backward_only;
      if (row.quantity == "phase_weight_only") v = p.weight_only;
      if (row.quantity == "phase_bubble") v = p.bubble;
      if (row.quantity == "phase_optimizer") v = r.breakdown.optimizer + r.breakdown.exposed_dp;
    }
    (des_engine ? row.des : row.analytic) = v;
    (des_engine ? row.des_memory : row.analytic_memory) = r.memory.total;
    row.memory_capacity = r.memory.capacity;
    if (!r.feasible && std::isfinite(v)) {
      (des_engine ? row.des_ok : row.analytic_ok) = false;
      (des_engine ? row.des_note : row.analytic_note) =
          "published as running, predicted not to fit: " + r.infeasible_reason;
    }
  }
}

std::string value_text(double v) {
  if (!std::isfinite(v)) return "-";
  if (std::fabs(v) < 1) return fmt("%.4f", v);
  return fmt("%.4g", v);
}

std::string error_text(const AccuracyRow& r, bool des_engine) {
  const bool ok = des_engine ? r.des_ok : r.analytic_ok;
  const double e = r.error(des_engine);
  std::string t = std::isfinite(e) ? fmt("%+.1f%%", 100 * e) : "-";
  if (!ok) t += std::isfinite(des_engine ? r.des : r.analytic) ? " OOM" : " FAIL";
  return t;
}

std::string stats_text(const AccuracyStats& s) {
  if (s.rows == 0 && s.failures == 0) return "-";
  std::string t =
      s.rows == 0 ? "no rows" : fmt("%.1f%%", 100 * s.median_abs) + " / " + fmt("%.1f%%", 100 * s.max_abs);
  if (s.failures > 0) t += " (" + std::to_string(s.failures) + " failed)";
  return t;
}

json num(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

json stats_json(const AccuracyStats& s) {
  return {{"rows", s.rows},
          {"failures", s.failures},
          {"median_abs_error", num(s.median_abs)},
          {"max_abs_error", num(s.max_abs)}};
}

}  // namespace

std::vector<AccuracyGroupStats> accuracy_summary(const std::vector<AccuracyRow>& rows) {
  std::vector<AccuracyGroupStats> out;
  for (AccuracyGroup g :
       {AccuracyGroup::kEndToEnd, AccuracyGroup::kPhase, AccuracyGroup::kServing, AccuracyGroup::kAllToAll,
        AccuracyGroup::kGemm, AccuracyGroup::kAttention, AccuracyGroup::kScan, AccuracyGroup::kTrace}) {
    if (std::none_of(rows.begin(), rows.end(), [&](const AccuracyRow& r) { return r.group == g; })) continue;
    out.push_back({g, stats_of(rows, g, false), stats_of(rows, g, true)});
  }
  return out;
}

namespace {

// A row for one figure of a scenario's reference block, when the block gives it.
void add_reference_row(std::vector<AccuracyRow>& rows, const Scenario& s, AccuracyGroup group,
                       const char* quantity, const char* unit, double published) {
  if (!std::isfinite(published)) return;
  AccuracyRow r;
  r.group = group;
  r.name = s.name;
  r.quantity = quantity;
  r.unit = unit;
  r.published = published;
  r.source = s.reference.source;
  rows.push_back(r);
}

}  // namespace

std::vector<AccuracyRow> serving_rows(const Scenario& s, const models::ServingResult* analytic,
                                      const models::ServingResult* des) {
  std::vector<AccuracyRow> rows;
  const ReferenceSpec& rf = s.reference;
  const auto add = [&](const char* quantity, const char* unit, double published) {
    add_reference_row(rows, s, AccuracyGroup::kServing, quantity, unit, published);
  };
  add("input_tokens_per_s_per_node", "tokens/s", rf.input_tokens_per_second_per_node);
  add("output_tokens_per_s_per_node", "tokens/s", rf.output_tokens_per_second_per_node);
  add("ttft", "s", rf.ttft);
  add("tpot", "s", rf.tpot);
  add("e2e", "s", rf.e2e);
  const double gpn = s.cluster.gpus_per_node;
  const auto fill_serving = [&](const models::ServingResult& r, bool des_engine) {
    // Per node of the instance kinds that take prompts in (input) or put tokens out (output).
    double in = 0, in_gpus = 0, out = 0, out_gpus = 0;
    for (const auto& i : r.instances) {
      const double g = double(i.gpus) * i.count;
      if (i.role != ServingRole::kDecode) in += i.input_tokens_per_s_per_gpu * g, in_gpus += g;
      if (i.role != ServingRole::kPrefill) out += i.output_tokens_per_s_per_gpu * g, out_gpus += g;
    }
    for (auto& row : rows) {
      double v = NAN;
      if (row.quantity == "input_tokens_per_s_per_node" && in_gpus > 0) v = in / in_gpus * gpn;
      if (row.quantity == "output_tokens_per_s_per_node" && out_gpus > 0) v = out / out_gpus * gpn;
      if (row.quantity == "ttft") v = r.ttft.mean;
      if (row.quantity == "tpot") v = r.tpot.mean;
      if (row.quantity == "e2e") v = r.e2e.mean;
      (des_engine ? row.des : row.analytic) = std::isfinite(v) ? v : NAN;
      if (!r.feasible) {
        (des_engine ? row.des_ok : row.analytic_ok) = false;
        (des_engine ? row.des_note : row.analytic_note) =
            "published as running, predicted not to fit: " + r.infeasible_reason;
      }
    }
  };
  if (analytic != nullptr) fill_serving(*analytic, false);
  if (des != nullptr) fill_serving(*des, true);
  return rows;
}

std::vector<AccuracyRow> end_to_end_rows(const Scenario& s, const models::Result* analytic,
                                         const models::Result* des) {
  std::vector<AccuracyRow> rows;
  const ReferenceSpec& rf = s.reference;
  auto add = [&](const char* quantity, const char* unit, double published) {
    const bool phase = std::string(quantity).rfind("phase_", 0) == 0;
    add_reference_row(rows, s, phase ? AccuracyGroup::kPhase : AccuracyGroup::kEndToEnd, quantity, unit,
                      published);
  };
  add("step_time", "s", rf.step_time);
  add("tokens_per_s_per_gpu", "tokens/s", rf.tokens_per_second_per_gpu);
  add("mfu", "fraction", rf.mfu);
  add("phase_forward_only", "s", rf.forward_only);
  add("phase_steady", "s", rf.steady);
  add("phase_backward_only", "s", rf.backward_only);
  add("phase_weight_only", "s", rf.weight_only);
  add("phase_bubble", "s", rf.bubble);
  add("phase_optimizer", "s", rf.optimizer);
  if (analytic != nullptr) fill(rows, *analytic, false);
  if (des != nullptr) fill(rows, *des, true);
  return rows;
}

namespace {

// One line on the memory verdict of the published training runs: how many fit on the engines' most
// loaded GPU, and the fullest of them (the analytic engine's figure where it ran, else the
// discrete-event engine's). A run predicted not to fit is listed under "failures" with its numbers.
void write_memory_line(std::ostream& out, const std::vector<AccuracyRow>& rows) {
  std::set<std::string> runs, fit;
  std::string fullest;
  double fullest_used = 0, fullest_capacity = 0;
  for (const auto& r : rows) {
    const double used = std::isfinite(r.analytic_memory) ? r.analytic_memory : r.des_memory;
    if (!std::isfinite(used) || !(r.memory_capacity > 0) || !runs.insert(r.name).second) continue;
    if (used <= r.memory_capacity) fit.insert(r.name);
    if (fullest.empty() || used / r.memory_capacity > fullest_used / fullest_capacity) {
      fullest = r.name;
      fullest_used = used;
      fullest_capacity = r.memory_capacity;
    }
  }
  if (runs.empty()) return;
  const double gib = 1024.0 * 1024.0 * 1024.0;
  out << "\nmemory: " << fit.size() << " of " << runs.size()
      << " published training runs fit on their most loaded GPU; the fullest, " << fullest << ", "
      << fmt("%.1f", fullest_used / gib) << " of " << fmt("%.1f", fullest_capacity / gib) << " GiB\n";
}

}  // namespace

void write_accuracy_table(std::ostream& out, const std::vector<AccuracyRow>& rows, AccuracyEngines engines) {
  std::size_t wn = 4, wq = 8;
  for (const auto& r : rows) {
    wn = std::max(wn, r.name.size() + 2);
    wq = std::max(wq, r.quantity.size() + r.unit.size() + 5);
  }
  out << std::left << std::setw(12) << "group" << std::setw(static_cast<int>(wn)) << "name"
      << std::setw(static_cast<int>(wq)) << "quantity" << std::right << std::setw(11) << "published";
  if (engines.analytic) out << std::setw(11) << "analytic" << std::setw(13) << "error";
  if (engines.des) out << std::setw(11) << "des" << std::setw(13) << "error";
  out << "\n";
  for (const auto& r : rows) {
    out << std::left << std::setw(12) << to_string(r.group) << std::setw(static_cast<int>(wn)) << r.name
        << std::setw(static_cast<int>(wq)) << (r.quantity + " (" + r.unit + ")") << std::right
        << std::setw(11) << value_text(r.published);
    if (engines.analytic)
      out << std::setw(11) << value_text(r.analytic) << std::setw(13) << error_text(r, false);
    if (engines.des) {
      if (r.shared_prediction)
        out << std::setw(11) << "=" << std::setw(13) << "";
      else
        out << std::setw(11) << value_text(r.des) << std::setw(13) << error_text(r, true);
    }
    out << "\n";
  }
  out << "\n|error| per group: median / max\n";
  out << std::left << std::setw(12) << "group" << std::right << std::setw(6) << "rows";
  if (engines.analytic) out << std::setw(32) << "analytic";
  if (engines.des) out << std::setw(32) << "des";
  out << "\n";
  for (const auto& g : accuracy_summary(rows)) {
    const auto n =
        std::count_if(rows.begin(), rows.end(), [&](const AccuracyRow& r) { return r.group == g.group; });
    const bool shared = std::all_of(rows.begin(), rows.end(), [&](const AccuracyRow& r) {
      return r.group != g.group || r.shared_prediction;
    });
    out << std::left << std::setw(12) << to_string(g.group) << std::right << std::setw(6) << n;
    if (engines.analytic) out << std::setw(32) << stats_text(g.analytic);
    if (engines.des) out << std::setw(32) << (shared ? "= (shared cost model)" : stats_text(g.des));
    out << "\n";
  }
  write_memory_line(out, rows);
  bool any_note = false;
  for (const auto& r : rows)
    for (const auto* note : {&r.analytic_note, &r.des_note})
      if (!note->empty()) {
        if (!any_note) out << "\nfailures:\n";
        any_note = true;
        out << "  " << r.name << " " << r.quantity << " (" << (note == &r.des_note ? "des" : "analytic")
            << "): " << *note << "\n";
      }
}

json accuracy_json(const std::vector<AccuracyRow>& rows, AccuracyEngines engines) {
  json a = json::array();
  auto engine = [](const AccuracyRow& r, bool des_engine) {
    const bool ok = des_engine ? r.des_ok : r.analytic_ok;
    const std::string& note = des_engine ? r.des_note : r.analytic_note;
    json e{
        {"predicted", num(des_engine ? r.des : r.analytic)}, {"error", num(r.error(des_engine))}, {"ok", ok}};
    if (!note.empty()) e["note"] = note;
    const double memory = des_engine ? r.des_memory : r.analytic_memory;
    if (std::isfinite(memory) && std::isfinite(r.memory_capacity)) {
      e["memory_bytes"] = memory;
      e["memory_capacity_bytes"] = r.memory_capacity;
    }
    return e;
  };
  for (const auto& r : rows) {
    json j{{"group", to_string(r.group)},
           {"name", r.name},
           {"quantity", r.quantity},
           {"unit", r.unit},
           {"published", r.published},
           {"source", r.source},
           {"shared_prediction", r.shared_prediction}};
    if (engines.analytic) j["analytic"] = engine(r, false);
    if (engines.des) j["des"] = r.shared_prediction ? engine(r, false) : engine(r, true);
    a.push_back(j);
  }
  json summary = json::array();
  for (const auto& g : accuracy_summary(rows)) {
    json j{{"group", to_string(g.group)}};
    if (engines.analytic) j["analytic"] = stats_json(g.analytic);
    if (engines.des) j["des"] = stats_json(g.des);
    summary.push_back(j);
  }
  json e = json::array();
  if (engines.analytic) e.push_back("analytic");
  if (engines.des) e.push_back("des");
  return json{{"schema_version", 1}, {"engines", e}, {"rows", a}, {"summary", summary}};
}

void write_accuracy_csv(std::ostream& out, const std::vector<AccuracyRow>& rows, AccuracyEngines engines) {
  out << "group,name,quantity,unit,published";
  if (engines.analytic) out << ",analytic,analytic_error,analytic_ok";
  if (engines.des) out << ",des,des_error,des_ok";
  out << "\n";
  auto v = [](double x) { return std::isfinite(x) ? fmt("%.6g", x) : std::string(); };
  for (const auto& r : rows) {
    out << to_string(r.group) << "," << r.name << "," << r.quantity << "," << r.unit << "," << v(r.published);
    if (engines.analytic)
      out << "," << v(r.analytic) << "," << v(r.error(false)) << "," << (r.analytic_ok ? "1" : "0");
    if (engines.des) {
      const bool d = !r.shared_prediction;
      out << "," << v(d ? r.des : r.analytic) << "," << v(r.error(d)) << ","
          << ((d ? r.des_ok : r.analytic_ok) ? "1" : "0");
    }
    out << "\n";
  }
}

}  // namespace moesim::reports
