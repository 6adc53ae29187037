// The machine's measured FMA peak: what "% of peak" in the benchmarks is relative to.
#pragma once

namespace fdl {

// Runs independent FMA chains (enough to cover latency x throughput) with the active
// ISA's widest vectors on every thread of the pool for about `seconds`, and returns the
// sustained GFLOP/s of all threads together (one FMA = 2 FLOP).
double fma_peak_gflops(double seconds);

}  // namespace fdl
