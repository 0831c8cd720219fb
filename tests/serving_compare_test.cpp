// `moesim compare` on serving scenarios: the result a discrete-event child process hands back
// (serving_json → serving_result_from_json) keeps every figure the comparison shows, and the comparison
// orders its rows by goodput, saturated and infeasible rows after the others, invalid ones last.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "models/serving.hpp"
#include "reports/compare.hpp"
#include "reports/serving.hpp"
#include "scenarios/catalog.hpp"
#include "scenarios/loader.hpp"

namespace moesim::reports {
namespace {

using Json = nlohmann::json;

const std::string kColocated =
    std::string(MOESIM_SOURCE_DIR) + "/scenarios/examples/serving/qwen3-30b-a3b-h100-colocated.json";

// The colocated example's per-rank-prefix-caches variant, analytic: a finite prefix hit rate, SLO figures.
Scenario prefix_variant() {
  std::ifstream in(kColocated);
  Json j = Json::parse(in);
  j["serving"]["requests"]["prefix_groups"] = 64;
  j["serving"]["prefix_cache_tokens"] = 4096;
  j["engine"]["kind"] = "analytic";
  j.erase("variants");
  const Catalog cat({std::string(MOESIM_SOURCE_DIR) + "/scenarios/catalog"});
  return scenario_from_json(j, kColocated, cat);
}

TEST(ServingCompare, ChildResultKeepsWhatTheComparisonShows) {
  const Scenario s = prefix_variant();
  models::ServingResult r = models::evaluate_serving_analytic(s, models::serving_requests(s));
  ASSERT_TRUE(std::isfinite(r.prefix_hit_rate));
  ASSERT_GT(r.goodput_requests_per_s, 0);
  r.instances.at(0).rebalances = 7;  // the analytic engine never rebalances; the field must still travel
  r.instances.at(0).rebalance_seconds = 0.25;
  const models::ServingResult b = serving_result_from_json(serving_json(s, r), "test");
  EXPECT_EQ(b.requests, r.requests);
  EXPECT_EQ(b.offered_rate, r.offered_rate);
  EXPECT_EQ(b.requests_per_s, r.requests_per_s);
  EXPECT_EQ(b.input_tokens_per_s, r.input_tokens_per_s);
  EXPECT_EQ(b.output_tokens_per_s, r.output_tokens_per_s);
  EXPECT_EQ(b.output_tokens_per_s_per_gpu, r.output_tokens_per_s_per_gpu);
  EXPECT_EQ(b.goodput_requests_per_s, r.goodput_requests_per_s);
  EXPECT_EQ(b.slo_attainment, r.slo_attainment);
  EXPECT_EQ(b.prefix_hit_rate, r.prefix_hit_rate);
  EXPECT_EQ(b.ttft.mean, r.ttft.mean);
  EXPECT_TRUE(std::isnan(b.ttft.p99));  // the analytic engine gives no percentiles
  EXPECT_TRUE(b.caveat.empty());
  EXPECT_EQ(b.instances.at(0).rebalances, 7);
  EXPECT_EQ(b.instances.at(0).rebalance_seconds, 0.25);
  // Without per-rank caches the hit rate is absent, not zero.
  models::ServingResult none = r;
  none.prefix_hit_rate = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(std::isnan(serving_result_from_json(serving_json(s, none), "test").prefix_hit_rate));
}

// The analytic engine prices the static placement of a scenario that rebalances online, and says so in
// the result (table NOTE, JSON "caveat"), which the comparison shows beside the row.
TEST(ServingCompare, AnalyticEngineSaysItLeavesOnlineEplbOut) {
  std::ifstream in(std::string(MOESIM_SOURCE_DIR) +
                   "/scenarios/examples/serving/qwen3-30b-a3b-h100-online-eplb.json");
  Json j = Json::parse(in);
  j.erase("variants");
  j["serving"]["requests"]["count"] = 200;
  const Catalog cat({std::string(MOESIM_SOURCE_DIR) + "/scenarios/catalog"});
  const Scenario fixed = scenario_from_json(j, "fixed.json", cat);
  EXPECT_TRUE(models::evaluate_serving_analytic(fixed, models::serving_requests(fixed)).caveat.empty());
  j["serving"]["rebalance_interval"] = "1s";
  const Scenario online = scenario_from_json(j, "online.json", cat);
  const models::ServingResult r = models::evaluate_serving_analytic(online, models::serving_requests(online));
  EXPECT_NE(r.caveat.find("/serving/rebalance_interval"), std::string::npos) << r.caveat;
  EXPECT_EQ(serving_result_from_json(serving_json(online, r), "test").caveat, r.caveat);
  ServingCompareRow row;
  row.name = "online";
  row.result = r;
  EXPECT_EQ(serving_compare_json({row})["variants"][0]["caveat"], r.caveat);
  std::ostringstream table;
  write_serving_compare_table(table, {row});
  EXPECT_NE(table.str().find("ok (NOTE: online EPLB"), std::string::npos) << table.str();
}

TEST(ServingCompare, RowsByGoodputSaturatedAndInvalidLast) {
  auto row = [](const std::string& name, double goodput, double out, bool saturated) {
    ServingCompareRow r;
    r.name = name;
    r.result.goodput_requests_per_s = goodput;
    r.result.output_tokens_per_s = out;
    r.result.saturated = saturated;
    if (saturated) r.result.saturation = "decode";
    return r;
  };
  ServingCompareRow invalid;
  invalid.name = "bad";
  invalid.ok = false;
  invalid.error = "/serving/x: expected y";
  const std::vector<ServingCompareRow> rows{invalid, row("slow", 5, 900, false), row("over", 9, 2000, true),
                                            row("fast", 8, 1000, false), row("tie", 8, 1100, false)};
  const Json j = serving_compare_json(rows);
  EXPECT_EQ(j["kind"], "serving");
  const auto& v = j["variants"];
  ASSERT_EQ(v.size(), 5u);
  // Goodput first (8 before 5), output tokens/s breaking the tie (1100 before 1000), the saturated row
  // after every row that keeps up whatever its goodput, the invalid row last with its message.
  EXPECT_EQ(v[0]["name"], "tie");
  EXPECT_EQ(v[1]["name"], "fast");
  EXPECT_EQ(v[2]["name"], "slow");
  EXPECT_EQ(v[3]["name"], "over");
  EXPECT_EQ(v[3]["saturation"], "decode");
  EXPECT_EQ(v[4]["name"], "bad");
  EXPECT_EQ(v[4]["valid"], false);
  EXPECT_EQ(v[4]["error"], "/serving/x: expected y");
  EXPECT_TRUE(v[0]["prefix_hit_rate"].is_null());  // NaN: no per-rank caches
  std::ostringstream table;
  write_serving_compare_table(table, rows);
  EXPECT_NE(table.str().find("INVALID: /serving/x: expected y"), std::string::npos) << table.str();
  EXPECT_NE(table.str().find("SATURATED: decode"), std::string::npos) << table.str();
}

}  // namespace
}  // namespace moesim::reports
