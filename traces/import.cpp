#include "traces/import.hpp"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "scenarios/error.hpp"
#include "scenarios/json_reader.hpp"
#include "scenarios/text_input.hpp"
#include "traces/json_numbers.hpp"
#include "traces/trace_format.hpp"

namespace moesim::traces {

const Registry<MegatronBlock>& megatron_blocks() {
  static const Registry<MegatronBlock> r{
      "megatron block",
      "Megatron-Core router-trace blocks",
      {{"decoder", "the decoder stack", MegatronBlock::decoder},
       {"mtp", "a multi-token-prediction module, numbered by mtp_idx", MegatronBlock::mtp}}};
  return r;
}

namespace {

namespace fs = std::filesystem;

std::string num(int64_t v) {
  return std::to_string(v);
}
std::string at_line(const std::string& path, int64_t line) {
  return path + ":" + num(line);
}

[[noreturn]] void config_fail(const std::string& src, const std::string& where, const std::string& expected,
                              const std::string& found) {
  throw ConfigError(located_message(src, where, expected, found));
}

// Reads lines with their 1-based numbers; strips a trailing '\r'; reports whether the line ended in a
// newline (a last line without one may be truncated).
class LineReader {
 public:
  explicit LineReader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
    if (!in_) throw IoError(path_ + ": cannot open file for reading");
  }
  bool next(std::string& text) {
    const LineRead got = read_line(in_, text);
    if (got == LineRead::kTooLong)
      throw ParseError(at_line(path_, line_ + 1) + ": expected a line of at most " +
                       describe_bytes(kMaxLineBytes) + ", found a longer one");
    if (got == LineRead::kEnd) {
      if (in_.bad()) throw IoError(path_ + ": read error after line " + num(line_));
      return false;
    }
    ++line_;
    terminated_ = !in_.eof();
    if (!text.empty() && text.back() == '\r') text.pop_back();
    return true;
  }
  int64_t line() const { return line_; }
  bool terminated() const { return terminated_; }

 private:
  std::string path_;
  std::ifstream in_;
  int64_t line_ = 0;
  bool terminated_ = true;
};

// ------------------------------------------------------------------------------------------ Megatron

constexpr const char* kRankPrefix = "router_trace_rank";
constexpr const char* kRankSuffix = ".jsonl";

using MegatronKey = std::tuple<int, int, int, int>;  // step, block, mtp_idx, layer

struct TopkOrigin {
  int topk = 0;
  std::string where;  // FILE:LINE of the first record
};

// Per key: FILE:LINE of its first record, and the slots its records route.
struct KeyOrigin {
  std::string where;
  int64_t slots = 0;
};

void read_megatron_file(const std::string& path, int rank, int experts, TopkOrigin& topk,
                        std::map<MegatronKey, MegatronSample>& out,
                        std::map<MegatronKey, KeyOrigin>& origins) {
  LineReader lines(path);
  std::string text;
  JsonDoc doc;
  JsonSyntax syntax;
  std::vector<int64_t> stamp(static_cast<std::size_t>(experts), -1);
  int64_t row_id = 0;  // distinct per row of the file, for the repeated-expert check
  while (lines.next(text)) {
    const std::string src = at_line(path, lines.line());
    if (text.empty())
      throw ParseError(src + ": expected a router record (one JSON object per line), found an empty line");
    if (!parse_json_doc(text, doc, syntax)) {
      if (!lines.terminated())
        throw ParseError(
            src + ": expected a complete JSON record ending in a newline, found a truncated last line");
      throw ParseError(src + ":" + num(static_cast<int64_t>(syntax.byte + 1)) +
                       ": expected a JSON object, found " + syntax.found);
    }
    ObjectReader r(doc.value, src, "");
    const auto field = [&](const char* key, int64_t lo, int64_t hi) {
      return json_integer(doc, r.child(key), src, std::string("/") + key, lo, hi,
                          std::string("\"") + key + "\"");
    };
    const int64_t rec_rank = field("rank", 0, INT_MAX);
    if (rec_rank != rank)
      config_fail(src, "/rank", "rank " + num(rank) + " (the file name's)", num(rec_rank));
    const int step = static_cast<int>(field("step", 0, INT_MAX));
    const int layer = static_cast<int>(field("layer", 0, INT_MAX));
    const int64_t num_tokens = field("num_tokens", 0, INT32_MAX);
    const int k = static_cast<int>(field("topk", 1, experts));
    const MegatronBlock block = r.get_choice("block", megatron_blocks(), MegatronBlock::decoder);
    int mtp_idx = 0;
    if (block == MegatronBlock::mtp) {
      if (r.has("mtp_idx")) mtp_idx = static_cast<int>(field("mtp_idx", 0, INT_MAX));
    } else if (r.has("mtp_idx")) {
      config_fail(src, "/mtp_idx", "no mtp_idx on a decoder record (only \"block\": \"mtp\" has one)",
                  describe_value(doc, "/mtp_idx", r.child("mtp_idx")));
    }
    if (topk.topk == 0) {
      topk.topk = k;
      topk.where = src;
    } else if (k != topk.topk) {
      config_fail(src, "/topk", "topk " + num(topk.topk) + " (as in " + topk.where + ")", num(k));
    }
    const Json& idx = r.child("top_indices");
    if (!idx.is_array() || static_cast<int64_t>(idx.size()) != num_tokens)
      config_fail(src, "/top_indices", "num_tokens = " + num(num_tokens) + " rows of expert ids",
                  describe_value(doc, "/top_indices", idx));
    r.finish();

    const MegatronKey key{step, block == MegatronBlock::mtp ? 1 : 0, mtp_idx, layer};
    auto [it, fresh] = out.try_emplace(key);
    MegatronSample& ms = it->second;
    KeyOrigin& origin = origins[key];
    if (fresh) {
      ms.block = block;
      ms.mtp_idx = mtp_idx;
      ms.sample.step = step;
      ms.sample.layer = layer;
      ms.sample.experts = experts;
      ms.sample.top_k = k;
      origin.where = src;
    }
    origin.slots += num_tokens * k;
    for (std::size_t t = 0; t < idx.size(); ++t) {
      const std::string rp = "/top_indices/" + num(static_cast<int64_t>(t));
      const Json& row = idx[t];
      if (!row.is_array() || static_cast<int>(row.size()) != k)
        config_fail(src, rp, "topk = " + num(k) + " expert ids", describe_value(doc, rp, row));
      ++row_id;
      for (int i = 0; i < k; ++i) {
        const std::string ip = rp + "/" + num(i);
        const int64_t e = json_integer(doc, row[i], src, ip, 0, experts - 1, "an expert id");
        if (stamp[e] == row_id)
          config_fail(src, ip, "topk distinct expert ids per token", "expert " + num(e) + " twice");
        stamp[e] = row_id;
        ms.sample.token_experts.push_back(static_cast<int32_t>(e));
      }
      ms.sample.token_source.push_back(rank);
    }
  }
}

// ------------------------------------------------------------------------------------- count tables

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> f;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = line.find(',', start);
    f.push_back(line.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) return f;
    start = comma + 1;
  }
}

