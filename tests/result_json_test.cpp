// Result ⇄ JSON (reports/result_json.hpp): result_from_json(result_json(r)) gives back r, field by
// field, for a real evaluated scenario and for a Result with every field set; the published document
// keeps its keys; a document that lacks a field fails naming its pointer.
#include "reports/result_json.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "models/analytic.hpp"
#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"

namespace {

using moesim::models::Result;
using moesim::reports::ResultDetail;
using nlohmann::json;

const std::string kSrc = MOESIM_SOURCE_DIR;

// Exactly equal, NaN equal to NaN: JSON numbers round-trip doubles exactly.
bool same(double a, double b) {
  return a == b || (std::isnan(a) && std::isnan(b));
}

#define EXPECT_SAME(field) \
  EXPECT_TRUE(same(a.field, b.field)) << #field << ": " << a.field << " vs " << b.field
#define EXPECT_EQ_FIELD(field) EXPECT_EQ(a.field, b.field) << #field

// Every field of Result (models/result.hpp), its chunk times, phases, breakdown, memory, layers and MoE
// layers.
void expect_same(const Result& a, const Result& b) {
  EXPECT_EQ_FIELD(schema_version);
  EXPECT_EQ_FIELD(scenario);
  EXPECT_EQ_FIELD(engine);
  EXPECT_EQ_FIELD(fidelity);
  EXPECT_EQ_FIELD(cost_model);
  EXPECT_EQ_FIELD(seed);
  EXPECT_EQ_FIELD(feasible);
  EXPECT_EQ_FIELD(infeasible_reason);
  EXPECT_EQ_FIELD(gpus);
  EXPECT_EQ_FIELD(microbatches);
  EXPECT_SAME(tokens_per_step);
  EXPECT_SAME(step_time);
  EXPECT_SAME(tokens_per_second);
  EXPECT_SAME(tokens_per_second_per_gpu);
  EXPECT_SAME(model_flops_per_token);
  EXPECT_SAME(achieved_tflops_per_gpu);
  EXPECT_SAME(mfu);
  EXPECT_SAME(mfu_causal);
  EXPECT_SAME(gpu_hours_per_trillion_tokens);
  EXPECT_SAME(cost_per_trillion_tokens);
  EXPECT_EQ_FIELD(critical_rank);
  EXPECT_SAME(chunk.f);
  EXPECT_SAME(chunk.b);
  EXPECT_SAME(chunk.w);
  EXPECT_SAME(chunk.f_compute);
  EXPECT_SAME(chunk.b_compute);
  EXPECT_SAME(chunk.w_compute);
  EXPECT_SAME(chunk.f_overlappable);
  EXPECT_SAME(chunk.b_overlappable);
  EXPECT_SAME(chunk.f_blocking);
  EXPECT_SAME(chunk.b_blocking);
  EXPECT_SAME(chunk.p2p);
  EXPECT_SAME(chunk.fb_pair);
  EXPECT_SAME(phases.forward_only);
  EXPECT_SAME(phases.steady);
  EXPECT_SAME(phases.backward_only);
  EXPECT_SAME(phases.weight_only);
  EXPECT_SAME(phases.bubble);
  EXPECT_EQ_FIELD(phases.lone_f);
  EXPECT_EQ_FIELD(phases.pairs);
  EXPECT_EQ_FIELD(phases.lone_b);
  EXPECT_SAME(phases.pair_time);
  EXPECT_SAME(phases.activations_in_flight);
  EXPECT_SAME(phases.parameter_copies);
  EXPECT_SAME(breakdown.compute);
  EXPECT_SAME(breakdown.exposed_tp);
  EXPECT_SAME(breakdown.exposed_ep);
  EXPECT_SAME(breakdown.exposed_cp);
  EXPECT_SAME(breakdown.bubble);
  EXPECT_SAME(breakdown.exposed_dp);
  EXPECT_SAME(breakdown.optimizer);
  EXPECT_SAME(grad_sync);
  EXPECT_SAME(memory.weights);
  EXPECT_SAME(memory.master_weights);
  EXPECT_SAME(memory.gradients);
  EXPECT_SAME(memory.optimizer_states);
  EXPECT_SAME(memory.activations);
  EXPECT_SAME(memory.overhead);
  EXPECT_SAME(memory.total);
  EXPECT_SAME(memory.capacity);
  EXPECT_EQ_FIELD(memory.fits);
  EXPECT_EQ_FIELD(memory_rank);
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (std::size_t i = 0; i < a.layers.size(); ++i) {
    SCOPED_TRACE("layers[" + std::to_string(i) + "]");
    EXPECT_EQ_FIELD(layers[i].layer);
    EXPECT_EQ_FIELD(layers[i].kind);
    EXPECT_EQ_FIELD(layers[i].pp_rank);
    EXPECT_SAME(layers[i].forward);
    EXPECT_SAME(layers[i].backward_input);
    EXPECT_SAME(layers[i].backward_weight);
    EXPECT_SAME(layers[i].max_over_mean_gpu);
  }
  ASSERT_EQ(a.moe_layers.size(), b.moe_layers.size());
  for (std::size_t i = 0; i < a.moe_layers.size(); ++i) {
    SCOPED_TRACE("moe_layers[" + std::to_string(i) + "]");
    EXPECT_EQ_FIELD(moe_layers[i].layer);
    EXPECT_SAME(moe_layers[i].max_over_mean_gpu);
    EXPECT_SAME(moe_layers[i].cv_gpu);
    EXPECT_SAME(moe_layers[i].max_over_mean_expert);
    EXPECT_SAME(moe_layers[i].cv_expert);
    EXPECT_SAME(moe_layers[i].straggler_rows);
    EXPECT_SAME(moe_layers[i].mean_rows);
    EXPECT_SAME(moe_layers[i].dropped_fraction);
    EXPECT_SAME(moe_layers[i].padded_rows);
    EXPECT_SAME(moe_layers[i].dispatch_seconds);
    EXPECT_SAME(moe_layers[i].combine_seconds);
    EXPECT_SAME(moe_layers[i].straggler_seconds);
    EXPECT_SAME(moe_layers[i].nic_bytes);
    EXPECT_EQ_FIELD(moe_layers[i].nodes);
    EXPECT_EQ_FIELD(moe_layers[i].node_traffic);
  }
  EXPECT_EQ_FIELD(node_traffic);
  EXPECT_EQ_FIELD(traffic_nodes);
  EXPECT_SAME(balanced_step_time);
  EXPECT_SAME(analytic_step_time);
  EXPECT_SAME(moe_max_over_mean_gpu);
  EXPECT_SAME(moe_dropped_fraction);
}

moesim::Scenario mixtral() {
  return moesim::load_scenario(kSrc + "/scenarios/examples/mixtral-8x7b-64xH100.json",
                               moesim::Catalog({kSrc + "/scenarios/catalog"}));
}

// As the child process of `compare --engine des` sends it: the complete document, as text.
Result through_text(const moesim::Scenario& s, const Result& r) {
  const std::string text = moesim::reports::result_json(s, r, nullptr, ResultDetail::kComplete).dump();
  return moesim::reports::result_from_json(json::parse(text));
}

TEST(ResultJson, EvaluatedScenarioRoundTrips) {
  const moesim::Scenario s = mixtral();
  const Result r = moesim::models::evaluate_analytic(s);
  // Preconditions: a real result, with MoE layers, layer times and node traffic to carry.
  ASSERT_GT(r.step_time, 0);
  ASSERT_FALSE(r.moe_layers.empty());
  ASSERT_FALSE(r.layers.empty());
  ASSERT_GT(r.traffic_nodes, 0);
  expect_same(r, through_text(s, r));
}

TEST(ResultJson, EveryFieldRoundTrips) {
  // Every field away from its default, so that a field the document drops cannot pass unnoticed.
  const moesim::Scenario s = mixtral();
  Result r;
  r.schema_version = 1;
  r.scenario = s.name;
  r.engine = "des";
  r.fidelity = "simulated";
  r.cost_model = "roofline";
  r.seed = 18446744073709551557ull;
  r.feasible = false;
  r.infeasible_reason = "needs 1 GiB more";
  r.gpus = 64;
  r.microbatches = 17;
  r.tokens_per_step = 1.5e6;
  r.step_time = 0.1 + 0.2;  // not exactly representable in decimal: checks the round trip of every bit
  r.tokens_per_second = 3.25e6;
  r.tokens_per_second_per_gpu = 5078.125;
  r.model_flops_per_token = 7.7e10;
  r.achieved_tflops_per_gpu = 401.3;
  r.mfu = 0.41;
  r.mfu_causal = 0.37;
  r.gpu_hours_per_trillion_tokens = 5470.1;
  r.cost_per_trillion_tokens = 11.5;
  r.critical_rank = 3;
  r.chunk = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  r.phases.forward_only = 0.01;
  r.phases.steady = 0.02;
  r.phases.backward_only = 0.03;
  r.phases.weight_only = 0.04;
  r.phases.bubble = 0.05;
  r.phases.lone_f = 6;
  r.phases.pairs = 7;
  r.phases.lone_b = 8;
  r.phases.pair_time = 0.09;
  r.phases.activations_in_flight = 4.5;
  r.phases.parameter_copies = 2;
  r.breakdown = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7};
  r.grad_sync = 0.8;
  r.memory = {1, 2, 3, 4, 5, 6, 21, 80, false};
  r.memory_rank = 2;
  r.layers = {{0, "dense", 0, 0.1, 0.2, 0.3, 1}, {1, "moe", 1, 0.4, 0.5, 0.6, 1.25}};
  moesim::models::MoeLayerStats m;
  m.layer = 1;
  m.max_over_mean_gpu = 1.5;
  m.cv_gpu = 0.2;
  m.max_over_mean_expert = 2.5;
  m.cv_expert = 0.3;
  m.straggler_rows = 1000;
  m.mean_rows = 800;
  m.dropped_fraction = 0.01;
  m.padded_rows = 12;
  m.dispatch_seconds = 0.001;
  m.combine_seconds = 0.002;
  m.straggler_seconds = 0.0005;
  m.nic_bytes = 3e8;
  m.nodes = 2;
  m.node_traffic = {1, 2, 3, 4};
  r.moe_layers = {m};
  r.node_traffic = {10, 20, 30, 40};
  r.traffic_nodes = 2;
  r.balanced_step_time = 0.25;
  r.analytic_step_time = 0.28;
  r.moe_max_over_mean_gpu = 1.5;
  r.moe_dropped_fraction = 0.01;
  expect_same(r, through_text(s, r));
}

