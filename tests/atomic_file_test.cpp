// How moesim writes files (reports/atomic_file.hpp, reports/output_dir.hpp): a target is either its old
// content or the complete new one; a failed write leaves no file and no temporary; a set of files
// appears together or not at all; --force replaces a run's whole set and nothing else.
//
// A full disk is produced with RLIMIT_FSIZE in a child process (tests/support/subprocess.hpp): with
// SIGXFSZ ignored, write(2) past the limit fails with EFBIG, as it fails with ENOSPC on a full disk, and
// the error reaches the writer through fwrite or, for text that fits in the stdio buffer, only through
// fflush — the path a writer that ignores fflush/fclose results gets wrong.
#include "reports/atomic_file.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "models/analytic.hpp"
#include "reports/output_dir.hpp"
#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"
#include "tests/support/subprocess.hpp"

namespace fs = std::filesystem;
using moesim::IoError;
using moesim::reports::check_output_dir;
using moesim::reports::check_output_file;
using moesim::reports::OutputSet;
using moesim::reports::write_file;
using moesim::test_support::run_in_child;

namespace {

class AtomicFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("moesim_atomic_" + std::to_string(::getpid()) + "_" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  static std::string read(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  static void put(const std::string& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
  }
  // Every name in `d` (temporaries are hidden files, so they show here).
  static std::set<std::string> entries(const fs::path& d) {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(d)) names.insert(e.path().filename().string());
    return names;
  }
  fs::path dir_;
};

// The message of the IoError `f` throws; fails the test when it throws nothing or another type.
template <class F>
std::string io_error(F&& f) {
  try {
    f();
  } catch (const IoError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected an IoError, got: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected an IoError, nothing was thrown";
  return "";
}

// Runs `f` in a child whose files may hold at most `limit` bytes, SIGXFSZ ignored; returns the message
// of the IoError it throws, or "no error".
template <class F>
moesim::test_support::ChildOutput with_file_size_limit(rlim_t limit, F&& f) {
  return run_in_child([&]() -> std::string {
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit rl{limit, limit};
    if (::setrlimit(RLIMIT_FSIZE, &rl) != 0) throw std::runtime_error("setrlimit failed");
    try {
      f();
    } catch (const IoError& e) {
      return e.what();
    }
    return "no error";
  });
}

TEST_F(AtomicFile, WritesNewFileWithUmaskPermissionsAndNoTemporary) {
  const std::string p = path("a.json");
  write_file(p, "{\"x\": 1}\n", false, "-o");
  EXPECT_EQ(read(p), "{\"x\": 1}\n");
  EXPECT_EQ(entries(dir_), std::set<std::string>{"a.json"});
  // Created like any new file: 0666 less the umask (not mkstemp's 0600).
  const mode_t mask = ::umask(0);
  ::umask(mask);
  struct stat st;
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0666 & ~mask);
}

TEST_F(AtomicFile, ExistingFileReplacedOnlyWithForce) {
  const std::string p = path("a.json");
  put(p, "old");
  const std::string m = io_error([&] { write_file(p, "new", false, "-o"); });
  EXPECT_NE(m.find(p + ": -o: refusing to overwrite an existing file"), std::string::npos) << m;
  EXPECT_EQ(read(p), "old");
  write_file(p, "new", true, "-o");
  EXPECT_EQ(read(p), "new");
  EXPECT_EQ(entries(dir_), std::set<std::string>{"a.json"});
}

TEST_F(AtomicFile, DirectoryTargetIsNeverReplaced) {
  const std::string d = path("out");
  fs::create_directories(d);
  put(d + "/mine.txt", "keep");
  for (const bool force : {false, true}) {
    const std::string m = io_error([&] { write_file(d, "text", force, "-o"); });
    EXPECT_NE(m.find(d + ": -o: expected a file to write, found a directory"), std::string::npos) << m;
  }
  EXPECT_EQ(read(d + "/mine.txt"), "keep");
  EXPECT_EQ(entries(dir_), std::set<std::string>{"out"});
}

TEST_F(AtomicFile, MissingDirectoryAndFileInThePathAreNamed) {
  const std::string missing = path("no/such/a.json");
  std::string m = io_error([&] { write_file(missing, "x", false, "-o"); });
  EXPECT_NE(m.find(missing + ": -o: expected a file in an existing directory, found no directory " +
                   path("no/such")),
            std::string::npos)
      << m;
  put(path("plain"), "x");
  m = io_error([&] { check_output_file(path("plain/a.json"), true, "--dot"); });
  EXPECT_NE(m.find("--dot: expected a file in a directory, found a file at " + path("plain")),
            std::string::npos)
      << m;
  EXPECT_FALSE(fs::exists(path("no")));
}

// Root writes anywhere, so the child gives up root first (to nobody, who cannot write into a 0555
// directory owned by root); other users are refused by the mode alone.
TEST_F(AtomicFile, ReadOnlyDirectoryIsRefusedNamingTargetAndReason) {
  const std::string ro = path("ro");
  fs::create_directories(ro);
  fs::permissions(dir_, fs::perms::all, fs::perm_options::add);  // nobody must reach ro
  fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                          fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  const std::string target = ro + "/a.json";
  const auto child = run_in_child([&]() -> std::string {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0))
      throw std::runtime_error("cannot drop root");
    std::string out;
    for (const auto& f : {std::function<void()>([&] { check_output_file(target, false, "-o"); }),
                          std::function<void()>([&] { write_file(target, "x", true, "-o"); }),
                          std::function<void()>([&] { check_output_dir(ro, "--out"); })}) {
      try {
        f();
        out += "no error\n";
      } catch (const IoError& e) {
        out += std::string(e.what()) + "\n";
      }
    }
    return out;
  });
  ASSERT_TRUE(child.ok()) << child.failure;
  const std::string denied = std::strerror(EACCES);
  std::istringstream lines(child.bytes);
  std::string line;
  std::getline(lines, line);
  EXPECT_NE(line.find(target +
                      ": -o: expected a file in a writable directory, found that no file can be "
                      "created in " +
                      ro + " (" + denied + ")"),
            std::string::npos)
      << line;
  std::getline(lines, line);
  EXPECT_NE(line.find(target + ": -o: expected a file in a writable directory"), std::string::npos) << line;
  std::getline(lines, line);
  EXPECT_NE(line.find(ro +
                      ": --out: expected a writable output directory, found that no file can be created "
                      "in it (" +
                      denied + ")"),
            std::string::npos)
      << line;
  EXPECT_TRUE(entries(ro).empty());
}

