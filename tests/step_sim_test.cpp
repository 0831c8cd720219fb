// The discrete-event step engine (sim/step_sim.hpp) checked against expectations derived apart from it:
//
//   1. Without network contention (tests/data/des/nvl-moe-16xB200.json: every flow on its GPUs' own
//      NVLink ports through a non-blocking NVSwitch) the executed schedule must reproduce the analytic
//      engine's closed forms: 1F1B (PP2, PP4), interleaved (PP2, vpp 2), ZB-H1 (PP4), DualPipe (PP4,
//      m 16), within 2%.
//   2. A dense 1F1B pipeline with negligible pipeline transfers: the textbook makespan
//      (m + PP - 1)(F + B + W) + tail from the per-microbatch chunk prices, within 0.5%.
//   3. A hot expert: its EP rank's expert segments are longer by the inverse load ratio derived from the
//      expected shares, the group waits for it at every all-to-all, it finishes last, and the step is no
//      shorter than the analytic balanced-routing step.
//   3b. DualPipe under routing skew (two layers with different busiest GPUs): the overlapped pair by hand
//      (the busiest GPU of the sum), against both engines.
//   4. Determinism: two fresh processes (fork before any SimGrid engine exists) give the same bytes.
//   5. Fidelity controls against the full simulation (tests/data/des/{fattree,rail}-hot-32xH100.json,
//      scenarios/examples/mixtral-8x7b-64xH100.json): microbatch extrapolation, node-pair aggregation,
//      representative EP groups. Each bound is the measured error with a stated margin (docs/des.md
//      has the table and the commands).
//   6. The Chrome trace: well-formed events, a sequential compute stream, its end = the simulated run.
//   7. Options outside their sets.
//   8. What expert communication hides under: shared experts only with workload.shared_expert_overlap,
//      expert-tensor-parallel collectives never (both against the analytic engine and by formula).
//
// SimGrid allows one engine per process, frozen to the first cluster it simulates: ctest runs every
// TEST in its own process (gtest_discover_tests), and inside one TEST every simulation uses the same
// cluster. Running this binary without --gtest_filter therefore fails; use ctest or one filter per run.
// Each test prints what it measured ("[measured] ..."; ctest -V shows it).

#include "sim/step_sim.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "models/analytic.hpp"
#include "models/compute_cost.hpp"
#include "models/network.hpp"
#include "models/workload.hpp"
#include "reports/chrome_trace.hpp"
#include "scenarios/catalog.hpp"
#include "scenarios/error.hpp"
#include "scenarios/json_reader.hpp"
#include "scenarios/loader.hpp"
#include "scenarios/scenario.hpp"
#include "sim/des_fidelity.hpp"
#include "tests/support/subprocess.hpp"

