// The HTML report (reports/html_report.hpp) built from the files a run really writes, checked against
// numbers derived apart from it: the breakdown against the result it came from (and the step time it
// sums to), the published phases against the paper's figures, the heaviest op against the op rows
// summed here; every malformed or missing input refused with the file and the place named; the page
// and spec files as written. That every chart draws in a browser is tests/report_browser_test.sh.

#include "reports/html_report.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "models/analytic.hpp"
#include "models/op_table.hpp"
#include "models/routing_source.hpp"
#include "models/serving.hpp"
#include "reports/output_dir.hpp"
#include "reports/serving.hpp"
#include "scenarios/catalog.hpp"
#include "scenarios/error.hpp"
#include "scenarios/json_reader.hpp"
#include "scenarios/loader.hpp"
#include "sim/serving_sim.hpp"

namespace moesim::reports {
namespace {
namespace fs = std::filesystem;

const Catalog& catalog() {
  static const Catalog c({std::string(MOESIM_SOURCE_DIR) + "/scenarios/catalog"});
  return c;
}

// A fresh folder under the test's temporary directory.
fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::path(::testing::TempDir()) / ("moesim-html-" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write(const fs::path& p, const std::string& text) {
  std::ofstream o(p, std::ios::binary);
  o << text;
}

const HtmlChart& chart_of(const HtmlReport& r, const std::string& id) {
  for (const auto& c : r.charts)
    if (c.id == id) return c;
  ADD_FAILURE() << "no chart " << id;
  static const HtmlChart none;
  return none;
}

struct RunDir {
  fs::path dir;
  Scenario s;
  models::Result r;
  std::vector<models::OpRow> ops;
};

// The DeepSeek-V3 validation scenario (its reference block has the published phases) run by the analytic
// engine and written as `moesim run --out` writes it.
RunDir deepseek_run(const std::string& name) {
  RunDir d;
  d.dir = fresh_dir(name);
  d.s = load_scenario(std::string(MOESIM_SOURCE_DIR) + "/scenarios/validation/deepseek-v3-2048xH800-fp8.json",
                      catalog());
  const models::RoutingInput routing = models::routing_input(d.s);
  d.r = models::evaluate_analytic(d.s, routing);
  models::RunTables t = models::run_tables(d.s, routing);
  d.ops = t.ops;
  write_run_outputs(d.dir.string(), d.s, d.r, true, nullptr, d.ops, "--out", t.gpu_load);
  return d;
}

// Under zipf-skewed routing the heat map's hottest GPU of every MoE layer is the busiest-GPU ratio the
// analytic engine reports for that layer (result.json /moe/layers, computed apart from expert_load.csv),
// and each layer's loads average to one.
TEST(HtmlReport, GpuLoadHeatMapUnderSkew) {
  const fs::path dir = fresh_dir("skew");
  Json j = read_json_file(std::string(MOESIM_SOURCE_DIR) + "/scenarios/examples/mixtral-8x7b-64xH100.json");
  j.erase("variants");
  j["routing"]["load"] = {{"generator", "zipf"}, {"s", 1.2}, {"seed", 7}};
  const Scenario s = scenario_from_json(j, "mixtral-zipf", catalog());
  const models::RoutingInput routing = models::routing_input(s);
  const models::Result r = models::evaluate_analytic(s, routing);
  const models::RunTables t = models::run_tables(s, routing);
  write_run_outputs(dir.string(), s, r, true, nullptr, t.ops, "--out", t.gpu_load);
  const HtmlReport rep = build_report(dir.string());
  const Json& v = chart_of(rep, "gpu-load").spec["data"]["values"];
  ASSERT_EQ(r.moe_layers.size(), t.gpu_load.size());
  const std::size_t ep = static_cast<std::size_t>(s.parallelism.ep);
  ASSERT_EQ(v.size(), r.moe_layers.size() * ep);
  std::map<int, std::pair<double, double>> row;  // moe layer -> max, sum
  for (const auto& e : v) {
    auto& [hi, sum] = row[e["moe_layer"].get<int>()];
    hi = std::max(hi, e["load"].get<double>());
    sum += e["load"].get<double>();
  }
  double skew = 0;
  for (std::size_t i = 0; i < r.moe_layers.size(); ++i) {
    EXPECT_NEAR(row[static_cast<int>(i)].first, r.moe_layers[i].max_over_mean_gpu, 1e-8) << i;
    EXPECT_NEAR(row[static_cast<int>(i)].second / static_cast<double>(ep), 1.0, 1e-8) << i;
    skew = std::max(skew, r.moe_layers[i].max_over_mean_gpu);
  }
  EXPECT_GT(skew, 1.5);  // the zipf(1.2) routing is skewed
}

// A serving run simulated request by request: the latency chart carries the result's percentiles, the
// per-request chart is the cumulative distribution of the requests' own latencies (its last point the
// slowest request), and the KV series is the result's.
TEST(HtmlReport, ServingChartsCarryTheResultsNumbers) {
  const fs::path dir = fresh_dir("serving");
  Json j = read_json_file(std::string(MOESIM_SOURCE_DIR) +
                          "/scenarios/examples/serving/qwen3-30b-a3b-h100-colocated.json");
  j["serving"]["requests"]["count"] = 300;
  const Scenario s = scenario_from_json(j, "serving.json", catalog());
  std::vector<models::ServedRequest> served;
  const models::ServingResult r = sim::simulate_serving(s, models::serving_requests(s), &served);
  write_serving_outputs(dir.string(), s, r, true, "--out", &served);
  const HtmlReport rep = build_report(dir.string());
  const Json& lat = chart_of(rep, "serving-latency").spec["data"]["values"];
  int checked = 0;
  for (const auto& e : lat) {
    const models::LatencyStats& l = e["latency"] == "TTFT" ? r.ttft : e["latency"] == "TPOT" ? r.tpot : r.e2e;
    const std::string st = e["statistic"];
    const double want = st == "mean" ? l.mean : st == "p50" ? l.p50 : st == "p90" ? l.p90 : l.p99;
    EXPECT_NEAR(e["ms"].get<double>(), 1e3 * want, 1e-9 * 1e3 * want) << e.dump();
    ++checked;
  }
  EXPECT_EQ(checked, 12);
  double slowest = 0;
  for (const auto& q : served) slowest = std::max(slowest, q.finish - q.arrival);
  const Json& cdf = chart_of(rep, "serving-requests").spec["data"]["values"];
  double last = 0, share = 0;
  for (const auto& e : cdf)
    if (e["latency"] == "end-to-end") last = e["s"].get<double>(), share = e["share"].get<double>();
  EXPECT_NEAR(last, slowest, 1e-9 * slowest);
  EXPECT_DOUBLE_EQ(share, 1.0);
  const Json& kv = chart_of(rep, "serving-kv").spec["data"]["values"];
  ASSERT_EQ(kv.size(), r.kv_usage.size());
  EXPECT_DOUBLE_EQ(kv[0]["y"].get<double>(), r.kv_usage[0].second);
}

TEST(HtmlReport, RunChartsCarryTheResultsNumbers) {
  const RunDir d = deepseek_run("run");
  const HtmlReport rep = build_report(d.dir.string());

  // The breakdown: the result's parts, in order, summing to its step time.
  const Json& bd = chart_of(rep, "breakdown").spec["data"]["values"];
  ASSERT_EQ(bd.size(), 7u);
  const models::Breakdown& b = d.r.breakdown;
  const double parts[] = {b.compute, b.exposed_ep, b.exposed_tp, b.exposed_cp,
                          b.bubble,  b.exposed_dp, b.optimizer};
  double sum = 0;
  for (std::size_t i = 0; i < 7; ++i) {
    EXPECT_NEAR(bd[i]["seconds"].get<double>(), parts[i], 1e-12 * d.r.step_time) << i;
    sum += bd[i]["seconds"].get<double>();
  }
  EXPECT_NEAR(sum, d.r.step_time, 1e-9 * d.r.step_time);

  // The phases beside the published ones ("Insights into DeepSeek-V3", Table 4: 1F 1.13 s, bubble 2.06 s,
  // 1B 1.99 s, 1W 0.48 s, 1F1B 13.95 s, optimizer 0.29 s).
  std::map<std::string, double> published;
  for (const auto& v : chart_of(rep, "phases").spec["data"]["values"])
    if (v["source"] == "published") published[v["phase"].get<std::string>()] = v["seconds"].get<double>();
  EXPECT_DOUBLE_EQ(published["1F (warm-up)"], 1.13);
  EXPECT_DOUBLE_EQ(published["steady"], 13.95);
  EXPECT_DOUBLE_EQ(published["1B (cool-down)"], 1.99);
  EXPECT_DOUBLE_EQ(published["1W"], 0.48);
  EXPECT_DOUBLE_EQ(published["bubble"], 2.06);
  EXPECT_DOUBLE_EQ(published["optimizer"], 0.29);

  // Three bars per block.
  EXPECT_EQ(chart_of(rep, "layers").spec["data"]["values"].size(), 3 * d.r.layers.size());

  // The heaviest op of the critical rank: the op rows summed here by op, recompute and pass.
  std::map<std::string, double> total;
  for (const models::OpRow& o : d.ops) {
    if (o.pp_rank != d.r.critical_rank) continue;
    static const char* pass[] = {"F", "B", "W"};
    total[o.name + (o.recompute ? " (rc)" : "") + " " + pass[static_cast<int>(o.pass)]] +=
        o.count * o.seconds;
  }
  std::string best;
  for (const auto& [k, v] : total)
    if (best.empty() || v > total[best]) best = k;
  const Json& ops = chart_of(rep, "ops").spec["data"]["values"];
  ASSERT_FALSE(ops.empty());
  EXPECT_EQ(ops[0]["op"], best);
  EXPECT_NEAR(ops[0]["seconds"].get<double>(), total[best], 1e-8 * total[best]);  // ops.csv: 10 digits
  EXPECT_LE(ops.size(), 20u);

  // Every chart has its table.
  for (const auto& c : rep.charts) EXPECT_FALSE(c.table.rows.empty()) << c.id;
}

TEST(HtmlReport, PageAndSpecFilesAsWritten) {
  const RunDir d = deepseek_run("page");
  HtmlReport rep = build_report(d.dir.string());
  rep.charts[0].title = "a </script> <b>title</b>";
  rep.charts[0].spec["data"]["values"][0]["part"] = "</script><script>alert(1)</script>";
  VegaBundle v;
  v.vega = "/*vega*/ var x = '</script>';";
  v.vega_lite = "/*lite*/";
  v.vega_embed = "/*embed*/";
  v.versions = "test";
  const std::string page_path = write_report(d.dir.string(), rep, v);
  std::ifstream in(page_path);
  const std::string page((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // One container per chart; the libraries inlined; the title escaped; no early end of a script.
  for (const auto& c : rep.charts)
    EXPECT_NE(page.find("id=\"chart-" + c.id + "\""), std::string::npos) << c.id;
  EXPECT_NE(page.find("/*lite*/"), std::string::npos);
  EXPECT_NE(page.find("a &lt;/script&gt; &lt;b&gt;title&lt;/b&gt;"), std::string::npos);
  // Only the five script elements end (console hooks, vega, vega-lite, vega-embed, the charts): a
  // "</script" inside a library or the data is escaped ("<script>" alone cannot end one).
  std::size_t closes = 0;
  for (std::size_t at = 0; (at = page.find("</script", at)) != std::string::npos; ++at) ++closes;
  EXPECT_EQ(closes, 5u);
  EXPECT_NE(page.find("var x = '<\\/script>';"), std::string::npos);
  // Each spec file parses back to the chart's spec.
  for (const auto& c : rep.charts) {
    const Json back = read_json_file((d.dir / "report-specs" / (c.id + ".vl.json")).string());
    EXPECT_EQ(back, c.spec) << c.id;
  }
}

TEST(HtmlReport, BadFoldersAndFilesAreNamed) {
  const fs::path empty = fresh_dir("empty");
  try {
    build_report(empty.string());
    FAIL() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("expected result.json, merged.json, plan.json"), std::string::npos)
        << e.what();
  }
  fs::create_directories(empty / "points");
  try {
    build_report(empty.string());
    FAIL() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("moesim report merge"), std::string::npos) << e.what();
  }
  EXPECT_THROW(build_report((empty / "nothing").string()), IoError);

  const RunDir d = deepseek_run("bad");
  const std::string result = (d.dir / "result.json").string();
  Json j = read_json_file(result);

  write(d.dir / "result.json", "{\"summary\": ");
  try {
    build_report(d.dir.string());
    FAIL() << "no error";
  } catch (const ParseError& e) {
    EXPECT_NE(std::string(e.what()).find(result), std::string::npos) << e.what();
  }

  Json missing = j;
  missing["summary"].erase("step_time_s");
  write(d.dir / "result.json", missing.dump());
  try {
    build_report(d.dir.string());
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), result + ": /summary/step_time_s: expected a value, found nothing");
  }

