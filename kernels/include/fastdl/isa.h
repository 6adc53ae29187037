// Runtime instruction-set detection and the cap set by FASTDL_ISA.
#pragma once

#include "fastdl/common.h"

namespace fdl {

// True when this CPU (and OS, for x86 register state) can execute code built for `isa`.
bool cpu_supports(Isa isa);

// The best level that is both supported and allowed by FASTDL_ISA (ref|avx2|avx512|neon),
// read once at first call. An unknown FASTDL_ISA value falls back to the best supported
// level; isa_cap_error() then returns a message describing the bad value (else nullptr).
Isa active_isa();
const char* isa_cap_error();

// Overrides the active level (used by tests and by fastdl._C.set_isa); returns false when
// the CPU lacks `isa`.
bool set_active_isa(Isa isa);

}  // namespace fdl
