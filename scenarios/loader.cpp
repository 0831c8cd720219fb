#include "scenarios/loader.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "scenarios/error.hpp"
#include "scenarios/params.hpp"

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
      throw ConfigError(located_message(
          source, pointer,
          std::string("an inline object or \"catalog:NAME\" (a ") + to_string(kind) + " entry)",
          describe_json(value)));
    *entry_source = catalog.path(kind, name, source, pointer);
    return read_json_file(*entry_source);
  }
  if (!value.is_object())
    throw ConfigError(
        located_message(source, pointer, "an inline object or \"catalog:NAME\"", describe_json(value)));
  *entry_source = source;
  return value;
}

}  // namespace

std::string read_calibration_text(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f)
    throw CalibrationError(located_message(path, "", "a readable calibration file",
                                           std::string("none (") + std::strerror(errno) + ")"));
  std::string text;
  char buf[1 << 16];
  std::size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, got);
  const bool bad = std::ferror(f) != 0;
  std::fclose(f);
  if (bad) throw CalibrationError(located_message(path, "", "a readable calibration file", "a read error"));
  return text;
}

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
      a.fail("kv_heads", "a divisor of heads (" + std::to_string(at.heads) + ")",
             std::to_string(at.kv_heads));
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
      e.fail("topk_groups", "at most groups (" + std::to_string(s.groups) + ")",
             std::to_string(s.topk_groups));
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
  static const Json kEmpty = Json::object();
  {
    std::string gsrc;
    Json g = resolve_ref(r.child("gpu"), CatalogKind::kGpu, source, r.at("gpu"), catalog, &gsrc);
    c.gpu = gpu_from_json(g, gsrc, gsrc == source ? r.at("gpu") : "");
    if (resolved) (*resolved)["gpu"] = g;
  }
  cluster_params().read(r, c);
  {
    const Json* su = r.optional_child("scale_up");
    ObjectReader s(su ? *su : kEmpty, source, r.at("scale_up"));
    c.scale_up.bandwidth = c.gpu.nvlink_bandwidth;  // the default the table derives
    scale_up_params().read(s, c.scale_up);
    s.finish();
  }
  if (c.scale_up.domain_gpus == 0) c.scale_up.domain_gpus = c.gpus_per_node;
  const Json* so = r.optional_child("scale_out");
  if (so) {
    ObjectReader s(*so, source, r.at("scale_out"));
    scale_out_params().read(s, c.scale_out);
    s.finish();
  } else if (c.nodes > 1) {
    r.fail("scale_out", "a scale_out section for a cluster of more than one node", "nothing");
  }
  r.finish();
  if (resolved) {
    for (auto it = j.begin(); it != j.end(); ++it)
      if (it.key() != "gpu") (*resolved)[it.key()] = it.value();
    const Json cl = cluster_params().resolved(c);
    for (auto it = cl.begin(); it != cl.end(); ++it) (*resolved)[it.key()] = it.value();
    (*resolved)["scale_up"] = scale_up_params().resolved(c.scale_up);
    if (so) (*resolved)["scale_out"] = scale_out_params().resolved(c.scale_out);
  }
  return c;
}

namespace {

// The scenario as the engines see it: every declared parameter with the value used (defaults filled in,
// derived degrees and resolved paths), for scenario.resolved.json.
void write_resolved(Scenario& s) {
  Json& j = s.resolved;
  const Json top = top_level_params().resolved(s);
  for (auto it = top.begin(); it != top.end(); ++it) j[it.key()] = it.value();
  if (!s.calibration.empty()) j["calibration"] = std::filesystem::absolute(s.calibration).string();
  Json par = parallelism_params().resolved(s.parallelism);
  par["attention"] = attention_parallel_params().resolved(s.parallelism);
  par["experts"] = expert_parallel_params().resolved(s.parallelism);
  par["attention"]["dp"] = s.layout.dp;
  par["experts"]["edp"] = s.layout.edp;
  j["parallelism"] = par;
  j["workload"] = workload_params().resolved(s.workload);
  Json routing = routing_params().resolved(s.routing);
  routing["load"] = load_params().resolved(s.routing.load);
  if (!s.routing.trace.path.empty()) {
    routing["trace"] = trace_params().resolved(s.routing.trace);
    routing["trace"]["path"] = std::filesystem::absolute(s.routing.trace.path).string();
  }
  j["routing"] = routing;
  j["placement"] = placement_params().resolved(s.placement);
  j["engine"] = engine_params().resolved(s.engine);
  j["outputs"] = output_params().resolved(s.outputs);
}

}  // namespace

