#include "sim/netsim.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>

// SimGrid's C headers need xbt/base.h first: keep this order.
// clang-format off
#include <simgrid/s4u.hpp>
#include <simgrid/version.h>
#include <xbt/config.hpp>
#include <xbt/log.h>
// clang-format on

#include "scenarios/error.hpp"
#include "sim/netsim_internal.hpp"

// Model settings, all from SimGrid 3.32's "Configuring SimGrid" (docs/source/Configuring_SimGrid.rst at
// tag v3.32, https://simgrid.org/doc/3.32/Configuring_SimGrid.html):
// - network/model:CM02 (§ options_model_select): Casanova & Marchal, "A Network Model for Simulation of
//   Grid Application", INRIA RR-2002-40 — max-min bandwidth sharing without LV08's TCP corrections
//   (latency × 13.01, bandwidth × 0.97, weight-S 20537), which were fitted to 2011 TCP, not GPU fabrics.
// - network/crosstraffic:0 (§ cfg=network/crosstraffic): no 5% reverse (ACK) load per flow.
// - network/TCP-gamma (§ cfg=network/TCP-gamma): the window cap gamma / (2 · latency) per flow; huge.
// - surf/precision (§ cfg=surf/precision, seconds; default 1e-9): network/optim:Lazy completes every
//   action whose date is within surf/precision of now (network_cm02.cpp, update_actions_state_lazy), so
//   it is scaled to the run's expected duration.
// - CM02's sharing weight of a flow is its route latency (network_cm02.cpp: sharing_penalty_ = latency),
//   a TCP RTT bias; see SimOptions::latency_weighted_sharing for how it is avoided by default.
//
// Platform: a root full zone without routes holding (a) one full zone "gpu" with a host per GPU, a
// split-duplex link per topology link and an explicit route per ordered GPU pair (Topology::path), and
// (b) for aggregation, one full zone per NVLink domain and one per fabric plane over contracted links
// (sim/netsim_aggregate.cpp).
// Sizes, costs and limits measured on a 2-core machine: sim/netsim.hpp (SimOptions::max_hosts, file
// comment).