// 3000 bytes fit in the stdio buffer (4096), so the limit of 1024 bytes is met at fflush; 1 MB fails at
// fwrite. Either way: IoError naming the target and the system's reason, no file, no temporary.
TEST_F(AtomicFile, FullDiskAtFlushOrWriteLeavesNothing) {
  const std::string target = path("links.csv");
  for (const std::size_t size : {std::size_t{3000}, std::size_t{1} << 20}) {
    const auto child =
        with_file_size_limit(1024, [&] { write_file(target, std::string(size, 'x'), false, "-o"); });
    ASSERT_TRUE(child.ok()) << child.failure;
    EXPECT_EQ(child.bytes,
              target + ": write failed: " + std::strerror(EFBIG) + " (no output file was changed)")
        << size << " bytes";
    EXPECT_TRUE(entries(dir_).empty()) << size << " bytes";
  }
  // Under the limit the same write succeeds: the limit, not the writer, made the difference.
  const auto child =
      with_file_size_limit(1024, [&] { write_file(target, std::string(1000, 'x'), false, "-o"); });
  ASSERT_TRUE(child.ok()) << child.failure;
  EXPECT_EQ(child.bytes, "no error");
  EXPECT_EQ(read(target), std::string(1000, 'x'));
}

TEST_F(AtomicFile, FullDiskOnTheLastFileOfASetKeepsThePreviousSet) {
  put(path("result.json"), "old result");
  const auto child = with_file_size_limit(1024, [&] {
    OutputSet set;
    set.add(path("result.json"), "new result");
    set.add(path("layers.csv"), "new layers");
    set.add(path("links.csv"), std::string(3000, 'x'));
    set.commit();
  });
  ASSERT_TRUE(child.ok()) << child.failure;
  EXPECT_EQ(child.bytes,
            path("links.csv") + ": write failed: " + std::strerror(EFBIG) + " (no output file was changed)");
  EXPECT_EQ(read(path("result.json")), "old result");
  EXPECT_EQ(entries(dir_), std::set<std::string>{"result.json"});
}

