// The kernel profiler (calibrate/profiler.hpp): CUPTI Activity API tracing around a sweep of MoE layer
// shapes. Built only with CUDA (the CMake target moesim::profiler exists only then); the #error below
// stops a build that compiles it without the CUDA toolkit headers.

#if !__has_include(<cupti.h>)
#error "calibrate/profiler.cpp needs CUDA and CUPTI: build it only when MOESIM_HAVE_CUDA is ON"
#endif

#include "calibrate/profiler.hpp"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cupti.h>
#include <cxxabi.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <iomanip>
#include <map>
#include <mutex>
#include <numeric>
#include <ostream>
#include <sstream>
#include <tuple>

#include "kernels/device.hpp"
#include "kernels/device_utils.hpp"
#include "scenarios/error.hpp"

namespace moesim::calibrate {
namespace {

using kernels::Bf16;
using kernels::DeviceBuffer;
using kernels::GemmBackend;

// ---------------------------------------------------------------- CUPTI activity records

struct Record {
  std::string name;
  uint64_t start = 0, end = 0;  // ns, GPU timestamps
  int grid[3] = {0, 0, 0}, block[3] = {0, 0, 0};
  int registers = 0, shared_bytes = 0;
  bool memcpy = false;
};

std::mutex g_mutex;
std::vector<Record> g_records;  // filled by the buffer-completed callback

constexpr size_t kActivityBufferBytes = size_t{8} << 20;

void check_cupti(CUptiResult r, const char* call) {
  if (r == CUPTI_SUCCESS) return;
  const char* s = nullptr;
  cuptiGetResultString(r, &s);
  throw CalibrationError(std::string(call) + " failed: " + (s ? s : "unknown CUPTI error"));
}

std::string demangle(const char* name) {
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = (status == 0 && d) ? d : name;
  std::free(d);
  return out;
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kActivityBufferBytes));
  *size = *buffer ? kActivityBufferBytes : 0;
  *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  std::vector<Record> got;
  CUpti_Activity* rec = nullptr;
  while (cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
    if (rec->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || rec->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
      const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(rec);
      const char* name = k->name;  // the record is packed: copy the pointer out before using it
      Record r;
      r.name = demangle(name ? name : "?");
      r.start = k->start;
      r.end = k->end;
      r.grid[0] = k->gridX;
      r.grid[1] = k->gridY;
      r.grid[2] = k->gridZ;
      r.block[0] = k->blockX;
      r.block[1] = k->blockY;
      r.block[2] = k->blockZ;
      r.registers = k->registersPerThread;
      r.shared_bytes = k->staticSharedMemory + k->dynamicSharedMemory;
      got.push_back(std::move(r));
    } else if (rec->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
      const auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(rec);
      Record r;
      r.name = m->copyKind == CUPTI_ACTIVITY_MEMCPY_KIND_DTOD ? "cudaMemcpy DtoD" : "cudaMemcpy";
      r.start = m->start;
      r.end = m->end;
      r.memcpy = true;
      got.push_back(std::move(r));
    }
  }
  std::free(buffer);
  std::lock_guard<std::mutex> lock(g_mutex);
  g_records.insert(g_records.end(), got.begin(), got.end());
}

// Kernel and memcpy tracing for the lifetime of the object (one per process at a time).
class Tracer {
 public:
  explicit Tracer(bool cupti) : cupti_(cupti) {
    if (!cupti_) return;
    static std::once_flag registered;  // the callbacks are process-wide: register them once
    std::call_once(registered, [] {
      check_cupti(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed),
                  "cuptiActivityRegisterCallbacks");
    });
    // CONCURRENT_KERNEL, not KERNEL: the plain kind serialises kernels.
    check_cupti(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL),
                "cuptiActivityEnable(CONCURRENT_KERNEL)");
    check_cupti(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY), "cuptiActivityEnable(MEMCPY)");
  }
  ~Tracer() {
    if (!cupti_) return;
    cudaDeviceSynchronize();
    cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    cuptiActivityDisable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
    cuptiActivityDisable(CUPTI_ACTIVITY_KIND_MEMCPY);
    std::lock_guard<std::mutex> lock(g_mutex);
    g_records.clear();
  }
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  bool cupti() const { return cupti_; }

  /// Waits for the device, then returns (and forgets) every record since the last call, by start time.
  std::vector<Record> take() {
    MOESIM_CUDA_CHECK(cudaDeviceSynchronize());
    if (!cupti_) return {};
    check_cupti(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED), "cuptiActivityFlushAll");
    std::vector<Record> out;
    {
      std::lock_guard<std::mutex> lock(g_mutex);
      out.swap(g_records);
    }
    std::sort(out.begin(), out.end(), [](const Record& a, const Record& b) { return a.start < b.start; });
    return out;
  }

 private:
  bool cupti_;
};

