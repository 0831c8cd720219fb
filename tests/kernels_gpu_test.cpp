// CUDA kernels (kernels/device.hpp) against their CPU references (kernels/reference.hpp) on fresh
// seeded random inputs. Every output buffer is poisoned first (NaN for floats and bf16, 0x7F7F7F7F
// for int32), so an element a kernel forgot to write fails the comparison. Bounds, per output:
//   - router indices, permute maps/counts/rows, combine: exact (same arithmetic order as the reference;
//     the router allows a few tokens whose top-k boundary is a near-tie under a different exp());
//   - SwiGLU: one bf16 ulp, |d| ≤ 2^-7·|ref| (expf vs std::exp may straddle a rounding boundary);
//   - expert GEMMs: |d| ≤ 2^-7·|ref| + 10^-3·max|ref| (fp32 summation order + one bf16 rounding);
//   - the whole layer: |d| ≤ 2^-5·|ref| + 2^-7·max|ref| (four bf16 roundings chained).
// Without a device every test skips with "no CUDA device: GPU test skipped" (ctest label gpu).
// With MOESIM_WITH_PROFILER, a profiler smoke sweep runs too; MOESIM_PROFILE=full runs the default
// sweep instead, MOESIM_PROFILE_OUT=FILE.csv writes its measurements and MOESIM_PROFILE_JSON=FILE the
// profile file that `moesim calibrate --refit` fits (see docs/kernels.md).

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/device.hpp"
#include "kernels/device_utils.hpp"
#include "kernels/reference.hpp"
#include "scenarios/error.hpp"

#ifdef MOESIM_WITH_PROFILER
#include "calibrate/profiler.hpp"
#endif

namespace moesim::kernels {
namespace {

constexpr int32_t kPoison = 0x7F7F7F7F;

bool device_present() {
  static const bool present = [] {
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
  }();
  return present;
}

class Gpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!device_present()) GTEST_SKIP() << "no CUDA device: GPU test skipped";
  }
};

template <typename T>
DeviceBuffer<T> poisoned(size_t n) {
  DeviceBuffer<T> b(n);
  if (n > 0) MOESIM_CUDA_CHECK(cudaMemset(b.get(), std::is_integral_v<T> ? 0x7F : 0xFF, b.bytes()));
  return b;
}

template <typename T>
DeviceBuffer<T> uploaded(const std::vector<T>& v) {
  DeviceBuffer<T> b(v.size());
  b.upload(v);
  return b;
}

