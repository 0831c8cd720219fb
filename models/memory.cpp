#include "models/memory.hpp"

#include <cstdio>

#include "models/schedule.hpp"

namespace moesim::models {
namespace {

constexpr double kGiB = 1073741824.0;
// CUDA context, communication buffers (NCCL/DeepEP) and allocator fragmentation: a fixed reserve plus
// a share of what is allocated (PyTorch caching-allocator fragmentation is typically 5-10%).
constexpr double kReserveBytes = 2.5 * kGiB;
constexpr double kFragmentation = 0.05;

}  // namespace

MemoryBreakdown rank_memory(const Scenario& s, const RankHoldings& h, int rank) {
  const auto& par = s.parallelism;
  // Data-parallel replicas: attention weights over dp·cp ranks, experts over edp ranks.
  const double dp = s.layout.dp * par.cp, edp = s.layout.edp;
  const double grad_b = bytes_of(s.workload.grad_dtype), state_b = bytes_of(s.workload.optimizer_state_dtype);
  const double dense_p = h.params - h.expert_params, expert_p = h.expert_params;
  MemoryBreakdown mem;
  const double all_p = dense_p + expert_p;
  mem.weights = par.zero == 3 ? 2.0 * (dense_p / dp + expert_p / edp) : 2.0 * all_p;
  mem.master_weights = s.workload.master_weights ? 4.0 * h.shard_params : 0.0;
  mem.gradients = par.zero >= 2 ? grad_b * (dense_p / dp + expert_p / edp) : grad_b * all_p;
  mem.optimizer_states = s.workload.optimizer == Optimizer::kMuon
                             ? state_b * (h.shard_params + h.adam_shard_params)
                             : 2.0 * state_b * h.shard_params;
  mem.activations =
      h.activation_bytes * activations_in_flight(par.schedule, par.pp, par.vpp, rank) + h.transient_bytes;
  const double allocated =
      mem.weights + mem.master_weights + mem.gradients + mem.optimizer_states + mem.activations;
  mem.overhead = kReserveBytes + kFragmentation * allocated;
  mem.total = allocated + mem.overhead;
  mem.capacity = s.cluster.gpu.memory_bytes;
  mem.fits = mem.total <= mem.capacity;
  return mem;
}

std::string memory_shortfall(const MemoryBreakdown& m, int rank) {
  char buf[512];
  std::snprintf(
      buf, sizeof buf,
      "needs %.1f GiB per GPU on pipeline rank %d, the GPU has %.1f GiB (weights %.1f, master %.1f, "
      "gradients %.1f, optimizer %.1f, activations %.1f, reserve %.1f)",
      m.total / kGiB, rank, m.capacity / kGiB, m.weights / kGiB, m.master_weights / kGiB, m.gradients / kGiB,
      m.optimizer_states / kGiB, m.activations / kGiB, m.overhead / kGiB);
  return buf;
}

}  // namespace moesim::models
