// Analytic evaluations per second of the DeepSeek-V3 example (target: >= 10,000 per second on one core).
// Run: build/release/bench/moesim_bench --benchmark_filter=Analytic
#include <benchmark/benchmark.h>

#include "models/analytic.hpp"
#include "models/compute_cost.hpp"
#include "models/schedule.hpp"
#include "scenarios/loader.hpp"

namespace {

const moesim::Scenario& deepseek() {
  static const moesim::Scenario s = [] {
    moesim::Catalog cat({std::string(MOESIM_SOURCE_DIR) + "/scenarios/catalog"});
    return moesim::load_scenario(
        std::string(MOESIM_SOURCE_DIR) + "/scenarios/examples/deepseek-v3-2048xH800.json", cat);
  }();
  return s;
}

// Whole evaluation: price every op of the workload, schedule, memory.
void BM_AnalyticEvaluate(benchmark::State& state) {
  const auto& s = deepseek();
  for (auto _ : state) benchmark::DoNotOptimize(moesim::models::evaluate_analytic(s));
  state.counters["evals_per_s"] = benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AnalyticEvaluate)->Unit(benchmark::kMicrosecond);

// Skewed routing: every MoE layer has its own expert shares, so every layer is priced separately.
void BM_AnalyticEvaluateZipf(benchmark::State& state) {
  moesim::Scenario s = deepseek();
  s.routing.load.generator = "zipf";
  s.routing.load.zipf_s = 1.0;
  for (auto _ : state) benchmark::DoNotOptimize(moesim::models::evaluate_analytic(s));
  state.counters["evals_per_s"] = benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AnalyticEvaluateZipf)->Unit(benchmark::kMicrosecond);

// Re-evaluating a priced workload (schedule, sync, memory): what a sweep over schedules/batch sizes pays.
void BM_AnalyticReschedule(benchmark::State& state) {
  const auto& s = deepseek();
  auto cm = moesim::models::make_compute_cost_model(s);
  moesim::models::NetworkModel net(s.cluster);
  auto w = moesim::models::build_workload(s, *cm, net);
  for (auto _ : state) benchmark::DoNotOptimize(moesim::models::evaluate_analytic(s, w));
  state.counters["evals_per_s"] = benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AnalyticReschedule)->Unit(benchmark::kMicrosecond);

// DualPipe's dependency timeline alone at the DeepSeek-V3 example's shape (PP16, 120 microbatches), with a
// light first and a heavy last stage: what the analytic engine adds for a DualPipe layout.
void BM_DualPipeTimeline(benchmark::State& state) {
  std::vector<moesim::models::StageChunk> st(
      16, moesim::models::StageChunk{0.048, 0.066, 0.027, 0.093, 0.125, 1e-3});
  st.front() = moesim::models::StageChunk{0.030, 0.045, 0.015, 0.060, 0.080, 1e-3};
  st.back() = moesim::models::StageChunk{0.070, 0.090, 0.035, 0.125, 0.160, 1e-3};
  for (auto _ : state) benchmark::DoNotOptimize(moesim::models::dualpipe_timeline(16, 120, st));
}
BENCHMARK(BM_DualPipeTimeline)->Unit(benchmark::kMicrosecond);

// Scenario parsing, catalog resolution and validation.
void BM_LoadScenario(benchmark::State& state) {
  moesim::Catalog cat({std::string(MOESIM_SOURCE_DIR) + "/scenarios/catalog"});
  const std::string path = std::string(MOESIM_SOURCE_DIR) + "/scenarios/examples/deepseek-v3-2048xH800.json";
  for (auto _ : state) benchmark::DoNotOptimize(moesim::load_scenario(path, cat));
}
BENCHMARK(BM_LoadScenario)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
