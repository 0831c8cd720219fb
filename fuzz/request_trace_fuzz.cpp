// Fuzz target: a serving request trace (`moesim trace requests`). Input: one byte choosing the format (low
// two bits: auto, moesim, azure, burstgpt) and --skip-failed (bit 2), then the CSV file.
#include "fuzz/fuzz_input.hpp"
#include "scenarios/error.hpp"
#include "traces/requests.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  using moesim::traces::RequestFormat;
  static constexpr RequestFormat kFormats[] = {RequestFormat::kAuto, RequestFormat::kMoesim,
                                               RequestFormat::kAzure, RequestFormat::kBurstGpt};
  const RequestFormat format = kFormats[data[0] & 3];
  const bool skip_failed = (data[0] & 4) != 0;
  const std::string path = moesim::fuzz::write_file(moesim::fuzz::fresh_dir(), "requests.csv",
                                                    moesim::fuzz::text(data + 1, size - 1));
  try {
    const auto t = moesim::traces::read_request_trace(path, format, skip_failed);
    moesim::traces::request_stats(t.requests);
  } catch (const moesim::Error&) {
  }
  return 0;
}
