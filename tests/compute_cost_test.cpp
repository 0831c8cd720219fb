// The roofline compute cost model (models/compute_cost.cpp) on a hand-built GPU with round numbers, so
// every expected time is a few multiplications (shown above each assertion):
//   GEMM: 128×128 output tiles, waves = ceil(tiles / SMs), one tile = 2·128·128·k / (peak·eff / SMs);
//   time = max(waves · tile, bytes / (bw · eff)) + launch.

#include "models/compute_cost.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace moesim::models {
namespace {

// 100 SMs, 1 PFLOP/s BF16 at 50% → 5 TFLOP/s per SM; FP8 2 PFLOP/s at 50%; memory 100 TB/s (so GEMMs
// below are compute-bound unless stated), launch 0.
GpuSpec gpu() {
  GpuSpec g;
  g.name = "testgpu";
  g.sm_count = 100;
  g.flops_bf16 = 1e15;
  g.gemm_efficiency_bf16 = 0.5;
  g.flops_fp8 = 2e15;
  g.gemm_efficiency_fp8 = 0.5;
  g.attention_efficiency = 0.5;
  g.attention_backward_efficiency = 0.25;
  g.memory_bandwidth = 1e14;
  g.memory_efficiency = 1.0;
  g.kernel_launch = 0;
  g.memory_bytes = 80e9;
  return g;
}

constexpr double kRel = 1e-12;
// One 128×128×k tile on one SM at 1e15 · 0.5 / 100 = 5e12 flop/s.
double tile(double k) {
  return 2.0 * 128 * 128 * k / (1e15 * 0.5 / 100);
}

TEST(Roofline, Name) {
  EXPECT_EQ(RooflineCostModel(gpu(), 0).name(), "roofline:testgpu");
}

TEST(Roofline, GemmOneWave) {
  RooflineCostModel cm(gpu(), 0);
  const double k = 4096;
  // 128 × 12800 output = 1 × 100 tiles = exactly one wave on 100 SMs:
  // 2·128·128·4096 / 5e12 = 26.8435456 µs. (Memory: 2·(128·4096 + 4096·12800) + 2·128·12800 B
  // = 109,182,976 B / 1e14 = 1.09 µs, below.)
  const double want = tile(k);
  EXPECT_NEAR(want, 26.8435456e-6, 1e-15);
  EXPECT_NEAR(cm.gemm(128, 128 * 100, k, Precision::kBf16), want, want * kRel);
  // 129 rows × 6400 columns: 2 × 50 = 100 tiles, still one wave.
  EXPECT_NEAR(cm.gemm(129, 128 * 50, k, Precision::kBf16), want, want * kRel);
  // A single row still pays one tile.
  EXPECT_NEAR(cm.gemm(1, 128, k, Precision::kBf16), want, want * kRel);
}

TEST(Roofline, GemmTwoWaves) {
  RooflineCostModel cm(gpu(), 0);
  const double k = 4096;
  // 101 tiles → ceil(101/100) = 2 waves: twice the one-wave time.
  EXPECT_NEAR(cm.gemm(128, 128 * 101, k, Precision::kBf16), 2 * tile(k), 2 * tile(k) * kRel);
  // 200 tiles: still 2 waves; 201: 3.
  EXPECT_NEAR(cm.gemm(256, 128 * 100, k, Precision::kBf16), 2 * tile(k), 2 * tile(k) * kRel);
  EXPECT_NEAR(cm.gemm(128 * 3, 128 * 67, k, Precision::kBf16), 3 * tile(k), 3 * tile(k) * kRel);
}

TEST(Roofline, GemmFp8UsesFp8Peak) {
  RooflineCostModel cm(gpu(), 0);
  // FP8: 2e15 · 0.5 / 100 = 1e13 per SM → half the BF16 tile time.
  EXPECT_NEAR(cm.gemm(128, 128 * 100, 4096, Precision::kFp8), tile(4096) / 2, tile(4096) / 2 * kRel);
}

TEST(Roofline, GemmMemoryBoundAndLaunch) {
  GpuSpec g = gpu();
  g.memory_bandwidth = 1e12;
  g.memory_efficiency = 0.5;
  g.kernel_launch = 5e-6;
  RooflineCostModel cm(g, 0);
  // 128 × 12800 × 4096 BF16: bytes 2·(128·4096 + 4096·12800) + 2·128·12800 = 109,182,976 B
  // / (1e12 · 0.5) = 218.365952 µs > 26.84 µs compute; + 5 µs launch.
  const double want = 109182976.0 / 5e11 + 5e-6;
  EXPECT_NEAR(cm.gemm(128, 128 * 100, 4096, Precision::kBf16), want, want * kRel);
  // FP8 inputs are 1 byte: (128·4096 + 4096·12800) + 2·128·12800 = 56,229,888 B.
  const double want8 = 56229888.0 / 5e11 + 5e-6;
  EXPECT_NEAR(cm.gemm(128, 128 * 100, 4096, Precision::kFp8), want8, want8 * kRel);
  // Degenerate shapes cost nothing (not even a launch).
  EXPECT_EQ(cm.gemm(0, 128, 128, Precision::kBf16), 0.0);
}

TEST(Roofline, GroupedGemmPaysCeilPadding) {
  RooflineCostModel cm(gpu(), 0);
  const double k = 2048;
  // Rows {1, 129}, n = 128·40: tiles 1·40 + 2·40 = 120 → 2 waves (an unpadded 130 rows would make
  // 2·40 = 80 tiles, one wave).
  const std::vector<double> rows{1, 129};
  EXPECT_NEAR(cm.grouped_gemm(rows, 128 * 40, k, Precision::kBf16), 2 * tile(k), 2 * tile(k) * kRel);
  // n = 128: tiles 1 + 2 = 3 → one wave.
  EXPECT_NEAR(cm.grouped_gemm(rows, 128, k, Precision::kBf16), tile(k), tile(k) * kRel);
  // Empty groups are skipped: {0, 128, 0} over n = 128·100 is 100 tiles, one wave.
  const std::vector<double> sparse{0, 128, 0};
  EXPECT_NEAR(cm.grouped_gemm(sparse, 128 * 100, k, Precision::kBf16), tile(k), tile(k) * kRel);
  // No rows at all: nothing.
  const std::vector<double> none{0, 0};
  EXPECT_EQ(cm.grouped_gemm(none, 128, k, Precision::kBf16), 0.0);
}

TEST(Roofline, GroupedGemmMemoryReadsEachExpertsWeights) {
  GpuSpec g = gpu();
  g.memory_bandwidth = 1e12;
  RooflineCostModel cm(g, 0);
  // 8 experts × 16 rows, n = 4096, k = 7168, FP8: each expert reads its 7168·4096 B weights, its
  // 16·7168 B input and writes 16·4096·2 B → 8·(16·7168 + 29,360,128 + 131,072) = 236,847,104 B
  // / 1e12 = 236.8 µs; compute 8·32 = 256 tiles → 3 waves · 2·128·128·7168/1e13 = 70.5 µs.
  const std::vector<double> rows(8, 16.0);
  const double want = 8 * (16.0 * 7168 + 7168.0 * 4096 + 2.0 * 16 * 4096) / 1e12;
  EXPECT_NEAR(cm.grouped_gemm(rows, 4096, 7168, Precision::kFp8), want, want * kRel);
}

TEST(Roofline, MemoryBound) {
  GpuSpec g = gpu();
  g.memory_bandwidth = 1e12;
  g.memory_efficiency = 0.8;
  RooflineCostModel cm(g, 0);
  // bytes / (bw · eff): 4e9 / 8e11 = 5 ms.
  EXPECT_NEAR(cm.memory_bound(4e9), 5e-3, 5e-3 * kRel);
  EXPECT_EQ(cm.memory_bound(0), 0.0);
  g.kernel_launch = 3e-6;
  EXPECT_NEAR(RooflineCostModel(g, 0).memory_bound(4e9), 5e-3 + 3e-6, 1e-15);
}

TEST(Roofline, AttentionForwardFlopsAndTimes) {
  AttentionShape s;
  s.query_tokens = 4096;
  s.kv_tokens = 4096;
  s.heads = 16;
  s.qk_dim = 192;
  s.v_dim = 128;
  s.causal = true;
  // 2 · 4096 · 4096 · 16 · (192 + 128) · ½ = 85,899,345,920 FLOPs.
  EXPECT_EQ(s.forward_flops(), 85899345920.0);
  RooflineCostModel cm(gpu(), 0);
  // Forward at 1e15 · 0.5: 85.899e9 / 5e14 = 171.79869184 µs.
  EXPECT_NEAR(cm.attention(s, false), 85899345920.0 / 5e14, 1e-15);
  // Backward: 2.5× the FLOPs at the backward efficiency 0.25: 214.748e9 / 2.5e14.
  EXPECT_NEAR(cm.attention(s, true), 2.5 * 85899345920.0 / 2.5e14, 1e-15);
  // Without the mask: twice the FLOPs and times.
  s.causal = false;
  EXPECT_EQ(s.forward_flops(), 2 * 85899345920.0);
  EXPECT_NEAR(cm.attention(s, false), 2 * 85899345920.0 / 5e14, 1e-15);
  // Nothing to attend: free.
  AttentionShape empty;
  EXPECT_EQ(cm.attention(empty, false), 0.0);
}

TEST(Roofline, CommSmsReduceWavesAndAttentionRate) {
  // 20 SMs reserved → 80 compute SMs; a tile still runs at 5e12 (the per-SM rate is peak / all SMs).
  RooflineCostModel cm(gpu(), 20);
  const double k = 4096;
  // 100 tiles → ceil(100/80) = 2 waves; 80 tiles → 1 wave.
  EXPECT_NEAR(cm.gemm(128, 128 * 100, k, Precision::kBf16), 2 * tile(k), 2 * tile(k) * kRel);
  EXPECT_NEAR(cm.gemm(128, 128 * 80, k, Precision::kBf16), tile(k), tile(k) * kRel);
  // Grouped: 81 tiles → 2 waves.
  const std::vector<double> rows{128};
  EXPECT_NEAR(cm.grouped_gemm(rows, 128 * 81, k, Precision::kBf16), 2 * tile(k), 2 * tile(k) * kRel);
  // Attention runs on 80 of 100 SMs: rate 1e15 · 0.5 · 0.8 = 4e14.
  AttentionShape s;
  s.query_tokens = 1024;
  s.kv_tokens = 1024;
  s.heads = 8;
  s.qk_dim = 128;
  s.v_dim = 128;
  s.causal = false;
  const double flops = 2.0 * 1024 * 1024 * 8 * 256;
  EXPECT_NEAR(cm.attention(s, false), flops / 4e14, 1e-15);
  // Reserving every SM leaves one (never zero): 100 tiles → 100 waves.
  RooflineCostModel all(gpu(), 100);
  EXPECT_NEAR(all.gemm(128, 128 * 100, k, Precision::kBf16), 100 * tile(k), 100 * tile(k) * kRel);
}

}  // namespace
}  // namespace moesim::models
