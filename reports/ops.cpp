#include "reports/ops.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <map>
#include <tuple>

#include "reports/internal/format.hpp"

namespace moesim::reports {

using internal::fmt;
using models::OpRow;

namespace {

// A CSV field: quoted (quotes doubled) when it holds a comma, a quote or a line break.
std::string csv_field(const std::string& v) {
  if (v.find_first_of(",\"\n\r") == std::string::npos) return v;
  std::string q = "\"";
  for (char ch : v) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

// The columns an op row has in every listing (training and serving).
Json op_fields(const OpRow& r) {
  return Json{{"layer", r.layer},
              {"block", r.block},
              {"op", r.name},
              {"kind", models::op_kind_name(r.kind)},
              {"count", r.count},
              {"flops", r.flops},
              {"bytes", r.bytes},
              {"seconds", r.seconds},
              {"total_seconds", r.count * r.seconds},
              {"priced_by", r.priced_by}};
}

}  // namespace

void write_ops_csv(std::ostream& out, const std::vector<OpRow>& rows) {
  out << "pp_rank,stage,layer,block,op,pass,kind,recompute,count,flops,bytes,seconds,total_seconds,priced_"
         "by\n"
      << std::setprecision(10);
  for (const OpRow& r : rows)
    out << r.pp_rank << "," << r.stage << "," << r.layer << "," << r.block << "," << csv_field(r.name) << ","
        << models::pass_name(r.pass) << "," << models::op_kind_name(r.kind) << "," << (r.recompute ? 1 : 0)
        << "," << r.count << "," << r.flops << "," << r.bytes << "," << r.seconds << ","
        << r.count * r.seconds << "," << csv_field(r.priced_by) << "\n";
}

Json ops_json(const std::vector<OpRow>& rows) {
  Json a = Json::array();
  for (const OpRow& r : rows) {
    Json j = op_fields(r);
    j["pp_rank"] = r.pp_rank;
    j["stage"] = r.stage;
    j["pass"] = models::pass_name(r.pass);
    j["recompute"] = r.recompute;
    a.push_back(std::move(j));
  }
  return a;
}

void write_ops_table(std::ostream& out, const std::vector<OpRow>& rows, int rank) {
  OpsTableText t;
  t.title = "ops of pipeline rank " + std::to_string(rank) +
            ", one GPU, one step (the busiest GPU's expert ops); every op in its own stream, not overlapped";
  t.after_total =
      "of op time per step (the step overlaps communication and adds the pipeline bubble, data-parallel sync "
      "and optimizer: see the result)";
  write_ops_table(out, rows, rank, t);
}

void write_serving_ops_csv(std::ostream& out, const std::vector<std::vector<OpRow>>& per_instance,
                           const Scenario& s) {
  out << "instance,role,layer,block,op,kind,count,flops,bytes,seconds,total_seconds,priced_by\n"
      << std::setprecision(10);
  for (std::size_t k = 0; k < per_instance.size(); ++k)
    for (const OpRow& r : per_instance[k])
      out << k << "," << to_string(s.serving.instances[k].role) << "," << r.layer << "," << r.block << ","
          << csv_field(r.name) << "," << models::op_kind_name(r.kind) << "," << r.count << "," << r.flops
          << "," << r.bytes << "," << r.seconds << "," << r.count * r.seconds << "," << csv_field(r.priced_by)
          << "\n";
}

Json serving_ops_json(const std::vector<std::vector<OpRow>>& per_instance, const Scenario& s) {
  Json a = Json::array();
  for (std::size_t k = 0; k < per_instance.size(); ++k)
    for (const OpRow& r : per_instance[k]) {
      Json j = op_fields(r);
      j["instance"] = k;
      j["role"] = to_string(s.serving.instances[k].role);
      a.push_back(std::move(j));
    }
  return a;
}

void write_ops_table(std::ostream& out, const std::vector<OpRow>& rows, int rank, const OpsTableText& text) {
  struct Sum {
    const OpRow* first = nullptr;
    double count = 0, total = 0, flops = 0, bytes = 0;
    bool mixed = false;  // per-execution time differs between blocks (skewed routing, windows)
  };
  std::map<std::tuple<std::string, int, bool>, Sum> sums;
  std::vector<std::tuple<std::string, int, bool>> order;
  double all = 0;
  for (const OpRow& r : rows) {
    if (r.pp_rank != rank) continue;
    const auto key = std::make_tuple(r.name, static_cast<int>(r.pass), r.recompute);
    Sum& s = sums[key];
    if (s.first == nullptr) {
      s.first = &r;
      order.push_back(key);
    } else if (r.seconds != s.first->seconds) {
      s.mixed = true;
    }
    s.count += r.count;
    s.total += r.count * r.seconds;
    s.flops += r.count * r.flops;
    s.bytes += r.count * r.bytes;
    all += r.count * r.seconds;
  }
  // Largest total first; ties in first-seen order (stable).
  std::stable_sort(order.begin(), order.end(),
                   [&](const auto& a, const auto& b) { return sums[a].total > sums[b].total; });
  out << text.title << "\n";
  out << std::left << std::setw(28) << "op" << std::setw(5) << "pass" << std::setw(13) << "kind" << std::right
      << std::setw(9) << "count" << std::setw(12) << "TFLOP/exec" << std::setw(11) << "GB/exec"
      << std::setw(12) << "us/exec" << std::setw(11) << text.heading << std::setw(8) << "share"
      << "  priced by\n";
  for (const auto& key : order) {
    const Sum& s = sums[key];
    const OpRow& r = *s.first;
    const std::string name = r.name + (r.recompute ? " (rc)" : "");
    out << std::left << std::setw(28) << name << std::setw(5) << models::pass_name(r.pass) << std::setw(13)
        << models::op_kind_name(r.kind) << std::right << std::setw(9)
        << fmt(s.count == std::floor(s.count) ? "%.0f" : "%.2f", s.count) << std::setw(12)
        << (s.flops > 0 ? fmt("%.4f", s.flops / s.count / 1e12) : std::string("-")) << std::setw(11)
        << (s.bytes > 0 ? fmt("%.4f", s.bytes / s.count / 1e9) : std::string("-")) << std::setw(12)
        << fmt(s.mixed ? "~%.1f" : "%.1f", s.total / s.count * 1e6) << std::setw(11)
        << fmt("%.4f", s.total * text.scale) << std::setw(8)
        << fmt("%.1f%%", all > 0 ? 100 * s.total / all : 0.0) << "  " << r.priced_by << "\n";
  }
  out << "total " << fmt("%.4f", all * text.scale) << " " << text.unit << " " << text.after_total << "\n";
}

}  // namespace moesim::reports
