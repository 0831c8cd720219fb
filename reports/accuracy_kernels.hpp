#pragma once
/// \file The kernel rows of `moesim accuracy`: published microbenchmarks (DeepEP all-to-all, DeepGEMM
/// FP8 GEMMs, FlashAttention-3 forward) against what moesim's own cost functions predict for the same
/// traffic or shape: the dispatch and network models (models/dispatch.hpp, models/network.hpp) and the
/// roofline compute model (models/compute_cost.hpp) on the catalog GPU or cluster each row names.

#include <string>
#include <vector>

#include "reports/accuracy.hpp"
#include "scenarios/catalog.hpp"

namespace moesim::reports {

/// Reads every *.csv under `dir` (sorted by name; '#' lines are comments, the first other line is the
/// header) and predicts each row. A file's kind follows from its header: `bytes_per_copy` (all-to-all:
/// name, cluster, op, ep, path, tokens, top_k, node_limit, bytes_per_copy, published_gbps, source),
/// `m_per_group` (GEMM: name, gpu, table, groups, m_per_group, n, k, published_tflops, source) or
/// `headdim` (attention: name, gpu, headdim, causal, seqlen, batch, heads, published_tflops, source) or
/// `category` (a published kernel trace per MoE layer: name, scenario, pass, category, published_us,
/// source; the scenario is a file of the folder above `dir`, its first MoE block's ops summed by pass
/// and category, or category `pair`: the analytic engine's overlapped F&B pair on its critical rank).
/// Throws ParseError naming the file, line and column for a malformed file, ConfigError for an unknown
/// catalog entry. An absent `dir` gives no rows.
std::vector<AccuracyRow> kernel_rows(const std::string& dir, const Catalog& cat);

}  // namespace moesim::reports
