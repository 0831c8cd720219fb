#include "calibrate/published.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <map>
#include <sstream>

#include "scenarios/error.hpp"
#include "scenarios/text_input.hpp"

namespace moesim::calibrate {

namespace fs = std::filesystem;

namespace {

enum class Table { kDeepGemm, kFlashAttention, kFigures, kAttentionTimes };

// One data line of a table, with what an error message needs to locate a field.
class Row {
 public:
  Row(const std::string& file, int line, const std::map<std::string, std::size_t>& index,
      std::vector<std::string> fields)
      : file_(file), line_(line), index_(index), fields_(std::move(fields)) {}
  const std::string& text(const std::string& column) const { return fields_[index_.at(column)]; }
  bool empty(const std::string& column) const { return text(column).empty(); }
  double number(const std::string& column, double lo, double hi) const {
    const std::string& t = text(column);
    std::size_t used = 0;
    double v = NAN;
    try {
      v = std::stod(t, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != t.size() || !std::isfinite(v) || v < lo || v > hi) {
      std::ostringstream range;
      range << "a number in [" << lo << ", " << hi << "]";
      fail(column, range.str(), "\"" + t + "\"");
    }
    return v;
  }
  double integer(const std::string& column, double lo, double hi) const {
    const double v = number(column, lo, hi);
    if (v != std::floor(v)) fail(column, "an integer", "\"" + text(column) + "\"");
    return v;
  }
  [[noreturn]] void fail(const std::string& column, const std::string& expected,
                         const std::string& found) const {
    throw CalibrationError(
        located_message(file_, "line " + std::to_string(line_) + ", column " + column, expected, found));
  }
  std::string where() const { return fs::path(file_).filename().string() + ":" + std::to_string(line_); }

 private:
  const std::string& file_;
  int line_;
  const std::map<std::string, std::size_t>& index_;
  std::vector<std::string> fields_;
};

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, ',')) out.push_back(cell);
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

const std::vector<std::string>& columns(Table t) {
  static const std::vector<std::string> deepgemm{"source",      "commit", "readme_line", "table", "groups",
                                                 "m_per_group", "n",      "k",           "tflops"};
  static const std::vector<std::string> fa{"source", "method", "headdim", "causal",   "seqlen",
                                           "batch",  "heads",  "tflops",  "fwd_flops"};
  static const std::vector<std::string> figures{"source", "family",      "variant", "precision",
                                                "groups", "m_per_group", "n",       "k",
                                                "bytes",  "published",   "unit"};
  static const std::vector<std::string> times{"source", "kernel", "direction", "batch",  "heads",
                                              "seqlen", "qk_dim", "v_dim",     "causal", "median_us"};
  return t == Table::kDeepGemm         ? deepgemm
         : t == Table::kFlashAttention ? fa
         : t == Table::kAttentionTimes ? times
                                       : figures;
}

// Every published row is of variant "published" (the fitter fits one variant per family, and a family's
// BF16 and FP8 rows come from different libraries); kernel_names says which kernel ran.
Measurement base(KernelFamily f, const std::string& kernel, const std::string& precision, const Row& r) {
  Measurement m;
  m.family = f;
  m.variant = kPublishedVariant;
  m.kernel_names = {kernel};
  m.precision = precision;
  m.repetitions = 1;
  m.launch = "published: " + r.text("source") + " (" + r.where() + ")";
  return m;
}

// A GEMM of `groups` equal groups of `rows` rows.
void gemm_shape(Measurement& m, double groups, double rows, double n, double k) {
  m.n = n;
  m.k = k;
  if (m.family == KernelFamily::kGroupedGemm) {
    m.rows.assign(static_cast<std::size_t>(groups), rows);
    m.m = groups * rows;
  } else {
    m.m = rows;
  }
  m.flops = 2.0 * groups * rows * n * k;
}

std::optional<Measurement> deepgemm_row(const Row& r) {
  if (r.text("commit") != kDeepGemmCommit) return std::nullopt;
  const std::string& table = r.text("table");
  KernelFamily f = KernelFamily::kGroupedGemm;
  if (table == "dense")
    f = KernelFamily::kDenseGemm;
  else if (table != "grouped_contiguous" && table != "grouped_masked")
    r.fail("table", "dense, grouped_contiguous or grouped_masked", "\"" + table + "\"");
  Measurement m = base(f, "DeepGEMM " + table, "fp8", r);
  m.launch = "published: " + r.text("source") + " line " + r.text("readme_line") + " (" + r.where() + ")";
  const double groups = r.integer("groups", 1, 1 << 16);
  if (f == KernelFamily::kDenseGemm && groups != 1) r.fail("groups", "1 for a dense GEMM", r.text("groups"));
  gemm_shape(m, groups, r.number("m_per_group", 1, 1e9), r.number("n", 1, 1e9), r.number("k", 1, 1e9));
  m.median_s = m.flops / (r.number("tflops", 1e-3, 1e5) * 1e12);
  return m;
}

std::optional<Measurement> flash_attention_row(const Row& r) {
  if (r.text("method") != "FlashAttention-3" || r.empty("tflops")) return std::nullopt;
  Measurement m = base(KernelFamily::kAttention, "FlashAttention-3 forward", "bf16", r);
  const double seq = r.number("seqlen", 1, 1e9), batch = r.number("batch", 1, 1e9);
  const double heads = r.number("heads", 1, 1e6), d = r.number("headdim", 1, 1e5);
  const bool causal = r.integer("causal", 0, 1) == 1;
  m.m = batch * seq * heads;
  m.n = seq;
  m.k = 2 * d;
  m.flops = r.number("fwd_flops", 1, 1e20);
  const double want = 4.0 * batch * seq * seq * heads * d * (causal ? 0.5 : 1.0);
  if (std::fabs(m.flops - want) > 1e-9 * want)
    r.fail("fwd_flops",
           "4 * batch * seqlen^2 * heads * headdim, halved when causal (" + std::to_string(want) + ")",
           r.text("fwd_flops"));
  m.median_s = m.flops / (r.number("tflops", 1e-3, 1e5) * 1e12);
  if (causal) m.kernel_names[0] += " causal";
  return m;
}

// A timed attention kernel (columns direction, batch, heads, seqlen, qk_dim, v_dim, causal, median_us):
// backward rows are attention_backward measurements (FLOPs 2.5 × the forward's); forward rows are kept
// in the table beside them and not read.
std::optional<Measurement> attention_time_row(const Row& r) {
  const std::string& direction = r.text("direction");
  if (direction != "forward" && direction != "backward")
    r.fail("direction", "forward or backward", "\"" + direction + "\"");
  if (direction == "forward") return std::nullopt;
  if (r.empty("kernel")) r.fail("kernel", "the kernel's name", "an empty field");
  Measurement m = base(KernelFamily::kAttentionBackward, r.text("kernel") + " backward", "bf16", r);
  const double seq = r.number("seqlen", 1, 1e9), batch = r.number("batch", 1, 1e9);
  const double heads = r.number("heads", 1, 1e6);
  const double qk = r.number("qk_dim", 1, 1e5), v = r.number("v_dim", 1, 1e5);
  const bool causal = r.integer("causal", 0, 1) == 1;
  m.m = batch * seq * heads;
  m.n = seq;
  m.k = qk + v;
  const double scores = batch * heads * seq * seq * (causal ? 0.5 : 1.0);
  m.flops = 2.5 * 2.0 * scores * (qk + v);
  m.median_s = r.number("median_us", 1e-3, 1e9) * 1e-6;
  if (causal) m.kernel_names[0] += " causal";
  return m;
}

std::optional<Measurement> figure_row(const Row& r) {
  const auto f = family_from_string(r.text("family"));
  if (!f) r.fail("family", "a kernel family", "\"" + r.text("family") + "\"");
  const std::string& prec = r.text("precision");
  if (prec != "bf16" && prec != "fp8" && prec != "fp8_tensor" && prec != "fp8_wgrad")
    r.fail("precision", "bf16, fp8, fp8_tensor or fp8_wgrad", "\"" + prec + "\"");
  if (r.empty("variant")) r.fail("variant", "a backend name", "an empty field");
  Measurement m = base(*f, r.text("variant"), prec, r);
  const std::string& unit = r.text("unit");
  const double figure = r.number("published", 1e-9, 1e9);
  if (is_gemm_family(*f)) {
    const double groups = r.integer("groups", 1, 1 << 16);
    if (*f == KernelFamily::kDenseGemm && groups != 1)
      r.fail("groups", "1 for a dense GEMM", r.text("groups"));
    gemm_shape(m, groups, r.number("m_per_group", 1, 1e9), r.number("n", 1, 1e9), r.number("k", 1, 1e9));
    if (unit != "TFLOP/s") r.fail("unit", "TFLOP/s for a GEMM figure", "\"" + unit + "\"");
    m.median_s = m.flops / (figure * 1e12);
  } else if (is_memory_bound_family(*f)) {
    m.bytes = r.number("bytes", 1, 1e15);
    if (unit == "TB/s")
      m.median_s = m.bytes / (figure * 1e12);
    else if (unit == "us")
      m.median_s = figure * 1e-6;
    else
      r.fail("unit", "TB/s or us for a memory-bound figure", "\"" + unit + "\"");
  } else {
    r.fail("family", "a GEMM or memory-bound family (attention comes from the FlashAttention table)",
           "\"" + r.text("family") + "\"");
  }
  return m;
}

void read_table(const std::string& path, std::vector<Measurement>& out, std::vector<std::string>* sources) {
  const TextFile file = read_text_file(path);
  if (file.status != TextRead::kOk)
    throw CalibrationError(
        located_message(path, "", "a readable published kernel table", describe_failed_read(file)));
  std::istringstream in(file.text);
  std::string line;
  std::map<std::string, std::size_t> index;
  std::size_t width = 0;
  Table table = Table::kFigures;
  int used = 0, first = 0, last = 0;
  for (int no = 1;; ++no) {
    const LineRead got = read_line(in, line);
    if (got == LineRead::kEnd) break;
    if (got == LineRead::kTooLong)
      throw CalibrationError(located_message(path, "line " + std::to_string(no),
                                             "a line of at most " + describe_bytes(kMaxLineBytes),
                                             "a longer one"));
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    if (line.find('"') != std::string::npos)
      throw CalibrationError(located_message(path, "line " + std::to_string(no),
                                             "comma-separated fields without quotes", "\"" + line + "\""));
    std::vector<std::string> fields = split(line);
    if (index.empty()) {
      for (std::size_t i = 0; i < fields.size(); ++i) index[fields[i]] = i;
      width = fields.size();
      if (index.count("m_per_group") && index.count("commit"))
        table = Table::kDeepGemm;
      else if (index.count("headdim") && index.count("method"))
        table = Table::kFlashAttention;
      else if (index.count("family") && index.count("unit"))
        table = Table::kFigures;
      else if (index.count("direction") && index.count("qk_dim"))
        table = Table::kAttentionTimes;
      else
        throw CalibrationError(located_message(path, "line " + std::to_string(no),
                                               "a header of a DeepGEMM table (commit, m_per_group), a "
                                               "FlashAttention table (method, headdim), a "
                                               "figures table (family, unit) or an attention times table "
                                               "(direction, qk_dim)",
                                               "\"" + line + "\""));
      for (const auto& c : columns(table))
        if (!index.count(c))
          throw CalibrationError(located_message(path, "line " + std::to_string(no), "a column \"" + c + "\"",
                                                 "\"" + line + "\""));
      continue;
    }
    if (fields.size() != width)
      throw CalibrationError(located_message(path, "line " + std::to_string(no),
                                             std::to_string(width) + " comma-separated fields",
                                             std::to_string(fields.size())));
    const Row r(path, no, index, std::move(fields));
    const std::optional<Measurement> m = table == Table::kDeepGemm         ? deepgemm_row(r)
                                         : table == Table::kFlashAttention ? flash_attention_row(r)
                                         : table == Table::kAttentionTimes ? attention_time_row(r)
                                                                           : figure_row(r);
    if (!m) continue;
    out.push_back(*m);
    ++used;
    if (first == 0) first = no;
    last = no;
  }
  if (index.empty())
    throw CalibrationError(located_message(path, "line 1", "a header line", "an empty table"));
  if (sources)
    sources->push_back(fs::path(path).filename().string() + ": " + std::to_string(used) + " rows" +
                       (used ? " (lines " + std::to_string(first) + "-" + std::to_string(last) + ")" : ""));
}

}  // namespace

