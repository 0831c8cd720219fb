// Golden tests: every scenario in scenarios/examples runs, its headline numbers match the recorded
// golden values (tests/golden/NAME.json) within tolerances, and scenarios that carry published
// figures land within their stated tolerance of them. Two suites, by what a golden file is checked
// against:
//   - GoldenPublished: scenarios with a "reference" block (a published measurement, e.g. DeepSeek-V3's
//     step time in ISCA'25 Table 4). Their golden numbers are also held to the published figure.
//   - RegressionOnly: scenarios without one. Their golden files pin our own numbers, not a published
//     figure: a change there says the model changed, not that it got better or worse.
// Every example and every golden file belongs to exactly one suite (GoldenSet checks it).
//
// After an intended model change, regenerate with:
//   MOESIM_UPDATE_GOLDEN=1 build/dev/tests/golden_test
// and review the diff of tests/golden/ like any other change.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

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

// Whether an example scenario carries published figures (a top-level "reference" block).
bool has_reference(const std::string& path) {
  return moesim::read_json_file(path).contains("reference");
}

// The examples with (published = true) or without a "reference" block.
std::vector<std::string> examples_with_reference(bool published) {
  std::vector<std::string> v;
  for (const auto& p : examples())
    if (has_reference(p) == published) v.push_back(p);
  return v;
}

moesim::Catalog catalog() {
  return moesim::Catalog({kSrc + "/scenarios/catalog"});
}

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

// Variants that must be refused, with the JSON pointer and the reason their error must name (the
// message is "FILE: POINTER: expected X, found Y", scenarios/error.hpp). A variant is expected to be
// refused exactly when its name ends in "-invalid"; each such variant has an entry here.
struct Refusal {
  std::string scenario;  // stem of scenarios/examples/NAME.json
  std::string variant;
  std::string pointer;
  std::string reason;
};
const std::vector<Refusal> kRefusals = {
    // Mixtral-8x7B has 8 experts; EP 3 does not divide them (scenarios/validate.cpp).
    {"mixtral-8x7b-64xH100", "ep3-invalid", "/parallelism/experts/ep",
     "expected a divisor of the expert count 8, found 3"},
};

bool named_invalid(const std::string& variant) {
  const std::string suffix = "-invalid";
  return variant.size() >= suffix.size() &&
         variant.compare(variant.size() - suffix.size(), suffix.size(), suffix) == 0;
}

const Refusal* refusal_for(const std::string& scenario, const std::string& variant) {
  for (const auto& r : kRefusals)
    if (r.scenario == scenario && r.variant == variant) return &r;
  return nullptr;
}

// The ConfigError message of a variant that must be refused, or a description of what happened instead.
std::string refusal_message(const Json& base, const moesim::Variant& v, const std::string& path) {
  auto cat = catalog();
  try {
    moesim::Scenario s = moesim::scenario_from_json(moesim::apply_variant(base, v, path), path, cat);
    moesim::models::evaluate_analytic(s);
  } catch (const moesim::ConfigError& e) {
    return e.what();
  }
  return "(no error: the variant was accepted)";
}

// Asserts that the message locates the refusal: the scenario file, then the pointer, then the reason.
void expect_refusal(const std::string& msg, const std::string& path, const Refusal& r) {
  EXPECT_NE(msg.find(path + ": " + r.pointer + ": "), std::string::npos)
      << "the error must name " << path << " and the pointer " << r.pointer << ": " << msg;
  EXPECT_NE(msg.find(r.pointer + ": " + r.reason), std::string::npos)
      << "the error must give the reason \"" << r.reason << "\" after the pointer: " << msg;
}

// Shared by both suites ------------------------------------------------------------------------------

