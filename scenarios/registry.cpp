#include "scenarios/registry.hpp"

namespace moesim {

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

int RegistryBase::index_of(std::string_view name) const {
  for (std::size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name) return static_cast<int>(i);
  return -1;
}

int RegistryBase::require(std::string_view name, const std::string& source,
                          const std::string& pointer) const {
  const int i = index_of(name);
  if (i >= 0) return i;
  const std::string found = "\"" + std::string(name) + "\"";
  if (source.empty() && pointer.empty())
    throw ConfigError(kind_ + ": expected " + expected() + ", found " + found);
  throw ConfigError(located_message(source, pointer, expected(), found));
}

void RegistryBase::add_name(std::string name, std::string description) {
  MOESIM_ASSERT(index_of(name) < 0, kind_ + " \"" + name + "\" registered twice");
  names_.push_back(std::move(name));
  infos_.push_back({names_.back(), std::move(description)});
}

}  // namespace moesim
