#include "scenarios/json_reader.hpp"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "scenarios/error.hpp"
#include "scenarios/text_input.hpp"

namespace moesim {

std::string describe_json(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return std::string("the boolean ") + (j.get<bool>() ? "true" : "false");
    case Json::value_t::string: {
      std::string s = j.get<std::string>();
      if (s.size() > 60) s = s.substr(0, 57) + "...";
      return "the string \"" + s + "\"";
    }
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return "the number " + j.dump();
    case Json::value_t::object:
      return "an object";
    case Json::value_t::array:
      return "an array of " + std::to_string(j.size());
    default:
      return "an unsupported value";
  }
}

std::string pointer_escape(const std::string& key) {
  std::string r;
  for (char c : key) {
    if (c == '~')
      r += "~0";
    else if (c == '/')
      r += "~1";
    else
      r += c;
  }
  return r;
}

namespace {

// The pointer of the value being parsed, kept from the parser's events: where a duplicate key, too deep
// a nesting or a number out of range is reported.
class PointerTracker {
 public:
  std::string pointer() const {
    std::string p;
    for (const auto& f : frames_) {
      if (f.in_object) {
        if (f.has_key) p += "/" + pointer_escape(f.key);
      } else if (f.count > 0) {
        p += "/" + std::to_string(f.count - 1);
      }
    }
    return p;
  }
  std::size_t depth() const { return frames_.size(); }

  // Returns the duplicate key's name when `key` was already given in the innermost object.
  bool add_key(const std::string& key) {
    Frame& f = frames_.back();
    f.key = key;
    f.has_key = true;
    return !f.keys.insert(key).second;
  }
  void element_starts() {
    if (!frames_.empty() && !frames_.back().in_object) ++frames_.back().count;
  }
  void open(bool object) {
    element_starts();
    frames_.push_back(Frame{object});
  }
  void close() { frames_.pop_back(); }

 private:
  struct Frame {
    bool in_object;
    std::set<std::string> keys{};
    std::string key{};
    bool has_key = false;
    std::size_t count = 0;
  };
  std::vector<Frame> frames_;
};

}  // namespace

Json parse_json_text(const std::string& text, const std::string& source) {
  PointerTracker where;
  const auto callback = [&](int, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        where.open(event == Json::parse_event_t::object_start);
        if (where.depth() > kMaxJsonDepth)
          throw ParseError(located_message(source, where.pointer(),
                                           "JSON nested at most " + std::to_string(kMaxJsonDepth) + " deep",
                                           "deeper nesting"));
        break;
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        where.close();
        break;
      case Json::parse_event_t::key: {
        const std::string key = parsed.get<std::string>();
        if (where.add_key(key))
          throw ParseError(located_message(source, where.pointer(), "each key once in an object",
                                           "\"" + key + "\" a second time"));
        break;
      }
      case Json::parse_event_t::value:
        where.element_starts();
        break;
    }
    return true;
  };
  try {
    return Json::parse(text, callback);
  } catch (const Json::parse_error& e) {
    // nlohmann reports a byte offset; turn it into line:column for the user.
    std::size_t off = e.byte > 0 ? e.byte - 1 : 0;
    int line = 1, col = 1;
    for (std::size_t i = 0; i < off && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string what = e.what();
    auto pos = what.find("syntax error");
    std::string detail = pos == std::string::npos ? what : what.substr(pos);
    throw ParseError(source + ":" + std::to_string(line) + ":" + std::to_string(col) +
                     ": expected valid JSON, found a " + detail);
  } catch (const Json::out_of_range& e) {
    // A number beyond double range (1e400): the parser stops on it, so the innermost key names it.
    std::string what = e.what();
    const auto quote = what.find('\'');
    const std::string literal = quote == std::string::npos ? "" : what.substr(quote);
    where.element_starts();
    throw ParseError(located_message(source, where.pointer(), "a number within double range (about 1.8e308)",
                                     literal.empty() ? "a number that overflows" : "the number " + literal));
  }
}

Json read_json_file(const std::string& path) {
  TextFile f = read_text_file(path);
  if (f.status != TextRead::kOk)
    throw IoError(located_message(path, "",
                                  f.status == TextRead::kDirectory ? "a JSON file" : "a readable JSON file",
                                  describe_failed_read(f)));
  return parse_json_text(f.text, path);
}

ObjectReader::ObjectReader(const Json& j, std::string source, std::string pointer)
    : j_(j), source_(std::move(source)), pointer_(std::move(pointer)) {
  if (!j_.is_object()) throw ConfigError(located_message(source_, pointer_, "an object", describe_json(j_)));
}

bool ObjectReader::has(const std::string& key) const {
  return j_.contains(key);
}

void ObjectReader::fail(const std::string& key, const std::string& expected, const std::string& found) const {
  throw ConfigError(located_message(source_, key.empty() ? pointer_ : at(key), expected, found));
}

const Json& ObjectReader::child(const std::string& key) {
  known_.insert(key);
  auto it = j_.find(key);
  if (it == j_.end()) fail(key, "a value (this key is required)", "nothing");
  return *it;
}

