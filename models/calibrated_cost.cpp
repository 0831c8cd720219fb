#include "models/calibrated_cost.hpp"

#include <algorithm>
#include <filesystem>

#include "scenarios/error.hpp"
#include "scenarios/kinds.hpp"

namespace moesim::models {

using calibrate::KernelFamily;

namespace {
std::size_t index(Precision p) {
  return p == Precision::kFp8 ? 1 : 0;
}
KernelFamily family_of(MemoryKernel k) {
  switch (k) {
    case MemoryKernel::kRouter:
      return KernelFamily::kRouter;
    case MemoryKernel::kPermute:
      return KernelFamily::kPermute;
    case MemoryKernel::kSwiglu:
      return KernelFamily::kSwiglu;
    case MemoryKernel::kCombine:
      return KernelFamily::kCombine;
    case MemoryKernel::kStream:
      break;
  }
  return KernelFamily::kCopy;
}
constexpr MemoryKernel kMemoryKernels[] = {MemoryKernel::kStream, MemoryKernel::kRouter,
                                           MemoryKernel::kPermute, MemoryKernel::kSwiglu,
                                           MemoryKernel::kCombine};
}  // namespace

CalibratedCostModel::CalibratedCostModel(const calibrate::Calibration& c, const GpuSpec& gpu, int comm_sms,
                                         bool fp8_per_tensor, bool fp8_blockwise_wgrad)
    : roofline_(gpu, comm_sms), gpu_(gpu), sms_(std::max(1, gpu.sm_count - comm_sms)) {
  label_ = c.source.empty() ? c.device.name : std::filesystem::path(c.source).filename().string();
  if (c.device.sm_count != gpu.sm_count)
    throw CalibrationError(located_message(
        c.source.empty() ? "calibration of " + c.device.name : c.source, "/device/sm_count",
        "the SM count of the scenario's GPU " + gpu.name + " (" + std::to_string(gpu.sm_count) + ")",
        std::to_string(c.device.sm_count) + " (" + c.device.name + ")"));
  // A fitted rate above the scenario GPU's datasheet is not a measurement of that GPU (1% for rounding
  // of the published figures). Messages are built only when a check fails (this runs on every
  // evaluation).
  const auto at_most = [&](double v, double peak, KernelFamily f, const char* where, const std::string& prec,
                           const char* what) {
    if (v <= peak * 1.01) return;
    const std::string file = c.source.empty() ? "calibration of " + c.device.name : c.source;
    const std::string ptr = std::string("/models/") + calibrate::to_string(f) + where +
                            (prec.empty() ? "" : "/" + prec + "/efficiency");
    throw CalibrationError(located_message(file, ptr,
                                           std::string(what) + (prec.empty() ? "" : " " + prec + " peak") +
                                               " of the scenario's GPU " + gpu.name + " (" +
                                               std::to_string(peak) + ")",
                                           std::to_string(v)));
  };
  for (const auto& [f, model] : c.models) {
    if (calibrate::is_gemm_family(f)) {
      for (const auto& [prec, g] : model.gemm) {
        // parse_calibration accepted only the registry's precision names.
        const bool fp8 = prec != to_string(Precision::kBf16);  // fp8, fp8_tensor, fp8_wgrad
        at_most(g.peak_flops * g.efficiency, fp8 ? gpu.flops_fp8 : gpu.flops_bf16, f, "/precisions", prec,
                "peak_flops x efficiency at most the");
      }
    } else if (calibrate::is_attention_family(f)) {
      at_most(model.stream.rate, std::max(gpu.flops_bf16, gpu.flops_fp8), f, "/rate_flops_per_s", "",
              "a rate at most the tensor peak");
    } else {
      at_most(model.stream.rate, gpu.memory_bandwidth, f, "/bandwidth_bytes_per_s", "",
              "a bandwidth at most the memory bandwidth");
    }
  }
  for (const auto& [f, model] : c.models) {
    if (calibrate::is_gemm_family(f)) {
      auto& slot = f == KernelFamily::kDenseGemm ? dense_ : grouped_;
      for (Precision p : {Precision::kBf16, Precision::kFp8})
        if (auto it = model.gemm.find(to_string(p)); it != model.gemm.end()) slot[index(p)] = it->second;
      if (fp8_per_tensor)
        if (auto it = model.gemm.find("fp8_tensor"); it != model.gemm.end()) {
          slot[index(Precision::kFp8)] = it->second;
          (f == KernelFamily::kDenseGemm ? dense_fp8_key_ : grouped_fp8_key_) = "fp8_tensor";
        }
      if (fp8_blockwise_wgrad)
        if (auto it = model.gemm.find("fp8_wgrad"); it != model.gemm.end())
          (f == KernelFamily::kDenseGemm ? dense_fp8_wgrad_ : grouped_fp8_wgrad_) = it->second;
    } else if (f == KernelFamily::kAttention) {
      attention_ = model.stream;
      attention_sm_count_ = c.device.sm_count;
    } else if (f == KernelFamily::kAttentionBackward) {
      attention_backward_ = model.stream;
    } else {
      memory_[f] = model.stream;
    }
  }
  // Every GEMM at least moves its bytes at the copy bandwidth (whatever built the calibration).
  if (auto copy = memory_.find(KernelFamily::kCopy); copy != memory_.end())
    for (auto* g :
         {&dense_[0], &dense_[1], &grouped_[0], &grouped_[1], &dense_fp8_wgrad_, &grouped_fp8_wgrad_})
      if (*g) (*g)->floor_bytes_per_s = copy->second.rate;
  for (MemoryKernel k : kMemoryKernels) {
    const auto i = static_cast<std::size_t>(k);
    KernelFamily f = family_of(k);
    if (!memory_.count(f)) f = KernelFamily::kCopy;
    memory_family_[i] = f;
    if (auto it = memory_.find(f); it != memory_.end()) memory_kernel_[i] = it->second;
  }
}

std::string CalibratedCostModel::name() const {
  std::string missing;
  auto add = [&](const std::string& what) { missing += (missing.empty() ? "" : ", ") + what; };
  for (KernelFamily f : {KernelFamily::kDenseGemm, KernelFamily::kGroupedGemm})
    for (Precision p : {Precision::kBf16, Precision::kFp8})
      if (!gemm_params(f, p)) add(std::string(calibrate::to_string(f)) + " " + to_string(p));
  if (!attention_) add("attention");
  if (!memory_.count(KernelFamily::kCopy)) add("memory_bound");
  return "calibration:" + label_ + (missing.empty() ? "" : " (roofline for " + missing + ")");
}

const std::optional<calibrate::GemmParams>& CalibratedCostModel::gemm_params(KernelFamily f,
                                                                             Precision p) const {
  return (f == KernelFamily::kDenseGemm ? dense_ : grouped_)[index(p)];
}

bool CalibratedCostModel::calibrated(KernelFamily f, Precision p) const {
  if (calibrate::is_gemm_family(f)) return gemm_params(f, p).has_value();
  if (f == KernelFamily::kAttention) return attention_.has_value();
  return memory_.count(f) > 0;
}

double CalibratedCostModel::gemm(double m, double n, double k, Precision p) const {
  const auto& g = gemm_params(KernelFamily::kDenseGemm, p);
  if (!g) return roofline_.gemm(m, n, k, p);
  const double bytes = calibrate::gemm_bytes(m, n, k, p == Precision::kFp8 ? 1.0 : 2.0);
  const double rows[1] = {m};
  return g->time_for(rows, n, k, sms_, bytes);
}

double CalibratedCostModel::grouped_gemm(std::span<const double> rows, double n, double k,
                                         Precision p) const {
  return grouped_gemm_weights(rows, n, k, p, p == Precision::kFp8 ? 1.0 : 2.0);
}

double CalibratedCostModel::grouped_gemm_weights(std::span<const double> rows, double n, double k,
                                                 Precision p, double weight_elem) const {
  const auto& g = gemm_params(KernelFamily::kGroupedGemm, p);
  if (!g) return roofline_.grouped_gemm_weights(rows, n, k, p, weight_elem);
  const double elem = p == Precision::kFp8 ? 1.0 : 2.0;
  const double bytes = g->grouped_bytes(rows, n, k, elem, weight_elem);
  return g->time_for(rows, n, k, sms_, bytes, g->launches(rows));
}

double CalibratedCostModel::batched_matmul(std::span<const double> rows, double n, double k,
                                           Precision p) const {
  const auto& g = gemm_params(KernelFamily::kGroupedGemm, p);
  if (!g) return roofline_.grouped_gemm(rows, n, k, p);
  calibrate::GemmParams unfloored = *g;
  unfloored.floor_bytes_per_s = 0;
  const double elem = p == Precision::kFp8 ? 1.0 : 2.0;
  return unfloored.time_for(rows, n, k, sms_, unfloored.grouped_bytes(rows, n, k, elem),
                            unfloored.launches(rows));
}

double CalibratedCostModel::weight_gradient_gemm(double m, double n, double k, Precision p) const {
  if (p != Precision::kFp8 || !dense_fp8_wgrad_) return gemm(m, n, k, p);
  const calibrate::GemmParams& g = *dense_fp8_wgrad_;
  const double bytes = calibrate::gemm_bytes(m, n, k, 1.0);
  const double rows[1] = {m};
  return g.time_for(rows, n, k, sms_, bytes);
}

double CalibratedCostModel::grouped_weight_gradient_gemm(std::span<const double> rows, double n, double k,
                                                         Precision p) const {
  if (p != Precision::kFp8 || !grouped_fp8_wgrad_) return grouped_gemm(rows, n, k, p);
  // One dW[k×n] per expert that received tokens, each reduced over its rows: as measured (k-grouped),
  // `groups` outputs of k rows by n over the mean rows of those groups.
  double groups = 0, tokens = 0;
  for (double r : rows)
    if (r > 0) groups += 1, tokens += r;
  if (groups == 0) return 0.0;
  thread_local std::vector<double> out;  // reused: the planner prices this millions of times
  out.assign(static_cast<std::size_t>(groups), k);
  const calibrate::GemmParams& g = *grouped_fp8_wgrad_;
  const double depth = tokens / groups;
  const double bytes = g.grouped_bytes(out, n, depth, 1.0);
  return g.time_for(out, n, depth, sms_, bytes, g.launches(out));
}

double CalibratedCostModel::attention_work(const AttentionShape& s) const {
  if (!attention_) return roofline_.attention_work(s);
  return attention(s, false) - attention_->fixed_s;
}

double CalibratedCostModel::attention(const AttentionShape& s, bool backward) const {
  if (!attention_) return roofline_.attention(s, backward);
  const double fwd = s.forward_flops();
  if (fwd <= 0) return 0.0;
  // The fitted terms are SM-time: with fewer SMs every one of them takes longer in proportion.
  const double share = double(attention_sm_count_) / std::min(sms_, attention_sm_count_);
  const double scores = fwd / (2.0 * (s.qk_dim + s.v_dim));
  if (backward && attention_backward_) {
    // Backward measured: 2.5x the forward FLOPs (FlashAttention-2 §3.1) at the fitted backward rate and
    // shape terms, on the same share of the SMs.
    const calibrate::StreamParams& b = *attention_backward_;
    return b.fixed_s + (b.attention_time(2.5 * fwd, scores, s.query_tokens * s.heads) - b.fixed_s) * share;
  }
  const double t_fwd =
      (attention_->attention_time(fwd, scores, s.query_tokens * s.heads) - attention_->fixed_s);
  // Backward without a measured backward: 2.5x the forward work at the backward/forward efficiency ratio
  // of the GPU spec.
  const double scale = backward ? 2.5 * gpu_.attention_efficiency / gpu_.attention_backward_efficiency : 1.0;
  return attention_->fixed_s + t_fwd * share * scale;
}

std::string CalibratedCostModel::gemm_entry(KernelFamily f, const std::string& precision) const {
  return label_ + " /models/" + calibrate::to_string(f) + "/precisions/" + precision;
}

std::string CalibratedCostModel::priced_by(OpKind kind, Precision p) const {
  const std::string at = label_ + " /models/";
  switch (kind) {
    case OpKind::kGemm:
    case OpKind::kGroupedGemm: {
      const KernelFamily f = kind == OpKind::kGemm ? KernelFamily::kDenseGemm : KernelFamily::kGroupedGemm;
      if (!gemm_params(f, p)) return roofline_.priced_by(kind, p);
      const char* fp8_key = f == KernelFamily::kDenseGemm ? dense_fp8_key_ : grouped_fp8_key_;
      return gemm_entry(f, p == Precision::kFp8 ? fp8_key : to_string(p));
    }
    case OpKind::kAttention:
      if (!attention_) return roofline_.priced_by(kind, p);
      if (attention_backward_) return at + "attention (backward: /models/attention_backward)";
      return at + "attention (backward: x2.5 x attention_efficiency / attention_backward_efficiency of " +
             gpu_.name + ")";
    case OpKind::kMemory:
      return priced_by_memory(MemoryKernel::kStream);
    case OpKind::kComm:
      break;
  }
  return "";
}

std::string CalibratedCostModel::priced_by_weight_gradient(OpKind kind, Precision p) const {
  if (p == Precision::kFp8) {
    const bool dense = kind == OpKind::kGemm;
    if ((dense && dense_fp8_wgrad_) || (kind == OpKind::kGroupedGemm && grouped_fp8_wgrad_))
      return gemm_entry(dense ? KernelFamily::kDenseGemm : KernelFamily::kGroupedGemm, "fp8_wgrad");
  }
  return priced_by(kind, p);
}

std::string CalibratedCostModel::priced_by_memory(MemoryKernel k) const {
  const auto i = static_cast<std::size_t>(k);
  if (!memory_kernel_[i]) return roofline_.priced_by(OpKind::kMemory, Precision::kBf16);
  return label_ + " /models/" + calibrate::to_string(memory_family_[i]);
}

double CalibratedCostModel::memory_kernel(MemoryKernel k, double bytes) const {
  const auto& m = memory_kernel_[static_cast<std::size_t>(k)];
  if (!m) return roofline_.memory_bound(bytes);
  return m->time(bytes);
}

double CalibratedCostModel::memory_bound(double bytes) const {
  return memory_kernel(MemoryKernel::kStream, bytes);
}

std::unique_ptr<ComputeCostModel> make_calibrated_cost_model(const calibrate::Calibration& c,
                                                             const GpuSpec& gpu, int comm_sms,
                                                             bool fp8_per_tensor, bool fp8_blockwise_wgrad) {
  return std::make_unique<CalibratedCostModel>(c, gpu, comm_sms, fp8_per_tensor, fp8_blockwise_wgrad);
}

}  // namespace moesim::models
