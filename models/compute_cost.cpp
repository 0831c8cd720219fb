#include "models/compute_cost.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <vector>

#include "calibrate/calibration.hpp"
#include "models/calibrated_cost.hpp"

namespace moesim::models {

const char* to_string(MemoryKernel k) {
  switch (k) {
    case MemoryKernel::kStream:
      return "stream";
    case MemoryKernel::kRouter:
      return "router";
    case MemoryKernel::kPermute:
      return "permute";
    case MemoryKernel::kSwiglu:
      return "swiglu";
    case MemoryKernel::kCombine:
      return "combine";
  }
  return "stream";
}

RooflineCostModel::RooflineCostModel(const GpuSpec& gpu, int comm_sms)
    : gpu_(gpu), sms_(std::max(1, gpu.sm_count - comm_sms)) {}

std::string RooflineCostModel::name() const {
  return "roofline:" + gpu_.name;
}

double RooflineCostModel::tile_time(double k, Precision p) const {
  const double peak = p == Precision::kFp8 ? gpu_.flops_fp8 * gpu_.gemm_efficiency_fp8
                                           : gpu_.flops_bf16 * gpu_.gemm_efficiency_bf16;
  const double per_sm = peak / gpu_.sm_count;
  return 2.0 * kTile * kTile * k / per_sm;
}

double RooflineCostModel::gemm(double m, double n, double k, Precision p) const {
  if (m <= 0 || n <= 0 || k <= 0) return 0.0;
  const double tiles = std::ceil(m / kTile) * std::ceil(n / kTile);
  const double waves = std::ceil(tiles / sms_);
  const double t_compute = waves * tile_time(k, p);
  const double elem = p == Precision::kFp8 ? 1.0 : 2.0;
  const double bytes = elem * (m * k + k * n) + 2.0 * m * n;  // output in BF16
  const double t_memory = bytes / (gpu_.memory_bandwidth * gpu_.memory_efficiency);
  return std::max(t_compute, t_memory) + gpu_.kernel_launch;
}

double RooflineCostModel::grouped_gemm(std::span<const double> rows, double n, double k, Precision p) const {
  return grouped_gemm_weights(rows, n, k, p, p == Precision::kFp8 ? 1.0 : 2.0);
}

double RooflineCostModel::grouped_gemm_weights(std::span<const double> rows, double n, double k, Precision p,
                                               double weight_elem) const {
  double tiles = 0, bytes = 0;
  const double elem = p == Precision::kFp8 ? 1.0 : 2.0;
  for (double r : rows) {
    if (r <= 0) continue;
    tiles += std::ceil(r / kTile) * std::ceil(n / kTile);
    // Each active expert reads its weights once.
    bytes += weight_elem == elem ? elem * (r * k + k * n) + 2.0 * r * n
                                 : elem * r * k + weight_elem * k * n + 2.0 * r * n;
  }
  if (tiles == 0) return 0.0;
  const double t_compute = std::ceil(tiles / sms_) * tile_time(k, p);
  const double t_memory = bytes / (gpu_.memory_bandwidth * gpu_.memory_efficiency);
  return std::max(t_compute, t_memory) + gpu_.kernel_launch;
}

double RooflineCostModel::attention(const AttentionShape& s, bool backward) const {
  // Backward recomputes the scores and computes dQ, dK, dV: 2.5× the forward FLOPs (FlashAttention-2 §3.1).
  const double flops = s.forward_flops() * (backward ? 2.5 : 1.0);
  if (flops <= 0) return 0.0;
  const double eff = backward ? gpu_.attention_backward_efficiency : gpu_.attention_efficiency;
  const double rate = gpu_.flops_bf16 * eff * double(sms_) / gpu_.sm_count;
  return flops / rate + gpu_.kernel_launch;
}

double decode_attention_seconds(const ComputeCostModel& cm, const DecodeAttentionShape& s) {
  if (s.sequences <= 0 || s.kv_per_seq <= 0) return 0.0;
  AttentionShape a;
  const double group = s.kv_heads > 0 ? std::max(1.0, s.heads / s.kv_heads) : 1.0;
  a.query_tokens = s.sequences * s.query_per_seq * group;
  a.kv_tokens = s.kv_per_seq;
  a.heads = s.heads / group;
  a.qk_dim = s.qk_dim;
  a.v_dim = s.v_dim;
  a.causal = false;
  return std::max(cm.attention_work(a), cm.memory_bound(s.kv_bytes));
}

double RooflineCostModel::attention_work(const AttentionShape& s) const {
  const double flops = s.forward_flops();
  if (flops <= 0) return 0.0;
  return flops / (gpu_.flops_bf16 * gpu_.attention_efficiency * double(sms_) / gpu_.sm_count);
}

double RooflineCostModel::memory_bound(double bytes) const {
  if (bytes <= 0) return 0.0;
  return bytes / (gpu_.memory_bandwidth * gpu_.memory_efficiency) + gpu_.kernel_launch;
}

std::string RooflineCostModel::priced_by(OpKind kind, Precision p) const {
  const auto num = [](double v) {
    std::ostringstream o;
    o << v;
    return o.str();
  };
  const std::string launch = " kernel_launch=" + num(gpu_.kernel_launch);
  switch (kind) {
    case OpKind::kGemm:
    case OpKind::kGroupedGemm:
      return name() +
             (p == Precision::kFp8 ? " gemm_efficiency_fp8=" + num(gpu_.gemm_efficiency_fp8)
                                   : " gemm_efficiency_bf16=" + num(gpu_.gemm_efficiency_bf16)) +
             launch;
    case OpKind::kAttention:
      return name() + " attention_efficiency=" + num(gpu_.attention_efficiency) +
             " attention_backward_efficiency=" + num(gpu_.attention_backward_efficiency) + launch;
    case OpKind::kMemory:
      return name() + " memory_efficiency=" + num(gpu_.memory_efficiency) + launch;
    case OpKind::kComm:
      break;
  }
  return "";
}

namespace {

// Every kernel of `inner` at `speed` times its rate (Scenario::compute_speed).
class ScaledCostModel final : public ComputeCostModel {
 public:
  ScaledCostModel(std::unique_ptr<ComputeCostModel> inner, double speed)
      : inner_(std::move(inner)), slow_(1.0 / speed) {
    std::ostringstream o;
    o << " x" << speed << " (what-if compute speed)";
    suffix_ = o.str();
  }
  std::string name() const override { return inner_->name() + suffix_; }
  double gemm(double m, double n, double k, Precision p) const override {
    return inner_->gemm(m, n, k, p) * slow_;
  }
  double grouped_gemm(std::span<const double> rows, double n, double k, Precision p) const override {
    return inner_->grouped_gemm(rows, n, k, p) * slow_;
  }
  double grouped_gemm_weights(std::span<const double> rows, double n, double k, Precision p,
                              double weight_elem) const override {
    return inner_->grouped_gemm_weights(rows, n, k, p, weight_elem) * slow_;
  }
  double batched_matmul(std::span<const double> rows, double n, double k, Precision p) const override {
    return inner_->batched_matmul(rows, n, k, p) * slow_;
  }
  double weight_gradient_gemm(double m, double n, double k, Precision p) const override {
    return inner_->weight_gradient_gemm(m, n, k, p) * slow_;
  }
  double grouped_weight_gradient_gemm(std::span<const double> rows, double n, double k,
                                      Precision p) const override {
    return inner_->grouped_weight_gradient_gemm(rows, n, k, p) * slow_;
  }
  double attention(const AttentionShape& s, bool backward) const override {
    return inner_->attention(s, backward) * slow_;
  }
  double attention_work(const AttentionShape& s) const override { return inner_->attention_work(s) * slow_; }
  double memory_bound(double bytes) const override { return inner_->memory_bound(bytes) * slow_; }
  double memory_kernel(MemoryKernel k, double bytes) const override {
    return inner_->memory_kernel(k, bytes) * slow_;
  }
  std::string priced_by(OpKind kind, Precision p) const override {
    const std::string by = inner_->priced_by(kind, p);
    return by.empty() ? by : by + suffix_;
  }
  std::string priced_by_weight_gradient(OpKind kind, Precision p) const override {
    const std::string by = inner_->priced_by_weight_gradient(kind, p);
    return by.empty() ? by : by + suffix_;
  }
  std::string priced_by_memory(MemoryKernel k) const override {
    return inner_->priced_by_memory(k) + suffix_;
  }