// An integer field in [0, hi]: text that is not an integer is a ParseError, an integer out of range a
// ConfigError, both quoting the field as written.
int64_t csv_int(const std::string& field, const std::string& src, const std::string& column, int64_t hi,
                const std::string& what) {
  int64_t v = 0;
  const char* end = field.data() + field.size();
  const bool minus = !field.empty() && field[0] == '-';
  auto r = std::from_chars(field.data() + (minus ? 1 : 0), end, v);
  const std::string expected = what + ", an integer in " + range_text(0, hi);
  if (field.size() == (minus ? 1u : 0u) || r.ptr != end ||
      (r.ec != std::errc() && r.ec != std::errc::result_out_of_range))
    throw ParseError(located_message(src, "column " + column, expected, "\"" + field + "\""));
  if (minus || r.ec != std::errc() || v > hi) config_fail(src, "column " + column, expected, field);
  return v;
}

}  // namespace

std::vector<MegatronSample> import_megatron_router_traces(const std::string& dir, int experts,
                                                          int max_layers) {
  if (experts < 1) config_fail(dir, "experts", "at least 1 expert", num(experts));
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw IoError(dir + ": not a readable directory of router_trace_rank<N>.jsonl files");
  std::map<int, std::string> files;  // rank -> path
  const std::string prefix = kRankPrefix, suffix = kRankSuffix;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() < prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;  // not a rank file (documented: only router_trace_rank*.jsonl are read)
    const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    int rank = -1;
    auto r = std::from_chars(digits.data(), digits.data() + digits.size(), rank);
    if (digits.empty() || r.ec != std::errc() || r.ptr != digits.data() + digits.size() || rank < 0)
      config_fail(entry.path().string(), "file name", "router_trace_rank<N>.jsonl with N a rank >= 0", name);
    files[rank] = entry.path().string();
  }
  if (ec) throw IoError(dir + ": cannot list directory: " + ec.message());
  if (files.empty()) throw IoError(dir + ": no router_trace_rank<N>.jsonl files");
  const int ranks = static_cast<int>(files.size());
  for (int r = 0; r < ranks; ++r)
    if (!files.count(r))
      config_fail(dir, "file names", "ranks 0.." + num(ranks - 1) + " (one file each)",
                  "no file for rank " + num(r) + " but one for rank " + num(files.rbegin()->first));

  std::map<MegatronKey, MegatronSample> samples;
  std::map<MegatronKey, KeyOrigin> origins;
  TopkOrigin topk;
  for (const auto& [rank, path] : files) read_megatron_file(path, rank, experts, topk, samples, origins);
  for (const auto& [key, origin] : origins)
    if (origin.slots == 0)
      config_fail(origin.where, "/num_tokens",
                  "at least one token routed at step " + num(std::get<0>(key)) + ", layer " +
                      num(std::get<3>(key)) + " (on some rank)",
                  "0 tokens on every rank");

  // Megatron numbers a router by its transformer layer (from 1, dense layers counted), and only MoE
  // layers have a router: the recorded numbers of a block are its MoE layers in order, with gaps. The
  // n-th smallest number of a (block, mtp_idx), over all steps and ranks, is MoE layer n - 1.
  std::map<std::pair<int, int>, std::set<int>> recorded;  // (block, mtp_idx) -> layer numbers
  for (const auto& entry : samples) {
    const MegatronKey& key = entry.first;
    recorded[{std::get<1>(key), std::get<2>(key)}].insert(std::get<3>(key));
  }
  const std::set<int>& decoder = recorded[{0, 0}];
  if (max_layers > 0 && static_cast<int>(decoder.size()) > max_layers) {
    const int beyond = *std::next(decoder.begin(), max_layers);
    for (const auto& [key, origin] : origins)
      if (std::get<1>(key) == 0 && std::get<3>(key) == beyond)
        config_fail(origin.where, "/layer",
                    "at most " + num(max_layers) +
                        " distinct decoder layer numbers (the model's MoE layers, in order)",
                    num(static_cast<int64_t>(decoder.size())) + " recorded in " + dir + ", layer " +
                        num(beyond) + " the first beyond them");
  }
  std::vector<MegatronSample> out;
  out.reserve(samples.size());
  for (auto& [key, ms] : samples) {
    const std::set<int>& numbers = recorded[{std::get<1>(key), std::get<2>(key)}];
    ms.megatron_layer = ms.sample.layer;
    ms.sample.layer = static_cast<int>(std::distance(numbers.begin(), numbers.find(ms.megatron_layer)));
    ms.sample.sources = ranks;
    counts_from_tokens(ms.sample);
    out.push_back(std::move(ms));
  }
  return out;
}

