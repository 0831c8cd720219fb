#pragma once
/// \file The scenario vocabulary: plain structs with SI units (bytes, seconds, bytes/s, flop/s), filled
/// from a scenario file by scenarios/loader.hpp and checked by scenarios/validate.hpp. Every engine,
/// cost model and report reads these and nothing else.

#include <cmath>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scenarios/kinds.hpp"
#include "scenarios/layout.hpp"

namespace moesim {

// ------------------------------------------------------------------------------------------- model

struct AttentionSpec {
  AttentionKind kind = AttentionKind::kMha;
  int heads = 0;                 ///< query heads
  int kv_heads = 0;              ///< key/value heads (MHA: = heads; ignored for MLA)
  int head_dim = 0;              ///< query/key head dim; for MLA the non-rotary part (qk_nope_head_dim)
  int v_head_dim = 0;            ///< value head dim (0: = head_dim)
  int q_lora_rank = 0;           ///< MLA: query compression rank (0: no compression)
  int kv_lora_rank = 0;          ///< MLA: key/value compression rank
  int rope_head_dim = 0;         ///< MLA: decoupled rotary dim per head
  int sliding_window = 0;        ///< tokens; 0 = full attention
  int sliding_window_every = 0;  ///< every k-th layer uses the window (GPT-OSS alternates: 2); 0 = all
  bool qkv_bias = false;
  bool output_gate = false;  ///< gated attention (Qwen3-Next): q_proj also yields a per-head sigmoid gate
};

struct MoeSpec {
  int experts = 0;             ///< routed experts per MoE layer (0: dense model)
  int top_k = 0;               ///< routed experts per token
  int expert_ffn = 0;          ///< intermediate size of one routed expert
  int shared_experts = 0;      ///< always-active shared experts
  int shared_ffn = 0;          ///< intermediate size of one shared expert (0: = expert_ffn)
  int first_dense_layers = 0;  ///< leading layers with a dense FFN instead of MoE (DeepSeek first_k_dense)
  int layer_freq = 1;          ///< every layer_freq-th layer (after the dense ones) is MoE
  int groups = 1;              ///< expert groups for group-limited routing (DeepSeek n_group)
  int topk_groups = 0;         ///< groups a token may use (DeepSeek topk_group); 0 = all
  RouterScore score = RouterScore::kSoftmax;  ///< router scoring
};

/// A Mamba-2 mixer layer (Dao & Gu 2024, "Transformers are SSMs", state space duality): in_proj h ->
/// [z, x, B, C, dt], a causal depthwise convolution over [x, B, C], the chunked SSD scan, a gated RMSNorm
/// and out_proj d_inner -> h, with d_inner = heads x head_dim (Megatron-Core MambaMixer).
struct MambaSpec {
  int heads = 0;         ///< SSM heads (0: the model has no Mamba layers)
  int head_dim = 0;      ///< channels per head (P)
  int state_dim = 0;     ///< SSM state size (N, d_state)
  int groups = 1;        ///< B/C groups (G, n_groups), a divisor of heads
  int conv_kernel = 4;   ///< causal convolution width (d_conv)
  int chunk_size = 128;  ///< SSD chunk length (Q)
  double inner() const { return double(heads) * head_dim; }
};

/// A Gated DeltaNet mixer layer (Yang, Kautz & Hatamizadeh 2025; Qwen3-Next, Qwen3.5): in_proj h -> [q, k,
/// v, z, beta, alpha], a causal depthwise convolution over [q, k, v], L2-normed q and k, the chunked gated
/// delta rule (flash-linear-attention's chunk_gated_delta_rule), a gated RMSNorm per value head and
/// out_proj (Megatron-Core's GatedDeltaNet).
struct GatedDeltaNetSpec {
  int key_heads = 0;       ///< query/key heads (0: the model has no Gated DeltaNet layers)
  int value_heads = 0;     ///< value heads (a multiple of key_heads)
  int key_head_dim = 0;    ///< dk
  int value_head_dim = 0;  ///< dv
  int conv_kernel = 4;     ///< causal convolution width
  int chunk_size = 64;     ///< chunk length of the chunked delta rule
  double qk_dim() const { return double(key_heads) * key_head_dim; }
  double v_dim() const { return double(value_heads) * value_head_dim; }
};

struct ModelSpec {
  std::string name;
  int layers = 0;  ///< transformer blocks (excluding MTP modules); with a layer_pattern, its layers
  int hidden = 0;
  int vocab = 0;
  int dense_ffn = 0;  ///< intermediate size of a dense FFN layer
  Activation activation = Activation::kSwiglu;
  bool tied_embeddings = false;
  int mtp_depth = 0;  ///< multi-token-prediction modules (DeepSeek-V3: 1), each one extra block
  AttentionSpec attention;
  MoeSpec moe;
  MambaSpec mamba;
  GatedDeltaNetSpec gdn;
  /// Hybrid models (Megatron-Core hybrid_layer_pattern, Hugging Face hybrid_override_pattern): one
  /// character per layer, each layer one sub-layer with its own pre-norm and residual: 'M' a Mamba-2
  /// mixer, 'G' a Gated DeltaNet mixer, '*' attention, '-' a dense MLP, 'E' an MoE layer. Empty: every layer
  /// is a transformer block (attention, then a dense MLP or an MoE layer as first_dense_layers and layer_freq
  /// say).
  std::string layer_pattern;
  double published_total_params = 0;  ///< from the model card, for checks (0 = unknown)
  double published_active_params = 0;
  std::string source;  ///< citation of the dimensions
};

// -------------------------------------------------------------------------------------------- gpu

/// Datasheet peaks plus the achievable fractions the roofline cost model uses until a measured
/// calibration replaces it.
struct GpuSpec {
  std::string name;
  double flops_bf16 = 0;        ///< dense peak, flop/s
  double flops_fp8 = 0;         ///< dense peak, flop/s (0: no FP8)
  double flops_fp32 = 0;        ///< non-tensor FP32 peak, flop/s
  double memory_bytes = 0;      ///< HBM capacity, bytes
  double memory_bandwidth = 0;  ///< HBM bandwidth, bytes/s
  int sm_count = 0;
  double nvlink_bandwidth = 0;        ///< per direction per GPU, bytes/s
  int max_gpus_per_node = 8;          ///< GPUs one node (baseboard) holds
  double gemm_efficiency_bf16 = 0.8;  ///< achievable fraction of flops_bf16 for large GEMMs
  double gemm_efficiency_fp8 = 0.67;  ///< achievable fraction of flops_fp8 for large GEMMs
  double attention_efficiency = 0.6;  ///< achievable fraction of flops_bf16 for fused attention (fwd)
  double attention_backward_efficiency = 0.45;  ///< same for the backward pass
  double memory_efficiency = 0.9;  ///< achievable fraction of memory_bandwidth for streaming kernels
  double kernel_launch = 4e-6;     ///< fixed cost per kernel, s
  double price_per_hour = 0;       ///< USD per GPU-hour (0 = unknown)
  /// Default calibration pricing compute on this GPU when the scenario names none: "catalog:NAME"
  /// (scenarios/catalog/calibrations/NAME.json); "": the roofline defaults above.
  std::string calibration;
  std::string source;
  bool operator==(const GpuSpec&) const = default;
};

// ---------------------------------------------------------------------------------------- cluster

struct ScaleUpSpec {
  ScaleUpKind kind = ScaleUpKind::kNvswitch;
  double bandwidth = 0;  ///< achievable per GPU per direction, bytes/s
  double latency = 0;    ///< s
  int domain_gpus = 0;   ///< GPUs per NVLink domain (0: = gpus_per_node; 72 for NVL72)
  /// Fraction of `bandwidth` an expert all-to-all kernel sustains on NVLink (DeepEP normal kernels).
  double all_to_all_efficiency = 0.85;
  /// Fraction of `bandwidth` the NVLink leg of a hierarchical all-to-all sustains when the group spans
  /// nodes and the leg forwards what arrived over RDMA (DeepEP's internode normal kernels).
  double relay_efficiency = 0.76;
};

struct ScaleOutSpec {
  TopologyKind kind = TopologyKind::kFatTree;
  double nic_bandwidth = 0;       ///< per GPU per direction, bytes/s
  double latency = 0;             ///< s, one hop inside a leaf
  double latency_cross = 0;       ///< s, across leaves/spines (0: = latency)
  double oversubscription = 1.0;  ///< leaf up-link oversubscription (2.0 = 2:1)
  int planes = 1;                 ///< rail planes (DeepSeek: 8)
  int levels = 2;
  int radix = 64;  ///< switch ports
  /// Fraction of `nic_bandwidth` an expert all-to-all kernel sustains over RDMA (DeepEP normal kernels).
  double all_to_all_efficiency = 0.87;
};

struct ClusterSpec {
  std::string name;
  GpuSpec gpu;
  int nodes = 0;
  int gpus_per_node = 0;
  ScaleUpSpec scale_up;
  ScaleOutSpec scale_out;
  double all_to_all_overhead = 1.66e-6;  ///< s, fixed cost of one expert all-to-all beyond link latency
  int gpus() const { return nodes * gpus_per_node; }
};

// ------------------------------------------------------------------------------------ parallelism

struct ParallelismSpec {
  int tp = 1;  ///< attention tensor parallel
  int cp = 1;  ///< context parallel
  int dp = 0;  ///< attention data parallel as given (0: derived); the derived degree is Layout::dp
  bool sequence_parallel = true;  ///< TP with reduce-scatter/all-gather instead of all-reduce
  int ep = 1;                     ///< expert parallel
  int etp = 1;                    ///< expert tensor parallel
  int edp = 0;  ///< expert data parallel as given (0: derived); the derived degree is Layout::edp
  int pp = 1;
  int vpp = 1;  ///< virtual stages per rank (interleaved schedule)
  Schedule schedule = Schedule::k1F1B;
  int zero = 1;  ///< ZeRO stage 0..3 (distributed optimizer = 1)
  Recompute recompute = Recompute::kNone;
  /// What "selective" recomputes (Megatron-Core's default: the attention core); unused otherwise.
  std::vector<RecomputeModule> recompute_modules{RecomputeModule::kCoreAttn};
  /// Fine-grained activation offloading: the modules whose saved inputs wait in host memory between the
  /// forward and the backward instead of on the GPU (memory only; the copies are not priced).
  std::vector<OffloadModule> offload_modules;
  /// With "full": which layers rerun (Megatron-Core's --recompute-method) and how many
  /// (--recompute-num-layers; 0: unset, every layer alone).
  RecomputeMethod recompute_method = RecomputeMethod::kUniform;
  int recompute_num_layers = 0;
  /// Megatron-Core's pipeline layout (scenarios/pipeline_layout.hpp); empty: layers split evenly.
  std::string pipeline_layout;
  int microbatch_size = 1;            ///< sequences per microbatch
  int64_t global_batch = 1;           ///< sequences per optimizer step
  bool overlap_grad_reduce = true;    ///< overlap DP gradient reduce-scatter with the backward cool-down
  bool overlap_param_gather = false;  ///< hide the ZeRO parameter all-gather under the next forward
  /// Megatron-Core's combined 1F1B (`--overlap-moe-expert-parallel-comm`): in the steady state of 1F1B
  /// and interleaved schedules, each forward chunk and the backward chunk after it run as one overlapped
  /// pair, one's all-to-all under the other's computation (as a DualPipe pair does).
  bool ep_overlap = false;
  /// Megatron-Core's `--delay-wgrad-compute` (with ep_overlap only): a model chunk's nodes run in order on
  /// one CUDA event, so only the backward chunk's last attention weight gradients move, past its pipeline
  /// send.
  bool delay_wgrad = false;
};

// --------------------------------------------------------------------------------------- workload

struct WorkloadSpec {
  WorkloadKind kind = WorkloadKind::kTraining;
  int seq_len = 4096;
  Precision precision = Precision::kBf16;  ///< GEMM precision (attention core stays BF16)
  int comm_sms = 0;                        ///< SMs reserved for communication kernels
  int overlap_comm_sms = 0;  ///< SMs the all-to-all kernels take from computation that runs beside them
  Dtype grad_dtype = Dtype::kFp32;             ///< weight-gradient storage
  Optimizer optimizer = Optimizer::kAdam;      ///< whose states are kept (AdamW: two moments)
  Dtype optimizer_state_dtype = Dtype::kFp32;  ///< Adam moments (Muon's momentum)
  bool master_weights = true;                  ///< FP32 master copy
  bool causal = true;
  /// all-to-all: one copy per (token, expert) slot (NCCL, Megatron-Core's alltoall dispatcher), or one
  /// copy per destination node over the NIC, then NVLink fan-out (DeepEP normal kernels, HybridEP)
  DispatchMode dispatch = DispatchMode::kFlat;
  bool shared_expert_overlap = true;  ///< shared experts run while dispatch is in flight
  /// The backward all-to-all in the dispatch direction (the combine's gradient) sends FP8 activation
  /// gradients with their scales, as DeepSeek-V3 does (report §3.3.2); needs precision fp8.
  bool fp8_dispatch_grad = false;
  /// What the forward dispatch sends (auto: BF16 in training, the GEMMs' precision in serving).
  DispatchDtype dispatch_dtype = DispatchDtype::kAuto;
  /// The input of the MLP and expert SwiGLU kept for the backward in FP8 instead of BF16 (Megatron-Core
  /// activation_func_fp8_input_store; DeepSeek-V3 caches it so, report §3.3.3). Only the activation's
  /// saved input changes: recomputing its output is `moe_act` (or `mlp`) in the recompute modules.
  bool activation_fp8_input_store = false;
  Fp8Recipe fp8_recipe = Fp8Recipe::kBlockwise;  ///< how FP8 GEMM operands are scaled (precision fp8)
  /// With precision fp8: decoder layers kept in BF16 at the start and at the end of the model
  /// (Megatron-Core --first-last-layers-bf16, --num-layers-at-start-in-bf16, --num-layers-at-end-in-bf16).
  int bf16_layers_at_start = 0;
  int bf16_layers_at_end = 0;
};

/// Text read once and shared by every copy of a scenario (a calibration file of tens of kilobytes):
/// copying a scenario, as the planner does for every layout, copies a pointer, not the text.
class SharedText {
 public:
  SharedText() = default;
  SharedText(std::string text) : text_(std::make_shared<const std::string>(std::move(text))) {}  // NOLINT
  SharedText& operator=(std::string text) {
    text_ = std::make_shared<const std::string>(std::move(text));
    return *this;
  }
  /// The text ("" when none was read).
  const std::string& str() const { return text_ ? *text_ : empty_text(); }
  bool empty() const { return str().empty(); }
  /// Whether both hold the very same buffer (then their texts are equal without comparing them).
  bool same_buffer(const SharedText& o) const { return text_ != nullptr && text_ == o.text_; }

