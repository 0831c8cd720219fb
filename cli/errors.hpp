#pragma once
/// \file Exit codes (docs/exit-codes.md) and the typed errors a command can end with: how main() maps
/// them, and how a child process hands one to its parent without losing its type.

#include <exception>
#include <nlohmann/json.hpp>
#include <string>

#include "scenarios/registry.hpp"

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

/// Error kinds by name (parse, config, io, calibration, internal), as a child process reports them.
const Registry<ErrorKind>& error_kinds();

/// The kind of `e`.
ErrorKind error_kind(const std::exception& e);

/// The exit code of an error kind.
int exit_code(ErrorKind k);

/// The line main() prints on stderr for `e`: "moesim: error: MESSAGE", or "moesim: internal error:
/// MESSAGE" for errors that are bugs.
std::string error_line(const std::exception& e);

/// {"type": error_kinds() name, "message": what()}.
nlohmann::json error_json(const std::exception& e);

/// Throws the error error_json described, with its type and message.
[[noreturn]] void throw_error_json(const nlohmann::json& j);

}  // namespace moesim::cli
