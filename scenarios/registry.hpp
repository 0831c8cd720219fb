#pragma once
/// \file The one mechanism by which anything selectable by name is declared: routing policies, gate
/// generators, load profiles, placements, topologies, schedules, engines, dispatch modes, trace and
/// output formats, and every enum-like scenario setting.
///
/// Like SimGrid's model lists (src/simgrid/module.cpp), a registry is a fixed table of entries, each a
/// name, a one-line description that cites its source, and a value: a factory function for pluggable
/// policies, or an enumerator for settings. A bad name fails with the list of valid ones. Registries
/// are function-local statics built on first use (an explicit call, so nothing vanishes from a static
/// library). `moesim list` walks every registry through RegistryBase.

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "scenarios/error.hpp"

namespace moesim {

/// Joins names with ", " (the form every "expected one of ..." message uses).
std::string join_names(const std::vector<std::string>& names);

/// A registry entry as `moesim list` prints it.
struct RegistryInfo {
  std::string name;
  std::string description;  ///< one line, with its source
};

/// The part of a registry that does not depend on its value type: what `moesim list` prints.
/// Iterating a registry yields its RegistryInfo entries in registration order.
class RegistryBase {
 public:
  /// `kind` is what one entry is, in the singular ("routing policy"); `title` the plural heading.
  RegistryBase(std::string kind, std::string title) : kind_(std::move(kind)), title_(std::move(title)) {}
  virtual ~RegistryBase() = default;
  RegistryBase(const RegistryBase&) = delete;
  RegistryBase& operator=(const RegistryBase&) = delete;

  const std::string& kind() const { return kind_; }
  const std::string& title() const { return title_; }
  const std::vector<std::string>& names() const { return names_; }
  std::size_t size() const { return infos_.size(); }
  std::vector<RegistryInfo>::const_iterator begin() const { return infos_.begin(); }
  std::vector<RegistryInfo>::const_iterator end() const { return infos_.end(); }
  /// Index of `name`, or -1.
  int index_of(std::string_view name) const;
  bool contains(std::string_view name) const { return index_of(name) >= 0; }
  /// "one of a, b, c": the expected part of an error message.
  std::string expected() const { return "one of " + join_names(names_); }
  /// Index of `name`; otherwise throws ConfigError "SOURCE: POINTER: expected one of ..., found "x"",
  /// or "KIND: expected one of ..., found "x"" when `source` is empty.
  int require(std::string_view name, const std::string& source = "", const std::string& pointer = "") const;

 protected:
  void add_name(std::string name, std::string description);

 private:
  std::string kind_, title_;
  std::vector<std::string> names_;
  std::vector<RegistryInfo> infos_;
};

/// A registry whose entries carry a value of type T (a factory, or an enumerator).
template <class T>
class Registry : public RegistryBase {
 public:
  struct Entry {
    std::string name;
    std::string description;  ///< one line, with its source
    T value;
  };

  Registry(std::string kind, std::string title, std::initializer_list<Entry> entries)
      : RegistryBase(std::move(kind), std::move(title)) {
    for (const auto& e : entries) {
      add_name(e.name, e.description);
      values_.push_back(e.value);
    }
  }

  /// The value named `name` (ConfigError listing the valid names otherwise; see require()).
  const T& get(std::string_view name, const std::string& source = "", const std::string& pointer = "") const {
    return values_[static_cast<std::size_t>(require(name, source, pointer))];
  }
  /// The value named `name`, or nullptr.
  const T* find(std::string_view name) const {
    const int i = index_of(name);
    return i < 0 ? nullptr : &values_[static_cast<std::size_t>(i)];
  }
  /// The name of the first entry whose value equals `v` (enum-valued registries).
  const std::string& name_of(const T& v) const {
    for (std::size_t i = 0; i < values_.size(); ++i)
      if (values_[i] == v) return names()[i];
    MOESIM_ASSERT(false, kind() + ": a value every registry entry names");
    return names()[0];
  }
  const std::vector<T>& values() const { return values_; }

 private:
  std::vector<T> values_;
};

}  // namespace moesim
