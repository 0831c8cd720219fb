// Routing traces (traces/trace_format.cpp, traces/import.cpp):
//   - the moesim trace format round-trips token-level and count-level samples exactly;
//   - every malformed or inconsistent line is rejected with the right error type and a message that
//     names the file, the line and what was expected;
//   - the Megatron-Core router trace importer on tests/data/traces/megatron (counts worked out by hand),
//     and Megatron's layer numbers (from 1, MoE layers only) mapped to MoE-layer indices 0..L-1;
//   - the OLMoE paper's expert-count table (allenai/OLMoE routing_output): max/mean of OLMoE arxiv layer 0
//     is 204013 / (1671168 / 64) = 7.813, Mixtral's lie in [1.08, 1.33];
//   - rescaling a sample between source counts, with the largest-remainder rule worked out by hand;
//   - expert-load statistics against hand formulas;
//   - the end record: a trace cut anywhere, even between two records, is refused; version 1 is refused
//     and upgraded; an unfinished writer leaves no file;
//   - every record check: numbers range-checked and quoted as written (2^64 - 1, beyond 64 bits,
//     beyond a double), tokens x top_k = kept + dropped + unfilled, records that route nothing, a token
//     naming one expert twice; the same in Megatron traces, count tables and expert-load matrices;
//   - a 200,000-record trace streamed with flat memory.

#include "traces/trace_format.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "scenarios/error.hpp"
#include "traces/import.hpp"
#include "traces/json_numbers.hpp"
#include "traces/load.hpp"
#include "traces/routing_sample.hpp"

namespace moesim::traces {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

namespace fs = std::filesystem;

class TraceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("moesim-trace-test-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string write_file(const std::string& name, const std::string& text) const {
    std::ofstream(path(name), std::ios::binary) << text;
    return path(name);
  }

  fs::path dir_;
};

std::vector<RoutingSample> read_all(const std::string& p) {
  TraceReader r(p);
  std::vector<RoutingSample> out;
  RoutingSample s;
  while (r.next(s)) out.push_back(s);
  return out;
}

void expect_same(const RoutingSample& a, const RoutingSample& b) {
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.layer, b.layer);
  EXPECT_EQ(a.sources, b.sources);
  EXPECT_EQ(a.experts, b.experts);
  EXPECT_EQ(a.top_k, b.top_k);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.counts, b.counts);
  EXPECT_EQ(a.dropped, b.dropped);
  EXPECT_EQ(a.padded, b.padded);
  EXPECT_EQ(a.token_experts, b.token_experts);
  EXPECT_EQ(a.token_source, b.token_source);
  EXPECT_EQ(a.token_weights, b.token_weights);
}

// Calls `f`, expects exactly error type E with a message naming "FILE:LINE:" (just FILE when line is 0),
// "expected" and `also`.
template <class E>
void expect_error(const std::function<void()>& f, const std::string& file, int64_t line,
                  const std::string& also = "") {
  try {
    f();
    ADD_FAILURE() << "no error; expected one at " << file << ":" << line;
  } catch (const E& e) {
    const std::string m = e.what();
    const std::string where = line > 0 ? file + ":" + std::to_string(line) + ":" : file;
    EXPECT_NE(m.find(where), std::string::npos) << m;
    EXPECT_NE(m.find("expected"), std::string::npos) << m;
    if (!also.empty()) {
      EXPECT_NE(m.find(also), std::string::npos) << m;
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong error type: " << e.what();
  }
}

template <class E>
void expect_read_error(const std::string& p, int64_t line, const std::string& also = "") {
  expect_error<E>([&] { read_all(p); }, p, line, also);
}

const std::string kHeader =
    R"({"format": "moesim-routing-trace", "version": 2, "experts": 8, "top_k": 2, "sources": 2, "layers": 3})"
    "\n";
// The end record after n records.
std::string end_record(int n) {
  return "{\"end\": true, \"records\": " + std::to_string(n) + "}\n";
}

// ------------------------------------------------------------------------------------- round trips

TEST_F(TraceTest, TraceRoundTripTokenLevel) {
  TraceHeader h;
  h.experts = 8;
  h.top_k = 2;
  h.sources = 2;
  h.layers = 3;
  h.model = "tiny \"moe\"";
  h.note = "round trip";

  // Token 0 (source 1): experts 0, 1; token 1 (source 0): expert 1 only; token 2 (source 1): 7, 0.
  RoutingSample a;
  a.step = 0;
  a.layer = 2;
  a.sources = 2;
  a.experts = 8;
  a.top_k = 2;
  a.token_experts = {0, 1, 1, -1, 7, 0};
  a.token_source = {1, 0, 1};
  a.token_weights = {0.75f, 0.25f, 1.0f, 0.0f, 0.3f, 0.7f};
  counts_from_tokens(a);
  // By hand: source 0 row = e1:1; source 1 row = e0:2, e1:1, e7:1.
  EXPECT_EQ(a.tokens, 3);
  EXPECT_EQ(a.counts, (std::vector<int64_t>{0, 1, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 1}));

  // No token_source: 4 tokens over 2 sources in consecutive runs (t·2/4): tokens 0,1 → 0; 2,3 → 1.
  RoutingSample b = a;
  b.step = 3;
  b.layer = 0;
  b.token_experts = {2, 3, 2, 4, 5, 6, 6, -1};
  b.token_source.clear();
  b.token_weights.clear();
  counts_from_tokens(b);
  EXPECT_EQ(b.counts, (std::vector<int64_t>{0, 0, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0}));

  // 3000 tokens with random experts (-1 included) and weights drawn from random bit patterns (every
  // finite float, -0 included): the weights must come back bit for bit.
  RoutingSample c = b;
  c.step = 4;
  c.layer = 1;
  c.token_experts.clear();
  SplitMix64 rng(42);
  for (int i = 0; i < 6000; ++i) {
    int32_t e = static_cast<int32_t>(rng.below(9)) - 1;
    if (i % 2 == 1 && e >= 0 && e == c.token_experts.back()) e = -1;  // a token names an expert once
    c.token_experts.push_back(e);
    float w = 0;
    do {
      const uint32_t bits = static_cast<uint32_t>(rng.next());
      std::memcpy(&w, &bits, sizeof w);
    } while (!std::isfinite(w));
    c.token_weights.push_back(i == 0 ? -0.0f : w);
  }
  counts_from_tokens(c);

  const std::string p = path("tokens.jsonl");
  {
    TraceWriter w(p, h);
    w.write(a);
    w.write(b);
    w.write(c);
    w.close();
    EXPECT_EQ(w.records(), 3);
  }
  TraceReader r(p);
  EXPECT_EQ(r.header().model, h.model);
  EXPECT_EQ(r.header().note, h.note);
  EXPECT_EQ(r.header().experts, 8);
  RoutingSample s;
  ASSERT_TRUE(r.next(s));
  expect_same(s, a);
  ASSERT_TRUE(r.next(s));
  expect_same(s, b);
  ASSERT_TRUE(r.next(s));
  expect_same(s, c);
  ASSERT_EQ(s.token_weights.size(), c.token_weights.size());
  EXPECT_EQ(
      std::memcmp(s.token_weights.data(), c.token_weights.data(), c.token_weights.size() * sizeof(float)), 0);
  EXPECT_FALSE(r.next(s));
  EXPECT_EQ(r.line(), 5);  // header, 3 records, the end record
  EXPECT_EQ(r.records(), 3);
}

TEST_F(TraceTest, TraceRoundTripCountLevel) {
  TraceHeader h{kTraceFormatVersion, 4, 2, 3, 2, "", ""};
  RoutingSample a;
  a.step = 5;
  a.layer = 1;
  a.sources = 3;
  a.experts = 4;
  a.top_k = 2;
  a.counts = {1, 2, 3, 4, 0, 0, 0, 9, 5, 5, 0, 1};
  a.tokens = 17;  // 17 x top_k 2 = 34 = 30 kept + 3 dropped + 1 unfilled
  a.dropped = 3;
  a.padded = 7;
  RoutingSample b = a;
  b.step = 6;
  b.layer = 0;
  b.counts = {0, 0, 0, 0, 1, 1, 1, 1, 2, 0, 0, 2};
  b.tokens = 4;
  b.dropped = 0;
  b.padded = 0;
  // A sample with token detail written as counts only: the detail is not stored.
  RoutingSample c = b;
  c.layer = 1;
  c.token_experts = {0, 1};
  const std::string p = path("counts.jsonl");
  {
    TraceWriter w(p, h);
    w.write(a);
    w.write(b);
    w.write_counts(c);
    w.close();
  }
  // The entry no expert filled is stored, so that tokens x top_k = kept + dropped + unfilled holds.
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  std::getline(in, line);
  EXPECT_NE(line.find("\"unfilled\":1"), std::string::npos) << line;
  const auto got = read_all(p);
  ASSERT_EQ(got.size(), 3u);
  expect_same(got[0], a);
  expect_same(got[1], b);
  c.token_experts.clear();
  expect_same(got[2], c);
}

TEST_F(TraceTest, TraceCountRecordAndUnterminatedEndRecord) {
  // tokens 4 x top_k 2 = kept 6 + dropped 2. The end record may lack its newline (a whole last line).
  const std::string p = write_file(
      "counts-end.jsonl",
      kHeader +
          R"({"step": 0, "layer": 0, "tokens": 4, "counts": [[1,0,0,0,0,0,0,2],[0,0,3,0,0,0,0,0]], "dropped": 2})"
          "\n"
          R"({"end": true, "records": 1})");
  const auto got = read_all(p);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].tokens, 4);
  EXPECT_EQ(got[0].dropped, 2);
  EXPECT_EQ(got[0].count(1, 2), 3);
  EXPECT_EQ(got[0].expert_counts(), (std::vector<int64_t>{1, 0, 3, 0, 0, 0, 0, 2}));
}

