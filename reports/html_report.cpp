#include "reports/html_report.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "reports/atomic_file.hpp"
#include "scenarios/error.hpp"
#include "scenarios/text_input.hpp"

#ifndef MOESIM_VEGA_DIR
#define MOESIM_VEGA_DIR "third_party/vega"
#endif

namespace moesim::reports {
namespace fs = std::filesystem;

namespace {

// ------------------------------------------------------------------------------------------- reading

std::string read_text(const fs::path& p, const std::string& what) {
  TextFile f = read_text_file(p.string());
  if (f.status != TextRead::kOk)
    throw IoError(p.string() + ": expected " + what + ", found " + describe_failed_read(f));
  return std::move(f.text);
}

std::string found_text(const Json& v) {
  if (v.is_null()) return "null";
  const std::string t = v.dump();
  return t.size() > 60 ? t.substr(0, 57) + "..." : t;
}

// A document and the file it came from, for messages "FILE: /POINTER: expected ..., found ...".
struct Doc {
  std::string file;
  Json j;
  const Json& at(const std::string& ptr) const {
    const Json::json_pointer p(ptr);
    if (!j.contains(p)) throw ConfigError(located_message(file, ptr, "a value", "nothing"));
    return j.at(p);
  }
  bool has(const std::string& ptr) const { return j.contains(Json::json_pointer(ptr)); }
  // A finite number at `ptr` of `v` (null: NaN when allowed).
  double number(const Json& v, const std::string& ptr, bool null_ok = false) const {
    if (v.is_number()) {
      const double x = v.get<double>();
      if (std::isfinite(x)) return x;
    }
    if (null_ok && v.is_null()) return NAN;
    throw ConfigError(located_message(file, ptr, "a finite number", found_text(v)));
  }
  double number(const std::string& ptr, bool null_ok = false) const { return number(at(ptr), ptr, null_ok); }
  const Json& array(const std::string& ptr) const {
    const Json& v = at(ptr);
    if (!v.is_array()) throw ConfigError(located_message(file, ptr, "an array", found_text(v)));
    return v;
  }
  const Json& object(const std::string& ptr) const {
    const Json& v = at(ptr);
    if (!v.is_object())
      throw ConfigError(located_message(file, ptr.empty() ? "/" : ptr, "an object", found_text(v)));
    return v;
  }
  std::string text(const Json& v, const std::string& ptr) const {
    if (!v.is_string()) throw ConfigError(located_message(file, ptr, "a string", found_text(v)));
    return v.get<std::string>();
  }
  std::string text(const std::string& ptr) const { return text(at(ptr), ptr); }
};

Doc read_doc(const fs::path& p) {
  return Doc{p.string(), read_json_file(p.string())};
}

// A CSV file: header and rows (RFC 4180 quoting). ParseError "FILE:LINE: ..." for a ragged row.
struct Csv {
  std::string file;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  int column(const std::string& name) const {
    for (std::size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return static_cast<int>(i);
    throw ConfigError(file + ": line 1: expected a column \"" + name + "\", found none");
  }
  double number(std::size_t row, int col) const {
    const std::string& t = rows[row][static_cast<std::size_t>(col)];
    char* end = nullptr;
    const double x = std::strtod(t.c_str(), &end);
    if (t.empty() || end != t.c_str() + t.size() || !std::isfinite(x))
      throw ParseError(file + ": line " + std::to_string(row + 2) + ", column \"" +
                       header[static_cast<std::size_t>(col)] + "\": expected a finite number, found \"" + t +
                       "\"");
    return x;
  }
};

Csv read_csv(const fs::path& p) {
  const std::string text = read_text(p, "a readable CSV file");
  Csv c{p.string(), {}, {}};
  std::vector<std::string> row;
  std::string cell;
  bool quoted = false, any = false;
  int line = 1;
  auto end_row = [&] {
    row.push_back(cell);
    cell.clear();
    if (c.header.empty()) {
      c.header = row;
    } else if (!(row.size() == 1 && row[0].empty())) {
      if (row.size() != c.header.size())
        throw ParseError(c.file + ":" + std::to_string(line) + ": expected " +
                         std::to_string(c.header.size()) + " fields as in the header, found " +
                         std::to_string(row.size()));
      c.rows.push_back(row);
    }
    row.clear();
    any = false;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (quoted) {
      if (ch == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (ch == '"') {
        quoted = false;
      } else {
        if (ch == '\n') ++line;
        cell += ch;
      }
    } else if (ch == '"') {
      quoted = true;
      any = true;
    } else if (ch == ',') {
      row.push_back(cell);
      cell.clear();
      any = true;
    } else if (ch == '\n') {
      end_row();
      ++line;
    } else if (ch != '\r') {
      cell += ch;
      any = true;
    }
  }
  if (quoted)
    throw ParseError(c.file + ":" + std::to_string(line) + ": expected a closing quote, found the end");
  if (any || !cell.empty()) end_row();
  if (c.header.empty()) throw ParseError(c.file + ":1: expected a header row, found an empty file");
  return c;
}

// -------------------------------------------------------------------------------------- formatting

std::string g4(double x) {
  if (!std::isfinite(x)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", x);
  return b;
}

std::string pct(double x) {
  if (!std::isfinite(x)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%+.1f%%", 100 * x);
  return b;
}

std::string html_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

// Text safe inside <script>: "</script" (any case) and "<!--" would end or confuse the element; a
// backslash before "/" or "!" keeps the same meaning in a JavaScript string, regular expression or JSON
// string, the only places either can occur.
std::string script_safe(const std::string& s) {
  const auto at = [&](std::size_t i, const char* word) {  // `word` (lower case) starts at i, any case
    for (std::size_t k = 0; word[k] != '\0'; ++k)
      if (i + k >= s.size() || std::tolower(static_cast<unsigned char>(s[i + k])) != word[k]) return false;
    return true;
  };
  std::string o;
  o.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    o += s[i];
    if (at(i, "</script") || at(i, "<!--")) o += '\\';  // "<\/script", "<\!--"
  }
  return o;
}

// ------------------------------------------------------------------------------------------ specs

const char* kSchema = "https://vega.github.io/schema/vega-lite/v6.json";

Json base_spec(const Json& values, int width = 640, int height = 260) {
  return Json{{"$schema", kSchema}, {"data", {{"values", values}}}, {"width", width}, {"height", height}};
}

// Horizontal bars of `value` per `label`, in the given order.
Json hbar(const Json& values, const std::string& label, const std::string& value, const std::string& title,
          const std::string& color = "") {
  Json s = base_spec(values, 560, std::max(60, 22 * static_cast<int>(values.size())));
  s["mark"] = {{"type", "bar"}, {"tooltip", true}};
  s["encoding"] = {{"y", {{"field", label}, {"type", "nominal"}, {"sort", nullptr}, {"title", nullptr}}},
                   {"x", {{"field", value}, {"type", "quantitative"}, {"title", title}}}};
  if (!color.empty()) s["encoding"]["color"] = {{"field", color}, {"type", "nominal"}};
  return s;
}

// Busiest GPU and busiest expert over the mean, per MoE layer: the two series of an imbalance chart.
void add_imbalance(Json& v, double layer, double gpu, double expert) {
  v.push_back({{"layer", layer}, {"of", "busiest GPU / mean"}, {"ratio", gpu}});
  v.push_back({{"layer", layer}, {"of", "busiest expert / mean"}, {"ratio", expert}});
}

// The imbalance chart of add_imbalance's values: lines over the layers, or bars side by side per layer.
Json imbalance_spec(const Json& v, bool bars) {
  Json s = base_spec(v, 700, 220);
  s["mark"] = bars ? Json{{"type", "bar"}, {"tooltip", true}}
                   : Json{{"type", "line"}, {"point", true}, {"tooltip", true}};
  s["encoding"] = {
      {"x", {{"field", "layer"}, {"type", bars ? "ordinal" : "quantitative"}, {"title", "MoE layer"}}},
      {"y", {{"field", "ratio"}, {"type", "quantitative"}, {"title", "max / mean load"}}},
      {"color", {{"field", "of"}, {"type", "nominal"}, {"title", nullptr}}}};
  if (bars)
    s["encoding"]["xOffset"] = {{"field", "of"}};
  else
    s["encoding"]["y"]["scale"] = {{"zero", false}};
  return s;
}

HtmlChart chart(std::string id, std::string title, std::string caption, Json spec, HtmlTable table) {
  return HtmlChart{std::move(id), std::move(title), std::move(caption), std::move(spec), std::move(table)};
}

// ------------------------------------------------------------------------------------ serving

// A line over time of `v` ({t, y} rows).
Json time_line(const Json& v, const std::string& y_title) {
  Json s = base_spec(v, 700, 220);
  s["mark"] = {{"type", "line"}, {"tooltip", true}};
  s["encoding"] = {{"x", {{"field", "t"}, {"type", "quantitative"}, {"title", "simulated time (s)"}}},
                   {"y", {{"field", "y"}, {"type", "quantitative"}, {"title", y_title}}}};
  return s;
}

// A serving run's result.json (reports/serving.hpp) and, from the discrete-event engine, requests.csv.
void serving_charts(const fs::path& dir, const Doc& d, HtmlReport& rep) {
  const std::string scen = d.text("/scenario"), engine = d.text("/engine");
  rep.facts.push_back({"serving run", scen + " (" + engine + " engine)"});
  const auto ms = [&](const std::string& ptr) {
    return d.at(ptr).is_null() ? std::string("-") : g4(1e3 * d.number(ptr)) + " ms";
  };
  rep.facts.push_back({"TTFT mean / p99", ms("/latency/ttft_s/mean") + " / " + ms("/latency/ttft_s/p99")});
  rep.facts.push_back({"TPOT mean / p99", ms("/latency/tpot_s/mean") + " / " + ms("/latency/tpot_s/p99")});
  rep.facts.push_back({"output tokens/s/GPU", g4(d.number("/throughput/output_tokens_per_s_per_gpu"))});
  rep.facts.push_back({"goodput (requests/s)", g4(d.number("/slo/goodput_requests_per_s"))});
  // Latency percentiles.
  {
    Json v = Json::array();
    HtmlTable t{{"latency", "mean (ms)", "p50 (ms)", "p90 (ms)", "p99 (ms)"}, {}};
    for (const auto& [key, name] :
         {std::pair{"ttft_s", "TTFT"}, {"tpot_s", "TPOT"}, {"e2e_s", "end-to-end"}}) {
      std::vector<std::string> row{name};
      for (const char* stat : {"mean", "p50", "p90", "p99"}) {
        const std::string ptr = std::string("/latency/") + key + "/" + stat;
        const bool has = !d.at(ptr).is_null();
        if (has) v.push_back({{"latency", name}, {"statistic", stat}, {"ms", 1e3 * d.number(ptr)}});
        row.push_back(has ? g4(1e3 * d.number(ptr)) : "-");
      }
      t.rows.push_back(row);
    }
    // Points on a log scale: TPOT is milliseconds where end to end is seconds.
    Json s = hbar(v, "latency", "ms", "milliseconds (log scale)", "statistic");
    s["mark"] = {{"type", "point"}, {"filled", true}, {"size", 90}, {"tooltip", true}};
    s["encoding"]["yOffset"] = {{"field", "statistic"}};
    s["encoding"]["x"]["scale"] = {{"type", "log"}};
    rep.charts.push_back(chart("serving-latency", "Latency",
                               "Time to first token, time per output token and end to end (result.json "
                               "/latency; percentiles from the discrete-event engine only).",
                               s, t));
  }
  // Each instance kind's iteration.
  {
    Json v = Json::array();
    HtmlTable t{{"instance", "iteration (ms)", "attention (ms)", "experts (ms)", "other compute (ms)",
                 "exposed comm (ms)", "all-to-all (ms)", "batch (seqs)", "prompt tokens"},
                {}};
    const Json& inst = d.array("/instances");
    for (std::size_t i = 0; i < inst.size(); ++i) {
      const std::string p = "/instances/" + std::to_string(i);
      const std::string name = d.text(p + "/role") + " " + std::to_string(i);
      const double att = d.number(p + "/attention_s"), exp = d.number(p + "/experts_s");
      const double other = d.number(p + "/compute_s") - att - exp, comm = d.number(p + "/exposed_comm_s");
      for (const auto& [part, x] : {std::pair{"attention", att},
                                    {"routed experts", exp},
                                    {"other compute", other},
                                    {"exposed communication", comm}})
        v.push_back({{"instance", name}, {"part", part}, {"ms", 1e3 * x}});
      t.rows.push_back({name, g4(1e3 * d.number(p + "/iteration_s")), g4(1e3 * att), g4(1e3 * exp),
                        g4(1e3 * other), g4(1e3 * comm), g4(1e3 * d.number(p + "/all_to_all_s")),
                        g4(d.number(p + "/decode_batch")), g4(d.number(p + "/prefill_tokens"))});
    }
    Json s = hbar(v, "instance", "ms", "milliseconds per iteration", "part");
    rep.charts.push_back(chart("serving-iteration", "One iteration of each instance kind",
                               "The busiest GPU's iteration at the engine's batch, split by kernel family "
                               "(result.json /instances); the all-to-all column counts hidden time too.",
                               s, t));
    // The largest ops of the first decode-capable instance.
    for (std::size_t i = 0; i < inst.size(); ++i) {
      const std::string p = "/instances/" + std::to_string(i);
      if (d.text(p + "/role") == "prefill" || !inst[i].contains("iteration_ops_s")) continue;
      std::vector<std::pair<std::string, double>> ops;
      for (auto it = inst[i]["iteration_ops_s"].begin(); it != inst[i]["iteration_ops_s"].end(); ++it)
        ops.emplace_back(it.key(), d.number(p + "/iteration_ops_s/" + it.key()));
      std::stable_sort(ops.begin(), ops.end(),
                       [](const auto& a, const auto& b) { return a.second > b.second; });
      if (ops.size() > 15) ops.resize(15);
      Json ov = Json::array();
      HtmlTable ot{{"op", "ms per iteration"}, {}};
      for (const auto& [name, x] : ops) {
        ov.push_back({{"op", name}, {"ms", 1e3 * x}});
        ot.rows.push_back({name, g4(1e3 * x)});
      }
      if (!ops.empty())
        rep.charts.push_back(chart("serving-ops", "Where a decode iteration goes",
                                   "Seconds per op summed over the blocks of one iteration of " +
                                       d.text(p + "/role") + " instance " + std::to_string(i) +
                                       " (result.json /instances/" + std::to_string(i) +
                                       "/iteration_ops_s; communication ops counted whole, hidden or not).",
                                   hbar(ov, "op", "ms", "milliseconds per iteration"), ot));
      break;
    }
  }
  // Time series of the discrete-event engine.
  for (const auto& [key, id, title, ytitle] :
       {std::tuple{"/kv_usage", "serving-kv", "KV cache in use", "tokens per DP rank"},
        {"/expert_load", "serving-expert-load", "Expert load per iteration", "busiest GPU / mean"}}) {
    const Json& a = d.array(key);
    if (a.empty()) continue;
    Json v = Json::array();
    HtmlTable t{{"time (s)", ytitle}, {}};
    for (std::size_t i = 0; i < a.size(); ++i) {
      const std::string p = std::string(key) + "/" + std::to_string(i);
      const double x = d.number(p + "/0"), y = d.number(p + "/1");
      v.push_back({{"t", x}, {"y", y}});
      if (i % std::max<std::size_t>(1, a.size() / 20) == 0) t.rows.push_back({g4(x), g4(y)});
    }
    rep.charts.push_back(chart(id, title,
                               std::string("The first decode instance over the run (result.json ") + key +
                                   "; the table shows every " +
                                   std::to_string(std::max<std::size_t>(1, a.size() / 20)) + "th point).",
                               time_line(v, ytitle), t));
  }
  // Per-request latencies: their distribution.
  std::error_code ec;
  if (fs::exists(dir / "requests.csv", ec)) {
    const Csv c = read_csv(dir / "requests.csv");
    rep.sources.push_back(c.file);
    const int c_ttft = c.column("ttft_s"), c_e2e = c.column("e2e_s");
    std::vector<double> ttft, e2e;
    for (std::size_t r = 0; r < c.rows.size(); ++r) {
      ttft.push_back(c.number(r, c_ttft));
      e2e.push_back(c.number(r, c_e2e));
    }
    std::sort(ttft.begin(), ttft.end());
    std::sort(e2e.begin(), e2e.end());
    Json v = Json::array();
    HtmlTable t{{"share of requests", "TTFT (s)", "end-to-end (s)"}, {}};
    const std::size_t n = ttft.size();
    const std::size_t points = std::min<std::size_t>(n, 400);
    for (std::size_t k = 1; k <= points; ++k) {
      const std::size_t i = (k * n + points - 1) / points - 1;
      const double share = double(i + 1) / double(n);
      v.push_back({{"latency", "TTFT"}, {"s", ttft[i]}, {"share", share}});
      v.push_back({{"latency", "end-to-end"}, {"s", e2e[i]}, {"share", share}});
    }
    for (double q : {0.5, 0.9, 0.99, 1.0}) {
      const std::size_t i = std::min(n - 1, static_cast<std::size_t>(std::ceil(q * double(n))) - 1);
      t.rows.push_back({g4(q), g4(ttft[i]), g4(e2e[i])});
    }
    Json s = base_spec(v, 700, 240);
    s["mark"] = {{"type", "line"}, {"tooltip", true}};
    s["encoding"] = {
        {"x", {{"field", "s"}, {"type", "quantitative"}, {"title", "seconds"}, {"scale", {{"type", "log"}}}}},
        {"y", {{"field", "share"}, {"type", "quantitative"}, {"title", "share of requests at or below"}}},
        {"color", {{"field", "latency"}, {"type", "nominal"}, {"title", nullptr}}}};
    if (n > 0)
      rep.charts.push_back(chart("serving-requests", "Latency of every request",
                                 "Cumulative share of the " + std::to_string(n) +
                                     " requests by time to first token and end to end (requests.csv).",
                                 s, t));
  }
}

// ---------------------------------------------------------------------------------------- run

void run_charts(const fs::path& dir, HtmlReport& rep) {
  const Doc d = read_doc(dir / "result.json");
  rep.sources.push_back(d.file);
  if (d.has("/kind") && d.at("/kind") == "serving") return serving_charts(dir, d, rep);
  const double step = d.number("/summary/step_time_s");
  const std::string scen = d.has("/context/scenario") ? d.text("/context/scenario") : dir.filename().string();
  const std::string engine = d.has("/context/engine") ? d.text("/context/engine") : "";
  rep.facts.push_back({"run", scen + (engine.empty() ? "" : " (" + engine + " engine)")});
  rep.facts.push_back({"step time", g4(step) + " s"});
  rep.facts.push_back({"tokens/s/GPU", g4(d.number("/summary/tokens_per_s_per_gpu"))});
  rep.facts.push_back({"MFU", g4(100 * d.number("/summary/mfu")) + " %"});

  // Step breakdown.
  {
    static const std::pair<const char*, const char*> parts[] = {
        {"compute", "compute"},        {"exposed_ep", "exposed EP all-to-all"},
        {"exposed_tp", "exposed TP"},  {"exposed_cp", "exposed CP"},
        {"bubble", "pipeline bubble"}, {"exposed_dp", "exposed DP sync"},
        {"optimizer", "optimizer"}};
    Json v = Json::array();
    HtmlTable t{{"part", "seconds", "share"}, {}};
    for (const auto& [key, name] : parts) {
      const double x = d.number(std::string("/breakdown_s/") + key);
      v.push_back({{"part", name}, {"seconds", x}, {"share", step > 0 ? x / step : 0.0}});
      t.rows.push_back({name, g4(x), g4(step > 0 ? 100 * x / step : 0) + " %"});
    }
    rep.charts.push_back(
        chart("breakdown", "Where the step goes",
              "The critical GPU's step time split by what it waits for (result.json /breakdown_s).",
              hbar(v, "part", "seconds", "seconds per step"), t));
  }
  // Pipeline phases, with the published ones when the scenario has them.
  if (d.has("/phases")) {
    static const std::tuple<const char*, const char*, const char*> ph[] = {
        {"forward_only_s", "forward_only_s", "1F (warm-up)"},
        {"steady_s", "steady_s", "steady"},
        {"backward_only_s", "backward_only_s", "1B (cool-down)"},
        {"weight_only_s", "weight_only_s", "1W"},
        {"bubble_s", "bubble_s", "bubble"},
        {"optimizer_and_grad_sync_s", "optimizer_s", "optimizer"}};
    Json v = Json::array();
    HtmlTable t{{"phase", "moesim (s)", "published (s)"}, {}};
    for (const auto& [key, ref_key, name] : ph) {
      const std::string ptr = std::string("/phases/") + key;
      if (!d.has(ptr)) continue;
      const double x = d.number(ptr);
      v.push_back({{"phase", name}, {"source", "moesim"}, {"seconds", x}});
      std::string pub = "-";
      const std::string rptr = std::string("/reference/") + ref_key;
      if (d.has(rptr) && d.at(rptr).is_number()) {
        const double y = d.number(rptr);
        v.push_back({{"phase", name}, {"source", "published"}, {"seconds", y}});
        pub = g4(y);
      }
      t.rows.push_back({name, g4(x), pub});
    }
    Json s = hbar(v, "phase", "seconds", "seconds per step", "source");
    s["encoding"]["yOffset"] = {{"field", "source"}};
    rep.charts.push_back(
        chart("phases", "Pipeline phases",
              "Phases of the critical pipeline rank (result.json /phases); published figures "
              "where the scenario's reference block has them.",
              s, t));
  }
  // Per-layer times.
  {
    const Json& layers = d.array("/layers");
    Json v = Json::array();
    HtmlTable t{{"layer", "kind", "PP rank", "forward (ms)", "backward input (ms)", "backward weight (ms)"},
                {}};
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const std::string p = "/layers/" + std::to_string(i);
      const double f = d.number(p + "/forward_s"), b = d.number(p + "/backward_input_s"),
                   w = d.number(p + "/backward_weight_s");
      const double layer = d.number(p + "/layer");
      const std::string kind = d.text(p + "/kind");
      v.push_back({{"layer", layer}, {"pass", "forward"}, {"ms", 1e3 * f}, {"kind", kind}});
      v.push_back({{"layer", layer}, {"pass", "backward input"}, {"ms", 1e3 * b}, {"kind", kind}});
      v.push_back({{"layer", layer}, {"pass", "backward weight"}, {"ms", 1e3 * w}, {"kind", kind}});
      t.rows.push_back(
          {g4(layer), kind, g4(d.number(p + "/pp_rank")), g4(1e3 * f), g4(1e3 * b), g4(1e3 * w)});
    }
    Json s = base_spec(v, 700, 260);
    s["mark"] = {{"type", "bar"}, {"tooltip", true}};
    s["encoding"] = {
        {"x", {{"field", "layer"}, {"type", "ordinal"}, {"title", "block"}}},
        {"y", {{"field", "ms"}, {"type", "quantitative"}, {"stack", true}, {"title", "ms per microbatch"}}},
        {"color", {{"field", "pass"}, {"type", "nominal"}}}};
    rep.charts.push_back(chart(
        "layers", "Time per block and pass",
        "One microbatch of each block on its pipeline rank, each pass alone (result.json /layers).", s, t));
  }
  // Expert load per MoE layer.
  if (d.has("/moe/layers") && !d.array("/moe/layers").empty()) {
    const Json& ml = d.array("/moe/layers");
    Json v = Json::array();
    HtmlTable t{{"MoE layer", "max/mean GPU", "max/mean expert", "dispatch (us)", "combine (us)"}, {}};
    for (std::size_t i = 0; i < ml.size(); ++i) {
      const std::string p = "/moe/layers/" + std::to_string(i);
      const double l = d.number(p + "/layer"), g = d.number(p + "/max_over_mean_gpu"),
                   e = d.number(p + "/max_over_mean_expert");
      add_imbalance(v, l, g, e);
      t.rows.push_back(
          {g4(l), g4(g), g4(e), g4(1e6 * d.number(p + "/dispatch_s")), g4(1e6 * d.number(p + "/combine_s"))});
    }
    const Json s = imbalance_spec(v, false);
    rep.charts.push_back(
        chart("expert-load", "Routing imbalance per MoE layer",
              "Load of the busiest GPU and the busiest expert over the mean, per MoE layer "
              "(result.json /moe/layers); the busiest GPU gates every all-to-all of its layer.",
              s, t));
  }
  // Per-GPU expert load per MoE layer.
  if (fs::exists(dir / "expert_load.csv")) {
    const Csv c = read_csv(dir / "expert_load.csv");
    rep.sources.push_back(c.file);
    const int c_moe = c.column("moe_layer"), c_layer = c.column("layer"), c_rank = c.column("ep_rank"),
              c_load = c.column("load_over_mean");
    Json v = Json::array();
    HtmlTable t{{"MoE layer", "block", "busiest EP rank", "its load / mean", "least load / mean"}, {}};
    std::map<int, std::tuple<int, int, double, double>> per;  // moe layer -> block, busiest rank, max, min
    int ranks = 0;
    for (std::size_t i = 0; i < c.rows.size(); ++i) {
      const int m = static_cast<int>(c.number(i, c_moe)), g = static_cast<int>(c.number(i, c_rank));
      const double x = c.number(i, c_load);
      ranks = std::max(ranks, g + 1);
      v.push_back({{"moe_layer", m}, {"ep_rank", g}, {"load", x}});
      auto [it, fresh] = per.try_emplace(m, static_cast<int>(c.number(i, c_layer)), g, x, x);
      auto& [block, busiest, hi, lo] = it->second;
      if (!fresh && x > hi) {
        hi = x;
        busiest = g;
      }
      if (!fresh) lo = std::min(lo, x);
    }
    for (const auto& [m, e] : per)
      t.rows.push_back({std::to_string(m), std::to_string(std::get<0>(e)), std::to_string(std::get<1>(e)),
                        g4(std::get<2>(e)), g4(std::get<3>(e))});
    if (!v.empty()) {
      const int layers = static_cast<int>(per.size());
      Json s =
          base_spec(v, std::min(900, std::max(160, 14 * ranks)), std::min(700, std::max(120, 10 * layers)));
      s["mark"] = {{"type", "rect"}, {"tooltip", true}};
      s["encoding"] = {
          {"x", {{"field", "ep_rank"}, {"type", "ordinal"}, {"title", "EP rank (GPU of the group)"}}},
          {"y", {{"field", "moe_layer"}, {"type", "ordinal"}, {"title", "MoE layer"}}},
          {"color",
           {{"field", "load"},
            {"type", "quantitative"},
            {"title", "load / mean"},
            {"scale", {{"scheme", "orangered"}}}}}};
      rep.charts.push_back(
          chart("gpu-load", "Expert load per GPU and layer",
                "Routed-expert rows each GPU of an expert-parallel group computes, over the group's "
                "mean, per MoE layer (expert_load.csv); the hottest cell of a row gates that layer.",
                s, t));
    }
  }
  // Node x node all-to-all bytes of the first MoE layer.
  if (d.has("/moe/first_layer_dispatch_node_traffic_bytes")) {
    const Json& m = d.array("/moe/first_layer_dispatch_node_traffic_bytes");
    Json v = Json::array();
    HtmlTable t{{"from node", "to node", "MB"}, {}};
    for (std::size_t a = 0; a < m.size(); ++a) {
      const std::string pa = "/moe/first_layer_dispatch_node_traffic_bytes/" + std::to_string(a);
      const Json& row = d.array(pa);
      for (std::size_t b = 0; b < row.size(); ++b) {
        const double x = d.number(row[b], pa + "/" + std::to_string(b));
        v.push_back({{"from", static_cast<int>(a)}, {"to", static_cast<int>(b)}, {"MB", x / 1e6}});
        if (x > 0) t.rows.push_back({std::to_string(a), std::to_string(b), g4(x / 1e6)});
      }
    }
    const int n = static_cast<int>(m.size());
    Json s = base_spec(v, std::min(640, std::max(120, 24 * n)), std::min(640, std::max(120, 24 * n)));
    s["mark"] = {{"type", "rect"}, {"tooltip", true}};
    s["encoding"] = {{"x", {{"field", "to"}, {"type", "ordinal"}, {"title", "to node"}}},
                     {"y", {{"field", "from"}, {"type", "ordinal"}, {"title", "from node"}}},
                     {"color", {{"field", "MB"}, {"type", "quantitative"}, {"title", "MB"}}}};
    rep.charts.push_back(chart("node-traffic", "All-to-all bytes between nodes",
                               "Dispatch bytes of the first MoE layer, one microbatch, from node to node "
                               "(result.json /moe/first_layer_dispatch_node_traffic_bytes).",
                               s, t));
  }
  // The critical rank's most expensive ops.
  if (fs::exists(dir / "ops.csv")) {
    const Csv c = read_csv(dir / "ops.csv");
    rep.sources.push_back(c.file);
    const int rank = static_cast<int>(d.number("/summary/critical_pp_rank"));
    const int c_rank = c.column("pp_rank"), c_op = c.column("op"), c_pass = c.column("pass"),
              c_tot = c.column("total_seconds"), c_rc = c.column("recompute"), c_by = c.column("priced_by");
    std::map<std::string, std::pair<double, std::string>> sum;
    for (std::size_t i = 0; i < c.rows.size(); ++i) {
      if (static_cast<int>(c.number(i, c_rank)) != rank) continue;
      const auto& r = c.rows[i];
      std::string key = r[static_cast<std::size_t>(c_op)] +
                        (r[static_cast<std::size_t>(c_rc)] == "1" ? " (rc)" : "") + " " +
                        r[static_cast<std::size_t>(c_pass)];
      auto& e = sum[key];
      e.first += c.number(i, c_tot);
      e.second = r[static_cast<std::size_t>(c_by)];
    }
    std::vector<std::pair<double, std::string>> order;
    for (const auto& [k, e] : sum) order.push_back({-e.first, k});
    std::sort(order.begin(), order.end());
    if (order.size() > 20) order.resize(20);
    Json v = Json::array();
    HtmlTable t{{"op and pass", "seconds per step", "priced by"}, {}};
    for (const auto& [neg, k] : order) {
      v.push_back({{"op", k}, {"seconds", -neg}});
      t.rows.push_back({k, g4(-neg), sum[k].second});
    }
    rep.charts.push_back(
        chart("ops", "Most expensive ops",
              "The critical pipeline rank's ops summed over the step, each alone, largest 20 "
              "(ops.csv; 'priced by' names the calibration entry or formula).",
              hbar(v, "op", "seconds", "seconds per step"), t));
  }
  // Link utilisation (discrete-event runs).
  if (fs::exists(dir / "links.csv")) {
    const Csv c = read_csv(dir / "links.csv");
    rep.sources.push_back(c.file);
    const int c_link = c.column("link"), c_kind = c.column("kind"), c_u = c.column("utilisation"),
              c_b = c.column("bytes");
    std::vector<std::pair<double, std::size_t>> order;
    for (std::size_t i = 0; i < c.rows.size(); ++i) order.push_back({-c.number(i, c_u), i});
    std::sort(order.begin(), order.end());
    if (order.size() > 24) order.resize(24);
    Json v = Json::array();
    HtmlTable t{{"link", "kind", "utilisation", "GB"}, {}};
    for (const auto& [neg, i] : order) {
      const auto& r = c.rows[i];
      v.push_back({{"link", r[static_cast<std::size_t>(c_link)]},
                   {"kind", r[static_cast<std::size_t>(c_kind)]},
                   {"utilisation", -neg}});
      t.rows.push_back({r[static_cast<std::size_t>(c_link)], r[static_cast<std::size_t>(c_kind)], g4(-neg),
                        g4(c.number(i, c_b) / 1e9)});
    }
    Json s = hbar(v, "link", "utilisation", "bytes / (bandwidth x simulated time)", "kind");
    rep.charts.push_back(
        chart("links", "Busiest links",
              "Directed links of the last simulated run by utilisation, largest 24 (links.csv).", s, t));
  }
  // Timeline excerpt (discrete-event runs): the first GPUs' streams over the first part of the run.
  if (fs::exists(dir / "trace.json")) {
    const Doc tr = read_doc(dir / "trace.json");
    rep.sources.push_back(tr.file);
    const Json& ev = tr.array("/traceEvents");
    std::set<int> gpus;
    double end = 0;
    for (std::size_t i = 0; i < ev.size(); ++i) {
      const Json& e = ev[i];
      if (!e.is_object() || !e.contains("ph") || e["ph"] != "X") continue;
      const std::string p = "/traceEvents/" + std::to_string(i);
      gpus.insert(static_cast<int>(tr.number(e.at("pid"), p + "/pid")));
      end = std::max(end, tr.number(e.at("ts"), p + "/ts") + tr.number(e.at("dur"), p + "/dur"));
    }
    std::set<int> shown;
    for (int g : gpus) {
      if (shown.size() == 4) break;
      shown.insert(g);
    }
    const double window = end / 4;  // the first quarter of the run
    Json v = Json::array();
    HtmlTable t{{"GPU", "stream", "event", "start (ms)", "end (ms)"}, {}};
    static const char* streams[] = {"compute", "all-to-all", "pipeline recv"};
    for (std::size_t i = 0; i < ev.size() && v.size() < 3000; ++i) {
      const Json& e = ev[i];
      if (!e.is_object() || !e.contains("ph") || e["ph"] != "X") continue;
      const std::string p = "/traceEvents/" + std::to_string(i);
      const int g = static_cast<int>(tr.number(e.at("pid"), p + "/pid"));
      const double a = tr.number(e.at("ts"), p + "/ts"), z = a + tr.number(e.at("dur"), p + "/dur");
      if (!shown.count(g) || a > window) continue;
      const int sid = static_cast<int>(tr.number(e.at("tid"), p + "/tid"));
      const std::string stream = sid >= 0 && sid < 3 ? streams[sid] : std::to_string(sid);
      const std::string name = tr.text(e.at("name"), p + "/name");
      const std::string kind = name.substr(0, name.find(' '));
      v.push_back({{"lane", "GPU " + std::to_string(g) + " " + stream},
                   {"start", a / 1e3},
                   {"end", z / 1e3},
                   {"pass", kind},
                   {"event", name}});
      if (t.rows.size() < 200) t.rows.push_back({std::to_string(g), stream, name, g4(a / 1e3), g4(z / 1e3)});
    }
    Json s = base_spec(v, 900, std::max(80, 26 * 3 * static_cast<int>(shown.size())));
    s["mark"] = {{"type", "bar"}, {"tooltip", {{"content", "data"}}}};
    s["encoding"] = {
        {"y", {{"field", "lane"}, {"type", "nominal"}, {"title", nullptr}}},
        {"x", {{"field", "start"}, {"type", "quantitative"}, {"title", "ms from the start of the run"}}},
        {"x2", {{"field", "end"}}},
        {"color", {{"field", "pass"}, {"type", "nominal"}}}};
    rep.charts.push_back(
        chart("timeline", "Timeline excerpt",
              "Compute, all-to-all and pipeline-receive streams of up to four simulated GPUs over "
              "the first quarter of the last simulated run (trace.json; open it whole in "
              "Perfetto or chrome://tracing). The table lists the first 200 events.",
              s, t));
  }
}

// -------------------------------------------------------------------------------------- sweep

void sweep_charts(const fs::path& dir, HtmlReport& rep) {
  const Doc d = read_doc(dir / "merged.json");
  rep.sources.push_back(d.file);
  if (!d.j.is_array()) throw ConfigError(located_message(d.file, "/", "an array of points", found_text(d.j)));
  std::vector<std::string> axes;
  if (!d.j.empty()) {
    for (const auto& [k, v] : d.object("/0/values").items()) axes.push_back(k);
  }
  Json v = Json::array();
  HtmlTable t;
  t.columns = axes;
  t.columns.insert(t.columns.end(), {"status", "tokens/s/GPU", "step (s)", "MFU"});
  int ok = 0;
  for (std::size_t i = 0; i < d.j.size(); ++i) {
    const std::string p = "/" + std::to_string(i);
    const std::string status = d.text(p + "/status");
    Json row = {{"point", static_cast<int>(i)}, {"status", status}};
    std::vector<std::string> cells;
    for (std::size_t a = 0; a < axes.size(); ++a) {
      const Json& vals = d.object(p + "/values");
      if (!vals.contains(axes[a]))
        throw ConfigError(located_message(d.file, p + "/values", "the axis \"" + axes[a] + "\"", "none"));
      const Json& x = vals.at(axes[a]);
      row["axis" + std::to_string(a)] = x.is_string() ? Json(x.get<std::string>()) : Json(x.dump());
      cells.push_back(x.is_string() ? x.get<std::string>() : x.dump());
    }
    const bool good = status == "ok";
    const double tps = good ? d.number(p + "/tokens_per_s_per_gpu", true) : NAN;
    const double st = good ? d.number(p + "/step_time_s", true) : NAN;
    const double mfu = good ? d.number(p + "/mfu", true) : NAN;
    cells.insert(cells.end(), {status, g4(tps), g4(st), g4(mfu)});
    t.rows.push_back(cells);
    if (!good || !std::isfinite(tps)) continue;
    ++ok;
    row["tokens_per_s_per_gpu"] = tps;
    v.push_back(row);
  }
  rep.facts.push_back(
      {"sweep", std::to_string(d.j.size()) + " points, " + std::to_string(ok) + " evaluated"});
  Json s = base_spec(v, 700, 300);
  if (axes.size() >= 2) {
    s["mark"] = {{"type", "rect"}, {"tooltip", true}};
    s["encoding"] = {{"x", {{"field", "axis0"}, {"type", "ordinal"}, {"title", axes[0]}}},
                     {"y", {{"field", "axis1"}, {"type", "ordinal"}, {"title", axes[1]}}},
                     {"color",
                      {{"field", "tokens_per_s_per_gpu"},
                       {"type", "quantitative"},
                       {"aggregate", "max"},
                       {"title", "tokens/s/GPU (best)"}}}};
  } else {
    s["mark"] = {{"type", "line"}, {"point", true}, {"tooltip", true}};
    s["encoding"] = {
        {"x",
         {{"field", axes.empty() ? "point" : "axis0"},
          {"type", "ordinal"},
          {"title", axes.empty() ? "point" : axes[0]}}},
        {"y", {{"field", "tokens_per_s_per_gpu"}, {"type", "quantitative"}, {"title", "tokens/s/GPU"}}}};
  }
  rep.charts.push_back(chart("sweep", "Throughput over the sweep",
                             axes.size() >= 2
                                 ? "Best tokens/s/GPU for each pair of the first two axes (merged.json); "
                                   "points that failed or did not fit are in the table only."
                                 : "tokens/s/GPU of every evaluated point (merged.json).",
                             s, t));
  Json s2 = base_spec(v, 700, 220);
  s2["mark"] = {{"type", "bar"}, {"tooltip", true}};
  s2["encoding"] = {
      {"x", {{"field", "point"}, {"type", "ordinal"}, {"title", "point"}}},
      {"y", {{"field", "tokens_per_s_per_gpu"}, {"type", "quantitative"}, {"title", "tokens/s/GPU"}}}};
  if (!axes.empty()) s2["encoding"]["color"] = {{"field", "axis0"}, {"type", "nominal"}, {"title", axes[0]}};
  rep.charts.push_back(chart("sweep-points", "Every point",
                             "tokens/s/GPU per point, in point order (merged.json).", s2,
                             HtmlTable{{"points evaluated"}, {{std::to_string(ok)}}}));
}

// --------------------------------------------------------------------------------------- plan

std::string layout_text(const Doc& d, const std::string& p) {
  const Json& l = d.object(p + "/layout");
  std::string s;
  for (const auto& [k, v] : l.items()) {
    if (!s.empty()) s += " ";
    s += k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  }
  return s;
}

void plan_charts(const fs::path& dir, HtmlReport& rep) {
  const Doc d = read_doc(dir / "plan.json");
  rep.sources.push_back(d.file);
  rep.facts.push_back({"plan", d.has("/plan") ? d.text("/plan") : dir.filename().string()});
  if (d.has("/search/evaluated"))
    rep.facts.push_back({"layouts", g4(d.number("/search/enumerated")) + " enumerated, " +
                                        g4(d.number("/search/evaluated")) + " evaluated"});
  // Ranked plans with their error bars.
  {
    const Json& plans = d.array("/plans");
    Json v = Json::array();
    HtmlTable t{{"rank", "GPUs", "layout", "days", "days p10-p90", "USD", "MWh", "tokens/s/GPU"}, {}};
    for (std::size_t i = 0; i < plans.size(); ++i) {
      const std::string p = "/plans/" + std::to_string(i);
      const double days = d.number(p + "/days"), usd = d.number(p + "/usd"), gpus = d.number(p + "/gpus");
      Json row = {
          {"plan", "#" + std::to_string(i + 1) + " " + g4(gpus) + " GPUs"}, {"days", days}, {"usd", usd}};
      std::string band = "-";
      if (d.has(p + "/days_p10_p50_p90")) {
        const double lo = d.number(p + "/days_p10_p50_p90/0"), hi = d.number(p + "/days_p10_p50_p90/2");
        row["p10"] = lo;
        row["p90"] = hi;
        band = g4(lo) + " - " + g4(hi);
      }
      v.push_back(row);
      t.rows.push_back({std::to_string(i + 1), g4(gpus), layout_text(d, p), g4(days), band, g4(usd),
                        g4(d.number(p + "/mwh")), g4(d.number(p + "/tokens_per_s_per_gpu"))});
    }
    Json s = base_spec(v, 560, std::max(60, 26 * static_cast<int>(v.size())));
    s["layer"] = Json::array(
        {{{"mark", {{"type", "bar"}, {"tooltip", true}}},
          {"encoding",
           {{"y", {{"field", "plan"}, {"type", "nominal"}, {"sort", nullptr}, {"title", nullptr}}},
            {"x",
             {{"field", "days"},
              {"type", "quantitative"},
              {"title", "days (p10-p90 from the accuracy suite)"}}}}}},
         {{"mark", {{"type", "rule"}}},
          {"encoding",
           {{"y", {{"field", "plan"}, {"type", "nominal"}, {"sort", nullptr}}},
            {"x", {{"field", "p10"}, {"type", "quantitative"}}},
            {"x2", {{"field", "p90"}}}}}}});
    rep.charts.push_back(
        chart("plans", "Ranked plans",
              "Days to the target per plan, with the p10-p90 band from the accuracy suite's measured "
              "errors (plan.json /plans).",
              s, t));
  }
  // Pareto fronts.
  for (const auto& [key, yfield, ytitle, id] :
       std::vector<std::tuple<std::string, std::string, std::string, std::string>>{
           {"/pareto", "usd", "USD", "pareto"}, {"/pareto_energy", "mwh", "MWh", "pareto-energy"}}) {
    if (!d.has(key)) continue;
    const Json& pts = d.array(key);
    Json v = Json::array();
    HtmlTable t{{"GPUs", "layout", "days", ytitle}, {}};
    for (std::size_t i = 0; i < pts.size(); ++i) {
      const std::string p = key + "/" + std::to_string(i);
      const double days = d.number(p + "/days"), y = d.number(p + "/" + yfield);
      v.push_back({{"days", days}, {"y", y}, {"gpus", d.number(p + "/gpus")}});
      t.rows.push_back({g4(d.number(p + "/gpus")), layout_text(d, p), g4(days), g4(y)});
    }
    Json s = base_spec(v, 480, 300);
    s["mark"] = {{"type", "line"}, {"point", {{"size", 60}}}, {"tooltip", true}};
    s["encoding"] = {
        {"x", {{"field", "days"}, {"type", "quantitative"}, {"scale", {{"zero", false}}}, {"title", "days"}}},
        {"y", {{"field", "y"}, {"type", "quantitative"}, {"scale", {{"zero", false}}}, {"title", ytitle}}}};
    rep.charts.push_back(
        chart(id, "Pareto front: days against " + ytitle,
              "Plans no other plan beats on both days and " + ytitle + " (plan.json " + key + ").", s, t));
  }
  // Sensitivity tornado.
  if (d.has("/sensitivity")) {
    const Json& sens = d.array("/sensitivity");
    Json v = Json::array();
    HtmlTable t{{"factor", "low", "days low", "high", "days high"}, {}};
    for (std::size_t i = 0; i < sens.size(); ++i) {
      const std::string p = "/sensitivity/" + std::to_string(i);
      const std::string f = d.text(p + "/factor");
      const double lo = d.number(p + "/days_low"), hi = d.number(p + "/days_high");
      v.push_back({{"factor", f}, {"lo", std::min(lo, hi)}, {"hi", std::max(lo, hi)}});
      t.rows.push_back({f, d.text(p + "/low"), g4(lo), d.text(p + "/high"), g4(hi)});
    }
    Json s = base_spec(v, 520, std::max(60, 30 * static_cast<int>(v.size())));
    s["mark"] = {{"type", "bar"}, {"tooltip", true}};
    s["encoding"] = {
        {"y", {{"field", "factor"}, {"type", "nominal"}, {"sort", nullptr}, {"title", nullptr}}},
        {"x", {{"field", "lo"}, {"type", "quantitative"}, {"scale", {{"zero", false}}}, {"title", "days"}}},
        {"x2", {{"field", "hi"}}}};
    rep.charts.push_back(chart("tornado", "Sensitivity of the best plan",
                               "Days of the best plan when one factor moves to its low or high setting "
                               "(plan.json /sensitivity).",
                               s, t));
  }
}

// ------------------------------------------------------------------------------------ compare

void compare_charts(const fs::path& dir, HtmlReport& rep) {
  const Doc d = read_doc(dir / "compare.json");
  rep.sources.push_back(d.file);
  const Json& vs = d.array("/variants");
  Json v = Json::array();
  HtmlTable t{{"variant", "tokens/s/GPU", "step (s)", "MFU", "memory (GiB)", "fits"}, {}};
  for (std::size_t i = 0; i < vs.size(); ++i) {
    const std::string p = "/variants/" + std::to_string(i);
    const std::string name = d.text(p + "/name");
    const bool valid = !d.has(p + "/valid") || d.at(p + "/valid") == true;
    if (!valid) {
      t.rows.push_back({name, "-", "-", "-", "-", "invalid"});
      continue;
    }
    const double tps = d.number(p + "/tokens_per_s_per_gpu"), st = d.number(p + "/step_time_s");
    const bool fits = !d.has(p + "/feasible") || d.at(p + "/feasible") == true;
    v.push_back({{"variant", name}, {"tokens_per_s_per_gpu", tps}, {"fits", fits ? "fits" : "does not fit"}});
    t.rows.push_back({name, g4(tps), g4(st), g4(d.number(p + "/mfu")),
                      d.has(p + "/memory_gib") ? g4(d.number(p + "/memory_gib")) : "-", fits ? "yes" : "no"});
  }
  rep.facts.push_back({"comparison", std::to_string(vs.size()) + " variants"});
  rep.charts.push_back(chart("compare", "Variants by throughput",
                             "tokens/s/GPU of each variant, best first as compared (compare.json /variants).",
                             hbar(v, "variant", "tokens_per_s_per_gpu", "tokens/s/GPU", "fits"), t));
}

// ------------------------------------------------------------------------------------- replay

void replay_charts(const fs::path& dir, HtmlReport& rep) {
  const Doc d = read_doc(dir / "replay.json");
  rep.sources.push_back(d.file);
  const double balanced = d.number("/balanced_step_time_s");
  rep.facts.push_back(
      {"replay", d.text("/scenario") + " on " + d.text("/trace") + ", placement " + d.text("/placement")});
  rep.facts.push_back(
      {"mean step", g4(d.number("/mean_step_time_s")) + " s (balanced routing " + g4(balanced) + " s)"});
  const Json& steps = d.array("/steps");
  Json v = Json::array();
  HtmlTable t{{"step", "step time (s)", "busiest GPU / mean", "busiest expert / mean", "rebalance (s)"}, {}};
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const std::string p = "/steps/" + std::to_string(i);
    const double step = d.number(p + "/step"), st = d.number(p + "/step_time_s"),
                 g = d.number(p + "/max_over_mean_gpu"), e = d.number(p + "/max_over_mean_expert"),
                 rb = d.number(p + "/rebalance_s");
    v.push_back({{"step", step}, {"series", "replayed routing"}, {"seconds", st}});
    v.push_back({{"step", step}, {"series", "balanced routing"}, {"seconds", balanced}});
    t.rows.push_back({g4(step), g4(st), g4(g), g4(e), g4(rb)});
  }
  Json s = base_spec(v, 700, 260);
  s["mark"] = {{"type", "line"}, {"point", true}, {"tooltip", true}};
  s["encoding"] = {{"x", {{"field", "step"}, {"type", "quantitative"}, {"title", "trace step"}}},
                   {"y",
                    {{"field", "seconds"},
                     {"type", "quantitative"},
                     {"scale", {{"zero", false}}},
                     {"title", "step time (s)"}}},
                   {"color", {{"field", "series"}, {"type", "nominal"}, {"title", nullptr}}}};
  rep.charts.push_back(
      chart("replay-steps", "Step time over the trace",
            "Each replayed step with its recorded routing against the same step with perfectly "
            "balanced routing (replay.json /steps).",
            s, t));
  const Json& layers = d.array("/last_step_layers");
  Json lv = Json::array();
  HtmlTable lt{{"MoE layer", "busiest GPU / mean", "busiest expert / mean", "straggler (ms)"}, {}};
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const std::string p = "/last_step_layers/" + std::to_string(i);
    const double l = d.number(p + "/layer"), g = d.number(p + "/max_over_mean_gpu"),
                 e = d.number(p + "/max_over_mean_expert");
    add_imbalance(lv, l, g, e);
    lt.rows.push_back({g4(l), g4(g), g4(e), g4(1e3 * d.number(p + "/straggler_s"))});
  }
  const Json ls = imbalance_spec(lv, true);
  rep.charts.push_back(chart("replay-layers", "Imbalance per layer, last step",
                             "The last replayed step's busiest GPU and expert over the mean, per MoE layer "
                             "(replay.json /last_step_layers): placement spreads hot experts over GPUs.",
                             ls, lt));
}

// ----------------------------------------------------------------------------------- accuracy

void accuracy_charts(const fs::path& dir, HtmlReport& rep) {
  const Doc d = read_doc(dir / "accuracy.json");
  rep.sources.push_back(d.file);
  const Json& rows = d.array("/rows");
  Json v = Json::array();
  HtmlTable t{{"group", "name", "quantity", "published", "engine", "predicted", "error"}, {}};
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::string p = "/rows/" + std::to_string(i);
    const double pub = d.number(p + "/published");
    for (const char* eng : {"analytic", "des"}) {
      const std::string pe = p + "/" + eng;
      if (!d.has(pe + "/predicted")) continue;
      const double pred = d.number(pe + "/predicted", true);
      if (!std::isfinite(pred)) continue;
      const double err = pub != 0 ? pred / pub - 1 : NAN;
      const std::string name = d.text(p + "/name"), group = d.text(p + "/group");
      v.push_back({{"group", group},
                   {"name", name + " " + d.text(p + "/quantity")},
                   {"engine", eng},
                   {"error", err}});
      t.rows.push_back({group, name, d.text(p + "/quantity"), g4(pub), eng, g4(pred), pct(err)});
    }
  }
  rep.facts.push_back({"accuracy suite", std::to_string(rows.size()) + " published figures"});
  Json s = base_spec(v, 700, 260);
  s["mark"] = {{"type", "point"}, {"filled", true}, {"tooltip", true}};
  s["encoding"] = {{"x",
                    {{"field", "error"},
                     {"type", "quantitative"},
                     {"axis", {{"format", "+%"}}},
                     {"title", "signed error (predicted / published - 1)"}}},
                   {"y", {{"field", "group"}, {"type", "nominal"}, {"title", nullptr}}},
                   {"yOffset", {{"field", "engine"}}},
                   {"color", {{"field", "engine"}, {"type", "nominal"}}}};
  rep.charts.push_back(
      chart("accuracy", "Predicted against published",
            "Signed error of every row of the accuracy suite per engine (accuracy.json /rows); for "
            "times negative means too fast, for rates positive means too fast.",
            s, t));
}

}  // namespace

