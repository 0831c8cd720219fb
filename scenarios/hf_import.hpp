#pragma once
/// \file Turns a Hugging Face model config.json (the file users already have) into a catalog model entry.

#include <string>

#include "scenarios/json_reader.hpp"

namespace moesim {

/// Converts a Hugging Face config (model_type deepseek_v2/v3, mixtral, qwen2_moe, qwen3_moe, olmoe,
/// gpt_oss, or a llama-style dense model) into a catalog model JSON, validated by model_from_json.
/// `name` overrides the entry name (default: the config's _name_or_path or model_type).
/// Throws ConfigError naming the missing or mistyped key.
Json import_hf_config(const Json& config, const std::string& source, const std::string& name);

}  // namespace moesim
