// The discrete-event engine's programs (sim/des_program.hpp), built without SimGrid and checked against
// instruction sequences derived by hand from the schedules' rules:
//
//   1. A two-stage 1F1B pipeline (PipeDream-Flush) of a dense block on stage 0 and an MoE block on
//      stage 1, two microbatches: every instruction of both ranks in order.
//   2. A DualPipe F&B pair of two MoE chunks: the four all-to-alls alternate between the chunks in the
//      DeepSeek-V3 report's order (Figure 4).
//   3. Shared experts under the all-to-alls only when workload.shared_expert_overlap is on.
//   4. Segments follow the ops' roles, not their names: renaming every op changes nothing.
//
// Scenario: tests/data/des/nvl-moe-16xB200.json reduced to 2 layers, PP2, EP8 (8 GPUs per stage).

#include "sim/des_program.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "models/compute_cost.hpp"
#include "models/network.hpp"
#include "models/schedule_order.hpp"
#include "models/workload.hpp"
#include "scenarios/catalog.hpp"
#include "scenarios/json_reader.hpp"
#include "scenarios/loader.hpp"

namespace moesim::sim {
namespace {

const Catalog& catalog() {
  static const Catalog c({std::string(MOESIM_SOURCE_DIR) + "/scenarios/catalog"});
  return c;
}

// Two layers, PP2, EP8, m = global_batch / (mbs · dp) with dp 8; `patch` (pointer → value) on top.
Scenario small(const Json& patch) {
  const std::string file = std::string(MOESIM_TEST_DATA) + "/des/nvl-moe-16xB200.json";
  Json j = read_json_file(file);
  j.erase("variants");
  j["model"]["layers"] = 2;
  j["parallelism"]["pp"] = 2;
  j["parallelism"]["experts"]["ep"] = 8;
  for (auto it = patch.begin(); it != patch.end(); ++it) j[Json::json_pointer(it.key())] = it.value();
  return scenario_from_json(j, file, catalog());
}

models::Workload workload_of(const Scenario& s) {
  auto cm = models::make_compute_cost_model(s);
  return models::build_workload(s, *cm, models::NetworkModel(s.cluster));
}

// One line per instruction: "C F L1 attention+router mb0", "X F L1 mb0" (expert), "ready", "wait",
// "send r1 mb0", "recv B mb0", "post F mb0" (a DualPipe receive posted), "sent r1 mb0" (a DualPipe send
// waited for), "tail".
std::vector<std::string> render(const Program& p) {
  std::vector<std::string> out;
  for (const Instr& x : p.ins) {
    const std::string mb = " mb" + std::to_string(x.mb);
    const std::string layer = x.layer >= 0 ? " L" + std::to_string(x.layer) : "";
    switch (x.op) {
      case Ins::kCompute:
        out.push_back("C " + std::string(1, x.pass) + layer + " " + x.what + mb);
        break;
      case Ins::kExpert:
        out.push_back("X " + std::string(1, x.pass) + layer + mb);
        break;
      case Ins::kReady:
        out.push_back("ready");
        break;
      case Ins::kWait:
        out.push_back("wait");
        break;
      case Ins::kSend:
        out.push_back("send r" + std::to_string(x.peer_rank) + mb);
        break;
      case Ins::kRecv:
        out.push_back("recv " + std::string(1, x.pass) + mb);
        break;
      case Ins::kPost:
        out.push_back("post " + std::string(1, x.pass) + mb);
        break;
      case Ins::kSendWait:
        out.push_back("sent r" + std::to_string(x.peer_rank) + mb);
        break;
      case Ins::kTail:
        out.push_back("tail");
        break;
    }
  }
  return out;
}

std::vector<std::string> render(const std::vector<Coll>& colls) {
  std::vector<std::string> out;
  for (const Coll& c : colls)
    out.push_back(std::string(1, c.pass) + " L" + std::to_string(c.layer) + " " + coll_name(c.kind) + " mb" +
                  std::to_string(c.mb));
  return out;
}

// 1F1B, PP2, m 2 (Megatron-Core's forward_backward_pipelining_without_interleaving): rank 0 runs
// min(m, pp - rank - 1) = 1 warm-up forward, then F1 with BW0, then BW1; rank 1 (the last stage) runs
// no warm-up: F0 BW0 F1 BW1. Stage 0 holds the embedding and block 0 (dense: first_dense_layers 1), stage
// 1 block 1 (MoE) and the head. A dense forward is its attention, then its MLP (the backward the reverse:
// two segments, so that in an overlapped pair each can run beside an all-to-all); an MoE forward is
// attention+router,
// dispatch (ready, wait), experts, combine (ready, wait), un-permute; its backward mirrors it. BW runs
// each block's weight gradients right after its input gradients. Activations go to rank 1, gradients
// to rank 0, then each rank's tail (data-parallel sync and optimizer).
TEST(DesProgram, OneFOneBTwoStagesByHand) {
  const Scenario s = small(
      {{"/model/moe/first_dense_layers", 1}, {"/model/dense_ffn", 8192}, {"/parallelism/global_batch", 16}});
  ASSERT_EQ(s.layout.microbatches, 2);
  ASSERT_EQ(s.model.moe.shared_experts, 0);  // no shared-expert segments
  const models::Workload w = workload_of(s);
  ASSERT_EQ(w.ranks[0].blocks, std::vector<int>{0});
  ASSERT_EQ(w.ranks[1].blocks, std::vector<int>{1});
  const ProgramBuilder pb(s, w);
  ASSERT_EQ(pb.stages(), 2);

  std::vector<std::string> r0;
  for (int mb : {0, 1})  // warm-up F0, then F1 of the steady state
    for (const std::string x : {"C F embedding", "C F L0 attention", "C F L0 mlp"})
      r0.push_back(x + " mb" + std::to_string(mb));
  r0.insert(r0.begin() + 3, "send r1 mb0");
  r0.push_back("send r1 mb1");
  for (int mb : {0, 1})  // BW0 (steady), BW1 (cool-down)
    for (const std::string x : {"recv B", "C B L0 mlp", "C B L0 attention", "C W L0 weight grads",
                                "C B embedding", "C W embedding weight grads"})
      r0.push_back(x + " mb" + std::to_string(mb));
  r0.push_back("tail");
  EXPECT_EQ(render(pb.build(0, 2)), r0);

  std::vector<std::string> r1;
  for (const std::string mb : {" mb0", " mb1"}) {
    for (const std::string x : {"recv F",
                                "C F L1 attention+router",
                                "ready",
                                "wait",
                                "X F L1",
                                "ready",
                                "wait",
                                "C F L1 unpermute",
                                "C F head+loss",
                                "C B head",
                                "C W head weight grads",
                                "C B L1 unpermute",
                                "ready",
                                "wait",
                                "X B L1",
                                "X W L1",  // expert weight gradients before the dispatch of the gradients
                                "ready",
                                "wait",
                                "C B L1 attention+router",
                                "C W L1 weight grads",
                                "send r0"})
      r1.push_back(x == "ready" || x == "wait" ? x : x + mb);
  }
  r1.push_back("tail");
  const Program p1 = pb.build(1, 2);
  EXPECT_EQ(render(p1), r1);
  EXPECT_EQ(render(p1.colls),
            (std::vector<std::string>{"F L1 dispatch mb0", "F L1 combine mb0", "B L1 combine grad mb0",
                                      "B L1 dispatch grad mb0", "F L1 dispatch mb1", "F L1 combine mb1",
                                      "B L1 combine grad mb1", "B L1 dispatch grad mb1"}));
}

// DualPipe, PP2, m 4, both blocks MoE. Rank 0 computes stage 0 of direction 0 (chunk 0: embedding,
// block 0) and stage 1 of direction 1 (chunk 1: block 1, head: direction 1 enters at rank pp - 1). Its
// one overlapped pair (DualPipe step 4) is the forward of microbatch 3 on chunk 1 with the backward of
// microbatch 0 on chunk 0; both first receive their input. The chunks take turns at their all-to-alls,
// the one with less compute before its first all-to-all leading: the backward (un-permute) against the
// forward's attention. Hence the report's four slots in order (DeepSeek-V3 report Figure 4): B's
// combine under F's attention, F's dispatch under B's experts, B's dispatch under F's experts, F's
// combine under B's attention. Neither chunk sends: chunk 1 ends at the last stage, chunk 0's backward
// at the first.
TEST(DesProgram, DualPipePairAlternatesAllToAlls) {
  const Scenario s = small({{"/parallelism/schedule", "dualpipe"}, {"/parallelism/global_batch", 32}});
  ASSERT_EQ(s.layout.microbatches, 4);
  const models::Workload w = workload_of(s);
  const auto order = models::schedule_order(Schedule::kDualPipe, 2, 1, 4, 0);
  std::size_t k = 0;
  while (k + 1 < order.size() && !order[k].overlap_next) ++k;
  ASSERT_LT(k + 1, order.size()) << "no overlapped pair on rank 0";
  const models::ChunkStep& fs = order[k];
  const models::ChunkStep& bs = order[k + 1];
  ASSERT_EQ(fs.chunk, 1);
  ASSERT_EQ(fs.microbatch, 3);
  ASSERT_EQ(bs.chunk, 0);
  ASSERT_EQ(bs.microbatch, 0);
  ASSERT_EQ(bs.pass, models::ChunkPass::kBW);

  const ProgramBuilder pb(s, w);
  const std::vector<std::string> all = render(pb.build(0, 4));
  const std::vector<std::string> expected = {
      "recv F mb3",
      "recv B mb0",
      "C B L0 unpermute mb0",
      "ready",  // B's combine grad ...
      "C F L1 attention+router mb3",
      "ready",  // ... under F's attention; F's dispatch ...
      "wait",
      "X B L0 mb0",
      "X W L0 mb0",
      "ready",  // ... under B's experts and their weight gradients; B's dispatch grad ...
      "wait",
      "X F L1 mb3",
      "ready",  // ... under F's experts; F's combine ...
      "wait",
      "C B L0 attention+router mb0",
      "C W L0 weight grads mb0",
      "C B embedding mb0",
      "C W embedding weight grads mb0",  // ... under B's attention and the rest of B
      "wait",
      "C F L1 unpermute mb3",
      "C F head+loss mb3"};
  std::size_t at = 0;
  while (at < all.size() && all[at] != expected.front()) ++at;
  ASSERT_LE(at + expected.size(), all.size());
  EXPECT_EQ(std::vector<std::string>(all.begin() + at, all.begin() + at + expected.size()), expected);
  const Program p = pb.build(0, 4);
  std::vector<std::string> colls = render(p.colls);
  const std::vector<std::string> slots = {"B L0 combine grad mb0", "F L1 dispatch mb3",
                                          "B L0 dispatch grad mb0", "F L1 combine mb3"};
  EXPECT_NE(std::search(colls.begin(), colls.end(), slots.begin(), slots.end()), colls.end());
}

// A dense chunk beside an MoE chunk in a DualPipe pair (PP2, m 4, block 0 dense): rank 0's pair is the
// forward of microbatch 3 on stage 1 (MoE block 1, head) with the backward of microbatch 0 on stage 0
// (dense block 0, embedding). The dense block runs as two segments, its MLP's gradients and then its
// attention's (Megatron-Core's fine-grained callables: a dense layer is an attention node and an MLP
// node), so one sits beside the forward's dispatch and the other beside its combine: both all-to-alls are
// hidden, where one segment for the whole block would leave the combine with nothing beside it.
TEST(DesProgram, DenseChunkSpreadsOverThePairsAllToAlls) {
  const Scenario s = small({{"/parallelism/schedule", "dualpipe"},
                            {"/parallelism/global_batch", 32},
                            {"/model/moe/first_dense_layers", 1},
                            {"/model/dense_ffn", 8192}});
  ASSERT_EQ(s.layout.microbatches, 4);
  const models::Workload w = workload_of(s);
  const std::vector<std::string> all = render(ProgramBuilder(s, w).build(0, 4));
  const std::vector<std::string> expected = {"C F L1 attention+router mb3",
                                             "ready",           // F's dispatch ...
                                             "C B L0 mlp mb0",  // ... beside the dense MLP's gradients
                                             "wait",
                                             "X F L1 mb3",
                                             "ready",                 // F's combine ...
                                             "C B L0 attention mb0",  // ... beside the attention's
                                             "wait"};
  const auto at = std::search(all.begin(), all.end(), expected.begin(), expected.end());
  EXPECT_NE(at, all.end()) << "the pair's instructions are not the expected turns";
}

// DualPipe's transfers as the reference commits them (deepseek-ai/DualPipe `_commit_and_wait_comm`;
// models::dualpipe_comm), PP2, m 4, rank 0: its order is F0 mb0, F1 mb2, F0 mb1, BW1 mb2, the pair F1 mb3
// & BW0 mb0, BW1 mb3, B0 mb1, W0 mb1. Each commit posts its receives and sends (a send starts once the
// receiver has posted: rendezvous), then waits for all of them: F0 mb0's output goes with F1 mb2's commit,
// which receives F1 mb2's input; the pair's commit sends F0 mb1's output and BW1 mb2's gradient and
// receives the pair's two inputs; BW1 mb3's gradient goes with B0 mb1's commit, which receives its input.
TEST(DesProgram, DualPipeTransfersGoInTheReferenceCommits) {
  const Scenario s = small({{"/parallelism/schedule", "dualpipe"}, {"/parallelism/global_batch", 32}});
  ASSERT_EQ(s.layout.microbatches, 4);
  const models::Workload w = workload_of(s);
  const ProgramBuilder pb(s, w);
  const Program p = pb.build(0, 4);
  std::vector<std::string> transfers;
  const std::vector<std::string> all = render(p);
  for (const std::string& x : all)
    for (const char* kind : {"post", "send", "sent", "recv"})
      if (x.rfind(kind, 0) == 0) transfers.push_back(x);
  const std::vector<std::string> expected = {"post F mb2",  "send r1 mb0", "sent r1 mb0", "recv F mb2",
                                             "post F mb3",  "post B mb0",  "send r1 mb1", "send r1 mb2",
                                             "sent r1 mb1", "sent r1 mb2", "recv F mb3",  "recv B mb0",
                                             "post B mb1",  "send r1 mb3", "sent r1 mb3", "recv B mb1"};
  EXPECT_EQ(transfers, expected);
  for (const Instr& x : p.ins) {
    if (x.op == Ins::kSend) {
      EXPECT_TRUE(x.rendezvous);
    }
  }
  // The other schedules send eagerly: 1F1B's sends do not wait for a posted receive.
  const Scenario t = small({{"/parallelism/global_batch", 32}});
  for (const Instr& x : ProgramBuilder(t, workload_of(t)).build(0, t.layout.microbatches).ins) {
    EXPECT_NE(x.op, Ins::kPost);
    EXPECT_NE(x.op, Ins::kSendWait);
    if (x.op == Ins::kSend) {
      EXPECT_FALSE(x.rendezvous);
    }
  }
}

// Delayed weight gradients (parallelism.delay_wgrad) as Megatron-Core runs them: a model chunk's nodes run
// in order on one CUDA event, so every weight gradient keeps its place except the backward chunk's last
// attention weight gradients, which follow the chunk's pipeline send. Interleaved PP2 VP2, 4 MoE blocks,
// combined 1F1B, rank 1: the same instructions with and without it; with it, and only with it, some
// attention weight gradients directly follow a send.
TEST(DesProgram, DelayedWeightGradientsFollowThePipelineSend) {
  const Json patch{{"/model/layers", 4},
                   {"/parallelism/schedule", "interleaved"},
                   {"/parallelism/vpp", 2},
                   {"/parallelism/global_batch", 32},
                   {"/parallelism/ep_overlap", true}};
  Json delayed = patch;
  delayed["/parallelism/delay_wgrad"] = true;
  const Scenario s0 = small(patch), s1 = small(delayed);
  const models::Workload w = workload_of(s0);
  const std::vector<std::string> plain = render(ProgramBuilder(s0, w).build(1, s0.layout.microbatches));
  const std::vector<std::string> late = render(ProgramBuilder(s1, w).build(1, s1.layout.microbatches));
  std::vector<std::string> a = plain, b = late;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  EXPECT_EQ(a, b);
  const auto after_send = [](const std::vector<std::string>& x) {
    int n = 0;
    for (std::size_t i = 1; i < x.size(); ++i)
      if (x[i - 1].rfind("send", 0) == 0 && x[i].find("weight grads") != std::string::npos) ++n;
    return n;
  };
  EXPECT_EQ(after_send(plain), 0);
  EXPECT_GT(after_send(late), 0);
}

// Shared experts: with the overlap (default) the up-projection sits between the dispatch's ready and
// wait and the down-projection between the combine's; without it both follow the combine's wait in
// forward (and precede the combine-gradient all-to-all in backward): nothing is left under an all-to-all.
TEST(DesProgram, SharedExpertsUnderAllToAllsOnlyWithOverlap) {
  const Json base = {
      {"/model/moe/shared_experts", 1}, {"/model/moe/shared_ffn", 2048}, {"/parallelism/global_batch", 16}};
  Json off = base;
  off["/workload/shared_expert_overlap"] = false;
  const std::vector<std::string> fwd_on = {
      "C F L1 attention+router mb0", "ready", "C F L1 shared up mb0", "wait", "X F L1 mb0", "ready",
      "C F L1 shared down mb0",      "wait",  "C F L1 unpermute mb0"};
  const std::vector<std::string> fwd_off = {"C F L1 attention+router mb0",
                                            "ready",
                                            "wait",
                                            "X F L1 mb0",
                                            "ready",
                                            "wait",
                                            "C F L1 shared up mb0",
                                            "C F L1 shared down mb0",
                                            "C F L1 unpermute mb0"};
  // The expert weight gradients (shared, then routed) follow the input gradients, before the dispatch of
  // the gradients.
  const std::vector<std::string> bwd_on = {"C B L1 unpermute mb0",
                                           "ready",
                                           "C B L1 shared down mb0",
                                           "wait",
                                           "X B L1 mb0",
                                           "C W L1 expert weight grads mb0",
                                           "X W L1 mb0",
                                           "ready",
                                           "C B L1 shared up mb0",
                                           "wait",
                                           "C B L1 attention+router mb0"};
  const std::vector<std::string> bwd_off = {"C B L1 unpermute mb0",
                                            "C B L1 shared down mb0",
                                            "C B L1 shared up mb0",
                                            "ready",
                                            "wait",
                                            "X B L1 mb0",
                                            "C W L1 expert weight grads mb0",
                                            "X W L1 mb0",
                                            "ready",
                                            "wait",
                                            "C B L1 attention+router mb0"};
  for (const bool overlap : {true, false}) {
    const Scenario s = small(overlap ? base : off);
    ASSERT_EQ(s.workload.shared_expert_overlap, overlap);
    const models::Workload w = workload_of(s);
    const std::vector<std::string> r1 = render(ProgramBuilder(s, w).build(1, 2));
    // Rank 1, m 2, first microbatch: recv F, then the forward of block 1 (9 instructions), head, then its
    // backward.
    ASSERT_GE(r1.size(), 1u + 9 + 3 + 11);
    EXPECT_EQ(std::vector<std::string>(r1.begin() + 1, r1.begin() + 10), overlap ? fwd_on : fwd_off);
    EXPECT_EQ(std::vector<std::string>(r1.begin() + 13, r1.begin() + 24), overlap ? bwd_on : bwd_off);
  }
}

// An op's name is a label: the DES cuts blocks by role. Renaming every op of every block leaves every
// segment as it was (FP8, shared experts, full recompute, TP2).
TEST(DesProgram, SegmentsFollowRolesNotNames) {
  const Scenario s = small({{"/model/moe/shared_experts", 1},
                            {"/model/moe/shared_ffn", 2048},
                            {"/workload/precision", "fp8"},
                            {"/parallelism/recompute", "full"},
                            {"/parallelism/attention/tp", 2},
                            {"/parallelism/experts/ep", 4},
                            {"/parallelism/global_batch", 8}});
  const models::Workload w = workload_of(s);
  models::Workload renamed = w;
  for (auto& b : renamed.blocks)
    for (auto& op : b.ops) op.name = "renamed";
  bool recompute = false;
  for (int b = 0; b < static_cast<int>(w.blocks.size()); ++b) {
    const BlockSegs x = segments_of(w, b), y = segments_of(renamed, b);
    for (int p = 0; p < 3; ++p) {
      EXPECT_EQ(x.pass[p].pre, y.pass[p].pre);
      EXPECT_EQ(x.pass[p].shared_up, y.pass[p].shared_up);
      EXPECT_EQ(x.pass[p].experts, y.pass[p].experts);
      EXPECT_EQ(x.pass[p].shared_down, y.pass[p].shared_down);
      EXPECT_EQ(x.pass[p].post, y.pass[p].post);
      EXPECT_EQ(x.pass[p].tp, y.pass[p].tp);
      EXPECT_EQ(x.pass[p].recompute_a2a, y.pass[p].recompute_a2a);
      recompute = recompute || y.pass[p].recompute_a2a;
    }
    EXPECT_GT(x.pass[0].shared_up, 0);
    EXPECT_GT(x.pass[0].experts, 0);
    EXPECT_GT(x.pass[0].tp, 0);
  }
  EXPECT_TRUE(recompute);  // full recompute repeats the all-to-alls in backward
}

}  // namespace
}  // namespace moesim::sim
