#include "reports/replay.hpp"

#include <iomanip>

#include "reports/internal/format.hpp"

namespace moesim::reports {

using internal::fmt;
using nlohmann::json;

json replay_json(const Scenario& s, const std::string& trace, const models::ReplayResult& r) {
  json steps = json::array();
  for (const auto& st : r.steps)
    steps.push_back({{"step", st.step},
                     {"step_time_s", st.step_time},
                     {"rebalance_s", st.rebalance_seconds},
                     {"rebalance_bytes", st.rebalance_bytes},
                     {"max_over_mean_gpu", st.max_over_mean_gpu},
                     {"max_over_mean_expert", st.max_over_mean_expert},
                     {"dropped_fraction", st.dropped_fraction}});
  json layers = json::array();
  for (const auto& l : r.last.moe_layers)
    layers.push_back({{"layer", l.layer},
                      {"max_over_mean_expert", l.max_over_mean_expert},
                      {"cv_expert", l.cv_expert},
                      {"max_over_mean_gpu", l.max_over_mean_gpu},
                      {"cv_gpu", l.cv_gpu},
                      {"straggler_s", l.straggler_seconds}});
  return {{"schema_version", models::kResultSchemaVersion},
          {"scenario", s.name},
          {"trace", trace},
          {"engine", r.engine},
          {"placement", s.placement.policy},
          {"mean_step_time_s", r.mean_step_time},
          {"balanced_step_time_s", r.balanced_step_time},
          {"steps", steps},
          {"last_step_layers", layers}};
}

void write_replay_table(std::ostream& out, const Scenario& s, const std::string& trace,
                        const models::ReplayResult& r) {
  out << "replay of " << trace << " through " << s.name << " (" << r.engine << " engine, placement "
      << s.placement.policy
      << (s.placement.redundant_experts ? " +" + std::to_string(s.placement.redundant_experts) + " redundant"
                                        : "")
      << ")\n\n";
  out << std::setw(8) << "step" << std::setw(14) << "step (s)" << std::setw(16) << "rebalance (s)"
      << std::setw(15) << "GPU max/mean" << std::setw(18) << "expert max/mean"
      << "\n";
  for (const auto& st : r.steps)
    out << std::setw(8) << st.step << std::setw(14) << fmt("%.4f", st.step_time) << std::setw(16)
        << fmt("%.4f", st.rebalance_seconds) << std::setw(15) << fmt("%.3f", st.max_over_mean_gpu)
        << std::setw(18) << fmt("%.3f", st.max_over_mean_expert) << "\n";
  out << "\nmean step " << fmt("%.4f", r.mean_step_time) << " s; with perfectly balanced routing "
      << fmt("%.4f", r.balanced_step_time) << " s ("
      << fmt("%+.1f%%", 100 * (r.mean_step_time / r.balanced_step_time - 1))
      << ")\n\nlast step, per MoE layer:\n"
      << std::setw(8) << "layer" << std::setw(16) << "expert max/mean" << std::setw(12) << "expert CV"
      << std::setw(14) << "GPU max/mean" << std::setw(10) << "GPU CV" << std::setw(16) << "straggler (ms)"
      << "\n";
  for (const auto& l : r.last.moe_layers)
    out << std::setw(8) << l.layer << std::setw(16) << fmt("%.3f", l.max_over_mean_expert) << std::setw(12)
        << fmt("%.3f", l.cv_expert) << std::setw(14) << fmt("%.3f", l.max_over_mean_gpu) << std::setw(10)
        << fmt("%.3f", l.cv_gpu) << std::setw(16) << fmt("%.3f", l.straggler_seconds * 1e3) << "\n";
}

}  // namespace moesim::reports
