#pragma once
/// \file Number formatting shared by the text writers of reports/ (not part of its API).

#include <cstdio>
#include <string>

namespace moesim::reports::internal {

/// One number through a printf format, e.g. fmt("%.3f s", 1.5) == "1.500 s".
inline std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

/// Bytes per GiB.
inline constexpr double kGiB = 1073741824.0;

}  // namespace moesim::reports::internal
