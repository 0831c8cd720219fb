#pragma once
/// \file Request traces for serving: one request per line with its arrival time and its input and output
/// token counts, read from the formats users have:
///
/// | format | header (columns in any order; others ignored) | arrival |
/// |---|---|---|
/// | `moesim` | `arrival_s,input_tokens,output_tokens[,cached_tokens]` | seconds from the trace start |
/// | `azure` | `TIMESTAMP,ContextTokens,GeneratedTokens` (Azure LLM inference traces 2023 and 2024, github
/// Azure/AzurePublicDataset) | a date and time `YYYY-MM-DD HH:MM:SS[.fraction]`, taken relative to the first
/// row | | `burstgpt` | `Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type` (github
/// HPMLL/BurstGPT) | seconds from the trace start |
///
/// Every row is checked; a bad one throws ParseError naming the file, the line, what was expected and
/// what was found: a wrong column count, a number that does not parse, a negative or decreasing arrival
/// time, a token count below 1 or above kMaxRequestTokens, cached tokens outside [0, input], a header of
/// no known format, a file with no request. Nothing is skipped silently: BurstGPT's failed requests (0
/// response tokens) are an error unless `skip_failed`, and then they are counted in the result.

#include <cstdint>
#include <string>
#include <vector>

#include "scenarios/kinds.hpp"

namespace moesim::traces {

/// Largest input or output length accepted, tokens (2^24: beyond every published context window).
inline constexpr int64_t kMaxRequestTokens = int64_t{1} << 24;

/// The largest prefix id a request trace may name (exact in a double).
constexpr double kMaxPrefixId = 9007199254740991.0;  // 2^53 - 1

struct Request {
  double arrival_s = 0;       ///< seconds from the trace's first request (the moesim format: as written)
  int64_t input_tokens = 0;   ///< prompt tokens
  int64_t output_tokens = 0;  ///< generated tokens
  int64_t cached_tokens = 0;  ///< prompt tokens served from a prefix cache
  int64_t prefix = -1;  ///< the shared prefix (e.g. a system prompt) the cached tokens belong to; -1: unknown
};

using moesim::RequestFormat;  // scenarios/kinds.hpp: "auto", "moesim", "azure", "burstgpt"
/// The format named `name` (one of request_formats()'s); throws ConfigError naming `what` otherwise.
RequestFormat request_format(const std::string& name, const std::string& what);

struct RequestTrace {
  RequestFormat format = RequestFormat::kMoesim;  ///< the format read (detected when asked for auto)
  std::vector<Request> requests;                  ///< in file order (arrival times never decrease)
  int64_t skipped_failed = 0;  ///< BurstGPT rows with 0 response tokens, skipped on request
};

/// Reads the request trace at `path` (see the file comment). Throws IoError when it cannot be read.
RequestTrace read_request_trace(const std::string& path, RequestFormat format = RequestFormat::kAuto,
                                bool skip_failed = false);

/// A request length distribution: "fixed:N", "uniform:A:B" (integers A..B) or "lognormal:MEDIAN:SIGMA"
/// (exp of a normal with that median and log-space standard deviation, rounded), every draw clamped to
/// [1, kMaxRequestTokens].
struct LengthDist {
  enum class Kind { kFixed, kUniform, kLognormal };
  Kind kind = Kind::kFixed;
  double a = 1, b = 1;  ///< fixed: a; uniform: a..b; lognormal: median a, sigma b
};
/// Parses `text`; throws ConfigError naming `what` (e.g. "--input-tokens") with what was expected.
LengthDist parse_length_dist(const std::string& text, const std::string& what);

/// Synthetic requests: inter-arrival gaps from a gamma distribution with mean 1 / rate and coefficient of
/// variation cv (cv 1: exponential gaps, Poisson arrivals; above 1: burstier; below 1: more regular),
/// lengths from their distributions, and floor(cached_fraction · input) prefix-cached tokens. The first
/// request arrives at 0. Every draw comes from a SplitMix64 stream seeded with `seed`: the same spec
/// gives the same requests, bit for bit.
struct RequestGeneratorSpec {
  int64_t requests = 1000;
  double rate_per_s = 1;
  double cv = 1;
  LengthDist input{LengthDist::Kind::kFixed, 1024, 0};
  LengthDist output{LengthDist::Kind::kFixed, 256, 0};
  double cached_fraction = 0;
  uint64_t seed = 1;
  /// Shared prefixes: each request's cached tokens belong to one of `prefix_groups` prefixes, drawn with
  /// Zipf popularity of exponent `prefix_zipf` (0: uniform) from a stream of its own (the other draws do
  /// not change). 0: no prefix ids.
  int64_t prefix_groups = 0;
  double prefix_zipf = 1.0;
};
std::vector<Request> generate_requests(const RequestGeneratorSpec& spec);

/// The moesim request-trace CSV of `requests` (header arrival_s,input_tokens,output_tokens,cached_tokens,
/// and prefix_id when some request names its prefix;
/// arrival times with 17 significant digits, so read_request_trace gives them back exactly).
std::string request_trace_csv(const std::vector<Request>& requests);

/// Summary statistics of a trace.
struct RequestStats {
  int64_t requests = 0;
  double duration_s = 0;       ///< last arrival − first arrival
  double rate_per_s = 0;       ///< (requests − 1) / duration (0 for one request or zero duration)
  double interarrival_cv = 0;  ///< coefficient of variation of the gaps (1 for Poisson arrivals)
  struct Lengths {
    double mean = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;
  };
  Lengths input, output;    ///< tokens
  double cached_share = 0;  ///< cached tokens / input tokens, over the trace
  int64_t prefixes = 0;     ///< distinct shared prefixes the requests name (prefix_id), 0 when none
  int64_t with_prefix = 0;  ///< requests that name a shared prefix
};
/// Percentiles by the nearest rank (the smallest value with at least p of the requests at or below it).
RequestStats request_stats(const std::vector<Request>& requests);

}  // namespace moesim::traces
