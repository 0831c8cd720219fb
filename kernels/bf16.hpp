#pragma once
/// \file bfloat16 storage on the host: the bit layout of CUDA's __nv_bfloat16 (1 sign, 8 exponent,
/// 7 mantissa bits), so host vectors of Bf16 copy to and from device buffers unchanged. Conversions
/// round to nearest even, as the GPU's cvt.rn.bf16.f32 does, so CPU references reproduce every place
/// where a kernel rounds an fp32 value into bf16 storage. Plain C++: no CUDA header.

#include <bit>
#include <cstdint>

namespace moesim::kernels {

/// One bfloat16 value as its 16 bits. Trivially copyable, 2 bytes, same layout as __nv_bfloat16.
struct Bf16 {
  uint16_t bits = 0;
};
static_assert(sizeof(Bf16) == 2, "Bf16 must be 2 bytes");

/// fp32 → bf16, round to nearest, ties to even; NaN stays a (quiet) NaN, overflow rounds to ±inf.
inline Bf16 to_bf16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return Bf16{static_cast<uint16_t>((u >> 16) | 0x0040u)};
  const uint32_t rounded = u + 0x7fffu + ((u >> 16) & 1u);
  return Bf16{static_cast<uint16_t>(rounded >> 16)};
}

/// bf16 → fp32, exact.
inline float to_float(Bf16 b) {
  return std::bit_cast<float>(static_cast<uint32_t>(b.bits) << 16);
}

/// The value an fp32 result has once stored as bf16 and read back.
inline float round_bf16(float f) {
  return to_float(to_bf16(f));
}

/// A quiet NaN in bf16: what tests fill output buffers with to catch elements a kernel never wrote.
inline constexpr Bf16 kBf16NaN{0x7fc0};

inline bool is_nan(Bf16 b) {
  return (b.bits & 0x7fffu) > 0x7f80u;
}

}  // namespace moesim::kernels