std::vector<float> normal_floats(size_t n, float sigma, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<Bf16> normal_bf16(size_t n, float sigma, uint32_t seed) {
  std::vector<Bf16> v;
  for (float f : normal_floats(n, sigma, seed)) v.push_back(to_bf16(f));
  return v;
}

void sync() {
  MOESIM_CUDA_CHECK(cudaDeviceSynchronize());
}

// |gpu − ref| ≤ rtol·|ref| + atol for elements [begin, end); a NaN on the GPU side means "not written".
void expect_close(const std::vector<Bf16>& gpu, const std::vector<Bf16>& ref, double rtol, double atol,
                  const std::string& what, size_t begin = 0, size_t end = SIZE_MAX) {
  ASSERT_EQ(gpu.size(), ref.size()) << what;
  end = std::min(end, ref.size());
  size_t bad = 0, unwritten = 0, worst = begin;
  double worst_excess = 0;
  for (size_t i = begin; i < end; ++i) {
    const double g = to_float(gpu[i]), r = to_float(ref[i]);
    if (std::isnan(g) && !std::isnan(r)) {
      ++unwritten;
      continue;
    }
    const double excess = std::fabs(g - r) - (rtol * std::fabs(r) + atol);
    if (excess > 0) {
      ++bad;
      if (excess > worst_excess) {
        worst_excess = excess;
        worst = i;
      }
    }
  }
  EXPECT_EQ(unwritten, 0u) << what << ": elements never written (still NaN)";
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " elements out of bounds; worst at " << worst << ": gpu "
                     << to_float(gpu[worst]) << " ref " << to_float(ref[worst]);
}

double max_abs(const std::vector<Bf16>& v) {
  double m = 0;
  for (Bf16 b : v) m = std::max(m, std::fabs(static_cast<double>(to_float(b))));
  return m;
}

// ---------------------------------------------------------------- router

struct RouterCase {
  int tokens, experts, top_k;
  ScoreFunction score;
  int groups, topk_groups, group_top;
  bool bias;
  bool normalize = true;
};

class GpuRouter : public Gpu, public ::testing::WithParamInterface<RouterCase> {};

TEST_P(GpuRouter, MatchesReference) {
  const RouterCase p = GetParam();
  RouterConfig c;
  c.tokens = p.tokens;
  c.experts = p.experts;
  c.top_k = p.top_k;
  c.score = p.score;
  c.groups = p.groups;
  c.topk_groups = p.topk_groups;
  c.group_score_top = p.group_top;
  c.normalize = p.normalize;
  c.scale = p.score == ScoreFunction::kSigmoid ? 2.5f : 1.0f;
  const size_t TK = static_cast<size_t>(c.tokens) * c.top_k;
  const auto logits = normal_floats(static_cast<size_t>(c.tokens) * c.experts, 2.0f, 100 + p.experts);
  std::vector<float> bias;
  if (p.bias) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-0.05f, 0.05f);
    for (int e = 0; e < c.experts; ++e) bias.push_back(u(rng));
  }
  const auto ref = router_ref(c, logits, bias);

  auto d_logits = uploaded(logits);
  DeviceBuffer<float> d_bias = p.bias ? uploaded(bias) : DeviceBuffer<float>();
  auto idx = poisoned<int32_t>(TK);
  auto w = poisoned<float>(TK);
  auto counts = poisoned<int32_t>(c.experts);
  launch_router(c, RouterArgs{d_logits.get(), d_bias.get(), idx.get(), w.get(), counts.get()}, nullptr);
  sync();
  const auto g_idx = idx.download();
  const auto g_w = w.download();
  const auto g_counts = counts.download();

  // Exact agreement except for tokens whose top-k boundary is a near-tie (different exp() rounding).
  int mismatched = 0;
  std::vector<int32_t> hist(c.experts, 0);
  for (int t = 0; t < c.tokens; ++t) {
    bool same = true;
    for (int k = 0; k < c.top_k; ++k) {
      const size_t i = static_cast<size_t>(t) * c.top_k + k;
      ASSERT_GE(g_idx[i], 0) << "token " << t << " slot " << k << " not written";
      ASSERT_LT(g_idx[i], c.experts) << "token " << t << " slot " << k;
      ASSERT_TRUE(std::isfinite(g_w[i])) << "token " << t << " slot " << k << " weight not written";
      ++hist[g_idx[i]];
      same = same && g_idx[i] == ref.topk_idx[i];
    }
    if (!same) {
      ++mismatched;
      continue;
    }
    for (int k = 0; k < c.top_k; ++k) {
      const size_t i = static_cast<size_t>(t) * c.top_k + k;
      EXPECT_NEAR(g_w[i], ref.topk_weight[i], 1e-5 * std::fabs(ref.topk_weight[i]) + 1e-7)
          << "token " << t << " slot " << k;
    }
  }
  EXPECT_LE(mismatched, std::max(1, c.tokens / 500)) << "tokens routed differently from the reference";
  EXPECT_EQ(g_counts, hist) << "histogram differs from the GPU's own top-k";
  if (mismatched == 0) {
    EXPECT_EQ(g_counts, ref.counts);
  }
  EXPECT_EQ(std::accumulate(g_counts.begin(), g_counts.end(), int64_t{0}), static_cast<int64_t>(TK));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GpuRouter,
    ::testing::Values(
        RouterCase{1001, 8, 2, ScoreFunction::kSoftmax, 1, 1, 2, false},           // Mixtral, 2-lane teams
        RouterCase{777, 8, 2, ScoreFunction::kSigmoid, 4, 2, 2, true},             // widened team
        RouterCase{513, 30, 4, ScoreFunction::kSoftmax, 1, 1, 2, false},           // scalar loads
        RouterCase{4096, 64, 6, ScoreFunction::kSoftmax, 1, 1, 2, true},           // OLMoE-like
        RouterCase{2048, 128, 8, ScoreFunction::kSoftmax, 8, 4, 2, false},         // fast group path
        RouterCase{1500, 160, 6, ScoreFunction::kSoftmax, 8, 3, 1, false},         // generic group path
        RouterCase{8192, 256, 8, ScoreFunction::kSigmoid, 8, 4, 2, true},          // DeepSeek-V3
        RouterCase{1000, 384, 8, ScoreFunction::kSoftmax, 1, 1, 2, false},         // 16 per lane
        RouterCase{600, 1000, 4, ScoreFunction::kSigmoid, 10, 5, 2, true},         // 32 per lane
        RouterCase{512, 8, 8, ScoreFunction::kSoftmax, 1, 1, 2, false},            // top-k slots > lanes
        RouterCase{300, 64, 32, ScoreFunction::kSoftmax, 1, 1, 2, false},          // K = 32 (the limit)
        RouterCase{100, 1, 1, ScoreFunction::kSoftmax, 1, 1, 2, false},            // one expert
        RouterCase{1024, 256, 8, ScoreFunction::kSigmoid, 32, 8, 2, true},         // 32 groups
        RouterCase{2048, 256, 8, ScoreFunction::kSigmoid, 8, 4, 2, true, false}),  // unnormalised
    [](const ::testing::TestParamInfo<RouterCase>& i) {
      const RouterCase& p = i.param;
      return "T" + std::to_string(p.tokens) + "_E" + std::to_string(p.experts) + "_K" +
             std::to_string(p.top_k) + (p.score == ScoreFunction::kSoftmax ? "_softmax" : "_sigmoid") +
             (p.groups > 1 ? "_G" + std::to_string(p.topk_groups) + "of" + std::to_string(p.groups) : "") +
             (p.bias ? "_bias" : "") + (p.normalize ? "" : "_raw");
    });