// ---------------------------------------------------------------- timing one launch

struct Timing {
  double median_s = 0, p10_s = 0, p90_s = 0;
  /// Median of the CUDA-event time from before the launch to after it on the stream: kernels, memcpys,
  /// memsets, launch gaps and host synchronisation inside the launch (what a whole layer costs).
  double wall_median_s = 0;
  int repetitions = 0;
  std::vector<std::string> names;
  std::string launch;
};

double quantile(const std::vector<double>& sorted, double q) {
  return sorted[static_cast<size_t>(std::lround(q * static_cast<double>(sorted.size() - 1)))];
}

std::string describe(const Record& r) {
  std::ostringstream os;
  if (r.memcpy) return r.name;
  os << "grid=(" << r.grid[0] << "," << r.grid[1] << "," << r.grid[2] << ") block=(" << r.block[0] << ","
     << r.block[1] << "," << r.block[2] << ") regs=" << r.registers << " smem=" << r.shared_bytes;
  return os.str();
}

class Timer {
 public:
  Timer(Tracer& tracer, cudaStream_t stream, const ProfilePlan& plan)
      : tracer_(tracer),
        stream_(stream),
        flush_(static_cast<size_t>(plan.flush_bytes)),
        warmup_(plan.warmup),
        repetitions_(plan.repetitions) {
    MOESIM_CUDA_CHECK(cudaEventCreate(&begin_));
    MOESIM_CUDA_CHECK(cudaEventCreate(&end_));
  }
  ~Timer() {
    cudaEventDestroy(begin_);
    cudaEventDestroy(end_);
  }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  /// Times `launch` (which enqueues one operation on the stream): warm-up, then per repetition an L2
  /// flush, the launch, and the sum of its kernels' GPU durations (memcpys counted when asked).
  Timing time(const std::function<void()>& launch, bool count_memcpy = false) {
    for (int w = 0; w < warmup_; ++w) launch();
    tracer_.take();
    std::vector<double> times, walls;
    std::vector<Record> first;
    for (int r = 0; r < repetitions_; ++r) {
      MOESIM_CUDA_CHECK(cudaMemsetAsync(flush_.get(), r & 0xff, flush_.bytes(), stream_));
      tracer_.take();  // the flush is not part of the measurement
      MOESIM_CUDA_CHECK(cudaEventRecord(begin_, stream_));
      launch();
      MOESIM_CUDA_CHECK(cudaEventRecord(end_, stream_));
      std::vector<Record> recs = tracer_.take();
      float wall_ms = 0;
      MOESIM_CUDA_CHECK(cudaEventElapsedTime(&wall_ms, begin_, end_));
      walls.push_back(wall_ms * 1e-3);
      double t = 0;
      if (tracer_.cupti()) {
        std::vector<Record> kept;
        for (auto& rec : recs)
          if (!rec.memcpy || count_memcpy) {
            t += static_cast<double>(rec.end - rec.start) * 1e-9;
            kept.push_back(std::move(rec));
          }
        if (r == 0) first = std::move(kept);
      } else {
        t = wall_ms * 1e-3;
      }
      times.push_back(t);
    }
    std::sort(times.begin(), times.end());
    Timing out;
    const size_t n = times.size();
    out.median_s = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
    out.p10_s = quantile(times, 0.1);
    out.p90_s = quantile(times, 0.9);
    out.repetitions = static_cast<int>(n);
    std::sort(walls.begin(), walls.end());
    out.wall_median_s = n % 2 ? walls[n / 2] : 0.5 * (walls[n / 2 - 1] + walls[n / 2]);
    const Record* longest = nullptr;
    for (const auto& rec : first) {
      if (std::find(out.names.begin(), out.names.end(), rec.name) == out.names.end())
        out.names.push_back(rec.name);
      if (!longest || rec.end - rec.start > longest->end - longest->start) longest = &rec;
    }
    out.launch = longest ? describe(*longest) +
                               (first.size() > 1 ? " (+" + std::to_string(first.size() - 1) + " more)" : "")
                         : std::string("timed with CUDA events (no CUPTI)");
    return out;
  }

