#include "calibrate/calibration.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "scenarios/error.hpp"
#include "scenarios/json_reader.hpp"
#include "scenarios/loader.hpp"

namespace moesim::calibrate {

// ------------------------------------------------------------------------------------------ families

const char* to_string(KernelFamily f) {
  switch (f) {
    case KernelFamily::kDenseGemm:
      return "dense_gemm";
    case KernelFamily::kGroupedGemm:
      return "grouped_gemm";
    case KernelFamily::kRouter:
      return "router";
    case KernelFamily::kPermute:
      return "permute";
    case KernelFamily::kSwiglu:
      return "swiglu";
    case KernelFamily::kCombine:
      return "combine";
    case KernelFamily::kCopy:
      return "copy";
    case KernelFamily::kAttention:
      return "attention";
    case KernelFamily::kAttentionBackward:
      return "attention_backward";
  }
  return "unknown";
}

const std::vector<KernelFamily>& all_families() {
  static const std::vector<KernelFamily> kAll{
      KernelFamily::kDenseGemm, KernelFamily::kGroupedGemm, KernelFamily::kRouter,
      KernelFamily::kPermute,   KernelFamily::kSwiglu,      KernelFamily::kCombine,
      KernelFamily::kCopy,      KernelFamily::kAttention,   KernelFamily::kAttentionBackward};
  return kAll;
}

std::optional<KernelFamily> family_from_string(std::string_view name) {
  for (KernelFamily f : all_families())
    if (name == to_string(f)) return f;
  return std::nullopt;
}

bool is_gemm_family(KernelFamily f) {
  return f == KernelFamily::kDenseGemm || f == KernelFamily::kGroupedGemm;
}

bool is_attention_family(KernelFamily f) {
  return f == KernelFamily::kAttention || f == KernelFamily::kAttentionBackward;
}

bool is_memory_bound_family(KernelFamily f) {
  return !is_gemm_family(f) && !is_attention_family(f);
}

const char* model_form(KernelFamily f) {
  if (is_gemm_family(f)) return "tile_waves";
  if (is_attention_family(f)) return "fixed_plus_flops_over_rate";
  return "fixed_plus_bytes_over_bandwidth";
}

// -------------------------------------------------------------------------------------------- models

double gemm_tiles(double m, double n, double tile_m, double tile_n) {
  if (m <= 0 || n <= 0) return 0.0;
  return std::ceil(m / tile_m) * std::ceil(n / tile_n);
}

double grouped_gemm_tiles(std::span<const double> rows, double n, double tile_m, double tile_n) {
  double tiles = 0;
  for (double r : rows) tiles += gemm_tiles(r, n, tile_m, tile_n);
  return tiles;
}

double element_bytes(const std::string& precision) {
  return precision == "bf16" ? 2.0 : 1.0;  // fp8, fp8_tensor and fp8_wgrad inputs are one byte
}

double gemm_bytes(double m, double n, double k, double elem) {
  return gemm_bytes(m, n, k, elem, elem);
}

double gemm_bytes(double m, double n, double k, double elem, double weight_elem) {
  if (m <= 0 || n <= 0 || k <= 0) return 0.0;
  if (weight_elem == elem) return elem * (m * k + k * n) + 2.0 * m * n;
  return elem * m * k + weight_elem * k * n + 2.0 * m * n;
}

double grouped_gemm_bytes(std::span<const double> rows, double n, double k, double elem) {
  return grouped_gemm_bytes(rows, n, k, elem, elem);
}

double grouped_gemm_bytes(std::span<const double> rows, double n, double k, double elem, double weight_elem) {
  double bytes = 0;
  for (double r : rows) bytes += gemm_bytes(r, n, k, elem, weight_elem);
  return bytes;
}

double GemmParams::tile_time(double k) const {
  return tile_time(k, tile_m, tile_n);
}

double GemmParams::tile_time(double k, double tm, double tn) const {
  return 2.0 * tm * tn * k / (peak_flops / sm_count) / efficiency;
}

const char* to_string(TilePolicy p) {
  return p == TilePolicy::kMinWaves ? "min_waves" : "fixed";
}

TileChoice GemmParams::choose_tiles(std::span<const double> rows, double n, int sms) const {
  if (tile_policy == TilePolicy::kFixed) return {tile_m, tile_n, grouped_tiles(rows, n)};
  // DeepGEMM's get_best_configs: the fewest waves, then the fullest last wave, then the widest tile. The
  // row blocks do not depend on the width: count them once.
  if (!(n > 0)) return {};
  double widest = 0;
  for (double r : rows) widest = std::max(widest, r);
  const double tm = widest <= 64 ? 64 : 128;
  double row_blocks = 0;
  if (padded_groups) {
    row_blocks = widest > 0 ? static_cast<double>(rows.size()) * std::ceil(widest / tm) : 0;
  } else {
    for (double r : rows)
      if (r > 0) row_blocks += std::ceil(r / tm);
  }
  if (!(row_blocks > 0)) return {};
  // Narrower tiles never make fewer tiles, so the fewest waves are those of width 128; walking down from
  // it, the candidates end at the first width that needs a wave more. Among them the fullest last wave
  // wins, the wider on a tie.
  const double s = std::max(1, sms);
  const auto tiles_at = [&](int tn) { return row_blocks * std::ceil(n / tn); };
  const double fewest = std::ceil(tiles_at(128) / s);
  TileChoice best{tm, 128, tiles_at(128)};
  double best_last = best.tiles - (fewest - 1) * s;  // 1..s
  for (int tn = 120; tn >= 16; tn -= 8) {
    const double tiles = tiles_at(tn);
    if (std::ceil(tiles / s) > fewest) break;
    const double last = tiles - (fewest - 1) * s;
    if (last > best_last) {
      best = {tm, static_cast<double>(tn), tiles};
      best_last = last;
    }
  }
  return best;
}

double GemmParams::time_for(std::span<const double> rows, double n, double k, int sms, double bytes,
                            double launches) const {
  return time(choose_tiles(rows, n, sms), k, sms, bytes, launches);
}

double GemmParams::time(const TileChoice& t, double k, int sms, double bytes, double launches) const {
  if (t.tiles <= 0 || k <= 0) return 0.0;
  const double waves = std::ceil(t.tiles / std::max(1, sms));
  const double fitted =
      waves * (tile_time(k, t.tile_m, t.tile_n) + wave_overhead_s) + bytes * s_per_byte + launch_s * launches;
  return floor_bytes_per_s > 0 ? std::max(fitted, bytes / floor_bytes_per_s) : fitted;
}

double GemmParams::time(double tiles, double k, int sms, double bytes, double launches) const {
  return time(TileChoice{tile_m, tile_n, tiles}, k, sms, bytes, launches);
}

double GemmParams::grouped_tiles(std::span<const double> rows, double n) const {
  if (!padded_groups || rows.empty()) return grouped_gemm_tiles(rows, n, tile_m, tile_n);
  const double widest = *std::max_element(rows.begin(), rows.end());
  return static_cast<double>(rows.size()) * gemm_tiles(widest, n, tile_m, tile_n);
}

double GemmParams::grouped_bytes(std::span<const double> rows, double n, double k, double elem) const {
  return grouped_bytes(rows, n, k, elem, elem);
}

double GemmParams::grouped_bytes(std::span<const double> rows, double n, double k, double elem,
                                 double weight_elem) const {
  if (!padded_groups || rows.empty()) return grouped_gemm_bytes(rows, n, k, elem, weight_elem);
  const double widest = *std::max_element(rows.begin(), rows.end());
  return static_cast<double>(rows.size()) * gemm_bytes(widest, n, k, elem, weight_elem);
}

double GemmParams::launches(std::span<const double> rows) const {
  if (!launch_per_group) return 1.0;
  return static_cast<double>(std::count_if(rows.begin(), rows.end(), [](double r) { return r > 0; }));
}

double StreamParams::time(double amount) const {
  return amount <= 0 ? 0.0 : fixed_s + amount / rate;
}

double StreamParams::attention_time(double flops, double scores, double query_rows) const {
  if (flops <= 0) return 0.0;
  return fixed_s + flops / rate + scores * s_per_score + query_rows * s_per_query_row;
}

double attention_scores(const Measurement& m) {
  if (!(m.k > 0)) return 0.0;
  // A backward measurement's FLOPs are 2.5 × its forward's (FlashAttention-2 §3.1).
  const double forward = m.family == KernelFamily::kAttentionBackward ? m.flops / 2.5 : m.flops;
  return forward / (2.0 * m.k);
}

bool FamilyModel::covers(const Measurement& m) const {
  if (m.family != family || m.variant != variant) return false;
  return !is_gemm_family(family) || gemm.count(m.precision) > 0;
}

double FamilyModel::predict(const Measurement& m) const {
  MOESIM_ASSERT(covers(m), std::string("measurement not covered by the ") + to_string(family) + " model");
  const double elem = element_bytes(m.precision);
  if (family == KernelFamily::kDenseGemm) {
    const GemmParams& p = gemm.at(m.precision);
    const double rows[1] = {m.m};
    return p.time_for(rows, m.n, m.k, p.sm_count, gemm_bytes(m.m, m.n, m.k, elem));
  }
  if (family == KernelFamily::kGroupedGemm) {
    const GemmParams& p = gemm.at(m.precision);
    return p.time_for(m.rows, m.n, m.k, p.sm_count, p.grouped_bytes(m.rows, m.n, m.k, elem),
                      p.launches(m.rows));
  }
  if (is_attention_family(family)) return stream.attention_time(m.flops, attention_scores(m), m.m);
  return stream.time(m.bytes);
}

void set_copy_floors(std::map<KernelFamily, FamilyModel>& models) {
  const auto copy = models.find(KernelFamily::kCopy);
  const double rate = copy == models.end() ? 0.0 : copy->second.stream.rate;
  for (auto& [f, m] : models)
    for (auto& [prec, g] : m.gemm) g.floor_bytes_per_s = rate > 0 ? rate : 0.0;
}

const FamilyModel* Calibration::model(KernelFamily f) const {
  auto it = models.find(f);
  return it == models.end() ? nullptr : &it->second;
}

// -------------------------------------------------------------------------------------------- reader

namespace {

// fp8_tensor: FP8 GEMMs with one scale per tensor (cuBLASLt, as Transformer Engine's current and delayed
// scaling run them); fp8: the blockwise kernels (DeepGEMM); fp8_wgrad: the blockwise weight-gradient
// kernels, whose reduction runs over tokens with both operands scaled per 128 of them (DeepGEMM's
// wgrad kernels).
const std::vector<std::string> kPrecisions{"bf16", "fp8", "fp8_tensor", "fp8_wgrad"};
constexpr const char* kPrecisionList = "bf16, fp8, fp8_tensor or fp8_wgrad";

std::string family_list() {
  std::string s;
  for (KernelFamily f : all_families()) s += (s.empty() ? "" : ", ") + std::string(to_string(f));
  return s;
}

std::string in_quotes(const std::string& s) {
  return "\"" + s + "\"";
}

[[noreturn]] void fail_at(const std::string& src, const std::string& ptr, const std::string& expected,
                          const std::string& found) {
  throw CalibrationError(located_message(src, ptr, expected, found));
}

double non_negative(ObjectReader& r, const std::string& key, std::optional<double> fallback = std::nullopt) {
  if (fallback && !r.has(key)) return r.get_number(key, *fallback);
  const double v = r.get_number(key);
  if (!(v >= 0)) r.fail(key, "a number ≥ 0", r.child(key).dump());
  return v;
}

double positive(ObjectReader& r, const std::string& key, const std::string& what) {
  const double v = r.get_number(key);
  if (!(v > 0)) r.fail(key, "a positive " + what, r.child(key).dump());
  return v;
}

// A fitted value within physical bounds: [lo, hi] (lo exclusive when `open_lo`).
double bounded(ObjectReader& r, const std::string& key, double lo, double hi, bool open_lo,
               const std::string& what) {
  const double v = r.get_number(key);
  if (!(open_lo ? v > lo : v >= lo) || !(v <= hi)) {
    char range[96];
    std::snprintf(range, sizeof range, "%s%g, %g]", open_lo ? "(" : "[", lo, hi);
    r.fail(key, what + " in " + range, r.child(key).dump());
  }
  return v;
}

const Json& array_child(ObjectReader& r, const std::string& key, const std::string& of) {
  const Json& v = r.child(key);
  if (!v.is_array()) r.fail(key, "an array of " + of, describe_json(v));
  return v;
}

KernelFamily read_family(ObjectReader& r, const std::string& key) {
  const std::string name = r.get_string(key);
  auto f = family_from_string(name);
  if (!f) r.fail(key, "a kernel family (one of " + family_list() + ")", in_quotes(name));
  return *f;
}

DeviceInfo read_device(const Json& j, const std::string& src) {
  ObjectReader r(j, src, "/device");
  DeviceInfo d;
  d.name = r.get_string("name");
  d.sm_count = static_cast<int>(r.get_int_in("sm_count", 1, 100000, std::nullopt));
  d.sm_clock_mhz = static_cast<int>(r.get_int_in("sm_clock_mhz", 0, 100000, 0));
  d.memory_clock_mhz = static_cast<int>(r.get_int_in("memory_clock_mhz", 0, 100000, 0));
  d.memory_bytes = non_negative(r, "memory_bytes", 0.0);
  d.driver_version = r.get_string("driver_version", "");
  d.cuda_version = r.get_string("cuda_version", "");
  d.cublas_version = r.get_string("cublas_version", "");
  d.date = r.get_string("date", "");
  d.host = r.get_string("host", "");
  r.finish();
  return d;
}

SweepPlan read_sweep(const Json& j, const std::string& src) {
  ObjectReader r(j, src, "/sweep");
  SweepPlan s;
  s.name = r.get_string("name", "");
  const Json& fams = array_child(r, "families", "kernel family names");
  if (fams.empty()) r.fail("families", "at least one kernel family", "an empty array");
  for (std::size_t i = 0; i < fams.size(); ++i) {
    const std::string ptr = r.at("families") + "/" + std::to_string(i);
    if (!fams[i].is_string()) fail_at(src, ptr, "a kernel family name", describe_json(fams[i]));
    auto f = family_from_string(fams[i].get<std::string>());
    if (!f) fail_at(src, ptr, "a kernel family (one of " + family_list() + ")", describe_json(fams[i]));
    if (std::find(s.families.begin(), s.families.end(), *f) != s.families.end())
      fail_at(src, ptr, "each family once", describe_json(fams[i]) + " again");
    s.families.push_back(*f);
  }
  s.precisions = r.get_string_list("precisions", {});
  for (std::size_t i = 0; i < s.precisions.size(); ++i)
    if (std::find(kPrecisions.begin(), kPrecisions.end(), s.precisions[i]) == kPrecisions.end())
      fail_at(src, r.at("precisions") + "/" + std::to_string(i), kPrecisionList, in_quotes(s.precisions[i]));
  s.warmup = static_cast<int>(r.get_int_in("warmup", 0, 1 << 30, 0));
  s.repetitions = static_cast<int>(r.get_int_in("repetitions", 0, 1 << 30, 0));
  s.flush_bytes = non_negative(r, "flush_bytes", 0.0);
  s.held_out_every = static_cast<int>(r.get_int_in("held_out_every", 0, 1 << 30, 0));
  s.note = r.get_string("note", "");
  r.finish();
  return s;
}

Measurement read_measurement(const Json& j, const std::string& src, const std::string& ptr) {
  ObjectReader r(j, src, ptr);
  Measurement m;
  m.family = read_family(r, "family");
  m.variant = r.get_string("variant");
  if (m.variant.empty()) r.fail("variant", "a backend name such as \"ours\"", "an empty string");
  m.precision = r.get_enum("precision", kPrecisions, "bf16");
  m.m = non_negative(r, "m", 0.0);
  m.n = non_negative(r, "n", 0.0);
  m.k = non_negative(r, "k", 0.0);
  if (const Json* rows = r.optional_child("rows")) {
    if (!rows->is_array()) r.fail("rows", "an array of per-expert row counts", describe_json(*rows));
    for (std::size_t i = 0; i < rows->size(); ++i) {
      const Json& v = (*rows)[i];
      if (!v.is_number() || !(v.get<double>() >= 0))
        fail_at(src, r.at("rows") + "/" + std::to_string(i), "a row count ≥ 0", describe_json(v));
      m.rows.push_back(v.get<double>());
    }
  }
  m.bytes = non_negative(r, "bytes", 0.0);
  m.flops = non_negative(r, "flops", 0.0);
  m.median_s = positive(r, "median_s", "median time in seconds");
  m.p10_s = non_negative(r, "p10_s", 0.0);
  m.p90_s = non_negative(r, "p90_s", 0.0);
  m.repetitions = static_cast<int>(r.get_int_in("repetitions", 1, 1 << 30, std::nullopt));
  m.kernel_names = r.get_string_list("kernel_names", {});
  m.launch = r.get_string("launch", "");
  m.held_out = r.get_bool("held_out", false);
  m.point = r.get_string("point", "");
  r.finish();

  if (m.p10_s > 0 && m.p10_s > m.median_s) r.fail("p10_s", "at most median_s", r.child("p10_s").dump());
  if (m.p90_s > 0 && m.p90_s < m.median_s) r.fail("p90_s", "at least median_s", r.child("p90_s").dump());
  // The shape each family is priced from must be present and positive.
  auto found = [&](const char* key) { return r.has(key) ? r.child(key).dump() : std::string("nothing"); };
  const std::string fam = to_string(m.family);
  if (is_gemm_family(m.family)) {
    if (m.family == KernelFamily::kGroupedGemm) {
      if (m.rows.empty()) r.fail("rows", "the per-expert row counts of a grouped_gemm measurement", "none");
      if (grouped_gemm_tiles(m.rows, 1, 1, 1) <= 0)
        r.fail("rows", "at least one expert with rows > 0", "all zero");
    } else if (!(m.m > 0)) {
      r.fail("m", "a positive GEMM dimension for a dense_gemm measurement", found("m"));
    }
    if (!(m.n > 0)) r.fail("n", "a positive GEMM dimension for a " + fam + " measurement", found("n"));
    if (!(m.k > 0)) r.fail("k", "a positive GEMM dimension for a " + fam + " measurement", found("k"));
  } else if (is_attention_family(m.family)) {
    if (!(m.flops > 0)) r.fail("flops", "the positive FLOPs of an attention measurement", found("flops"));
    // The shape terms need both the query rows (m) and the head dims (k), or neither.
    if ((m.m > 0) != (m.k > 0))
      r.fail(m.m > 0 ? "k" : "m",
             "both m (query tokens x heads) and k (qk + v head dims) of an attention measurement, or neither",
             found(m.m > 0 ? "k" : "m"));
  } else if (!(m.bytes > 0)) {
    r.fail("bytes", "the positive bytes moved by a " + fam + " measurement", found("bytes"));
  }
  return m;
}

GemmParams read_gemm_params(const Json& j, const std::string& src, const std::string& ptr) {
  ObjectReader r(j, src, ptr);
  GemmParams p;
  p.tile_m = bounded(r, "tile_m", 0, 4096, true, "a tile edge");
  p.tile_n = bounded(r, "tile_n", 0, 4096, true, "a tile edge");
  p.sm_count = static_cast<int>(r.get_int_in("sm_count", 1, 100000, std::nullopt));
  p.peak_flops = bounded(r, "peak_flops", 1e9, 1e17, false, "a peak in flop/s");
  p.efficiency = bounded(r, "efficiency", 0, 1, true, "a fitted efficiency (a fraction of the peak)");
  p.wave_overhead_s = bounded(r, "wave_overhead_s", 0, 1, false, "a time per wave in seconds");
  p.launch_s = bounded(r, "launch_s", 0, 1, false, "a time per launch in seconds");
  if (r.has("s_per_byte"))
    p.s_per_byte = bounded(r, "s_per_byte", 0, 1e-6, false, "a time per byte in seconds");
  p.fitted_on = static_cast<int>(r.get_int_in("fitted_on", 1, 1 << 30, std::nullopt));
  p.launch_per_group = r.get_bool("launch_per_group", false);
  p.padded_groups = r.get_bool("padded_groups", false);
  p.tile_policy = r.get_enum("tile_policy", {"fixed", "min_waves"}, "fixed") == "min_waves"
                      ? TilePolicy::kMinWaves
                      : TilePolicy::kFixed;
  r.finish();
  return p;
}

FamilyModel read_model(KernelFamily f, const Json& j, const std::string& src, const std::string& ptr) {
  ObjectReader r(j, src, ptr);
  FamilyModel m;
  m.family = f;
  m.variant = r.get_string("variant");
  if (m.variant.empty()) r.fail("variant", "the variant the model was fitted to", "an empty string");
  const std::string form = r.get_string("form");
  if (form != model_form(f))
    r.fail("form", in_quotes(model_form(f)) + " (the form of " + to_string(f) + " models)", in_quotes(form));
  if (is_gemm_family(f)) {
    const Json& precs = r.child("precisions");
    if (!precs.is_object()) r.fail("precisions", "an object keyed by precision", describe_json(precs));
    if (precs.empty())
      r.fail("precisions", "a fit for at least one precision (bf16, fp8)", "an empty object");
    for (auto it = precs.begin(); it != precs.end(); ++it) {
      const std::string p_ptr = r.at("precisions") + "/" + pointer_escape(it.key());
      if (std::find(kPrecisions.begin(), kPrecisions.end(), it.key()) == kPrecisions.end())
        fail_at(src, p_ptr, std::string("a precision (") + kPrecisionList + ")",
                "the unknown key " + in_quotes(it.key()));
      m.gemm[it.key()] = read_gemm_params(it.value(), src, p_ptr);
    }
  } else {
    const std::string rate_key = is_attention_family(f) ? "rate_flops_per_s" : "bandwidth_bytes_per_s";
    m.stream.fixed_s = bounded(r, "fixed_s", 0, 1, false, "a time per launch in seconds");
    m.stream.rate = is_attention_family(f) ? bounded(r, rate_key, 1e9, 1e17, false, "a rate in flop/s")
                                           : bounded(r, rate_key, 1e6, 1e14, false, "a bandwidth in bytes/s");
    if (is_attention_family(f)) {
      if (r.has("s_per_score"))
        m.stream.s_per_score =
            bounded(r, "s_per_score", 0, 1e-6, false, "a time per score element in seconds");
      if (r.has("s_per_query_row"))
        m.stream.s_per_query_row =
            bounded(r, "s_per_query_row", 0, 1e-3, false, "a time per query row in seconds");
    }
    m.stream.fitted_on = static_cast<int>(r.get_int_in("fitted_on", 1, 1 << 30, std::nullopt));
  }
  r.finish();
  return m;
}

ErrorStats read_stats(const Json& j, const std::string& src, const std::string& ptr) {
  ObjectReader r(j, src, ptr);
  ErrorStats s;
  s.count = static_cast<int>(r.get_int_in("count", 0, 1 << 30, std::nullopt));
  if (s.count == 0) {
    for (const char* key : {"median_rel_error", "p95_rel_error", "max_rel_error"})
      if (r.has(key)) r.fail(key, "no error statistics when count is 0", r.child(key).dump());
  } else {
    s.median = non_negative(r, "median_rel_error");
    s.p95 = non_negative(r, "p95_rel_error");
    s.max = non_negative(r, "max_rel_error");
    if (s.p95 < s.median)
      r.fail("p95_rel_error", "at least median_rel_error", r.child("p95_rel_error").dump());
    if (s.max < s.p95) r.fail("max_rel_error", "at least p95_rel_error", r.child("max_rel_error").dump());
  }
  r.finish();
  return s;
}

// A layer's "components": a non-empty array of indices into the file's `measurements` measurements.
std::vector<std::size_t> read_components(ObjectReader& r, const std::string& src, std::size_t measurements) {
  const Json& comps = array_child(r, "components", "measurement indices");
  if (comps.empty()) r.fail("components", "at least one measurement index", "an empty array");
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < comps.size(); ++i) {
    const Json& v = comps[i];
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
      fail_at(src, r.at("components") + "/" + std::to_string(i), "a measurement index", describe_json(v));
    const auto idx = v.get<uint64_t>();
    if (idx >= measurements)
      fail_at(src, r.at("components") + "/" + std::to_string(i),
              "an index into /measurements (below " + std::to_string(measurements) + ")", v.dump());
    out.push_back(static_cast<std::size_t>(idx));
  }
  return out;
}

LayerCheck read_layer(const Json& j, const std::string& src, const std::string& ptr,
                      std::size_t measurements) {
  ObjectReader r(j, src, ptr);
  LayerCheck l;
  l.name = r.get_string("name");
  l.components = read_components(r, src, measurements);
  l.measured_s = positive(r, "measured_s", "time in seconds");
  l.predicted_s = positive(r, "predicted_s", "time in seconds");
  l.rel_error = non_negative(r, "rel_error");
  r.finish();
  const double want = std::fabs(l.predicted_s - l.measured_s) / l.measured_s;
  if (std::fabs(l.rel_error - want) > 1e-9 * std::max(1.0, want)) {
    std::ostringstream e;
    e.precision(17);
    e << "|predicted_s − measured_s| / measured_s = " << want;
    r.fail("rel_error", e.str(), r.child("rel_error").dump());
  }
  return l;
}

HeldOut read_held_out(const Json& j, const std::string& src, std::size_t measurements) {
  ObjectReader r(j, src, "/held_out");
  HeldOut h;
  const Json& fams = r.child("families");
  if (!fams.is_object()) r.fail("families", "an object keyed by kernel family", describe_json(fams));
  for (auto it = fams.begin(); it != fams.end(); ++it) {
    const std::string ptr = r.at("families") + "/" + pointer_escape(it.key());
    auto f = family_from_string(it.key());
    if (!f)
      fail_at(src, ptr, "a kernel family (one of " + family_list() + ")",
              "the unknown key " + in_quotes(it.key()));
    h.families[*f] = read_stats(it.value(), src, ptr);
  }
  const Json& layers = array_child(r, "layers", "whole-layer checks");
  for (std::size_t i = 0; i < layers.size(); ++i)
    h.layers.push_back(read_layer(layers[i], src, r.at("layers") + "/" + std::to_string(i), measurements));
  r.finish();
  return h;
}

Provenance read_provenance(const Json& j, const std::string& src) {
  ObjectReader r(j, src, "/provenance");
  Provenance p;
  p.command = r.get_string("command");
  p.git_sha = r.get_string("git_sha");
  p.date = r.get_string("date");
  r.finish();
  return p;
}

// Relations between sections that no single section can check.
void check_consistency(const Calibration& c, const std::string& src) {
  for (std::size_t i = 0; i < c.sweep.families.size(); ++i) {
    const KernelFamily f = c.sweep.families[i];
    if (c.models.count(f)) continue;
    std::string have;
    for (const auto& [g, _] : c.models) have += (have.empty() ? "" : ", ") + std::string(to_string(g));
    fail_at(src, "/models",
            "a model for every swept family, including " + in_quotes(to_string(f)) + " (/sweep/families/" +
                std::to_string(i) + ")",
            have.empty() ? "no models" : "models for " + have + " only");
  }
  for (std::size_t i = 0; i < c.measurements.size(); ++i) {
    const KernelFamily f = c.measurements[i].family;
    if (std::find(c.sweep.families.begin(), c.sweep.families.end(), f) == c.sweep.families.end())
      fail_at(src, "/measurements/" + std::to_string(i) + "/family", "a family listed in /sweep/families",
              in_quotes(to_string(f)));
  }
  for (const auto& [f, m] : c.models) {
    for (const auto& [prec, p] : m.gemm)
      if (p.sm_count != c.device.sm_count)
        fail_at(src, "/models/" + std::string(to_string(f)) + "/precisions/" + prec + "/sm_count",
                "the device's SM count " + std::to_string(c.device.sm_count), std::to_string(p.sm_count));
    auto st = c.held_out.families.find(f);
    if (st == c.held_out.families.end())
      fail_at(src, "/held_out/families",
              "an entry for every fitted family, including " + in_quotes(to_string(f)), "none");
    int held = 0;
    for (const Measurement& x : c.measurements) held += x.held_out && m.covers(x);
    if (st->second.count != held)
      fail_at(src, "/held_out/families/" + std::string(to_string(f)) + "/count",
              std::to_string(held) + " (the held-out " + to_string(f) + " measurements of variant " +
                  in_quotes(m.variant) + ")",
              std::to_string(st->second.count));
  }
  for (const auto& [f, _] : c.held_out.families)
    if (!c.models.count(f))
      fail_at(src, "/held_out/families/" + std::string(to_string(f)),
              "entries only for families with a model", "an entry for " + in_quotes(to_string(f)));
  for (std::size_t i = 0; i < c.held_out.layers.size(); ++i) {
    const LayerCheck& l = c.held_out.layers[i];
    for (std::size_t j = 0; j < l.components.size(); ++j) {
      const Measurement& x = c.measurements[l.components[j]];
      const FamilyModel* m = c.model(x.family);
      if (!m || !m->covers(x))
        fail_at(src, "/held_out/layers/" + std::to_string(i) + "/components/" + std::to_string(j),
                "a measurement a fitted model prices",
                "measurement " + std::to_string(l.components[j]) + " (" + to_string(x.family) + ", variant " +
                    in_quotes(x.variant) + ", " + x.precision + ")");
    }
  }
}

Calibration parse_json(const Json& j, const std::string& src) {
  ObjectReader r(j, src, "");
  // Format and version first: a newer file fails on its version, not on a key this version lacks.
  const std::string format = r.get_string("format");
  if (format != kCalibrationFormat) r.fail("format", in_quotes(kCalibrationFormat), in_quotes(format));
  const Json& version = r.child("version");
  if (!version.is_number_integer() || version.get<int64_t>() != kCalibrationVersion)
    r.fail("version", std::to_string(kCalibrationVersion) + " (the calibration version this moesim reads)",
           describe_json(version));
  Calibration c;
  c.source = src;
  c.provenance = read_provenance(r.child("provenance"), src);
  c.device = read_device(r.child("device"), src);
  c.sweep = read_sweep(r.child("sweep"), src);
  const Json& ms = array_child(r, "measurements", "measurements");
  for (std::size_t i = 0; i < ms.size(); ++i)
    c.measurements.push_back(read_measurement(ms[i], src, "/measurements/" + std::to_string(i)));
  const Json& models = r.child("models");
  if (!models.is_object()) r.fail("models", "an object keyed by kernel family", describe_json(models));
  for (auto it = models.begin(); it != models.end(); ++it) {
    const std::string ptr = "/models/" + pointer_escape(it.key());
    auto f = family_from_string(it.key());
    if (!f)
      fail_at(src, ptr, "a kernel family (one of " + family_list() + ")",
              "the unknown key " + in_quotes(it.key()));
    c.models[*f] = read_model(*f, it.value(), src, ptr);
  }
  set_copy_floors(c.models);
  c.held_out = read_held_out(r.child("held_out"), src, c.measurements.size());
  r.finish();
  check_consistency(c, src);
  return c;
}

Profile parse_profile_json(const Json& j, const std::string& src) {
  ObjectReader r(j, src, "");
  const std::string format = r.get_string("format");
  if (format != kProfileFormat) r.fail("format", in_quotes(kProfileFormat), in_quotes(format));
  const Json& version = r.child("version");
  if (!version.is_number_integer() || version.get<int64_t>() != kProfileVersion)
    r.fail("version", std::to_string(kProfileVersion) + " (the profile version this moesim reads)",
           describe_json(version));
  Profile p;
  p.device = read_device(r.child("device"), src);
  p.sweep = read_sweep(r.child("sweep"), src);
  const Json& ms = array_child(r, "measurements", "measurements");
  for (std::size_t i = 0; i < ms.size(); ++i) {
    const std::string ptr = "/measurements/" + std::to_string(i);
    p.measurements.push_back(read_measurement(ms[i], src, ptr));
    const KernelFamily f = p.measurements.back().family;
    if (std::find(p.sweep.families.begin(), p.sweep.families.end(), f) == p.sweep.families.end())
      fail_at(src, ptr + "/family", "a family listed in /sweep/families", in_quotes(to_string(f)));
  }
  const Json& layers = array_child(r, "layers", "whole-layer timings");
  for (std::size_t i = 0; i < layers.size(); ++i) {
    ObjectReader lr(layers[i], src, "/layers/" + std::to_string(i));
    LayerSpec l;
    l.name = lr.get_string("name");
    l.components = read_components(lr, src, p.measurements.size());
    l.measured_s = positive(lr, "measured_s", "time in seconds");
    lr.finish();
    p.layers.push_back(std::move(l));
  }
  r.finish();
  return p;
}

// -------------------------------------------------------------------------------------------- writer

using OJson = nlohmann::ordered_json;

OJson to_ojson(const Measurement& m) {
  OJson j{{"family", to_string(m.family)},
          {"variant", m.variant},
          {"precision", m.precision},
          {"m", m.m},
          {"n", m.n},
          {"k", m.k},
          {"rows", m.rows},
          {"bytes", m.bytes},
          {"flops", m.flops},
          {"median_s", m.median_s},
          {"p10_s", m.p10_s},
          {"p90_s", m.p90_s},
          {"repetitions", m.repetitions},
          {"kernel_names", m.kernel_names},
          {"launch", m.launch},
          {"held_out", m.held_out}};
  if (!m.point.empty()) j["point"] = m.point;  // absent in files without points
  return j;
}

OJson to_ojson(const FamilyModel& m) {
  OJson j{{"variant", m.variant}, {"form", model_form(m.family)}};
  if (is_gemm_family(m.family)) {
    OJson precs = OJson::object();
    for (const auto& [prec, p] : m.gemm)
      precs[prec] = OJson{
          {"tile_m", p.tile_m},         {"tile_n", p.tile_n},         {"sm_count", p.sm_count},
          {"peak_flops", p.peak_flops}, {"efficiency", p.efficiency}, {"wave_overhead_s", p.wave_overhead_s},
          {"launch_s", p.launch_s},     {"s_per_byte", p.s_per_byte}, {"fitted_on", p.fitted_on}};
    for (const auto& [prec, p] : m.gemm) {  // the flags are written only when set: older files read unchanged
      if (p.launch_per_group) precs[prec]["launch_per_group"] = true;
      if (p.padded_groups) precs[prec]["padded_groups"] = true;
      if (p.tile_policy != TilePolicy::kFixed) precs[prec]["tile_policy"] = to_string(p.tile_policy);
    }
    j["precisions"] = precs;
  } else {
    j["fixed_s"] = m.stream.fixed_s;
    j[is_attention_family(m.family) ? "rate_flops_per_s" : "bandwidth_bytes_per_s"] = m.stream.rate;
    if (is_attention_family(m.family)) {
      j["s_per_score"] = m.stream.s_per_score;
      j["s_per_query_row"] = m.stream.s_per_query_row;
    }
    j["fitted_on"] = m.stream.fitted_on;
  }
  return j;
}

OJson to_ojson(const ErrorStats& s) {
  OJson j{{"count", s.count}};
  if (s.count > 0) {
    j["median_rel_error"] = s.median;
    j["p95_rel_error"] = s.p95;
    j["max_rel_error"] = s.max;
  }
  return j;
}

// Family-keyed maps are written in all_families() order, not alphabetically.
template <class T, class F>
OJson family_object(const std::map<KernelFamily, T>& m, F&& convert) {
  OJson j = OJson::object();
  for (KernelFamily f : all_families())
    if (auto it = m.find(f); it != m.end()) j[to_string(f)] = convert(it->second);
  return j;
}

std::string indent(const std::string& s) {
  std::string out;
  for (char ch : s) {
    out += ch;
    if (ch == '\n') out += "  ";
  }
  return out;
}

OJson to_ojson(const DeviceInfo& d) {
  return OJson{{"name", d.name},
               {"sm_count", d.sm_count},
               {"sm_clock_mhz", d.sm_clock_mhz},
               {"memory_clock_mhz", d.memory_clock_mhz},
               {"memory_bytes", d.memory_bytes},
               {"driver_version", d.driver_version},
               {"cuda_version", d.cuda_version},
               {"cublas_version", d.cublas_version},
               {"date", d.date},
               {"host", d.host}};
}

OJson to_ojson(const SweepPlan& s) {
  std::vector<std::string> fams;
  for (KernelFamily f : s.families) fams.push_back(to_string(f));
  return OJson{{"name", s.name},
               {"families", fams},
               {"precisions", s.precisions},
               {"warmup", s.warmup},
               {"repetitions", s.repetitions},
               {"flush_bytes", s.flush_bytes},
               {"held_out_every", s.held_out_every},
               {"note", s.note}};
}

std::string measurement_lines(const std::vector<Measurement>& ms) {
  std::string out = "  \"measurements\": [";
  for (std::size_t i = 0; i < ms.size(); ++i) out += (i ? ",\n    " : "\n    ") + to_ojson(ms[i]).dump();
  out += ms.empty() ? "]\n" : "\n  ]\n";
  return out;
}

}  // namespace