const Json* ObjectReader::optional_child(const std::string& key) {
  known_.insert(key);
  auto it = j_.find(key);
  return it == j_.end() ? nullptr : &*it;
}

std::string ObjectReader::get_string(const std::string& key) {
  const Json& v = child(key);
  if (!v.is_string()) fail(key, "a string", describe_json(v));
  return v.get<std::string>();
}

std::string ObjectReader::get_string(const std::string& key, const std::string& fallback) {
  return has(key) ? get_string(key) : (known_.insert(key), fallback);
}

std::string ObjectReader::get_enum(const std::string& key, const std::vector<std::string>& allowed,
                                   const std::string& fallback) {
  std::string v = get_string(key, fallback);
  for (const auto& a : allowed)
    if (a == v) return v;
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  fail(key, "one of " + list, "\"" + v + "\"");
}

int64_t ObjectReader::get_int(const std::string& key) {
  const Json& v = child(key);
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))
    fail(key, "an integer below 2^63", v.dump());  // would read back negative
  if (v.is_number_integer() || v.is_number_unsigned()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::floor(d) == d && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
  }
  fail(key, "an integer", describe_json(v));
}

int64_t ObjectReader::get_int(const std::string& key, int64_t fallback) {
  return has(key) ? get_int(key) : (known_.insert(key), fallback);
}

int64_t ObjectReader::get_int_in(const std::string& key, int64_t lo, int64_t hi,
                                 std::optional<int64_t> fallback) {
  if (!has(key) && fallback) {
    known_.insert(key);
    return *fallback;
  }
  int64_t v = get_int(key);
  if (v < lo || v > hi)
    fail(key, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", std::to_string(v));
  return v;
}

double ObjectReader::get_number(const std::string& key) {
  const Json& v = child(key);
  if (!v.is_number()) fail(key, "a number", describe_json(v));
  return v.get<double>();
}

double ObjectReader::get_number(const std::string& key, double fallback) {
  return has(key) ? get_number(key) : (known_.insert(key), fallback);
}

double ObjectReader::get_number_in(const std::string& key, double lo, double hi,
                                   std::optional<double> fallback) {
  if (!has(key) && fallback) {
    known_.insert(key);
    return *fallback;
  }
  double v = get_number(key);
  if (!(v >= lo && v <= hi)) {
    std::ostringstream e;
    e << "a number in [" << lo << ", " << hi << "]";
    fail(key, e.str(), child(key).dump());
  }
  return v;
}

bool ObjectReader::get_bool(const std::string& key, bool fallback) {
  const Json* v = optional_child(key);
  if (!v) return fallback;
  if (!v->is_boolean()) fail(key, "true or false", describe_json(*v));
  return v->get<bool>();
}

double ObjectReader::get_quantity(const std::string& key, Dimension dim) {
  const Json& v = child(key);
  if (!v.is_string())
    fail(key, std::string(dimension_hint(dim)) + " (a string with a unit)", describe_json(v));
  return parse_quantity(v.get<std::string>(), dim, source_, at(key));
}

double ObjectReader::get_quantity(const std::string& key, Dimension dim, double fallback) {
  return has(key) ? get_quantity(key, dim) : (known_.insert(key), fallback);
}

std::vector<std::string> ObjectReader::get_string_list(const std::string& key,
                                                       const std::vector<std::string>& fallback) {
  const Json* v = optional_child(key);
  if (!v) return fallback;
  if (!v->is_array()) fail(key, "an array of strings", describe_json(*v));
  std::vector<std::string> out;
  for (std::size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_string())
      throw ConfigError(
          located_message(source_, at(key) + "/" + std::to_string(i), "a string", describe_json((*v)[i])));
    out.push_back((*v)[i].get<std::string>());
  }
  return out;
}

void ObjectReader::finish() const {
  Problems problems;
  finish(problems);
  problems.raise();
}

void ObjectReader::finish(Problems& problems) const {
  std::string list;
  for (const auto& k : known_) list += (list.empty() ? "" : ", ") + k;
  for (auto it = j_.begin(); it != j_.end(); ++it) {
    if (known_.count(it.key()) || (!it.key().empty() && it.key()[0] == '_')) continue;  // "_comment" etc.
    problems.add(ConfigError(located_message(source_, at(it.key()), "one of the keys " + list,
                                             "the unknown key \"" + it.key() + "\"")));
  }
}

std::string read_scenario_path(ObjectReader& r, const std::string& key) {
  const Json& sc = r.child(key);
  if (!sc.is_string()) r.fail(key, "the path of the base scenario file", describe_json(sc));
  std::filesystem::path sp = sc.get<std::string>();
  if (sp.is_relative()) sp = std::filesystem::path(r.source()).parent_path() / sp;
  sp = sp.lexically_normal();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(sp, ec))
    throw IoError(located_message(
        r.source(), r.at(key), "a scenario file",
        sp.string() + (std::filesystem::exists(sp, ec) ? " (not a regular file)" : " (no such file)")));
  return sp.string();
}

}  // namespace moesim