TEST_F(TraceTest, TraceWriterRefusesOverwriteAndInconsistentSamples) {
  const std::string p = write_file("exists.jsonl", "keep me\n");
  TraceHeader h{kTraceFormatVersion, 8, 2, 2, 3, "", ""};
  EXPECT_THROW(TraceWriter again(p, h), IoError);
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "keep me");

  TraceWriter w(path("new.jsonl"), h);
  RoutingSample s;
  s.sources = 2;
  s.experts = 8;
  s.top_k = 2;
  s.token_experts = {0, 1};
  counts_from_tokens(s);
  s.counts[0] = 0;  // as after capacity dropping: counts no longer those of the tokens
  s.dropped = 1;
  expect_error<ConfigError>([&] { w.write(s); }, path("new.jsonl"), 2, "write_counts");
  RoutingSample wrong = s;
  wrong.experts = 4;
  expect_error<ConfigError>([&] { w.write_counts(wrong); }, path("new.jsonl"), 2, "8 experts");
  w.write_counts(s);
  expect_error<ConfigError>([&] { w.write_counts(s); }, path("new.jsonl"), 3, "(step, layer) once");
  EXPECT_THROW(TraceWriter bad(path("bad.jsonl"), TraceHeader{kTraceFormatVersion, 8, 9, 2, 3, "", ""}),
               ConfigError);
}

// -------------------------------------------------------------------------------------------- errors

TEST_F(TraceTest, TraceErrorsTokenLevel) {
  const std::string ok = R"({"step": 0, "layer": 0, "tokens": [[0, 1]]})"
                         "\n";
  // Unknown expert id: 8 with 8 experts; -2.
  expect_read_error<ConfigError>(write_file("e1.jsonl", kHeader + ok +
                                                            R"({"step": 0, "layer": 1, "tokens": [[0, 8]]})"
                                                            "\n"),
                                 3, "/tokens/0/1");
  expect_read_error<ConfigError>(
      write_file("e2.jsonl", kHeader + R"({"step": 0, "layer": 1, "tokens": [[-2, 1]]})"
                                       "\n"),
      2, "found the number -2");
  // Layer outside [0, 3).
  expect_read_error<ConfigError>(
      write_file("e3.jsonl", kHeader + R"({"step": 0, "layer": 3, "tokens": [[0, 1]]})"
                                       "\n"),
      2, "[0, 2]");
  expect_read_error<ConfigError>(
      write_file("e4.jsonl", kHeader + R"({"step": 0, "layer": -1, "tokens": [[0, 1]]})"
                                       "\n"),
      2);
  // A token with 3 entries where top_k = 2.
  expect_read_error<ConfigError>(
      write_file("e5.jsonl", kHeader + ok +
                                 R"({"step": 1, "layer": 0, "tokens": [[0, 1], [2, 3, 4]]})"
                                 "\n"),
      3, "top_k = 2");
  // Source ids outside [0, 2), and a source list of the wrong length.
  expect_read_error<ConfigError>(
      write_file("e6.jsonl", kHeader +
                                 R"({"step": 0, "layer": 0, "tokens": [[0, 1], [1, 2]], "source": [0, 2]})"
                                 "\n"),
      2, "/source/1");
  expect_read_error<ConfigError>(
      write_file("e7.jsonl", kHeader + R"({"step": 0, "layer": 0, "tokens": [[0, 1], [1, 2]], "source": [0]})"
                                       "\n"),
      2, "one per token");
  // Weights of the wrong shape; an unknown key; neither tokens nor counts.
  expect_read_error<ConfigError>(
      write_file("e8.jsonl", kHeader + R"({"step": 0, "layer": 0, "tokens": [[0, 1]], "weights": [[0.5]]})"
                                       "\n"),
      2);
  expect_read_error<ConfigError>(
      write_file("e9.jsonl", kHeader + R"({"step": 0, "layer": 0, "tokens": [[0, 1]], "dropped": 1})"
                                       "\n"),
      2, "dropped");
  expect_read_error<ConfigError>(write_file("e10.jsonl", kHeader + R"({"step": 0, "layer": 0})"
                                                                   "\n"),
                                 2, "counts");
}

TEST_F(TraceTest, TraceErrorsCountLevel) {
  // 1 row where the header says 2 sources; a row of 7 where there are 8 experts; a negative count.
  expect_read_error<ConfigError>(
      write_file("c1.jsonl", kHeader + R"({"step": 0, "layer": 0, "counts": [[1,0,0,0,0,0,0,0]]})"
                                       "\n"),
      2, "2 rows");
  expect_read_error<ConfigError>(
      write_file("c2.jsonl", kHeader +
                                 R"({"step": 0, "layer": 0, "counts": [[1,0,0,0,0,0,0,0],[1,0,0,0,0,0,0]]})"
                                 "\n"),
      2, "/counts/1");
  expect_read_error<ConfigError>(
      write_file("c3.jsonl",
                 kHeader + R"({"step": 0, "layer": 0, "counts": [[1,0,0,0,0,0,0,0],[1,0,0,-4,0,0,0,0]]})"
                           "\n"),
      2, "found the number -4");
  expect_read_error<ConfigError>(
      write_file("c4.jsonl",
                 kHeader + R"({"step": 0, "layer": 0, "counts": [[1,0,0,0,0,0,0,0],[1,0,0,0.5,0,0,0,0]]})"
                           "\n"),
      2, "/counts/1/3");
}

