#include "plan/report.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace moesim::plan {

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

Json candidate_json(const PlanSpec& p, const Candidate& c) {
  Json j;
  j["cluster"] = p.hardware[c.hardware].label;
  j["gpus"] = c.gpus;
  j["nodes"] = c.nodes;
  j["layout"] = {{"tp", c.tp},
                 {"cp", c.cp},
                 {"pp", c.pp},
                 {"vpp", c.vpp},
                 {"dp", c.dp},
                 {"ep", c.ep},
                 {"etp", c.etp},
                 {"zero", c.zero},
                 {"microbatch_size", c.microbatch_size},
                 {"recompute", recompute_modes().name_of(c.recompute)},
                 {"schedule", schedules().name_of(c.schedule)},
                 {"dispatch", dispatch_modes().name_of(c.dispatch)},
                 {"ep_overlap", c.ep_overlap}};
  j["step_time_s"] = c.step_time_s;
  j["tokens_per_s_per_gpu"] = c.tokens_per_s_per_gpu;
  j["mfu"] = c.mfu;
  j["memory_headroom"] = c.memory_headroom;
  j["days_without_failures"] = c.solve_days;
  j["days"] = c.wall_days;
  j["goodput"] = c.goodput;
  j["checkpoint_interval_s"] =
      std::isfinite(c.checkpoint_interval_s) ? Json(c.checkpoint_interval_s) : Json();
  j["gpu_hours"] = c.gpu_hours;
  j["usd"] = c.usd;
  j["mwh"] = c.mwh;
  j["joules_per_token"] = c.joules_per_token;
  j["meets_deadline"] = c.meets_deadline;
  if (c.des_step_time_s > 0) {
    j["des_step_time_s"] = c.des_step_time_s;
    j["des_days"] = c.wall_days * c.des_step_time_s / c.step_time_s;
  } else if (!c.des_note.empty()) {
    j["des_note"] = c.des_note;
  }
  return j;
}

// Why `b` ranks below `a`, in words.
std::string why_lost(const PlanSpec& p, const Candidate& a, const Candidate& b) {
  std::ostringstream o;
  if (a.meets_deadline && !b.meets_deadline) {
    o << "misses the " << fmt("%.0f", p.within_days) << "-day deadline (" << fmt("%.1f", b.wall_days)
      << " days)";
    return o.str();
  }
  o << fmt("%+.1f%%", 100 * (b.usd / a.usd - 1)) << " dollars: ";
  if (b.gpus != a.gpus) o << b.gpus << " GPUs instead of " << a.gpus << ", ";
  o << fmt("%+.1f%%", 100 * (b.tokens_per_s_per_gpu / a.tokens_per_s_per_gpu - 1)) << " tokens/s per GPU";
  if (std::abs(b.goodput - a.goodput) > 1e-4)
    o << ", goodput " << fmt("%.3f", b.goodput) << " vs " << fmt("%.3f", a.goodput);
  if (p.hardware[b.hardware].usd_per_gpu_hour != p.hardware[a.hardware].usd_per_gpu_hour)
    o << ", $" << fmt("%.2f", p.hardware[b.hardware].usd_per_gpu_hour) << "/GPU-hour vs $"
      << fmt("%.2f", p.hardware[a.hardware].usd_per_gpu_hour);
  return o.str();
}

}  // namespace

std::string layout_text(const Candidate& c) {
  std::ostringstream o;
  o << "tp" << c.tp << " cp" << c.cp << " pp" << c.pp;
  if (c.vpp > 1) o << " vpp" << c.vpp;
  o << " dp" << c.dp << " ep" << c.ep << " etp" << c.etp << " zero" << c.zero << " mbs" << c.microbatch_size
    << " " << recompute_modes().name_of(c.recompute) << " " << schedules().name_of(c.schedule) << " "
    << dispatch_modes().name_of(c.dispatch);
  if (c.ep_overlap) o << " ep_overlap";
  return o.str();
}

