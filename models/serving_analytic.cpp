// The request source of a serving scenario, its checks, and the analytic engine's steady state.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "models/placement.hpp"
#include "models/routing_source.hpp"
#include "models/serving.hpp"
#include "scenarios/error.hpp"

namespace moesim::models {
namespace {

[[noreturn]] void bad(const Scenario& s, const std::string& ptr, const std::string& expected,
                      const std::string& found) {
  throw ConfigError(located_message(s.source, ptr, expected, found));
}

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

// What the analytic engine needs of the requests: their rate and the means it prices with.
struct Load {
  double rate = 0;                                         // requests per second
  double input = 0, output = 0, cached = 0, uncached = 0;  // mean tokens per request
  double decode_context = 0;    // mean context of a decoding sequence, weighted by its decode iterations
  double prefill_attended = 0;  // mean keys a prompt token attends to
  double prefill_context = 1;   // prompt tokens (cached included) per uncached prompt token
  double span = 0;              // s, first to last arrival
  int64_t count = 0;
  // Per prompt: uncached tokens, the keys they attend to in all, their prompt length; mean and deviation.
  double tokens_mean = 0, tokens_sd = 0, pairs_mean = 0, pairs_sd = 0, context_mean = 0, context_sd = 0;
  // Per prompt (uncached tokens, keys attended, prompt length), in increasing uncached tokens.
  std::vector<std::array<double, 3>> prompts;
};

// The prompt with the most uncached tokens among k drawn from the requests' prompts (with replacement):
// its expected uncached tokens, keys attended and prompt length, from the empirical distribution (the
// largest of k draws is the i-th smallest of n with probability (i/n)^k - ((i-1)/n)^k).
std::array<double, 3> largest_of(const Load& L, int k) {
  std::array<double, 3> e{0, 0, 0};
  const double n = double(L.prompts.size());
  double below = 0;
  for (std::size_t i = 0; i < L.prompts.size(); ++i) {
    const double upto = std::pow(double(i + 1) / n, k), w = upto - below;
    below = upto;
    for (int c = 0; c < 3; ++c)
      e[static_cast<std::size_t>(c)] += w * L.prompts[i][static_cast<std::size_t>(c)];
  }
  return e;
}

Load load_of(const Scenario& s, const std::vector<traces::Request>& rq) {
  Load L;
  L.count = static_cast<int64_t>(rq.size());
  if (rq.empty()) return L;
  double in = 0, out = 0, cached = 0, unc = 0, pattended = 0;
  for (const traces::Request& r : rq) {
    const double I = double(r.input_tokens), O = double(r.output_tokens), C = double(r.cached_tokens);
    in += I, out += O, cached += C, unc += I - C;
    pattended += (I * (I + 1) - C * (C + 1)) / 2;
  }
  const double n = double(rq.size());
  L.input = in / n, L.output = out / n, L.cached = cached / n, L.uncached = unc / n;
  const auto moments = [&](auto f, double& mean, double& sd) {
    double sum = 0, sq = 0;
    for (const traces::Request& r : rq) {
      const double x = f(double(r.input_tokens), double(r.cached_tokens));
      sum += x, sq += x * x;
    }
    mean = sum / n;
    sd = std::sqrt(std::max(0.0, sq / n - mean * mean));
  };
  moments([](double I, double C) { return I - C; }, L.tokens_mean, L.tokens_sd);
  moments([](double I, double C) { return (I * (I + 1) - C * (C + 1)) / 2; }, L.pairs_mean, L.pairs_sd);
  moments([](double I, double) { return I; }, L.context_mean, L.context_sd);
  L.prompts.reserve(rq.size());
  for (const traces::Request& r : rq) {
    const double I = double(r.input_tokens), C = double(r.cached_tokens);
    L.prompts.push_back({I - C, (I * (I + 1) - C * (C + 1)) / 2, I});
  }
  std::sort(L.prompts.begin(), L.prompts.end());
  L.decode_context = decode_context(rq);
  L.prefill_attended = unc > 0 ? pattended / unc : 0;
  L.prefill_context = unc > 0 ? in / unc : 1;
  L.span = rq.back().arrival_s - rq.front().arrival_s;
  // The generator's offered rate; a trace's mean rate over its span.
  if (s.serving.requests.trace.empty())
    L.rate = s.serving.requests.rate;
  else
    L.rate = rq.size() > 1 && L.span > 0 ? (n - 1) / L.span : 0;
  return L;
}

// The prompts cut, in arrival order, into chunks of `budget` uncached tokens (a prompt may span chunks, a
// chunk several prompts), and the chunk the busiest of `ranks` lockstep DP ranks holds: the mean plus
// Blom's quantile for `ranks` standard deviations of each chunk's attended keys (the sum over its tokens
// of the keys each one sees) and of its context (the prompt tokens its prompts' attention covers).
struct Chunks {
  double pairs = 0, context = 0, seqs = 0;  // of the busiest rank's chunk
};
Chunks busiest_chunk(const std::vector<traces::Request>& rq, double budget, int ranks) {
  std::vector<double> pairs, context, seqs;
  double p = 0, c = 0, n = 0, room = budget;
  for (const traces::Request& r : rq) {
    double a = double(r.cached_tokens);
    const double end = double(r.input_tokens);
    while (a < end) {
      const double b = std::min(end, a + room);
      p += (b * (b + 1) - a * (a + 1)) / 2;
      c += b;
      n += 1;
      room -= b - a;
      a = b;
      if (room <= 0) {
        pairs.push_back(p), context.push_back(c), seqs.push_back(n);
        p = c = n = 0, room = budget;
      }
    }
  }
  if (pairs.empty()) pairs.push_back(p), context.push_back(c), seqs.push_back(n);
  const auto top = [&](const std::vector<double>& v) {
    double mean = 0, var = 0;
    for (double x : v) mean += x;
    mean /= double(v.size());
    for (double x : v) var += (x - mean) * (x - mean);
    return mean + blom_quantile(ranks) * std::sqrt(var / double(v.size()));
  };
  double mean_seqs = 0;
  for (double x : seqs) mean_seqs += x;
  return {top(pairs), top(context), mean_seqs / double(seqs.size())};
}

ServingBatch decode_batch(double seqs, double context, int queries, double kv_elem) {
  ServingBatch b;
  b.decode_seqs = seqs;
  b.decode_queries = queries;
  b.decode_kv = context;
  b.kv_elem_bytes = kv_elem;
  return b;
}

// Sampled routing: the routed experts of an iteration at the expected busiest-GPU load of its token copies
// (every DP rank's batch alike), as the discrete-event engine draws it per iteration; trace routing: that
// load averaged over the trace's steps (expected_trace_load).
IterationCost priced(const IterationPricer& P, const Scenario& s, const ServingBatch& b) {
  IterationCost c = P.price(b);
  if (s.routing.mode == RoutingMode::kExpected || s.model.moe.experts == 0) return c;
  const double copies = b.tokens() * P.dp() * std::max(1, s.model.moe.top_k);
  const double f = s.routing.mode == RoutingMode::kTrace
                       ? expected_trace_load(P, copies, s.routing.sample_layers)
                       : expected_busiest_load(copies, P.gpus());
  c.seconds += c.experts * (f - 1);
  c.compute += c.experts * (f - 1);
  c.experts *= f;
  c.max_over_mean_gpu *= f;
  return c;
}

// The weighted mean of iteration costs, op by op (`parts`: each cost and its weight).
IterationCost weighted_cost(const std::vector<std::pair<const IterationCost*, double>>& parts) {
  IterationCost out;
  double total = 0;
  for (const auto& [c, w] : parts) total += w;
  if (parts.empty()) return out;
  if (total <= 0) return *parts.front().first;
  out.max_over_mean_gpu = 0;
  for (const auto& [c, w] : parts) {
    const double f = w / total;
    out.seconds += f * c->seconds, out.compute += f * c->compute, out.exposed_comm += f * c->exposed_comm;
    out.all_to_all += f * c->all_to_all, out.attention += f * c->attention, out.experts += f * c->experts;
    out.scheduler += f * c->scheduler, out.max_over_mean_gpu += f * c->max_over_mean_gpu;
    for (const auto& op : c->ops) {
      auto it =
          std::find_if(out.ops.begin(), out.ops.end(), [&](const auto& o) { return o.first == op.first; });
      if (it == out.ops.end())
        out.ops.emplace_back(op.first, f * op.second);
      else
        it->second += f * op.second;
    }
  }
  return out;
}

void add_prefill(ServingBatch& b, double tokens, const Load& L) {
  b.prefill_tokens = tokens;
  b.prefill_seqs = L.uncached > 0 ? tokens / L.uncached : 0;
  b.prefill_kv = L.prefill_attended;
  b.prefill_context = tokens * L.prefill_context;
}

}  // namespace

std::vector<std::vector<OpRow>> serving_op_rows(const Scenario& s, const ServingResult& analytic) {
  std::vector<std::vector<OpRow>> out;
  for (std::size_t k = 0; k < s.serving.instances.size() && k < analytic.instances.size(); ++k) {
    const IterationPricer P(s, static_cast<int>(k));
    std::vector<OpRow> rows;
    for (const auto& [batch, share] : analytic.instances[k].priced_batches)
      for (OpRow r : P.op_rows(batch)) {
        r.count *= share;
        rows.push_back(std::move(r));
      }
    out.push_back(std::move(rows));
  }
  return out;
}

LatencyStats latency_stats(std::vector<double>& v) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (v.empty()) return {nan, nan, nan, nan};
  double sum = 0;
  for (double x : v) sum += x;
  const auto pct = [&](double p) {
    std::size_t k = static_cast<std::size_t>(std::ceil(p * double(v.size())));
    k = std::clamp<std::size_t>(k, 1, v.size());
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k - 1), v.end());
    return v[k - 1];
  };
  LatencyStats l;
  l.mean = sum / double(v.size());
  l.p50 = pct(0.5), l.p90 = pct(0.9), l.p99 = pct(0.99);
  return l;
}

