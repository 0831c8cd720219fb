#pragma once
/// \file The planner's answer as a terminal table, JSON or CSV (docs/plan.md).

#include <ostream>
#include <string>

#include "plan/plan_file.hpp"
#include "plan/search.hpp"

namespace moesim::plan {

/// "tp2 cp1 pp8 ep64 etp1 dp32 zero1 mbs1 recompute=none 1f1b": a candidate's layout in one word list.
std::string layout_text(const Candidate& c);

/// The search counts, the ranked plans, why the runner-up lost, and the Pareto front of days and dollars.
void write_plan_table(std::ostream& out, const PlanSpec& p, const PlanResult& r);
/// The same as one JSON document.
Json plan_json(const PlanSpec& p, const PlanResult& r);
/// The ranked plans, one CSV row each (header first).
void write_plan_csv(std::ostream& out, const PlanSpec& p, const PlanResult& r);

}  // namespace moesim::plan
