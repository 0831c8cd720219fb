// moesim command line: the only place that turns errors into exit codes (docs/exit-codes.md).
#include <CLI/CLI.hpp>

#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sys/wait.h>
#include <unistd.h>
#include <sstream>

#include "cli/commands.hpp"
#include "models/analytic.hpp"
#include "models/routing_source.hpp"
#include "models/placement.hpp"
#include "models/schedule.hpp"
#include "reports/chrome_trace.hpp"
#include "reports/link_usage.hpp"
#include "reports/writers.hpp"
#include "scenarios/catalog.hpp"
#include "scenarios/error.hpp"
#include "scenarios/hf_import.hpp"
#include "scenarios/loader.hpp"
#include "sim/step_sim.hpp"
#include "traces/generators.hpp"
#include "traces/load.hpp"
#include "traces/policies.hpp"

namespace fs = std::filesystem;
using moesim::Json;

namespace {

enum Exit : int {
  kOk = 0,
  kInternal = 1,
  kUsage = 2,
  kParse = 3,
  kConfig = 4,
  kIo = 5,
  kInfeasible = 6,
  kCalibration = 7,
};

// Writes `text` to `path`, refusing to replace an existing file unless `force`.
void write_file(const fs::path& path, const std::string& text, bool force) {
  std::error_code ec;
  if (fs::exists(path, ec) && !force)
    throw moesim::IoError(path.string() + ": refusing to overwrite an existing file (use --force or another --out)");
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw moesim::IoError(path.string() + ": cannot open for writing");
  out << text;
  if (!out) throw moesim::IoError(path.string() + ": write failed");
}

void write_outputs(const std::string& dir, const moesim::Scenario& s, const moesim::models::Result& r, bool force,
                   const Json& des = nullptr) {
  fs::path d(dir);
  std::error_code ec;
  fs::create_directories(d, ec);
  if (ec) throw moesim::IoError(dir + ": cannot create output directory: " + ec.message());
  // Check every target first so that nothing is half-written when one already exists.
  const char* names[] = {"scenario.resolved.json", "result.json", "summary.csv", "layers.csv", "summary.txt"};
  if (!force)
    for (const char* n : names)
      if (fs::exists(d / n, ec))
        throw moesim::IoError((d / n).string() +
                              ": refusing to overwrite an existing result (use --force or another --out)");
  write_file(d / "scenario.resolved.json", s.resolved.dump(2) + "\n", force);
  Json result = moesim::reports::result_json(s, r);
  if (!des.is_null()) result["des"] = des;
  write_file(d / "result.json", result.dump(2) + "\n", force);
  std::ostringstream csv, layers, table;
  moesim::reports::write_summary_csv(csv, r);
  moesim::reports::write_layers_csv(layers, r);
  moesim::reports::write_table(table, s, r);
  write_file(d / "summary.csv", csv.str(), force);
  write_file(d / "layers.csv", layers.str(), force);
  write_file(d / "summary.txt", table.str(), force);
  std::cerr << "moesim: wrote " << d.string() << "/{scenario.resolved.json,result.json,summary.csv,layers.csv,summary.txt}\n";
}

// The discrete-event engine in a child process: SimGrid allows one engine per process, frozen to the
// first cluster it simulates, and compared variants may change the cluster. The child sends back what a
// comparison reports.
moesim::models::Result evaluate_des_isolated(const moesim::Scenario& s) {
  int fd[2];
  if (pipe(fd) != 0) throw moesim::Error("compare: cannot create a pipe for the simulation process");
  std::cout.flush();
  const pid_t pid = fork();
  if (pid < 0) throw moesim::Error("compare: cannot fork the simulation process");
  if (pid == 0) {
    close(fd[0]);
    Json j;
    try {
      const auto r = moesim::sim::simulate_step(s, moesim::sim::step_options(s.engine)).result;
      j = {{"ok", true},
           {"feasible", r.feasible},
           {"infeasible_reason", r.infeasible_reason},
           {"step_time", r.step_time},
           {"tokens_per_second", r.tokens_per_second},
           {"tokens_per_second_per_gpu", r.tokens_per_second_per_gpu},
           {"mfu", r.mfu},
           {"memory_total", r.memory.total},
           {"moe_max_over_mean_gpu", r.moe_max_over_mean_gpu},
           {"balanced_step_time", r.balanced_step_time},
           {"fidelity", r.fidelity},
           {"bubble", r.breakdown.bubble},
           {"exposed_ep", r.breakdown.exposed_ep}};
    } catch (const moesim::ConfigError& e) {
      j = {{"ok", false}, {"config", true}, {"message", e.what()}};
    } catch (const std::exception& e) {
      j = {{"ok", false}, {"config", false}, {"message", e.what()}};
    }
    const std::string text = j.dump();
    std::size_t off = 0;
    while (off < text.size()) {
      const ssize_t n = write(fd[1], text.data() + off, text.size() - off);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
    close(fd[1]);
    _exit(0);
  }
  close(fd[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(fd[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || text.empty())
    throw moesim::Error("compare: the simulation process of \"" + s.name + "\" ended abnormally");
  const Json j = Json::parse(text);
  if (!j.at("ok").get<bool>()) {
    if (j.at("config").get<bool>()) throw moesim::ConfigError(j.at("message").get<std::string>());
    throw moesim::Error(j.at("message").get<std::string>());
  }
  moesim::models::Result r;
  r.scenario = s.name;
  r.engine = "des";
  r.feasible = j.at("feasible").get<bool>();
  r.infeasible_reason = j.at("infeasible_reason").get<std::string>();
  r.step_time = j.at("step_time").get<double>();
  r.tokens_per_second = j.at("tokens_per_second").get<double>();
  r.tokens_per_second_per_gpu = j.at("tokens_per_second_per_gpu").get<double>();
  r.mfu = j.at("mfu").get<double>();
  r.memory.total = j.at("memory_total").get<double>();
  r.moe_max_over_mean_gpu = j.at("moe_max_over_mean_gpu").get<double>();
  r.balanced_step_time = j.at("balanced_step_time").get<double>();
  r.fidelity = j.at("fidelity").get<std::string>();
  r.breakdown.bubble = j.at("bubble").get<double>();
  r.breakdown.exposed_ep = j.at("exposed_ep").get<double>();
  return r;
}

moesim::models::Result evaluate(const moesim::Scenario& s) {
  if (s.engine.kind == moesim::EngineKind::kDes) return evaluate_des_isolated(s);
  return moesim::models::evaluate_analytic(s);
}

// What the discrete-event engine adds to the table: the analytic engine beside it, the simulation's
// size and the busiest links.
void write_des_extras(std::ostream& out, const moesim::sim::StepSimResult& d) {
  const auto& r = d.result;
  char buf[256];
  std::snprintf(buf, sizeof buf, "  analytic engine, same workload: %.3f s (discrete-event %+.2f%%)\n", r.analytic_step_time,
                r.analytic_step_time > 0 ? 100.0 * (r.step_time / r.analytic_step_time - 1) : 0.0);
  out << "\ndiscrete-event simulation (" << d.settings.simgrid_version << ", " << d.settings.network_model
      << ", surf/precision " << d.settings.surf_precision << " s)\n"
      << buf;
  std::string ms;
  for (int m : d.stats.microbatches) ms += (ms.empty() ? "" : " + ") + std::to_string(m);
  std::snprintf(buf, sizeof buf, "  %d GPUs simulated in %d EP groups; microbatches %s; %lld compute segments, %lld all-to-alls, %lld flows\n",
                d.stats.simulated_gpus, d.stats.ep_groups, ms.c_str(), d.stats.segments, d.stats.collectives, d.stats.flows);
  out << buf;
  std::vector<const moesim::sim::LinkUsage*> top;
  for (const auto& l : d.links) top.push_back(&l);
  std::sort(top.begin(), top.end(), [](auto* a, auto* b) { return a->utilisation > b->utilisation; });
  if (!top.empty()) out << "  busiest links (last simulated run): utilisation, busy fraction, bytes\n";
  for (std::size_t i = 0; i < top.size() && i < 5; ++i) {
    std::snprintf(buf, sizeof buf, "    %-40s %6.1f%%  %6.1f%%  %.3e\n", top[i]->name.c_str(), 100 * top[i]->utilisation,
                  100 * top[i]->busy_fraction, top[i]->bytes);
    out << buf;
  }
}

Json des_json(const moesim::sim::StepSimResult& d) {
  Json links = Json::array();
  for (const auto& l : d.links)
    links.push_back({{"link", l.name}, {"kind", moesim::sim::to_string(l.kind)}, {"bandwidth_Bps", l.bandwidth},
                     {"bytes", l.bytes}, {"busy_s", l.busy_time}, {"busy_fraction", l.busy_fraction},
                     {"utilisation", l.utilisation}});
  const auto& e = d.settings;
  return {{"analytic_step_time_s", d.result.analytic_step_time},
          {"simulated_gpus", d.stats.simulated_gpus},
          {"ep_groups", d.stats.ep_groups},
          {"microbatches_simulated", d.stats.microbatches},
          {"compute_segments", d.stats.segments},
          {"all_to_alls", d.stats.collectives},
          {"flows", d.stats.flows},
          {"simgrid", {{"version", e.simgrid_version}, {"network_model", e.network_model}, {"network_optim", e.network_optim},
                       {"crosstraffic", e.crosstraffic}, {"tcp_gamma", e.tcp_gamma}, {"surf_precision_s", e.surf_precision},
                       {"aggregated", e.aggregated}, {"hosts", e.hosts}, {"links", e.links}}},
          {"links", links}};
}

void write_des_files(const std::string& dir, const moesim::sim::StepSimResult& d, bool force) {
  fs::path p(dir);
  std::error_code ec;
  for (const char* n : {"trace.json", "links.csv"})
    if (!force && fs::exists(p / n, ec))
      throw moesim::IoError((p / n).string() + ": refusing to overwrite an existing result (use --force or another --out)");
  std::ostringstream trace, links;
  moesim::reports::write_chrome_trace(d, trace);
  moesim::reports::write_link_usage_csv(d.links, links);
  write_file(p / "trace.json", trace.str(), force);
  write_file(p / "links.csv", links.str(), force);
  std::cerr << "moesim: wrote " << p.string() << "/{trace.json,links.csv} (open trace.json in Perfetto)\n";
}

int run_cmd(const std::string& path, const std::string& format, const std::string& out_dir, bool force,
            const std::string& engine, const moesim::Catalog& cat) {
  moesim::Scenario s = moesim::load_scenario(path, cat);
  if (!engine.empty()) {
    s.engine.kind = moesim::engine_kinds().get(engine);
    s.resolved["engine"]["kind"] = engine;
  }
  std::optional<moesim::sim::StepSimResult> des;
  const std::string dir = !out_dir.empty() ? out_dir : s.outputs.dir;
  if (!dir.empty() && !force) {  // refuse before a long simulation, not after it
    std::error_code ec;
    for (const char* n : {"scenario.resolved.json", "result.json", "summary.csv", "layers.csv", "summary.txt",
                          "trace.json", "links.csv"})
      if (fs::exists(fs::path(dir) / n, ec))
        throw moesim::IoError((fs::path(dir) / n).string() +
                              ": refusing to overwrite an existing result (use --force or another --out)");
  }
  if (s.engine.kind == moesim::EngineKind::kDes) des = moesim::sim::simulate_step(s, moesim::sim::step_options(s.engine));
  moesim::models::Result r = des ? des->result : moesim::models::evaluate_analytic(s);
  if (format == "json") {
    Json j = moesim::reports::result_json(s, r);
    if (des) j["des"] = des_json(*des);
    std::cout << j.dump(2) << "\n";
  } else if (format == "csv") {
    moesim::reports::write_summary_csv(std::cout, r);
  } else {
    moesim::reports::write_table(std::cout, s, r);
    if (des) write_des_extras(std::cout, *des);
  }
  if (!dir.empty()) {
    write_outputs(dir, s, r, force, des ? des_json(*des) : Json(nullptr));
    if (des) write_des_files(dir, *des, force);
  }
  return r.feasible ? kOk : kInfeasible;
}

int compare_cmd(const std::vector<std::string>& paths, const std::string& format, const std::string& engine,
                const moesim::Catalog& cat) {
  std::vector<moesim::reports::CompareRow> rows;
  for (const auto& path : paths) {
    Json base = moesim::read_json_file(path);
    auto variants = moesim::variants_from_json(base, path);
    {
      moesim::reports::CompareRow row;
      moesim::Scenario s = moesim::scenario_from_json(base, path, cat);  // the base must be valid
      if (!engine.empty()) s.engine.kind = moesim::engine_kinds().get(engine);
      row.name = s.name;
      row.result = evaluate(s);
      rows.push_back(std::move(row));
    }
    for (const auto& v : variants) {
      moesim::reports::CompareRow row;
      Json patched = moesim::apply_variant(base, v, path);
      row.name = patched.value("name", v.name);
      try {
        moesim::Scenario s = moesim::scenario_from_json(patched, path + " (variant " + v.name + ")", cat);
        if (!engine.empty()) s.engine.kind = moesim::engine_kinds().get(engine);
        row.result = evaluate(s);
      } catch (const moesim::ConfigError& e) {
        row.ok = false;
        row.error = e.what();
      }
      rows.push_back(std::move(row));
    }
  }
  if (format == "json") std::cout << moesim::reports::compare_json(rows).dump(2) << "\n";
  else moesim::reports::write_compare_table(std::cout, rows);
  return kOk;
}

int list_cmd(const std::string& what, const moesim::Catalog& cat) {
  auto show = [&](const char* title, moesim::CatalogKind k) {
    std::cout << title << ":\n";
    for (const auto& n : cat.names(k)) std::cout << "  catalog:" << n << "\n";
  };
  if (what.empty() || what == "models") show("models", moesim::CatalogKind::kModel);
  if (what.empty() || what == "gpus") show("gpus", moesim::CatalogKind::kGpu);
  if (what.empty() || what == "clusters") show("clusters", moesim::CatalogKind::kCluster);
  if (what.empty() || what == "policies") {
    std::vector<const moesim::RegistryBase*> regs{&moesim::traces::routing_policies(), &moesim::traces::gate_generators(),
                                                 &moesim::traces::load_profiles(), &moesim::models::placement_policies()};
    for (const auto* r : moesim::setting_registries()) regs.push_back(r);
    for (const auto* r : regs) {
      std::cout << r->title() << ":\n";
      for (const auto& e : *r) std::cout << "  " << e.name << "  " << e.description << "\n";
    }
  }
  return kOk;
}

int import_hf_cmd(const std::string& path, const std::string& name, const std::string& out, bool force) {
  Json cfg = moesim::read_json_file(path);
  Json m = moesim::import_hf_config(cfg, path, name);
  const std::string text = m.dump(2) + "\n";
  if (out.empty()) std::cout << text;
  else {
    write_file(out, text, force);
    std::cerr << "moesim: wrote " << out << "\n";
  }
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"moesim: performance model and simulator for Mixture-of-Experts training on GPU clusters"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(moesim::reports::version()) + " (" + moesim::reports::git_sha() + ")");
  std::string format = "table", out_dir, what, name, output;
  std::vector<std::string> files;
  std::string file, engine;
  bool force = false;

  auto* run = app.add_subcommand("run", "Evaluate a scenario and print its result (exit 6 if it does not fit)");
  run->add_option("scenario", file, "Scenario JSON file")->required();
  run->add_option("--format", format, "Output on stdout")->check(CLI::IsMember({"table", "json", "csv"}));
  run->add_option("--out", out_dir, "Output directory (overrides the scenario's outputs.dir)");
  run->add_flag("--force", force, "Overwrite existing result files in the output directory");
  run->add_option("--engine", engine, "analytic or des (overrides the scenario's engine.kind)")
      ->check(CLI::IsMember({"analytic", "des"}));

  auto* cmp = app.add_subcommand("compare", "Evaluate scenarios and their variants side by side, by throughput");
  cmp->add_option("scenarios", files, "Scenario JSON files (each with optional \"variants\")")->required();
  cmp->add_option("--format", format, "Output on stdout")->check(CLI::IsMember({"table", "json"}));
  cmp->add_option("--engine", engine, "analytic or des (overrides each scenario's engine.kind; des runs each in its own process)")
      ->check(CLI::IsMember({"analytic", "des"}));

  auto* val = app.add_subcommand("validate", "Check scenarios without running them");
  val->add_option("scenarios", files, "Scenario JSON files")->required();

  auto* lst = app.add_subcommand("list", "Show catalog entries and registered policies");
  lst->add_option("what", what, "models, gpus, clusters or policies (default: all)")
      ->check(CLI::IsMember({"models", "gpus", "clusters", "policies"}));

  moesim::cli::PlaceArgs place_args;
  auto* plc = app.add_subcommand("place", "Place experts on GPUs from a layers x experts load matrix");
  plc->add_option("--policy", place_args.policy, "Placement policy (moesim list policies)");
  plc->add_option("--weights", place_args.weights, "JSON file: an array of layers, each an array of expert loads")
      ->required();
  plc->add_option("--replicas", place_args.replicas, "Physical expert slots per layer (default: the experts)");
  plc->add_option("--groups", place_args.groups, "Expert groups (hierarchical EPLB)");
  plc->add_option("--nodes", place_args.nodes, "Nodes");
  plc->add_option("--gpus", place_args.gpus, "GPUs (expert-parallel ranks)");
  plc->add_option("--format", place_args.format, "Output")->check(CLI::IsMember({"json", "table"}));

  std::string trace_file, trace_format = "moesim";
  int max_steps = 0;
  auto* rpl = app.add_subcommand("replay", "Drive a scenario step by step from a routing trace");
  rpl->add_option("trace", trace_file, "Routing trace (moesim format; or see --trace-format)")->required();
  rpl->add_option("scenario", file, "Scenario JSON file")->required();
  rpl->add_option("--trace-format", trace_format, "moesim, megatron (a folder) or count_table")
      ->check(CLI::IsMember({"moesim", "megatron", "count_table"}));
  rpl->add_option("--steps", max_steps, "Replay at most this many steps (0: all)");
  rpl->add_option("--format", format, "Output on stdout")->check(CLI::IsMember({"table", "json"}));
  rpl->add_option("--engine", engine, "analytic or des (overrides the scenario's engine.kind)")
      ->check(CLI::IsMember({"analytic", "des"}));

  moesim::cli::TraceImportArgs ti;
  auto* trc = app.add_subcommand("trace", "Routing traces: import and inspect");
  trc->require_subcommand(1);
  auto* trc_imp = trc->add_subcommand("import", "Convert a Megatron router trace or a count table to the moesim format");
  trc_imp->add_option("format", ti.format, "megatron or count_table")
      ->required()
      ->check(CLI::IsMember({"megatron", "count_table"}));
  trc_imp->add_option("input", ti.input, "Folder of router_trace_rank*.jsonl, or the CSV count table")->required();
  trc_imp->add_option("-o,--output", ti.output, "Trace file to write (never overwritten without --force)")->required();
  trc_imp->add_option("--experts", ti.experts, "Experts per MoE layer")->required();
  trc_imp->add_option("--top-k", ti.top_k, "Experts per token (count tables)");
  trc_imp->add_option("--model", ti.model, "Count table: model column");
  trc_imp->add_option("--kind", ti.kind, "Count table: kind column");
  trc_imp->add_option("--domain", ti.domain, "Count table: domain column");
  trc_imp->add_flag("--force", ti.force, "Replace --output if it exists");
  auto* trc_stats = trc->add_subcommand("stats", "Per step and layer expert-load statistics of a trace");
  trc_stats->add_option("trace", trace_file, "moesim trace file")->required();
  trc_stats->add_option("--format", format, "Output")->check(CLI::IsMember({"table", "json"}));

  std::string dot_file;
  auto* topo = app.add_subcommand("topology", "The cluster's network as a graph: hops, bisection, dispatch link loads");
  topo->add_option("scenario", file, "Scenario JSON file")->required();
  topo->add_option("--dot", dot_file, "Also write the graph in GraphViz dot to this file");
  topo->add_option("--format", format, "Output on stdout")->check(CLI::IsMember({"table", "json"}));
  topo->add_flag("--force", force, "Overwrite --dot if it exists");
  bool simulate = false;
  topo->add_flag("--simulate", simulate, "Also simulate one EP group's dispatch on SimGrid (flows share links)");

  std::string cal_out, cal_check, cal_plan = "full", cal_gpu = "catalog:h100-sxm";
  auto* cal = app.add_subcommand("calibrate", "Measure the MoE kernels on this GPU and fit a calibration file");
  cal->add_option("--out", cal_out, "Calibration file to write (never overwritten without --force)");
  cal->add_option("--plan", cal_plan, "Sweep plan")->check(CLI::IsMember({"full", "smoke"}));
  cal->add_option("--gpu", cal_gpu, "Catalog GPU whose datasheet peaks the efficiencies refer to");
  cal->add_option("--check", cal_check, "Print predicted against measured for a calibration's held-out shapes");
  cal->add_flag("--force", force, "Overwrite --out if it exists");

  auto* imp = app.add_subcommand("import", "Import a model description");
  auto* hf = imp->add_subcommand("hf", "Turn a Hugging Face config.json into a catalog model entry");
  imp->require_subcommand(1);
  hf->add_option("config", file, "Hugging Face config.json")->required();
  hf->add_option("--name", name, "Catalog entry name");
  hf->add_option("--output,-o", output, "Write to this file instead of stdout (never overwrites without --force)");
  hf->add_flag("--force", force, "Overwrite --output if it exists");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kOk : kUsage;
  }

  try {
    moesim::Catalog cat;
    if (*run) return run_cmd(file, format, out_dir, force, engine, cat);
    if (*cmp) return compare_cmd(files, format, engine, cat);
    if (*val) {
      for (const auto& f : files) {
        moesim::Scenario s = moesim::load_scenario(f, cat);
        moesim::models::check_routing(s);
        Json base = moesim::read_json_file(f);
        for (const auto& v : moesim::variants_from_json(base, f))
          moesim::models::check_routing(
              moesim::scenario_from_json(moesim::apply_variant(base, v, f), f + " (variant " + v.name + ")", cat));
        std::cout << f << ": ok (" << s.name << ", " << s.cluster.gpus() << " GPUs)\n";
      }
      return kOk;
    }
    if (*lst) return list_cmd(what, cat);
    if (*hf) return import_hf_cmd(file, name, output, force);
    if (*plc) return moesim::cli::place_cmd(place_args);
    if (*cal) {
      if (!cal_check.empty()) return moesim::cli::calibrate_check_cmd(cal_check);
      if (cal_out.empty()) {
        std::cerr << "moesim: error: calibrate: expected --out FILE (measure and fit) or --check FILE, found neither\n";
        return kUsage;
      }
      std::string cmd;
      for (int i = 0; i < argc; ++i) cmd += (i ? " " : "") + std::string(argv[i]);
      return moesim::cli::calibrate_run_cmd(cal_out, cal_plan, cal_gpu, force, cmd, cat);
    }
    if (*topo) return moesim::cli::topology_cmd(file, dot_file, format, force, simulate, cat);
    if (*rpl) return moesim::cli::replay_cmd(trace_file, trace_format, file, max_steps, format, engine, cat);
    if (*trc_imp) return moesim::cli::trace_import_cmd(ti);
    if (*trc_stats) return moesim::cli::trace_stats_cmd(trace_file, format);
  } catch (const moesim::ParseError& e) {
    std::cerr << "moesim: error: " << e.what() << "\n";
    return kParse;
  } catch (const moesim::ConfigError& e) {
    std::cerr << "moesim: error: " << e.what() << "\n";
    return kConfig;
  } catch (const moesim::IoError& e) {
    std::cerr << "moesim: error: " << e.what() << "\n";
    return kIo;
  } catch (const moesim::CalibrationError& e) {
    std::cerr << "moesim: error: " << e.what() << "\n";
    return kCalibration;
  } catch (const std::exception& e) {
    std::cerr << "moesim: internal error: " << e.what() << "\n";
    return kInternal;
  }
  return kUsage;
}
