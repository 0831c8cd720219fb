#pragma once
/// \file Inference serving: what one iteration of a serving instance costs, what the KV cache holds, and
/// the analytic engine's steady state at a given load.
///
/// An instance (scenarios: ServingInstanceSpec) holds one copy of the model on `nodes` nodes: attention
/// runs tensor-parallel over tp GPUs and data-parallel over the instance's GPUs / tp (each attention-DP
/// rank has its own running batch), the MoE layers run expert-parallel over all of its GPUs. An iteration
/// is one forward pass of every block over the tokens of every DP rank's batch, priced on the busiest GPU
/// with the training path's block pricing (models/block_pricing.hpp) in forward-only mode: the same
/// GEMM, grouped-GEMM, memory-bound and all-to-all prices, with decode attention priced from its KV cache
/// read (models/compute_cost.hpp, decode_attention_seconds).

#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "models/block_pricing.hpp"
#include "models/compute_cost.hpp"
#include "models/network.hpp"
#include "models/op_table.hpp"
#include "models/routing_model.hpp"
#include "scenarios/scenario.hpp"
#include "traces/requests.hpp"

namespace moesim::models {

/// Scenario `s` re-shaped to instance kind `i` of its serving section: the cluster of one instance
/// (its nodes, its GPU and that GPU's default calibration), attention tp and dp, experts expert-parallel
/// over all its GPUs (with the instance's redundant experts), one pipeline stage, and its layout.
Scenario instance_scenario(const Scenario& s, int i);

/// The time of one iteration of an instance and where it goes (busiest GPU, seconds).
struct IterationCost {
  double seconds = 0;       ///< the iteration
  double compute = 0;       ///< compute and memory-bound kernels
  double exposed_comm = 0;  ///< communication on the critical path (all-to-all, TP all-reduce)
  double all_to_all = 0;    ///< expert dispatch + combine, hidden or not
  double attention = 0;     ///< attention kernels (decode and prefill)
  double experts = 0;       ///< routed-expert GEMMs and activation
  /// CPU time of the scheduler for this iteration (serving.scheduler_time and _per_sequence): hidden
  /// behind the GPUs' work with serving.overlap_scheduler unless longer, else added to it.
  double scheduler = 0;
  double max_over_mean_gpu = 1;  ///< per-GPU expert load imbalance, mean over MoE layers
  /// Seconds per op name summed over the blocks (the head and embedding as "head" and "embedding"), in
  /// the order first priced; two microbatches: both halves.
  std::vector<std::pair<std::string, double>> ops;
};

/// Prices iterations of one instance kind. Built once per instance kind; price() is const and cheap
/// enough to call for every simulated iteration.
class IterationPricer {
 public:
  IterationPricer(const Scenario& s, int instance);
  ~IterationPricer();
  IterationPricer(const IterationPricer&) = delete;
  IterationPricer& operator=(const IterationPricer&) = delete;

  /// One iteration over `batch` (per attention-DP rank; every rank runs the same batch), each MoE layer
  /// routed by the scenario's expected shares.
  IterationCost price(const ServingBatch& batch) const;

  const Scenario& scenario() const { return inst_; }
  const ComputeCostModel& cost_model() const { return *cm_; }
  const NetworkModel& network() const { return *net_; }
  int dp() const { return inst_.layout.dp; }
  int gpus() const { return inst_.layout.gpus; }
  /// KV cache bytes one token adds on one GPU, all attention layers (MTP modules included).
  double kv_bytes_per_token() const { return kv_bytes_per_token_; }
  /// Model bytes one GPU holds (weights at the workload's precision, norms and embeddings in BF16).
  double weight_bytes() const { return weight_bytes_; }
  /// Activation workspace one GPU reserves for an iteration of max_batch_tokens tokens, bytes.
  double workspace_bytes() const { return workspace_bytes_; }
  /// Tokens of KV cache one attention-DP rank can hold: (memory · kv_memory_fraction − weights −
  /// workspace) / kv_bytes_per_token, whole blocks only; ≤ 0 when the weights do not fit.
  double kv_capacity_tokens() const { return kv_capacity_tokens_; }
  /// Recurrent state one sequence holds on one GPU, bytes: a hybrid model's Mamba-2 and Gated DeltaNet
  /// layers (state and convolution state, serving.state_dtype); 0 for a model of transformer blocks.
  double state_bytes_per_sequence() const { return state_bytes_per_sequence_; }
  /// That state in KV cache tokens, whole blocks: what a sequence takes of the cache beside its tokens.
  double state_tokens_per_sequence() const { return state_tokens_per_sequence_; }
  /// Bytes of one routed expert's weights at the workload's precision.
  double expert_bytes() const { return expert_bytes_; }