void check_recorded_numbers(const std::string& path) {
  auto cat = catalog();
  moesim::Scenario s = moesim::load_scenario(path, cat);
  moesim::models::Result r = moesim::models::evaluate_analytic(s);
  ASSERT_GT(r.step_time, 0);
  ASSERT_TRUE(std::isfinite(r.step_time));
  const Json now = headline(r);
  const std::string golden = kSrc + "/tests/golden/" + s.name + ".json";
  if (std::getenv("MOESIM_UPDATE_GOLDEN")) {
    // Regeneration mode, never set in a normal run (see the top of this file).
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

// Every variant either evaluates, or (named "*-invalid") is refused with its pointer and reason.
void check_variants(const std::string& path) {
  auto cat = catalog();
  const std::string stem = fs::path(path).stem().string();
  Json base = moesim::read_json_file(path);
  for (const auto& v : moesim::variants_from_json(base, path)) {
    SCOPED_TRACE("variant " + v.name);
    if (named_invalid(v.name)) {
      const Refusal* r = refusal_for(stem, v.name);
      ASSERT_NE(r, nullptr) << "variant " << v.name << " of " << stem
                            << " is named invalid but kRefusals gives no pointer and reason for it";
      expect_refusal(refusal_message(base, v, path), path, *r);
      continue;
    }
    moesim::Scenario s = moesim::scenario_from_json(moesim::apply_variant(base, v, path), path, cat);
    auto r = moesim::models::evaluate_analytic(s);
    EXPECT_GT(r.step_time, 0);
    EXPECT_TRUE(std::isfinite(r.step_time));
  }
}

void check_same_bytes(const std::string& path) {
  auto cat = catalog();
  moesim::Scenario s = moesim::load_scenario(path, cat);
  const std::string a = moesim::reports::result_json(s, moesim::models::evaluate_analytic(s)).dump();
  const std::string b = moesim::reports::result_json(s, moesim::models::evaluate_analytic(s)).dump();
  EXPECT_EQ(a, b);
}

std::string test_name(const ::testing::TestParamInfo<std::string>& i) {
  std::string n = fs::path(i.param).stem().string();
  for (auto& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

// GoldenPublished: examples with a published reference -----------------------------------------------

class GoldenPublished : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenPublished, MatchesRecordedNumbers) {
  check_recorded_numbers(GetParam());
}

TEST_P(GoldenPublished, PublishedFiguresWithinTolerance) {
  auto cat = catalog();
  moesim::Scenario s = moesim::load_scenario(GetParam(), cat);
  ASSERT_FALSE(s.reference.empty()) << GetParam() << ": the \"reference\" block was not read";
  ASSERT_TRUE(std::isfinite(s.reference.step_time)) << GetParam() << ": the reference gives no step time";
  moesim::models::Result r = moesim::models::evaluate_analytic(s);
  const double err = (r.step_time - s.reference.step_time) / s.reference.step_time;
  EXPECT_LE(std::fabs(err), s.reference.tolerance)
      << s.name << ": step " << r.step_time << " s vs published " << s.reference.step_time << " s";
  EXPECT_TRUE(r.feasible) << r.infeasible_reason;
}

TEST_P(GoldenPublished, VariantsEvaluateOrFailCleanly) {
  check_variants(GetParam());
}

TEST_P(GoldenPublished, SameScenarioSameBytes) {
  check_same_bytes(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Examples, GoldenPublished, ::testing::ValuesIn(examples_with_reference(true)),
                         test_name);

// RegressionOnly: examples without a published reference. These pin our own numbers, not a published
// figure: they catch unintended changes of the model, and say nothing about its accuracy. ---------------

class RegressionOnly : public ::testing::TestWithParam<std::string> {};

TEST_P(RegressionOnly, MatchesRecordedNumbers) {
  check_recorded_numbers(GetParam());
}

TEST_P(RegressionOnly, VariantsEvaluateOrFailCleanly) {
  check_variants(GetParam());
}

TEST_P(RegressionOnly, SameScenarioSameBytes) {
  check_same_bytes(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Examples, RegressionOnly, ::testing::ValuesIn(examples_with_reference(false)),
                         test_name);

// The partition itself ---------------------------------------------------------------------------------

TEST(GoldenSet, EveryGoldenFileBelongsToAnExample) {
  // A golden file without an example would never be checked; an example without one fails above.
  std::set<std::string> names;
  auto cat = catalog();
  for (const auto& p : examples()) names.insert(moesim::load_scenario(p, cat).name);
  int goldens = 0;
  for (const auto& e : fs::directory_iterator(kSrc + "/tests/golden")) {
    if (e.path().extension() != ".json") continue;
    ++goldens;
    EXPECT_TRUE(names.count(e.path().stem().string()))
        << e.path() << " has no scenario in scenarios/examples";
  }
  EXPECT_EQ(goldens, static_cast<int>(names.size()));
}

TEST(GoldenSet, BothSuitesHaveExamples) {
  // At least the DeepSeek-V3 example carries a published step time (ISCA'25 Table 4), so the published
  // suite cannot silently become empty; the regression suite holds the rest.
  const auto published = examples_with_reference(true);
  const std::string deepseek = kSrc + "/scenarios/examples/deepseek-v3-2048xH800.json";
  EXPECT_NE(std::find(published.begin(), published.end(), deepseek), published.end());
  EXPECT_FALSE(examples_with_reference(false).empty());
  EXPECT_EQ(published.size() + examples_with_reference(false).size(), examples().size());
}

TEST(GoldenSet, EveryRefusalNamesAnExistingInvalidVariant) {
  // kRefusals entries whose variant was renamed or removed would check nothing.
  for (const auto& r : kRefusals) {
    const std::string path = kSrc + "/scenarios/examples/" + r.scenario + ".json";
    Json base = moesim::read_json_file(path);
    bool found = false;
    for (const auto& v : moesim::variants_from_json(base, path))
      if (v.name == r.variant) {
        found = true;
        EXPECT_TRUE(named_invalid(v.name)) << v.name;
        expect_refusal(refusal_message(base, v, path), path, r);
      }
    EXPECT_TRUE(found) << r.scenario << " has no variant " << r.variant;
  }
}

}  // namespace
