#pragma once
/// \file Importers that turn routing recorded elsewhere into RoutingSamples, and the helpers applied to
/// them: rescaling a sample to another number of source ranks, and expert-load statistics.
///   - Megatron-Core router traces: one router_trace_rank{N}.jsonl per rank, one line per
///     (step, layer, block) with the top-k expert ids of every token;
///   - per-layer expert-count tables (CSV), such as the OLMoE paper's routing analysis
///     (olmoe_mixtral_expert_counts.csv: OLMoE-1B-7B and Mixtral-8x7B).
/// Errors name the file, the line, what was expected and what was found ("FILE:LINE: WHERE: expected
/// ..., found ..."); nothing is skipped silently.

#include <cstdint>
#include <string>
#include <vector>

#include "scenarios/kinds.hpp"
#include "scenarios/registry.hpp"
#include "traces/routing_sample.hpp"

namespace moesim::traces {

// ------------------------------------------------------------------------- Megatron-Core router traces

/// The part of the model a Megatron router record comes from.
enum class MegatronBlock {
  decoder,  ///< the decoder stack ("block": "decoder", the default)
  mtp,      ///< a multi-token-prediction module ("block": "mtp", numbered by "mtp_idx")
};
/// The "block" values of a Megatron router-trace record.
const Registry<MegatronBlock>& megatron_blocks();

/// One imported (step, layer, block): the routing of all ranks together.
struct MegatronSample {
  /// sources = number of rank files; token_experts holds the tokens of rank 0, then rank 1, ... (each
  /// rank's records for this key in file order), token_source their ranks, counts derived from them.
  /// layer is the MoE layer index of the moesim trace format (0-based, counting MoE layers only; see
  /// import_megatron_router_traces), not the record's "layer".
  RoutingSample sample;
  MegatronBlock block = MegatronBlock::decoder;
  int mtp_idx = 0;         ///< the MTP module (0 for decoder records and for MTP records without mtp_idx)
  int megatron_layer = 0;  ///< the record's "layer" as written (Megatron's layer number within the block)
};

/// Imports a directory of Megatron-Core router traces: files router_trace_rank{N}.jsonl for ranks
/// N = 0 .. R-1 (other file names are not read; a gap in the ranks is an error). Each line is
/// {"rank", "step", "layer", "num_tokens", "topk", "top_indices": [[topk expert ids] x num_tokens],
/// optional "block": "decoder"|"mtp", optional "mtp_idx" (mtp only)}; unknown keys are errors.
/// Checks: "rank" equals the file's N; every number an integer in range (quoted as written when
/// not); num_tokens == len(top_indices); every row has topk distinct ids; every id is in
/// [0, experts); topk is the same in every record of every file and at most `experts`; every
/// (step, block, mtp_idx, layer) routes at least one token; with max_layers > 0, the decoder has at
/// most max_layers distinct layer numbers (the model's MoE layers), the first one beyond named by
/// its first record.
/// Several records of one rank for the same (step, layer, block) — micro-batches — are concatenated.
/// A rank with no record for a key contributes no tokens to it. Samples are returned ordered by
/// (step, block: decoder first, mtp_idx, layer).
/// Layer numbers: Megatron-Core's router tracer (megatron/core/transformer/moe/router_trace.py) writes
/// the router's layer_number, which counts every transformer layer from 1 (newer versions write the
/// 0-based N of the module name decoder.layers.N instead). Either way only MoE layers have a router, so
/// the numbers of a block are its MoE layers in order, with gaps where dense layers sit (DeepSeek-V3,
/// first 3 layers dense: 4, 5, ..., 61). The importer renumbers each (block, mtp_idx) by rank: the n-th
/// smallest layer number recorded anywhere in the directory (any step, any rank) becomes
/// sample.layer = n - 1, the MoE layer index (0..L-1) of the moesim trace format; megatron_layer keeps
/// the number as written. The numbers must be one numbering for the whole model (not restarted on each
/// pipeline stage), and every MoE layer must appear in some record, or the layers after a missing one
/// shift down.
/// Throws IoError (directory unreadable, no rank files), ParseError (invalid JSON, truncated line),
/// ConfigError (everything else).
std::vector<MegatronSample> import_megatron_router_traces(const std::string& dir, int experts,
                                                          int max_layers = 0);

// ------------------------------------------------------------------------------ expert-count tables

/// Which rows of an expert-count table to import, and the model's shape (not in the table).
struct CountTableQuery {
  std::string model;  ///< "model" column, e.g. "olmoe", "mistral"
  std::string kind =
      "expert_counts";  ///< "kind" column: "expert_counts" (all top-k slots) or "expert_counts_top1"
  std::string domain;   ///< "domain" column, e.g. "arxiv", "c4"
  int experts = 0;      ///< the model's experts: the first `experts` count columns (64 OLMoE, 8 Mixtral)
  int top_k = 0;  ///< slots per token in these counts (8 OLMoE and 2 Mixtral for expert_counts; 1 for top1)
  int max_layers = 0;  ///< the model's MoE layers: rows of layers beyond are refused (0: no limit)
};

/// Imports the rows of a per-layer expert-count table that match `query`, in file order. The file:
/// comment lines starting with '#', then the header model,kind,domain,layer,total,e0,...,e{n-1}, then
/// one row per (model, kind, domain, layer) with `total` routed slots and a count per expert column.
/// Each selected row becomes a count-level sample: step 0, its layer, sources 1, tokens = total / top_k.
/// Checks on selected rows: integer fields (counts and total in [0, 2^53], their sum too; layer below
/// max_layers when set), columns e{experts}.. all zero, counts summing to total, total divisible by
/// top_k and not 0, one row per layer; on every row: the header's number of fields.
/// Throws IoError (unreadable), ParseError (bad header, wrong field count, a field that is not an
/// integer) or ConfigError (the other checks; no matching row, listing the selections the file has).
std::vector<RoutingSample> import_expert_count_table(const std::string& path, const CountTableQuery& query);

// ------------------------------------------------------------------------------------- one entry point

/// What to import, and the model it is for.
struct ImportSpec {
  TraceFormat format = TraceFormat::kMegatron;  ///< megatron or count_table
  std::string path;                             ///< the folder of rank files, or the CSV table
  int experts = 0;                              ///< the model's experts
  int top_k = 0;                                ///< count tables: slots per token
  std::string model;                            ///< count tables: "model" column
  std::string kind = "expert_counts";           ///< count tables: "kind" column
  std::string domain;                           ///< count tables: "domain" column
  int max_layers = 0;  ///< the model's MoE layers: records of layers beyond are refused (0: no limit)
};

/// The routing samples of a Megatron directory (the decoder's; MTP modules are not decoder MoE
/// layers) or of a count table's selected rows, ordered by step (stable: within a step, as the
/// importer returns them). Throws as the importers do, and ConfigError for format moesim (read those
/// with TraceReader).
std::vector<RoutingSample> import_samples(const ImportSpec& spec);

// ----------------------------------------------------------------------------- expert-load matrices

/// Reads a layers × experts matrix of expert loads (JSON: an array of layers, each an array of one
/// number per expert), as `moesim place --weights` takes. Checks, naming the file and the JSON pointer
/// (syntax errors: LINE:COLUMN): at least one layer and one expert; every layer as long as the
/// first; every load a finite number in [0, 2^53] (strings such as "NaN" are not numbers; numbers are
/// quoted as written); at least one load above 0 in every layer (an all-zero layer has no balance to
/// find). Throws IoError (unreadable), ParseError (not JSON), ConfigError (the rest).
std::vector<std::vector<double>> read_expert_loads(const std::string& path);

// ----------------------------------------------------------------------------------------- rescaling

/// Re-expresses a sample recorded on N = sample.sources source ranks as if recorded on `sources` = M.
/// Assumption: tokens are exchangeable across ranks (which rank holds a token says nothing about where
/// it is routed), so a source's row can be split or merged in proportion to the tokens.
///   M = N·f: source r becomes sources r·f .. r·f+f-1; its count c for expert e is split into f integer
///     parts summing exactly to c (largest remainder: each part gets floor(c/f), the c mod f leftover
///     slots go one each to consecutive parts starting where the previous expert's leftovers ended,
///     wrapping around, starting at part 0 for each source row — so the f rows' totals also differ by
///     at most one).
///   M = N/g: new source r is the sum of old sources r·g .. r·g+g-1.
/// Token-level detail is kept (token_experts, token_weights unchanged) and token_source is rewritten:
/// when splitting, the i-th token of old source r goes to r·f + (i mod f) (round-robin); when merging,
/// to old source / g. (An empty token_source means equal consecutive runs, as in RoutingSample.) When
/// splitting, the counts follow the largest-remainder rule above, so they agree with the token-level
/// detail in per-expert totals but not necessarily row by row. tokens, dropped and padded are unchanged.
/// Throws ConfigError if M < 1 or M neither divides nor is a multiple of N.
RoutingSample rescale_sources(const RoutingSample& sample, int sources);

// ---------------------------------------------------------------------------------------- statistics

/// Load balance of the experts in one sample (slots per expert, all sources together).
struct ExpertLoadStats {
  int64_t max = 0;           ///< slots of the most loaded expert
  double mean = 0;           ///< slots per expert (total / experts)
  double max_over_mean = 0;  ///< max / mean: 1 is perfect balance (0 when no slots are routed)
  double cv = 0;             ///< coefficient of variation: population std / mean (0 when no slots)
};

/// Statistics of sample.expert_counts().
ExpertLoadStats expert_load_stats(const RoutingSample& sample);
/// Statistics of a per-expert slot vector (empty vector: all zero).
ExpertLoadStats expert_load_stats(const std::vector<int64_t>& per_expert);

}  // namespace moesim::traces
