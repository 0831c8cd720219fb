#pragma once
/// \file Megatron-Core's pipeline layout string (`--pipeline-model-parallel-layout`): which layers each
/// pipeline stage holds. Stages are separated by '|'; in each, 'E' is the embedding, 't' a decoder
/// layer, 'm' an MTP layer and 'L' the output head with its loss. `X*n` repeats one symbol and `(...)*n`
/// a group, stage separators included: "Et|(tt|)*30mL" is DeepSeek-V3's 32-stage layout (embedding and
/// one layer, thirty stages of two layers, MTP and loss). Whitespace is ignored. Stage k (in order) is
/// virtual chunk k: pipeline rank k % pp.

#include <string>
#include <vector>

namespace moesim {

/// What one pipeline stage holds.
struct LayoutStage {
  int decoder = 0;                 ///< decoder layers ('t')
  int mtp = 0;                     ///< MTP layers ('m')
  bool embedding = false;          ///< 'E'
  bool loss = false;               ///< 'L'
  bool decoder_after_mtp = false;  ///< a 't' follows an 'm' inside this stage
};

/// The stages of `layout`. Throws std::invalid_argument with "at character N: ..." when the string is not
/// a layout (unknown symbol, unbalanced parentheses, a repeat count that is not a positive integer or
/// would expand beyond 1,000,000 symbols).
std::vector<LayoutStage> parse_pipeline_layout(const std::string& layout);

/// What a layout must hold for a model of `layers` decoder layers and `mtp` MTP layers on `stages`
/// stages: exactly that many stages, every decoder layer and MTP layer once, MTP layers after every
/// decoder layer, the embedding in stage 0 and the loss in the last stage. An empty `expected` when
/// `parsed` is such a layout, else what was expected and what was found.
struct LayoutProblem {
  std::string expected, found;
};
LayoutProblem check_pipeline_layout(const std::vector<LayoutStage>& parsed, int layers, int mtp, int stages);

}  // namespace moesim