 private:
  Tracer& tracer_;
  cudaStream_t stream_;
  DeviceBuffer<char> flush_;
  int warmup_, repetitions_;
  cudaEvent_t begin_ = nullptr, end_ = nullptr;
};

Measurement measured(KernelFamily family, std::string variant, const Timing& t) {
  Measurement m;
  m.family = family;
  m.variant = std::move(variant);
  m.median_s = t.median_s;
  m.p10_s = t.p10_s;
  m.p90_s = t.p90_s;
  m.repetitions = t.repetitions;
  m.kernel_names = t.names;
  m.launch = t.launch;
  return m;
}

// ---------------------------------------------------------------- device description

std::string version_string(int v) {
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

std::string kernel_driver_version() {
  std::ifstream f("/proc/driver/nvidia/version");
  std::string line;
  if (f && std::getline(f, line)) {
    // "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06 ..." or "... Open Kernel Module for
    // x86_64  580.159.04 ...": the first word after "Kernel Module" that is a dotted number.
    const auto at = line.find("Kernel Module");
    if (at != std::string::npos) {
      std::istringstream rest(line.substr(at + 13));
      std::string v;
      while (rest >> v)
        if (std::isdigit(static_cast<unsigned char>(v[0])) && v.find('.') != std::string::npos) return v;
    }
  }
  int d = 0;
  if (cudaDriverGetVersion(&d) == cudaSuccess) return "CUDA driver API " + version_string(d);
  return "unknown";
}

DeviceInfo describe_device(int device) {
  cudaDeviceProp prop{};
  MOESIM_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  DeviceInfo d;
  d.name = prop.name;
  d.sm_count = prop.multiProcessorCount;
  int khz = 0;
  MOESIM_CUDA_CHECK(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, device));
  d.sm_clock_mhz = khz / 1000;  // replaced by the clock measured during the run
  MOESIM_CUDA_CHECK(cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, device));
  d.memory_clock_mhz = khz / 1000;
  d.memory_bytes = static_cast<double>(prop.totalGlobalMem);
  d.driver_version = kernel_driver_version();
  int rt = 0;
  MOESIM_CUDA_CHECK(cudaRuntimeGetVersion(&rt));
  d.cuda_version = version_string(rt);
  int major = 0, minor = 0, patch = 0;
  cublasGetProperty(MAJOR_VERSION, &major);
  cublasGetProperty(MINOR_VERSION, &minor);
  cublasGetProperty(PATCH_LEVEL, &patch);
  d.cublas_version = std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
  char buf[64];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  d.date = buf;
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) == 0) d.host = host;
  return d;
}

// ---------------------------------------------------------------- one sweep point

