#include "scenarios/loader.hpp"

#include <cmath>

#include "scenarios/error.hpp"

namespace moesim {

namespace {

constexpr int kMaxDim = 1 << 24;

int get_pos(ObjectReader& r, const std::string& key) {
  return static_cast<int>(r.get_int_in(key, 1, kMaxDim, std::nullopt));
}
int get_nonneg(ObjectReader& r, const std::string& key, int fallback) {
  return static_cast<int>(r.get_int_in(key, 0, kMaxDim, fallback));
}

// Resolves `value` (a "catalog:NAME" string or an inline object) to an object.
Json resolve_ref(const Json& value, CatalogKind kind, const std::string& source, const std::string& pointer,
                 const Catalog& catalog, std::string* entry_source) {
  if (value.is_string()) {
    std::string name;
    if (!is_catalog_ref(value.get<std::string>(), name))
      throw ConfigError(located_message(source, pointer,
                                        std::string("an inline object or \"catalog:NAME\" (a ") + to_string(kind) +
                                            " entry)",
                                        describe_json(value)));
    *entry_source = catalog.path(kind, name, source, pointer);
    return read_json_file(*entry_source);
  }
  if (!value.is_object())
    throw ConfigError(located_message(source, pointer, "an inline object or \"catalog:NAME\"", describe_json(value)));
  *entry_source = source;
  return value;
}

}  // namespace

ModelSpec model_from_json(const Json& j, const std::string& source, const std::string& pointer) {
  ObjectReader r(j, source, pointer);
  ModelSpec m;
  m.name = r.get_string("name");
  m.layers = get_pos(r, "layers");
  m.hidden = get_pos(r, "hidden");
  m.vocab = get_pos(r, "vocab");
  m.dense_ffn = get_nonneg(r, "dense_ffn", 0);
  m.activation = r.get_choice("activation", activations(), Activation::kSwiglu);
  m.tied_embeddings = r.get_bool("tied_embeddings", false);
  m.mtp_depth = get_nonneg(r, "mtp_depth", 0);
  m.published_total_params = r.get_number_in("published_total_params", 0, 1e16, 0.0);
  m.published_active_params = r.get_number_in("published_active_params", 0, 1e16, 0.0);
  m.source = r.get_string("source", "");
  {
    ObjectReader a(r.child("attention"), source, r.at("attention"));
    auto& at = m.attention;
    at.kind = a.get_choice("kind", attention_kinds(), AttentionKind::kMha);
    at.heads = get_pos(a, "heads");
    at.head_dim = get_pos(a, "head_dim");
    at.kv_heads = at.kind == AttentionKind::kMla ? at.heads : get_nonneg(a, "kv_heads", at.heads);
    if (at.kind != AttentionKind::kMla && at.kv_heads == 0) at.kv_heads = at.heads;
    at.v_head_dim = get_nonneg(a, "v_head_dim", 0);
    if (at.v_head_dim == 0) at.v_head_dim = at.head_dim;
    if (at.kind == AttentionKind::kMla) {
      at.q_lora_rank = get_nonneg(a, "q_lora_rank", 0);
      at.kv_lora_rank = get_pos(a, "kv_lora_rank");
      at.rope_head_dim = get_nonneg(a, "rope_head_dim", 0);
    }
    at.sliding_window = get_nonneg(a, "sliding_window", 0);
    at.sliding_window_every = get_nonneg(a, "sliding_window_every", 0);
    at.qkv_bias = a.get_bool("qkv_bias", false);
    a.finish();
    if (at.kind != AttentionKind::kMla && at.heads % at.kv_heads != 0)
      a.fail("kv_heads", "a divisor of heads (" + std::to_string(at.heads) + ")", std::to_string(at.kv_heads));
    if (at.kind == AttentionKind::kMha && at.kv_heads != at.heads)
      a.fail("kv_heads", "kv_heads == heads for kind \"mha\" (use \"gqa\")", std::to_string(at.kv_heads));
  }
  if (const Json* moe = r.optional_child("moe")) {
    ObjectReader e(*moe, source, r.at("moe"));
    auto& s = m.moe;
    s.experts = get_pos(e, "experts");
    s.top_k = get_pos(e, "top_k");
    s.expert_ffn = get_pos(e, "expert_ffn");
    s.shared_experts = get_nonneg(e, "shared_experts", 0);
    s.shared_ffn = get_nonneg(e, "shared_ffn", 0);
    if (s.shared_ffn == 0) s.shared_ffn = s.expert_ffn;
    s.first_dense_layers = get_nonneg(e, "first_dense_layers", 0);
    s.layer_freq = static_cast<int>(e.get_int_in("layer_freq", 1, 1024, 1));
    s.groups = static_cast<int>(e.get_int_in("groups", 1, kMaxDim, 1));
    s.topk_groups = get_nonneg(e, "topk_groups", 0);
    s.score = e.get_choice("score", router_scores(), RouterScore::kSoftmax);
    e.finish();
    if (s.top_k > s.experts)
      e.fail("top_k", "at most experts (" + std::to_string(s.experts) + ")", std::to_string(s.top_k));
    if (s.experts % s.groups != 0)
      e.fail("groups", "a divisor of experts (" + std::to_string(s.experts) + ")", std::to_string(s.groups));
    if (s.topk_groups > s.groups)
      e.fail("topk_groups", "at most groups (" + std::to_string(s.groups) + ")", std::to_string(s.topk_groups));
    if (s.topk_groups > 0 && s.top_k > s.topk_groups * (s.experts / s.groups))
      e.fail("top_k", "at most topk_groups x experts per group", std::to_string(s.top_k));
    if (s.first_dense_layers > m.layers)
      e.fail("first_dense_layers", "at most layers (" + std::to_string(m.layers) + ")",
             std::to_string(s.first_dense_layers));
    if (s.first_dense_layers > 0 && m.dense_ffn == 0)
      r.fail("dense_ffn", "a positive dense FFN size (first_dense_layers > 0)", "0");
  } else if (m.dense_ffn == 0) {
    r.fail("dense_ffn", "a positive size for a model without \"moe\"", "nothing");
  }
  r.finish();
  return m;
}

GpuSpec gpu_from_json(const Json& j, const std::string& source, const std::string& pointer) {
  ObjectReader r(j, source, pointer);
  GpuSpec g;
  g.name = r.get_string("name");
  g.flops_bf16 = r.get_quantity("flops_bf16", Dimension::kFlopRate);
  g.flops_fp8 = r.get_quantity("flops_fp8", Dimension::kFlopRate, 0.0);
  g.flops_fp32 = r.get_quantity("flops_fp32", Dimension::kFlopRate, 0.0);
  g.memory_bytes = r.get_quantity("memory", Dimension::kBytes);
  g.memory_bandwidth = r.get_quantity("memory_bandwidth", Dimension::kBandwidth);
  g.sm_count = get_pos(r, "sm_count");
  g.nvlink_bandwidth = r.get_quantity("nvlink_bandwidth", Dimension::kBandwidth, 0.0);
  g.max_gpus_per_node = static_cast<int>(r.get_int_in("max_gpus_per_node", 1, 1024, 8));
  g.gemm_efficiency_bf16 = r.get_number_in("gemm_efficiency_bf16", 0.01, 1.0, 0.8);
  g.gemm_efficiency_fp8 = r.get_number_in("gemm_efficiency_fp8", 0.01, 1.0, 0.67);
  g.attention_efficiency = r.get_number_in("attention_efficiency", 0.01, 1.0, 0.6);
  g.attention_backward_efficiency = r.get_number_in("attention_backward_efficiency", 0.01, 1.0, 0.45);
  g.memory_efficiency = r.get_number_in("memory_efficiency", 0.01, 1.0, 0.9);
  g.kernel_launch = r.get_quantity("kernel_launch", Dimension::kTime, 4e-6);
  g.price_per_hour = r.get_number_in("price_per_hour", 0, 1e6, 0.0);
  g.source = r.get_string("source", "");
  r.finish();
  if (g.flops_bf16 <= 0) r.fail("flops_bf16", "a positive compute rate", "0");
  if (g.memory_bandwidth <= 0) r.fail("memory_bandwidth", "a positive bandwidth", "0");
  return g;
}

ClusterSpec cluster_from_json(const Json& j, const std::string& source, const std::string& pointer,
                              const Catalog& catalog, Json* resolved) {
  ObjectReader r(j, source, pointer);
  ClusterSpec c;
  c.name = r.get_string("name", "");
  {
    std::string gsrc;
    Json g = resolve_ref(r.child("gpu"), CatalogKind::kGpu, source, r.at("gpu"), catalog, &gsrc);
    c.gpu = gpu_from_json(g, gsrc, gsrc == source ? r.at("gpu") : "");
    if (resolved) (*resolved)["gpu"] = g;
  }
  c.nodes = get_pos(r, "nodes");
  c.gpus_per_node = get_pos(r, "gpus_per_node");
  if (const Json* su = r.optional_child("scale_up")) {
    ObjectReader s(*su, source, r.at("scale_up"));
    c.scale_up.kind = s.get_choice("kind", scale_up_kinds(), ScaleUpKind::kNvswitch);
    c.scale_up.bandwidth = s.get_quantity("bandwidth", Dimension::kBandwidth, c.gpu.nvlink_bandwidth);
    c.scale_up.latency = s.get_quantity("latency", Dimension::kTime, 3e-6);
    c.scale_up.domain_gpus = get_nonneg(s, "domain_gpus", 0);
    s.finish();
  } else {
    c.scale_up.bandwidth = c.gpu.nvlink_bandwidth;
    c.scale_up.latency = 3e-6;
  }
  if (c.scale_up.domain_gpus == 0) c.scale_up.domain_gpus = c.gpus_per_node;
  if (const Json* so = r.optional_child("scale_out")) {
    ObjectReader s(*so, source, r.at("scale_out"));
    c.scale_out.kind = s.get_choice("kind", topology_kinds(), TopologyKind::kFatTree);
    c.scale_out.nic_bandwidth = s.get_quantity("nic_bandwidth", Dimension::kBandwidth);
    c.scale_out.latency = s.get_quantity("latency", Dimension::kTime, 3e-6);
    c.scale_out.latency_cross = s.get_quantity("latency_cross", Dimension::kTime, c.scale_out.latency);
    c.scale_out.oversubscription = s.get_number_in("oversubscription", 1.0, 64.0, 1.0);
    c.scale_out.planes = static_cast<int>(s.get_int_in("planes", 1, 64, 1));
    c.scale_out.levels = static_cast<int>(s.get_int_in("levels", 1, 3, 2));
    c.scale_out.radix = static_cast<int>(s.get_int_in("radix", 2, 4096, 64));
    s.finish();
  } else if (c.nodes > 1) {
    r.fail("scale_out", "a scale_out section for a cluster of more than one node", "nothing");
  }
  r.finish();
  if (resolved) {
    for (auto it = j.begin(); it != j.end(); ++it)
      if (it.key() != "gpu") (*resolved)[it.key()] = it.value();
  }
  return c;
}

Scenario scenario_from_json(const Json& j, const std::string& source, const Catalog& catalog) {
  Scenario s;
  s.source = source;
  ObjectReader r(j, source, "");
  s.schema_version = static_cast<int>(r.get_int_in("schema_version", 1, 1, 1));
  s.name = r.get_string("name");
  s.resolved = j;
  s.resolved.erase("variants");
  r.optional_child("variants");  // read by variants_from_json

  {
    std::string msrc;
    Json m = resolve_ref(r.child("model"), CatalogKind::kModel, source, "/model", catalog, &msrc);
    s.model = model_from_json(m, msrc, msrc == source ? "/model" : "");
    s.resolved["model"] = m;
  }
  {
    std::string csrc;
    Json c = resolve_ref(r.child("cluster"), CatalogKind::kCluster, source, "/cluster", catalog, &csrc);
    Json res;
    s.cluster = cluster_from_json(c, csrc, csrc == source ? "/cluster" : "", catalog, &res);
    s.resolved["cluster"] = res;
  }
  {
    ObjectReader p(r.child("parallelism"), source, "/parallelism");
    auto& par = s.parallelism;
    if (const Json* a = p.optional_child("attention")) {
      ObjectReader at(*a, source, "/parallelism/attention");
      par.tp = static_cast<int>(at.get_int_in("tp", 1, kMaxDim, 1));
      par.cp = static_cast<int>(at.get_int_in("cp", 1, kMaxDim, 1));
      par.dp = static_cast<int>(at.get_int_in("dp", 0, kMaxDim, 0));  // 0: derive
      par.sequence_parallel = at.get_bool("sequence_parallel", true);
      at.finish();
    }
    if (const Json* e = p.optional_child("experts")) {
      ObjectReader ex(*e, source, "/parallelism/experts");
      par.ep = static_cast<int>(ex.get_int_in("ep", 1, kMaxDim, 1));
      par.etp = static_cast<int>(ex.get_int_in("etp", 1, kMaxDim, 1));
      par.edp = static_cast<int>(ex.get_int_in("edp", 0, kMaxDim, 0));
      ex.finish();
    }
    par.pp = static_cast<int>(p.get_int_in("pp", 1, kMaxDim, 1));
    par.vpp = static_cast<int>(p.get_int_in("vpp", 1, 1024, 1));
    par.schedule = p.get_choice("schedule", schedules(), Schedule::k1F1B);
    par.zero = static_cast<int>(p.get_int_in("zero", 0, 3, 1));
    par.recompute = p.get_choice("recompute", recompute_modes(), Recompute::kNone);
    par.microbatch_size = static_cast<int>(p.get_int_in("microbatch_size", 1, kMaxDim, 1));
    par.global_batch = p.get_int_in("global_batch", 1, int64_t(1) << 40, std::nullopt);
    par.overlap_grad_reduce = p.get_bool("overlap_grad_reduce", true);
    par.overlap_param_gather = p.get_bool("overlap_param_gather", false);
    p.finish();
  }
  {
    ObjectReader w(r.child("workload"), source, "/workload");
    auto& wl = s.workload;
    wl.kind = w.get_choice("kind", workload_kinds(), WorkloadKind::kTraining);
    wl.seq_len = static_cast<int>(w.get_int_in("seq_len", 1, kMaxDim, std::nullopt));
    wl.precision = w.get_choice("precision", precisions(), Precision::kBf16);
    wl.comm_sms = static_cast<int>(w.get_int_in("comm_sms", 0, 1024, 0));
    wl.grad_dtype = w.get_choice("grad_dtype", dtypes(), Dtype::kFp32);
    wl.optimizer_state_dtype = w.get_choice("optimizer_state_dtype", dtypes(), Dtype::kFp32);
    wl.master_weights = w.get_bool("master_weights", true);
    wl.causal = w.get_bool("causal", true);
    wl.dispatch = w.get_choice("dispatch", dispatch_modes(), DispatchMode::kFlat);
    wl.shared_expert_overlap = w.get_bool("shared_expert_overlap", true);
    w.finish();
  }
  if (const Json* rt = r.optional_child("routing")) {
    ObjectReader ro(*rt, source, "/routing");
    auto& rs = s.routing;
    rs.policy = ro.get_string("policy", "softmax_topk");
    rs.mode = ro.get_choice("mode", routing_modes(), RoutingMode::kExpected);
    rs.sample_layers = static_cast<int>(ro.get_int_in("sample_layers", 1, 1 << 16, 4));
    rs.node_limit = static_cast<int>(ro.get_int_in("node_limit", 0, kMaxDim, 0));
    rs.capacity_factor = ro.get_number_in("capacity_factor", 0.0, 1024.0, 0.0);
    rs.bias_update_speed = ro.get_number_in("bias_update_speed", 0.0, 1.0, 0.001);
    rs.threshold = ro.get_number_in("threshold", 0.0, 1.0, 0.1);
    rs.top_p = ro.get_number_in("top_p", 0.0, 1.0, 0.5);
    rs.hash_seed = static_cast<uint64_t>(ro.get_int_in("hash_seed", 0, int64_t(1) << 62, 0));
    rs.capacity_base = ro.get_string("capacity_base", "softmax_topk");
    if (const Json* ld = ro.optional_child("load")) {
      ObjectReader l(*ld, source, "/routing/load");
      rs.load.generator = l.get_string("generator", "uniform");
      rs.load.zipf_s = l.get_number_in("s", 0.0, 10.0, 1.0);
      rs.load.alpha = l.get_number_in("alpha", 1e-6, 1e6, 1.0);
      rs.load.hot_fraction = l.get_number_in("hot_fraction", 0.0, 1.0, 0.0);
      rs.load.hot_expert = static_cast<int>(l.get_int_in("hot_expert", 0, kMaxDim, 0));
      rs.load.hot_rank = static_cast<int>(l.get_int_in("hot_rank", 0, kMaxDim, 0));
      rs.load.burst_probability = l.get_number_in("burst_probability", 0.0, 1.0, 0.1);
      rs.load.drift_sigma = l.get_number_in("drift_sigma", 0.0, 100.0, 0.1);
      rs.load.noise_scale = l.get_number_in("noise_scale", 0.0, 100.0, 1.0);
      rs.load.seed = static_cast<uint64_t>(l.get_int_in("seed", 0, int64_t(1) << 62, 1));
      l.finish();
    }
    if (const Json* tr = ro.optional_child("trace")) {
      ObjectReader t(*tr, source, "/routing/trace");
      auto& ts = rs.trace;
      ts.path = t.get_string("path");
      ts.format = t.get_choice("format", trace_formats(), TraceFormat::kMoesim);
      ts.model = t.get_string("model", "");
      ts.kind = t.get_string("kind", "expert_counts");
      ts.domain = t.get_string("domain", "");
      t.finish();
      // Relative paths are relative to the scenario file.
      if (!ts.path.empty() && ts.path[0] != '/') {
        const auto slash = source.find_last_of('/');
        if (slash != std::string::npos) ts.path = source.substr(0, slash + 1) + ts.path;
      }
      if (ts.format == TraceFormat::kCountTable && (ts.model.empty() || ts.domain.empty()))
        t.fail(ts.model.empty() ? "model" : "domain", "a row selector for a count table", "nothing");
    }
    if (rs.mode == RoutingMode::kTrace && rs.trace.path.empty())
      ro.fail("trace", "a trace source {\"path\": ...} for mode \"trace\"", "nothing");
    ro.finish();
  }
  if (const Json* pl = r.optional_child("placement")) {
    ObjectReader po(*pl, source, "/placement");
    auto& ps = s.placement;
    ps.policy = po.get_string("policy", "contiguous");  // a registered placement (models::placement_policies)
    ps.redundant_experts = static_cast<int>(po.get_int_in("redundant_experts", 0, kMaxDim, 0));
    ps.groups = static_cast<int>(po.get_int_in("groups", 0, kMaxDim, 0));
    ps.nodes = static_cast<int>(po.get_int_in("nodes", 0, kMaxDim, 0));
    ps.rebalance_every = static_cast<int>(po.get_int_in("rebalance_every", 0, 1 << 30, 0));
    po.finish();
  }
  if (const Json* en = r.optional_child("engine")) {
    ObjectReader eo(*en, source, "/engine");
    s.engine.kind = eo.get_choice("kind", engine_kinds(), EngineKind::kAnalytic);
    s.engine.groups = eo.get_choice("groups", des_groups(), DesGroups::kRepresentative);
    s.engine.aggregation = eo.get_choice("aggregation", aggregations(), Aggregation::kAuto);
    s.engine.microbatches = static_cast<int>(eo.get_int_in("microbatches", 0, 1 << 20, 0));
    s.engine.precision = eo.get_number_in("precision", 1e-9, 0.1, 1e-4);
    s.engine.timeline_gpus = static_cast<int>(eo.get_int_in("timeline_gpus", -1, 1 << 20, 16));
    eo.finish();
  }
  if (const Json* out = r.optional_child("outputs")) {
    ObjectReader oo(*out, source, "/outputs");
    s.outputs.dir = oo.get_string("dir", "");
    const auto formats = oo.get_string_list("formats", {"table"});
    s.outputs.formats.clear();
    for (std::size_t i = 0; i < formats.size(); ++i)
      s.outputs.formats.push_back(output_formats().get(formats[i], source, "/outputs/formats/" + std::to_string(i)));
    oo.finish();
  }
  s.calibration = r.get_string("calibration", "");
  if (!s.calibration.empty() && s.calibration[0] != '/') {
    const auto slash = source.find_last_of('/');
    if (slash != std::string::npos) s.calibration = source.substr(0, slash + 1) + s.calibration;
  }
  if (const Json* ref = r.optional_child("reference")) {
    ObjectReader re(*ref, source, "/reference");
    auto& rf = s.reference;
    rf.source = re.get_string("source");
    rf.step_time = re.get_quantity("step_time", Dimension::kTime, NAN);
    if (const Json* ph = re.optional_child("phases")) {
      ObjectReader pr(*ph, source, "/reference/phases");
      rf.forward_only = pr.get_quantity("forward_only", Dimension::kTime, NAN);
      rf.steady = pr.get_quantity("steady", Dimension::kTime, NAN);
      rf.backward_only = pr.get_quantity("backward_only", Dimension::kTime, NAN);
      rf.weight_only = pr.get_quantity("weight_only", Dimension::kTime, NAN);
      rf.bubble = pr.get_quantity("bubble", Dimension::kTime, NAN);
      rf.optimizer = pr.get_quantity("optimizer", Dimension::kTime, NAN);
      pr.finish();
    }
    rf.tokens_per_second_per_gpu = re.get_number_in("tokens_per_second_per_gpu", 0, 1e12, NAN);
    rf.mfu = re.get_number_in("mfu", 0, 1, NAN);
    rf.tolerance = re.get_number_in("tolerance", 0, 10, 0.15);
    re.finish();
  }
  r.finish();
  validate(s);
  return s;
}

Scenario load_scenario(const std::string& path, const Catalog& catalog) {
  return scenario_from_json(read_json_file(path), path, catalog);
}

std::vector<Variant> variants_from_json(const Json& j, const std::string& source) {
  std::vector<Variant> out;
  if (!j.is_object() || !j.contains("variants")) return out;
  const Json& v = j["variants"];
  if (!v.is_array()) throw ConfigError(located_message(source, "/variants", "an array of variants", describe_json(v)));
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::string ptr = "/variants/" + std::to_string(i);
    ObjectReader r(v[i], source, ptr);
    Variant var;
    var.name = r.get_string("name");
    var.set = r.child("set");
    if (!var.set.is_object()) r.fail("set", "an object of \"path/to/key\": value", describe_json(var.set));
    r.finish();
    out.push_back(std::move(var));
  }
  return out;
}

Json apply_variant(const Json& base, const Variant& v, const std::string& source) {
  Json out = base;
  out.erase("variants");
  out["name"] = base.value("name", std::string("scenario")) + "/" + v.name;
  for (auto it = v.set.begin(); it != v.set.end(); ++it) {
    std::string path = it.key();
    if (path.empty() || path[0] != '/') path = "/" + path;
    Json::json_pointer ptr;
    try {
      ptr = Json::json_pointer(path);
    } catch (const std::exception&) {
      throw ConfigError(located_message(source, "/variants (" + v.name + ")", "a JSON pointer", "\"" + it.key() + "\""));
    }
    if (!ptr.empty() && !out.contains(ptr.parent_pointer()))
      throw ConfigError(located_message(source, "/variants (" + v.name + ")",
                                        "a path whose parent exists in the base scenario", "\"" + it.key() + "\""));
    try {
      out[ptr] = it.value();
    } catch (const Json::exception&) {  // the parent is a scalar, or an array with a non-index token
      throw ConfigError(located_message(source, "/variants (" + v.name + ")",
                                        "a path whose parent is an object or array in the base scenario",
                                        "\"" + it.key() + "\""));
    }
  }
  return out;
}

}  // namespace moesim