TEST_F(TraceTest, TraceErrorsFileStructure) {
  const std::string rec0 = R"({"step": 4, "layer": 0, "tokens": [[0, 1]]})"
                           "\n";
  const std::string rec1 = R"({"step": 4, "layer": 1, "tokens": [[0, 1]]})"
                           "\n";
  // Truncated last line: no newline and invalid JSON.
  expect_read_error<ParseError>(write_file("t1.jsonl", kHeader + rec0 + R"({"step": 4, "layer": 1, "tok)"), 3,
                                "truncated");
  // Missing header: the first line is a record.
  expect_read_error<ParseError>(write_file("t2.jsonl", rec0 + rec1), 1, "header is missing");
  expect_read_error<ParseError>(write_file("t3.jsonl", ""), 1, "empty file");
  expect_read_error<ParseError>(
      write_file("t4.jsonl",
                 R"({"format": "other", "version": 1, "experts": 8, "top_k": 2, "sources": 2, "layers": 3})"
                 "\n"),
      1, "moesim-routing-trace");
  expect_read_error<ConfigError>(
      write_file(
          "t5.jsonl",
          R"({"format": "moesim-routing-trace", "version": 3, "experts": 8, "top_k": 2, "sources": 2, "layers": 3})"
          "\n"),
      1, "version 2");
  expect_read_error<ConfigError>(
      write_file(
          "t6.jsonl",
          R"({"format": "moesim-routing-trace", "version": 2, "experts": 8, "top_k": 9, "sources": 2, "layers": 3})"
          "\n"),
      1, "/top_k");
  // Steps going backwards (4 then 3), and a (step, layer) repeated.
  expect_read_error<ConfigError>(write_file("t7.jsonl", kHeader + rec0 + rec1 +
                                                            R"({"step": 3, "layer": 2, "tokens": [[0, 1]]})"
                                                            "\n"),
                                 4, "backwards");
  expect_read_error<ConfigError>(write_file("t8.jsonl", kHeader + rec0 + rec1 + rec0), 4,
                                 "(step, layer) once");
  // Invalid JSON in the middle, an empty line, a record that is not an object.
  expect_read_error<ParseError>(write_file("t9.jsonl", kHeader + rec0 + "{\"step\": 4,, }\n" + rec1), 3);
  expect_read_error<ParseError>(write_file("t10.jsonl", kHeader + rec0 + "\n" + rec1), 3, "empty line");
  expect_read_error<ConfigError>(write_file("t11.jsonl", kHeader + "[1, 2]\n"), 2, "an object");
  // The previous line is reported correctly after many good ones.
  std::string many = kHeader;
  for (int s = 0; s < 50; ++s)
    many += "{\"step\": " + std::to_string(s) + ", \"layer\": 0, \"tokens\": [[0, 1]]}\n";
  many += R"({"step": 50, "layer": 0, "tokens": [[0, 99]]})"
          "\n";
  expect_read_error<ConfigError>(write_file("t12.jsonl", many), 52, "found the number 99");
  EXPECT_THROW(TraceReader absent(path("absent.jsonl")), IoError);
}

// ------------------------------------------------------------------------------------------ Megatron

std::string megatron_dir() {
  return std::string(MOESIM_TEST_DATA) + "/traces/megatron";
}

TEST_F(TraceTest, MegatronImportCountsMatchHandCount) {
  const auto got = import_megatron_router_traces(megatron_dir(), 4);
  // Keys in order: (step 1, decoder, layer 0), (1, decoder, 1), (1, mtp 0, layer 0), (2, decoder, 0).
  ASSERT_EQ(got.size(), 4u);
  const auto& d10 = got[0].sample;
  EXPECT_EQ(got[0].block, MegatronBlock::decoder);
  EXPECT_EQ(d10.step, 1);
  EXPECT_EQ(d10.layer, 0);
  EXPECT_EQ(d10.sources, 2);
  EXPECT_EQ(d10.experts, 4);
  EXPECT_EQ(d10.top_k, 2);
  // rank 0: [0,1] [2,3] [0,2] → e0 2, e1 1, e2 2, e3 1; rank 1: [0,3] [0,1] → e0 2, e1 1, e2 0, e3 1.
  EXPECT_EQ(d10.tokens, 5);
  EXPECT_EQ(d10.counts, (std::vector<int64_t>{2, 1, 2, 1, 2, 1, 0, 1}));
  EXPECT_EQ(d10.token_source, (std::vector<int32_t>{0, 0, 0, 1, 1}));
  EXPECT_EQ(d10.token_experts, (std::vector<int32_t>{0, 1, 2, 3, 0, 2, 0, 3, 0, 1}));

  // rank 0: [3,1] [3,0] → 1 1 0 2; rank 1: [3,2] [1,3] [3,0] → 1 1 1 3.
  EXPECT_EQ(got[1].block, MegatronBlock::decoder);
  EXPECT_EQ(got[1].sample.layer, 1);
  EXPECT_EQ(got[1].sample.tokens, 5);
  EXPECT_EQ(got[1].sample.counts, (std::vector<int64_t>{1, 1, 0, 2, 1, 1, 1, 3}));

  // MTP: rank 0: [1,0] [1,3] → 1 2 0 1; rank 1: [2,1] → 0 1 1 0.
  EXPECT_EQ(got[2].block, MegatronBlock::mtp);
  EXPECT_EQ(got[2].mtp_idx, 0);
  EXPECT_EQ(got[2].sample.step, 1);
  EXPECT_EQ(got[2].sample.layer, 0);
  EXPECT_EQ(got[2].sample.tokens, 3);
  EXPECT_EQ(got[2].sample.counts, (std::vector<int64_t>{1, 2, 0, 1, 0, 1, 1, 0}));

  // Step 2: rank 0: [2,3] → 0 0 1 1; rank 1: [2,0] → 1 0 1 0.
  EXPECT_EQ(got[3].sample.step, 2);
  EXPECT_EQ(got[3].sample.counts, (std::vector<int64_t>{0, 0, 1, 1, 1, 0, 1, 0}));
  EXPECT_EQ(got[3].sample.expert_counts(), (std::vector<int64_t>{1, 0, 2, 1}));

  // An imported sample is consistent with its tokens, so it writes as a token-level record.
  TraceWriter w(path("imported.jsonl"), TraceHeader{kTraceFormatVersion, 4, 2, 2, 2, "megatron", ""});
  w.write(d10);
  w.close();
  const auto back = read_all(path("imported.jsonl"));
  ASSERT_EQ(back.size(), 1u);
  expect_same(back[0], d10);
}

// Megatron numbers routers by transformer layer from 1, and only MoE layers have one; sample.layer is
// the moesim MoE-layer index 0..L-1 (traces/import.hpp). tests/data/traces/megatron-moe-layers: a
// 4-layer all-MoE model traced as Megatron layers 1, 2, 3, 4 on 2 ranks. At Megatron layer n, rank 0
// routes [2n-2, 2n-1] [2n-2, 15] and rank 1 [2n-2, 2n-1]: expert 2n-2 gets 3 slots, 2n-1 gets 2, 15
// gets 1. So MoE layer i = Megatron layer i + 1, with 3 slots on expert 2i and 2 on 2i + 1.
TEST_F(TraceTest, MegatronLayerNumbersBecomeMoeLayerIndices) {
  const std::string dir = std::string(MOESIM_TEST_DATA) + "/traces/megatron-moe-layers";
  const auto got = import_megatron_router_traces(dir, 16);
  ASSERT_EQ(got.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    SCOPED_TRACE("MoE layer " + std::to_string(i));
    const RoutingSample& x = got[i].sample;
    EXPECT_EQ(got[i].block, MegatronBlock::decoder);
    EXPECT_EQ(got[i].megatron_layer, i + 1);
    EXPECT_EQ(x.layer, i);
    EXPECT_EQ(x.step, 0);
    EXPECT_EQ(x.sources, 2);
    EXPECT_EQ(x.tokens, 3);
    std::vector<int64_t> want(16, 0);
    want[2 * i] = 3;
    want[2 * i + 1] = 2;
    want[15] = 1;
    EXPECT_EQ(x.expert_counts(), want);
  }
}

TEST_F(TraceTest, MegatronDenseLayerGapsCloseOverTheWholeTrace) {
  // A 6-layer model with MoE on every second layer (Megatron layer_number 2, 4, 6 carry routers; 1, 3, 5
  // are dense and leave no record), one rank, records out of order. Step 1 records only layer 4: it is
  // still MoE layer 1, because the numbering is taken over the whole trace, not step by step. The MTP
  // module numbers its own layers (here 7): its first layer is MTP layer 0.
  const auto rec = [](int step, int layer, int expert, const std::string& extra = "") {
    return "{\"rank\": 0, \"step\": " + std::to_string(step) + ", \"layer\": " + std::to_string(layer) +
           ", \"num_tokens\": 1, \"topk\": 1, \"top_indices\": [[" + std::to_string(expert) + "]]" + extra +
           "}\n";
  };
  fs::create_directories(dir_ / "gaps");
  std::ofstream((dir_ / "gaps" / "router_trace_rank0.jsonl").string(), std::ios::binary)
      << rec(0, 6, 3) << rec(0, 2, 1) << rec(0, 4, 2) << rec(0, 7, 0, R"(, "block": "mtp", "mtp_idx": 0)")
      << rec(1, 4, 2);
  const auto got = import_megatron_router_traces((dir_ / "gaps").string(), 4);
  // Order: (step 0, decoder, 2), (0, decoder, 4), (0, decoder, 6), (0, mtp 0, 7), (1, decoder, 4).
  ASSERT_EQ(got.size(), 5u);
  const int want_step[] = {0, 0, 0, 0, 1}, want_megatron[] = {2, 4, 6, 7, 4}, want_layer[] = {0, 1, 2, 0, 1};
  const int want_expert[] = {1, 2, 3, 0, 2};
  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE("sample " + std::to_string(i));
    EXPECT_EQ(got[i].block, i == 3 ? MegatronBlock::mtp : MegatronBlock::decoder);
    EXPECT_EQ(got[i].sample.step, want_step[i]);
    EXPECT_EQ(got[i].megatron_layer, want_megatron[i]);
    EXPECT_EQ(got[i].sample.layer, want_layer[i]);
    std::vector<int64_t> want(4, 0);
    want[want_expert[i]] = 1;
    EXPECT_EQ(got[i].sample.expert_counts(), want);
  }
}

