// Scenario loading: one valid scenario with hand-computed derived degrees, then one mutation per error
// class, each checked for the exact error type and a message naming file, JSON pointer, "expected" and
// the offending value. Catalog references are tested against a temporary catalog written by the test
// and, where the files exist, against the real scenarios/catalog.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scenarios/catalog.hpp"
#include "scenarios/error.hpp"
#include "scenarios/json_reader.hpp"
#include "scenarios/loader.hpp"
#include "scenarios/scenario.hpp"

namespace moesim {
namespace {

namespace fs = std::filesystem;

const std::string kSource = "small-moe.json";

std::string catalog_dir() {
  return std::string(MOESIM_SOURCE_DIR) + "/scenarios/catalog";
}
const Catalog& real_catalog() {
  static const Catalog c({catalog_dir()});
  return c;
}
const Catalog& empty_catalog() {
  static const Catalog c(std::vector<std::string>{});
  return c;
}

// An 8-expert top-2 MoE on 2 nodes x 8 GPUs; tp=2, pp=2, ep=4.
// Derived by hand: 16 GPUs / (tp 2 x cp 1 x pp 2) = dp 4; one stage holds tp x cp x dp = 8 GPUs, so
// edp = 8 / (ep 4 x etp 1) = 2; microbatches per pipeline = 64 / (1 x 4) = 16.
Json base() {
  return Json::parse(R"({
    "name": "small-moe",
    "model": {
      "name": "tiny-moe",
      "layers": 8, "hidden": 1024, "vocab": 32000, "dense_ffn": 4096,
      "attention": {"kind": "gqa", "heads": 16, "kv_heads": 4, "head_dim": 64},
      "moe": {"experts": 8, "top_k": 2, "expert_ffn": 2048}
    },
    "cluster": {
      "name": "two-nodes",
      "gpu": {
        "name": "test-gpu", "flops_bf16": "989TFlops", "flops_fp8": "1979TFlops",
        "memory": "80GiB", "memory_bandwidth": "3.35TBps", "sm_count": 132,
        "nvlink_bandwidth": "450GBps", "max_gpus_per_node": 8
      },
      "nodes": 2, "gpus_per_node": 8,
      "scale_up": {"kind": "nvswitch", "bandwidth": "450GBps", "latency": "3us"},
      "scale_out": {"kind": "rail_optimized", "nic_bandwidth": "400Gbps", "latency": "5us", "planes": 8}
    },
    "parallelism": {
      "attention": {"tp": 2, "cp": 1},
      "experts": {"ep": 4, "etp": 1},
      "pp": 2,
      "schedule": "1f1b",
      "microbatch_size": 1,
      "global_batch": 64
    },
    "workload": {"seq_len": 4096, "precision": "bf16", "comm_sms": 20}
  })");
}

// A temporary catalog directory, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("moesim_scenario_test_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string write(const std::string& rel, const std::string& text) const {
    fs::path p = path_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }

 private:
  fs::path path_;
};

// Runs `f`, requires an exception of type E and returns its message.
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no exception";
  return "";
}

// Every key of `raw` (recursively) is in `resolved` with the same value: resolving only adds defaults.
void expect_holds(const Json& resolved, const Json& raw) {
  for (auto it = raw.begin(); it != raw.end(); ++it) {
    ASSERT_TRUE(resolved.contains(it.key())) << it.key();
    if (it.value().is_object())
      expect_holds(resolved[it.key()], it.value());
    else
      EXPECT_EQ(resolved[it.key()], it.value()) << it.key();
  }
}

// Checks a located message: file, pointer, "expected" and the found value, in that order of shape.
void expect_located(const std::string& m, const std::string& source, const std::string& pointer,
                    const std::string& found) {
  EXPECT_EQ(m.rfind(source + ": " + pointer + ": expected ", 0), 0u) << m;
  EXPECT_NE(m.find(source), std::string::npos) << m;
  EXPECT_NE(m.find(pointer), std::string::npos) << m;
  EXPECT_NE(m.find("expected"), std::string::npos) << m;
  EXPECT_NE(m.find("found " + found), std::string::npos) << m;
}

std::string config_error(const Json& j, const Catalog& cat = empty_catalog()) {
  return message_of<ConfigError>([&] { scenario_from_json(j, kSource, cat); });
}
std::string parse_error(const Json& j, const Catalog& cat = empty_catalog()) {
  return message_of<ParseError>([&] { scenario_from_json(j, kSource, cat); });
}

bool exists(const std::string& rel) {
  return fs::is_regular_file(catalog_dir() + "/" + rel);
}

// ---------------------------------------------------------------------------------------- valid case

TEST(Scenario, BaseIsValidAndDerivesDegrees) {
  Scenario s = scenario_from_json(base(), kSource, empty_catalog());
  EXPECT_EQ(s.name, "small-moe");
  EXPECT_EQ(s.source, kSource);
  EXPECT_EQ(s.schema_version, 1);
  EXPECT_EQ(s.cluster.gpus(), 16);
  EXPECT_EQ(s.parallelism.tp, 2);
  EXPECT_EQ(s.parallelism.cp, 1);
  EXPECT_EQ(s.parallelism.pp, 2);
  EXPECT_EQ(s.layout.dp, 4);  // 16 / (2 x 1 x 2)
  EXPECT_EQ(s.parallelism.ep, 4);
  EXPECT_EQ(s.parallelism.etp, 1);
  EXPECT_EQ(s.layout.edp, 2);            // (2 x 1 x 4) / (4 x 1)
  EXPECT_EQ(s.layout.microbatches, 16);  // 64 / (1 x 4)
  EXPECT_EQ(s.parallelism.schedule, Schedule::k1F1B);
  EXPECT_EQ(s.parallelism.vpp, 1);
  EXPECT_EQ(s.parallelism.zero, 1);
}

