// What expert communication hides under, in the analytic engine (models/block_pricing.cpp,
// models/analytic.cpp), with expectations worked out by hand from the network model's formulas.
//
// Scenario: tests/data/des/nvl-moe-16xB200.json (16 MoE layers, hidden 2048, 16 experts top-2, 16 B200
// in one NVLink domain of 740 GB/s and 3 us per hop, PP4, seq 4096, mbs 1, BF16) with expert tensor
// parallelism (EP2 × ETP2 inside each stage's 4 GPUs) and one large shared expert (FFN 16384), so that
// the shared experts alone could hide the dispatch together with the expert-TP collectives.
//
// Expert-TP collectives per MoE block and forward (or backward-input) pass: an all-gather of the
// dispatched rows before the expert GEMMs and a reduce-scatter after them, over the 2 GPUs of the
// expert-TP group (one NVLink domain). Ring reduce-scatter and all-gather of a B-byte buffer over n GPUs
// of one domain: (n-1)/n · B / bw + (n-1) · latency (models/network.hpp). Rows of the busiest GPU with
// uniform routing: each of the 2 EP ranks routes mbs · seq / (tp · cp) = 4096 tokens to top-2 of 16
// experts, so every expert receives 2 · 4096 · 2 / 16 = 1024 rows and an EP rank's 8 experts 8192.
//   B = 8192 rows · 2048 · 2 bytes = 33,554,432 bytes
//   one collective = 1/2 · B / 740e9 + 3e-6 = 25.6719e-6 s; all-gather + reduce-scatter = 51.3438e-6 s.
// These collectives are blocking: the experts need the gathered rows, the combine the scattered output.
// Nothing hides them: not the shared experts (which hide the dispatch and the combine only) and not a
// DualPipe partner chunk (they are not all-to-alls). Before the fix they were filed as dispatch time and
// vanished under the shared experts and in DualPipe's dispatch slot.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "models/analytic.hpp"
#include "models/compute_cost.hpp"
#include "models/network.hpp"
#include "models/workload.hpp"
#include "scenarios/catalog.hpp"
#include "scenarios/json_reader.hpp"
#include "scenarios/loader.hpp"

