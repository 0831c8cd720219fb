#include "traces/trace_format.hpp"

#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "scenarios/error.hpp"
#include "scenarios/json_reader.hpp"

namespace moesim::traces {
namespace {

std::string num(int64_t v) {
  return std::to_string(v);
}

// "FILE:LINE", the source every message of a line starts with.
std::string at_line(const std::string& path, int64_t line) {
  return path + ":" + num(line);
}

[[noreturn]] void config_fail(const std::string& src, const std::string& ptr, const std::string& expected,
                              const std::string& found) {
  throw ConfigError(located_message(src, ptr, expected, found));
}

// A JSON integer (no fractions, no 2.0: ids and counts are written as integers).
int64_t json_int(const Json& v, const std::string& src, const std::string& ptr, const std::string& expected) {
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      config_fail(src, ptr, expected, describe_json(v));
    return static_cast<int64_t>(v.get<uint64_t>());
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  config_fail(src, ptr, expected, describe_json(v));
}

const Json& json_array(const Json& v, std::size_t size, const std::string& src, const std::string& ptr,
                       const std::string& expected) {
  if (!v.is_array() || v.size() != size) config_fail(src, ptr, expected, describe_json(v));
  return v;
}

std::string header_hint() {
  return std::string("a header object {\"format\": \"") + kTraceFormatName +
         "\", \"version\": 1, \"experts\", \"top_k\", \"sources\", \"layers\"} on line 1";
}

void check_header(const TraceHeader& h, const std::string& src) {
  if (h.version != kTraceFormatVersion)
    config_fail(src, "/version", "version " + num(kTraceFormatVersion), num(h.version));
  if (h.experts < 1) config_fail(src, "/experts", "at least 1 expert", num(h.experts));
  if (h.top_k < 1 || h.top_k > h.experts)
    config_fail(src, "/top_k", "top_k in [1, experts = " + num(h.experts) + "]", num(h.top_k));
  if (h.sources < 1) config_fail(src, "/sources", "at least 1 source", num(h.sources));
  if (h.layers < 1) config_fail(src, "/layers", "at least 1 layer", num(h.layers));
}

// Parses one line; a syntax error becomes "FILE:LINE:COLUMN: expected ..., found ...".
Json parse_line(const std::string& text, const std::string& path, int64_t line, bool terminated) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    if (!terminated)
      throw ParseError(at_line(path, line) +
                       ": expected a complete JSON record ending in a newline, found a " +
                       "truncated last line (" + num(static_cast<int64_t>(text.size())) +
                       " bytes, no newline, invalid JSON)");
    std::string what = e.what();
    auto pos = what.find("syntax error");
    throw ParseError(at_line(path, line) + ":" + num(static_cast<int64_t>(e.byte)) +
                     ": expected a JSON object, found a " +
                     (pos == std::string::npos ? what : what.substr(pos)));
  }
}

void append_int(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_float(std::string& out, float v) {
  // The shortest text that reads back as the same float. JSON readers parse it as a double first, so
  // check that double → float gives v again (double rounding); otherwise write v's exact double value.
  if (v == 0 && std::signbit(v)) {
    out += "-0.0";  // "-0" would read back as the integer 0
    return;
  }
  char buf[40];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  double back = 0;
  std::from_chars(buf, r.ptr, back);
  if (static_cast<float>(back) != v) r = std::to_chars(buf, buf + sizeof buf, static_cast<double>(v));
  out.append(buf, r.ptr);
}

}  // namespace

void counts_from_tokens(RoutingSample& s) {
  MOESIM_ASSERT(s.top_k > 0 && s.token_experts.size() % static_cast<std::size_t>(s.top_k) == 0,
                "token_experts must hold top_k entries per token");
  const int64_t tokens = static_cast<int64_t>(s.token_experts.size()) / s.top_k;
  MOESIM_ASSERT(s.token_source.empty() || static_cast<int64_t>(s.token_source.size()) == tokens,
                "token_source must hold one entry per token");
  s.tokens = tokens;
  s.counts.assign(static_cast<std::size_t>(s.sources) * s.experts, 0);
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t src = s.token_source.empty() ? t * s.sources / tokens : s.token_source[t];
    MOESIM_ASSERT(src >= 0 && src < s.sources, "token source out of range");
    for (int k = 0; k < s.top_k; ++k) {
      const int32_t e = s.token_experts[static_cast<std::size_t>(t) * s.top_k + k];
      if (e < 0) continue;
      MOESIM_ASSERT(e < s.experts, "expert id out of range");
      ++s.counts[static_cast<std::size_t>(src) * s.experts + e];
    }
  }
}

