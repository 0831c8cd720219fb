#include "scenarios/kinds.hpp"

namespace moesim {

const Registry<AttentionKind>& attention_kinds() {
  static const Registry<AttentionKind> r{
      "attention kind",
      "attention kinds (model.attention.kind)",
      {{"mha", "multi-head attention, kv_heads == heads (Vaswani et al. 2017)", AttentionKind::kMha},
       {"gqa", "grouped-query attention, kv_heads divides heads (Ainslie et al. 2023)", AttentionKind::kGqa},
       {"mla", "multi-head latent attention, low-rank compressed K/V (DeepSeek-V2 report §2.1)",
        AttentionKind::kMla}}};
  return r;
}

const Registry<Activation>& activations() {
  static const Registry<Activation> r{
      "activation",
      "FFN activations (model.activation)",
      {{"swiglu", "gated SiLU, three matrices gate/up/down (Shazeer 2020)", Activation::kSwiglu},
       {"gelu", "GELU, two matrices up/down (Hendrycks & Gimpel 2016)", Activation::kGelu},
       {"relu2", "squared ReLU, two matrices up/down (So et al. 2021; Nemotron-H, Nemotron 3)",
        Activation::kRelu2}}};
  return r;
}

const Registry<RouterScore>& router_scores() {
  static const Registry<RouterScore> r{
      "router score",
      "router scoring functions (model.moe.score)",
      {{"softmax", "softmax over the experts' logits (Shazeer et al. 2017)", RouterScore::kSoftmax},
       {"sigmoid", "per-expert sigmoid of the logit (DeepSeek-V3 §2.1.2)", RouterScore::kSigmoid}}};
  return r;
}

const Registry<ScaleUpKind>& scale_up_kinds() {
  static const Registry<ScaleUpKind> r{
      "scale_up.kind",
      "scale-up networks (cluster.scale_up.kind)",
      {{"nvswitch", "every GPU of a domain one hop from every other through NVSwitch (DGX H100)",
        ScaleUpKind::kNvswitch},
       {"none", "no scale-up network: every GPU pair communicates over the scale-out fabric",
        ScaleUpKind::kNone}}};
  return r;
}

const Registry<TopologyKind>& topology_kinds() {
  static const Registry<TopologyKind> r{
      "scale_out.kind",
      "fabric topologies (cluster.scale_out.kind)",
      {{"fat_tree", "one fat tree of radix-port switches, 2 or 3 levels, D-mod-k routing (Al-Fares 2008)",
        TopologyKind::kFatTree},
       {"rail_optimized",
        "`planes` independent fat trees, GPU i of each node on plane i mod planes (DeepSeek-V3 MPFT)",
        TopologyKind::kRailOptimized},
       {"dragonfly", "balanced dragonfly from the radix, minimal local-global-local routing (Kim 2008)",
        TopologyKind::kDragonfly},
       {"torus", "2D/3D wrap-around grid of node routers, dimension-order routing (Dally & Towles)",
        TopologyKind::kTorus}}};
  return r;
}

const Registry<Schedule>& schedules() {
  static const Registry<Schedule> r{
      "schedule",
      "pipeline schedules (parallelism.schedule)",
      {{"1f1b", "one-forward-one-backward (PipeDream-Flush); bubble (PP-1)(F+B)", Schedule::k1F1B},
       {"interleaved", "1F1B over vpp virtual stages per rank (Megatron-LM); bubble (PP-1)(F+B)/vpp",
        Schedule::kInterleaved},
       {"zero_bubble",
        "ZB-H1: weight gradients deferred into the bubble (Qi et al. 2024); bubble (PP-1)(F+B-W), B input "
        "gradients only",
        Schedule::kZeroBubble},
       {"dualpipe",
        "bidirectional DualPipe with overlapped F&B pairs (DeepSeek-V3); bubble (PP/2-1)(F&B+B-3W), B the "
        "full "
        "backward",
        Schedule::kDualPipe}}};
  return r;
}

const Registry<Recompute>& recompute_modes() {
  static const Registry<Recompute> r{
      "recompute",
      "activation recomputation (parallelism.recompute)",
      {{"none", "every activation kept for the backward", Recompute::kNone},
       {"selective",
        "the modules of parallelism.recompute_modules rerun in the backward, their activations dropped "
        "(Korthikanti et al. 2022; default: the attention core)",
        Recompute::kSelective},
       {"full", "each block's forward rerun in the backward; only block inputs kept (Chen et al. 2016)",
        Recompute::kFull}}};
  return r;
}

const Registry<RecomputeMethod>& recompute_methods() {
  static const Registry<RecomputeMethod> r{
      "recompute method",
      "which layers full recomputation reruns (parallelism.recompute_method, Megatron-Core's "
      "--recompute-method)",
      {{"uniform",
        "every layer reruns; each group of recompute_num_layers consecutive layers of a pipeline stage "
        "keeps only its input",
        RecomputeMethod::kUniform},
       {"block",
        "the first recompute_num_layers layers of each pipeline stage (virtual stage) rerun, keeping their "
        "inputs; the others keep every activation",
        RecomputeMethod::kBlock}}};
  return r;
}

const Registry<OffloadModule>& offload_modules() {
  static const Registry<OffloadModule> r{
      "offload module",
      "whose saved input fine-grained activation offloading keeps in host memory between the forward and "
      "the backward (parallelism.offload_modules, Megatron-Core's --offload-modules)",
      {{"expert_fc1", "the routed experts' first GEMM: its input (the dispatched tokens)",
        OffloadModule::kExpertFc1},
       {"moe_act", "the routed experts' activation: its input (the first GEMM's output)",
        OffloadModule::kMoeAct}}};
  return r;
}

const Registry<RecomputeModule>& recompute_modules() {
  static const Registry<RecomputeModule> r{
      "recompute module",
      "what selective recomputation reruns (parallelism.recompute_modules, Megatron-Core's "
      "--recompute-modules)",
      {{"core_attn", "the attention core (softmax(QK^T)V); nothing saved with fused attention kernels",
        RecomputeModule::kCoreAttn},
       {"moe_act", "the experts' activation (SwiGLU); its output is not kept", RecomputeModule::kMoeAct},
       {"layernorm", "the norms before attention and MLP; their outputs are not kept",
        RecomputeModule::kLayernorm},
       {"mla_up_proj", "MLA's query and key-value up-projections and their norms; q, k, v are not kept",
        RecomputeModule::kMlaUpProj},
       {"mlp", "the dense MLP layers (not MoE layers); only their input is kept", RecomputeModule::kMlp},
       {"moe", "the whole MoE layer, all-to-alls included; only its input is kept", RecomputeModule::kMoe},
       {"shared_experts", "the shared experts; their activations are not kept",
        RecomputeModule::kSharedExperts}}};
  return r;
}

const Registry<Precision>& precisions() {
  static const Registry<Precision> r{
      "precision",
      "GEMM precisions (workload.precision)",
      {{"bf16", "BF16 GEMMs, FP32 accumulation", Precision::kBf16},
       {"fp8", "FP8 GEMMs with fine-grained scaling; attention core in BF16 (DeepSeek-V3 §3.3)",
        Precision::kFp8}}};
  return r;
}

const Registry<WorkloadKind>& workload_kinds() {
  static const Registry<WorkloadKind> r{
      "workload kind",
      "workloads (workload.kind)",
      {{"training", "one optimizer step: forward, backward, gradient sync, optimizer",
        WorkloadKind::kTraining},
       {"serving", "inference serving: requests, prefill and decode iterations on serving instances",
        WorkloadKind::kServing}}};
  return r;
}

const Registry<ServingRole>& serving_roles() {
  static const Registry<ServingRole> r{
      "serving role",
      "what a serving instance runs (serving.instances[].role)",
      {{"colocated", "prefill and decode on the same instance, chunked prefill mixed into decode iterations",
        ServingRole::kColocated},
       {"prefill", "prefill only; the KV cache goes to a decode instance over the fabric",
        ServingRole::kPrefill},
       {"decode", "decode only, from KV caches received from prefill instances", ServingRole::kDecode}}};
  return r;
}

const Registry<KvDtype>& kv_dtypes() {
  static const Registry<KvDtype> r{
      "KV cache type",
      "KV cache element types (serving.kv_dtype)",
      {{"bf16", "2 bytes per element", KvDtype::kBf16},
       {"fp8", "1 byte per element (FP8 KV cache; scales are not counted)", KvDtype::kFp8}}};
  return r;
}

const Registry<ExpertDtype>& expert_dtypes() {
  static const Registry<ExpertDtype> r{
      "expert weight type",
      "storage of the routed experts' weights in serving (serving.expert_dtype)",
      {{"auto", "the workload precision's (bf16: 2 bytes, fp8: 1 byte per weight)", ExpertDtype::kAuto},
       {"fp8", "1 byte per weight (block scales not counted)", ExpertDtype::kFp8},
       {"mxfp4", "OCP MX FP4: 4-bit E2M1 values, one 8-bit scale per 32 (4.25 bits per weight)",
        ExpertDtype::kMxfp4},
       {"nvfp4", "NVFP4: 4-bit E2M1 values, one FP8 scale per 16 (4.5 bits per weight)",
        ExpertDtype::kNvfp4}}};
  return r;
}

double expert_weight_bytes(ExpertDtype v) {
  switch (v) {
    case ExpertDtype::kFp8:
      return 1.0;
    case ExpertDtype::kMxfp4:
      return 4.25 / 8;
    case ExpertDtype::kNvfp4:
      return 4.5 / 8;
    case ExpertDtype::kAuto:
      break;
  }
  return 0.0;
}

const Registry<StateDtype>& state_dtypes() {
  static const Registry<StateDtype> r{
      "recurrent state type",
      "element types of a recurrent layer's state in serving (serving.state_dtype)",
      {{"bf16", "2 bytes per element (vLLM's mamba_ssm_cache_dtype \"auto\" with BF16 weights)",
        StateDtype::kBf16},
       {"fp32", "4 bytes per element (mamba_ssm_cache_dtype \"float32\")", StateDtype::kFp32}}};
  return r;
}

const Registry<RequestFormat>& request_formats() {
  static const Registry<RequestFormat> r{
      "request trace format",
      "request trace formats (serving.requests.format, moesim requests --format)",
      {{"auto", "detected from the header line", RequestFormat::kAuto},
       {"moesim", "arrival_s,input_tokens,output_tokens[,cached_tokens]", RequestFormat::kMoesim},
       {"azure", "Azure LLM inference traces: TIMESTAMP,ContextTokens,GeneratedTokens",
        RequestFormat::kAzure},
       {"burstgpt", "BurstGPT: Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type",
        RequestFormat::kBurstGpt}}};
  return r;
}

const Registry<A2aKernel>& a2a_kernels() {
  static const Registry<A2aKernel> r{
      "all-to-all kernel",
      "expert all-to-all kernels of a serving instance (serving.instances[].all_to_all)",
      {{"auto", "low_latency for decode instances, normal otherwise", A2aKernel::kAuto},
       {"normal", "DeepEP normal kernels: NVLink forwarding inside a node, one copy per destination node",
        A2aKernel::kNormal},
       {"low_latency", "DeepEP low-latency kernels: every token copy straight to its GPU over RDMA",
        A2aKernel::kLowLatency}}};
  return r;
}

const Registry<Dtype>& dtypes() {
  static const Registry<Dtype> r{
      "dtype",
      "storage types (workload.grad_dtype, workload.optimizer_state_dtype)",
      {{"fp32", "4 bytes per element", Dtype::kFp32}, {"bf16", "2 bytes per element", Dtype::kBf16}}};
  return r;
}

const Registry<Optimizer>& optimizers() {
  static const Registry<Optimizer> r{
      "optimizer",
      "the optimizer whose states training keeps per parameter (workload.optimizer)",
      {{"adam", "AdamW: two moments per parameter", Optimizer::kAdam},
       {"muon",
        "Muon (Megatron-Core dist_muon, Kimi K2): one momentum per weight matrix, orthogonalised by "
        "Newton-Schulz iterations; the embedding and the output head on AdamW's two moments (norm weights "
        "counted with the matrices)",
        Optimizer::kMuon}}};
  return r;
}

const Registry<DispatchDtype>& dispatch_dtypes() {
  static const Registry<DispatchDtype> r{
      "dispatch dtype",
      "what the forward expert dispatch sends (workload.dispatch_dtype)",
      {{"auto",
        "BF16 in training (Megatron-Core's DeepEP and HybridEP dispatchers send BF16 and quantize after "
        "the dispatch), the GEMMs' precision in serving (DeepEP's FP8 dispatch)",
        DispatchDtype::kAuto},
       {"fp8",
        "FP8 with a 4-byte scale per 128 elements and 16 bytes of routing metadata (DeepSeek-V3 report "
        "§3.3.2; needs precision fp8)",
        DispatchDtype::kFp8},
       {"bf16", "2 bytes per element", DispatchDtype::kBf16}}};
  return r;
}

const Registry<Fp8Recipe>& fp8_recipes() {
  static const Registry<Fp8Recipe> r{
      "FP8 recipe",
      "how FP8 training scales its tensors (workload.fp8_recipe; Transformer Engine's recipes)",
      {{"blockwise",
        "1x128 activation and 128x128 weight scales computed inside the cast (DeepSeek-V3 report §3.3; TE "
        "Float8BlockScaling)",
        Fp8Recipe::kBlockwise},
       {"current",
        "one scale per tensor from its own amax, found by a pass over the tensor before the cast (TE "
        "Float8CurrentScaling: nvte_compute_amax, then the cast)",
        Fp8Recipe::kCurrent},
       {"delayed",
        "one scale per tensor from the amax history; the cast records the new amax (TE DelayedScaling)",
        Fp8Recipe::kDelayed},
       {"mxfp8", "a scale per 32 elements computed inside the cast (Blackwell; TE MXFP8BlockScaling)",
        Fp8Recipe::kMxfp8}}};
  return r;
}

const Registry<DispatchMode>& dispatch_modes() {
  static const Registry<DispatchMode> r{
      "dispatch mode",
      "expert all-to-all modes (workload.dispatch)",
      {{"flat",
        "one copy per (token, expert) pair straight to the expert's GPU, two experts on one GPU included "
        "(NCCL all-to-all: Megatron-Core's alltoall dispatcher)",
        DispatchMode::kFlat},
       {"hierarchical",
        "one copy per destination node over the NIC, then NVLink fan-out, one per destination GPU (DeepEP "
        "normal kernels, HybridEP, DeepSeek-V3 §3.2)",
        DispatchMode::kHierarchical}}};
  return r;
}

const Registry<RoutingMode>& routing_modes() {
  static const Registry<RoutingMode> r{
      "routing mode",
      "routing modes (routing.mode)",
      {{"expected", "closed-form expected shares of a load profile", RoutingMode::kExpected},
       {"sampled", "token-level routing of seeded gate scores by the routing policy", RoutingMode::kSampled},
       {"trace", "recorded routing replayed from a trace (routing.trace)", RoutingMode::kTrace}}};
  return r;
}

const Registry<TraceFormat>& trace_formats() {
  static const Registry<TraceFormat> r{
      "trace format",
      "routing trace formats (routing.trace.format, --trace-format)",
      {{"moesim", "moesim's JSON-lines trace (docs/trace-format.md)", TraceFormat::kMoesim},
       {"megatron", "a folder of Megatron-Core router_trace_rank*.jsonl files", TraceFormat::kMegatron},
       {"count_table", "per-layer expert count table (CSV rows selected by model, kind and domain)",
        TraceFormat::kCountTable}}};
  return r;
}

const Registry<EngineKind>& engine_kinds() {
  static const Registry<EngineKind> r{
      "engine",
      "engines (engine.kind, --engine)",
      {{"analytic", "critical path with schedule formulas (models/analytic.hpp), microseconds per scenario",
        EngineKind::kAnalytic},
       {"des", "discrete-event simulation of the step on SimGrid 3.32 (sim/step_sim.hpp, docs/des.md)",
        EngineKind::kDes}}};
  return r;
}

const Registry<DesGroups>& des_groups() {
  static const Registry<DesGroups> r{
      "engine.groups",
      "simulated EP groups (engine.groups)",
      {{"representative", "one EP group per pipeline stage stands for all (docs/des.md)",
        DesGroups::kRepresentative},
       {"all", "every EP group of every stage simulated", DesGroups::kAll}}};
  return r;
}

const Registry<Aggregation>& aggregations() {
  static const Registry<Aggregation> r{
      "engine.aggregation",
      "fabric flow aggregation (engine.aggregation)",
      {{"auto", "pool or fold flows only where that is exact or the platform limit requires it",
        Aggregation::kAuto},
       {"node", "fold fabric flows per node pair and pool each NVLink domain into one flow",
        Aggregation::kNode},
       {"node_pair", "fold fabric flows per (source node, destination node, plane)", Aggregation::kNodePair},
       {"none", "one flow per GPU pair", Aggregation::kNone}}};
  return r;
}

const Registry<OutputFormat>& output_formats() {
  static const Registry<OutputFormat> r{
      "output format",
      "result formats (outputs.formats, --format)",
      {{"table", "aligned text for a terminal", OutputFormat::kTable},
       {"json", "result.json schema with a context block", OutputFormat::kJson},
       {"csv", "one row per scenario", OutputFormat::kCsv}}};
  return r;
}

const char* to_string(AttentionKind v) {
  return attention_kinds().name_of(v).c_str();
}
const char* to_string(Activation v) {
  return activations().name_of(v).c_str();
}
const char* to_string(RouterScore v) {
  return router_scores().name_of(v).c_str();
}
const char* to_string(ScaleUpKind v) {
  return scale_up_kinds().name_of(v).c_str();
}
const char* to_string(TopologyKind v) {
  return topology_kinds().name_of(v).c_str();
}
const char* to_string(Schedule v) {
  return schedules().name_of(v).c_str();
}
const char* to_string(Recompute v) {
  return recompute_modes().name_of(v).c_str();
}
const char* to_string(RecomputeModule v) {
  return recompute_modules().name_of(v).c_str();
}
const char* to_string(OffloadModule v) {
  return offload_modules().name_of(v).c_str();
}
const char* to_string(Precision v) {
  return precisions().name_of(v).c_str();
}
const char* to_string(WorkloadKind v) {
  return workload_kinds().name_of(v).c_str();
}
const char* to_string(ServingRole v) {
  return serving_roles().name_of(v).c_str();
}
const char* to_string(KvDtype v) {
  return kv_dtypes().name_of(v).c_str();
}
const char* to_string(ExpertDtype v) {
  return expert_dtypes().name_of(v).c_str();
}
const char* to_string(StateDtype v) {
  return state_dtypes().name_of(v).c_str();
}
const char* to_string(RequestFormat v) {
  return request_formats().name_of(v).c_str();
}
const char* to_string(A2aKernel v) {
  return a2a_kernels().name_of(v).c_str();
}
const char* to_string(Optimizer v) {
  return optimizers().name_of(v).c_str();
}
const char* to_string(Fp8Recipe v) {
  return fp8_recipes().name_of(v).c_str();
}
const char* to_string(DispatchDtype v) {
  return dispatch_dtypes().name_of(v).c_str();
}
const char* to_string(Dtype v) {
  return dtypes().name_of(v).c_str();
}
const char* to_string(DispatchMode v) {
  return dispatch_modes().name_of(v).c_str();
}
const char* to_string(RoutingMode v) {
  return routing_modes().name_of(v).c_str();
}
const char* to_string(TraceFormat v) {
  return trace_formats().name_of(v).c_str();
}
const char* to_string(EngineKind v) {
  return engine_kinds().name_of(v).c_str();
}
const char* to_string(DesGroups v) {
  return des_groups().name_of(v).c_str();
}
const char* to_string(Aggregation v) {
  return aggregations().name_of(v).c_str();
}
const char* to_string(OutputFormat v) {
  return output_formats().name_of(v).c_str();
}

std::vector<const RegistryBase*> setting_registries() {
  return {
      &attention_kinds(), &activations(),     &router_scores(),     &scale_up_kinds(),  &topology_kinds(),
      &schedules(),       &recompute_modes(), &recompute_modules(), &offload_modules(), &recompute_methods(),
      &precisions(),      &workload_kinds(),  &serving_roles(),     &a2a_kernels(),     &dtypes(),
      &optimizers(),      &fp8_recipes(),     &dispatch_dtypes(),   &dispatch_modes(),  &routing_modes(),
      &trace_formats(),   &engine_kinds(),    &des_groups(),        &aggregations(),    &request_formats(),
      &kv_dtypes(),       &state_dtypes(),    &expert_dtypes(),     &output_formats()};
}

}  // namespace moesim