std::vector<traces::Request> serving_requests(const Scenario& s) {
  const RequestSourceSpec& q = s.serving.requests;
  std::vector<traces::Request> out;
  if (!q.trace.empty()) {
    out = traces::read_request_trace(q.trace, q.format, q.skip_failed).requests;
  } else {
    traces::RequestGeneratorSpec g;
    g.requests = q.count;
    g.rate_per_s = q.rate;
    g.cv = q.cv;
    g.input = traces::parse_length_dist(q.input, s.source + ": /serving/requests/input");
    g.output = traces::parse_length_dist(q.output, s.source + ": /serving/requests/output");
    g.cached_fraction = q.cached_fraction;
    g.seed = q.seed;
    g.prefix_groups = q.prefix_groups;
    g.prefix_zipf = q.prefix_zipf;
    out = traces::generate_requests(g);
  }
  if (s.serving.prefix_cache_tokens > 0 && !q.trace.empty() &&
      std::none_of(out.begin(), out.end(), [](const traces::Request& r) { return r.prefix >= 0; }))
    bad(s, "/serving/prefix_cache_tokens",
        "0 unless the request trace names each request's shared prefix (a prefix_id column, "
        "docs/trace-format.md)",
        std::to_string(s.serving.prefix_cache_tokens) + " with " + q.trace + " naming none");
  const int64_t limit = s.workload.seq_len;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const traces::Request& r = out[i];
    if (r.input_tokens + r.output_tokens > limit) {
      const std::string where = q.trace.empty() ? "generated request " + std::to_string(i + 1)
                                                : "request " + std::to_string(i + 1) + " of " + q.trace;
      bad(s, "/workload/seq_len",
          "every request within seq_len tokens (input + output); " + where + " has " +
              std::to_string(r.input_tokens) + " + " + std::to_string(r.output_tokens),
          std::to_string(limit));
    }
  }
  return out;
}

