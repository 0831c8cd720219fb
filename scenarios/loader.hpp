#pragma once
/// \file Scenario files → resolved, validated Scenario structs. Flow: file → JSON → catalog references
/// inlined → plain structs (unknown keys rejected) → validate() → engines.

#include <string>
#include <vector>

#include "scenarios/catalog.hpp"
#include "scenarios/json_reader.hpp"
#include "scenarios/scenario.hpp"

namespace moesim {

/// Reads model dimensions from a JSON object (catalog entry or inline) through the declared tables
/// (scenarios/params.hpp). Pointer prefixes messages. Throws every problem found, one per line.
ModelSpec model_from_json(const Json& j, const std::string& source, const std::string& pointer);
/// The same, recording problems in `problems` and reading on (members with a problem keep defaults).
ModelSpec model_from_json(const Json& j, const std::string& source, const std::string& pointer,
                          Problems& problems);
/// The model entry with every default filled in (it reads back as the same ModelSpec).
Json model_to_json(const ModelSpec& m);
GpuSpec gpu_from_json(const Json& j, const std::string& source, const std::string& pointer);
GpuSpec gpu_from_json(const Json& j, const std::string& source, const std::string& pointer,
                      Problems& problems);
/// A cluster object whose "gpu" may be a catalog reference; `resolved` receives it with every default
/// filled in.
ClusterSpec cluster_from_json(const Json& j, const std::string& source, const std::string& pointer,
                              const Catalog& catalog, Json* resolved);
ClusterSpec cluster_from_json(const Json& j, const std::string& source, const std::string& pointer,
                              const Catalog& catalog, Json* resolved, Problems& problems);

/// A scenario from JSON (catalog references resolved through `catalog`), validated. Reading goes on past
/// a problem wherever what follows does not depend on it; throws every problem found (ParseError /
/// ConfigError / CalibrationError of the first one's type), one per line, each with file, pointer,
/// expected and found.
Scenario scenario_from_json(const Json& j, const std::string& source, const Catalog& catalog);

/// The whole text of a calibration file (read when a scenario names one, and by calibrate::
/// read_calibration); CalibrationError (exit 7) naming the file when it cannot be read.
std::string read_calibration_text(const std::string& path, const char* what = "calibration file");
/// The file of a GPU's default calibration (GpuSpec::calibration, "catalog:NAME"): the catalog's
/// calibrations/NAME.json. ConfigError naming `source` and `pointer` if it is not a catalog reference or
/// there is no such entry. Call only when gpu.calibration is not empty.
std::string gpu_calibration_path(const GpuSpec& gpu, const Catalog& catalog, const std::string& source,
                                 const std::string& pointer);

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

/// Checks cross-field consistency (parallel degrees, divisibility, capacities); derives the Layout.
/// Throws ConfigError naming the offending pointer (every independent problem, one per line).
void validate(Scenario& s);
/// The same, recording the problems.
void validate(Scenario& s, Problems& problems);
/// Checks of a serving scenario (workload.kind "serving"): the instances against the cluster and the
/// model, the serving settings against each other. Records every independent problem.
void validate_serving(Scenario& s, Problems& problems);

}  // namespace moesim
