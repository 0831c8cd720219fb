#include "reports/accuracy_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "models/analytic.hpp"
#include "models/block_pricing.hpp"
#include "models/compute_cost.hpp"
#include "models/dispatch.hpp"
#include "models/network.hpp"
#include "models/workload.hpp"
#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"
#include "scenarios/text_input.hpp"

namespace moesim::reports {

namespace fs = std::filesystem;

namespace {

/// One data line of a kernel CSV, with what an error message needs to locate a field.
class CsvLine {
 public:
  CsvLine(std::string file, int line, const std::vector<std::string>& header, std::vector<std::string> fields)
      : file_(std::move(file)), line_(line), fields_(std::move(fields)) {
    for (std::size_t i = 0; i < header.size(); ++i) index_[header[i]] = i;
  }
  const std::string& text(const std::string& column) const { return fields_.at(index_.at(column)); }
  bool has(const std::string& column) const { return index_.count(column) > 0; }
  double number(const std::string& column, double lo, double hi) const {
    const std::string& t = text(column);
    std::size_t used = 0;
    double v = NAN;
    try {
      v = std::stod(t, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != t.size() || !std::isfinite(v) || v < lo || v > hi)
      throw ParseError(located_message(
          file_, where(column), "a number in [" + fmt_num(lo) + ", " + fmt_num(hi) + "]", "\"" + t + "\""));
    return v;
  }
  int integer(const std::string& column, int lo, int hi) const {
    const double v = number(column, lo, hi);
    if (v != std::floor(v))
      throw ParseError(located_message(file_, where(column), "an integer", "\"" + text(column) + "\""));
    return static_cast<int>(v);
  }
  std::string where(const std::string& column) const {
    return "line " + std::to_string(line_) + ", column " + column;
  }
  const std::string& file() const { return file_; }

 private:
  static std::string fmt_num(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
  }
  std::string file_;
  int line_;
  std::vector<std::string> fields_;
  std::map<std::string, std::size_t> index_;
};

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, ',')) out.push_back(cell);
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

enum class Kind { kAllToAll, kGemm, kAttention, kTrace, kScan };

const std::vector<std::string>& columns(Kind k) {
  // All-to-all rows hold published_gbps (normal kernels: bandwidth) or published_us (low-latency
  // kernels: latency); read_file checks that one of them is there.
  static const std::vector<std::string> a2a{"name",   "cluster",        "op",    "ep",
                                            "path",   "tokens",         "top_k", "node_limit",
                                            "kernel", "bytes_per_copy", "source"};
  static const std::vector<std::string> gemm{
      "name", "gpu", "table", "groups", "m_per_group", "n", "k", "published_tflops", "source"};
  static const std::vector<std::string> attn{"name",  "gpu",   "headdim",          "causal", "seqlen",
                                             "batch", "heads", "published_tflops", "source"};
  static const std::vector<std::string> trace{"name",     "scenario",     "pass",
                                              "category", "published_us", "source"};
  static const std::vector<std::string> scan{"name",       "gpu",          "batch",  "seqlen",
                                             "heads",      "headdim",      "dstate", "groups",
                                             "chunk_size", "published_us", "source"};
  return k == Kind::kAllToAll ? a2a
         : k == Kind::kGemm   ? gemm
         : k == Kind::kTrace  ? trace
         : k == Kind::kScan   ? scan
                              : attn;
}

// The catalog entry a row names ("catalog:NAME").
Json catalog_entry(const CsvLine& l, const std::string& column, CatalogKind kind, const Catalog& cat,
                   std::string* path) {
  std::string name;
  if (!is_catalog_ref(l.text(column), name))
    throw ParseError(located_message(l.file(), l.where(column), "a catalog reference \"catalog:NAME\"",
                                     "\"" + l.text(column) + "\""));
  *path = cat.path(kind, name, l.file(), l.where(column));
  return cat.load(kind, name, l.file(), l.where(column));
}

AccuracyRow base_row(const CsvLine& l, AccuracyGroup g, const char* quantity, const char* unit,
                     const char* published_column) {
  AccuracyRow r;
  r.group = g;
  r.name = l.text("name");
  r.quantity = quantity;
  r.unit = unit;
  r.published = l.number(published_column, 1e-9, 1e9);
  r.source = l.text("source");
  r.shared_prediction = true;
  return r;
}

// DeepEP's all-to-all kernels, uniform routing of `tokens` per GPU over an EP group laid out on the
// cluster's nodes, priced by the network model (NetworkModel::all_to_all):
// - kernel "normal": hierarchical dispatch (one NIC copy per destination node, NVLink fan-out). The
//   predicted bandwidth is DeepEP's "logical" bandwidth (tests/test_intranode.py, test_internode.py):
//   NVLink, the copies a GPU receives from every rank of the group, its own included; RDMA, one copy per
//   distinct destination node of each source token, its own node included; divided by the model's time
//   for the whole all-to-all (which moves only the copies that leave the GPU or node).
// - kernel "low_latency": every (token, expert) copy over the NIC (EpGeometry::low_latency); the row
//   holds the kernel's latency, and the prediction is the model's time.
// - kernel "alltoall": Megatron-Core's NCCL all-to-all of the permuted rows, one copy per (token, expert)
//   slot straight to the expert's GPU (flat dispatch); "hybridep": HybridEP, hierarchical like DeepEP's
//   normal kernels. Both rows hold latencies.
AccuracyRow all_to_all_row(const CsvLine& l, const Catalog& cat) {
  const bool latency = l.has("published_us");
  AccuracyRow r = latency ? base_row(l, AccuracyGroup::kAllToAll, "latency", "us", "published_us")
                          : base_row(l, AccuracyGroup::kAllToAll, "bandwidth", "GB/s", "published_gbps");
  std::string path;
  const ClusterSpec c = cluster_from_json(catalog_entry(l, "cluster", CatalogKind::kCluster, cat, &path),
                                          path, "", cat, nullptr);
  const std::string& link = l.text("path");
  if (link != "NVLink" && link != "RDMA")
    throw ParseError(located_message(l.file(), l.where("path"), "NVLink or RDMA", "\"" + link + "\""));
  const std::string& kernel = l.text("kernel");
  if (kernel != "normal" && kernel != "low_latency" && kernel != "alltoall" && kernel != "hybridep")
    throw ParseError(located_message(l.file(), l.where("kernel"), "normal, low_latency, alltoall or hybridep",
                                     "\"" + kernel + "\""));
  models::EpGeometry g;
  g.ep = l.integer("ep", 1, c.gpus());
  g.per_node = std::min(g.ep, c.gpus_per_node);
  g.top_k = l.integer("top_k", 1, 1 << 16);
  g.node_limit = l.integer("node_limit", 0, 1 << 16);
  g.hierarchical = kernel == "normal" || kernel == "hybridep";
  g.low_latency = kernel == "low_latency";
  models::DispatchStats stats;
  if (l.has("groups")) {
    // Group-limited routing (optional columns groups, topk_groups): uniform shares over `experts` experts
    // placed contiguously, group gr holding experts [gr · experts/groups, (gr + 1) · experts/groups).
    const int experts = l.integer("experts", 1, 1 << 20);
    g.groups = l.integer("groups", 1, experts);
    g.topk_groups = l.integer("topk_groups", 1, g.groups);
    if (experts % g.groups != 0 || experts % g.ep != 0)
      throw ParseError(located_message(l.file(), l.where("groups"),
                                       "groups and ep dividing experts (" + std::to_string(experts) + ")",
                                       std::to_string(g.groups) + " groups, EP" + std::to_string(g.ep)));
    std::vector<double> group_rank(static_cast<std::size_t>(g.groups) * g.ep, 0.0);
    for (int e = 0; e < experts; ++e)
      group_rank[static_cast<std::size_t>(e / (experts / g.groups)) * g.ep + e / (experts / g.ep)] +=
          1.0 / experts;
    stats = models::dispatch_stats_grouped(group_rank, g);
  } else {
    stats = models::dispatch_stats(std::vector<double>(static_cast<std::size_t>(g.ep), 1.0 / g.ep), g);
  }
  const double tokens = l.number("tokens", 1, 1e9), copy = l.number("bytes_per_copy", 1, 1e9);
  const auto bytes = models::all_to_all_bytes(stats, g, tokens, copy);
  const double t = models::NetworkModel(c).all_to_all(bytes);
  if (latency) {
    r.analytic = t > 0 ? t * 1e6 : NAN;
    return r;
  }
  double copies = 0;
  if (link == "NVLink")
    copies = *std::max_element(stats.hit_rank.begin(), stats.hit_rank.end()) * g.ep;
  else
    for (double h : stats.hit_node) copies += h;
  r.analytic = t > 0 ? tokens * copies * copy / t / 1e9 : NAN;
  return r;
}

// The compute cost model the engines price this row's GPU with, on all of its SMs (no communication SMs
// reserved), for FP8 GEMMs under the default (blockwise) recipe: the GPU's default calibration when its
// catalog entry names one, else the roofline.
std::unique_ptr<models::ComputeCostModel> cost_model(const CsvLine& l, const Catalog& cat) {
  std::string path;
  Scenario s;
  s.cluster.gpu = gpu_from_json(catalog_entry(l, "gpu", CatalogKind::kGpu, cat, &path), path, "");
  s.workload.comm_sms = 0;
  s.workload.precision = Precision::kFp8;
  if (!s.cluster.gpu.calibration.empty()) {
    s.gpu_calibration = gpu_calibration_path(s.cluster.gpu, cat, path, "/calibration");
    s.gpu_calibration_text = read_calibration_text(s.gpu_calibration);
  }
  return models::make_compute_cost_model(s);
}

// DeepGEMM FP8: the engines' compute cost model (cost_model).
AccuracyRow gemm_row(const CsvLine& l, const Catalog& cat) {
  AccuracyRow r = base_row(l, AccuracyGroup::kGemm, "tflops", "TFLOP/s", "published_tflops");
  const std::string& table = l.text("table");
  const int groups = l.integer("groups", 1, 1 << 16);
  const double m = l.number("m_per_group", 1, 1e9), n = l.number("n", 1, 1e9), k = l.number("k", 1, 1e9);
  const auto model = cost_model(l, cat);
  double t = 0;
  if (table == "dense") {
    t = model->gemm(m, n, k, Precision::kFp8);
  } else if (table == "grouped_contiguous" || table == "grouped_masked") {
    const std::vector<double> rows(static_cast<std::size_t>(groups), m);
    t = model->grouped_gemm(rows, n, k, Precision::kFp8);
  } else if (table == "dense_wgrad") {
    // A weight gradient dW[m×n] reduced over k tokens.
    t = model->weight_gradient_gemm(m, n, k, Precision::kFp8);
  } else if (table == "k_grouped_wgrad") {
    // One dW[m×n] per group over k tokens each: the weight gradients of a forward of k rows per group
    // by n, reducing over m.
    const std::vector<double> tokens(static_cast<std::size_t>(groups), k);
    t = model->grouped_weight_gradient_gemm(tokens, n, m, Precision::kFp8);
  } else {
    throw ParseError(located_message(
        l.file(), l.where("table"),
        "dense, grouped_contiguous, grouped_masked, dense_wgrad or k_grouped_wgrad", "\"" + table + "\""));
  }
  r.analytic = t > 0 ? 2.0 * groups * m * n * k / t / 1e12 : NAN;
  return r;
}

// FlashAttention-3 forward: the engines' fused attention (cost_model) for the same shape.
AccuracyRow attention_row(const CsvLine& l, const Catalog& cat) {
  AccuracyRow r = base_row(l, AccuracyGroup::kAttention, "tflops", "TFLOP/s", "published_tflops");
  models::AttentionShape s;
  const double seq = l.number("seqlen", 1, 1e9);
  s.query_tokens = l.number("batch", 1, 1e9) * seq;
  s.kv_tokens = seq;
  s.heads = l.number("heads", 1, 1e6);
  s.qk_dim = s.v_dim = l.number("headdim", 1, 1e6);
  s.causal = l.integer("causal", 0, 1) == 1;
  const double t = cost_model(l, cat)->attention(s, false);
  r.analytic = t > 0 ? s.forward_flops() / t / 1e12 : NAN;
  return r;
}

// Mamba-2's chunk-scan forward kernel at a published shape: the engines' price of op mamba.ssd_scan
// (models::ssd_chunk_scan on the GPU's cost model), in microseconds.
AccuracyRow scan_row(const CsvLine& l, const Catalog& cat) {
  AccuracyRow r = base_row(l, AccuracyGroup::kScan, "latency", "us", "published_us");
  models::SsdScanShape s;
  s.sequences = l.number("batch", 1, 1e6);
  s.seq_len = l.number("seqlen", 1, 1e9);
  s.heads = l.number("heads", 1, 1e6);
  s.head_dim = l.number("headdim", 1, 1e6);
  s.state_dim = l.number("dstate", 1, 1e6);
  s.groups = l.number("groups", 1, 1e6);
  s.chunk = l.number("chunk_size", 1, 1e6);
  const double t = models::ssd_chunk_scan(*cost_model(l, cat), s).seconds;
  r.analytic = t > 0 ? t * 1e6 : NAN;
  return r;
}

// A published kernel trace of a training step, summed per MoE layer: the same sum over the ops of the
// first MoE block of the named validation scenario (one microbatch, each op alone at its price on the
// SMs left after comm_sms), by pass (F, B, W or any of them together) and category (gemm: dense and
// grouped GEMMs; attention; other: the memory-bound kernels; all: every op but communication), or
// (category pair) the analytic engine's overlapped F&B pair on the scenario's critical rank.
class TraceRows {
 public:
  explicit TraceRows(const Catalog& cat) : cat_(cat) {}
  AccuracyRow row(const CsvLine& l) {
    AccuracyRow r = base_row(l, AccuracyGroup::kTrace, "time_per_layer", "us", "published_us");
    const std::string& passes = l.text("pass");
    if (passes.empty() || passes.find_first_not_of("FBW") != std::string::npos)
      throw ParseError(located_message(l.file(), l.where("pass"), "passes out of F, B and W (\"F\", \"BW\")",
                                       "\"" + passes + "\""));
    const std::string& category = l.text("category");
    if (category != "gemm" && category != "attention" && category != "other" && category != "all" &&
        category != "pair")
      throw ParseError(located_message(l.file(), l.where("category"), "gemm, attention, other, all or pair",
                                       "\"" + category + "\""));
    if (category == "pair") {
      // An overlapped F&B pair as the analytic engine runs it on the critical rank (ChunkTimes::fb_pair).
      r.quantity = "pair_time";
      r.analytic = built(l).pair_seconds * 1e6;
      return r;
    }
    const std::vector<models::Op>& ops = built(l).ops;
    double seconds = 0;
    for (const models::Op& op : ops) {
      if (op.kind == models::OpKind::kComm) continue;
      const char pass = op.pass == models::Pass::kForward         ? 'F'
                        : op.pass == models::Pass::kBackwardInput ? 'B'
                                                                  : 'W';
      if (passes.find(pass) == std::string::npos) continue;
      const bool gemm = op.kind == models::OpKind::kGemm || op.kind == models::OpKind::kGroupedGemm;
      const bool attention = op.kind == models::OpKind::kAttention;
      const bool counted = category == "all" || (category == "gemm" && gemm) ||
                           (category == "attention" && attention) ||
                           (category == "other" && op.kind == models::OpKind::kMemory);
      if (counted) seconds += op.seconds;
    }
    r.analytic = seconds * 1e6;
    return r;
  }

