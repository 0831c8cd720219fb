// Fuzz target: the text of a calibration file through its reader (docs/calibration.md).
#include "calibrate/calibration.hpp"
#include "fuzz/fuzz_input.hpp"
#include "scenarios/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  try {
    moesim::calibrate::parse_calibration(moesim::fuzz::text(data, size), "calibration.json");
  } catch (const moesim::Error&) {
  }
  return 0;
}