TEST_F(TraceTest, MegatronImportErrors) {
  const std::string good0 =
      R"({"rank": 0, "step": 0, "layer": 0, "num_tokens": 1, "topk": 2, "top_indices": [[0, 1]]})"
      "\n";
  auto make = [&](const std::string& name, const std::string& rank0, const std::string& rank1) {
    fs::create_directories(dir_ / name);
    std::ofstream((dir_ / name / "router_trace_rank0.jsonl").string(), std::ios::binary) << rank0;
    std::ofstream((dir_ / name / "router_trace_rank1.jsonl").string(), std::ios::binary) << rank1;
    return (dir_ / name).string();
  };
  auto rank1_file = [&](const std::string& d) { return d + "/router_trace_rank1.jsonl"; };
  // num_tokens 2 but one row.
  std::string d =
      make("m1", good0,
           R"({"rank": 1, "step": 0, "layer": 0, "num_tokens": 2, "topk": 2, "top_indices": [[0, 1]]})"
           "\n");
  expect_error<ConfigError>([&] { import_megatron_router_traces(d, 4); }, rank1_file(d), 1, "num_tokens = 2");
  // A row of 3 ids with topk 2.
  d = make("m2", good0,
           R"({"rank": 1, "step": 0, "layer": 0, "num_tokens": 1, "topk": 2, "top_indices": [[0, 1, 2]]})"
           "\n");
  expect_error<ConfigError>([&] { import_megatron_router_traces(d, 4); }, rank1_file(d), 1, "topk = 2");
  // Expert id 4 with 4 experts, on line 2.
  d = make("m3", good0,
           R"({"rank": 1, "step": 0, "layer": 0, "num_tokens": 1, "topk": 2, "top_indices": [[0, 1]]})"
           "\n"
           R"({"rank": 1, "step": 0, "layer": 1, "num_tokens": 1, "topk": 2, "top_indices": [[4, 1]]})"
           "\n");
  expect_error<ConfigError>([&] { import_megatron_router_traces(d, 4); }, rank1_file(d), 2, "[0, 3]");
  // topk 1 in rank 1 after topk 2 in rank 0.
  d = make("m4", good0,
           R"({"rank": 1, "step": 0, "layer": 0, "num_tokens": 1, "topk": 1, "top_indices": [[0]]})"
           "\n");
  expect_error<ConfigError>([&] { import_megatron_router_traces(d, 4); }, rank1_file(d), 1,
                            "router_trace_rank0.jsonl:1");
  // A record claiming rank 0 in rank 1's file; an unknown block; a truncated last line.
  d = make("m5", good0, good0);
  expect_error<ConfigError>([&] { import_megatron_router_traces(d, 4); }, rank1_file(d), 1, "/rank");
  d = make(
      "m6", good0,
      R"({"rank": 1, "step": 0, "layer": 0, "num_tokens": 1, "topk": 2, "top_indices": [[0, 1]], "block": "encoder"})"
      "\n");
  expect_error<ConfigError>([&] { import_megatron_router_traces(d, 4); }, rank1_file(d), 1, "/block");
  d = make("m7", good0, good0.substr(0, 30));
  expect_error<ParseError>([&] { import_megatron_router_traces(d, 4); }, rank1_file(d), 1, "truncated");
  // A gap in the ranks, and an empty directory.
  fs::create_directories(dir_ / "m8");
  std::ofstream((dir_ / "m8" / "router_trace_rank0.jsonl").string()) << good0;
  std::ofstream((dir_ / "m8" / "router_trace_rank2.jsonl").string()) << good0;
  EXPECT_THROW(import_megatron_router_traces((dir_ / "m8").string(), 4), ConfigError);
  fs::create_directories(dir_ / "m9");
  EXPECT_THROW(import_megatron_router_traces((dir_ / "m9").string(), 4), IoError);
}

// ------------------------------------------------------------------------------ expert-count tables

// The rows of the OLMoE routing-analysis table these tests read (tests/data/reference/README.md).
std::string olmoe_table() {
  return std::string(MOESIM_TEST_DATA) + "/reference/olmoe_mixtral_expert_counts.csv";
}

TEST_F(TraceTest, CountTableImportOlmoe) {
  ASSERT_TRUE(fs::exists(olmoe_table())) << "committed reference table missing: " << olmoe_table();
  const auto arxiv = import_expert_count_table(olmoe_table(), {"olmoe", "expert_counts", "arxiv", 64, 8});
  ASSERT_EQ(arxiv.size(), 3u);  // layers 0, 7, 15
  EXPECT_EQ(arxiv[0].layer, 0);
  EXPECT_EQ(arxiv[1].layer, 7);
  EXPECT_EQ(arxiv[2].layer, 15);
  // max/mean = 204013 / (1671168 / 64) = 204013 / 26112 = 7.8130.
  const ExpertLoadStats st = expert_load_stats(arxiv[0]);
  EXPECT_EQ(st.max, 204013);
  EXPECT_DOUBLE_EQ(st.mean, 26112.0);
  EXPECT_NEAR(st.max_over_mean, 7.813, 5e-4);
  EXPECT_EQ(arxiv[0].sources, 1);
  EXPECT_EQ(arxiv[0].slots(), 1671168);

  // Every olmoe row: the importer checks sum == total; the header says 102 × 2048 = 208896 tokens per
  // pretraining domain (tulu: its own total, 1641944 slots = 205243 tokens of top-8).
  int rows = 0;
  for (const std::string kind : {"expert_counts", "expert_counts_top1"}) {
    const int top_k = kind == "expert_counts" ? 8 : 1;
    for (const std::string domain : {"arxiv", "book", "c4", "github", "wikipedia", "tulu"}) {
      if (domain == "tulu" && top_k == 1) continue;  // the table has no top-1 tulu rows
      const auto samples = import_expert_count_table(olmoe_table(), {"olmoe", kind, domain, 64, top_k});
      EXPECT_EQ(samples.size(), 3u) << kind << " " << domain;
      for (const auto& s : samples) {
        EXPECT_EQ(s.slots(), s.tokens * top_k);
        EXPECT_EQ(s.tokens, domain == "tulu" ? 205243 : 208896) << kind << " " << domain << " " << s.layer;
        ++rows;
      }
    }
  }
  EXPECT_EQ(rows, 33);

  // 8 experts on an OLMoE row: column e8 holds slots, which is an error naming the CSV line (line 4:
  // two comment lines, then the header).
  expect_error<ConfigError>(
      [] {
        import_expert_count_table(olmoe_table(), {"olmoe", "expert_counts", "arxiv", 8, 8});
      },
      "olmoe_mixtral_expert_counts.csv", 4, "column e8");
  expect_error<ConfigError>(
      [] {
        import_expert_count_table(olmoe_table(), {"olmoe", "expert_counts", "nowhere", 64, 8});
      },
      "olmoe_mixtral_expert_counts.csv", 0, "olmoe/expert_counts/arxiv");
}

TEST_F(TraceTest, CountTableImportMixtral) {
  ASSERT_TRUE(fs::exists(olmoe_table())) << "committed reference table missing: " << olmoe_table();
  // Mixtral-8x7B: max/mean between 1.08 and 1.33 (to two decimals) in every domain and layer.
  for (const std::string domain : {"arxiv", "book", "c4", "github", "wikipedia"}) {
    const auto samples = import_expert_count_table(olmoe_table(), {"mistral", "expert_counts", domain, 8, 2});
    ASSERT_EQ(samples.size(), 3u) << domain;
    for (const auto& s : samples) {
      const double r = expert_load_stats(s).max_over_mean;
      EXPECT_GE(std::round(r * 100) / 100, 1.08) << domain << " layer " << s.layer << ": " << r;
      EXPECT_LE(std::round(r * 100) / 100, 1.33) << domain << " layer " << s.layer << ": " << r;
      EXPECT_EQ(s.tokens, 208896);
    }
  }
}