void check_serving(const Scenario& s) {
  check_routing(s);
  if (s.model.moe.experts > 0)
    for (std::size_t i = 0; i < s.serving.instances.size(); ++i)
      if (s.serving.instances[i].redundant_experts > 0 &&
          !placement_policies().get(s.placement.policy).load_aware)
        bad(s, "/placement/policy",
            "a load-aware placement (eplb, greedy) for the redundant experts of /serving/instances/" +
                std::to_string(i),
            "\"" + s.placement.policy + "\"");
  (void)serving_requests(s);
}

// ------------------------------------------------------------------------------------- analytic

ServingResult evaluate_serving_analytic(const Scenario& s, const std::vector<traces::Request>& offered) {
  ServingResult R;
  R.scenario = s.name;
  R.engine = "analytic";
  R.fidelity = s.routing.mode == RoutingMode::kSampled
                   ? "steady state (closed form: Little's law, M/D/1 queueing; expected busiest-GPU load per "
                     "iteration)"
                   : "steady state (closed form: Little's law, M/D/1 queueing)";
  R.seed = s.serving.requests.seed;
  if (s.serving.rebalance_interval > 0)
    R.caveat =
        "online EPLB (/serving/rebalance_interval) is simulated by the discrete-event engine only: this "
        "prices "
        "the static placement";
  if (s.serving.measure_from > 0 || s.serving.measure_until > 0)
    R.caveat += std::string(R.caveat.empty() ? "" : "; ") +
                "the measurement window (/serving/measure_from, /serving/measure_until) applies to the "
                "discrete-event engine: this is the steady state";

  // Instance kinds and their attention-DP ranks by role.
  std::vector<std::unique_ptr<IterationPricer>> pricers;
  double decode_ranks = 0, prefill_ranks = 0;
  bool colocated = false;
  for (std::size_t i = 0; i < s.serving.instances.size(); ++i) {
    const ServingInstanceSpec& in = s.serving.instances[i];
    pricers.push_back(std::make_unique<IterationPricer>(s, static_cast<int>(i)));
    const double ranks = double(in.count) * pricers.back()->dp();
    if (in.role != ServingRole::kPrefill) decode_ranks += ranks;
    if (in.role != ServingRole::kDecode) prefill_ranks += ranks;
    colocated = colocated || in.role == ServingRole::kColocated;
    R.gpus += in.count * pricers.back()->gpus();
    R.nodes += in.count * in.nodes;
    if (R.cost_model.empty()) R.cost_model = pricers.back()->cost_model().name();
  }

  // A prefix cache per prefill-side rank: the cached tokens count at the expected hit rate.
  std::vector<traces::Request> adjusted;
  if (s.serving.prefix_cache_tokens > 0) {
    R.prefix_hit_rate = prefix_hit_rate(s, offered, static_cast<int>(prefill_ranks));
    R.prefix_token_hit_rate = R.prefix_hit_rate;  // a hit prices the request's whole cached part
    adjusted = offered;
    const double h = std::isnan(R.prefix_hit_rate) ? 0.0 : R.prefix_hit_rate;
    for (traces::Request& r : adjusted) r.cached_tokens = std::llround(h * double(r.cached_tokens));
  }
  const std::vector<traces::Request>& requests = s.serving.prefix_cache_tokens > 0 ? adjusted : offered;
  const Load L = load_of(s, requests);
  R.requests = L.count;
  R.offered_rate = L.rate;
  R.mean_input = L.input, R.mean_output = L.output, R.mean_cached = L.cached;
  R.duration = L.span;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double acc = tokens_per_iteration(s.serving.mtp_tokens, s.serving.mtp_acceptance);
  const int queries = 1 + s.serving.mtp_tokens;
  const double kv_elem = s.serving.kv_dtype == KvDtype::kFp8 ? 1.0 : 2.0;

  double ttft = 0, tpot = 0, served = L.rate;  // served: requests per second the instances sustain
  double ttft_prefill = 0, kv_transfer = 0;
  for (std::size_t i = 0; i < s.serving.instances.size(); ++i) {
    const ServingInstanceSpec& in = s.serving.instances[i];
    const IterationPricer& P = *pricers[i];
    InstanceResult ir;
    ir.role = in.role;
    ir.gpu = P.scenario().cluster.gpu.name;
    ir.count = in.count;
    ir.gpus = P.gpus();
    ir.dp = P.dp();
    ir.kv_capacity_tokens = P.kv_capacity_tokens();
    ir.weight_bytes = P.weight_bytes();
    ir.workspace_bytes = P.workspace_bytes();
    ir.kv_bytes_per_token = P.kv_bytes_per_token();
    ir.state_bytes_per_sequence = P.state_bytes_per_sequence();
    ir.state_tokens_per_sequence = P.state_tokens_per_sequence();
    if (ir.kv_capacity_tokens <= 0 && R.feasible) {
      R.feasible = false;
      R.infeasible_reason =
          std::string(to_string(in.role)) + " instance: weights " + num(ir.weight_bytes / 1e9) +
          " GB and workspace " + num(ir.workspace_bytes / 1e9) + " GB leave no KV cache in " +
          num(P.scenario().cluster.gpu.memory_bytes * s.serving.kv_memory_fraction / 1e9) + " GB per GPU";
    }
    const double budget = in.max_batch_tokens;
    if (in.role == ServingRole::kPrefill) {
      // Full chunks of max_batch_tokens prompt tokens; M/D/1 wait for one iteration's service.
      const double lam = prefill_ranks > 0 ? L.rate / prefill_ranks : 0;
      // Every rank runs in lockstep: an iteration takes the busiest rank's chunk. At capacity every rank
      // holds a full chunk of the prompt stream (busiest_chunk); below it, the prompts that arrived
      // during the last iteration, k = arrivals x iteration, spread over the ranks: the busiest holds
      // m = max(1, k / dp) of them, m x mean + sqrt(m) x deviation x Blom's quantile for min(k, dp) ranks.
      ServingBatch full;
      full.kv_elem_bytes = kv_elem;
      add_prefill(full, budget, L);
      const Chunks busiest = busiest_chunk(requests, budget, P.dp());
      full.prefill_kv = busiest.pairs / budget;
      full.prefill_context = busiest.context;
      full.prefill_seqs = busiest.seqs;
      const IterationCost cf = priced(P, s, full);
      const double capacity = budget / cf.seconds;  // uncached tokens per second per DP rank
      const double demand = lam * L.uncached;
      ir.utilization = demand / capacity;
      ServingBatch last = full;  // the batch partial() priced last
      const auto partial = [&](double k) {
        const double m = std::max(1.0, k / P.dp());
        const double z = blom_quantile(static_cast<int>(std::max(1.0, std::min(k, double(P.dp())))));
        const double tokens = m * L.tokens_mean + std::sqrt(m) * L.tokens_sd * z;
        if (tokens >= budget) return last = full, cf;
        ServingBatch x;
        x.kv_elem_bytes = kv_elem;
        x.prefill_tokens = std::max(1.0, tokens);
        x.prefill_seqs = m;
        x.prefill_kv = (m * L.pairs_mean + std::sqrt(m) * L.pairs_sd * z) / x.prefill_tokens;
        x.prefill_context = m * L.context_mean + std::sqrt(m) * L.context_sd * z;
        last = x;
        return priced(P, s, x);
      };
      IterationCost ci = partial(1);
      const double lam_instance = lam * P.dp();
      for (int k = 0; k < 100 && ir.utilization < 1; ++k) {
        const IterationCost next = partial(std::max(1.0, lam_instance * ci.seconds));
        const bool done = std::abs(next.seconds - ci.seconds) <= 1e-9 * ci.seconds;
        ci = next;
        if (done) break;
      }
      if (ir.utilization >= 1) ci = cf, last = full;
      ir.priced_batches = {{last, 1.0}};
      // TTFT: the rest of the iteration in progress, its own iteration (as many as its chunks need),
      // and an M/D/1 wait for full chunks as the load nears capacity.
      const double rho = std::min(ir.utilization, 0.999999);
      ttft_prefill = ci.seconds / 2 + ci.seconds * std::max(1.0, std::ceil(L.uncached / budget)) +
                     rho / (2 * (1 - rho)) * cf.seconds;
      ir.prefill_tokens = ci.seconds == cf.seconds ? budget : std::min(budget, L.uncached * lam * ci.seconds);
      ir.iteration = ci;
      ir.input_tokens_per_s_per_gpu = std::min(demand, capacity) * L.prefill_context * P.dp() / P.gpus();
      if (ir.utilization >= 1) {
        R.saturated = true;
        R.saturation = "prefill: " + num(capacity * prefill_ranks) + " prompt tokens/s of capacity for " +
                       num(demand * prefill_ranks) + " offered";
        served = std::min(served, capacity * prefill_ranks / std::max(1e-300, L.uncached));
      }
      // The KV cache of a prompt moves to a decode instance: each GPU of the DP rank sends its share.
      // A hybrid model's recurrent state moves with it.
      kv_transfer =
          P.network().send_recv(L.input * P.kv_bytes_per_token() + P.state_bytes_per_sequence(), true);
    } else {
      // Decode (and, colocated, the prompts mixed in): concurrency from Little's law, capped.
      const double lam = decode_ranks > 0 ? L.rate / decode_ranks : 0;
      const bool mixed = in.role == ServingRole::kColocated;
      const double ctx = L.decode_context, U = std::max(1.0, L.uncached);
      // A sequence holds its context and (hybrid models) its recurrent state in the cache.
      const double per_seq = std::max(1.0, ctx) + P.state_tokens_per_sequence();
      const double cap_kv = ir.kv_capacity_tokens > 0 ? std::floor(ir.kv_capacity_tokens / per_seq) : 0;
      double cap = std::min<double>(in.max_running, cap_kv);
      // Colocated: every DP rank iterates in lockstep (the expert all-to-all joins them), so an iteration
      // in which any rank prefills a prompt chunk takes the time of one with that chunk. Prompts reach the
      // instance as a Poisson stream; one needs ceil(U / spare) chunks of the spare token budget.
      const double lam_instance = lam * P.dp();
      const auto spare = [&](double b) { return std::max(1.0, budget - b * queries); };
      const auto chunks = [&](double b) { return std::ceil(U / spare(b)); };
      struct Mix {
        IterationCost plain, chunk;                                  // without and with a prompt chunk
        double share = 0;                                            // of iterations with a chunk
        double mean = 0, second = 0;                                 // E[t], E[t^2]
        std::vector<std::pair<ServingBatch, double>> chunk_batches;  // with a chunk, each in its share
      };
      const auto mix = [&](double b) {
        Mix m;
        m.plain = priced(P, s, decode_batch(b, ctx, queries, kv_elem));
        m.chunk = m.plain;
        m.mean = m.second = 0;
        if (mixed) {
          // The prompts that arrive during an iteration start together in the next, one per rank on
          // min(K, dp) ranks: state K of a Markov chain. Its busiest rank holds the largest of the K
          // prompts (its expectation over the requests' prompts; beyond dp prompts, m = K / dp per rank,
          // the busiest at m x mean + sqrt(m) x deviation x Blom's quantile), cut into n chunks of the
          // spare budget: n iterations at the price of one with that chunk. State 0: a plain decode
          // iteration. The next state is the number of prompts that arrived during the state's last
          // iteration (Poisson at the instance's rate; those of its earlier iterations are prefilled
          // meanwhile on other ranks, beside the busiest rank's full chunk). The chain's stationary
          // distribution weighs the iterations.
          const double sp = spare(b);
          std::vector<IterationCost> cost{m.plain};
          std::vector<ServingBatch> batch{decode_batch(b, ctx, queries, kv_elem)};
          std::vector<double> iters{1.0}, dur{m.plain.seconds};
          double last_chunk = -1;
          const auto add_state = [&](int k) {
            // Up to dp prompts: the largest of k on the busiest rank (its expectation over the requests'
            // prompts); beyond, m = k / dp on each rank, the busiest at Blom's quantile.
            const double mk = std::max(1.0, double(k) / P.dp());
            double tokens = 0, attended = L.prefill_attended;
            if (k <= P.dp() && !L.prompts.empty()) {
              const std::array<double, 3> top = largest_of(L, k);
              tokens = std::max(1.0, top[0]);
              attended = top[0] > 0 ? top[1] / top[0] : attended;
            } else {
              tokens =
                  std::max(1.0, mk * U + std::sqrt(mk) * L.tokens_sd * blom_quantile(std::min(k, P.dp())));
            }
            const double n = std::ceil(tokens / sp), chunk = std::min(tokens, sp);
            if (chunk != last_chunk) {
              ServingBatch x = decode_batch(b, ctx, queries, kv_elem);
              add_prefill(x, chunk, L);
              x.prefill_kv = attended;
              x.prefill_seqs = std::max(1.0, mk / n);
              cost.push_back(priced(P, s, x));
              batch.push_back(x);
              last_chunk = chunk;
            } else {
              cost.push_back(cost.back());
              batch.push_back(batch.back());
            }
            iters.push_back(n);
            dur.push_back(n * cost.back().seconds);
          };
          add_state(1);
          constexpr int kMostPrompts = 64;  // the tail of the arrivals beyond counts as this many
          int top = 1;
          while (top < kMostPrompts) {
            const double mu = lam_instance * cost.back().seconds;
            if (top >= mu + 8 * std::sqrt(mu) + 8) break;
            add_state(++top);
          }
          std::vector<double> pi(static_cast<std::size_t>(top) + 1, 0.0), next(pi.size());
          pi[0] = 1;
          for (int it = 0; it < 2000; ++it) {
            std::fill(next.begin(), next.end(), 0.0);
            for (std::size_t k = 0; k < pi.size(); ++k) {
              if (pi[k] == 0) continue;
              const double mu = lam_instance * cost[k].seconds;
              double pmf = std::exp(-mu), cum = 0;
              for (std::size_t j = 0; j + 1 < pi.size(); ++j) {
                next[j] += pi[k] * pmf;
                cum += pmf;
                pmf *= mu / double(j + 1);
              }
              next.back() += pi[k] * std::max(0.0, 1 - cum);
            }
            double diff = 0;
            for (std::size_t k = 0; k < pi.size(); ++k) diff += std::abs(next[k] - pi[k]);
            pi.swap(next);
            if (diff < 1e-13) break;
          }
          double total = 0, seconds = 0, second = 0;
          for (std::size_t k = 0; k < pi.size(); ++k) {
            total += pi[k] * iters[k];
            seconds += pi[k] * dur[k];
            second += pi[k] * iters[k] * cost[k].seconds * cost[k].seconds;
          }
          m.share = (total - pi[0]) / total;
          m.mean = seconds / total;
          m.second = second / total;
          // The iterations with a chunk, their costs in their shares.
          std::vector<std::pair<const IterationCost*, double>> chunked;
          for (std::size_t k = 1; k < pi.size(); ++k) {
            chunked.emplace_back(&cost[k], pi[k] * iters[k]);
            if (pi[k] * iters[k] > 0) m.chunk_batches.emplace_back(batch[k], pi[k] * iters[k] / total);
          }
          m.chunk = weighted_cost(chunked);
          return m;
        }
        m.mean = m.share * m.chunk.seconds + (1 - m.share) * m.plain.seconds;
        m.second =
            m.share * m.chunk.seconds * m.chunk.seconds + (1 - m.share) * m.plain.seconds * m.plain.seconds;
        return m;
      };
      // The TPOT SLO caps the batch (SLO-aware admission, as the discrete-event engine admits): the largest
      // batch whose decode iteration alone meets it. Prompt chunks mixed into some iterations slow them
      // further; that shows in the TPOT and the goodput, not in a smaller cap (with prompts in most
      // iterations no batch would meet the SLO, and a cap of one sequence would leave the load unserved).
      if (s.serving.tpot_slo > 0 && cap >= 1)
        cap = double(largest_batch(int64_t(cap), [&](int64_t b) {
          return priced(P, s, decode_batch(double(b), ctx, queries, kv_elem)).seconds / acc <=
                 s.serving.tpot_slo;
        }));
      cap = std::max(cap, 1.0);
      double b = s.serving.decode_batch > 0 ? double(s.serving.decode_batch) : 1.0;
      Mix m = mix(b);
      if (s.serving.decode_batch == 0)
        for (int k = 0; k < 200; ++k) {
          const double nb = std::min(cap, std::max(1.0, lam * L.output * m.mean / acc));
          if (std::abs(nb - b) < 1e-9 * b) break;
          b = nb;
          m = mix(b);
        }
      const double t = m.mean;
      // What an average iteration costs: the two kinds in their shares.
      IterationCost c = m.plain;
      if (mixed) {
        const auto blend = [&](double x, double y) { return m.share * y + (1 - m.share) * x; };
        c.seconds = t;
        c.compute = blend(m.plain.compute, m.chunk.compute);
        c.exposed_comm = blend(m.plain.exposed_comm, m.chunk.exposed_comm);
        c.all_to_all = blend(m.plain.all_to_all, m.chunk.all_to_all);
        c.attention = blend(m.plain.attention, m.chunk.attention);
        c.experts = blend(m.plain.experts, m.chunk.experts);
        for (auto& [name, sec] : c.ops) {
          double with = 0;
          for (const auto& [n2, s2] : m.chunk.ops)
            if (n2 == name) with = s2;
          sec = blend(sec, with);
        }
        // Ops only iterations with a prompt chunk run (prefill attention), in their share.
        for (const auto& [name, sec] : m.chunk.ops) {
          bool seen = false;
          for (const auto& [n2, s2] : m.plain.ops) seen = seen || n2 == name;
          if (!seen) c.ops.emplace_back(name, blend(0.0, sec));
        }
      }
      ir.priced_batches = {{decode_batch(b, ctx, queries, kv_elem), mixed ? 1 - m.share : 1.0}};
      if (mixed && m.share > 0) {
        for (const auto& [x, w] : m.chunk_batches) ir.priced_batches.emplace_back(x, w);
      }
      const double p = mixed ? lam * U * t : 0.0;  // prompt tokens per rank per iteration, on average
      ir.decode_batch = b;
      ir.prefill_tokens = p;
      ir.iteration = c;
      ir.kv_used_tokens = b * (ctx + P.state_tokens_per_sequence()) + (mixed ? p * L.prefill_context : 0.0);
      const double out_capacity = b * acc / t;  // tokens per second per DP rank at this batch
      const double out_demand = lam * L.output;
      ir.utilization = out_demand / std::max(1e-300, out_capacity);
      bool over = s.serving.decode_batch == 0 && ir.utilization > 1 + 1e-6;
      if (mixed) over = over || p > spare(b) * (1 + 1e-6);
      if (over) {
        R.saturated = true;
        R.saturation = std::string(to_string(in.role)) + ": " + num(out_capacity * decode_ranks) +
                       " output tokens/s at a batch of " + num(b) + " per DP rank for " +
                       num(out_demand * decode_ranks) + " offered";
        served = std::min(served, out_capacity * decode_ranks / std::max(1e-300, L.output));
      }
      tpot = t / acc;
      const double out_rate = std::min(out_demand, out_capacity);
      ir.output_tokens_per_s_per_gpu = out_rate * P.dp() / P.gpus();
      if (mixed) {
        ir.input_tokens_per_s_per_gpu =
            std::min(lam, served / std::max(1.0, decode_ranks)) * L.input * P.dp() / P.gpus();
        // A prompt arrives during an iteration (it waits for the rest of it: E[t^2] / 2E[t]), waits its
        // turn for the rank's spare budget (M/D/1), then takes its chunks' iterations.
        const double rho = std::min(0.999999, p / spare(b));
        ttft = m.second / (2 * t) + rho / (2 * (1 - rho)) * m.chunk.seconds + chunks(b) * m.chunk.seconds;
      }
      R.all_to_all_share = c.seconds > 0 ? c.all_to_all / c.seconds : 0;
      // The all-to-all bound: the iteration with nothing but its expert all-to-alls.
      R.decode_comm_bound_tpot = c.all_to_all / acc;
    }
    R.instances.push_back(ir);
  }
  if (!colocated) ttft = ttft_prefill + kv_transfer + tpot * acc;  // first token after the first decode step
  R.ttft = {ttft, nan, nan, nan};
  R.tpot = {tpot, nan, nan, nan};
  const double e2e = ttft + std::max(0.0, L.output - 1) * tpot;
  R.e2e = {e2e, nan, nan, nan};
  if (R.saturated) R.ttft.mean = R.e2e.mean = std::numeric_limits<double>::infinity();
  R.requests_per_s = served;
  R.input_tokens_per_s = served * L.input;
  R.output_tokens_per_s = served * L.output;
  R.output_tokens_per_s_per_gpu = R.gpus > 0 ? R.output_tokens_per_s / R.gpus : 0;
  R.input_tokens_per_s_per_gpu = R.gpus > 0 ? R.input_tokens_per_s / R.gpus : 0;
  const bool meets = (s.serving.ttft_slo <= 0 || R.ttft.mean <= s.serving.ttft_slo) &&
                     (s.serving.tpot_slo <= 0 || R.tpot.mean <= s.serving.tpot_slo * (1 + 1e-9));
  R.slo_attainment = meets ? 1.0 : 0.0;
  R.goodput_requests_per_s = meets ? served : 0.0;
  return R;
}

}  // namespace moesim::models