TEST(Scenario, BaseResolvesUnitsAndDefaults) {
  Scenario s = scenario_from_json(base(), kSource, empty_catalog());
  const auto& g = s.cluster.gpu;
  EXPECT_EQ(g.name, "test-gpu");
  EXPECT_DOUBLE_EQ(g.flops_bf16, 989e12);
  EXPECT_DOUBLE_EQ(g.flops_fp8, 1979e12);
  EXPECT_DOUBLE_EQ(g.memory_bytes, 80.0 * 1024 * 1024 * 1024);
  EXPECT_DOUBLE_EQ(g.memory_bandwidth, 3.35e12);
  EXPECT_DOUBLE_EQ(g.nvlink_bandwidth, 450e9);
  EXPECT_EQ(g.sm_count, 132);
  EXPECT_DOUBLE_EQ(g.gemm_efficiency_bf16, 0.8);  // defaults
  EXPECT_DOUBLE_EQ(g.kernel_launch, 4e-6);
  EXPECT_DOUBLE_EQ(s.cluster.scale_out.nic_bandwidth, 50e9);  // 400 Gbit/s / 8
  EXPECT_DOUBLE_EQ(s.cluster.scale_out.latency, 5e-6);
  EXPECT_DOUBLE_EQ(s.cluster.scale_out.latency_cross, 5e-6);  // defaults to latency
  EXPECT_EQ(s.cluster.scale_out.kind, TopologyKind::kRailOptimized);
  EXPECT_EQ(s.cluster.scale_out.planes, 8);
  EXPECT_DOUBLE_EQ(s.cluster.scale_up.bandwidth, 450e9);
  EXPECT_DOUBLE_EQ(s.cluster.scale_up.latency, 3e-6);
  EXPECT_EQ(s.cluster.scale_up.domain_gpus, 8);  // = gpus_per_node
  EXPECT_EQ(s.model.layers, 8);
  EXPECT_EQ(s.model.attention.kind, AttentionKind::kGqa);
  EXPECT_EQ(s.model.attention.kv_heads, 4);
  EXPECT_EQ(s.model.attention.v_head_dim, 64);  // defaults to head_dim
  EXPECT_EQ(s.model.moe.experts, 8);
  EXPECT_EQ(s.model.moe.top_k, 2);
  EXPECT_EQ(s.model.moe.shared_ffn, 2048);  // defaults to expert_ffn
  EXPECT_EQ(s.workload.seq_len, 4096);
  EXPECT_EQ(s.workload.precision, Precision::kBf16);
  EXPECT_EQ(s.workload.comm_sms, 20);
  EXPECT_EQ(s.routing.policy, "softmax_topk");
  EXPECT_EQ(s.placement.policy, "contiguous");
  EXPECT_EQ(s.outputs.formats, std::vector<OutputFormat>{OutputFormat::kTable});
  EXPECT_EQ(s.resolved["model"]["name"], "tiny-moe");
  EXPECT_EQ(s.resolved["cluster"]["gpu"]["name"], "test-gpu");
}

TEST(Scenario, ConsistentExplicitDpAndEdpAccepted) {
  Json j = base();
  j["parallelism"]["attention"]["dp"] = 4;
  j["parallelism"]["experts"]["edp"] = 2;
  Scenario s = scenario_from_json(j, kSource, empty_catalog());
  EXPECT_EQ(s.layout.dp, 4);
  EXPECT_EQ(s.layout.edp, 2);
}

TEST(Scenario, OtherLayoutDerivesDegrees) {
  // tp=1, pp=1 on 16 GPUs: dp = 16; ep=8, etp=1: edp = 16 / 8 = 2; 64 / 16 = 4 microbatches.
  Json j = base();
  j["parallelism"]["attention"]["tp"] = 1;
  j["parallelism"]["pp"] = 1;
  j["parallelism"]["experts"]["ep"] = 8;
  Scenario s = scenario_from_json(j, kSource, empty_catalog());
  EXPECT_EQ(s.layout.dp, 16);
  EXPECT_EQ(s.layout.edp, 2);
  EXPECT_EQ(s.layout.microbatches, 4);
}

TEST(Scenario, CommentKeysAreIgnored) {
  Json j = base();
  j["_comment"] = "keys starting with an underscore are notes";
  j["parallelism"]["_why"] = "tp=2 fits one node";
  EXPECT_NO_THROW(scenario_from_json(j, kSource, empty_catalog()));
}

TEST(Scenario, DualPipeWithEvenPpAccepted) {
  // pp=2, 16 microbatches: even and >= 2 x pp = 4.
  Json j = base();
  j["parallelism"]["schedule"] = "dualpipe";
  Scenario s = scenario_from_json(j, kSource, empty_catalog());
  EXPECT_EQ(s.parallelism.schedule, Schedule::kDualPipe);
}

TEST(Scenario, InterleavedWithVpp2Accepted) {
  // 16 microbatches divisible by pp 2; pp x vpp = 4 <= 8 layers.
  Json j = base();
  j["parallelism"]["schedule"] = "interleaved";
  j["parallelism"]["vpp"] = 2;
  Scenario s = scenario_from_json(j, kSource, empty_catalog());
  EXPECT_EQ(s.parallelism.vpp, 2);
  EXPECT_EQ(s.parallelism.schedule, Schedule::kInterleaved);
}

TEST(Scenario, LoadScenarioFromFileNamesTheFile) {
  TempDir dir;
  std::string ok = dir.write("ok.json", base().dump(2));
  Scenario s = load_scenario(ok, empty_catalog());
  EXPECT_EQ(s.source, ok);
  EXPECT_EQ(s.layout.dp, 4);

  Json j = base();
  j["parallelism"]["experts"]["ep"] = 3;
  std::string bad = dir.write("bad.json", j.dump(2));
  std::string m = message_of<ConfigError>([&] { load_scenario(bad, empty_catalog()); });
  expect_located(m, bad, "/parallelism/experts/ep", "3");
}

TEST(Scenario, MissingFileIsIoError) {
  std::string m = message_of<IoError>([&] { load_scenario("/nonexistent/dir/s.json", empty_catalog()); });
  EXPECT_NE(m.find("/nonexistent/dir/s.json"), std::string::npos) << m;
}

// ------------------------------------------------------------------------------------ syntax & keys

