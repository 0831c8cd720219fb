#include "reports/topology.hpp"

#include "models/network.hpp"
#include "models/placement.hpp"
#include "models/routing_source.hpp"
#include "models/workload.hpp"
#include "reports/internal/format.hpp"
#include "sim/netsim.hpp"
#include "traces/load.hpp"

namespace moesim::reports {

using internal::fmt;
using nlohmann::json;

std::optional<DispatchLoads> dispatch_loads(const Scenario& s, const sim::Topology& topo, bool simulate) {
  if (s.model.moe.experts <= 0 || s.parallelism.ep <= 1) return std::nullopt;
  // Rank order: etp fastest, then ep, inside each stage's tp·cp·dp GPUs.
  const auto& p = s.parallelism;
  models::RoutingContext ctx = models::routing_context(s);
  ctx.want_pair_bytes = true;
  const models::RoutingInput in = models::routing_input(s);
  const models::SlotMap slots =
      !in.slot_maps.empty() ? in.slot_maps.front()
                            : models::SlotMap::from_assignment(
                                  models::place_experts(s.placement.policy, s.model.moe.experts, p.ep), p.ep);
  const traces::ShareGenerator gen(s.routing.load, s.model.moe.experts, s.model.moe.top_k);
  const models::LayerRouting r = !in.samples.empty() ? models::route_sample(in.samples.front(), slots, ctx)
                                                     : models::route_expected(gen.shares(0), slots, ctx);
  sim::TrafficMatrix tm(topo.gpus());
  const Layout& L = s.layout;
  for (int st = 0; st < L.pp; ++st)
    for (int g = 0; g < L.ep_groups; ++g)
      for (int a = 0; a < L.ep; ++a)
        for (int b = 0; b < L.ep; ++b) {
          const int ga = L.ep_gpu(st, g, a), gb = L.ep_gpu(st, g, b);
          if (ga != gb) tm(ga, gb) += r.pair_bytes[static_cast<std::size_t>(a) * p.ep + b];
        }
  const sim::LinkLoads loads = topo.link_loads(tm);
  DispatchLoads d;
  models::NetworkModel net(s.cluster);
  d.analytic_all_to_all =
      net.all_to_all(models::all_to_all_bytes(r.stats, ctx.geo, ctx.tokens_per_source, ctx.bytes_per_copy));
  if (loads.busiest >= 0) {
    const int link = loads.busiest / 2;
    const bool fwd = loads.busiest % 2 == 0;
    const int a = fwd ? topo.link_source(link) : topo.link_target(link);
    const int b = fwd ? topo.link_target(link) : topo.link_source(link);
    d.busiest_link = topo.vertex_name(a) + " -> " + topo.vertex_name(b) + " (" +
                     sim::to_string(topo.link(link).kind) + ")";
    d.busiest_link_bytes = loads.bytes[loads.busiest];
  }
  d.time_lower_bound = loads.time_lower_bound;
  if (simulate) {
    // One representative EP group (stage 0, group 0) simulated on SimGrid: flows share links with
    // max-min fairness; the cluster's other groups are idle in this simulation.
    sim::TrafficMatrix one(topo.gpus());
    for (int a = 0; a < p.ep; ++a)
      for (int b = 0; b < p.ep; ++b)
        if (a != b) one(a * p.etp, b * p.etp) = r.pair_bytes[static_cast<std::size_t>(a) * p.ep + b];
    sim::SimOptions opt;
    opt.aggregate_node_pairs = topo.gpus() > opt.max_hosts;
    const sim::SimResult sr = sim::simulate_flows(s.cluster, sim::all_to_all_flows(one), opt);
    SimulatedDispatch x;
    x.makespan = sr.makespan;
    x.flows = sr.simulated_flows;
    x.aggregated = sr.settings.aggregated;
    x.time_lower_bound = topo.link_loads(one).time_lower_bound;
    x.network_model = sr.settings.network_model;
    d.simulated = x;
  }
  return d;
}

void write_topology_table(std::ostream& out, const Scenario& s, const sim::Topology& topo,
                          const std::optional<DispatchLoads>& dispatch) {
  out << topo.summary() << "\n";
  if (!dispatch) return;
  const DispatchLoads& d = *dispatch;
  out << "first MoE layer dispatch (all EP groups at once, one copy per token and destination GPU):\n"
         "  busiest link "
      << d.busiest_link << ": " << fmt("%.1f MB", d.busiest_link_bytes / 1e6) << ", time lower bound "
      << fmt("%.3f ms", d.time_lower_bound * 1e3) << "; analytic all-to-all ("
      << to_string(s.workload.dispatch) << ") " << fmt("%.3f ms", d.analytic_all_to_all * 1e3) << "\n";
  if (d.simulated) {
    const SimulatedDispatch& x = *d.simulated;
    out << "  SimGrid (" << x.network_model << (x.aggregated ? ", flows per node pair" : ", per GPU pair")
        << "), EP group 0 alone: " << fmt("%.3f ms", x.makespan * 1e3) << " (" << x.flows
        << " flows; lower bound " << fmt("%.3f ms", x.time_lower_bound * 1e3) << ")\n";
  }
}

json topology_json(const Scenario& s, const sim::Topology& topo,
                   const std::optional<DispatchLoads>& dispatch) {
  json traffic = nullptr;
  if (dispatch) {
    const DispatchLoads& d = *dispatch;
    json des = nullptr;
    if (d.simulated)
      des = {{"makespan_s", d.simulated->makespan},
             {"flows", d.simulated->flows},
             {"aggregated", d.simulated->aggregated},
             {"time_lower_bound_s", d.simulated->time_lower_bound},
             {"network_model", d.simulated->network_model}};
    traffic = {{"simulated", des},
               {"busiest_link", d.busiest_link},
               {"busiest_link_bytes", d.busiest_link_bytes},
               {"time_lower_bound_s", d.time_lower_bound},
               {"analytic_all_to_all_s", d.analytic_all_to_all},
               {"note",
                "one copy per (token, destination GPU) on the fabric's static routes; the lower bound "
                "ignores latency and assumes the busiest link is never idle"}};
  }
  const auto hs = topo.hop_stats();
  return {{"scenario", s.name},        {"kind", to_string(s.cluster.scale_out.kind)},
          {"gpus", topo.gpus()},       {"vertices", topo.num_vertices()},
          {"links", topo.num_links()}, {"hops_average", hs.average},
          {"diameter", hs.diameter},   {"bisection_bandwidth_Bps", topo.bisection_bandwidth()},
          {"dispatch", traffic}};
}

}  // namespace moesim::reports