std::vector<RoutingSample> import_expert_count_table(const std::string& path, const CountTableQuery& q) {
  const std::string qsrc = path + ": query";
  if (q.model.empty() || q.kind.empty() || q.domain.empty())
    config_fail(qsrc, "model/kind/domain", "a model, kind and domain to select rows",
                "\"" + q.model + "\", \"" + q.kind + "\", \"" + q.domain + "\"");
  if (q.experts < 1) config_fail(qsrc, "experts", "at least 1 expert", num(q.experts));
  if (q.top_k < 1) config_fail(qsrc, "top_k", "top_k >= 1", num(q.top_k));

  LineReader lines(path);
  std::string text;
  std::vector<std::string> header;
  std::vector<RoutingSample> out;
  std::set<std::string> available;
  std::set<int> layers_seen;
  while (lines.next(text)) {
    if (!text.empty() && text[0] == '#') continue;                     // comment (provenance)
    if (text.find_first_not_of(" \t") == std::string::npos) continue;  // blank: holds no data
    const std::string src = at_line(path, lines.line());
    std::vector<std::string> f = split_csv(text);
    if (header.empty()) {
      bool ok = f.size() > 5 && f[0] == "model" && f[1] == "kind" && f[2] == "domain" && f[3] == "layer" &&
                f[4] == "total";
      for (std::size_t i = 5; ok && i < f.size(); ++i) ok = f[i] == "e" + num(static_cast<int64_t>(i - 5));
      if (!ok)
        throw ParseError(located_message(src, "header",
                                         "the CSV header model,kind,domain,layer,total,e0,e1,...",
                                         "\"" + text.substr(0, 80) + "\""));
      header = std::move(f);
      const int columns = static_cast<int>(header.size()) - 5;
      if (q.experts > columns)
        config_fail(src, "header",
                    "at most " + num(columns) + " experts (columns e0..e" + num(columns - 1) + ")",
                    "experts = " + num(q.experts));
      continue;
    }
    if (f.size() != header.size())
      throw ParseError(located_message(
          src, "row", num(static_cast<int64_t>(header.size())) + " comma-separated fields (as the header)",
          num(static_cast<int64_t>(f.size())) + " fields"));
    available.insert(f[0] + "/" + f[1] + "/" + f[2]);
    if (f[0] != q.model || f[1] != q.kind || f[2] != q.domain) continue;  // another selection

    const int64_t layer = csv_int(
        f[3], src, "layer", q.max_layers > 0 ? q.max_layers - 1 : INT_MAX,
        q.max_layers > 0 ? "a MoE layer of the model (" + num(q.max_layers) + " MoE layers)" : "a layer");
    const int64_t total = csv_int(f[4], src, "total", kMaxSlots, "the routed slots");
    if (!layers_seen.insert(static_cast<int>(layer)).second)
      config_fail(src, "column layer", "one row per layer for " + q.model + "/" + q.kind + "/" + q.domain,
                  "layer " + num(layer) + " again");
    RoutingSample s;
    s.step = 0;
    s.layer = static_cast<int>(layer);
    s.sources = 1;
    s.experts = q.experts;
    s.top_k = q.top_k;
    s.counts.assign(static_cast<std::size_t>(q.experts), 0);
    int64_t sum = 0;
    for (std::size_t i = 5; i < f.size(); ++i) {
      const int e = static_cast<int>(i - 5);
      const std::string column = "e" + num(e);
      const int64_t c = csv_int(f[i], src, column, kMaxSlots, "a count");
      if (c > kMaxSlots - sum)
        config_fail(src, "column " + column, "counts summing to at most 2^53 in one row",
                    num(c) + " after " + num(sum) + " in the columns before it");
      if (e >= q.experts && c != 0)
        config_fail(src, "column " + column,
                    "0 (the model has " + num(q.experts) + " experts, so columns e" + num(q.experts) +
                        ".. are empty)",
                    num(c));
      if (e < q.experts) s.counts[e] = c;
      sum += c;
    }
    if (sum != total)
      config_fail(src, "column total", "the sum of the expert counts, " + num(sum), num(total));
    if (total == 0) config_fail(src, "column total", "at least one routed slot (a non-zero count)", "0");
    if (total % q.top_k != 0)
      config_fail(src, "column total", "a multiple of top_k = " + num(q.top_k) + " (slots = tokens x top_k)",
                  num(total));
    s.tokens = total / q.top_k;
    out.push_back(std::move(s));
  }
  if (header.empty())
    throw ParseError(located_message(path, "header", "the CSV header model,kind,domain,layer,total,e0,e1,...",
                                     "no header line"));
  if (out.empty()) {
    std::string list;
    for (const auto& a : available) list += (list.empty() ? "" : ", ") + a;
    config_fail(path, "rows", "rows for model/kind/domain " + q.model + "/" + q.kind + "/" + q.domain,
                "none (the file has " + list + ")");
  }
  return out;
}

