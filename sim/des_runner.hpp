#pragma once
/// \file The SimGrid runner of the discrete-event engine: executes the programs of sim/des_program.hpp on
/// the platform of sim/netsim_internal.hpp. Every simulated GPU (or class of GPUs with identical expert
/// loads) runs its rank's program in a compute-stream actor; every EP group of a pipeline rank has a
/// communication-stream actor that runs the group's all-to-alls as SimGrid flows carrying the layer's
/// per-pair bytes; pipeline transfers are flows between the stages' GPUs. Include only from sim/*.cpp
/// (it pulls in SimGrid headers).

#include <deque>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "models/workload.hpp"
#include "scenarios/scenario.hpp"
#include "sim/des_program.hpp"
#include "sim/netsim_internal.hpp"
#include "sim/step_sim.hpp"

namespace moesim::sim::internal {

/// One compute actor: the GPUs of an EP group whose expert loads are identical in every MoE layer run the
/// same program with the same durations, and the all-to-all is a barrier over the group, so they reach
/// every synchronisation point at the same time: one actor stands for all of them (exact). Each member
/// still sends and receives its own pipeline flows. Times in seconds.
struct GpuState {
  int gpu = 0;                            ///< global id of the first member
  int rank = 0, group = 0, ep_index = 0;  ///< pipeline rank, simulated group, EP index of the first member
  std::vector<int> members;               ///< EP indices of the GPUs this actor stands for
  bool traced = false;                    ///< records timeline events
  sg4::SemaphorePtr ready, done;          ///< to and from the group's communication stream
  double busy = 0;                 ///< compute-stream segments executed (communication segments included)
  double tp = 0, etp = 0, cp = 0;  ///< of busy: TP, expert-TP and CP communication
  double wait_comm = 0;            ///< waiting for all-to-alls
  double wait_p2p = 0;             ///< waiting for pipeline receives
  double tail = 0;                 ///< data-parallel synchronisation and optimizer
  double phase[kPhaseCount] =
      {};                  ///< busy plus all-to-all waits, per pipeline phase of the chunk (ChunkPhase)
  double finish = -1;      ///< end of the program from the run's start (-1: did not finish)
  long long segments = 0;  ///< compute segments executed
};

/// A pipeline transfer to one GPU: its legs each release `arrived` (and `sent`) once posted (once in all
/// when it has none). A rendezvous transfer (DualPipe) starts when both its send and its receive are
/// posted, and its sender waits for it too: the slot goes when both ends are done with it.
struct Message {
  sg4::SemaphorePtr arrived, sent;
  int src = -1;  ///< source GPU, once the send is posted
  bool send_posted = false, recv_posted = false, started = false;
  int users = 1;  ///< ends that still wait on the slot
  int legs = 0;
  std::vector<const Comm*> leg;
  std::vector<sg4::CommPtr> comms;
  std::vector<double> posted;  ///< s, when each leg was posted
};

/// Bytes and busy time of one directed link: transfer intervals merged as they arrive in start order.
struct LinkAcc {
  double bytes = 0, busy = 0, lo = 0, hi = -1;
  /// Adds `b` bytes transferred from time a to z (s).
  void add(double b, double a, double z);
  /// Busy seconds so far.
  double total() const { return busy + (hi >= lo ? hi - lo : 0.0); }
};

/// Runs the step's programs on one engine: one run per simulated microbatch count.
class Runner {
 public:
  /// `agg`: fabric flows folded per node pair; `pool`: NVLink pooled per domain; `one_plane`: fabric
  /// all-to-all legs simulated on plane 0 only (sim/des_fidelity.hpp decides all three).
  Runner(const Scenario& s, const models::Workload& w, const StepOptions& o, EngineState& st, bool agg,
         bool pool, bool one_plane);

  /// Global id of EP index `a` of group `group` of pipeline rank `rank`.
  int gpu_of(int rank, int group, int a) const {
    return rank * stage_gpus_ + group * span_ + a * s_.parallelism.etp;
  }
  /// GPUs simulated: pp · groups · ep.
  int simulated_gpus() const { return s_.parallelism.pp * groups_ * ep_; }
  /// EP groups simulated per pipeline rank.
  int groups() const { return groups_; }

  /// Lower bound of the first forward dispatch (busiest directed link), s: scales surf/precision.
  double expected_collective();

