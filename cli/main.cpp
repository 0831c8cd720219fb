// moesim command line: argument handling, and the only place that turns errors into exit codes
// (cli/errors.hpp, docs/exit-codes.md).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <optional>

#include "cli/check.hpp"
#include "cli/commands.hpp"
#include "cli/errors.hpp"
#include "models/analytic.hpp"
#include "models/op_table.hpp"
#include "models/serving.hpp"
#include "reports/html_report.hpp"
#include "reports/serving.hpp"
#include "reports/writers.hpp"
#include "scenarios/catalog.hpp"
#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"
#include "sim/serving_sim.hpp"
#include "sim/step_sim.hpp"

using moesim::Json;
using moesim::cli::kInfeasible;
using moesim::cli::kOk;
using moesim::cli::kUsage;

namespace {

// A serving scenario: the request-level engines of models/serving.hpp (analytic) and sim/serving_sim.hpp
// (discrete-event), their table, JSON or CSV, and the run's output directory.
int run_serving(const moesim::Scenario& s, moesim::OutputFormat format, const std::string& out_dir,
                bool force, bool ops, bool report) {
  moesim::cli::check_scenario(s);
  if (ops) {
    // Every instance kind's iteration, op by op, at the analytic engine's steady-state batches (whichever
    // engine the scenario names: the discrete-event engine prices its iterations with the same ops).
    const moesim::models::ServingResult a =
        moesim::models::evaluate_serving_analytic(s, moesim::models::serving_requests(s));
    const auto rows = moesim::models::serving_op_rows(s, a);
    switch (format) {
      case moesim::OutputFormat::kJson:
        std::cout << moesim::reports::serving_ops_json(rows, s).dump(2) << "\n";
        break;
      case moesim::OutputFormat::kCsv:
        moesim::reports::write_serving_ops_csv(std::cout, rows, s);
        break;
      case moesim::OutputFormat::kTable:
        for (std::size_t k = 0; k < rows.size(); ++k) {
          const auto& ir = a.instances[k];
          moesim::reports::OpsTableText t;
          char batch[160];
          std::snprintf(batch, sizeof batch, "%.1f decoding sequences + %.0f prompt tokens per DP rank",
                        ir.decode_batch, ir.prefill_tokens);
          t.title = "ops of one iteration of instance kind " + std::to_string(k) + " (" +
                    moesim::to_string(ir.role) + ", " + ir.gpu +
                    "), one GPU, at the analytic steady state: " + batch +
                    "; routed experts at the placement's expected loads; every op in its own stream";
          t.heading = "ms/iter";
          t.scale = 1e3;
          t.unit = "ms";
          t.after_total =
              "of op time per iteration (two microbatches and the all-to-all overlap: see the result)";
          if (k > 0) std::cout << "\n";
          moesim::reports::write_ops_table(std::cout, rows[k], 0, t);
        }
        break;
    }
    return a.feasible ? kOk : kInfeasible;
  }
  const bool simulate = s.engine.kind == moesim::EngineKind::kDes;
  const std::string dir = !out_dir.empty() ? out_dir : s.outputs.dir;
  const std::string dir_option = !out_dir.empty() ? "--out" : "/outputs/dir of " + s.source;
  if (report && dir.empty())
    throw moesim::ConfigError(
        "--report: expected an output directory (--out DIR or the scenario's /outputs/dir), found none");
  if (!dir.empty())
    moesim::reports::check_run_outputs(
        dir, moesim::reports::serving_output_files(s.outputs.formats, simulate), force, dir_option);
  std::optional<moesim::reports::VegaBundle> vega;
  if (report) vega = moesim::reports::load_vega_bundle();
  const std::vector<moesim::traces::Request> requests = moesim::models::serving_requests(s);
  std::vector<moesim::models::ServedRequest> rows;
  const moesim::models::ServingResult r = simulate ? moesim::sim::simulate_serving(s, requests, &rows)
                                                   : moesim::models::evaluate_serving_analytic(s, requests);
  switch (format) {
    case moesim::OutputFormat::kJson:
      std::cout << moesim::reports::serving_json(s, r).dump(2) << "\n";
      break;
    case moesim::OutputFormat::kCsv:
      moesim::reports::write_serving_csv(std::cout, r);
      break;
    case moesim::OutputFormat::kTable:
      moesim::reports::write_serving_table(std::cout, s, r);
      break;
  }
  if (!dir.empty())
    moesim::reports::write_serving_outputs(dir, s, r, force, dir_option, simulate ? &rows : nullptr);
  if (vega) {
    const std::string page = moesim::reports::write_report(dir, moesim::reports::build_report(dir), *vega);
    std::cerr << "moesim: report: " << page << "\n";
  }
  return r.feasible ? kOk : kInfeasible;
}

int run_cmd(const std::string& path, moesim::OutputFormat format, const std::string& out_dir, bool force,
            bool ops, bool report, std::optional<moesim::EngineKind> engine, const moesim::Catalog& cat) {
  moesim::Scenario s = moesim::load_scenario(path, cat);
  if (engine) {
    s.engine.kind = *engine;
    s.resolved["engine"]["kind"] = moesim::to_string(*engine);
  }
  if (s.workload.kind == moesim::WorkloadKind::kServing)
    return run_serving(s, format, out_dir, force, ops, report);
  const moesim::models::RoutingInput routing = moesim::cli::check_scenario(s);
  const bool simulate = s.engine.kind == moesim::EngineKind::kDes;
  const std::string dir = !out_dir.empty() ? out_dir : s.outputs.dir;
  const std::string dir_option = !out_dir.empty() ? "--out" : "/outputs/dir of " + s.source;
  if (report && dir.empty())
    throw moesim::ConfigError(
        "--report: expected an output directory (--out DIR or the scenario's "
        "/outputs/dir), found none");
  if (!dir.empty())  // refuse before a long simulation, not after it
    moesim::reports::check_run_outputs(dir, moesim::reports::run_output_files(s.outputs.formats, simulate),
                                       force, dir_option);
  std::optional<moesim::reports::VegaBundle> vega;
  if (report) vega = moesim::reports::load_vega_bundle();
  std::optional<moesim::sim::StepSimResult> des;
  // The engines take the routing resolved by the checks: neither reads a file.
  if (simulate) des = moesim::sim::simulate_step(s, moesim::sim::step_options(s.engine), &routing);
  const moesim::models::Result r = des ? des->result : moesim::models::evaluate_analytic(s, routing);
  const moesim::sim::StepSimResult* d = des ? &*des : nullptr;
  // Both engines run the same priced workload: its ops are listed once, whichever engine ran.
  moesim::models::RunTables tables;
  if (ops || !dir.empty()) tables = moesim::models::run_tables(s, routing);
  const std::vector<moesim::models::OpRow>& op_rows = tables.ops;
  if (ops) {
    switch (format) {
      case moesim::OutputFormat::kJson:
        std::cout << moesim::reports::ops_json(op_rows).dump(2) << "\n";
        break;
      case moesim::OutputFormat::kCsv:
        moesim::reports::write_ops_csv(std::cout, op_rows);
        break;
      case moesim::OutputFormat::kTable:
        moesim::reports::write_ops_table(std::cout, op_rows, r.critical_rank);
        break;
    }
  }
  if (!ops) {
    switch (format) {
      case moesim::OutputFormat::kJson:
        std::cout << moesim::reports::result_json(s, r, d).dump(2) << "\n";
        break;
      case moesim::OutputFormat::kCsv:
        moesim::reports::write_summary_csv(std::cout, r);
        break;
      case moesim::OutputFormat::kTable:
        moesim::reports::write_table(std::cout, s, r, d);
        break;
    }
  }
  if (!dir.empty())
    moesim::reports::write_run_outputs(dir, s, r, force, d, op_rows, dir_option, tables.gpu_load);
  if (vega) {
    const std::string page = moesim::reports::write_report(dir, moesim::reports::build_report(dir), *vega);
    std::cerr << "moesim: report: " << page << "\n";
  }
  return r.feasible ? kOk : kInfeasible;
}

// The names of `values` in `registry`: the part of a registry one command accepts, for CLI::IsMember.
template <class E>
std::vector<std::string> names_of(const moesim::Registry<E>& registry, std::initializer_list<E> values) {
  std::vector<std::string> names;
  for (const E& v : values) names.push_back(registry.name_of(v));
  return names;
}

// CLI11 answers a word that names no subcommand with "A subcommand is required"; this names the word
// and the subcommands expected where it stands (empty when the command line has no such word).
std::string unknown_command(CLI::App& app, int argc, char** argv) {
  CLI::App* at = &app;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word.empty() || word[0] == '-' || at->get_require_subcommand_min() == 0) return "";
    const std::vector<CLI::App*> subs = at->get_subcommands([](CLI::App*) { return true; });
    CLI::App* next = nullptr;
    for (CLI::App* c : subs)
      if (c->check_name(word)) next = c;
    path += (path.empty() ? "" : " ") + word;
    if (next == nullptr) {
      std::vector<std::string> names;
      for (const CLI::App* c : subs) names.push_back(c->get_name());
      return "unknown command \"" + path + "\": expected one of " + moesim::join_names(names);
    }
    at = next;
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  using moesim::EngineKind;
  using moesim::OutputFormat;
  using moesim::TraceFormat;
  CLI::App app{"moesim: performance model and simulator for Mixture-of-Experts training on GPU clusters"};
  app.require_subcommand(1);
  app.set_version_flag("--version",
                       std::string(moesim::reports::version()) + " (" + moesim::reports::git_sha() + ")");
  // Settings named on the command line are checked against their registries (or the part of one a
  // command supports) by CLI11 and parsed to their enumerators after parsing.
  const auto& formats = moesim::output_formats();
  const std::vector<std::string> table_or_json =
      names_of(formats, {OutputFormat::kTable, OutputFormat::kJson});
  const std::string table = moesim::to_string(OutputFormat::kTable);
  std::string format = table, out_dir, what, name, output;
  std::vector<std::string> files;
  std::string file, engine;
  bool force = false;