// A rename that fails at commit (here: a directory appeared at the second target after its temporary
// was written) puts back every target already renamed in.
TEST_F(AtomicFile, FailedCommitRestoresEveryTarget) {
  put(path("result.json"), "old result");
  std::string m;
  {
    OutputSet set;
    set.add(path("result.json"), "new result");
    set.add(path("layers.csv"), "new layers");
    set.add(path("summary.txt"), "new summary");
    fs::create_directories(path("layers.csv/in-the-way"));
    m = io_error([&] { set.commit(); });
  }
  EXPECT_NE(m.find(path("layers.csv") + ": cannot rename the new file into place: "), std::string::npos) << m;
  EXPECT_NE(m.find("(no output file was changed)"), std::string::npos) << m;
  EXPECT_EQ(read(path("result.json")), "old result");
  EXPECT_EQ(entries(dir_), (std::set<std::string>{"result.json", "layers.csv"}));
  EXPECT_EQ(entries(path("layers.csv")), std::set<std::string>{"in-the-way"});
}

TEST_F(AtomicFile, CommitReplacesAndRemovesOnlyRegularStaleFiles) {
  put(path("result.json"), "old result");
  put(path("trace.json"), "old trace");
  fs::create_directories(path("links.csv"));
  put(path("notes.txt"), "mine");
  OutputSet set;
  set.add(path("result.json"), "new result");
  set.remove_on_commit(path("trace.json"));
  set.remove_on_commit(path("links.csv"));           // a directory: left alone
  set.remove_on_commit(path("summary.csv"));         // absent: nothing to do
  EXPECT_EQ(read(path("trace.json")), "old trace");  // nothing changes before commit
  set.commit();
  EXPECT_EQ(read(path("result.json")), "new result");
  EXPECT_EQ(entries(dir_), (std::set<std::string>{"result.json", "links.csv", "notes.txt"}));
}

TEST_F(AtomicFile, UncommittedSetLeavesNoTrace) {
  put(path("result.json"), "old");
  {
    OutputSet set;
    set.add(path("result.json"), "new");
    set.add(path("layers.csv"), "new");
  }
  EXPECT_EQ(read(path("result.json")), "old");
  EXPECT_EQ(entries(dir_), std::set<std::string>{"result.json"});
}

TEST_F(AtomicFile, SymbolicLinkKeptAndItsFileReplaced) {
  fs::create_directories(path("real"));
  put(path("real/a.json"), "old");
  fs::create_symlink(path("real/a.json"), path("link.json"));
  write_file(path("link.json"), "new", true, "-o");
  EXPECT_TRUE(fs::is_symlink(path("link.json")));
  EXPECT_EQ(read(path("real/a.json")), "new");
  EXPECT_EQ(entries(path("real")), std::set<std::string>{"a.json"});
}