 private:
  static const std::string& empty_text() {
    static const std::string e;
    return e;
  }
  std::shared_ptr<const std::string> text_;
};

// ---------------------------------------------------------------------------------------- serving

/// One kind of serving instance (a deployment unit: the GPUs that hold one copy of the model) and how
/// many of it run. An instance spans `nodes` nodes of the cluster's shape; attention runs tensor-parallel
/// over `tp` GPUs and data-parallel over the instance's GPUs / tp; the MoE layers run expert-parallel
/// over all of the instance's GPUs (DeepSeek/SGLang style).
struct ServingInstanceSpec {
  ServingRole role = ServingRole::kColocated;
  int count = 1;  ///< instances of this kind
  int nodes = 1;  ///< nodes per instance
  int tp = 1;     ///< attention tensor parallel
  /// The GPU of this kind's nodes: a catalog reference ("catalog:h800-sxm") or empty for the cluster's.
  std::string gpu;
  GpuSpec gpu_spec;                 ///< resolved: the named GPU, or the cluster's
  std::string gpu_calibration;      ///< resolved default calibration file of gpu_spec ("" = roofline)
  SharedText gpu_calibration_text;  ///< its text, read by the loader
  int max_batch_tokens = 8192;      ///< tokens one attention-DP rank computes per iteration (chunked prefill)
  int max_running = 256;            ///< sequences one attention-DP rank holds in its running batch
  /// Decode: the two halves of the batch alternate so that one half's expert all-to-all runs under the
  /// other's computation (DeepSeek's two-microbatch overlap).
  bool two_microbatch = false;
  A2aKernel all_to_all = A2aKernel::kAuto;
  int redundant_experts = 0;  ///< extra expert slots per MoE layer (EPLB replicas of the busiest experts)
};

/// Where requests come from: a request trace (traces/requests.hpp) or the seeded generator.
struct RequestSourceSpec {
  std::string trace;  ///< request trace path (resolved against the scenario's folder); "" = generator
  RequestFormat format = RequestFormat::kAuto;
  bool skip_failed = false;          ///< BurstGPT: skip failed requests (0 response tokens), counting them
  int64_t count = 1000;              ///< generator: requests
  double rate = 1;                   ///< generator: mean arrivals per second
  double cv = 1;                     ///< generator: coefficient of variation of the gaps (1: Poisson)
  std::string input = "fixed:1024";  ///< generator: input length distribution (traces::LengthDist)
  std::string output = "fixed:256";  ///< generator: output length distribution
  double cached_fraction = 0;        ///< generator: share of each prompt served from the prefix cache
  uint64_t seed = 1;
  int64_t prefix_groups = 0;  ///< generator: shared prefixes the cached tokens belong to (0: none named)
  double prefix_zipf = 1.0;   ///< generator: Zipf exponent of the prefixes' popularity (0: uniform)
};

struct ServingSpec {
  std::vector<ServingInstanceSpec> instances;
  RequestSourceSpec requests;
  double ttft_slo = 0;  ///< s, time to first token a request must meet to count as goodput (0: none)
  double tpot_slo = 0;  ///< s, mean time per output token after the first (0: none)
  KvDtype kv_dtype = KvDtype::kBf16;              ///< KV cache element type
  StateDtype state_dtype = StateDtype::kBf16;     ///< recurrent layers' state element type (hybrid models)
  ExpertDtype expert_dtype = ExpertDtype::kAuto;  ///< storage of the routed experts' weights
  int kv_block_tokens = 64;                       ///< tokens per KV cache block (paged attention)
  double kv_memory_fraction = 0.9;  ///< share of the memory left after weights given to the KV cache
  int mtp_tokens = 0;               ///< speculative tokens per iteration from the MTP modules
  double mtp_acceptance = 0.8;      ///< probability each speculative token is accepted
  /// Analytic engine: sequences per attention-DP rank in a decode batch (0: what the load, the KV cache and
  /// max_running allow).
  int decode_batch = 0;
  /// Discrete-event engine with routing.mode "trace": simulated seconds between online EPLB rebalances of
  /// each instance kind's expert placement from the loads its iterations routed since the last one (0:
  /// the placement stays the one computed from the whole trace's mean loads).
  double rebalance_interval = 0;
  /// Discrete-event engine: the measurement window, seconds after the first arrival. Latencies and SLO
  /// attainment count the requests arriving in it; throughput, goodput and each instance kind's iteration
  /// figures count the work done in it (iterations ending in it, requests finishing in it). measure_until
  /// 0: the end of the run. Both 0: the whole run (first arrival to last completion).
  double measure_from = 0;
  double measure_until = 0;
  /// Prefix cache per prefill-side attention-DP rank, tokens: a request's cached tokens hit only where its
  /// prefix (requests.prefix_groups) is resident, least recently used prefixes evicted first. 0: one cache
  /// every rank shares, where every request's cached tokens hit.
  int64_t prefix_cache_tokens = 0;
  /// With prefix_cache_tokens: send a request to the least loaded rank that holds its prefix, unless its
  /// load is above prefix_balance × the least load + 1 (then to the least loaded rank).
  bool prefix_routing = false;
  double prefix_balance = 2.0;
  /// CPU time an attention-DP rank's scheduler spends per iteration (batch selection, KV block
  /// bookkeeping, prefix matching, output processing), s: a fixed part and a part per sequence of the
  /// iteration's batch. With overlap_scheduler the scheduler prepares the next iteration while the GPUs
  /// run this one, so an iteration takes the longer of the two; without it, their sum.
  double scheduler_time = 0;
  double scheduler_time_per_sequence = 0;
  bool overlap_scheduler = true;
};

// ---------------------------------------------------------------------------- routing & placement

struct LoadSpec {
  std::string generator = "uniform";  ///< load generator (traces::gate_generators(); expected mode:
                                      ///< uniform, zipf, hot_expert)
  double zipf_s = 1.0;                ///< zipf exponent
  double alpha = 1.0;                 ///< dirichlet concentration
  double hot_fraction = 0.0;  ///< hot_expert / hot_rank / rotating / bursts: share taken by the hot set
  int hot_expert = 0;
  int hot_rank = 0;
  double burst_probability = 0.1;
  double drift_sigma = 0.1;  ///< drift: random-walk step of the logit bias per step
  double noise_scale = 1.0;  ///< sampled mode: scale of the per-token Gumbel noise on the logits
  uint64_t seed = 1;
};

/// Where routing decisions come from when they are replayed.
struct TraceSourceSpec {
  std::string path;  ///< resolved against the scenario file's folder
  TraceFormat format = TraceFormat::kMoesim;
  std::string model, kind = "expert_counts", domain;  ///< count_table row selection
};

struct RoutingSpec {
  std::string policy = "softmax_topk";  ///< registered routing policy (traces::routing_policies())
  RoutingMode mode = RoutingMode::kExpected;
  int sample_layers = 4;             ///< sampled: distinct MoE layers drawn, reused cyclically
  int node_limit = 0;                ///< at most this many nodes per token (DeepSeek M); 0 = unlimited
  double capacity_factor = 0;        ///< 0 = no capacity (no dropping)
  double bias_update_speed = 0.001;  ///< sigmoid_topk: aux-loss-free bias step (DeepSeek-V3 gamma)
  double threshold = 0.1;            ///< threshold policy
  double top_p = 0.5;                ///< top_p policy
  uint64_t hash_seed = 0;            ///< hash policy
  std::string capacity_base = "softmax_topk";  ///< capacity policy: the policy whose choices it limits
  LoadSpec load;
  TraceSourceSpec trace;
};

struct PlacementSpec {
  std::string policy = "contiguous";  ///< registered placement policy name
  int redundant_experts = 0;          ///< extra physical slots per layer (EPLB-style replicas)
  int groups = 0;                     ///< expert groups for hierarchical EPLB (0: the model's groups)
  int nodes = 0;                      ///< nodes for hierarchical EPLB (0: the nodes one EP group spans)
  int rebalance_every = 0;            ///< replay: re-place every N steps from observed loads (0: never)
};

/// Which engine evaluates the scenario and, for the discrete-event engine, its fidelity controls
/// (sim/step_sim.hpp).
struct EngineSpec {
  EngineKind kind = EngineKind::kAnalytic;
  DesGroups groups = DesGroups::kRepresentative;  ///< des: EP groups simulated per stage
  Aggregation aggregation = Aggregation::kAuto;   ///< des: fabric flows per GPU pair, node pair or domain
  int microbatches = 0;     ///< des: simulated microbatches before extrapolation (0: auto)
  double precision = 1e-4;  ///< des: surf/precision as a fraction of one all-to-all
  int timeline_gpus = 16;   ///< des: GPUs recorded in the Chrome trace (-1: all simulated)
};

struct OutputSpec {
  std::string dir;  ///< empty: no output directory
  std::vector<OutputFormat> formats{OutputFormat::kTable};
};

/// Published figures a scenario is checked against; NaN where not given. Reports print them beside
/// the model's own figures.
struct ReferenceSpec {
  std::string source;
  double step_time = NAN;     ///< s
  double forward_only = NAN;  ///< s, pipeline phases (see models/schedule.hpp)
  double steady = NAN;
  double backward_only = NAN;
  double weight_only = NAN;
  double bubble = NAN;
  double optimizer = NAN;  ///< s, optimizer plus exposed gradient synchronisation
  double tokens_per_second_per_gpu = NAN;
  double mfu = NAN;  ///< fraction of BF16 peak, non-causal FLOPs
  /// Serving: prompt tokens (cached included) per second per node of the prefill (or colocated)
  /// instances, output tokens per second per node of the decode (or colocated) instances, and mean
  /// latencies (s).
  double input_tokens_per_second_per_node = NAN;
  double output_tokens_per_second_per_node = NAN;
  double ttft = NAN, tpot = NAN, e2e = NAN;
  double tolerance = 0.15;  ///< relative step-time error a golden test accepts
  bool empty() const { return source.empty(); }
};

/// One fully resolved scenario: catalog references replaced by their entries, units resolved, the
/// layout derived.
struct Scenario {
  int schema_version = 1;
  std::string name;
  std::string source;  ///< file the scenario came from
  ModelSpec model;
  ClusterSpec cluster;
  ParallelismSpec parallelism;
  WorkloadSpec workload;
  ServingSpec serving;  ///< workload.kind serving only
  RoutingSpec routing;
  PlacementSpec placement;
  EngineSpec engine;
  OutputSpec outputs;
  ReferenceSpec reference;
  Layout layout;  ///< derived by validate() from cluster and parallelism
  /// Calibration file pricing compute (resolved against the scenario's folder); empty: the roofline
  /// defaults of the GPU catalog.
  std::string calibration;
  /// The calibration file's text, read once when the scenario is loaded (engines read no files);
  /// calibrate::parse_calibration turns it into the fitted models.
  SharedText calibration_text;
  /// The GPU's default calibration (cluster.gpu.calibration) resolved to its file, and that file's text,
  /// read by the loader; used when `calibration` is empty.
  std::string gpu_calibration;
  SharedText gpu_calibration_text;
  nlohmann::json resolved;  ///< the scenario JSON with catalog references inlined (written to outputs)
  /// What-if multiplier on the rate of every compute and memory-bound kernel (the planner's compute
  /// sensitivity: 0.8 = every kernel takes 1/0.8 as long). Not a scenario-file setting: files always
  /// give 1, so no scenario can tune its compute to a published figure.
  double compute_speed = 1.0;
};

}  // namespace moesim
