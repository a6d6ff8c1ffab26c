// The running machine's own limits, measured in a fraction of a second, so
// `gembed bench --roofline` (and bench_kernels) can state achieved rates as a
// share of what this host can do rather than of a datasheet.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/thread_pool.h"

namespace gembed {

struct MachinePeaks {
  double int8_gmacs_per_core = 0;  // independent vpdpbusd zmm chains; 0 without AVX-512 VNNI
  double dram_gbs = 0;             // streaming reads of a buffer far beyond the caches, all pool threads
  int threads = 0;                 // pool threads used for dram_gbs
};

// Best of a few short runs each (another process only ever makes a run
// slower). Uses a 256 MiB buffer for the DRAM read, freed on return (it
// counts in the peak RSS of the process).
MachinePeaks MeasurePeaks(ThreadPool& pool);

// The measurement loops themselves (AVX-512 VNNI hosts only; callers check
// IsaSupported(Isa::kAvx512Vnni)):
// `iters` x 16 independent vpdpbusd zmm (16 x 64 int8 MACs per iteration).
int64_t Int8PeakLoop(int64_t iters);
inline constexpr double kInt8PeakLoopMacsPerIter = 16.0 * 64.0;
// Sum of n floats (n % 64 == 0, p 64-byte aligned) with 4 zmm accumulators.
float StreamReadLoop(const float* p, size_t n);

}  // namespace gembed