  auto* run =
      app.add_subcommand("run", "Evaluate a scenario and print its result (exit 6 if it does not fit)");
  run->add_option("scenario", file, "Scenario JSON file")->required();
  run->add_option("--format", format, "Output on stdout")
      ->check(CLI::IsMember(formats.names()))
      ->capture_default_str();
  run->add_option("--out", out_dir, "Output directory (overrides the scenario's outputs.dir)");
  run->add_flag("--force", force, "Overwrite existing result files in the output directory");
  bool ops = false;
  run->add_flag(
      "--ops", ops,
      "Print every op instead of the result: the critical pipeline rank's ops summed by op and pass "
      "(table), or every rank's ops per block (csv, json); --out writes ops.csv either way");
  bool run_report = false;
  run->add_flag("--report", run_report,
                "Also write report.html (interactive charts) into the output directory (needs --out or "
                "outputs.dir)");
  run->add_option("--engine", engine, "Engine (overrides the scenario's engine.kind)")
      ->check(CLI::IsMember(moesim::engine_kinds().names()));

  auto* cmp =
      app.add_subcommand("compare", "Evaluate scenarios and their variants side by side, by throughput");
  cmp->add_option("scenarios", files, "Scenario JSON files (each with optional \"variants\")")->required();
  cmp->add_option("--format", format, "Output on stdout")
      ->check(CLI::IsMember(table_or_json))
      ->capture_default_str();
  std::string compare_report;
  bool compare_force = false;
  cmp->add_option("--report", compare_report,
                  "Also write DIR/compare.json and DIR/report.html, interactive charts (docs/report.md)");
  cmp->add_flag("--force", compare_force, "Replace an existing DIR/compare.json of --report");
  cmp->add_option("--engine", engine,
                  "Engine (overrides each scenario's engine.kind; des runs each in its own process)")
      ->check(CLI::IsMember(moesim::engine_kinds().names()));

