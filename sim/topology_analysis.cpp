// What follows from the cluster graph and its routes: hop statistics, bisection bandwidth, link loads of
// a traffic matrix, a GraphViz export and a text summary.
#include <algorithm>
#include <boost/graph/graphviz.hpp>
#include <boost/graph/push_relabel_max_flow.hpp>
#include <cmath>
#include <ostream>
#include <sstream>

#include "scenarios/error.hpp"
#include "sim/topology.hpp"
#include "sim/topology_internal.hpp"

namespace moesim::sim {
namespace {

std::string bandwidth_text(double bytes_per_s) {
  return internal::number_text(bytes_per_s / 1e9) + " GB/s";
}

}  // namespace

HopStats Topology::hop_stats() const {
  HopStats s;
  Path p;
  double total = 0;
  for (int a = 0; a < gpus(); ++a)
    for (int b = 0; b < gpus(); ++b) {
      if (a == b) continue;
      path(a, b, p);
      total += static_cast<double>(p.size());
      s.diameter = std::max(s.diameter, static_cast<int>(p.size()));
      ++s.pairs;
    }
  s.average = s.pairs > 0 ? total / static_cast<double>(s.pairs) : 0.0;
  return s;
}

// ----------------------------------------------------------------------------------------- analyses

double Topology::bisection_bandwidth() const {
  if (c_.nodes < 2) return 0.0;
  using Traits = boost::adjacency_list_traits<boost::vecS, boost::vecS, boost::directedS>;
  using Flow = boost::adjacency_list<
      boost::vecS, boost::vecS, boost::directedS, boost::no_property,
      boost::property<boost::edge_capacity_t, long long,
                      boost::property<boost::edge_residual_capacity_t, long long,
                                      boost::property<boost::edge_reverse_t, Traits::edge_descriptor>>>>;
  const int n = num_vertices(), source = n, sink = n + 1;
  Flow f(static_cast<std::size_t>(n) + 2);
  auto cap = boost::get(boost::edge_capacity, f);
  auto rev = boost::get(boost::edge_reverse, f);
  // Capacities in whole bytes/s (exact integer arithmetic). Each direction of a full-duplex link is an
  // arc of its bandwidth paired with a zero-capacity residual arc, the form push-relabel expects.
  const auto arc = [&](int u, int v, long long c) {
    const auto a = boost::add_edge(u, v, f).first, b = boost::add_edge(v, u, f).first;
    cap[a] = c;
    cap[b] = 0;
    rev[a] = b;
    rev[b] = a;
  };
  std::vector<long long> incident(static_cast<std::size_t>(n), 0);
  for (int id = 0; id < num_links(); ++id) {
    const long long c = std::llround(link(id).bandwidth);
    arc(link_source(id), link_target(id), c);
    arc(link_target(id), link_source(id), c);
    incident[link_source(id)] += c;
    incident[link_target(id)] += c;
  }
  // A GPU can never move more than its own links carry: that bounds the super-source/sink arcs
  // without risking overflow.
  const int half = c_.nodes / 2;
  for (int gpu = 0; gpu < gpus(); ++gpu) {
    const int v = gpu_vertex_[gpu];
    if (gpu / c_.gpus_per_node < half)
      arc(source, v, incident[v]);
    else
      arc(v, sink, incident[v]);
  }
  return static_cast<double>(boost::push_relabel_max_flow(f, source, sink));
}

double Topology::fat_tree_bisection(const ClusterSpec& c) {
  return (c.nodes / 2) * c.gpus_per_node * c.scale_out.nic_bandwidth /
         std::max(1.0, c.scale_out.oversubscription);
}

LinkLoads Topology::link_loads(const TrafficMatrix& traffic) const {
  if (traffic.gpus != gpus())
    throw ConfigError("link_loads: expected a " + std::to_string(gpus()) + "-GPU traffic matrix, found " +
                      std::to_string(traffic.gpus));
  LinkLoads l;
  l.bytes.assign(2 * links_.size(), 0.0);
  Path p;
  for (int a = 0; a < gpus(); ++a)
    for (int b = 0; b < gpus(); ++b) {
      const double bytes = traffic(a, b);
      if (bytes <= 0 || a == b) continue;
      path(a, b, p);
      for (const Hop& h : p) l.bytes[h.directed()] += bytes;
    }
  for (int i = 0; i < static_cast<int>(l.bytes.size()); ++i) {
    const double t = l.bytes[i] / link(i / 2).bandwidth;
    if (l.bytes[i] > 0 && t > l.time_lower_bound) {
      l.time_lower_bound = t;
      l.busiest = i;
    }
  }
  return l;
}

void Topology::write_graphviz(std::ostream& os) const {
  std::vector<std::string> names;
  for (int v = 0; v < num_vertices(); ++v) names.push_back(vertex_name(v));
  const auto ids = boost::make_iterator_property_map(names.begin(), boost::get(boost::vertex_index, g_));
  const auto vertex_writer = [&](std::ostream& out, Graph::vertex_descriptor v) {
    out << "[label=\"" << names[v] << "\" shape=" << (g_[v].kind == VertexKind::kGpu ? "ellipse" : "box")
        << "]";
  };
  const auto edge_writer = [&](std::ostream& out, Graph::edge_descriptor e) {
    out << "[label=\"" << bandwidth_text(g_[e].bandwidth) << " " << to_string(g_[e].kind) << "\"]";
  };
  boost::write_graphviz(os, g_, vertex_writer, edge_writer, boost::default_writer(), ids);
}

std::string Topology::summary() const {
  std::ostringstream os;
  const FabricShape& s = shape_;
  os << "topology " << (c_.name.empty() ? "(unnamed)" : c_.name) << ": " << c_.nodes << " nodes × "
     << c_.gpus_per_node << " GPUs, NVLink domains of " << domain_gpus_ << " GPUs, scale-out " << s.kind;
  if (s.levels > 0)
    os << " (" << s.planes << " plane(s), " << s.levels << " levels, radix " << c_.scale_out.radix
       << "; per plane " << s.leaves << " leaves, " << s.spines << " spines, " << s.cores << " cores)";
  else if (s.groups > 0)
    os << " (" << s.groups << " groups of " << s.routers_per_group << " routers, p = h = " << s.global_ports
       << ")";
  else if (c_.scale_out.kind == TopologyKind::kTorus && c_.scale_out.nic_bandwidth > 0)
    os << " (" << s.dims[0] << " × " << s.dims[1] << " × " << s.dims[2] << ")";
  os << "\nvertices " << num_vertices() << ":";
  for (int k = 0; k <= static_cast<int>(VertexKind::kRouter); ++k)
    if (const int n = count(static_cast<VertexKind>(k)); n > 0)
      os << " " << to_string(static_cast<VertexKind>(k)) << " " << n;
  os << "\nlinks " << num_links() << ":";
  for (int k = 0; k <= static_cast<int>(LinkKind::kTorus); ++k)
    if (const int n = count(static_cast<LinkKind>(k)); n > 0)
      os << " " << to_string(static_cast<LinkKind>(k)) << " " << n;
  const HopStats h = hop_stats();
  os << "\nroutes: average " << internal::number_text(h.average) << " hops, diameter " << h.diameter << " ("
     << h.pairs << " GPU pairs)";
  os << "\nbisection: " << bandwidth_text(bisection_bandwidth()) << " (max flow, first " << c_.nodes / 2
     << " nodes to the other " << c_.nodes - c_.nodes / 2 << ")\n";
  return os.str();
}

}  // namespace moesim::sim