// Logits that start 4 bytes past a 16-byte boundary take the scalar loads and route as the reference.
TEST_F(Gpu, RouterReadsUnalignedLogits) {
  RouterConfig c;
  c.tokens = 999;
  c.experts = 64;
  c.top_k = 6;
  const size_t n = static_cast<size_t>(c.tokens) * c.experts;
  const auto logits = normal_floats(n, 2.0f, 301);
  const auto ref = router_ref(c, logits);
  std::vector<float> shifted(n + 1, 0.0f);
  std::copy(logits.begin(), logits.end(), shifted.begin() + 1);
  auto d = uploaded(shifted);
  auto idx = poisoned<int32_t>(static_cast<size_t>(c.tokens) * c.top_k);
  auto w = poisoned<float>(idx.size());
  auto counts = poisoned<int32_t>(c.experts);
  launch_router(c, RouterArgs{d.get() + 1, nullptr, idx.get(), w.get(), counts.get()}, nullptr);
  sync();
  const auto g = idx.download();
  int differ = 0;
  for (size_t i = 0; i < g.size(); ++i) differ += g[i] != ref.topk_idx[i];
  EXPECT_LE(differ, 2 * c.top_k) << "indices differ from the reference";
  const auto hc = counts.download();
  EXPECT_EQ(std::accumulate(hc.begin(), hc.end(), int64_t{0}), static_cast<int64_t>(g.size()));
}

// NaN and infinite logits never index outside [0, E): every slot names a distinct expert, the histogram
// sums to T·K (a NaN once left the argmax at INT_MAX and the histogram write out of bounds).
TEST_F(Gpu, RouterSurvivesNanAndInfiniteLogits) {
  for (ScoreFunction score : {ScoreFunction::kSoftmax, ScoreFunction::kSigmoid}) {
    RouterConfig c;
    c.tokens = 300;
    c.experts = 256;
    c.top_k = 8;
    c.score = score;
    if (score == ScoreFunction::kSigmoid) c.node_limited(8, 4);
    auto logits = normal_floats(static_cast<size_t>(c.tokens) * c.experts, 2.0f, 302);
    for (int t = 0; t < c.tokens; ++t)
      for (int e = 0; e < c.experts; ++e) {
        float& v = logits[static_cast<size_t>(t) * c.experts + e];
        if (t % 3 == 0) v = std::nanf("");  // the whole row NaN
        if (t % 3 == 1 && e % 17 == 0) v = (e % 2) ? INFINITY : std::nanf("");
      }
    auto d = uploaded(logits);
    auto idx = poisoned<int32_t>(static_cast<size_t>(c.tokens) * c.top_k);
    auto w = poisoned<float>(idx.size());
    auto counts = poisoned<int32_t>(c.experts);
    launch_router(c, RouterArgs{d.get(), nullptr, idx.get(), w.get(), counts.get()}, nullptr);
    sync();
    const auto g = idx.download();
    for (int t = 0; t < c.tokens; ++t) {
      std::set<int32_t> seen;
      for (int k = 0; k < c.top_k; ++k) {
        const int32_t e = g[static_cast<size_t>(t) * c.top_k + k];
        ASSERT_GE(e, 0) << "token " << t;
        ASSERT_LT(e, c.experts) << "token " << t;
        seen.insert(e);
      }
      EXPECT_EQ(seen.size(), static_cast<size_t>(c.top_k)) << "token " << t << " names an expert twice";
    }
    const auto hc = counts.download();
    EXPECT_EQ(std::accumulate(hc.begin(), hc.end(), int64_t{0}), static_cast<int64_t>(g.size()));
  }
}

TEST_F(Gpu, RouterWithNoTokensZeroesTheHistogram) {
  RouterConfig c;
  c.tokens = 0;
  c.experts = 16;
  c.top_k = 2;
  auto counts = poisoned<int32_t>(16);
  DeviceBuffer<float> logits(1);
  DeviceBuffer<int32_t> idx(1);
  DeviceBuffer<float> w(1);
  launch_router(c, RouterArgs{logits.get(), nullptr, idx.get(), w.get(), counts.get()}, nullptr);
  sync();
  EXPECT_EQ(counts.download(), std::vector<int32_t>(16, 0));
}

// ---------------------------------------------------------------- permute

struct PermuteCase {
  int tokens, experts, top_k, hidden, capacity;
  RowLayout layout;
};

class GpuPermute : public Gpu, public ::testing::WithParamInterface<PermuteCase> {};

// Skewed routing (expert e's logit shifted by −e/8) so that a capacity drops tokens.
std::vector<int32_t> skewed_routes(int tokens, int experts, int top_k, uint32_t seed) {
  RouterConfig rc;
  rc.tokens = tokens;
  rc.experts = experts;
  rc.top_k = top_k;
  auto logits = normal_floats(static_cast<size_t>(tokens) * experts, 1.0f, seed);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] -= static_cast<float>(i % experts) / 8.0f;
  return router_ref(rc, logits).topk_idx;
}

// What launch_permute wrote, every output poisoned before the launch.
struct PermuteOut {
  std::vector<int32_t> row_map, kept, offsets, dropped;
  std::vector<Bf16> rows;
};

PermuteOut run_permute(const PermuteConfig& c, const std::vector<int32_t>& idx, const std::vector<Bf16>& x) {
  auto d_idx = uploaded(idx);
  auto d_x = uploaded(x);
  auto rows = poisoned<Bf16>(static_cast<size_t>(permuted_rows_bound(c)) * c.hidden);
  auto row_map = poisoned<int32_t>(idx.size());
  auto kept = poisoned<int32_t>(c.experts);
  auto offsets = poisoned<int32_t>(c.experts + 1);
  auto dropped = poisoned<int32_t>(1);
  DeviceBuffer<char> scratch(permute_scratch_bytes(c));
  launch_permute(c,
                 PermuteArgs{d_idx.get(), d_x.get(), rows.get(), row_map.get(), kept.get(), offsets.get(),
                             dropped.get(), scratch.get()},
                 nullptr);
  sync();
  return {row_map.download(), kept.download(), offsets.download(), dropped.download(), rows.download()};
}