 private:
  std::unique_ptr<ComputeCostModel> inner_;
  double slow_;
  std::string suffix_;
};

// A cost model built once and shared (read-only, so safe across threads): every call forwarded.
class SharedCostModel final : public ComputeCostModel {
 public:
  explicit SharedCostModel(std::shared_ptr<const ComputeCostModel> m) : m_(std::move(m)) {}
  std::string name() const override { return m_->name(); }
  double gemm(double m, double n, double k, Precision p) const override { return m_->gemm(m, n, k, p); }
  double grouped_gemm(std::span<const double> rows, double n, double k, Precision p) const override {
    return m_->grouped_gemm(rows, n, k, p);
  }
  double grouped_gemm_weights(std::span<const double> rows, double n, double k, Precision p,
                              double weight_elem) const override {
    return m_->grouped_gemm_weights(rows, n, k, p, weight_elem);
  }
  double batched_matmul(std::span<const double> rows, double n, double k, Precision p) const override {
    return m_->batched_matmul(rows, n, k, p);
  }
  double weight_gradient_gemm(double m, double n, double k, Precision p) const override {
    return m_->weight_gradient_gemm(m, n, k, p);
  }
  double grouped_weight_gradient_gemm(std::span<const double> rows, double n, double k,
                                      Precision p) const override {
    return m_->grouped_weight_gradient_gemm(rows, n, k, p);
  }
  double attention(const AttentionShape& s, bool backward) const override {
    return m_->attention(s, backward);
  }
  double attention_work(const AttentionShape& s) const override { return m_->attention_work(s); }
  double memory_bound(double bytes) const override { return m_->memory_bound(bytes); }
  double memory_kernel(MemoryKernel k, double bytes) const override { return m_->memory_kernel(k, bytes); }
  std::string priced_by(OpKind kind, Precision p) const override { return m_->priced_by(kind, p); }
  std::string priced_by_weight_gradient(OpKind kind, Precision p) const override {
    return m_->priced_by_weight_gradient(kind, p);
  }
  std::string priced_by_memory(MemoryKernel k) const override { return m_->priced_by_memory(k); }

