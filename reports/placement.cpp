#include "reports/placement.hpp"

#include "reports/internal/format.hpp"

namespace moesim::reports {

using internal::fmt;

nlohmann::json placement_json(const models::ExpertPlacement& p, const std::vector<models::LayerLoad>& loads) {
  nlohmann::json j{{"phy2log", p.phy2log}, {"log2phy", p.log2phy}, {"logcnt", p.logcnt}};
  nlohmann::json imb = nlohmann::json::array();
  for (const auto& l : loads) imb.push_back(l.imbalance);
  j["gpu_max_over_mean"] = imb;
  return j;
}

void write_placement_table(std::ostream& out, const std::string& policy, const models::ExpertPlacement& p,
                           const std::vector<models::LayerLoad>& loads) {
  out << "policy " << policy << ": " << p.num_physical << " slots per layer on " << p.num_gpus << " GPUs ("
      << p.num_nodes << " nodes)\n";
  for (std::size_t l = 0; l < loads.size(); ++l) {
    out << "layer " << l << ": per-GPU max/mean " << fmt("%.4f", loads[l].imbalance) << "  phy2log";
    for (int x : p.phy2log[l]) out << " " << x;
    out << "\n";
  }
}

}  // namespace moesim::reports