// ---------------------------------------------------------------------------------------------- writer

TraceWriter::TraceWriter(const std::string& path, const TraceHeader& header) : path_(path), header_(header) {
  check_header(header_, path_ + ": header");
  std::error_code ec;
  if (std::filesystem::exists(path_, ec))
    throw IoError(path_ + ": refusing to overwrite an existing file (choose a new trace path)");
  file_ = std::fopen(path_.c_str(), "wx");  // "x": fail rather than truncate if it appeared meanwhile
  if (!file_) throw IoError(path_ + ": cannot create file: " + std::strerror(errno));
  Json h{{"format", kTraceFormatName}, {"version", header_.version}, {"experts", header_.experts},
         {"top_k", header_.top_k},     {"sources", header_.sources}, {"layers", header_.layers}};
  if (!header_.model.empty()) h["model"] = header_.model;
  if (!header_.note.empty()) h["note"] = header_.note;
  put(h.dump() + "\n");
  layer_seen_.assign(static_cast<std::size_t>(header_.layers), 0);
}

TraceWriter::~TraceWriter() {
  if (file_) std::fclose(file_);
}

void TraceWriter::put(const std::string& line) {
  if (!file_) throw IoError(path_ + ": writing to a closed trace");
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size())
    throw IoError(path_ + ": write failed: " + std::strerror(errno));
}

void TraceWriter::close() {
  if (!file_) return;
  const bool failed = std::ferror(file_) != 0;
  const int rc = std::fclose(file_);
  file_ = nullptr;
  if (failed || rc != 0) throw IoError(path_ + ": write failed when closing: " + std::strerror(errno));
}

void TraceWriter::check_shape(const RoutingSample& s) {
  const std::string src = at_line(path_, records_ + 2);
  if (s.experts != header_.experts)
    config_fail(src, "/experts", num(header_.experts) + " experts (header)", num(s.experts));
  if (s.top_k != header_.top_k)
    config_fail(src, "/top_k", "top_k " + num(header_.top_k) + " (header)", num(s.top_k));
  if (s.sources != header_.sources)
    config_fail(src, "/sources", num(header_.sources) + " sources (header)", num(s.sources));
  if (s.layer < 0 || s.layer >= header_.layers)
    config_fail(src, "/layer", "a layer in [0, " + num(header_.layers) + ")", num(s.layer));
  if (s.step < 0) config_fail(src, "/step", "a step >= 0", num(s.step));
  if (s.step < last_step_)
    config_fail(src, "/step", "a step >= " + num(last_step_) + " (steps never go backwards)", num(s.step));
  if (s.step > last_step_) {
    last_step_ = s.step;
    std::fill(layer_seen_.begin(), layer_seen_.end(), 0);
  }
  if (layer_seen_[s.layer])
    config_fail(src, "/layer", "each (step, layer) once",
                "layer " + num(s.layer) + " of step " + num(s.step) + " again");
  if (s.counts.size() != static_cast<std::size_t>(s.sources) * s.experts)
    config_fail(src, "/counts", num(int64_t{s.sources} * s.experts) + " counts (sources x experts)",
                num(static_cast<int64_t>(s.counts.size())));
  for (std::size_t i = 0; i < s.counts.size(); ++i)
    if (s.counts[i] < 0)
      config_fail(src, "/counts/" + num(static_cast<int64_t>(i)), "a count >= 0", num(s.counts[i]));
  if (s.tokens < 0 || s.dropped < 0 || s.padded < 0)
    config_fail(src, "", "tokens, dropped and padded >= 0",
                num(s.tokens) + ", " + num(s.dropped) + ", " + num(s.padded));
}