// Appends the measurements of one point and the whole-layer checks of each backend.
void run_point(const ProfilePlan& plan, const ProfilePoint& pt, uint64_t seed, Timer& timer,
               kernels::ExpertGemm& gemm, cudaStream_t s, ProfileResult& result, std::ostream* log) {
  using namespace kernels;
  std::vector<Measurement>& out = result.measurements;
  const int T = pt.tokens, E = pt.experts, H = pt.hidden, F = pt.ffn, K = pt.top_k;
  RouterConfig rc;
  rc.tokens = T;
  rc.experts = E;
  rc.top_k = K;
  if (pt.groups > 1) {
    rc.score = ScoreFunction::kSigmoid;
    rc.scale = 2.5f;
    rc.node_limited(pt.groups, pt.topk_groups);
  }
  PermuteConfig pc{T, E, K, H, 0, RowLayout::kCompact};
  try {
    validate(rc);
    validate(pc);
    if (F < 1) throw ConfigError("ffn must be positive");
  } catch (const ConfigError& e) {
    throw CalibrationError("profile point '" + pt.name + "': " + e.what());
  }
  const size_t R = static_cast<size_t>(T) * K;  // dropless: every assignment is a row

  // Fresh random data for this point.
  DeviceBuffer<float> profile(E), logits(static_cast<size_t>(T) * E), bias(E);
  profile.upload(zipf_profile(E, pt.zipf_s, seed));
  fill_gumbel_logits(logits.get(), T, E, profile.get(), 1.0f, seed + 1, s);
  fill_uniform(bias.get(), E, -0.01f, 0.01f, seed + 2, s);
  const float* bias_or_null = pt.groups > 1 ? bias.get() : nullptr;
  DeviceBuffer<Bf16> x(static_cast<size_t>(T) * H), w1(static_cast<size_t>(E) * 2 * F * H),
      w2(static_cast<size_t>(E) * H * F);
  fill_uniform(x.get(), x.size(), -1.0f, 1.0f, seed + 3, s);
  fill_uniform(w1.get(), w1.size(), -1.0f / std::sqrt(float(H)), 1.0f / std::sqrt(float(H)), seed + 4, s);
  fill_uniform(w2.get(), w2.size(), -1.0f / std::sqrt(float(F)), 1.0f / std::sqrt(float(F)), seed + 5, s);

  // Route once to learn the rows per expert.
  DeviceBuffer<int32_t> topk_idx(R), counts(E), row_map(R), kept(E), offsets(E + 1), dropped(1);
  DeviceBuffer<float> topk_w(R);
  DeviceBuffer<char> scratch(permute_scratch_bytes(pc));
  DeviceBuffer<Bf16> rows(R * H);
  const RouterArgs ra{logits.get(), bias_or_null, topk_idx.get(), topk_w.get(), counts.get()};
  launch_router(rc, ra, s);
  const PermuteArgs pa{topk_idx.get(), x.get(),       rows.get(),    row_map.get(),
                       kept.get(),     offsets.get(), dropped.get(), scratch.get()};
  launch_permute(pc, pa, s);
  const std::vector<int32_t> host_rows = kept.download();
  const int capacity = std::max(1, *std::max_element(host_rows.begin(), host_rows.end()));
  const size_t padded_rows = static_cast<size_t>(E) * capacity;
  const bool padded = std::find(plan.backends.begin(), plan.backends.end(),
                                GemmBackend::kCublasStridedBatched) != plan.backends.end() &&
                      static_cast<double>(padded_rows) * (2.0 * H + 3.0 * F) * 2 <= plan.padded_limit_bytes;
  if (log)
    *log << "  " << pt.name << ": T=" << T << " E=" << E << " H=" << H << " F=" << F << " K=" << K
         << " zipf=" << pt.zipf_s << " max rows/expert=" << capacity
         << (padded ? "" : " (padded layout skipped: too large)") << std::endl;

  const size_t act_rows = std::max(R, padded ? padded_rows : size_t{0});
  DeviceBuffer<Bf16> h(act_rows * 2 * F), a(act_rows * F), y(act_rows * H),
      out_tok(static_cast<size_t>(T) * H);
  fill_uniform(h.get(), h.size(), -2.0f, 2.0f, seed + 6, s);
  fill_uniform(a.get(), a.size(), -1.0f, 1.0f, seed + 7, s);
  fill_uniform(y.get(), y.size(), -1.0f, 1.0f, seed + 8, s);

  auto add = [&](Measurement m, double mm, double n, double k, double bytes, double flops) {
    m.point = pt.name;
    m.m = mm;
    m.n = n;
    m.k = k;
    m.bytes = bytes;
    m.flops = flops;
    out.push_back(std::move(m));
    return out.size() - 1;
  };
  const double bf = 2.0;  // bytes per bf16

  // Router.
  size_t i_router = 0;
  {
    const Timing t = timer.time([&] { launch_router(rc, ra, s); });
    i_router =
        add(measured(KernelFamily::kRouter, rc.groups > 1 ? "ours_sigmoid_grouped" : "ours_softmax", t), T, E,
            K, 4.0 * T * E + 8.0 * T * K + 8.0 * E, 0);
  }
  // Permute (compact, dropless) and, when used, padded with capacity = the largest expert.
  const double index_bytes = 5.0 * 4 * T * K;
  size_t i_permute = 0, i_permute_padded = 0;
  {
    const Timing t = timer.time([&] { launch_permute(pc, pa, s); });
    i_permute =
        add(measured(KernelFamily::kPermute, "ours", t), T, E, H, bf * T * H + bf * R * H + index_bytes, 0);
  }
  DeviceBuffer<Bf16> rows_padded(padded ? padded_rows * H : 0);
  DeviceBuffer<int32_t> row_map_padded(padded ? R : 0);
  const PermuteConfig ppc{T, E, K, H, capacity, RowLayout::kPadded};
  if (padded) {
    const PermuteArgs ppa{topk_idx.get(), x.get(),       rows_padded.get(), row_map_padded.get(),
                          kept.get(),     offsets.get(), dropped.get(),     scratch.get()};
    launch_permute(ppc, ppa, s);  // fills the padded rows the strided GEMM reads
    const Timing t = timer.time([&] { launch_permute(ppc, ppa, s); });
    Measurement m = measured(KernelFamily::kPermute, "ours_padded", t);
    m.launch += " capacity=" + std::to_string(capacity);
    i_permute_padded = add(std::move(m), T, E, H, bf * T * H + bf * R * H + index_bytes, 0);
  }
  // SwiGLU over the compact rows, and over the padded rows (what the strided layer runs).
  size_t i_swiglu = 0, i_swiglu_padded = 0;
  for (const bool on_padded : {false, true}) {
    if (on_padded && !padded) continue;
    const size_t n_rows = on_padded ? padded_rows : R;
    const Timing t = timer.time([&] { launch_swiglu(static_cast<int64_t>(n_rows), F, h.get(), a.get(), s); });
    const size_t i = add(measured(KernelFamily::kSwiglu, "ours", t), static_cast<double>(n_rows), F, 0,
                         bf * static_cast<double>(n_rows) * 3 * F, 0);
    (on_padded ? i_swiglu_padded : i_swiglu) = i;
  }
  // Combine.
  size_t i_combine = 0;
  {
    const CombineConfig cc{T, K, H};
    const CombineArgs ca{y.get(), row_map.get(), topk_w.get(), out_tok.get()};
    const Timing t = timer.time([&] { launch_combine(cc, ca, s); });
    i_combine =
        add(measured(KernelFamily::kCombine, "ours", t), T, E, H, bf * R * H + bf * T * H + 8.0 * T * K, 0);
  }

  // Expert GEMMs: gate/up (n = 2F, k = H) then down (n = H, k = F), per backend, and the dense ceiling.
  struct Shape {
    int n, k;
    const Bf16* x_compact;
    const Bf16* x_padded;
    const Bf16* w;
    Bf16* y;
  };
  const Shape shapes[2] = {{2 * F, H, rows.get(), rows_padded.get(), w1.get(), h.get()},
                           {H, F, a.get(), a.get(), w2.get(), y.get()}};
  const double rows_total = static_cast<double>(R);
  std::map<GemmBackend, std::vector<size_t>> i_gemm;  // per backend: gate/up, down
  for (const Shape& sh : shapes) {
    const double flops = 2.0 * rows_total * sh.n * sh.k;
    // Weights of the experts that have rows only: an empty expert's weights are never read.
    const double used = static_cast<double>(
        std::count_if(host_rows.begin(), host_rows.end(), [](int32_t r) { return r > 0; }));
    const double bytes = bf * (rows_total * sh.k + used * sh.n * sh.k + rows_total * sh.n);
    for (GemmBackend b : plan.backends) {
      const bool strided = b == GemmBackend::kCublasStridedBatched;
      if (strided && !padded) continue;
      ExpertGemmArgs ga;
      ga.experts = E;
      ga.n = sh.n;
      ga.k = sh.k;
      ga.layout = strided ? RowLayout::kPadded : RowLayout::kCompact;
      ga.capacity = strided ? capacity : 0;
      ga.host_rows = host_rows.data();
      ga.x = strided ? sh.x_padded : sh.x_compact;
      ga.w = sh.w;
      ga.y = sh.y;
      const Timing t = timer.time([&] { gemm.run(b, ga, s); });
      Measurement m = measured(KernelFamily::kGroupedGemm, kernels::to_string(b), t);
      m.rows.assign(host_rows.begin(), host_rows.end());
      if (strided) m.launch += " capacity=" + std::to_string(capacity);
      i_gemm[b].push_back(add(std::move(m), rows_total, sh.n, sh.k, bytes, flops));
    }
    if (plan.dense_ceiling) {
      const Timing t =
          timer.time([&] { dense_gemm(gemm, static_cast<int>(R), sh.n, sh.k, sh.x_compact, sh.w, sh.y, s); });
      add(measured(KernelFamily::kDenseGemm, "cublas", t), rows_total, sh.n, sh.k,
          bf * (rows_total * sh.k + static_cast<double>(sh.n) * sh.k + rows_total * sh.n), flops);
    }
  }

  // The whole layer per backend, timed as one launch, beside the sum of its components.
  for (const auto& [b, gi] : i_gemm) {
    const bool strided = b == GemmBackend::kCublasStridedBatched;
    MoeLayerConfig lc;
    lc.router = rc;
    lc.hidden = H;
    lc.ffn = F;
    lc.capacity = strided ? capacity : 0;
    lc.backend = b;
    MoeLayer layer(lc);
    DeviceBuffer<char> ws(layer.workspace_bytes());
    const MoeLayerArgs la{logits.get(), bias_or_null, x.get(), w1.get(), w2.get(), out_tok.get(), ws.get()};
    const Timing t = timer.time([&] { layer.forward(la, s); });
    ProfiledLayer pl;
    pl.backend = b;
    std::ostringstream name;
    name << pt.name << " MoE layer forward, " << T << " tokens, zipf " << pt.zipf_s << ", "
         << kernels::to_string(b);
    pl.spec.name = name.str();
    pl.spec.components = {i_router, strided ? i_permute_padded : i_permute,
                          gi[0],    strided ? i_swiglu_padded : i_swiglu,
                          gi[1],    i_combine};
    // Event time, not the kernel sum: the layer's memsets, launch gaps (one per expert for the per-expert
    // backend) and host synchronisation are part of what the layer costs; its components' kernel sums
    // are not, so the whole-layer check shows what the per-kernel models leave out.
    pl.spec.measured_s = t.wall_median_s;
    result.layers.push_back(std::move(pl));
  }
}

}  // namespace

