// moesim command line: the only place that turns errors into exit codes (docs/exit-codes.md).
#include <CLI/CLI.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "models/analytic.hpp"
#include "models/placement.hpp"
#include "models/schedule.hpp"
#include "reports/writers.hpp"
#include "scenarios/catalog.hpp"
#include "scenarios/error.hpp"
#include "scenarios/hf_import.hpp"
#include "scenarios/loader.hpp"
#include "traces/load.hpp"

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

void write_outputs(const std::string& dir, const moesim::Scenario& s, const moesim::models::Result& r, bool force) {
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
  write_file(d / "result.json", moesim::reports::result_json(s, r).dump(2) + "\n", force);
  std::ostringstream csv, layers, table;
  moesim::reports::write_summary_csv(csv, r);
  moesim::reports::write_layers_csv(layers, r);
  moesim::reports::write_table(table, s, r);
  write_file(d / "summary.csv", csv.str(), force);
  write_file(d / "layers.csv", layers.str(), force);
  write_file(d / "summary.txt", table.str(), force);
  std::cerr << "moesim: wrote " << d.string() << "/{scenario.resolved.json,result.json,summary.csv,layers.csv,summary.txt}\n";
}

moesim::models::Result evaluate(const moesim::Scenario& s) { return moesim::models::evaluate_analytic(s); }

int run_cmd(const std::string& path, const std::string& format, const std::string& out_dir, bool force,
            const moesim::Catalog& cat) {
  moesim::Scenario s = moesim::load_scenario(path, cat);
  moesim::models::Result r = evaluate(s);
  if (format == "json") {
    std::cout << moesim::reports::result_json(s, r).dump(2) << "\n";
  } else if (format == "csv") {
    moesim::reports::write_summary_csv(std::cout, r);
  } else {
    moesim::reports::write_table(std::cout, s, r);
  }
  const std::string dir = !out_dir.empty() ? out_dir : s.outputs.dir;
  if (!dir.empty()) write_outputs(dir, s, r, force);
  return r.feasible ? kOk : kInfeasible;
}

int compare_cmd(const std::vector<std::string>& paths, const std::string& format, const moesim::Catalog& cat) {
  std::vector<moesim::reports::CompareRow> rows;
  for (const auto& path : paths) {
    Json base = moesim::read_json_file(path);
    auto variants = moesim::variants_from_json(base, path);
    {
      moesim::reports::CompareRow row;
      moesim::Scenario s = moesim::scenario_from_json(base, path, cat);  // the base must be valid
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
    std::cout << "placement policies:\n";
    for (const auto& p : moesim::models::placement_policies()) std::cout << "  " << p.name << "  " << p.description << "\n";
    std::cout << "load generators:\n";
    for (const auto& g : moesim::traces::load_generators()) std::cout << "  " << g.name << "  " << g.description << "\n";
    std::cout << "routing policies:\n"
              << "  softmax_topk  softmax scores, top-k experts per token\n"
              << "  sigmoid_topk  sigmoid scores with node/group limits (DeepSeek-V3)\n";
    std::cout << "pipeline schedules:\n";
    for (const auto& s : moesim::models::schedules()) std::cout << "  " << s.name << "  " << s.description << "\n";
    std::cout << "all-to-all dispatch:\n  flat  one copy per destination GPU\n"
              << "  hierarchical  one NIC copy per destination node, NVLink fan-out (DeepEP normal kernels)\n";
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
  std::string file;
  bool force = false;

  auto* run = app.add_subcommand("run", "Evaluate a scenario and print its result (exit 6 if it does not fit)");
  run->add_option("scenario", file, "Scenario JSON file")->required();
  run->add_option("--format", format, "Output on stdout")->check(CLI::IsMember({"table", "json", "csv"}));
  run->add_option("--out", out_dir, "Output directory (overrides the scenario's outputs.dir)");
  run->add_flag("--force", force, "Overwrite existing result files in the output directory");

  auto* cmp = app.add_subcommand("compare", "Evaluate scenarios and their variants side by side, by throughput");
  cmp->add_option("scenarios", files, "Scenario JSON files (each with optional \"variants\")")->required();
  cmp->add_option("--format", format, "Output on stdout")->check(CLI::IsMember({"table", "json"}));

  auto* val = app.add_subcommand("validate", "Check scenarios without running them");
  val->add_option("scenarios", files, "Scenario JSON files")->required();

  auto* lst = app.add_subcommand("list", "Show catalog entries and registered policies");
  lst->add_option("what", what, "models, gpus, clusters or policies (default: all)")
      ->check(CLI::IsMember({"models", "gpus", "clusters", "policies"}));

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
    if (*run) return run_cmd(file, format, out_dir, force, cat);
    if (*cmp) return compare_cmd(files, format, cat);
    if (*val) {
      for (const auto& f : files) {
        moesim::Scenario s = moesim::load_scenario(f, cat);
        Json base = moesim::read_json_file(f);
        for (const auto& v : moesim::variants_from_json(base, f))
          moesim::scenario_from_json(moesim::apply_variant(base, v, f), f + " (variant " + v.name + ")", cat);
        std::cout << f << ": ok (" << s.name << ", " << s.cluster.gpus() << " GPUs)\n";
      }
      return kOk;
    }
    if (*lst) return list_cmd(what, cat);
    if (*hf) return import_hf_cmd(file, name, output, force);
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
