#pragma once
/// \file Device helpers: 16-byte vectors of eight bf16 values, alignment tests, the SM count.

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace moesim::kernels::internal {

/// Eight bf16 values moved as one 16-byte load or store (element 0 in the low half of raw.x).
struct Bf16x8 {
  uint4 raw;
};

// bf16 → fp32 is a 16-bit shift; fp32 → bf16 rounds to nearest even (cvt.rn.bf16x2.f32).
__device__ __forceinline__ void unpack2(uint32_t w, float& lo, float& hi) {
  lo = __uint_as_float(w << 16);
  hi = __uint_as_float(w & 0xffff0000u);
}

__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  const __nv_bfloat162 p = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&p);
}

__device__ __forceinline__ void to_floats(const Bf16x8& v, float (&f)[8]) {
  unpack2(v.raw.x, f[0], f[1]);
  unpack2(v.raw.y, f[2], f[3]);
  unpack2(v.raw.z, f[4], f[5]);
  unpack2(v.raw.w, f[6], f[7]);
}

__device__ __forceinline__ Bf16x8 from_floats(const float (&f)[8]) {
  Bf16x8 v;
  v.raw.x = pack2(f[0], f[1]);
  v.raw.y = pack2(f[2], f[3]);
  v.raw.z = pack2(f[4], f[5]);
  v.raw.w = pack2(f[6], f[7]);
  return v;
}

/// Read-only, non-coherent 16-byte load (the data is not written by the same kernel).
__device__ __forceinline__ uint4 load_nc(const uint4* p) {
  return __ldg(p);
}

inline bool aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

/// Streaming multiprocessors of the current device (cached per device).
int sm_count();

}  // namespace moesim::kernels::internal
