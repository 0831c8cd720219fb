#pragma once
/// \file What a step time is worth: throughput, MFU and cost. The one finisher both engines apply to
/// their Result once its step time is known.

#include "models/result.hpp"
#include "models/workload.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::models {

/// Fills r's tokens/s (whole job and per GPU), achieved TFLOP/s per GPU and MFU (non-causal model FLOPs
/// per token of `w`, as Megatron and DeepSeek report, over the GPU's BF16 dense peak), causal MFU,
/// GPU-hours and USD per trillion tokens (0 when the GPU has no price) from r.step_time (s),
/// r.tokens_per_step and r.gpus.
void finish_throughput(Result& r, const Workload& w, const GpuSpec& gpu);

/// Throws moesim::Error (an internal error, exit 1) naming the first number of `r` that is infinite or
/// NaN: inputs that pass every check must not produce one, and no result may carry one to an output.
void check_finite(const Result& r);

}  // namespace moesim::models
