#include "models/throughput.hpp"

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

}  // namespace moesim::models
