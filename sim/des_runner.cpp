#include "sim/des_runner.hpp"

#include <algorithm>
#include <cmath>

#include "models/dispatch.hpp"
#include "models/network.hpp"
#include "models/routing_source.hpp"
#include "scenarios/error.hpp"

namespace moesim::sim::internal {

void LinkAcc::add(double b, double a, double z) {
  bytes += b;
  if (hi < lo || a > hi) {
    if (hi >= lo) busy += hi - lo;
    lo = a;
    hi = z;
  } else {
    hi = std::max(hi, z);
  }
}

Runner::Runner(const Scenario& s, const models::Workload& w, const StepOptions& o, EngineState& st, bool agg,
               bool pool, bool one_plane)
    : s_(s), w_(w), o_(o), st_(st), agg_(agg), pool_(pool), one_plane_(one_plane), builder_(s, w) {
  gpn_ = std::max(1, s.cluster.gpus_per_node);
  domain_ = s.cluster.scale_up.kind == ScaleUpKind::kNone ? 1 : std::max(1, s.layout.domain_gpus);
  const models::NetworkModel net(s.cluster);
  nic_scale_ = net.all_to_all_wire_scale(true);
  // A hierarchical dispatch over more than one node relays over NVLink what arrived over the NIC
  // (models::AllToAllBytes::relay).
  nvl_scale_ = net.all_to_all_wire_scale(false, models::relays_over_nvlink(models::routing_context(s).geo));
  a2a_overhead_ = net.all_to_all_overhead();
  const auto& par = s.parallelism;
  stage_gpus_ = s.layout.stage_gpus;
  span_ = std::max(1, par.ep) * par.etp;
  ep_ = std::max(1, par.ep);
  groups_per_stage_ = std::max(1, stage_gpus_ / span_);
  groups_ = o.groups == DesGroups::kAll ? groups_per_stage_ : 1;
  links_ = agg ? &st.agg->links : &st.gpu->links;
  if (st.gpu)
    actor_host_ = st.gpu->hosts.front();
  else
    for (auto* h : st.agg->class_hosts)
      if (h != nullptr && actor_host_ == nullptr) actor_host_ = h;
  if (actor_host_ == nullptr)
    for (auto* h : st.agg->gpu_hosts)
      if (h != nullptr && actor_host_ == nullptr) actor_host_ = h;
}

// The folded communications of one all-to-all of pipeline rank `rank`, group `g` (cached).
const std::vector<Comm>& Runner::collective(int rank, int g, int moe, int kind) {
  const auto k = std::make_tuple(moe, kind, rank, g);
  auto it = coll_cache_.find(k);
  if (it != coll_cache_.end()) return it->second;
  const models::MoeLayerDetail& d = models::moe_detail_of(w_, moe);
  // wire_bytes are forward-dispatch bytes; the combine's gradient travels the same way in its own
  // precision, the combine and the dispatch's gradient the other way in BF16.
  const double copy = kind == kDispatchF  ? w_.dispatch_copy_bytes
                      : kind == kCombineB ? w_.grad_dispatch_copy_bytes
                                          : w_.bf16_copy_bytes;
  const double scale = copy / w_.dispatch_copy_bytes;
  const bool transpose = kind == kCombineF || kind == kDispatchB;
  std::vector<FlowSpec> fl;
  for (int x = 0; x < ep_; ++x)
    for (int y = 0; y < ep_; ++y) {
      const double b = d.wire_bytes[static_cast<std::size_t>(x) * ep_ + y] * scale;
      if (b <= 0 || x == y) continue;
      const int src = gpu_of(rank, g, transpose ? y : x), dst = gpu_of(rank, g, transpose ? x : y);
      // One plane stands for all when every plane carries the same traffic (planes share no link).
      if (one_plane_ && src / gpn_ != dst / gpn_ && st_.topo->plane_of(src) != 0) continue;
      // Whole bytes, so that flows folded into one leg sum exactly (as the unscaled sizes do).
      const double wire = std::round(b * (src / domain_ != dst / domain_ ? nic_scale_ : nvl_scale_));
      fl.push_back(FlowSpec{src, dst, wire, 0});
    }
  return coll_cache_.emplace(k, fold_flows(st_, fl, agg_, nullptr, pool_)).first->second;
}

// The wire scale of a folded leg: the NIC's when its route leaves the NVLink domain.
double Runner::leg_scale(const Comm& leg) const {
  for (const auto& h : leg.route)
    if ((*links_)[static_cast<std::size_t>(h.link)].kind != LinkKind::kNvlink) return nic_scale_;
  return nvl_scale_;
}

const std::vector<Comm>& Runner::p2p(int src, int dst) {
  auto it = p2p_cache_.find({src, dst});
  if (it != p2p_cache_.end()) return it->second;
  std::vector<FlowSpec> f{FlowSpec{src, dst, builder_.p2p_bytes(), 0}};
  return p2p_cache_.emplace(std::make_pair(src, dst), fold_flows(st_, f, agg_, nullptr, pool_)).first->second;
}

// Lower bound of the first forward dispatch (busiest directed link), to scale surf/precision.
double Runner::expected_collective() {
  if (w_.moe_detail.empty() || ep_ < 2) return 0;
  int moe0 = -1;
  for (const auto& b : w_.blocks)
    if (b.moe_index >= 0) {
      moe0 = b.moe_index;
      break;
    }
  int rank0 = 0;
  for (int r = 0; r < s_.parallelism.pp; ++r)
    for (int b : w_.ranks[r].blocks)
      if (w_.blocks[b].moe_index == moe0) rank0 = r;
  return lower_bound_duration(*links_, collective(rank0, 0, moe0, kDispatchF));
}

Runner::Outcome Runner::run(int m, bool record) {
  const auto& par = s_.parallelism;
  std::vector<Program> programs;
  for (int r = 0; r < par.pp; ++r) programs.push_back(builder_.build(r, m));
  gpus_.clear();
  class_of_.assign(static_cast<std::size_t>(par.pp * groups_ * ep_), -1);
  for (int r = 0; r < par.pp; ++r)
    for (int g = 0; g < groups_; ++g)
      for (int a = 0; a < ep_; ++a) {
        if (class_of_[index(r, g, a)] >= 0) continue;
        GpuState x;
        x.gpu = gpu_of(r, g, a);
        x.rank = r;
        x.group = g;
        x.ep_index = a;
        x.ready = sg4::Semaphore::create(0);
        x.done = sg4::Semaphore::create(0);
        const int ci = static_cast<int>(gpus_.size());
        for (int b = a; b < ep_; ++b)
          if (class_of_[index(r, g, b)] < 0 && same_loads(a, b)) {
            class_of_[index(r, g, b)] = ci;
            x.members.push_back(b);
          }
        gpus_.push_back(std::move(x));
      }
  // Traced actors: the first of group 0 on every rank, then the others.
  const int limit = o_.timeline_gpus < 0 ? static_cast<int>(gpus_.size()) : o_.timeline_gpus;
  int traced = 0;
  for (int a = 0; a < ep_ && traced < limit; ++a)
    for (int r = 0; r < par.pp && traced < limit; ++r) {
      GpuState& x = gpus_[class_of_[index(r, 0, a)]];
      if (x.traced || x.ep_index != a) continue;
      x.traced = record;
      ++traced;
    }
  inbox_.clear();
  timeline_.clear();
  link_acc_.assign(2 * links_->size(), LinkAcc{});
  t0_ = sg4::Engine::get_clock();
  programs_ = &programs;

  groups_state_.assign(static_cast<std::size_t>(par.pp * groups_), Group{});
  sinks_.clear();
  posters_.clear();
  // Every sink exists, with its mailbox's permanent receiver set, before the first message: a sink
  // created on demand from an actor would let other actors post to its mailbox before the receiver
  // is set, and those transfers would wait for a rendez-vous instead of starting at once.
  for (int r = 0; r < par.pp; ++r)
    for (int g = 0; g < groups_; ++g) {
      for (const Coll& c : programs[r].colls)
        for (const Comm& leg : collective(r, g, c.moe, c.kind)) sink(leg.dst);
      for (const Instr& x : programs[r].ins)
        if (x.op == Ins::kSend)
          for (int a = 0; a < ep_; ++a)
            for (const Comm& leg : p2p(gpu_of(r, g, a), gpu_of(x.peer_rank, g, a))) {
              sink(leg.dst);
              auto [it, fresh] = posters_.try_emplace(leg.src);
              if (fresh) {
                it->second.go = sg4::Semaphore::create(0);
                Poster* pp = &it->second;
                sg4::ActorPtr actor = sg4::Actor::create("post", leg.src, [this, pp] { poster(*pp); });
                actor->daemonize();
              }
            }
    }
  for (int r = 0; r < par.pp; ++r)
    for (int g = 0; g < groups_; ++g) {
      if (!programs[r].colls.empty()) {
        groups_state_[static_cast<std::size_t>(r * groups_ + g)].finished = sg4::Semaphore::create(0);
        sg4::Actor::create("comm-r" + std::to_string(r) + "g" + std::to_string(g), actor_host_,
                           [this, r, g] { comm_stream(r, g); });
      }
      for (int a = 0; a < ep_; ++a) {
        const int gi = class_of_[index(r, g, a)];
        if (gpus_[gi].ep_index != a) continue;
        sg4::Actor::create("gpu" + std::to_string(gpus_[gi].gpu), actor_host_,
                           [this, gi] { compute_stream(gi); });
      }
    }
  st_.engine->run();
  Outcome out;
  for (std::size_t i = 0; i < gpus_.size(); ++i) {
    if (gpus_[i].finish < 0)
      throw Error("simulate_step: GPU " + std::to_string(gpus_[i].gpu) +
                  " did not finish its program (the schedule's dependencies deadlocked)");
    // Of the GPUs that finish last, the critical one is the busiest: the others waited for it.
    const bool tie = out.critical >= 0 && gpus_[i].finish == out.makespan &&
                     gpus_[i].busy > gpus_[static_cast<std::size_t>(out.critical)].busy;
    if (gpus_[i].finish > out.makespan || tie) {
      out.makespan = gpus_[i].finish;
      out.critical = static_cast<int>(i);
    }
  }
  out.gpus = gpus_;
  programs_ = nullptr;
  return out;
}

std::vector<LinkUsage> Runner::link_usage(double makespan) const {
  std::vector<LinkUsage> out;
  for (std::size_t d = 0; d < link_acc_.size(); ++d) {
    const LinkAcc& a = link_acc_[d];
    if (a.bytes <= 0) continue;
    const PartLink& l = (*links_)[d / 2];
    LinkUsage u;
    u.name = d % 2 == 0 ? l.from + ">" + l.to : l.to + ">" + l.from;
    u.kind = l.kind;
    u.bandwidth = l.bandwidth;
    u.bytes = a.bytes;
    u.busy_time = a.total();
    u.busy_fraction = makespan > 0 ? u.busy_time / makespan : 0;
    u.utilisation = makespan > 0 ? a.bytes / (l.bandwidth * makespan) : 0;
    out.push_back(std::move(u));
  }
  return out;
}

void Runner::event(const GpuState& g, int stream, std::string name, double a, double z, int mb, int stage) {
  timeline_.push_back(TimelineEvent{g.gpu, stream, std::move(name), a - t0_, z - t0_, mb, stage});
}

namespace {
// Timeline name of a compute segment: "F L3 experts".
std::string label(const Instr& x) {
  std::string n(1, x.pass);
  if (x.layer >= 0) n += " L" + std::to_string(x.layer);
  n += " ";
  n += x.what;
  return n;
}
}  // namespace

void Runner::compute_stream(int gi) {
  GpuState& me = gpus_[gi];
  const Program& prog = (*programs_)[me.rank];
  for (const Instr& x : prog.ins) {
    switch (x.op) {
      case Ins::kCompute:
      case Ins::kExpert:
      case Ins::kTail: {
        double sec = x.seconds;
        if (x.op == Ins::kExpert) sec *= models::moe_detail_of(w_, x.moe).rank_load[me.ep_index];
        if (!(sec > 0)) break;
        const double a = sg4::Engine::get_clock();
        sg4::this_actor::sleep_for(sec);
        if (x.op == Ins::kTail) {
          me.tail += sec;
        } else {
          me.busy += sec;
          me.phase[x.phase] += sec;
          me.tp += x.tp;
          me.etp += x.etp;
          me.cp += x.cp;
          ++me.segments;
        }
        if (me.traced) event(me, 0, label(x), a, sg4::Engine::get_clock(), x.mb, x.stage);
        break;
      }
      case Ins::kReady:
        me.ready->release();
        break;
      case Ins::kWait: {
        const double a = sg4::Engine::get_clock();
        me.done->acquire();
        me.wait_comm += sg4::Engine::get_clock() - a;
        me.phase[x.phase] += sg4::Engine::get_clock() - a;
        break;
      }
      case Ins::kSend: {
        for (int member : me.members) {
          const int dst = gpu_of(x.peer_rank, me.group, member);
          Message& msg = slot(dst, x.key);
          msg.src = gpu_of(me.rank, me.group, member);
          msg.send_posted = true;
          if (x.rendezvous) msg.users = 2;
          if (!x.rendezvous || msg.recv_posted) flows += start(msg, dst);
        }
        break;
      }
      case Ins::kPost: {
        for (int member : me.members) {
          const int dst = gpu_of(me.rank, me.group, member);
          Message& msg = slot(dst, x.key);
          msg.recv_posted = true;
          if (msg.send_posted && !msg.started) flows += start(msg, dst);
        }
        break;
      }
      case Ins::kRecv:
      case Ins::kSendWait: {
        const bool recv = x.op == Ins::kRecv;
        const double a = sg4::Engine::get_clock();
        double arrival = a;
        for (int member : me.members) {
          const int dst = recv ? gpu_of(me.rank, me.group, member) : gpu_of(x.peer_rank, me.group, member);
          Message& msg = slot(dst, x.key);
          arrival = std::max(arrival, delivered(msg, recv ? msg.arrived : msg.sent, recv));
          if (--msg.users == 0) inbox_.erase({dst, x.key});
        }
        const double now = sg4::Engine::get_clock();
        if (arrival > now) sg4::this_actor::sleep_for(arrival - now);
        me.wait_p2p += sg4::Engine::get_clock() - a;
        if (me.traced && sg4::Engine::get_clock() > a)
          event(me, 2,
                !recv           ? "send"
                : x.pass == 'F' ? "recv activation"
                                : "recv gradient",
                a, sg4::Engine::get_clock(), x.mb, x.stage);
        break;
      }
    }
  }
  me.finish = sg4::Engine::get_clock() - t0_;
}

Message& Runner::slot(int gpu, int key) {
  auto [it, fresh] = inbox_.try_emplace(std::make_pair(gpu, key));
  if (fresh) {
    it->second.arrived = sg4::Semaphore::create(0);
    it->second.sent = sg4::Semaphore::create(0);
  }
  return it->second;
}

int Runner::start(Message& msg, int dst) {
  msg.started = true;
  const std::vector<Comm>& legs = p2p(msg.src, dst);
  msg.legs = static_cast<int>(legs.size());
  if (legs.empty()) {
    msg.arrived->release();
    msg.sent->release();
  }
  for (const Comm& c : legs) {
    // The poster actor of the source host sends the leg to the sink on the destination host.
    Poster& po = posters_.at(c.src);
    po.jobs.push_back({&c, &msg});
    po.go->release();
  }
  return msg.legs;
}

double Runner::delivered(Message& msg, sg4::SemaphorePtr& posted, bool record) {
  double arrival = 0;
  posted->acquire();
  for (int k = 1; k < msg.legs; ++k) posted->acquire();
  for (std::size_t k = 0; k < msg.comms.size(); ++k) {
    msg.comms[k]->wait();
    const double fin = msg.comms[k]->get_finish_time();
    const Comm& leg = *msg.leg[k];
    if (record)
      for (const auto& h : leg.route) link_acc_[h.directed()].add(leg.bytes, msg.posted[k], fin);
    arrival = std::max(arrival, fin + leg.latency);
  }
  return arrival;
}

// True when EP ranks a and b compute the same rows in every MoE layer.
bool Runner::same_loads(int a, int b) const {
  for (const auto& d : w_.moe_detail)
    if (d.rank_load[static_cast<std::size_t>(a)] != d.rank_load[static_cast<std::size_t>(b)]) return false;
  return true;
}

void Runner::comm_stream(int r, int g) {
  const Program& prog = (*programs_)[r];
  std::vector<int> members;  // compute actors of the group
  for (int a = 0; a < ep_; ++a) {
    const int ci = class_of_[index(r, g, a)];
    if (gpus_[ci].ep_index == a) members.push_back(ci);
  }
  for (const Coll& c : prog.colls) {
    for (int gi : members) gpus_[gi].ready->acquire();
    const std::vector<Comm>& legs = collective(r, g, c.moe, c.kind);
    const double a = sg4::Engine::get_clock();
    double lat = 0;
    for (const Comm& leg : legs) lat = std::max(lat, leg.latency);
    // The legs are started by sender actors on their source hosts as mailbox messages to a sink
    // actor on the destination host (a permanent receiver, so each transfer starts at once). SimGrid
    // 3.32 keeps host-to-host communications (Comm::sendto) in one list that it scans at every
    // completion (72% of a 256-GPU run); actor-to-actor messages are not in it.
    Group& grp = groups_state_[static_cast<std::size_t>(r * groups_ + g)];
    grp.legs = &legs;
    grp.acts.assign(legs.size(), nullptr);
    const std::vector<std::pair<sg4::Host*, std::vector<int>>>& parts = parts_of(legs);
    for (const auto& [host, idx] : parts) {
      auto [it, fresh] = grp.senders.try_emplace(host);
      if (fresh) {
        Sender& snd = it->second;
        snd.go = sg4::Semaphore::create(0);
        Sender* sp = &snd;
        Group* gp = &grp;
        sg4::ActorPtr actor = sg4::Actor::create("send", host, [this, sp, gp] { sender(*gp, *sp); });
        actor->daemonize();
      }
      it->second.idx = &idx;
      it->second.go->release();
    }
    for (std::size_t k = 0; k < parts.size(); ++k) grp.finished->acquire();
    // Link usage counts the bytes the routing really moves, not the efficiency-scaled ones.
    for (std::size_t i = 0; i < legs.size(); ++i) {
      const double moved = legs[i].bytes / leg_scale(legs[i]);
      for (const auto& h : legs[i].route)
        link_acc_[h.directed()].add(moved, a, grp.acts[i]->get_finish_time());
    }
    grp.acts.clear();
    if (lat + a2a_overhead_ > 0) sg4::this_actor::sleep_for(lat + a2a_overhead_);
    ++collectives;
    flows += static_cast<long long>(legs.size());
    const double z = sg4::Engine::get_clock();
    for (int gi : members) {
      if (gpus_[gi].traced)
        event(gpus_[gi], 1, std::string(1, c.pass) + " L" + std::to_string(c.layer) + " " + coll_name(c.kind),
              a, z, c.mb, c.stage);
      gpus_[gi].done->release();
    }
  }
}

void Runner::poster(Poster& me) {
  static int token = 0;
  for (;;) {
    me.go->acquire();
    auto [leg, msg] = me.jobs.front();
    me.jobs.pop_front();
    msg->comms.push_back(
        sink(leg->dst)->put_async(&token, static_cast<std::uint64_t>(std::llround(leg->bytes))));
    msg->leg.push_back(leg);
    msg->posted.push_back(sg4::Engine::get_clock());
    msg->arrived->release();
    msg->sent->release();
  }
}

// The mailbox of the sink actor on `host`, created on first use in this run.
sg4::Mailbox* Runner::sink(sg4::Host* host) {
  auto it = sinks_.find(host);
  if (it != sinks_.end()) return it->second;
  // Registered before the actor is created: creating an actor yields to the others, which may ask for
  // the same sink meanwhile.
  sg4::Mailbox* mb = sg4::Mailbox::by_name("sink:" + host->get_name());
  sinks_.emplace(host, mb);
  sg4::ActorPtr a = sg4::Actor::create("sink", host, [mb] {
    for (;;) mb->get<int>();
  });
  a->daemonize();
  mb->set_receiver(a);
  return mb;
}

// A daemon: each time it is woken, starts its legs of the group's current collective and waits for them.
void Runner::sender(Group& grp, Sender& me) {
  static int token = 0;
  std::vector<sg4::CommPtr> mine;
  for (;;) {
    me.go->acquire();
    const std::vector<Comm>& legs = *grp.legs;
    mine.clear();
    for (int i : *me.idx) {
      sg4::CommPtr act =
          sink(legs[i].dst)->put_async(&token, static_cast<std::uint64_t>(std::llround(legs[i].bytes)));
      grp.acts[i] = act;
      mine.push_back(act);
    }
    if (!mine.empty()) sg4::Comm::wait_all(mine);
    grp.finished->release();
  }
}

// Legs of a folded collective grouped by source host (cached with the collective).
const std::vector<std::pair<sg4::Host*, std::vector<int>>>& Runner::parts_of(const std::vector<Comm>& legs) {
  auto [it, fresh] = parts_cache_.try_emplace(&legs);
  if (fresh) {
    std::map<sg4::Host*, std::vector<int>> by;
    for (std::size_t i = 0; i < legs.size(); ++i) by[legs[i].src].push_back(static_cast<int>(i));
    // Deterministic order: by the first leg of each host.
    std::vector<std::pair<sg4::Host*, std::vector<int>>> v(by.begin(), by.end());
    std::sort(v.begin(), v.end(),
              [](const auto& x, const auto& y) { return x.second.front() < y.second.front(); });
    it->second = std::move(v);
  }
  return it->second;
}

}  // namespace moesim::sim::internal
