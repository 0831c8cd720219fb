// `moesim topology`: the cluster as a graph, its analyses, and the load the first MoE layer's
// dispatch puts on every link.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/commands.hpp"
#include "models/compute_cost.hpp"
#include "models/network.hpp"
#include "models/routing_source.hpp"
#include "models/workload.hpp"
#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"
#include "sim/netsim.hpp"
#include "sim/topology.hpp"
#include "traces/load.hpp"
#include "models/placement.hpp"

namespace moesim::cli {
namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

int topology_cmd(const std::string& scenario, const std::string& dot, const std::string& format, bool force,
                 bool simulate, const Catalog& cat) {
  Scenario s = load_scenario(scenario, cat);
  sim::Topology topo(s.cluster);
  if (!dot.empty()) {
    std::error_code ec;
    if (!force && std::filesystem::exists(dot, ec))
      throw IoError(dot + ": refusing to overwrite an existing file (use --force)");
    std::ofstream out(dot);
    if (!out) throw IoError(dot + ": cannot open for writing");
    topo.write_graphviz(out);
    std::cerr << "moesim: wrote " << dot << "\n";
  }
  // The first MoE layer's dispatch, every EP group of every stage at once (rank order: etp fastest,
  // then ep, inside each stage's tp·cp·dp GPUs).
  Json traffic = nullptr;
  std::string traffic_text;
  if (s.model.moe.experts > 0 && s.parallelism.ep > 1) {
    const auto& p = s.parallelism;
    models::RoutingContext ctx = models::routing_context(s);
    ctx.want_pair_bytes = true;
    const models::RoutingInput in = models::routing_input(s);
    const models::SlotMap slots =
        !in.slot_maps.empty() ? in.slot_maps.front()
                              : models::SlotMap::from_assignment(
                                    models::place_experts(s.placement.policy, s.model.moe.experts, p.ep),
                                    p.ep);
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
    models::NetworkModel net(s.cluster);
    const double analytic = net.all_to_all(models::all_to_all_bytes(r.stats, ctx.geo, ctx.tokens_per_source, ctx.bytes_per_copy));
    std::string busiest = "none";
    if (loads.busiest >= 0) {
      const int link = loads.busiest / 2;
      const bool fwd = loads.busiest % 2 == 0;
      const int a = fwd ? topo.link_source(link) : topo.link_target(link), b = fwd ? topo.link_target(link) : topo.link_source(link);
      busiest = topo.vertex_name(a) + " -> " + topo.vertex_name(b) + " (" + sim::to_string(topo.link(link).kind) + ")";
    }
    Json des = nullptr;
    std::string des_text;
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
      const sim::LinkLoads one_loads = topo.link_loads(one);
      des = {{"makespan_s", sr.makespan},
             {"flows", sr.simulated_flows},
             {"aggregated", sr.settings.aggregated},
             {"time_lower_bound_s", one_loads.time_lower_bound},
             {"network_model", sr.settings.network_model}};
      des_text = "  SimGrid (" + sr.settings.network_model + (sr.settings.aggregated ? ", flows per node pair" : ", per GPU pair") +
                      "), EP group 0 alone: " + fmt("%.3f ms", sr.makespan * 1e3) + " (" +
                      std::to_string(sr.simulated_flows) + " flows; lower bound " +
                      fmt("%.3f ms", one_loads.time_lower_bound * 1e3) + ")\n";
    }
    traffic = {{"simulated", des},
               {"busiest_link", busiest},
               {"busiest_link_bytes", loads.busiest >= 0 ? loads.bytes[loads.busiest] : 0.0},
               {"time_lower_bound_s", loads.time_lower_bound},
               {"analytic_all_to_all_s", analytic},
               {"note", "one copy per (token, destination GPU) on the fabric's static routes; the lower bound "
                        "ignores latency and assumes the busiest link is never idle"}};
    traffic_text = "first MoE layer dispatch (all EP groups at once, one copy per token and destination GPU):\n"
                   "  busiest link " + busiest + ": " + fmt("%.1f MB", (loads.busiest >= 0 ? loads.bytes[loads.busiest] : 0) / 1e6) +
                   ", time lower bound " + fmt("%.3f ms", loads.time_lower_bound * 1e3) +
                   "; analytic all-to-all (" + to_string(s.workload.dispatch) + ") " + fmt("%.3f ms", analytic * 1e3) + "\n" +
                   des_text;
  }
  if (format == "json") {
    const auto hs = topo.hop_stats();
    std::cout << Json{{"scenario", s.name},
                      {"kind", to_string(s.cluster.scale_out.kind)},
                      {"gpus", topo.gpus()},
                      {"vertices", topo.num_vertices()},
                      {"links", topo.num_links()},
                      {"hops_average", hs.average},
                      {"diameter", hs.diameter},
                      {"bisection_bandwidth_Bps", topo.bisection_bandwidth()},
                      {"dispatch", traffic}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << topo.summary() << "\n" << traffic_text;
  }
  return 0;
}

}  // namespace moesim::cli
