#include "models/throughput.hpp"

#include <cmath>
#include <string>

#include "scenarios/error.hpp"

namespace moesim::models {

void finish_throughput(Result& r, const Workload& w, const GpuSpec& gpu) {
  r.tokens_per_second = r.tokens_per_step / r.step_time;
  r.tokens_per_second_per_gpu = r.tokens_per_second / r.gpus;
  r.achieved_tflops_per_gpu = w.model_flops_per_token_noncausal * r.tokens_per_second_per_gpu / 1e12;
  r.mfu = r.achieved_tflops_per_gpu * 1e12 / gpu.flops_bf16;
  r.mfu_causal = w.model_flops_per_token * r.tokens_per_second_per_gpu / gpu.flops_bf16;
  r.gpu_hours_per_trillion_tokens = 1e12 / r.tokens_per_second_per_gpu / 3600.0;
  r.cost_per_trillion_tokens = r.gpu_hours_per_trillion_tokens * gpu.price_per_hour;
}

void check_finite(const Result& r) {
  // The name is a string only for a number that fails (this runs on every evaluation).
  const auto check = [](double v, const auto& what) {
    if (!std::isfinite(v))
      throw Error("a non-finite number reached the result: " + std::string(what) + " = " + std::to_string(v) +
                  " (the inputs passed every check; please report the scenario)");
  };
  const std::pair<double, const char*> scalars[] = {
      {r.tokens_per_step, "tokens_per_step"},
      {r.step_time, "step_time"},
      {r.tokens_per_second, "tokens_per_second"},
      {r.tokens_per_second_per_gpu, "tokens_per_second_per_gpu"},
      {r.model_flops_per_token, "model_flops_per_token"},
      {r.achieved_tflops_per_gpu, "achieved_tflops_per_gpu"},
      {r.mfu, "mfu"},
      {r.mfu_causal, "mfu_causal"},
      {r.gpu_hours_per_trillion_tokens, "gpu_hours_per_trillion_tokens"},
      {r.cost_per_trillion_tokens, "cost_per_trillion_tokens"},
      {r.grad_sync, "grad_sync"},
      {r.balanced_step_time, "balanced_step_time"},
      {r.analytic_step_time, "analytic_step_time"},
      {r.moe_max_over_mean_gpu, "moe_max_over_mean_gpu"},
      {r.moe_dropped_fraction, "moe_dropped_fraction"},
      {r.breakdown.compute, "breakdown.compute"},
      {r.breakdown.exposed_tp, "breakdown.exposed_tp"},
      {r.breakdown.exposed_ep, "breakdown.exposed_ep"},
      {r.breakdown.exposed_cp, "breakdown.exposed_cp"},
      {r.breakdown.bubble, "breakdown.bubble"},
      {r.breakdown.exposed_dp, "breakdown.exposed_dp"},
      {r.breakdown.optimizer, "breakdown.optimizer"},
      {r.memory.total, "memory.total"},
      {r.memory.activations, "memory.activations"}};
  for (const auto& [v, name] : scalars) check(v, name);
  // Names are built only for a number that fails (this runs on every evaluation).
  for (const auto& l : r.layers) {
    const std::pair<double, const char*> fields[] = {{l.forward, "forward"},
                                                     {l.backward_input, "backward_input"},
                                                     {l.backward_weight, "backward_weight"},
                                                     {l.max_over_mean_gpu, "max_over_mean_gpu"}};
    for (const auto& [v, name] : fields)
      if (!std::isfinite(v)) check(v, "layers[" + std::to_string(l.layer) + "]." + name);
  }
  for (std::size_t i = 0; i < r.node_traffic.size(); ++i)
    if (!std::isfinite(r.node_traffic[i]))
      check(r.node_traffic[i], "node_traffic[" + std::to_string(i) + "]");
}

}  // namespace moesim::models