namespace moesim::sim {
namespace internal {

EngineState* g_state = nullptr;  // one per process, never destroyed (SimGrid's Engine outlives main)

std::string fmt(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Everything of a ClusterSpec the topology reads: two clusters with the same key build the same platform.
std::string cluster_key(const ClusterSpec& c) {
  const auto& u = c.scale_up;
  const auto& o = c.scale_out;
  return std::to_string(c.nodes) + "x" + std::to_string(c.gpus_per_node) + " up{" + to_string(u.kind) + "," +
         fmt(u.bandwidth) + "," + fmt(u.latency) + "," + std::to_string(u.domain_gpus) + "} out{" +
         to_string(o.kind) + "," + fmt(o.nic_bandwidth) + "," + fmt(o.latency) + "," + fmt(o.latency_cross) +
         "," + fmt(o.oversubscription) + "," + std::to_string(o.planes) + "," + std::to_string(o.levels) +
         "," + std::to_string(o.radix) + "}";
}

sg4::LinkInRoute::Direction sg_dir(bool forward) {
  return forward ? sg4::LinkInRoute::Direction::UP : sg4::LinkInRoute::Direction::DOWN;
}

sg4::SplitDuplexLink* make_link(sg4::NetZone* zone, const std::string& name, const PartLink& l,
                                bool with_latency) {
  auto* link = zone->create_split_duplex_link(name, l.bandwidth);
  link->set_latency(with_latency ? l.latency : 0.0);
  link->seal();
  return link;
}

// ------------------------------------------------------------------------------------- per-GPU part

PartPath gpu_route(const Topology& t, int src, int dst) {
  PartPath out;
  for (const Hop& h : t.path(src, dst)) out.push_back({h.link, h.dir == Direction::kForward});
  return out;
}

GpuPart build_gpu_part(const Topology& t, sg4::NetZone* root, bool with_latency,
                       const std::vector<char>& used) {
  GpuPart p;
  auto* zone = sg4::create_full_zone("gpu");
  zone->set_parent(root);
  for (int g = 0; g < t.gpus(); ++g)
    p.hosts.push_back(used[g] ? zone->create_host("g:" + t.vertex_name(t.gpu_vertex(g)), 1.0) : nullptr);
  for (int id = 0; id < t.num_links(); ++id) {
    const LinkProps& lp = t.link(id);
    PartLink l{t.vertex_name(t.link_source(id)), t.vertex_name(t.link_target(id)), lp.kind, lp.bandwidth,
               lp.latency};
    l.sg = make_link(zone, "g" + std::to_string(id) + ":" + l.from + "-" + l.to, l, with_latency);
    p.links.push_back(l);
  }
  std::vector<sg4::LinkInRoute> route;
  Path path;
  for (int s = 0; s < t.gpus(); ++s)
    for (int d = 0; d < t.gpus(); ++d) {
      if (s == d || !used[s] || !used[d]) continue;
      t.path(s, d, path);
      route.clear();
      for (const Hop& h : path) route.emplace_back(p.links[h.link].sg, sg_dir(h.dir == Direction::kForward));
      zone->add_route(p.hosts[s]->get_netpoint(), p.hosts[d]->get_netpoint(), nullptr, nullptr, route, false);
      ++p.routes;
    }
  zone->seal();
  return p;
}

// --------------------------------------------------------------------------------------- the engine

void check_options(const SimOptions& o) {
  if (!(o.precision_fraction > 0) || !std::isfinite(o.precision_fraction))
    throw ConfigError("simulate_flows: precision_fraction: expected a positive fraction, found " +
                      fmt(o.precision_fraction));
  if (!(o.tcp_gamma > 0))
    throw ConfigError("simulate_flows: tcp_gamma: expected positive bytes, found " + fmt(o.tcp_gamma));
  if (o.max_hosts < 1)
    throw ConfigError("simulate_flows: max_hosts: expected ≥ 1, found " + std::to_string(o.max_hosts));
}

std::string limit_message(const char* what, int hosts, int max_hosts) {
  return std::string("simulate_flows: ") + what + " needs a full zone of " + std::to_string(hosts) +
         " hosts with explicit routes (hosts² routes), above max_hosts = " + std::to_string(max_hosts) +
         "; aggregate flows per node pair (aggregate_node_pairs), simulate a representative group, or raise "
         "max_hosts if memory allows";
}

// Creates the engine and the platform on first use; afterwards checks that the call matches them.
EngineState& engine_for(const ClusterSpec& cluster, const SimOptions& o) {
  const std::string key = cluster_key(cluster);
  if (g_state != nullptr) {
    EngineState& s = *g_state;
    if (s.broken)
      throw Error("simulate_flows: an earlier SimGrid failure left this process's engine unusable");
    if (s.cluster_key != key)
      throw ConfigError(
          "simulate_flows: this process's SimGrid engine was built for cluster \"" + s.cluster_name + "\" (" +
          s.cluster_key + "), found \"" + cluster.name + "\" (" + key +
          "); SimGrid freezes its platform after the first run: simulate each cluster in its own process");
    if (s.tcp_gamma != o.tcp_gamma || s.latency_weighted != o.latency_weighted_sharing ||
        s.max_hosts != o.max_hosts)
      throw ConfigError(
          "simulate_flows: tcp_gamma, latency_weighted_sharing and max_hosts are fixed by the first "
          "simulation of a process (" +
          fmt(s.tcp_gamma) + ", " + (s.latency_weighted ? "true" : "false") + ", " +
          std::to_string(s.max_hosts) + "); run other settings in another process");
    for (int g : o.gpus)
      if (g < 0 || g >= static_cast<int>(s.used.size()) || !s.used[g])
        throw ConfigError(
            "simulate_flows: GPU " + std::to_string(g) +
            " is not on this process's platform: the first simulation built it for its own GPUs "
            "(SimOptions::gpus); simulate other GPU sets in another process");
    return s;
  }
  auto topo = std::make_unique<Topology>(cluster);
  std::vector<char> used(static_cast<std::size_t>(topo->gpus()), o.gpus.empty() ? 1 : 0);
  for (int g : o.gpus) {
    if (g < 0 || g >= topo->gpus())
      throw ConfigError("simulate_flows: SimOptions::gpus names GPU " + std::to_string(g) + ", expected 0.." +
                        std::to_string(topo->gpus() - 1));
    used[g] = 1;
  }
  const int used_gpus = static_cast<int>(std::count(used.begin(), used.end(), 1));
  const auto [domain_max, plane_max] = agg_zone_sizes(*topo, used);
  const int agg_max = std::max(domain_max, plane_max);
  const bool gpu_fits = used_gpus <= o.max_hosts, agg_fits = agg_max <= o.max_hosts;
  if (o.aggregate_node_pairs && !agg_fits)
    throw ConfigError(limit_message("node-pair aggregation", agg_max, o.max_hosts));
  if (!o.aggregate_node_pairs && !gpu_fits)
    throw ConfigError(limit_message("per-GPU simulation", used_gpus, o.max_hosts));

  auto state = std::make_unique<EngineState>();
  state->cluster_key = key;
  state->cluster_name = cluster.name;
  state->tcp_gamma = o.tcp_gamma;
  state->latency_weighted = o.latency_weighted_sharing;
  state->max_hosts = o.max_hosts;
  state->used = used;
  try {
    if (sg4::Engine::has_instance()) {
      state->engine = sg4::Engine::get_instance();
      if (state->engine->get_host_count() > 0)
        throw ConfigError(
            "simulate_flows: a SimGrid engine with its own platform already exists in this process");
    } else {
      xbt_log_control_set("root.thresh:warning");  // SimGrid's configuration INFO lines
      // At exit SimGrid reports the CPU actions of the step engine's daemon actors (killed while waiting at
      // the end of a simulation) as "not removed before the LMM system destruction": after every result
      // is out, nothing to act on.
      xbt_log_control_set("ker_lmm.thresh:error");
      state->engine = new sg4::Engine("moesim-netsim");  // never deleted: one engine per process
    }
    sg4::Engine::set_config("network/model:CM02");
    sg4::Engine::set_config("network/optim:Lazy");
    sg4::Engine::set_config("network/crosstraffic", false);
    sg4::Engine::set_config("network/TCP-gamma", o.tcp_gamma);
    // Actor stacks: the step engine's actors (compute streams, senders, sinks, one per pipeline transfer)
    // need little stack; SimGrid's default 8 MiB per actor costs time and memory at thousands of actors.
    sg4::Engine::set_config("contexts/stack-size", 256);
    auto* root = sg4::create_full_zone("moesim");
    const bool lat = o.latency_weighted_sharing;
    if (gpu_fits)
      state->gpu = build_gpu_part(*topo, root, lat, used);
    else
      state->gpu_missing = limit_message("per-GPU simulation", used_gpus, o.max_hosts);
    if (agg_fits)
      state->agg = build_agg_part(*topo, root, lat, used);
    else
      state->agg_missing = limit_message("node-pair aggregation", agg_max, o.max_hosts);
    root->seal();
  } catch (const moesim::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(std::string("simulate_flows: SimGrid failed while building the platform: ") + e.what());
  }
  state->topo = std::move(topo);
  g_state = state.release();
  return *g_state;
}

double route_latency(const std::vector<PartLink>& links, const PartPath& r) {
  double l = 0;
  for (const PartHop& h : r) l += links[h.link].latency;
  return l;
}

void check_flows(const Topology& t, const std::vector<FlowSpec>& flows, const std::vector<char>& used) {
  for (std::size_t i = 0; i < flows.size(); ++i) {
    const FlowSpec& f = flows[i];
    const auto where = "simulate_flows: flow " + std::to_string(i) + ": ";
    if (f.src < 0 || f.src >= t.gpus() || f.dst < 0 || f.dst >= t.gpus())
      throw ConfigError(where + "expected GPUs in 0.." + std::to_string(t.gpus() - 1) + ", found " +
                        std::to_string(f.src) + " → " + std::to_string(f.dst));
    if (!used[f.src] || !used[f.dst])
      throw ConfigError(where + "GPU " + std::to_string(used[f.src] ? f.dst : f.src) +
                        " is not on this process's platform (the first simulation named the GPUs it needs)");
    if (!(f.bytes >= 0) || !std::isfinite(f.bytes))
      throw ConfigError(where + "expected non-negative finite bytes, found " + fmt(f.bytes));
    if (!(f.start >= 0) || !std::isfinite(f.start))
      throw ConfigError(where + "expected a non-negative finite start, found " + fmt(f.start));
  }
}

// Runs the communications: each is launched at start (+ route latency unless the links carry it).
void run_comms(EngineState& s, std::vector<Comm>& comms, double t0) {
  std::vector<std::size_t> order(comms.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  const auto launch = [&](const Comm& c) { return s.latency_weighted ? c.start : c.start + c.latency; };
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t x, std::size_t y) { return launch(comms[x]) < launch(comms[y]); });
  for (std::size_t i : order) {
    Comm& c = comms[i];
    const double at = t0 + launch(c);
    if (at > sg4::Engine::get_clock()) s.engine->run_until(at);
    c.activity = sg4::Comm::sendto_init(c.src, c.dst);
    c.activity->set_payload_size(static_cast<std::uint64_t>(std::llround(c.bytes)));
    c.activity->start();
  }
  s.engine->run();
  for (Comm& c : comms) {
    if (c.activity->get_state() != sg4::Activity::State::FINISHED)
      throw Error("simulate_flows: a SimGrid communication did not finish");
    c.finish = c.activity->get_finish_time() - t0;
    c.activity = nullptr;
  }
}

std::vector<LinkUsage> link_usage(const std::vector<PartLink>& links, const std::vector<Comm>& comms,
                                  double makespan) {
  const std::size_t n = 2 * links.size();
  std::vector<double> bytes(n, 0.0);
  std::vector<std::vector<std::pair<double, double>>> busy(n);
  for (const Comm& c : comms)
    for (const PartHop& h : c.route) {
      bytes[h.directed()] += c.bytes;
      busy[h.directed()].push_back({c.start + c.latency, c.finish});
    }
  std::vector<LinkUsage> out;
  for (std::size_t d = 0; d < n; ++d) {
    if (bytes[d] <= 0) continue;
    const PartLink& l = links[d / 2];
    const bool fwd = d % 2 == 0;
    auto& iv = busy[d];
    std::sort(iv.begin(), iv.end());
    double total = 0, lo = iv[0].first, hi = iv[0].second;
    for (const auto& [a, b] : iv) {
      if (a > hi) {
        total += hi - lo;
        lo = a;
        hi = b;
      } else {
        hi = std::max(hi, b);
      }
    }
    total += hi - lo;
    LinkUsage u;
    u.name = fwd ? l.from + ">" + l.to : l.to + ">" + l.from;
    u.kind = l.kind;
    u.bandwidth = l.bandwidth;
    u.bytes = bytes[d];
    u.busy_time = total;
    u.busy_fraction = makespan > 0 ? total / makespan : 0;
    u.utilisation = makespan > 0 ? bytes[d] / (l.bandwidth * makespan) : 0;
    out.push_back(std::move(u));
  }
  return out;
}

std::vector<Comm> fold_flows(EngineState& s, const std::vector<FlowSpec>& flows, bool aggregate,
                             std::vector<std::vector<int>>* out_of, bool pool_nvlink) {
  std::vector<Comm> comms;
  std::vector<std::vector<int>> local;
  std::vector<std::vector<int>>& comms_of = out_of != nullptr ? *out_of : local;
  comms_of.assign(flows.size(), {});
  const Topology& t = *s.topo;
  const std::vector<PartLink>& links = aggregate ? s.agg->links : s.gpu->links;
  if (!aggregate) {
    for (std::size_t i = 0; i < flows.size(); ++i) {
      const FlowSpec& f = flows[i];
      if (f.src == f.dst || f.bytes <= 0) continue;
      Comm c{s.gpu->hosts[f.src],
             s.gpu->hosts[f.dst],
             f.bytes,
             f.start,
             0,
             gpu_route(t, f.src, f.dst),
             nullptr,
             0};
      c.latency = route_latency(links, c.route);
      comms_of[i].push_back(static_cast<int>(comms.size()));
      comms.push_back(std::move(c));
    }
  } else {
    const AggPart& a = *s.agg;
    // Keys (role, source, destination, start), role 0: an NVLink-only flow, 1: the NVLink leg of a flow
    // forwarded to or from the fabric, 2: a fabric aggregate between GPU classes. Legs stay apart from
    // NVLink-only flows so that those keep their own finish times. Ordered: deterministic comm order.
    std::map<std::tuple<int, int, int, double>, int> index;
    const auto add = [&](std::size_t flow, int role, int x, int y, double bytes, double start) {
      auto [it, fresh] = index.try_emplace({role, x, y, start}, static_cast<int>(comms.size()));
      if (fresh && role == 3) {  // pooled NVLink domain x
        Comm c{a.pool_out[x], a.pool_in[x], 0, start, 0, PartPath{PartHop{a.pool_link[x], true}}, nullptr, 0};
        c.latency = route_latency(links, c.route);
        comms.push_back(std::move(c));
      } else if (fresh) {
        PartPath r = role < 2 ? nvlink_route(t, a, x, y) : class_route(t, a, x, y);
        sg4::Host* hs = role < 2 ? a.gpu_hosts[x] : a.class_hosts[x];
        sg4::Host* hd = role < 2 ? a.gpu_hosts[y] : a.class_hosts[y];
        if (hs == nullptr || hd == nullptr)
          throw ConfigError(
              "simulate_flows: flow " + std::to_string(flow) +
              " passes through a GPU that is not on this process's platform (SimOptions::gpus)");
        Comm c{hs, hd, 0, start, route_latency(links, r), std::move(r), nullptr, 0};
        comms.push_back(std::move(c));
      }
      comms[it->second].bytes += bytes;
      comms_of[flow].push_back(it->second);
    };
    // An NVLink leg (role 0 or 1) between x and y, or its pooled domain (role 3).
    const auto nvlink = [&](std::size_t flow, int role, int x, int y, double bytes, double start) {
      const int dom = pool_nvlink ? a.domain_of_gpu[x] : -1;
      if (dom >= 0 && dom == a.domain_of_gpu[y])
        add(flow, 3, dom, dom, bytes, start);
      else
        add(flow, role, x, y, bytes, start);
    };
    Path path;
    for (std::size_t i = 0; i < flows.size(); ++i) {
      const FlowSpec& f = flows[i];
      if (f.src == f.dst || f.bytes <= 0) continue;
      t.path(f.src, f.dst, path);
      const auto span = nic_span(t, path);
      if (!span) {
        nvlink(i, 0, f.src, f.dst, f.bytes, f.start);
        continue;
      }
      const int gs = t.hop_from(path[span->first]), gd = t.hop_to(path[span->second]);
      const int ws = t.vertex(gs).index, wd = t.vertex(gd).index;  // GPUs entering and leaving the fabric
      if (ws != f.src) nvlink(i, 1, f.src, ws, f.bytes, f.start);
      const int ca = a.class_of_gpu[ws], cb = a.class_of_gpu[wd];
      if (ca == cb)
        throw ConfigError(
            "simulate_flows: node-pair aggregation cannot fold flow " + std::to_string(i) +
            ": its route leaves and re-enters the same node through the fabric (no NVLink domain)");
      add(i, 2, ca, cb, f.bytes, f.start);
      if (wd != f.dst) nvlink(i, 1, wd, f.dst, f.bytes, f.start);
    }
  }

  return comms;
}

double lower_bound_duration(const std::vector<PartLink>& links, const std::vector<Comm>& comms) {
  std::vector<double> load(2 * links.size(), 0.0);
  double last_launch = 0;
  for (const Comm& c : comms) {
    last_launch = std::max(last_launch, c.start + c.latency);
    for (const PartHop& h : c.route) load[h.directed()] += c.bytes;
  }
  double busiest = 0;
  for (std::size_t d = 0; d < load.size(); ++d) busiest = std::max(busiest, load[d] / links[d / 2].bandwidth);
  return last_launch + busiest;
}

EngineSettings engine_settings(const EngineState& s, bool aggregated, double expected_duration,
                               int simulation_index) {
  EngineSettings e;
  e.simgrid_version = SIMGRID_VERSION_STRING;
  e.network_model = simgrid::config::get_value<std::string>("network/model");
  e.network_optim = simgrid::config::get_value<std::string>("network/optim");
  e.crosstraffic = simgrid::config::get_value<bool>("network/crosstraffic");
  e.tcp_gamma = simgrid::config::get_value<double>("network/TCP-gamma");
  e.weight_s = simgrid::config::get_value<double>("network/weight-S");
  e.surf_precision = simgrid::config::get_value<double>("surf/precision");
  e.maxmin_precision = simgrid::config::get_value<double>("maxmin/precision");
  e.expected_duration = expected_duration;
  e.latency_weighted_sharing = s.latency_weighted;
  e.aggregated = aggregated;
  e.hosts = aggregated ? s.agg->hosts : static_cast<int>(s.gpu->hosts.size());
  e.links = static_cast<int>(aggregated ? s.agg->links.size() : s.gpu->links.size());
  e.routes = aggregated ? s.agg->routes : s.gpu->routes;
  e.simulation_index = simulation_index;
  return e;
}

}  // namespace internal

SimResult simulate_flows(const ClusterSpec& cluster, const std::vector<FlowSpec>& flows,
                         const SimOptions& options) {
  using namespace internal;
  check_options(options);
  EngineState& s = engine_for(cluster, options);
  const Topology& t = *s.topo;
  check_flows(t, flows, s.used);
  const bool agg = options.aggregate_node_pairs;
  if (agg && !s.agg) throw ConfigError(s.agg_missing);
  if (!agg && !s.gpu) throw ConfigError(s.gpu_missing);
  const std::vector<PartLink>& links = agg ? s.agg->links : s.gpu->links;

  SimResult res;
  res.flows.resize(flows.size());
  std::vector<std::vector<int>> comms_of;
  std::vector<Comm> comms = fold_flows(s, flows, agg, &comms_of);

  // surf/precision scaled to a lower bound of the duration.
  const double expected = lower_bound_duration(links, comms);
  const double precision = expected > 0 ? options.precision_fraction * expected : 1e-9;

  const double t0 = sg4::Engine::get_clock();
  try {
    sg4::Engine::set_config("surf/precision", precision);
    if (!comms.empty()) run_comms(s, comms, t0);
  } catch (const moesim::Error&) {
    s.broken = true;
    throw;
  } catch (const std::exception& e) {
    s.broken = true;
    throw Error(std::string("simulate_flows: SimGrid failed: ") + e.what());
  }

  for (std::size_t i = 0; i < flows.size(); ++i) {
    const FlowSpec& f = flows[i];
    double finish = f.start;
    if (f.src != f.dst && f.bytes <= 0) finish = f.start + t.path_latency(f.src, f.dst);
    for (int c : comms_of[i]) finish = std::max(finish, comms[c].finish);
    res.flows[i].finish = finish;
    res.makespan = std::max(res.makespan, finish);
  }
  if (options.link_usage) res.links = link_usage(links, comms, res.makespan);
  res.simulated_flows = static_cast<int>(comms.size());

  res.settings = engine_settings(s, agg, expected, s.simulations++);
  res.settings.clock_offset = t0;
  return res;
}

std::vector<FlowSpec> all_to_all_flows(const TrafficMatrix& traffic, double start) {
  std::vector<FlowSpec> out;
  for (int s = 0; s < traffic.gpus; ++s)
    for (int d = 0; d < traffic.gpus; ++d)
      if (s != d && traffic(s, d) > 0) out.push_back({s, d, traffic(s, d), start});
  return out;
}

}  // namespace moesim::sim
