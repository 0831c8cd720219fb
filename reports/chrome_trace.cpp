#include "reports/chrome_trace.hpp"

#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace moesim::reports {

void write_chrome_trace(const sim::StepSimResult& r, std::ostream& out) {
  using nlohmann::json;
  static const char* kStreams[] = {"compute", "expert all-to-all", "pipeline receive"};
  json events = json::array();
  std::map<int, int> seen;  // gpu → stage of its first event
  for (const sim::TimelineEvent& e : r.timeline) {
    seen.try_emplace(e.gpu, e.stage);
    json args = {{"microbatch", e.microbatch}, {"stage", e.stage}};
    events.push_back({{"name", e.name},
                      {"ph", "X"},
                      {"pid", e.gpu},
                      {"tid", e.stream},
                      {"ts", e.start * 1e6},
                      {"dur", (e.end - e.start) * 1e6},
                      {"args", args}});
  }
  for (const auto& [gpu, stage] : seen) {
    events.push_back({{"name", "process_name"},
                      {"ph", "M"},
                      {"pid", gpu},
                      {"args", {{"name", "GPU " + std::to_string(gpu)}}}});
    events.push_back(
        {{"name", "process_sort_index"}, {"ph", "M"}, {"pid", gpu}, {"args", {{"sort_index", gpu}}}});
    for (int t = 0; t < 3; ++t)
      events.push_back({{"name", "thread_name"},
                        {"ph", "M"},
                        {"pid", gpu},
                        {"tid", t},
                        {"args", {{"name", kStreams[t]}}}});
  }
  json doc = {{"traceEvents", events},
              {"displayTimeUnit", "ms"},
              {"otherData",
               {{"scenario", r.result.scenario},
                {"engine", r.result.engine},
                {"fidelity", r.result.fidelity},
                {"note", "times of the last simulated run, from its start"}}}};
  out << doc.dump() << "\n";
}

}  // namespace moesim::reports