  auto* val = app.add_subcommand(
      "validate", "Check scenarios and their variants without running them; lists every problem");
  val->add_option("scenarios", files, "Scenario JSON files")->required();

  auto* lst = app.add_subcommand("list", "Show catalog entries and registered policies");
  lst->add_option("what", what,
                  "one of " + moesim::join_names(moesim::cli::list_topics().names()) +
                      " (default: all but parameters)")
      ->check(CLI::IsMember(moesim::cli::list_topics().names()));

  moesim::cli::PlaceArgs place_args;
  std::string place_format = moesim::to_string(place_args.format);
  auto* plc = app.add_subcommand("place", "Place experts on GPUs from a layers x experts load matrix");
  plc->add_option("--policy", place_args.policy, "Placement policy (moesim list policies)");
  plc->add_option("--weights", place_args.weights,
                  "JSON file: an array of layers, each an array of expert loads")
      ->required();
  plc->add_option("--replicas", place_args.replicas, "Physical expert slots per layer (default: the experts)")
      ->check(CLI::Range(1, 1 << 20));
  plc->add_option("--groups", place_args.groups, "Expert groups (hierarchical EPLB)")
      ->check(CLI::Range(1, 1 << 20));
  plc->add_option("--nodes", place_args.nodes, "Nodes")->check(CLI::Range(1, 1 << 20));
  plc->add_option("--gpus", place_args.gpus, "GPUs (expert-parallel ranks)")->check(CLI::Range(1, 1 << 20));
  plc->add_option("--format", place_format, "Output")
      ->check(CLI::IsMember(names_of(formats, {OutputFormat::kJson, OutputFormat::kTable})))
      ->capture_default_str();
  plc->add_option("-o,--output", place_args.output,
                  "Write to this file instead of stdout (never overwritten without --force)");
  plc->add_flag("--force", place_args.force, "Replace --output if it exists");