ProfilePlan default_profile_plan() {
  ProfilePlan plan;
  plan.name = "full";
  auto add = [&](const std::string& name, std::vector<int> tokens, int e, int h, int f, int k,
                 std::vector<double> skews, int groups = 1, int topk_groups = 1) {
    for (int t : tokens)
      for (double s : skews) plan.points.push_back(ProfilePoint{name, t, e, h, f, k, s, groups, topk_groups});
  };
  add("mixtral-8x7b", {4096, 16384}, 8, 4096, 14336, 2, {0.0, 1.0});
  add("qwen3-30b-a3b", {4096, 16384}, 128, 2048, 768, 8, {0.0, 0.5, 1.0});
  add("qwen3-235b-a22b", {4096, 8192}, 128, 4096, 1536, 8, {0.0, 1.0});
  add("deepseek-v3", {2048, 4096, 8192}, 256, 7168, 2048, 8, {0.0, 1.0}, 8, 4);
  add("deepseek-v3-decode", {64, 256}, 256, 7168, 2048, 8, {0.0}, 8, 4);
  add("olmoe", {8192}, 64, 2048, 1024, 8, {0.0, 1.5});
  add("gpt-oss-120b", {8192}, 128, 2880, 2880, 4, {0.0, 1.0});
  add("gpt-oss-120b-decode", {128}, 128, 2880, 2880, 4, {0.0});
  add("qwen3-30b-a3b-decode", {128}, 128, 2048, 768, 8, {0.0});
  plan.held_out_points = {"olmoe", "gpt-oss-120b", "gpt-oss-120b-decode", "qwen3-30b-a3b-decode"};
  return plan;
}

