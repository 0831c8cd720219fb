// Fuzz target: the text of a calibration file and of a kernel profile file through their readers
// (docs/calibration.md).
#include <string>

#include "calibrate/calibration.hpp"
#include "fuzz/fuzz_input.hpp"
#include "scenarios/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string text = moesim::fuzz::text(data, size);
  try {
    moesim::calibrate::parse_calibration(text, "calibration.json");
  } catch (const moesim::Error&) {
  }
  try {
    moesim::calibrate::parse_profile(text, "profile.json");
  } catch (const moesim::Error&) {
  }
  return 0;
}
