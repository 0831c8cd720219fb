// Router kernel: softmax/sigmoid scores, selection bias, group (node) limit, top-k, weights and the
// per-expert histogram, one token per team of lanes with the token's experts in registers.
//
// Why this shape: the router reads T·E fp32 logits once (8 MiB at 8192 × 256, ~3 µs at 3 TB/s) and
// is otherwise bound by instruction issue, not by memory. One team per token keeps every step in
// registers and shuffles (no shared-memory round trips); the k argmax rounds cost log2(lanes)
// shuffles each. Budget at 8192 tokens × 256 experts, top-8 on an H100 (estimated, not measured):
// ~550 warp instructions per token → ~4.5 M warp instructions / (132 SMs × 4 issue/clk) ≈ 5 µs.

#include <math_constants.h>

#include <algorithm>
#include <cfloat>
#include <climits>

#include "kernels/device.hpp"
#include "kernels/internal/cuda_check.hpp"
#include "kernels/internal/router_layout.hpp"
#include "kernels/internal/vec.cuh"

namespace moesim::kernels {
namespace {

constexpr int kRouterBlock = 256;
constexpr unsigned kFull = 0xffffffffu;

struct RouterParams {
  const float* logits;
  const float* bias;
  int32_t* topk_idx;
  float* topk_weight;
  int32_t* counts;
  int tokens, experts, top_k;
  int groups, topk_groups, group_size, group_top;
  int lanes_per_group;  // > 0: every lane's experts lie in one group, groups span this many lanes
  bool softmax, normalize, vec4;
  float scale;
};

// (v, i) ranks before (ov, oi): larger value, then lower index.
__device__ __forceinline__ bool better(float v, int i, float ov, int oi) {
  return v > ov || (v == ov && i < oi);
}

// Top-2 values of two top-2 lists (a1 ≥ a2, b1 ≥ b2).
__device__ __forceinline__ void merge_top2(float& a1, float& a2, float b1, float b2) {
  if (b1 > a1) {
    a2 = fmaxf(a1, b2);
    a1 = b1;
  } else {
    a2 = fmaxf(a2, b1);
  }
}

__device__ __forceinline__ void insert_top2(float& t1, float& t2, float v) {
  if (v > t1) {
    t2 = t1;
    t1 = v;
  } else if (v > t2) {
    t2 = v;
  }
}

template <int L, int VPT>
__global__ void __launch_bounds__(kRouterBlock) router_kernel(RouterParams p) {
  extern __shared__ int hist[];
  for (int e = threadIdx.x; e < p.experts; e += blockDim.x) hist[e] = 0;
  __syncthreads();

  constexpr int kTeamsPerWarp = 32 / L;
  constexpr int kSlots = (kMaxTopK + L - 1) / L;
  const float kNegInf = -CUDART_INF_F;
  const int lane_in_warp = threadIdx.x & 31;
  const int lane = lane_in_warp % L;
  const int team = lane_in_warp / L;
  const int warp = static_cast<int>((blockIdx.x * blockDim.x + threadIdx.x) >> 5);
  const int warps = static_cast<int>((gridDim.x * blockDim.x) >> 5);
  const int e0 = lane * VPT;
  const int E = p.experts, K = p.top_k;

  // The lane's experts are the same for every token: load the bias once.
  float bias[VPT];
#pragma unroll
  for (int j = 0; j < VPT; ++j) bias[j] = (p.bias != nullptr && e0 + j < E) ? p.bias[e0 + j] : 0.0f;
  // Group of the lane's first expert and where the next group starts: later groups follow by
  // counting boundaries, so no integer division runs per token.
  const int group0 = e0 / p.group_size;
  const int boundary0 = (group0 + 1) * p.group_size;

  // The loop bound is uniform per warp, so every lane of the warp reaches every shuffle.
  for (int base = warp * kTeamsPerWarp; base < p.tokens; base += warps * kTeamsPerWarp) {
    const int t = base + team;
    const bool active = t < p.tokens;
    const float* row = p.logits + static_cast<size_t>(active ? t : p.tokens - 1) * E;

    float s[VPT];
    if (p.vec4) {
#pragma unroll
      for (int q = 0; q < VPT / 4; ++q) {
        const int e = e0 + 4 * q;
        float4 f = make_float4(kNegInf, kNegInf, kNegInf, kNegInf);
        if (e < E) f = __ldg(reinterpret_cast<const float4*>(row + e));
        s[4 * q] = f.x;
        s[4 * q + 1] = f.y;
        s[4 * q + 2] = f.z;
        s[4 * q + 3] = f.w;
      }
    } else {
#pragma unroll
      for (int j = 0; j < VPT; ++j) s[j] = e0 + j < E ? __ldg(row + e0 + j) : kNegInf;
    }

    // Scores.
    if (p.softmax) {
      float m = kNegInf;
#pragma unroll
      for (int j = 0; j < VPT; ++j) m = fmaxf(m, s[j]);
#pragma unroll
      for (int off = L / 2; off >= 1; off >>= 1) m = fmaxf(m, __shfl_xor_sync(kFull, m, off, L));
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < VPT; ++j) {
        s[j] = e0 + j < E ? expf(s[j] - m) : 0.0f;
        sum += s[j];
      }
#pragma unroll
      for (int off = L / 2; off >= 1; off >>= 1) sum += __shfl_xor_sync(kFull, sum, off, L);
#pragma unroll
      for (int j = 0; j < VPT; ++j) s[j] = s[j] / sum;
    } else {
#pragma unroll
      for (int j = 0; j < VPT; ++j) s[j] = e0 + j < E ? 1.0f / (1.0f + expf(-s[j])) : 0.0f;
    }
    float sel[VPT];
#pragma unroll
    for (int j = 0; j < VPT; ++j) {
      sel[j] = e0 + j < E ? s[j] + bias[j] : kNegInf;
      // A NaN score (NaN or infinite logits) ranks below every number but above a taken expert (−inf),
      // so every argmax round names a distinct expert in [0, E): NaN compares false and would leave
      // the winner's index at INT_MAX.
      if (isnan(sel[j])) sel[j] = -FLT_MAX;
    }

    // Group (node) limit: lane g holds group g's score, ranks it, and a ballot gives the kept groups.
    if (p.groups > 1) {
      float group_score = kNegInf;
      if (p.lanes_per_group > 0) {
        float t1 = kNegInf, t2 = kNegInf;
#pragma unroll
        for (int j = 0; j < VPT; ++j) insert_top2(t1, t2, sel[j]);
        for (int off = 1; off < p.lanes_per_group; off <<= 1) {
          const float o1 = __shfl_xor_sync(kFull, t1, off, L);
          const float o2 = __shfl_xor_sync(kFull, t2, off, L);
          merge_top2(t1, t2, o1, o2);
        }
        const float segment = p.group_top == 1 ? t1 : t1 + t2;
        group_score = __shfl_sync(kFull, segment, (lane * p.lanes_per_group) % L, L);
      } else {
        for (int g = 0; g < p.groups; ++g) {
          float t1 = kNegInf, t2 = kNegInf;
          int gj = group0, boundary = boundary0;
#pragma unroll
          for (int j = 0; j < VPT; ++j) {
            if (e0 + j >= boundary) {
              ++gj;
              boundary += p.group_size;
            }
            if (gj == g) insert_top2(t1, t2, sel[j]);  // invalid experts hold −inf
          }
#pragma unroll
          for (int off = L / 2; off >= 1; off >>= 1) {
            const float o1 = __shfl_xor_sync(kFull, t1, off, L);
            const float o2 = __shfl_xor_sync(kFull, t2, off, L);
            merge_top2(t1, t2, o1, o2);
          }
          if (lane == g) group_score = p.group_top == 1 ? t1 : t1 + t2;
        }
      }
      int rank = 0;
      for (int g = 0; g < p.groups; ++g) {
        const float o = __shfl_sync(kFull, group_score, g, L);
        rank += (o > group_score || (o == group_score && g < lane)) ? 1 : 0;
      }
      const unsigned ballot = __ballot_sync(kFull, lane < p.groups && rank < p.topk_groups);
      const unsigned kept = L == 32 ? ballot : (ballot >> (team * L)) & ((1u << L) - 1u);
      int gj = group0, boundary = boundary0;
#pragma unroll
      for (int j = 0; j < VPT; ++j) {
        if (e0 + j >= boundary) {
          ++gj;
          boundary += p.group_size;
        }
        if (gj >= p.groups || !((kept >> gj) & 1u)) sel[j] = kNegInf;
      }
    }

    // Top-k: k rounds of a team argmax; the winner's owner removes it.
    int slot_idx[kSlots];
    float slot_s[kSlots];
#pragma unroll
    for (int q = 0; q < kSlots; ++q) {
      slot_idx[q] = 0;
      slot_s[q] = 0.0f;
    }
    float wsum = 0.0f;
    for (int it = 0; it < K; ++it) {
      float bv = kNegInf, bs = 0.0f;
      int bi = INT_MAX;
#pragma unroll
      for (int j = 0; j < VPT; ++j)
        if (e0 + j < E && better(sel[j], e0 + j, bv, bi)) {
          bv = sel[j];
          bi = e0 + j;
          bs = s[j];
        }
#pragma unroll
      for (int off = L / 2; off >= 1; off >>= 1) {
        const float ov = __shfl_xor_sync(kFull, bv, off, L);
        const int oi = __shfl_xor_sync(kFull, bi, off, L);
        if (better(ov, oi, bv, bi)) {
          bv = ov;
          bi = oi;
        }
      }
      // The owner's local best is the winner: take its unbiased score from there.
      const int owner = bi / VPT;
      const float ws = __shfl_sync(kFull, bs, owner, L);
      if (lane == owner) {
#pragma unroll
        for (int j = 0; j < VPT; ++j)
          if (e0 + j == bi) sel[j] = kNegInf;
      }
      wsum += ws;
#pragma unroll
      for (int q = 0; q < kSlots; ++q)
        if (it == q * L + lane) {
          slot_idx[q] = bi;
          slot_s[q] = ws;
        }
    }

    if (active) {
#pragma unroll
      for (int q = 0; q < kSlots; ++q) {
        const int it = q * L + lane;
        if (it < K) {
          float w = slot_s[q];
          if (p.normalize) w = w / wsum;
          w = w * p.scale;
          p.topk_idx[static_cast<size_t>(t) * K + it] = slot_idx[q];
          p.topk_weight[static_cast<size_t>(t) * K + it] = w;
          atomicAdd(&hist[slot_idx[q]], 1);
        }
      }
    }
  }