TEST(ScenarioErrors, MalformedJsonTextHasLineAndColumn) {
  // The second comma on line 3 is at column 11: two spaces, "pp": (5 chars), a space, 2, ',', ','.
  const std::string text = "{\n  \"name\": \"x\",\n  \"pp\": 2,,\n}\n";
  std::string m = message_of<ParseError>([&] { parse_json_text(text, kSource); });
  EXPECT_EQ(m.rfind(kSource + ":3:11: expected valid JSON, found ", 0), 0u) << m;
  EXPECT_NE(m.find("expected"), std::string::npos) << m;
  EXPECT_NE(m.find("','"), std::string::npos) << m;  // nlohmann quotes the offending token
}

TEST(ScenarioErrors, MalformedJsonFirstLine) {
  // Unquoted key: the lexer reads "na" as the start of a literal (null) and stops at the 'a', the last
  // character it read: line 1, column 4.
  std::string m = message_of<ParseError>([&] { parse_json_text("{ name: 1 }", "inline.json"); });
  EXPECT_EQ(m.rfind("inline.json:1:4: expected valid JSON", 0), 0u) << m;
}

TEST(ScenarioErrors, MalformedJsonFileIsParseError) {
  TempDir dir;
  std::string p = dir.write("broken.json", "{\n  \"name\": \"x\"\n  \"model\": 1\n}\n");
  std::string m = message_of<ParseError>([&] { load_scenario(p, empty_catalog()); });
  // Missing comma: the parser rejects the string token "model", which spans columns 3-9 of line 3;
  // the position is the last character read, its closing quote at column 9.
  EXPECT_EQ(m.rfind(p + ":3:9: expected valid JSON", 0), 0u) << m;
  EXPECT_NE(m.find("unexpected string literal"), std::string::npos) << m;
}

TEST(ScenarioErrors, UnknownTopLevelKey) {
  Json j = base();
  j["modle"] = Json::object();
  std::string m = config_error(j);
  expect_located(m, kSource, "/modle", "the unknown key \"modle\"");
  EXPECT_NE(m.find("parallelism"), std::string::npos) << m;  // lists the allowed keys
}

TEST(ScenarioErrors, UnknownNestedKey) {
  Json j = base();
  j["parallelism"]["experts"]["epp"] = 8;
  std::string m = config_error(j);
  expect_located(m, kSource, "/parallelism/experts/epp", "the unknown key \"epp\"");
  EXPECT_NE(m.find("one of the keys edp, ep, etp"), std::string::npos) << m;
}

TEST(ScenarioErrors, UnknownKeyInInlineGpu) {
  Json j = base();
  j["cluster"]["gpu"]["hbm"] = "80GiB";
  expect_located(config_error(j), kSource, "/cluster/gpu/hbm", "the unknown key \"hbm\"");
}

TEST(ScenarioErrors, WrongTypeStringForInt) {
  Json j = base();
  j["parallelism"]["experts"]["ep"] = "4";
  std::string m = config_error(j);
  expect_located(m, kSource, "/parallelism/experts/ep", "the string \"4\"");
  EXPECT_NE(m.find("expected an integer"), std::string::npos) << m;
}

TEST(ScenarioErrors, WrongTypeFractionForInt) {
  Json j = base();
  j["model"]["layers"] = 7.5;
  expect_located(config_error(j), kSource, "/model/layers", "the number 7.5");
}

TEST(ScenarioErrors, MissingRequiredKey) {
  Json j = base();
  j["workload"].erase("seq_len");
  std::string m = config_error(j);
  expect_located(m, kSource, "/workload/seq_len", "nothing");
  EXPECT_NE(m.find("required"), std::string::npos) << m;
}

TEST(ScenarioErrors, UnknownEnumValue) {
  Json j = base();
  j["parallelism"]["schedule"] = "gpipe";
  std::string m = config_error(j);
  expect_located(m, kSource, "/parallelism/schedule", "\"gpipe\"");
  EXPECT_NE(m.find("1f1b, interleaved, zero_bubble, dualpipe"), std::string::npos) << m;
}

TEST(ScenarioErrors, QuantityWithoutUnitString) {
  Json j = base();
  j["cluster"]["gpu"]["memory"] = 80;
  std::string m = config_error(j);
  expect_located(m, kSource, "/cluster/gpu/memory", "the number 80");
}

// ---------------------------------------------------------------------------------------------- units

TEST(ScenarioErrors, BadUnit) {
  Json j = base();
  j["cluster"]["gpu"]["memory_bandwidth"] = "3.35TBs";
  std::string m = parse_error(j);
  expect_located(m, kSource, "/cluster/gpu/memory_bandwidth", "\"3.35TBs\"");
  EXPECT_NE(m.find("unknown unit \"TBs\""), std::string::npos) << m;
}

TEST(ScenarioErrors, WrongDimensionUnit) {
  Json j = base();
  j["cluster"]["scale_out"]["latency"] = "50GBps";
  expect_located(parse_error(j), kSource, "/cluster/scale_out/latency", "\"50GBps\"");
}

TEST(ScenarioErrors, NegativeQuantity) {
  Json j = base();
  j["cluster"]["scale_up"]["latency"] = "-3us";
  expect_located(parse_error(j), kSource, "/cluster/scale_up/latency", "\"-3us\"");
}

// ---------------------------------------------------------------------------------------------- model

TEST(ScenarioErrors, TopKGreaterThanExperts) {
  Json j = base();
  j["model"]["moe"]["top_k"] = 10;
  std::string m = config_error(j);
  expect_located(m, kSource, "/model/moe/top_k", "10");
  EXPECT_NE(m.find("at most experts (8)"), std::string::npos) << m;
}

TEST(ScenarioErrors, KvHeadsNotDividingHeads) {
  Json j = base();
  j["model"]["attention"]["kv_heads"] = 5;
  expect_located(config_error(j), kSource, "/model/attention/kv_heads", "5");
}

TEST(ScenarioErrors, ZeroLayers) {
  Json j = base();
  j["model"]["layers"] = 0;
  std::string m = config_error(j);
  expect_located(m, kSource, "/model/layers", "0");
  EXPECT_NE(m.find("[1, "), std::string::npos) << m;
}

