#pragma once
/// \file The plan file (docs/plan.md): the question `moesim plan` answers. A base scenario (model,
/// workload, routing, placement, calibration, global batch), what to train (tokens, deadline), the
/// hardware to choose from with prices and power, the layouts that may vary, and the failure model.
/// Read strictly, with the scenario reader's units and error messages.

#include <string>
#include <vector>

#include "plan/goodput.hpp"
#include "scenarios/catalog.hpp"
#include "scenarios/scenario.hpp"

namespace moesim::plan {

/// One kind of cluster the plan may book, at sizes from min_nodes to max_gpus in node steps.
struct Hardware {
  std::string label;    ///< the cluster's name
  ClusterSpec cluster;  ///< as read; the search sets `nodes`
  /// The default calibration of the cluster's GPU (its catalog entry's `calibration`; "": the roofline),
  /// which prices this hardware's layouts when the base scenario names no calibration of its own.
  std::string gpu_calibration;
  SharedText gpu_calibration_text;
  int max_gpus = 0;   ///< largest cluster considered
  int min_nodes = 1;  ///< smallest cluster considered, in nodes
  int node_step = 1;  ///< cluster sizes: min_nodes, min_nodes + step, ... up to max_gpus
  double usd_per_gpu_hour = 0;
  Power power;
};

/// The layouts the search may choose from (each list: the values tried).
struct SearchSpace {
  std::vector<int> tp{1, 2, 4, 8}, cp{1}, pp{1, 2, 4, 8, 16}, vpp{1}, ep{1, 2, 4, 8, 16, 32, 64, 128, 256},
      etp{1}, zero{1}, microbatch_size{1, 2, 4};
  std::vector<Recompute> recompute{Recompute::kNone, Recompute::kSelective, Recompute::kFull};
  std::vector<Schedule> schedule;      ///< empty: the base scenario's
  std::vector<DispatchMode> dispatch;  ///< empty: the base scenario's
  std::vector<bool> ep_overlap;        ///< combined 1F1B off/on (parallelism.ep_overlap); empty: the base's
  bool tp_within_node = true;          ///< TP · CP stays inside one NVLink domain (Megatron's practice)
};

struct PlanSpec {
  std::string name;
  std::string source;      ///< the plan file
  Scenario base;           ///< the base scenario, validated on its own cluster
  double tokens = 0;       ///< tokens to train
  double within_days = 0;  ///< deadline (0: none)
  /// Batch-size ramp: the global batch grows linearly from ramp_start_batch sequences to the base
  /// scenario's global batch over the first ramp_tokens tokens (DeepSeek-V3: 3072 → 15360 sequences over
  /// 469B tokens). 0: no ramp.
  int64_t ramp_start_batch = 0;
  double ramp_tokens = 0;
  std::vector<Hardware> hardware;
  SearchSpace search;
  Reliability reliability;
  int top = 10;  ///< plans listed
};

/// Reads and checks a plan file: every problem is a moesim error naming the file, the JSON pointer,
/// what was expected and what was found (ParseError, ConfigError, IoError as for scenarios).
PlanSpec read_plan(const std::string& path, const Catalog& catalog);
PlanSpec plan_from_json(const Json& j, const std::string& source, const Catalog& catalog);

}  // namespace moesim::plan
