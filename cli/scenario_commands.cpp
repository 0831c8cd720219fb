// `moesim compare`, `validate`, `list` and `import hf`: the commands that read scenarios and catalog
// entries without writing an output directory.
#include <cstdio>
#include <iostream>
#include <optional>

#include "cli/check.hpp"
#include "cli/commands.hpp"
#include "cli/des_process.hpp"
#include "cli/errors.hpp"
#include "models/analytic.hpp"
#include "models/params.hpp"
#include "models/placement.hpp"
#include "reports/atomic_file.hpp"
#include "reports/compare.hpp"
#include "scenarios/error.hpp"
#include "scenarios/hf_import.hpp"
#include "scenarios/loader.hpp"
#include "scenarios/params.hpp"
#include "traces/generators.hpp"
#include "traces/load.hpp"
#include "traces/policies.hpp"

namespace moesim::cli {
namespace {

models::Result evaluate(const Scenario& s) {
  const models::RoutingInput routing = check_scenario(s);
  if (s.engine.kind == EngineKind::kDes) return evaluate_des_isolated(s);
  return models::evaluate_analytic(s, routing);
}

}  // namespace

int compare_cmd(const std::vector<std::string>& paths, OutputFormat format, const ReportTarget& report,
                std::optional<EngineKind> engine, const Catalog& cat) {
  std::vector<reports::CompareRow> rows;
  std::vector<reports::ServingCompareRow> serving;
  std::string first_training, first_serving;
  // Training and serving scenarios have different results: one comparison holds one kind. The kinds are
  // checked before any evaluation.
  std::vector<std::pair<Json, std::string>> inputs;
  for (const auto& path : paths) {
    Json base = read_json_file(path);
    const bool is_serving = scenario_from_json(base, path, cat).workload.kind ==
                            WorkloadKind::kServing;  // the base must be valid
    (is_serving ? first_serving : first_training) = path;
    if (!first_serving.empty() && !first_training.empty())
      throw ConfigError("compare: expected scenarios of one workload kind, found " + first_training +
                        " (training) and " + first_serving + " (serving)");
    inputs.emplace_back(std::move(base), path);
  }
  if (!first_serving.empty() && !report.dir.empty())
    throw ConfigError(
        "compare --report: expected training scenarios (the report charts training comparisons), "
        "found the serving scenario " +
        first_serving);
  const std::optional<reports::VegaBundle> vega = prepare_report(report);  // refuse before any work
  // The base (which must be valid) and each variant (a variant that fails validation is a row saying so),
  // every one evaluated by `run` with the engine override applied.
  auto each = [&](const Json& base, const std::string& path, auto& out, auto run) {
    Scenario s = scenario_from_json(base, path, cat);
    if (engine) s.engine.kind = *engine;
    out.emplace_back();
    out.back().name = s.name;
    out.back().result = run(s);
    for (const auto& v : variants_from_json(base, path)) {
      const Json patched = apply_variant(base, v, path);
      out.emplace_back();
      out.back().name = patched.value("name", v.name);
      try {
        Scenario sv = scenario_from_json(patched, path + " (variant " + v.name + ")", cat);
        if (engine) sv.engine.kind = *engine;
        out.back().result = run(sv);
      } catch (const ConfigError& e) {
        out.back().ok = false;
        out.back().error = e.what();
      }
    }
  };
  for (const auto& [base, path] : inputs) {
    if (first_serving.empty()) {
      each(base, path, rows, [](const Scenario& s) { return evaluate(s); });
      continue;
    }
    each(base, path, serving, [](const Scenario& s) {
      check_scenario(s);
      return s.engine.kind == EngineKind::kDes
                 ? evaluate_serving_des_isolated(s)
                 : models::evaluate_serving_analytic(s, models::serving_requests(s));
    });
  }
  if (!first_serving.empty()) {
    if (format == OutputFormat::kJson)
      std::cout << reports::serving_compare_json(serving).dump(2) << "\n";
    else
      reports::write_serving_compare_table(std::cout, serving);
    return kOk;
  }
  if (format == OutputFormat::kJson)
    std::cout << reports::compare_json(rows).dump(2) << "\n";
  else
    reports::write_compare_table(std::cout, rows);
  if (vega) finish_report(report, *vega, reports::compare_json(rows).dump(2) + "\n");
  return kOk;
}

int validate_cmd(const std::vector<std::string>& paths, const Catalog& cat) {
  int first = kOk;
  int problems = 0;
  // Every problem is one line on stderr; the exit code is the first problem's.
  auto check = [&](auto&& step) {
    try {
      step();
      return true;
    } catch (const std::exception& e) {
      std::cerr << error_line(e) << "\n";
      if (first == kOk) first = exit_code(error_kind(e));
      ++problems;
      return false;
    }
  };
  for (const auto& f : paths) {
    const int before = problems;
    Json base;
    if (!check([&] { base = read_json_file(f); })) continue;
    std::vector<Variant> variants;
    check([&] { variants = variants_from_json(base, f); });
    std::optional<Scenario> s;
    check([&] {
      s = scenario_from_json(base, f, cat);
      check_scenario(*s);
    });
    for (const auto& v : variants)
      check([&] {
        check_scenario(scenario_from_json(apply_variant(base, v, f), f + " (variant " + v.name + ")", cat));
      });
    if (problems == before) std::cout << f << ": ok (" << s->name << ", " << s->cluster.gpus() << " GPUs)\n";
  }
  return first;
}

const Registry<ListTopic>& list_topics() {
  static const Registry<ListTopic> r{
      "list topic",
      "what `moesim list` shows",
      {{"models", "catalog MoE architectures (scenarios/catalog/models)", ListTopic::kModels},
       {"gpus", "catalog GPUs (scenarios/catalog/gpus)", ListTopic::kGpus},
       {"clusters", "catalog clusters (scenarios/catalog/clusters)", ListTopic::kClusters},
       {"policies", "every registry: policies, generators, placements and the enum-like settings",
        ListTopic::kPolicies},
       {"parameters", "every scenario parameter with type, range, default (docs/scenario-format.md)",
        ListTopic::kParameters}}};
  return r;
}

int list_cmd(std::optional<ListTopic> what, const Catalog& cat) {
  auto show = [&](const char* title, CatalogKind k) {
    std::cout << title << ":\n";
    for (const auto& n : cat.names(k)) std::cout << "  catalog:" << n << "\n";
  };
  const auto want = [&](ListTopic t) { return !what || *what == t; };
  if (want(ListTopic::kModels)) show("models", CatalogKind::kModel);
  if (want(ListTopic::kGpus)) show("gpus", CatalogKind::kGpu);
  if (want(ListTopic::kClusters)) show("clusters", CatalogKind::kCluster);
  if (what == ListTopic::kParameters) std::cout << parameters_markdown();
  if (want(ListTopic::kPolicies)) {
    std::vector<const RegistryBase*> regs{&traces::routing_policies(), &traces::gate_generators(),
                                          &traces::load_profiles(), &models::placement_policies()};
    for (const auto* r : setting_registries()) regs.push_back(r);
    for (const auto* r : regs) {
      std::cout << r->title() << ":\n";
      for (const auto& e : *r) std::cout << "  " << e.name << "  " << e.description << "\n";
    }
  }
  return kOk;
}

int import_hf_cmd(const std::string& path, const std::string& name, const std::string& out, bool force) {
  if (!out.empty()) reports::check_output_file(out, force, "-o");
  Json cfg = read_json_file(path);
  Json m = import_hf_config(cfg, path, name);
  const ModelSpec spec = model_from_json(m, path + " (imported)", "");
  const models::ParamCounts p = models::count_params(spec);
  const std::string text = m.dump(2) + "\n";
  if (out.empty()) {
    std::cout << text;
  } else {
    reports::write_file(out, text, force, "-o");
    std::cerr << "moesim: wrote " << out << "\n";
  }
  // One line with the counts of models/params.cpp, so they can be held against the model card.
  const auto billions = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2fB", v / 1e9);
    return std::string(b);
  };
  std::cerr << "moesim: " << spec.name << ": " << billions(p.total) << " parameters in total, "
            << billions(p.active) << " active per token (embedding and output layer included";
  if (spec.mtp_depth > 0)
    std::cerr << "; " << spec.mtp_depth << " MTP module(s) of " << billions(p.mtp) << " not included";
  std::cerr << ")\n";
  return kOk;
}

}  // namespace moesim::cli
