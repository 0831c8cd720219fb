#include "traces/requests.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>

#include "scenarios/error.hpp"
#include "traces/generators.hpp"
#include "traces/load.hpp"

namespace moesim::traces {
namespace {

std::string at(const std::string& path, int64_t line) {
  return path + ":" + std::to_string(line);
}

[[noreturn]] void bad(const std::string& path, int64_t line, const std::string& expected,
                      const std::string& found) {
  throw ParseError(at(path, line) + ": expected " + expected + ", found " + found);
}

// Splits a CSV line on commas; a field may be double-quoted (no comma or quote inside).
std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out(1);
  for (char c : s) {
    if (c == ',')
      out.emplace_back();
    else
      out.back() += c;
  }
  for (auto& f : out) {
    while (!f.empty() && (f.back() == ' ' || f.back() == '\t')) f.pop_back();
    std::size_t b = 0;
    while (b < f.size() && (f[b] == ' ' || f[b] == '\t')) ++b;
    f.erase(0, b);
    if (f.size() >= 2 && f.front() == '"' && f.back() == '"') f = f.substr(1, f.size() - 2);
  }
  return out;
}

std::string shown(const std::string& s) {
  return "\"" + (s.size() > 60 ? s.substr(0, 60) + "..." : s) + "\"";
}

std::optional<double> number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(v)) return std::nullopt;
  return v;
}