void write_plan_table(std::ostream& out, const PlanSpec& p, const PlanResult& r) {
  const SearchCounts& n = r.counts;
  out << "plan " << p.name << ": " << fmt("%.4g", p.tokens) << " tokens";
  if (p.within_days > 0) out << " within " << fmt("%g", p.within_days) << " days";
  out << "\nsearch: " << n.enumerated << " enumerated, " << n.pruned << " pruned by divisibility, "
      << n.invalid << " invalid, " << n.evaluated << " evaluated (analytic), " << n.infeasible
      << " out of memory, " << n.feasible << " feasible, " << n.confirmed << " confirmed (discrete-event)\n";
  out << "checkpoint: " << fmt("%.3g", r.checkpoint_bytes / 1e12) << " TB; failures "
      << fmt("%.3g", p.reliability.failures_per_gpu_hour) << " per GPU-hour, restart "
      << fmt("%g", p.reliability.restart_s) << " s\n\n";
  if (r.best.empty()) {
    out << "no feasible plan: every layout was pruned, invalid or out of memory\n";
    return;
  }
  char line[512];
  std::snprintf(line, sizeof line, "%-4s %-18s %6s  %-62s %9s %8s %6s %7s %7s %8s %12s %12s %9s\n", "rank",
                "cluster", "GPUs", "layout", "step (s)", "tok/s/GPU", "MFU", "memfree", "goodput", "days",
                "GPU-hours", "USD", "MWh");
  out << line;
  for (std::size_t i = 0; i < r.best.size(); ++i) {
    const Candidate& c = r.best[i];
    std::snprintf(line, sizeof line,
                  "%-4zu %-18s %6d  %-62s %9.3f %8.0f %5.1f%% %6.1f%% %7.4f %8.2f%s %12.4g %12.4g %9.4g\n",
                  i + 1, p.hardware[c.hardware].label.c_str(), c.gpus, layout_text(c).c_str(), c.step_time_s,
                  c.tokens_per_s_per_gpu, 100 * c.mfu, 100 * c.memory_headroom, c.goodput, c.wall_days,
                  c.meets_deadline ? " " : "!", c.gpu_hours, c.usd, c.mwh);
    out << line;
  }
  bool confirmed = false;
  for (const Candidate& c : r.best) confirmed = confirmed || c.des_step_time_s > 0 || !c.des_note.empty();
  if (confirmed) {
    out << "\ndiscrete-event confirmation (step time, analytic -> discrete-event, and the days it gives):\n";
    for (std::size_t i = 0; i < r.best.size(); ++i) {
      const Candidate& c = r.best[i];
      if (c.des_step_time_s > 0)
        out << "  " << i + 1 << ": " << fmt("%.3f", c.step_time_s) << " s -> "
            << fmt("%.3f", c.des_step_time_s) << " s ("
            << fmt("%+.1f%%", 100 * (c.des_step_time_s / c.step_time_s - 1)) << "), "
            << fmt("%.2f", c.wall_days * c.des_step_time_s / c.step_time_s) << " days\n";
      else if (!c.des_note.empty())
        out << "  " << i + 1 << ": " << c.des_note << "\n";
    }
  }
  if (r.best.size() > 1) out << "\nrunner-up: " << why_lost(p, r.best[0], r.best[1]) << "\n";
  if (r.base) {
    const Candidate& b = *r.base;
    out << "\nthe base scenario's layout (" << b.gpus << " x " << p.hardware[b.hardware].label << ", "
        << layout_text(b) << "): rank " << r.base_rank << ", " << fmt("%.2f", b.wall_days) << " days, "
        << fmt("%.4g", b.gpu_hours) << " GPU-hours, " << fmt("%.4g", b.usd) << " USD";
    if (r.base_rank > 1) out << "; the best plan: " << why_lost(p, b, r.best[0]);
    out << "\n";
  } else if (r.base_evaluated) {
    out << "\nthe base scenario's layout does not fit in memory\n";
  }
  if (p.within_days > 0 && !r.best[0].meets_deadline)
    out << "no plan meets the deadline: '!' marks days beyond it\n";
  if (r.error_bars && !r.error_bars->runs.empty()) {
    const ErrorBars& e = *r.error_bars;
    const Candidate& b = r.best[0];
    out << "\nerror bars of the best plan, from " << e.runs.size() << " published runs held against the "
        << e.engine << " engine (published / predicted time p10 " << fmt("%.3f", e.p10) << ", p50 "
        << fmt("%.3f", e.p50) << ", p90 " << fmt("%.3f", e.p90)
        << "; moesim accuracy, docs/accuracy.md):\n  days " << fmt("%.2f", b.wall_days * e.p10) << " / "
        << fmt("%.2f", b.wall_days * e.p50) << " / " << fmt("%.2f", b.wall_days * e.p90) << ", USD "
        << fmt("%.4g", b.usd * e.p10) << " / " << fmt("%.4g", b.usd * e.p50) << " / "
        << fmt("%.4g", b.usd * e.p90) << " (p10 / p50 / p90)\n";
  }
  if (!r.sensitivity.empty()) {
    out << "\nsensitivity of the best plan (days and USD at each end):\n";
    for (const auto& x : r.sensitivity) {
      const auto end = [&](bool fits, double d, double u) {
        return fits ? fmt("%.2f", d) + " days " + fmt("%.4g", u) + " USD" : std::string("does not fit");
      };
      out << "  " << x.factor << ": " << x.low << " -> " << end(x.fits_low, x.days_low, x.usd_low) << "; "
          << x.high << " -> " << end(x.fits_high, x.days_high, x.usd_high) << "\n";
    }
  }
  out << "\nPareto front (no other plan is both faster and cheaper):\n";
  for (const Candidate& c : r.pareto) {
    std::snprintf(line, sizeof line, "  %8.2f days %12.4g USD  %6d x %-18s %s\n", c.wall_days, c.usd, c.gpus,
                  p.hardware[c.hardware].label.c_str(), layout_text(c).c_str());
    out << line;
  }
  out << "\nPareto front of days and energy:\n";
  for (const Candidate& c : r.pareto_energy) {
    std::snprintf(line, sizeof line, "  %8.2f days %12.4g MWh  %6d x %-18s %s\n", c.wall_days, c.mwh, c.gpus,
                  p.hardware[c.hardware].label.c_str(), layout_text(c).c_str());
    out << line;
  }
}

