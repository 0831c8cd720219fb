// Device helpers: SM count, seeded fills, copy kernel, SM clock (kernels/device_utils.hpp).

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/device_utils.hpp"
#include "kernels/internal/vec.cuh"

namespace moesim::kernels {

namespace internal {

int sm_count() {
  constexpr int kMaxDevices = 64;
  static int cached[kMaxDevices] = {};
  int device = 0;
  MOESIM_CUDA_CHECK(cudaGetDevice(&device));
  if (device < kMaxDevices && cached[device] > 0) return cached[device];
  int sms = 0;
  MOESIM_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  if (device < kMaxDevices) cached[device] = sms;
  return sms;
}

}  // namespace internal

namespace {

constexpr int kBlock = 256;

__host__ __device__ inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in (0, 1): 24 random bits, never 0 (Gumbel takes log(−log u)).
// In (0, 1): 23 random bits at the centres of 2^23 cells, every one exactly representable (24 bits
// would round the top cell, 1 − 2^-25, up to 1).
__device__ inline float unit(uint64_t seed, uint64_t i) {
  const uint32_t bits = static_cast<uint32_t>(splitmix64(seed ^ splitmix64(i)) >> 41);
  return (static_cast<float>(bits) + 0.5f) * (1.0f / 8388608.0f);
}

template <typename T>
__global__ void fill_uniform_kernel(T* p, size_t n, float lo, float hi, uint64_t seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    float v = lo + (hi - lo) * unit(seed, i);
    if (!(v < hi)) v = lo;  // lo + (hi − lo)·u can round up to hi; keep [lo, hi)
    if constexpr (sizeof(T) == 2)
      reinterpret_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
    else
      p[i] = v;
  }
}

__global__ void gumbel_logits_kernel(float* logits, int tokens, int experts, const float* profile,
                                     float noise, uint64_t seed) {
  const size_t n = static_cast<size_t>(tokens) * experts;
  constexpr float kEulerGamma = 0.57721566f;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float g = -logf(-logf(unit(seed, i)));
    logits[i] = profile[i % experts] + noise * (g - kEulerGamma);
  }
}

constexpr int kCopyUnroll = 4;

__global__ void __launch_bounds__(kBlock)
    copy_kernel(const uint4* __restrict__ src, uint4* __restrict__ dst, size_t n) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  for (; i + (kCopyUnroll - 1) * stride < n; i += kCopyUnroll * stride) {
    uint4 v[kCopyUnroll];
#pragma unroll
    for (int u = 0; u < kCopyUnroll; ++u) v[u] = internal::load_nc(src + i + u * stride);
#pragma unroll
    for (int u = 0; u < kCopyUnroll; ++u) dst[i + u * stride] = v[u];
  }
  for (; i < n; i += stride) dst[i] = internal::load_nc(src + i);
}

__global__ void clock_kernel(unsigned long long spin_ns, unsigned long long* out) {
  unsigned long long t0, t1;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  const long long c0 = clock64();
  do {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t1));
  } while (t1 - t0 < spin_ns);
  const long long c1 = clock64();
  out[0] = static_cast<unsigned long long>(c1 - c0);
  out[1] = t1 - t0;
}

int grid_for(size_t n) {
  const size_t needed = (n + kBlock - 1) / kBlock;
  return static_cast<int>(std::max<size_t>(1, std::min<size_t>(needed, size_t{65535} * 16)));
}

}  // namespace

void fill_uniform(Bf16* p, size_t n, float lo, float hi, uint64_t seed, cudaStream_t stream) {
  if (n == 0) return;
  fill_uniform_kernel<<<grid_for(n), kBlock, 0, stream>>>(p, n, lo, hi, seed);
  MOESIM_CUDA_CHECK_LAUNCH();
}

void fill_uniform(float* p, size_t n, float lo, float hi, uint64_t seed, cudaStream_t stream) {
  if (n == 0) return;
  fill_uniform_kernel<<<grid_for(n), kBlock, 0, stream>>>(p, n, lo, hi, seed);
  MOESIM_CUDA_CHECK_LAUNCH();
}

void fill_gumbel_logits(float* logits, int tokens, int experts, const float* profile, float noise,
                        uint64_t seed, cudaStream_t stream) {
  const size_t n = static_cast<size_t>(tokens) * experts;
  if (n == 0) return;
  gumbel_logits_kernel<<<grid_for(n), kBlock, 0, stream>>>(logits, tokens, experts, profile, noise, seed);
  MOESIM_CUDA_CHECK_LAUNCH();
}

std::vector<float> zipf_profile(int experts, double s, uint64_t seed) {
  std::vector<int> rank(experts);
  std::iota(rank.begin(), rank.end(), 0);
  uint64_t state = seed;
  for (int i = experts - 1; i > 0; --i) {  // Fisher–Yates with splitmix64
    state = splitmix64(state);
    std::swap(rank[i], rank[static_cast<int>(state % static_cast<uint64_t>(i + 1))]);
  }
  std::vector<float> profile(experts);
  for (int e = 0; e < experts; ++e) profile[e] = static_cast<float>(-s * std::log(rank[e] + 1.0));
  return profile;
}

void copy_bytes(const void* src, void* dst, size_t bytes, cudaStream_t stream) {
  if (bytes % 16 != 0 || !internal::aligned16(src) || !internal::aligned16(dst))
    throw ConfigError("copy_bytes: expected 16-byte aligned pointers and a multiple of 16 bytes");
  const size_t n = bytes / 16;
  if (n == 0) return;
  const int blocks = static_cast<int>(
      std::min<size_t>((n + kBlock - 1) / kBlock, static_cast<size_t>(internal::sm_count()) * 8));
  copy_kernel<<<blocks, kBlock, 0, stream>>>(static_cast<const uint4*>(src), static_cast<uint4*>(dst), n);
  MOESIM_CUDA_CHECK_LAUNCH();
}

double measure_sm_clock_mhz() {
  DeviceBuffer<unsigned long long> out(2);
  clock_kernel<<<1, 1>>>(2'000'000ull, out.get());
  MOESIM_CUDA_CHECK_LAUNCH();
  MOESIM_CUDA_CHECK(cudaDeviceSynchronize());
  const auto v = out.download();
  return v[1] > 0 ? static_cast<double>(v[0]) / static_cast<double>(v[1]) * 1e3 : 0.0;
}

}  // namespace moesim::kernels
