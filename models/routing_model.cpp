#include "models/routing_model.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>

#include "models/placement.hpp"

namespace moesim::models {

SlotMap SlotMap::from_assignment(const std::vector<int>& expert_rank, int ranks) {
  SlotMap m;
  m.ranks = ranks;
  m.experts = static_cast<int>(expert_rank.size());
  m.slots.resize(static_cast<std::size_t>(ranks));
  std::vector<int> per_rank(static_cast<std::size_t>(ranks), 0);
  for (int r : expert_rank) ++per_rank[static_cast<std::size_t>(r)];
  for (int r = 0; r < ranks; ++r)
    m.slots[static_cast<std::size_t>(r)].reserve(static_cast<std::size_t>(per_rank[r]));
  for (int e = 0; e < m.experts; ++e) m.slots[expert_rank[e]].push_back({e, 1.0});
  return m;
}

SlotMap SlotMap::from_phy2log(const std::vector<int>& phy2log, int ranks, int experts) {
  SlotMap m;
  m.ranks = ranks;
  m.experts = experts;
  m.slots.resize(static_cast<std::size_t>(ranks));
  std::vector<int> replicas(static_cast<std::size_t>(experts), 0);
  for (int e : phy2log) ++replicas[e];
  const int per_rank = static_cast<int>(phy2log.size()) / ranks;
  for (std::size_t p = 0; p < phy2log.size(); ++p)
    m.slots[p / per_rank].push_back({phy2log[p], 1.0 / replicas[phy2log[p]]});
  return m;
}

std::vector<std::vector<int>> SlotMap::replica_ranks() const {
  std::vector<std::vector<int>> out(static_cast<std::size_t>(experts));
  for (int r = 0; r < ranks; ++r)
    for (const auto& [e, frac] : slots[r]) out[e].push_back(r);
  return out;
}

std::pair<double, double> max_mean_cv(const std::vector<double>& v) {
  if (v.empty()) return {1.0, 0.0};
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
  if (mean <= 0) return {1.0, 0.0};
  double var = 0, mx = v[0];
  for (double x : v) {
    var += (x - mean) * (x - mean);
    mx = std::max(mx, x);
  }
  return {mx / mean, std::sqrt(var / v.size()) / mean};
}

namespace {

int per_node_of(const EpGeometry& g) {
  return std::max(1, std::min(g.per_node, g.ep));
}

// Straggler rows and a mean-load rank's rows from per-rank per-slot rows: `rows(r)` gives rank r's, for
// `ranks` ranks.
template <class Rows>
void finish_rows_of(std::size_t ranks, const Rows& rows, LayerRouting& out) {
  std::vector<double> per_rank(ranks, 0.0);
  for (std::size_t r = 0; r < ranks; ++r) {
    const std::span<const double> x = rows(r);
    per_rank[r] = std::accumulate(x.begin(), x.end(), 0.0);
  }
  out.rank_rows = per_rank;
  const auto it = std::max_element(per_rank.begin(), per_rank.end());
  const int straggler = static_cast<int>(it - per_rank.begin());
  const std::span<const double> top = rows(static_cast<std::size_t>(straggler));
  out.rows.assign(top.begin(), top.end());
  const double mean = std::accumulate(per_rank.begin(), per_rank.end(), 0.0) / per_rank.size();
  // A rank with the mean load: the straggler's slot structure scaled to the mean.
  out.mean_rank_rows = out.rows;
  const double scale = *it > 0 ? mean / *it : 0.0;
  for (auto& x : out.mean_rank_rows) x *= scale;
  auto [mx, cv] = max_mean_cv(per_rank);
  out.summary.max_over_mean_gpu = mx;
  out.summary.cv_gpu = cv;
  out.summary.straggler_rows = *it;
  out.summary.mean_rows = mean;
  out.stats.straggler = straggler;
  out.stats.max_over_mean = mx;
}

void finish_rows(const std::vector<std::vector<double>>& slot_rows, LayerRouting& out) {
  finish_rows_of(
      slot_rows.size(), [&slot_rows](std::size_t r) { return std::span<const double>(slot_rows[r]); }, out);
}

LayerRouting route_expected_uncached(const std::vector<double>& shares, const SlotMap& slots,
                                     const RoutingContext& ctx);

// The inputs of one route_expected call, compared exactly: equal inputs give the same result bit for bit.
// The slot map is kept flattened (one array of slots and one of per-rank counts) so that keeping a key
// costs three allocations whatever the EP degree.
struct RouteKey {
  std::vector<double> shares;
  int ranks = 0, experts = 0;
  std::vector<std::pair<int, double>> slots;  ///< every rank's slots in rank order
  std::vector<std::size_t> per_rank;          ///< how many of them each rank holds
  RoutingContext ctx;