TEST_F(TraceTest, CountTableImportErrors) {
  const std::string head = "# comment\nmodel,kind,domain,layer,total,e0,e1,e2\n";
  const std::string p1 = write_file("sum.csv", head + "m,k,d,0,10,4,6,0\nm,k,d,1,10,4,5,0\n");
  expect_error<ConfigError>([&] { import_expert_count_table(p1, {"m", "k", "d", 3, 1}); }, p1, 4, "sum");
  const std::string p2 = write_file("int.csv", head + "m,k,d,0,10,4,x,0\n");
  expect_error<ParseError>([&] { import_expert_count_table(p2, {"m", "k", "d", 3, 1}); }, p2, 3, "column e1");
  const std::string p3 = write_file("fields.csv", head + "m,k,d,0,10,4,6,0\nother,k,d,0,10,4,6\n");
  expect_error<ParseError>(
      [&] {
        import_expert_count_table(p3, {"m", "k", "d", 3, 1});
      },
      p3, 4, "8 comma-separated");
  const std::string p4 = write_file("header.csv", "model,kind,domain,layer,e0\n");
  expect_error<ParseError>([&] { import_expert_count_table(p4, {"m", "k", "d", 1, 1}); }, p4, 1, "header");
  const std::string p5 = write_file("dup.csv", head + "m,k,d,0,10,4,6,0\nm,k,d,0,10,4,6,0\n");
  expect_error<ConfigError>(
      [&] {
        import_expert_count_table(p5, {"m", "k", "d", 3, 1});
      },
      p5, 4, "layer 0 again");
  const std::string p6 = write_file("topk.csv", head + "m,k,d,0,9,4,5,0\n");
  expect_error<ConfigError>(
      [&] {
        import_expert_count_table(p6, {"m", "k", "d", 3, 2});
      },
      p6, 3, "multiple of top_k");
  // A valid file with CRLF line ends reads.
  const std::string p7 =
      write_file("crlf.csv", "# c\r\nmodel,kind,domain,layer,total,e0,e1\r\nm,k,d,3,6,2,4\r\n");
  const auto s = import_expert_count_table(p7, {"m", "k", "d", 2, 2});
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].layer, 3);
  EXPECT_EQ(s[0].tokens, 3);
  EXPECT_EQ(s[0].counts, (std::vector<int64_t>{2, 4}));
}

// ------------------------------------------------------------------- end record, version 1, upgrade

// The end record counts the records, so a file cut between two records (where every line is whole)
// is told from a whole one.
TEST_F(TraceTest, EndRecordDetectsCutsAtRecordBoundaries) {
  const std::string r0 = R"({"step": 0, "layer": 0, "tokens": [[0, 1]]})"
                         "\n";
  const std::string r1 = R"({"step": 0, "layer": 1, "tokens": [[2, 3]]})"
                         "\n";
  const std::string r2 = R"({"step": 1, "layer": 0, "tokens": [[4, 5]]})"
                         "\n";
  // Whole: 3 records, then {"end": true, "records": 3}.
  const std::string whole = write_file("whole.jsonl", kHeader + r0 + r1 + r2 + end_record(3));
  EXPECT_EQ(read_all(whole).size(), 3u);
  // Cut after each record: the error is on the line after the last one, and says how many were read.
  expect_read_error<ParseError>(write_file("cut0.jsonl", kHeader), 2, "\"records\": 0");
  expect_read_error<ParseError>(write_file("cut2.jsonl", kHeader + r0 + r1), 4, "found the end of the file");
  expect_read_error<ParseError>(write_file("cut3.jsonl", kHeader + r0 + r1 + r2), 5, "\"records\": 3");
  // A whole last record without its newline, but no end record: still cut.
  expect_read_error<ParseError>(write_file("cut-nl.jsonl", kHeader + r0 + r1.substr(0, r1.size() - 1)), 4,
                                "found the end of the file");
  // An end record counting other than the records before it; a line after the end record; an end
  // record with "end" other than true.
  expect_read_error<ParseError>(write_file("count.jsonl", kHeader + r0 + r1 + end_record(3)), 4,
                                "found the number 3");
  expect_read_error<ParseError>(write_file("after.jsonl", kHeader + r0 + end_record(1) + r1), 4,
                                "after the end record (line 3)");
  expect_read_error<ConfigError>(write_file("false.jsonl", kHeader + r0 +
                                                               R"({"end": false, "records": 1})"
                                                               "\n"),
                                 3, "/end");
  // The records are all returned before the check at the end: a streaming reader sees them, then the
  // error.
  TraceReader r(write_file("stream.jsonl", kHeader + r0 + r1));
  RoutingSample s;
  EXPECT_TRUE(r.next(s));
  EXPECT_TRUE(r.next(s));
  EXPECT_THROW(r.next(s), ParseError);
}

TEST_F(TraceTest, WriterEndsWithCountAndRemovesUnfinishedFiles) {
  RoutingSample s;
  s.sources = 1;
  s.experts = 4;
  s.top_k = 1;
  s.token_experts = {0, 3};
  counts_from_tokens(s);
  const TraceHeader h{kTraceFormatVersion, 4, 1, 1, 2, "", ""};
  {
    TraceWriter w(path("closed.jsonl"), h);
    w.write(s);
    s.layer = 1;
    w.write(s);
    w.close();
  }
  std::ifstream in(path("closed.jsonl"));
  std::string line, last;
  int lines = 0;
  while (std::getline(in, line)) last = line, ++lines;
  EXPECT_EQ(lines, 4);
  EXPECT_EQ(last, R"({"end":true,"records":2})");
  {
    TraceWriter w(path("unfinished.jsonl"), h);
    s.layer = 0;
    w.write(s);
    EXPECT_TRUE(fs::exists(path("unfinished.jsonl")));
  }  // destroyed without close(), as when an error stops a conversion: no cut trace is left
  EXPECT_FALSE(fs::exists(path("unfinished.jsonl")));
}

TEST_F(TraceTest, Version1IsRefusedAndUpgraded) {
  const std::string v1 =
      R"({"format": "moesim-routing-trace", "version": 1, "experts": 8, "top_k": 2, "sources": 2, "layers": 3})"
      "\n";
  // Version 1 count records may omit tokens: ⌊(kept 7 + dropped 2) / 2⌋ = 4, so 4 x 2 = 8 slots < 9: the
  // rule version 1 had cannot hold these counts, and the upgrade says so. With 5 tokens, 10 = 7 + 2 + 1
  // unfilled.
  const std::string rec =
      R"({"step": 0, "layer": 1, "counts": [[1,0,0,0,0,0,0,2],[0,0,4,0,0,0,0,0]], "dropped": 2)";
  const std::string old_file =
      write_file("old.jsonl", v1 + rec + ", \"tokens\": 5}\n" +
                                  R"({"step": 2, "layer": 0, "tokens": [[0, 1], [7, -1]]})"
                                  "\n");
  expect_read_error<ConfigError>(old_file, 1, "moesim trace upgrade " + old_file);
  EXPECT_EQ(upgrade_trace(old_file, path("new.jsonl")), 2);
  const auto got = read_all(path("new.jsonl"));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].tokens, 5);
  EXPECT_EQ(got[0].dropped, 2);
  EXPECT_EQ(got[0].expert_counts(), (std::vector<int64_t>{1, 0, 4, 0, 0, 0, 0, 2}));
  EXPECT_EQ(got[1].step, 2);
  EXPECT_EQ(got[1].token_experts, (std::vector<int32_t>{0, 1, 7, -1}));
  // The default tokens, too few for the slots: refused, and no output is left behind.
  const std::string short_file = write_file("short.jsonl", v1 + rec + "}\n");
  expect_error<ConfigError>([&] { upgrade_trace(short_file, path("short-new.jsonl")); }, short_file, 2,
                            "found tokens 4");
  EXPECT_FALSE(fs::exists(path("short-new.jsonl")));
  // An existing output is never overwritten.
  EXPECT_THROW(upgrade_trace(old_file, path("new.jsonl")), IoError);
}