void TraceWriter::write_counts(const RoutingSample& s) {
  check_shape(s);
  std::string line = "{\"step\":";
  line.reserve(64 + s.counts.size() * 8);
  append_int(line, s.step);
  line += ",\"layer\":";
  append_int(line, s.layer);
  line += ",\"tokens\":";
  append_int(line, s.tokens);
  if (s.dropped) line += ",\"dropped\":", append_int(line, s.dropped);
  if (s.padded) line += ",\"padded\":", append_int(line, s.padded);
  line += ",\"counts\":[";
  for (int r = 0; r < s.sources; ++r) {
    line += r ? ",[" : "[";
    for (int e = 0; e < s.experts; ++e) {
      if (e) line += ',';
      append_int(line, s.count(r, e));
    }
    line += ']';
  }
  line += "]}\n";
  put(line);
  layer_seen_[s.layer] = 1;
  ++records_;
}

void TraceWriter::write(const RoutingSample& s) {
  if (s.token_experts.empty()) return write_counts(s);
  check_shape(s);
  const std::string src = at_line(path_, records_ + 2);
  const std::size_t k = static_cast<std::size_t>(s.top_k);
  if (s.token_experts.size() % k != 0)
    config_fail(src, "/tokens", "top_k = " + num(s.top_k) + " expert entries per token",
                num(static_cast<int64_t>(s.token_experts.size())) + " entries");
  const std::size_t tokens = s.token_experts.size() / k;
  if (!s.token_source.empty() && s.token_source.size() != tokens)
    config_fail(src, "/source", num(static_cast<int64_t>(tokens)) + " source ids (one per token)",
                num(static_cast<int64_t>(s.token_source.size())));
  if (!s.token_weights.empty() && s.token_weights.size() != s.token_experts.size())
    config_fail(src, "/weights",
                num(static_cast<int64_t>(s.token_experts.size())) + " weights (one per entry)",
                num(static_cast<int64_t>(s.token_weights.size())));
  for (std::size_t i = 0; i < s.token_experts.size(); ++i)
    if (s.token_experts[i] < -1 || s.token_experts[i] >= s.experts)
      config_fail(src, "/tokens/" + num(static_cast<int64_t>(i / k)) + "/" + num(static_cast<int64_t>(i % k)),
                  "an expert id in [-1, " + num(s.experts) + ")", num(s.token_experts[i]));
  for (std::size_t t = 0; t < s.token_source.size(); ++t)
    if (s.token_source[t] < 0 || s.token_source[t] >= s.sources)
      config_fail(src, "/source/" + num(static_cast<int64_t>(t)),
                  "a source id in [0, " + num(s.sources) + ")", num(s.token_source[t]));
  for (std::size_t i = 0; i < s.token_weights.size(); ++i)
    if (!std::isfinite(s.token_weights[i]))
      config_fail(src,
                  "/weights/" + num(static_cast<int64_t>(i / k)) + "/" + num(static_cast<int64_t>(i % k)),
                  "a finite weight", "a non-finite value");
  RoutingSample derived;
  derived.sources = s.sources;
  derived.experts = s.experts;
  derived.top_k = s.top_k;
  derived.token_experts = s.token_experts;
  derived.token_source = s.token_source;
  counts_from_tokens(derived);
  if (derived.counts != s.counts || derived.tokens != s.tokens || s.dropped != 0 || s.padded != 0)
    config_fail(src, "/counts",
                "counts and tokens equal to those of the token-level detail, dropped = padded = 0 (a "
                "token-level record stores tokens only; write_counts() writes the counts)",
                "a sample whose counts differ from its tokens (capacity dropping or rescaling?)");

  std::string line = "{\"step\":";
  line.reserve(64 + s.token_experts.size() * 6 + s.token_weights.size() * 12);
  append_int(line, s.step);
  line += ",\"layer\":";
  append_int(line, s.layer);
  line += ",\"tokens\":[";
  for (std::size_t t = 0; t < tokens; ++t) {
    line += t ? ",[" : "[";
    for (std::size_t j = 0; j < k; ++j) {
      if (j) line += ',';
      append_int(line, s.token_experts[t * k + j]);
    }
    line += ']';
  }
  line += ']';
  if (!s.token_source.empty()) {
    line += ",\"source\":[";
    for (std::size_t t = 0; t < tokens; ++t) {
      if (t) line += ',';
      append_int(line, s.token_source[t]);
    }
    line += ']';
  }
  if (!s.token_weights.empty()) {
    line += ",\"weights\":[";
    for (std::size_t t = 0; t < tokens; ++t) {
      line += t ? ",[" : "[";
      for (std::size_t j = 0; j < k; ++j) {
        if (j) line += ',';
        append_float(line, s.token_weights[t * k + j]);
      }
      line += ']';
    }
    line += ']';
  }
  line += "}\n";
  put(line);
  layer_seen_[s.layer] = 1;
  ++records_;
}