std::vector<Measurement> published_measurements(const std::string& dir, std::vector<std::string>* sources) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw CalibrationError(located_message(dir, "", "a folder of published kernel tables (*.csv)",
                                           fs::exists(dir, ec) ? "a file" : "nothing"));
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".csv") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  if (files.empty()) throw CalibrationError(located_message(dir, "", "at least one *.csv table", "none"));
  std::vector<Measurement> out;
  for (const auto& f : files) read_table(f, out, sources);
  return out;
}

void mark_held_out_per_precision(std::vector<Measurement>& ms, int every) {
  std::map<std::pair<KernelFamily, std::string>, int> seen;
  for (Measurement& m : ms) m.held_out = every > 0 && ++seen[{m.family, m.precision}] % every == 0;
}

FitOptions published_fit_options(const GpuSpec& gpu) {
  FitOptions o = fit_options_for(gpu);
  o.tile_m = kPublishedTileM;
  o.tile_n = kPublishedTileN;
  o.gemm_byte_term = true;
  o.min_launch_s = kEmptyKernelS;
  // The FP8 rows are DeepGEMM's, whose source picks a tile per shape (TilePolicy::kMinWaves).
  o.tile_policy["fp8"] = TilePolicy::kMinWaves;
  return o;
}

Calibration calibrate_from_published(const std::string& dir, const GpuSpec& gpu, int held_out_every,
                                     Provenance provenance) {
  std::vector<std::string> sources;
  std::vector<Measurement> ms = published_measurements(dir, &sources);
  mark_held_out_per_precision(ms, held_out_every);
  DeviceInfo device;
  device.name = gpu.name;
  device.sm_count = gpu.sm_count;
  SweepPlan sweep;
  sweep.name = "published";
  sweep.held_out_every = held_out_every;
  for (const Measurement& m : ms)
    if (std::find(sweep.precisions.begin(), sweep.precisions.end(), m.precision) == sweep.precisions.end())
      sweep.precisions.push_back(m.precision);
  std::sort(sweep.precisions.begin(), sweep.precisions.end());
  sweep.note = "published kernel-level measurements, no end-to-end figure; every " +
               std::to_string(held_out_every) + "-th row of each family and precision held out; GEMM tiles " +
               std::to_string(int(kPublishedTileM)) + "x" + std::to_string(int(kPublishedTileN)) +
               " with a per-byte term; rows:";
  for (const auto& s : sources) sweep.note += " " + s + ";";
  return calibrate(device, sweep, std::move(ms), {}, published_fit_options(gpu), std::move(provenance));
}

