// The machine's measured FMA peak: what "% of peak" in the benchmarks is relative to.
#pragma once

#include <cstddef>
#include <vector>

#include "fastdl/common.h"

namespace fdl {

// Runs `iterations` rounds of independent FMA chains (enough to cover latency x
// throughput) and returns the FLOPs done (one FMA = 2); `sink` keeps the work observable.
using PeakLoopFn = double (*)(std::size_t iterations, float* sink);

struct PeakVariant {
  const char* name;  // fdl_f32_peak__<isa>
  Isa isa;
  PeakLoopFn loop;
};

// Every variant compiled into this build, best first, the reference last (including ones
// this CPU cannot run). From src/peak/variants.inc.
const std::vector<PeakVariant>& peak_variants();

// Runs `variant`'s loop (default: the active ISA's, its widest vectors) on every thread of
// the pool for about `seconds` and returns the sustained GFLOP/s of all threads together.
double fma_peak_gflops(double seconds, const PeakVariant* variant = nullptr);

}  // namespace fdl