VegaBundle load_vega_bundle() {
  const char* env = std::getenv("MOESIM_VEGA_DIR");
  VegaBundle b;
  b.dir = env != nullptr && *env != '\0' ? env : MOESIM_VEGA_DIR;
  const fs::path d(b.dir);
  const std::string what = "a vendored chart library (tools/refresh_vega.sh writes it)";
  b.vega = read_text(d / "vega.min.js", what);
  b.vega_lite = read_text(d / "vega-lite.min.js", what);
  b.vega_embed = read_text(d / "vega-embed.min.js", what);
  b.versions = read_text(d / "VERSIONS", what);
  return b;
}

HtmlReport build_report(const std::string& dir_text) {
  const fs::path dir(dir_text);
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw IoError(dir_text + ": expected an output folder of moesim, found " +
                  (fs::exists(dir, ec) ? "something that is not a folder" : "nothing"));
  HtmlReport r;
  r.title = "moesim report: " + fs::absolute(dir, ec).lexically_normal().filename().string();
  const std::pair<const char*, void (*)(const fs::path&, HtmlReport&)> kinds[] = {
      {"result.json", run_charts},      {"merged.json", sweep_charts},  {"plan.json", plan_charts},
      {"compare.json", compare_charts}, {"replay.json", replay_charts}, {"accuracy.json", accuracy_charts}};
  bool any = false;
  for (const auto& [file, fill] : kinds) {
    if (!fs::exists(dir / file, ec)) continue;
    any = true;
    fill(dir, r);
  }
  if (!any) {
    std::string hint;
    if (fs::is_directory(dir / "points", ec))
      hint = " (a sweep folder: run `moesim report merge " + dir_text + "` first)";
    throw IoError(dir_text +
                  ": expected result.json, merged.json, plan.json, compare.json, replay.json or "
                  "accuracy.json, found none" +
                  hint);
  }
  return r;
}

