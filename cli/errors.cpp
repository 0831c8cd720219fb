#include "cli/errors.hpp"

#include "scenarios/error.hpp"

namespace moesim::cli {

const Registry<ErrorKind>& error_kinds() {
  static const Registry<ErrorKind> r{
      "error kind",
      "error kinds",
      {{"parse", "malformed input: JSON syntax, a quantity with a bad unit (exit 3)", ErrorKind::kParse},
       {"config", "invalid scenario or arguments: unknown key or name, impossible layout (exit 4)",
        ErrorKind::kConfig},
       {"io", "a file could not be read or written, or would be overwritten (exit 5)", ErrorKind::kIo},
       {"calibration", "calibration file missing or malformed (exit 7)", ErrorKind::kCalibration},
       {"internal", "anything else: a bug (exit 1)", ErrorKind::kInternal}}};
  return r;
}

ErrorKind error_kind(const std::exception& e) {
  if (dynamic_cast<const ParseError*>(&e) != nullptr) return ErrorKind::kParse;
  if (dynamic_cast<const ConfigError*>(&e) != nullptr) return ErrorKind::kConfig;
  if (dynamic_cast<const IoError*>(&e) != nullptr) return ErrorKind::kIo;
  if (dynamic_cast<const CalibrationError*>(&e) != nullptr) return ErrorKind::kCalibration;
  return ErrorKind::kInternal;
}

int exit_code(ErrorKind k) {
  switch (k) {
    case ErrorKind::kParse:
      return kParse;
    case ErrorKind::kConfig:
      return kConfig;
    case ErrorKind::kIo:
      return kIo;
    case ErrorKind::kCalibration:
      return kCalibration;
    case ErrorKind::kInternal:
      return kInternal;
  }
  return kInternal;
}

std::string error_line(const std::exception& e) {
  return std::string(error_kind(e) == ErrorKind::kInternal ? "moesim: internal error: " : "moesim: error: ") +
         e.what();
}

nlohmann::json error_json(const std::exception& e) {
  return {{"type", error_kinds().name_of(error_kind(e))}, {"message", e.what()}};
}

void throw_error_json(const nlohmann::json& j) {
  const std::string message = j.at("message").get<std::string>();
  switch (error_kinds().get(j.at("type").get<std::string>(), "child process", "/type")) {
    case ErrorKind::kParse:
      throw ParseError(message);
    case ErrorKind::kConfig:
      throw ConfigError(message);
    case ErrorKind::kIo:
      throw IoError(message);
    case ErrorKind::kCalibration:
      throw CalibrationError(message);
    case ErrorKind::kInternal:
      break;
  }
  throw Error(message);
}

}  // namespace moesim::cli
