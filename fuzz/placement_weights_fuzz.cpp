// Fuzz target: the load matrix of `moesim place --weights FILE` (traces::read_expert_loads), then, as the
// command does, every registered placement policy on it and the per-GPU loads. The matrix doubles as
// the co-activation input; a few (replicas, GPUs, nodes, groups) settings besides the command's defaults.
#include "fuzz/fuzz_input.hpp"
#include "models/placement.hpp"
#include "models/placement/metrics.hpp"
#include "scenarios/error.hpp"
#include "traces/import.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  namespace m = moesim::models;
  const std::string path =
      moesim::fuzz::write_file(moesim::fuzz::fresh_dir(), "weights.json", moesim::fuzz::text(data, size));
  m::PlacementInput in;
  try {
    in.weight = moesim::traces::read_expert_loads(path);
  } catch (const moesim::Error&) {
    return 0;
  }
  const int n = static_cast<int>(in.weight.front().size());
  in.coactivation = {in.weight};
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
