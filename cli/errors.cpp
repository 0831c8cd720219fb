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
  const auto* err = dynamic_cast<const Error*>(&e);
  if (err == nullptr) return ErrorKind::kInternal;
  switch (error_type(*err)) {
    case ErrorType::kParse:
      return ErrorKind::kParse;
    case ErrorType::kConfig:
      return ErrorKind::kConfig;
    case ErrorType::kIo:
      return ErrorKind::kIo;
    case ErrorType::kCalibration:
      return ErrorKind::kCalibration;
    case ErrorType::kOther:
      break;
  }
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
  // A list of problems (scenarios' Problems) is one line each, every one with the prefix.
  const std::string prefix =
      error_kind(e) == ErrorKind::kInternal ? "moesim: internal error: " : "moesim: error: ";
  const std::string what = e.what();
  std::string out;
  std::size_t start = 0;
  while (true) {
    const auto end = what.find('\n', start);
    out += prefix + what.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (end == std::string::npos) break;
    out += "\n";
    start = end + 1;
  }
  return out;
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
