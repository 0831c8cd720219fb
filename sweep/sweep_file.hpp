#pragma once
/// \file The sweep file (docs/sweep.md): a base scenario and axes of values patched into it at JSON
/// pointers, combined as a product or zipped; the points they make, each named by a stable hash of its
/// patched scenario; and which points one shard of a distributed sweep runs.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "scenarios/json_reader.hpp"

namespace moesim::sweep {

struct Axis {
  std::string pointer;  ///< JSON pointer into the base scenario ("/parallelism/experts/ep")
  Json values;          ///< array of the values it takes, in order
};

enum class Combine { kProduct, kZip };

struct SweepSpec {
  std::string name;
  std::string source;     ///< the sweep file
  std::string base_path;  ///< the base scenario file (paths inside it resolve against its folder)
  Json base;              ///< the base scenario as read
  std::vector<Axis> axes;
  Combine combine = Combine::kProduct;
};

/// One point of a sweep: its position, the value of each axis, the patched scenario and its name.
struct Point {
  int64_t index = 0;
  Json values;     ///< {pointer: value} for every axis
  Json scenario;   ///< the base with every axis value patched in
  std::string id;  ///< 16 hex digits: FNV-1a 64 of the patched scenario's canonical text
};

/// Reads and checks a sweep file: a pointer that does not lead into the base scenario, an empty axis, a
/// range that yields no value, zipped axes of different lengths, an unknown key: each a ConfigError
/// naming the file, the JSON pointer, what was expected and what was found.
SweepSpec read_sweep(const std::string& path);
SweepSpec sweep_from_json(const Json& j, const std::string& source);

/// The number of points (product: the product of the axis lengths; zip: the common length).
int64_t point_count(const SweepSpec& s);

/// Point `index` (0 ≤ index < point_count): the last axis varies fastest in a product.
Point make_point(const SweepSpec& s, int64_t index);

/// FNV-1a 64-bit hash of `text`, as 16 lowercase hex digits.
std::string stable_hash(const std::string& text);

/// Shard k of n (0 ≤ k < n): a point belongs to it when index % n == k.
struct Shard {
  int k = 0, n = 1;
  std::string from;  ///< where it came from ("--shard", "SLURM_ARRAY_TASK_ID", "OMPI_COMM_WORLD_RANK", ...)
};

/// The shard this process runs: `flag` ("K/N") if given, else Slurm array variables
/// (SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT, or with SLURM_ARRAY_TASK_MIN/MAX), else MPI ranks
/// (OMPI_COMM_WORLD_RANK/SIZE, PMI_RANK/PMI_SIZE), else 0/1. `getenv` is the environment (tests pass
/// their own). Throws ConfigError for a malformed flag or variable, naming it.
Shard shard_from(const std::string& flag, const std::function<const char*(const char*)>& getenv);

}  // namespace moesim::sweep
