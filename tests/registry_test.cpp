// The registry every selectable name goes through (scenarios/registry.hpp) and the settings tables
// built on it (scenarios/kinds.hpp).
#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "models/placement.hpp"
#include "scenarios/error.hpp"
#include "scenarios/kinds.hpp"
#include "traces/generators.hpp"
#include "traces/load.hpp"
#include "traces/policies.hpp"

namespace moesim {
namespace {

enum class Colour { kRed, kGreen };

const Registry<Colour>& colours() {
  static const Registry<Colour> r{
      "colour", "colours", {{"red", "long wavelength", Colour::kRed}, {"green", "middle", Colour::kGreen}}};
  return r;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no ConfigError";
}

TEST(Registry, LooksUpNamesAndGivesThemBack) {
  EXPECT_EQ(colours().get("green"), Colour::kGreen);
  EXPECT_EQ(colours().name_of(Colour::kRed), "red");
  EXPECT_EQ(colours().index_of("green"), 1);
  EXPECT_EQ(colours().find("blue"), nullptr);
  ASSERT_EQ(colours().size(), 2u);
  std::vector<std::string> listed;
  for (const auto& e : colours()) listed.push_back(e.name + ": " + e.description);
  EXPECT_EQ(listed, (std::vector<std::string>{"red: long wavelength", "green: middle"}));
}

TEST(Registry, ABadNameListsTheValidOnes) {
  EXPECT_EQ(message_of([] { colours().get("blue"); }), "colour: expected one of red, green, found \"blue\"");
  EXPECT_EQ(message_of([] { colours().get("blue", "s.json", "/paint/colour"); }),
            "s.json: /paint/colour: expected one of red, green, found \"blue\"");
}

// Every enum-like setting parses each of its names to a value whose name is that name again, and no
// two registries of the settings share a kind.
TEST(SettingRegistries, NamesRoundTrip) {
  std::set<std::string> kinds;
  for (const RegistryBase* r : setting_registries()) {
    EXPECT_TRUE(kinds.insert(r->kind()).second) << r->kind();
    EXPECT_GE(r->size(), 1u) << r->kind();
    for (const auto& e : *r) {
      EXPECT_FALSE(e.description.empty()) << r->kind() << " " << e.name;
      EXPECT_EQ(r->index_of(e.name) >= 0, true);
    }
  }
  for (const auto& e : schedules()) EXPECT_EQ(to_string(schedules().get(e.name)), e.name);
  for (const auto& e : aggregations()) EXPECT_EQ(to_string(aggregations().get(e.name)), e.name);
  for (const auto& e : topology_kinds()) EXPECT_EQ(to_string(topology_kinds().get(e.name)), e.name);
  EXPECT_EQ(std::string(to_string(Schedule::kDualPipe)), "dualpipe");
  EXPECT_EQ(std::string(to_string(Dtype::kBf16)), "bf16");
  EXPECT_EQ(bytes_of(Dtype::kFp32), 4.0);
  EXPECT_EQ(bytes_of(Dtype::kBf16), 2.0);
}

// The pluggable kinds are registries too: a bad name names the kind and lists what is registered.
TEST(PolicyRegistries, BadNamesListTheRegisteredOnes) {
  traces::PolicySpec p;
  p.name = "top_3";
  EXPECT_EQ(message_of([&] {
              traces::make_routing_policy(p);
            }).rfind("routing policy: expected one of softmax_topk, ", 0),
            0u);
  traces::GeneratorSpec g;
  g.name = "gauss";
  EXPECT_EQ(message_of([&] {
              traces::GateScoreGenerator(g, 8);
            }).rfind("gate generator: expected one of uniform, ", 0),
            0u);
  EXPECT_EQ(message_of([] { models::place_experts("eplb_magic", 8, 4); }),
            "placement policy: expected one of contiguous, round_robin, eplb, greedy, coactivation, found "
            "\"eplb_magic\"");
  EXPECT_TRUE(traces::uses_node_limit("node_limited"));
  EXPECT_FALSE(traces::uses_node_limit("softmax_topk"));
}

// A load profile that has no closed-form shares (a gate-score generator of sampled routing) is refused
// by name; it used to be read as zipf with no zipf weights (an out-of-bounds read).
TEST(LoadProfiles, AGateGeneratorHasNoExpectedShares) {
  LoadSpec load;
  load.generator = "dirichlet";
  const traces::ShareGenerator gen(load, 8, 2);  // constructing is fine: sampled routing never asks
  EXPECT_EQ(message_of([&] { gen.shares(0); }),
            "load profile: expected one of uniform, zipf, hot_expert, found \"dirichlet\"");
  load.generator = "uniform";
  EXPECT_TRUE(traces::is_uniform(load));
  const auto s = traces::ShareGenerator(load, 8, 2).shares(3);
  for (double x : s) EXPECT_DOUBLE_EQ(x, 1.0 / 8);
}

}  // namespace
}  // namespace moesim
