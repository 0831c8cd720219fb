// Sweep files (sweep/sweep_file.hpp): points of a product and of a zip in the documented order, ranges,
// stable point names, errors naming file and place, and shards from flags, Slurm and MPI variables.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "scenarios/error.hpp"
#include "sweep/sweep_file.hpp"

namespace moesim::sweep {
namespace {

namespace fs = std::filesystem;

std::string example() {
  return std::string(MOESIM_SOURCE_DIR) + "/scenarios/examples/olmoe-1b-7b-16xA100.json";
}

SweepSpec from(const std::string& axes, const std::string& extra = "") {
  const Json j = Json::parse(R"({"schema_version": 1, "name": "t", "scenario": ")" + example() +
                             R"(", "axes": )" + axes + extra + "}");
  return sweep_from_json(j, "/tmp/t-sweep.json");
}

TEST(Sweep, ProductLastAxisFastest) {
  const SweepSpec s = from(R"([{"pointer": "/parallelism/experts/ep", "values": [1, 2, 4]},
                                {"pointer": "/parallelism/microbatch_size", "values": [1, 2]}])");
  ASSERT_EQ(point_count(s), 6);
  // index = 2·i_ep + i_mbs
  const Point p = make_point(s, 3);
  EXPECT_EQ(p.values["/parallelism/experts/ep"], 2);
  EXPECT_EQ(p.values["/parallelism/microbatch_size"], 2);
  EXPECT_EQ(p.scenario["parallelism"]["experts"]["ep"], 2);
  EXPECT_EQ(p.scenario["parallelism"]["microbatch_size"], 2);
  std::set<std::string> ids;
  for (int64_t i = 0; i < 6; ++i) ids.insert(make_point(s, i).id);
  EXPECT_EQ(ids.size(), 6u);
  // The name is a function of the patched scenario only: the same point of another sweep has it too.
  const SweepSpec other = from(R"([{"pointer": "/parallelism/microbatch_size", "values": [2]},
                                    {"pointer": "/parallelism/experts/ep", "values": [2]}])");
  EXPECT_EQ(make_point(other, 0).id, p.id);
}

TEST(Sweep, ZipAndRange) {
  const SweepSpec s =
      from(R"([{"pointer": "/parallelism/experts/ep", "range": {"from": 2, "to": 8, "step": 2}},
                                {"pointer": "/parallelism/microbatch_size", "values": [1, 2, 3, 4]}])",
           R"(, "combine": "zip")");
  ASSERT_EQ(point_count(s), 4);
  EXPECT_EQ(make_point(s, 2).values["/parallelism/experts/ep"], 6);
  EXPECT_EQ(make_point(s, 2).values["/parallelism/microbatch_size"], 3);
}

TEST(Sweep, StableHashIsFnv1a64) {
  // FNV-1a 64 of "" is the offset basis; of "a" it is 0xaf63dc4c8601ec8c (the published test vectors).
  EXPECT_EQ(stable_hash(""), "cbf29ce484222325");
  EXPECT_EQ(stable_hash("a"), "af63dc4c8601ec8c");
}

TEST(Sweep, ErrorsNamePlace) {
  const auto fails = [](const std::string& axes, const std::string& extra, const std::string& pointer,
                        const std::string& found) {
    try {
      from(axes, extra);
      ADD_FAILURE() << "accepted " << axes;
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("t-sweep.json"), std::string::npos) << m;
      EXPECT_NE(m.find(pointer), std::string::npos) << m;
      EXPECT_NE(m.find("expected"), std::string::npos) << m;
      EXPECT_NE(m.find(found), std::string::npos) << m;
    }
  };
  fails(R"([{"pointer": "/parallelism/nope/ep", "values": [1]}])", "", "/axes/0/pointer",
        "/parallelism/nope/ep");
  fails(R"([{"pointer": "/parallelism/pp", "values": []}])", "", "/axes/0/values", "found");
  fails(R"([{"pointer": "/parallelism/pp", "range": {"from": 4, "to": 2}}])", "", "/axes/0/range/to",
        "found");
  fails(R"([{"pointer": "/parallelism/pp", "values": [1], "range": {"from": 1, "to": 2}}])", "",
        "/axes/0/range", "both");
  fails(
      R"([{"pointer": "/parallelism/pp", "values": [1, 2]}, {"pointer": "/parallelism/tp", "values": [1]}])",
      R"(, "combine": "zip")", "/axes/1", "1 values");
  fails(R"([])", "", "/axes", "found");
}

TEST(Shard, FlagSlurmMpi) {
  std::map<std::string, std::string> env;
  const auto get = [&](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  Shard s = shard_from("", get);
  EXPECT_EQ(s.k, 0);
  EXPECT_EQ(s.n, 1);
  s = shard_from("2/5", get);
  EXPECT_EQ(s.k, 2);
  EXPECT_EQ(s.n, 5);
  env = {{"SLURM_ARRAY_TASK_ID", "7"}, {"SLURM_ARRAY_TASK_MIN", "4"}, {"SLURM_ARRAY_TASK_MAX", "7"}};
  s = shard_from("", get);
  EXPECT_EQ(s.k, 3);
  EXPECT_EQ(s.n, 4);
  env = {{"SLURM_ARRAY_TASK_ID", "1"}, {"SLURM_ARRAY_TASK_COUNT", "4"}};
  s = shard_from("", get);
  EXPECT_EQ(s.k, 1);
  EXPECT_EQ(s.n, 4);
  env = {{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}};
  s = shard_from("", get);
  EXPECT_EQ(s.k, 1);
  EXPECT_EQ(s.n, 2);
  env = {{"PMI_RANK", "0"}, {"PMI_SIZE", "3"}};
  EXPECT_EQ(shard_from("", get).n, 3);
  EXPECT_THROW(shard_from("5/5", get), ConfigError);
  EXPECT_THROW(shard_from("x", get), ConfigError);
  env = {{"OMPI_COMM_WORLD_RANK", "1"}};
  EXPECT_THROW(shard_from("", get), ConfigError);
}

}  // namespace
}  // namespace moesim::sweep