Calibration parse_calibration(const std::string& text, const std::string& source) {
  try {
    return parse_json(parse_json_text(text, source), source);
  } catch (const CalibrationError&) {
    throw;
  } catch (const Error& e) {  // ParseError and ConfigError from the JSON layer: same message, one type
    throw CalibrationError(e.what());
  }
}

Calibration read_calibration(const std::string& path) {
  return parse_calibration(read_calibration_text(path), path);
}

std::string to_text(const Calibration& c) {
  const OJson device = to_ojson(c.device);
  const OJson sweep = to_ojson(c.sweep);
  const OJson models = family_object(c.models, [](const FamilyModel& m) { return to_ojson(m); });
  OJson layers = OJson::array();
  for (const LayerCheck& l : c.held_out.layers)
    layers.push_back(OJson{{"name", l.name},
                           {"components", l.components},
                           {"measured_s", l.measured_s},
                           {"predicted_s", l.predicted_s},
                           {"rel_error", l.rel_error}});
  const OJson held_out{
      {"families", family_object(c.held_out.families, [](const ErrorStats& e) { return to_ojson(e); })},
      {"layers", layers}};
  const OJson provenance{
      {"command", c.provenance.command}, {"git_sha", c.provenance.git_sha}, {"date", c.provenance.date}};

  std::string out = "{\n";
  out += "  \"format\": " + OJson(kCalibrationFormat).dump() + ",\n";
  out += "  \"version\": " + std::to_string(c.version) + ",\n";
  out += "  \"provenance\": " + indent(provenance.dump(2)) + ",\n";
  out += "  \"device\": " + indent(device.dump(2)) + ",\n";
  out += "  \"sweep\": " + indent(sweep.dump(2)) + ",\n";
  out += "  \"models\": " + indent(models.dump(2)) + ",\n";
  out += "  \"held_out\": " + indent(held_out.dump(2)) + ",\n";
  out += measurement_lines(c.measurements) + "}\n";
  return out;
}

