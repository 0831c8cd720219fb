#include "models/placement/internal/plan.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <utility>

#include "scenarios/error.hpp"

namespace moesim::models::internal {

std::string number_text(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

void placement_error(const std::string& policy, const std::string& pointer, const std::string& expected,
                     const std::string& found) {
  throw ConfigError(located_message("expert placement \"" + policy + "\"", pointer, expected, found));
}

void check_matrix(const std::string& policy, const std::string& pointer,
                  const std::vector<std::vector<double>>& c, int n) {
  if (static_cast<int>(c.size()) != n)
    placement_error(policy, pointer, std::to_string(n) + " rows (one per logical expert)",
                    std::to_string(c.size()));
  for (int i = 0; i < n; ++i) {
    if (static_cast<int>(c[i].size()) != n)
      placement_error(policy, pointer + "/" + std::to_string(i), std::to_string(n) + " entries",
                      std::to_string(c[i].size()));
    for (int j = 0; j < n; ++j)
      if (!std::isfinite(c[i][j]) || c[i][j] < 0)
        placement_error(policy, pointer + "/" + std::to_string(i) + "/" + std::to_string(j),
                        "a finite non-negative count", number_text(c[i][j]));
  }
}

int logical_experts(const PlacementInput& in) {
  return static_cast<int>(in.weight.front().size());
}

ExpertPlacement assemble(const PlacementInput& in, std::vector<LayerPlan> plans) {
  ExpertPlacement p;
  p.layers = static_cast<int>(plans.size());
  p.num_physical = in.num_replicas;
  p.num_logical = static_cast<int>(in.weight.front().size());
  p.num_gpus = in.num_gpus;
  p.num_nodes = in.num_nodes;
  int width = 1;
  for (const LayerPlan& l : plans)
    width = std::max(width, *std::max_element(l.logcnt.begin(), l.logcnt.end()));
  for (LayerPlan& l : plans) {
    std::vector<std::vector<int>> inv(static_cast<std::size_t>(p.num_logical),
                                      std::vector<int>(static_cast<std::size_t>(width), -1));
    for (int s = 0; s < p.num_physical; ++s) {
      MOESIM_ASSERT(l.phy2log[s] >= 0 && l.rank[s] < l.logcnt[l.phy2log[s]],
                    "slot left empty or rank past count");
      inv[l.phy2log[s]][l.rank[s]] = s;
    }
    p.phy2log.push_back(std::move(l.phy2log));
    p.logcnt.push_back(std::move(l.logcnt));
    p.log2phy.push_back(std::move(inv));
  }
  return p;
}

}  // namespace moesim::models::internal
