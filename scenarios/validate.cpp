// Cross-field checks of a scenario. Each message names the pointer the user must change.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"
#include "scenarios/pipeline_layout.hpp"

namespace moesim {
namespace {

[[noreturn]] void bad(const Scenario& s, const std::string& ptr, const std::string& expected,
                      const std::string& found) {
  throw ConfigError(located_message(s.source, ptr, expected, found));
}

std::string str(int64_t v) {
  return std::to_string(v);
}

void derive_layout(Scenario& s);

// The cluster's own consistency (training and serving alike).
void validate_cluster(const Scenario& s, Problems& problems) {
  const auto& c = s.cluster;
  const auto independent = [&](auto&& check) { problems.check(check); };
  independent([&] {
    if (c.gpus_per_node > c.gpu.max_gpus_per_node)
      bad(s, "/cluster/gpus_per_node",
          "at most " + str(c.gpu.max_gpus_per_node) + " GPUs per node (a " + c.gpu.name +
              " node holds that many)",
          str(c.gpus_per_node));
  });
  independent([&] {
    if (c.scale_up.kind != ScaleUpKind::kNone && c.scale_up.bandwidth <= 0)
      bad(s, "/cluster/scale_up/bandwidth", "a positive bandwidth", "0");
  });
  independent([&] {
    if (c.scale_up.domain_gpus % c.gpus_per_node != 0 && c.gpus_per_node % c.scale_up.domain_gpus != 0)
      bad(s, "/cluster/scale_up/domain_gpus",
          "a multiple or divisor of gpus_per_node (" + str(c.gpus_per_node) + ")",
          str(c.scale_up.domain_gpus));
  });
  independent([&] {
    if (c.nodes > 1 && c.scale_out.nic_bandwidth <= 0)
      bad(s, "/cluster/scale_out/nic_bandwidth", "a positive bandwidth", "0");
  });
}

}  // namespace

void validate(Scenario& s) {
  Problems problems;
  validate(s, problems);
  problems.raise();
}

void validate(Scenario& s, Problems& problems) {
  const auto& p = s.parallelism;
  const auto& m = s.model;
  const auto& c = s.cluster;

  // Checks that do not depend on one another: each one's problem is recorded and the next runs.
  const auto independent = [&](auto&& check) { problems.check(check); };
  validate_cluster(s, problems);
  independent([&] {
    if (m.attention.heads % p.tp != 0)
      bad(s, "/parallelism/attention/tp", "a divisor of the attention heads (" + str(m.attention.heads) + ")",
          str(p.tp));
    if (m.attention.kind == AttentionKind::kGqa && m.attention.kv_heads % p.tp != 0 &&
        p.tp % m.attention.kv_heads != 0)
      bad(s, "/parallelism/attention/tp",
          "a divisor or multiple of the KV heads (" + str(m.attention.kv_heads) + ")", str(p.tp));
  });
  independent([&] {
    // Megatron-Core splits a Mamba mixer's heads and B/C groups over the tensor-parallel ranks.
    if (m.mamba.heads > 0 && (m.mamba.heads % p.tp != 0 || m.mamba.groups % p.tp != 0))
      bad(s, "/parallelism/attention/tp",
          "a divisor of the Mamba heads (" + str(m.mamba.heads) + ") and groups (" + str(m.mamba.groups) +
              ")",
          str(p.tp));
    if (m.mamba.heads > 0 && p.cp > 1)
      bad(s, "/parallelism/attention/cp",
          "1 for a model with Mamba layers (context parallelism of the SSD scan is not modelled)", str(p.cp));
    // Megatron-Core's GatedDeltaNet splits its key and value heads over the tensor-parallel ranks.
    if (m.gdn.key_heads > 0 && (m.gdn.key_heads % p.tp != 0 || m.gdn.value_heads % p.tp != 0))
      bad(s, "/parallelism/attention/tp",
          "a divisor of the Gated DeltaNet key heads (" + str(m.gdn.key_heads) + ") and value heads (" +
              str(m.gdn.value_heads) + ")",
          str(p.tp));
    if (m.gdn.key_heads > 0 && p.cp > 1)
      bad(s, "/parallelism/attention/cp",
          "1 for a model with Gated DeltaNet layers (their context parallelism is not modelled)", str(p.cp));
  });
  independent([&] {
    if (s.workload.seq_len % (2 * p.cp) != 0 && p.cp > 1)
      bad(s, "/parallelism/attention/cp",
          "2 x cp dividing seq_len " + str(s.workload.seq_len) +
              " (load-balanced causal context parallelism)",
          str(p.cp));
    if (p.cp > 1 && s.workload.seq_len % p.cp != 0)
      bad(s, "/parallelism/attention/cp", "a divisor of seq_len", str(p.cp));
  });
  independent([&] {
    if (s.workload.precision == Precision::kFp8 && c.gpu.flops_fp8 <= 0)
      bad(s, "/workload/precision", "bf16 (the GPU " + c.gpu.name + " has no FP8 rate)", "\"fp8\"");
  });
  independent([&] {
    const auto& par = s.parallelism;
    if (par.offload_modules.empty()) return;
    if (s.model.moe.experts == 0)
      bad(s, "/parallelism/offload_modules", "no module (the model has no routed experts)",
          std::string("\"") + to_string(par.offload_modules.front()) + "\"");
    else if (par.recompute == Recompute::kSelective &&
             std::find(par.recompute_modules.begin(), par.recompute_modules.end(), RecomputeModule::kMoe) !=
                 par.recompute_modules.end())
      bad(s, "/parallelism/offload_modules",
          "no module inside the MoE layer when recompute_modules has \"moe\" (Megatron-Core refuses "
          "both: the recomputed layer keeps nothing to offload)",
          std::string("\"") + to_string(par.offload_modules.front()) + "\"");
  });
  independent([&] {
    if (s.workload.activation_fp8_input_store && s.model.activation != Activation::kSwiglu)
      bad(s, "/workload/activation_fp8_input_store",
          "false (Megatron-Core stores only a SwiGLU's input in FP8)",
          std::string("true with the model's activation \"") + to_string(s.model.activation) + "\"");
  });
  independent([&] {
    if (s.workload.dispatch_dtype == DispatchDtype::kFp8 && s.workload.precision != Precision::kFp8)
      bad(s, "/workload/dispatch_dtype",
          std::string("\"auto\" or \"bf16\" with precision \"") + to_string(s.workload.precision) + "\"",
          "\"fp8\" (an FP8 dispatch needs precision fp8)");
  });
  independent([&] {
    if (s.workload.fp8_dispatch_grad && s.workload.precision != Precision::kFp8)
      bad(s, "/workload/fp8_dispatch_grad",
          std::string("false with precision \"") + to_string(s.workload.precision) + "\"",
          "true (FP8 gradient dispatch needs precision fp8)");
  });
  independent([&] {
    const int start = s.workload.bf16_layers_at_start, end = s.workload.bf16_layers_at_end;
    if ((start > 0 || end > 0) && s.workload.precision != Precision::kFp8)
      bad(s, start > 0 ? "/workload/bf16_layers_at_start" : "/workload/bf16_layers_at_end",
          std::string("0 with precision \"") + to_string(s.workload.precision) +
              "\" (BF16 layers apply to FP8 training)",
          str(start > 0 ? start : end));
    if (int64_t(start) + end > s.model.layers)
      bad(s, "/workload/bf16_layers_at_end",
          "at most the model's " + str(s.model.layers) + " layers with bf16_layers_at_start " + str(start),
          str(end));
  });
  independent([&] {
    if (s.workload.comm_sms >= c.gpu.sm_count)
      bad(s, "/workload/comm_sms", "fewer than the GPU's " + str(c.gpu.sm_count) + " SMs",
          str(s.workload.comm_sms));
    if (s.workload.comm_sms + s.workload.overlap_comm_sms >= c.gpu.sm_count)
      bad(s, "/workload/overlap_comm_sms",
          "fewer than the " + str(c.gpu.sm_count - s.workload.comm_sms) +
              " SMs left after comm_sms (the GPU's " + str(c.gpu.sm_count) + " less " +
              str(s.workload.comm_sms) + ")",
          str(s.workload.overlap_comm_sms));
  });
  independent([&] {
    if (s.workload.dispatch == DispatchMode::kHierarchical && c.nodes > 1 && c.scale_out.planes > 1 &&
        c.scale_out.planes != c.gpus_per_node)
      bad(s, "/cluster/scale_out/planes", "1 or gpus_per_node (" + str(c.gpus_per_node) + ") rail planes",
          str(c.scale_out.planes));
  });
  // The layout: each step needs the degrees the one before derived, so the first problem ends it.
  problems.check([&] { derive_layout(s); });
}

namespace {

void derive_layout(Scenario& s) {
  auto& p = s.parallelism;
  const auto& m = s.model;
  const auto& c = s.cluster;
  const int64_t gpus = c.gpus();
  Layout& L = s.layout;
  L = Layout{};
  L.gpus = static_cast<int>(gpus);
  L.gpus_per_node = c.gpus_per_node;
  L.domain_gpus = c.scale_up.kind == ScaleUpKind::kNone ? 1 : c.scale_up.domain_gpus;

  // Attention layout: tp · cp · dp · pp = GPUs.
  const int64_t tcp = int64_t(p.tp) * p.cp * p.pp;
  if (gpus % tcp != 0)
    bad(s, "/parallelism", "tp x cp x pp dividing the GPU count " + str(gpus),
        "tp=" + str(p.tp) + " cp=" + str(p.cp) + " pp=" + str(p.pp) + " (product " + str(tcp) + ")");
  const int dp = static_cast<int>(gpus / tcp);
  if (p.dp != 0 && p.dp != dp)
    bad(s, "/parallelism/attention/dp", "tp x cp x dp x pp = " + str(gpus) + " GPUs (dp = " + str(dp) + ")",
        str(p.dp));
  L.tp = p.tp;
  L.cp = p.cp;
  L.dp = dp;
  L.pp = p.pp;
  L.vpp = p.vpp;
  L.ep = p.ep;
  L.etp = p.etp;

  // Expert layout inside one pipeline stage: ep · etp · edp = tp · cp · dp.
  const int64_t stage_gpus = int64_t(p.tp) * p.cp * dp;
  L.stage_gpus = static_cast<int>(stage_gpus);
  if (m.moe.experts > 0) {
    if (m.moe.experts % p.ep != 0)
      bad(s, "/parallelism/experts/ep", "a divisor of the expert count " + str(m.moe.experts), str(p.ep));
    if (stage_gpus % (int64_t(p.ep) * p.etp) != 0)
      bad(s, "/parallelism/experts",
          "ep x etp dividing the GPUs of one pipeline stage (" + str(stage_gpus) + ")",
          "ep=" + str(p.ep) + " etp=" + str(p.etp));
    const int edp = static_cast<int>(stage_gpus / (int64_t(p.ep) * p.etp));
    if (p.edp != 0 && p.edp != edp)
      bad(s, "/parallelism/experts/edp", "ep x etp x edp = " + str(stage_gpus) + " (edp = " + str(edp) + ")",
          str(p.edp));
    L.edp = edp;
    if (m.moe.expert_ffn % p.etp != 0)
      bad(s, "/parallelism/experts/etp", "a divisor of the expert FFN size " + str(m.moe.expert_ffn),
          str(p.etp));
    if (s.routing.node_limit > 0) {
      int ep_nodes = static_cast<int>((int64_t(p.ep) * p.etp + c.gpus_per_node - 1) / c.gpus_per_node);
      if (s.routing.node_limit > ep_nodes)
        bad(s, "/routing/node_limit", "at most the nodes one EP group spans (" + str(ep_nodes) + ")",
            str(s.routing.node_limit));
    }
    // Bounded before any placement allocates its slots: a replica of every expert on every other rank.
    if (s.placement.redundant_experts > int64_t(m.moe.experts) * (p.ep - 1))
      bad(s, "/placement/redundant_experts",
          "at most experts x (ep - 1) = " + str(int64_t(m.moe.experts) * (p.ep - 1)) + " replicas",
          str(s.placement.redundant_experts));
    if (s.routing.load.hot_expert >= m.moe.experts)
      bad(s, "/routing/load/hot_expert", "an expert id below " + str(m.moe.experts),
          str(s.routing.load.hot_expert));
  } else {
    if (p.ep != 1) bad(s, "/parallelism/experts/ep", "1 for a dense model", str(p.ep));
    L.edp = static_cast<int>(stage_gpus);
  }

  // Full recomputation by layer count (Megatron-Core accepts --recompute-method and
  // --recompute-num-layers only with --recompute-granularity full).
  if ((p.recompute_num_layers > 0 || p.recompute_method == RecomputeMethod::kBlock) &&
      p.recompute != Recompute::kFull)
    bad(s, p.recompute_num_layers > 0 ? "/parallelism/recompute_num_layers" : "/parallelism/recompute_method",
        "parallelism.recompute \"full\" (a layer count or method applies to full recomputation only)",
        std::string("recompute \"") + to_string(p.recompute) + "\"");
  if (p.recompute_method == RecomputeMethod::kBlock && p.recompute_num_layers < 1)
    bad(s, "/parallelism/recompute_num_layers",
        "at least 1 with recompute_method \"block\" (the layers of each stage that rerun)",
        str(p.recompute_num_layers));

  // Batch.
  const int64_t per_step = int64_t(p.microbatch_size) * dp;
  if (p.global_batch % per_step != 0)
    bad(s, "/parallelism/global_batch",
        "a multiple of microbatch_size x dp = " + str(p.microbatch_size) + " x " + str(dp) + " = " +
            str(per_step),
        str(p.global_batch));
  const int M = static_cast<int>(p.global_batch / per_step);
  L.microbatches = M;
  L.ep_span = L.ep * L.etp;
  L.ep_groups = std::max(1, L.stage_gpus / L.ep_span);

  // Pipeline.
  const int total_blocks = m.layers + m.mtp_depth;
  if (!p.pipeline_layout.empty()) {
    std::vector<LayoutStage> stages;
    try {
      stages = parse_pipeline_layout(p.pipeline_layout);
    } catch (const std::invalid_argument& e) {
      bad(s, "/parallelism/pipeline_layout", "a pipeline layout (E, t, m, L, '|', X*n, (...)*n)",
          "\"" + p.pipeline_layout + "\", " + e.what());
    }
    const LayoutProblem why = check_pipeline_layout(stages, m.layers, m.mtp_depth, p.pp * p.vpp);
    if (!why.expected.empty()) bad(s, "/parallelism/pipeline_layout", why.expected, why.found);
    L.stage_blocks.clear();
    for (const LayoutStage& st : stages) L.stage_blocks.push_back(st.decoder + st.mtp);
  } else if (int64_t(p.pp) * p.vpp > total_blocks)
    bad(s, "/parallelism/pp", "pp x vpp at most the model's blocks (" + str(total_blocks) + ")",
        "pp=" + str(p.pp) + " vpp=" + str(p.vpp));
  if (p.vpp > 1 && p.schedule != Schedule::kInterleaved)
    bad(s, "/parallelism/schedule", "\"interleaved\" when vpp > 1",
        std::string("\"") + to_string(p.schedule) + "\"");
  if (p.schedule == Schedule::kInterleaved && p.vpp < 2)
    bad(s, "/parallelism/vpp", "at least 2 for the interleaved schedule", str(p.vpp));
  if (p.schedule == Schedule::kInterleaved && M % p.pp != 0)
    bad(s, "/parallelism/global_batch",
        "microbatches per pipeline (" + str(M) + ") divisible by pp (" + str(p.pp) +
            ") for the interleaved schedule",
        str(p.global_batch));
  if (p.ep_overlap && (p.schedule == Schedule::kDualPipe || p.schedule == Schedule::kZeroBubble))
    bad(s, "/parallelism/ep_overlap",
        std::string("false with the ") + to_string(p.schedule) +
            " schedule (combined 1F1B applies to 1f1b and interleaved; DualPipe overlaps its pairs "
            "itself)",
        "true");
  // Megatron-Core runs combined 1F1B with one pipeline stage or the interleaved schedule: a pair
  // receives both inputs before it starts, which plain 1F1B's one-chunk offset between neighbouring
  // ranks cannot feed without stalling every other step.
  else if (p.ep_overlap && p.schedule == Schedule::k1F1B && p.pp > 1)
    bad(s, "/parallelism/ep_overlap",
        "false with 1f1b and pp > 1 (combined 1F1B needs pp 1 or the interleaved schedule)",
        "true with pp " + str(p.pp));
  if (p.delay_wgrad && !p.ep_overlap)
    bad(s, "/parallelism/delay_wgrad",
        "false without parallelism.ep_overlap (delayed weight gradients fill the combined-1F1B pair's "
        "all-to-alls)",
        "true with ep_overlap false");
  if (p.schedule == Schedule::kDualPipe) {
    if (p.pp % 2 != 0 || p.pp < 2)
      bad(s, "/parallelism/pp", "an even pp of at least 2 for DualPipe", str(p.pp));
    if (M % 2 != 0 || M < 2 * p.pp)
      bad(s, "/parallelism/global_batch",
          "an even number of microbatches per pipeline of at least 2 x pp = " + str(2 * p.pp) +
              " for DualPipe",
          str(M) + " microbatches");
  } else if (p.pp > 1 && M < p.pp) {
    bad(s, "/parallelism/global_batch", "at least pp = " + str(p.pp) + " microbatches per pipeline",
        str(M) + " microbatches");
  }
}

}  // namespace

}  // namespace moesim

