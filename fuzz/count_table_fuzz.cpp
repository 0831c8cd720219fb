// Fuzz target: a per-layer expert-count table (`moesim trace import --format count_table`).
// Input: a first line "MODEL,KIND,DOMAIN,EXPERTS,TOP_K" (the command's options), then the CSV file.
#include <sstream>

#include "fuzz/fuzz_input.hpp"
#include "scenarios/error.hpp"
#include "traces/import.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string input = moesim::fuzz::text(data, size);
  const std::size_t eol = input.find('\n');
  if (eol == std::string::npos) return 0;
  moesim::traces::CountTableQuery q;
  std::istringstream line(input.substr(0, eol));
  char comma = 0;
  if (!std::getline(line, q.model, ',') || !std::getline(line, q.kind, ',') ||
      !std::getline(line, q.domain, ',') || !(line >> q.experts >> comma >> q.top_k) || comma != ',')
    return 0;
  const std::string path =
      moesim::fuzz::write_file(moesim::fuzz::fresh_dir(), "counts.csv", input.substr(eol + 1));
  try {
    moesim::traces::import_expert_count_table(path, q);
  } catch (const moesim::Error&) {
  }
  return 0;
}
