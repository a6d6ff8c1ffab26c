#include "kernels/peaks.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "kernels/aligned_buffer.h"
#include "kernels/cpu/dispatch.h"

namespace gembed {
namespace {

// CPU time of the calling thread: unlike wall time it does not count the
// time other processes hold the core.
double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

MachinePeaks MeasurePeaks(ThreadPool& pool) {
  MachinePeaks peaks;
  peaks.threads = pool.size();
  if (!IsaSupported(Isa::kAvx512Vnni)) return peaks;
  volatile int64_t sink_i = Int8PeakLoop(1 << 18);  // clocks up
  for (int r = 0; r < 5; ++r) {
    const int64_t iters = 1 << 19;
    const double t0 = ThreadCpuSeconds();
    sink_i = sink_i + Int8PeakLoop(iters);
    const double s = ThreadCpuSeconds() - t0;
    if (s > 0) peaks.int8_gmacs_per_core = std::max(peaks.int8_gmacs_per_core, iters * kInt8PeakLoopMacsPerIter / s / 1e9);
  }
  constexpr size_t kBytes = size_t{256} << 20;  // 8x a 32 MiB last-level cache
  AlignedBuffer buf(kBytes);
  std::memset(buf.data(), 1, kBytes);
  const float* p = buf.as<float>();
  const size_t n = kBytes / 4;
  const int threads = pool.size();
  std::vector<float> sink(static_cast<size_t>(threads));
  for (int r = 0; r < 3; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.RunOnAll([&](int t) {
      const size_t b = n * static_cast<size_t>(t) / static_cast<size_t>(threads) / 64 * 64;
      const size_t e = t + 1 == threads ? n : n * static_cast<size_t>(t + 1) / static_cast<size_t>(threads) / 64 * 64;
      sink[static_cast<size_t>(t)] = StreamReadLoop(p + b, e - b);
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s > 0) peaks.dram_gbs = std::max(peaks.dram_gbs, static_cast<double>(kBytes) / s / 1e9);
  }
  volatile float keep = sink[0];
  (void)keep;
  return peaks;
}

}  // namespace gembed