  RouteKey(const std::vector<double>& sh, const SlotMap& sl, const RoutingContext& c)
      : shares(sh), ranks(sl.ranks), experts(sl.experts), ctx(c) {
    std::size_t n = 0;
    for (const auto& r : sl.slots) n += r.size();
    slots.reserve(n);
    per_rank.reserve(sl.slots.size());
    for (const auto& r : sl.slots) {
      slots.insert(slots.end(), r.begin(), r.end());
      per_rank.push_back(r.size());
    }
  }

  bool same_slots(const SlotMap& sl) const {
    if (sl.ranks != ranks || sl.experts != experts || sl.slots.size() != per_rank.size()) return false;
    std::size_t at = 0;
    for (std::size_t r = 0; r < per_rank.size(); ++r) {
      const auto& mine = sl.slots[r];
      if (mine.size() != per_rank[r] || !std::equal(mine.begin(), mine.end(), slots.begin() + at))
        return false;
      at += per_rank[r];
    }
    return true;
  }

  bool same(const std::vector<double>& sh, const SlotMap& sl, const RoutingContext& c) const {
    const EpGeometry &a = ctx.geo, &b = c.geo;
    return a.ep == b.ep && a.per_node == b.per_node && a.top_k == b.top_k && a.node_limit == b.node_limit &&
           a.hierarchical == b.hierarchical && a.low_latency == b.low_latency && a.groups == b.groups &&
           a.topk_groups == b.topk_groups && ctx.experts == c.experts &&
           ctx.tokens_per_source == c.tokens_per_source && ctx.capacity_factor == c.capacity_factor &&
           ctx.bytes_per_copy == c.bytes_per_copy && ctx.want_pair_bytes == c.want_pair_bytes &&
           shares == sh && same_slots(sl);
  }
};

}  // namespace

// Layouts that share an EP group (the planner prices thousands that differ only in TP, PP or batch) route
// the same way: the last few results are kept per thread and returned for exactly equal inputs.
LayerRouting route_expected(const std::vector<double>& shares, const SlotMap& slots,
                            const RoutingContext& ctx) {
  if (ctx.want_pair_bytes) return route_expected_uncached(shares, slots, ctx);  // ep x ep matrices: not kept
  constexpr std::size_t kKept = 8;
  thread_local std::vector<std::pair<RouteKey, LayerRouting>> kept;
  for (std::size_t i = 0; i < kept.size(); ++i) {
    if (!kept[i].first.same(shares, slots, ctx)) continue;
    if (i > 0)
      std::rotate(kept.begin(), kept.begin() + static_cast<std::ptrdiff_t>(i),
                  kept.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    return kept.front().second;
  }
  LayerRouting out = route_expected_uncached(shares, slots, ctx);
  if (kept.size() == kKept) kept.pop_back();
  kept.insert(kept.begin(), {RouteKey{shares, slots, ctx}, out});
  return out;
}

namespace {

LayerRouting route_expected_uncached(const std::vector<double>& shares, const SlotMap& slots,
                                     const RoutingContext& ctx) {
  LayerRouting out;
  const EpGeometry& g = ctx.geo;
  std::vector<double> rank_share(static_cast<std::size_t>(slots.ranks), 0.0);
  for (int r = 0; r < slots.ranks; ++r)
    for (const auto& [e, frac] : slots.slots[r]) rank_share[r] += shares[e] * frac;
  if (g.groups > 1 && g.topk_groups > 0 && g.topk_groups < g.groups && ctx.experts % g.groups == 0) {
    // Group-limited routing: each group's slots per rank, through the placement.
    const int per_group = ctx.experts / g.groups;
    std::vector<double> group_rank(static_cast<std::size_t>(g.groups) * slots.ranks, 0.0);
    for (int r = 0; r < slots.ranks; ++r)
      for (const auto& [e, frac] : slots.slots[r])
        group_rank[static_cast<std::size_t>(e / per_group) * slots.ranks + r] += shares[e] * frac;
    out.stats = dispatch_stats_grouped(group_rank, g);
  } else {
    out.stats = dispatch_stats(std::move(rank_share), g);
  }

  // Rows per expert = tokens of the whole EP group × top_k × share.
  const double group_slots = double(g.ep) * ctx.tokens_per_source * g.top_k;
  const double cap = ctx.capacity_factor > 0 ? ctx.capacity_factor * group_slots / ctx.experts : 0.0;
  double dropped = 0;
  std::vector<double> expert_rows(shares.size());
  for (std::size_t e = 0; e < shares.size(); ++e) {
    expert_rows[e] = group_slots * shares[e];
    if (cap > 0) dropped += std::max(0.0, expert_rows[e] - cap);
  }
  // Every rank's slot rows in one array: rank r's are [start[r], start[r + 1]).
  std::vector<double> slot_rows;
  std::vector<std::size_t> start(static_cast<std::size_t>(slots.ranks) + 1, 0);
  for (int r = 0; r < slots.ranks; ++r) start[r + 1] = start[r] + slots.slots[r].size();
  slot_rows.reserve(start.back());
  for (int r = 0; r < slots.ranks; ++r)
    for (const auto& [e, frac] : slots.slots[r]) slot_rows.push_back(cap > 0 ? cap : expert_rows[e] * frac);
  finish_rows_of(
      static_cast<std::size_t>(slots.ranks),
      [&](std::size_t r) {
        return std::span<const double>(slot_rows.data() + start[r], start[r + 1] - start[r]);
      },
      out);
  if (cap > 0) {
    // Capacity buffers are computed padded: every GPU computes cap rows per slot.
    double kept_on_straggler = 0;
    for (const auto& [e, frac] : slots.slots[out.stats.straggler])
      kept_on_straggler += std::min(cap, expert_rows[e]);
    out.summary.padded_rows = out.summary.straggler_rows - kept_on_straggler;
    out.summary.max_over_mean_gpu = 1.0;
  }
  out.summary.dropped_fraction = group_slots > 0 ? dropped / group_slots : 0.0;
  auto [mx, cv] = max_mean_cv(expert_rows);
  out.summary.max_over_mean_expert = mx;
  out.summary.cv_expert = cv;

  // Node × node dispatch traffic: every GPU of node a sends tokens_per_source tokens, each copy going to
  // node n with probability hit_node (hierarchical) or to each rank of n with hit_rank (flat). The
  // diagonal holds the NVLink copies to the other GPUs of the sender's own node (none to itself).
  const int pn = per_node_of(g), nodes = (g.ep + pn - 1) / pn;
  out.summary.nodes = nodes;
  out.summary.node_traffic.assign(static_cast<std::size_t>(nodes) * nodes, 0.0);
  for (int a = 0; a < nodes; ++a) {
    const int senders = std::min(pn, g.ep - a * pn);
    for (int n = 0; n < nodes; ++n) {
      double ranks_hit = 0;
      for (int r = n * pn; r < std::min(g.ep, (n + 1) * pn); ++r) ranks_hit += out.stats.copies_rank[r];
      // Σ over senders s of the copies to ranks r ≠ s of their own node = (senders − 1) · Σ_r copies_rank[r].
      const double copies =
          a == n ? (senders - 1) * ranks_hit : senders * (g.hierarchical ? out.stats.hit_node[n] : ranks_hit);
      out.summary.node_traffic[static_cast<std::size_t>(a) * nodes + n] =
          ctx.tokens_per_source * copies * ctx.bytes_per_copy;
    }
  }
  out.summary.nic_bytes =
      std::max(out.stats.nic_out, out.stats.nic_in) * ctx.tokens_per_source * ctx.bytes_per_copy;
  if (ctx.want_pair_bytes) {
    out.pair_bytes = expected_pair_bytes(out, ctx);
    out.wire_bytes = expected_wire_bytes(out, ctx);
  }
  return out;
}

}  // namespace

std::vector<double> expected_wire_bytes(const LayerRouting& r, const RoutingContext& ctx) {
  const EpGeometry& g = ctx.geo;
  const int R = g.ep, pn = per_node_of(g), nodes = (R + pn - 1) / pn;
  const double T = ctx.tokens_per_source * ctx.bytes_per_copy;
  std::vector<double> m(static_cast<std::size_t>(R) * R, 0.0);
  auto at = [&](int x, int y) -> double& { return m[static_cast<std::size_t>(x) * R + y]; };
  for (int s = 0; s < R; ++s) {
    if (!g.hierarchical) {
      for (int d = 0; d < R; ++d)
        if (d != s) at(s, d) += T * r.stats.copies_rank[d];
      continue;
    }
    for (int n = 0; n < nodes; ++n) {
      const int landing = std::min(R - 1, n * pn + s % pn);
      if (n != s / pn) at(s, landing) += T * r.stats.hit_node[n];
      for (int d = n * pn; d < std::min(R, (n + 1) * pn); ++d)
        if (d != landing) at(landing, d) += T * r.stats.hit_rank[d];
    }
  }
  return m;
}

std::vector<double> expected_pair_bytes(const LayerRouting& r, const RoutingContext& ctx) {
  const int R = ctx.geo.ep;
  std::vector<double> m(static_cast<std::size_t>(R) * R, 0.0);
  for (int s = 0; s < R; ++s)
    for (int d = 0; d < R; ++d)
      m[static_cast<std::size_t>(s) * R + d] =
          ctx.tokens_per_source * r.stats.copies_rank[d] * ctx.bytes_per_copy;
  return m;
}

LayerRouting route_sample(const traces::RoutingSample& sample, const SlotMap& slots,
                          const RoutingContext& ctx) {
  LayerRouting out;
  const EpGeometry& g = ctx.geo;
  const int R = slots.ranks, S = sample.sources, E = sample.experts;
  const int pn = per_node_of(g), nodes = (g.ep + pn - 1) / pn;
  // Every (rank, slot) holding each expert, in rank order: a token of expert e goes to entry
  // t mod replicas (two replicas on one rank are two slots with their own rows).
  std::vector<std::vector<std::pair<int, int>>> replicas(static_cast<std::size_t>(E));
  for (int r = 0; r < R; ++r)
    for (std::size_t i = 0; i < slots.slots[r].size(); ++i)
      replicas[slots.slots[r][i].first].push_back({r, static_cast<int>(i)});
  std::vector<std::vector<double>> slot_rows(static_cast<std::size_t>(R));
  for (int r = 0; r < R; ++r) slot_rows[r].assign(slots.slots[r].size(), 0.0);

  if (ctx.want_pair_bytes) {
    out.pair_bytes.assign(static_cast<std::size_t>(R) * R, 0.0);
    out.wire_bytes.assign(static_cast<std::size_t>(R) * R, 0.0);
  }
  auto pair = [&](int src, int dst, double copies) {
    if (ctx.want_pair_bytes)
      out.pair_bytes[static_cast<std::size_t>(src) * R + dst] += copies * ctx.bytes_per_copy;
  };
  auto wire = [&](int src, int dst, double copies) {
    if (ctx.want_pair_bytes && src != dst)
      out.wire_bytes[static_cast<std::size_t>(src) * R + dst] += copies * ctx.bytes_per_copy;
  };
  std::vector<double> nic_out(static_cast<std::size_t>(R), 0.0), nic_in(static_cast<std::size_t>(R), 0.0),
      nvl_out(static_cast<std::size_t>(R), 0.0), nvl_in(static_cast<std::size_t>(R), 0.0);
  out.summary.nodes = nodes;
  out.summary.node_traffic.assign(static_cast<std::size_t>(nodes) * nodes, 0.0);
  auto traffic = [&](int src_rank, int dst_node, double copies) {
    out.summary.node_traffic[static_cast<std::size_t>(src_rank / pn) * nodes + dst_node] +=
        copies * ctx.bytes_per_copy;
  };

  if (!sample.token_experts.empty() && sample.top_k > 0) {
    const int64_t n_tokens = static_cast<int64_t>(sample.token_experts.size()) / sample.top_k;
    std::vector<int64_t> per_source(static_cast<std::size_t>(S), 0);
    auto source_of = [&](int64_t t) {
      if (!sample.token_source.empty()) return static_cast<int>(sample.token_source[t]);
      return static_cast<int>(std::min<int64_t>(S - 1, t * S / std::max<int64_t>(1, n_tokens)));
    };
    for (int64_t t = 0; t < n_tokens; ++t) ++per_source[source_of(t)];
    std::vector<int> ranks_hit, nodes_hit, slot_ranks;
    for (int64_t t = 0; t < n_tokens; ++t) {
      const int s = source_of(t) % R;
      const double scale =
          per_source[source_of(t)] > 0 ? ctx.tokens_per_source / per_source[source_of(t)] : 0.0;
      ranks_hit.clear();
      nodes_hit.clear();
      slot_ranks.clear();
      for (int k = 0; k < sample.top_k; ++k) {
        const int e = sample.token_experts[t * sample.top_k + k];
        if (e < 0) continue;
        const auto& reps = replicas[e];
        const auto [r, slot] = reps[static_cast<std::size_t>(t % static_cast<int64_t>(reps.size()))];
        slot_rows[r][slot] += scale;
        slot_ranks.push_back(r);
        if (std::find(ranks_hit.begin(), ranks_hit.end(), r) == ranks_hit.end()) ranks_hit.push_back(r);
      }
      const int src_node = s / pn;
      for (int r : g.hierarchical ? ranks_hit : slot_ranks) pair(s, r, scale);
      for (int r : ranks_hit) {
        if (std::find(nodes_hit.begin(), nodes_hit.end(), r / pn) == nodes_hit.end())
          nodes_hit.push_back(r / pn);
      }
      if (g.hierarchical) {
        for (int n : nodes_hit) {
          const int landing = std::min(g.ep - 1, n * pn + s % pn);
          if (n != src_node) {
            nic_out[s] += scale;
            nic_in[landing] += scale;
            wire(s, landing, scale);
            traffic(s, n, scale);  // one copy crosses to node n
          }
          for (int r : ranks_hit)
            if (r / pn == n && r != landing) {
              wire(landing, r, scale);
              nvl_out[landing] += scale;
              nvl_in[r] += scale;
              if (n == src_node) traffic(s, n, scale);  // own node: the NVLink copies that move
            }
        }
      } else {
        for (int r : slot_ranks) {  // flat: every slot is its own copy
          if (r == s) continue;
          wire(s, r, scale);
          if (r / pn != src_node) {
            nic_out[s] += scale;
            nic_in[r] += scale;
          } else {
            nvl_out[s] += scale;
            nvl_in[r] += scale;
          }
          traffic(s, r / pn, scale);
        }
      }
    }
  } else {
    // Counts only: each source's own shares give its hit probabilities.
    for (int s = 0; s < R; ++s) {
      const int src = s % S;
      double row_total = 0;
      for (int e = 0; e < E; ++e) row_total += sample.count(src, e);
      if (row_total <= 0) continue;
      std::vector<double> rank_share(static_cast<std::size_t>(R), 0.0);
      for (int r = 0; r < R; ++r)
        for (std::size_t i = 0; i < slots.slots[r].size(); ++i) {
          const auto [e, frac] = slots.slots[r][i];
          const double share = sample.count(src, e) / row_total;
          rank_share[r] += share * frac;
          slot_rows[r][i] += share * frac * ctx.tokens_per_source * sample.top_k;
        }
      const DispatchStats d = dispatch_stats(rank_share, g);
      const double T = ctx.tokens_per_source;
      for (int r = 0; r < R; ++r) pair(s, r, T * d.copies_rank[r]);
      const int src_node = s / pn;
      for (int n = 0; n < nodes; ++n) {
        if (g.hierarchical) {
          const int landing = std::min(g.ep - 1, n * pn + s % pn);
          if (n != src_node) {
            nic_out[s] += T * d.hit_node[n];
            nic_in[landing] += T * d.hit_node[n];
            wire(s, landing, T * d.hit_node[n]);
            traffic(s, n, T * d.hit_node[n]);
          }
          for (int r = n * pn; r < std::min(g.ep, (n + 1) * pn); ++r)
            if (r != landing) {
              wire(landing, r, T * d.hit_rank[r]);
              nvl_out[landing] += T * d.hit_rank[r];
              nvl_in[r] += T * d.hit_rank[r];
              if (n == src_node) traffic(s, n, T * d.hit_rank[r]);
            }
        } else {
          for (int r = n * pn; r < std::min(g.ep, (n + 1) * pn); ++r) {
            if (r == s) continue;
            wire(s, r, T * d.copies_rank[r]);
            (n != src_node ? nic_out[s] : nvl_out[s]) += T * d.copies_rank[r];
            (n != src_node ? nic_in[r] : nvl_in[r]) += T * d.copies_rank[r];
            traffic(s, n, T * d.copies_rank[r]);
          }
        }
      }
    }
  }
  finish_rows(slot_rows, out);
  std::vector<double> rank_share(static_cast<std::size_t>(R), 0.0);
  double total_rows = 0;
  for (int r = 0; r < R; ++r)
    total_rows += rank_share[r] = std::accumulate(slot_rows[r].begin(), slot_rows[r].end(), 0.0);
  if (total_rows > 0)
    for (auto& x : rank_share) x /= total_rows;
  const int straggler = out.stats.straggler;
  const double mom = out.stats.max_over_mean;
  out.stats = dispatch_stats(rank_share, g);  // hit probabilities for reference; copies below are exact
  out.stats.straggler = straggler;
  out.stats.max_over_mean = mom;
  const double T = ctx.tokens_per_source > 0 ? ctx.tokens_per_source : 1.0;
  out.stats.nic_out = *std::max_element(nic_out.begin(), nic_out.end()) / T;
  out.stats.nic_in = *std::max_element(nic_in.begin(), nic_in.end()) / T;
  out.stats.nvlink_out = *std::max_element(nvl_out.begin(), nvl_out.end()) / T;
  out.stats.nvlink_in = *std::max_element(nvl_in.begin(), nvl_in.end()) / T;
  if (nodes == 1) out.stats.nic_out = out.stats.nic_in = 0;

  std::vector<double> expert_load(static_cast<std::size_t>(E), 0.0);
  const auto ec = sample.expert_counts();
  for (int e = 0; e < E; ++e) expert_load[e] = static_cast<double>(ec[e]);
  auto [mx, cv] = max_mean_cv(expert_load);
  out.summary.max_over_mean_expert = mx;
  out.summary.cv_expert = cv;
  const double routed = static_cast<double>(sample.slots() + sample.dropped);
  out.summary.dropped_fraction = routed > 0 ? sample.dropped / routed : 0.0;
  out.summary.nic_bytes = std::max(out.stats.nic_out, out.stats.nic_in) * T * ctx.bytes_per_copy;
  return out;
}

}  // namespace moesim::models
