#pragma once
/// \file Helpers shared by the files of the cluster graph (sim/topology*.cpp); not part of the API.

#include <cstdio>
#include <string>

#include "scenarios/error.hpp"

namespace moesim::sim::internal {

/// A number as the topology's messages and summary print it (printf "%g").
inline std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

/// Throws ConfigError "cluster topology: WHAT".
[[noreturn]] inline void config_error(const std::string& what) {
  throw ConfigError("cluster topology: " + what);
}

}  // namespace moesim::sim::internal
