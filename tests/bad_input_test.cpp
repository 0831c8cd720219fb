// Bad inputs, end to end: every case under tests/data/bad_inputs/*.json runs the built `moesim` binary
// on files written into an empty folder and checks the exit code (docs/exit-codes.md), that the message
// names what the case lists (the file, the place in it, what was expected and what was found), that
// nothing crashed or hung, and that no output the case lists as absent was left behind.
//
// A case: {"name", "files": {RELATIVE_PATH: TEXT or JSON}, "args": [...], "exit": N,
//          "stderr": [SUBSTRING...], "absent": [RELATIVE_PATH...]}; "{dir}" in args and in text files
// is the case's folder, "{repo}" the source tree.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr int kTimeoutSeconds = 60;  // a hang is a failure, not a stuck suite

struct Case {
  std::string id;  // FILE_STEM/NAME
  Json spec;
};

std::string substitute(std::string s, const std::string& dir) {
  const std::pair<std::string, std::string> subs[] = {{"{dir}", dir}, {"{repo}", MOESIM_SOURCE_DIR}};
  for (const auto& [from, to] : subs)
    for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
      s.replace(pos, from.size(), to);
  return s;
}

std::vector<Case> load_cases() {
  std::vector<Case> out;
  const fs::path dir = fs::path(MOESIM_TEST_DATA) / "bad_inputs";
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f);
    const Json doc = Json::parse(in);
    for (const auto& c : doc.at("cases"))
      out.push_back({f.stem().string() + "/" + c.at("name").get<std::string>(), c});
  }
  return out;
}

const std::vector<Case>& cases() {
  static const std::vector<Case> all = load_cases();
  return all;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `args` with stdout and stderr to files; returns the wait status.
int run(const std::vector<std::string>& args, const fs::path& out, const fs::path& err, const fs::path& cwd) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (!freopen(out.c_str(), "w", stdout) || !freopen(err.c_str(), "w", stderr)) _exit(126);
    if (chdir(cwd.c_str()) != 0) _exit(126);
    alarm(kTimeoutSeconds);  // survives exec: SIGALRM ends a hang
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

class BadInput : public ::testing::TestWithParam<Case> {};

TEST_P(BadInput, FailsClearly) {
  const Case& c = GetParam();
  const fs::path root = fs::temp_directory_path() / ("moesim_bad_" + std::to_string(getpid()));
  const fs::path dir = root / "case";
  fs::remove_all(root);
  fs::create_directories(dir);
  if (c.spec.contains("files"))
    for (auto it = c.spec["files"].begin(); it != c.spec["files"].end(); ++it) {
      const fs::path p = dir / it.key();
      fs::create_directories(p.parent_path());
      std::ofstream o(p, std::ios::binary);
      o << (it.value().is_string() ? substitute(it.value().get<std::string>(), dir.string())
                                   : it.value().dump(2));
    }
  std::vector<std::string> args{MOESIM_BINARY};
  for (const auto& a : c.spec.at("args")) args.push_back(substitute(a.get<std::string>(), dir.string()));
  const int status = run(args, root / "stdout", root / "stderr", dir);
  const std::string err = slurp(root / "stderr");
  const std::string command = [&] {
    std::string s;
    for (const auto& a : args) s += " " + a;
    return s;
  }();
  ASSERT_TRUE(WIFEXITED(status)) << c.id << ": killed by signal " << WTERMSIG(status)
                                 << (WTERMSIG(status) == SIGALRM ? " (a hang)" : "") << "\n"
                                 << command << "\n"
                                 << err;
  const int want = c.spec.at("exit").get<int>();
  EXPECT_EQ(WEXITSTATUS(status), want) << c.id << "\n" << command << "\nstderr: " << err;
  if (want != 1) {
    EXPECT_EQ(err.find("internal error"), std::string::npos) << c.id << ": " << err;
  }
  for (const auto& s : c.spec.at("stderr")) {
    const std::string needle = substitute(s.get<std::string>(), dir.string());
    EXPECT_NE(err.find(needle), std::string::npos) << c.id << ": stderr lacks \"" << needle << "\"\n" << err;
  }
  if (c.spec.contains("absent")) {
    for (const auto& a : c.spec["absent"])
      EXPECT_FALSE(fs::exists(dir / a.get<std::string>())) << c.id << ": " << a;
  }
  // No temporary left beside the outputs, whatever failed.
  for (const auto& e : fs::recursive_directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find("moesim-tmp"), std::string::npos)
        << c.id << ": left " << e.path();
  fs::remove_all(root);
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string n;
  for (char ch : info.param.id) n += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Cases, BadInput, ::testing::ValuesIn(cases()), case_name);

// The catalogue is large enough to mean something, and every case names what it must.
TEST(BadInputCatalogue, HasEnoughCasesEachNamingItsPlace) {
  EXPECT_GE(cases().size(), 150u);
  for (const auto& c : cases())
    EXPECT_GE(c.spec.at("stderr").size(), 2u) << c.id << ": name the file and the place";
}

}  // namespace