// Days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// "YYYY-MM-DD HH:MM:SS[.fraction]" (a 'T' may separate date and time) in seconds since 1970.
std::optional<double> datetime(const std::string& s) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, used = 0;
  char sep = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d%n", &y, &mo, &d, &sep, &h, &mi, &sec, &used) != 7)
    return std::nullopt;
  if ((sep != ' ' && sep != 'T') || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
    return std::nullopt;
  double frac = 0;
  const std::string rest = s.substr(static_cast<std::size_t>(used));
  if (!rest.empty()) {
    if (rest[0] != '.' || rest.size() < 2 ||
        !std::all_of(rest.begin() + 1, rest.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    frac = std::strtod(("0" + rest).c_str(), nullptr);
  }
  return double(days_from_civil(y, mo, d)) * 86400.0 + h * 3600.0 + mi * 60.0 + sec + frac;
}

struct Columns {
  RequestFormat format;
  int arrival = -1, input = -1, output = -1, cached = -1, prefix = -1;
  std::size_t count = 0;
  const char* input_name = "";   ///< the input column's name in this format
  const char* output_name = "";  ///< the output column's name
};

int find(const std::vector<std::string>& h, const char* name) {
  for (std::size_t i = 0; i < h.size(); ++i)
    if (h[i] == name) return static_cast<int>(i);
  return -1;
}

std::optional<Columns> columns_of(const std::vector<std::string>& h, RequestFormat f) {
  Columns c{f};
  c.count = h.size();
  const char* arrival = "";
  switch (f) {
    case RequestFormat::kMoesim:
      arrival = "arrival_s", c.input_name = "input_tokens", c.output_name = "output_tokens";
      c.cached = find(h, "cached_tokens");
      c.prefix = find(h, "prefix_id");
      break;
    case RequestFormat::kAzure:
      arrival = "TIMESTAMP", c.input_name = "ContextTokens", c.output_name = "GeneratedTokens";
      break;
    case RequestFormat::kBurstGpt:
      arrival = "Timestamp", c.input_name = "Request tokens", c.output_name = "Response tokens";
      break;
    case RequestFormat::kAuto:
      return std::nullopt;
  }
  c.arrival = find(h, arrival), c.input = find(h, c.input_name), c.output = find(h, c.output_name);
  if (c.arrival < 0 || c.input < 0 || c.output < 0) return std::nullopt;
  return c;
}

const char* expected_header(RequestFormat f) {
  switch (f) {
    case RequestFormat::kMoesim:
      return "the columns arrival_s, input_tokens, output_tokens (and optionally cached_tokens, prefix_id)";
    case RequestFormat::kAzure:
      return "the columns TIMESTAMP, ContextTokens, GeneratedTokens (Azure LLM inference trace)";
    case RequestFormat::kBurstGpt:
      return "the columns Timestamp, Request tokens, Response tokens (BurstGPT)";
    case RequestFormat::kAuto:
      break;
  }
  return "a header of a moesim (arrival_s, input_tokens, output_tokens), Azure (TIMESTAMP, ContextTokens, "
         "GeneratedTokens) or BurstGPT (Timestamp, Request tokens, Response tokens) request trace";
}

int64_t tokens(const std::string& path, int64_t line, const std::string& field, const char* column,
               int64_t lo) {
  const auto v = number(field);
  const std::string what = std::string(column) + " an integer in [" + std::to_string(lo) + ", " +
                           std::to_string(kMaxRequestTokens) + "]";
  if (!v || *v != std::floor(*v)) bad(path, line, what, shown(field));
  if (*v < double(lo) || *v > double(kMaxRequestTokens)) bad(path, line, what, shown(field));
  return static_cast<int64_t>(*v);
}

}  // namespace

RequestFormat request_format(const std::string& name, const std::string& what) {
  if (const RequestFormat* f = request_formats().find(name)) return *f;
  throw ConfigError(what + ": expected " + request_formats().expected() + ", found \"" + name + "\"");
}

RequestTrace read_request_trace(const std::string& path, RequestFormat format, bool skip_failed) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open the request trace: " + std::strerror(errno));
  RequestTrace t;
  std::string text;
  int64_t line = 0;
  // Header: the first line.
  if (!std::getline(in, text)) bad(path, 1, expected_header(format), "an empty file");
  ++line;
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);  // UTF-8 byte-order mark
  const std::vector<std::string> header = split(text);
  std::optional<Columns> cols;
  if (format == RequestFormat::kAuto) {
    for (RequestFormat f : {RequestFormat::kMoesim, RequestFormat::kAzure, RequestFormat::kBurstGpt})
      if ((cols = columns_of(header, f))) break;
  } else {
    cols = columns_of(header, format);
  }
  if (!cols) bad(path, 1, expected_header(format), shown(text));
  t.format = cols->format;
  const bool azure = cols->format == RequestFormat::kAzure;
  double first = 0, previous = 0;
  bool any = false;
  while (std::getline(in, text)) {
    ++line;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.empty()) bad(path, line, "a request (a blank line is not one)", "an empty line");
    const std::vector<std::string> f = split(text);
    if (f.size() != cols->count)
      bad(path, line, std::to_string(cols->count) + " comma-separated columns as the header",
          std::to_string(f.size()) + " in " + shown(text) +
              (in.eof() ? " (the file ends here: truncated?)" : ""));
    const std::string& a = f[static_cast<std::size_t>(cols->arrival)];
    const auto when = azure ? datetime(a) : number(a);
    if (!when)
      bad(path, line,
          azure ? "TIMESTAMP a date and time YYYY-MM-DD HH:MM:SS[.fraction]" : "an arrival time in seconds",
          shown(a));
    if (!azure && *when < 0) bad(path, line, "an arrival time of at least 0 s", shown(a));
    if (any && *when < previous)
      bad(path, line,
          "arrival times that never decrease (the line before arrives at " + std::to_string(previous) + ")",
          shown(a));
    if (!any) first = *when;
    any = true;
    previous = *when;
    Request r;
    r.input_tokens = tokens(path, line, f[static_cast<std::size_t>(cols->input)], cols->input_name, 1);
    const std::string& o = f[static_cast<std::size_t>(cols->output)];
    if (cols->format == RequestFormat::kBurstGpt && number(o) == 0.0) {
      if (!skip_failed)
        bad(path, line,
            "Response tokens at least 1 (BurstGPT marks failed requests with 0: skip them with "
            "--skip-failed)",
            shown(o));
      ++t.skipped_failed;
      continue;
    }
    r.output_tokens = tokens(path, line, o, cols->output_name, 1);
    if (cols->cached >= 0) {
      r.cached_tokens = tokens(path, line, f[static_cast<std::size_t>(cols->cached)], "cached_tokens", 0);
      if (r.cached_tokens > r.input_tokens)
        bad(path, line, "cached_tokens at most input_tokens (" + std::to_string(r.input_tokens) + ")",
            std::to_string(r.cached_tokens));
    }
    if (cols->prefix >= 0) {
      // The shared prefix the cached tokens belong to: an integer id, or empty for none.
      const std::string& id = f[static_cast<std::size_t>(cols->prefix)];
      if (!id.empty()) {
        const auto v = number(id);
        if (!v || *v != std::floor(*v) || *v < 0 || *v > kMaxPrefixId)
          bad(path, line,
              "prefix_id an integer in [0, " + std::to_string(int64_t(kMaxPrefixId)) + "] or empty",
              shown(id));
        r.prefix = static_cast<int64_t>(*v);
      }
    }
    r.arrival_s = cols->format == RequestFormat::kMoesim ? *when : *when - first;
    t.requests.push_back(r);
  }
  if (in.bad()) throw IoError(path + ": read failed: " + std::strerror(errno));
  if (t.requests.empty())
    bad(path, line, "at least one request after the header",
        t.skipped_failed > 0 ? std::to_string(t.skipped_failed) + " failed requests only" : "none");
  return t;
}

