// Tests of scenarios/units: every unit of every dimension, decimal vs binary prefixes, bits vs bytes,
// the error messages for malformed quantities, and the formatting helpers. Expected values are worked
// out by hand in the comments (e.g. 400 Gbit/s = 400e9 / 8 bytes/s = 50e9 bytes/s).

#include "scenarios/units.hpp"

#include <gtest/gtest.h>

#include <string>

#include "scenarios/error.hpp"

namespace moesim {
namespace {

constexpr double kKi = 1024.0;
constexpr double kMi = 1024.0 * 1024.0;
constexpr double kGi = 1024.0 * 1024.0 * 1024.0;
constexpr double kTi = 1024.0 * 1024.0 * 1024.0 * 1024.0;

double bw(const char* s) {
  return parse_quantity(s, Dimension::kBandwidth);
}
double tm(const char* s) {
  return parse_quantity(s, Dimension::kTime);
}
double fl(const char* s) {
  return parse_quantity(s, Dimension::kFlopRate);
}
double by(const char* s) {
  return parse_quantity(s, Dimension::kBytes);
}

// ------------------------------------------------------------------------------------------ bandwidth

TEST(ParseQuantity, BandwidthDecimalBytes) {
  EXPECT_DOUBLE_EQ(bw("1Bps"), 1.0);
  EXPECT_DOUBLE_EQ(bw("3kBps"), 3000.0);
  EXPECT_DOUBLE_EQ(bw("3KBps"), 3000.0);
  EXPECT_DOUBLE_EQ(bw("7MBps"), 7'000'000.0);
  EXPECT_DOUBLE_EQ(bw("50GBps"), 50'000'000'000.0);
  EXPECT_DOUBLE_EQ(bw("1.5TBps"), 1'500'000'000'000.0);
}

TEST(ParseQuantity, BandwidthBinaryBytes) {
  EXPECT_DOUBLE_EQ(bw("2KiBps"), 2048.0);
  EXPECT_DOUBLE_EQ(bw("3MiBps"), 3.0 * 1048576.0);
  EXPECT_DOUBLE_EQ(bw("25GiBps"), 26'843'545'600.0);  // 25 * 1073741824
  EXPECT_DOUBLE_EQ(bw("1TiBps"), 1'099'511'627'776.0);
  // Binary and decimal differ: 1 GiB/s is 7.37% more than 1 GB/s.
  EXPECT_GT(bw("1GiBps"), bw("1GBps"));
}

TEST(ParseQuantity, BandwidthBits) {
  // Lower-case 'b' is bits: divide by 8.
  EXPECT_DOUBLE_EQ(bw("8bps"), 1.0);
  EXPECT_DOUBLE_EQ(bw("8kbps"), 1000.0);
  EXPECT_DOUBLE_EQ(bw("8Kbps"), 1000.0);
  EXPECT_DOUBLE_EQ(bw("100Mbps"), 12'500'000.0);
  EXPECT_DOUBLE_EQ(bw("400Gbps"), 50e9);  // a 400G NIC moves 50 GB/s
  EXPECT_DOUBLE_EQ(bw("200Gbps"), 25e9);
  EXPECT_DOUBLE_EQ(bw("1.6Tbps"), 200e9);
  // Bits and bytes with the same prefix differ by exactly 8.
  EXPECT_DOUBLE_EQ(bw("50GBps") / bw("50Gbps"), 8.0);
}

TEST(ParseQuantity, BandwidthSlashSpelling) {
  EXPECT_DOUBLE_EQ(bw("9B/s"), 9.0);
  EXPECT_DOUBLE_EQ(bw("5MB/s"), 5e6);
  EXPECT_DOUBLE_EQ(bw("50GB/s"), 50e9);
  EXPECT_DOUBLE_EQ(bw("3TB/s"), 3e12);
}

TEST(ParseQuantity, SpacesAroundNumberAndUnit) {
  EXPECT_DOUBLE_EQ(bw("50 GBps"), 50e9);
  EXPECT_DOUBLE_EQ(bw("  50GBps  "), 50e9);
  EXPECT_DOUBLE_EQ(bw("\t400 Gbps\n"), 50e9);
  EXPECT_DOUBLE_EQ(tm("3.7 us"), 3.7e-6);
  EXPECT_DOUBLE_EQ(by("80 GiB"), 80.0 * kGi);
}

TEST(ParseQuantity, BandwidthUnitsAreCaseSensitive) {
  // "GBps" (bytes) and "Gbps" (bits) mean different things, so no case folding for bandwidth.
  EXPECT_THROW(bw("50gbps"), ParseError);
  EXPECT_THROW(bw("50GBPS"), ParseError);
  EXPECT_THROW(bw("50gBps"), ParseError);
}

// ----------------------------------------------------------------------------------------------- time

TEST(ParseQuantity, TimeUnits) {
  EXPECT_DOUBLE_EQ(tm("2s"), 2.0);
  EXPECT_DOUBLE_EQ(tm("10ms"), 0.010);
  EXPECT_DOUBLE_EQ(tm("3.7us"), 3.7e-6);
  EXPECT_DOUBLE_EQ(tm("250ns"), 250e-9);
  EXPECT_DOUBLE_EQ(tm("5ps"), 5e-12);
  EXPECT_DOUBLE_EQ(tm("2min"), 120.0);
  EXPECT_DOUBLE_EQ(tm("1h"), 3600.0);
  EXPECT_DOUBLE_EQ(tm("1.5h"), 5400.0);
  EXPECT_DOUBLE_EQ(tm("1d"), 86400.0);
  EXPECT_DOUBLE_EQ(tm("0s"), 0.0);
}

TEST(ParseQuantity, ScientificNotation) {
  EXPECT_DOUBLE_EQ(tm("1.5e-6s"), 1.5e-6);
  EXPECT_DOUBLE_EQ(tm("2E3ms"), 2.0);
  EXPECT_DOUBLE_EQ(bw("1e3GBps"), 1e12);
  EXPECT_DOUBLE_EQ(fl("1e+3TFlops"), 1e15);
}

// ------------------------------------------------------------------------------------------ flop rate

TEST(ParseQuantity, FlopRateAnyCase) {
  EXPECT_DOUBLE_EQ(fl("989TFlops"), 989e12);
  EXPECT_DOUBLE_EQ(fl("989TFLOPS"), 989e12);
  EXPECT_DOUBLE_EQ(fl("989tflops"), 989e12);
  EXPECT_DOUBLE_EQ(fl("1979TFlops"), 1.979e15);
  EXPECT_DOUBLE_EQ(fl("1.98PFlops"), 1.98e15);
  EXPECT_DOUBLE_EQ(fl("67GFLOPS"), 67e9);
  EXPECT_DOUBLE_EQ(fl("3MFlops"), 3e6);
  EXPECT_DOUBLE_EQ(fl("2kFlops"), 2e3);
  EXPECT_DOUBLE_EQ(fl("7flops"), 7.0);
  EXPECT_DOUBLE_EQ(fl("7FLOPS"), 7.0);
}

// ---------------------------------------------------------------------------------------------- bytes

TEST(ParseQuantity, BytesDecimalAndBinary) {
  EXPECT_DOUBLE_EQ(by("7B"), 7.0);
  EXPECT_DOUBLE_EQ(by("3kB"), 3000.0);
  EXPECT_DOUBLE_EQ(by("3KB"), 3000.0);
  EXPECT_DOUBLE_EQ(by("5MB"), 5e6);
  EXPECT_DOUBLE_EQ(by("141GB"), 141e9);
  EXPECT_DOUBLE_EQ(by("2TB"), 2e12);
  EXPECT_DOUBLE_EQ(by("4KiB"), 4.0 * kKi);
  EXPECT_DOUBLE_EQ(by("512MiB"), 536'870'912.0);    // 512 * 2^20
  EXPECT_DOUBLE_EQ(by("80GiB"), 85'899'345'920.0);  // 80 * 2^30
  EXPECT_DOUBLE_EQ(by("80GiB"), 80.0 * kGi);
  EXPECT_DOUBLE_EQ(by("1TiB"), kTi);
  EXPECT_DOUBLE_EQ(by("1MiB"), kMi);
}

// --------------------------------------------------------------------------------------------- errors

// Asserts that parsing throws ParseError whose message names the source, the pointer, says "expected"
// and quotes the offending text.
void expect_parse_error(const std::string& text, Dimension dim, const std::string& why) {
  const std::string source = "gpus/test-gpu.json";
  const std::string pointer = "/cluster/gpu/memory_bandwidth";
  try {
    parse_quantity(text, dim, source, pointer);
    ADD_FAILURE() << "no error for \"" << text << "\"";
  } catch (const ParseError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find(source), std::string::npos) << m;
    EXPECT_NE(m.find(pointer), std::string::npos) << m;
    EXPECT_NE(m.find("expected"), std::string::npos) << m;
    EXPECT_NE(m.find("\"" + text + "\""), std::string::npos) << m;
    EXPECT_NE(m.find(why), std::string::npos) << m;
    // The canonical shape: "SOURCE: POINTER: expected ..., found ...".
    EXPECT_EQ(m.rfind(source + ": " + pointer + ": expected ", 0), 0u) << m;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type for \"" << text << "\": " << e.what();
  }
}

TEST(ParseQuantityErrors, MissingNumber) {
  expect_parse_error("GBps", Dimension::kBandwidth, "no number");
  expect_parse_error("", Dimension::kBandwidth, "no number");
  expect_parse_error("fast", Dimension::kTime, "no number");
  expect_parse_error("inf GBps", Dimension::kBandwidth, "no number");
}

TEST(ParseQuantityErrors, MissingUnit) {
  expect_parse_error("50", Dimension::kBandwidth, "no unit");
  expect_parse_error("3.7", Dimension::kTime, "no unit");
  expect_parse_error("80 ", Dimension::kBytes, "no unit");
}

TEST(ParseQuantityErrors, UnknownUnit) {
  expect_parse_error("50XBps", Dimension::kBandwidth, "unknown unit \"XBps\"");
  expect_parse_error("3.7sec", Dimension::kTime, "unknown unit \"sec\"");
  expect_parse_error("989TOps", Dimension::kFlopRate, "unknown unit \"TOps\"");
  expect_parse_error("80Gib", Dimension::kBytes, "unknown unit \"Gib\"");
}

TEST(ParseQuantityErrors, WrongDimension) {
  // A bandwidth where a time is expected: the unit is not a time unit.
  expect_parse_error("50GBps", Dimension::kTime, "unknown unit \"GBps\"");
  expect_parse_error("80GiB", Dimension::kBandwidth, "unknown unit \"GiB\"");
  expect_parse_error("3.7us", Dimension::kBytes, "unknown unit \"us\"");
  expect_parse_error("50GBps", Dimension::kFlopRate, "unknown unit \"GBps\"");
  expect_parse_error("989TFlops", Dimension::kBandwidth, "unknown unit \"TFlops\"");
}

TEST(ParseQuantityErrors, Negative) {
  expect_parse_error("-3us", Dimension::kTime, "non-negative");
  expect_parse_error("-50GBps", Dimension::kBandwidth, "non-negative");
  expect_parse_error("-1GiB", Dimension::kBytes, "non-negative");
}

TEST(ParseQuantityErrors, BadNumber) {
  expect_parse_error("1.2.3GBps", Dimension::kBandwidth, "bad number");
  expect_parse_error("5-3us", Dimension::kTime, "bad number");
  expect_parse_error("1e999GBps", Dimension::kBandwidth, "bad number");  // overflows a double
}

TEST(ParseQuantityErrors, ExpectedNamesTheDimension) {
  try {
    parse_quantity("50GBps", Dimension::kTime, "s.json", "/cluster/scale_out/latency");
    FAIL() << "no error";
  } catch (const ParseError& e) {
    EXPECT_EQ(std::string(e.what()),
              "s.json: /cluster/scale_out/latency: expected a time such as \"3.7us\", \"10ms\" or \"2s\", "
              "found \"50GBps\" (unknown unit \"GBps\")");
  }
}

TEST(ParseQuantityErrors, DefaultSourceAndPointer) {
  try {
    parse_quantity("12", Dimension::kBytes);
    FAIL() << "no error";
  } catch (const ParseError& e) {
    EXPECT_EQ(std::string(e.what()),
              "<quantity>: /: expected a size such as \"80GiB\" or \"141GB\", found \"12\" (no unit)");
  }
}

TEST(ParseQuantityErrors, IsAMoesimError) {
  EXPECT_THROW(parse_quantity("x", Dimension::kTime), Error);
  EXPECT_THROW(parse_quantity("x", Dimension::kTime), std::runtime_error);
}

TEST(DimensionHint, GivesExamples) {
  EXPECT_NE(dimension_hint(Dimension::kBandwidth).find("50GBps"), std::string_view::npos);
  EXPECT_NE(dimension_hint(Dimension::kTime).find("3.7us"), std::string_view::npos);
  EXPECT_NE(dimension_hint(Dimension::kFlopRate).find("989TFlops"), std::string_view::npos);
  EXPECT_NE(dimension_hint(Dimension::kBytes).find("80GiB"), std::string_view::npos);
}

// ----------------------------------------------------------------------------------------- formatting

TEST(FormatSeconds, AdaptiveUnit) {
  EXPECT_EQ(format_seconds(19.93), "19.930 s");
  EXPECT_EQ(format_seconds(1.0), "1.000 s");
  EXPECT_EQ(format_seconds(0.0), "0.000 s");
  EXPECT_EQ(format_seconds(3600.0), "3600.000 s");
  EXPECT_EQ(format_seconds(0.999), "999.000 ms");
  EXPECT_EQ(format_seconds(1.13e-3), "1.130 ms");
  EXPECT_EQ(format_seconds(4.2e-6), "4.200 us");
  EXPECT_EQ(format_seconds(3.7e-6), "3.700 us");
  EXPECT_EQ(format_seconds(5e-10), "0.5 ns");
  EXPECT_EQ(format_seconds(-2e-3), "-2.000 ms");
}

TEST(FormatQuantity, PerDimension) {
  EXPECT_EQ(format_quantity(50e9, Dimension::kBandwidth), "50.0 GB/s");
  EXPECT_EQ(format_quantity(49.8e9, Dimension::kBandwidth), "49.8 GB/s");
  EXPECT_EQ(format_quantity(1.5e12, Dimension::kBandwidth), "1.50 TB/s");
  EXPECT_EQ(format_quantity(3.35e12, Dimension::kBandwidth), "3.35 TB/s");
  EXPECT_EQ(format_quantity(3.7e-6, Dimension::kTime), "3.700 us");
  EXPECT_EQ(format_quantity(989e12, Dimension::kFlopRate), "989.0 TFLOP/s");
  EXPECT_EQ(format_quantity(80.0 * kGi, Dimension::kBytes), "80.00 GiB");
  EXPECT_EQ(format_quantity(141e9, Dimension::kBytes), "131.32 GiB");  // 141e9 / 2^30 = 131.317
}

TEST(FormatQuantity, RoundTripsParsedValues) {
  EXPECT_EQ(format_quantity(bw("400Gbps"), Dimension::kBandwidth), "50.0 GB/s");
  EXPECT_EQ(format_quantity(by("80GiB"), Dimension::kBytes), "80.00 GiB");
  EXPECT_EQ(format_quantity(fl("989TFLOPS"), Dimension::kFlopRate), "989.0 TFLOP/s");
  EXPECT_EQ(format_quantity(tm("10ms"), Dimension::kTime), "10.000 ms");
}

}  // namespace
}  // namespace moesim
