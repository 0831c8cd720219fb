#pragma once
/// \file Every enum-like scenario setting, each with the one registry that parses its names and gives
/// them back (scenarios/registry.hpp). No code compares a setting's name as a string: the loader
/// parses it here once, and everything downstream switches on the enumerator.

#include "scenarios/registry.hpp"

namespace moesim {

/// Attention variants. MHA: kv_heads == heads; GQA: kv_heads < heads; MLA: DeepSeek's multi-head latent
/// attention with low-rank compressed queries and keys/values (DeepSeek-V2 report §2.1).
enum class AttentionKind { kMha, kGqa, kMla };
/// FFN activation: SwiGLU has three weight matrices (gate, up, down), GELU two.
enum class Activation { kSwiglu, kGelu, kRelu2 };
/// Router scoring function.
enum class RouterScore { kSoftmax, kSigmoid };
/// Scale-up (intra-domain) network.
enum class ScaleUpKind { kNvswitch, kNone };
/// Scale-out fabric topologies (sim/topology.hpp builds each).
enum class TopologyKind { kFatTree, kRailOptimized, kDragonfly, kTorus };
/// Pipeline schedules (models/schedule.hpp prices each, models/schedule_order.hpp orders its chunks).
enum class Schedule { k1F1B, kInterleaved, kZeroBubble, kDualPipe };
/// Activation recomputation.
enum class Recompute { kNone, kSelective, kFull };
/// Which layers full recomputation reruns (Megatron-Core's --recompute-method).
enum class RecomputeMethod { kUniform, kBlock };
/// What selective recomputation reruns (Megatron-Core's --recompute-modules).
enum class RecomputeModule { kCoreAttn, kMoeAct, kLayernorm, kMlaUpProj, kMlp, kMoe, kSharedExperts };
/// Whose saved input fine-grained activation offloading moves to host memory (Megatron-Core's
/// --fine-grained-activation-offloading --offload-modules).
enum class OffloadModule { kExpertFc1, kMoeAct };
/// GEMM precision.
enum class Precision { kBf16, kFp8 };
/// What is evaluated.
enum class WorkloadKind { kTraining, kServing };
/// What a serving instance runs: prefill and decode together, or one phase (disaggregated serving).
enum class ServingRole { kColocated, kPrefill, kDecode };
/// Which expert all-to-all kernels a serving instance uses: DeepEP's normal (throughput) kernels, its
/// low-latency kernels (every token copy straight over the NIC), or the role's usual choice.
enum class A2aKernel { kAuto, kNormal, kLowLatency };
/// What the forward expert dispatch sends under FP8 training or serving: "auto" is BF16 in training
/// (Megatron-Core's DeepEP and HybridEP dispatchers quantize after the dispatch) and the GEMMs' precision in
/// serving (DeepEP's FP8 dispatch, as SGLang and DeepSeek's inference run it).
enum class DispatchDtype { kAuto, kFp8, kBf16 };
/// Storage type of gradients and optimizer states.
enum class Dtype { kFp32, kBf16 };
/// The optimizer whose states training keeps.
enum class Optimizer { kAdam, kMuon };
/// How FP8 training scales its tensors (Transformer Engine's recipes).
enum class Fp8Recipe { kBlockwise, kCurrent, kDelayed, kMxfp8 };
/// How the expert all-to-all moves tokens.
enum class DispatchMode { kFlat, kHierarchical };
/// Where routing decisions come from.
enum class RoutingMode { kExpected, kSampled, kTrace };
/// Routing trace file formats.
enum class TraceFormat { kMoesim, kMegatron, kCountTable };
/// Engines evaluating a scenario.
enum class EngineKind { kAnalytic, kDes };
/// Discrete-event engine: which EP groups are simulated.
enum class DesGroups { kRepresentative, kAll };
/// Discrete-event engine: how fabric flows are aggregated.
enum class Aggregation { kAuto, kNode, kNodePair, kNone };
/// KV cache element type.
enum class KvDtype { kBf16, kFp8 };
/// Element type of a recurrent layer's state in serving (Mamba-2's SSM state, Gated DeltaNet's state).
enum class StateDtype { kBf16, kFp32 };
/// Storage of the routed experts' weights in serving (packed low-bit formats are dequantised in the kernel).
enum class ExpertDtype { kAuto, kFp8, kMxfp4, kNvfp4 };
/// Request trace formats for serving (traces/requests.hpp documents their columns).
enum class RequestFormat { kAuto, kMoesim, kAzure, kBurstGpt };
/// Result formats printed or written.
enum class OutputFormat { kTable, kJson, kCsv };

const Registry<AttentionKind>& attention_kinds();
const Registry<Activation>& activations();
const Registry<RouterScore>& router_scores();
const Registry<ScaleUpKind>& scale_up_kinds();
const Registry<TopologyKind>& topology_kinds();
const Registry<Schedule>& schedules();
const Registry<Recompute>& recompute_modes();
const Registry<RecomputeModule>& recompute_modules();
const Registry<OffloadModule>& offload_modules();
const Registry<RecomputeMethod>& recompute_methods();
const Registry<Precision>& precisions();
const Registry<WorkloadKind>& workload_kinds();
const Registry<ServingRole>& serving_roles();
const Registry<A2aKernel>& a2a_kernels();
const Registry<Dtype>& dtypes();
const Registry<Optimizer>& optimizers();
const Registry<Fp8Recipe>& fp8_recipes();
const Registry<DispatchDtype>& dispatch_dtypes();
const Registry<DispatchMode>& dispatch_modes();
const Registry<RoutingMode>& routing_modes();
const Registry<TraceFormat>& trace_formats();
const Registry<EngineKind>& engine_kinds();
const Registry<DesGroups>& des_groups();
const Registry<Aggregation>& aggregations();
const Registry<RequestFormat>& request_formats();
const Registry<KvDtype>& kv_dtypes();
const Registry<StateDtype>& state_dtypes();
const Registry<ExpertDtype>& expert_dtypes();
const Registry<OutputFormat>& output_formats();

/// The name of a setting's value, e.g. to_string(Schedule::kDualPipe) == "dualpipe".
const char* to_string(AttentionKind v);
const char* to_string(Activation v);
const char* to_string(RouterScore v);
const char* to_string(ScaleUpKind v);
const char* to_string(TopologyKind v);
const char* to_string(Schedule v);
const char* to_string(Recompute v);
const char* to_string(RecomputeModule v);
const char* to_string(OffloadModule v);
const char* to_string(Precision v);
const char* to_string(WorkloadKind v);
const char* to_string(ServingRole v);
const char* to_string(A2aKernel v);
const char* to_string(RequestFormat v);
const char* to_string(KvDtype v);
const char* to_string(StateDtype v);
const char* to_string(ExpertDtype v);
/// Bytes per element of a routed expert weight stored as `v` (kAuto: 0, the workload precision's).
double expert_weight_bytes(ExpertDtype v);
const char* to_string(Dtype v);
const char* to_string(Optimizer v);
const char* to_string(Fp8Recipe v);
const char* to_string(DispatchDtype v);
const char* to_string(DispatchMode v);
const char* to_string(RoutingMode v);
const char* to_string(TraceFormat v);
const char* to_string(EngineKind v);
const char* to_string(DesGroups v);
const char* to_string(Aggregation v);
const char* to_string(OutputFormat v);

/// Bytes per element of a storage type.
inline double bytes_of(Dtype d) {
  return d == Dtype::kFp32 ? 4.0 : 2.0;
}

/// Every settings registry, for `moesim list`.
std::vector<const RegistryBase*> setting_registries();

}  // namespace moesim