LengthDist parse_length_dist(const std::string& text, const std::string& what) {
  const std::string expected =
      "a length distribution fixed:N, uniform:A:B (1 <= A <= B) or lognormal:MEDIAN:SIGMA (MEDIAN >= 1, "
      "SIGMA >= 0), token counts at most " +
      std::to_string(kMaxRequestTokens);
  const auto fail = [&]() -> LengthDist {
    throw ConfigError(what + ": expected " + expected + ", found \"" + text + "\"");
  };
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i)
    if (i == text.size() || text[i] == ':') parts.push_back(text.substr(start, i - start)), start = i + 1;
  std::vector<double> v;
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const auto x = number(parts[i]);
    if (!x) return fail();
    v.push_back(*x);
  }
  const double mx = double(kMaxRequestTokens);
  const auto whole = [&](double x) { return x == std::floor(x) && x >= 1 && x <= mx; };
  LengthDist d;
  if (parts[0] == "fixed" && v.size() == 1 && whole(v[0])) {
    d.kind = LengthDist::Kind::kFixed, d.a = v[0];
  } else if (parts[0] == "uniform" && v.size() == 2 && whole(v[0]) && whole(v[1]) && v[0] <= v[1]) {
    d.kind = LengthDist::Kind::kUniform, d.a = v[0], d.b = v[1];
  } else if (parts[0] == "lognormal" && v.size() == 2 && v[0] >= 1 && v[0] <= mx && v[1] >= 0 && v[1] <= 10) {
    d.kind = LengthDist::Kind::kLognormal, d.a = v[0], d.b = v[1];
  } else {
    return fail();
  }
  return d;
}

namespace {

int64_t draw_length(const LengthDist& d, SplitMix64& rng) {
  double x = d.a;
  switch (d.kind) {
    case LengthDist::Kind::kFixed:
      break;
    case LengthDist::Kind::kUniform:
      x = d.a + std::floor(uniform_open01(rng) * (d.b - d.a + 1));
      x = std::min(x, d.b);
      break;
    case LengthDist::Kind::kLognormal:
      x = std::round(d.a * std::exp(d.b * standard_normal(rng)));
      break;
  }
  return static_cast<int64_t>(std::clamp(x, 1.0, double(kMaxRequestTokens)));
}

}  // namespace

std::vector<Request> generate_requests(const RequestGeneratorSpec& spec) {
  if (!(spec.rate_per_s > 0) || !std::isfinite(spec.rate_per_s) || !(spec.cv > 0) ||
      !std::isfinite(spec.cv) || spec.requests < 1 ||
      !(spec.cached_fraction >= 0 && spec.cached_fraction <= 1) || spec.prefix_groups < 0 ||
      !(spec.prefix_zipf >= 0) || !std::isfinite(spec.prefix_zipf))
    throw ConfigError(
        "request generator: expected rate > 0, cv > 0, requests >= 1 and cached fraction in "
        "[0, 1], found rate " +
        std::to_string(spec.rate_per_s) + ", cv " + std::to_string(spec.cv) + ", requests " +
        std::to_string(spec.requests) + ", cached fraction " + std::to_string(spec.cached_fraction));
  SplitMix64 arrivals(spec.seed), lengths(spec.seed ^ 0x9E3779B97F4A7C15ULL),
      prefixes(spec.seed ^ 0xD1B54A32D192ED03ULL);
  // Zipf popularity of the shared prefixes: cumulative weights g^-s, g = 1..groups.
  std::vector<double> cdf;
  for (int64_t g = 1; g <= spec.prefix_groups; ++g)
    cdf.push_back((cdf.empty() ? 0.0 : cdf.back()) + std::pow(double(g), -spec.prefix_zipf));
  // Gamma(shape k, scale θ): mean kθ = 1 / rate, CV 1 / sqrt(k).
  const double shape = 1.0 / (spec.cv * spec.cv), scale = 1.0 / (spec.rate_per_s * shape);
  std::vector<Request> out;
  out.reserve(static_cast<std::size_t>(spec.requests));
  double t = 0;
  for (int64_t i = 0; i < spec.requests; ++i) {
    if (i > 0) t += scale * gamma_variate(arrivals, shape);
    Request r;
    r.arrival_s = t;
    r.input_tokens = draw_length(spec.input, lengths);
    r.output_tokens = draw_length(spec.output, lengths);
    r.cached_tokens = static_cast<int64_t>(std::floor(spec.cached_fraction * double(r.input_tokens)));
    if (!cdf.empty()) {
      const double u = (double(prefixes.next() >> 11) + 0.5) * (1.0 / 9007199254740992.0) * cdf.back();
      r.prefix = std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin();
      r.prefix = std::min<int64_t>(r.prefix, spec.prefix_groups - 1);
    }
    out.push_back(r);
  }
  return out;
}

