#pragma once
/// \file Parameter and FLOP counts of a model, from its dimensions alone.

#include "scenarios/scenario.hpp"

namespace moesim::models {

/// Parameter counts (number of parameters, not bytes).
struct ParamCounts {
  double attention_per_layer = 0;  ///< projections (and MLA norms) of one block's attention
  double dense_ffn_per_layer = 0;  ///< one dense FFN
  double expert = 0;               ///< one routed expert
  double shared_per_layer = 0;     ///< all shared experts of one MoE layer
  double router_per_layer = 0;     ///< gate matrix hidden x experts
  double norms_per_layer = 0;      ///< RMSNorm weights of one block
  double embedding = 0;            ///< input embedding (vocab x hidden)
  double head = 0;                 ///< output projection (0 when tied)
  double mtp = 0;                  ///< all MTP modules (not part of total/active, as model cards count)
  int moe_layers = 0;
  int dense_layers = 0;
  double total = 0;   ///< all parameters of the main model (embedding and head included)
  double active = 0;  ///< parameters a token uses: top_k routed experts instead of all
};

/// Counts parameters. Formulas per block type are in params.cpp with their sources.
ParamCounts count_params(const ModelSpec& m);

/// True if block `layer` (0-based, main model) is an MoE block.
bool is_moe_layer(const ModelSpec& m, int layer);

}  // namespace moesim::models