ProfilePlan smoke_profile_plan() {
  ProfilePlan plan;
  plan.name = "smoke";
  plan.points.push_back(ProfilePoint{"smoke-softmax", 1024, 16, 256, 128, 2, 0.5, 1, 1});
  plan.points.push_back(ProfilePoint{"smoke-sigmoid-grouped", 512, 32, 128, 64, 4, 0.0, 4, 2});
  // A second softmax point: the fit of the router's softmax variant needs two.
  plan.points.push_back(ProfilePoint{"smoke-softmax", 2048, 16, 256, 128, 2, 0.0, 1, 1});
  plan.warmup = 2;
  plan.repetitions = 20;
  plan.flush_bytes = 128.0 * 1024 * 1024;
  plan.copy_bytes = {64.0 * 1024 * 1024, 128.0 * 1024 * 1024};  // two sizes: the copy fit needs two
  return plan;
}

ProfileResult run_profile(const ProfilePlan& plan, std::ostream* log) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0)
    throw CalibrationError("no CUDA device: the profiler needs a GPU");
  if (plan.repetitions < 20)
    throw CalibrationError("profiler: at least 20 repetitions are needed for medians");
  if (plan.flush_bytes < 64.0 * 1024 * 1024)
    throw CalibrationError("profiler: flush_bytes must exceed the L2 (64 MiB or more)");
  Tracer tracer(plan.use_cupti);  // before the first kernel of the sweep
  int device = 0;
  MOESIM_CUDA_CHECK(cudaGetDevice(&device));

  ProfileResult result;
  result.device = describe_device(device);
  if (log)
    *log << "profiling on " << result.device.name << " (" << result.device.sm_count << " SMs), driver "
         << result.device.driver_version << ", CUDA " << result.device.cuda_version << ", cuBLAS "
         << result.device.cublas_version << (plan.use_cupti ? ", CUPTI tracing" : ", CUDA events")
         << std::endl;

  cudaStream_t stream = nullptr;
  MOESIM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  try {
    Timer timer(tracer, stream, plan);
    kernels::ExpertGemm gemm;

    // Ceilings: device-to-device copy, by cudaMemcpy and by our 16-byte copy kernel.
    for (double bytes : plan.copy_bytes) {
      const size_t n = static_cast<size_t>(bytes) / 16 * 16;
      DeviceBuffer<char> src(n), dst(n);
      kernels::fill_uniform(reinterpret_cast<float*>(src.get()), n / 4, -1.0f, 1.0f, plan.seed, stream);
      auto add_copy = [&](const char* variant, const Timing& t) {
        Measurement m = measured(KernelFamily::kCopy, variant, t);
        m.bytes = 2.0 * static_cast<double>(n);
        result.measurements.push_back(std::move(m));
      };
      add_copy("cuda_memcpy", timer.time(
                                  [&] {
                                    MOESIM_CUDA_CHECK(cudaMemcpyAsync(dst.get(), src.get(), n,
                                                                      cudaMemcpyDeviceToDevice, stream));
                                  },
                                  true));
      add_copy("ours", timer.time([&] { kernels::copy_bytes(src.get(), dst.get(), n, stream); }));
    }

    // The SM clock is read right after each point's kernels, while the clock still answers to their
    // load (an idle GPU reads its idle clock); the calibration records the median of those reads.
    std::vector<double> clocks;
    for (size_t i = 0; i < plan.points.size(); ++i) {
      run_point(plan, plan.points[i], plan.seed * 1000003ull + i * 7919ull, timer, gemm, stream, result, log);
      clocks.push_back(kernels::measure_sm_clock_mhz());
    }
    if (!clocks.empty()) {
      std::sort(clocks.begin(), clocks.end());
      result.device.sm_clock_mhz = static_cast<int>(std::lround(clocks[clocks.size() / 2]));
      if (log)
        *log << "SM clock read after each point: " << std::lround(clocks.front()) << " to "
             << std::lround(clocks.back()) << " MHz, median " << result.device.sm_clock_mhz << std::endl;
    }
  } catch (...) {
    cudaStreamDestroy(stream);
    throw;
  }
  MOESIM_CUDA_CHECK(cudaStreamDestroy(stream));
  mark_held_out_points(result.measurements, plan.held_out_points, plan.held_out_every);

  SweepPlan& sw = result.sweep;
  sw.name = plan.name;
  for (KernelFamily f : all_families())
    for (const Measurement& m : result.measurements)
      if (m.family == f) {
        sw.families.push_back(f);
        break;
      }
  sw.precisions = {"bf16"};
  sw.warmup = plan.warmup;
  sw.repetitions = plan.repetitions;
  sw.flush_bytes = plan.flush_bytes;
  sw.held_out_every = plan.held_out_every;
  std::ostringstream note;
  note << plan.points.size() << " MoE layer shapes; "
       << (plan.use_cupti ? "CUPTI kernel times" : "CUDA event times")
       << "; L2 flushed by a memset between repetitions; random data (splitmix64), seed " << plan.seed;
  if (!plan.held_out_points.empty()) {
    note << "; held out whole:";
    for (const auto& p : plan.held_out_points) note << " " << p;
  }
  sw.note = note.str();
  return result;
}

