// Expert GEMMs through cuBLAS (bf16 storage, fp32 compute), three backends over one problem:
//   strided-batched: one cublasGemmStridedBatchedEx over [E, capacity, ·] — padding rows cost FLOPs;
//   per-expert:      one cublasGemmEx per non-empty expert — a launch per expert;
//   grouped:         cublasGemmGroupedBatchedEx — one call, but on CUDA 13.0 it dispatches an
//                    Ampere-era CUTLASS kernel (see /work/shared/guide/gpu.md, "the cuBLAS trap").
// cuBLAS is column-major: a row-major [rows, k] matrix is its column-major transpose, so
// Y[rows, n] = X[rows, k] · W[n, k]ᵀ is computed as Yᵀ[n, rows] = op_T(W)[n, k] · Xᵀ[k, rows] ("TN").

#include <cublas_v2.h>

#include <string>
#include <vector>

#include "kernels/device.hpp"
#include "kernels/internal/cuda_check.hpp"

namespace moesim::kernels {
namespace {

void check_cublas(cublasStatus_t s, const char* call, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS) internal::throw_cuda(call, cublasGetStatusString(s), file, line);
}
#define MOESIM_CUBLAS_CHECK(call) check_cublas((call), #call, __FILE__, __LINE__)

cublasHandle_t handle_of(void* h) {
  return static_cast<cublasHandle_t>(h);
}

const float kOne = 1.0f, kZero = 0.0f;

}  // namespace

// Arrays the grouped API reads: pointer arrays in device memory (uploaded from pinned host memory),
// shape arrays on the host.
struct ExpertGemm::Pointers {
  void** host = nullptr;    // pinned, 3 × capacity pointers: A, B, C
  void** device = nullptr;  // 3 × capacity
  size_t capacity = 0;
  cudaEvent_t uploaded = nullptr;  // the last copy out of `host` has finished
  std::vector<cublasOperation_t> trans_a, trans_b;
  std::vector<int> m, n, k, lda, ldb, ldc, group_size;
  std::vector<float> alpha, beta;

  ~Pointers() {
    if (host) cudaFreeHost(host);
    if (device) cudaFree(device);
    if (uploaded) cudaEventDestroy(uploaded);
  }

  void reserve(size_t groups) {
    if (!uploaded) MOESIM_CUDA_CHECK(cudaEventCreateWithFlags(&uploaded, cudaEventDisableTiming));
    if (groups <= capacity) return;
    MOESIM_CUDA_CHECK(cudaEventSynchronize(uploaded));
    if (host) MOESIM_CUDA_CHECK(cudaFreeHost(host));
    if (device) MOESIM_CUDA_CHECK(cudaFree(device));
    host = nullptr;
    device = nullptr;
    MOESIM_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&host), 3 * groups * sizeof(void*)));
    MOESIM_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&device), 3 * groups * sizeof(void*)));
    capacity = groups;
  }
};

ExpertGemm::ExpertGemm() : ptrs_(std::make_unique<Pointers>()) {
  cublasHandle_t h = nullptr;
  MOESIM_CUBLAS_CHECK(cublasCreate(&h));
  handle_ = h;
}

ExpertGemm::~ExpertGemm() {
  ptrs_.reset();
  if (handle_) cublasDestroy(handle_of(handle_));
}