Scenario scenario_from_json(const Json& j, const std::string& source, const Catalog& catalog) {
  Scenario s;
  s.source = source;
  ObjectReader r(j, source, "");
  top_level_params().read(r, s);
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
  static const Json kEmpty = Json::object();
  {
    ObjectReader p(r.child("parallelism"), source, "/parallelism");
    auto& par = s.parallelism;
    {
      const Json* a = p.optional_child("attention");
      ObjectReader at(a ? *a : kEmpty, source, "/parallelism/attention");
      attention_parallel_params().read(at, par);
      at.finish();
    }
    {
      const Json* e = p.optional_child("experts");
      ObjectReader ex(e ? *e : kEmpty, source, "/parallelism/experts");
      expert_parallel_params().read(ex, par);
      ex.finish();
    }
    parallelism_params().read(p, par);
    p.finish();
  }
  {
    ObjectReader w(r.child("workload"), source, "/workload");
    workload_params().read(w, s.workload);
    w.finish();
  }
  if (const Json* rt = r.optional_child("routing")) {
    ObjectReader ro(*rt, source, "/routing");
    auto& rs = s.routing;
    routing_params().read(ro, rs);
    {
      const Json* ld = ro.optional_child("load");
      ObjectReader l(ld ? *ld : kEmpty, source, "/routing/load");
      load_params().read(l, rs.load);
      l.finish();
    }
    if (const Json* tr = ro.optional_child("trace")) {
      ObjectReader t(*tr, source, "/routing/trace");
      auto& ts = rs.trace;
      trace_params().read(t, ts);
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
    placement_params().read(po, s.placement);
    po.finish();
  }
  if (const Json* en = r.optional_child("engine")) {
    ObjectReader eo(*en, source, "/engine");
    engine_params().read(eo, s.engine);
    eo.finish();
  }
  if (const Json* out = r.optional_child("outputs")) {
    ObjectReader oo(*out, source, "/outputs");
    output_params().read(oo, s.outputs);
    oo.finish();
  }
  if (!s.calibration.empty() && s.calibration[0] != '/') {
    const auto slash = source.find_last_of('/');
    if (slash != std::string::npos) s.calibration = source.substr(0, slash + 1) + s.calibration;
  }
  if (!s.calibration.empty()) s.calibration_text = read_calibration_text(s.calibration);
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
  write_resolved(s);
  return s;
}

Scenario load_scenario(const std::string& path, const Catalog& catalog) {
  return scenario_from_json(read_json_file(path), path, catalog);
}

std::vector<Variant> variants_from_json(const Json& j, const std::string& source) {
  std::vector<Variant> out;
  if (!j.is_object() || !j.contains("variants")) return out;
  const Json& v = j["variants"];
  if (!v.is_array())
    throw ConfigError(located_message(source, "/variants", "an array of variants", describe_json(v)));
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
      throw ConfigError(
          located_message(source, "/variants (" + v.name + ")", "a JSON pointer", "\"" + it.key() + "\""));
    }
    if (!ptr.empty() && !out.contains(ptr.parent_pointer()))
      throw ConfigError(located_message(source, "/variants (" + v.name + ")",
                                        "a path whose parent exists in the base scenario",
                                        "\"" + it.key() + "\""));
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
