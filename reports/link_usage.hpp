#pragma once
/// \file links.csv writer: per directed link, the load the discrete-event engine measured.

#include <ostream>
#include <vector>

#include "sim/netsim.hpp"

namespace moesim::reports {

/// Writes one CSV row per directed link that carried bytes (header
/// link,kind,bandwidth_Bps,bytes,busy_s,busy_fraction,utilisation; bytes/s, bytes, s, fractions), ten
/// significant digits. The stream's precision is restored afterwards.
void write_link_usage_csv(const std::vector<sim::LinkUsage>& links, std::ostream& out);

}  // namespace moesim::reports