namespace moesim::sim {
namespace {

const Catalog& catalog() {
  static const Catalog c({std::string(MOESIM_SOURCE_DIR) + "/scenarios/catalog"});
  return c;
}

const std::string kNvl = std::string(MOESIM_TEST_DATA) + "/des/nvl-moe-16xB200.json";
const std::string kFatTree = std::string(MOESIM_TEST_DATA) + "/des/fattree-hot-32xH100.json";
const std::string kRail = std::string(MOESIM_TEST_DATA) + "/des/rail-hot-32xH100.json";
const std::string kMixtral = std::string(MOESIM_SOURCE_DIR) + "/scenarios/examples/mixtral-8x7b-64xH100.json";

// The JSON of `file` with variant `name` applied ("" for the base) and `patch` (pointer → value) on top.
Json scenario_json(const std::string& file, const std::string& name, const Json& patch = Json::object()) {
  Json j = read_json_file(file);
  if (!name.empty()) {
    bool found = false;
    for (const Variant& v : variants_from_json(j, file))
      if (v.name == name) {
        j = apply_variant(j, v, file);
        found = true;
      }
    EXPECT_TRUE(found) << "no variant " << name << " in " << file;
  }
  j.erase("variants");
  for (auto it = patch.begin(); it != patch.end(); ++it) j[Json::json_pointer(it.key())] = it.value();
  return j;
}

Scenario load(const std::string& file, const std::string& name = "", const Json& patch = Json::object()) {
  return scenario_from_json(scenario_json(file, name, patch), file + (name.empty() ? "" : " (" + name + ")"),
                            catalog());
}

// The engine options a scenario names (as `moesim run` reads them).
StepOptions options_of(const Scenario& s) {
  StepOptions o;
  o.groups = s.engine.groups;
  o.aggregation = s.engine.aggregation;
  o.microbatches = s.engine.microbatches;
  o.precision_fraction = s.engine.precision;
  o.timeline_gpus = s.engine.timeline_gpus;
  return o;
}

double rel_err(double x, double reference) {
  return x / reference - 1.0;
}

void report(const std::string& what, double value, double reference, const char* value_name,
            const char* reference_name) {
  std::printf("[measured] %s: %s %.9f s, %s %.9f s, error %+.4f%%\n", what.c_str(), value_name, value,
              reference_name, reference, 100.0 * rel_err(value, reference));
}

// Tests that compare two runs warm the engine first, so that both runs are measured the same way (a
// fresh engine once differed from a reused one: FreshEngineMatchesReusedEngine below). The warm-up needs
// the widest set of GPUs of the test: the platform holds only the first simulation's GPUs, and a later
// simulation needing others is refused with a ConfigError.
void warm_up(const Scenario& s) {
  (void)simulate_step(s, options_of(s));
}

// ============================================================================ 1. agreement with analytic

// Simulates a variant of the NVLink-domain scenario with every microbatch and compares its step with the
// analytic engine of the same scenario. Preconditions of "no contention" checked on the result: only
// NVLink ports carried bytes (every all-to-all and pipeline flow stays on its own GPUs' ports; the
// NVSwitch is one non-blocking vertex), and nothing was extrapolated.
double agreement(const std::string& variant, int m) {
  const Scenario s = load(kNvl, variant);
  EXPECT_EQ(s.layout.microbatches, m);
  const StepSimResult d = simulate_step(s, options_of(s));
  const double analytic = models::evaluate_analytic(s).step_time;
  EXPECT_NEAR(d.result.analytic_step_time, analytic, 1e-12 * analytic);
  EXPECT_EQ(d.stats.microbatches, std::vector<int>{m});
  EXPECT_EQ(d.result.engine, "des");
  EXPECT_FALSE(d.links.empty());
  for (const LinkUsage& l : d.links) EXPECT_EQ(l.kind, LinkKind::kNvlink) << l.name;
  report(s.name + " DES vs analytic", d.result.step_time, analytic, "des", "analytic");
  // The executed phases add up to the step, and count the chunks the analytic engine counts on the same
  // rank (DualPipe: lone chunks and overlapped pairs; the others: warm-up, steady and cool-down).
  const models::SchedulePhases& ph = d.result.phases;
  const models::Breakdown& bd = d.result.breakdown;
  EXPECT_NEAR(ph.total() + bd.exposed_dp + bd.optimizer, d.result.step_time, 1e-9 * d.result.step_time);
  if (d.result.critical_rank == 0 && s.parallelism.schedule != Schedule::kInterleaved) {
    const models::Result a = models::evaluate_analytic(s);
    EXPECT_EQ(ph.lone_f, a.phases.lone_f);
    EXPECT_EQ(ph.lone_b, a.phases.lone_b);
    EXPECT_EQ(ph.pairs, a.phases.pairs);
  }
  std::printf(
      "[measured] %s DES phases on PP rank %d: 1F %.6f s x%d, steady %.6f s x%d, 1B %.6f s x%d, "
      "1W %.6f s, bubble %.6f s\n",
      s.name.c_str(), d.result.critical_rank, ph.forward_only, ph.lone_f, ph.steady, ph.pairs,
      ph.backward_only, ph.lone_b, ph.weight_only, ph.bubble);
  return rel_err(d.result.step_time, analytic);
}

// Measured (docs/des.md): 1F1B PP4 -0.193%, PP2 -0.031%; interleaved +0.137%; ZB-H1 -0.169%.
TEST(StepSimAgreement, OneFOneB) {
  EXPECT_LE(std::fabs(agreement("", 16)), 0.02);         // PP4, EP4, m 16
  EXPECT_LE(std::fabs(agreement("1f1b-pp2", 8)), 0.02);  // PP2, EP8, m 8 (same cluster)
}

TEST(StepSimAgreement, Interleaved) {
  EXPECT_LE(std::fabs(agreement("interleaved-pp2-vpp2", 8)), 0.02);
}

TEST(StepSimAgreement, ZeroBubble) {
  EXPECT_LE(std::fabs(agreement("zero-bubble-pp4", 16)), 0.02);
}

// DualPipe is the one schedule whose analytic bubble is not exact: DeepSeek-V3's Table 2 form
// (PP/2-1)(F&B + B - 3W) holds for the executed order only when F = B = W (tests/schedule_order_test.cpp,
// DualPipeMakespan). At this model's chunk times (F 1.77 ms, B 2.48 ms, W 0.98 ms) the schedule-order
// evaluator of that test gives a bubble 0.70 ms shorter than the closed form, a constant; the executed
// overlapped pairs are in turn slightly longer than the analytic four-slot estimate. Measured
// (docs/des.md): -1.72% at m 8, -0.78% at m 16, -0.09% at m 32. The test runs m 16, inside 2%.
TEST(StepSimAgreement, DualPipe) {
  EXPECT_LE(std::fabs(agreement("dualpipe-pp4", 16)), 0.02);
}

// Megatron-Core's combined 1F1B (ep_overlap) on the same cluster, in the two layouts Megatron runs it
// with: one pipeline stage (PP1, EP16, m 4: one lone forward, 3 overlapped pairs, one lone backward) and
// interleaved (PP2 VPP2 EP8, m 8). The overlap shortens the step against the same scenario without it in
// both engines, and the engines agree within 2% (measured: PP1 exactly, interleaved -0.33%; docs/des.md).
double ep_overlap_agreement(const std::string& variant, const Json& patch) {
  Json on = patch, off = patch;
  on["/parallelism/ep_overlap"] = true;
  const Scenario s = load(kNvl, variant, on), plain = load(kNvl, variant, off);
  warm_up(plain);
  const StepSimResult d = simulate_step(s, options_of(s));
  const models::Result a = models::evaluate_analytic(s);
  const double des_plain = simulate_step(plain, options_of(plain)).result.step_time;
  const double analytic_plain = models::evaluate_analytic(plain).step_time;
  const std::string what = s.name + (variant.empty() ? " pp1" : " " + variant) + " ep_overlap";
  report(what + " DES vs analytic", d.result.step_time, a.step_time, "des", "analytic");
  report(what + " analytic vs without", a.step_time, analytic_plain, "overlap", "plain");
  report(what + " DES vs without", d.result.step_time, des_plain, "overlap", "plain");
  EXPECT_LT(a.step_time, analytic_plain) << what;
  EXPECT_LT(d.result.step_time, des_plain) << what;
  return rel_err(d.result.step_time, a.step_time);
}

TEST(StepSimAgreement, CombinedOneFOneBEpOverlap) {
  EXPECT_LE(
      std::fabs(ep_overlap_agreement("", Json{{"/parallelism/pp", 1}, {"/parallelism/experts/ep", 16}})),
      0.02);
  const Scenario pp1 =
      load(kNvl, "",
           Json{{"/parallelism/pp", 1}, {"/parallelism/experts/ep", 16}, {"/parallelism/ep_overlap", true}});
  const models::Result a = models::evaluate_analytic(pp1);
  EXPECT_EQ(a.phases.lone_f, 1);
  EXPECT_EQ(a.phases.pairs, 3);
  EXPECT_EQ(a.phases.lone_b, 1);
  EXPECT_LE(std::fabs(ep_overlap_agreement("interleaved-pp2-vpp2", Json::object())), 0.02);
}

// One MoE block on one pipeline stage (PP1, EP16): a combined-1F1B steady unit is the block's forward
// beside its own backward. Hand-derived from the two streams and Megatron-Core's dependencies (compute:
// ATTN(F), MLP(B)+MLP(W), MLP(F), ATTN(B)+ATTN(W); communication: combine(B), dispatch(F), dispatch(B),
// combine(F); each chunk's nodes in order on its one CUDA event): each of the four slots takes the longer
// of its two streams, s1 = max(aF, cB), pair = s1 + max(mB + mW, dF) + max(mF, dB) + max(aB + aW, cF),
// plus the embedding and the head. Delayed weight gradients leave the pair as it is (they only move the
// chunk's last attention weight gradients past its pipeline send, of which PP1 has none).
TEST(StepSimAgreement, CombinedPairByHand) {
  const Json patch{{"/model/layers", 1},
                   {"/parallelism/pp", 1},
                   {"/parallelism/experts/ep", 16},
                   {"/parallelism/global_batch", 16},
                   {"/parallelism/ep_overlap", true},
                   {"/cluster/scale_up/domain_gpus", 4},
                   {"/cluster/scale_out/nic_bandwidth", "70GBps"}};
  Json delayed = patch;
  delayed["/parallelism/delay_wgrad"] = true;
  const Scenario s0 = load(kNvl, "", patch), s1 = load(kNvl, "", delayed);
  ASSERT_TRUE(s1.parallelism.delay_wgrad);
  auto cm = models::make_compute_cost_model(s0);
  const models::Workload w = models::build_workload(s0, *cm, models::NetworkModel(s0.cluster));
  ASSERT_EQ(w.blocks.size(), 1u);
  ASSERT_EQ(w.ranks.size(), 1u);
  const models::BlockCost& bc = w.blocks[0];
  ASSERT_GE(bc.moe_index, 0);
  ASSERT_EQ(w.overlap_slowdown, 1.0);
  const models::PassCost &F = bc.pass[0], &B = bc.pass[1], &W = bc.pass[2];
  const double aF = F.attn_compute, mF = F.mlp_compute, aB = B.attn_compute, mB = B.mlp_compute;
  const double aW = W.attn_compute, mW = W.mlp_compute;
  const double cB = B.combine, dF = F.dispatch, dB = B.dispatch, cF = F.combine;
  ASSERT_GT(dB, 0);
  ASSERT_GT(mW, 0);
  const models::RankWork& rw = w.ranks[0];
  const double outside =
      (rw.pass[0].compute - F.compute) + (rw.pass[1].compute + rw.pass[2].compute - B.compute - W.compute);
  const double pair =
      std::max(aF, cB) + std::max(mB + mW, dF) + std::max(mF, dB) + std::max(aB + aW, cF) + outside;
  const models::Result a0 = models::evaluate_analytic(s0), a1 = models::evaluate_analytic(s1);
  EXPECT_NEAR(a0.chunk.fb_pair, pair, 1e-12 * pair);
  EXPECT_EQ(a1.chunk.fb_pair, a0.chunk.fb_pair);
  EXPECT_EQ(a1.step_time, a0.step_time);
}

// The same block with tensor parallelism 2 (sequence parallel): its attention's all-gathers and
// reduce-scatters run on the compute stream among the attention's kernels, so in a pair they sit in the
// attention slots beside the other chunk's all-to-all: s1 = max(aF + tF, cB), s4 = max(aB + aW + tB, cF),
// at their own price (the SMs the all-to-all takes slow only computation). The discrete-event engine
// executes the same pair from the block's segments; with one block, one stage and an NVLink-only EP group
// the two agree to rounding.
TEST(StepSimAgreement, CombinedPairTensorCollectivesInTheAttentionSlots) {
  const Json patch{{"/model/layers", 1},
                   {"/parallelism/pp", 1},
                   {"/parallelism/attention/tp", 2},
                   {"/parallelism/experts/ep", 8},
                   {"/parallelism/global_batch", 16},
                   {"/parallelism/ep_overlap", true}};
  const Scenario s = load(kNvl, "", patch);
  auto cm = models::make_compute_cost_model(s);
  const models::Workload w = models::build_workload(s, *cm, models::NetworkModel(s.cluster));
  ASSERT_EQ(w.blocks.size(), 1u);
  const models::BlockCost& bc = w.blocks[0];
  ASSERT_GE(bc.moe_index, 0);
  const models::PassCost &F = bc.pass[0], &B = bc.pass[1], &W = bc.pass[2];
  ASSERT_GT(F.tp_comm, 0);
  ASSERT_GT(B.tp_comm, 0);
  const double slow = w.overlap_slowdown;
  const models::RankWork& rw = w.ranks[0];
  const double outside =
      (rw.pass[0].compute - F.compute) + (rw.pass[1].compute + rw.pass[2].compute - B.compute - W.compute);
  const double pair = std::max(slow * F.attn_compute + F.tp_comm, B.combine) +
                      std::max(slow * (B.mlp_compute + W.mlp_compute), F.dispatch) +
                      std::max(slow * F.mlp_compute, B.dispatch) +
                      std::max(slow * (B.attn_compute + W.attn_compute) + B.tp_comm, F.combine) + outside;
  const models::Result a = models::evaluate_analytic(s);
  EXPECT_NEAR(a.chunk.fb_pair, pair, 1e-12 * pair);
  const StepSimResult d = simulate_step(s, options_of(s));
  report("one block, TP2 EP8, combined 1F1B: DES vs analytic", d.result.step_time, a.step_time, "des",
         "analytic");
  EXPECT_LE(std::fabs(rel_err(d.result.step_time, a.step_time)), 0.005);
}

// Delayed weight gradients in both engines, interleaved PP2 VP2 on the cluster above (NVLink trays of 4,
// 70 GB/s NIC): the pair's pipeline sends leave before its last attention weight gradients, so the
// neighbouring ranks' pairs wait less (analytic: combined_pair_waits) and the step is never slower than
// without them; the engines agree within 5% (measured: DES -1.01%, analytic -0.89% against the same
// scenario without; DES against analytic -1.92%; docs/des.md).
TEST(StepSimAgreement, DelayedWeightGradientsDes) {
  const Json slow{{"/cluster/scale_up/domain_gpus", 4},
                  {"/cluster/scale_out/nic_bandwidth", "70GBps"},
                  {"/parallelism/ep_overlap", true}};
  Json on = slow;
  on["/parallelism/delay_wgrad"] = true;
  const Scenario s = load(kNvl, "interleaved-pp2-vpp2", on), plain = load(kNvl, "interleaved-pp2-vpp2", slow);
  warm_up(s);
  const double des = simulate_step(s, options_of(s)).result.step_time;
  const double des_plain = simulate_step(plain, options_of(plain)).result.step_time;
  const double a = models::evaluate_analytic(s).step_time;
  report("interleaved-pp2-vpp2 delay_wgrad DES vs analytic", des, a, "des", "analytic");
  report("interleaved-pp2-vpp2 delay_wgrad DES vs without", des, des_plain, "delayed", "plain");
  const double a_plain = models::evaluate_analytic(plain).step_time;
  report("interleaved-pp2-vpp2 delay_wgrad analytic vs without", a, a_plain, "delayed", "plain");
  EXPECT_LE(des, des_plain * (1 + 1e-12));
  EXPECT_LT(a, a_plain);
  EXPECT_LE(std::fabs(rel_err(des, a)), 0.05);
}

// Combined 1F1B with pipeline sends that matter: interleaved PP4 VP4 (one block per virtual stage), each
// stage on its own tray of 4, the trays joined by 23 GB/s NICs (a 16 MiB activation takes 0.73 ms against
// chunks of a few ms). Both outputs of a pair leave when it ends and share the GPU's NIC, so every virtual
// pair waits for its neighbours' sends (models/analytic.cpp, combined_pair_waits); in the discrete-event
// engine the wait emerges from the flows. The engines agree within 3% (measured -1.5%, docs/des.md), and
// the analytic wait is what the closed form without it would miss.
TEST(StepSimAgreement, CombinedInterleavedWaitsForPipelineSends) {
  const Json patch{{"/cluster/scale_up/domain_gpus", 4},
                   {"/cluster/scale_out/nic_bandwidth", "23GBps"},
                   {"/parallelism/pp", 4},
                   {"/parallelism/vpp", 4},
                   {"/parallelism/schedule", "interleaved"},
                   {"/parallelism/ep_overlap", true}};
  const Scenario s = load(kNvl, "", patch);
  warm_up(s);
  const StepSimResult d = simulate_step(s, options_of(s));
  const models::Result a = models::evaluate_analytic(s);
  report("interleaved-pp4-vpp4 ep_overlap over 23 GB/s NICs DES vs analytic", d.result.step_time, a.step_time,
         "des", "analytic");
  // The wait per microbatch: v·2·p2p on equal ranks; here the ranks differ only by the embedding and the
  // head (measured 5.841 ms against 4·2·0.732 = 5.856 ms).
  const double wait = a.phases.pair_time - a.chunk.fb_pair;
  std::printf("[measured] pair %.6f s, wait %.6f s per microbatch, p2p %.6f s\n", a.chunk.fb_pair, wait,
              a.chunk.p2p);
  EXPECT_NEAR(wait, 4 * 2 * a.chunk.p2p, 0.02 * 4 * 2 * a.chunk.p2p);
  const double without = a.step_time - a.phases.pairs * wait;
  report("interleaved-pp4-vpp4 ep_overlap over 23 GB/s NICs DES vs analytic without the wait",
         d.result.step_time, without, "des", "analytic");
  EXPECT_LE(std::fabs(rel_err(d.result.step_time, a.step_time)), 0.03);
  EXPECT_GT(std::fabs(rel_err(d.result.step_time, without)), 0.03);
}

// An overlapped pair whose all-to-alls and pipeline sends share the GPU's NIC: EP8 over trays of 4 with
// 5 GB/s NICs (every pair bound by its all-to-alls), PP2 VP2 with the stages on different trays. The
// previous pair's two sends leave as the pair starts; its first all-to-all (the backward chunk's combine)
// finishes its NIC leg after them, and the rest follow back to back on the communication stream, so the
// pair grows by exactly max(0, 2·p2p + that NIC leg - that all-to-all) over the same pair with the sends
// off the NIC (the analytic engine; the discrete-event engine shares the NIC between the flows).
TEST(AnalyticPair, AllToAllWaitsForSendsOnItsNic) {
  const Json patch{{"/cluster/scale_up/domain_gpus", 4},
                   {"/cluster/scale_out/nic_bandwidth", "5GBps"},
                   {"/parallelism/experts/ep", 8},
                   {"/parallelism/pp", 2},
                   {"/parallelism/vpp", 2},
                   {"/parallelism/schedule", "interleaved"},
                   {"/parallelism/ep_overlap", true},
                   {"/parallelism/global_batch", 16}};
  const Scenario s = load(kNvl, "", patch);
  auto cm = models::make_compute_cost_model(s);
  const models::NetworkModel net(s.cluster);
  const models::Workload w = models::build_workload(s, *cm, net);
  const models::RankWork& rw = w.ranks[0];
  ASSERT_GT(rw.p2p_nic, 0);
  EXPECT_EQ(rw.p2p_nic, rw.p2p_seconds);
  const models::PassCost& B = w.blocks[static_cast<std::size_t>(rw.blocks.back())].pass[1];
  ASSERT_GT(B.combine_nic, 0);
  EXPECT_LE(B.combine_nic, B.combine);
  const double with = models::evaluate_analytic(s, w).chunk.fb_pair;
  models::Workload off = w;
  for (auto& r : off.ranks) r.p2p_nic = 0;
  const double without = models::evaluate_analytic(s, off).chunk.fb_pair;
  std::printf(
      "[measured] pair %.6f s with the sends on the NIC, %.6f s without; p2p %.6f s, first combine "
      "%.6f s (NIC leg %.6f s)\n",
      with, without, rw.p2p_seconds, B.combine, B.combine_nic);
  EXPECT_NEAR(with - without, std::max(0.0, 2 * rw.p2p_seconds + B.combine_nic - B.combine), 1e-12);
  EXPECT_GT(with, without);
  // All-to-alls inside one NVLink domain have no NIC leg: the sends do not touch them.
  const Scenario nvl = load(kNvl, "", Json{{"/parallelism/experts/ep", 4}, {"/parallelism/pp", 2}});
  const models::Workload wn =
      models::build_workload(nvl, *models::make_compute_cost_model(nvl), models::NetworkModel(nvl.cluster));
  for (const auto& b : wn.blocks) EXPECT_EQ(b.pass[0].dispatch_nic + b.pass[1].combine_nic, 0.0);
}

// The SMs DeepEP's kernels take from overlapping computation (workload.overlap_comm_sms): on the B200
// (148 SMs) 37 of them leave 111, so computation beside an all-to-all runs at 111/148 of its rate for as
// long as the all-to-all runs. Lone chunks (no all-to-all beside them) keep their times; the overlapped
// pairs and the step grow; the two engines, each applying it in its own way (analytic: per slot, beside
// the slot's all-to-all; DES: per instruction, while the all-to-alls started so far hold the stream),
// agree within 2%.
TEST(StepSimAgreement, OverlapCommSmsSlowOnlyOverlappedComputation) {
  const Json base{{"/parallelism/pp", 1}, {"/parallelism/experts/ep", 16}, {"/parallelism/ep_overlap", true}};
  Json taken = base;
  taken["/workload/overlap_comm_sms"] = 37;
  const Scenario s0 = load(kNvl, "", base), s = load(kNvl, "", taken);
  ASSERT_EQ(s.cluster.gpu.sm_count, 148);
  const models::Result a0 = models::evaluate_analytic(s0), a = models::evaluate_analytic(s);
  EXPECT_DOUBLE_EQ(a.chunk.f, a0.chunk.f);
  EXPECT_DOUBLE_EQ(a.chunk.b, a0.chunk.b);
  EXPECT_GT(a.chunk.fb_pair, a0.chunk.fb_pair);
  EXPECT_GT(a.step_time, a0.step_time);
  warm_up(s);
  const StepSimResult d = simulate_step(s, options_of(s)), d0 = simulate_step(s0, options_of(s0));
  EXPECT_GT(d.result.step_time, d0.result.step_time);
  report("overlap_comm_sms 37 DES vs analytic", d.result.step_time, a.step_time, "des", "analytic");
  EXPECT_LE(std::fabs(rel_err(d.result.step_time, a.step_time)), 0.02);
}

// The SMs an all-to-all's kernels take are taken only while it runs (models::overlap_stretch): in a
// combined-1F1B pair of one MoE block (PP1, EP16, 37 of the B200's 148 SMs), each slot's computation x
// beside an all-to-all of y seconds progresses at 111/148 of its rate while y lasts and at full rate after,
// so it takes min(x · r, x + y · (1 - 1/r)) with r = 148/111, and the slot the larger of that and y. By hand
// from the block's prices; the discrete-event engine, stretching each instruction while the all-to-alls it
// has started still hold the communication stream, agrees within 1 %.
TEST(StepSimAgreement, OverlapCommSmsTakenOnlyWhileTheAllToAllRuns) {
  const Json patch{{"/model/layers", 1},
                   {"/parallelism/pp", 1},
                   {"/parallelism/experts/ep", 16},
                   {"/parallelism/global_batch", 16},
                   {"/parallelism/ep_overlap", true},
                   {"/workload/overlap_comm_sms", 37}};
  const Scenario s = load(kNvl, "", patch);
  auto cm = models::make_compute_cost_model(s);
  const models::Workload w = models::build_workload(s, *cm, models::NetworkModel(s.cluster));
  ASSERT_EQ(w.blocks.size(), 1u);
  const double r = 148.0 / 111.0;
  ASSERT_DOUBLE_EQ(w.overlap_slowdown, r);
  const models::PassCost &F = w.blocks[0].pass[0], &B = w.blocks[0].pass[1], &W = w.blocks[0].pass[2];
  const auto slot = [r](double x, double y) { return std::max(std::min(x * r, x + y * (1 - 1 / r)), y); };
  const models::RankWork& rw = w.ranks[0];
  const double outside =
      (rw.pass[0].compute - F.compute) + (rw.pass[1].compute + rw.pass[2].compute - B.compute - W.compute);
  const double pair = slot(F.attn_compute, B.combine) + slot(B.mlp_compute + W.mlp_compute, F.dispatch) +
                      slot(F.mlp_compute, B.dispatch) + slot(B.attn_compute + W.attn_compute, F.combine) +
                      outside;
  const models::Result a = models::evaluate_analytic(s);
  EXPECT_NEAR(a.chunk.fb_pair, pair, 1e-12 * pair);
  // Whole-slot pricing would have charged every slot x · r: this pair is shorter than that.
  const double whole =
      slot(F.attn_compute * r, B.combine) + slot((B.mlp_compute + W.mlp_compute) * r, F.dispatch) +
      slot(F.mlp_compute * r, B.dispatch) + slot((B.attn_compute + W.attn_compute) * r, F.combine) + outside;
  EXPECT_LT(a.chunk.fb_pair, whole);
  const StepSimResult d = simulate_step(s, options_of(s));
  report("overlap_comm_sms 37, one block: DES vs analytic", d.result.step_time, a.step_time, "des",
         "analytic");
  EXPECT_LE(std::fabs(rel_err(d.result.step_time, a.step_time)), 0.01);
}

// ======================================================================= 2. dense 1F1B, hand formula

// A dense model (no MoE, EP1) on the NVLink-domain cluster: PP4, m 16.
Scenario dense_scenario() {
  const Json dense = {{"name", "des-test-dense"},
                      {"layers", 16},
                      {"hidden", 2048},
                      {"vocab", 1024},
                      {"dense_ffn", 8192},
                      {"activation", "swiglu"},
                      {"attention", {{"kind", "mha"}, {"heads", 16}, {"head_dim", 128}}}};
  return load(kNvl, "", {{"/model", dense}, {"/parallelism/experts/ep", 1}});
}

// A dense model (no MoE, EP1) on the same cluster; pipeline transfers are 16 MiB over 740 GB/s NVLink
// (about 25 us) against chunks of milliseconds. Rank order in 1F1B (PipeDream-Flush): the critical rank
// runs m forward and m backward chunks and waits (PP-1)(F+B+W) in the fill and drain, then the data-
// parallel gradient synchronisation and the optimizer (the tail, priced by formula in both engines).
TEST(StepSimDense, OneFOneBMatchesHandFormula) {
  const Scenario s = dense_scenario();
  const int m = s.layout.microbatches, pp = s.parallelism.pp;
  ASSERT_EQ(m, 16);
  ASSERT_EQ(pp, 4);
  const models::Result a = models::evaluate_analytic(s);
  const models::ChunkTimes& c = a.chunk;
  ASSERT_GT(c.f, 0);
  ASSERT_GT(c.b, 0);
  ASSERT_GT(c.w, 0);
  // The pipeline transfers stay on NVLink here: negligible against the chunks.
  EXPECT_LT(c.p2p, 0.01 * (c.f + c.b + c.w));
  const double tail = a.breakdown.exposed_dp + a.breakdown.optimizer;
  const double formula = (m + pp - 1) * (c.f + c.b + c.w) + tail;
  const StepSimResult d = simulate_step(s, options_of(s));
  EXPECT_EQ(d.stats.microbatches, std::vector<int>{m});
  EXPECT_EQ(d.stats.collectives, 0);
  report("dense 1F1B PP4 m16 DES vs (m+PP-1)(F+B+W)+tail", d.result.step_time, formula, "des", "formula");
  EXPECT_NEAR(d.result.step_time, formula, 0.005 * formula);
  // The critical GPU (on whichever rank finished last) computed m microbatches of its rank's F + B + W.
  auto cm = models::make_compute_cost_model(s);
  const models::Workload w = models::build_workload(s, *cm, models::NetworkModel(s.cluster));
  const models::RankWork& rw = w.ranks[static_cast<std::size_t>(d.result.critical_rank)];
  EXPECT_NEAR(d.result.breakdown.compute, m * (rw.pass[0].compute + rw.pass[1].compute + rw.pass[2].compute),
              1e-9 * formula);
}

// The same dense 1F1B pipeline, phase by phase, by hand: the critical rank r runs warm = PP-r-1 forward
// chunks alone, m - warm steady F + BW units and warm lone BW chunks; the bubble is what remains of the
// step after them and the tail (its receive waits).
TEST(StepSimDense, OneFOneBPhasesMatchHandFormula) {
  const Scenario s = dense_scenario();
  const int m = s.layout.microbatches, pp = s.parallelism.pp;
  ASSERT_EQ(m, 16);
  ASSERT_EQ(pp, 4);
  const StepSimResult d = simulate_step(s, options_of(s));
  auto cm = models::make_compute_cost_model(s);
  const models::Workload w = models::build_workload(s, *cm, models::NetworkModel(s.cluster));
  const int r = d.result.critical_rank;
  const models::RankWork& rw = w.ranks[static_cast<std::size_t>(r)];
  const double f = rw.pass[0].compute, bw = rw.pass[1].compute + rw.pass[2].compute;
  const int warm = pp - r - 1;
  const models::SchedulePhases& ph = d.result.phases;
  const double tol = 1e-9 * d.result.step_time;
  EXPECT_EQ(ph.lone_f, warm);
  EXPECT_EQ(ph.lone_b, warm);
  EXPECT_EQ(ph.pairs, m - warm);
  EXPECT_NEAR(ph.forward_only, warm * f, tol);
  EXPECT_NEAR(ph.steady, (m - warm) * (f + bw), tol);
  EXPECT_NEAR(ph.backward_only, warm * bw, tol);
  EXPECT_NEAR(ph.weight_only, 0.0, tol);
  const double tail = d.result.breakdown.exposed_dp + d.result.breakdown.optimizer;
  EXPECT_NEAR(ph.bubble, d.result.step_time - tail - m * (f + bw), tol);
  // The fill and drain leave about (PP-1)(F+B+W) idle on every rank.
  EXPECT_NEAR(ph.bubble, (pp - 1) * (f + bw), 0.05 * (pp - 1) * (f + bw));
  std::printf("[measured] dense 1F1B PP4 m16, rank %d: 1F %.6f s, steady %.6f s, 1B %.6f s, bubble %.6f s\n",
              r, ph.forward_only, ph.steady, ph.backward_only, ph.bubble);
}

// =================================================================================== 3. straggler

TEST(StepSimStraggler, HotExpertRankIsTheCriticalGpu) {
  // 16 experts on EP8 (contiguous: EP rank r holds experts 2r, 2r+1); expert 5 takes 30% of the routed
  // slots, the other 15 share 70% equally. Rows per EP rank are proportional to the shares it holds:
  //   hot rank 2: 0.3 + 0.7/15 = 0.34667; every other rank: 2 · 0.7/15 = 0.09333;
  //   load ratio q = 0.09333 / 0.34667 = 7/26 = 0.26923 (top-2 caps a share at 1/2: not reached).
  const Json hot = {{"generator", "hot_expert"}, {"hot_fraction", 0.3}, {"hot_expert", 5}, {"seed", 1}};
  const Scenario s = load(kNvl, "1f1b-pp2", {{"/routing/load", hot}, {"/engine/timeline_gpus", -1}});
  const int ep = s.parallelism.ep, experts = s.model.moe.experts;
  const int hot_rank = 5 / (experts / ep);
  ASSERT_EQ(hot_rank, 2);
  const double q = (2 * 0.7 / 15) / (0.3 + 0.7 / 15);
  EXPECT_NEAR(q, 7.0 / 26.0, 1e-12);

  // The workload the engine scales expert segments by.
  auto cm = models::make_compute_cost_model(s);
  const models::NetworkModel net(s.cluster);
  const models::Workload w = models::build_workload(s, *cm, net, nullptr, true);
  ASSERT_EQ(w.moe_detail.size(), 16u);
  for (const models::MoeLayerDetail& d : w.moe_detail) {
    ASSERT_EQ(d.rank_load.size(), static_cast<std::size_t>(ep));
    for (int a = 0; a < ep; ++a)
      EXPECT_NEAR(d.rank_load[a], a == hot_rank ? 1.0 : q, 1e-9) << "EP rank " << a;
  }

  const StepSimResult d = simulate_step(s, options_of(s));
  ASSERT_EQ(d.stats.microbatches, std::vector<int>{8});
  const int stage_gpus = s.parallelism.tp * s.parallelism.cp * s.layout.dp;  // 8: one EP group per stage
  auto ep_index = [&](int gpu) { return (gpu % stage_gpus) / s.parallelism.etp; };
  auto stage_of_gpu = [&](int gpu) { return gpu / stage_gpus; };

  // Segments by (gpu, stream, name, microbatch).
  std::map<std::tuple<int, int, std::string, int>, const TimelineEvent*> seg;
  std::map<int, double> finish;  // latest compute end per GPU
  for (const TimelineEvent& e : d.timeline) {
    seg[{e.gpu, e.stream, e.name, e.microbatch}] = &e;
    if (e.stream == 0) finish[e.gpu] = std::max(finish[e.gpu], e.end);
  }
  // Every stage has its hot GPU and at least one balanced GPU in the timeline (GPUs with identical loads
  // may be represented by one of them).
  for (int st = 0; st < s.parallelism.pp; ++st) {
    bool hot_seen = false, other_seen = false;
    for (const auto& [gpu, end] : finish)
      if (stage_of_gpu(gpu) == st) (ep_index(gpu) == hot_rank ? hot_seen : other_seen) = true;
    ASSERT_TRUE(hot_seen && other_seen) << "stage " << st;
  }

  int expert_pairs = 0, waits = 0;
  for (const auto& [key, e] : seg) {
    const auto& [gpu, stream, name, mb] = key;
    if (stream != 0 || name.size() < 8 || name.compare(name.size() - 7, 7, "experts") != 0) continue;
    const int hot_gpu = stage_of_gpu(gpu) * stage_gpus + hot_rank * s.parallelism.etp;
    const auto h = seg.find({hot_gpu, 0, name, mb});
    ASSERT_NE(h, seg.end()) << name << " mb " << mb;
    const double hot_dur = h->second->end - h->second->start;
    if (gpu != hot_gpu) {
      // The balanced GPU's expert GEMMs take q of the hot GPU's: the hot one is longer by 1/q = 3.71.
      EXPECT_NEAR((e->end - e->start) / hot_dur, q, 1e-9) << name << " mb " << mb << " GPU " << gpu;
      // Forward and input-gradient expert GEMMs start together after an all-to-all; the weight-gradient
      // ones follow the input-gradient ones on each GPU without waiting.
      if (name[0] != 'W') {
        EXPECT_NEAR(e->start, h->second->start, 1e-12);
      }
      ++expert_pairs;
    }
    // Forward expert GEMMs are followed by the combine, weight-gradient ones (after the input-gradient
    // ones, as TE's grouped GEMM backward computes both) by the dispatch of the gradients; it starts when
    // the hot GPU is done: every GPU of the group waits for it.
    const char pass = name[0];
    if (pass == 'F' || pass == 'W') {
      const std::string layer = name.substr(2, name.size() - 2 - 8);  // "L3"
      const std::string coll =
          (pass == 'F' ? "F " : "B ") + layer + (pass == 'F' ? " combine" : " dispatch grad");
      const auto c = seg.find({gpu, 1, coll, mb});
      ASSERT_NE(c, seg.end()) << coll << " mb " << mb << " GPU " << gpu;
      EXPECT_NEAR(c->second->start, h->second->end, 1e-12) << coll;
      if (gpu != hot_gpu) {
        // The balanced GPU waits for the rest of the hot GPU's expert work since the last all-to-all:
        // (1 - q) of it (the forward GEMMs; the input- and weight-gradient GEMMs).
        double since = hot_dur;
        if (pass == 'W') {
          const auto hb = seg.find({hot_gpu, 0, "B" + name.substr(1), mb});
          ASSERT_NE(hb, seg.end()) << name;
          since += hb->second->end - hb->second->start;
        }
        EXPECT_NEAR(c->second->start - e->end, (1 - q) * since, 1e-9) << coll;
      }
      ++waits;
    }
  }
  EXPECT_GT(expert_pairs, 0);
  EXPECT_GT(waits, 0);

  // No GPU of a stage finishes after its hot GPU (after the last all-to-all every GPU runs the same
  // attention work), and the step ends with a hot GPU.
  double latest = 0;
  int latest_gpu = -1;
  for (const auto& [gpu, end] : finish) {
    const int hot_gpu = stage_of_gpu(gpu) * stage_gpus + hot_rank * s.parallelism.etp;
    if (gpu != hot_gpu) {
      EXPECT_LE(end, finish.at(hot_gpu)) << "GPU " << gpu;
    }
    if (end > latest || (end == latest && ep_index(gpu) == hot_rank)) {
      latest = end;
      latest_gpu = gpu;
    }
  }
  EXPECT_EQ(ep_index(latest_gpu), hot_rank);
  EXPECT_NEAR(d.result.step_time, latest, 1e-9 * latest);
  // The breakdown is the hot GPU's: its compute is the sum of its compute segments (no TP or CP here).
  double busy = 0;
  for (const TimelineEvent& e : d.timeline)
    if (e.gpu == latest_gpu && e.stream == 0 && e.name.find("optimizer") == std::string::npos)
      busy += e.end - e.start;
  EXPECT_NEAR(d.result.breakdown.compute, busy, 1e-9 * busy);

  const double balanced = models::balanced_step_time(s);
  report("hot expert (30% of slots on EP rank 2) DES vs balanced analytic", d.result.step_time, balanced,
         "des", "balanced");
  EXPECT_GE(d.result.step_time, balanced);
  report("hot expert DES vs analytic", d.result.step_time, d.result.analytic_step_time, "des", "analytic");
}

// ====================================================================== 3b. DualPipe under routing skew

// Two MoE layers whose busiest GPUs differ, in DualPipe's overlapped F&B pairs. The NVLink scenario cut
// to PP2 (one MoE block per stage), EP4 (EP rank r holds experts 4r..4r+3, contiguous), hand-made
// routing counts: 4 sources x 500 slots; in layer 0 EP rank 0 takes 40% of the slots and ranks 1-3 20%
// each, in layer 1 EP rank 1 takes 40%. Rows per GPU relative to the busiest (rank_load):
//   layer 0: l0 = (1, 1/2, 1/2, 1/2),  layer 1: l1 = (1/2, 1, 1/2, 1/2).
// Both layers have the same busiest-GPU prices: forward routed experts E_F, backward-input E_B and
// weight-gradient E_W (E_B, E_W about E_F), the rest of each pass the same on every GPU.
//
// Rank 0 runs stage 0 (layer 0) for direction 0 and stage 1 (layer 1) for direction 1. Its overlapped
// pairs are F(layer 0) with B+W(layer 1), and F(layer 1) with B+W(layer 0). Figure 4's four slots with
// every all-to-all shorter than the computation beside it (asserted below) leave the communication
// hidden; what remains is the computation, where the all-to-alls synchronise the EP group: the B
// chunk's dispatch waits for every GPU's B experts and the F chunk's combine for every GPU's F experts,
// but nothing stops a GPU from starting its F experts while another GPU still runs its B experts.
// So a GPU g runs (E_B + E_W)·l1[g] + E_F·l0[g] of expert work back to back, and the pair takes
//   max over g: g0 (E_B+E_W)/2 + E_F,  g1 E_B+E_W + E_F/2,  g2, g3 (E_B+E_W+E_F)/2  ->  g1,
// i.e. E_B + E_W + E_F/2 plus the same-on-every-GPU rest. Sum of each layer's busiest GPU (what the
// analytic engine took before): E_B + E_W + E_F. The other pair is the mirror image (g0 and g1 swap).
// Expected pair, both directions averaged (DualPipe's fb_pair):
//   fb_pair = (F + B + W compute of both stages) / 2 - E_F / 2.
// A weight-gradient chunk run alone holds one MoE block here, so it keeps its busiest-GPU price.
//
// The discrete-event engine (per-GPU expert segments scaled by rank_load, all-to-alls as barriers over
// the group) gives the pair as its steady-state increment: DualPipe at PP2 runs m - 2 pairs per rank,
// so the step grows by 2 pairs from m 8 to m 10 (both >= 3·PP, periodic; both simulated in full).
// Measured: hand (= analytic) 1.366 ms, sum of maxima 1.482 ms (+8.5%), DES increment 1.332 ms
// (-2.5% from hand, -10.2% from the sum of maxima); with uniform routing the DES increment is +2.0%
// above the analytic pair (the engines place a few small segments differently: the DES runs the
// un-permute after the combine and the whole weight-gradient block after the backward's attention,
// Figure 4 puts MLP(W) beside MLP(B)), and under skew the DES's GPUs also carry work across consecutive
// pairs, whose directions (and so busiest GPUs) alternate. Tolerance 4%: above both offsets, below the
// 8.5% skew effect, so the sum of maxima fails it. The whole m 10 step: DES -2.4% from analytic, which
// waits two whole sends in each iteration's commit where the DES's less loaded GPUs reach theirs early
// (with receive-only waits and eager sends in both engines it was -1.9%); tolerance 3%. With uniform
// routing the DES's increment is 0.1% below the analytic pair plus one send (fb_pair + p2p).
namespace {
traces::RoutingSample skew_sample(int layer, int hot_rank) {
  traces::RoutingSample x;
  x.layer = layer;
  x.sources = 4;
  x.experts = 16;
  x.top_k = 2;
  x.tokens = 1000;  // 2000 slots, 500 per source
  x.counts.assign(4 * 16, 0);
  for (int src = 0; src < 4; ++src)
    for (int e = 0; e < 16; ++e) x.counts[src * 16 + e] = e / 4 == hot_rank ? 50 : 25;  // 200 vs 100
  return x;
}

Scenario dualpipe_pp2(int global_batch) {
  return load(kNvl, "dualpipe-pp4",
              {{"/model/layers", 2},
               {"/parallelism/pp", 2},
               {"/parallelism/experts/ep", 4},
               {"/parallelism/global_batch", global_batch}});
}
}  // namespace

TEST(StepSimDualPipeSkew, PairTakesTheBusiestGpuOfTheSum) {
  models::RoutingInput skew;
  skew.samples = {skew_sample(0, 0), skew_sample(1, 1)};
  const Scenario s8 = dualpipe_pp2(64), s10 = dualpipe_pp2(80);
  ASSERT_EQ(s8.layout.microbatches, 8);
  ASSERT_EQ(s10.layout.microbatches, 10);

  auto cm = models::make_compute_cost_model(s8);
  const models::NetworkModel net(s8.cluster);
  const models::Workload w = models::build_workload(s8, *cm, net, &skew);
  ASSERT_EQ(w.ranks.size(), 2u);
  ASSERT_EQ(w.moe_detail.size(), 2u);
  const std::vector<double> l0 = {1, 0.5, 0.5, 0.5}, l1 = {0.5, 1, 0.5, 0.5};
  for (int g = 0; g < 4; ++g) {
    EXPECT_NEAR(w.moe_detail[0].rank_load[g], l0[g], 1e-12) << "layer 0 GPU " << g;
    EXPECT_NEAR(w.moe_detail[1].rank_load[g], l1[g], 1e-12) << "layer 1 GPU " << g;
  }
  const models::BlockCost& b0 = w.blocks[w.ranks[0].blocks.at(0)];
  const models::BlockCost& b1 = w.blocks[w.ranks[1].blocks.at(0)];
  ASSERT_EQ(w.ranks[0].blocks.size(), 1u);
  ASSERT_EQ(w.ranks[1].blocks.size(), 1u);
  const double EF = b0.pass[0].experts, EB = b0.pass[1].experts, EW = b0.pass[2].experts;
  ASSERT_GT(EF, 0);
  EXPECT_NEAR(b1.pass[0].experts, EF, 1e-12 * EF);  // same busiest-GPU prices in both layers
  EXPECT_GE(EB + EW, EF);                           // GPU 1 (resp. 0) is the busiest of the sum
  // Every all-to-all is shorter than the computation Figure 4 sets beside it (so none is exposed), and
  // than the same-on-every-GPU part of it (so no GPU waits for one inside the pair).
  for (const models::BlockCost* fb : {&b0, &b1})
    for (const models::BlockCost* bb : {&b0, &b1}) {
      if (fb == bb) continue;
      const models::PassCost &F = fb->pass[0], &B = bb->pass[1], &W = bb->pass[2];
      EXPECT_LT(B.combine, F.attn_compute);
      EXPECT_LT(F.dispatch, B.mlp_compute + W.mlp_compute - (EB + EW) / 2);
      EXPECT_LT(B.dispatch, F.mlp_compute - EF / 2);
      EXPECT_LT(F.combine, B.attn_compute + W.attn_compute);
      EXPECT_EQ(F.tp_comm + B.tp_comm + F.cp_exposed + B.cp_exposed + F.etp_comm + B.etp_comm, 0.0);
    }
  double all = 0;
  for (const models::RankWork& rw : w.ranks)
    all += rw.pass[0].compute + rw.pass[1].compute + rw.pass[2].compute;
  const double hand = all / 2 - EF / 2, sum_of_maxima = all / 2;

  const models::Result a8 = models::evaluate_analytic(s8, skew);
  const models::Result a10 = models::evaluate_analytic(s10, skew);
  std::printf(
      "[measured] skewed DualPipe pair: hand %.9f s, sum of per-layer maxima %.9f s, analytic %.9f s\n", hand,
      sum_of_maxima, a8.chunk.fb_pair);
  EXPECT_NEAR(a8.chunk.fb_pair, hand, 1e-9 * hand);
  // Two more microbatches are one more step-4 iteration: two pairs, and one commit. With PP2 a rank's
  // second pair of an iteration takes both its inputs from the first pair of its mirror rank, which ends at
  // the same moment, and the commit before it also sends both outputs of the first: two transfers each
  // way share the link, so the second pair starts two sends (2·p2p) later (models::dualpipe_timeline).
  const double p2p = w.ranks[0].p2p_seconds;
  ASSERT_GT(p2p, 0);
  EXPECT_NEAR(w.ranks[1].p2p_seconds, p2p, 1e-15);
  EXPECT_NEAR(a10.step_time - a8.step_time, 2 * hand + 2 * p2p, 1e-9 * hand);
  EXPECT_GT(EF / 2 / hand, 0.08);  // the skew effect the tolerance below must resolve

  StepOptions all10 = options_of(s10);
  all10.microbatches = 10;  // every microbatch (auto would extrapolate above 4·PP)
  const StepSimResult d8 = simulate_step(s8, options_of(s8), &skew);
  const StepSimResult d10 = simulate_step(s10, all10, &skew);
  ASSERT_EQ(d8.stats.microbatches, std::vector<int>{8});
  ASSERT_EQ(d10.stats.microbatches, std::vector<int>{10});
  const double des_pair = (d10.result.step_time - d8.result.step_time) / 2;
  report("skewed DualPipe pair, DES steady-state increment vs hand", des_pair, hand, "des", "hand");
  EXPECT_NEAR(des_pair, hand, 0.04 * hand);
  EXPECT_GT(std::fabs(des_pair / sum_of_maxima - 1), 0.04);  // the old analytic pair is outside
  report("skewed DualPipe PP2 m10 step, DES vs analytic", d10.result.step_time, a10.step_time, "des",
         "analytic");
  EXPECT_NEAR(d10.result.step_time, a10.step_time, 0.03 * a10.step_time);

  // The same case with uniform routing: the pair is the plain sum (every GPU the busiest).
  const models::Result u8 = models::evaluate_analytic(s8), u10 = models::evaluate_analytic(s10);
  const StepSimResult e8 = simulate_step(s8, options_of(s8)), e10 = simulate_step(s10, all10);
  const double uniform_des_pair = (e10.result.step_time - e8.result.step_time) / 2;
  report("uniform DualPipe pair, DES increment vs analytic", uniform_des_pair, u8.chunk.fb_pair, "des",
         "analytic");
  EXPECT_NEAR(uniform_des_pair, u8.chunk.fb_pair, 0.04 * u8.chunk.fb_pair);
  EXPECT_NEAR(u10.step_time - u8.step_time, 2 * u8.chunk.fb_pair + 2 * p2p, 1e-9 * u8.chunk.fb_pair);
}

// ================================================================================ 4. determinism

TEST(StepSimDeterminism, FreshProcessesGiveIdenticalBytes) {
  // Contention, a straggler, two EP groups per stage all simulated, every GPU traced: the step time
  // (exact bits, %a) and the serialised Chrome trace of two fresh processes must be identical.
  auto run = [] {
    const Scenario s = load(kFatTree, "pp1-all-groups", {{"/engine/timeline_gpus", -1}});
    const StepSimResult d = simulate_step(s, options_of(s));
    char bits[64];
    std::snprintf(bits, sizeof bits, "%a\n", d.result.step_time);
    std::ostringstream trace;
    reports::write_chrome_trace(d, trace);
    return std::string(bits) + trace.str();
  };
  const test_support::ChildOutput a = test_support::run_in_child(run);
  const test_support::ChildOutput b = test_support::run_in_child(run);
  ASSERT_TRUE(a.ok()) << a.failure;
  ASSERT_TRUE(b.ok()) << b.failure;
  const std::string& first = a.bytes;
  const std::string& second = b.bytes;
  EXPECT_GT(first.size(), 10000u);
  EXPECT_TRUE(first == second) << "the two processes differ (sizes " << first.size() << ", " << second.size()
                               << ")";
}

// ============================================================================ 5. fidelity controls

// (a) Microbatch extrapolation: m = 16 = 8·PP; the reduced runs simulate mA = 2·PP = 4 (or the
// engine's automatic choice, 3·PP = 6) and mA + one schedule period, and extrapolate linearly; the full
// run simulates all 16. Contended fabric with a straggler, so the period is set by the network as well
// as by compute. Measured (docs/des.md): 1F1B exact (1e-12) at 2·PP and 3·PP; ZB-H1 exact at 2·PP and
// 3·PP; DualPipe −0.91% at 2·PP and +0.74% at 3·PP (the flat all-to-all sends one copy per slot, and the
// fabric's contention between overlapped pairs settles later than two schedule periods). Bounds: 0.5%
// for 1F1B and ZB-H1; 1.5% for DualPipe (1.6 times its larger measured error).
TEST(StepSimFidelity, MicrobatchExtrapolation) {
  warm_up(load(kFatTree, "all-microbatches"));
  for (const std::string prefix : {"", "zero-bubble-", "dualpipe-"}) {
    const Scenario sf = load(kFatTree, prefix + "all-microbatches");
    ASSERT_EQ(sf.layout.microbatches, 16);
    const StepSimResult f = simulate_step(sf, options_of(sf));
    EXPECT_EQ(f.stats.microbatches, std::vector<int>{16});
    for (const std::string reduced : {"2pp", "auto"}) {
      const Scenario sr = reduced == "auto"
                              ? load(kFatTree, prefix.empty() ? "" : prefix.substr(0, prefix.size() - 1))
                              : load(kFatTree, prefix + reduced);
      const StepSimResult r = simulate_step(sr, options_of(sr));
      ASSERT_EQ(r.stats.microbatches.size(), 2u);
      EXPECT_EQ(r.stats.microbatches[0], reduced == "auto" ? 6 : 4);
      report("des-fattree-hot-32xH100 " +
                 (prefix.empty() ? std::string("1f1b") : prefix.substr(0, prefix.size() - 1)) +
                 " microbatches " + std::to_string(r.stats.microbatches[0]) + "+" +
                 std::to_string(r.stats.microbatches[1]) + " extrapolated vs all 16",
             r.result.step_time, f.result.step_time, "reduced", "full");
      const double bound = prefix == "dualpipe-" ? 0.015 : 0.005;
      EXPECT_LE(std::fabs(rel_err(r.result.step_time, f.result.step_time)), bound);
    }
  }
}

// (b) Aggregation per (node pair, plane) on the fabric it is meant for: a 4-plane rail-optimised fabric
// with one NIC per node and plane, so no NICs are pooled. Both platform parts are built in one engine
// (32 GPUs fit). Measured (docs/des.md): -0.072% with both groups and with the representative one.
// Bound: 0.5%. (The widest GPU set runs first: the platform holds only the first simulation's GPUs.)
TEST(StepSimFidelity, NodePairAggregationOnRailFabric) {
  warm_up(load(kRail));  // both groups, per GPU pair
  for (const auto& [none, agg] : {std::pair<std::string, std::string>{"", "node-pair"},
                                  {"representative", "representative-node-pair"}}) {
    const Scenario sn = load(kRail, none), sa = load(kRail, agg);
    const StepSimResult n = simulate_step(sn, options_of(sn));
    const StepSimResult a = simulate_step(sa, options_of(sa));
    EXPECT_FALSE(n.settings.aggregated);
    EXPECT_TRUE(a.settings.aggregated);
    EXPECT_EQ(n.stats.ep_groups, a.stats.ep_groups);
    report(sn.name + (none.empty() ? " (both groups)" : " (representative group)") + " node_pair vs none",
           a.result.step_time, n.result.step_time, "node_pair", "none");
    EXPECT_LE(std::fabs(rel_err(a.result.step_time, n.result.step_time)), 0.005);
  }
  // Groups do not meet on this fabric: representative and all agree. Measured: equal (1e-15).
  const Scenario sa = load(kRail), sr = load(kRail, "representative");
  const double all = simulate_step(sa, options_of(sa)).result.step_time;
  const double rep = simulate_step(sr, options_of(sr)).result.step_time;
  report("des-rail-hot-32xH100 representative vs all groups", rep, all, "representative", "all");
  EXPECT_LE(std::fabs(rel_err(rep, all)), 0.005);
}

// (b') The same control where it is known to fail: one fabric plane, so aggregation pools a node's four
// NICs into one link and the hot GPU's NIC (2.3x the mean dispatch bytes) is no longer the bottleneck
// (sim/netsim.hpp, SimOptions::aggregate_node_pairs). Measured (docs/des.md): -23.3% with the
// representative group, -15.2% with both groups. The engine aggregates automatically only above
// SimOptions::max_hosts simulated GPUs; this test pins the sign and the size of the error so that the
// documentation stays true. Bound: between -35% and -10%.
TEST(StepSimFidelity, NodePairAggregationOnOnePlaneFatTreeUnderestimates) {
  warm_up(load(kFatTree, "pp1-all-groups"));  // the widest GPU set first
  for (const auto& [none, agg] :
       {std::pair<std::string, std::string>{"pp1-all-groups", "pp1-node-pair-all-groups"},
        {"pp1", "pp1-node-pair"}}) {
    const Scenario sn = load(kFatTree, none, {{"/engine/aggregation", "none"}}), sa = load(kFatTree, agg);
    const StepSimResult n = simulate_step(sn, options_of(sn));
    const StepSimResult a = simulate_step(sa, options_of(sa));
    EXPECT_FALSE(n.settings.aggregated);
    EXPECT_TRUE(a.settings.aggregated);
    report("des-fattree-hot-32xH100/" + none + " node_pair vs none", a.result.step_time, n.result.step_time,
           "node_pair", "none");
    const double err = rel_err(a.result.step_time, n.result.step_time);
    EXPECT_LT(err, -0.10);
    EXPECT_GT(err, -0.35);
  }
}

// (c) Representative EP group vs every group, where groups share the fabric: two EP16 groups per stage
// whose nodes meet under leaf 1 (nodes 3, 4, 5) and share its 2:1 up-links. The representative run
// misses the other group's traffic. Measured (docs/des.md): -7.45%. Bound: between -12% and 0 (the
// representative group sees less contention, never more).
TEST(StepSimFidelity, RepresentativeGroupOnSharedFabric) {
  const Scenario sr = load(kFatTree, "pp1"), sa = load(kFatTree, "pp1-all-groups");
  warm_up(sa);  // first: the platform holds only the first simulation's GPUs
  const StepSimResult a = simulate_step(sa, options_of(sa));
  const StepSimResult r = simulate_step(sr, options_of(sr));
  EXPECT_EQ(r.stats.ep_groups, 1);
  EXPECT_EQ(a.stats.ep_groups, 2);
  report("des-fattree-hot-32xH100/pp1 representative vs all groups", r.result.step_time, a.result.step_time,
         "representative", "all");
  const double err = rel_err(r.result.step_time, a.result.step_time);
  EXPECT_LE(err, 1e-9);
  EXPECT_GT(err, -0.12);
}

// (c') The shipped Mixtral example: four EP8 groups per stage, each inside one 8-GPU node (EP ranks are
// consecutive GPUs), so the groups share no link and the representative group is exact. Measured
// (docs/des.md): equal to 1e-13 (the rounding of a reused engine). Both runs simulate all 32
// microbatches so that the comparison isolates the control.
TEST(StepSimFidelity, RepresentativeGroupMixtralExample) {
  Scenario s = load_scenario(kMixtral, catalog());
  ASSERT_EQ(s.parallelism.tp * s.layout.dp / (s.parallelism.ep * s.parallelism.etp), 4);
  StepOptions o;
  o.microbatches = s.layout.microbatches;
  o.timeline_gpus = 0;
  o.groups = DesGroups::kAll;
  (void)simulate_step(s, o);  // warm-up, and the platform holds only the first simulation's GPUs
  const StepSimResult a = simulate_step(s, o);
  o.groups = DesGroups::kRepresentative;
  const StepSimResult r = simulate_step(s, o);
  EXPECT_EQ(r.stats.ep_groups, 2);
  EXPECT_EQ(a.stats.ep_groups, 8);
  report("mixtral-8x7b-64xH100 representative vs all groups", r.result.step_time, a.result.step_time,
         "representative", "all");
  EXPECT_LE(std::fabs(rel_err(r.result.step_time, a.result.step_time)), 1e-9);
  // The automatic microbatch reduction on the same example (6 and 7 of 32 simulated): exact in the
  // periodic steady state. Measured 1e-13.
  o.microbatches = 0;
  const StepSimResult x = simulate_step(s, o);
  EXPECT_EQ(x.stats.microbatches, (std::vector<int>{6, 7}));
  report("mixtral-8x7b-64xH100 microbatches 6+7 extrapolated vs all 32", x.result.step_time,
         r.result.step_time, "reduced", "full");
  EXPECT_LE(std::fabs(rel_err(x.result.step_time, r.result.step_time)), 1e-9);
}

// A fresh engine and a reused one simulate the same step: the first all-to-all of a fresh engine once took
// 88.0 us instead of 77.392 us on the Mixtral example, because destination sinks were created on demand and
// early messages waited for a rendez-vous; sinks now exist before the first message.
TEST(StepSimDeterminism, FreshEngineMatchesReusedEngine) {
  const Scenario s = load_scenario(kMixtral, catalog());
  StepOptions o;
  o.microbatches = s.layout.microbatches;
  const StepSimResult first = simulate_step(s, o);
  const StepSimResult second = simulate_step(s, o);
  EXPECT_NEAR(first.result.step_time, second.result.step_time, 1e-12 * second.result.step_time);
}

// ================================================================================ 6. Chrome trace

struct TraceCheck {
  double latest_end_us = 0;
  int x_events = 0;
};

// Parses the trace and checks every "X" event; returns the latest end.
TraceCheck check_trace(const StepSimResult& d, int gpus) {
  std::ostringstream os;
  reports::write_chrome_trace(d, os);
  const nlohmann::json doc = nlohmann::json::parse(os.str());
  TraceCheck out;
  std::map<int, std::vector<std::pair<double, double>>> compute;  // pid → (ts, end) of tid 0
  for (const auto& e : doc.at("traceEvents")) {
    if (e.at("ph") != "X") continue;
    ++out.x_events;
    const double ts = e.at("ts").get<double>(), dur = e.at("dur").get<double>();
    const int pid = e.at("pid").get<int>(), tid = e.at("tid").get<int>();
    EXPECT_GE(ts, 0.0) << e.dump();
    EXPECT_GE(dur, 0.0) << e.dump();
    EXPECT_TRUE(pid >= 0 && pid < gpus) << e.dump();
    EXPECT_TRUE(tid >= 0 && tid <= 2) << e.dump();
    if (tid == 0) compute[pid].emplace_back(ts, ts + dur);
    out.latest_end_us = std::max(out.latest_end_us, ts + dur);
  }
  for (auto& [pid, v] : compute) {
    std::sort(v.begin(), v.end());
    for (std::size_t i = 1; i < v.size(); ++i)
      EXPECT_GE(v[i].first, v[i - 1].second - 1e-6)
          << "GPU " << pid << ": compute segments overlap at " << v[i].first << " us";
  }
  EXPECT_EQ(doc.at("otherData").at("engine"), "des");
  return out;
}

TEST(StepSimTrace, WellFormedSequentialAndEndsWithTheRun) {
  const Scenario s = load(kNvl, "", {{"/engine/timeline_gpus", -1}});
  const int m = s.layout.microbatches;  // 16 = 4·PP: simulated entirely
  const StepSimResult full = simulate_step(s, options_of(s));
  ASSERT_EQ(full.stats.microbatches, std::vector<int>{m});
  const TraceCheck a = check_trace(full, s.cluster.gpus());
  EXPECT_GT(a.x_events, 100);
  // One run: its makespan is the step; the last segment (a GPU's optimizer) ends at it.
  EXPECT_NEAR(a.latest_end_us, full.result.step_time * 1e6, 1e-9 * full.result.step_time * 1e6);

  // Reduced: mA = 4 and mB = mA + 1 microbatches simulated, the timeline is the second run's. Its makespan
  // B follows from the result: S = A + B (simulated seconds) and step = A + k (B - A) with
  // k = (m - mA) / (mB - mA), so B = (step - (1 - k) S) / (2k - 1).
  StepOptions o = options_of(s);
  o.microbatches = 4;
  const StepSimResult red = simulate_step(s, o);
  ASSERT_EQ(red.stats.microbatches.size(), 2u);
  const double ma = red.stats.microbatches[0], mb = red.stats.microbatches[1];
  ASSERT_EQ(ma, 4);
  const TraceCheck b = check_trace(red, s.cluster.gpus());
  const double k = (m - ma) / (mb - ma), S = red.stats.simulated_seconds;
  const double last_run = (red.result.step_time - (1 - k) * S) / (2 * k - 1);
  EXPECT_LT(last_run, red.result.step_time);
  EXPECT_LE(b.latest_end_us, S * 1e6);
  EXPECT_NEAR(b.latest_end_us, last_run * 1e6, 1e-6 * last_run * 1e6);
}

// ====================================================== 8. what expert communication hides under

// The NVLink-domain scenario with one shared expert as large as a routed one (FFN 2048), overlap on
// or off (workload.shared_expert_overlap). In 1F1B with negligible pipeline transfers the step is
// (m + PP - 1)(F + B + W) + tail (section 2). With the overlap, the shared up-projection (activation
// included) runs under the dispatch and the down-projection under the combine, forward and backward;
// each all-to-all is hidden by min(all-to-all, shared segment). Off, nothing runs under them, so every
// chunk grows by the hidden time H = sum over the rank's blocks and passes F, B of min(dispatch,
// shared up) + min(combine, shared down), and the step by (m + PP - 1) · H. H is read from the priced
// workload (the analytic engine's all-to-all prices; without contention the DES's flows take the same
// time). Measured: DES -0.175% (on) and -0.162% (off) against the analytic engine; off - on equal to
// (m + PP - 1) · H to +0.0000%. Bounds: 2% (section 1) and 1%.
TEST(StepSimSharedExperts, OverlapSwitchIsHonoured) {
  const Json shared = {{"/model/moe/shared_experts", 1}, {"/model/moe/shared_ffn", 2048}};
  Json off_patch = shared;
  off_patch["/workload/shared_expert_overlap"] = false;
  const Scenario on = load(kNvl, "", shared), off = load(kNvl, "", off_patch);
  ASSERT_TRUE(on.workload.shared_expert_overlap);
  ASSERT_FALSE(off.workload.shared_expert_overlap);
  const int m = on.layout.microbatches, pp = on.parallelism.pp;
  ASSERT_EQ(on.parallelism.schedule, Schedule::k1F1B);

  // H per chunk from the workload, on the rank whose blocks hide the most.
  auto cm = models::make_compute_cost_model(on);
  const models::Workload w = models::build_workload(on, *cm, models::NetworkModel(on.cluster));
  double hidden = 0;
  for (const models::RankWork& rw : w.ranks) {
    double h = 0;
    for (int b : rw.blocks)
      for (int p = 0; p < 2; ++p) {
        double up = 0, down = 0;
        for (const models::Op& op : models::block_ops(w, b)) {
          if (static_cast<int>(op.pass) != p) continue;
          if (op.role == models::OpRole::kSharedUp) up += op.seconds;
          if (op.role == models::OpRole::kSharedDown) down += op.seconds;
        }
        const models::PassCost& pc = w.blocks[static_cast<std::size_t>(b)].pass[p];
        ASSERT_GT(up, 0);
        ASSERT_GT(pc.dispatch, 0);
        h += std::min(pc.dispatch, up) + std::min(pc.combine, down);
      }
    hidden = std::max(hidden, h);
  }
  const double expected = (m + pp - 1) * hidden;

  warm_up(on);
  const StepSimResult d_on = simulate_step(on, options_of(on));
  const StepSimResult d_off = simulate_step(off, options_of(off));
  const double a_on = models::evaluate_analytic(on).step_time,
               a_off = models::evaluate_analytic(off).step_time;
  report("shared experts overlapped: DES vs analytic", d_on.result.step_time, a_on, "des", "analytic");
  report("shared experts not overlapped: DES vs analytic", d_off.result.step_time, a_off, "des", "analytic");
  report("overlap off - on: DES vs (m + PP - 1) H", d_off.result.step_time - d_on.result.step_time, expected,
         "des", "formula");
  // The same tolerance as the agreement tests of section 1.
  EXPECT_LE(std::fabs(rel_err(d_on.result.step_time, a_on)), 0.02);
  EXPECT_LE(std::fabs(rel_err(d_off.result.step_time, a_off)), 0.02);
  // Turning the overlap off costs what it hid.
  EXPECT_GT(d_off.result.step_time, d_on.result.step_time);
  EXPECT_NEAR(d_off.result.step_time - d_on.result.step_time, expected, 0.01 * expected);
  EXPECT_GT(d_off.result.breakdown.exposed_ep, d_on.result.breakdown.exposed_ep);
}

// Expert tensor parallelism (EP2 × ETP2 per stage) with a shared expert large enough to hide both
// all-to-alls: the expert-TP all-gather and reduce-scatter around the expert GEMMs block the compute
// stream, so nothing hides them. Per MoE block and pass (F, B), over the 2 GPUs of the expert-TP group in
// one NVLink domain (740 GB/s, 3 us per hop): rows of an EP rank 2 ranks · 4096 tokens · top-2 / 16
// experts · 8 experts = 8192, buffer 8192 · 2048 · 2 bytes, each collective (1/2) · buffer / bw + 3 us
// (tests/expert_overlap_test.cpp has the derivation): 51.344 us for both. The critical GPU runs m
// microbatches of its 4 MoE blocks in F and B: its exposed expert communication is at least
// m · 8 · 51.344 us, reported as expert (not tensor-parallel) communication, and the step agrees with
// the analytic engine's, which exposes them too. Measured: DES -0.091% against the analytic engine.
TEST(StepSimExpertTensorParallel, CollectivesAreExposed) {
  const Scenario s = load(kNvl, "",
                          {{"/parallelism/experts/ep", 2},
                           {"/parallelism/experts/etp", 2},
                           {"/model/moe/shared_experts", 1},
                           {"/model/moe/shared_ffn", 16384}});
  ASSERT_EQ(s.parallelism.tp, 1);
  const int m = s.layout.microbatches;
  const double etp = 2 * (0.5 * 8192.0 * 2048 * 2 / 740e9 + 3e-6);
  const StepSimResult d = simulate_step(s, options_of(s));
  const double analytic = models::evaluate_analytic(s).step_time;
  report("EP2 x ETP2, large shared expert: DES vs analytic", d.result.step_time, analytic, "des", "analytic");
  EXPECT_LE(std::fabs(rel_err(d.result.step_time, analytic)), 0.02);
  EXPECT_EQ(d.result.breakdown.exposed_tp, 0.0);
  EXPECT_GE(d.result.breakdown.exposed_ep, m * 8 * etp * (1 - 1e-9));
}

// ============================================================================== 7. bad options

TEST(StepSimOptions, OutsideTheirSetsThrowConfigError) {
  const Scenario s = load(kNvl);
  auto message = [&](StepOptions o) {
    try {
      simulate_step(s, o);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no ConfigError");
  };
  StepOptions o;
  o.microbatches = -1;
  EXPECT_NE(message(o).find("microbatches"), std::string::npos) << message(o);
  o = StepOptions{};
  o.precision_fraction = 0;
  EXPECT_NE(message(o).find("precision"), std::string::npos) << message(o);
  // The scenario's engine section is checked when it is read.
  try {
    load(kNvl, "", {{"/engine/groups", "x"}});
    ADD_FAILURE() << "engine.groups \"x\" accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/engine/groups"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace moesim::sim

namespace moesim::sim {
namespace {

// The platform holds only the first simulation's GPUs: a later simulation that needs others (every EP
// group after one representative group) is refused with a ConfigError instead of failing inside SimGrid.
TEST(StepSimOptions, LaterSimulationOutsideThePlatformIsRefused) {
  const Scenario s = load_scenario(kMixtral, catalog());
  StepOptions o;
  o.groups = DesGroups::kRepresentative;
  (void)simulate_step(s, o);
  o.groups = DesGroups::kAll;
  try {
    (void)simulate_step(s, o);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("not on this process's platform"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace moesim::sim

namespace moesim::sim {
namespace {

// aggregation "auto" pools each NVLink domain's traffic only where that changes nothing: on the Mixtral
// example every EP8 group fills one node and uniform routing gives every GPU the same NVLink bytes, so the
// pooled run (fewer flows) gives the per-GPU-pair step; with zipf routing the loads differ and auto keeps
// one flow per GPU pair.
TEST(StepSimFidelity, AutoPoolsNvlinkOnlyWhenExact) {
  Scenario s = load_scenario(kMixtral, catalog());
  StepOptions pair;
  pair.aggregation = Aggregation::kNone;
  const StepSimResult pooled = simulate_step(s, StepOptions{});
  const StepSimResult per_pair = simulate_step(s, pair);
  std::printf("[measured] mixtral auto (pooled) %.12f s, %lld flows; none %.12f s, %lld flows\n",
              pooled.result.step_time, pooled.stats.flows, per_pair.result.step_time, per_pair.stats.flows);
  EXPECT_NE(pooled.result.fidelity.find("NVLink traffic pooled"), std::string::npos)
      << pooled.result.fidelity;
  EXPECT_LT(pooled.stats.flows, per_pair.stats.flows);
  EXPECT_NEAR(pooled.result.step_time, per_pair.result.step_time, 1e-9 * per_pair.result.step_time);

  s.routing.load.generator = "zipf";
  s.routing.load.alpha = 1.0;
  const StepSimResult skewed = simulate_step(s, StepOptions{});
  EXPECT_EQ(skewed.result.fidelity.find("NVLink traffic pooled"), std::string::npos)
      << skewed.result.fidelity;
  // The fidelity says why, and how to pool anyway.
  EXPECT_NE(
      skewed.result.fidelity.find("NVLink not pooled per domain, which would not be exact: the all-to-all "
                                  "loads the GPUs of an NVLink domain unequally; engine.aggregation "
                                  "\"node\" pools it approximately"),
      std::string::npos)
      << skewed.result.fidelity;
}

// Why "auto" keeps one flow per GPU pair, from the layout alone: on the Mixtral example (TP2 EP8 PP2 on 8
// nodes of 8, a 32-GPU stage holds four EP8 groups) with NVLink domains of 16 GPUs, GPUs 0-15 hold EP
// groups 0 and 1 of stage 0. Simulating one representative group per stage, each domain holds one group;
// simulating all, two groups share domain 0, and pooling would merge their all-to-alls.
TEST(StepSimFidelity, AutoNamesWhyNvlinkIsNotPooled) {
  const Scenario s = load(kMixtral, "", Json{{"/cluster/scale_up/domain_gpus", 16}});
  ASSERT_EQ(s.layout.domain_gpus, 16);
  ASSERT_EQ(s.layout.ep_groups, 4);
  auto cm = models::make_compute_cost_model(s);
  const models::NetworkModel net(s.cluster);
  const models::Workload w = models::build_workload(s, *cm, net, nullptr, true);
  StepOptions o;
  o.groups = DesGroups::kRepresentative;
  const FlowAggregation one = choose_aggregation(s, w, o, 16, 1024);
  EXPECT_TRUE(one.pool);
  EXPECT_EQ(one.not_pooled, "");
  o.groups = DesGroups::kAll;
  const FlowAggregation all = choose_aggregation(s, w, o, 64, 1024);
  EXPECT_FALSE(all.pool);
  EXPECT_EQ(all.not_pooled, "an NVLink domain holds GPUs of more than one EP group or pipeline stage");
  // Asked for explicitly, nothing is explained: the user chose.
  o.aggregation = Aggregation::kNone;
  EXPECT_EQ(choose_aggregation(s, w, o, 64, 1024).not_pooled, "");
}

}  // namespace
}  // namespace moesim::sim

namespace moesim::sim {
namespace {

// With uniform routing and DeepEP-style hierarchical dispatch on a 4-plane rail fabric every plane carries
// the same traffic and planes share no link, so auto simulates the all-to-alls on plane 0 only: the step is
// the one of every plane simulated (aggregation "none"), with a quarter of the fabric flows.
TEST(StepSimFidelity, OnePlaneStandsForAllOnlyWhenSymmetric) {
  Scenario s =
      load_scenario(std::string(MOESIM_SOURCE_DIR) + "/tests/data/des/rail-hot-32xH100.json", catalog());
  s.workload.dispatch = DispatchMode::kHierarchical;
  s.routing.load.generator = "uniform";
  StepOptions none;
  none.aggregation = Aggregation::kNone;
  const StepSimResult all_planes = simulate_step(s, none);
  const StepSimResult one_plane = simulate_step(s, StepOptions{});
  std::printf(
      "[measured] rail uniform hierarchical: plane 0 only %.12f s (%lld flows), every plane %.12f s (%lld "
      "flows)\n",
      one_plane.result.step_time, one_plane.stats.flows, all_planes.result.step_time, all_planes.stats.flows);
  EXPECT_NE(one_plane.result.fidelity.find("plane 0 of 4"), std::string::npos) << one_plane.result.fidelity;
  EXPECT_LT(one_plane.stats.flows, all_planes.stats.flows);
  EXPECT_NEAR(one_plane.result.step_time, all_planes.result.step_time, 1e-9 * all_planes.result.step_time);

  // A hot expert changes the NVLink fan-out inside the nodes, not the per-node copies on the rails: the
  // planes still carry the same bytes, and one plane still gives the step of all.
  s.routing.load.generator = "hot_expert";
  const StepSimResult hot_one = simulate_step(s, StepOptions{});
  const StepSimResult hot_all = simulate_step(s, none);
  std::printf("[measured] rail hot expert hierarchical: plane 0 only %.12f s, every plane %.12f s\n",
              hot_one.result.step_time, hot_all.result.step_time);
  EXPECT_NE(hot_one.result.fidelity.find("plane 0 of 4"), std::string::npos) << hot_one.result.fidelity;
  EXPECT_NEAR(hot_one.result.step_time, hot_all.result.step_time, 1e-9 * hot_all.result.step_time);
  EXPECT_GT(hot_all.result.step_time, all_planes.result.step_time);

  // Flat dispatch sends across planes (a GPU to another node's GPUs of every local index): no reduction.
  s.workload.dispatch = DispatchMode::kFlat;
  const StepSimResult flat = simulate_step(s, StepOptions{});
  EXPECT_EQ(flat.result.fidelity.find("plane 0"), std::string::npos) << flat.result.fidelity;
}

}  // namespace
}  // namespace moesim::sim
