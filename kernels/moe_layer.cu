// One MoE layer forward over device buffers: the host side that chains the kernels and carves the
// workspace. No kernel of its own.

#include <numeric>

#include "kernels/device.hpp"
#include "kernels/internal/cuda_check.hpp"

namespace moesim::kernels {
namespace {

size_t align256(size_t b) {
  return (b + 255) / 256 * 256;
}

// Byte offsets of each intermediate in the workspace, in MoeLayerBuffers order.
struct Plan {
  size_t topk_idx, topk_weight, counts, row_map, kept_counts, offsets, dropped, rows, h, a, y, scratch, total;
};

Plan plan(const MoeLayerConfig& c) {
  const size_t T = c.router.tokens, E = c.router.experts, K = c.router.top_k, H = c.hidden, F = c.ffn;
  const size_t R = static_cast<size_t>(permuted_rows_bound(c.permute()));
  Plan p{};
  size_t at = 0;
  auto take = [&](size_t bytes) {
    const size_t here = at;
    at += align256(bytes);
    return here;
  };
  p.topk_idx = take(T * K * 4);
  p.topk_weight = take(T * K * 4);
  p.counts = take(E * 4);
  p.row_map = take(T * K * 4);
  p.kept_counts = take(E * 4);
  p.offsets = take((E + 1) * 4);
  p.dropped = take(4);
  p.rows = take(R * H * 2);
  p.h = take(R * 2 * F * 2);
  p.a = take(R * F * 2);
  p.y = take(R * H * 2);
  p.scratch = take(permute_scratch_bytes(c.permute()));
  p.total = at;
  return p;
}

}  // namespace

MoeLayer::MoeLayer(const MoeLayerConfig& c) : config_(c) {
  validate(config_);
}

size_t MoeLayer::workspace_bytes() const {
  return plan(config_).total;
}

MoeLayerBuffers MoeLayer::buffers(void* workspace) const {
  const Plan p = plan(config_);
  auto* base = static_cast<char*>(workspace);
  MoeLayerBuffers b;
  b.topk_idx = reinterpret_cast<int32_t*>(base + p.topk_idx);
  b.topk_weight = reinterpret_cast<float*>(base + p.topk_weight);
  b.counts = reinterpret_cast<int32_t*>(base + p.counts);
  b.row_map = reinterpret_cast<int32_t*>(base + p.row_map);
  b.kept_counts = reinterpret_cast<int32_t*>(base + p.kept_counts);
  b.offsets = reinterpret_cast<int32_t*>(base + p.offsets);
  b.dropped = reinterpret_cast<int32_t*>(base + p.dropped);
  b.rows = reinterpret_cast<Bf16*>(base + p.rows);
  b.h = reinterpret_cast<Bf16*>(base + p.h);
  b.a = reinterpret_cast<Bf16*>(base + p.a);
  b.y = reinterpret_cast<Bf16*>(base + p.y);
  b.permute_scratch = base + p.scratch;
  return b;
}

void MoeLayer::forward(const MoeLayerArgs& in, cudaStream_t stream) {
  if (!in.logits || !in.x || !in.w_gate_up || !in.w_down || !in.out || !in.workspace)
    throw ConfigError("MoeLayer::forward: logits, x, weights, out and workspace must be device pointers");
  const MoeLayerConfig& c = config_;
  const MoeLayerBuffers b = buffers(in.workspace);
  const PermuteConfig pc = c.permute();
  const int E = c.router.experts, H = c.hidden, F = c.ffn;

  launch_router(c.router, RouterArgs{in.logits, in.expert_bias, b.topk_idx, b.topk_weight, b.counts}, stream);
  launch_permute(pc,
                 PermuteArgs{b.topk_idx, in.x, b.rows, b.row_map, b.kept_counts, b.offsets, b.dropped,
                             b.permute_scratch},
                 stream);

  int64_t rows = static_cast<int64_t>(E) * c.capacity;  // padded: every expert's capacity rows
  host_rows_.clear();
  if (needs_host_rows(c.backend)) {
    host_rows_.resize(E);
    MOESIM_CUDA_CHECK(cudaMemcpyAsync(host_rows_.data(), b.kept_counts, sizeof(int32_t) * E,
                                      cudaMemcpyDeviceToHost, stream));
    MOESIM_CUDA_CHECK(cudaStreamSynchronize(stream));
    if (pc.layout == RowLayout::kCompact)
      rows = std::accumulate(host_rows_.begin(), host_rows_.end(), int64_t{0});
  }

  ExpertGemmArgs g;
  g.experts = E;
  g.layout = pc.layout;
  g.capacity = c.capacity;
  g.host_rows = host_rows_.empty() ? nullptr : host_rows_.data();
  g.n = 2 * F;
  g.k = H;
  g.x = b.rows;
  g.w = in.w_gate_up;
  g.y = b.h;
  gemm_.run(c.backend, g, stream);
  launch_swiglu(rows, F, b.h, b.a, stream);
  g.n = H;
  g.k = F;
  g.x = b.a;
  g.w = in.w_down;
  g.y = b.y;
  gemm_.run(c.backend, g, stream);
  launch_combine(c.combine(), CombineArgs{b.y, b.row_map, b.topk_weight, in.out}, stream);
}

}  // namespace moesim::kernels
