#pragma once
/// \file The moesim routing trace format (docs/trace-format.md): JSON Lines, one header object, one
/// record per (step, MoE layer), either token level (the experts of every token) or count level
/// (slots per source rank and expert), then an end record that counts the records, so a file cut
/// anywhere (even between two records) is told from a whole one. TraceWriter writes it; TraceReader
/// streams it back one RoutingSample at a time without holding more than one line in memory.

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "traces/routing_sample.hpp"

namespace moesim::traces {

/// The value of the header's "format" key.
inline constexpr const char* kTraceFormatName = "moesim-routing-trace";
/// The format version this code writes, and the only one it reads (version 1 had no end record; it is
/// read only to convert it, see upgrade_trace).
inline constexpr int kTraceFormatVersion = 2;
/// Bounds on a header, so that no header can ask for more memory than a real cluster's trace needs:
/// experts per layer, source ranks, MoE layers, and sources × experts (the cells of a count record).
inline constexpr int kMaxTraceExperts = 1 << 16;
inline constexpr int kMaxTraceSources = 1 << 20;
inline constexpr int kMaxTraceLayers = 1 << 20;
inline constexpr int64_t kMaxTraceCells = int64_t{1} << 24;

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

/// Writes a trace: the header at construction, then one record per write call, each on its own line,
/// and the end record at close(). Records must come in non-decreasing step order with at most one
/// record per (step, layer). A writer destroyed before close() (an error while writing) removes the
/// file it created, so no cut trace is left behind.
class TraceWriter {
 public:
  /// Creates `path` and writes the header. Throws IoError if the file already exists (traces are never
  /// overwritten) or cannot be created, ConfigError if the header is inconsistent (version other than
  /// kTraceFormatVersion, experts outside [1, kMaxTraceExperts], top_k outside [1, experts], sources
  /// outside [1, kMaxTraceSources], layers outside [1, kMaxTraceLayers], sources × experts above
  /// kMaxTraceCells).
  TraceWriter(const std::string& path, const TraceHeader& header);
  /// Without close(): closes and removes the file (it has no end record, so no reader would take it).
  ~TraceWriter();
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  /// Writes a token-level record when the sample has token_experts, else a count-level record.
  /// A token-level record stores tokens, sources and weights only, so the sample's counts must equal
  /// those counts_from_tokens derives and dropped and padded must be 0; otherwise ConfigError (use
  /// write_counts). Also ConfigError if the sample's shape differs from the header, its layer is out of
  /// range, its step goes backwards or repeats a (step, layer), a weight is not finite, a token names
  /// one expert twice, or no slot is routed at all (a record must carry some routing).
  void write(const RoutingSample& sample);
  /// Writes a count-level record (counts, tokens, dropped, padded and unfilled = tokens · top_k −
  /// Σcounts − dropped, the entries a dynamic policy left empty), ignoring any token-level detail.
  /// Same checks as write(), and ConfigError if a count, tokens, dropped or padded is outside
  /// [0, kMaxSlots] or Σcounts + dropped exceeds tokens · top_k.
  void write_counts(const RoutingSample& sample);
  /// Writes the end record, flushes and closes the file. Throws IoError if writing failed. Further
  /// writes are errors.
  void close();

  /// The header written on line 1.
  const TraceHeader& header() const { return header_; }
  /// Records written so far.
  int64_t records() const { return records_; }

 private:
  void check_shape(const RoutingSample& sample);
  void put(const std::string& line);
  void discard();

  std::string path_;
  TraceHeader header_;
  std::FILE* file_ = nullptr;
  int64_t records_ = 0;
  int last_step_ = -1;
  std::vector<char> layer_seen_;  ///< layers already written for last_step_
};

/// Which format versions a TraceReader takes.
enum class TraceVersions {
  current,        ///< kTraceFormatVersion only; version 1 is refused with how to convert it
  also_version1,  ///< also version 1 (no end record: the end of the file ends it), for upgrade_trace
};

/// Streams a trace: the header is read and checked at construction, then next() parses one line per
/// call. Only the current line is held in memory, so traces of any length can be read.
///
/// Every malformed or inconsistent line throws, naming the file, its line number, what was expected
/// and what was found ("FILE:LINE: POINTER: expected ..., found ..."; numbers quoted as written):
///   ParseError  — invalid JSON, a truncated last line, an empty line, a missing or foreign header, a
///                 file that ends without its end record (cut short, even between two records), an end
///                 record whose count differs from the records read, a line after the end record;
///   ConfigError — well-formed JSON that breaks the header's shape: unknown keys, wrong types, an
///                 expert id ≥ experts or < -1, a token naming one expert twice, a layer outside
///                 [0, layers), a token with other than top_k entries, count rows ≠ sources or a row ≠
///                 experts long, counts outside [0, kMaxSlots] or summing above it, tokens · top_k ≠
///                 Σcounts + dropped + unfilled, a record routing no slot at all, source ids outside
///                 [0, sources), weights of the wrong shape, a step smaller than the one before, a
///                 (step, layer) seen twice, an unsupported version (version 1: with how to convert).
/// Nothing is skipped silently.
class TraceReader {
 public:
  /// Opens `path` and reads its header. Throws IoError if the file cannot be opened.
  explicit TraceReader(const std::string& path, TraceVersions versions = TraceVersions::current);
  TraceReader(const TraceReader&) = delete;
  TraceReader& operator=(const TraceReader&) = delete;

  /// Reads the next record into `sample` (every field overwritten). Returns false at the end record
  /// (after checking that the file ends there). Token-level records give token_experts (and
  /// token_source, token_weights when present) and the counts derived from them (counts_from_tokens);
  /// count-level records give counts only.
  bool next(RoutingSample& sample);
  /// Records read so far.
  int64_t records() const { return records_; }

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
  int64_t records_ = 0;
  bool ended_ = false;
  int last_step_ = -1;
  std::vector<char> layer_seen_;  ///< layers already read for last_step_
  std::string text_;              ///< the current line (reused: no per-record allocation of the buffer)
  bool version1_ = false;         ///< reading a version 1 file (no end record)

  bool end_of_file();
};

/// Converts a version 1 trace (no end record) to the current version: reads `in` with every check of
/// the current reader that version 1 can support (its count records may omit tokens: they are taken
/// as ⌊(Σcounts + dropped) / top_k⌋, as version 1 defined), and writes `out` with TraceWriter. A
/// version 1 file cut between two records cannot be detected; the caller should say so. Returns the
/// records written. Throws as TraceReader and TraceWriter do; `out` is not left behind on an error.
int64_t upgrade_trace(const std::string& in, const std::string& out);

}  // namespace moesim::traces