// ------------------------------------------------------------------------- numbers and record checks

TEST_F(TraceTest, NumbersAreRangeCheckedAndQuotedAsWritten) {
  const std::string zeros = ",0,0,0,0,0,0]";
  auto counts = [&](const std::string& first, const std::string& tokens) {
    return kHeader + R"({"step": 0, "layer": 0, "tokens": )" + tokens + R"(, "counts": [[)" + first + ",1" +
           zeros + ",[0,0,0,0,0,0,0,0]]}\n" + end_record(1);
  };
  // 2^64 - 1 parses as an unsigned integer; read as int64_t it would be -1.
  expect_read_error<ConfigError>(write_file("u64.jsonl", counts("18446744073709551615", "1")), 2,
                                 "found the number 18446744073709551615");
  // Beyond 64 bits nlohmann keeps only a double: the literal is kept for the message.
  expect_read_error<ConfigError>(write_file("big.jsonl", counts("99999999999999999999999", "1")), 2,
                                 "found the number 99999999999999999999999");
  // Beyond a double: not a number nlohmann can hold (ParseError, with the byte).
  expect_read_error<ParseError>(write_file("inf.jsonl", counts("1e400", "1")), 2, "1e400");
  // 2^53 is the bound of a count and of a record's sum: 2^53 + 1 in one count, then 2^53 over two.
  expect_read_error<ConfigError>(write_file("c53.jsonl", counts("9007199254740993", "1")), 2,
                                 "[0, 2^53 = 9007199254740992]");
  expect_read_error<ConfigError>(write_file("sum.jsonl", counts("9007199254740992", "1")), 2,
                                 "/counts/0/1: expected counts summing to at most 2^53");
  // tokens x top_k must stay within 2^53: tokens at most 2^52 with top_k 2.
  expect_read_error<ConfigError>(write_file("tok.jsonl", counts("1", "18446744073709551615")), 2,
                                 "found the number 18446744073709551615");
  expect_read_error<ConfigError>(write_file("tok52.jsonl", counts("1", "4503599627370497")), 2,
                                 "[0, 4503599627370496]");
  // The step and the header's numbers too.
  expect_read_error<ConfigError>(
      write_file("step.jsonl", kHeader + R"({"step": 18446744073709551615, "layer": 0, "tokens": [[0, 1]]})"
                                         "\n"),
      2, "found the number 18446744073709551615");
  expect_read_error<ConfigError>(
      write_file(
          "h.jsonl",
          R"({"format": "moesim-routing-trace", "version": 2, "experts": 70000, "top_k": 2, "sources": 1, "layers": 3})"
          "\n"),
      1, "[1, 65536]");
  // sources x experts above 2^24 cells: 65536 experts on 512 sources.
  expect_read_error<ConfigError>(
      write_file(
          "cells.jsonl",
          R"({"format": "moesim-routing-trace", "version": 2, "experts": 65536, "top_k": 2, "sources": 512, "layers": 3})"
          "\n"),
      1, "16777216");
}

TEST_F(TraceTest, TokensMustMatchCounts) {
  auto rec = [&](const std::string& extra) {
    return kHeader + R"({"step": 0, "layer": 0, "counts": [[1,0,0,0,0,0,0,2],[0,0,3,0,0,0,0,0]])" + extra +
           "}\n" + end_record(1);
  };
  // 6 kept slots, top_k 2: tokens 3 (3 x 2 = 6).
  EXPECT_EQ(read_all(write_file("ok.jsonl", rec(", \"tokens\": 3")))[0].tokens, 3);
  // tokens 4 needs 8 = 6 + dropped + unfilled: 2 dropped, or 2 unfilled, or 1 and 1.
  EXPECT_EQ(read_all(write_file("drop.jsonl", rec(", \"tokens\": 4, \"dropped\": 2")))[0].dropped, 2);
  EXPECT_EQ(read_all(write_file("unf.jsonl", rec(", \"tokens\": 4, \"unfilled\": 2")))[0].tokens, 4);
  EXPECT_EQ(
      read_all(write_file("both.jsonl", rec(", \"tokens\": 4, \"unfilled\": 1, \"dropped\": 1")))[0].tokens,
      4);
  // tokens 100 contradicts 6 slots; tokens 2 is too few for them; no tokens at all.
  expect_read_error<ConfigError>(write_file("many.jsonl", rec(", \"tokens\": 100")), 2,
                                 "= 6 + 0 + 0 = 6, found tokens 100 (200 slots)");
  expect_read_error<ConfigError>(write_file("few.jsonl", rec(", \"tokens\": 2")), 2, "found tokens 2");
  expect_read_error<ConfigError>(write_file("none.jsonl", rec("")), 2, "/tokens");
  // The writer keeps the identity: tokens x top_k below kept + dropped is refused; above, the
  // difference is written as unfilled (checked in TraceRoundTripCountLevel).
  TraceWriter w(path("w.jsonl"), TraceHeader{kTraceFormatVersion, 8, 2, 2, 3, "", ""});
  RoutingSample s = read_all(write_file("src.jsonl", rec(", \"tokens\": 3")))[0];
  s.tokens = 2;
  expect_error<ConfigError>([&] { w.write_counts(s); }, path("w.jsonl"), 2, "tokens 2");
}

TEST_F(TraceTest, RecordsMustRouteAndNameEachExpertOncePerToken) {
  // All counts 0; all entries -1; no tokens.
  expect_read_error<ConfigError>(
      write_file(
          "zero.jsonl",
          kHeader +
              R"({"step": 0, "layer": 0, "tokens": 0, "counts": [[0,0,0,0,0,0,0,0],[0,0,0,0,0,0,0,0]]})"
              "\n" +
              end_record(1)),
      2, "all 16 counts 0");
  expect_read_error<ConfigError>(
      write_file("idle.jsonl", kHeader +
                                   R"({"step": 0, "layer": 0, "tokens": [[-1, -1]]})"
                                   "\n" +
                                   end_record(1)),
      2, "every entry -1");
  expect_read_error<ConfigError>(write_file("empty.jsonl", kHeader +
                                                               R"({"step": 0, "layer": 0, "tokens": []})"
                                                               "\n" +
                                                               end_record(1)),
                                 2, "no tokens");
  // Token 1 names expert 4 twice; -1 twice is fine (two empty entries).
  expect_read_error<ConfigError>(
      write_file("dup.jsonl", kHeader +
                                  R"({"step": 0, "layer": 0, "tokens": [[0, 1], [4, 4]]})"
                                  "\n" +
                                  end_record(1)),
      2, "/tokens/1/1");
  const TraceHeader h3{kTraceFormatVersion, 8, 3, 1, 1, "", ""};
  {
    std::ofstream(path("minus.jsonl"))
        << R"({"format": "moesim-routing-trace", "version": 2, "experts": 8, "top_k": 3, "sources": 1, "layers": 1})"
        << "\n"
        << R"({"step": 0, "layer": 0, "tokens": [[2, -1, -1]]})"
        << "\n"
        << end_record(1);
  }
  EXPECT_EQ(read_all(path("minus.jsonl"))[0].slots(), 1);
  // The writer refuses the same samples.
  TraceWriter w(path("w.jsonl"), h3);
  RoutingSample s;
  s.sources = 1;
  s.experts = 8;
  s.top_k = 3;
  s.token_experts = {5, 1, 5};
  counts_from_tokens(s);
  expect_error<ConfigError>([&] { w.write(s); }, path("w.jsonl"), 2, "expert 5 twice");
  s.token_experts = {-1, -1, -1};
  counts_from_tokens(s);
  expect_error<ConfigError>([&] { w.write(s); }, path("w.jsonl"), 2, "all counts 0");
}