std::string render_html(const HtmlReport& r, const VegaBundle& v) {
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>"
    << html_escape(r.title)
    << "</title>\n<style>\n"
       "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px "
       "auto;max-width:1100px;color:#222;"
       "padding:0 16px}\n"
       "h1{font-size:1.5em;margin-bottom:4px}h2{font-size:1.15em;margin:28px 0 4px}\n"
       ".facts{color:#444;margin:4px 0 16px}.facts span{margin-right:18px}\n"
       ".caption{color:#555;font-size:.9em;margin:2px 0 8px}.chart{min-height:40px}\n"
       "table{border-collapse:collapse;font-size:.85em;margin:6px 0}td,th{border:1px solid #ddd;padding:2px "
       "8px;"
       "text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}\n"
       "details{margin:4px 0 12px}footer{color:#777;font-size:.8em;margin-top:32px}\n"
       "</style>\n</head>\n<body data-console-errors=\"0\" data-console-warnings=\"0\">\n";
  o << "<script>\n(function(){var b=document.body;"
       "var ce=console.error,cw=console.warn;"
       "console.error=function(){b.dataset.consoleErrors=String(+b.dataset.consoleErrors+1);"
       "b.dataset.lastError=Array.prototype.join.call(arguments,' ');ce.apply(console,arguments)};"
       "console.warn=function(){b.dataset.consoleWarnings=String(+b.dataset.consoleWarnings+1);"
       "b.dataset.lastWarning=Array.prototype.join.call(arguments,' ');cw.apply(console,arguments)};"
       "window.addEventListener('error',function(e){b.dataset.consoleErrors=String(+b.dataset.consoleErrors+"
       "1);"
       "b.dataset.lastError=String(e.message)});})();\n</script>\n";
  o << "<h1>" << html_escape(r.title) << "</h1>\n<div class=\"facts\">";
  for (const auto& [k, val] : r.facts)
    o << "<span><b>" << html_escape(k) << "</b> " << html_escape(val) << "</span>";
  o << "</div>\n";
  for (const HtmlChart& c : r.charts) {
    o << "<section>\n<h2>" << html_escape(c.title) << "</h2>\n<div class=\"caption\">"
      << html_escape(c.caption) << "</div>\n<div class=\"chart\" id=\"chart-" << c.id
      << "\" data-state=\"pending\"></div>\n"
      << "<details><summary>table</summary>\n<table><thead><tr>";
    for (const auto& h : c.table.columns) o << "<th>" << html_escape(h) << "</th>";
    o << "</tr></thead><tbody>\n";
    for (const auto& row : c.table.rows) {
      o << "<tr>";
      for (const auto& cell : row) o << "<td>" << html_escape(cell) << "</td>";
      o << "</tr>\n";
    }
    o << "</tbody></table>\n</details>\n</section>\n";
  }
  o << "<footer>Built by moesim from: ";
  for (std::size_t i = 0; i < r.sources.size(); ++i) o << (i ? ", " : "") << html_escape(r.sources[i]);
  o << ". Charts: Vega, Vega-Lite and vega-embed (BSD-3-Clause), inlined: " << html_escape(v.versions)
    << ". Each chart's spec is in report-specs/.</footer>\n";
  o << "<script>\n"
    << script_safe(v.vega) << "\n</script>\n<script>\n"
    << script_safe(v.vega_lite) << "\n</script>\n<script>\n"
    << script_safe(v.vega_embed) << "\n</script>\n";
  Json specs = Json::object();
  for (const HtmlChart& c : r.charts) specs[c.id] = c.spec;
  o << "<script>\n(function(){var specs=" << script_safe(specs.dump()) << ";\n"
    << "Object.keys(specs).forEach(function(id){var el=document.getElementById('chart-'+id);\n"
       "vegaEmbed(el,specs[id],{actions:false,renderer:'svg'}).then(function(res){return res.view.runAsync()"
       ".then(function(){var n=el.querySelectorAll('g.role-mark > path, g.role-mark > line, g.role-mark > "
       "rect,"
       " g.role-mark > circle, g.role-mark > g').length;el.dataset.marks=String(n);"
       "el.dataset.state=n>0?'drawn':'empty';});})"
       ".catch(function(e){el.dataset.state='error';el.dataset.error=String(e);console.error(e);});});})();\n"
    << "</script>\n</body>\n</html>\n";
  return o.str();
}

std::string write_report(const std::string& dir_text, const HtmlReport& r, const VegaBundle& v) {
  const fs::path dir(dir_text);
  const fs::path specs = dir / "report-specs";
  std::error_code ec;
  fs::create_directories(specs, ec);
  if (ec) throw IoError(specs.string() + ": cannot create the folder (" + ec.message() + ")");
  OutputSet set;
  const std::string page = (dir / "report.html").string();
  set.add(page, render_html(r, v));
  for (const HtmlChart& c : r.charts) set.add((specs / (c.id + ".vl.json")).string(), c.spec.dump(2) + "\n");
  set.commit();
  return page;
}

}  // namespace moesim::reports