  /// What one run ended with.
  struct Outcome {
    double makespan = 0;  ///< s, the last GPU's finish
    int critical = 0;     ///< index into gpus of the GPU that finished last
    std::vector<GpuState> gpus;
  };
  /// Simulates the programs for m microbatches; `record` keeps the timeline and the link usage of
  /// this run. Throws moesim::Error when a program deadlocks.
  Outcome run(int m, bool record);

  /// The timeline of the last recorded run (moved out).
  std::vector<TimelineEvent> take_timeline() { return std::move(timeline_); }
  /// Directed links that carried bytes in the last run, against its makespan (s).
  std::vector<LinkUsage> link_usage(double makespan) const;

  long long collectives = 0;  ///< all-to-alls executed over every run
  long long flows = 0;        ///< SimGrid communications started over every run

 private:
  struct Sender {
    sg4::SemaphorePtr go;
    const std::vector<int>* idx = nullptr;  // legs of the current collective this sender starts
  };
  struct Group {
    std::map<sg4::Host*, Sender> senders;  // by source host (node-based map: stable addresses)
    sg4::SemaphorePtr finished;
    const std::vector<Comm>* legs = nullptr;
    std::vector<sg4::CommPtr> acts;
  };
  // Pipeline transfers leave from a daemon per source host (one actor per host rather than one per
  // transfer): it posts each leg to the destination's sink and hands the communication to the receiver.
  struct Poster {
    sg4::SemaphorePtr go;
    std::deque<std::pair<const Comm*, Message*>> jobs;
  };

  int index(int r, int g, int a) const { return (r * groups_ + g) * ep_ + a; }
  const std::vector<Comm>& collective(int rank, int g, int moe, int kind);
  const std::vector<Comm>& p2p(int src, int dst);
  void event(const GpuState& g, int stream, std::string name, double a, double z, int mb, int stage);
  void compute_stream(int gi);
  void comm_stream(int r, int g);
  Message& slot(int gpu, int key);
  /// Starts message `msg` to GPU `dst` (its legs to the posters); returns the flows started.
  int start(Message& msg, int dst);
  /// Waits until every leg of `msg` has been delivered (arrival: finish plus the route's latency); `record`
  /// adds the legs to the link usage. Returns the latest arrival.
  double delivered(Message& msg, sg4::SemaphorePtr& posted, bool record);
  bool same_loads(int a, int b) const;
  void poster(Poster& me);
  sg4::Mailbox* sink(sg4::Host* host);
  void sender(Group& grp, Sender& me);
  const std::vector<std::pair<sg4::Host*, std::vector<int>>>& parts_of(const std::vector<Comm>& legs);

  std::map<sg4::Host*, Poster> posters_;
  std::map<sg4::Host*, sg4::Mailbox*> sinks_;
  std::map<const std::vector<Comm>*, std::vector<std::pair<sg4::Host*, std::vector<int>>>> parts_cache_;
  std::vector<Group> groups_state_;

  const Scenario& s_;
  const models::Workload& w_;
  const StepOptions& o_;
  EngineState& st_;
  bool agg_;
  bool pool_;
  bool one_plane_;
  int gpn_ = 1;
  int domain_ = 1;  // GPUs per NVLink domain
  // All-to-all legs carry bytes / efficiency of the fabric they cross, so that a link at full rate
  // takes the time the analytic model gives them (models::NetworkModel::all_to_all_wire_scale); each
  // collective ends with the model's fixed all-to-all overhead after its legs' latency.
  double nic_scale_ = 1, nvl_scale_ = 1, a2a_overhead_ = 0;
  double leg_scale(const Comm& leg) const;
  ProgramBuilder builder_;
  int stage_gpus_ = 1, span_ = 1, ep_ = 1, groups_per_stage_ = 1, groups_ = 1;
  const std::vector<PartLink>* links_ = nullptr;
  sg4::Host* actor_host_ = nullptr;
  std::map<std::tuple<int, int, int, int>, std::vector<Comm>> coll_cache_;
  std::map<std::pair<int, int>, std::vector<Comm>> p2p_cache_;
  std::vector<GpuState> gpus_;
  std::map<std::pair<int, int>, Message> inbox_;  // (destination GPU, key)
  std::vector<int> class_of_;                     // (rank, group, EP index) → compute actor
  std::vector<TimelineEvent> timeline_;
  std::vector<LinkAcc> link_acc_;
  const std::vector<Program>* programs_ = nullptr;
  double t0_ = 0;
};

}  // namespace moesim::sim::internal
