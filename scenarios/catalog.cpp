#include "scenarios/catalog.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "scenarios/error.hpp"

#ifndef MOESIM_CATALOG_DIR
#define MOESIM_CATALOG_DIR "scenarios/catalog"
#endif

namespace moesim {
namespace fs = std::filesystem;

const char* to_string(CatalogKind k) {
  switch (k) {
    case CatalogKind::kModel:
      return "models";
    case CatalogKind::kGpu:
      return "gpus";
    case CatalogKind::kCluster:
      return "clusters";
    case CatalogKind::kCalibration:
      return "calibrations";
  }
  return "?";
}

bool is_catalog_ref(const std::string& s, std::string& name) {
  static const std::string kPrefix = "catalog:";
  if (s.rfind(kPrefix, 0) != 0) return false;
  name = s.substr(kPrefix.size());
  return true;
}

Catalog::Catalog() {
  if (const char* env = std::getenv("MOESIM_CATALOG")) {
    std::string v = env;
    std::size_t start = 0;
    while (start <= v.size()) {
      auto end = v.find(':', start);
      if (end == std::string::npos) end = v.size();
      if (end > start) dirs_.push_back(v.substr(start, end - start));
      start = end + 1;
    }
  }
  dirs_.push_back(MOESIM_CATALOG_DIR);
}

Catalog::Catalog(std::vector<std::string> dirs) : dirs_(std::move(dirs)) {}

std::vector<std::string> Catalog::names(CatalogKind kind) const {
  std::vector<std::string> out;
  for (const auto& d : dirs_) {
    fs::path p = fs::path(d) / to_string(kind);
    std::error_code ec;
    if (!fs::is_directory(p, ec)) continue;
    for (const auto& e : fs::directory_iterator(p, ec)) {
      if (e.path().extension() == ".json") out.push_back(e.path().stem().string());
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string Catalog::path(CatalogKind kind, const std::string& name, const std::string& source,
                          const std::string& pointer) const {
  for (const auto& d : dirs_) {
    fs::path p = fs::path(d) / to_string(kind) / (name + ".json");
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  std::string list;
  for (const auto& n : names(kind)) list += (list.empty() ? "" : ", ") + n;
  throw ConfigError(located_message(
      source, pointer, std::string("a catalog ") + to_string(kind) + " entry (one of " + list + ")",
      "\"catalog:" + name + "\""));
}

Json Catalog::load(CatalogKind kind, const std::string& name, const std::string& source,
                   const std::string& pointer) const {
  return read_json_file(path(kind, name, source, pointer));
}

}  // namespace moesim