TEST(JsonNumbers, LiteralsKeptWhereTheValueLosesThem) {
  JsonDoc doc;
  JsonSyntax err;
  ASSERT_TRUE(parse_json_doc(
      R"({"a": [1, 18446744073709551616, 0.5, 2e300], "b": {"c/d": -99999999999999999999}})", doc, err));
  // Kept: the integers beyond 64 bits and the float above 2^53; not kept: 1 and 0.5.
  EXPECT_EQ(doc.literals.size(), 3u);
  EXPECT_EQ(doc.literals.at("/a/1"), "18446744073709551616");
  EXPECT_EQ(doc.literals.at("/a/3"), "2e300");
  EXPECT_EQ(doc.literals.at("/b/c~1d"), "-99999999999999999999");
  EXPECT_EQ(describe_value(doc, "/a/1", doc.value["a"][1]), "the number 18446744073709551616");
  EXPECT_EQ(doc.value["a"][2].get<double>(), 0.5);
  try {
    json_integer(doc, doc.value["a"][1], "x.json", "/a/1", 0, 10, "a count");
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "x.json: /a/1: expected a count, an integer in [0, 10], found the number 18446744073709551616");
  }
  EXPECT_EQ(json_integer(doc, doc.value["a"][0], "x.json", "/a/0", 0, 10, "a count"), 1);
  EXPECT_THROW(json_integer(doc, doc.value["a"][2], "x.json", "/a/2", 0, 10, "a count"), ConfigError);
  // A syntax error and a number beyond a double: the byte (0-based) and what was found.
  EXPECT_FALSE(parse_json_doc("[1,\n 2,,]", doc, err));
  EXPECT_EQ(line_column("[1,\n 2,,]", err.byte), "2:4");
  EXPECT_NE(err.found.find("syntax error"), std::string::npos) << err.found;
  EXPECT_FALSE(parse_json_doc("[1e400]", doc, err));
  EXPECT_EQ(err.found, "the number 1e400, beyond the range of a double");
}

// ------------------------------------------------------------------------------- importer checks

TEST_F(TraceTest, MegatronChecksNumbersDuplicatesIdleKeysAndLayers) {
  auto make = [&](const std::string& name, const std::string& rank0) {
    fs::create_directories(dir_ / name);
    std::ofstream((dir_ / name / "router_trace_rank0.jsonl").string(), std::ios::binary) << rank0;
    return (dir_ / name).string();
  };
  auto rec = [](const std::string& step, int layer, const std::string& rows, int n) {
    return "{\"rank\": 0, \"step\": " + step + ", \"layer\": " + std::to_string(layer) +
           ", \"num_tokens\": " + std::to_string(n) + ", \"topk\": 2, \"top_indices\": [" + rows + "]}\n";
  };
  std::string d = make("dup", rec("0", 1, "[0, 1], [3, 3]", 2));
  expect_error<ConfigError>([&] { import_megatron_router_traces(d, 4); }, d + "/router_trace_rank0.jsonl", 1,
                            "/top_indices/1/1");
  d = make("step", rec("18446744073709551615", 1, "[0, 1]", 1));
  expect_error<ConfigError>([&] { import_megatron_router_traces(d, 4); }, d + "/router_trace_rank0.jsonl", 1,
                            "found the number 18446744073709551615");
  // Layer 2 of step 0 has no token on any rank (line 2).
  d = make("idle", rec("0", 1, "[0, 1]", 1) + rec("0", 2, "", 0));
  expect_error<ConfigError>([&] { import_megatron_router_traces(d, 4); }, d + "/router_trace_rank0.jsonl", 2,
                            "0 tokens on every rank");
  // Layer numbers 1, 2, 7: three MoE layers. With max_layers 2 the third, 7 (line 3), is refused.
  d = make("layers", rec("0", 1, "[0, 1]", 1) + rec("0", 2, "[0, 1]", 1) + rec("0", 7, "[0, 1]", 1));
  EXPECT_EQ(import_megatron_router_traces(d, 4, 3).size(), 3u);
  expect_error<ConfigError>([&] { import_megatron_router_traces(d, 4, 2); }, d + "/router_trace_rank0.jsonl",
                            3, "found 3 recorded in " + d + ", layer 7 the first beyond them");
}

TEST_F(TraceTest, CountTableChecksRangesZeroRowsAndLayers) {
  const std::string head = "model,kind,domain,layer,total,e0,e1\n";
  auto query = [](int max_layers) {
    CountTableQuery q{"m", "k", "d", 2, 1};
    q.max_layers = max_layers;
    return q;
  };
  const std::string big = write_file("big.csv", head + "m,k,d,0,5,99999999999999999999,5\n");
  expect_error<ConfigError>([&] { import_expert_count_table(big, query(0)); }, big, 2,
                            "found 99999999999999999999");
  const std::string neg = write_file("neg.csv", head + "m,k,d,0,5,-1,6\n");
  expect_error<ConfigError>([&] { import_expert_count_table(neg, query(0)); }, neg, 2, "found -1");
  const std::string frac = write_file("frac.csv", head + "m,k,d,0,5,2.5,2.5\n");
  expect_error<ParseError>([&] { import_expert_count_table(frac, query(0)); }, frac, 2, "\"2.5\"");
  const std::string sum = write_file("sum.csv", head + "m,k,d,0,5,9007199254740992,9007199254740992\n");
  expect_error<ConfigError>([&] { import_expert_count_table(sum, query(0)); }, sum, 2, "column e1");
  const std::string zero = write_file("zero.csv", head + "m,k,d,0,0,0,0\n");
  expect_error<ConfigError>([&] { import_expert_count_table(zero, query(0)); }, zero, 2, "routed slot");
  const std::string layers = write_file("layers.csv", head + "m,k,d,0,2,1,1\nm,k,d,5,2,1,1\n");
  EXPECT_EQ(import_expert_count_table(layers, query(6)).size(), 2u);
  expect_error<ConfigError>([&] { import_expert_count_table(layers, query(5)); }, layers, 3, "[0, 4]");
}

TEST_F(TraceTest, ImportSamplesIsTheDecoderOrderedByStep) {
  ImportSpec spec;
  spec.format = TraceFormat::kMegatron;
  spec.path = megatron_dir();
  spec.experts = 4;
  // tests/data/traces/megatron: decoder (step 1, layers 0 and 1), an MTP module (step 1), decoder
  // (step 2, layer 0): the MTP sample is not a decoder MoE layer.
  const auto got = import_samples(spec);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].step, 1);
  EXPECT_EQ(got[1].step, 1);
  EXPECT_EQ(got[1].layer, 1);
  EXPECT_EQ(got[2].step, 2);
  EXPECT_EQ(got[2].expert_counts(), (std::vector<int64_t>{1, 0, 2, 1}));
  spec.max_layers = 1;  // two decoder layers recorded
  EXPECT_THROW(import_samples(spec), ConfigError);
  spec.format = TraceFormat::kMoesim;
  EXPECT_THROW(import_samples(spec), ConfigError);
  const std::string table = write_file("t.csv", "model,kind,domain,layer,total,e0,e1\nm,k,d,3,4,1,3\n");
  spec = ImportSpec{TraceFormat::kCountTable, table, 2, 2, "m", "k", "d", 0};
  const auto rows = import_samples(spec);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].tokens, 2);  // total 4 / top_k 2
  EXPECT_EQ(rows[0].layer, 3);
}

TEST_F(TraceTest, ExpertLoadMatrixChecks) {
  const std::string ok = write_file("ok.json", "[[1, 2.5, 0, 4], [0, 0, 1e3, 0]]");
  const auto w = read_expert_loads(ok);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0], (std::vector<double>{1, 2.5, 0, 4}));
  EXPECT_EQ(w[1][2], 1000.0);
  const auto fails = [&](const std::string& name, const std::string& text, const std::string& also) {
    const std::string p = write_file(name, text);
    expect_error<ConfigError>([&] { read_expert_loads(p); }, p + ": ", 0, also);
  };
  fails("ragged.json", "[[1, 2, 3, 4], [1, 2, 3]]", "/1: expected an array of 4 expert loads");
  fails("neg.json", "[[1, -2]]", "/0/1: expected a number in [0, 2^53 = 9007199254740992] (an expert load)");
  fails("nan.json", "[[1, \"NaN\"]]", "found the string \"NaN\"");
  fails("huge.json", "[[1, 18446744073709551616]]", "found the number 18446744073709551616");
  fails("zero.json", "[[1, 2], [0, 0]]", "/1: expected at least one load above 0");
  fails("empty.json", "[]", "a non-empty array of layers");
  fails("row.json", "[[]]", "/0: expected a non-empty array of expert loads");
  const std::string inf = write_file("inf.json", "[[1,\n 1e400]]");
  expect_error<ParseError>([&] { read_expert_loads(inf); }, inf + ":2:", 0, "1e400");
  EXPECT_THROW(read_expert_loads(path("absent.json")), IoError);
}

