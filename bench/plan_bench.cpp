// The planner's search (plan/search.hpp) on the bundled plans: candidates evaluated per second on one
// core (items processed = layouts priced by the analytic engine; a batch ramp prices each twice).
#include <benchmark/benchmark.h>

#include <string>

#include "plan/plan_file.hpp"
#include "plan/search.hpp"

namespace {

// `max_gpus` > 0 replaces every hardware entry's largest cluster.
void run_plan(benchmark::State& state, const char* file, int max_gpus = 0) {
  moesim::plan::PlanSpec p =
      moesim::plan::read_plan(std::string(MOESIM_SOURCE_DIR) + "/scenarios/plans/" + file, moesim::Catalog());
  if (max_gpus > 0)
    for (auto& h : p.hardware) h.max_gpus = max_gpus;
  int64_t evaluated = 0;
  for (auto _ : state) {
    const moesim::plan::PlanResult r = moesim::plan::search(p, nullptr);
    evaluated += r.counts.evaluated;
    benchmark::DoNotOptimize(r.best.data());
  }
  state.SetItemsProcessed(evaluated);
}

void BM_PlanDeepSeekV3(benchmark::State& state) {
  run_plan(state, "deepseek-v3-h800.json");
}
BENCHMARK(BM_PlanDeepSeekV3)->Unit(benchmark::kMillisecond);

// The same question on up to 4096 GPUs: twice the cluster sizes, 10,608 layouts priced per search.
void BM_PlanDeepSeekV3_4096(benchmark::State& state) {
  run_plan(state, "deepseek-v3-h800.json", 4096);
}
BENCHMARK(BM_PlanDeepSeekV3_4096)->Unit(benchmark::kMillisecond);

void BM_PlanQwen3_30B(benchmark::State& state) {
  run_plan(state, "qwen3-30b-h100.json");
}
BENCHMARK(BM_PlanQwen3_30B)->Unit(benchmark::kMillisecond);

}  // namespace
