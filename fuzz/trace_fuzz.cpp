// Fuzz target: a file in the moesim routing trace format (docs/trace-format.md), read to the end; version 1
// files too, as `moesim trace upgrade` reads them.
#include "fuzz/fuzz_input.hpp"
#include "scenarios/error.hpp"
#include "traces/trace_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string path =
      moesim::fuzz::write_file(moesim::fuzz::fresh_dir(), "trace.jsonl", moesim::fuzz::text(data, size));
  try {
    moesim::traces::TraceReader reader(path, moesim::traces::TraceVersions::also_version1);
    moesim::traces::RoutingSample sample;
    while (reader.next(sample)) {
    }
  } catch (const moesim::Error&) {
  }
  return 0;
}
