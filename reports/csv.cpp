#include "reports/csv.hpp"

#include <iomanip>

#include "reports/internal/format.hpp"

namespace moesim::reports {

using internal::kGiB;

void write_summary_csv(std::ostream& out, const models::Result& r) {
  out << "schema_version,scenario,engine,feasible,gpus,step_time_s,tokens_per_s,tokens_per_s_per_gpu,mfu,mfu_"
         "causal,"
         "compute_s,exposed_ep_s,exposed_tp_s,exposed_cp_s,bubble_s,exposed_dp_s,optimizer_s,memory_gib,"
         "moe_max_over_mean_gpu\n";
  out << std::setprecision(10) << r.schema_version << "," << r.scenario << "," << r.engine << ","
      << (r.feasible ? 1 : 0) << "," << r.gpus << "," << r.step_time << "," << r.tokens_per_second << ","
      << r.tokens_per_second_per_gpu << "," << r.mfu << "," << r.mfu_causal << "," << r.breakdown.compute
      << "," << r.breakdown.exposed_ep << "," << r.breakdown.exposed_tp << "," << r.breakdown.exposed_cp
      << "," << r.breakdown.bubble << "," << r.breakdown.exposed_dp << "," << r.breakdown.optimizer << ","
      << r.memory.total / kGiB << "," << r.moe_max_over_mean_gpu << "\n";
}

void write_layers_csv(std::ostream& out, const models::Result& r) {
  out << "layer,kind,pp_rank,forward_s,backward_input_s,backward_weight_s,max_over_mean_gpu\n"
      << std::setprecision(10);
  for (const auto& l : r.layers)
    out << l.layer << "," << l.kind << "," << l.pp_rank << "," << l.forward << "," << l.backward_input << ","
        << l.backward_weight << "," << l.max_over_mean_gpu << "\n";
}

}  // namespace moesim::reports