Calibration scale_calibration(const Calibration& c, const GpuSpec& from, const GpuSpec& to,
                              Provenance provenance) {
  const std::string src = c.source.empty() ? "calibration of " + c.device.name : c.source;
  if (c.device.name != from.name || c.device.sm_count != from.sm_count)
    throw CalibrationError(located_message(
        src, "/device", "a calibration of " + from.name + " (" + std::to_string(from.sm_count) + " SMs)",
        c.device.name + " (" + std::to_string(c.device.sm_count) + " SMs)"));
  const auto ratio = [&](double a, double b, const char* what) {
    if (!(a > 0) || !(b > 0))
      throw CalibrationError(located_message(
          src, "/device",
          std::string("a positive datasheet ") + what + " on " + from.name + " and " + to.name,
          std::to_string(b) + " and " + std::to_string(a)));
    return a / b;
  };
  const double mem = ratio(to.memory_bandwidth, from.memory_bandwidth, "memory bandwidth");
  const double bf16 = ratio(to.flops_bf16, from.flops_bf16, "BF16 peak");
  const double fp8 = ratio(to.flops_fp8, from.flops_fp8, "FP8 peak");
  Calibration out;
  out.device.name = to.name;
  out.device.sm_count = to.sm_count;
  out.sweep = c.sweep;
  out.sweep.name = "scaled";
  out.sweep.warmup = out.sweep.repetitions = 0;
  out.sweep.held_out_every = 0;
  const auto num = [](double v) {
    std::ostringstream o;
    o << std::setprecision(4) << v;
    return o.str();
  };
  out.sweep.note =
      "no kernel measured on " + to.name + ": the models of " + from.name + " carried by datasheet ratios (" +
      to.name + "/" + from.name + ": BF16 peak x" + num(bf16) + ", FP8 peak x" + num(fp8) +
      ", memory bandwidth x" + num(mem) + ", SMs " + std::to_string(from.sm_count) + " -> " +
      std::to_string(to.sm_count) +
      "); GEMM efficiencies, per-wave and launch costs and memory-bound fixed costs as measured on " +
      from.name + ". Source fit: " + c.sweep.note;
  for (const auto& [f, model] : c.models) {
    FamilyModel m = model;
    if (is_gemm_family(f)) {
      for (auto& [prec, g] : m.gemm) {
        g.peak_flops = prec == "bf16" ? to.flops_bf16 : to.flops_fp8;
        g.sm_count = to.sm_count;
        g.s_per_byte /= mem;
      }
    } else if (is_attention_family(f)) {
      m.stream.rate *= bf16;
      m.stream.s_per_score /= bf16;
      m.stream.s_per_query_row /= bf16;
    } else {
      m.stream.rate *= mem;
    }
    out.models[f] = m;
  }
  set_copy_floors(out.models);
  for (const auto& [f, stats] : c.held_out.families) out.held_out.families[f] = ErrorStats{};
  out.provenance = std::move(provenance);
  return out;
}

}  // namespace moesim::calibrate
