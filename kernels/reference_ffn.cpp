// CPU references of permute, SwiGLU, expert GEMM, combine and the whole layer (kernels/reference.hpp).

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/reference.hpp"
#include "scenarios/error.hpp"

namespace moesim::kernels {
namespace {

void check_size(const char* name, size_t found, size_t expected) {
  if (found != expected)
    throw ConfigError(std::string(name) + ": expected " + std::to_string(expected) + " elements, found " +
                      std::to_string(found));
}

}  // namespace

PermuteResult permute_ref(const PermuteConfig& c, const std::vector<int32_t>& topk_idx,
                          const std::vector<Bf16>& x) {
  validate(c);
  const int T = c.tokens, E = c.experts, K = c.top_k;
  const int64_t H = c.hidden;
  check_size("permute topk_idx", topk_idx.size(), static_cast<size_t>(T) * K);
  check_size("permute x", x.size(), static_cast<size_t>(T * H));
  for (int32_t e : topk_idx)
    if (e < 0 || e >= E)
      throw ConfigError("permute topk_idx: expert id " + std::to_string(e) + " out of range");

  PermuteResult r;
  r.row_map.assign(static_cast<size_t>(T) * K, -1);
  r.kept_counts.assign(E, 0);
  r.offsets.assign(E + 1, 0);

  // Rank of each assignment within its expert, in token order: a stable counting sort.
  std::vector<int32_t> seen(E, 0), rank(static_cast<size_t>(T) * K);
  for (int t = 0; t < T; ++t)
    for (int k = 0; k < K; ++k) {
      const int e = topk_idx[static_cast<size_t>(t) * K + k];
      rank[static_cast<size_t>(t) * K + k] = seen[e]++;
    }
  for (int e = 0; e < E; ++e) {
    r.kept_counts[e] = c.capacity > 0 ? std::min(seen[e], c.capacity) : seen[e];
    r.dropped += seen[e] - r.kept_counts[e];
    r.offsets[e + 1] = r.offsets[e] + r.kept_counts[e];
  }

  r.rows.assign(static_cast<size_t>(permuted_rows_bound(c) * H), Bf16{});
  for (int t = 0; t < T; ++t)
    for (int k = 0; k < K; ++k) {
      const size_t a = static_cast<size_t>(t) * K + k;
      const int e = topk_idx[a];
      if (c.capacity > 0 && rank[a] >= c.capacity) continue;
      const int64_t row = c.layout == RowLayout::kPadded ? static_cast<int64_t>(e) * c.capacity + rank[a]
                                                         : r.offsets[e] + rank[a];
      r.row_map[a] = static_cast<int32_t>(row);
      std::copy_n(&x[t * H], H, &r.rows[row * H]);
    }
  return r;
}

std::vector<Bf16> swiglu_ref(int64_t rows, int ffn, const std::vector<Bf16>& h) {
  if (rows < 0 || ffn <= 0) throw ConfigError("swiglu: expected rows ≥ 0 and ffn > 0");
  const int64_t F = ffn;
  check_size("swiglu h", h.size(), static_cast<size_t>(rows * 2 * F));
  std::vector<Bf16> a(static_cast<size_t>(rows * F));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < F; ++j) {
      const float g = to_float(h[r * 2 * F + j]);
      const float u = to_float(h[r * 2 * F + F + j]);
      const float silu = g / (1.0f + std::exp(-g));
      a[r * F + j] = to_bf16(silu * u);
    }
  return a;
}

int64_t ExpertRows::row_start(int e) const {
  if (layout == RowLayout::kPadded) return static_cast<int64_t>(e) * capacity;
  int64_t s = 0;
  for (int i = 0; i < e; ++i) s += rows[i];
  return s;
}

int64_t ExpertRows::total_rows() const {
  if (layout == RowLayout::kPadded) return static_cast<int64_t>(rows.size()) * capacity;
  int64_t s = 0;
  for (int32_t r : rows) s += r;
  return s;
}

