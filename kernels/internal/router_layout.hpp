#pragma once
/// \file How the router kernel maps one token's experts onto lanes (shared by the kernel and by
/// validation, so a configuration the kernel cannot run fails in validate() with a ConfigError).
///
/// A team of `lanes` consecutive lanes of a warp handles one token; lane l holds experts
/// [l·per_lane, (l+1)·per_lane). Small expert counts use narrow teams so that one warp routes
/// several tokens at once.

namespace moesim::kernels::internal {

struct RouterLayout {
  int lanes;     ///< lanes per token: 2, 8 or 32
  int per_lane;  ///< experts per lane: 4, 8, 16 or 32
};

/// Layout for `experts` in 1..kMaxExperts and `groups` in 1..32. Lane g of a team holds the score of
/// group g while groups are ranked, so a team is widened (2 → 8 → 32 lanes) until lanes ≥ groups.
constexpr RouterLayout router_layout(int experts, int groups = 1) {
  RouterLayout l{32, 32};
  if (experts <= 8)
    l = {2, 4};
  else if (experts <= 32)
    l = {8, 4};
  else if (experts <= 128)
    l = {32, 4};
  else if (experts <= 256)
    l = {32, 8};
  else if (experts <= 512)
    l = {32, 16};
  while (l.lanes < groups && l.lanes < 32) l.lanes = l.lanes == 2 ? 8 : 32;
  return l;
}

}  // namespace moesim::kernels::internal