  Json wrong = j;
  wrong["breakdown_s"]["bubble"] = "slow";
  write(d.dir / "result.json", wrong.dump());
  try {
    build_report(d.dir.string());
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              result + ": /breakdown_s/bubble: expected a finite number, found \"slow\"");
  }

  write(d.dir / "result.json", j.dump());
  std::ofstream(d.dir / "ops.csv", std::ios::app) << "1,2,3\n";
  try {
    build_report(d.dir.string());
    FAIL() << "no error";
  } catch (const ParseError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find((d.dir / "ops.csv").string() + ":"), std::string::npos) << m;
    EXPECT_NE(m.find("fields as in the header, found 3"), std::string::npos) << m;
  }
}

TEST(HtmlReport, MissingLibrariesAreNamed) {
  const fs::path empty = fresh_dir("vega");
  ::setenv("MOESIM_VEGA_DIR", empty.c_str(), 1);
  try {
    load_vega_bundle();
    FAIL() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find((empty / "vega.min.js").string()), std::string::npos) << e.what();
  }
  ::unsetenv("MOESIM_VEGA_DIR");
  const VegaBundle v = load_vega_bundle();  // the vendored copy
  EXPECT_GT(v.vega.size(), 100000u);
  EXPECT_NE(v.versions.find("vega-lite"), std::string::npos);
}

}  // namespace
}  // namespace moesim::reports
