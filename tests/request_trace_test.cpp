// Serving request traces (traces/requests.hpp): the three formats read to the same requests, statistics
// worked out by hand, and every kind of bad row rejected with the file, the line, what was expected and
// what was found.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "scenarios/error.hpp"
#include "traces/requests.hpp"

namespace moesim::traces {
namespace {

namespace fs = std::filesystem;

std::string write(const std::string& name, const std::string& text) {
  const fs::path dir = fs::temp_directory_path() / "moesim-request-trace-test";
  fs::create_directories(dir);
  const fs::path f = dir / name;
  std::ofstream(f, std::ios::binary) << text;
  return f.string();
}

TEST(RequestTrace, ThreeFormatsReadTheSameRequests) {
  // Arrivals 0, 0.5 and 2 s after the first; lengths (100, 10), (200, 20), (300, 30).
  const auto m = read_request_trace(
      write("m.csv", "arrival_s,input_tokens,output_tokens\n0,100,10\n0.5,200,20\n2,300,30\n"));
  const auto a = read_request_trace(write("a.csv",
                                          "TIMESTAMP,ContextTokens,GeneratedTokens\r\n"
                                          "2023-11-16 23:59:59.5000000,100,10\r\n"
                                          "2023-11-17 00:00:00.0000000,200,20\r\n"
                                          "2023-11-17 00:00:01.5,300,30\r\n"));
  const auto b =
      read_request_trace(write("b.csv",
                               "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                               "7,ChatGPT,100,10,110,Conversation log\n"
                               "7.5,GPT-4,200,20,220,API log\n"
                               "9,ChatGPT,300,30,330,Conversation log\n"));
  EXPECT_EQ(m.format, RequestFormat::kMoesim);
  EXPECT_EQ(a.format, RequestFormat::kAzure);
  EXPECT_EQ(b.format, RequestFormat::kBurstGpt);
  for (const RequestTrace* t : {&m, &a, &b}) {
    ASSERT_EQ(t->requests.size(), 3u);
    EXPECT_DOUBLE_EQ(t->requests[0].arrival_s, 0.0);
    EXPECT_NEAR(t->requests[1].arrival_s, 0.5, 1e-6);  // across midnight for the Azure rows
    EXPECT_NEAR(t->requests[2].arrival_s, 2.0, 1e-6);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(t->requests[i].input_tokens, 100 * (i + 1));
      EXPECT_EQ(t->requests[i].output_tokens, 10 * (i + 1));
    }
  }
}

TEST(RequestTrace, StatisticsByHand) {
  // Five requests' inputs 10, 20, 30, 40, 1000: mean 220; nearest-rank p50 30 (rank 3), p90 and p99 1000.
  // Cached 5 + 0 + 15 + 0 + 500 of 1100 input tokens: 520 / 1100.
  const auto t = read_request_trace(write("s.csv",
                                          "input_tokens,arrival_s,output_tokens,cached_tokens\n"
                                          "10,0,1,5\n20,1,2,0\n30,2,3,15\n40,6,4,0\n1000,6,5,500\n"));
  const RequestStats s = request_stats(t.requests);
  EXPECT_EQ(s.requests, 5);
  EXPECT_DOUBLE_EQ(s.duration_s, 6.0);
  EXPECT_DOUBLE_EQ(s.rate_per_s, 4.0 / 6.0);
  // Gaps 1, 1, 4, 0: mean 1.5, squared deviations 0.25, 0.25, 6.25, 2.25 → variance 2.25, sd 1.5, CV 1.
  EXPECT_NEAR(s.interarrival_cv, 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(s.input.mean, 220.0);
  EXPECT_DOUBLE_EQ(s.input.p50, 30.0);
  EXPECT_DOUBLE_EQ(s.input.p90, 1000.0);
  EXPECT_DOUBLE_EQ(s.input.max, 1000.0);
  EXPECT_DOUBLE_EQ(s.output.mean, 3.0);
  EXPECT_DOUBLE_EQ(s.output.p50, 3.0);
  EXPECT_DOUBLE_EQ(s.cached_share, 520.0 / 1100.0);
}

std::string error_of(const std::string& name, const std::string& text, RequestFormat f = RequestFormat::kAuto,
                     bool skip = false) {
  try {
    read_request_trace(write(name, text), f, skip);
  } catch (const ParseError& e) {
    return e.what();
  }
  return "no error";
}

void expect_message(const std::string& m, const std::string& where, const std::string& expected,
                    const std::string& found) {
  EXPECT_NE(m.find(where), std::string::npos) << m;
  EXPECT_NE(m.find("expected " + expected), std::string::npos) << m;
  EXPECT_NE(m.find("found " + found), std::string::npos) << m;
}

TEST(RequestTrace, BadRowsNameFileLineExpectedFound) {
  const std::string h = "arrival_s,input_tokens,output_tokens\n";
  expect_message(error_of("neg.csv", h + "-1,10,1\n"), "neg.csv:2", "an arrival time of at least 0 s",
                 "\"-1\"");
  expect_message(error_of("order.csv", h + "0,10,1\n5,10,1\n4,10,1\n"), "order.csv:4",
                 "arrival times that never decrease", "\"4\"");
  expect_message(error_of("zero.csv", h + "0,10,0\n"), "zero.csv:2",
                 "output_tokens an integer in [1, 16777216]", "\"0\"");
  expect_message(error_of("huge.csv", h + "0,99999999,5\n"), "huge.csv:2",
                 "input_tokens an integer in [1, 16777216]", "\"99999999\"");
  expect_message(error_of("frac.csv", h + "0,10.5,5\n"), "frac.csv:2", "input_tokens an integer", "\"10.5\"");
  expect_message(error_of("text.csv", h + "soon,10,5\n"), "text.csv:2", "an arrival time in seconds",
                 "\"soon\"");
  expect_message(error_of("cut.csv", h + "0,10,5\n1,10"), "cut.csv:3", "3 comma-separated columns",
                 "2 in \"1,10\" (the file ends here: truncated?)");
  expect_message(error_of("blank.csv", h + "0,10,5\n\n1,10,5\n"), "blank.csv:3", "a request",
                 "an empty line");
  expect_message(error_of("cache.csv", "arrival_s,input_tokens,output_tokens,cached_tokens\n0,10,5,11\n"),
                 "cache.csv:2", "cached_tokens at most input_tokens (10)", "11");
  expect_message(error_of("header.csv", "time,in,out\n0,1,1\n"), "header.csv:1", "a header of a moesim",
                 "\"time,in,out\"");
  expect_message(error_of("none.csv", h), "none.csv:1", "at least one request after the header", "none");
  expect_message(error_of("empty.csv", ""), "empty.csv:1", "a header", "an empty file");
  expect_message(error_of("azure.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-13-01 00:00:00,10,5\n"),
                 "azure.csv:2", "TIMESTAMP a date and time", "\"2023-13-01 00:00:00\"");
  // A format asked for by name must match the header.
  expect_message(error_of("as.csv", h + "0,10,5\n", RequestFormat::kAzure), "as.csv:1",
                 "the columns TIMESTAMP, ContextTokens, GeneratedTokens",
                 "\"arrival_s,input_tokens,output_tokens\"");
}

TEST(RequestTrace, BurstGptFailuresAreAnErrorOrCountedWhenSkipped) {
  const std::string text =
      "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
      "0,ChatGPT,100,10,110,Conversation log\n"
      "3,ChatGPT,50,0,50,Conversation log\n"
      "4,GPT-4,70,7,77,API log\n";
  expect_message(error_of("fail.csv", text), "fail.csv:3", "Response tokens at least 1", "\"0\"");
  const auto t = read_request_trace(write("fail.csv", text), RequestFormat::kAuto, true);
  EXPECT_EQ(t.skipped_failed, 1);
  ASSERT_EQ(t.requests.size(), 2u);
  EXPECT_DOUBLE_EQ(t.requests[1].arrival_s, 4.0);
  expect_message(error_of("allfail.csv",
                          "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                          "0,ChatGPT,100,0,100,Conversation log\n",
                          RequestFormat::kAuto, true),
                 "allfail.csv:2", "at least one request after the header", "1 failed requests only");
}

// The generator against the distributions it draws from, over 40,000 requests (standard errors of
// about 0.5% for the rate and the CV of exponential gaps).
TEST(RequestGenerator, PoissonArrivalsAndLengthsMatchTheirDistributions) {
  RequestGeneratorSpec g;
  g.requests = 40000, g.rate_per_s = 10, g.cv = 1, g.seed = 11, g.cached_fraction = 0.5;
  g.input = parse_length_dist("lognormal:1024:1", "in");
  g.output = parse_length_dist("uniform:100:300", "out");
  const std::vector<Request> r = generate_requests(g);
  ASSERT_EQ(r.size(), 40000u);
  EXPECT_DOUBLE_EQ(r.front().arrival_s, 0.0);
  const RequestStats s = request_stats(r);
  EXPECT_NEAR(s.rate_per_s, 10.0, 0.2);
  EXPECT_NEAR(s.interarrival_cv, 1.0, 0.02);
  EXPECT_NEAR(s.input.p50, 1024.0, 0.03 * 1024);  // the lognormal's median
  // Its mean is median · exp(sigma^2 / 2) = 1024 · e^0.5 = 1688.3 (heavier-tailed: 3%).
  EXPECT_NEAR(s.input.mean, 1024.0 * std::exp(0.5), 0.03 * 1688.3);
  EXPECT_NEAR(s.output.mean, 200.0, 2.0);
  int64_t lo = 1 << 30, hi = 0;
  for (const Request& x : r) {
    lo = std::min(lo, x.output_tokens), hi = std::max(hi, x.output_tokens);
    EXPECT_EQ(x.cached_tokens, x.input_tokens / 2);
  }
  EXPECT_EQ(lo, 100);
  EXPECT_EQ(hi, 300);
}

// Shared prefixes: ids in [0, groups) from their own stream (the other draws do not move), uniform with
// exponent 0 (64,000 requests over 64 prefixes: 1,000 each, standard deviation about 31), Zipf with
// exponent 1: prefix 0 twice as frequent as prefix 1 and 10 times prefix 9 (1/g popularity).
TEST(RequestGenerator, PrefixGroupsByZipfPopularity) {
  RequestGeneratorSpec g;
  g.requests = 64000, g.rate_per_s = 10, g.seed = 5, g.cached_fraction = 0.5;
  g.input = parse_length_dist("lognormal:1024:0.5", "in");
  const std::vector<Request> plain = generate_requests(g);
  g.prefix_groups = 64, g.prefix_zipf = 0;
  const std::vector<Request> uniform = generate_requests(g);
  ASSERT_EQ(plain.size(), uniform.size());
  std::vector<double> n(64, 0.0);
  for (std::size_t i = 0; i < plain.size(); ++i) {
    EXPECT_EQ(plain[i].prefix, -1);
    ASSERT_EQ(uniform[i].arrival_s, plain[i].arrival_s);
    ASSERT_EQ(uniform[i].input_tokens, plain[i].input_tokens);
    ASSERT_EQ(uniform[i].cached_tokens, plain[i].cached_tokens);
    ASSERT_GE(uniform[i].prefix, 0);
    ASSERT_LT(uniform[i].prefix, 64);
    n[static_cast<std::size_t>(uniform[i].prefix)] += 1;
  }
  for (double c : n) EXPECT_NEAR(c, 1000.0, 150.0);
  g.prefix_zipf = 1;
  std::vector<double> z(64, 0.0);
  for (const Request& r : generate_requests(g)) z[static_cast<std::size_t>(r.prefix)] += 1;
  EXPECT_NEAR(z[0] / z[1], 2.0, 0.15);
  EXPECT_NEAR(z[0] / z[9], 10.0, 1.0);
}

// The moesim format's optional prefix_id column: an integer id of the shared prefix the cached tokens
// belong to, or empty for none; the generator's prefix groups write it and read back the same; a negative
// or fractional id is refused with its line.
TEST(RequestTrace, PrefixIdColumn) {
  const std::string h = "arrival_s,input_tokens,output_tokens,cached_tokens,prefix_id\n";
  const RequestTrace t =
      read_request_trace(write("prefix.csv", h + "0,100,5,50,7\n1,100,5,0,\n2,80,5,40,7\n"));
  ASSERT_EQ(t.requests.size(), 3u);
  EXPECT_EQ(t.requests[0].prefix, 7);
  EXPECT_EQ(t.requests[1].prefix, -1);
  EXPECT_EQ(t.requests[2].prefix, 7);
  const RequestStats st = request_stats(t.requests);
  EXPECT_EQ(st.prefixes, 1);
  EXPECT_EQ(st.with_prefix, 2);
  expect_message(error_of("neg.csv", h + "0,100,5,50,-3\n"), "neg.csv:2", "prefix_id an integer in [0, ",
                 "\"-3\"");
  expect_message(error_of("half.csv", h + "0,100,5,50,1\n1,100,5,50,2.5\n"), "half.csv:3",
                 "prefix_id an integer", "\"2.5\"");
  RequestGeneratorSpec g;
  g.requests = 200, g.rate_per_s = 4, g.seed = 9, g.cached_fraction = 0.3, g.prefix_groups = 5;
  const std::vector<Request> want = generate_requests(g);
  const std::string csv = request_trace_csv(want);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "arrival_s,input_tokens,output_tokens,cached_tokens,prefix_id");
  const RequestTrace back = read_request_trace(write("gen-prefix.csv", csv));
  ASSERT_EQ(back.requests.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_EQ(back.requests[i].prefix, want[i].prefix) << i;
}

TEST(RequestGenerator, BurstyGapsHaveTheirCoefficientOfVariation) {
  RequestGeneratorSpec g;
  g.requests = 40000, g.rate_per_s = 5, g.cv = 2, g.seed = 3;
  g.input = parse_length_dist("fixed:4096", "in");
  const RequestStats s = request_stats(generate_requests(g));
  EXPECT_NEAR(s.rate_per_s, 5.0, 0.25);
  EXPECT_NEAR(s.interarrival_cv, 2.0, 0.1);
  EXPECT_DOUBLE_EQ(s.input.p50, 4096.0);
  EXPECT_DOUBLE_EQ(s.input.max, 4096.0);
}

TEST(RequestGenerator, SameSeedSameBytesAndTheCsvReadsBackExactly) {
  RequestGeneratorSpec g;
  g.requests = 500, g.rate_per_s = 3.7, g.cv = 0.6, g.seed = 42, g.cached_fraction = 0.25;
  g.input = parse_length_dist("lognormal:800:0.7", "in");
  const std::string a = request_trace_csv(generate_requests(g)), b = request_trace_csv(generate_requests(g));
  EXPECT_EQ(a, b);
  g.seed = 43;
  EXPECT_NE(a, request_trace_csv(generate_requests(g)));
  g.seed = 42;
  const std::vector<Request> want = generate_requests(g);
  const RequestTrace back = read_request_trace(write("gen.csv", a));
  ASSERT_EQ(back.requests.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(back.requests[i].arrival_s, want[i].arrival_s) << i;
    EXPECT_EQ(back.requests[i].input_tokens, want[i].input_tokens) << i;
    EXPECT_EQ(back.requests[i].output_tokens, want[i].output_tokens) << i;
    EXPECT_EQ(back.requests[i].cached_tokens, want[i].cached_tokens) << i;
  }
}

TEST(RequestGenerator, LengthDistributionsAreChecked) {
  for (const char* bad : {"fixed", "fixed:0", "fixed:1.5", "uniform:5:2", "uniform:1", "lognormal:0:1",
                          "lognormal:100:-1", "normal:100:1", "fixed:99999999", ""}) {
    try {
      parse_length_dist(bad, "--input-tokens");
      ADD_FAILURE() << bad;
    } catch (const ConfigError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("--input-tokens: expected a length distribution"), std::string::npos) << m;
      EXPECT_NE(m.find(std::string("found \"") + bad + "\""), std::string::npos) << m;
    }
  }
}

TEST(RequestTrace, UnreadableFileIsAnIoError) {
  EXPECT_THROW(read_request_trace("/nonexistent/requests.csv"), IoError);
}

}  // namespace
}  // namespace moesim::traces
