#pragma once
/// \file Quantities with units, parsed in one place. Every physical quantity in a scenario is a string
/// with a unit ("50GBps", "3.7us", "989TFlops", "80GiB"); this file turns them into SI base values.

#include <string>
#include <string_view>

namespace moesim {

/// The physical dimension a quantity string must have.
enum class Dimension {
  kBandwidth,  ///< bytes per second ("50GBps", "400Gbps", "1.5TBps", "25GiBps")
  kTime,       ///< seconds ("3.7us", "10ms", "2s", "1h")
  kFlopRate,   ///< floating-point operations per second ("989TFlops", "1.98PFlops")
  kBytes,      ///< bytes ("80GiB", "141GB", "512MiB")
};

/// Human name of a dimension with examples, used in error messages.
std::string_view dimension_hint(Dimension d);

/// Parses "<number><unit>" (optional space in between) into base SI units: bytes/s, s, flop/s, bytes.
/// Decimal prefixes are powers of 1000, binary ones (Ki, Mi, Gi, Ti) powers of 1024; a lower-case
/// "bps" means bits per second. Throws ParseError naming `source` and `pointer` when the number is
/// missing, negative, not finite, or the unit is not one of the dimension's units.
double parse_quantity(std::string_view text, Dimension dim, const std::string& source = "<quantity>",
                      const std::string& pointer = "");

/// Formats a value in base SI units with a readable unit ("49.8 GB/s", "3.70 us", "80.0 GiB").
std::string format_quantity(double value, Dimension dim);

/// Formats seconds with an adaptive unit ("19.93 s", "1.13 ms", "4.20 us").
std::string format_seconds(double seconds);

}  // namespace moesim