  __syncthreads();
  for (int e = threadIdx.x; e < p.experts; e += blockDim.x)
    if (hist[e] != 0) atomicAdd(&p.counts[e], hist[e]);
}

template <int L, int VPT>
void launch(const RouterParams& p, cudaStream_t stream) {
  const int teams_per_block = kRouterBlock / L;
  const int needed = (p.tokens + teams_per_block - 1) / teams_per_block;
  // Enough blocks to fill every SM several times over; beyond that, teams loop over tokens and the
  // per-block histogram flush is amortised over more tokens.
  const int blocks = std::max(1, std::min(needed, internal::sm_count() * 4));
  const size_t smem = static_cast<size_t>(p.experts) * sizeof(int);
  router_kernel<L, VPT><<<blocks, kRouterBlock, smem, stream>>>(p);
  MOESIM_CUDA_CHECK_LAUNCH();
}

}  // namespace

void launch_router(const RouterConfig& c, const RouterArgs& a, cudaStream_t stream) {
  validate(c);
  if (!a.logits || !a.topk_idx || !a.topk_weight || !a.counts)
    throw ConfigError("launch_router: logits, topk_idx, topk_weight and counts must be device pointers");
  MOESIM_CUDA_CHECK(cudaMemsetAsync(a.counts, 0, sizeof(int32_t) * c.experts, stream));
  if (c.tokens == 0) return;

  const internal::RouterLayout layout = internal::router_layout(c.experts, c.groups);
  RouterParams p{};
  p.logits = a.logits;
  p.bias = a.expert_bias;
  p.topk_idx = a.topk_idx;
  p.topk_weight = a.topk_weight;
  p.counts = a.counts;
  p.tokens = c.tokens;
  p.experts = c.experts;
  p.top_k = c.top_k;
  p.groups = c.groups;
  p.topk_groups = c.topk_groups;
  p.group_size = c.experts / c.groups;
  p.group_top = c.group_score_top;
  p.softmax = c.score == ScoreFunction::kSoftmax;
  p.normalize = c.normalize;
  p.scale = c.scale;
  p.vec4 = c.experts % 4 == 0 && internal::aligned16(a.logits);
  p.lanes_per_group = 0;
  if (c.groups > 1 && p.group_size % layout.per_lane == 0) {
    const int lpg = p.group_size / layout.per_lane;
    if ((lpg & (lpg - 1)) == 0 && lpg <= layout.lanes) p.lanes_per_group = lpg;
  }

  switch (layout.lanes * 100 + layout.per_lane) {
    case 204:
      launch<2, 4>(p, stream);
      break;
    case 804:
      launch<8, 4>(p, stream);
      break;
    case 3204:
      launch<32, 4>(p, stream);
      break;
    case 3208:
      launch<32, 8>(p, stream);
      break;
    case 3216:
      launch<32, 16>(p, stream);
      break;
    case 3232:
      launch<32, 32>(p, stream);
      break;
    default:
      MOESIM_ASSERT(false, "router layout without a kernel instantiation");
  }
}

}  // namespace moesim::kernels