// ---------------------------------------------------------------------------------------- parallelism

TEST(ScenarioErrors, DegreesNotDividingGpuCount) {
  // tp 3 x cp 1 x pp 2 = 6 does not divide 16 GPUs.
  Json j = base();
  j["parallelism"]["attention"]["tp"] = 3;
  // 3 divides neither the 16 attention heads nor, with pp 2, the 16 GPUs: both problems are reported,
  // one line each, the independent check first.
  const std::string m = config_error(j);
  const auto nl = m.find('\n');
  ASSERT_NE(nl, std::string::npos) << m;
  expect_located(m.substr(0, nl), kSource, "/parallelism/attention/tp", "3");
  EXPECT_NE(m.find("a divisor of the attention heads (16)"), std::string::npos) << m;
  expect_located(m.substr(nl + 1), kSource, "/parallelism", "tp=3 cp=1 pp=2 (product 6)");
  EXPECT_NE(m.find("dividing the GPU count 16"), std::string::npos) << m;
}

TEST(ScenarioErrors, ExpertDegreesNotDividingStage) {
  // ep 8 x etp 2 = 16 does not divide the 8 GPUs of one pipeline stage.
  Json j = base();
  j["parallelism"]["experts"]["ep"] = 8;
  j["parallelism"]["experts"]["etp"] = 2;
  std::string m = config_error(j);
  expect_located(m, kSource, "/parallelism/experts", "ep=8 etp=2");
  EXPECT_NE(m.find("(8)"), std::string::npos) << m;
}

TEST(ScenarioErrors, DpGivenAndInconsistent) {
  Json j = base();
  j["parallelism"]["attention"]["dp"] = 8;  // derived dp is 4
  std::string m = config_error(j);
  expect_located(m, kSource, "/parallelism/attention/dp", "8");
  EXPECT_NE(m.find("(dp = 4)"), std::string::npos) << m;
}

TEST(ScenarioErrors, EdpGivenAndInconsistent) {
  Json j = base();
  j["parallelism"]["experts"]["edp"] = 4;  // derived edp is 2
  std::string m = config_error(j);
  expect_located(m, kSource, "/parallelism/experts/edp", "4");
  EXPECT_NE(m.find("(edp = 2)"), std::string::npos) << m;
}

TEST(ScenarioErrors, EpNotDividingExperts) {
  Json j = base();
  j["parallelism"]["experts"]["ep"] = 3;
  std::string m = config_error(j);
  expect_located(m, kSource, "/parallelism/experts/ep", "3");
  EXPECT_NE(m.find("a divisor of the expert count 8"), std::string::npos) << m;
}

TEST(ScenarioErrors, TpNotDividingHeads) {
  // 12 heads (kv 4) with tp 8: tp 8 x pp 1 divides 16 GPUs (dp 2) but not the 12 heads.
  Json j = base();
  j["model"]["attention"]["heads"] = 12;
  j["parallelism"]["attention"]["tp"] = 8;
  j["parallelism"]["pp"] = 1;
  j["parallelism"]["experts"]["ep"] = 2;
  j["parallelism"]["global_batch"] = 2;
  std::string m = config_error(j);
  expect_located(m, kSource, "/parallelism/attention/tp", "8");
}

TEST(ScenarioErrors, GlobalBatchNotDivisible) {
  Json j = base();
  j["parallelism"]["global_batch"] = 66;  // 66 % (1 x 4) = 2
  std::string m = config_error(j);
  expect_located(m, kSource, "/parallelism/global_batch", "66");
  EXPECT_NE(m.find("microbatch_size x dp = 1 x 4 = 4"), std::string::npos) << m;
}

TEST(ScenarioErrors, GlobalBatchNotDivisibleWithMicrobatchSize) {
  Json j = base();
  j["parallelism"]["microbatch_size"] = 2;
  j["parallelism"]["global_batch"] = 36;  // 36 % (2 x 4) = 4
  std::string m = config_error(j);
  expect_located(m, kSource, "/parallelism/global_batch", "36");
  EXPECT_NE(m.find("2 x 4 = 8"), std::string::npos) << m;
}

TEST(ScenarioErrors, FewerMicrobatchesThanStages) {
  Json j = base();
  j["parallelism"]["global_batch"] = 4;  // 4 / (1 x 4) = 1 microbatch < pp 2
  expect_located(config_error(j), kSource, "/parallelism/global_batch", "1 microbatches");
}

TEST(ScenarioErrors, DualPipeWithOddPp) {
  // 3 nodes x 8 = 24 GPUs so that pp=3 divides them: dp = 24 / (2 x 3) = 4, stage = 8, ep 4.
  Json j = base();
  j["cluster"]["nodes"] = 3;
  j["parallelism"]["pp"] = 3;
  j["parallelism"]["schedule"] = "dualpipe";
  std::string m = config_error(j);
  expect_located(m, kSource, "/parallelism/pp", "3");
  EXPECT_NE(m.find("even pp"), std::string::npos) << m;
}

TEST(ScenarioErrors, DualPipeWithOddMicrobatches) {
  // pp 2, global_batch 36 / 4 = 9 microbatches: odd.
  Json j = base();
  j["parallelism"]["schedule"] = "dualpipe";
  j["parallelism"]["global_batch"] = 36;
  expect_located(config_error(j), kSource, "/parallelism/global_batch", "9 microbatches");
}

TEST(ScenarioErrors, InterleavedWithVpp1) {
  Json j = base();
  j["parallelism"]["schedule"] = "interleaved";
  std::string m = config_error(j);
  expect_located(m, kSource, "/parallelism/vpp", "1");
  EXPECT_NE(m.find("at least 2"), std::string::npos) << m;
}

TEST(ScenarioErrors, VppWithoutInterleaved) {
  Json j = base();
  j["parallelism"]["vpp"] = 2;
  expect_located(config_error(j), kSource, "/parallelism/schedule", "\"1f1b\"");
}

