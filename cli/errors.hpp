#pragma once
/// \file Exit codes (docs/exit-codes.md) and the typed errors a command can end with: how main() maps
/// them.

#include <exception>
#include <string>

namespace moesim::cli {

/// Exit codes of `moesim` (docs/exit-codes.md).
enum Exit : int {
  kOk = 0,
  kInternal = 1,
  kUsage = 2,
  kParse = 3,
  kConfig = 4,
  kIo = 5,
  kInfeasible = 6,
  kCalibration = 7,
};

/// The kinds of error a command ends with: one per moesim::Error subclass, and anything else (a bug).
enum class ErrorKind { kParse, kConfig, kIo, kCalibration, kInternal };

/// The kind of `e`.
ErrorKind error_kind(const std::exception& e);

/// The exit code of an error kind.
int exit_code(ErrorKind k);

/// The line main() prints on stderr for `e`: "moesim: error: MESSAGE", or "moesim: internal error:
/// MESSAGE" for errors that are bugs.
std::string error_line(const std::exception& e);

}  // namespace moesim::cli
