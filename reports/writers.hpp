#pragma once
/// \file Every report writer. Each format or command has its own header; this one includes them all:
/// the context block (context.hpp), the result as JSON and back (result_json.hpp), as a table
/// (table.hpp) and as CSV (csv.hpp), comparisons (compare.hpp), a run's output directory
/// (output_dir.hpp), replays (replay.hpp), placements (placement.hpp), trace statistics
/// (trace_stats.hpp) and topologies (topology.hpp); every file is written through atomic_file.hpp.

#include "reports/atomic_file.hpp"
#include "reports/compare.hpp"
#include "reports/context.hpp"
#include "reports/csv.hpp"
#include "reports/ops.hpp"
#include "reports/output_dir.hpp"
#include "reports/placement.hpp"
#include "reports/replay.hpp"
#include "reports/result_json.hpp"
#include "reports/table.hpp"
#include "reports/topology.hpp"
#include "reports/trace_stats.hpp"
