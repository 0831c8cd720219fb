#pragma once
/// \file Scenario files → resolved, validated Scenario structs. Flow: file → JSON → catalog references
/// inlined → plain structs (unknown keys rejected) → validate() → engines.

#include <string>
#include <vector>

#include "scenarios/catalog.hpp"
#include "scenarios/json_reader.hpp"
#include "scenarios/scenario.hpp"

namespace moesim {

/// Reads model dimensions from a JSON object (catalog entry or inline). Pointer prefixes messages.
ModelSpec model_from_json(const Json& j, const std::string& source, const std::string& pointer);
GpuSpec gpu_from_json(const Json& j, const std::string& source, const std::string& pointer);
/// A cluster object whose "gpu" may be a catalog reference.
ClusterSpec cluster_from_json(const Json& j, const std::string& source, const std::string& pointer,
                              const Catalog& catalog, Json* resolved);

/// A scenario from JSON (catalog references resolved through `catalog`), validated.
/// Throws ParseError / ConfigError with file, pointer, expected and found.
Scenario scenario_from_json(const Json& j, const std::string& source, const Catalog& catalog);

/// The whole text of a calibration file (read when a scenario names one, and by calibrate::
/// read_calibration); CalibrationError (exit 7) naming the file when it cannot be read.
std::string read_calibration_text(const std::string& path);

/// Reads and validates a scenario file.
Scenario load_scenario(const std::string& path, const Catalog& catalog);

/// A named variant of a base scenario: JSON patches keyed by pointer ("parallelism/experts/ep": 32).
struct Variant {
  std::string name;
  Json set;  ///< object: pointer → new value
};

/// The variants listed under the scenario's top-level "variants" key (empty if none).
std::vector<Variant> variants_from_json(const Json& j, const std::string& source);

/// The base JSON with one variant's patches applied (and "variants" removed). Throws ConfigError if a
/// patch names a path whose parent does not exist.
Json apply_variant(const Json& base, const Variant& v, const std::string& source);

/// Checks cross-field consistency (parallel degrees, divisibility, capacities); fills derived degrees
/// (dp, edp). Throws ConfigError naming the offending pointer.
void validate(Scenario& s);

}  // namespace moesim