// Writers that create their own file (traces, calibrations) write the temporary; their errors name the
// target, keep their type, and leave nothing behind.
TEST_F(AtomicFile, OwnWriterErrorsNameTheTargetAndKeepTheirType) {
  const std::string target = path("t.jsonl");
  OutputSet set;
  try {
    set.add_with(target, [](const std::string& temporary) {
      put(temporary, "half");
      throw moesim::ConfigError(temporary + ":3: /layer: expected a layer in [0, 2), found 5");
    });
    ADD_FAILURE() << "expected a ConfigError";
  } catch (const moesim::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), target + ":3: /layer: expected a layer in [0, 2), found 5");
  }
  EXPECT_TRUE(entries(dir_).empty());
  set.add_with(target, [](const std::string& temporary) {
    EXPECT_FALSE(fs::exists(temporary));
    put(temporary, "whole");
  });
  EXPECT_FALSE(fs::exists(target));
  set.commit();
  EXPECT_EQ(read(target), "whole");
  EXPECT_EQ(entries(dir_), std::set<std::string>{"t.jsonl"});
}

TEST_F(AtomicFile, OutputDirectoryCreatedOrItsObstacleNamed) {
  check_output_dir(path("a/b/c"), "--out");
  EXPECT_TRUE(fs::is_directory(path("a/b/c")));
  EXPECT_TRUE(entries(path("a/b/c")).empty());  // the probe is gone
  put(path("f"), "x");
  std::string m = io_error([&] { check_output_dir(path("f"), "--out"); });
  EXPECT_EQ(m, path("f") + ": --out: expected an output directory, found a file");
  m = io_error([&] { check_output_dir(path("f/sub/dir"), "--out"); });
  EXPECT_EQ(m, path("f/sub/dir") + ": --out: expected an output directory, found a file at " + path("f"));
}

// A run's directory: --force replaces the previous run's whole set (here a discrete-event run's
// trace.json and links.csv and the table's summary.txt, gone after a csv-only analytic run), never a
// file moesim does not write; without --force any earlier result refuses the run, changing nothing.
TEST_F(AtomicFile, ForceReplacesThePreviousRunsWholeSetOnly) {
  const std::string src = MOESIM_SOURCE_DIR;
  moesim::Scenario s = moesim::load_scenario(src + "/scenarios/examples/olmoe-1b-7b-16xA100.json",
                                             moesim::Catalog({src + "/scenarios/catalog"}));
  const moesim::models::Result r = moesim::models::evaluate_analytic(s);
  const std::string out = path("run");
  s.outputs.formats = {moesim::OutputFormat::kTable};
  moesim::reports::write_run_outputs(out, s, r, false, nullptr, {}, "--out");
  EXPECT_EQ(entries(out), (std::set<std::string>{"scenario.resolved.json", "result.json", "layers.csv",
                                                 "ops.csv", "expert_load.csv", "summary.txt"}));
  put(out + "/trace.json", "earlier des run");
  put(out + "/links.csv", "earlier des run");
  put(out + "/notes.txt", "mine");
  s.outputs.formats = {moesim::OutputFormat::kCsv};
  const std::string m =
      io_error([&] { moesim::reports::write_run_outputs(out, s, r, false, nullptr, {}, "--out"); });
  EXPECT_NE(m.find("refusing to overwrite an existing result"), std::string::npos) << m;
  EXPECT_FALSE(fs::exists(out + "/summary.csv"));
  EXPECT_EQ(read(out + "/trace.json"), "earlier des run");
  moesim::reports::write_run_outputs(out, s, r, true, nullptr, {}, "--out");
  EXPECT_EQ(entries(out), (std::set<std::string>{"scenario.resolved.json", "result.json", "layers.csv",
                                                 "ops.csv", "expert_load.csv", "summary.csv", "notes.txt"}));
  EXPECT_EQ(read(out + "/notes.txt"), "mine");
  // A directory where a file of the set goes is refused before anything is written, even with force.
  fs::remove(out + "/layers.csv");
  fs::create_directories(out + "/layers.csv");
  const std::string d =
      io_error([&] { moesim::reports::write_run_outputs(out, s, r, true, nullptr, {}, "--out"); });
  EXPECT_EQ(d, out +
                   "/layers.csv: --out: expected a result file to replace, found a directory (a directory is "
                   "never replaced, even with --force)");
}

}  // namespace
