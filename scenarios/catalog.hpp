#pragma once
/// \file The catalog: published MoE architectures, GPUs and clusters as JSON files under
/// scenarios/catalog/{models,gpus,clusters}/NAME.json, referenced from scenarios as "catalog:NAME", and the
/// calibrations GPU entries name as their default (scenarios/catalog/calibrations/NAME.json).

#include <string>
#include <vector>

#include "scenarios/json_reader.hpp"
#include "scenarios/scenario.hpp"

namespace moesim {

enum class CatalogKind { kModel, kGpu, kCluster, kCalibration };

/// Catalog directories searched in order: $MOESIM_CATALOG (colon-separated), then the source tree's
/// scenarios/catalog recorded at build time.
class Catalog {
 public:
  /// Uses $MOESIM_CATALOG and the built-in directory.
  Catalog();
  /// Uses exactly these directories (tests).
  explicit Catalog(std::vector<std::string> dirs);

  /// Names available for a kind, sorted.
  std::vector<std::string> names(CatalogKind kind) const;
  /// Path of an entry; throws ConfigError listing the available names if unknown.
  std::string path(CatalogKind kind, const std::string& name, const std::string& source,
                   const std::string& pointer) const;
  /// The entry's JSON.
  Json load(CatalogKind kind, const std::string& name, const std::string& source,
            const std::string& pointer) const;
  const std::vector<std::string>& dirs() const { return dirs_; }

 private:
  std::vector<std::string> dirs_;
};

const char* to_string(CatalogKind k);

/// True if `s` is a catalog reference "catalog:NAME"; `name` receives NAME.
bool is_catalog_ref(const std::string& s, std::string& name);

}  // namespace moesim