void ExpertGemm::run(GemmBackend backend, const ExpertGemmArgs& a, cudaStream_t stream) {
  if (a.experts < 1 || a.n < 1 || a.k < 1) throw ConfigError("ExpertGemm: expected experts, n and k ≥ 1");
  if (!a.x || !a.w || !a.y) throw ConfigError("ExpertGemm: x, w and y must be device pointers");
  if (a.layout == RowLayout::kPadded && a.capacity < 1)
    throw ConfigError("ExpertGemm: the padded layout needs a positive capacity");
  cublasHandle_t h = handle_of(handle_);
  MOESIM_CUBLAS_CHECK(cublasSetStream(h, stream));
  const int64_t n = a.n, k = a.k;

  // First row of each expert.
  std::vector<int64_t> start(a.experts, 0);
  if (backend != GemmBackend::kCublasStridedBatched) {
    if (!a.host_rows) throw ConfigError("ExpertGemm: backend " + to_string(backend) + " needs host_rows");
    for (int e = 0; e < a.experts; ++e) {
      if (a.host_rows[e] < 0 || (a.layout == RowLayout::kPadded && a.host_rows[e] > a.capacity))
        throw ConfigError("ExpertGemm: rows of expert " + std::to_string(e) + " out of range");
      start[e] = a.layout == RowLayout::kPadded ? static_cast<int64_t>(e) * a.capacity
                                                : (e == 0 ? 0 : start[e - 1] + a.host_rows[e - 1]);
    }
  }

  switch (backend) {
    case GemmBackend::kCublasStridedBatched: {
      if (a.layout != RowLayout::kPadded)
        throw ConfigError("ExpertGemm: cublas_strided_batched needs the padded layout");
      const int64_t cap = a.capacity;
      MOESIM_CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, CUBLAS_OP_T, CUBLAS_OP_N, a.n, a.capacity, a.k, &kOne,
                                                     a.w, CUDA_R_16BF, a.k, n * k, a.x, CUDA_R_16BF, a.k,
                                                     cap * k, &kZero, a.y, CUDA_R_16BF, a.n, cap * n,
                                                     a.experts, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      return;
    }
    case GemmBackend::kCublasPerExpert: {
      for (int e = 0; e < a.experts; ++e) {
        if (a.host_rows[e] == 0) continue;
        MOESIM_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, a.n, a.host_rows[e], a.k, &kOne,
                                         a.w + e * n * k, CUDA_R_16BF, a.k, a.x + start[e] * k, CUDA_R_16BF,
                                         a.k, &kZero, a.y + start[e] * n, CUDA_R_16BF, a.n,
                                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      }
      return;
    }
    case GemmBackend::kCublasGrouped: {
      Pointers& p = *ptrs_;
      std::vector<int> experts;
      for (int e = 0; e < a.experts; ++e)
        if (a.host_rows[e] > 0) experts.push_back(e);
      const int groups = static_cast<int>(experts.size());
      if (groups == 0) return;
      p.reserve(groups);
      // The pinned array may still be in flight from the previous call: wait before rewriting it.
      MOESIM_CUDA_CHECK(cudaEventSynchronize(p.uploaded));
      p.trans_a.assign(groups, CUBLAS_OP_T);
      p.trans_b.assign(groups, CUBLAS_OP_N);
      p.m.assign(groups, a.n);
      p.k.assign(groups, a.k);
      p.lda.assign(groups, a.k);
      p.ldb.assign(groups, a.k);
      p.ldc.assign(groups, a.n);
      p.group_size.assign(groups, 1);
      p.alpha.assign(groups, 1.0f);
      p.beta.assign(groups, 0.0f);
      p.n.resize(groups);
      for (int g = 0; g < groups; ++g) {
        const int e = experts[g];
        p.n[g] = a.host_rows[e];
        p.host[g] = const_cast<Bf16*>(a.w + e * n * k);
        p.host[groups + g] = const_cast<Bf16*>(a.x + start[e] * k);
        p.host[2 * groups + g] = a.y + start[e] * n;
      }
      MOESIM_CUDA_CHECK(
          cudaMemcpyAsync(p.device, p.host, 3 * groups * sizeof(void*), cudaMemcpyHostToDevice, stream));
      MOESIM_CUDA_CHECK(cudaEventRecord(p.uploaded, stream));
      MOESIM_CUBLAS_CHECK(cublasGemmGroupedBatchedEx(
          h, p.trans_a.data(), p.trans_b.data(), p.m.data(), p.n.data(), p.k.data(), p.alpha.data(),
          const_cast<const void* const*>(p.device), CUDA_R_16BF, p.lda.data(),
          const_cast<const void* const*>(p.device + groups), CUDA_R_16BF, p.ldb.data(), p.beta.data(),
          p.device + 2 * groups, CUDA_R_16BF, p.ldc.data(), groups, p.group_size.data(), CUBLAS_COMPUTE_32F));
      return;
    }
  }
  MOESIM_ASSERT(false, "unhandled GemmBackend");
}

void dense_gemm(ExpertGemm& g, int m, int n, int k, const Bf16* x, const Bf16* w, Bf16* y,
                cudaStream_t stream) {
  if (m < 1 || n < 1 || k < 1) throw ConfigError("dense_gemm: expected m, n and k ≥ 1");
  cublasHandle_t h = handle_of(g.cublas_handle());
  MOESIM_CUBLAS_CHECK(cublasSetStream(h, stream));
  MOESIM_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &kOne, w, CUDA_R_16BF, k, x,
                                   CUDA_R_16BF, k, &kZero, y, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F,
                                   CUBLAS_GEMM_DEFAULT));
}

}  // namespace moesim::kernels
