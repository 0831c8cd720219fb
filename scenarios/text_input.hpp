#pragma once
// Reading input files with a bound: a file or line larger than any real input (a device such as
// /dev/zero, a binary file given by mistake) ends with a clear error instead of exhausting memory.
#include <cstddef>
#include <cstdint>
#include <istream>
#include <string>

namespace moesim {

// The largest whole JSON document read (scenario, catalog entry, calibration, Hugging Face config,
// placement weights, accuracy tables): far above any real one (the largest bundled file is under 1 MiB).
inline constexpr std::size_t kMaxDocumentBytes = std::size_t{256} << 20;
// The longest line of a line-based input (a trace record: one step and layer of one batch, every token's
// experts; a count-table or CSV row): a record of 4 million tokens with top-8 routing fits.
inline constexpr std::size_t kMaxLineBytes = std::size_t{256} << 20;

// "256 MiB": a byte bound as a person reads it.
std::string describe_bytes(std::size_t bytes);

enum class TextRead { kOk, kCannotOpen, kDirectory, kReadError, kTooLarge };

struct TextFile {
  TextRead status = TextRead::kOk;
  std::string text;  // whole file when kOk
  int error = 0;     // errno when kCannotOpen or kReadError
};

// Reads the whole file, stopping once more than `max_bytes` have been read (kTooLarge).
TextFile read_text_file(const std::string& path, std::size_t max_bytes = kMaxDocumentBytes);

// "none (No such file or directory)", "a directory", "a read error", "more than 256 MiB": what was
// found, for the "expected ..., found ..." message of a failed read.
std::string describe_failed_read(const TextFile& f, std::size_t max_bytes = kMaxDocumentBytes);

enum class LineRead { kLine, kEnd, kTooLong };

// Reads one line (without its '\n') of at most `max_bytes` bytes, like std::getline: the stream's eof
// flag is set when the line was the last and ended without a newline; kEnd when nothing was left.
// kTooLong leaves the stream positioned inside the overlong line.
LineRead read_line(std::istream& in, std::string& line, std::size_t max_bytes = kMaxLineBytes);

}  // namespace moesim