TEST_P(GpuPermute, MatchesReference) {
  const PermuteCase p = GetParam();
  const PermuteConfig c{p.tokens, p.experts, p.top_k, p.hidden, p.capacity, p.layout};
  const auto idx = skewed_routes(c.tokens, c.experts, c.top_k, 31);
  const auto x = normal_bf16(static_cast<size_t>(c.tokens) * c.hidden, 1.0f, 32);
  const auto ref = permute_ref(c, idx, x);
  if (c.capacity > 0 && c.layout == RowLayout::kCompact) {
    EXPECT_GT(ref.dropped, 0) << "the case should drop";
  }

  const PermuteOut g = run_permute(c, idx, x);
  EXPECT_EQ(g.row_map, ref.row_map);
  EXPECT_EQ(g.kept, ref.kept_counts);
  EXPECT_EQ(g.offsets, ref.offsets);
  EXPECT_EQ(g.dropped, std::vector<int32_t>{ref.dropped});
  // Kept rows must be bit-identical copies; padding rows (padded layout) are not written.
  const auto& g_rows = g.rows;
  size_t wrong = 0;
  for (int32_t r : ref.row_map) {
    if (r < 0) continue;
    for (int h = 0; h < c.hidden; ++h)
      wrong += g_rows[static_cast<size_t>(r) * c.hidden + h].bits !=
               ref.rows[static_cast<size_t>(r) * c.hidden + h].bits;
  }
  EXPECT_EQ(wrong, 0u) << "permuted row elements differ (or were not written)";
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GpuPermute,
    ::testing::Values(PermuteCase{1500, 64, 6, 512, 0, RowLayout::kCompact},    // dropless, 16-byte path
                      PermuteCase{1500, 64, 6, 512, 120, RowLayout::kCompact},  // capacity drops
                      PermuteCase{1500, 64, 6, 512, 160, RowLayout::kPadded},   // padded [E, C, H]
                      PermuteCase{700, 16, 2, 20, 0, RowLayout::kCompact},      // H % 8 ≠ 0: scalar path
                      PermuteCase{1, 8, 2, 64, 0, RowLayout::kCompact},         // one token
                      PermuteCase{3000, 1000, 8, 16, 0, RowLayout::kCompact},   // 1000 experts in the scan
                      PermuteCase{600, 32, 4, 7168, 0, RowLayout::kCompact},    // H > 4096 (DeepSeek-V3)
                      PermuteCase{256, 16, 2, 64, 0, RowLayout::kCompact},      // exactly one tile
                      PermuteCase{257, 16, 2, 64, 0, RowLayout::kCompact},      // one token into tile 2
                      PermuteCase{512, 16, 2, 64, 40, RowLayout::kCompact},     // two full tiles, drops
                      PermuteCase{511, 16, 2, 64, 70, RowLayout::kPadded}),     // 512-token tile edge
    [](const ::testing::TestParamInfo<PermuteCase>& i) {
      const PermuteCase& p = i.param;
      return "T" + std::to_string(p.tokens) + "_E" + std::to_string(p.experts) + "_K" +
             std::to_string(p.top_k) + "_H" + std::to_string(p.hidden) + "_cap" + std::to_string(p.capacity) +
             (p.layout == RowLayout::kPadded ? "_padded" : "_compact");
    });

// Expert ids out of [0, E) or repeated within a token are not routed (row_map −1, counted nowhere); the
// others are permuted exactly as the reference permutes the same routing with those slots removed.
TEST_F(Gpu, PermuteSkipsBadAndRepeatedExpertIds) {
  const PermuteConfig c{700, 16, 4, 64, 0, RowLayout::kCompact};
  auto idx = skewed_routes(c.tokens, c.experts, c.top_k, 303);
  std::vector<bool> bad(idx.size(), false);
  for (int t = 0; t < c.tokens; t += 7) {
    const size_t a = static_cast<size_t>(t) * c.top_k;
    idx[a + 1] = (t % 2) ? -3 : c.experts + t;  // out of range
    idx[a + 3] = idx[a];                        // repeated
    bad[a + 1] = bad[a + 3] = true;
  }
  const auto x = normal_bf16(static_cast<size_t>(c.tokens) * c.hidden, 1.0f, 304);
  const PermuteOut g = run_permute(c, idx, x);
  const auto& g_map = g.row_map;
  const auto& g_kept = g.kept;
  // Expected: per expert, the good assignments in token order.
  std::vector<int32_t> want_kept(c.experts, 0);
  for (size_t a = 0; a < idx.size(); ++a)
    if (!bad[a]) ++want_kept[idx[a]];
  EXPECT_EQ(g_kept, want_kept);
  EXPECT_EQ(g.dropped, std::vector<int32_t>{0});
  std::vector<int32_t> next(c.experts + 1, 0);
  for (int e = 0; e < c.experts; ++e) next[e + 1] = next[e] + want_kept[e];
  for (size_t a = 0; a < idx.size(); ++a) {
    if (bad[a]) {
      EXPECT_EQ(g_map[a], -1) << "assignment " << a;
      continue;
    }
    EXPECT_EQ(g_map[a], next[idx[a]]++) << "assignment " << a;
  }
}

// ---------------------------------------------------------------- SwiGLU and combine