// ----------------------------------------------------------------------------------------- rescaling

RoutingSample two_source_sample() {
  RoutingSample s;
  s.step = 2;
  s.layer = 1;
  s.sources = 2;
  s.experts = 3;
  s.top_k = 2;
  s.tokens = 12;
  s.counts = {5, 2, 0,   // source 0
              3, 7, 1};  // source 1
  return s;
}

TEST(Rescale, RescaleTwoSourcesToFour) {
  const RoutingSample in = two_source_sample();
  const RoutingSample out = rescale_sources(in, 4);
  // f = 2. Source 0: e0 5 = 2+2, leftover 1 to part 0 (offset → 1); e1 2 = 1+1; e2 0.
  //   rows 0, 1 = [3,1,0], [2,1,0].
  // Source 1: e0 3 = 1+1, leftover to part 0 (offset → 1); e1 7 = 3+3, leftover to part 1 (offset → 0);
  //   e2 1 = 0+0, leftover to part 0. Rows 2, 3 = [2,3,1], [1,4,0].
  EXPECT_EQ(out.sources, 4);
  EXPECT_EQ(out.counts, (std::vector<int64_t>{3, 1, 0, 2, 1, 0, 2, 3, 1, 1, 4, 0}));
  EXPECT_EQ(out.expert_counts(), in.expert_counts());  // 8, 9, 1 exactly
  EXPECT_EQ(out.tokens, in.tokens);
  EXPECT_EQ(out.step, 2);
  EXPECT_EQ(out.layer, 1);
}

TEST(Rescale, RescaleTwoSourcesToOne) {
  const RoutingSample in = two_source_sample();
  const RoutingSample out = rescale_sources(in, 1);
  EXPECT_EQ(out.sources, 1);
  EXPECT_EQ(out.counts, (std::vector<int64_t>{8, 9, 1}));
  EXPECT_EQ(out.expert_counts(), in.expert_counts());
  EXPECT_EQ(rescale_sources(in, 2).counts, in.counts);
}

TEST(Rescale, RescaleOneToThreeLeftoversRotate) {
  RoutingSample in;
  in.sources = 1;
  in.experts = 3;
  in.top_k = 1;
  in.tokens = 11;
  in.counts = {4, 5, 2};
  const RoutingSample out = rescale_sources(in, 3);
  // e0 4 = 1+1+1, leftover 1 → part 0 (offset 1); e1 5 = 1+1+1, leftovers 2 → parts 1, 2 (offset 0);
  // e2 2 = 0+0+0, leftovers 2 → parts 0, 1. Rows [2,1,1], [1,2,1], [1,2,0]: totals 4, 4, 3.
  EXPECT_EQ(out.counts, (std::vector<int64_t>{2, 1, 1, 1, 2, 1, 1, 2, 0}));
  EXPECT_EQ(out.expert_counts(), in.expert_counts());
}

TEST(Rescale, RescaleTokenDetailRoundRobin) {
  RoutingSample in;
  in.sources = 2;
  in.experts = 4;
  in.top_k = 2;
  in.token_experts = {0, 1, 2, 3, 0, 2, 1, 3};
  in.token_source = {0, 1, 0, 0};
  counts_from_tokens(in);
  // Splitting: source 0's tokens 0, 2, 3 go to 0, 1, 0; source 1's token 1 goes to 2.
  const RoutingSample four = rescale_sources(in, 4);
  EXPECT_EQ(four.token_source, (std::vector<int32_t>{0, 2, 1, 0}));
  EXPECT_EQ(four.token_experts, in.token_experts);
  EXPECT_EQ(four.expert_counts(), in.expert_counts());
  // Merging: every token to source 0, and then counts equal those of the tokens.
  const RoutingSample one = rescale_sources(in, 1);
  EXPECT_EQ(one.token_source, (std::vector<int32_t>{0, 0, 0, 0}));
  RoutingSample check = one;
  counts_from_tokens(check);
  EXPECT_EQ(check.counts, one.counts);
  // Without token_source, 4 tokens over 2 sources run 0,0,1,1; split to 4: 0,1,2,3.
  in.token_source.clear();
  EXPECT_EQ(rescale_sources(in, 4).token_source, (std::vector<int32_t>{0, 1, 2, 3}));
}

TEST(Rescale, RescaleRejectsIncompatibleCounts) {
  const RoutingSample in = two_source_sample();
  EXPECT_THROW(rescale_sources(in, 3), ConfigError);
  EXPECT_THROW(rescale_sources(in, 0), ConfigError);
  try {
    rescale_sources(in, 3);
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("expected"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------- statistics

TEST(ExpertLoadStats, TraceStatsMatchHandFormulas) {
  // Slots 2, 4, 6, 0: mean 3, max 6, max/mean 2; population variance (1+1+9+9)/4 = 5, cv = √5 / 3.
  RoutingSample s;
  s.sources = 2;
  s.experts = 4;
  s.counts = {1, 4, 0, 0, 1, 0, 6, 0};
  const ExpertLoadStats st = expert_load_stats(s);
  EXPECT_EQ(st.max, 6);
  EXPECT_DOUBLE_EQ(st.mean, 3.0);
  EXPECT_DOUBLE_EQ(st.max_over_mean, 2.0);
  EXPECT_NEAR(st.cv, std::sqrt(5.0) / 3.0, 1e-12);
  const ExpertLoadStats zero = expert_load_stats(std::vector<int64_t>{0, 0});
  EXPECT_EQ(zero.max_over_mean, 0.0);
  EXPECT_EQ(zero.cv, 0.0);
  EXPECT_DOUBLE_EQ(expert_load_stats(std::vector<int64_t>{5, 5, 5}).cv, 0.0);
}

// ----------------------------------------------------------------------------------------- streaming

// Resident set size in bytes (Linux /proc/self/statm), or -1 where unavailable.
int64_t resident_bytes() {
  std::ifstream in("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  if (!(in >> pages >> resident)) return -1;
  return resident * ::sysconf(_SC_PAGESIZE);
}

TEST_F(TraceTest, TraceStreaming200kRecordsFlatMemory) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP()
      << "AddressSanitizer's quarantine holds freed memory, so resident memory does not measure retention";
#endif
  constexpr int kRecords = 200000;
  constexpr int kLayers = 4;
  const std::string p = path("long.jsonl");
  {
    TraceWriter w(p, TraceHeader{kTraceFormatVersion, 8, 2, 1, kLayers, "", "streaming test"});
    RoutingSample s;
    s.sources = 1;
    s.experts = 8;
    s.top_k = 2;
    s.counts.assign(8, 0);
    for (int i = 0; i < kRecords; ++i) {
      s.step = i / kLayers;
      s.layer = i % kLayers;
      s.counts[0] = i % 7;
      s.counts[3] = 2;
      s.tokens = (i % 7 + 3) / 2;  // ⌈slots / top_k⌉: one entry unfilled when the slots are odd
      w.write_counts(s);
    }
    w.close();
  }
  // Expected: Σ (i mod 7) over 200000 records = 28571 full cycles × 21 + (0+1+2) = 600000; plus 2 each.
  const int64_t expected_slots = 28571LL * 21 + 3 + 2LL * kRecords;

  TraceReader r(p);
  RoutingSample s;
  int64_t records = 0, slots = 0, before = -1;
  while (r.next(s)) {
    ++records;
    slots += s.slots();
    if (records == 1000) before = resident_bytes();
  }
  const int64_t after = resident_bytes();
  EXPECT_EQ(records, kRecords);
  EXPECT_EQ(slots, expected_slots);
  EXPECT_EQ(r.line(), kRecords + 2);  // the header, the records, the end record
  EXPECT_EQ(s.step, (kRecords - 1) / kLayers);
  // Storing 199,000 samples would take tens of MiB (each holds a vector of 8 counts); a streaming
  // reader stays within a few pages of where it was after the first thousand records. Under
  // AddressSanitizer freed blocks sit in its quarantine (up to 256 MiB), so the resident size says
  // nothing there: the sanitizer build checks the reading, the other builds the memory too.
  if (before > 0 && after > 0 && !kAddressSanitizer) {
    EXPECT_LT(after - before, 4LL << 20) << "RSS grew from " << before << " to " << after;
  }
}

}  // namespace
}  // namespace moesim::traces