Profile to_profile(const ProfileResult& r) {
  Profile p;
  p.device = r.device;
  p.sweep = r.sweep;
  p.measurements = r.measurements;
  for (const ProfiledLayer& l : r.layers) p.layers.push_back(l.spec);
  return p;
}

void print_table(std::ostream& os, const ProfileResult& r) {
  os << "device: " << r.device.name << ", " << r.device.sm_count << " SMs, SM clock " << r.device.sm_clock_mhz
     << " MHz, driver " << r.device.driver_version << ", CUDA " << r.device.cuda_version << ", "
     << r.device.date << "\n";
  os << std::left << std::setw(13) << "family" << std::setw(24) << "variant" << std::right << std::setw(9)
     << "m" << std::setw(7) << "n" << std::setw(7) << "k" << std::setw(11) << "median_us" << std::setw(10)
     << "p10_us" << std::setw(10) << "p90_us" << std::setw(13) << "rate"
     << "  held  kernel\n";
  for (const auto& m : r.measurements) {
    std::ostringstream rate;
    rate << std::fixed << std::setprecision(1);
    if (m.flops > 0 && m.median_s > 0)
      rate << m.flops / m.median_s * 1e-12 << " TF/s";
    else if (m.bytes > 0 && m.median_s > 0)
      rate << std::setprecision(2) << m.bytes / m.median_s * 1e-12 << " TB/s";
    os << std::left << std::setw(13) << to_string(m.family) << std::setw(24) << m.variant << std::right
       << std::setw(9) << m.m << std::setw(7) << m.n << std::setw(7) << m.k << std::fixed
       << std::setprecision(1) << std::setw(11) << m.median_s * 1e6 << std::setw(10) << m.p10_s * 1e6
       << std::setw(10) << m.p90_s * 1e6 << std::setw(13) << rate.str()
       << (m.held_out ? "  yes   " : "  no    ")
       << (m.kernel_names.empty() ? std::string("-") : m.kernel_names.front().substr(0, 60)) << "\n";
    os.unsetf(std::ios::fixed);
  }
  for (const ProfiledLayer& l : r.layers) {
    double sum = 0;
    for (size_t i : l.spec.components) sum += r.measurements[i].median_s;
    os << "layer: " << l.spec.name << ": " << std::fixed << std::setprecision(1) << l.spec.measured_s * 1e6
       << " µs measured, " << sum * 1e6 << " µs sum of components\n";
    os.unsetf(std::ios::fixed);
  }
}

}  // namespace moesim::calibrate