TEST_F(Gpu, SwigluWithNoRowsWritesNothing) {
  auto a = poisoned<Bf16>(16);
  DeviceBuffer<Bf16> h(32);
  launch_swiglu(0, 8, h.get(), a.get(), nullptr);
  sync();
  for (Bf16 v : a.download()) EXPECT_TRUE(std::isnan(to_float(v)));
}

class GpuSwiglu : public Gpu, public ::testing::WithParamInterface<int> {};

TEST_P(GpuSwiglu, WithinOneUlp) {
  const int ffn = GetParam();
  const int64_t rows = 777;
  const auto h = normal_bf16(static_cast<size_t>(rows) * 2 * ffn, 2.0f, 41);
  const auto ref = swiglu_ref(rows, ffn, h);
  auto d_h = uploaded(h);
  auto a = poisoned<Bf16>(static_cast<size_t>(rows) * ffn);
  launch_swiglu(rows, ffn, d_h.get(), a.get(), nullptr);
  sync();
  expect_close(a.download(), ref, 1.0 / 128, 0.0, "swiglu F=" + std::to_string(ffn));
}

INSTANTIATE_TEST_SUITE_P(Ffn, GpuSwiglu, ::testing::Values(1024, 768, 100));  // 100: scalar path

class GpuCombine : public Gpu, public ::testing::WithParamInterface<int> {};

TEST_P(GpuCombine, BitExact) {
  const int hidden = GetParam();
  const int T = 1000, E = 32, K = 8;
  RouterConfig rc;
  rc.tokens = T;
  rc.experts = E;
  rc.top_k = K;
  const auto route = router_ref(rc, normal_floats(static_cast<size_t>(T) * E, 1.5f, 51));
  const PermuteConfig pc{T, E, K, hidden, 200, RowLayout::kCompact};  // capacity 200 < 250 mean: drops
  const auto perm = permute_ref(pc, route.topk_idx, std::vector<Bf16>(static_cast<size_t>(T) * hidden));
  ASSERT_GT(perm.dropped, 0);
  const auto y = normal_bf16(static_cast<size_t>(permuted_rows_bound(pc)) * hidden, 1.0f, 52);
  const CombineConfig c{T, K, hidden};
  const auto ref = combine_ref(c, y, perm.row_map, route.topk_weight);

  auto d_y = uploaded(y);
  auto d_map = uploaded(perm.row_map);
  auto d_w = uploaded(route.topk_weight);
  auto out = poisoned<Bf16>(static_cast<size_t>(T) * hidden);
  launch_combine(c, CombineArgs{d_y.get(), d_map.get(), d_w.get(), out.get()}, nullptr);
  sync();
  expect_close(out.download(), ref, 0.0, 0.0, "combine H=" + std::to_string(hidden));
}

INSTANTIATE_TEST_SUITE_P(Hidden, GpuCombine, ::testing::Values(1024, 20, 7168));  // 20: scalar path

// A token whose every assignment was dropped combines to zero.
TEST_F(Gpu, CombineOfAllDroppedTokensIsZero) {
  const CombineConfig c{50, 4, 256};
  const std::vector<int32_t> map(static_cast<size_t>(c.tokens) * c.top_k, -1);
  const std::vector<float> w(map.size(), 0.25f);
  const auto y = normal_bf16(16 * 256, 1.0f, 305);
  auto d_y = uploaded(y);
  auto d_map = uploaded(map);
  auto d_w = uploaded(w);
  auto out = poisoned<Bf16>(static_cast<size_t>(c.tokens) * c.hidden);
  launch_combine(c, CombineArgs{d_y.get(), d_map.get(), d_w.get(), out.get()}, nullptr);
  sync();
  for (Bf16 v : out.download()) ASSERT_EQ(to_float(v), 0.0f);
}

// ---------------------------------------------------------------- expert GEMMs

struct GemmCase {
  GemmBackend backend;
  RowLayout layout;
  int experts = 8, n = 96, k = 136;  // 8 experts: the fixed skewed rows below; more: seeded rows
};

class GpuExpertGemm : public Gpu, public ::testing::WithParamInterface<GemmCase> {};

