#pragma once
// Subcommands of the moesim command line that deal with routing, traces and placement. Each returns
// an exit code (docs/exit-codes.md) and throws moesim errors for main() to map.
#include <string>

#include "scenarios/catalog.hpp"

namespace moesim::cli {

struct PlaceArgs {
  std::string policy = "eplb", weights, format = "json";
  int replicas = 0, groups = 1, nodes = 1, gpus = 1;
};
/// `moesim place`: a placement of a layers × experts load matrix; prints {"phy2log","log2phy","logcnt"}.
int place_cmd(const PlaceArgs& a);

/// `moesim replay TRACE SCENARIO`: the scenario with its routing replaced by the trace, step by step.
int replay_cmd(const std::string& trace, const std::string& format, const std::string& scenario, int max_steps,
               const std::string& out_format, const std::string& engine, const Catalog& cat);

struct TraceImportArgs {
  std::string format, input, output, model, kind = "expert_counts", domain;
  int experts = 0, top_k = 0;
  bool force = false;
};
/// `moesim trace import`: a Megatron router-trace folder or a count table → moesim trace format.
int trace_import_cmd(const TraceImportArgs& a);
/// `moesim trace stats TRACE`: per step and layer, expert load max/mean and coefficient of variation.
int trace_stats_cmd(const std::string& path, const std::string& format);

/// `moesim topology SCENARIO`: the cluster as a graph (summary or JSON, optional GraphViz file) and the
/// link loads of the first MoE layer's dispatch.
int topology_cmd(const std::string& scenario, const std::string& dot, const std::string& format, bool force,
                 bool simulate, const Catalog& cat);

/// `moesim calibrate --check FILE`: held-out errors and predicted vs measured per shape.
int calibrate_check_cmd(const std::string& path);
/// `moesim calibrate --out FILE`: profile the kernels on this GPU, fit, write, then check (CUDA builds).
int calibrate_run_cmd(const std::string& out, const std::string& plan, const std::string& gpu, bool force,
                      const std::string& command_line, const Catalog& cat);

}  // namespace moesim::cli
