#pragma once
/// \file The discrete-event engine of a serving scenario, on SimGrid: requests arrive at their times, wait,
/// are batched iteration by iteration on their instances and leave; latencies and their percentiles
/// emerge from the run.
///
/// - Arrivals: one actor releases each request at its arrival time to the attention-DP rank with the least
///   work (colocated: running + waiting sequences; disaggregated: queued prompt tokens on the prefill side,
///   then running + waiting sequences on the decode side).
/// - Instances: one actor per instance replica runs iterations while any of its ranks has work, and sleeps
///   on a condition variable when none has. Every DP rank of an instance iterates in lockstep (the expert
///   all-to-all joins them); an iteration is priced (models::IterationPricer) for the busiest rank's
///   batch: the most decoding sequences, their KV, the most prompt tokens.
/// - Scheduler per DP rank: continuous batching with chunked prefill (Sarathi-style: decode tokens first,
///   the rest of max_batch_tokens to waiting prompts in arrival order), at most max_running sequences, a
///   KV cache of whole kv_block_tokens blocks: a prompt is admitted only when its blocks fit; a decoding
///   sequence that needs a block when none is free preempts the latest admitted sequence (colocated: it
///   is recomputed from its prompt and the tokens it had generated; decode instance: it waits for blocks).
/// - Disaggregated: a finished prompt's first token is out; its KV cache (prompt tokens × KV bytes per
///   token) moves to the decode rank as a SimGrid flow over the two GPUs' NICs (a star of NIC links),
///   sharing bandwidth with the other transfers in flight.
/// - Routing per iteration (routing.mode "sampled"): each iteration draws the per-GPU expert loads of
///   routing.sample_layers MoE layers from the batch's token count (a normal approximation of the
///   multinomial counts) and scales the routed-expert time by the drawn busiest-GPU load over the
///   expected one. Expected mode: every iteration at the expected loads.
/// - MTP speculative decoding: each sequence's draft tokens are accepted one by one with mtp_acceptance
///   until the first rejection (seeded draws).
/// Every random draw comes from the scenario's seeds: the same scenario gives the same run, bit for bit.

#include <vector>

#include "models/serving.hpp"
#include "scenarios/scenario.hpp"
#include "traces/requests.hpp"

namespace moesim::sim {

/// Simulates `requests` on the scenario's instances. Fills `served` (one entry per request, in input
/// order) when given. One SimGrid engine per process: call once.
models::ServingResult simulate_serving(const Scenario& s, const std::vector<traces::Request>& requests,
                                       std::vector<models::ServedRequest>* served = nullptr);

}  // namespace moesim::sim