  /// Every op of one iteration over `batch`, block by block (pp_rank and stage 0, pass F, count 1, or 2
  /// per half with two_microbatch), then the embedding and the head, each with what priced it: what
  /// price() sums. Routed experts at the placement's expected loads (sampled and trace routing scale them
  /// per iteration); computation beside the other half's all-to-all is not slowed here.
  std::vector<OpRow> op_rows(const ServingBatch& batch) const;

  /// routing.mode "trace": the trace's expert shares per step and MoE layer, each row summing to 1 (the
  /// placement and the prices follow their mean over the steps). Empty in the other modes.
  const std::vector<std::vector<std::vector<double>>>& trace_shares() const;
  /// Expert shares per MoE layer the prices assume.
  const std::vector<std::vector<double>>& shares() const;
  /// The placement the prices assume, per MoE layer (one entry when every layer is placed alike).
  const std::vector<SlotMap>& slot_maps() const;

  /// Forward-only totals of one block of an iteration (serving.cpp).
  struct BlockTotals;

 private:
  struct Impl;
  /// Work outside the blocks: the embedding lookup, the output head and the sampling over its logits.
  struct Ends {
    double tokens_with_logits = 0, embedding_bytes = 0, embedding = 0, head_flops = 0, head_gemm = 0,
           sampling_bytes = 0, sampling = 0;
  };
  Ends ends(const ServingBatch& batch) const;
  std::vector<BlockTotals> price_blocks(const ServingBatch& batch) const;
  Scenario inst_;
  std::unique_ptr<ComputeCostModel> cm_;
  std::unique_ptr<NetworkModel> net_;
  std::unique_ptr<Impl> impl_;
  double kv_bytes_per_token_ = 0, weight_bytes_ = 0, workspace_bytes_ = 0, kv_capacity_tokens_ = 0,
         expert_bytes_ = 0, state_bytes_per_sequence_ = 0, state_tokens_per_sequence_ = 0;
};

/// Blom's approximation of the expected largest of n standard normal draws: Φ⁻¹((n − 0.375) / (n + 0.25))
/// (0 for n ≤ 1).
double blom_quantile(int n);

/// Expected busiest-GPU expert load over the expected one when an iteration routes `copies` token copies
/// evenly over `gpus` GPUs: each GPU's count is approximately normal with mean c = copies / gpus and
/// variance c (1 − 1/gpus), and the largest of `gpus` such counts is expected at Blom's order-statistic
/// quantile Φ⁻¹((gpus − 0.375) / (gpus + 0.25)) standard deviations above the mean. At least 1. Small decode
/// batches are skewed: 2,300 copies on 144 GPUs (16 each) give about 1.7.
double expected_busiest_load(double copies, int gpus);

/// Each EP rank's share of a layer's routed copies under `slots` for expert `shares`.
std::vector<double> rank_shares(const std::vector<double>& shares, const SlotMap& slots);

/// The largest of rank_shares(shares, slots).
double busiest_share(const std::vector<double>& shares, const SlotMap& slots);

/// The MoE layers the per-iteration routing draws look at: `n` of `layers` spread evenly (the j-th is
/// ⌊j · layers / n⌋), at most all of them.
std::vector<int> sampled_layers(int layers, int n);

/// routing.mode "trace", analytic engine: the expected busiest-GPU expert load of an iteration routing
/// `copies` over pricer `P`'s GPUs, relative to what P prices (its mean shares), averaged over the trace's
/// steps. Per step and sampled layer (routing.sample_layers) the busiest GPU is taken at
/// max over g of (c·p_g + z·√(c·p_g·(1 − p_g))), p_g the GPU's share that step, z Blom's quantile for the
/// GPU count: expected_busiest_load's normal approximation when the shares are even, an upper estimate
/// when one GPU dominates. At least 1 when the trace's steps equal their mean.
double expected_trace_load(const IterationPricer& P, double copies, int sample_layers);

/// Che's approximation of a least-recently-used cache's hit rate: items requested with probabilities
/// proportional to `weights`, a cache of `capacity` items. The characteristic time T solves
/// Σ (1 − e^(−w_i·T)) = capacity and an item hits with probability 1 − e^(−w_i·T); the result is the
/// weighted mean over requests (1 when every item fits, 0 for no capacity).
double lru_hit_rate(const std::vector<double>& weights, double capacity);

/// serving.prefix_cache_tokens > 0: the expected share of requests whose prefix is resident on the
/// prefill-side rank they go to. Each of `ranks` ranks holds prefix_cache_tokens / (mean cached tokens)
/// prefixes, fed by the requests' prefixes at their frequencies in `requests`: every rank sees every
/// prefix, or, with prefix_routing, each prefix sticks to one rank (most popular first to the rank with
/// the least popularity so far). lru_hit_rate per rank, in steady state (no cold misses).
double prefix_hit_rate(const Scenario& s, const std::vector<traces::Request>& requests, int ranks);

/// Tokens emitted per sequence per decode iteration with `mtp` speculative tokens each accepted with
/// probability `p` (a draft is kept up to its first rejection): 1 + p + p² + … + p^mtp.
double tokens_per_iteration(int mtp, double p);

/// Mean context of a decoding sequence over `requests`, each weighted by its decode iterations (its output
/// tokens): Σ (input · output + output · (output − 1) / 2) / Σ output; 0 for no output.
double decode_context(const std::vector<traces::Request>& requests);

/// The largest batch in [1, most] for which `meets` holds, for a `meets` that holds up to some batch and not
/// beyond (binary search); 1 when it does not hold even there.
int64_t largest_batch(int64_t most, const std::function<bool(int64_t)>& meets);

/// The requests of a serving scenario: its trace (read and checked) or its generator's output. Throws
/// ConfigError / ParseError naming the file and place (a length distribution that does not parse, a
/// request longer than workload.seq_len).
std::vector<traces::Request> serving_requests(const Scenario& s);

/// Checks what the loader cannot (registries of other libraries, files): routing and placement names,
/// a load-aware placement where instances hold redundant experts, the request source. Throws.
void check_serving(const Scenario& s);

/// Percentiles of a latency over the requests of a run (seconds); NaN where the engine gives none.
struct LatencyStats {
  double mean = 0, p50 = 0, p90 = 0, p99 = 0;
};

/// What one instance kind does at the steady state.
struct InstanceResult {
  ServingRole role = ServingRole::kColocated;
  std::string gpu;
  int count = 0, gpus = 0, dp = 0;  ///< instances, GPUs per instance, attention-DP ranks per instance
  double decode_batch = 0;          ///< sequences per DP rank decoding each iteration
  double prefill_tokens = 0;        ///< prompt tokens per DP rank per iteration
  IterationCost iteration;          ///< one iteration at that batch
  double utilization = 0;           ///< share of the instance's capacity the load takes (≥ 1: saturated)
  double kv_capacity_tokens = 0;    ///< per DP rank
  double kv_used_tokens = 0;        ///< per DP rank, mean over the run
  double weight_bytes = 0, workspace_bytes = 0, kv_bytes_per_token = 0;  ///< per GPU
  /// A hybrid model's recurrent state per sequence on one GPU, bytes, and the cache tokens it takes (0
  /// for a model of transformer blocks).
  double state_bytes_per_sequence = 0, state_tokens_per_sequence = 0;
  double input_tokens_per_s_per_gpu = 0;   ///< prompt tokens (cached included) taken in
  double output_tokens_per_s_per_gpu = 0;  ///< tokens generated
  int rebalances = 0;  ///< discrete-event engine: online EPLB rebalances over the run, every replica
  double rebalance_seconds =
      0;  ///< discrete-event engine: time the replicas paused while expert weights moved
  /// Analytic engine: the per-DP-rank batches its iterations are priced at, each with its share of the
  /// iterations (colocated: without and with a prompt chunk).
  std::vector<std::pair<ServingBatch, double>> priced_batches;
};

/// One request as the discrete-event engine served it.
struct ServedRequest {
  double arrival = 0, first_token = 0, finish = 0;  ///< s
  int64_t input = 0, output = 0, cached = 0;        ///< tokens
  int instance = 0;     ///< the decode (or colocated) instance replica that served it, numbered over kinds
  int preemptions = 0;  ///< times its KV cache was taken back for lack of blocks
};

/// Nearest-rank percentiles and the mean of `v` (reordered); NaN for an empty vector.
LatencyStats latency_stats(std::vector<double>& v);

/// The result of a serving scenario (both engines).
struct ServingResult {
  std::string scenario, engine = "analytic", fidelity, cost_model;
  uint64_t seed = 0;
  bool feasible = true;
  std::string infeasible_reason;
  bool saturated = false;  ///< the load exceeds what the instances serve: queues grow without bound
  std::string saturation;  ///< which instance kind saturates, with its capacity and the demand
  /// What this engine leaves out of the scenario (empty: nothing), e.g. the analytic engine and online EPLB.
  std::string caveat;
  int gpus = 0, nodes = 0;
  int64_t requests = 0;     ///< requests offered (analytic) or completed (discrete-event)
  double offered_rate = 0;  ///< requests per second offered
  double mean_input = 0, mean_output = 0, mean_cached = 0;  ///< tokens per request
  double duration = 0;  ///< s, simulated (discrete-event) or the arrivals' span; with a
                        ///< measurement window, the window's length
  /// Discrete-event engine with serving.measure_from / measure_until: the window the results cover, s after
  /// the first arrival (window_until 0: no window, the whole run).
  double window_from = 0, window_until = 0;
  LatencyStats ttft, tpot, e2e;                                                ///< seconds
  double requests_per_s = 0, input_tokens_per_s = 0, output_tokens_per_s = 0;  ///< served
  double output_tokens_per_s_per_gpu = 0, input_tokens_per_s_per_gpu = 0;
  double goodput_requests_per_s = 0;  ///< requests per second meeting both SLOs
  double slo_attainment = 0;          ///< share of requests meeting both SLOs
  double all_to_all_share = 0;        ///< of a decode iteration: expert all-to-all / iteration time
  /// Decode: the time per output token if nothing but the expert all-to-all took time (every MoE layer's
  /// dispatch and combine, both microbatches), the bound DeepSeek states (ISCA'25 §2.3.2).
  double decode_comm_bound_tpot = 0;
  /// serving.prefix_cache_tokens > 0: share of requests whose prefix was resident on their prefill-side
  /// rank (analytic: expected, prefix_hit_rate; discrete-event: counted); NaN otherwise.
  double prefix_hit_rate = std::numeric_limits<double>::quiet_NaN();
  /// serving.prefix_cache_tokens > 0: share of the requests' cached tokens their rank's cache served (a
  /// resident prefix shorter than the request's serves what it holds: a partial match). The analytic
  /// engine counts a hit as the whole cached part, so there it equals prefix_hit_rate.
  double prefix_token_hit_rate = std::numeric_limits<double>::quiet_NaN();
  std::vector<InstanceResult> instances;
  /// Discrete-event engine: KV cache tokens in use over time (per DP rank, mean over ranks) and the
  /// per-iteration expert load max/mean of one decode instance (time, value), sampled.
  std::vector<std::pair<double, double>> kv_usage, expert_load;
};

/// The analytic engine: the steady state of every instance kind at the load the requests offer (their
/// mean rate and lengths): decode batch from Little's law (concurrency = arrivals × decode time), capped
/// by max_running, the KV cache and the TPOT SLO; prefill utilisation and an M/D/1 queueing wait; KV
/// transfer over the fabric for disaggregated instances. Mean latencies only (percentiles need the
/// discrete-event engine).
ServingResult evaluate_serving_analytic(const Scenario& s, const std::vector<traces::Request>& requests);

/// `moesim run --ops` on a serving scenario: every instance kind's iteration ops (IterationPricer::op_rows)
/// at the batches the analytic engine's steady state priced (`analytic`'s priced_batches), each batch's
/// counts weighted by its share of the iterations; one list per instance kind, in scenario order.
std::vector<std::vector<OpRow>> serving_op_rows(const Scenario& s, const ServingResult& analytic);

}  // namespace moesim::models
