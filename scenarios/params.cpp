#include "scenarios/params.hpp"

#include <cstdio>
#include <cstdlib>

namespace moesim {

std::string exact_quantity(double value, Dimension dim) {
  // The shortest of %.15g, %.16g, %.17g that reads back as the same double.
  char buf[64];
  for (int digits = 15; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  const char* unit = dim == Dimension::kBandwidth  ? "Bps"
                     : dim == Dimension::kTime     ? "s"
                     : dim == Dimension::kFlopRate ? "Flops"
                                                   : "B";
  return std::string(buf) + unit;
}

namespace params {

std::string range_text(int64_t lo, int64_t hi) {
  return "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
}
std::string range_text(double lo, double hi) {
  return "[" + number_text(lo) + ", " + number_text(hi) + "]";
}
std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace params

using namespace params;

const ParamTable<ClusterSpec>& cluster_params() {
  static const ParamTable<ClusterSpec> t{
      "/cluster",
      {text("name", &ClusterSpec::name, "", "cluster name (results name it)"),
       integer("nodes", &ClusterSpec::nodes, 1, kMaxDim, std::nullopt, "nodes"),
       integer("gpus_per_node", &ClusterSpec::gpus_per_node, 1, kMaxDim, std::nullopt,
               "GPUs per node (at most the GPU's max_gpus_per_node)"),
       quantity("all_to_all_overhead", &ClusterSpec::all_to_all_overhead, Dimension::kTime, 1.66e-6,
                "fixed cost of one expert all-to-all beyond the link latency (DeepEP low-latency rows)")}};
  return t;
}

const ParamTable<ScaleUpSpec>& scale_up_params() {
  static const ParamTable<ScaleUpSpec> t{
      "/cluster/scale_up",
      {choice("kind", &ScaleUpSpec::kind, scale_up_kinds, ScaleUpKind::kNvswitch, "scale-up network"),
       derived_quantity<ScaleUpSpec>(
           "bandwidth", &ScaleUpSpec::bandwidth, Dimension::kBandwidth,
           [](const ScaleUpSpec& s) { return s.bandwidth; }, "the GPU's nvlink_bandwidth",
           "achievable per GPU per direction"),
       quantity("latency", &ScaleUpSpec::latency, Dimension::kTime, 3e-6, "one NVLink hop"),
       integer("domain_gpus", &ScaleUpSpec::domain_gpus, 0, kMaxDim, 0,
               "GPUs per NVLink domain (0: gpus_per_node; 72 for NVL72)"),
       number("all_to_all_efficiency", &ScaleUpSpec::all_to_all_efficiency, 0.01, 1.0, 0.85,
              "fraction of bandwidth an expert all-to-all sustains (DeepEP EP8 rows)"),
       number("relay_efficiency", &ScaleUpSpec::relay_efficiency, 0.01, 1.0, 0.76,
              "fraction of bandwidth a hierarchical all-to-all's NVLink leg sustains while it forwards "
              "traffic from other nodes (DeepEP EP16 rows)")}};
  return t;
}

const ParamTable<ScaleOutSpec>& scale_out_params() {
  static const ParamTable<ScaleOutSpec> t{
      "/cluster/scale_out",
      {choice("kind", &ScaleOutSpec::kind, topology_kinds, TopologyKind::kFatTree, "fabric topology"),
       quantity("nic_bandwidth", &ScaleOutSpec::nic_bandwidth, Dimension::kBandwidth, std::nullopt,
                "NIC bandwidth per GPU per direction"),
       quantity("latency", &ScaleOutSpec::latency, Dimension::kTime, 3e-6, "one hop inside a leaf"),
       derived_quantity<ScaleOutSpec>(
           "latency_cross", &ScaleOutSpec::latency_cross, Dimension::kTime,
           [](const ScaleOutSpec& s) { return s.latency; }, "latency", "across leaves and spines"),
       number("oversubscription", &ScaleOutSpec::oversubscription, 1.0, 64.0, 1.0,
              "leaf up-link oversubscription"),
       integer("planes", &ScaleOutSpec::planes, 1, 64, 1, "rail planes (DeepSeek-V3: 8)"),
       integer("levels", &ScaleOutSpec::levels, 1, 3, 2, "switch levels"),
       integer("radix", &ScaleOutSpec::radix, 2, 4096, 64, "switch ports"),
       number("all_to_all_efficiency", &ScaleOutSpec::all_to_all_efficiency, 0.01, 1.0, 0.87,
              "fraction of nic_bandwidth an expert all-to-all sustains (DeepEP EP32/EP64 rows)")}};
  return t;
}

const ParamTable<ParallelismSpec>& attention_parallel_params() {
  static const ParamTable<ParallelismSpec> t{
      "/parallelism/attention",
      {integer("tp", &ParallelismSpec::tp, 1, kMaxDim, 1, "attention tensor parallel"),
       integer("cp", &ParallelismSpec::cp, 1, kMaxDim, 1, "context parallel"),
       integer("dp", &ParallelismSpec::dp, 0, kMaxDim, 0, "data parallel (0: GPUs / (tp·cp·pp))"),
       boolean("sequence_parallel", &ParallelismSpec::sequence_parallel, true,
               "TP with reduce-scatter/all-gather instead of all-reduce")}};
  return t;
}

const ParamTable<ParallelismSpec>& expert_parallel_params() {
  static const ParamTable<ParallelismSpec> t{
      "/parallelism/experts",
      {integer("ep", &ParallelismSpec::ep, 1, kMaxDim, 1, "expert parallel"),
       integer("etp", &ParallelismSpec::etp, 1, kMaxDim, 1, "expert tensor parallel"),
       integer("edp", &ParallelismSpec::edp, 0, kMaxDim, 0,
               "expert data parallel (0: tp·cp·dp / (ep·etp))")}};
  return t;
}

const ParamTable<ParallelismSpec>& parallelism_params() {
  static const ParamTable<ParallelismSpec> t{
      "/parallelism",
      {integer("pp", &ParallelismSpec::pp, 1, kMaxDim, 1, "pipeline stages"),
       integer("vpp", &ParallelismSpec::vpp, 1, 1024, 1, "virtual stages per rank (interleaved schedule)"),
       choice("schedule", &ParallelismSpec::schedule, schedules, Schedule::k1F1B, "pipeline schedule"),
       integer("zero", &ParallelismSpec::zero, 0, 3, 1, "ZeRO stage (distributed optimizer = 1)"),
       choice("recompute", &ParallelismSpec::recompute, recompute_modes, Recompute::kNone,
              "activation recomputation"),
       choices("recompute_modules", &ParallelismSpec::recompute_modules, recompute_modules,
               {RecomputeModule::kCoreAttn},
               "what selective recomputation reruns (Megatron-Core --recompute-modules); ignored unless "
               "recompute is \"selective\""),
       choices("offload_modules", &ParallelismSpec::offload_modules, offload_modules, {},
               "fine-grained activation offloading (Megatron-Core --fine-grained-activation-offloading "
               "--offload-modules): these modules' saved inputs wait in host memory, not on the GPU; the "
               "copies are not priced"),
       choice(
           "recompute_method", &ParallelismSpec::recompute_method, recompute_methods,
           RecomputeMethod::kUniform,
           "with recompute \"full\": uniform (every layer reruns, groups of recompute_num_layers keep "
           "one input) or block (the first recompute_num_layers layers of each stage rerun); Megatron-Core "
           "--recompute-method"),
       integer("recompute_num_layers", &ParallelismSpec::recompute_num_layers, 0, kMaxDim, 0,
               "with recompute \"full\": layers per recomputed group (uniform) or recomputed layers per "
               "stage (block); 0: every layer alone (Megatron-Core --recompute-num-layers)"),
       text("pipeline_layout", &ParallelismSpec::pipeline_layout, std::string(""),
            "Megatron-Core pipeline layout: stages split by '|', E embedding, t decoder layer, m MTP layer, "
            "L loss, X*n and (...)*n repeat, commas ignored, e.g. \"Et|(tt|)*30mL\" (empty: layers split "
            "evenly)"),
       integer("microbatch_size", &ParallelismSpec::microbatch_size, 1, kMaxDim, 1,
               "sequences per microbatch"),
       integer("global_batch", &ParallelismSpec::global_batch, 1, int64_t(1) << 40, std::nullopt,
               "sequences per optimizer step"),
       boolean("overlap_grad_reduce", &ParallelismSpec::overlap_grad_reduce, true,
               "DP gradient reduce-scatter under the backward cool-down"),
       boolean("overlap_param_gather", &ParallelismSpec::overlap_param_gather, false,
               "ZeRO parameter all-gather under the next forward"),
       boolean("ep_overlap", &ParallelismSpec::ep_overlap, false,
               "Megatron-Core combined 1F1B (--overlap-moe-expert-parallel-comm): each steady-state forward "
               "chunk and the backward chunk before it overlap their all-to-alls with each other's compute "
               "(1f1b with pp 1, or interleaved)"),
       boolean("delay_wgrad", &ParallelismSpec::delay_wgrad, false,
               "with ep_overlap: Megatron-Core --delay-wgrad-compute; a model chunk's nodes run in order on "
               "one CUDA event, so only the backward chunk's last attention weight gradients move, past its "
               "pipeline send (discrete-event engine)")}};
  return t;
}

const ParamTable<WorkloadSpec>& workload_params() {
  static const ParamTable<WorkloadSpec> t{
      "/workload",
      {choice("kind", &WorkloadSpec::kind, workload_kinds, WorkloadKind::kTraining, "what is evaluated"),
       integer("seq_len", &WorkloadSpec::seq_len, 1, kMaxDim, std::nullopt, "tokens per sequence"),
       choice("precision", &WorkloadSpec::precision, precisions, Precision::kBf16, "GEMM precision"),
       integer("comm_sms", &WorkloadSpec::comm_sms, 0, 1024, 0,
               "SMs reserved for communication kernels for the whole step (DeepGEMM's set_num_sms)"),
       integer("overlap_comm_sms", &WorkloadSpec::overlap_comm_sms, 0, 1024, 0,
               "SMs the expert all-to-all kernels take from computation that overlaps them: in training "
               "pairs (DualPipe, combined 1F1B) while they run, in serving's two-microbatch iterations for "
               "the whole overlapped computation (Megatron-Core moe_deepep_num_sms, 20 by default for "
               "DeepEP)"),
       choice("grad_dtype", &WorkloadSpec::grad_dtype, dtypes, Dtype::kFp32, "weight-gradient storage"),
       choice("optimizer", &WorkloadSpec::optimizer, optimizers, Optimizer::kAdam,
              "optimizer whose states are kept: adam (two moments per parameter) or muon (one momentum per "
              "weight matrix, the embedding and output head on Adam; Megatron-Core dist_muon)"),
       choice("optimizer_state_dtype", &WorkloadSpec::optimizer_state_dtype, dtypes, Dtype::kFp32,
              "Adam moments (Muon: its momentum)"),
       boolean("master_weights", &WorkloadSpec::master_weights, true, "FP32 master copy of the weights"),
       boolean("causal", &WorkloadSpec::causal, true, "causal attention mask"),
       choice("dispatch", &WorkloadSpec::dispatch, dispatch_modes, DispatchMode::kFlat, "expert all-to-all"),
       boolean("shared_expert_overlap", &WorkloadSpec::shared_expert_overlap, true,
               "shared experts run while dispatch and combine are in flight"),
       choice("dispatch_dtype", &WorkloadSpec::dispatch_dtype, dispatch_dtypes, DispatchDtype::kAuto,
              "what the forward expert dispatch sends: auto (BF16 in training, as Megatron-Core's DeepEP and "
              "HybridEP dispatchers do; the GEMMs' precision in serving, as DeepEP's FP8 dispatch), fp8 "
              "(DeepSeek-V3 §3.3.2; needs precision fp8) or bf16"),
       boolean("fp8_dispatch_grad", &WorkloadSpec::fp8_dispatch_grad, false,
               "backward all-to-all toward the experts in FP8 (DeepSeek-V3 §3.3.2; needs precision fp8)"),
       boolean("activation_fp8_input_store", &WorkloadSpec::activation_fp8_input_store, false,
               "the SwiGLU's input kept for the backward in FP8, not BF16 (Megatron-Core "
               "activation_func_fp8_input_store; needs a SwiGLU model)"),
       integer("bf16_layers_at_start", &WorkloadSpec::bf16_layers_at_start, 0, kMaxDim, 0,
               "with precision fp8: the first decoder layers whose GEMMs stay BF16 (Megatron-Core "
               "--first-last-layers-bf16 --num-layers-at-start-in-bf16)"),
       integer(
           "bf16_layers_at_end", &WorkloadSpec::bf16_layers_at_end, 0, kMaxDim, 0,
           "with precision fp8: the last decoder layers whose GEMMs stay BF16 (--num-layers-at-end-in-bf16)"),
       choice("fp8_recipe", &WorkloadSpec::fp8_recipe, fp8_recipes, Fp8Recipe::kBlockwise,
              "how FP8 GEMM operands are scaled (precision fp8): current scaling adds an amax pass over each "
              "activation and gradient before its cast")}};
  return t;
}

const ParamTable<ServingSpec>& serving_params() {
  static const ParamTable<ServingSpec> t{
      "/serving",
      {quantity("ttft_slo", &ServingSpec::ttft_slo, Dimension::kTime, 0.0,
                "time to first token a request must meet to count as goodput (0: no SLO)"),
       quantity("tpot_slo", &ServingSpec::tpot_slo, Dimension::kTime, 0.0,
                "mean time per output token after the first a request must meet (0: no SLO)"),
       choice("kv_dtype", &ServingSpec::kv_dtype, kv_dtypes, KvDtype::kBf16, "KV cache element type"),
       choice(
           "expert_dtype", &ServingSpec::expert_dtype, expert_dtypes, ExpertDtype::kAuto,
           "storage of the routed experts' weights: their memory, and the weight bytes of the expert GEMMs, "
           "which dequantise them and multiply at the workload precision"),
       choice(
           "state_dtype", &ServingSpec::state_dtype, state_dtypes, StateDtype::kBf16,
           "element type of the recurrent state a hybrid model's Mamba-2 or Gated DeltaNet layer keeps per "
           "sequence"),
       integer("kv_block_tokens", &ServingSpec::kv_block_tokens, 1, 1 << 16, 64,
               "tokens per KV cache block (paged attention allocates whole blocks)"),
       number("kv_memory_fraction", &ServingSpec::kv_memory_fraction, 0.01, 1.0, 0.9,
              "share of the GPU memory left after weights and activations that holds the KV cache"),
       integer("mtp_tokens", &ServingSpec::mtp_tokens, 0, 8, 0,
               "speculative tokens per decode iteration from the model's MTP modules (at most mtp_depth)"),
       number("mtp_acceptance", &ServingSpec::mtp_acceptance, 0.0, 1.0, 0.8,
              "probability that each speculative token is accepted (DeepSeek-V3 report §5.4.3: 0.85-0.9)"),
       integer("decode_batch", &ServingSpec::decode_batch, 0, 1 << 20, 0,
               "analytic engine: sequences per attention-DP rank in a decode batch (0: what the load, the KV "
               "cache and max_running give)"),
       quantity("rebalance_interval", &ServingSpec::rebalance_interval, Dimension::kTime, 0.0,
                "discrete-event engine with routing.mode trace: time between online EPLB rebalances of "
                "each instance's expert placement from the loads routed since the last one (0: never)"),
       quantity("measure_from", &ServingSpec::measure_from, Dimension::kTime, 0.0,
                "discrete-event engine: start of the measurement window after the first arrival (requests "
                "arriving earlier, and work done earlier, are left out of the results: the warm-up)"),
       quantity("measure_until", &ServingSpec::measure_until, Dimension::kTime, 0.0,
                "discrete-event engine: end of the measurement window after the first arrival (0: the end of "
                "the run; the arrival horizon leaves out the drain)"),
       integer("prefix_cache_tokens", &ServingSpec::prefix_cache_tokens, 0, int64_t(1) << 40, 0,
               "prefix cache per prefill-side attention-DP rank, tokens: cached tokens hit only where the "
               "request's prefix (requests.prefix_groups) is resident, LRU (0: one shared cache, every "
               "request's cached tokens hit)"),
       boolean("prefix_routing", &ServingSpec::prefix_routing, false,
               "with prefix_cache_tokens: send a request to the least loaded rank holding its prefix unless "
               "that rank's load exceeds prefix_balance x the least load + 1"),
       number("prefix_balance", &ServingSpec::prefix_balance, 1.0, 1e6, 2.0,
              "prefix_routing: how much busier than the least loaded rank a rank holding the prefix may be"),
       quantity(
           "scheduler_time", &ServingSpec::scheduler_time, Dimension::kTime, 0.0,
           "CPU time an attention-DP rank's scheduler spends per iteration, fixed part (batch selection, "
           "KV block bookkeeping, prefix matching, output processing; 0: none)"),
       quantity(
           "scheduler_time_per_sequence", &ServingSpec::scheduler_time_per_sequence, Dimension::kTime, 0.0,
           "CPU time the scheduler adds per sequence of the iteration's batch (decoding and prefilling)"),
       boolean(
           "overlap_scheduler", &ServingSpec::overlap_scheduler, true,
           "the scheduler prepares the next iteration while the GPUs run this one (SGLang's zero-overhead "
           "scheduler, TensorRT-LLM's overlap scheduler): an iteration takes the longer of the two; off: "
           "their sum")}};
  return t;
}

const ParamTable<ServingInstanceSpec>& serving_instance_params() {
  static const ParamTable<ServingInstanceSpec> t{
      "/serving/instances/*",
      {choice("role", &ServingInstanceSpec::role, serving_roles, ServingRole::kColocated,
              "what the instance runs"),
       integer("count", &ServingInstanceSpec::count, 1, kMaxDim, 1, "instances of this kind"),
       integer("nodes", &ServingInstanceSpec::nodes, 1, kMaxDim, 1, "nodes per instance"),
       integer("tp", &ServingInstanceSpec::tp, 1, kMaxDim, 1,
               "attention tensor parallel (attention data parallel over the instance's other GPUs)"),
       text("gpu", &ServingInstanceSpec::gpu, "",
            "GPU of these nodes, a catalog reference such as \"catalog:h200-sxm\" (\"\": the cluster's)"),
       integer("max_batch_tokens", &ServingInstanceSpec::max_batch_tokens, 1, 1 << 24, 8192,
               "tokens one attention-DP rank computes per iteration (prefill chunks included)"),
       integer("max_running", &ServingInstanceSpec::max_running, 1, 1 << 20, 256,
               "sequences one attention-DP rank holds in its running batch"),
       boolean("two_microbatch", &ServingInstanceSpec::two_microbatch, false,
               "split each iteration's batch in two halves whose all-to-alls run under each other's compute"),
       choice("all_to_all", &ServingInstanceSpec::all_to_all, a2a_kernels, A2aKernel::kAuto,
              "expert all-to-all kernels"),
       integer("redundant_experts", &ServingInstanceSpec::redundant_experts, 0, kMaxDim, 0,
               "extra expert slots per MoE layer holding replicas of the busiest experts (EPLB)")}};
  return t;
}

const ParamTable<RequestSourceSpec>& request_params() {
  static const ParamTable<RequestSourceSpec> t{
      "/serving/requests",
      {text("trace", &RequestSourceSpec::trace, "",
            "request trace, relative to the scenario's folder (\"\": the generator below)"),
       choice("format", &RequestSourceSpec::format, request_formats, RequestFormat::kAuto,
              "request trace format"),
       boolean("skip_failed", &RequestSourceSpec::skip_failed, false,
               "BurstGPT: skip failed requests (0 response tokens) instead of refusing the trace"),
       integer("count", &RequestSourceSpec::count, 1, 10000000, 1000,
               "generator: requests (at most ten million)"),
       number("rate", &RequestSourceSpec::rate, 1e-9, 1e9, 1.0, "generator: mean arrivals per second"),
       number("cv", &RequestSourceSpec::cv, 0.0, 100.0, 1.0,
              "generator: coefficient of variation of the gaps between arrivals (1: Poisson)"),
       text("input", &RequestSourceSpec::input, "fixed:1024",
            "generator: input tokens, fixed:N, uniform:A:B or lognormal:MEDIAN:SIGMA"),
       text("output", &RequestSourceSpec::output, "fixed:256", "generator: output tokens, same forms"),
       number("cached_fraction", &RequestSourceSpec::cached_fraction, 0.0, 1.0, 0.0,
              "generator: share of each prompt served from the prefix cache"),
       integer("seed", &RequestSourceSpec::seed, 0, int64_t(1) << 62, 1, "generator: seed"),
       integer("prefix_groups", &RequestSourceSpec::prefix_groups, 0, int64_t(1) << 24, 0,
               "generator: shared prefixes (system prompts) the cached tokens belong to, drawn by Zipf "
               "popularity (0: none named)"),
       number("prefix_zipf", &RequestSourceSpec::prefix_zipf, 0.0, 10.0, 1.0,
              "generator: Zipf exponent of the shared prefixes' popularity (0: uniform)")}};
  return t;
}

const ParamTable<RoutingSpec>& routing_params() {
  static const ParamTable<RoutingSpec> t{
      "/routing",
      {named("policy", &RoutingSpec::policy, "routing policy", "softmax_topk",
             "how the router picks experts"),
       choice("mode", &RoutingSpec::mode, routing_modes, RoutingMode::kExpected,
              "where routing decisions come from"),
       integer("sample_layers", &RoutingSpec::sample_layers, 1, 1 << 16, 4,
               "sampled: distinct MoE layers drawn, reused cyclically"),
       integer("node_limit", &RoutingSpec::node_limit, 0, kMaxDim, 0,
               "most nodes per token (DeepSeek M; 0: any)"),
       number("capacity_factor", &RoutingSpec::capacity_factor, 0.0, 1024.0, 0.0,
              "expert capacity (0: no dropping)"),
       number("bias_update_speed", &RoutingSpec::bias_update_speed, 0.0, 1.0, 0.001,
              "sigmoid_topk: aux-loss-free bias step (DeepSeek-V3 gamma)"),
       number("threshold", &RoutingSpec::threshold, 0.0, 1.0, 0.1, "threshold policy: least probability"),
       number("top_p", &RoutingSpec::top_p, 0.0, 1.0, 0.5, "top_p policy: least cumulative probability"),
       integer("hash_seed", &RoutingSpec::hash_seed, 0, int64_t(1) << 62, 0, "hash policy: seed"),
       named("capacity_base", &RoutingSpec::capacity_base, "routing policy", "softmax_topk",
             "capacity policy: the policy whose choices it limits")}};
  return t;
}

const ParamTable<LoadSpec>& load_params() {
  static const ParamTable<LoadSpec> t{
      "/routing/load",
      {named("generator", &LoadSpec::generator, "load profile or gate generator", "uniform",
             "expected: a load profile; sampled: a gate-score generator"),
       number("s", &LoadSpec::zipf_s, 0.0, 10.0, 1.0, "zipf exponent"),
       number("alpha", &LoadSpec::alpha, 1e-6, 1e6, 1.0, "dirichlet concentration"),
       number("hot_fraction", &LoadSpec::hot_fraction, 0.0, 1.0, 0.0, "share taken by the hot set"),
       integer("hot_expert", &LoadSpec::hot_expert, 0, kMaxDim, 0, "the hot expert"),
       integer("hot_rank", &LoadSpec::hot_rank, 0, kMaxDim, 0, "the hot EP rank"),
       number("burst_probability", &LoadSpec::burst_probability, 0.0, 1.0, 0.1,
              "bursts: probability of a hot step"),
       number("drift_sigma", &LoadSpec::drift_sigma, 0.0, 100.0, 0.1, "drift: random-walk step of the bias"),
       number("noise_scale", &LoadSpec::noise_scale, 0.0, 100.0, 1.0, "sampled: scale of the Gumbel noise"),
       integer("seed", &LoadSpec::seed, 0, int64_t(1) << 62, 1, "every random choice derives from it")}};
  return t;
}

const ParamTable<TraceSourceSpec>& trace_params() {
  static const ParamTable<TraceSourceSpec> t{
      "/routing/trace",
      {text("path", &TraceSourceSpec::path, std::nullopt,
            "trace file or folder, relative to the scenario's folder"),
       choice("format", &TraceSourceSpec::format, trace_formats, TraceFormat::kMoesim, "trace format"),
       text("model", &TraceSourceSpec::model, "", "count_table: model column"),
       text("kind", &TraceSourceSpec::kind, "expert_counts", "count_table: kind column"),
       text("domain", &TraceSourceSpec::domain, "", "count_table: domain column")}};
  return t;
}

const ParamTable<PlacementSpec>& placement_params() {
  static const ParamTable<PlacementSpec> t{
      "/placement",
      {named("policy", &PlacementSpec::policy, "placement policy", "contiguous",
             "which GPU holds which expert"),
       integer("redundant_experts", &PlacementSpec::redundant_experts, 0, kMaxDim, 0,
               "extra physical slots per layer (replicas)"),
       integer("groups", &PlacementSpec::groups, 0, kMaxDim, 0, "hierarchical EPLB groups (0: the model's)"),
       integer("nodes", &PlacementSpec::nodes, 0, kMaxDim, 0,
               "hierarchical EPLB nodes (0: those one EP group spans)"),
       integer("rebalance_every", &PlacementSpec::rebalance_every, 0, 1 << 30, 0,
               "replay: re-place every N steps (0: never)")}};
  return t;
}

const ParamTable<EngineSpec>& engine_params() {
  static const ParamTable<EngineSpec> t{
      "/engine",
      {choice("kind", &EngineSpec::kind, engine_kinds, EngineKind::kAnalytic, "engine"),
       choice("groups", &EngineSpec::groups, des_groups, DesGroups::kRepresentative,
              "des: EP groups simulated"),
       choice("aggregation", &EngineSpec::aggregation, aggregations, Aggregation::kAuto,
              "des: fabric flow aggregation"),
       integer("microbatches", &EngineSpec::microbatches, 0, 1 << 20, 0,
               "des: simulated microbatches before extrapolation (0: auto)"),
       number("precision", &EngineSpec::precision, 1e-9, 0.1, 1e-4,
              "des: surf/precision, fraction of one all-to-all"),
       integer("timeline_gpus", &EngineSpec::timeline_gpus, -1, 1 << 20, 16,
               "des: GPUs in the Chrome trace (-1: all simulated)")}};
  return t;
}

const ParamTable<OutputSpec>& output_params() {
  static const ParamTable<OutputSpec> t{
      "/outputs",
      {text("dir", &OutputSpec::dir, "", "output directory, relative to the scenario's folder (\"\": none)"),
       choices("formats", &OutputSpec::formats, output_formats, {OutputFormat::kTable}, "result formats")}};
  return t;
}

const ParamTable<Scenario>& top_level_params() {
  static const ParamTable<Scenario> t{
      "",
      {integer("schema_version", &Scenario::schema_version, 1, 1, 1, "scenario format version"),
       text("name", &Scenario::name, std::nullopt, "scenario name"),
       text(
           "calibration", &Scenario::calibration, "",
           "calibration file pricing compute, relative to the scenario's folder (\"\": roofline defaults)")}};
  return t;
}

std::vector<ParamInfo> scenario_parameters() {
  std::vector<ParamInfo> out;
  auto add = [&](const std::vector<ParamInfo>& v) { out.insert(out.end(), v.begin(), v.end()); };
  add(top_level_params().infos());
  add(model_params().infos());
  add(attention_params().infos());
  add(moe_params().infos());
  add(mamba_params().infos());
  add(gdn_params().infos());
  add(cluster_params().infos());
  add(gpu_params().infos());
  add(scale_up_params().infos());
  add(scale_out_params().infos());
  add(attention_parallel_params().infos());
  add(expert_parallel_params().infos());
  add(parallelism_params().infos());
  add(workload_params().infos());
  add(serving_params().infos());
  add(serving_instance_params().infos());
  add(request_params().infos());
  add(routing_params().infos());
  add(load_params().infos());
  add(trace_params().infos());
  add(placement_params().infos());
  add(engine_params().infos());
  add(output_params().infos());
  add(reference_params().infos());
  add(reference_phase_params().infos());
  return out;
}

std::string parameters_markdown() {
  auto cell = [](std::string s) {
    std::string out;
    for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
    return out;
  };
  std::string md = "| parameter | type and range | default | meaning |\n|---|---|---|---|\n";
  for (const auto& p : scenario_parameters())
    md += "| `" + p.pointer + "` | " + cell(p.type) + " | " + cell(p.default_text) + " | " + cell(p.help) +
          " |\n";
  return md;
}

}  // namespace moesim