// ---------------------------------------------------------------------------------------------- reader

TraceReader::TraceReader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
  if (!in_) throw IoError(path_ + ": cannot open trace for reading");
  if (!std::getline(in_, text_))
    throw ParseError(at_line(path_, 1) + ": expected " + header_hint() + ", found an empty file");
  line_ = 1;
  const bool terminated = !in_.eof();
  if (!text_.empty() && text_.back() == '\r') text_.pop_back();
  const Json j = parse_line(text_, path_, line_, terminated);
  const std::string src = at_line(path_, line_);
  if (!j.is_object() || !j.contains("format")) {
    const std::string found = j.is_object() && j.contains("step")
                                  ? "a record (it has \"step\"): the header is missing"
                                  : describe_json(j) + " without \"format\"";
    throw ParseError(located_message(src, "/", header_hint(), found));
  }
  if (j["format"] != kTraceFormatName)
    throw ParseError(located_message(src, "/format", std::string("\"") + kTraceFormatName + "\"",
                                     describe_json(j["format"])));
  ObjectReader r(j, src, "");
  r.get_string("format");
  header_.version = static_cast<int>(r.get_int_in("version", 0, INT_MAX, std::nullopt));
  header_.experts = static_cast<int>(r.get_int_in("experts", 1, INT32_MAX, std::nullopt));
  header_.top_k = static_cast<int>(r.get_int_in("top_k", 1, header_.experts, std::nullopt));
  header_.sources = static_cast<int>(r.get_int_in("sources", 1, INT32_MAX, std::nullopt));
  header_.layers = static_cast<int>(r.get_int_in("layers", 1, INT32_MAX, std::nullopt));
  header_.model = r.get_string("model", "");
  header_.note = r.get_string("note", "");
  r.finish();
  check_header(header_, src);
  layer_seen_.assign(static_cast<std::size_t>(header_.layers), 0);
}

