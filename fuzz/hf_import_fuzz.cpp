// Fuzz target: a Hugging Face config.json through the importer (`moesim import hf`).
#include "fuzz/fuzz_input.hpp"
#include "scenarios/error.hpp"
#include "scenarios/hf_import.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string source = "config.json";
  try {
    moesim::import_hf_config(moesim::parse_json_text(moesim::fuzz::text(data, size), source), source, "");
  } catch (const moesim::Error&) {
  }
  return 0;
}
