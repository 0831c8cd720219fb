// Golden tests: every scenario in scenarios/examples runs, its headline numbers match the recorded
// golden values (tests/golden/NAME.json) within tolerances, and scenarios that carry published
// figures land within their stated tolerance of them.
//
// After an intended model change, regenerate with:
//   MOESIM_UPDATE_GOLDEN=1 build/dev/tests/golden_test
// and review the diff of tests/golden/ like any other change.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "models/analytic.hpp"
#include "reports/writers.hpp"
#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"

namespace fs = std::filesystem;
using moesim::Json;

namespace {

const std::string kSrc = MOESIM_SOURCE_DIR;

std::vector<std::string> examples() {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(kSrc + "/scenarios/examples"))
    if (e.path().extension() == ".json") v.push_back(e.path().string());
  std::sort(v.begin(), v.end());
  return v;
}

moesim::Catalog catalog() { return moesim::Catalog({kSrc + "/scenarios/catalog"}); }

// The numbers a golden file pins, with their relative tolerance: the model is deterministic, so the
// tolerance only absorbs floating-point differences between compilers and libm versions.
Json headline(const moesim::models::Result& r) {
  return Json{{"step_time_s", r.step_time},
              {"tokens_per_s_per_gpu", r.tokens_per_second_per_gpu},
              {"mfu", r.mfu},
              {"compute_s", r.breakdown.compute},
              {"exposed_ep_s", r.breakdown.exposed_ep},
              {"exposed_tp_s", r.breakdown.exposed_tp},
              {"bubble_s", r.breakdown.bubble},
              {"exposed_dp_s", r.breakdown.exposed_dp},
              {"memory_total_bytes", r.memory.total},
              {"activations_bytes", r.memory.activations},
              {"moe_max_over_mean_gpu", r.moe_max_over_mean_gpu},
              {"feasible", r.feasible}};
}

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, MatchesRecordedNumbers) {
  const std::string path = GetParam();
  auto cat = catalog();
  moesim::Scenario s = moesim::load_scenario(path, cat);
  moesim::models::Result r = moesim::models::evaluate_analytic(s);
  ASSERT_GT(r.step_time, 0);
  ASSERT_TRUE(std::isfinite(r.step_time));
  const Json now = headline(r);
  const std::string golden = kSrc + "/tests/golden/" + s.name + ".json";
  if (std::getenv("MOESIM_UPDATE_GOLDEN")) {
    std::ofstream(golden) << now.dump(2) << "\n";
    GTEST_SKIP() << "rewrote " << golden;
  }
  std::ifstream in(golden);
  ASSERT_TRUE(in) << "no golden file " << golden << " (run with MOESIM_UPDATE_GOLDEN=1 to create it)";
  Json want = Json::parse(in);
  for (auto it = want.begin(); it != want.end(); ++it) {
    ASSERT_TRUE(now.contains(it.key())) << it.key();
    if (it.value().is_boolean()) {
      EXPECT_EQ(now[it.key()].get<bool>(), it.value().get<bool>()) << it.key();
      continue;
    }
    const double w = it.value().get<double>(), g = now[it.key()].get<double>();
    EXPECT_NEAR(g, w, 1e-6 * std::max(1.0, std::fabs(w))) << s.name << ": " << it.key();
  }
}

TEST_P(Golden, PublishedFiguresWithinTolerance) {
  auto cat = catalog();
  moesim::Scenario s = moesim::load_scenario(GetParam(), cat);
  if (s.reference.empty() || !std::isfinite(s.reference.step_time)) GTEST_SKIP() << "no published step time";
  moesim::models::Result r = moesim::models::evaluate_analytic(s);
  const double err = (r.step_time - s.reference.step_time) / s.reference.step_time;
  EXPECT_LE(std::fabs(err), s.reference.tolerance)
      << s.name << ": step " << r.step_time << " s vs published " << s.reference.step_time << " s";
  EXPECT_TRUE(r.feasible) << r.infeasible_reason;
}

TEST_P(Golden, VariantsEvaluateOrFailCleanly) {
  auto cat = catalog();
  const std::string path = GetParam();
  Json base = moesim::read_json_file(path);
  for (const auto& v : moesim::variants_from_json(base, path)) {
    Json patched = moesim::apply_variant(base, v, path);
    try {
      moesim::Scenario s = moesim::scenario_from_json(patched, path, cat);
      auto r = moesim::models::evaluate_analytic(s);
      EXPECT_GT(r.step_time, 0) << v.name;
    } catch (const moesim::ConfigError& e) {
      // An invalid variant must say where: the pointer it broke.
      EXPECT_NE(std::string(e.what()).find("expected"), std::string::npos) << e.what();
    }
  }
}

TEST_P(Golden, SameScenarioSameBytes) {
  auto cat = catalog();
  moesim::Scenario s = moesim::load_scenario(GetParam(), cat);
  const std::string a = moesim::reports::result_json(s, moesim::models::evaluate_analytic(s)).dump();
  const std::string b = moesim::reports::result_json(s, moesim::models::evaluate_analytic(s)).dump();
  EXPECT_EQ(a, b);
}

INSTANTIATE_TEST_SUITE_P(Examples, Golden, ::testing::ValuesIn(examples()),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string n = fs::path(i.param).stem().string();
                           for (auto& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

}  // namespace
