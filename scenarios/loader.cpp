#include "scenarios/loader.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "scenarios/error.hpp"
#include "scenarios/params.hpp"
#include "scenarios/text_input.hpp"

namespace moesim {

namespace {

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

std::string gpu_calibration_path(const GpuSpec& gpu, const Catalog& catalog, const std::string& source,
                                 const std::string& pointer) {
  std::string name;
  if (!is_catalog_ref(gpu.calibration, name))
    throw ConfigError(located_message(source, pointer, "a catalog calibration \"catalog:NAME\"",
                                      "\"" + gpu.calibration + "\""));
  return catalog.path(CatalogKind::kCalibration, name, source, pointer);
}

std::string read_calibration_text(const std::string& path, const char* what) {
  TextFile f = read_text_file(path);
  if (f.status != TextRead::kOk)
    throw CalibrationError(
        located_message(path, "", std::string("a readable ") + what, describe_failed_read(f)));
  return std::move(f.text);
}

namespace {

const Json& empty_object() {
  static const Json kEmpty = Json::object();
  return kEmpty;
}

// Runs `checks` (cross-field rules of one section) only when reading the section added no problem: its
// members may otherwise hold the defaults left behind by a key that failed to read.
template <class F>
void if_read_cleanly(Problems& problems, std::size_t before, F&& checks) {
  if (problems.size() == before) problems.check(checks);
}

// An optional section of a model (moe, mamba, gated_delta_net): its keys read into `spec`, unknown keys
// refused, then `checks` (its cross-field rules) when every key read cleanly.
template <class S, class F>
void read_section(ObjectReader& r, const char* key, const ParamTable<S>& table, S& spec, Problems& problems,
                  F&& checks) {
  const Json* j = r.optional_child(key);
  if (j == nullptr) return;
  problems.check([&] {
    ObjectReader e(*j, r.source(), r.at(key));
    const std::size_t start = problems.size();
    table.read(e, spec, &problems);
    e.finish(problems);
    if_read_cleanly(problems, start, [&] { checks(e); });
  });
}

// A hybrid model's layer pattern against the sections it needs: every layer kind it names has its
// section, every section has a layer, and the MoE layers are the pattern's alone.
void check_layer_pattern(const ModelSpec& m, const ObjectReader& r) {
  const std::string& p = m.layer_pattern;
  if (p.empty()) {
    if (m.mamba.heads > 0)
      r.fail("layer_pattern", "a pattern placing the Mamba layers (the model has a \"mamba\" section)",
             "nothing");
    if (m.gdn.key_heads > 0)
      r.fail("layer_pattern",
             "a pattern placing the Gated DeltaNet layers (the model has a \"gated_delta_net\" section)",
             "nothing");
    return;
  }
  for (std::size_t i = 0; i < p.size(); ++i)
    if (std::string("MG*-E").find(p[i]) == std::string::npos)
      r.fail("layer_pattern",
             "one of M (Mamba-2), G (Gated DeltaNet), * (attention), - (dense MLP), E (MoE) per layer",
             "'" + std::string(1, p[i]) + "' at layer " + std::to_string(i));
  if (static_cast<int>(p.size()) != m.layers)
    r.fail("layer_pattern", "one character per layer (layers " + std::to_string(m.layers) + ")",
           std::to_string(p.size()) + " characters");
  const auto has = [&](char c) { return p.find(c) != std::string::npos; };
  if (has('E') != (m.moe.experts > 0))
    r.fail("layer_pattern",
           has('E') ? "a \"moe\" section for its E layers" : "E layers for the \"moe\" section",
           has('E') ? "no \"moe\" section" : "none");
  if (has('M') != (m.mamba.heads > 0))
    r.fail("layer_pattern",
           has('M') ? "a \"mamba\" section for its M layers" : "M layers for the \"mamba\" section",
           has('M') ? "no \"mamba\" section" : "none");
  if (has('G') != (m.gdn.key_heads > 0))
    r.fail("layer_pattern",
           has('G') ? "a \"gated_delta_net\" section for its G layers"
                    : "G layers for the \"gated_delta_net\" section",
           has('G') ? "no \"gated_delta_net\" section" : "none");
  if (has('-') && m.dense_ffn == 0)
    r.fail("dense_ffn", "a positive dense FFN size (the layer_pattern has - layers)", "0");
  if (m.moe.experts > 0 && (m.moe.first_dense_layers != 0 || m.moe.layer_freq != 1))
    r.fail("layer_pattern",
           "moe.first_dense_layers 0 and moe.layer_freq 1 with a pattern (the pattern places the MoE layers)",
           "first_dense_layers " + std::to_string(m.moe.first_dense_layers) + ", layer_freq " +
               std::to_string(m.moe.layer_freq));
}

}  // namespace

ModelSpec model_from_json(const Json& j, const std::string& source, const std::string& pointer,
                          Problems& problems) {
  ModelSpec m;
  ObjectReader r(j, source, pointer);
  const std::size_t before = problems.size();
  model_params().read(r, m, &problems);
  problems.check([&] {
    ObjectReader a(r.child("attention"), source, r.at("attention"));
    auto& at = m.attention;
    const std::size_t start = problems.size();
    attention_params().read(a, at, &problems);
    a.finish(problems);
    if_read_cleanly(problems, start, [&] {
      if (at.kind != AttentionKind::kMla && at.heads % at.kv_heads != 0)
        a.fail("kv_heads", "a divisor of heads (" + std::to_string(at.heads) + ")",
               std::to_string(at.kv_heads));
      if (at.kind == AttentionKind::kMla && at.output_gate)
        a.fail("output_gate", "false for kind \"mla\" (gated attention is priced for MHA and GQA)", "true");
      if (at.kind == AttentionKind::kMha && at.kv_heads != at.heads)
        a.fail("kv_heads", "kv_heads == heads for kind \"mha\" (use \"gqa\")", std::to_string(at.kv_heads));
    });
  });
  read_section(r, "moe", moe_params(), m.moe, problems, [&](const ObjectReader& e) {
    const auto& x = m.moe;
    if (x.top_k > x.experts)
      e.fail("top_k", "at most experts (" + std::to_string(x.experts) + ")", std::to_string(x.top_k));
    if (x.experts % x.groups != 0)
      e.fail("groups", "a divisor of experts (" + std::to_string(x.experts) + ")", std::to_string(x.groups));
    if (x.topk_groups > x.groups)
      e.fail("topk_groups", "at most groups (" + std::to_string(x.groups) + ")",
             std::to_string(x.topk_groups));
    if (x.topk_groups > 0 && x.top_k > x.topk_groups * (x.experts / x.groups))
      e.fail("top_k", "at most topk_groups x experts per group", std::to_string(x.top_k));
  });
  read_section(r, "mamba", mamba_params(), m.mamba, problems, [&](const ObjectReader& e) {
    if (m.mamba.heads % m.mamba.groups != 0)
      e.fail("groups", "a divisor of heads (" + std::to_string(m.mamba.heads) + ")",
             std::to_string(m.mamba.groups));
  });
  read_section(r, "gated_delta_net", gdn_params(), m.gdn, problems, [&](const ObjectReader& e) {
    if (m.gdn.value_heads % m.gdn.key_heads != 0)
      e.fail("value_heads", "a multiple of key_heads (" + std::to_string(m.gdn.key_heads) + ")",
             std::to_string(m.gdn.value_heads));
  });
  r.finish(problems);
  if_read_cleanly(problems, before, [&] { check_layer_pattern(m, r); });
  if_read_cleanly(problems, before, [&] {
    if (m.moe.experts > 0) {
      if (m.moe.first_dense_layers > m.layers)
        throw ConfigError(located_message(source, r.at("moe") + "/first_dense_layers",
                                          "at most layers (" + std::to_string(m.layers) + ")",
                                          std::to_string(m.moe.first_dense_layers)));
      if (m.moe.first_dense_layers > 0 && m.dense_ffn == 0)
        r.fail("dense_ffn", "a positive dense FFN size (first_dense_layers > 0)", "0");
    } else if (m.dense_ffn == 0) {
      r.fail("dense_ffn", "a positive size for a model without \"moe\"", "nothing");
    }
  });
  return m;
}

ModelSpec model_from_json(const Json& j, const std::string& source, const std::string& pointer) {
  Problems problems;
  ModelSpec m;
  problems.check([&] { m = model_from_json(j, source, pointer, problems); });
  problems.raise();
  return m;
}

Json model_to_json(const ModelSpec& m) {
  Json j = model_params().resolved(m);
  if (m.layer_pattern.empty()) j.erase("layer_pattern");  // transformer blocks: as before patterns existed
  Json at = attention_params().resolved(m.attention);
  // Keys of one attention kind only (elsewhere unknown keys): MLA has no kv_heads, the others no ranks.
  if (m.attention.kind == AttentionKind::kMla)
    at.erase("kv_heads");
  else
    for (const char* k : {"q_lora_rank", "kv_lora_rank", "rope_head_dim"}) at.erase(k);
  j["attention"] = at;
  if (m.moe.experts > 0) j["moe"] = moe_params().resolved(m.moe);
  if (m.mamba.heads > 0) j["mamba"] = mamba_params().resolved(m.mamba);
  if (m.gdn.key_heads > 0) j["gated_delta_net"] = gdn_params().resolved(m.gdn);
  return j;
}

GpuSpec gpu_from_json(const Json& j, const std::string& source, const std::string& pointer,
                      Problems& problems) {
  ObjectReader r(j, source, pointer);
  GpuSpec g;
  const std::size_t before = problems.size();
  gpu_params().read(r, g, &problems);
  r.finish(problems);
  if_read_cleanly(problems, before, [&] {
    if (g.flops_bf16 <= 0) r.fail("flops_bf16", "a positive compute rate", "0");
    if (g.memory_bandwidth <= 0) r.fail("memory_bandwidth", "a positive bandwidth", "0");
  });
  return g;
}

GpuSpec gpu_from_json(const Json& j, const std::string& source, const std::string& pointer) {
  Problems problems;
  GpuSpec g;
  problems.check([&] { g = gpu_from_json(j, source, pointer, problems); });
  problems.raise();
  return g;
}

ClusterSpec cluster_from_json(const Json& j, const std::string& source, const std::string& pointer,
                              const Catalog& catalog, Json* resolved, Problems& problems) {
  ObjectReader r(j, source, pointer);
  ClusterSpec c;
  const std::size_t before = problems.size();
  problems.check([&] {
    std::string gsrc;
    const Json g = resolve_ref(r.child("gpu"), CatalogKind::kGpu, source, r.at("gpu"), catalog, &gsrc);
    c.gpu = gpu_from_json(g, gsrc, gsrc == source ? r.at("gpu") : "", problems);
  });
  cluster_params().read(r, c, &problems);
  problems.check([&] {
    const Json* su = r.optional_child("scale_up");
    ObjectReader s(su ? *su : empty_object(), source, r.at("scale_up"));
    c.scale_up.bandwidth = c.gpu.nvlink_bandwidth;  // the default the table derives
    scale_up_params().read(s, c.scale_up, &problems);
    s.finish(problems);
  });
  if (c.scale_up.domain_gpus == 0) c.scale_up.domain_gpus = c.gpus_per_node;
  const Json* so = r.optional_child("scale_out");
  if (so) {
    problems.check([&] {
      ObjectReader s(*so, source, r.at("scale_out"));
      scale_out_params().read(s, c.scale_out, &problems);
      s.finish(problems);
    });
  }
  r.finish(problems);
  if_read_cleanly(problems, before, [&] {
    if (!so && c.nodes > 1)
      r.fail("scale_out", "a scale_out section for a cluster of more than one node", "nothing");
  });
  if (resolved && problems.size() == before) {
    *resolved = cluster_params().resolved(c);
    (*resolved)["gpu"] = gpu_params().resolved(c.gpu);
    (*resolved)["scale_up"] = scale_up_params().resolved(c.scale_up);
    if (so) (*resolved)["scale_out"] = scale_out_params().resolved(c.scale_out);
  }
  return c;
}

ClusterSpec cluster_from_json(const Json& j, const std::string& source, const std::string& pointer,
                              const Catalog& catalog, Json* resolved) {
  Problems problems;
  ClusterSpec c;
  problems.check([&] { c = cluster_from_json(j, source, pointer, catalog, resolved, problems); });
  problems.raise();
  return c;
}

namespace {

// The scenario as the engines see it: every declared parameter with the value used (defaults filled in,
// derived degrees and resolved paths), for scenario.resolved.json.
void write_resolved(Scenario& s) {
  Json& j = s.resolved;
  const Json top = top_level_params().resolved(s);
  if (!s.reference.empty()) {
    j["reference"] = reference_params().resolved(s.reference);
    j["reference"]["phases"] = reference_phase_params().resolved(s.reference);
  }
  for (auto it = top.begin(); it != top.end(); ++it) j[it.key()] = it.value();
  if (!s.calibration.empty()) j["calibration"] = std::filesystem::absolute(s.calibration).string();
  if (s.workload.kind == WorkloadKind::kServing) {
    Json sv = serving_params().resolved(s.serving);
    sv["instances"] = Json::array();
    for (const ServingInstanceSpec& in : s.serving.instances) {
      Json i = serving_instance_params().resolved(in);
      i["gpu"] = in.gpu_spec.name;
      sv["instances"].push_back(std::move(i));
    }
    sv["requests"] = request_params().resolved(s.serving.requests);
    if (!s.serving.requests.trace.empty())
      sv["requests"]["trace"] = std::filesystem::absolute(s.serving.requests.trace).string();
    j["serving"] = sv;
  } else {
    Json par = parallelism_params().resolved(s.parallelism);
    par["attention"] = attention_parallel_params().resolved(s.parallelism);
    par["experts"] = expert_parallel_params().resolved(s.parallelism);
    par["attention"]["dp"] = s.layout.dp;
    par["experts"]["edp"] = s.layout.edp;
    j["parallelism"] = par;
  }
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

namespace {

// The serving section: its settings, the instance kinds (a non-empty array) and the request source.
void read_serving(const Json& j, const std::string& source, const Catalog& catalog, Scenario& s,
                  Problems& problems) {
  (void)catalog;
  ObjectReader r(j, source, "/serving");
  ServingSpec& sv = s.serving;
  serving_params().read(r, sv, &problems);
  problems.check([&] {
    const Json& list = r.child("instances");
    if (!list.is_array() || list.empty())
      r.fail("instances", "a non-empty array of serving instances ({\"role\": ..., \"nodes\": ...})",
             describe_json(list));
    for (std::size_t i = 0; i < list.size(); ++i) {
      ServingInstanceSpec in;
      problems.check([&] {
        ObjectReader ir(list[i], source, "/serving/instances/" + std::to_string(i));
        serving_instance_params().read(ir, in, &problems);
        ir.finish(problems);
      });
      sv.instances.push_back(in);
    }
  });
  problems.check([&] {
    const Json* q = r.optional_child("requests");
    ObjectReader qr(q ? *q : empty_object(), source, "/serving/requests");
    request_params().read(qr, sv.requests, &problems);
    qr.finish(problems);
  });
  r.finish(problems);
}

void resolve_instance_gpu(Scenario& s, std::size_t i, const Catalog& catalog) {
  ServingInstanceSpec& in = s.serving.instances[i];
  const std::string ptr = "/serving/instances/" + std::to_string(i) + "/gpu";
  if (in.gpu.empty()) {
    in.gpu_spec = s.cluster.gpu;
  } else {
    std::string gsrc;
    const Json g = resolve_ref(Json(in.gpu), CatalogKind::kGpu, s.source, ptr, catalog, &gsrc);
    in.gpu_spec = gpu_from_json(g, gsrc, gsrc == s.source ? ptr : "");
  }
  // The instance's own GPU brings its own default calibration (the scenario's calibration file, when it
  // names one, prices every instance and must be for that GPU).
  if (s.calibration.empty() && !in.gpu_spec.calibration.empty()) {
    in.gpu_calibration = gpu_calibration_path(in.gpu_spec, catalog, s.source, ptr);
    in.gpu_calibration_text = read_calibration_text(in.gpu_calibration);
  }
}

}  // namespace

Scenario scenario_from_json(const Json& j, const std::string& source, const Catalog& catalog) {
  Scenario s;
  s.source = source;
  Problems problems;
  ObjectReader r(j, source, "");
  top_level_params().read(r, s, &problems);
  r.optional_child("variants");  // read by variants_from_json

  problems.check([&] {
    std::string msrc;
    const Json m = resolve_ref(r.child("model"), CatalogKind::kModel, source, "/model", catalog, &msrc);
    s.model = model_from_json(m, msrc, msrc == source ? "/model" : "", problems);
  });
  Json cluster_resolved;
  problems.check([&] {
    std::string csrc;
    const Json c = resolve_ref(r.child("cluster"), CatalogKind::kCluster, source, "/cluster", catalog, &csrc);
    s.cluster =
        cluster_from_json(c, csrc, csrc == source ? "/cluster" : "", catalog, &cluster_resolved, problems);
  });
  problems.check([&] {
    ObjectReader w(r.child("workload"), source, "/workload");
    workload_params().read(w, s.workload, &problems);
    w.finish(problems);
  });
  // A serving scenario gives its layouts per instance (/serving/instances), a training one in /parallelism.
  const bool serving = s.workload.kind == WorkloadKind::kServing;
  if (!serving) {
    problems.check([&] {
      ObjectReader p(r.child("parallelism"), source, "/parallelism");
      auto& par = s.parallelism;
      problems.check([&] {
        const Json* a = p.optional_child("attention");
        ObjectReader at(a ? *a : empty_object(), source, "/parallelism/attention");
        attention_parallel_params().read(at, par, &problems);
        at.finish(problems);
      });
      problems.check([&] {
        const Json* e = p.optional_child("experts");
        ObjectReader ex(e ? *e : empty_object(), source, "/parallelism/experts");
        expert_parallel_params().read(ex, par, &problems);
        ex.finish(problems);
      });
      parallelism_params().read(p, par, &problems);
      p.finish(problems);
    });
  } else if (r.has("parallelism")) {
    problems.check([&] {
      r.fail("parallelism",
             "no parallelism section in a serving scenario (each of /serving/instances gives its own tp; "
             "experts run expert-parallel over the instance's GPUs)",
             "one");
    });
  }
  if (const Json* sv = r.optional_child("serving")) {
    if (!serving)
      problems.check([&] { r.fail("serving", "no serving section with workload.kind \"training\"", "one"); });
    else
      problems.check([&] { read_serving(*sv, source, catalog, s, problems); });
  } else if (serving) {
    problems.check([&] { r.fail("serving", "a serving section for workload.kind \"serving\"", "nothing"); });
  }
  if (const Json* rt = r.optional_child("routing")) {
    problems.check([&] {
      ObjectReader ro(*rt, source, "/routing");
      auto& rs = s.routing;
      routing_params().read(ro, rs, &problems);
      problems.check([&] {
        const Json* ld = ro.optional_child("load");
        ObjectReader l(ld ? *ld : empty_object(), source, "/routing/load");
        load_params().read(l, rs.load, &problems);
        l.finish(problems);
      });
      if (const Json* tr = ro.optional_child("trace")) {
        problems.check([&] {
          ObjectReader t(*tr, source, "/routing/trace");
          auto& ts = rs.trace;
          const std::size_t before = problems.size();
          trace_params().read(t, ts, &problems);
          t.finish(problems);
          // Relative paths are relative to the scenario file.
          if (!ts.path.empty() && ts.path[0] != '/') {
            const auto slash = source.find_last_of('/');
            if (slash != std::string::npos) ts.path = source.substr(0, slash + 1) + ts.path;
          }
          if_read_cleanly(problems, before, [&] {
            if (ts.format == TraceFormat::kCountTable && (ts.model.empty() || ts.domain.empty()))
              t.fail(ts.model.empty() ? "model" : "domain", "a row selector for a count table", "nothing");
          });
        });
      }
      if (rs.mode == RoutingMode::kTrace && rs.trace.path.empty() && !ro.has("trace"))
        ro.fail("trace", "a trace source {\"path\": ...} for mode \"trace\"", "nothing");
      ro.finish(problems);
    });
  }
  const auto section = [&](const char* key, const char* pointer, auto& table, auto& spec) {
    if (const Json* v = r.optional_child(key))
      problems.check([&] {
        ObjectReader o(*v, source, pointer);
        table.read(o, spec, &problems);
        o.finish(problems);
      });
  };
  section("placement", "/placement", placement_params(), s.placement);
  section("engine", "/engine", engine_params(), s.engine);
  section("outputs", "/outputs", output_params(), s.outputs);
  if (const Json* ref = r.optional_child("reference")) {
    problems.check([&] {
      ObjectReader re(*ref, source, "/reference");
      reference_params().read(re, s.reference, &problems);
      if (const Json* ph = re.optional_child("phases"))
        problems.check([&] {
          ObjectReader pr(*ph, source, "/reference/phases");
          reference_phase_params().read(pr, s.reference, &problems);
          pr.finish(problems);
        });
      re.finish(problems);
    });
  }
  r.finish(problems);
  // Every path a scenario names is relative to the scenario's folder.
  for (std::string* path : {&s.calibration, &s.outputs.dir, &s.serving.requests.trace}) {
    if (path->empty() || (*path)[0] == '/') continue;
    const auto slash = source.find_last_of('/');
    if (slash != std::string::npos) *path = source.substr(0, slash + 1) + *path;
  }
  if (problems.empty() && !s.calibration.empty())
    problems.check([&] { s.calibration_text = read_calibration_text(s.calibration); });
  if (problems.empty() && s.calibration.empty() && !s.cluster.gpu.calibration.empty())
    problems.check([&] {
      s.gpu_calibration = gpu_calibration_path(s.cluster.gpu, catalog, source, "/cluster/gpu/calibration");
      s.gpu_calibration_text = read_calibration_text(s.gpu_calibration);
    });
  if (problems.empty() && serving)
    for (std::size_t i = 0; i < s.serving.instances.size(); ++i)
      problems.check([&] { resolve_instance_gpu(s, i, catalog); });
  if (problems.empty()) serving ? validate_serving(s, problems) : validate(s, problems);
  problems.raise();
  s.resolved["model"] = model_to_json(s.model);
  s.resolved["cluster"] = cluster_resolved;
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
