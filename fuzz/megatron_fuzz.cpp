// Fuzz target: a folder of Megatron-Core router traces (`moesim trace import --format megatron`).
// Input: one byte giving --experts (read as a signed byte, -128..127), then the rank files
// router_trace_rank0.jsonl, rank1, ... separated by NUL bytes (at most 8 files).
#include "fuzz/fuzz_input.hpp"
#include "scenarios/error.hpp"
#include "traces/import.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const auto dir = moesim::fuzz::fresh_dir();
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  for (int rank = 0; rank < 8 && (rank == 0 || !rest.empty()); ++rank) {
    const std::size_t end = std::min(rest.find('\0'), rest.size());
    moesim::fuzz::write_file(dir, "router_trace_rank" + std::to_string(rank) + ".jsonl", rest.substr(0, end));
    rest.remove_prefix(std::min(end + 1, rest.size()));
  }
  try {
    moesim::traces::import_megatron_router_traces(dir.string(), static_cast<int8_t>(data[0]));
  } catch (const moesim::Error&) {
  }
  return 0;
}