void write_calibration(const Calibration& c, const std::string& path, bool overwrite) {
  const std::string text = to_text(c);
  parse_calibration(text, path);  // never write a file the reader would reject
  std::error_code ec;
  if (!overwrite && std::filesystem::exists(path, ec))
    throw IoError(path + ": refusing to overwrite an existing calibration (use --force or another path)");
  std::FILE* f = std::fopen(path.c_str(), overwrite ? "wb" : "wbx");  // "x": fail rather than truncate
  if (!f) throw IoError(path + ": cannot create file: " + std::strerror(errno));
  const bool wrote = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const bool closed = std::fclose(f) == 0;
  if (!wrote || !closed) throw IoError(path + ": write failed: " + std::strerror(errno));
}

std::string profile_to_text(const Profile& p) {
  OJson layers = OJson::array();
  for (const LayerSpec& l : p.layers)
    layers.push_back(OJson{{"name", l.name}, {"components", l.components}, {"measured_s", l.measured_s}});
  std::string out = "{\n";
  out += "  \"format\": " + OJson(kProfileFormat).dump() + ",\n";
  out += "  \"version\": " + std::to_string(kProfileVersion) + ",\n";
  out += "  \"device\": " + indent(to_ojson(p.device).dump(2)) + ",\n";
  out += "  \"sweep\": " + indent(to_ojson(p.sweep).dump(2)) + ",\n";
  out += "  \"layers\": " + indent(layers.dump(2)) + ",\n";
  out += measurement_lines(p.measurements) + "}\n";
  return out;
}

Profile parse_profile(const std::string& text, const std::string& source) {
  try {
    return parse_profile_json(parse_json_text(text, source), source);
  } catch (const CalibrationError&) {
    throw;
  } catch (const Error& e) {
    throw CalibrationError(e.what());
  }
}

Profile read_profile(const std::string& path) {
  return parse_profile(read_calibration_text(path, "kernel profile file (moesim calibrate --measurements)"),
                       path);
}

}  // namespace moesim::calibrate
