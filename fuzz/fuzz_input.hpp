#pragma once
/// \file What the fuzz targets share: the input as text, and the input written to a file for the readers
/// that take a path. Files live in one folder per process under the system's temporary directory
/// ($TMPDIR), removed when the process exits normally.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace moesim::fuzz {

/// The fuzzer's bytes as a string (any bytes, NULs included).
inline std::string text(const uint8_t* data, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

/// This process's scratch folder, emptied and recreated on every call.
inline std::filesystem::path fresh_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("moesim-fuzz-" + std::to_string(::getpid()));
    std::atexit([] {
      std::filesystem::remove_all(std::filesystem::temp_directory_path() /
                                  ("moesim-fuzz-" + std::to_string(::getpid())));
    });
    return d;
  }();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

/// Writes `bytes` to `dir`/`name` and returns the path.
inline std::string write_file(const std::filesystem::path& dir, const std::string& name,
                              std::string_view bytes) {
  const std::filesystem::path p = dir / name;
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return p.string();
}

}  // namespace moesim::fuzz