// Combined 1F1B is a 1F1B and interleaved mode: DualPipe overlaps its own pairs, zero bubble is not
// modelled with it.
TEST(ScenarioErrors, EpOverlapOnlyWithOneFOneBOrInterleaved) {
  Json j = base();
  j["parallelism"]["ep_overlap"] = true;
  j["parallelism"]["schedule"] = "zero_bubble";
  const std::string m = config_error(j);
  expect_located(m, kSource, "/parallelism/ep_overlap", "true");
  EXPECT_NE(m.find("false with the zero_bubble schedule"), std::string::npos) << m;
  // Plain 1F1B over pipeline stages: Megatron runs combined 1F1B with pp 1 or interleaved only.
  j["parallelism"]["schedule"] = "1f1b";
  const std::string pp = config_error(j);
  expect_located(pp, kSource, "/parallelism/ep_overlap", "true with pp 2");
  j["parallelism"]["schedule"] = "interleaved";
  j["parallelism"]["vpp"] = 2;
  EXPECT_TRUE(scenario_from_json(j, kSource, empty_catalog()).parallelism.ep_overlap);
}

// Delayed weight gradients fill the combined-1F1B pair's all-to-alls: without ep_overlap they are refused.
TEST(ScenarioErrors, DelayWgradNeedsEpOverlap) {
  Json j = base();
  j["parallelism"]["delay_wgrad"] = true;
  const std::string m = config_error(j);
  expect_located(m, kSource, "/parallelism/delay_wgrad", "true with ep_overlap false");
  EXPECT_NE(m.find("false without parallelism.ep_overlap"), std::string::npos) << m;
  j["parallelism"]["ep_overlap"] = true;
  j["parallelism"]["schedule"] = "interleaved";
  j["parallelism"]["vpp"] = 2;
  EXPECT_TRUE(scenario_from_json(j, kSource, empty_catalog()).parallelism.delay_wgrad);
}

TEST(ScenarioErrors, PpTimesVppBeyondLayers) {
  // pp 2 x vpp 8 = 16 > 8 blocks.
  Json j = base();
  j["parallelism"]["schedule"] = "interleaved";
  j["parallelism"]["vpp"] = 8;
  expect_located(config_error(j), kSource, "/parallelism/pp", "pp=2 vpp=8");
}

// -------------------------------------------------------------------------------------------- cluster

TEST(ScenarioErrors, MoreGpusPerNodeThanGpuAllows) {
  Json j = base();
  j["cluster"]["gpu"]["max_gpus_per_node"] = 4;
  std::string m = config_error(j);
  expect_located(m, kSource, "/cluster/gpus_per_node", "8");
  EXPECT_NE(m.find("at most 4 GPUs per node"), std::string::npos) << m;
  EXPECT_NE(m.find("test-gpu"), std::string::npos) << m;
}

TEST(ScenarioErrors, MultiNodeWithoutScaleOut) {
  Json j = base();
  j["cluster"].erase("scale_out");
  expect_located(config_error(j), kSource, "/cluster/scale_out", "nothing");
}

// ------------------------------------------------------------------------------------------- workload

TEST(ScenarioErrors, Fp8OnGpuWithoutFp8) {
  Json j = base();
  j["cluster"]["gpu"].erase("flops_fp8");
  j["workload"]["precision"] = "fp8";
  std::string m = config_error(j);
  expect_located(m, kSource, "/workload/precision", "\"fp8\"");
  EXPECT_NE(m.find("test-gpu"), std::string::npos) << m;
}

TEST(ScenarioErrors, Fp8OnGpuWithFp8Accepted) {
  Json j = base();
  j["workload"]["precision"] = "fp8";
  EXPECT_EQ(scenario_from_json(j, kSource, empty_catalog()).workload.precision, Precision::kFp8);
}

TEST(ScenarioErrors, CommSmsNotBelowSmCount) {
  Json j = base();
  j["workload"]["comm_sms"] = 132;  // the GPU has 132 SMs
  std::string m = config_error(j);
  expect_located(m, kSource, "/workload/comm_sms", "132");
  EXPECT_NE(m.find("fewer than the GPU's 132 SMs"), std::string::npos) << m;

  j["workload"]["comm_sms"] = 131;
  EXPECT_NO_THROW(scenario_from_json(j, kSource, empty_catalog()));
}

TEST(ScenarioErrors, Fp8DispatchNeedsFp8) {
  Json j = base();  // precision bf16
  j["workload"]["dispatch_dtype"] = "fp8";
  std::string m = config_error(j);
  expect_located(m, kSource, "/workload/dispatch_dtype", "\"fp8\"");
  EXPECT_NE(m.find("precision \"bf16\""), std::string::npos) << m;

  j["workload"]["precision"] = "fp8";
  EXPECT_EQ(scenario_from_json(j, kSource, empty_catalog()).workload.dispatch_dtype, DispatchDtype::kFp8);
}

TEST(ScenarioErrors, Fp8GradientDispatchNeedsFp8) {
  Json j = base();  // precision bf16
  j["workload"]["fp8_dispatch_grad"] = true;
  std::string m = config_error(j);
  expect_located(m, kSource, "/workload/fp8_dispatch_grad", "true");
  EXPECT_NE(m.find("precision \"bf16\""), std::string::npos) << m;

  j["workload"]["precision"] = "fp8";
  EXPECT_TRUE(scenario_from_json(j, kSource, empty_catalog()).workload.fp8_dispatch_grad);
}

// -------------------------------------------------------------------------------------------- routing

TEST(ScenarioErrors, NodeLimitLargerThanEpSpan) {
  // ep 4 x etp 1 = 4 GPUs fit in ceil(4 / 8) = 1 node, so node_limit 2 is impossible.
  Json j = base();
  j["routing"] = {{"policy", "softmax_topk"}, {"node_limit", 2}};
  std::string m = config_error(j);
  expect_located(m, kSource, "/routing/node_limit", "2");
  EXPECT_NE(m.find("(1)"), std::string::npos) << m;

  // With ep 16 on tp 1, pp 1 (16 experts), EP spans 2 nodes: node_limit 2 is fine, 3 is not.
  Json k = base();
  k["model"]["moe"]["experts"] = 16;
  k["parallelism"]["attention"]["tp"] = 1;
  k["parallelism"]["pp"] = 1;
  k["parallelism"]["experts"]["ep"] = 16;
  k["routing"] = {{"node_limit", 2}};
  Scenario s = scenario_from_json(k, kSource, empty_catalog());
  EXPECT_EQ(s.routing.node_limit, 2);
  EXPECT_EQ(s.layout.edp, 1);
  k["routing"]["node_limit"] = 3;
  expect_located(config_error(k), kSource, "/routing/node_limit", "3");
}