  std::string trace_file, trace_format = moesim::to_string(TraceFormat::kMoesim);
  int max_steps = 0;
  auto* rpl = app.add_subcommand("replay", "Drive a scenario step by step from a routing trace");
  rpl->add_option("trace", trace_file, "Routing trace (see --trace-format)")->required();
  rpl->add_option("scenario", file, "Scenario JSON file")->required();
  rpl->add_option("--trace-format", trace_format, "Trace format (megatron: a folder of router traces)")
      ->check(CLI::IsMember(moesim::trace_formats().names()))
      ->capture_default_str();
  rpl->add_option("--steps", max_steps, "Replay at most this many steps (0: all)")
      ->check(CLI::Range(0, 1 << 30));
  rpl->add_option("--format", format, "Output on stdout")
      ->check(CLI::IsMember(table_or_json))
      ->capture_default_str();
  std::string replay_report;
  bool replay_force = false;
  rpl->add_option("--report", replay_report,
                  "Also write DIR/replay.json and DIR/report.html, interactive charts (docs/report.md)");
  rpl->add_flag("--force", replay_force, "Replace an existing DIR/replay.json of --report");
  rpl->add_option("--engine", engine, "Engine (overrides the scenario's engine.kind)")
      ->check(CLI::IsMember(moesim::engine_kinds().names()));

