// Permute: tokens → expert-contiguous rows in token order, with an optional capacity.
//
// Deterministic without a sort: in a tile of 256 tokens, expert e's tokens form a 256-bit set; the
// rank of token t within e is the population count of the bits below t, and the tile's count is the
// set's population count. A single block then scans the counts over tiles (rank bases) and over
// experts (offsets). The data movement — the only part that scales with H — reads each token row
// once with 16-byte loads and writes it to each of its kept rows.
// Traffic: T·H·2 bytes read + kept·H·2 written (+ ~5·T·K·4 bytes of indices).

#include <algorithm>

#include "kernels/device.hpp"
#include "kernels/internal/cuda_check.hpp"
#include "kernels/internal/vec.cuh"

namespace moesim::kernels {
namespace {

constexpr int kTile = 256;          // tokens per tile (one thread each)
constexpr int kWords = kTile / 32;  // 32-bit words of one expert's bitset
constexpr int kScatterBlock = 128;
constexpr int kUnroll = 4;

size_t align256(size_t b) {
  return (b + 255) / 256 * 256;
}
int tiles_of(int tokens) {
  return (tokens + kTile - 1) / kTile;
}

struct Scratch {
  int32_t* tile_counts;   // [tiles, E]
  int32_t* tile_base;     // [tiles, E]: rank of the tile's first token within each expert
  int32_t* rank_in_tile;  // [T, K]
};

Scratch carve(const PermuteConfig& c, void* scratch) {
  auto* p = static_cast<char*>(scratch);
  const size_t te = static_cast<size_t>(tiles_of(c.tokens)) * c.experts * sizeof(int32_t);
  Scratch s;
  s.tile_counts = reinterpret_cast<int32_t*>(p);
  s.tile_base = reinterpret_cast<int32_t*>(p + align256(te));
  s.rank_in_tile = reinterpret_cast<int32_t*>(p + 2 * align256(te));
  return s;
}

__global__ void __launch_bounds__(kTile)
    permute_rank_kernel(const int32_t* __restrict__ topk_idx, int tokens, int experts, int top_k,
                        int32_t* __restrict__ tile_counts, int32_t* __restrict__ rank_in_tile) {
  extern __shared__ unsigned bits[];  // [E][kWords]
  for (int i = threadIdx.x; i < experts * kWords; i += blockDim.x) bits[i] = 0u;
  __syncthreads();

  const int t = blockIdx.x * kTile + threadIdx.x;
  const bool active = t < tokens;
  const int word = threadIdx.x >> 5;
  const unsigned bit = 1u << (threadIdx.x & 31);
  // An assignment is routed only if its expert id is in [0, E) and no earlier slot of the token names the
  // same expert: ids come from traces too, and a bad one must not index shared memory or give two
  // assignments one row. Unrouted assignments get rank −1 and row_map −1 and count nowhere.
  uint32_t routed = 0;  // bit k: slot k routed (K ≤ 32)
  if (active)
    for (int k = 0; k < top_k; ++k) {
      const int e = topk_idx[static_cast<size_t>(t) * top_k + k];
      bool ok = e >= 0 && e < experts;
      for (int j = 0; ok && j < k; ++j) ok = topk_idx[static_cast<size_t>(t) * top_k + j] != e;
      if (!ok) continue;
      routed |= 1u << k;
      atomicOr(&bits[e * kWords + word], bit);
    }
  __syncthreads();

  for (int e = threadIdx.x; e < experts; e += blockDim.x) {
    int c = 0;
#pragma unroll
    for (int w = 0; w < kWords; ++w) c += __popc(bits[e * kWords + w]);
    tile_counts[static_cast<size_t>(blockIdx.x) * experts + e] = c;
  }
  if (active)
    for (int k = 0; k < top_k; ++k) {
      const size_t a = static_cast<size_t>(t) * top_k + k;
      if (!((routed >> k) & 1u)) {
        rank_in_tile[a] = -1;
        continue;
      }
      const unsigned* b = &bits[topk_idx[a] * kWords];
      int r = __popc(b[word] & (bit - 1u));
      for (int w = 0; w < word; ++w) r += __popc(b[w]);
      rank_in_tile[a] = r;
    }
}

// One block, one thread per expert (E ≤ 1024).
__global__ void permute_scan_kernel(const int32_t* __restrict__ tile_counts, int tiles, int experts,
                                    int capacity, int32_t* __restrict__ tile_base,
                                    int32_t* __restrict__ kept_counts, int32_t* __restrict__ offsets,
                                    int32_t* __restrict__ dropped) {
  __shared__ int warp_kept[32];
  __shared__ int warp_drop[32];
  const int e = threadIdx.x;
  int total = 0;
  if (e < experts) {
#pragma unroll 4
    for (int tile = 0; tile < tiles; ++tile) {
      const size_t i = static_cast<size_t>(tile) * experts + e;
      const int c = tile_counts[i];
      tile_base[i] = total;
      total += c;
    }
  }
  const int kept = e < experts ? (capacity > 0 ? min(total, capacity) : total) : 0;
  int drop = total - kept;

  // Block-wide exclusive scan of `kept` and sum of `drop`.
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int incl = kept;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const int o = __shfl_up_sync(0xffffffffu, incl, off);
    if (lane >= off) incl += o;
  }
#pragma unroll
  for (int off = 16; off >= 1; off >>= 1) drop += __shfl_xor_sync(0xffffffffu, drop, off);
  if (lane == 31) warp_kept[warp] = incl;
  if (lane == 0) warp_drop[warp] = drop;
  __syncthreads();
  const int warps = (blockDim.x + 31) / 32;
  if (warp == 0) {
    int w = lane < warps ? warp_kept[lane] : 0;
    int d = lane < warps ? warp_drop[lane] : 0;
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
      const int o = __shfl_up_sync(0xffffffffu, w, off);
      if (lane >= off) w += o;
    }
#pragma unroll
    for (int off = 16; off >= 1; off >>= 1) d += __shfl_xor_sync(0xffffffffu, d, off);
    if (lane < warps) warp_kept[lane] = w;  // inclusive scan of warp totals
    if (lane == 0) *dropped = d;
  }
  __syncthreads();
  const int excl = incl - kept + (warp > 0 ? warp_kept[warp - 1] : 0);
  if (e < experts) {
    kept_counts[e] = kept;
    offsets[e] = excl;
    if (e == experts - 1) offsets[experts] = excl + kept;
  }
}