TEST(ScenarioErrors, HotExpertOutOfRange) {
  Json j = base();
  j["routing"] = {{"load", {{"generator", "hot_expert"}, {"hot_fraction", 0.5}, {"hot_expert", 8}}}};
  expect_located(config_error(j), kSource, "/routing/load/hot_expert", "8");
}

TEST(ScenarioErrors, UnknownOutputFormat) {
  Json j = base();
  j["outputs"] = {{"formats", {"table", "xml"}}};
  expect_located(config_error(j), kSource, "/outputs/formats/1", "\"xml\"");
}

// -------------------------------------------------------------------------------------------- catalog

TEST(ScenarioCatalog, NotACatalogReference) {
  Json j = base();
  j["model"] = "mixtral-8x7b";  // missing the "catalog:" prefix
  std::string m = config_error(j);
  expect_located(m, kSource, "/model", "the string \"mixtral-8x7b\"");
  EXPECT_NE(m.find("catalog:NAME"), std::string::npos) << m;
}

TEST(ScenarioCatalog, UnknownNameListsAvailableNames) {
  TempDir dir;
  Json model = base()["model"];
  model["name"] = "alpha";
  dir.write("models/alpha.json", model.dump(2));
  model["name"] = "beta";
  dir.write("models/beta.json", model.dump(2));
  Catalog cat({dir.path().string()});

  Json j = base();
  j["model"] = "catalog:gamma";
  std::string m = config_error(j, cat);
  expect_located(m, kSource, "/model", "\"catalog:gamma\"");
  EXPECT_NE(m.find("a catalog models entry (one of alpha, beta)"), std::string::npos) << m;
}

TEST(ScenarioCatalog, TempCatalogEntriesResolve) {
  TempDir dir;
  Json model = base()["model"];
  model["name"] = "alpha";
  std::string mpath = dir.write("models/alpha.json", model.dump(2));
  std::string gpath = dir.write("gpus/test-gpu.json", base()["cluster"]["gpu"].dump(2));
  Json cluster = base()["cluster"];
  cluster["gpu"] = "catalog:test-gpu";
  dir.write("clusters/two-nodes.json", cluster.dump(2));
  Catalog cat({dir.path().string()});
  EXPECT_EQ(cat.names(CatalogKind::kModel), std::vector<std::string>{"alpha"});
  EXPECT_EQ(cat.names(CatalogKind::kGpu), std::vector<std::string>{"test-gpu"});

  Json j = base();
  j["model"] = "catalog:alpha";
  j["cluster"] = "catalog:two-nodes";
  Scenario s = scenario_from_json(j, kSource, cat);
  EXPECT_EQ(s.model.name, "alpha");
  EXPECT_EQ(s.cluster.gpu.name, "test-gpu");
  EXPECT_DOUBLE_EQ(s.cluster.gpu.memory_bytes, 80.0 * 1024 * 1024 * 1024);
  EXPECT_EQ(s.layout.dp, 4);
  EXPECT_EQ(s.layout.edp, 2);
  // The resolved JSON inlines the entries, including the cluster's GPU, every default filled in.
  expect_holds(s.resolved["model"], model);
  EXPECT_EQ(s.resolved["model"]["moe"]["shared_experts"], 0);  // a default the entry leaves out
  EXPECT_EQ(s.resolved["cluster"]["gpu"]["name"], "test-gpu");
  EXPECT_TRUE(s.resolved["cluster"]["gpu"].is_object());
  EXPECT_EQ(s.resolved["cluster"]["nodes"], 2);
  (void)mpath;
  (void)gpath;
}

TEST(ScenarioCatalog, ErrorInsideEntryNamesTheEntryFile) {
  TempDir dir;
  Json model = base()["model"];
  model["layers"] = "8";
  std::string mpath = dir.write("models/broken.json", model.dump(2));
  Json gpu = base()["cluster"]["gpu"];
  gpu["memory"] = "80Gigs";
  std::string gpath = dir.write("gpus/broken-gpu.json", gpu.dump(2));
  Catalog cat({dir.path().string()});

  Json j = base();
  j["model"] = "catalog:broken";
  expect_located(config_error(j, cat), mpath, "/layers", "the string \"8\"");

  Json k = base();
  k["cluster"]["gpu"] = "catalog:broken-gpu";
  expect_located(parse_error(k, cat), gpath, "/memory", "\"80Gigs\"");
}

TEST(ScenarioCatalog, RealCatalogUnknownNameListsEntries) {
  std::vector<std::string> names = real_catalog().names(CatalogKind::kModel);
  ASSERT_FALSE(names.empty()) << "no model entries under " << catalog_dir() << "/models";
  Json j = base();
  j["model"] = "catalog:no-such-model";
  std::string m = config_error(j, real_catalog());
  expect_located(m, kSource, "/model", "\"catalog:no-such-model\"");
  for (const auto& n : names) EXPECT_NE(m.find(n), std::string::npos) << n << " missing from: " << m;
  ASSERT_TRUE(exists("models/deepseek-v3.json")) << "catalog entry deepseek-v3 missing";
  EXPECT_NE(m.find("deepseek-v3"), std::string::npos) << m;
}

