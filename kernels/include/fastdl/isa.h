// Runtime instruction-set detection and the cap set by FASTDL_ISA.
#pragma once

#include <cstddef>

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

// The x86 CPU's maker (kOther elsewhere): the few tuning choices measured to go opposite
// ways on AMD's and Intel's cores follow it (gemm.cc: reads_b_in_place; ConvChain::pays).
enum class CpuVendor { kAmd, kIntel, kOther };
CpuVendor cpu_vendor();

// Half the core's L2 in bytes, clamped to [128 KiB, 1 MiB] (256 KiB where the OS does not
// say, as aarch64's glibc): the working set of kernels that block their data for L2 (the
// rest of it for weights and outputs). Read once.
std::size_t l2_half_bytes();

}  // namespace fdl
