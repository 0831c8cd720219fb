#include "models/pipeline_partition.hpp"

#include <algorithm>
#include <cstdint>

namespace moesim::models {

std::vector<int> split_blocks(int blocks, int chunks) {
  std::vector<int> n(static_cast<std::size_t>(chunks), blocks / chunks);
  int rem = blocks % chunks;
  // Middle chunks first, then the last, then the first.
  for (int c = 1; c < chunks - 1 && rem > 0; ++c, --rem) ++n[c];
  if (rem > 0 && chunks > 1) ++n[chunks - 1], --rem;
  if (rem > 0) ++n[0], --rem;
  return n;
}

std::vector<int> chunk_blocks(const Scenario& s, int blocks) {
  if (!s.layout.stage_blocks.empty()) return s.layout.stage_blocks;
  return split_blocks(blocks, s.parallelism.pp * s.parallelism.vpp);
}

void partition_pipeline(const PricingContext& c, const std::vector<double>& saved, double saved_transient,
                        Workload& w) {
  const Scenario& s = c.s;
  const auto& m = s.model;
  const auto& par = s.parallelism;
  const int gpn = s.layout.domain_gpus;
  const int chunks = par.pp * par.vpp;
  const std::vector<int> per_chunk = chunk_blocks(s, static_cast<int>(w.blocks.size()));
  w.ranks.resize(static_cast<std::size_t>(par.pp));
  int next = 0;
  for (int ch = 0; ch < chunks; ++ch) {
    RankWork& rw = w.ranks[ch % par.pp];
    for (int i = 0; i < per_chunk[ch]; ++i) rw.blocks.push_back(next++);
    if (ch == 0) rw.embedding = true;
    if (ch == chunks - 1) rw.head = true;
  }
  const double h = m.hidden;
  const int experts_per_rank = m.moe.experts > 0 ? m.moe.experts / par.ep : 0;
  const bool muon = s.workload.optimizer == Optimizer::kMuon;  // Newton-Schulz FLOPs only where priced
  for (int r = 0; r < par.pp; ++r) {
    RankWork& rw = w.ranks[r];
    for (int bi : rw.blocks) {
      const BlockCost& b = w.blocks[bi];
      for (int p = 0; p < 3; ++p) {
        PassCost& t = rw.pass[p];
        const PassCost& x = b.pass[p];
        t.compute += x.compute;
        t.tp_comm += x.tp_comm;
        t.ep_comm += x.ep_comm;
        t.etp_comm += x.etp_comm;
        t.ep_exposed += x.ep_exposed;
        t.cp_comm += x.cp_comm;
        t.cp_exposed += x.cp_exposed;
        t.flops += x.flops;
      }
      rw.activation_bytes += saved[bi];
      const bool moe = b.kind == BlockKind::kMoe || (b.kind == BlockKind::kMtp && m.moe.experts > 0);
      const ParamCounts& pc = w.params;
      // An MTP module is a transformer block whatever the main model's layers are.
      double p_block = b.kind == BlockKind::kMtp ? transformer_block_params_per_gpu(pc, moe, par.tp)
                                                 : layer_params_per_gpu(pc, m, b.layer, par.tp);
      if (moe) {
        rw.expert_params += experts_per_rank * pc.expert / par.etp;
        p_block += experts_per_rank * pc.expert / par.etp;
        if (muon) rw.muon_ns_expert += experts_per_rank * expert_newton_schulz_flops(m, par.etp);
      }
      if (muon)
        rw.muon_ns_dense += layer_newton_schulz_flops(m, b.layer, moe, b.kind == BlockKind::kMtp, par.tp);
      if (b.kind == BlockKind::kMtp) p_block += 2 * h * h;
      rw.params += p_block;
    }
    if (rw.embedding) {
      price_embedding(c, rw.embedding_seconds);
      for (int p = 0; p < 3; ++p) rw.pass[p].compute += rw.embedding_seconds[p];
      rw.params += w.params.embedding / par.tp;
      rw.adam_params += w.params.embedding / par.tp;
    }
    if (rw.head) {
      const HeadCost head = price_head(c);
      for (int p = 0; p < 3; ++p) {
        rw.head_seconds[p] = head.seconds[p];
        rw.pass[p].compute += rw.head_seconds[p];
      }
      rw.transient_bytes = std::max(saved_transient, head.logits_bytes);
      for (int p = 0; p < 3; ++p) rw.pass[p].flops += head.flops;
      // The final RMSNorm lives with the head; with tied embeddings and pp > 1 the last rank keeps its
      // own copy of the embedding matrix for the output projection (Megatron-Core).
      const double head_params =
          (m.tied_embeddings && par.pp > 1 ? w.params.embedding : w.params.head) / par.tp;
      rw.params += head_params + h;
      rw.adam_params += head_params;
    }
    if (par.pp > 1) {  // every rank of a pipeline sends: activations forward, gradients backward
      const double bytes = c.T_sp * h * kActivationBytes;
      const bool cross = s.layout.stage_gpus >= gpn;
      rw.p2p_seconds = c.net.send_recv(bytes, cross);
      rw.p2p_nic = cross ? rw.p2p_seconds : 0.0;
      rw.p2p_bytes = bytes;
    }
  }
}

}  // namespace moesim::models