std::vector<RoutingSample> import_samples(const ImportSpec& spec) {
  std::vector<RoutingSample> out;
  switch (spec.format) {
    case TraceFormat::kMegatron:
      for (auto& m : import_megatron_router_traces(spec.path, spec.experts, spec.max_layers))
        if (m.block == MegatronBlock::decoder) out.push_back(std::move(m.sample));
      break;
    case TraceFormat::kCountTable: {
      CountTableQuery q;
      q.model = spec.model;
      q.kind = spec.kind;
      q.domain = spec.domain;
      q.experts = spec.experts;
      q.top_k = spec.top_k;
      q.max_layers = spec.max_layers;
      out = import_expert_count_table(spec.path, q);
      break;
    }
    case TraceFormat::kMoesim:
      config_fail(spec.path, "format", "a format to import (megatron or count_table)",
                  "\"moesim\" (a moesim trace is read as it is)");
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
  return out;
}

std::vector<std::vector<double>> read_expert_loads(const std::string& path) {
  TextFile file = read_text_file(path);
  if (file.status != TextRead::kOk)
    throw IoError(
        located_message(path, "", "a readable JSON file of expert loads", describe_failed_read(file)));
  const std::string& text = file.text;
  JsonDoc doc;
  JsonSyntax syntax;
  if (!parse_json_doc(text, doc, syntax))
    throw ParseError(path + ":" + line_column(text, syntax.byte) + ": expected valid JSON, found " +
                     syntax.found);
  const Json& j = doc.value;
  const std::string shape = "array of layers, each an array of one load per expert";
  if (!j.is_array() || j.empty()) config_fail(path, "", "a non-empty " + shape, describe_value(doc, "", j));
  std::vector<std::vector<double>> loads;
  for (std::size_t l = 0; l < j.size(); ++l) {
    const std::string lp = "/" + num(static_cast<int64_t>(l));
    const Json& row = j[l];
    if (!row.is_array() || row.empty() || (l > 0 && row.size() != loads[0].size()))
      config_fail(path, lp,
                  l == 0 ? "a non-empty array of expert loads (layer 0 sets the number of experts)"
                         : "an array of " + num(static_cast<int64_t>(loads[0].size())) +
                               " expert loads (as layer 0: layers x experts)",
                  describe_value(doc, lp, row));
    std::vector<double> r;
    r.reserve(row.size());
    double sum = 0;
    for (std::size_t e = 0; e < row.size(); ++e) {
      const std::string ep = lp + "/" + num(static_cast<int64_t>(e));
      r.push_back(json_number(doc, row[e], path, ep, 0, kMaxSlots, "an expert load"));
      sum += r.back();
    }
    if (sum <= 0)
      config_fail(path, lp, "at least one load above 0 in each layer",
                  "all " + num(static_cast<int64_t>(r.size())) + " loads 0");
    loads.push_back(std::move(r));
  }
  return loads;
}

RoutingSample rescale_sources(const RoutingSample& in, int sources) {
  const int n = in.sources, m = sources;
  const std::string src = "rescale_sources (step " + num(in.step) + ", layer " + num(in.layer) + ")";
  if (m < 1 || (m % n != 0 && n % m != 0))
    config_fail(src, "sources", "a number of sources that divides or is a multiple of " + num(n), num(m));
  if (m == n) return in;
  const int e_count = in.experts;
  RoutingSample out = in;
  out.sources = m;
  out.counts.assign(static_cast<std::size_t>(m) * e_count, 0);
  const int64_t tokens = in.top_k > 0 ? static_cast<int64_t>(in.token_experts.size()) / in.top_k : 0;
  auto old_source = [&](int64_t t) -> int {
    return in.token_source.empty() ? static_cast<int>(t * n / tokens) : in.token_source[t];
  };
  if (m > n) {
    const int f = m / n;
    for (int r = 0; r < n; ++r) {
      int offset = 0;  // where the next leftover slot goes (rotates so no part is favoured)
      for (int e = 0; e < e_count; ++e) {
        const int64_t c = in.count(r, e), base = c / f;
        const int rem = static_cast<int>(c % f);
        for (int j = 0; j < f; ++j) {
          const bool extra = ((j - offset + f) % f) < rem;
          out.counts[static_cast<std::size_t>(r * f + j) * e_count + e] = base + (extra ? 1 : 0);
        }
        offset = (offset + rem) % f;
      }
    }
    if (tokens > 0) {
      std::vector<int64_t> seen(static_cast<std::size_t>(n), 0);  // tokens of each old source so far
      out.token_source.resize(static_cast<std::size_t>(tokens));
      for (int64_t t = 0; t < tokens; ++t) {
        const int r = old_source(t);
        out.token_source[t] = static_cast<int32_t>(r * f + seen[r]++ % f);
      }
    }
  } else {
    const int g = n / m;
    for (int r = 0; r < n; ++r)
      for (int e = 0; e < e_count; ++e)
        out.counts[static_cast<std::size_t>(r / g) * e_count + e] += in.count(r, e);
    if (tokens > 0) {
      out.token_source.resize(static_cast<std::size_t>(tokens));
      for (int64_t t = 0; t < tokens; ++t) out.token_source[t] = static_cast<int32_t>(old_source(t) / g);
    }
  }
  return out;
}

ExpertLoadStats expert_load_stats(const std::vector<int64_t>& per_expert) {
  ExpertLoadStats st;
  if (per_expert.empty()) return st;
  double total = 0;
  for (int64_t c : per_expert) {
    st.max = std::max(st.max, c);
    total += static_cast<double>(c);
  }
  st.mean = total / static_cast<double>(per_expert.size());
  if (st.mean <= 0) return st;
  double var = 0;
  for (int64_t c : per_expert) var += (static_cast<double>(c) - st.mean) * (static_cast<double>(c) - st.mean);
  var /= static_cast<double>(per_expert.size());
  st.max_over_mean = static_cast<double>(st.max) / st.mean;
  st.cv = std::sqrt(var) / st.mean;
  return st;
}

ExpertLoadStats expert_load_stats(const RoutingSample& sample) {
  return expert_load_stats(sample.expert_counts());
}

}  // namespace moesim::traces
