#include "sim/serving_sim.hpp"

#include <xbt/log.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <deque>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <simgrid/s4u.hpp>
#include <string>
#include <unordered_map>

#include "models/placement.hpp"
#include "models/routing_source.hpp"
#include "scenarios/error.hpp"
#include "traces/load.hpp"

namespace sg4 = simgrid::s4u;

namespace moesim::sim {
namespace {

using models::IterationCost;
using models::IterationPricer;
using models::ServingBatch;

// Uniform in (0, 1) and standard normal draws from a SplitMix64 stream (Box-Muller).
double uniform(traces::SplitMix64& g) {
  return (double(g.next() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
double normal(traces::SplitMix64& g) {
  const double u = uniform(g), v = uniform(g);
  return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
}

struct Req {
  const traces::Request* r = nullptr;
  int64_t prompt = 0;     // tokens to prefill: uncached prompt (plus generated tokens after a recompute)
  int64_t prefilled = 0;  // of prompt
  int64_t context = 0;    // tokens in its KV cache
  int64_t generated = 0;  // output tokens produced
  int64_t cached = 0;     // prompt tokens its prefill rank's prefix cache served
  int64_t blocks = 0;     // KV blocks held on its rank
  int64_t admitted = 0;   // admission order on its rank (the latest admitted is preempted first)
  double first = -1, finish = -1;
  int instance = -1, preemptions = 0;
  bool decoding = false;  // in its rank's running set
  bool joined = false;    // joined the running set in this iteration's prefill (decodes from the next one)
};

struct Rank {
  std::deque<int> waiting;      // not yet admitted (prefill side: prompts; decode side: KV received)
  std::vector<int> prefilling;  // admitted prompts being chunked
  std::vector<int> running;     // decoding
  int64_t blocks_free = 0, blocks_total = 0;
  int64_t queued_tokens = 0;  // prompt tokens waiting or prefilling (prefill-side load)
  int64_t incoming = 0;       // KV caches on their way to this rank (decode side)
  int64_t admissions = 0;
  sg4::Host* host = nullptr;
  // Per-rank prefix cache (serving.prefix_cache_tokens): resident prefixes, most recently used first, with
  // their tokens.
  std::list<std::pair<int64_t, int64_t>> lru;
  std::unordered_map<int64_t, std::list<std::pair<int64_t, int64_t>>::iterator> resident;
  int64_t prefix_tokens = 0;
  bool idle() const { return waiting.empty() && prefilling.empty() && running.empty(); }
};

struct Kind {
  ServingRole role = ServingRole::kColocated;
  std::unique_ptr<IterationPricer> pricer;
  const ServingInstanceSpec* spec = nullptr;
  std::map<std::array<int64_t, 6>, IterationCost> memo;
  std::vector<double> rank_share;  // expected share of routed copies per GPU (first MoE layer)
  int64_t running_cap = 0;         // sequences a rank may run: max_running, and the TPOT SLO's batch
  int64_t state_blocks = 0;        // KV blocks a sequence's recurrent state takes (hybrid models)
  // Run totals over the iterations of every replica of this kind.
  double iterations = 0, busy = 0, decode_seqs = 0, prefill_tokens = 0, all_to_all = 0, compute = 0,
         exposed = 0;
  double attention = 0, experts = 0, imbalance = 0, kv_used = 0, input_tokens = 0, output_tokens = 0;
  int rebalances = 0;            // online EPLB rebalances of every replica of this kind
  double rebalance_seconds = 0;  // the replicas' pauses while expert weights moved
  // Routing trace: the MoE layers each iteration's draw looks at, and the busiest GPU's share of each at
  // the placement and mean shares the iteration prices assume.
  std::vector<int> layers;
  std::vector<double> priced_top;
};

struct Replica {
  int kind = 0, number = 0;
  std::vector<Rank> ranks;
  sg4::MutexPtr mutex;
  sg4::ConditionVariablePtr cv;
  traces::SplitMix64 rng{1};
  // Routing trace: iterations run (the next one routes as trace step iterations mod steps), this
  // replica's placement per MoE layer, and the routed copies per trace step since its last rebalance.
  int64_t iterations = 0;
  std::vector<models::SlotMap> slot_maps;
  std::vector<double> window;
  double last_rebalance = 0;
};

class ServingSim {
 public:
  ServingSim(const Scenario& s, const std::vector<traces::Request>& rq) : s_(s), rq_(rq) {}
  models::ServingResult run(std::vector<models::ServedRequest>* served);

 private:
  void build();
  void arrivals();
  void instance_loop(Replica& x);
  Rank& least_loaded(bool prefill_side, int* replica);
  Rank& route(const traces::Request& q, int* replica);
  double load_of(const Replica& x, const Rank& r, bool prefill_side) const;
  int64_t blocks_for(int64_t tokens) const { return (tokens + block_ - 1) / block_; }
  // KV blocks a sequence of `tokens` tokens holds on an instance of kind `k`: its tokens' and its state's.
  int64_t seq_blocks(const Kind& k, int64_t tokens) const { return blocks_for(tokens) + k.state_blocks; }
  bool admit(Replica& x, Rank& r);
  int preempt(Replica& x, Rank& r, int keep);
  void finish(Replica& x, Rank& r, int id, double now);
  void start_transfer(Replica& from, Rank& r, int id);
  double skew(Kind& k, Replica& x, double copies);
  double rebalance(Kind& k, Replica& x, double now);
  const IterationCost& price(Kind& k, const ServingBatch& b);

  const Scenario& s_;
  const std::vector<traces::Request>& rq_;
  std::vector<Req> req_;
  std::vector<Kind> kinds_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  int64_t block_ = 64;
  int queries_ = 1;
  int64_t completed_ = 0;
  bool disaggregated_ = false;
  double kv_elem_ = 2;
  double decode_context_ = 0;  // mean context of a decoding sequence over the requests
  sg4::MutexPtr done_mutex_;
  sg4::ConditionVariablePtr done_cv_;
  std::vector<std::pair<double, double>> kv_usage_, expert_load_;
  int64_t prefix_lookups_ = 0, prefix_hits_ = 0;
  int64_t prefix_asked_ = 0, prefix_served_ = 0;  // cached tokens the requests name, and those served
  int traced_replica_ = -1;
  // The measurement window (serving.measure_from, measure_until), absolute simulated times: the whole run
  // when the scenario sets none.
  double from_ = -std::numeric_limits<double>::infinity(), until_ = std::numeric_limits<double>::infinity();
  bool counted(double t) const { return t >= from_ && t <= until_; }
};

void ServingSim::build() {
  block_ = s_.serving.kv_block_tokens;
  queries_ = 1 + s_.serving.mtp_tokens;
  kv_elem_ = s_.serving.kv_dtype == KvDtype::kFp8 ? 1.0 : 2.0;
  auto* zone = sg4::create_star_zone("serving");
  const double nic = s_.cluster.scale_out.nic_bandwidth > 0 ? s_.cluster.scale_out.nic_bandwidth
                                                            : s_.cluster.scale_up.bandwidth;
  const double latency = s_.cluster.scale_out.latency;
  int number = 0;
  for (std::size_t k = 0; k < s_.serving.instances.size(); ++k) {
    const ServingInstanceSpec& in = s_.serving.instances[k];
    Kind kind;
    kind.role = in.role;
    kind.spec = &in;
    kind.pricer = std::make_unique<IterationPricer>(s_, static_cast<int>(k));
    disaggregated_ = disaggregated_ || in.role != ServingRole::kColocated;
    const int gpus = kind.pricer->gpus();
    kind.rank_share.assign(static_cast<std::size_t>(gpus), 1.0 / gpus);
    kind.running_cap = in.max_running;
    kind.state_blocks = int64_t(kind.pricer->state_tokens_per_sequence()) / s_.serving.kv_block_tokens;
    if (s_.serving.tpot_slo > 0 && in.role != ServingRole::kPrefill) {
      // SLO-aware admission: at most the largest batch whose decode iteration (at the requests' mean
      // decode context) meets the TPOT SLO, as the analytic engine caps it.
      const double acc = models::tokens_per_iteration(s_.serving.mtp_tokens, s_.serving.mtp_acceptance);
      const auto meets = [&](int64_t b) {
        models::ServingBatch x;
        x.decode_seqs = double(b);
        x.decode_queries = queries_;
        x.decode_kv = decode_context_;
        x.kv_elem_bytes = kv_elem_;
        return kind.pricer->price(x).seconds / acc <= s_.serving.tpot_slo;
      };
      kind.running_cap = models::largest_batch(in.max_running, meets);
    }
    const auto& trace = kind.pricer->trace_shares();
    if (!trace.empty()) {
      const auto& maps = kind.pricer->slot_maps();
      const auto& mean = kind.pricer->shares();
      kind.layers = models::sampled_layers(static_cast<int>(mean.size()), s_.routing.sample_layers);
      for (int l : kind.layers)
        kind.priced_top.push_back(models::busiest_share(mean[static_cast<std::size_t>(l)],
                                                        maps[static_cast<std::size_t>(l) % maps.size()]));
    }
    const double cap = kind.pricer->kv_capacity_tokens();
    for (int c = 0; c < in.count; ++c) {
      auto x = std::make_unique<Replica>();
      x->kind = static_cast<int>(k);
      x->number = number++;
      x->mutex = sg4::Mutex::create();
      x->cv = sg4::ConditionVariable::create();
      x->rng = traces::SplitMix64(s_.serving.requests.seed * 0x9E3779B97F4A7C15ULL + uint64_t(x->number) + 1);
      x->ranks.resize(static_cast<std::size_t>(kind.pricer->dp()));
      if (!trace.empty()) {
        x->slot_maps = kind.pricer->slot_maps();
        x->window.assign(trace.size(), 0.0);
      }
      for (std::size_t r = 0; r < x->ranks.size(); ++r) {
        Rank& rank = x->ranks[r];
        rank.blocks_total = rank.blocks_free = cap > 0 ? int64_t(cap) / block_ : 0;
        const std::string name = "i" + std::to_string(x->number) + "r" + std::to_string(r);
        rank.host = zone->create_host(name, 1.0);
        if (in.role != ServingRole::kColocated) {
          // The DP rank's NICs (one per GPU of its tensor-parallel group) to the fabric.
          auto* link = zone->create_split_duplex_link(name + "-nic", nic * in.tp);
          link->set_latency(latency);
          link->seal();
          zone->add_route(rank.host->get_netpoint(), nullptr, nullptr, nullptr,
                          {sg4::LinkInRoute(link, sg4::LinkInRoute::Direction::UP)}, true);
        }
      }
      if (traced_replica_ < 0 && in.role != ServingRole::kPrefill) traced_replica_ = x->number;
      replicas_.push_back(std::move(x));
    }
    kinds_.push_back(std::move(kind));
  }
  zone->seal();
}

double ServingSim::load_of(const Replica& x, const Rank& r, bool prefill_side) const {
  const ServingRole role = kinds_[static_cast<std::size_t>(x.kind)].role;
  return prefill_side && role == ServingRole::kPrefill
             ? double(r.queued_tokens)
             : double(r.waiting.size() + r.prefilling.size() + r.running.size() + r.incoming);
}

Rank& ServingSim::least_loaded(bool prefill_side, int* replica) {
  Rank* best = nullptr;
  double best_load = std::numeric_limits<double>::infinity();
  for (auto& x : replicas_) {
    const ServingRole role = kinds_[static_cast<std::size_t>(x->kind)].role;
    if (prefill_side ? role == ServingRole::kDecode : role == ServingRole::kPrefill) continue;
    for (Rank& r : x->ranks) {
      const double load = load_of(*x, r, prefill_side);
      if (load < best_load) best_load = load, best = &r, *replica = x->number;
    }
  }
  return *best;
}

// The prefill-side rank of a new request: the least loaded, or with serving.prefix_routing the least loaded
// of those holding its prefix unless that one is above prefix_balance × the least load + 1.
Rank& ServingSim::route(const traces::Request& q, int* replica) {
  Rank& least = least_loaded(true, replica);
  if (!s_.serving.prefix_routing || q.prefix < 0) return least;
  const double floor = load_of(*replicas_[static_cast<std::size_t>(*replica)], least, true);
  Rank* best = nullptr;
  int best_replica = *replica;
  double best_load = std::numeric_limits<double>::infinity();
  for (auto& x : replicas_) {
    if (kinds_[static_cast<std::size_t>(x->kind)].role == ServingRole::kDecode) continue;
    for (Rank& r : x->ranks) {
      if (r.resident.count(q.prefix) == 0) continue;
      const double load = load_of(*x, r, true);
      if (load < best_load) best_load = load, best = &r, best_replica = x->number;
    }
  }
  if (best == nullptr || best_load > s_.serving.prefix_balance * floor + 1) return least;
  *replica = best_replica;
  return *best;
}

void ServingSim::arrivals() {
  for (std::size_t i = 0; i < req_.size(); ++i) {
    const double at = req_[i].r->arrival_s;
    if (at > sg4::Engine::get_clock()) sg4::this_actor::sleep_until(at);
    int rep = 0;
    Rank& r = route(*req_[i].r, &rep);
    Req& q = req_[i];
    if (s_.serving.prefix_cache_tokens > 0 && q.r->prefix >= 0 && q.r->cached_tokens > 0) {
      // The rank's prefix cache, a radix cache keyed by the shared prefix: a resident prefix serves the
      // tokens it holds in common with the request (the shorter of the two: a partial match), and keeps
      // the longer of the two; either way the prefix becomes the most recently used, the least recently
      // used ones evicted beyond the cache's tokens.
      ++prefix_lookups_;
      auto it = r.resident.find(q.r->prefix);
      const bool hit = it != r.resident.end();
      int64_t held = 0;
      if (hit) {
        ++prefix_hits_;
        held = it->second->second;
        r.prefix_tokens -= held;
        r.lru.erase(it->second);
      }
      q.cached = std::min(held, q.r->cached_tokens);
      prefix_asked_ += q.r->cached_tokens;
      prefix_served_ += q.cached;
      q.prompt = q.r->input_tokens - q.cached;
      q.context = q.cached;
      const int64_t keep = std::max(held, q.r->cached_tokens);
      r.lru.emplace_front(q.r->prefix, keep);
      r.resident[q.r->prefix] = r.lru.begin();
      r.prefix_tokens += keep;
      while (r.prefix_tokens > s_.serving.prefix_cache_tokens && !r.lru.empty()) {
        r.prefix_tokens -= r.lru.back().second;
        r.resident.erase(r.lru.back().first);
        r.lru.pop_back();
      }
    }
    r.waiting.push_back(static_cast<int>(i));
    r.queued_tokens += req_[i].prompt;
    Replica& x = *replicas_[static_cast<std::size_t>(rep)];
    if (kinds_[static_cast<std::size_t>(x.kind)].role == ServingRole::kColocated) req_[i].instance = x.number;
    x.cv->notify_all();
  }
  std::unique_lock<sg4::Mutex> lock(*done_mutex_);
  while (completed_ < int64_t(req_.size())) done_cv_->wait(lock);
}

// Admits waiting requests while the running set and the KV cache allow, in arrival order.
bool ServingSim::admit(Replica& x, Rank& r) {
  const Kind& kind = kinds_[static_cast<std::size_t>(x.kind)];
  const ServingInstanceSpec& in = *kind.spec;
  bool any = false;
  while (!r.waiting.empty()) {
    const int id = r.waiting.front();
    Req& q = req_[static_cast<std::size_t>(id)];
    if (int64_t(r.prefilling.size() + r.running.size()) >=
        kinds_[static_cast<std::size_t>(x.kind)].running_cap)
      break;
    const bool decode_only = in.role == ServingRole::kDecode;
    const int64_t need =
        decode_only ? seq_blocks(kind, q.context + 1) - q.blocks : seq_blocks(kind, q.context + q.prompt + 1);
    if (need > r.blocks_free) break;
    r.blocks_free -= need;
    q.blocks += need;
    q.admitted = ++r.admissions;
    r.waiting.pop_front();
    (decode_only ? r.running : r.prefilling).push_back(id);
    q.decoding = decode_only;
    any = true;
  }
  return any;
}

// Takes the KV blocks of the latest admitted sequence other than `keep` (or of `keep` when it is alone).
int ServingSim::preempt(Replica& x, Rank& r, int keep) {
  const bool decode_only = kinds_[static_cast<std::size_t>(x.kind)].role == ServingRole::kDecode;
  int victim = keep;
  int64_t latest = -1;
  for (const auto* set : {&r.running, &r.prefilling})
    for (int id : *set)
      if (id != keep && req_[static_cast<std::size_t>(id)].admitted > latest)
        latest = req_[static_cast<std::size_t>(id)].admitted, victim = id;
  Req& v = req_[static_cast<std::size_t>(victim)];
  const bool was_prefilling =
      std::find(r.prefilling.begin(), r.prefilling.end(), victim) != r.prefilling.end();
  for (auto* set : {&r.running, &r.prefilling})
    set->erase(std::remove(set->begin(), set->end(), victim), set->end());
  r.blocks_free += v.blocks;
  v.blocks = 0;
  ++v.preemptions;
  if (!decode_only) {
    // Recomputation: its generated tokens join the prompt; the prefix cache still holds the cached part.
    const int64_t outstanding = was_prefilling ? v.prompt - v.prefilled : 0;
    v.prompt = v.r->input_tokens - v.cached + v.generated;
    r.queued_tokens += v.prompt - outstanding;
    v.prefilled = 0;
    v.context = v.cached;
  }
  v.decoding = false;
  r.waiting.push_front(victim);
  return victim;
}

void ServingSim::finish(Replica& x, Rank& r, int id, double now) {
  Req& q = req_[static_cast<std::size_t>(id)];
  q.finish = now;
  r.blocks_free += q.blocks;
  q.blocks = 0;
  (void)x;
  ++completed_;
  if (completed_ == int64_t(req_.size())) done_cv_->notify_all();
}

// The KV cache of a prefilled prompt moves to the least loaded decode rank over both NICs; the prefill
// rank keeps its blocks until the transfer is done.
void ServingSim::start_transfer(Replica& from, Rank& r, int id) {
  const Kind& k = kinds_[static_cast<std::size_t>(from.kind)];
  // The KV cache and (hybrid models) the recurrent state, from every GPU of the rank.
  const double bytes = (double(req_[static_cast<std::size_t>(id)].context) * k.pricer->kv_bytes_per_token() +
                        k.pricer->state_bytes_per_sequence()) *
                       k.spec->tp;
  Rank* src = &r;
  Replica* src_rep = &from;
  // The destination is chosen (and counted in its load) now, so that the transfers started together spread.
  int rep = 0;
  Rank* dst_rank = &least_loaded(false, &rep);
  ++dst_rank->incoming;
  req_[static_cast<std::size_t>(id)].instance = rep;
  sg4::Actor::create("kv" + std::to_string(id), r.host, [this, src, src_rep, id, bytes, dst_rank, rep] {
    Rank& dst = *dst_rank;
    Req& q = req_[static_cast<std::size_t>(id)];
    sg4::Comm::sendto(src->host, dst.host, bytes);
    --dst.incoming;
    src->blocks_free += q.blocks;
    q.blocks = 0;
    src_rep->cv->notify_all();
    dst.waiting.push_back(id);
    replicas_[static_cast<std::size_t>(rep)]->cv->notify_all();
  });
}

// Busiest-GPU expert load drawn for one iteration over routing.sample_layers layers, relative to the
// expected busiest load (normal approximation of each GPU's multinomial count). Sampled mode: every GPU
// expects the same share. Trace mode: the shares of the trace step this iteration takes (the replica's
// iterations cycle through the steps) through the replica's current placement, against the busiest share
// the prices assume (the whole trace's mean through the initial placement).
double ServingSim::skew(Kind& k, Replica& x, double copies) {
  traces::SplitMix64& g = x.rng;
  if (s_.model.moe.experts == 0 || copies <= 0) return 1.0;
  const auto& trace = k.pricer->trace_shares();
  if (s_.routing.mode == RoutingMode::kTrace && !trace.empty()) {
    const std::size_t step = static_cast<std::size_t>(x.iterations % static_cast<int64_t>(trace.size()));
    x.window[step] += copies;
    double drawn = 0, priced = 0;
    for (std::size_t j = 0; j < k.layers.size(); ++j) {
      const std::size_t l = static_cast<std::size_t>(k.layers[j]);
      double top = 0;
      for (double p : models::rank_shares(trace[step][l], x.slot_maps[l % x.slot_maps.size()])) {
        const double mu = copies * p;
        top = std::max(top, std::max(0.0, mu + std::sqrt(mu * (1 - p)) * normal(g)));
      }
      drawn += top;
      priced += copies * k.priced_top[j];
    }
    ++x.iterations;
    return priced > 0 ? std::max(1.0, drawn / priced) : 1.0;
  }
  if (s_.routing.mode != RoutingMode::kSampled) return 1.0;
  double expected_max = 0;
  for (double p : k.rank_share) expected_max = std::max(expected_max, copies * p);
  double sum = 0;
  const int layers = std::max(1, s_.routing.sample_layers);
  for (int l = 0; l < layers; ++l) {
    double top = 0;
    for (double p : k.rank_share) {
      const double mu = copies * p;
      top = std::max(top, std::max(0.0, mu + std::sqrt(mu * (1 - p)) * normal(g)));
    }
    sum += top / expected_max;
  }
  return std::max(1.0, sum / layers);
}

// Online EPLB (serving.rebalance_interval): the replica's placement recomputed, by the scenario's
// placement policy, from the expert loads its iterations routed since the last rebalance (each trace
// step's shares weighted by the copies routed while it was current). Returns the pause while the expert
// weights move (the replica does not iterate meanwhile).
double ServingSim::rebalance(Kind& k, Replica& x, double now) {
  const auto& trace = k.pricer->trace_shares();
  double total = 0;
  for (double w : x.window) total += w;
  x.last_rebalance = now;
  if (total <= 0) return 0;
  const auto& mean = k.pricer->shares();
  models::ExpertLoads loads(mean.size(), std::vector<double>(mean.front().size(), 0.0));
  for (std::size_t st = 0; st < trace.size(); ++st) {
    if (x.window[st] <= 0) continue;
    const double w = x.window[st] / total;
    for (std::size_t l = 0; l < loads.size(); ++l)
      for (std::size_t e = 0; e < loads[l].size(); ++e) loads[l][e] += w * trace[st][l][e];
  }
  models::PlacementResult placed = models::place_for(k.pricer->scenario(), loads);
  std::fill(x.window.begin(), x.window.end(), 0.0);
  ++k.rebalances;
  if (placed.slot_maps.empty()) return 0;
  // The weights of every expert a GPU newly holds arrive over its NIC (they may come from any node): the
  // replica pauses for the GPU that receives the most.
  double most = 0;
  const std::size_t layers = loads.size();
  for (int g = 0; g < placed.slot_maps.front().ranks; ++g) {
    double fetched = 0;
    for (std::size_t l = 0; l < layers; ++l) {
      const auto& before = x.slot_maps[l % x.slot_maps.size()].slots[static_cast<std::size_t>(g)];
      const auto& after = placed.slot_maps[l % placed.slot_maps.size()].slots[static_cast<std::size_t>(g)];
      for (const auto& [e, frac] : after) {
        bool held = false;
        for (const auto& [e0, f0] : before) held = held || e0 == e;
        fetched += held ? 0.0 : 1.0;
      }
    }
    most = std::max(most, fetched);
  }
  x.slot_maps = std::move(placed.slot_maps);
  const auto& cl = k.pricer->scenario().cluster;
  const double nic = cl.scale_out.nic_bandwidth > 0 ? cl.scale_out.nic_bandwidth : cl.scale_up.bandwidth;
  const double pause = most * k.pricer->expert_bytes() / nic;
  k.rebalance_seconds += pause;
  return pause;
}

const IterationCost& ServingSim::price(Kind& k, const ServingBatch& b) {
  const auto up = [&](double v) { return int64_t(std::ceil(v / double(block_))) * block_; };
  const std::array<int64_t, 6> key{int64_t(b.decode_seqs),  up(b.decode_kv),  int64_t(b.prefill_tokens),
                                   int64_t(b.prefill_seqs), up(b.prefill_kv), up(b.prefill_context)};
  auto it = k.memo.find(key);
  if (it != k.memo.end()) return it->second;
  ServingBatch q = b;
  q.decode_kv = double(key[1]);
  q.prefill_kv = double(key[4]);
  q.prefill_context = double(key[5]);
  return k.memo.emplace(key, k.pricer->price(q)).first->second;
}

void ServingSim::instance_loop(Replica& x) {
  Kind& k = kinds_[static_cast<std::size_t>(x.kind)];
  const ServingInstanceSpec& in = *k.spec;
  const bool prefill_role = in.role == ServingRole::kPrefill;
  const double p = s_.serving.mtp_acceptance;
  std::vector<std::vector<std::pair<int, int64_t>>> chunks(x.ranks.size());
  while (true) {
    // Schedule every rank: admissions, decode tokens first, prompt chunks in the rest of the budget.
    ServingBatch busiest;
    busiest.decode_queries = queries_;
    busiest.kv_elem_bytes = kv_elem_;
    double busiest_kv = 0, busiest_pairs = 0, busiest_ctx = 0, tokens_total = 0;
    bool work = false;
    for (std::size_t ri = 0; ri < x.ranks.size(); ++ri) {
      Rank& r = x.ranks[ri];
      admit(x, r);
      chunks[ri].clear();
      double kv = 0;
      for (int id : r.running) kv += double(req_[static_cast<std::size_t>(id)].context);
      int64_t budget = in.max_batch_tokens - int64_t(r.running.size()) * queries_;
      double pairs = 0, ctx = 0, tokens = 0;
      for (int id : r.prefilling) {
        if (budget <= 0) break;
        Req& q = req_[static_cast<std::size_t>(id)];
        const int64_t n = std::min(budget, q.prompt - q.prefilled);
        if (n <= 0) continue;
        chunks[ri].push_back({id, n});
        budget -= n;
        const double a = double(q.context), b = a + double(n);  // positions [a, b) attend to p + 1 keys
        pairs += (b * (b + 1) - a * (a + 1)) / 2;
        ctx += b;
        tokens += double(n);
      }
      const double seqs = double(r.running.size());
      work = work || seqs > 0 || tokens > 0;
      busiest.decode_seqs = std::max(busiest.decode_seqs, seqs);
      busiest_kv = std::max(busiest_kv, kv);
      busiest.prefill_tokens = std::max(busiest.prefill_tokens, tokens);
      busiest.prefill_seqs = std::max(busiest.prefill_seqs, double(chunks[ri].size()));
      busiest_pairs = std::max(busiest_pairs, pairs);
      busiest_ctx = std::max(busiest_ctx, ctx);
      tokens_total += seqs * queries_ + tokens;
    }
    if (!work) {
      std::unique_lock<sg4::Mutex> lock(*x.mutex);
      x.cv->wait(lock);
      continue;
    }
    busiest.decode_kv = busiest.decode_seqs > 0 ? busiest_kv / busiest.decode_seqs : 0;
    busiest.prefill_kv = busiest.prefill_tokens > 0 ? busiest_pairs / busiest.prefill_tokens : 0;
    busiest.prefill_context = busiest_ctx;
    const IterationCost& c = price(k, busiest);
    const double load = skew(k, x, tokens_total * std::max(1, s_.model.moe.top_k));
    const double t = c.seconds + c.experts * (load - 1);
    sg4::this_actor::sleep_for(t);
    const double now = sg4::Engine::get_clock();
    // The instance kind's figures count the iterations that end in the measurement window.
    const bool in_window = counted(now);
    if (in_window) {
      k.iterations += 1, k.busy += t, k.decode_seqs += busiest.decode_seqs,
          k.prefill_tokens += busiest.prefill_tokens;
      k.all_to_all += c.all_to_all, k.compute += c.compute + c.experts * (load - 1),
          k.exposed += c.exposed_comm;
      k.attention += c.attention, k.experts += c.experts * load, k.imbalance += load * c.max_over_mean_gpu;
    }
    if (x.number == traced_replica_) expert_load_.emplace_back(now, load * c.max_over_mean_gpu);
    if (s_.serving.rebalance_interval > 0 && !x.window.empty() &&
        now - x.last_rebalance >= s_.serving.rebalance_interval) {
      const double pause = rebalance(k, x, now);
      if (pause > 0) sg4::this_actor::sleep_for(pause);
    }
    // Progress: prompt chunks, then one decode step of every running sequence.
    for (std::size_t ri = 0; ri < x.ranks.size(); ++ri) {
      Rank& r = x.ranks[ri];
      for (const auto& [id, n] : chunks[ri]) {
        Req& q = req_[static_cast<std::size_t>(id)];
        q.prefilled += n;
        q.context += n;
        r.queued_tokens -= n;
        if (q.prefilled < q.prompt) continue;
        r.prefilling.erase(std::find(r.prefilling.begin(), r.prefilling.end(), id));
        if (in_window) {
          k.input_tokens += double(q.r->input_tokens);
          if (q.generated == 0) k.output_tokens += 1;
        }
        if (q.first < 0) q.first = now;  // the prompt's last token gives the first output token
        if (q.generated == 0) q.generated = 1;
        q.context += 1;
        if (q.generated >= q.r->output_tokens) {
          if (prefill_role) {
            r.blocks_free += q.blocks;
            q.blocks = 0;
            q.instance = -1;
          }
          finish(x, r, id, now);
        } else if (prefill_role) {
          start_transfer(x, r, id);
        } else {
          r.running.push_back(id);
          q.decoding = true;
          q.joined = true;
        }
      }
      if (prefill_role) continue;
      std::vector<int> done;
      const std::vector<int> ids = r.running;
      for (int id : ids) {
        Req& q = req_[static_cast<std::size_t>(id)];
        if (q.joined) {  // joined in this iteration's prefill: decodes from the next one
          q.joined = false;
          continue;
        }
        if (!q.decoding) continue;  // preempted above
        int64_t emitted = 1;
        for (int d = 0; d < s_.serving.mtp_tokens && uniform(x.rng) < p; ++d) ++emitted;
        emitted = std::min(emitted, q.r->output_tokens - q.generated);
        q.generated += emitted;
        if (in_window) k.output_tokens += double(emitted);
        q.context += emitted;
        if (q.generated >= q.r->output_tokens) {
          done.push_back(id);
          continue;
        }
        const int64_t need = seq_blocks(k, q.context + 1) - q.blocks;
        while (need > r.blocks_free && q.decoding)
          if (preempt(x, r, id) == id) break;
        if (!q.decoding) continue;
        if (need > 0) r.blocks_free -= need, q.blocks += need;
      }
      for (int id : done) {
        r.running.erase(std::find(r.running.begin(), r.running.end(), id));
        req_[static_cast<std::size_t>(id)].decoding = false;
        finish(x, r, id, now);
      }
    }
    double used = 0;
    for (const Rank& r : x.ranks) used += double(r.blocks_total - r.blocks_free) * double(block_);
    used /= double(x.ranks.size());
    if (in_window) k.kv_used += used * t;
    if (x.number == traced_replica_) kv_usage_.emplace_back(now, used);
  }
}

models::ServingResult ServingSim::run(std::vector<models::ServedRequest>* served) {
  models::ServingResult R;
  R.scenario = s_.name;
  R.engine = "des";
  R.fidelity = "request-level discrete-event (SimGrid): iterations priced per batch, KV transfers as flows";
  R.seed = s_.serving.requests.seed;
  req_.resize(rq_.size());
  for (std::size_t i = 0; i < rq_.size(); ++i) {
    Req& q = req_[i];
    q.r = &rq_[i];
    q.cached = rq_[i].cached_tokens;
    q.prompt = rq_[i].input_tokens - q.cached;
    q.context = q.cached;
  }
  if (sg4::Engine::has_instance())
    throw Error(
        "simulate_serving: a SimGrid engine already exists in this process (one simulation per process)");
  xbt_log_control_set("root.thresh:warning");
  static sg4::Engine* engine = new sg4::Engine("moesim-serving");  // one engine per process, never deleted
  sg4::Engine::set_config("network/model:CM02");
  sg4::Engine::set_config("network/crosstraffic", false);
  sg4::Engine::set_config("network/TCP-gamma", 1e12);
  sg4::Engine::set_config("contexts/stack-size", 256);
  decode_context_ = models::decode_context(rq_);
  build();
  // A request that cannot fit alone in a rank's KV cache would wait for ever: refuse the run instead.
  for (const auto& x : replicas_) {
    const Kind& k = kinds_[static_cast<std::size_t>(x->kind)];
    const int64_t blocks = x->ranks.front().blocks_total;
    R.gpus += k.pricer->gpus();
    R.nodes += k.spec->nodes;
    if (R.cost_model.empty()) R.cost_model = k.pricer->cost_model().name();
    for (std::size_t i = 0; i < rq_.size() && R.feasible; ++i) {
      const int64_t tokens = k.role == ServingRole::kPrefill ? rq_[i].input_tokens + 1
                                                             : rq_[i].input_tokens + rq_[i].output_tokens + 1;
      if (seq_blocks(k, tokens) > blocks) {
        R.feasible = false;
        R.infeasible_reason = std::string(to_string(k.role)) + " instance: request " + std::to_string(i + 1) +
                              " needs " + std::to_string(seq_blocks(k, tokens)) +
                              " KV blocks, a DP rank holds " + std::to_string(blocks) + " (weights " +
                              std::to_string(k.pricer->weight_bytes() / 1e9) + " GB per GPU)";
      }
    }
  }
  if (!R.feasible) return R;
  const double t0 = rq_.empty() ? 0 : rq_.front().arrival_s;
  const bool windowed = s_.serving.measure_from > 0 || s_.serving.measure_until > 0;
  if (windowed) {
    from_ = t0 + s_.serving.measure_from;
    if (s_.serving.measure_until > 0) until_ = t0 + s_.serving.measure_until;
  }
  done_mutex_ = sg4::Mutex::create();
  done_cv_ = sg4::ConditionVariable::create();
  sg4::Actor::create("arrivals", replicas_.front()->ranks.front().host, [this] { arrivals(); });
  for (auto& x : replicas_) {
    Replica* rep = x.get();
    sg4::Actor::create("instance" + std::to_string(rep->number), rep->ranks.front().host, [this, rep] {
      instance_loop(*rep);
    })->daemonize();
  }
  engine->run();

  // Latencies and throughput over the completed requests; with a measurement window, latencies and SLO
  // attainment over the requests arriving in it, throughput over the work done in it.
  std::vector<double> ttft, tpot, e2e;
  double first_arrival = t0, last = first_arrival;
  double in = 0, out = 0, cached = 0;
  int64_t good = 0, arrived = 0, good_arrived = 0, finished_in = 0, good_finished_in = 0;
  for (std::size_t i = 0; i < req_.size(); ++i) {
    const Req& q = req_[i];
    const double tp = q.r->output_tokens > 1 ? (q.finish - q.first) / double(q.r->output_tokens - 1) : 0.0;
    const bool ok = (s_.serving.ttft_slo <= 0 || q.first - q.r->arrival_s <= s_.serving.ttft_slo) &&
                    (s_.serving.tpot_slo <= 0 || tp <= s_.serving.tpot_slo);
    if (counted(q.r->arrival_s)) {
      ttft.push_back(q.first - q.r->arrival_s);
      e2e.push_back(q.finish - q.r->arrival_s);
      if (q.r->output_tokens > 1) tpot.push_back(tp);
      ++arrived;
      good_arrived += ok ? 1 : 0;
    }
    if (counted(q.finish)) ++finished_in, good_finished_in += ok ? 1 : 0;
    last = std::max(last, q.finish);
    in += double(q.r->input_tokens), out += double(q.r->output_tokens), cached += double(q.cached);
    good += ok ? 1 : 0;
    if (served)
      served->push_back({q.r->arrival_s, q.first, q.finish, q.r->input_tokens, q.r->output_tokens, q.cached,
                         q.instance, q.preemptions});
  }
  const double n = double(req_.size());
  R.requests = int64_t(req_.size());
  R.duration = last - first_arrival;
  R.offered_rate = rq_.size() > 1 && rq_.back().arrival_s > first_arrival
                       ? (n - 1) / (rq_.back().arrival_s - first_arrival)
                       : 0;
  R.mean_input = n > 0 ? in / n : 0, R.mean_output = n > 0 ? out / n : 0,
  R.mean_cached = n > 0 ? cached / n : 0;
  if (prefix_lookups_ > 0) R.prefix_hit_rate = double(prefix_hits_) / double(prefix_lookups_);
  if (prefix_asked_ > 0) R.prefix_token_hit_rate = double(prefix_served_) / double(prefix_asked_);
  R.ttft = models::latency_stats(ttft);
  R.tpot = models::latency_stats(tpot);
  R.e2e = models::latency_stats(e2e);
  if (windowed) {
    const double end = std::min(until_, last);
    R.window_from = from_ - t0;
    R.window_until = end - t0;
    R.duration = std::max(0.0, end - from_);
    if (arrived == 0 || R.duration <= 0) {
      const auto g = [](double x) {
        char b[32];
        std::snprintf(b, sizeof b, "%.4g", x);
        return std::string(b);
      };
      R.caveat +=
          std::string(R.caveat.empty() ? "" : "; ") + "the measurement window (from " +
          g(s_.serving.measure_from) + " s to " +
          (s_.serving.measure_until > 0 ? g(s_.serving.measure_until) + " s" : std::string("the end")) +
          " after the first arrival) holds no arriving request: the run ended " + g(last - t0) +
          " s after the first arrival";
    }
  }
  const double span = R.duration > 0 ? R.duration : 1;
  if (windowed) {
    double win_in = 0, win_out = 0;
    for (const Kind& k : kinds_) win_in += k.input_tokens, win_out += k.output_tokens;
    R.requests_per_s = double(finished_in) / span;
    R.input_tokens_per_s = win_in / span;
    R.output_tokens_per_s = win_out / span;
    R.goodput_requests_per_s = double(good_finished_in) / span;
    R.slo_attainment = arrived > 0 ? double(good_arrived) / double(arrived) : 0;
  } else {
    R.requests_per_s = n / span;
    R.input_tokens_per_s = in / span;
    R.output_tokens_per_s = out / span;
    R.goodput_requests_per_s = double(good) / span;
    R.slo_attainment = n > 0 ? double(good) / n : 0;
  }
  R.output_tokens_per_s_per_gpu = R.gpus > 0 ? R.output_tokens_per_s / R.gpus : 0;
  R.input_tokens_per_s_per_gpu = R.gpus > 0 ? R.input_tokens_per_s / R.gpus : 0;
  // Time series, thinned to at most 2000 points each.
  const auto thin = [](std::vector<std::pair<double, double>>& v) {
    if (v.size() <= 2000) return v;
    std::vector<std::pair<double, double>> kept;
    const double step = double(v.size()) / 2000;
    for (int i = 0; i < 2000; ++i) kept.push_back(v[static_cast<std::size_t>(i * step)]);
    return kept;
  };
  R.kv_usage = thin(kv_usage_);
  R.expert_load = thin(expert_load_);
  for (const Kind& k : kinds_) {
    models::InstanceResult ir;
    ir.role = k.role;
    ir.gpu = k.pricer->scenario().cluster.gpu.name;
    ir.count = k.spec->count;
    ir.gpus = k.pricer->gpus();
    ir.dp = k.pricer->dp();
    ir.kv_capacity_tokens = k.pricer->kv_capacity_tokens();
    ir.weight_bytes = k.pricer->weight_bytes();
    ir.workspace_bytes = k.pricer->workspace_bytes();
    ir.kv_bytes_per_token = k.pricer->kv_bytes_per_token();
    ir.state_bytes_per_sequence = k.pricer->state_bytes_per_sequence();
    ir.state_tokens_per_sequence = k.pricer->state_tokens_per_sequence();
    // Means over iterations (KV in use: over time); utilization: the share of the run it was iterating.
    const double its = std::max(1.0, k.iterations), replicas = double(k.spec->count);
    ir.decode_batch = k.decode_seqs / its;
    ir.prefill_tokens = k.prefill_tokens / its;
    ir.iteration.seconds = k.busy / its;
    ir.iteration.compute = k.compute / its;
    ir.iteration.exposed_comm = k.exposed / its;
    ir.iteration.all_to_all = k.all_to_all / its;
    ir.iteration.attention = k.attention / its;
    ir.iteration.experts = k.experts / its;
    ir.iteration.max_over_mean_gpu = k.imbalance / its;
    ir.utilization = span > 0 ? k.busy / replicas / span : 0;
    ir.rebalances = k.rebalances;
    ir.rebalance_seconds = k.rebalance_seconds;
    ir.kv_used_tokens = k.busy > 0 ? k.kv_used / k.busy : 0;
    const double gpus = double(ir.gpus) * replicas;
    // While iterating: the instance kind's rate over the time its replicas spent in iterations.
    const double busy = k.busy / replicas;
    ir.input_tokens_per_s_per_gpu = busy > 0 ? k.input_tokens / busy / gpus : 0;
    ir.output_tokens_per_s_per_gpu = busy > 0 ? k.output_tokens / busy / gpus : 0;
    if (k.role != ServingRole::kPrefill && ir.iteration.seconds > 0) {
      R.all_to_all_share = ir.iteration.all_to_all / ir.iteration.seconds;
      R.decode_comm_bound_tpot =
          ir.iteration.all_to_all /
          models::tokens_per_iteration(s_.serving.mtp_tokens, s_.serving.mtp_acceptance);
    }
    R.instances.push_back(ir);
  }
  return R;
}

}  // namespace

models::ServingResult simulate_serving(const Scenario& s, const std::vector<traces::Request>& requests,
                                       std::vector<models::ServedRequest>* served) {
  ServingSim sim(s, requests);
  return sim.run(served);
}

}  // namespace moesim::sim
