// The serving discrete-event engine against hand-built timelines: one request alone on a colocated
// instance (its TTFT is one prefill iteration, then one decode iteration per token) and on a disaggregated
// pair (plus the KV cache's flow over two NICs). Each test runs in its own process (one SimGrid engine per
// process).
#include "sim/serving_sim.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "models/placement.hpp"
#include "models/routing_source.hpp"
#include "models/serving.hpp"
#include "scenarios/catalog.hpp"
#include "scenarios/loader.hpp"
#include "tests/serving_trace_fixture.hpp"

namespace moesim::sim {
namespace {

const Catalog& catalog() {
  static const Catalog c({std::string(MOESIM_SOURCE_DIR) + "/scenarios/catalog"});
  return c;
}

Json base() {
  std::ifstream in(std::string(MOESIM_SOURCE_DIR) +
                   "/scenarios/examples/serving/qwen3-30b-a3b-h100-colocated.json");
  Json j = Json::parse(in);
  j["routing"]["mode"] = "expected";
  j["serving"]["requests"] = {{"count", 1}, {"input", "fixed:1000"}, {"output", "fixed:5"}};
  return j;
}

models::ServingBatch prefill(double tokens, double kv, double context) {
  models::ServingBatch b;
  b.prefill_tokens = tokens;
  b.prefill_seqs = 1;
  b.prefill_kv = kv;
  b.prefill_context = context;
  return b;
}

models::ServingBatch decode(double seqs, double kv) {
  models::ServingBatch b;
  b.decode_seqs = seqs;
  b.decode_kv = kv;
  return b;
}

// Positions 0..999 attend to 1..1000 keys: 500.5 on average; the engine reads whole 64-token KV blocks,
// so the priced means round up to 512 (prefill) and 1024 (contexts of 1000 to 1004 tokens).
TEST(ServingSim, OneRequestColocated) {
  const Scenario s = scenario_from_json(base(), "one.json", catalog());
  const auto rq = models::serving_requests(s);
  std::vector<models::ServedRequest> served;
  const models::ServingResult r = simulate_serving(s, rq, &served);
  const models::IterationPricer p(s, 0);
  const double t_prefill = p.price(prefill(1000, 512, 1024)).seconds;
  const double t_decode = p.price(decode(1, 1024)).seconds;
  ASSERT_EQ(served.size(), 1u);
  EXPECT_NEAR(served[0].first_token, t_prefill, 1e-12);
  EXPECT_NEAR(served[0].finish, t_prefill + 4 * t_decode, 1e-9);
  EXPECT_NEAR(r.tpot.p50, t_decode, 1e-9);
  EXPECT_EQ(r.requests, 1);
}

// Disaggregated: the first token comes from the prefill instance; the KV cache of 1001 tokens then crosses
// the prefill GPU's NIC and the decode GPU's NIC (latency of both links plus bytes over the NIC rate),
// then 4 decode iterations.
TEST(ServingSim, OneRequestDisaggregatedWithKvTransfer) {
  Json j = base();
  j["cluster"] = "catalog:dgx-h100-32";
  j["serving"]["instances"] =
      Json::array({{{"role", "prefill"}, {"nodes", 1}}, {{"role", "decode"}, {"nodes", 1}}});
  const Scenario s = scenario_from_json(j, "pd.json", catalog());
  std::vector<models::ServedRequest> served;
  const models::ServingResult r = simulate_serving(s, models::serving_requests(s), &served);
  const models::IterationPricer pre(s, 0), dec(s, 1);
  const double t_prefill = pre.price(prefill(1000, 512, 1024)).seconds;
  const double t_decode = dec.price(decode(1, 1024)).seconds;
  const double bytes = 1001 * pre.kv_bytes_per_token();
  const double transfer = 2 * s.cluster.scale_out.latency + bytes / s.cluster.scale_out.nic_bandwidth;
  ASSERT_EQ(served.size(), 1u);
  EXPECT_NEAR(served[0].first_token, t_prefill, 1e-12);
  EXPECT_NEAR(served[0].finish, t_prefill + transfer + 4 * t_decode, 1e-6 * served[0].finish);
  EXPECT_EQ(r.instances.size(), 2u);
}

// A hybrid model's recurrent state moves with its KV cache: the transfer carries 1001 tokens of the six
// attention layers' KV and the sequence's 23 Mamba-2 states (64 x 64 x 128 BF16 and the 3 x 6,144-channel
// convolution state, BF16, per layer).
TEST(ServingSim, OneRequestHybridDisaggregatedMovesItsState) {
  Json j = base();
  j["model"] = "catalog:nemotron-3-nano-30b-a3b";
  j["serving"]["instances"] =
      Json::array({{{"role", "prefill"}, {"nodes", 1}}, {{"role", "decode"}, {"nodes", 1}}});
  const Scenario s = scenario_from_json(j, "pd-hybrid.json", catalog());
  std::vector<models::ServedRequest> served;
  const models::ServingResult r = simulate_serving(s, models::serving_requests(s), &served);
  ASSERT_TRUE(r.feasible) << r.infeasible_reason;
  const models::IterationPricer pre(s, 0), dec(s, 1);
  const double t_prefill = pre.price(prefill(1000, 512, 1024)).seconds;
  const double t_decode = dec.price(decode(1, 1024)).seconds;
  const double state = 23 * (64.0 * 64 * 128 * 2 + 3.0 * 6144 * 2);
  EXPECT_DOUBLE_EQ(pre.kv_bytes_per_token(), 6 * 2 * 256 * 2.0);
  const double bytes = 1001 * pre.kv_bytes_per_token() + state;
  const double transfer = 2 * s.cluster.scale_out.latency + bytes / s.cluster.scale_out.nic_bandwidth;
  ASSERT_EQ(served.size(), 1u);
  EXPECT_NEAR(served[0].first_token, t_prefill, 1e-12);
  EXPECT_NEAR(served[0].finish, t_prefill + transfer + 4 * t_decode, 1e-6 * served[0].finish);
}

// The state takes cache blocks: a cache one block short of the request's tokens and state is refused as
// too small (naming the blocks it needs), one block more runs it.
TEST(ServingSim, HybridStateTakesCacheBlocks) {
  Json j = base();
  j["model"] = "catalog:nemotron-3-nano-30b-a3b";
  const auto with_blocks = [&](double blocks) {
    const models::IterationPricer p(scenario_from_json(j, "hybrid.json", catalog()), 0);
    const double memory = p.scenario().cluster.gpu.memory_bytes;
    Json k = j;
    k["serving"]["kv_memory_fraction"] =
        (p.weight_bytes() + p.workspace_bytes() + (blocks + 0.5) * 64 * p.kv_bytes_per_token()) / memory;
    return scenario_from_json(k, "hybrid.json", catalog());
  };
  const models::IterationPricer p(scenario_from_json(j, "hybrid.json", catalog()), 0);
  // 1000 + 5 + 1 tokens: 16 blocks; the BF16 state 23 x 1,085,440 B / 6,144 B = 4,063.3 tokens: 64 blocks.
  ASSERT_DOUBLE_EQ(p.state_tokens_per_sequence(), 64 * 64.0);
  const Scenario small = with_blocks(16 + 64 - 1);
  ASSERT_DOUBLE_EQ(models::IterationPricer(small, 0).kv_capacity_tokens(), (16 + 64 - 1) * 64.0);
  const models::ServingResult r = simulate_serving(small, models::serving_requests(small), nullptr);
  EXPECT_FALSE(r.feasible);
  EXPECT_NE(r.infeasible_reason.find("needs 80 KV blocks, a DP rank holds 79"), std::string::npos)
      << r.infeasible_reason;
}

TEST(ServingSim, HybridStateFitsWithOneMoreBlock) {
  Json j = base();
  j["model"] = "catalog:nemotron-3-nano-30b-a3b";
  const models::IterationPricer p(scenario_from_json(j, "hybrid.json", catalog()), 0);
  Json k = j;
  k["serving"]["kv_memory_fraction"] =
      (p.weight_bytes() + p.workspace_bytes() + 80.5 * 64 * p.kv_bytes_per_token()) /
      p.scenario().cluster.gpu.memory_bytes;
  const Scenario s = scenario_from_json(k, "hybrid.json", catalog());
  ASSERT_DOUBLE_EQ(models::IterationPricer(s, 0).kv_capacity_tokens(), 80 * 64.0);
  std::vector<models::ServedRequest> served;
  const models::ServingResult r = simulate_serving(s, models::serving_requests(s), &served);
  EXPECT_TRUE(r.feasible) << r.infeasible_reason;
  EXPECT_EQ(served.size(), 1u);
}

// A loaded colocated instance: every request completes, each no earlier than its prefill and decode
// iterations alone allow, and percentiles are ordered.
TEST(ServingSim, LoadedRunCompletesEveryRequest) {
  Json j = base();
  j["serving"]["requests"] = {
      {"count", 300},           {"rate", 10}, {"input", "lognormal:800:0.7"}, {"output", "lognormal:120:0.6"},
      {"cached_fraction", 0.2}, {"seed", 3}};
  j["routing"]["mode"] = "sampled";
  const Scenario s = scenario_from_json(j, "loaded.json", catalog());
  const auto rq = models::serving_requests(s);
  std::vector<models::ServedRequest> served;
  const models::ServingResult r = simulate_serving(s, rq, &served);
  ASSERT_EQ(served.size(), rq.size());
  const models::IterationPricer p(s, 0);
  const double floor_decode = p.price(decode(1, 64)).seconds;
  for (std::size_t i = 0; i < served.size(); ++i) {
    EXPECT_GT(served[i].first_token, rq[i].arrival_s);
    EXPECT_GE(served[i].finish - served[i].first_token,
              double(rq[i].output_tokens - 1) * floor_decode * (1 - 1e-9));
  }
  EXPECT_LE(r.ttft.p50, r.ttft.p90);
  EXPECT_LE(r.ttft.p90, r.ttft.p99);
  EXPECT_LE(r.tpot.p50, r.tpot.p99);
  EXPECT_FALSE(r.kv_usage.empty());
  EXPECT_FALSE(r.expert_load.empty());
  for (const auto& [t, load] : r.expert_load) EXPECT_GE(load, 1.0);
}

// 400 requests at 10 per second of 800 prompt and 100 output tokens on one colocated instance, with a TTFT
// SLO about half of them meet.
Json window_scenario(const std::string& from, const std::string& until) {
  Json j = base();
  j["serving"]["requests"] = {
      {"count", 400}, {"rate", 10}, {"input", "fixed:800"}, {"output", "fixed:100"}, {"seed", 5}};
  j["serving"]["ttft_slo"] = "30ms";
  j["serving"]["measure_from"] = from;
  j["serving"]["measure_until"] = until;
  return j;
}

// The measurement window (serving.measure_from, measure_until), checked against the run's own request
// records: the latencies and SLO attainment are those of the requests arriving in it, requests/s counts
// those finishing in it over its length, and prompt tokens count at the iteration that completes the prompt,
// which is the request's first token: exactly the requests whose first token falls in it. A request's output
// tokens are emitted between its first token and its finish, so the output rate lies between that of the
// requests emitting entirely inside the window and that of those emitting at all in it.
TEST(ServingSim, MeasurementWindowCountsWhatHappensInIt) {
  const Scenario s = scenario_from_json(window_scenario("10s", "30s"), "window.json", catalog());
  const auto rq = models::serving_requests(s);
  std::vector<models::ServedRequest> served;
  const models::ServingResult r = simulate_serving(s, rq, &served);
  ASSERT_EQ(served.size(), rq.size());
  const double t0 = rq.front().arrival_s, from = 10, until = 30;
  const auto in = [&](double t) { return t >= t0 + from && t <= t0 + until; };
  double ttft = 0, arrived = 0, good = 0, finished = 0, prompts = 0, out_lo = 0, out_hi = 0;
  for (const models::ServedRequest& q : served) {
    const double wait = q.first_token - q.arrival;
    if (in(q.arrival)) ttft += wait, arrived += 1, good += wait <= 0.03 ? 1 : 0;
    if (in(q.finish)) finished += 1;
    if (in(q.first_token)) prompts += double(q.input);
    if (in(q.first_token) && in(q.finish)) out_lo += double(q.output);
    if (q.finish >= t0 + from && q.first_token <= t0 + until) out_hi += double(q.output);
  }
  ASSERT_GT(arrived, 150);
  ASSERT_GT(good, 0);
  ASSERT_LT(good, arrived);  // the SLO splits the requests, so attainment is tested
  EXPECT_EQ(r.window_from, from);
  EXPECT_EQ(r.window_until, until);
  EXPECT_EQ(r.duration, until - from);
  EXPECT_NEAR(r.ttft.mean, ttft / arrived, 1e-12);
  EXPECT_NEAR(r.slo_attainment, good / arrived, 1e-12);
  EXPECT_NEAR(r.requests_per_s, finished / (until - from), 1e-12);
  EXPECT_NEAR(r.input_tokens_per_s, prompts / (until - from), 1e-9);
  EXPECT_GE(r.output_tokens_per_s, out_lo / (until - from) * (1 - 1e-12));
  EXPECT_LE(r.output_tokens_per_s, out_hi / (until - from) * (1 + 1e-12));
  // Below capacity (a TTFT of tens of milliseconds) the window's output rate is its arrivals' (flow
  // conservation: 100 tokens per request arriving in it), up to the requests it cuts at either end.
  const double offered = arrived * 100 / (until - from);
  EXPECT_NEAR(r.output_tokens_per_s, offered, 0.05 * offered);
  EXPECT_TRUE(r.caveat.empty()) << r.caveat;
  // The analytic engine gives the steady state either way, and says the window is not its.
  const models::ServingResult a = models::evaluate_serving_analytic(s, rq);
  EXPECT_NE(a.caveat.find("/serving/measure_from"), std::string::npos) << a.caveat;
}

// A window from 0 to past the end of the run is the whole run: first arrival to last completion, every
// request.
TEST(ServingSim, MeasurementWindowOverTheWholeRun) {
  const Scenario s = scenario_from_json(window_scenario("0s", "1000s"), "all.json", catalog());
  const auto rq = models::serving_requests(s);
  std::vector<models::ServedRequest> served;
  const models::ServingResult r = simulate_serving(s, rq, &served);
  const double t0 = rq.front().arrival_s;
  double last = t0, in = 0, out = 0, ttft = 0;
  for (const models::ServedRequest& q : served)
    last = std::max(last, q.finish), in += double(q.input), out += double(q.output),
    ttft += q.first_token - q.arrival;
  const double n = double(served.size());
  EXPECT_NEAR(r.duration, last - t0, 1e-12);
  EXPECT_NEAR(r.window_until, last - t0, 1e-12);
  EXPECT_NEAR(r.ttft.mean, ttft / n, 1e-12);
  EXPECT_NEAR(r.requests_per_s, n / (last - t0), 1e-12);
  EXPECT_NEAR(r.input_tokens_per_s, in / (last - t0), 1e-9 * in);
  EXPECT_NEAR(r.output_tokens_per_s, out / (last - t0), 1e-9 * out);
  EXPECT_TRUE(r.caveat.empty()) << r.caveat;
}

// A window after the run: an empty result that says so.
TEST(ServingSim, MeasurementWindowAfterTheRunSaysSo) {
  const Scenario s = scenario_from_json(window_scenario("900s", "0s"), "late.json", catalog());
  const models::ServingResult r = simulate_serving(s, models::serving_requests(s));
  EXPECT_NE(r.caveat.find("holds no arriving request"), std::string::npos) << r.caveat;
  EXPECT_EQ(r.requests_per_s, 0.0);
}

// Both engines on the scenario's requests, the means of the simulation within the given shares of the
// analytic steady state's.
void expect_engines_agree(const Scenario& s, double tpot, double ttft, double e2e) {
  const auto rq = models::serving_requests(s);
  const models::ServingResult a = models::evaluate_serving_analytic(s, rq);
  const models::ServingResult d = simulate_serving(s, rq);
  ASSERT_FALSE(a.saturated);
  EXPECT_NEAR(d.tpot.mean / a.tpot.mean, 1.0, tpot) << "DES " << d.tpot.mean << " analytic " << a.tpot.mean;
  EXPECT_NEAR(d.ttft.mean / a.ttft.mean, 1.0, ttft) << "DES " << d.ttft.mean << " analytic " << a.ttft.mean;
  EXPECT_NEAR(d.e2e.mean / a.e2e.mean, 1.0, e2e) << "DES " << d.e2e.mean << " analytic " << a.e2e.mean;
}

// The two engines on one colocated instance at a moderate load: the analytic steady state (Little's law,
// lockstep iterations with a prompt chunk in a Poisson share of them) against the simulated requests.
TEST(ServingSim, AgreesWithTheAnalyticSteadyState) {
  Json j = base();
  j["serving"]["requests"] = {{"count", 1500},
                              {"rate", 12},
                              {"input", "lognormal:1024:1.0"},
                              {"output", "lognormal:256:0.8"},
                              {"cached_fraction", 0.25},
                              {"seed", 7}};
  expect_engines_agree(scenario_from_json(j, "steady.json", catalog()), 0.10, 0.5, 0.10);
}

// Disaggregated, on DeepSeek's deployment at 10 requests/s (the one-hour benchmark cut to 3,000 requests;
// sampled routing, lognormal lengths): the analytic engine's lockstep prefill (the busiest rank's chunk of
// the prompts that arrived during the last iteration) and decode against the simulation.
TEST(ServingSim, DisaggregatedAgreesWithTheAnalyticSteadyState) {
  std::ifstream in(std::string(MOESIM_SOURCE_DIR) + "/bench/serving-deepseek-v3-decode-1h.json");
  Json j = Json::parse(in);
  j["serving"]["requests"]["count"] = 3000;
  expect_engines_agree(scenario_from_json(j, "deepseek.json", catalog()), 0.10, 0.20, 0.10);
}

// Colocated under a heavy prompt load (8 prompts/s of about 4k tokens on 8 lockstep ranks): the analytic
// chain of prompt arrivals (the prompts that arrive during an iteration start together in the next, the
// busiest rank holding the largest) against 30,000 simulated requests, near their steady state: the
// analytic mean TPOT 29 % and end to end 30 % above the simulation's. Counting each arrival's chunk at the
// mean iteration time instead put the analytic TPOT 61 % above it.
TEST(ServingSim, ColocatedUnderAHeavyPromptLoadAgrees) {
  Json j = base();
  j["serving"]["requests"] = {{"count", 30000},
                              {"rate", 8},
                              {"input", "lognormal:4096:0.6"},
                              {"output", "lognormal:512:0.8"},
                              {"seed", 7}};
  j["serving"]["tpot_slo"] = "40ms";
  j["workload"]["seq_len"] = 65536;
  j["routing"]["mode"] = "sampled";
  expect_engines_agree(scenario_from_json(j, "heavy.json", catalog()), 0.30, 0.5, 0.30);
}

// Hybrid models, each example at its own load (1,500 of its requests): the analytic steady state against the
// simulated requests, as for transformer-block models.
Json hybrid_example(const std::string& name) {
  std::ifstream in(std::string(MOESIM_SOURCE_DIR) + "/scenarios/examples/serving/" + name + ".json");
  Json j = Json::parse(in);
  j["serving"]["requests"]["count"] = 1500;
  return j;
}

TEST(ServingSim, HybridMambaAgreesWithTheAnalyticSteadyState) {
  expect_engines_agree(
      scenario_from_json(hybrid_example("nemotron-3-nano-h100-colocated"), "nemotron.json", catalog()), 0.10,
      0.5, 0.10);
}

TEST(ServingSim, HybridGatedDeltaNetAgreesWithTheAnalyticSteadyState) {
  expect_engines_agree(
      scenario_from_json(hybrid_example("qwen3-next-80b-a3b-h100-colocated"), "qwen3-next.json", catalog()),
      0.10, 0.5, 0.10);
}

// Online EPLB on the rotating hot expert trace (tests/serving_trace_fixture.hpp: one expert hot for 50
// steps at a time) with 8 redundant experts. The placement computed from the whole trace's mean gives each
// of the 8 experts that are hot some of the time one extra replica; rebalanced every 0.1 s from the copies
// routed since, EPLB gives the redundant slots to the expert hot now. Each run in its own test (one
// SimGrid engine per process); both against the noise-free expectation of their placement.
Json rebalance_scenario(double interval) {
  Json j = base();
  j["serving"]["requests"] = {
      {"count", 400}, {"rate", 20}, {"input", "fixed:512"}, {"output", "fixed:64"}, {"seed", 5}};
  j["serving"]["instances"][0]["redundant_experts"] = 8;
  j["serving"]["rebalance_interval"] = std::to_string(interval) + "s";
  j["placement"] = {{"policy", "eplb"}};
  j["routing"] = {{"policy", "softmax_topk"},
                  {"mode", "trace"},
                  {"trace", {{"path", testing::write_rotating_hot_trace("moesim-serving-trace-des.jsonl")}}}};
  return j;
}

// The busiest GPU's share over the priced one without sampling noise, mean over the trace's steps, for
// the placement `maps` (every layer alike here).
double noise_free_load(const models::IterationPricer& p, const std::vector<models::SlotMap>& maps) {
  double priced = 0;
  for (double v : models::rank_shares(p.shares()[0], p.slot_maps()[0])) priced = std::max(priced, v);
  double sum = 0;
  for (const auto& step : p.trace_shares()) {
    double top = 0;
    for (double v : models::rank_shares(step[0], maps[0])) top = std::max(top, v);
    sum += top / priced;
  }
  return sum / double(p.trace_shares().size());
}

TEST(ServingSim, TraceRoutingWithoutRebalancing) {
  const Scenario s = scenario_from_json(rebalance_scenario(0), "static.json", catalog());
  const models::IterationPricer p(s, 0);
  const double expected = noise_free_load(p, p.slot_maps());
  const models::ServingResult r = simulate_serving(s, models::serving_requests(s));
  ASSERT_EQ(r.instances.size(), 1u);
  EXPECT_EQ(r.instances[0].rebalances, 0);
  const double drawn = r.instances[0].iteration.max_over_mean_gpu;
  std::printf("[measured] static placement: expert load max/mean %.4f (noise-free %.4f)\n", drawn, expected);
  EXPECT_GE(drawn, expected);
  EXPECT_LE(drawn, 1.3 * expected);
}

TEST(ServingSim, TraceRoutingWithOnlineRebalancing) {
  const Scenario s = scenario_from_json(rebalance_scenario(0.1), "rebalanced.json", catalog());
  const models::IterationPricer p(s, 0);
  const double fixed = noise_free_load(p, p.slot_maps());
  // Each step under the placement EPLB gives that step's own loads (the hot expert on the redundant
  // slots): what a rebalance that caught up with the trace at once would reach.
  double priced = 0;
  for (double v : models::rank_shares(p.shares()[0], p.slot_maps()[0])) priced = std::max(priced, v);
  double followed = 0;
  for (const auto& step : p.trace_shares()) {
    const models::PlacementResult placed =
        models::place_for(p.scenario(), models::ExpertLoads(p.shares().size(), step[0]));
    ASSERT_FALSE(placed.slot_maps.empty());
    double top = 0;
    for (double v : models::rank_shares(step[0], placed.slot_maps[0])) top = std::max(top, v);
    followed += top / priced / double(p.trace_shares().size());
  }
  const models::ServingResult r = simulate_serving(s, models::serving_requests(s));
  ASSERT_EQ(r.instances.size(), 1u);
  const double drawn = r.instances[0].iteration.max_over_mean_gpu;
  std::printf(
      "[measured] rebalanced every 0.1 s: %d rebalances, expert load max/mean %.4f (static "
      "noise-free %.4f, the step's own placement %.4f)\n",
      r.instances[0].rebalances, drawn, fixed, followed);
  EXPECT_GT(r.instances[0].rebalances, 10);
  EXPECT_LT(drawn, fixed);
  EXPECT_GT(drawn, followed);
  // Each rebalance pauses the replica while the experts a GPU newly holds arrive over its NIC: at most all
  // 17 slots of each of the 48 MoE layers, at 3 x 2048 x 768 BF16 weights (9.4 MB) each.
  const double expert = 3.0 * 2048 * 768 * 2;
  EXPECT_DOUBLE_EQ(p.expert_bytes(), expert);
  const double nic = s.cluster.scale_out.nic_bandwidth;
  std::printf("[measured] paused %.3f s moving expert weights over the run\n",
              r.instances[0].rebalance_seconds);
  EXPECT_GT(r.instances[0].rebalance_seconds, 0);
  EXPECT_LE(r.instances[0].rebalance_seconds, r.instances[0].rebalances * 17 * 48 * expert / nic);
}

// The per-rank prefix cache in the discrete-event engine (one simulation per test): 64 equally popular
// prefixes, 16 fit per rank, 8 ranks, 4,000 requests. Without prefix routing the counted hit rate is the
// analytic engine's (Che's approximation, 0.25) within 0.03; with it, 64 first sightings and the
// requests sent away from a busy holder miss, and at least 85% hit.
Json prefix_cache_scenario(bool routing) {
  Json j = base();
  j["serving"]["requests"] = {
      {"count", 4000},          {"rate", 20}, {"input", "fixed:1024"}, {"output", "fixed:128"},
      {"cached_fraction", 0.5}, {"seed", 7},  {"prefix_groups", 64},   {"prefix_zipf", 0}};
  j["serving"]["prefix_cache_tokens"] = 8192;
  j["serving"]["prefix_routing"] = routing;
  return j;
}

TEST(ServingSim, PrefixCacheLeastLoaded) {
  const Scenario s = scenario_from_json(prefix_cache_scenario(false), "pc.json", catalog());
  const auto rq = models::serving_requests(s);
  const models::ServingResult a = models::evaluate_serving_analytic(s, rq);
  const models::ServingResult d = simulate_serving(s, rq);
  std::printf("[measured] prefix cache, least loaded: hit rate %.4f simulated, %.4f analytic\n",
              d.prefix_hit_rate, a.prefix_hit_rate);
  EXPECT_NEAR(d.prefix_hit_rate, a.prefix_hit_rate, 0.03);
  EXPECT_NEAR(d.mean_cached, 512 * d.prefix_hit_rate, 1e-9);
}

TEST(ServingSim, PrefixCacheWithPrefixRouting) {
  const Scenario s = scenario_from_json(prefix_cache_scenario(true), "pcr.json", catalog());
  const models::ServingResult d = simulate_serving(s, models::serving_requests(s));
  std::printf("[measured] prefix cache, prefix routing: hit rate %.4f simulated\n", d.prefix_hit_rate);
  EXPECT_GE(d.prefix_hit_rate, 0.85);
  EXPECT_LE(d.prefix_hit_rate, 1.0 - 64.0 / 4000.0);  // every prefix misses once on its first rank
}

}  // namespace
}  // namespace moesim::sim