struct ScatterParams {
  const int32_t* topk_idx;
  const int32_t* tile_base;
  const int32_t* rank_in_tile;
  const int32_t* offsets;
  const Bf16* x;
  Bf16* rows;
  int32_t* row_map;
  int tokens, experts, top_k, capacity;
  int64_t hidden;
  bool padded;
};

// One block per token: destinations first, then the row, read once and written K times.
template <bool kVec>
__global__ void __launch_bounds__(kScatterBlock) permute_scatter_kernel(ScatterParams p) {
  __shared__ int64_t dest[kMaxTopK];
  const int t = blockIdx.x;
  if (threadIdx.x < p.top_k) {
    const size_t a = static_cast<size_t>(t) * p.top_k + threadIdx.x;
    const int e = p.topk_idx[a];
    const int in_tile = p.rank_in_tile[a];  // −1: not routed (bad or repeated expert id)
    const int rank = in_tile < 0 ? 0 : p.tile_base[static_cast<size_t>(t / kTile) * p.experts + e] + in_tile;
    int64_t d = -1;
    if (in_tile >= 0 && (p.capacity == 0 || rank < p.capacity))
      d = p.padded ? static_cast<int64_t>(e) * p.capacity + rank : static_cast<int64_t>(p.offsets[e]) + rank;
    p.row_map[a] = static_cast<int32_t>(d);
    dest[threadIdx.x] = d;
  }
  __syncthreads();

  if constexpr (kVec) {
    const int64_t n16 = p.hidden / 8;
    const uint4* src = reinterpret_cast<const uint4*>(p.x) + t * n16;
    uint4* dst = reinterpret_cast<uint4*>(p.rows);
    for (int64_t c0 = threadIdx.x; c0 < n16; c0 += kUnroll * kScatterBlock) {
      uint4 v[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t c = c0 + u * kScatterBlock;
        if (c < n16) v[u] = internal::load_nc(src + c);
      }
      for (int k = 0; k < p.top_k; ++k) {
        const int64_t d = dest[k];
        if (d < 0) continue;
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const int64_t c = c0 + u * kScatterBlock;
          if (c < n16) dst[d * n16 + c] = v[u];
        }
      }
    }
  } else {
    const uint16_t* src = reinterpret_cast<const uint16_t*>(p.x) + t * p.hidden;
    uint16_t* dst = reinterpret_cast<uint16_t*>(p.rows);
    for (int64_t c = threadIdx.x; c < p.hidden; c += kScatterBlock) {
      const uint16_t v = src[c];
      for (int k = 0; k < p.top_k; ++k)
        if (dest[k] >= 0) dst[dest[k] * p.hidden + c] = v;
    }
  }
}

}  // namespace

