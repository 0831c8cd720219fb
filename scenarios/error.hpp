#pragma once
/// \file Typed errors thrown by every moesim library. Only the command line maps them to exit codes
/// (see docs/exit-codes.md); libraries never call exit().

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace moesim {

/// Root of all moesim errors. what() is the complete, user-facing message.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Malformed input text: JSON syntax, a quantity with an unknown unit, a trace record that does not
/// parse. Message: "FILE: POINTER: expected ..., found ...".
class ParseError : public Error {
 public:
  using Error::Error;
};

/// Well-formed input that describes something impossible or unknown: an unknown key, a wrong type,
/// an impossible parallel layout, an unknown catalog entry or policy name.
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// A file could not be read or written (missing, permission, refusing to overwrite).
class IoError : public Error {
 public:
  using Error::Error;
};

/// A calibration file is missing, malformed or does not fit the scenario's GPU.
class CalibrationError : public Error {
 public:
  using Error::Error;
};

/// The kind of a moesim error, so that a list of problems can be raised again with the first one's type.
enum class ErrorType { kParse, kConfig, kIo, kCalibration, kOther };
ErrorType error_type(const Error& e);
[[noreturn]] void throw_error(ErrorType type, const std::string& message);

/// Problems found while reading one input. Reading goes on past a problem wherever what follows does not
/// depend on it, so that one `moesim validate` names every problem of a file, not only the first.
class Problems {
 public:
  /// Runs `step`; records a moesim::Error it throws and returns false.
  template <class F>
  bool check(F&& step) {
    try {
      step();
      return true;
    } catch (const Error& e) {
      add(e);
      return false;
    }
  }
  void add(const Error& e) { list_.push_back({error_type(e), e.what()}); }
  bool empty() const { return list_.empty(); }
  std::size_t size() const { return list_.size(); }
  /// Throws, when any problem was recorded, an error of the first one's type whose message lists every
  /// problem, one per line.
  void raise() const;

 private:
  std::vector<std::pair<ErrorType, std::string>> list_;
};

/// Builds the canonical message "SOURCE: POINTER: expected EXPECTED, found FOUND".
std::string located_message(const std::string& source, const std::string& pointer,
                            const std::string& expected, const std::string& found);

}  // namespace moesim

/// Invariant check for programming errors (never for user input): aborts with file, line and message.
#define MOESIM_ASSERT(cond, msg)                                                   \
  do {                                                                             \
    if (!(cond)) ::moesim::internal_assert_fail(#cond, (msg), __FILE__, __LINE__); \
  } while (0)

namespace moesim {
[[noreturn]] void internal_assert_fail(const char* cond, const std::string& msg, const char* file, int line);
}
