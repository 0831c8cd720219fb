#include "reports/table.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <string>
#include <vector>

#include "reports/context.hpp"
#include "reports/internal/format.hpp"
#include "scenarios/units.hpp"
#include "sim/step_sim.hpp"

namespace moesim::reports {
namespace {

/// The parallel degrees as run: the layout's derived sizes (a degree the scenario leaves at 0 is derived
/// there), with the virtual stages where there are several.
std::string layout_line(const Layout& l) {
  std::string out = "TP" + std::to_string(l.tp) + " CP" + std::to_string(l.cp) + " DP" +
                    std::to_string(l.dp) + " PP" + std::to_string(l.pp);
  if (l.vpp > 1) out += " VPP" + std::to_string(l.vpp);
  return out + " EP" + std::to_string(l.ep) + " ETP" + std::to_string(l.etp) + " EDP" + std::to_string(l.edp);
}

using internal::fmt;
using internal::kGiB;

std::string pct_err(double model, double ref) {
  if (!std::isfinite(ref) || ref == 0) return "";
  return fmt("%+.1f%%", 100.0 * (model - ref) / ref);
}

}  // namespace

void write_table(std::ostream& out, const Scenario& s, const models::Result& r,
                 const sim::StepSimResult* des) {
  const auto& rf = s.reference;
  const bool ref = !rf.empty();
  auto row = [&](const std::string& name, const std::string& model, double model_v, double ref_v,
                 const std::string& ref_s) {
    out << "  " << std::left << std::setw(34) << name << std::right << std::setw(14) << model;
    if (ref && std::isfinite(ref_v))
      out << std::setw(14) << ref_s << std::setw(10) << pct_err(model_v, ref_v);
    out << "\n";
  };
  auto secs = [](double v) { return fmt("%.3f s", v); };
  out << "moesim " << version() << "  scenario: " << s.name << "  engine: " << r.engine << "\n";
  out << "  model " << s.model.name << " | " << r.gpus << " x " << s.cluster.gpu.name << " ("
      << s.cluster.nodes << " nodes x " << s.cluster.gpus_per_node << ") | " << layout_line(s.layout) << " | "
      << to_string(s.parallelism.schedule) << ", ZeRO-" << s.parallelism.zero << ", "
      << to_string(s.workload.precision) << "\n";
  out << "  cost model: " << r.cost_model << " | fidelity: " << r.fidelity << " | seed " << r.seed << "\n";
  if (!r.feasible) out << "  INFEASIBLE: " << r.infeasible_reason << "\n";
  out << "\n  " << std::left << std::setw(34) << "quantity" << std::right << std::setw(14) << "moesim";
  if (ref) out << std::setw(14) << "published" << std::setw(10) << "error";
  out << "\n";
  row("step time", secs(r.step_time), r.step_time, rf.step_time, secs(rf.step_time));
  row("tokens/s", fmt("%.4g", r.tokens_per_second), r.tokens_per_second, NAN, "");
  row("tokens/s/GPU", fmt("%.1f", r.tokens_per_second_per_gpu), r.tokens_per_second_per_gpu,
      rf.tokens_per_second_per_gpu, fmt("%.1f", rf.tokens_per_second_per_gpu));
  row("MFU (non-causal, BF16 peak)", fmt("%.2f%%", 100 * r.mfu), r.mfu, rf.mfu, fmt("%.2f%%", 100 * rf.mfu));
  row("achieved TFLOP/s per GPU", fmt("%.1f", r.achieved_tflops_per_gpu), r.achieved_tflops_per_gpu, NAN, "");
  row("GPU-hours per 1T tokens", fmt("%.4g", r.gpu_hours_per_trillion_tokens), 0, NAN, "");
  if (r.cost_per_trillion_tokens > 0)
    row("USD per 1T tokens", fmt("%.4g", r.cost_per_trillion_tokens), 0, NAN, "");
  const auto& p = r.phases;
  {
    out << "\n  pipeline phases on PP rank " << r.critical_rank << " (" << to_string(s.parallelism.schedule)
        << ", " << r.microbatches << " microbatches"
        << (is_des(r) ? "; as executed in the simulation by the critical GPU" : "") << ")\n";
    row("forward-only chunks (1F) x" + std::to_string(p.lone_f), secs(p.forward_only), p.forward_only,
        rf.forward_only, secs(rf.forward_only));
    row("steady state (1F1B) x" + std::to_string(p.pairs), secs(p.steady), p.steady, rf.steady,
        secs(rf.steady));
    row("backward-only chunks (1B) x" + std::to_string(p.lone_b), secs(p.backward_only), p.backward_only,
        rf.backward_only, secs(rf.backward_only));
    row("deferred weight chunks (1W)", secs(p.weight_only), p.weight_only, rf.weight_only,
        secs(rf.weight_only));
    row("bubble", secs(p.bubble), p.bubble, rf.bubble, secs(rf.bubble));
    const double opt = r.breakdown.optimizer + r.breakdown.exposed_dp;
    row("optimizer + exposed grad sync", secs(opt), opt, rf.optimizer, secs(rf.optimizer));
  }
  out << "\n  per microbatch chunk: F " << format_seconds(r.chunk.f) << ", B " << format_seconds(r.chunk.b)
      << ", W " << format_seconds(r.chunk.w);
  if (!is_des(r)) out << ", steady unit " << format_seconds(p.pair_time);
  out << " (each alone on the critical rank)\n";
  const auto& b = r.breakdown;
  out << "\n  step breakdown\n";
  const double st = r.step_time > 0 ? r.step_time : 1;
  auto brow = [&](const char* n, double v) {
    out << "  " << std::left << std::setw(34) << n << std::right << std::setw(14) << secs(v) << std::setw(9)
        << fmt("%.1f%%", 100 * v / st) << "\n";
  };
  brow("compute", b.compute);
  brow("exposed EP all-to-all", b.exposed_ep);
  brow("exposed TP collectives", b.exposed_tp);
  brow("exposed CP ring", b.exposed_cp);
  brow("pipeline bubble", b.bubble);
  brow("exposed DP grad sync", b.exposed_dp);
  brow("optimizer", b.optimizer);
  const auto& m = r.memory;
  out << "\n  memory per GPU (PP rank " << r.memory_rank
      << ", the most loaded): " << fmt("%.1f", m.total / kGiB) << " of " << fmt("%.1f", m.capacity / kGiB)
      << " GiB" << (m.fits ? "" : "  DOES NOT FIT") << "\n    weights " << fmt("%.1f", m.weights / kGiB)
      << ", master " << fmt("%.1f", m.master_weights / kGiB) << ", gradients "
      << fmt("%.1f", m.gradients / kGiB) << ", optimizer " << fmt("%.1f", m.optimizer_states / kGiB)
      << ", activations " << fmt("%.1f", m.activations / kGiB) << ", reserve "
      << fmt("%.1f", m.overhead / kGiB) << " GiB\n";
  if (!r.moe_layers.empty()) {
    const double cost = r.step_time - r.balanced_step_time;
    if (r.balanced_step_time > 0)
      out << "\n  imbalance: step " << secs(r.step_time) << " vs " << secs(r.balanced_step_time)
          << " with perfectly balanced routing (" << fmt("%+.1f%%", 100 * cost / r.balanced_step_time)
          << ")\n";
    else
      out << "\n  imbalance: the balanced-routing step is not simulated by this engine (the analytic engine "
             "reports it)\n";
    out << "  MoE routing: per-GPU load max/mean " << fmt("%.3f", r.moe_max_over_mean_gpu) << " (mean over "
        << r.moe_layers.size() << " layers), dropped " << fmt("%.2f%%", 100 * r.moe_dropped_fraction)
        << ", dispatch " << format_seconds(r.moe_layers.front().dispatch_seconds) << " + combine "
        << format_seconds(r.moe_layers.front().combine_seconds) << " per layer (first MoE layer)\n";
  }
  if (ref) out << "\n  published figures: " << rf.source << "\n";
  if (des != nullptr) write_des_extras(out, *des);
}

void write_des_extras(std::ostream& out, const sim::StepSimResult& d) {
  const auto& r = d.result;
  char buf[256];
  std::snprintf(buf, sizeof buf, "  analytic engine, same workload: %.3f s (discrete-event %+.2f%%)\n",
                r.analytic_step_time,
                r.analytic_step_time > 0 ? 100.0 * (r.step_time / r.analytic_step_time - 1) : 0.0);
  out << "\ndiscrete-event simulation (" << d.settings.simgrid_version << ", " << d.settings.network_model
      << ", surf/precision " << d.settings.surf_precision << " s)\n"
      << buf;
  std::string ms;
  for (int m : d.stats.microbatches) ms += (ms.empty() ? "" : " + ") + std::to_string(m);
  std::snprintf(buf, sizeof buf,
                "  %d GPUs simulated in %d EP groups; microbatches %s; %lld compute segments, %lld "
                "all-to-alls, %lld flows\n",
                d.stats.simulated_gpus, d.stats.ep_groups, ms.c_str(), d.stats.segments, d.stats.collectives,
                d.stats.flows);
  out << buf;
  std::vector<const sim::LinkUsage*> top;
  for (const auto& l : d.links) top.push_back(&l);
  std::sort(top.begin(), top.end(), [](auto* a, auto* b) { return a->utilisation > b->utilisation; });
  if (!top.empty()) out << "  busiest links (last simulated run): utilisation, busy fraction, bytes\n";
  for (std::size_t i = 0; i < top.size() && i < 5; ++i) {
    std::snprintf(buf, sizeof buf, "    %-40s %6.1f%%  %6.1f%%  %.3e\n", top[i]->name.c_str(),
                  100 * top[i]->utilisation, 100 * top[i]->busy_fraction, top[i]->bytes);
    out << buf;
  }
}

}  // namespace moesim::reports
