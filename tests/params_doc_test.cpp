// Scenario parameters are declared once (scenarios/params.hpp): the documentation's table is that
// declaration, the loader reads through it, and scenario.resolved.json written from it loads back to
// the same scenario.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "models/analytic.hpp"
#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"
#include "scenarios/params.hpp"

namespace moesim {
namespace {

const std::string kSrc = MOESIM_SOURCE_DIR;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Parameters, DocumentationTableIsTheDeclaration) {
  const std::string doc = slurp(kSrc + "/docs/scenario-format.md");
  const std::string begin = "<!-- parameters:begin -->\n", end = "<!-- parameters:end -->";
  const auto b = doc.find(begin), e = doc.find(end);
  ASSERT_NE(b, std::string::npos) << "docs/scenario-format.md has no parameters table";
  ASSERT_NE(e, std::string::npos);
  EXPECT_EQ(doc.substr(b + begin.size(), e - b - begin.size()), parameters_markdown())
      << "regenerate the table between the markers from scenarios/params.cpp";
}

TEST(Parameters, PointersAreUnique) {
  std::set<std::string> seen;
  for (const auto& p : scenario_parameters()) EXPECT_TRUE(seen.insert(p.pointer).second) << p.pointer;
  EXPECT_GT(seen.size(), 60u);
}

// exact_quantity writes a quantity that parses back to the same double.
TEST(Parameters, ExactQuantitiesRoundTrip) {
  for (double v : {3.33e-6, 1.6e11, 50e9, 0.1 + 0.2, 989.4e12, 80.0 * 1073741824.0})
    for (Dimension d : {Dimension::kBandwidth, Dimension::kTime, Dimension::kFlopRate, Dimension::kBytes})
      EXPECT_EQ(parse_quantity(exact_quantity(v, d), d), v) << exact_quantity(v, d);
}

// Every integer parameter's declared range is the range the loader enforces: one above the top is
// refused with that parameter's pointer.
TEST(Parameters, DeclaredIntegerRangesAreEnforced) {
  const Catalog cat({kSrc + "/scenarios/catalog"});
  // The resolved scenario inlines the model entry, so that its parameters are checked too.
  const Json base = load_scenario(kSrc + "/scenarios/examples/mixtral-8x7b-64xH100.json", cat).resolved;
  int checked = 0;
  for (const auto& p : scenario_parameters()) {
    if (p.type.rfind("integer in [", 0) != 0 || p.pointer.rfind("/cluster", 0) == 0) continue;
    if (!base.contains(Json::json_pointer(p.pointer).parent_pointer())) continue;
    const auto comma = p.type.find(", ");
    const long long hi = std::stoll(p.type.substr(comma + 2, p.type.size() - comma - 3));
    if (hi >= (1LL << 40)) continue;
    Json j = base;
    j[Json::json_pointer(p.pointer)] = hi + 1;
    try {
      (void)scenario_from_json(j, "range.json", cat);
      ADD_FAILURE() << p.pointer << " = " << hi + 1 << " accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("range.json: " + p.pointer + ": "), std::string::npos) << e.what();
    }
    ++checked;
  }
  EXPECT_GT(checked, 40);
}

// scenario.resolved.json (every default filled in) is a scenario that evaluates to the same result.
TEST(Parameters, ResolvedScenarioLoadsBackToTheSameResult) {
  const Catalog cat({kSrc + "/scenarios/catalog"});
  for (const char* name : {"deepseek-v3-2048xH800", "mixtral-8x7b-64xH100", "olmoe-arxiv-replay-16xH100"}) {
    const Scenario s = load_scenario(kSrc + "/scenarios/examples/" + name + ".json", cat);
    const Scenario again = scenario_from_json(s.resolved, "resolved.json", cat);
    EXPECT_EQ(again.resolved, s.resolved) << name;
    EXPECT_EQ(models::evaluate_analytic(again).step_time, models::evaluate_analytic(s).step_time) << name;
  }
}

}  // namespace
}  // namespace moesim