size_t permute_scratch_bytes(const PermuteConfig& c) {
  const size_t te = static_cast<size_t>(tiles_of(c.tokens)) * c.experts * sizeof(int32_t);
  const size_t tk = static_cast<size_t>(c.tokens) * c.top_k * sizeof(int32_t);
  return 2 * align256(te) + align256(tk);
}

void launch_permute(const PermuteConfig& c, const PermuteArgs& a, cudaStream_t stream) {
  validate(c);
  if (!a.topk_idx || !a.x || !a.rows || !a.row_map || !a.kept_counts || !a.offsets || !a.dropped ||
      !a.scratch)
    throw ConfigError("launch_permute: every buffer of PermuteArgs must be a device pointer");
  const Scratch s = carve(c, a.scratch);
  const int tiles = tiles_of(c.tokens);

  if (tiles > 0) {
    const size_t smem = static_cast<size_t>(c.experts) * kWords * sizeof(unsigned);
    permute_rank_kernel<<<tiles, kTile, smem, stream>>>(a.topk_idx, c.tokens, c.experts, c.top_k,
                                                        s.tile_counts, s.rank_in_tile);
    MOESIM_CUDA_CHECK_LAUNCH();
  }
  const int scan_threads = (c.experts + 31) / 32 * 32;
  permute_scan_kernel<<<1, scan_threads, 0, stream>>>(s.tile_counts, tiles, c.experts, c.capacity,
                                                      s.tile_base, a.kept_counts, a.offsets, a.dropped);
  MOESIM_CUDA_CHECK_LAUNCH();
  if (c.tokens == 0) return;

  ScatterParams p{};
  p.topk_idx = a.topk_idx;
  p.tile_base = s.tile_base;
  p.rank_in_tile = s.rank_in_tile;
  p.offsets = a.offsets;
  p.x = a.x;
  p.rows = a.rows;
  p.row_map = a.row_map;
  p.tokens = c.tokens;
  p.experts = c.experts;
  p.top_k = c.top_k;
  p.capacity = c.capacity;
  p.hidden = c.hidden;
  p.padded = c.layout == RowLayout::kPadded;
  const bool vec = c.hidden % 8 == 0 && internal::aligned16(a.x) && internal::aligned16(a.rows);
  if (vec)
    permute_scatter_kernel<true><<<c.tokens, kScatterBlock, 0, stream>>>(p);
  else
    permute_scatter_kernel<false><<<c.tokens, kScatterBlock, 0, stream>>>(p);
  MOESIM_CUDA_CHECK_LAUNCH();
}

}  // namespace moesim::kernels