 private:
  struct Built {
    std::vector<models::Op> ops;  ///< the first MoE block's
    double pair_seconds = 0;      ///< an overlapped pair of two chunks of MoE layers only (0: none)
  };
  // A DualPipe pair as the published trace shows it, two chunks of MoE layers only: on the first rank r whose
  // stages r and pp-1-r hold neither the embedding, the head nor a dense layer, the mean of its two kinds
  // of pair (stage r's forward beside stage pp-1-r's backward, and the reverse). Other schedules: the
  // analytic engine's pair on the critical rank.
  static double trace_pair(const Scenario& s, const models::Workload& w) {
    const int pp = s.parallelism.pp;
    if (s.parallelism.schedule == Schedule::kDualPipe) {
      const auto moe_only = [&w](int stage) {
        const models::RankWork& rw = w.ranks[static_cast<std::size_t>(stage)];
        if (rw.embedding || rw.head || rw.blocks.empty()) return false;
        for (int b : rw.blocks)
          if (w.blocks[static_cast<std::size_t>(b)].moe_index < 0) return false;
        return true;
      };
      for (int r = 0; r < pp / 2; ++r)
        if (moe_only(r) && moe_only(pp - 1 - r))
          return 0.5 * (models::overlapped_pair_seconds(w, r, pp - 1 - r) +
                        models::overlapped_pair_seconds(w, pp - 1 - r, r));
    }
    return models::evaluate_analytic(s, w).chunk.fb_pair;
  }
  // The scenario, its path relative to the CSV's folder's parent (the validation folder), built once.
  const Built& built(const CsvLine& l) {
    const fs::path path = fs::path(l.file()).parent_path().parent_path() / l.text("scenario");
    const std::string key = path.string();
    auto it = built_.find(key);
    if (it == built_.end()) {
      std::error_code ec;
      if (!fs::is_regular_file(path, ec))
        throw ParseError(located_message(l.file(), l.where("scenario"),
                                         "a validation scenario beside the kernels folder",
                                         "\"" + key + "\""));
      const Scenario s = load_scenario(key, cat_);
      const auto cm = models::make_compute_cost_model(s);
      const models::NetworkModel net(s.cluster);
      const models::Workload w = models::build_workload(s, *cm, net);
      Built b;
      for (std::size_t i = 0; i < w.blocks.size(); ++i)
        if (w.blocks[i].kind == models::BlockKind::kMoe) {
          b.ops = models::block_ops(w, static_cast<int>(i));
          break;
        }
      if (b.ops.empty())
        throw ParseError(located_message(l.file(), l.where("scenario"), "a scenario with an MoE layer",
                                         "\"" + key + "\""));
      b.pair_seconds = trace_pair(s, w);
      it = built_.emplace(key, std::move(b)).first;
    }
    return it->second;
  }
  const Catalog& cat_;
  std::map<std::string, Built> built_;
};

void read_file(const std::string& path, const Catalog& cat, std::vector<AccuracyRow>& rows) {
  TraceRows traces(cat);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot be read");
  std::string line;
  std::vector<std::string> header;
  Kind kind = Kind::kAllToAll;
  for (int no = 1;; ++no) {
    const LineRead got = read_line(in, line);
    if (got == LineRead::kEnd) break;
    if (got == LineRead::kTooLong)
      throw ParseError(path + ":" + std::to_string(no) + ": expected a line of at most " +
                       describe_bytes(kMaxLineBytes) + ", found a longer one");
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> fields = split(line);
    if (header.empty()) {
      header = fields;
      const auto has = [&](const char* c) {
        return std::find(header.begin(), header.end(), c) != header.end();
      };
      if (has("bytes_per_copy"))
        kind = Kind::kAllToAll;
      else if (has("dstate"))
        kind = Kind::kScan;
      else if (has("category"))
        kind = Kind::kTrace;
      else if (has("m_per_group"))
        kind = Kind::kGemm;
      else if (has("headdim"))
        kind = Kind::kAttention;
      else
        throw ParseError(located_message(path, "line " + std::to_string(no),
                                         "a header with bytes_per_copy (all-to-all), m_per_group (GEMM), "
                                         "dstate (scan), headdim (attention) or category (kernel trace)",
                                         "\"" + line + "\""));
      for (const auto& c : columns(kind))
        if (!has(c.c_str()))
          throw ParseError(located_message(path, "line " + std::to_string(no), "a column \"" + c + "\"",
                                           "\"" + line + "\""));
      if (kind == Kind::kAllToAll && has("published_gbps") == has("published_us"))
        throw ParseError(located_message(path, "line " + std::to_string(no),
                                         "one column \"published_gbps\" (bandwidth) or \"published_us\" "
                                         "(latency)",
                                         "\"" + line + "\""));
      continue;
    }
    if (fields.size() != header.size())
      throw ParseError(located_message(path, "line " + std::to_string(no),
                                       std::to_string(header.size()) + " comma-separated fields",
                                       std::to_string(fields.size())));
    const CsvLine l(path, no, header, std::move(fields));
    if (kind == Kind::kAllToAll) rows.push_back(all_to_all_row(l, cat));
    if (kind == Kind::kGemm) rows.push_back(gemm_row(l, cat));
    if (kind == Kind::kAttention) rows.push_back(attention_row(l, cat));
    if (kind == Kind::kTrace) rows.push_back(traces.row(l));
    if (kind == Kind::kScan) rows.push_back(scan_row(l, cat));
  }
}

}  // namespace

std::vector<AccuracyRow> kernel_rows(const std::string& dir, const Catalog& cat) {
  std::vector<AccuracyRow> rows;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return rows;
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".csv") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) read_file(f, cat, rows);
  // Groups in a fixed order (all-to-all, GEMM, attention, scan, trace), files' order within a group.
  std::stable_sort(rows.begin(), rows.end(),
                   [](const AccuracyRow& a, const AccuracyRow& b) { return a.group < b.group; });
  return rows;
}

}  // namespace moesim::reports