TEST(ResultJson, PublishedDocumentKeepsItsKeys) {
  // result.json and `run --format json` print the published document: the complete document's extra
  // fields are not in it, and what it holds reads back.
  const moesim::Scenario s = mixtral();
  const Result r = moesim::models::evaluate_analytic(s);
  const json j = moesim::reports::result_json(s, r);
  EXPECT_FALSE(j["chunk_s"].contains("dualpipe_pair"));
  EXPECT_FALSE(j["summary"].contains("analytic_step_time_s"));
  EXPECT_FALSE(j["summary"].contains("infeasible_reason"));
  EXPECT_FALSE(j["moe"]["layers"][0].contains("node_traffic_bytes"));
  const Result back = moesim::reports::result_from_json(j);
  EXPECT_EQ(back.step_time, r.step_time);
  EXPECT_EQ(back.memory.total, r.memory.total);
  EXPECT_EQ(back.moe_layers.size(), r.moe_layers.size());
}

TEST(ResultJson, MissingFieldNamesItsPointer) {
  const moesim::Scenario s = mixtral();
  json j = moesim::reports::result_json(s, moesim::models::evaluate_analytic(s));
  j["summary"].erase("step_time_s");
  try {
    moesim::reports::result_from_json(j, "child");
    FAIL() << "expected a ParseError";
  } catch (const moesim::ParseError& e) {
    EXPECT_NE(std::string(e.what()).find("child: /summary/step_time_s: expected a result field, found none"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
