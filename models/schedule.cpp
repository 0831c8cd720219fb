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
// kSlots·v + 1 + {f, b, bw, w, pair, p2p}.
enum Slot : int { kF = 0, kB, kBW, kW, kPair, kP2p, kSlots };

struct Step {
  std::int32_t dep1 = 0, dep2 = 0;     // instructions whose end (plus a send) this one waits for; 0: none
  std::uint16_t send1 = 0, send2 = 0;  // value slots of those sends
  std::uint16_t duration = 0;          // value slot of this chunk's duration
  std::uint16_t rank = 0;
};

struct TimelineProgram {
  int pp = 0, m = 0;
  std::vector<Step> steps;  // in an order every dependency precedes; ends are numbered from 1
  // Consecutive steps of one rank: (rank, one past its last step), so a walk keeps the rank's clock in a
  // register.
  std::vector<std::pair<std::uint16_t, std::uint32_t>> runs;
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
  const int half = pp / 2, per = m / 2;
  std::vector<std::vector<ChunkStep>> orders;
  for (int r = 0; r < half; ++r) orders.push_back(schedule_order(Schedule::kDualPipe, pp, 1, m, r));
  prog.counts.assign(static_cast<std::size_t>(half), {});
  // Which instruction ends microbatch j's forward and backward at stage v (-1: not yet issued). Both
  // directions share one table: rank r and rank pp-1-r run mirrored timelines.
  std::vector<std::int32_t> f_at(static_cast<std::size_t>(per * pp), -1), b_at(f_at);
  const auto at = [pp, per](int mb, int v) { return static_cast<std::size_t>((mb % per) * pp + v); };
  std::vector<std::size_t> pos(static_cast<std::size_t>(half), 0);
  std::size_t left = 0;
  for (const auto& o : orders) left += o.size();
  const auto next = [&prog] { return static_cast<std::int32_t>(prog.steps.size() + 1); };
  while (left > 0) {
    const std::size_t before = left;
    for (int r = 0; r < half; ++r) {
      const std::size_t first = prog.steps.size();
      const std::vector<ChunkStep>& order = orders[static_cast<std::size_t>(r)];
      std::size_t& i = pos[static_cast<std::size_t>(r)];
      auto& count = prog.counts[static_cast<std::size_t>(r)];
      while (i < order.size()) {
        const ChunkStep& st = order[i];
        const int v = st.chunk == 0 ? r : pp - 1 - r;
        Step step;
        step.rank = static_cast<std::uint16_t>(r);
        // A forward waits for the previous stage's forward and its send; a backward for the next
        // stage's backward and its send (its own forward and a W's backward ran earlier on this rank).
        const auto forward_input = [&](int mb, int stage, std::int32_t& dep, std::uint16_t& send) {
          if (stage == 0) return true;
          dep = f_at[at(mb, stage - 1)];
          send = static_cast<std::uint16_t>(slot(stage - 1, kP2p));
          return dep > 0;
        };
        const auto backward_input = [&](int mb, int stage, std::int32_t& dep, std::uint16_t& send) {
          if (stage == pp - 1) return true;
          dep = b_at[at(mb, stage + 1)];
          send = static_cast<std::uint16_t>(slot(stage, kP2p));
          return dep > 0;
        };
        if (st.pass == ChunkPass::kF && st.overlap_next && i + 1 < order.size()) {
          const ChunkStep& bk = order[i + 1];
          const int vb = bk.chunk == 0 ? r : pp - 1 - r;
          if (!forward_input(st.microbatch, v, step.dep1, step.send1) ||
              !backward_input(bk.microbatch, vb, step.dep2, step.send2)) {
            step.dep1 = step.dep2 = 0;
            break;
          }
          step.duration = static_cast<std::uint16_t>(slot(v, kPair));
          f_at[at(st.microbatch, v)] = b_at[at(bk.microbatch, vb)] = next();
          ++count[static_cast<std::size_t>(kSlots * st.chunk + kPair)];
          prog.steps.push_back(step);
          i += 2;
          left -= 2;
          continue;
        }
        Slot kind = kW;
        if (st.pass == ChunkPass::kF) {
          if (!forward_input(st.microbatch, v, step.dep1, step.send1)) break;
          kind = kF;
          f_at[at(st.microbatch, v)] = next();
        } else if (st.pass == ChunkPass::kB || st.pass == ChunkPass::kBW) {
          if (!backward_input(st.microbatch, v, step.dep1, step.send1)) break;
          kind = st.pass == ChunkPass::kB ? kB : kBW;
          b_at[at(st.microbatch, v)] = next();
        }
        step.duration = static_cast<std::uint16_t>(slot(v, kind));
        ++count[static_cast<std::size_t>(kSlots * st.chunk + kind)];
        prog.steps.push_back(step);
        ++i;
        --left;
      }
      if (prog.steps.size() > first)
        prog.runs.emplace_back(static_cast<std::uint16_t>(r), static_cast<std::uint32_t>(prog.steps.size()));
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
  }
  thread_local std::vector<double> end;  // every entry is written before it is read
  end.resize(prog.steps.size() + 1);
  end[0] = 0.0;
  std::vector<double> clock(static_cast<std::size_t>(half), 0.0);
  std::size_t k = 0;
  for (const auto& [rank, stop] : prog.runs) {
    double t = clock[rank];
    for (; k < stop; ++k) {
      const Step& st = prog.steps[k];
      const double in = std::max(end[static_cast<std::size_t>(st.dep1)] + value[st.send1],
                                 end[static_cast<std::size_t>(st.dep2)] + value[st.send2]);
      t = std::max(t, in) + value[st.duration];
      end[k + 1] = t;
    }
    clock[rank] = t;
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