TEST(ScenarioCatalog, RealMixtralModel) {
  ASSERT_TRUE(exists("models/mixtral-8x7b.json")) << "catalog entry mixtral-8x7b missing";
  Json entry = read_json_file(catalog_dir() + "/models/mixtral-8x7b.json");
  Json j = base();
  j["model"] = "catalog:mixtral-8x7b";
  // Mixtral 8x7B: 8 experts, 32 heads, 8 KV heads, 32 layers. tp 2, ep 4 and pp 2 all fit.
  Scenario s = scenario_from_json(j, kSource, real_catalog());
  EXPECT_EQ(s.model.layers, 32);
  EXPECT_EQ(s.model.hidden, 4096);
  EXPECT_EQ(s.model.moe.experts, 8);
  EXPECT_EQ(s.model.moe.top_k, 2);
  EXPECT_EQ(s.model.moe.expert_ffn, 14336);
  EXPECT_EQ(s.model.attention.heads, 32);
  EXPECT_EQ(s.model.attention.kv_heads, 8);
  EXPECT_EQ(s.layout.dp, 4);
  EXPECT_EQ(s.layout.edp, 2);
  expect_holds(s.resolved["model"], entry);
  // What the resolved scenario holds reads back as the same model.
  const ModelSpec back = model_from_json(s.resolved["model"], "resolved", "/model");
  EXPECT_EQ(model_to_json(back), s.resolved["model"]);
  EXPECT_EQ(back.moe.shared_ffn, 14336);  // the default: expert_ffn
  EXPECT_EQ(back.attention.v_head_dim, 128);
}

TEST(ScenarioCatalog, RealDgxH100Cluster) {
  ASSERT_TRUE(exists("clusters/dgx-h100-32.json")) << "catalog entry dgx-h100-32 missing";
  ASSERT_TRUE(exists("gpus/h100-sxm.json")) << "catalog entry h100-sxm missing";
  // 32 DGX H100 nodes of 8 GPUs = 256 GPUs. tp 2, pp 2: dp = 256 / 4 = 64; one stage holds
  // 2 x 64 = 128 GPUs, so ep 4 gives edp = 128 / 4 = 32; 512 / 64 = 8 microbatches per pipeline.
  Json j = base();
  j["cluster"] = "catalog:dgx-h100-32";
  j["parallelism"]["global_batch"] = 512;
  Scenario s = scenario_from_json(j, kSource, real_catalog());
  EXPECT_EQ(s.cluster.nodes, 32);
  EXPECT_EQ(s.cluster.gpus_per_node, 8);
  EXPECT_EQ(s.cluster.gpus(), 256);
  EXPECT_EQ(s.layout.dp, 64);
  EXPECT_EQ(s.layout.edp, 32);
  EXPECT_EQ(s.layout.microbatches, 8);
  // H100 SXM datasheet: 989 TFLOP/s dense BF16, 1979 TFLOP/s FP8, 132 SMs, 80 GiB.
  EXPECT_EQ(s.cluster.gpu.sm_count, 132);
  EXPECT_DOUBLE_EQ(s.cluster.gpu.flops_bf16, 989e12);
  EXPECT_DOUBLE_EQ(s.cluster.gpu.flops_fp8, 1979e12);
  EXPECT_DOUBLE_EQ(s.cluster.gpu.memory_bytes, 80.0 * 1024 * 1024 * 1024);
  // The resolved JSON inlines the GPU entry in place of "catalog:h100-sxm".
  EXPECT_TRUE(s.resolved["cluster"]["gpu"].is_object());
  const GpuSpec entry = gpu_from_json(read_json_file(catalog_dir() + "/gpus/h100-sxm.json"), "h100", "");
  const GpuSpec back = gpu_from_json(s.resolved["cluster"]["gpu"], "resolved", "/cluster/gpu");
  EXPECT_EQ(back.flops_bf16, entry.flops_bf16);
  EXPECT_EQ(back.flops_fp32, entry.flops_fp32);  // 66.9 TFLOP/s written so it reads back exactly
  EXPECT_EQ(back.memory_bytes, entry.memory_bytes);
  EXPECT_EQ(back.memory_bandwidth, entry.memory_bandwidth);
  EXPECT_EQ(back.gemm_efficiency_fp8, entry.gemm_efficiency_fp8);
  EXPECT_EQ(back.kernel_launch, 4e-6);  // the declared default the entry leaves out

  // 16 GPUs per node exceed the H100 baseboard's 8.
  Json k = base();
  Json cluster = read_json_file(catalog_dir() + "/clusters/dgx-h100-32.json");
  cluster["gpus_per_node"] = 16;
  k["cluster"] = cluster;
  expect_located(config_error(k, real_catalog()), kSource, "/cluster/gpus_per_node", "16");
}

TEST(ScenarioCatalog, RealDeepSeekV3OnH800Cluster) {
  ASSERT_TRUE(exists("models/deepseek-v3.json")) << "catalog entry deepseek-v3 missing";
  ASSERT_TRUE(exists("clusters/deepseek-h800-2048.json")) << "catalog entry deepseek-h800-2048 missing";
  ASSERT_TRUE(exists("gpus/h800-sxm.json")) << "catalog entry h800-sxm missing";
  // The DeepSeek-V3 report's layout: pp 16, ep 64, tp 1, DualPipe, FP8, 4-node routing limit,
  // 15360 sequences per step on 2048 H800s.
  Json j = Json::parse(R"({
    "name": "deepseek-v3-pretrain",
    "model": "catalog:deepseek-v3",
    "cluster": "catalog:deepseek-h800-2048",
    "parallelism": {
      "attention": {"tp": 1},
      "experts": {"ep": 64},
      "pp": 16,
      "schedule": "dualpipe",
      "microbatch_size": 1,
      "global_batch": 15360
    },
    "workload": {"seq_len": 4096, "precision": "fp8", "comm_sms": 20},
    "routing": {"policy": "sigmoid_topk", "node_limit": 4}
  })");
  Scenario s = scenario_from_json(j, kSource, real_catalog());
  EXPECT_EQ(s.cluster.gpus(), 2048);
  EXPECT_EQ(s.layout.dp, 128);            // 2048 / 16
  EXPECT_EQ(s.layout.edp, 2);             // 128 / 64
  EXPECT_EQ(s.layout.microbatches, 120);  // 15360 / 128
  EXPECT_EQ(s.model.layers, 61);
  EXPECT_EQ(s.model.moe.experts, 256);
  EXPECT_EQ(s.model.moe.top_k, 8);
  EXPECT_EQ(s.model.mtp_depth, 1);
  EXPECT_EQ(s.model.attention.kind, AttentionKind::kMla);

  // EP 64 on 8-GPU nodes spans 8 nodes; a 9-node limit is impossible.
  j["routing"]["node_limit"] = 9;
  expect_located(config_error(j, real_catalog()), kSource, "/routing/node_limit", "9");
}