bool TraceReader::next(RoutingSample& s) {
  if (!std::getline(in_, text_)) {
    if (in_.bad()) throw IoError(path_ + ": read error after line " + num(line_));
    return false;
  }
  ++line_;
  const bool terminated = !in_.eof();
  if (!text_.empty() && text_.back() == '\r') text_.pop_back();
  const std::string src = at_line(path_, line_);
  if (text_.empty())
    throw ParseError(src + ": expected a record (one JSON object per line), found an empty line");
  const Json j = parse_line(text_, path_, line_, terminated);
  ObjectReader r(j, src, "");
  const TraceHeader& h = header_;

  const int64_t step = r.get_int("step");
  if (step < 0 || step > INT_MAX) config_fail(src, "/step", "a step in [0, " + num(INT_MAX) + "]", num(step));
  if (step < last_step_)
    config_fail(src, "/step", "a step >= " + num(last_step_) + " (steps never go backwards)", num(step));
  const int64_t layer = r.get_int("layer");
  if (layer < 0 || layer >= h.layers)
    config_fail(src, "/layer", "a layer in [0, " + num(h.layers) + ") (the header's layers)", num(layer));
  if (step > last_step_) {
    last_step_ = static_cast<int>(step);
    std::fill(layer_seen_.begin(), layer_seen_.end(), 0);
  }
  if (layer_seen_[layer])
    config_fail(src, "/layer", "each (step, layer) once",
                "layer " + num(layer) + " of step " + num(step) + " again");
  layer_seen_[layer] = 1;

  s.step = static_cast<int>(step);
  s.layer = static_cast<int>(layer);
  s.sources = h.sources;
  s.experts = h.experts;
  s.top_k = h.top_k;
  s.dropped = 0;
  s.padded = 0;
  s.token_experts.clear();
  s.token_source.clear();
  s.token_weights.clear();
  const std::size_t k = static_cast<std::size_t>(h.top_k);

  if (const Json* counts = r.optional_child("counts")) {
    // Count level.
    json_array(*counts, static_cast<std::size_t>(h.sources), src, "/counts",
               num(h.sources) + " rows (one per source, header \"sources\")");
    s.counts.assign(static_cast<std::size_t>(h.sources) * h.experts, 0);
    int64_t slots = 0;
    for (int row = 0; row < h.sources; ++row) {
      const std::string rp = "/counts/" + num(row);
      const Json& rj = json_array((*counts)[row], static_cast<std::size_t>(h.experts), src, rp,
                                  "a row of " + num(h.experts) + " counts (one per expert)");
      for (int e = 0; e < h.experts; ++e) {
        const std::string ep = rp + "/" + num(e);
        const int64_t c = json_int(rj[e], src, ep, "a count (an integer >= 0)");
        if (c < 0) config_fail(src, ep, "a count >= 0", num(c));
        s.counts[static_cast<std::size_t>(row) * h.experts + e] = c;
        slots += c;
      }
    }
    s.dropped = r.get_int_in("dropped", 0, INT64_MAX, 0);
    s.padded = r.get_int_in("padded", 0, INT64_MAX, 0);
    s.tokens = r.get_int_in("tokens", 0, INT64_MAX, (slots + s.dropped) / h.top_k);
    r.finish();
    return true;
  }

  // Token level.
  const Json* tokens = r.optional_child("tokens");
  if (!tokens || !tokens->is_array())
    config_fail(src, "/tokens",
                "\"tokens\": an array of per-token expert lists (token level) or \"counts\" (count level)",
                tokens ? describe_json(*tokens) : "neither");
  const std::size_t n = tokens->size();
  s.token_experts.resize(n * k);
  for (std::size_t t = 0; t < n; ++t) {
    const std::string tp = "/tokens/" + num(static_cast<int64_t>(t));
    const Json& tj = json_array((*tokens)[t], k, src, tp, "top_k = " + num(h.top_k) + " expert ids");
    for (std::size_t i = 0; i < k; ++i) {
      const std::string ip = tp + "/" + num(static_cast<int64_t>(i));
      const std::string expected = "an expert id in [-1, " + num(h.experts) + ") (-1: no expert)";
      const int64_t e = json_int(tj[i], src, ip, expected);
      if (e < -1 || e >= h.experts) config_fail(src, ip, expected, num(e));
      s.token_experts[t * k + i] = static_cast<int32_t>(e);
    }
  }
  if (const Json* source = r.optional_child("source")) {
    json_array(*source, n, src, "/source", num(static_cast<int64_t>(n)) + " source ids (one per token)");
    s.token_source.resize(n);
    for (std::size_t t = 0; t < n; ++t) {
      const std::string tp = "/source/" + num(static_cast<int64_t>(t));
      const std::string expected = "a source id in [0, " + num(h.sources) + ") (the header's sources)";
      const int64_t v = json_int((*source)[t], src, tp, expected);
      if (v < 0 || v >= h.sources) config_fail(src, tp, expected, num(v));
      s.token_source[t] = static_cast<int32_t>(v);
    }
  }
  if (const Json* weights = r.optional_child("weights")) {
    json_array(*weights, n, src, "/weights", num(static_cast<int64_t>(n)) + " weight lists (one per token)");
    s.token_weights.resize(n * k);
    for (std::size_t t = 0; t < n; ++t) {
      const std::string tp = "/weights/" + num(static_cast<int64_t>(t));
      const Json& wj = json_array((*weights)[t], k, src, tp, "top_k = " + num(h.top_k) + " weights");
      for (std::size_t i = 0; i < k; ++i) {
        const float w = wj[i].is_number() ? wj[i].get<float>() : NAN;
        if (!std::isfinite(w))
          config_fail(src, tp + "/" + num(static_cast<int64_t>(i)), "a finite number (a gate weight)",
                      describe_json(wj[i]));
        s.token_weights[t * k + i] = w;
      }
    }
  }
  r.finish();
  counts_from_tokens(s);
  return true;
}

}  // namespace moesim::traces
