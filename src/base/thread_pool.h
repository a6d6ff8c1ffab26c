// ThreadPool: one persistent set of worker threads that run parallel loops.
//
// Work is split into a FIXED number of chunks with fixed boundaries, and the
// chunks are claimed dynamically: the calling thread and every worker that is
// awake take the next unclaimed chunk with one atomic CAS until none is left.
// The caller never waits for a worker that has not started: a worker that is
// descheduled (on a loaded host) simply claims nothing, and the caller does
// its share. The caller only waits for chunks a worker has already claimed.
//
// Determinism: which thread runs a chunk varies from run to run, but chunk
// boundaries depend only on the arguments (n, grain, and the pool size in
// ParallelFor), and a chunk's work must not depend on who runs it. Callers
// that compute every output element inside one chunk in a fixed order get
// bit-identical results for any thread count and any scheduling.
//
// Threading contract: one caller at a time drives a pool (the engine owns one
// pool and calls it from its single compute thread); calls block until every
// chunk is done and are not reentrant (a chunk must not call back into the
// same pool). The `thread` argument passed to a chunk is the index of the
// thread running it, in [0, size()) (0 = the caller): at any moment at most
// one chunk runs per index, so it may select per-thread scratch memory.
// Workers spin briefly after a job (back-to-back parallel regions cost no
// syscall), then sleep on a futex; waking costs a syscall only when some
// thread actually sleeps.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/status.h"

namespace gembed {

// Thread counts: every face (CLI --threads, EngineOptions::threads, the
// converters) asks for n threads, n <= 0 meaning one per hardware thread.
// More than kThreadsPerCoreLimit per hardware thread only oversubscribes the
// CPU (and tens of thousands of threads exhaust memory or the process limit),
// so a count above MaxThreadCount() is refused:
//   InvalidArgument "50000 threads is too many: at most 8 (4 per hardware
//   thread, 2 hardware threads; never more than 1024)"
inline constexpr int kThreadsPerCoreLimit = 4;
inline constexpr int kMaxThreadsLimit = 1024;
// min(kThreadsPerCoreLimit * hardware_concurrency, kMaxThreadsLimit), >= kThreadsPerCoreLimit.
int MaxThreadCount();
// Ok for n <= 0 (all hardware threads) and 1 <= n <= MaxThreadCount().
Status ValidateThreadCount(int64_t n);
// The count a pool of `n` gets: n <= 0 -> hardware concurrency (>= 1),
// otherwise min(n, kMaxThreadsLimit). (The pool itself only enforces the
// absolute cap, so tests can oversubscribe a small machine on purpose.)
int ResolveThreadCount(int n);

class ThreadPool {
 public:
  // n_threads <= 0 picks the hardware concurrency; counts above
  // kMaxThreadsLimit are clamped to it (ResolveThreadCount). Faces validate
  // user input first with ValidateThreadCount, which also reports counts
  // above MaxThreadCount(). Throws std::system_error if the OS refuses a
  // thread (workers already started are stopped first).
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(chunk, thread) exactly once for every chunk in [0, n_chunks),
  // spread over the caller and the workers; returns when all are done.
  template <typename F>
  void ParallelChunks(int64_t n_chunks, F&& fn) {
    using Fn = std::remove_reference_t<F>;
    Run(n_chunks, &InvokeChunk<Fn>, const_cast<void*>(static_cast<const void*>(&fn)));
  }

  // Splits [0, n) into chunks of at least `grain` items (at most
  // kChunksPerThread per thread, boundaries n*i/chunks) and calls
  // fn(begin, end, thread) for each chunk.
  template <typename F>
  void ParallelFor(int64_t n, int64_t grain, F&& fn) {
    if (n <= 0) return;
    const int64_t chunks = ForChunks(n, grain);
    if (chunks <= 1) {
      fn(int64_t{0}, n, 0);
      return;
    }
    auto body = [&fn, n, chunks](int64_t c, int t) { fn(n * c / chunks, n * (c + 1) / chunks, t); };
    ParallelChunks(chunks, body);
  }

