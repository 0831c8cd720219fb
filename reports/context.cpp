#include "reports/context.hpp"

#include "scenarios/kinds.hpp"

#ifndef MOESIM_VERSION
#define MOESIM_VERSION "0.0.0"
#endif
#ifndef MOESIM_GIT_SHA
#define MOESIM_GIT_SHA "unknown"
#endif

namespace moesim::reports {

const char* version() {
  return MOESIM_VERSION;
}
const char* git_sha() {
  return MOESIM_GIT_SHA;
}

nlohmann::json context_json(const Scenario& s, const models::Result& r) {
  nlohmann::json c;
  c["moesim_version"] = version();
  c["git_sha"] = git_sha();
  c["scenario"] = s.name;
  c["scenario_file"] = s.source;
  c["engine"] = r.engine;
  c["fidelity"] = r.fidelity;
  c["cost_model"] = r.cost_model;
  c["calibration"] =
      s.calibration.empty()
          ? "none (roofline defaults from the GPU catalog: datasheet peaks x achievable fractions)"
          : s.calibration;
  c["seed"] = r.seed;
  return c;
}

bool is_des(const models::Result& r) {
  return engine_kinds().get(r.engine, "result", "/context/engine") == EngineKind::kDes;
}

}  // namespace moesim::reports
