#include "cli/errors.hpp"

#include "scenarios/error.hpp"

namespace moesim::cli {

ErrorKind error_kind(const std::exception& e) {
  if (dynamic_cast<const ParseError*>(&e) != nullptr) return ErrorKind::kParse;
  if (dynamic_cast<const ConfigError*>(&e) != nullptr) return ErrorKind::kConfig;
  if (dynamic_cast<const IoError*>(&e) != nullptr) return ErrorKind::kIo;
  if (dynamic_cast<const CalibrationError*>(&e) != nullptr) return ErrorKind::kCalibration;
  return ErrorKind::kInternal;
}

int exit_code(ErrorKind k) {
  switch (k) {
    case ErrorKind::kParse: return kParse;
    case ErrorKind::kConfig: return kConfig;
    case ErrorKind::kIo: return kIo;
    case ErrorKind::kCalibration: return kCalibration;
    case ErrorKind::kInternal: return kInternal;
  }
  return kInternal;
}

std::string error_line(const std::exception& e) {
  return std::string(error_kind(e) == ErrorKind::kInternal ? "moesim: internal error: " : "moesim: error: ") + e.what();
}

}  // namespace moesim::cli
