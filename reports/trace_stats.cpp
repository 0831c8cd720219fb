#include "reports/trace_stats.hpp"

#include <iomanip>

#include "reports/internal/format.hpp"

namespace moesim::reports {

using internal::fmt;

TraceStatsWriter::TraceStatsWriter(std::ostream& out, OutputFormat format) : out_(out), format_(format) {
  if (format_ != OutputFormat::kJson)
    out_ << std::setw(8) << "step" << std::setw(8) << "layer" << std::setw(12) << "slots" << std::setw(16)
         << "expert max/mean" << std::setw(10) << "CV" << std::setw(10) << "dropped"
         << "\n";
}

void TraceStatsWriter::add(const traces::RoutingSample& x, const traces::ExpertLoadStats& st) {
  if (format_ == OutputFormat::kJson) {
    rows_.push_back({{"step", x.step},
                     {"layer", x.layer},
                     {"slots", x.slots()},
                     {"max_over_mean", st.max_over_mean},
                     {"cv", st.cv},
                     {"dropped", x.dropped}});
  } else {
    out_ << std::setw(8) << x.step << std::setw(8) << x.layer << std::setw(12) << x.slots() << std::setw(16)
         << fmt("%.3f", st.max_over_mean) << std::setw(10) << fmt("%.3f", st.cv) << std::setw(10) << x.dropped
         << "\n";
  }
}

void TraceStatsWriter::finish() {
  if (format_ == OutputFormat::kJson) out_ << rows_.dump(2) << "\n";
}

}  // namespace moesim::reports
