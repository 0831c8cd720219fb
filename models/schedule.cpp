#include "models/schedule.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "models/schedule_order.hpp"
#include "scenarios/error.hpp"

namespace moesim::models {

double activations_in_flight(Schedule s, int pp, int vpp, int rank) {
  switch (s) {
    case Schedule::k1F1B:
    case Schedule::kZeroBubble:
      return pp - rank;
    case Schedule::kInterleaved:
      return ((pp - rank - 1) * 2.0 + (vpp - 1.0) * pp + 1.0) / vpp;
    case Schedule::kDualPipe:
      return pp + 1.0;
  }
  return pp;
}

SchedulePhases evaluate_schedule(Schedule s, int pp, int vpp, int m, const ChunkTimes& t) {
  SchedulePhases ph;
  const double P = pp;
  const double p2p = pp > 1 ? t.p2p : 0.0;
  switch (s) {
    case Schedule::k1F1B:
    case Schedule::kInterleaved: {
      const double v = s == Schedule::kInterleaved ? vpp : 1;
      const double B = t.b + t.w;
      // Rank 0: PP-1 warm-up forwards, M-PP+1 steady F+B, PP-1 cool-down backwards; idle (PP-1)(F+B)/v.
      // Combined 1F1B (ep_overlap, fb_pair > 0): one more warm-up forward and cool-down backward, and
      // each steady unit one overlapped pair (models/schedule_order.hpp, overlap_ep_pairs).
      const int warm = std::min(m, pp - 1 + (t.fb_pair > 0 ? 1 : 0));
      ph.lone_f = warm;
      ph.lone_b = warm;
      ph.pairs = m - warm;
      // Combined 1F1B (ep_overlap): a steady unit is one overlapped F&B pair (fb_pair), plus what it waits
      // for its neighbours' pipeline sends (pair_wait, from all ranks' pairs: models/analytic.cpp).
      ph.pair_time = t.fb_pair > 0 ? t.fb_pair + t.pair_wait : t.f + B;
      ph.forward_only = warm * t.f;
      ph.steady = ph.pairs * ph.pair_time;
      ph.backward_only = warm * B;
      // Fill and drain each cross the v·PP - 1 stage boundaries of one microbatch's path once, one send
      // per boundary (interleaving adds the hops from the last rank back to the first).
      ph.bubble = (P - 1) * (t.f + B) / v + 2 * (v * P - 1) * p2p;
      ph.activations_in_flight = activations_in_flight(s, pp, vpp, 0);
      break;
    }
    case Schedule::kZeroBubble: {
      const int warm = std::min(m, pp - 1);
      ph.lone_f = warm;
      ph.lone_b = warm;
      ph.pairs = m - warm;
      ph.pair_time = t.f + t.b + t.w;
      ph.forward_only = warm * t.f;
      ph.steady = ph.pairs * ph.pair_time;
      ph.backward_only = warm * t.b;
      ph.weight_only = warm * t.w;
      // Qi et al. 2024 (ZB-H1): (PP-1)(F + B - W) with B the input-gradient chunk alone, i.e. DeepSeek-V3
      // Table 2's (PP-1)(F + B - 2W) with B the full backward (b + w).
      ph.bubble = std::max(0.0, (P - 1) * (t.f + t.b - t.w)) + 2 * (P - 1) * p2p;
      ph.activations_in_flight = activations_in_flight(s, pp, vpp, 0);
      break;
    }
    case Schedule::kDualPipe: {
      // Rank 0 of DualPipe (deepseek-ai/DualPipe, steps 1-8): PP + PP/2 - 1 forward chunks and as many
      // backward chunks run alone; the remaining M - (3PP/2 - 1) run as overlapped F&B pairs, where one
      // chunk's all-to-all and pipeline traffic hide under the other chunk's computation.
      const int lone = std::min(m, pp + pp / 2 - 1);
      ph.lone_f = lone;
      ph.lone_b = lone;
      ph.pairs = m - lone;
      const double compute = t.f_compute + t.b_compute + t.w_compute;
      const double comm = t.f_overlappable + t.b_overlappable + 2 * p2p;
      ph.pair_time = t.fb_pair > 0 ? t.fb_pair : std::max(compute, comm) + t.f_blocking + t.b_blocking;
      ph.forward_only = lone * t.f;
      ph.steady = ph.pairs * ph.pair_time;
      ph.backward_only = lone * t.b;
      ph.weight_only = lone * t.w;
      // DeepSeek-V3 Table 2: (PP/2-1)(F&B + B - 3W) with B the full backward, here b + w.
      ph.bubble = std::max(0.0, (P / 2 - 1) * (ph.pair_time + t.b - 2 * t.w)) + (P - 1) * p2p;
      ph.activations_in_flight = activations_in_flight(s, pp, vpp, 0);
      ph.parameter_copies = 2;
      break;
    }
  }
  return ph;
}

namespace {

// DualPipe's dependency structure depends on (pp, m) only, so it is worked out once into a straight-line
// program and every evaluation is one pass over it. Values: slot 0 is zero; stage v's durations sit at
// kSlots·v + 1 + {f, b, bw, w, pair, p2p, 2·p2p}.
//
// The program follows the reference's communication (models::dualpipe_comm): before each computation a
// rank commits the transfers appended since its previous commit as one batch and waits for all of them.
// A transfer is a rendezvous (NCCL point-to-point): it starts when both of its ends have been committed
// and takes the p2p time of its stage boundary, so a rank waits for its receives and for its own sends
// to be taken by their receivers. A batch's sends share their rank's link out and its receives the link
// in (a pair sends and receives two of each): a transfer takes the p2p time times the larger of the
// number of sends in its sender's batch and of receives in its receiver's. Each step is one commit and
// the computation after it; the time a rank reaches a commit is its launch.
enum Slot : int { kF = 0, kB, kBW, kW, kPair, kP2p, kP2pShared, kSlots };

struct Wait {
  std::int32_t peer = 0;  // launch index of the commit holding the transfer's other end
  std::uint16_t p2p = 0;  // value slot of its time: its boundary's p2p, or twice that when two transfers
                          // share its sender's link out or its receiver's link in
};

struct Step {
  std::uint32_t waits_end =
      0;                 // one past its transfers in TimelineProgram::waits (they follow the previous step's)
  std::uint32_t at = 0;  // launch index of its commit: the rank reaches it at launch[at] and the step
                         // writes launch[at + 1], the rank's next commit (past its final one: a spare slot)
  std::uint16_t duration = 0;  // value slot of the computation after the commit; 0 after the final commit
};

struct TimelineProgram {
  int pp = 0, m = 0;
  std::vector<Step> steps;  // in an order every launch a step reads precedes it
  std::vector<Wait> waits;
  // A rank's commits have consecutive launch indexes from first_launch[rank] (one more past its last).
  std::vector<std::uint32_t> first_launch;
  std::size_t launches = 0;
  // Per rank 0..pp/2-1 and per kind of chunk, how many of each of its two stages it runs (pair: the
  // forward's stage), to sum the phases.
  std::vector<std::array<int, 2 * kSlots>> counts;
};

int slot(int stage, Slot k) {
  return kSlots * stage + 1 + k;
}

TimelineProgram build_program(int pp, int m) {
  TimelineProgram prog;
  prog.pp = pp;
  prog.m = m;
  const int half = pp / 2;
  // Every rank's commits. Rank r and rank pp-1-r run mirrored timelines (the same stages and commits with
  // the directions swapped), so a transfer with a rank of the second half waits on the same commit of its
  // mirror in the first half, and only the first half is walked.
  struct Commit {
    const std::vector<P2pOp>* ops;
    Slot kind;
    int stage;  // of the computation after it; -1 after the final commit
    int chunk;
    int ends[2];  // its receives and its sends (they share the rank's link in and out)
  };
  std::vector<DualPipeComm> comm;
  std::vector<std::vector<Commit>> commits(static_cast<std::size_t>(pp));
  for (int r = 0; r < pp; ++r) comm.push_back(dualpipe_comm(pp, m, r));
  prog.counts.assign(static_cast<std::size_t>(half), {});
  // Where each end of each transfer is committed: (rank, commit) by (gradient, direction, microbatch,
  // receiving stage).
  const auto key = [pp, m](const P2pOp& o) {
    return static_cast<std::size_t>(((o.gradient ? 2 : 0) + o.direction) * m + o.microbatch) * pp +
           o.to_stage;
  };
  const std::size_t keys = static_cast<std::size_t>(4 * m * pp);
  std::vector<std::pair<int, int>> send_at(keys, {-1, -1}), recv_at(keys, {-1, -1});
  for (int r = 0; r < pp; ++r) {
    const DualPipeComm& c = comm[static_cast<std::size_t>(r)];
    auto& mine = commits[static_cast<std::size_t>(r)];
    for (std::size_t i = 0; i < c.order.size(); ++i) {
      const ChunkStep& st = c.order[i];
      if (i > 0 && c.order[i - 1].overlap_next) continue;  // a pair's backward: committed with its forward
      const bool pair = st.pass == ChunkPass::kF && st.overlap_next;
      const Slot kind = pair                        ? kPair
                        : st.pass == ChunkPass::kF  ? kF
                        : st.pass == ChunkPass::kB  ? kB
                        : st.pass == ChunkPass::kBW ? kBW
                                                    : kW;
      mine.push_back({&c.commit[i], kind, st.chunk == 0 ? r : pp - 1 - r, st.chunk, {0, 0}});
    }
    mine.push_back({&c.last, kW, -1, 0, {0, 0}});
    for (std::size_t k = 0; k < mine.size(); ++k)
      for (const P2pOp& o : *mine[k].ops) {
        ++mine[k].ends[o.send];
        auto& at = (o.send ? send_at : recv_at)[key(o)];
        MOESIM_ASSERT(at.first < 0, "dualpipe_timeline: a transfer end committed twice");
        at = {r, static_cast<int>(k)};
      }
  }
  for (int r = 0; r < half; ++r) {
    MOESIM_ASSERT(
        commits[static_cast<std::size_t>(r)].size() == commits[static_cast<std::size_t>(pp - 1 - r)].size(),
        "dualpipe_timeline: mirrored ranks commit alike");
    prog.first_launch.push_back(static_cast<std::uint32_t>(prog.launches));
    prog.launches += commits[static_cast<std::size_t>(r)].size() + 1;
    for (const Commit& c : commits[static_cast<std::size_t>(r)])
      if (c.stage >= 0)
        ++prog.counts[static_cast<std::size_t>(r)][static_cast<std::size_t>(kSlots * c.chunk + c.kind)];
  }
  const auto walked = [pp, half](int r) {
    return r >= half ? pp - 1 - r : r;
  };  // its mirror in the first half
  const auto launch = [&prog, &walked](int r, int k) {
    return static_cast<std::int32_t>(prog.first_launch[static_cast<std::size_t>(walked(r))] +
                                     static_cast<std::uint32_t>(k));
  };
  // Steps in an order where every launch a step reads has been written: step k of rank r reads the
  // launch of each peer commit k', written by the peer's step k'-1 (its first: zero from the start).
  std::vector<int> done(static_cast<std::size_t>(half), 0);
  std::size_t left = 0;
  for (int r = 0; r < half; ++r) left += commits[static_cast<std::size_t>(r)].size();
  while (left > 0) {
    const std::size_t before = left;
    for (int r = 0; r < half; ++r) {
      const auto& mine = commits[static_cast<std::size_t>(r)];
      int& k = done[static_cast<std::size_t>(r)];
      for (; k < static_cast<int>(mine.size()); ++k) {
        const std::size_t from = prog.waits.size();
        bool ready = true;
        for (const P2pOp& o : *mine[static_cast<std::size_t>(k)].ops) {
          const auto [pr, pk] = (o.send ? recv_at : send_at)[key(o)];
          MOESIM_ASSERT(pr >= 0, "dualpipe_timeline: a transfer with one end only");
          if (done[static_cast<std::size_t>(walked(pr))] < pk) {
            ready = false;
            break;
          }
          Wait w;
          w.peer = launch(pr, pk);
          // The sender's sends share its link out, the receiver's receives its link in.
          const Commit& theirs = commits[static_cast<std::size_t>(pr)][static_cast<std::size_t>(pk)];
          const Commit& ours = mine[static_cast<std::size_t>(k)];
          const Commit& sender = o.send ? ours : theirs;
          const Commit& receiver = o.send ? theirs : ours;
          const int share = std::max(sender.ends[1], receiver.ends[0]);
          MOESIM_ASSERT(share >= 1 && share <= 2, "dualpipe_timeline: a batch sends or receives at most two");
          w.p2p = static_cast<std::uint16_t>(
              slot(o.gradient ? o.to_stage : o.to_stage - 1, share == 2 ? kP2pShared : kP2p));
          // The two ends a rank exchanges with one neighbour's commit (an activation out and a gradient in,
          // over one boundary) wait alike: one of them is enough.
          const bool same =
              std::any_of(prog.waits.begin() + static_cast<std::ptrdiff_t>(from), prog.waits.end(),
                          [&w](const Wait& x) { return x.peer == w.peer && x.p2p == w.p2p; });
          if (!same) prog.waits.push_back(w);
        }
        if (!ready) {
          prog.waits.resize(from);
          break;
        }
        Step st;
        st.waits_end = static_cast<std::uint32_t>(prog.waits.size());
        st.at = static_cast<std::uint32_t>(launch(r, k));
        const Commit& c = mine[static_cast<std::size_t>(k)];
        st.duration = c.stage < 0 ? 0 : static_cast<std::uint16_t>(slot(c.stage, c.kind));
        prog.steps.push_back(st);
        --left;
      }
    }
    MOESIM_ASSERT(left < before, "dualpipe_timeline: the DualPipe order deadlocked");
  }
  return prog;
}

// The programs of the last few (pp, m), per thread: a plan search asks for a handful many times.
const TimelineProgram& dualpipe_program(int pp, int m) {
  thread_local std::array<TimelineProgram, 16> cache;
  thread_local std::size_t next = 0;
  for (const TimelineProgram& p : cache)
    if (p.pp == pp && p.m == m) return p;
  TimelineProgram& p = cache[next];
  next = (next + 1) % cache.size();
  p = build_program(pp, m);
  // Bounded memory: past 4 M steps (64 MiB) kept, every other program goes (deep pipelines of hundreds of
  // stages compile to millions of steps).
  std::size_t kept = 0;
  for (const TimelineProgram& q : cache) kept += q.steps.size();
  if (kept > (std::size_t{1} << 22))
    for (TimelineProgram& q : cache)
      if (&q != &p) q = TimelineProgram{};
  return p;
}

}  // namespace

std::vector<SchedulePhases> dualpipe_timeline(int pp, int m, const std::vector<StageChunk>& stages,
                                              bool extrapolate) {
  check_schedule_order_args(Schedule::kDualPipe, pp, 1, m);
  MOESIM_ASSERT(stages.size() == static_cast<std::size_t>(pp), "dualpipe_timeline: one StageChunk per stage");
  MOESIM_ASSERT(kSlots * pp + 1 <= 65535, "dualpipe_timeline: pp too large");
  const int m1 = 8 * pp;
  if (extrapolate && m > 2 * m1) {
    // Each further step-4 iteration (two microbatches) adds two pairs to every rank and, once the
    // pipeline repeats itself, the same time to its end: extend the timeline of m1 microbatches by
    // (m - m1)/2 times what m1 + 2 adds.
    const std::vector<SchedulePhases> a = dualpipe_timeline(pp, m1, stages, false);
    const std::vector<SchedulePhases> b = dualpipe_timeline(pp, m1 + 2, stages, false);
    const double k = (m - m1) / 2;
    std::vector<SchedulePhases> out = a;
    for (std::size_t r = 0; r < out.size(); ++r) {
      SchedulePhases& ph = out[r];
      MOESIM_ASSERT(b[r].lone_f == ph.lone_f && b[r].lone_b == ph.lone_b && b[r].pairs == ph.pairs + 2,
                    "dualpipe_timeline: two more microbatches are two more pairs");
      ph.pairs += m - m1;
      ph.steady += k * (b[r].steady - a[r].steady);
      const double end = a[r].total() + k * (b[r].total() - a[r].total());
      ph.bubble = std::max(0.0, end - (ph.forward_only + ph.steady + ph.backward_only + ph.weight_only));
      ph.pair_time = ph.steady / ph.pairs;
    }
    return out;
  }
  const TimelineProgram& prog = dualpipe_program(pp, m);
  const int half = pp / 2;
  thread_local std::vector<double> value;
  value.assign(static_cast<std::size_t>(kSlots * pp + 1), 0.0);
  for (int v = 0; v < pp; ++v) {
    const StageChunk& c = stages[static_cast<std::size_t>(v)];
    double* x = &value[static_cast<std::size_t>(slot(v, kF))];
    x[kF] = c.f;
    x[kB] = c.b;
    x[kBW] = c.bw;
    x[kW] = c.w;
    x[kPair] = c.fb_pair;
    x[kP2p] = c.p2p;
    x[kP2pShared] = 2 * c.p2p;
  }
  thread_local std::vector<double> launch;  // every entry is written before it is read
  launch.resize(prog.launches);
  for (std::uint32_t first : prog.first_launch) launch[first] = 0.0;
  std::size_t w = 0;
  for (const Step& st : prog.steps) {
    const double t = launch[st.at];
    double c = t;
    for (; w < st.waits_end; ++w) {
      const Wait& x = prog.waits[w];
      c = std::max(c, std::max(t, launch[static_cast<std::size_t>(x.peer)]) + value[x.p2p]);
    }
    launch[st.at + 1] = c + value[st.duration];
  }
  // Each rank's clock: the launch past its final commit.
  std::vector<double> clock(static_cast<std::size_t>(half), 0.0);
  for (int r = 0; r < half; ++r) {
    const std::size_t end = r + 1 < half ? prog.first_launch[static_cast<std::size_t>(r) + 1] : prog.launches;
    clock[static_cast<std::size_t>(r)] = launch[end - 1];
  }
  std::vector<SchedulePhases> out(static_cast<std::size_t>(pp));
  for (int r = 0; r < half; ++r) {
    const auto& n = prog.counts[static_cast<std::size_t>(r)];
    SchedulePhases& ph = out[static_cast<std::size_t>(r)];
    for (int chunk = 0; chunk < 2; ++chunk) {
      const int v = chunk == 0 ? r : pp - 1 - r;
      const auto count = [&](Slot kind) { return n[static_cast<std::size_t>(kSlots * chunk + kind)]; };
      const auto cost = [&](Slot kind) {
        return count(kind) * value[static_cast<std::size_t>(slot(v, kind))];
      };
      ph.forward_only += cost(kF);
      ph.backward_only += cost(kB) + cost(kBW);
      ph.weight_only += cost(kW);
      ph.steady += cost(kPair);
      ph.lone_f += count(kF);
      ph.lone_b += count(kB) + count(kBW);
      ph.pairs += count(kPair);
    }
    const double busy = ph.forward_only + ph.steady + ph.backward_only + ph.weight_only;
    ph.bubble = std::max(0.0, clock[static_cast<std::size_t>(r)] - busy);
    ph.pair_time = ph.pairs > 0 ? ph.steady / ph.pairs : 0.0;
    ph.activations_in_flight = activations_in_flight(Schedule::kDualPipe, pp, 1, r);
    ph.parameter_copies = 2;
    out[static_cast<std::size_t>(pp - 1 - r)] = ph;
  }
  return out;
}

}  // namespace moesim::models
