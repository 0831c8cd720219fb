#pragma once
/// \file Strict reading of JSON objects into plain structs: every key a reader does not ask for is an
/// error, every type mismatch names the JSON pointer, what was expected and what was found.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "scenarios/error.hpp"
#include "scenarios/registry.hpp"
#include "scenarios/units.hpp"

namespace moesim {

using Json = nlohmann::json;

/// Short description of a JSON value for error messages: `the string "abc"`, `the number 3`, `an object`.
std::string describe_json(const Json& j);

/// Escapes a key for use in a JSON pointer (RFC 6901: '~' → "~0", '/' → "~1").
std::string pointer_escape(const std::string& key);

/// Deepest nesting of objects and arrays any input may have (deeper input is refused before it can
/// exhaust the stack of a recursive copy).
constexpr std::size_t kMaxJsonDepth = 64;

/// Reads JSON text from a file; throws IoError if unreadable or a directory and ParseError if malformed
/// (with line and column), nested deeper than kMaxJsonDepth, holding a key twice in one object or a
/// number beyond double range (with the JSON pointer).
Json read_json_file(const std::string& path);

/// The base-scenario path of a plan or sweep file: `key` of `r` must be a string naming an existing
/// regular file, relative to the folder of r's source file. Returns it normalised; ConfigError for a
/// non-string, IoError naming the file and key when nothing readable is there.
std::string read_scenario_path(class ObjectReader& r, const std::string& key);

/// Parses JSON text; `source` names it in errors.
Json parse_json_text(const std::string& text, const std::string& source);

/// Reads one JSON object. Each get_* marks a key as known; finish() rejects any key not asked for.
class ObjectReader {
 public:
  /// `j` must outlive the reader. Throws ConfigError if `j` is not an object.
  ObjectReader(const Json& j, std::string source, std::string pointer);

  const std::string& source() const { return source_; }
  const std::string& pointer() const { return pointer_; }
  /// The pointer of a child key.
  std::string at(const std::string& key) const { return pointer_ + "/" + pointer_escape(key); }

  bool has(const std::string& key) const;
  /// The raw child value (marks the key as known). Throws if absent.
  const Json& child(const std::string& key);
  /// The raw child value or nullptr if absent (marks the key as known).
  const Json* optional_child(const std::string& key);

  std::string get_string(const std::string& key);
  std::string get_string(const std::string& key, const std::string& fallback);
  /// A string that must be one of `allowed`.
  std::string get_enum(const std::string& key, const std::vector<std::string>& allowed,
                       const std::string& fallback);
  /// A name registered in `registry`, returned as its value (`fallback` when the key is absent).
  template <class T>
  T get_choice(const std::string& key, const Registry<T>& registry, const T& fallback) {
    if (!has(key)) {
      known_.insert(key);
      return fallback;
    }
    return registry.get(get_string(key), source_, at(key));
  }
  /// A registered name, checked against `registry` (`fallback` when the key is absent).
  std::string get_name(const std::string& key, const RegistryBase& registry, const std::string& fallback) {
    std::string v = get_string(key, fallback);
    registry.require(v, source_, at(key));
    return v;
  }
  int64_t get_int(const std::string& key);
  int64_t get_int(const std::string& key, int64_t fallback);
  /// An integer within [lo, hi].
  int64_t get_int_in(const std::string& key, int64_t lo, int64_t hi, std::optional<int64_t> fallback);
  double get_number(const std::string& key);
  double get_number(const std::string& key, double fallback);
  double get_number_in(const std::string& key, double lo, double hi, std::optional<double> fallback);
  bool get_bool(const std::string& key, bool fallback);
  /// A quantity string with a unit of dimension `dim`, in SI base units.
  double get_quantity(const std::string& key, Dimension dim);
  double get_quantity(const std::string& key, Dimension dim, double fallback);
  std::vector<std::string> get_string_list(const std::string& key, const std::vector<std::string>& fallback);

  /// Throws ConfigError naming every unknown key and the keys that are allowed here.
  void finish() const;
  /// Records a ConfigError for every unknown key in `problems`.
  void finish(Problems& problems) const;

  /// Throws ConfigError at this object's pointer (or at `key` if given).
  [[noreturn]] void fail(const std::string& key, const std::string& expected, const std::string& found) const;

 private:
  const Json& j_;
  std::string source_;
  std::string pointer_;
  mutable std::set<std::string> known_;
};

}  // namespace moesim