Json plan_json(const PlanSpec& p, const PlanResult& r) {
  Json j;
  j["plan"] = p.name;
  j["tokens"] = p.tokens;
  j["within_days"] = p.within_days;
  j["checkpoint_bytes"] = r.checkpoint_bytes;
  j["reliability"] = {{"failures_per_gpu_hour", p.reliability.failures_per_gpu_hour},
                      {"restart_s", p.reliability.restart_s},
                      {"checkpoint_bytes_per_s_per_gpu", p.reliability.checkpoint_bytes_per_s_per_gpu}};
  const SearchCounts& n = r.counts;
  j["search"] = {{"enumerated", n.enumerated}, {"pruned", n.pruned},         {"invalid", n.invalid},
                 {"evaluated", n.evaluated},   {"infeasible", n.infeasible}, {"feasible", n.feasible},
                 {"confirmed", n.confirmed}};
  j["plans"] = Json::array();
  for (const auto& c : r.best) {
    Json cj = candidate_json(p, c);
    if (r.error_bars) {
      const ErrorBars& e = *r.error_bars;
      cj["days_p10_p50_p90"] = {c.wall_days * e.p10, c.wall_days * e.p50, c.wall_days * e.p90};
      cj["usd_p10_p50_p90"] = {c.usd * e.p10, c.usd * e.p50, c.usd * e.p90};
    }
    j["plans"].push_back(cj);
  }
  if (r.error_bars) {
    const ErrorBars& e = *r.error_bars;
    Json runs = Json::array();
    for (const auto& x : e.runs) runs.push_back({{"run", x.run}, {"published_over_predicted_time", x.ratio}});
    j["error_bars"] = {{"engine", e.engine}, {"p10", e.p10}, {"p50", e.p50}, {"p90", e.p90}, {"runs", runs}};
  }
  if (!r.sensitivity.empty()) {
    Json t = Json::array();
    const auto num = [](double v) { return std::isfinite(v) ? Json(v) : Json(); };
    for (const auto& x : r.sensitivity)
      t.push_back({{"factor", x.factor},
                   {"low", x.low},
                   {"high", x.high},
                   {"days_low", num(x.days_low)},
                   {"days_high", num(x.days_high)},
                   {"usd_low", num(x.usd_low)},
                   {"usd_high", num(x.usd_high)}});
    j["sensitivity"] = t;
  }
  if (r.best.size() > 1) j["runner_up_lost"] = why_lost(p, r.best[0], r.best[1]);
  if (r.base) {
    j["base"] = candidate_json(p, *r.base);
    j["base"]["rank"] = r.base_rank;
  }
  j["pareto"] = Json::array();
  for (const auto& c : r.pareto) j["pareto"].push_back(candidate_json(p, c));
  j["pareto_energy"] = Json::array();
  for (const auto& c : r.pareto_energy) j["pareto_energy"].push_back(candidate_json(p, c));
  return j;
}

void write_plan_csv(std::ostream& out, const PlanSpec& p, const PlanResult& r) {
  out << "rank,cluster,gpus,nodes,tp,cp,pp,vpp,dp,ep,etp,zero,microbatch_size,recompute,schedule,dispatch,"
         "ep_overlap,step_time_s,"
         "tokens_per_s_per_gpu,mfu,memory_headroom,days_without_failures,days,goodput,gpu_hours,usd,mwh,"
         "joules_per_token,meets_deadline\n";
  char buf[64];
  auto g = [&](double v) {
    std::snprintf(buf, sizeof buf, "%.10g", v);
    return std::string(buf);
  };
  for (std::size_t i = 0; i < r.best.size(); ++i) {
    const Candidate& c = r.best[i];
    out << i + 1 << "," << p.hardware[c.hardware].label << "," << c.gpus << "," << c.nodes << "," << c.tp
        << "," << c.cp << "," << c.pp << "," << c.vpp << "," << c.dp << "," << c.ep << "," << c.etp << ","
        << c.zero << "," << c.microbatch_size << "," << recompute_modes().name_of(c.recompute) << ","
        << schedules().name_of(c.schedule) << "," << dispatch_modes().name_of(c.dispatch) << ","
        << (c.ep_overlap ? "true" : "false") << "," << g(c.step_time_s) << "," << g(c.tokens_per_s_per_gpu)
        << "," << g(c.mfu) << "," << g(c.memory_headroom) << "," << g(c.solve_days) << "," << g(c.wall_days)
        << "," << g(c.goodput) << "," << g(c.gpu_hours) << "," << g(c.usd) << "," << g(c.mwh) << ","
        << g(c.joules_per_token) << "," << (c.meets_deadline ? "true" : "false") << "\n";
  }
}

}  // namespace moesim::plan