// ------------------------------------------------------------------------------------------- variants

Json with_variants() {
  Json j = base();
  j["variants"] = Json::parse(R"([
    {"name": "ep2", "set": {"parallelism/experts/ep": 2}},
    {"name": "pp1-slash", "set": {"/parallelism/pp": 1, "/parallelism/global_batch": 128}},
    {"name": "bad-parent", "set": {"parallelism/nothing/ep": 2}}
  ])");
  return j;
}

TEST(Variants, ListedInOrder) {
  auto vs = variants_from_json(with_variants(), kSource);
  ASSERT_EQ(vs.size(), 3u);
  EXPECT_EQ(vs[0].name, "ep2");
  EXPECT_EQ(vs[1].name, "pp1-slash");
  EXPECT_EQ(vs[2].name, "bad-parent");
  EXPECT_EQ(vs[0].set["parallelism/experts/ep"], 2);
  EXPECT_TRUE(variants_from_json(base(), kSource).empty());
}

TEST(Variants, BaseWithVariantsKeyStillParses) {
  Scenario s = scenario_from_json(with_variants(), kSource, empty_catalog());
  EXPECT_EQ(s.parallelism.ep, 4);
  EXPECT_FALSE(s.resolved.contains("variants"));
}

TEST(Variants, ApplySetsEp) {
  Json base_j = with_variants();
  auto vs = variants_from_json(base_j, kSource);
  Json v = apply_variant(base_j, vs[0], kSource);
  EXPECT_FALSE(v.contains("variants"));
  EXPECT_EQ(v["name"], "small-moe/ep2");
  EXPECT_EQ(v["parallelism"]["experts"]["ep"], 2);
  EXPECT_EQ(base_j["parallelism"]["experts"]["ep"], 4);  // the base is not modified
  Scenario s = scenario_from_json(v, kSource, empty_catalog());
  EXPECT_EQ(s.parallelism.ep, 2);
  EXPECT_EQ(s.layout.dp, 4);
  EXPECT_EQ(s.layout.edp, 4);  // stage of 8 GPUs / ep 2
  EXPECT_EQ(s.name, "small-moe/ep2");
}

TEST(Variants, LeadingSlashAndSeveralPatches) {
  Json base_j = with_variants();
  auto vs = variants_from_json(base_j, kSource);
  Scenario s = scenario_from_json(apply_variant(base_j, vs[1], kSource), kSource, empty_catalog());
  // pp 1, tp 2 on 16 GPUs: dp = 8; stage = 16 GPUs, ep 4: edp 4; 128 / 8 = 16 microbatches.
  EXPECT_EQ(s.parallelism.pp, 1);
  EXPECT_EQ(s.layout.dp, 8);
  EXPECT_EQ(s.layout.edp, 4);
  EXPECT_EQ(s.layout.microbatches, 16);
}

TEST(Variants, PatchThatBreaksTheScenarioIsRejectedOnLoad) {
  Json base_j = base();
  Variant v{"ep3", Json{{"parallelism/experts/ep", 3}}};
  Json patched = apply_variant(base_j, v, kSource);
  expect_located(config_error(patched), kSource, "/parallelism/experts/ep", "3");
}

TEST(Variants, MissingParentThrowsConfigError) {
  Json base_j = with_variants();
  auto vs = variants_from_json(base_j, kSource);
  std::string m = message_of<ConfigError>([&] { apply_variant(base_j, vs[2], kSource); });
  EXPECT_NE(m.find(kSource), std::string::npos) << m;
  EXPECT_NE(m.find("bad-parent"), std::string::npos) << m;
  EXPECT_NE(m.find("expected"), std::string::npos) << m;
  EXPECT_NE(m.find("\"parallelism/nothing/ep\""), std::string::npos) << m;
}

TEST(Variants, ScalarParentThrowsConfigError) {
  // "/name" exists but is a string, so "name/x" cannot be set: a ConfigError, not a JSON library error.
  Variant v{"scalar-parent", Json{{"name/x", 1}}};
  std::string m = message_of<ConfigError>([&] { apply_variant(base(), v, kSource); });
  EXPECT_NE(m.find(kSource), std::string::npos) << m;
  EXPECT_NE(m.find("scalar-parent"), std::string::npos) << m;
  EXPECT_NE(m.find("expected"), std::string::npos) << m;
  EXPECT_NE(m.find("\"name/x\""), std::string::npos) << m;
}

TEST(Variants, NewLeafUnderExistingParentIsAdded) {
  // The parent exists, so the patch is applied; the strict loader then rejects the unknown key.
  Variant v{"typo", Json{{"parallelism/experts/epp", 2}}};
  Json patched = apply_variant(base(), v, kSource);
  EXPECT_EQ(patched["parallelism"]["experts"]["epp"], 2);
  expect_located(config_error(patched), kSource, "/parallelism/experts/epp", "the unknown key \"epp\"");
}

TEST(Variants, MalformedVariantsSection) {
  Json j = base();
  j["variants"] = Json::object();
  expect_located(message_of<ConfigError>([&] { variants_from_json(j, kSource); }), kSource, "/variants",
                 "an object");

  j["variants"] = Json::parse(R"([{"name": "x", "set": 3}])");
  expect_located(message_of<ConfigError>([&] { variants_from_json(j, kSource); }), kSource, "/variants/0/set",
                 "the number 3");

  j["variants"] = Json::parse(R"([{"name": "x", "set": {}, "sett": {}}])");
  expect_located(message_of<ConfigError>([&] { variants_from_json(j, kSource); }), kSource,
                 "/variants/0/sett", "the unknown key \"sett\"");
}

}  // namespace
}  // namespace moesim