std::vector<Bf16> expert_gemm_ref(const ExpertRows& er, int n, int k, const std::vector<Bf16>& x,
                                  const std::vector<Bf16>& w) {
  const int E = static_cast<int>(er.rows.size());
  if (E < 1 || n < 1 || k < 1) throw ConfigError("expert_gemm: expected experts, n and k ≥ 1");
  for (int32_t r : er.rows)
    if (r < 0 || (er.layout == RowLayout::kPadded && r > er.capacity))
      throw ConfigError("expert_gemm: rows per expert must be in [0, capacity], found " + std::to_string(r));
  const int64_t R = er.total_rows();
  check_size("expert_gemm x", x.size(), static_cast<size_t>(R * k));
  check_size("expert_gemm w", w.size(), static_cast<size_t>(E) * n * k);

  std::vector<Bf16> y(static_cast<size_t>(R * n), Bf16{});
  std::vector<float> xr(k);
  for (int e = 0; e < E; ++e) {
    const int64_t first = er.row_start(e);
    const Bf16* we = &w[static_cast<size_t>(e) * n * k];
    for (int64_t r = first; r < first + er.rows[e]; ++r) {
      for (int i = 0; i < k; ++i) xr[i] = to_float(x[r * k + i]);
      for (int j = 0; j < n; ++j) {
        float acc = 0.0f;
        for (int i = 0; i < k; ++i) acc += xr[i] * to_float(we[static_cast<int64_t>(j) * k + i]);
        y[r * n + j] = to_bf16(acc);
      }
    }
  }
  return y;
}

std::vector<Bf16> combine_ref(const CombineConfig& c, const std::vector<Bf16>& y,
                              const std::vector<int32_t>& row_map, const std::vector<float>& topk_weight) {
  validate(c);
  const int T = c.tokens, K = c.top_k;
  const int64_t H = c.hidden;
  check_size("combine row_map", row_map.size(), static_cast<size_t>(T) * K);
  check_size("combine topk_weight", topk_weight.size(), static_cast<size_t>(T) * K);
  const int64_t rows = static_cast<int64_t>(y.size()) / H;
  for (int32_t r : row_map)
    if (r >= rows) throw ConfigError("combine row_map: row " + std::to_string(r) + " beyond y");

  std::vector<Bf16> out(static_cast<size_t>(T * H));
  for (int t = 0; t < T; ++t)
    for (int64_t j = 0; j < H; ++j) {
      float acc = 0.0f;
      for (int k = 0; k < K; ++k) {
        const int32_t r = row_map[static_cast<size_t>(t) * K + k];
        if (r >= 0) acc = std::fma(topk_weight[static_cast<size_t>(t) * K + k], to_float(y[r * H + j]), acc);
      }
      out[t * H + j] = to_bf16(acc);
    }
  return out;
}

MoeLayerResult moe_layer_ref(const MoeLayerConfig& c, const MoeLayerInputs& in) {
  validate(c);
  const int E = c.router.experts, H = c.hidden, F = c.ffn;
  check_size("moe_layer w_gate_up", in.w_gate_up.size(), static_cast<size_t>(E) * 2 * F * H);
  check_size("moe_layer w_down", in.w_down.size(), static_cast<size_t>(E) * H * F);

  MoeLayerResult r;
  r.router = router_ref(c.router, in.logits, in.bias);
  const PermuteConfig pc = c.permute();
  r.permute = permute_ref(pc, r.router.topk_idx, in.x);
  r.expert_rows.layout = pc.layout;
  r.expert_rows.capacity = pc.capacity;
  r.expert_rows.rows = r.permute.kept_counts;
  // The compact buffer may be longer than the rows kept (it is sized for the bound): trim.
  const int64_t rows = r.expert_rows.total_rows();
  std::vector<Bf16> x_rows(r.permute.rows.begin(), r.permute.rows.begin() + rows * H);
  r.h = expert_gemm_ref(r.expert_rows, 2 * F, H, x_rows, in.w_gate_up);
  r.a = swiglu_ref(rows, F, r.h);
  r.y = expert_gemm_ref(r.expert_rows, H, F, r.a, in.w_down);
  r.out = combine_ref(c.combine(), r.y, r.permute.row_map, r.router.topk_weight);
  return r;
}

}  // namespace moesim::kernels
