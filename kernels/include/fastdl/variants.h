// Lookups shared by every variant table (gemm_variants(), activation_variants(),
// pool_variants()): a table lists each compiled variant best first and its entries have
// `name` and `isa` members.
#pragma once

#include <cstring>
#include <vector>

#include "fastdl/isa.h"

namespace fdl {

// The first variant for the active ISA, else the portable reference (kRef).
template <class Variant>
const Variant& best_variant(const std::vector<Variant>& table) {
  const Isa active = active_isa();
  for (const auto& v : table)
    if (v.isa == active || v.isa == Isa::kRef) return v;
  return table.back();
}

// The variant called `name`, or null.
template <class Variant>
const Variant* find_variant(const std::vector<Variant>& table, const char* name) {
  for (const auto& v : table)
    if (std::strcmp(v.name, name) == 0) return &v;
  return nullptr;
}

}  // namespace fdl
