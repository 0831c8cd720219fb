#pragma once
// A routing trace for serving tests: 128 experts, top-8, one recorded MoE layer (every layer of the model
// takes its counts), 400 steps. Each step has one hot expert with 30,000 slots and 1,000 on every other
// expert; the hot expert is 16·j for steps 50·j to 50·j + 49 (j = 0..7), the first expert of each GPU's
// contiguous block on EP8. Over the whole trace every GPU of EP8 holds the same share (1/8); in any one
// step the hot expert's GPU holds (30,000 + 15 · 1,000) / 157,000 of the copies.
#include <filesystem>
#include <string>

#include "traces/routing_sample.hpp"
#include "traces/trace_format.hpp"

namespace moesim::testing {

constexpr int kTraceExperts = 128, kTraceHot = 30000, kTraceCold = 1000, kTraceSteps = 400, kTraceRun = 50;

/// Writes the trace (replacing an earlier one of the same name) under the temporary folder and returns its
/// absolute path.
inline std::string write_rotating_hot_trace(const std::string& name) {
  const std::filesystem::path p = std::filesystem::temp_directory_path() / name;
  std::filesystem::remove(p);
  traces::TraceHeader h;
  h.experts = kTraceExperts;
  h.top_k = 8;
  h.sources = 1;
  h.layers = 1;
  h.note = "rotating hot expert (tests)";
  traces::TraceWriter w(p.string(), h);
  for (int step = 0; step < kTraceSteps; ++step) {
    traces::RoutingSample x;
    x.step = step;
    x.layer = 0;
    x.sources = 1;
    x.experts = kTraceExperts;
    x.top_k = 8;
    x.counts.assign(kTraceExperts, kTraceCold);
    x.counts[static_cast<std::size_t>(16 * (step / kTraceRun))] = kTraceHot;
    x.tokens = (kTraceHot + (kTraceExperts - 1) * kTraceCold) / 8;  // 157,000 slots, 8 per token
    w.write_counts(x);
  }
  w.close();
  return p.string();
}

}  // namespace moesim::testing