  moesim::cli::TraceImportArgs ti;
  std::string import_format;
  auto* trc = app.add_subcommand("trace", "Routing traces: import, inspect and upgrade");
  trc->require_subcommand(1);
  auto* trc_imp =
      trc->add_subcommand("import", "Convert a Megatron router trace or a count table to the moesim format");
  trc_imp->add_option("format", import_format, "Format of INPUT")
      ->required()
      ->check(CLI::IsMember(
          names_of(moesim::trace_formats(), {TraceFormat::kMegatron, TraceFormat::kCountTable})));
  trc_imp->add_option("input", ti.input, "Folder of router_trace_rank*.jsonl, or the CSV count table")
      ->required();
  trc_imp->add_option("-o,--output", ti.output, "Trace file to write (never overwritten without --force)")
      ->required();
  trc_imp->add_option("--experts", ti.experts, "Experts per MoE layer")
      ->required()
      ->check(CLI::Range(1, 1 << 20));
  trc_imp->add_option("--top-k", ti.top_k, "Experts per token (count tables)")->check(CLI::Range(1, 1 << 20));
  trc_imp->add_option("--model", ti.model, "Count table: model column");
  trc_imp->add_option("--kind", ti.kind, "Count table: kind column");
  trc_imp->add_option("--domain", ti.domain, "Count table: domain column");
  trc_imp->add_flag("--force", ti.force, "Replace --output if it exists");
  auto* trc_stats = trc->add_subcommand("stats", "Per step and layer expert-load statistics of a trace");
  trc_stats->add_option("trace", trace_file, "moesim trace file")->required();
  trc_stats->add_option("--format", format, "Output")
      ->check(CLI::IsMember(table_or_json))
      ->capture_default_str();
  std::string req_format = "auto";
  bool req_skip_failed = false;
  auto* trc_req = trc->add_subcommand(
      "requests",
      "Serving request traces (moesim, Azure LLM inference, BurstGPT CSV): check every row, print "
      "arrival rate, burstiness and length percentiles");
  trc_req->add_option("trace", trace_file, "Request trace file (CSV)")->required();
  trc_req->add_option("--trace-format", req_format, "auto (from the header), moesim, azure or burstgpt")
      ->check(CLI::IsMember({"auto", "moesim", "azure", "burstgpt"}))
      ->capture_default_str();
  trc_req->add_flag("--skip-failed", req_skip_failed,
                    "BurstGPT: skip failed requests (0 response tokens) and report how many");
  trc_req->add_option("--format", format, "Output")
      ->check(CLI::IsMember(table_or_json))
      ->capture_default_str();
  moesim::cli::GenerateRequestsArgs gr;
  auto* trc_gen = trc->add_subcommand(
      "generate-requests",
      "Write a synthetic serving request trace (moesim CSV): gamma inter-arrival gaps at a rate and "
      "coefficient of variation (1: Poisson), lengths from distributions, seeded");
  trc_gen->add_option("-o,--output", gr.output, "Request trace to write (never overwritten without --force)")
      ->required();
  trc_gen->add_option("--requests", gr.spec.requests, "Requests")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 27))
      ->capture_default_str();
  trc_gen->add_option("--rate", gr.spec.rate_per_s, "Mean arrivals per second")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  trc_gen->add_option("--cv", gr.spec.cv, "Coefficient of variation of the gaps (1: Poisson)")
      ->check(CLI::Range(1e-3, 100.0))
      ->capture_default_str();
  trc_gen->add_option("--input-tokens", gr.input, "fixed:N, uniform:A:B or lognormal:MEDIAN:SIGMA")
      ->capture_default_str();
  trc_gen->add_option("--output-tokens", gr.output_dist, "fixed:N, uniform:A:B or lognormal:MEDIAN:SIGMA")
      ->capture_default_str();
  trc_gen->add_option("--cached-fraction", gr.spec.cached_fraction, "Prefix-cached share of each prompt")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  trc_gen
      ->add_option("--prefix-groups", gr.spec.prefix_groups,
                   "Shared prefixes the cached tokens belong to, Zipf popularity (0: no prefix_id column)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24))
      ->capture_default_str();
  trc_gen->add_option("--prefix-zipf", gr.spec.prefix_zipf, "Zipf exponent of the prefixes' popularity")
      ->check(CLI::Range(0.0, 10.0))
      ->capture_default_str();
  trc_gen->add_option("--seed", gr.spec.seed, "Seed")->capture_default_str();
  trc_gen->add_flag("--force", gr.force, "Replace --output if it exists");
  std::string upgrade_out;
  auto* trc_upg = trc->add_subcommand("upgrade", "Rewrite a version 1 moesim trace in the current version");
  trc_upg->add_option("trace", trace_file, "Version 1 moesim trace file (it must be whole)")->required();
  trc_upg->add_option("-o,--output", upgrade_out, "Trace file to write (never overwritten without --force)")
      ->required();
  bool upgrade_force = false;
  trc_upg->add_flag("--force", upgrade_force, "Replace --output if it exists");

  std::string dot_file;
  auto* topo = app.add_subcommand("topology",
                                  "The cluster's network as a graph: hops, bisection, dispatch link loads");
  topo->add_option("scenario", file, "Scenario JSON file")->required();
  topo->add_option("--dot", dot_file, "Also write the graph in GraphViz dot to this file");
  topo->add_option("--format", format, "Output on stdout")
      ->check(CLI::IsMember(table_or_json))
      ->capture_default_str();
  topo->add_flag("--force", force, "Overwrite --dot if it exists");
  bool simulate = false;
  topo->add_flag("--simulate", simulate,
                 "Also simulate one EP group's dispatch on SimGrid (flows share links)");

  std::string cal_out, cal_check, cal_plan = "full", cal_gpu = "catalog:h100-sxm", cal_published, cal_scale,
                                  cal_measurements, cal_refit, cal_fill;
  auto* cal =
      app.add_subcommand("calibrate", "Measure the MoE kernels on this GPU and fit a calibration file");
  cal->add_option("--out", cal_out, "Calibration file to write (never overwritten without --force)");
  cal->add_option("--plan", cal_plan, "Sweep plan")
      ->check(CLI::IsMember(moesim::cli::calibration_plans().names()));
  cal->add_option("--gpu", cal_gpu, "Catalog GPU whose datasheet peaks the efficiencies refer to");
  cal->add_option("--check", cal_check,
                  "Print predicted against measured for a calibration's held-out shapes");
  cal->add_option("--from-published", cal_published,
                  "Fit the published kernel tables of this folder (no GPU needed) instead of measuring");
  cal->add_option("--scale-from", cal_scale,
                  "Carry this calibration (of a catalog GPU) to --gpu by datasheet ratios, for a GPU with "
                  "no kernel measurements")
      ->excludes("--from-published");
  cal->add_option("--measurements", cal_measurements,
                  "Also write every measurement of the run to this profile file, before fitting")
      ->excludes("--from-published")
      ->excludes("--scale-from");
  cal->add_option("--refit", cal_refit,
                  "Fit a profile file written by --measurements (no GPU needed) instead of measuring")
      ->excludes("--from-published")
      ->excludes("--scale-from")
      ->excludes("--measurements");
  cal->add_option(
         "--fill-from", cal_fill,
         "With --refit: take the families and GEMM precisions the profile lacks from this calibration")
      ->needs("--refit");
  cal->add_flag("--force", force, "Overwrite --out (and --measurements) if it exists");

  auto* imp = app.add_subcommand("import", "Import a model description");
  auto* hf = imp->add_subcommand("hf", "Turn a Hugging Face config.json into a catalog model entry");
  imp->require_subcommand(1);
  hf->add_option("config", file, "Hugging Face config.json")->required();
  hf->add_option("--name", name, "Catalog entry name");
  hf->add_option("--output,-o", output,
                 "Write to this file instead of stdout (never overwrites without --force)");
  hf->add_flag("--force", force, "Overwrite --output if it exists");

  std::string acc_dir = MOESIM_VALIDATION_DIR, acc_engine = "both";
  auto* acc = app.add_subcommand(
      "accuracy", "Hold every validation scenario and published kernel row against moesim's prediction");
  acc->add_option("dir", acc_dir,
                  "Validation folder: scenarios with a reference block, kernels/*.csv (default: the source "
                  "tree's scenarios/validation)")
      ->capture_default_str();
  acc->add_option("--engine", acc_engine,
                  "Engines run on the scenarios (kernel rows use the shared cost model)")
      ->check(CLI::IsMember(moesim::cli::accuracy_engines().names()))
      ->capture_default_str();
  acc->add_option("--format", format, "Output on stdout")
      ->check(CLI::IsMember(formats.names()))
      ->capture_default_str();
  std::string acc_report;
  bool acc_force = false;
  acc->add_option("--report", acc_report,
                  "Also write DIR/accuracy.json and DIR/report.html, interactive charts (docs/report.md)");
  acc->add_flag("--force", acc_force, "Replace an existing DIR/accuracy.json of --report");

  std::string plan_file, plan_output;
  bool plan_force = false;
  int plan_jobs = 0, plan_confirm = 3;
  std::string plan_validation = MOESIM_VALIDATION_DIR;
  auto* pln = app.add_subcommand(
      "plan", "Search layouts and cluster sizes for the cheapest way to train a target (docs/plan.md)");
  pln->add_option("plan", plan_file, "Plan file (JSON)")->required();
  pln->add_option("--format", format, "Output format")
      ->check(CLI::IsMember(formats.names()))
      ->capture_default_str();
  pln->add_option("--output,-o", plan_output,
                  "Write to this file instead of stdout (never overwrites without --force)");
  pln->add_flag("--force", plan_force, "Overwrite --output (and --report's plan.json) if it exists");
  std::string plan_report;
  pln->add_option("--report", plan_report,
                  "Also write DIR/plan.json and DIR/report.html, interactive charts (docs/report.md)");
  pln->add_option("--jobs,-j", plan_jobs, "Threads evaluating layouts (0: one per core; same result for any)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  pln->add_option("--confirm", plan_confirm,
                  "Best plans re-run with the discrete-event engine, one child process each (0: none)")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  pln->add_option("--validation", plan_validation,
                  "Published runs whose measured errors give the error bars (\"\": none; default: the source "
                  "tree's scenarios/validation)")
      ->capture_default_str();

  moesim::cli::SweepArgs sweep_args;
  std::string sweep_engine;
  auto* swp = app.add_subcommand(
      "sweep",
      "Evaluate every point of a sweep file in worker processes, sharded and resumable (docs/sweep.md)");
  swp->add_option("sweep", sweep_args.file, "Sweep file (JSON)")->required();
  swp->add_option("--out", sweep_args.out, "Folder for the points (resumes a sweep already there)")
      ->required();
  swp->add_option("--jobs,-j", sweep_args.jobs, "Worker processes")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  swp->add_option("--shard", sweep_args.shard,
                  "K/N: run shard K of N (default: from SLURM_ARRAY_TASK_ID or the MPI rank, else 0/1)");
  swp->add_option("--engine", sweep_engine, "Override every point's engine.kind")
      ->check(CLI::IsMember(moesim::engine_kinds().names()));
  std::string report_dir;
  auto* rep = app.add_subcommand(
      "report",
      "Write DIR/report.html (interactive charts and tables) from an output folder (docs/report.md)");
  rep->add_option(
      "dir", report_dir,
      "Output folder: a run (--out), a merged sweep, or a folder holding plan.json, compare.json or "
      "accuracy.json");
  auto* rep_merge =
      rep->add_subcommand("merge", "Gather a sweep folder's points into merged.csv and merged.json");
  rep_merge->add_option("dir", report_dir, "Sweep folder (moesim sweep --out DIR)")->required();
  rep->require_subcommand(0, 1);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (const std::string unknown = unknown_command(app, argc, argv); !unknown.empty()) {
      std::cerr << "moesim: error: " << unknown << "\n";
      return kUsage;
    }
    int code = app.exit(e);
    return code == 0 ? kOk : kUsage;
  }

  try {
    moesim::Catalog cat;
    const OutputFormat out_format = formats.get(format, "--format");
    std::optional<EngineKind> engine_kind;
    if (!engine.empty()) engine_kind = moesim::engine_kinds().get(engine, "--engine");
    if (*run) return run_cmd(file, out_format, out_dir, force, ops, run_report, engine_kind, cat);
    if (*cmp)
      return moesim::cli::compare_cmd(files, out_format, {compare_report, "compare.json", compare_force},
                                      engine_kind, cat);
    if (*val) return moesim::cli::validate_cmd(files, cat);
    if (*swp) {
      if (!sweep_engine.empty()) sweep_args.engine = moesim::engine_kinds().get(sweep_engine, "--engine");
      return moesim::cli::sweep_cmd(sweep_args, cat);
    }
    if (*rep_merge) return moesim::cli::report_merge_cmd(report_dir);
    if (*rep) {
      if (report_dir.empty()) {
        std::cerr << "moesim: error: report: expected an output folder (moesim report DIR) or `merge DIR`, "
                     "found neither\n";
        return kUsage;
      }
      return moesim::cli::report_html_cmd(report_dir);
    }
    if (*pln)
      return moesim::cli::plan_cmd(plan_file, out_format, plan_output, {plan_report, "plan.json", plan_force},
                                   plan_force, plan_jobs, plan_confirm, plan_validation, cat);
    if (*lst)
      return moesim::cli::list_cmd(
          what.empty() ? std::nullopt
                       : std::optional<moesim::cli::ListTopic>(moesim::cli::list_topics().get(what)),
          cat);
    if (*hf) return moesim::cli::import_hf_cmd(file, name, output, force);
    if (*plc) {
      place_args.format = formats.get(place_format, "--format");
      return moesim::cli::place_cmd(place_args);
    }
    if (*cal) {
      if (!cal_check.empty()) return moesim::cli::calibrate_check_cmd(cal_check);
      if (cal_out.empty()) {
        std::cerr << "moesim: error: calibrate: expected --out FILE (measure and fit) or --check FILE, found "
                     "neither\n";
        return kUsage;
      }
      std::string cmd;
      for (int i = 0; i < argc; ++i) cmd += (i ? " " : "") + std::string(argv[i]);
      if (!cal_published.empty())
        return moesim::cli::calibrate_published_cmd(cal_published, cal_out, cal_gpu, force, cmd, cat);
      if (!cal_scale.empty())
        return moesim::cli::calibrate_scaled_cmd(cal_scale, cal_out, cal_gpu, force, cmd, cat);
      if (!cal_refit.empty())
        return moesim::cli::calibrate_refit_cmd(cal_refit, cal_fill, cal_out, cal_gpu, force, cmd, cat);
      return moesim::cli::calibrate_run_cmd(cal_out, cal_measurements, cal_plan, cal_gpu, force, cmd, cat);
    }
    if (*topo) return moesim::cli::topology_cmd(file, dot_file, out_format, force, simulate, cat);
    if (*rpl)
      return moesim::cli::replay_cmd(trace_file, moesim::trace_formats().get(trace_format, "--trace-format"),
                                     file, max_steps, out_format,
                                     {replay_report, "replay.json", replay_force}, engine_kind, cat);
    if (*trc_imp) {
      ti.format = moesim::trace_formats().get(import_format, "trace import FORMAT");
      return moesim::cli::trace_import_cmd(ti);
    }
    if (*acc)
      return moesim::cli::accuracy_cmd(acc_dir, moesim::cli::accuracy_engines().get(acc_engine, "--engine"),
                                       out_format, {acc_report, "accuracy.json", acc_force}, cat);
    if (*trc_stats) return moesim::cli::trace_stats_cmd(trace_file, out_format);
    if (*trc_gen) return moesim::cli::generate_requests_cmd(gr);
    if (*trc_req)
      return moesim::cli::request_trace_cmd(trace_file,
                                            moesim::traces::request_format(req_format, "--trace-format"),
                                            req_skip_failed, out_format);
    if (*trc_upg) return moesim::cli::trace_upgrade_cmd(trace_file, upgrade_out, upgrade_force);
  } catch (const std::exception& e) {
    std::cerr << moesim::cli::error_line(e) << "\n";
    return moesim::cli::exit_code(moesim::cli::error_kind(e));
  }
  return kUsage;
}