 private:
  std::shared_ptr<const ComputeCostModel> m_;
};

std::unique_ptr<ComputeCostModel> scaled(std::unique_ptr<ComputeCostModel> m, double speed) {
  if (speed == 1.0) return m;
  return std::make_unique<ScaledCostModel>(std::move(m), speed);
}

}  // namespace

std::unique_ptr<ComputeCostModel> make_compute_cost_model(const Scenario& s) {
  // The scenario's own calibration, else its GPU's default one, else the roofline.
  const bool own = !s.calibration.empty();
  const std::string& file = own ? s.calibration : s.gpu_calibration;
  const SharedText& text = own ? s.calibration_text : s.gpu_calibration_text;
  if (!file.empty()) {
    // A sweep evaluates one calibration many times: parse each file's text once.
    // Keyed by file, then by text, so that a lookup copies neither (this runs on every evaluation); copies
    // of one loaded scenario share the text's buffer and match without comparing it.
    static std::mutex mutex;
    static std::map<std::string,
                    std::vector<std::pair<SharedText, std::shared_ptr<const calibrate::Calibration>>>>
        parsed;
    // The model built from a calibration for a GPU and an SM reservation, kept for the next evaluation
    // of the same three (a plan or a sweep evaluates them thousands of times; at most kModels each).
    struct Built {
      const calibrate::Calibration* calibration;
      GpuSpec gpu;
      int comm_sms;
      bool fp8_per_tensor;
      bool fp8_blockwise_wgrad;
      std::shared_ptr<const ComputeCostModel> model;
    };
    static std::vector<Built> built;
    constexpr std::size_t kModels = 64;
    // Per-tensor FP8 recipes (current and delayed scaling) run cuBLASLt FP8 GEMMs, not blockwise kernels.
    const bool per_tensor =
        s.workload.precision == Precision::kFp8 &&
        (s.workload.fp8_recipe == Fp8Recipe::kCurrent || s.workload.fp8_recipe == Fp8Recipe::kDelayed);
    // Blockwise FP8 weight gradients run their own kernels (both operands scaled along the tokens they
    // reduce over), priced from the calibration's fp8_wgrad fits where it has them.
    const bool blockwise_wgrad =
        s.workload.precision == Precision::kFp8 && s.workload.fp8_recipe == Fp8Recipe::kBlockwise;
    std::shared_ptr<const calibrate::Calibration> c;
    {
      const std::lock_guard<std::mutex> lock(mutex);
      auto& texts = parsed[file];
      for (const auto& [t, cal] : texts)
        if (t.same_buffer(text) || t.str() == text.str()) {
          c = cal;
          break;
        }
      if (!c) {
        c = std::make_shared<const calibrate::Calibration>(calibrate::parse_calibration(text.str(), file));
        texts.emplace_back(text, c);
      }
      for (const Built& b : built)
        if (b.calibration == c.get() && b.comm_sms == s.workload.comm_sms && b.gpu == s.cluster.gpu &&
            b.fp8_per_tensor == per_tensor && b.fp8_blockwise_wgrad == blockwise_wgrad)
          return scaled(std::make_unique<SharedCostModel>(b.model), s.compute_speed);
    }
    // Built outside the lock (its checks may throw CalibrationError); kept only when it succeeds.
    std::shared_ptr<const ComputeCostModel> model =
        make_calibrated_cost_model(*c, s.cluster.gpu, s.workload.comm_sms, per_tensor, blockwise_wgrad);
    {
      const std::lock_guard<std::mutex> lock(mutex);
      if (built.size() < kModels)
        built.push_back({c.get(), s.cluster.gpu, s.workload.comm_sms, per_tensor, blockwise_wgrad, model});
    }
    return scaled(std::make_unique<SharedCostModel>(std::move(model)), s.compute_speed);
  }
  return scaled(std::make_unique<RooflineCostModel>(s.cluster.gpu, s.workload.comm_sms), s.compute_speed);
}

}  // namespace moesim::models
