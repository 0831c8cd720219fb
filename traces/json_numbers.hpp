#pragma once
/// \file Strict numbers from JSON routing data (trace records, Megatron router traces, placement load
/// matrices). nlohmann::json keeps an integer beyond 64 bits only as a rounded double and an unsigned
/// one above 2^63 wraps when read as int64_t, so range checks made after the fact report the wrong
/// number ("found -1" for 18446744073709551615). JsonDoc keeps the literal text of every number the
/// parsed value cannot reproduce, and the readers here check ranges before any conversion and quote
/// what the file says.

#include <cstdint>
#include <map>
#include <string>

#include "scenarios/json_reader.hpp"

namespace moesim::traces {

/// The largest count of routed slots (and of tokens, dropped or padded slots) a record may hold:
/// 2^53, so that every count and every sum of counts is exact in the double arithmetic the engines
/// use, and no sum over a record overflows int64_t.
inline constexpr int64_t kMaxSlots = int64_t{1} << 53;

/// A parsed JSON text and the literal text of its numbers that the value cannot give back exactly:
/// integers beyond the 64-bit range (kept as doubles) and floats of magnitude at least 2^53, keyed by
/// JSON pointer ("/counts/0/3").
struct JsonDoc {
  Json value;
  std::map<std::string, std::string> literals;
};

/// Why a text is not JSON: the byte offset (0-based) where parsing stopped and what was found there.
struct JsonSyntax {
  std::size_t byte = 0;
  std::string found;  ///< "a syntax error ..." or "the number 1e400, beyond the range of a double"
};

/// Parses `text` into `doc`. Returns false and fills `error` on a syntax error or a number a double
/// cannot hold (nlohmann refuses those with an exception of its own); never throws for bad input.
bool parse_json_doc(const std::string& text, JsonDoc& doc, JsonSyntax& error);

/// Converts a byte offset of `text` to "LINE:COLUMN" (both 1-based).
std::string line_column(const std::string& text, std::size_t byte);

/// "the number 18446744073709551616" (the literal as written) for a number, describe_json otherwise.
std::string describe_value(const JsonDoc& doc, const std::string& pointer, const Json& v);

/// An integer in [lo, hi] at `pointer` of `doc` (v is the value there). Throws ConfigError
/// "SRC: POINTER: expected WHAT, an integer in [lo, hi], found ..." for a fraction, a number out of
/// range (quoted as written) or anything else.
int64_t json_integer(const JsonDoc& doc, const Json& v, const std::string& src, const std::string& pointer,
                     int64_t lo, int64_t hi, const std::string& what);

/// A finite number in [lo, hi] (an integer or not). Throws ConfigError "SRC: POINTER: expected a number
/// in [lo, hi] (WHAT), found ..." otherwise.
double json_number(const JsonDoc& doc, const Json& v, const std::string& src, const std::string& pointer,
                   int64_t lo, int64_t hi, const std::string& what);

/// "[lo, hi]" with 2^53 written as such, for messages.
std::string range_text(int64_t lo, int64_t hi);

}  // namespace moesim::traces