std::string request_trace_csv(const std::vector<Request>& requests) {
  bool prefixes = false;
  for (const Request& r : requests) prefixes = prefixes || r.prefix >= 0;
  std::string s = prefixes ? "arrival_s,input_tokens,output_tokens,cached_tokens,prefix_id\n"
                           : "arrival_s,input_tokens,output_tokens,cached_tokens\n";
  char buf[128];
  for (const Request& r : requests) {
    std::snprintf(buf, sizeof buf, "%.17g,%lld,%lld,%lld", r.arrival_s,
                  static_cast<long long>(r.input_tokens), static_cast<long long>(r.output_tokens),
                  static_cast<long long>(r.cached_tokens));
    s += buf;
    if (prefixes) s += "," + (r.prefix >= 0 ? std::to_string(r.prefix) : std::string());
    s += "\n";
  }
  return s;
}

RequestStats request_stats(const std::vector<Request>& requests) {
  RequestStats s;
  s.requests = static_cast<int64_t>(requests.size());
  if (requests.empty()) return s;
  std::vector<double> in, out;
  in.reserve(requests.size()), out.reserve(requests.size());
  double cached = 0, input = 0;
  std::vector<int64_t> ids;
  for (const Request& r : requests) {
    in.push_back(double(r.input_tokens)), out.push_back(double(r.output_tokens));
    cached += double(r.cached_tokens), input += double(r.input_tokens);
    if (r.prefix >= 0) ids.push_back(r.prefix);
  }
  s.with_prefix = static_cast<int64_t>(ids.size());
  std::sort(ids.begin(), ids.end());
  s.prefixes = static_cast<int64_t>(std::unique(ids.begin(), ids.end()) - ids.begin());
  s.duration_s = requests.back().arrival_s - requests.front().arrival_s;
  if (requests.size() > 1 && s.duration_s > 0) {
    s.rate_per_s = double(requests.size() - 1) / s.duration_s;
    const double mean = s.duration_s / double(requests.size() - 1);
    double var = 0;
    for (std::size_t i = 1; i < requests.size(); ++i) {
      const double g = requests[i].arrival_s - requests[i - 1].arrival_s - mean;
      var += g * g;
    }
    s.interarrival_cv = std::sqrt(var / double(requests.size() - 1)) / mean;
  }
  const auto pct = [](std::vector<double>& v, double p) {
    const std::size_t n = v.size();
    std::size_t k = static_cast<std::size_t>(std::ceil(p * double(n)));
    k = std::clamp<std::size_t>(k, 1, n);
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k - 1), v.end());
    return v[k - 1];
  };
  const auto fill = [&](std::vector<double>& v, RequestStats::Lengths& l) {
    double sum = 0;
    for (double x : v) sum += x;
    l.mean = sum / double(v.size());
    l.p50 = pct(v, 0.5), l.p90 = pct(v, 0.9), l.p99 = pct(v, 0.99);
    l.max = *std::max_element(v.begin(), v.end());
  };
  fill(in, s.input);
  fill(out, s.output);
  s.cached_share = input > 0 ? cached / input : 0;
  return s;
}

}  // namespace moesim::traces
