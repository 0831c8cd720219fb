#pragma once
/// \file The moesim routing trace format (docs/trace-format.md): JSON Lines, one header object, then
/// one record per (step, MoE layer), either token level (the experts of every token) or count level
/// (slots per source rank and expert). TraceWriter writes it; TraceReader streams it back one
/// RoutingSample at a time without holding more than one line in memory.

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "traces/routing_sample.hpp"

namespace moesim::traces {

/// The value of the header's "format" key.
inline constexpr const char* kTraceFormatName = "moesim-routing-trace";
/// The only format version this code reads and writes.
inline constexpr int kTraceFormatVersion = 1;

/// The first line of a trace: the shape every record must have.
struct TraceHeader {
  int version = kTraceFormatVersion;
  int experts = 0;    ///< logical experts; expert ids are in [0, experts)
  int top_k = 0;      ///< entries per token in token-level records (-1 marks an unused entry)
  int sources = 1;    ///< source ranks; count rows and token source ids are in [0, sources)
  int layers = 0;     ///< MoE layers; record layers are in [0, layers)
  std::string model;  ///< optional free text (a model name), empty when absent
  std::string note;   ///< optional free text (provenance), empty when absent
};

/// Fills `sample.counts` (sources × experts) from its token-level detail: every entry of
/// token_experts other than -1 adds one slot to (source of the token, expert). The source of token t is
/// token_source[t], or, when token_source is empty, floor(t · sources / tokens) (tokens split into
/// equal consecutive runs). Also sets `tokens` to token_experts.size() / top_k. Requires top_k > 0 and
/// in-range ids (checked by MOESIM_ASSERT: callers validate user input first).
void counts_from_tokens(RoutingSample& sample);

/// Writes a trace: the header at construction, then one record per write call, each on its own line.
/// Records must come in non-decreasing step order with at most one record per (step, layer).
class TraceWriter {
 public:
  /// Creates `path` and writes the header. Throws IoError if the file already exists (traces are never
  /// overwritten) or cannot be created, ConfigError if the header is inconsistent (experts < 1, top_k
  /// outside [1, experts], sources < 1, layers < 1).
  TraceWriter(const std::string& path, const TraceHeader& header);
  /// Flushes and closes; errors at this point are lost, call close() to see them.
  ~TraceWriter();
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  /// Writes a token-level record when the sample has token_experts, else a count-level record.
  /// A token-level record stores tokens, sources and weights only, so the sample's counts must equal
  /// those counts_from_tokens derives and dropped and padded must be 0; otherwise ConfigError (use
  /// write_counts). Also ConfigError if the sample's shape differs from the header, its layer is out of
  /// range, its step goes backwards or repeats a (step, layer), or a weight is not finite.
  void write(const RoutingSample& sample);
  /// Writes a count-level record (counts, tokens, dropped, padded), ignoring any token-level detail.
  /// Same shape checks as write().
  void write_counts(const RoutingSample& sample);
  /// Flushes and closes the file. Throws IoError if writing failed. Further writes are errors.
  void close();

  /// The header written on line 1.
  const TraceHeader& header() const { return header_; }
  /// Records written so far.
  int64_t records() const { return records_; }

 private:
  void check_shape(const RoutingSample& sample);
  void put(const std::string& line);

  std::string path_;
  TraceHeader header_;
  std::FILE* file_ = nullptr;
  int64_t records_ = 0;
  int last_step_ = -1;
  std::vector<char> layer_seen_;  ///< layers already written for last_step_
};

/// Streams a trace: the header is read and checked at construction, then next() parses one line per
/// call. Only the current line is held in memory, so traces of any length can be read.
///
/// Every malformed or inconsistent line throws, naming the file, its line number, what was expected
/// and what was found ("FILE:LINE: POINTER: expected ..., found ..."):
///   ParseError  — invalid JSON, a truncated last line, an empty line, a missing or foreign header;
///   ConfigError — well-formed JSON that breaks the header's shape: unknown keys, wrong types, an
///                 expert id ≥ experts or < -1, a layer outside [0, layers), a token with other than
///                 top_k entries, count rows ≠ sources or a row ≠ experts long, negative counts, source
///                 ids outside [0, sources), weights of the wrong shape, a step smaller than the one
///                 before, a (step, layer) seen twice, an unsupported version.
/// Nothing is skipped silently.
class TraceReader {
 public:
  /// Opens `path` and reads its header. Throws IoError if the file cannot be opened.
  explicit TraceReader(const std::string& path);
  TraceReader(const TraceReader&) = delete;
  TraceReader& operator=(const TraceReader&) = delete;

  /// Reads the next record into `sample` (every field overwritten). Returns false at the end of the
  /// file. Token-level records give token_experts (and token_source, token_weights when present) and
  /// the counts derived from them (counts_from_tokens); count-level records give counts only.
  bool next(RoutingSample& sample);

  /// The header read from line 1.
  const TraceHeader& header() const { return header_; }
  /// The 1-based line number of the last line read (1 after the constructor).
  int64_t line() const { return line_; }
  /// The file being read.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ifstream in_;
  TraceHeader header_;
  int64_t line_ = 0;
  int last_step_ = -1;
  std::vector<char> layer_seen_;  ///< layers already read for last_step_
  std::string text_;              ///< the current line (reused: no per-record allocation of the buffer)
};

}  // namespace moesim::traces
