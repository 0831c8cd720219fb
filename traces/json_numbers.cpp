#include "traces/json_numbers.hpp"

#include <cmath>
#include <vector>

#include "scenarios/error.hpp"

namespace moesim::traces {
namespace {

// Builds the DOM with nlohmann's own builder and, beside it, the JSON pointer of the value being read,
// to keep the literal text of numbers the DOM cannot give back exactly. The pointer is only spelled out
// for those rare numbers; otherwise the bookkeeping is one counter per open array.
class LiteralKeeper {
 public:
  explicit LiteralKeeper(JsonDoc& doc) : dom_(doc.value, true), doc_(doc) {}

  bool null() { return dom_.null() && done(); }
  bool boolean(bool v) { return dom_.boolean(v) && done(); }
  bool number_integer(Json::number_integer_t v) { return dom_.number_integer(v) && done(); }
  bool number_unsigned(Json::number_unsigned_t v) { return dom_.number_unsigned(v) && done(); }
  bool number_float(Json::number_float_t v, const std::string& s) {
    // An integer literal beyond 64 bits (no '.', no exponent) or a large float: keep the text.
    if (s.find_first_of(".eE") == std::string::npos || std::fabs(v) >= 9007199254740992.0)
      doc_.literals[pointer()] = s;
    return dom_.number_float(v, s) && done();
  }
  bool string(std::string& v) { return dom_.string(v) && done(); }
  bool binary(Json::binary_t& v) { return dom_.binary(v) && done(); }
  bool start_object(std::size_t n) {
    frames_.push_back({false, 0, {}});
    return dom_.start_object(n);
  }
  bool key(std::string& k) {
    frames_.back().key = k;
    return dom_.key(k);
  }
  bool end_object() {
    frames_.pop_back();
    return dom_.end_object() && done();
  }
  bool start_array(std::size_t n) {
    frames_.push_back({true, 0, {}});
    return dom_.start_array(n);
  }
  bool end_array() {
    frames_.pop_back();
    return dom_.end_array() && done();
  }
  bool parse_error(std::size_t byte, const std::string& token, const nlohmann::detail::exception& e) {
    error.byte = byte > 0 ? byte - 1 : 0;
    if (e.id == 406) {  // out_of_range.406: a number a double cannot hold
      error.found = "the number " + token + ", beyond the range of a double";
    } else {
      const std::string what = e.what();
      const auto pos = what.find("syntax error");
      error.found = "a " + (pos == std::string::npos ? what : what.substr(pos));
    }
    return false;
  }

  JsonSyntax error;

 private:
  struct Frame {
    bool array;
    std::size_t index;
    std::string key;
  };
  // A value ended: the next one in an array has the next index.
  bool done() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
    return true;
  }
  std::string pointer() const {
    std::string p;
    for (const auto& f : frames_) p += "/" + (f.array ? std::to_string(f.index) : pointer_escape(f.key));
    return p;
  }

  nlohmann::detail::json_sax_dom_parser<Json> dom_;
  JsonDoc& doc_;
  std::vector<Frame> frames_;
};

std::string num(int64_t v) {
  return std::to_string(v);
}

}  // namespace

bool parse_json_doc(const std::string& text, JsonDoc& doc, JsonSyntax& error) {
  doc.value = Json();
  doc.literals.clear();
  LiteralKeeper keeper(doc);
  if (Json::sax_parse(text, &keeper)) return true;
  error = keeper.error;
  return false;
}

std::string line_column(const std::string& text, std::size_t byte) {
  int64_t line = 1, col = 1;
  for (std::size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return num(line) + ":" + num(col);
}

std::string describe_value(const JsonDoc& doc, const std::string& pointer, const Json& v) {
  if (v.is_number()) {
    const auto it = doc.literals.find(pointer);
    if (it != doc.literals.end()) return "the number " + it->second;
  }
  return describe_json(v);
}

std::string range_text(int64_t lo, int64_t hi) {
  const auto text = [](int64_t v) { return v == kMaxSlots ? std::string("2^53 = ") + num(v) : num(v); };
  return "[" + text(lo) + ", " + text(hi) + "]";
}

int64_t json_integer(const JsonDoc& doc, const Json& v, const std::string& src, const std::string& pointer,
                     int64_t lo, int64_t hi, const std::string& what) {
  const std::string expected = what + ", an integer in " + range_text(lo, hi);
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (hi >= 0 && u <= static_cast<uint64_t>(hi) && static_cast<int64_t>(u) >= lo)
      return static_cast<int64_t>(u);
  } else if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i >= lo && i <= hi) return i;
  }
  throw ConfigError(located_message(src, pointer, expected, describe_value(doc, pointer, v)));
}

double json_number(const JsonDoc& doc, const Json& v, const std::string& src, const std::string& pointer,
                   int64_t lo, int64_t hi, const std::string& what) {
  if (v.is_number()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) return d;
  }
  throw ConfigError(located_message(src, pointer, "a number in " + range_text(lo, hi) + " (" + what + ")",
                                    describe_value(doc, pointer, v)));
}

}  // namespace moesim::traces
