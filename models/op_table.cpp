#include "models/op_table.hpp"

#include "models/block_pricing.hpp"

namespace moesim::models {

const char* block_kind_name(BlockKind k) {
  switch (k) {
    case BlockKind::kDense:
      return "dense";
    case BlockKind::kMoe:
      return "moe";
    case BlockKind::kMtp:
      return "mtp";
    case BlockKind::kMamba:
      return "mamba";
    case BlockKind::kAttention:
      return "attention";
    case BlockKind::kGatedDeltaNet:
      return "gdn";
  }
  return "";
}

namespace {

// What prices a collective (models/network.hpp).
std::string network_entry(CommKind c) {
  switch (c) {
    case CommKind::kExpertDispatch:
    case CommKind::kExpertCombine:
      return "network all_to_all (scale_up/scale_out all_to_all_efficiency, cluster all_to_all_overhead)";
    case CommKind::kTensor:
    case CommKind::kExpertTensor:
      return "network ring collective (scale_up/scale_out bandwidth and latency)";
    case CommKind::kContext:
      return "network send_recv (scale_up/scale_out bandwidth and latency)";
    case CommKind::kNone:
      break;
  }
  return "";
}

void add_stage(const Scenario& s, const Workload& w, const ComputeCostModel& cm, const NetworkModel& net,
               int rank, int stage, double count, std::vector<OpRow>& rows) {
  const RankWork& rw = w.ranks[static_cast<std::size_t>(stage)];
  const PricingContext c = pricing_context(s, cm, net, w.tokens_per_microbatch);
  const auto row = [&](int layer, const char* block, const char* name, Pass p, OpKind k, double flops,
                       double bytes, double seconds, Precision prec) {
    OpRow r;
    r.pp_rank = rank;
    r.stage = stage;
    r.layer = layer;
    r.block = block;
    r.name = name;
    r.pass = p;
    r.kind = k;
    r.count = count;
    r.flops = flops;
    r.bytes = bytes;
    r.seconds = seconds;
    r.priced_by = cm.priced_by(k, prec);
    rows.push_back(std::move(r));
  };
  if (rw.embedding) {
    // price_embedding: the lookup (F), its gradient (B) and the FP32 scatter-add (W).
    const double bytes = c.T_sp * s.model.hidden * kActivationBytes;
    const double b[3] = {bytes, 2 * bytes, 2 * c.T * s.model.hidden * 4.0};
    for (int p = 0; p < 3; ++p)
      row(-1, "embedding", "embedding", static_cast<Pass>(p), OpKind::kMemory, 0, b[p],
          rw.embedding_seconds[p], Precision::kBf16);
  }
  for (int b : rw.blocks) {
    const BlockCost& bc = w.blocks[static_cast<std::size_t>(b)];
    for (const Op& op : block_ops(w, b)) {
      rows.push_back(op_row(op, bc.layer, block_kind_name(bc.kind), count, cm));
      rows.back().pp_rank = rank;
      rows.back().stage = stage;
    }
  }
  if (rw.head) {
    const HeadCost h = price_head(c);
    for (int p = 0; p < 3; ++p)
      row(-1, "head", "head", static_cast<Pass>(p), OpKind::kGemm, h.flops, 0, rw.head_seconds[p],
          Precision::kBf16);
  }
}

}  // namespace

OpRow op_row(const Op& op, int layer, const std::string& block, double count, const ComputeCostModel& cm) {
  const bool compute = op.kind != OpKind::kMemory && op.kind != OpKind::kComm;
  OpRow r;
  r.layer = layer;
  r.block = block;
  r.name = op.name;
  r.pass = op.pass;
  r.kind = op.kind;
  r.recompute = op.recompute;
  r.count = count;
  r.flops = compute ? op.work : 0;
  r.bytes = compute ? 0 : op.work;
  r.seconds = op.seconds;
  r.priced_by = op_priced_by(op, cm);
  return r;
}

std::string op_priced_by(const Op& op, const ComputeCostModel& cm) {
  if (op.kind == OpKind::kComm) return network_entry(op.comm);
  if (op.kind == OpKind::kMemory) return cm.priced_by_memory(op.memory);
  if (op.pass == Pass::kBackwardWeight) return cm.priced_by_weight_gradient(op.kind, op.precision);
  return cm.priced_by(op.kind, op.precision);
}

const char* pass_name(Pass p) {
  switch (p) {
    case Pass::kForward:
      return "F";
    case Pass::kBackwardInput:
      return "B";
    case Pass::kBackwardWeight:
      return "W";
  }
  return "";
}

const char* op_kind_name(OpKind k) {
  switch (k) {
    case OpKind::kGemm:
      return "gemm";
    case OpKind::kGroupedGemm:
      return "grouped_gemm";
    case OpKind::kAttention:
      return "attention";
    case OpKind::kMemory:
      return "memory";
    case OpKind::kComm:
      return "comm";
  }
  return "";
}

std::vector<OpRow> op_rows(const Scenario& s, const Workload& w, const ComputeCostModel& cm,
                           const NetworkModel& net) {
  std::vector<OpRow> rows;
  const int pp = s.parallelism.pp;
  const double M = s.layout.microbatches;
  const bool dualpipe = s.parallelism.schedule == Schedule::kDualPipe;
  for (int rank = 0; rank < pp; ++rank) {
    if (!dualpipe) {
      add_stage(s, w, cm, net, rank, rank, M, rows);
      continue;
    }
    add_stage(s, w, cm, net, rank, rank, M / 2, rows);
    if (pp - 1 - rank != rank) add_stage(s, w, cm, net, rank, pp - 1 - rank, M / 2, rows);
  }
  return rows;
}

std::vector<OpRow> op_rows(const Scenario& s, const RoutingInput& routing) {
  const auto cm = make_compute_cost_model(s);
  const NetworkModel net(s.cluster);
  const Workload w = build_workload(s, *cm, net, routing_override(routing));
  return op_rows(s, w, *cm, net);
}

std::vector<std::vector<double>> expert_gpu_loads(const Workload& w) {
  std::vector<std::vector<double>> out;
  out.reserve(w.moe_detail_index.size());
  for (std::size_t i = 0; i < w.moe_detail_index.size(); ++i) {
    const MoeLayerDetail& d = moe_detail_of(w, static_cast<int>(i));
    double sum = 0;
    for (double x : d.rank_load) sum += x;
    const double mean = d.rank_load.empty() ? 0 : sum / static_cast<double>(d.rank_load.size());
    std::vector<double> row;
    row.reserve(d.rank_load.size());
    for (double x : d.rank_load) row.push_back(mean > 0 ? x / mean : 1.0);
    out.push_back(std::move(row));
  }
  return out;
}

RunTables run_tables(const Scenario& s, const RoutingInput& routing) {
  const auto cm = make_compute_cost_model(s);
  const NetworkModel net(s.cluster);
  const Workload w = build_workload(s, *cm, net, routing_override(routing));
  return RunTables{op_rows(s, w, *cm, net), expert_gpu_loads(w)};
}

}  // namespace moesim::models
