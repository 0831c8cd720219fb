#include "scenarios/units.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "scenarios/error.hpp"

namespace moesim {
namespace {

struct Unit {
  std::string_view name;
  double factor;
};

// Units are matched exactly (case-sensitive) first; Flops units are also accepted case-insensitively
// because "TFLOPS" and "TFlops" are both common in datasheets.
constexpr std::array kBandwidthUnits{
    Unit{"Bps", 1.0},
    Unit{"kBps", 1e3},
    Unit{"KBps", 1e3},
    Unit{"MBps", 1e6},
    Unit{"GBps", 1e9},
    Unit{"TBps", 1e12},
    Unit{"KiBps", 1024.0},
    Unit{"MiBps", 1048576.0},
    Unit{"GiBps", 1073741824.0},
    Unit{"TiBps", 1099511627776.0},
    Unit{"bps", 0.125},
    Unit{"kbps", 125.0},
    Unit{"Kbps", 125.0},
    Unit{"Mbps", 1.25e5},
    Unit{"Gbps", 1.25e8},
    Unit{"Tbps", 1.25e11},
    Unit{"B/s", 1.0},
    Unit{"GB/s", 1e9},
    Unit{"TB/s", 1e12},
    Unit{"MB/s", 1e6},
};
constexpr std::array kTimeUnits{
    Unit{"s", 1.0},    Unit{"ms", 1e-3},  Unit{"us", 1e-6},  Unit{"ns", 1e-9},
    Unit{"ps", 1e-12}, Unit{"min", 60.0}, Unit{"h", 3600.0}, Unit{"d", 86400.0},
};
constexpr std::array kFlopUnits{
    Unit{"flops", 1.0},  Unit{"kflops", 1e3},  Unit{"mflops", 1e6},
    Unit{"gflops", 1e9}, Unit{"tflops", 1e12}, Unit{"pflops", 1e15},
};
constexpr std::array kByteUnits{
    Unit{"B", 1.0},
    Unit{"kB", 1e3},
    Unit{"KB", 1e3},
    Unit{"MB", 1e6},
    Unit{"GB", 1e9},
    Unit{"TB", 1e12},
    Unit{"KiB", 1024.0},
    Unit{"MiB", 1048576.0},
    Unit{"GiB", 1073741824.0},
    Unit{"TiB", 1099511627776.0},
};

std::string lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

template <std::size_t N>
bool lookup(const std::array<Unit, N>& units, std::string_view u, bool case_insensitive, double& f) {
  for (const auto& unit : units) {
    if (unit.name == u || (case_insensitive && unit.name == lower(u))) {
      f = unit.factor;
      return true;
    }
  }
  return false;
}

}  // namespace

std::string_view dimension_hint(Dimension d) {
  switch (d) {
    case Dimension::kBandwidth:
      return "a bandwidth such as \"50GBps\", \"400Gbps\" or \"25GiBps\"";
    case Dimension::kTime:
      return "a time such as \"3.7us\", \"10ms\" or \"2s\"";
    case Dimension::kFlopRate:
      return "a compute rate such as \"989TFlops\"";
    case Dimension::kBytes:
      return "a size such as \"80GiB\" or \"141GB\"";
  }
  return "a quantity";
}

double parse_quantity(std::string_view text, Dimension dim, const std::string& source,
                      const std::string& pointer) {
  auto fail = [&](const std::string& why) -> double {
    throw ParseError(located_message(source, pointer, std::string(dimension_hint(dim)),
                                     "\"" + std::string(text) + "\"" + why));
  };
  std::size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  std::size_t start = i;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.' ||
                             text[i] == 'e' || text[i] == 'E' || text[i] == '+' || text[i] == '-')) {
    // An 'e' followed by a non-digit is the start of a unit (e.g. none today, but be strict).
    if ((text[i] == 'e' || text[i] == 'E') &&
        (i + 1 >= text.size() || !(std::isdigit(static_cast<unsigned char>(text[i + 1])) ||
                                   text[i + 1] == '-' || text[i + 1] == '+')))
      break;
    ++i;
  }
  if (i == start) return fail(" (no number)");
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data() + start, text.data() + i, value);
  if (ec != std::errc() || ptr != text.data() + i) return fail(" (bad number)");
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  std::string_view unit = text.substr(i);
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.back()))) unit.remove_suffix(1);
  if (unit.empty()) return fail(" (no unit)");
  double factor = 0;
  bool ok = false;
  switch (dim) {
    case Dimension::kBandwidth:
      ok = lookup(kBandwidthUnits, unit, false, factor);
      break;
    case Dimension::kTime:
      ok = lookup(kTimeUnits, unit, false, factor);
      break;
    case Dimension::kFlopRate:
      ok = lookup(kFlopUnits, unit, true, factor);
      break;
    case Dimension::kBytes:
      ok = lookup(kByteUnits, unit, false, factor);
      break;
  }
  if (!ok) return fail(" (unknown unit \"" + std::string(unit) + "\")");
  if (!std::isfinite(value) || value < 0) return fail(" (must be finite and non-negative)");
  return value * factor;
}

std::string format_quantity(double v, Dimension dim) {
  char buf[64];
  switch (dim) {
    case Dimension::kBandwidth:
      if (v >= 1e12)
        std::snprintf(buf, sizeof buf, "%.2f TB/s", v / 1e12);
      else
        std::snprintf(buf, sizeof buf, "%.1f GB/s", v / 1e9);
      return buf;
    case Dimension::kTime:
      return format_seconds(v);
    case Dimension::kFlopRate:
      std::snprintf(buf, sizeof buf, "%.1f TFLOP/s", v / 1e12);
      return buf;
    case Dimension::kBytes:
      std::snprintf(buf, sizeof buf, "%.2f GiB", v / 1073741824.0);
      return buf;
  }
  return "?";
}

std::string format_seconds(double s) {
  char buf[64];
  double a = std::fabs(s);
  if (a >= 1.0 || a == 0.0)
    std::snprintf(buf, sizeof buf, "%.3f s", s);
  else if (a >= 1e-3)
    std::snprintf(buf, sizeof buf, "%.3f ms", s * 1e3);
  else if (a >= 1e-6)
    std::snprintf(buf, sizeof buf, "%.3f us", s * 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.1f ns", s * 1e9);
  return buf;
}

}  // namespace moesim
