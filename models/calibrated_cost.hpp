#pragma once
/// \file Compute cost model from a measured calibration (calibrate/calibration.hpp, docs/calibration.md):
/// every kernel family the calibration fitted is priced by its fitted formula; the others fall back to
/// the roofline model, and name() says which.

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "calibrate/calibration.hpp"
#include "models/compute_cost.hpp"

namespace moesim::models {

/// Prices kernels with the fitted models of a calibration, on the scenario's GPU with `comm_sms` SMs
/// reserved for communication:
/// - GEMMs (dense, grouped): calibrate::GemmParams::time with the waves counted over the SMs left after
///   comm_sms (the per-SM tile time is the measured one);
/// - attention forward: fixed + (FLOPs / rate + scores · s_per_score + query_rows · s_per_query_row) ·
///   SMs / available SMs (StreamParams::attention_time); backward: the attention_backward model at 2.5×
///   the forward FLOPs (FlashAttention-2 §3.1) when the calibration has one, else the forward's variable
///   part × 2.5 × attention_efficiency / attention_backward_efficiency of the GPU spec;
/// - memory_bound(bytes): the "copy" family (fixed + bytes / bandwidth); memory_kernel(k, bytes): the
///   family of k (router, permute, swiglu, combine) where the calibration has it, else the copy family;
/// - whatever the calibration lacks (a family, or a GEMM precision): RooflineCostModel on `gpu`.
/// The model copies what it needs: the calibration may be destroyed afterwards.
class CalibratedCostModel final : public ComputeCostModel {
 public:
  /// Throws CalibrationError if the calibration was measured on a GPU with another SM count.
  /// `fp8_per_tensor`: the FP8 recipe scales per tensor (current or delayed scaling, cuBLASLt GEMMs), so
  /// FP8 dense and grouped GEMMs take the calibration's "fp8_tensor" fits where it has them.
  /// `fp8_blockwise_wgrad`: the recipe is blockwise, so FP8 weight-gradient GEMMs take the calibration's
  /// "fp8_wgrad" fits where it has them (a grouped one as its groups' dW[k×n] tiles over the mean rows of
  /// the non-empty groups, the k-grouped form the fits were measured in).
  CalibratedCostModel(const calibrate::Calibration& c, const GpuSpec& gpu, int comm_sms,
                      bool fp8_per_tensor = false, bool fp8_blockwise_wgrad = false);

  /// "calibration:<file name, or the device name if the calibration was not read from a file>", followed
  /// by " (roofline for ...)" listing what falls back to the roofline.
  std::string name() const override;
  double gemm(double m, double n, double k, Precision p) const override;
  double grouped_gemm(std::span<const double> rows, double n, double k, Precision p) const override;
  double grouped_gemm_weights(std::span<const double> rows, double n, double k, Precision p,
                              double weight_elem) const override;
  double batched_matmul(std::span<const double> rows, double n, double k, Precision p) const override;
  double weight_gradient_gemm(double m, double n, double k, Precision p) const override;
  double grouped_weight_gradient_gemm(std::span<const double> rows, double n, double k,
                                      Precision p) const override;
  double attention(const AttentionShape& s, bool backward) const override;
  double attention_work(const AttentionShape& s) const override;
  double memory_bound(double bytes) const override;
  double memory_kernel(MemoryKernel k, double bytes) const override;
  std::string priced_by(OpKind kind, Precision p) const override;
  std::string priced_by_weight_gradient(OpKind kind, Precision p) const override;
  std::string priced_by_memory(MemoryKernel k) const override;

  /// Whether `f` (for GEMMs: at precision `p`) is priced from the calibration rather than the roofline.
  bool calibrated(calibrate::KernelFamily f, Precision p = Precision::kBf16) const;

 private:
  const std::optional<calibrate::GemmParams>& gemm_params(calibrate::KernelFamily f, Precision p) const;
  /// "<label> /models/<family>/precisions/<precision>": the calibration entry a GEMM is priced by.
  std::string gemm_entry(calibrate::KernelFamily f, const std::string& precision) const;

  RooflineCostModel roofline_;
  GpuSpec gpu_;
  int sms_;  ///< SMs available to compute
  std::string label_;
  std::array<std::optional<calibrate::GemmParams>, 2> dense_, grouped_;  ///< indexed by Precision
  const char* dense_fp8_key_ = "fp8";    ///< the calibration precision dense FP8 GEMMs are priced from
  const char* grouped_fp8_key_ = "fp8";  ///< likewise for grouped (expert) FP8 GEMMs
  /// The fp8_wgrad fits FP8 weight gradients take (set only for the blockwise recipe).
  std::optional<calibrate::GemmParams> dense_fp8_wgrad_, grouped_fp8_wgrad_;
  std::optional<calibrate::StreamParams> attention_;
  std::optional<calibrate::StreamParams> attention_backward_;  ///< measured backward, when the file has it
  int attention_sm_count_ = 0;  ///< SMs of the device attention was measured on
  std::map<calibrate::KernelFamily, calibrate::StreamParams> memory_;
  /// memory_ by MemoryKernel (index), resolved once: the family's model, else the copy family's, else none.
  std::array<std::optional<calibrate::StreamParams>, 5> memory_kernel_;
  std::array<calibrate::KernelFamily, 5> memory_family_{};  ///< the family that prices each MemoryKernel
};

/// The calibrated compute cost model of `c` on `gpu` with `comm_sms` SMs reserved for communication.
/// Throws CalibrationError as the constructor does.
std::unique_ptr<ComputeCostModel> make_calibrated_cost_model(const calibrate::Calibration& c,
                                                             const GpuSpec& gpu, int comm_sms,
                                                             bool fp8_per_tensor = false,
                                                             bool fp8_blockwise_wgrad = false);

}  // namespace moesim::models
