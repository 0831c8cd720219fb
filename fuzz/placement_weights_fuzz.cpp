// Fuzz target: the load matrix of `moesim place --weights FILE` (a JSON array of layers, each an array
// of expert loads), placed by every registered policy, then priced per GPU. The command's reader is
// private to cli/routing_commands.cpp; this target reads the file as it does (an array of arrays of
// numbers; anything else is an input error) and fuzzes what that reader hands on: the placement's
// checks, the policies and the per-GPU loads. The matrix doubles as the co-activation input.
#include "fuzz/fuzz_input.hpp"
#include "models/placement.hpp"
#include "models/placement/metrics.hpp"
#include "scenarios/error.hpp"
#include "scenarios/json_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  namespace m = moesim::models;
  m::PlacementInput in;
  try {
    const moesim::Json j = moesim::parse_json_text(moesim::fuzz::text(data, size), "weights.json");
    if (!j.is_array()) return 0;
    for (const moesim::Json& row : j) {
      if (!row.is_array()) return 0;
      in.weight.emplace_back();
      for (const moesim::Json& v : row) {
        if (!v.is_number()) return 0;
        in.weight.back().push_back(v.get<double>());
      }
    }
  } catch (const moesim::Error&) {
    return 0;
  }
  const int n = in.weight.empty() ? 0 : static_cast<int>(in.weight.front().size());
  in.coactivation = {in.weight};
  // (replicas, gpus, nodes, groups): the command's defaults, then replicas spread over nodes and groups.
  const int settings[][4] = {{n, 1, 1, 1}, {2 * n, 2, 1, 1}, {n + 4, 4, 2, 2}, {4 * n, 8, 2, 4}};
  for (const std::string& policy : m::placement_policies().names())
    for (const auto& s : settings) {
      in.num_replicas = s[0];
      in.num_gpus = s[1];
      in.num_nodes = s[2];
      in.num_groups = s[3];
      try {
        m::gpu_loads(m::place(policy, in), in.weight);
      } catch (const moesim::Error&) {
      }
    }
  return 0;
}
