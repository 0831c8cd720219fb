#include "reports/link_usage.hpp"

#include <iomanip>

#include "sim/topology.hpp"

namespace moesim::reports {

void write_link_usage_csv(const std::vector<sim::LinkUsage>& links, std::ostream& out) {
  const std::streamsize precision = out.precision();
  out << "link,kind,bandwidth_Bps,bytes,busy_s,busy_fraction,utilisation\n" << std::setprecision(10);
  for (const auto& l : links)
    out << l.name << "," << sim::to_string(l.kind) << "," << l.bandwidth << "," << l.bytes << ","
        << l.busy_time << "," << l.busy_fraction << "," << l.utilisation << "\n";
  out.precision(precision);
}

}  // namespace moesim::reports