namespace moesim {

void validate_serving(Scenario& s, Problems& problems) {
  const auto& m = s.model;
  const auto& c = s.cluster;
  const auto& sv = s.serving;
  const auto independent = [&](auto&& check) { problems.check(check); };
  validate_cluster(s, problems);
  independent([&] {
    // A hybrid model's recurrent state is paged in KV cache blocks sized by its attention layers.
    if (!m.layer_pattern.empty() && m.layer_pattern.find('*') == std::string::npos)
      bad(s, "/model",
          "a model with at least one attention layer ('*' in its layer_pattern: the KV cache that holds "
          "the recurrent layers' states is paged by the attention layers' tokens)",
          "the layer_pattern of " + m.name + " without one");
  });
  s.layout = Layout{};
  s.layout.gpus = c.gpus();
  s.layout.gpus_per_node = c.gpus_per_node;
  s.layout.domain_gpus = c.scale_up.kind == ScaleUpKind::kNone ? 1 : c.scale_up.domain_gpus;

  independent([&] {
    int colocated = 0, prefill = 0, decode = 0;
    for (const ServingInstanceSpec& in : sv.instances)
      (in.role == ServingRole::kColocated ? colocated
       : in.role == ServingRole::kPrefill ? prefill
                                          : decode) += 1;
    if (colocated > 0 && prefill + decode > 0)
      bad(s, "/serving/instances",
          "either colocated instances or prefill and decode instances (disaggregated), not both",
          str(colocated) + " colocated, " + str(prefill) + " prefill, " + str(decode) + " decode");
    if (colocated == 0 && (prefill == 0 || decode == 0))
      bad(s, "/serving/instances", "prefill and decode instances both, for disaggregated serving",
          prefill == 0 ? "no prefill instance" : "no decode instance");
  });
  independent([&] {
    int64_t nodes = 0;
    for (const ServingInstanceSpec& in : sv.instances) nodes += int64_t(in.count) * in.nodes;
    if (nodes > c.nodes)
      bad(s, "/serving/instances",
          "instances (count x nodes) within the cluster's " + str(c.nodes) + " nodes", str(nodes) + " nodes");
  });
  for (std::size_t i = 0; i < sv.instances.size(); ++i) {
    const ServingInstanceSpec& in = sv.instances[i];
    const std::string at = "/serving/instances/" + str(int64_t(i));
    const int64_t gpus = int64_t(in.nodes) * c.gpus_per_node;
    independent([&] {
      if (c.gpus_per_node > in.gpu_spec.max_gpus_per_node)
        bad(s, at + "/gpu", "a GPU whose node holds the cluster's " + str(c.gpus_per_node) + " GPUs per node",
            in.gpu_spec.name + " (" + str(in.gpu_spec.max_gpus_per_node) + " per node)");
    });
    independent([&] {
      if (gpus % in.tp != 0)
        bad(s, at + "/tp", "a divisor of the instance's " + str(gpus) + " GPUs", str(in.tp));
      if (m.attention.heads % in.tp != 0)
        bad(s, at + "/tp", "a divisor of the attention heads (" + str(m.attention.heads) + ")", str(in.tp));
      if (m.attention.kind == AttentionKind::kGqa && m.attention.kv_heads % in.tp != 0 &&
          in.tp % m.attention.kv_heads != 0)
        bad(s, at + "/tp", "a divisor or multiple of the KV heads (" + str(m.attention.kv_heads) + ")",
            str(in.tp));
    });
    independent([&] {
      if (m.moe.experts == 0) {
        if (in.redundant_experts > 0)
          bad(s, at + "/redundant_experts", "0 for a dense model", str(in.redundant_experts));
        return;
      }
      const int64_t slots = int64_t(m.moe.experts) + in.redundant_experts;
      if (slots % gpus != 0)
        bad(s, at + "/redundant_experts",
            "experts + redundant_experts a multiple of the instance's " + str(gpus) +
                " GPUs (experts run expert-parallel over all of them; the model has " + str(m.moe.experts) +
                " experts)",
            str(in.redundant_experts) + " (" + str(slots) + " slots)");
      if (in.redundant_experts > int64_t(m.moe.experts) * (gpus - 1))
        bad(s, at + "/redundant_experts", "at most experts x (GPUs - 1) replicas", str(in.redundant_experts));
      if (s.routing.node_limit > in.nodes)
        bad(s, "/routing/node_limit",
            "at most the nodes of every instance (" + str(in.nodes) + " for " + at + ")",
            str(s.routing.node_limit));
    });
    independent([&] {
      if (s.workload.precision == Precision::kFp8 && in.gpu_spec.flops_fp8 <= 0)
        bad(s, "/workload/precision", "bf16 (the GPU " + in.gpu_spec.name + " of " + at + " has no FP8 rate)",
            "\"fp8\"");
      if (s.workload.comm_sms >= in.gpu_spec.sm_count)
        bad(s, "/workload/comm_sms",
            "fewer than the " + in.gpu_spec.name + "'s " + str(in.gpu_spec.sm_count) + " SMs",
            str(s.workload.comm_sms));
    });
    independent([&] {
      if (sv.decode_batch > in.max_running && in.role != ServingRole::kPrefill)
        bad(s, "/serving/decode_batch", "at most max_running of " + at + " (" + str(in.max_running) + ")",
            str(sv.decode_batch));
    });
  }
  independent([&] {
    if (sv.mtp_tokens > m.mtp_depth)
      bad(s, "/serving/mtp_tokens",
          "at most the model's " + str(m.mtp_depth) + " MTP modules (model.mtp_depth)", str(sv.mtp_tokens));
  });
  independent([&] {
    if (sv.prefix_cache_tokens > 0 && sv.requests.trace.empty() && sv.requests.prefix_groups == 0)
      bad(s, "/serving/prefix_cache_tokens",
          "0 unless the requests name their shared prefixes (the generator's prefix_groups > 0, or a "
          "request trace's prefix_id column): a per-rank prefix cache needs to know which prefix each "
          "request shares",
          str(sv.prefix_cache_tokens) + " with prefix_groups 0");
    else if (sv.prefix_routing && sv.prefix_cache_tokens == 0)
      bad(s, "/serving/prefix_routing", "false without serving.prefix_cache_tokens (one shared cache)",
          "true");
  });
  independent([&] {
    if (sv.measure_until > 0 && sv.measure_until <= sv.measure_from)
      bad(s, "/serving/measure_until",
          "0 (the end of the run) or a time after serving.measure_from = " + str(sv.measure_from) + " s",
          str(sv.measure_until) + " s");
  });
  independent([&] {
    if (sv.rebalance_interval > 0 && (s.routing.mode != RoutingMode::kTrace || m.moe.experts == 0))
      bad(s, "/serving/rebalance_interval",
          "0 unless routing.mode is \"trace\" on a model with experts (online rebalancing follows the "
          "loads a routing trace records)",
          str(sv.rebalance_interval) + " s with routing.mode \"" + to_string(s.routing.mode) + "\"");
  });
  independent([&] {
    if (s.workload.fp8_dispatch_grad || s.workload.bf16_layers_at_start > 0 ||
        s.workload.bf16_layers_at_end > 0 || s.workload.activation_fp8_input_store)
      bad(s,
          s.workload.fp8_dispatch_grad            ? "/workload/fp8_dispatch_grad"
          : s.workload.activation_fp8_input_store ? "/workload/activation_fp8_input_store"
                                                  : "/workload/bf16_layers_at_start",
          "training settings left at their defaults in a serving scenario", "a training setting");
  });
}

}  // namespace moesim