  // Runs fn(task) for task = 0 .. size()-1, each exactly once. The argument
  // is a task index, not a thread identity: one thread may run several tasks
  // (the caller runs all of them if no worker is awake), but no two tasks
  // with the same index run at once, so it may also select scratch memory.
  template <typename F>
  void RunOnAll(F&& fn) {
    auto body = [&fn](int64_t c, int) { fn(static_cast<int>(c)); };
    ParallelChunks(n_threads_, body);
  }

  // The number of chunks ParallelFor(n, grain, ...) uses.
  int64_t ForChunks(int64_t n, int64_t grain) const;

  // Oversubscription guard: when a job's caller had to wait much longer for a
  // worker's chunk than it worked itself (a worker descheduled mid-chunk),
  // the next jobs for a short while run on the caller alone. Counters for
  // tests and diagnostics (read them from the caller thread);
  // GEMBED_POOL_STATS=1 prints them to stderr when the pool is destroyed.
  int64_t stalls() const { return stalls_; }
  int64_t solo_jobs() const { return solo_jobs_; }

  // Test hooks (tests only; set them before the first job, from the caller
  // thread). now_ns replaces the pool's steady clock, so a test decides how
  // long the caller "waited"; after_drain runs on the caller right after it
  // found no chunk left to claim while a worker still runs a claimed one
  // (the moment the stall measurement starts). Together they make the
  // oversubscription guard testable without depending on the OS scheduler.
  struct TestHooks {
    int64_t (*now_ns)(void* ctx) = nullptr;
    void (*after_drain)(void* ctx) = nullptr;
    void* ctx = nullptr;
  };
  void SetTestHooks(const TestHooks& hooks) { hooks_ = hooks; }
  // How long a stall must last and how long solo mode then lasts (ns).
  static constexpr int64_t kStallNs = 500'000;
  static constexpr int64_t kSoloNs = 20'000'000;

  // Chunks per thread in ParallelFor: enough to rebalance when a thread
  // falls behind, few enough that claiming (one CAS) stays negligible.
  static constexpr int64_t kChunksPerThread = 4;

 private:
  using Invoke = void (*)(void* ctx, int64_t chunk, int thread);
  template <typename Fn>
  static void InvokeChunk(void* ctx, int64_t chunk, int thread) {
    (*static_cast<Fn*>(ctx))(chunk, thread);
  }

  void Run(int64_t n_chunks, Invoke invoke, void* ctx);
  // Claims and runs chunks of the current job while any are left; returns
  // how many this thread ran.
  int64_t Drain(int thread);
  void WorkerLoop(int index);
  void StopWorkers();
  int64_t Now() const;

  // state_ = (job generation << 32) | next unclaimed chunk. A chunk is
  // claimed by a CAS that also checks the generation, so a worker that read
  // an old job's description can never run a chunk of it after the job ended.
  static constexpr uint64_t kChunkMask = 0xffffffffull;
  static constexpr uint64_t kClosed = kChunkMask;  // "no chunk claimable"

  int n_threads_;
  std::vector<std::thread> workers_;
  // Separate cache lines: the claim word is hammered, the rest mostly read.
  alignas(64) std::atomic<uint64_t> state_{kClosed};
  alignas(64) std::atomic<Invoke> invoke_{nullptr};
  std::atomic<void*> ctx_{nullptr};
  std::atomic<int64_t> n_chunks_{0};
  alignas(64) std::atomic<uint32_t> done_{0};    // futex word: chunks finished by workers in this job
  std::atomic<bool> caller_sleeping_{false};     // the caller is (about to be) blocked on done_
  alignas(64) std::atomic<uint32_t> wake_{0};    // futex word: bumped for every job
  std::atomic<int> sleepers_{0};                 // workers (about to be) blocked on wake_
  std::atomic<bool> stop_{false};
  // Caller-thread state (one caller at a time): solo mode until this time.
  int64_t solo_until_ns_ = 0;
  int64_t stalls_ = 0, solo_jobs_ = 0, jobs_ = 0;
  TestHooks hooks_;
};

}  // namespace gembed
