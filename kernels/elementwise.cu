// Memory-bound kernels: SwiGLU and unpermute + weighted combine. Both move 16 bytes (eight bf16) per
// load and store when the shapes and pointers allow, with enough blocks to keep every SM's memory
// pipeline full; the scalar variants exist for odd shapes only.
// Traffic: SwiGLU reads rows·2F·2 bytes and writes rows·F·2; combine reads kept·H·2 (+ T·K·8 of
// indices and weights) and writes T·H·2.

#include <algorithm>
#include <climits>

#include "kernels/device.hpp"
#include "kernels/internal/cuda_check.hpp"
#include "kernels/internal/vec.cuh"

namespace moesim::kernels {
namespace {

constexpr int kSwigluBlock = 256;
constexpr int kCombineBlock = 128;

__device__ __forceinline__ float swiglu(float g, float u) {
  return g / (1.0f + expf(-g)) * u;
}

// Index type I: 32-bit when rows · F/8 fits (cheaper division), 64-bit otherwise.
template <typename I>
__global__ void __launch_bounds__(kSwigluBlock)
    swiglu_vec_kernel(const uint4* __restrict__ h, uint4* __restrict__ a, I n, I f8) {
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    const I r = i / f8, c = i - r * f8;
    internal::Bf16x8 g, u;
    g.raw = internal::load_nc(h + r * 2 * f8 + c);
    u.raw = internal::load_nc(h + r * 2 * f8 + f8 + c);
    float gf[8], uf[8], o[8];
    internal::to_floats(g, gf);
    internal::to_floats(u, uf);
#pragma unroll
    for (int j = 0; j < 8; ++j) o[j] = swiglu(gf[j], uf[j]);
    a[i] = internal::from_floats(o).raw;
  }
}

__global__ void __launch_bounds__(kSwigluBlock)
    swiglu_scalar_kernel(const __nv_bfloat16* __restrict__ h, __nv_bfloat16* __restrict__ a, int64_t n,
                         int64_t f) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / f, c = i - r * f;
    a[i] = __float2bfloat16_rn(
        swiglu(__bfloat162float(h[r * 2 * f + c]), __bfloat162float(h[r * 2 * f + f + c])));
  }
}

struct CombineParams {
  const Bf16* y;
  const int32_t* row_map;
  const float* weight;
  Bf16* out;
  int top_k;
  int64_t hidden;
};

// One block per token; each thread owns 8 output elements at a time and reads the K rows' matching
// 16 bytes (independent loads, so K requests are in flight per thread).
template <bool kVec>
__global__ void __launch_bounds__(kCombineBlock) combine_kernel(CombineParams p) {
  __shared__ int64_t row[kMaxTopK];
  __shared__ float w[kMaxTopK];
  const int t = blockIdx.x;
  if (threadIdx.x < p.top_k) {
    row[threadIdx.x] = p.row_map[static_cast<size_t>(t) * p.top_k + threadIdx.x];
    w[threadIdx.x] = p.weight[static_cast<size_t>(t) * p.top_k + threadIdx.x];
  }
  __syncthreads();

  if constexpr (kVec) {
    const int64_t n16 = p.hidden / 8;
    const uint4* y = reinterpret_cast<const uint4*>(p.y);
    uint4* out = reinterpret_cast<uint4*>(p.out) + t * n16;
    for (int64_t c = threadIdx.x; c < n16; c += kCombineBlock) {
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
#pragma unroll 4
      for (int k = 0; k < p.top_k; ++k) {
        const int64_t r = row[k];
        if (r < 0) continue;
        internal::Bf16x8 v;
        v.raw = internal::load_nc(y + r * n16 + c);
        float f[8];
        internal::to_floats(v, f);
        const float wk = w[k];
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[j] = fmaf(wk, f[j], acc[j]);
      }
      out[c] = internal::from_floats(acc).raw;
    }
  } else {
    const __nv_bfloat16* y = reinterpret_cast<const __nv_bfloat16*>(p.y);
    __nv_bfloat16* out = reinterpret_cast<__nv_bfloat16*>(p.out) + t * p.hidden;
    for (int64_t c = threadIdx.x; c < p.hidden; c += kCombineBlock) {
      float acc = 0.0f;
      for (int k = 0; k < p.top_k; ++k)
        if (row[k] >= 0) acc = fmaf(w[k], __bfloat162float(y[row[k] * p.hidden + c]), acc);
      out[c] = __float2bfloat16_rn(acc);
    }
  }
}

// Grid for a grid-stride elementwise kernel: enough blocks for full occupancy, no more than needed.
int stride_blocks(int64_t work, int block) {
  const int64_t needed = (work + block - 1) / block;
  return static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>(needed, int64_t{internal::sm_count()} * 16)));
}

}  // namespace

void launch_swiglu(int64_t rows, int ffn, const Bf16* h, Bf16* a, cudaStream_t stream) {
  if (rows < 0 || ffn <= 0) throw ConfigError("launch_swiglu: expected rows ≥ 0 and ffn > 0");
  if (rows == 0) return;
  if (!h || !a) throw ConfigError("launch_swiglu: h and a must be device pointers");
  const int64_t f = ffn;
  if (f % 8 == 0 && internal::aligned16(h) && internal::aligned16(a)) {
    const int64_t n = rows * (f / 8);
    const int blocks = stride_blocks(n, kSwigluBlock);
    const auto* hv = reinterpret_cast<const uint4*>(h);
    auto* av = reinterpret_cast<uint4*>(a);
    if (n < INT_MAX / 2)
      swiglu_vec_kernel<unsigned><<<blocks, kSwigluBlock, 0, stream>>>(hv, av, static_cast<unsigned>(n),
                                                                       static_cast<unsigned>(f / 8));
    else
      swiglu_vec_kernel<int64_t><<<blocks, kSwigluBlock, 0, stream>>>(hv, av, n, f / 8);
  } else {
    const int64_t n = rows * f;
    swiglu_scalar_kernel<<<stride_blocks(n, kSwigluBlock), kSwigluBlock, 0, stream>>>(
        reinterpret_cast<const __nv_bfloat16*>(h), reinterpret_cast<__nv_bfloat16*>(a), n, f);
  }
  MOESIM_CUDA_CHECK_LAUNCH();
}

void launch_combine(const CombineConfig& c, const CombineArgs& a, cudaStream_t stream) {
  validate(c);
  if (c.tokens == 0) return;
  if (!a.y || !a.row_map || !a.topk_weight || !a.out)
    throw ConfigError("launch_combine: y, row_map, topk_weight and out must be device pointers");
  CombineParams p{a.y, a.row_map, a.topk_weight, a.out, c.top_k, c.hidden};
  if (c.hidden % 8 == 0 && internal::aligned16(a.y) && internal::aligned16(a.out))
    combine_kernel<true><<<c.tokens, kCombineBlock, 0, stream>>>(p);
  else
    combine_kernel<false><<<c.tokens, kCombineBlock, 0, stream>>>(p);
  MOESIM_CUDA_CHECK_LAUNCH();
}

}  // namespace moesim::kernels
