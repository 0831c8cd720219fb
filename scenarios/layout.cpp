#include "scenarios/layout.hpp"

#include <algorithm>

namespace moesim {

int Layout::per_domain(int size, int stride) const {
  // Members `stride` GPUs apart: a domain of D GPUs holds D / stride of them (at least one, at most all).
  return std::max(1, std::min(size, domain_gpus / std::min(domain_gpus, stride)));
}

}  // namespace moesim
