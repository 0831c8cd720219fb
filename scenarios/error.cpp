#include "scenarios/error.hpp"

#include <cstdio>
#include <cstdlib>

namespace moesim {

std::string located_message(const std::string& source, const std::string& pointer,
                            const std::string& expected, const std::string& found) {
  std::string m = source;
  m += ": ";
  m += pointer.empty() ? std::string("/") : pointer;
  m += ": expected " + expected;
  if (!found.empty()) m += ", found " + found;
  return m;
}

ErrorType error_type(const Error& e) {
  if (dynamic_cast<const ParseError*>(&e) != nullptr) return ErrorType::kParse;
  if (dynamic_cast<const ConfigError*>(&e) != nullptr) return ErrorType::kConfig;
  if (dynamic_cast<const IoError*>(&e) != nullptr) return ErrorType::kIo;
  if (dynamic_cast<const CalibrationError*>(&e) != nullptr) return ErrorType::kCalibration;
  return ErrorType::kOther;
}

void throw_error(ErrorType type, const std::string& message) {
  switch (type) {
    case ErrorType::kParse:
      throw ParseError(message);
    case ErrorType::kConfig:
      throw ConfigError(message);
    case ErrorType::kIo:
      throw IoError(message);
    case ErrorType::kCalibration:
      throw CalibrationError(message);
    case ErrorType::kOther:
      break;
  }
  throw Error(message);
}

void Problems::raise() const {
  if (list_.empty()) return;
  std::string all;
  for (const auto& [type, message] : list_) all += (all.empty() ? "" : "\n") + message;
  throw_error(list_.front().first, all);
}

void internal_assert_fail(const char* cond, const std::string& msg, const char* file, int line) {
  std::fprintf(stderr, "moesim: internal error at %s:%d: %s (%s)\n", file, line, msg.c_str(), cond);
  std::abort();
}

}  // namespace moesim