TEST_P(GpuExpertGemm, MatchesReference) {
  const GemmCase p = GetParam();
  const int n = p.n, k = p.k;
  ExpertRows er;
  er.layout = p.layout;
  er.capacity = 100;
  er.rows = {0, 1, 37, 64, 5, 0, 100, 17};  // skewed, with empty experts
  if (p.experts != 8) {
    std::mt19937 rng(60);
    std::uniform_int_distribution<int> d(0, 40);
    er.rows.assign(p.experts, 0);
    for (int e = 0; e < p.experts; ++e) er.rows[e] = e % 5 == 0 ? 0 : d(rng);  // every fifth empty
    er.capacity = *std::max_element(er.rows.begin(), er.rows.end());
  }
  const int E = static_cast<int>(er.rows.size());
  const int64_t R = er.total_rows();
  const auto x = normal_bf16(static_cast<size_t>(R) * k, 1.0f, 61);
  const auto w = normal_bf16(static_cast<size_t>(E) * n * k, 0.1f, 62);
  const auto ref = expert_gemm_ref(er, n, k, x, w);

  auto d_x = uploaded(x);
  auto d_w = uploaded(w);
  auto y = poisoned<Bf16>(static_cast<size_t>(R) * n);
  ExpertGemm gemm;
  ExpertGemmArgs a;
  a.experts = E;
  a.n = n;
  a.k = k;
  a.layout = p.layout;
  a.capacity = er.capacity;
  a.host_rows = er.rows.data();
  a.x = d_x.get();
  a.w = d_w.get();
  a.y = y.get();
  gemm.run(p.backend, a, nullptr);
  gemm.run(p.backend, a, nullptr);  // twice: the grouped backend reuses its pointer arrays
  sync();
  const auto got = y.download();
  const double atol = 1e-3 * max_abs(ref);
  for (int e = 0; e < E; ++e) {
    const size_t first = static_cast<size_t>(er.row_start(e)) * n;
    expect_close(got, ref, 1.0 / 128, atol, to_string(p.backend) + " expert " + std::to_string(e), first,
                 first + static_cast<size_t>(er.rows[e]) * n);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Backends, GpuExpertGemm,
    ::testing::Values(GemmCase{GemmBackend::kCublasStridedBatched, RowLayout::kPadded},
                      GemmCase{GemmBackend::kCublasPerExpert, RowLayout::kCompact},
                      GemmCase{GemmBackend::kCublasPerExpert, RowLayout::kPadded},
                      GemmCase{GemmBackend::kCublasGrouped, RowLayout::kCompact},
                      GemmCase{GemmBackend::kCublasGrouped, RowLayout::kPadded},
                      // DeepSeek-V3's 256 experts; n and k not multiples of 8
                      GemmCase{GemmBackend::kCublasGrouped, RowLayout::kCompact, 256, 96, 136},
                      GemmCase{GemmBackend::kCublasPerExpert, RowLayout::kCompact, 256, 96, 136},
                      GemmCase{GemmBackend::kCublasStridedBatched, RowLayout::kPadded, 256, 96, 136},
                      GemmCase{GemmBackend::kCublasGrouped, RowLayout::kCompact, 8, 100, 136},
                      GemmCase{GemmBackend::kCublasGrouped, RowLayout::kCompact, 8, 96, 130},
                      GemmCase{GemmBackend::kCublasPerExpert, RowLayout::kCompact, 8, 100, 130},
                      GemmCase{GemmBackend::kCublasStridedBatched, RowLayout::kPadded, 8, 100, 130}),
    [](const ::testing::TestParamInfo<GemmCase>& i) {
      return to_string(i.param.backend) + (i.param.layout == RowLayout::kPadded ? "_padded" : "_compact") +
             "_E" + std::to_string(i.param.experts) + "_n" + std::to_string(i.param.n) + "_k" +
             std::to_string(i.param.k);
    });

TEST_F(Gpu, ExpertGemmRejectsTheHookAndWrongLayouts) {
  ExpertGemm gemm;
  DeviceBuffer<Bf16> buf(64);
  const int32_t rows[1] = {1};
  ExpertGemmArgs a;
  a.experts = 1;
  a.n = 8;
  a.k = 8;
  a.host_rows = rows;
  a.x = buf.get();
  a.w = buf.get();
  a.y = buf.get();
  EXPECT_THROW(gemm.run(GemmBackend::kCublasStridedBatched, a, nullptr), ConfigError);  // compact layout
  a.host_rows = nullptr;
  EXPECT_THROW(gemm.run(GemmBackend::kCublasPerExpert, a, nullptr), ConfigError);
}

// ---------------------------------------------------------------- the layer

struct LayerCase {
  GemmBackend backend;
  int capacity;
  ScoreFunction score;
  int tokens = 333, experts = 16, top_k = 4, hidden = 128, ffn = 64, groups = 4, topk_groups = 2;
  const char* name = "";
};

class GpuMoeLayer : public Gpu, public ::testing::WithParamInterface<LayerCase> {};

TEST_P(GpuMoeLayer, MatchesReference) {
  const LayerCase p = GetParam();
  MoeLayerConfig c;
  c.router.tokens = p.tokens;
  c.router.experts = p.experts;
  c.router.top_k = p.top_k;
  c.router.score = p.score;
  if (p.score == ScoreFunction::kSigmoid) {
    c.router.groups = p.groups;
    c.router.topk_groups = p.topk_groups;
    c.router.scale = 2.5f;
  }
  c.hidden = p.hidden;
  c.ffn = p.ffn;
  c.capacity = p.capacity;
  c.backend = p.backend;
  const int T = c.router.tokens, E = c.router.experts, H = c.hidden, F = c.ffn;

  MoeLayerInputs in;
  in.logits = normal_floats(static_cast<size_t>(T) * E, 2.0f, 71);
  if (p.score == ScoreFunction::kSigmoid) in.bias = normal_floats(E, 0.02f, 72);
  in.x = normal_bf16(static_cast<size_t>(T) * H, 1.0f, 73);
  in.w_gate_up = normal_bf16(static_cast<size_t>(E) * 2 * F * H, 1.0f / std::sqrt(float(H)), 74);
  in.w_down = normal_bf16(static_cast<size_t>(E) * H * F, 1.0f / std::sqrt(float(F)), 75);
  const auto ref = moe_layer_ref(c, in);

  MoeLayer layer(c);
  auto logits = uploaded(in.logits);
  DeviceBuffer<float> bias = in.bias.empty() ? DeviceBuffer<float>() : uploaded(in.bias);
  auto x = uploaded(in.x);
  auto w1 = uploaded(in.w_gate_up);
  auto w2 = uploaded(in.w_down);
  auto out = poisoned<Bf16>(static_cast<size_t>(T) * H);
  DeviceBuffer<char> ws(layer.workspace_bytes());
  layer.forward(MoeLayerArgs{logits.get(), bias.get(), x.get(), w1.get(), w2.get(), out.get(), ws.get()},
                nullptr);
  sync();

  const MoeLayerBuffers b = layer.buffers(ws.get());
  auto download = [](const int32_t* src, size_t n) {
    std::vector<int32_t> v(n);
    MOESIM_CUDA_CHECK(cudaMemcpy(v.data(), src, n * sizeof(int32_t), cudaMemcpyDeviceToHost));
    return v;
  };
  ASSERT_EQ(download(b.topk_idx, ref.router.topk_idx.size()), ref.router.topk_idx)
      << "routing differs: a near-tie in the random logits?";
  EXPECT_EQ(download(b.row_map, ref.permute.row_map.size()), ref.permute.row_map);
  EXPECT_EQ(download(b.kept_counts, E), ref.permute.kept_counts);
  if (needs_host_rows(c.backend)) {
    EXPECT_EQ(layer.host_rows(), ref.permute.kept_counts);
  }
  if (c.capacity > 0) {
    EXPECT_GT(ref.permute.dropped, 0) << "the case should drop";
  } else {
    const auto kept = download(b.kept_counts, E);
    EXPECT_EQ(std::accumulate(kept.begin(), kept.end(), int64_t{0}), int64_t{T} * c.router.top_k)
        << "dropless rows must sum to T·K";
  }
  expect_close(out.download(), ref.out, 1.0 / 32, max_abs(ref.out) / 128,
               "layer out (" + to_string(c.backend) + ")");
}

INSTANTIATE_TEST_SUITE_P(
    Backends, GpuMoeLayer,
    ::testing::Values(LayerCase{GemmBackend::kCublasStridedBatched, 70, ScoreFunction::kSoftmax},
                      LayerCase{GemmBackend::kCublasStridedBatched, 70, ScoreFunction::kSigmoid},
                      LayerCase{GemmBackend::kCublasPerExpert, 0, ScoreFunction::kSoftmax},
                      LayerCase{GemmBackend::kCublasPerExpert, 70, ScoreFunction::kSigmoid},
                      LayerCase{GemmBackend::kCublasGrouped, 0, ScoreFunction::kSigmoid},
                      LayerCase{GemmBackend::kCublasGrouped, 70, ScoreFunction::kSoftmax},
                      // DeepSeek-V3-like: 256 experts, top-8, 8 groups (nodes) with 4 per token, H=7168
                      // (F kept small so the CPU reference stays quick); a training batch and a decode one
                      LayerCase{GemmBackend::kCublasGrouped, 0, ScoreFunction::kSigmoid, 64, 256, 8, 7168, 32,
                                8, 4, "_deepseek"},
                      LayerCase{GemmBackend::kCublasPerExpert, 0, ScoreFunction::kSigmoid, 4, 256, 8, 7168,
                                32, 8, 4, "_deepseek_decode"}),
    [](const ::testing::TestParamInfo<LayerCase>& i) {
      return to_string(i.param.backend) + "_cap" + std::to_string(i.param.capacity) +
             (i.param.score == ScoreFunction::kSoftmax ? "_softmax" : "_sigmoid_grouped") + i.param.name;
    });

// ---------------------------------------------------------------- helpers

TEST_F(Gpu, CopyFillAndClock) {
  const size_t n = (size_t{3} << 20) + 48;  // not a multiple of the grid stride
  DeviceBuffer<float> a(n / 4), b(n / 4), c(n / 4);
  fill_uniform(a.get(), a.size(), -1.0f, 1.0f, 9, nullptr);
  fill_uniform(c.get(), c.size(), -1.0f, 1.0f, 9, nullptr);
  copy_bytes(a.get(), b.get(), n, nullptr);
  sync();
  const auto ha = a.download();
  EXPECT_EQ(ha, b.download()) << "copy_bytes";
  EXPECT_EQ(ha, c.download()) << "fill_uniform is not deterministic";
  EXPECT_TRUE(std::all_of(ha.begin(), ha.end(), [](float v) { return v >= -1.0f && v < 1.0f; }));
  const double mhz = measure_sm_clock_mhz();
  EXPECT_GT(mhz, 100.0);
  EXPECT_LT(mhz, 5000.0);
}

#ifdef MOESIM_WITH_PROFILER
// ---------------------------------------------------------------- the profiler

void write_csv(const std::string& path, const calibrate::ProfileResult& r) {
  std::ofstream f(path);
  f << "family,variant,m,n,k,rows,bytes,flops,median_s,p10_s,p90_s,repetitions,held_out,launch,kernels\n";
  for (const auto& m : r.measurements) {
    std::string rows, names;
    for (double v : m.rows) rows += (rows.empty() ? "" : ";") + std::to_string(static_cast<long long>(v));
    for (const auto& s : m.kernel_names) names += (names.empty() ? "" : " | ") + s;
    std::replace(names.begin(), names.end(), '"', '\'');
    f << calibrate::to_string(m.family) << "," << m.variant << "," << m.m << "," << m.n << "," << m.k << ","
      << rows << "," << m.bytes << "," << m.flops << "," << m.median_s << "," << m.p10_s << "," << m.p90_s
      << "," << m.repetitions << "," << m.held_out << ",\"" << m.launch << "\",\"" << names << "\"\n";
  }
}

TEST_F(Gpu, ProfilerSweep) {
  const char* mode = std::getenv("MOESIM_PROFILE");
  const bool full = mode && std::string(mode) == "full";
  const calibrate::ProfilePlan plan =
      full ? calibrate::default_profile_plan() : calibrate::smoke_profile_plan();
  const calibrate::ProfileResult r = calibrate::run_profile(plan, &std::cout);
  calibrate::print_table(std::cout, r);
  if (const char* out = std::getenv("MOESIM_PROFILE_OUT")) write_csv(out, r);
  if (const char* out = std::getenv("MOESIM_PROFILE_JSON")) {  // a profile file for `calibrate --refit`
    std::ofstream f(out);
    f << calibrate::profile_to_text(calibrate::to_profile(r));
  }

  EXPECT_FALSE(r.device.name.empty());
  EXPECT_GT(r.device.sm_count, 0);
  EXPECT_GT(r.device.sm_clock_mhz, 100);
  EXPECT_FALSE(r.device.cuda_version.empty());
  std::set<calibrate::KernelFamily> families;
  int held_out = 0;
  for (const auto& m : r.measurements) {
    SCOPED_TRACE(m.variant);
    families.insert(m.family);
    held_out += m.held_out ? 1 : 0;
    EXPECT_GE(m.repetitions, 20);
    EXPECT_GT(m.median_s, 0.0);
    EXPECT_LE(m.p10_s, m.median_s);
    EXPECT_GE(m.p90_s, m.median_s);
    EXPECT_FALSE(m.kernel_names.empty()) << "CUPTI recorded no kernel";
    if (m.family == calibrate::KernelFamily::kGroupedGemm) {
      EXPECT_FALSE(m.rows.empty());
    }
  }
  for (auto f :
       {calibrate::KernelFamily::kRouter, calibrate::KernelFamily::kPermute, calibrate::KernelFamily::kSwiglu,
        calibrate::KernelFamily::kCombine, calibrate::KernelFamily::kGroupedGemm,
        calibrate::KernelFamily::kDenseGemm, calibrate::KernelFamily::kCopy})
    EXPECT_TRUE(families.count(f)) << "family " << static_cast<int>(f) << " not measured";
  // Every held_out_every-th measurement of each family is held out (calibrate/fit.hpp mark_held_out).
  std::map<calibrate::KernelFamily, int> per_family;
  for (const auto& m : r.measurements) ++per_family[m.family];
  int expected_held_out = 0;
  for (const auto& [f, n] : per_family) expected_held_out += n / plan.held_out_every;
  EXPECT_EQ(held_out, expected_held_out);
  EXPECT_EQ(r.sweep.repetitions, plan.repetitions);
  EXPECT_EQ(r.sweep.families.size(), families.size());

  // One whole-layer check per (point, backend), its components of the right families.
  EXPECT_EQ(r.layers.size(), plan.points.size() * plan.backends.size());
  const std::vector<calibrate::KernelFamily> order = {
      calibrate::KernelFamily::kRouter,      calibrate::KernelFamily::kPermute,
      calibrate::KernelFamily::kGroupedGemm, calibrate::KernelFamily::kSwiglu,
      calibrate::KernelFamily::kGroupedGemm, calibrate::KernelFamily::kCombine};
  for (const auto& l : r.layers) {
    SCOPED_TRACE(l.spec.name);
    EXPECT_GT(l.spec.measured_s, 0.0);
    ASSERT_EQ(l.spec.components.size(), order.size());
    for (size_t i = 0; i < order.size(); ++i)
      EXPECT_EQ(r.measurements.at(l.spec.components[i]).family, order[i]);
  }
  const calibrate::Profile profile = calibrate::to_profile(r);
  const auto per_expert =
      calibrate::layers_with_variants(profile.measurements, profile.layers,
                                      {{calibrate::KernelFamily::kGroupedGemm, "cublas_per_expert"},
                                       {calibrate::KernelFamily::kPermute, "ours"}});
  EXPECT_EQ(per_expert.size(), plan.points.size());

  // What `moesim calibrate` does next: the profile survives its file, and the profiler's variants fit.
  const calibrate::Profile back = calibrate::parse_profile(calibrate::profile_to_text(profile), "round trip");
  ASSERT_EQ(back.measurements.size(), profile.measurements.size());
  EXPECT_EQ(calibrate::profile_to_text(back), calibrate::profile_to_text(profile));
  calibrate::FitOptions o;
  o.peak_flops["bf16"] = 989.4e12;  // any positive reference peak: efficiencies are fractions of it
  const calibrate::Calibration c = calibrate::calibrate_profile(profile, o, {});
  EXPECT_EQ(c.model(calibrate::KernelFamily::kGroupedGemm)->variant, "cublas_per_expert");
  const auto softmax_points = std::count_if(plan.points.begin(), plan.points.end(),
                                            [](const calibrate::ProfilePoint& pt) { return pt.groups == 1; });
  EXPECT_EQ(c.model(calibrate::KernelFamily::kRouter)->variant, "ours_softmax");
  // One per-expert layer per softmax point: the grouped points' router is another variant.
  EXPECT_EQ(c.held_out.layers.size(), static_cast<size_t>(softmax_points));
}
#endif

}  // namespace
}  // namespace moesim::kernels
