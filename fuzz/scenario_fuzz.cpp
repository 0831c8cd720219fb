// Fuzz target: the text of a scenario file through the loader, catalog references resolved against the
// real catalog (scenarios/catalog or $MOESIM_CATALOG), then every variant it lists applied and loaded.
#include "fuzz/fuzz_input.hpp"
#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const moesim::Catalog catalog;
  const std::string source = "fuzz-scenario.json";
  moesim::Json j;
  try {
    j = moesim::parse_json_text(moesim::fuzz::text(data, size), source);
    moesim::scenario_from_json(j, source, catalog);
  } catch (const moesim::Error&) {
  }
  try {
    for (const moesim::Variant& v : moesim::variants_from_json(j, source)) {
      try {
        moesim::scenario_from_json(moesim::apply_variant(j, v, source), source, catalog);
      } catch (const moesim::Error&) {
      }
    }
  } catch (const moesim::Error&) {
  }
  return 0;
}
