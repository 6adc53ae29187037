// Lookups shared by every variant table (gemm_variants(), conv's depthwise_variants(),
// pool_variants(), ...): a table lists each compiled variant best first, ends with the
// portable reference (Isa::kRef), and its entries have `name` and `isa` members. Each op's
// table is generated from its variants.inc list, so declarations, dispatch, tests and
// fastdl._C.variants(op) never disagree.
#pragma once

#include <cstring>
#include <vector>

#include "fastdl/isa.h"

namespace fdl {

// The first variant built for `isa`, else the portable reference (kRef): what a plan that
// runs `isa` code (e.g. the ISA of its GEMM microkernel) uses for this op.
template <class Variant>
const Variant& variant_for(const std::vector<Variant>& table, Isa isa) {
  for (const auto& v : table)
    if (v.isa == isa || v.isa == Isa::kRef) return v;
  return table.back();
}

// The variant for the active ISA (see isa.h).
template <class Variant>
const Variant& best_variant(const std::vector<Variant>& table) {
  return variant_for(table, active_isa());
}

// The variant called `name`, or null.
template <class Variant>
const Variant* find_variant(const std::vector<Variant>& table, const char* name) {
  for (const auto& v : table)
    if (std::strcmp(v.name, name) == 0) return &v;
  return nullptr;
}

}  // namespace fdl