namespace moesim::sim {
namespace {

// A radix prefix cache serves what a resident prefix holds in common with the request: one prefix named
// by four requests, one second apart, all on the rank that holds it (prefix routing; each request is done
// long before the next), cached parts 300, 500, 200 and 500 tokens of 1,000. The first misses and leaves
// 300 resident; the second is served 300 (a partial match) and leaves 500; the third is served its 200;
// the fourth its 500. Served 1,000 of 1,500 cached tokens (2/3), 3 of 4 prefixes hit, 250 tokens per
// request. Counting a hit as the whole cached part would serve 1,200.
TEST(ServingSim, PrefixCachePartialMatch) {
  const std::string trace = ::testing::TempDir() + "/partial_prefix.csv";
  std::ofstream(trace) << "arrival_s,input_tokens,output_tokens,cached_tokens,prefix_id\n"
                          "0,1000,5,300,7\n1,1000,5,500,7\n2,1000,5,200,7\n3,1000,5,500,7\n";
  Json j = base();
  j["serving"]["requests"] = {{"trace", trace}};
  j["serving"]["prefix_cache_tokens"] = 8192;
  j["serving"]["prefix_routing"] = true;
  const Scenario s = scenario_from_json(j, "partial.json", catalog());
  const models::ServingResult d = simulate_serving(s, models::serving_requests(s));
  EXPECT_EQ(d.requests, 4);
  EXPECT_NEAR(d.prefix_hit_rate, 0.75, 1e-12);
  EXPECT_NEAR(d.prefix_token_hit_rate, 1000.0 / 1500.0, 1e-12);
  EXPECT_NEAR(d.mean_cached, 250.0, 1e-9);
}

}  // namespace
}  // namespace moesim::sim