namespace moesim::models {
namespace {

const Catalog& catalog() {
  static const Catalog c({std::string(MOESIM_SOURCE_DIR) + "/scenarios/catalog"});
  return c;
}

// The NVLink-domain test scenario (variant `variant`, "" for the base) with expert tensor parallelism,
// a large shared expert and the patches in `patch` (pointer → value).
Scenario etp_scenario(const std::string& variant, const Json& patch = Json::object()) {
  const std::string file = std::string(MOESIM_TEST_DATA) + "/des/nvl-moe-16xB200.json";
  Json j = read_json_file(file);
  for (const Variant& v : variants_from_json(j, file))
    if (v.name == variant) j = apply_variant(j, v, file);
  j.erase("variants");
  j["parallelism"]["experts"]["ep"] = 2;
  j["parallelism"]["experts"]["etp"] = 2;
  j["model"]["moe"]["shared_experts"] = 1;
  j["model"]["moe"]["shared_ffn"] = 16384;
  for (auto it = patch.begin(); it != patch.end(); ++it) j[Json::json_pointer(it.key())] = it.value();
  return scenario_from_json(j, file, catalog());
}

Workload workload_of(const Scenario& s) {
  auto cm = make_compute_cost_model(s);
  return build_workload(s, *cm, NetworkModel(s.cluster));
}

// By hand (file comment): all-gather + reduce-scatter of 8192 · 2048 · 2 bytes over 2 GPUs at 740 GB/s.
constexpr double kEtpSeconds = 2 * (0.5 * 8192.0 * 2048 * 2 / 740e9 + 3e-6);

// The shared experts are large enough to hide the dispatch and the expert-TP collectives together,
// and the combine: without a category of their own the collectives would be hidden too.
void expect_shared_experts_cover_everything(const Workload& w) {
  for (std::size_t i = 0; i < w.blocks.size(); ++i)
    for (int p = 0; p < 2; ++p) {
      const BlockCost& b = w.blocks[i];
      double shared_up = 0, shared_down = 0;
      for (const Op& op : block_ops(w, static_cast<int>(i)))
        if (static_cast<int>(op.pass) == p && op.kind != OpKind::kComm) {
          const std::string n = op.name;
          if (n == "moe.shared_down")
            shared_down += op.seconds;
          else if (n.rfind("moe.shared_", 0) == 0)
            shared_up += op.seconds;
        }
      ASSERT_GT(shared_up, b.pass[p].ep_comm + kEtpSeconds) << "block " << b.layer << " pass " << p;
      ASSERT_GT(shared_down, b.pass[p].ep_comm) << "block " << b.layer << " pass " << p;
    }
}

TEST(ExpertTensorParallel, CollectivesArePricedAsDerived) {
  const Scenario s = etp_scenario("");
  ASSERT_EQ(s.parallelism.etp, 2);
  ASSERT_EQ(s.parallelism.ep, 2);
  ASSERT_EQ(s.parallelism.tp * s.parallelism.cp, 1);
  const Workload w = workload_of(s);
  int found = 0;
  for (const Op& op : block_ops(w, 0))
    if (op.comm == CommKind::kExpertTensor) {
      ++found;
      EXPECT_NEAR(op.work, 2 * 8192.0 * 2048 * 2, 1e-6) << op.name;  // gathered + scattered bytes
      EXPECT_NEAR(op.seconds, kEtpSeconds, 1e-12 * kEtpSeconds) << op.name;
    }
  EXPECT_EQ(found, 2);  // forward and backward-input
}

// 1F1B: a chunk alone is its compute plus its exposed communication; here (no TP, no CP, all-to-alls
// hidden by the shared experts) that is exactly the expert-TP collectives of the rank's 4 MoE blocks.
TEST(ExpertTensorParallel, ExposedUnderSharedExperts) {
  const Scenario s = etp_scenario("");
  const Workload w = workload_of(s);
  expect_shared_experts_cover_everything(w);
  for (const BlockCost& b : w.blocks) {
    EXPECT_NEAR(b.pass[0].ep_exposed, kEtpSeconds, 1e-9 * kEtpSeconds) << "block " << b.layer;
    EXPECT_NEAR(b.pass[1].ep_exposed, kEtpSeconds, 1e-9 * kEtpSeconds) << "block " << b.layer;
  }
  const Result r = evaluate_analytic(s, w);
  const double blocks = static_cast<double>(w.ranks[r.critical_rank].blocks.size());
  ASSERT_EQ(blocks, 4);
  EXPECT_NEAR(r.chunk.f - r.chunk.f_compute, blocks * kEtpSeconds, 1e-9 * r.chunk.f);
  EXPECT_NEAR(r.chunk.b - r.chunk.b_compute, blocks * kEtpSeconds, 1e-9 * r.chunk.b);
  EXPECT_GT(r.breakdown.exposed_ep, 0);
}

// DualPipe: in an overlapped F&B pair every slot's all-to-all is shorter than the compute it overlaps
// (checked below), so the pair is its compute plus what nothing hides: the expert-TP collectives of the
// forward and the backward chunk, 4 blocks each: fb_pair = f_compute + b_compute + w_compute + 8 · etp.
TEST(ExpertTensorParallel, NotInDualPipeDispatchSlot) {
  const Scenario s = etp_scenario("dualpipe-pp4");
  ASSERT_EQ(s.parallelism.schedule, Schedule::kDualPipe);
  const Workload w = workload_of(s);
  for (const BlockCost& b : w.blocks) {
    const PassCost &F = b.pass[0], &B = b.pass[1], &W = b.pass[2];
    ASSERT_GT(F.attn_compute, B.combine);
    ASSERT_GT(B.mlp_compute + W.mlp_compute, F.dispatch + kEtpSeconds);
    ASSERT_GT(F.mlp_compute, B.dispatch + kEtpSeconds);
    ASSERT_GT(B.attn_compute + W.attn_compute, F.combine);
  }
  const Result r = evaluate_analytic(s, w);
  const ChunkTimes& c = r.chunk;
  const double compute = c.f_compute + c.b_compute + c.w_compute;
  EXPECT_NEAR(c.fb_pair - compute, 8 * kEtpSeconds, 1e-9 * c.fb_pair);
}

// The analytic engine honours workload.shared_expert_overlap: off, every all-to-all is exposed.
TEST(SharedExpertOverlap, OffExposesEveryAllToAll) {
  const Scenario s = etp_scenario("", {{"/parallelism/experts/etp", 1},
                                       {"/parallelism/experts/ep", 4},
                                       {"/workload/shared_expert_overlap", false}});
  const Workload w = workload_of(s);
  for (const BlockCost& b : w.blocks)
    for (int p = 0; p < 2; ++p) {
      EXPECT_GT(b.pass[p].ep_comm, 0);
      EXPECT_DOUBLE_EQ(b.pass[p].ep_exposed, b.pass[p].ep_comm) << "block " << b.layer << " pass " << p;
    }
}

}  // namespace
}  // namespace moesim::models
