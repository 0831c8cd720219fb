#include "traces/trace_format.hpp"

#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "scenarios/error.hpp"
#include "scenarios/json_reader.hpp"
#include "scenarios/text_input.hpp"
#include "traces/json_numbers.hpp"

namespace moesim::traces {
namespace {

std::string num(int64_t v) {
  return std::to_string(v);
}

// "FILE:LINE", the source every message of a line starts with.
std::string at_line(const std::string& path, int64_t line) {
  return path + ":" + num(line);
}

// std::getline with a bound on the line's length: a file without newlines (a binary file, /dev/zero) ends
// with an error instead of filling memory.
bool getline_bounded(std::istream& in, std::string& text, const std::string& path, int64_t line) {
  switch (read_line(in, text)) {
    case LineRead::kLine:
      return true;
    case LineRead::kEnd:
      return false;
    case LineRead::kTooLong:
      break;
  }
  throw ParseError(at_line(path, line) + ": expected a line of at most " + describe_bytes(kMaxLineBytes) +
                   ", found a longer one (not a moesim trace?)");
}

[[noreturn]] void config_fail(const std::string& src, const std::string& ptr, const std::string& expected,
                              const std::string& found) {
  throw ConfigError(located_message(src, ptr, expected, found));
}

const Json& json_array(const JsonDoc& doc, const Json& v, std::size_t size, const std::string& src,
                       const std::string& ptr, const std::string& expected) {
  if (!v.is_array() || v.size() != size) config_fail(src, ptr, expected, describe_value(doc, ptr, v));
  return v;
}

std::string header_hint() {
  return std::string("a header object {\"format\": \"") + kTraceFormatName +
         "\", \"version\": " + num(kTraceFormatVersion) +
         ", \"experts\", \"top_k\", \"sources\", \"layers\"} on line 1";
}

std::string end_hint(int64_t records) {
  return "the end record {\"end\": true, \"records\": " + num(records) + "} (" + num(records) +
         " records read)";
}

void check_header(const TraceHeader& h, const std::string& src) {
  if (h.version != kTraceFormatVersion)
    config_fail(src, "/version", "version " + num(kTraceFormatVersion), num(h.version));
  if (h.experts < 1 || h.experts > kMaxTraceExperts)
    config_fail(src, "/experts", "experts in [1, " + num(kMaxTraceExperts) + "]", num(h.experts));
  if (h.top_k < 1 || h.top_k > h.experts)
    config_fail(src, "/top_k", "top_k in [1, experts = " + num(h.experts) + "]", num(h.top_k));
  if (h.sources < 1 || h.sources > kMaxTraceSources)
    config_fail(src, "/sources", "sources in [1, " + num(kMaxTraceSources) + "]", num(h.sources));
  if (h.layers < 1 || h.layers > kMaxTraceLayers)
    config_fail(src, "/layers", "layers in [1, " + num(kMaxTraceLayers) + "]", num(h.layers));
  if (int64_t{h.sources} * h.experts > kMaxTraceCells)
    config_fail(src, "/sources", "sources x experts at most " + num(kMaxTraceCells) + " (count cells)",
                num(h.sources) + " x " + num(h.experts));
}

// Parses one line; a syntax error becomes "FILE:LINE:BYTE: expected ..., found ...".
void parse_line(const std::string& text, const std::string& path, int64_t line, bool terminated,
                JsonDoc& doc) {
  JsonSyntax error;
  if (parse_json_doc(text, doc, error)) return;
  if (!terminated)
    throw ParseError(at_line(path, line) + ": expected a complete JSON record ending in a newline, found a " +
                     "truncated last line (" + num(static_cast<int64_t>(text.size())) +
                     " bytes, no newline, invalid JSON)");
  throw ParseError(at_line(path, line) + ":" + num(static_cast<int64_t>(error.byte + 1)) +
                   ": expected a JSON object, found " + error.found);
}

// The first expert a token names twice (its entries t·k .. t·k+k-1), or -1. `stamp` (one entry per
// expert) remembers the last token that named each expert, so a record is checked in one pass.
int repeated_expert(const int32_t* entries, int k, int64_t token, std::vector<int64_t>& stamp) {
  for (int i = 0; i < k; ++i) {
    const int32_t e = entries[i];
    if (e < 0) continue;
    if (stamp[e] == token) return i;
    stamp[e] = token;
  }
  return -1;
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
  try {
    put(h.dump() + "\n");
  } catch (...) {
    discard();
    throw;
  }
  layer_seen_.assign(static_cast<std::size_t>(header_.layers), 0);
}

TraceWriter::~TraceWriter() {
  discard();
}

void TraceWriter::discard() {
  if (!file_) return;
  std::fclose(file_);
  file_ = nullptr;
  std::error_code ec;
  std::filesystem::remove(path_, ec);  // the file this writer created: unfinished, so never left behind
}

void TraceWriter::put(const std::string& line) {
  if (!file_) throw IoError(path_ + ": writing to a closed trace");
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size())
    throw IoError(path_ + ": write failed: " + std::strerror(errno));
}

void TraceWriter::close() {
  if (!file_) return;
  put("{\"end\":true,\"records\":" + num(records_) + "}\n");
  const bool failed = std::ferror(file_) != 0;
  const int rc = std::fclose(file_);
  file_ = nullptr;
  if (failed || rc != 0) {
    const std::string why = std::strerror(errno);
    std::error_code ec;
    std::filesystem::remove(path_, ec);
    throw IoError(path_ + ": write failed when closing: " + why);
  }
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
  int64_t slots = 0;
  for (std::size_t i = 0; i < s.counts.size(); ++i) {
    if (s.counts[i] < 0 || s.counts[i] > kMaxSlots - slots)
      config_fail(src, "/counts/" + num(static_cast<int64_t>(i)),
                  "a count in [0, 2^53], the record's counts summing to at most 2^53", num(s.counts[i]));
    slots += s.counts[i];
  }
  if (slots == 0) config_fail(src, "/counts", "at least one routed slot (a non-zero count)", "all counts 0");
  if (s.tokens < 0 || s.tokens > kMaxSlots / s.top_k)
    config_fail(src, "/tokens",
                "tokens in " + range_text(0, kMaxSlots / s.top_k) + " (tokens x top_k <= 2^53)",
                num(s.tokens));
  for (const auto& [name, v] :
       {std::pair<const char*, int64_t>{"/dropped", s.dropped}, {"/padded", s.padded}})
    if (v < 0 || v > kMaxSlots) config_fail(src, name, "a value in " + range_text(0, kMaxSlots), num(v));
}

void TraceWriter::write_counts(const RoutingSample& s) {
  check_shape(s);
  // tokens · top_k = Σcounts + dropped + unfilled: the slots the tokens could fill, kept, dropped or
  // left empty by a dynamic policy (every term is at most 2^53: no overflow).
  const int64_t unfilled = s.tokens * s.top_k - s.slots() - s.dropped;
  if (unfilled < 0)
    config_fail(at_line(path_, records_ + 2), "/tokens",
                "tokens x top_k (" + num(s.top_k) + ") >= counts + dropped = " + num(s.slots() + s.dropped) +
                    " (each token fills at most top_k slots)",
                "tokens " + num(s.tokens));
  std::string line = "{\"step\":";
  line.reserve(64 + s.counts.size() * 8);
  append_int(line, s.step);
  line += ",\"layer\":";
  append_int(line, s.layer);
  line += ",\"tokens\":";
  append_int(line, s.tokens);
  if (s.dropped) line += ",\"dropped\":", append_int(line, s.dropped);
  if (s.padded) line += ",\"padded\":", append_int(line, s.padded);
  if (unfilled) line += ",\"unfilled\":", append_int(line, unfilled);
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
  std::vector<int64_t> stamp(static_cast<std::size_t>(s.experts), -1);
  for (std::size_t t = 0; t < tokens; ++t) {
    const int i = repeated_expert(s.token_experts.data() + t * k, s.top_k, static_cast<int64_t>(t), stamp);
    if (i >= 0)
      config_fail(src, "/tokens/" + num(static_cast<int64_t>(t)) + "/" + num(i), "distinct experts per token",
                  "expert " + num(s.token_experts[t * k + i]) + " twice");
  }
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

namespace {

// A count-level record's counts, tokens, dropped, padded and (version 2) unfilled, checked against the
// header and against each other.
void read_counts(const JsonDoc& doc, ObjectReader& r, const Json& counts, const std::string& src,
                 const TraceHeader& h, bool version1, RoutingSample& s) {
  json_array(doc, counts, static_cast<std::size_t>(h.sources), src, "/counts",
             num(h.sources) + " rows (one per source, header \"sources\")");
  s.counts.assign(static_cast<std::size_t>(h.sources) * h.experts, 0);
  int64_t slots = 0;
  for (int row = 0; row < h.sources; ++row) {
    const std::string rp = "/counts/" + num(row);
    const Json& rj = json_array(doc, counts[row], static_cast<std::size_t>(h.experts), src, rp,
                                "a row of " + num(h.experts) + " counts (one per expert)");
    for (int e = 0; e < h.experts; ++e) {
      const std::string ep = rp + "/" + num(e);
      const int64_t c = json_integer(doc, rj[e], src, ep, 0, kMaxSlots, "a count");
      if (c > kMaxSlots - slots)
        config_fail(src, ep, "counts summing to at most 2^53 in one record",
                    num(c) + " after " + num(slots) + " in the counts before it");
      s.counts[static_cast<std::size_t>(row) * h.experts + e] = c;
      slots += c;
    }
  }
  const auto optional = [&](const char* key) {
    const Json* v = r.optional_child(key);
    return v ? json_integer(doc, *v, src, std::string("/") + key, 0, kMaxSlots, "a slot count") : 0;
  };
  s.dropped = optional("dropped");
  s.padded = optional("padded");
  const int64_t max_tokens = kMaxSlots / h.top_k;
  const std::string tokens_what = "tokens (tokens x top_k <= 2^53)";
  if (version1) {
    // Version 1: tokens optional, ⌊(Σcounts + dropped) / top_k⌋ when absent, and no "unfilled".
    const Json* t = r.optional_child("tokens");
    s.tokens = t ? json_integer(doc, *t, src, "/tokens", 0, max_tokens, tokens_what)
                 : std::min(max_tokens, (slots + s.dropped) / h.top_k);
    if (s.tokens * h.top_k < slots + s.dropped)
      config_fail(src, "/tokens",
                  "tokens x top_k (" + num(h.top_k) + ") >= counts + dropped = " + num(slots + s.dropped) +
                      " (each token fills at most top_k slots)",
                  "tokens " + num(s.tokens));
  } else {
    s.tokens = json_integer(doc, r.child("tokens"), src, "/tokens", 0, max_tokens, tokens_what);
    const int64_t unfilled = optional("unfilled");
    const int64_t filled = slots + s.dropped + unfilled;  // each term at most 2^53: no overflow
    if (s.tokens * h.top_k != filled)
      config_fail(src, "/tokens",
                  "tokens x top_k (" + num(h.top_k) + ") = counts + dropped + unfilled = " + num(slots) +
                      " + " + num(s.dropped) + " + " + num(unfilled) + " = " + num(filled),
                  "tokens " + num(s.tokens) + " (" + num(s.tokens * h.top_k) + " slots)");
  }
  if (slots == 0)
    config_fail(src, "/counts", "at least one routed slot (a non-zero count)",
                "all " + num(static_cast<int64_t>(s.counts.size())) + " counts 0");
}

// A token-level record: experts per token, optional sources and weights; counts derived.
void read_tokens(const JsonDoc& doc, ObjectReader& r, const std::string& src, const TraceHeader& h,
                 RoutingSample& s) {
  const std::size_t k = static_cast<std::size_t>(h.top_k);
  const Json* tokens = r.optional_child("tokens");
  if (!tokens || !tokens->is_array())
    config_fail(src, "/tokens",
                "\"tokens\": an array of per-token expert lists (token level) or \"counts\" (count level)",
                tokens ? describe_value(doc, "/tokens", *tokens) : "neither");
  const std::size_t n = tokens->size();
  s.token_experts.resize(n * k);
  std::vector<int64_t> stamp(static_cast<std::size_t>(h.experts), -1);
  bool routed = false;
  const std::string expected = "an expert id (-1: no expert)";
  for (std::size_t t = 0; t < n; ++t) {
    const std::string tp = "/tokens/" + num(static_cast<int64_t>(t));
    const Json& tj = json_array(doc, (*tokens)[t], k, src, tp, "top_k = " + num(h.top_k) + " expert ids");
    for (std::size_t i = 0; i < k; ++i) {
      const std::string ip = tp + "/" + num(static_cast<int64_t>(i));
      const int64_t e = json_integer(doc, tj[i], src, ip, -1, h.experts - 1, expected);
      s.token_experts[t * k + i] = static_cast<int32_t>(e);
      routed = routed || e >= 0;
    }
    const int i = repeated_expert(s.token_experts.data() + t * k, h.top_k, static_cast<int64_t>(t), stamp);
    if (i >= 0)
      config_fail(src, tp + "/" + num(i), "distinct experts per token",
                  "expert " + num(s.token_experts[t * k + i]) + " twice");
  }
  if (!routed)
    config_fail(src, "/tokens", "at least one token routed to an expert",
                n == 0 ? "no tokens" : "every entry -1 (" + num(static_cast<int64_t>(n)) + " tokens)");
  if (const Json* source = r.optional_child("source")) {
    json_array(doc, *source, n, src, "/source", num(static_cast<int64_t>(n)) + " source ids (one per token)");
    s.token_source.resize(n);
    for (std::size_t t = 0; t < n; ++t)
      s.token_source[t] =
          static_cast<int32_t>(json_integer(doc, (*source)[t], src, "/source/" + num(static_cast<int64_t>(t)),
                                            0, h.sources - 1, "a source id (header \"sources\")"));
  }
  if (const Json* weights = r.optional_child("weights")) {
    json_array(doc, *weights, n, src, "/weights",
               num(static_cast<int64_t>(n)) + " weight lists (one per token)");
    s.token_weights.resize(n * k);
    for (std::size_t t = 0; t < n; ++t) {
      const std::string tp = "/weights/" + num(static_cast<int64_t>(t));
      const Json& wj = json_array(doc, (*weights)[t], k, src, tp, "top_k = " + num(h.top_k) + " weights");
      for (std::size_t i = 0; i < k; ++i) {
        const float w = wj[i].is_number() ? wj[i].get<float>() : NAN;
        if (!std::isfinite(w))
          config_fail(src, tp + "/" + num(static_cast<int64_t>(i)), "a finite number (a gate weight)",
                      describe_value(doc, tp + "/" + num(static_cast<int64_t>(i)), wj[i]));
        s.token_weights[t * k + i] = w;
      }
    }
  }
  counts_from_tokens(s);
}

}  // namespace

TraceReader::TraceReader(const std::string& path, TraceVersions versions)
    : path_(path), in_(path, std::ios::binary) {
  if (!in_) throw IoError(path_ + ": cannot open trace for reading");
  if (!getline_bounded(in_, text_, path_, 1))
    throw ParseError(at_line(path_, 1) + ": expected " + header_hint() + ", found an empty file");
  line_ = 1;
  const bool terminated = !in_.eof();
  if (!text_.empty() && text_.back() == '\r') text_.pop_back();
  JsonDoc doc;
  parse_line(text_, path_, line_, terminated, doc);
  const Json& j = doc.value;
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
  const auto field = [&](const char* key, int64_t lo, int64_t hi) {
    return static_cast<int>(
        json_integer(doc, r.child(key), src, std::string("/") + key, lo, hi, std::string("\"") + key + "\""));
  };
  header_.version = field("version", 1, INT_MAX);
  version1_ = header_.version == 1 && versions == TraceVersions::also_version1;
  if (header_.version != kTraceFormatVersion && !version1_)
    config_fail(src, "/version",
                "version " + num(kTraceFormatVersion) +
                    (header_.version == 1
                         ? " (version 1 has no end record, so a file cut between two records reads as a "
                           "whole one; if this file is whole, convert it: moesim trace upgrade " +
                               path_ + " -o NEW.jsonl)"
                         : ""),
                num(header_.version));
  header_.experts = field("experts", 1, kMaxTraceExperts);
  header_.top_k = field("top_k", 1, header_.experts);
  header_.sources = field("sources", 1, kMaxTraceSources);
  header_.layers = field("layers", 1, kMaxTraceLayers);
  header_.model = r.get_string("model", "");
  header_.note = r.get_string("note", "");
  r.finish();
  check_header(TraceHeader{kTraceFormatVersion, header_.experts, header_.top_k, header_.sources,
                           header_.layers, "", ""},
               src);
  layer_seen_.assign(static_cast<std::size_t>(header_.layers), 0);
}

// The file ended (getline found nothing more). Version 2 needs the end record first.
bool TraceReader::end_of_file() {
  if (in_.bad()) throw IoError(path_ + ": read error after line " + num(line_));
  if (!ended_ && !version1_)
    throw ParseError(at_line(path_, line_ + 1) + ": expected " + end_hint(records_) +
                     ", found the end of the file: the trace is cut short (last step read: " +
                     (last_step_ < 0 ? std::string("none") : num(last_step_)) +
                     ") or its writer did not finish");
  return false;
}

bool TraceReader::next(RoutingSample& s) {
  if (ended_) {
    // The end record was the last line: anything after it is not part of the trace.
    if (!getline_bounded(in_, text_, path_, line_ + 1)) return end_of_file();
    throw ParseError(at_line(path_, line_ + 1) +
                     ": expected the end of the file after the end record (line " + num(line_) +
                     "), found another line");
  }
  if (!getline_bounded(in_, text_, path_, line_ + 1)) return end_of_file();
  ++line_;
  const bool terminated = !in_.eof();
  if (!text_.empty() && text_.back() == '\r') text_.pop_back();
  const std::string src = at_line(path_, line_);
  if (text_.empty())
    throw ParseError(src + ": expected a record (one JSON object per line), found an empty line");
  JsonDoc doc;
  parse_line(text_, path_, line_, terminated, doc);
  ObjectReader r(doc.value, src, "");
  const TraceHeader& h = header_;

  if (!version1_ && r.has("end")) {
    const Json& end = r.child("end");
    if (end != true) config_fail(src, "/end", "true (the end record)", describe_value(doc, "/end", end));
    const Json* count = r.optional_child("records");
    if (!count || !count->is_number_integer() || *count != records_)
      throw ParseError(located_message(src, "/records", end_hint(records_),
                                       count ? describe_value(doc, "/records", *count) : "nothing"));
    r.finish();
    ended_ = true;
    return next(s);
  }

  const int64_t step = json_integer(doc, r.child("step"), src, "/step", 0, INT_MAX, "a step");
  if (step < last_step_)
    config_fail(src, "/step", "a step >= " + num(last_step_) + " (steps never go backwards)", num(step));
  const int64_t layer =
      json_integer(doc, r.child("layer"), src, "/layer", 0, h.layers - 1, "a layer (the header's layers)");
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
  if (const Json* counts = r.optional_child("counts"))
    read_counts(doc, r, *counts, src, h, version1_, s);
  else
    read_tokens(doc, r, src, h, s);
  r.finish();
  ++records_;
  return true;
}

// ----------------------------------------------------------------------------------------- upgrading

int64_t upgrade_trace(const std::string& in, const std::string& out) {
  TraceReader reader(in, TraceVersions::also_version1);
  TraceHeader h = reader.header();
  h.version = kTraceFormatVersion;
  TraceWriter writer(out, h);
  RoutingSample s;
  while (reader.next(s)) writer.write(s);
  writer.close();
  return writer.records();
}

}  // namespace moesim::traces
