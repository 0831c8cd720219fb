#pragma once
/// \file Turns a Hugging Face model config.json (the file users already have) into a catalog model entry.

#include <string>
#include <vector>

#include "scenarios/json_reader.hpp"

namespace moesim {

/// The model_type values import_hf_config accepts: the MoE families deepseek_v2, deepseek_v3,
/// deepseek_v32, kimi_k2, glm4_moe, qwen2_moe, qwen3_moe, mixtral, phimoe, olmoe, gpt_oss, llama4_text,
/// dbrx; the dense llama, mistral, qwen2, qwen3; and the multimodal wrappers llama4 and kimi_k25, whose
/// language model is read from text_config.
std::vector<std::string> hf_model_types();

/// Converts a Hugging Face config into a catalog model JSON, validated by model_from_json. Every key it
/// reads is checked for type, integrality and range; an unknown model_type, a dense model_type carrying
/// expert keys, or an expert key the family does not have is refused. What the catalog cannot express
/// (an indexer, chunked attention, a vision encoder, ...) is listed in the entry's "source".
/// `name` overrides the entry name (default: the config's _name_or_path or model_type).
/// Throws ConfigError naming the config file, the HF key's JSON pointer, what was expected and found.
Json import_hf_config(const Json& config, const std::string& source, const std::string& name);

}  // namespace moesim
