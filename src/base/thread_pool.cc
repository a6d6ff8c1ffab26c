#include "base/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstdint>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define GEMBED_PAUSE() _mm_pause()
#else
#define GEMBED_PAUSE() \
  do {                 \
  } while (0)
#endif

namespace gembed {
namespace {

// Futex wait/wake on a 32-bit word (Linux). libstdc++ 12's atomic::wait
// fast path can miss a notify_all for 4-byte types (seen as a hang in the
// destructor), so the pool uses the system call directly and keeps its own
// sleeper counts to skip the wake call when nobody sleeps.
void FutexWait(std::atomic<uint32_t>& word, uint32_t expected) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
#else
  word.wait(expected, std::memory_order_seq_cst);
#endif
}

void FutexWakeAll(std::atomic<uint32_t>& word) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
#else
  word.notify_all();
#endif
}

// Pause iterations a worker spins for the next job before sleeping (0.1 ms
// where a PAUSE takes ~10 ns, as on the Intel AMX host; ~0.35 ms at ~40 ns):
// a forward pass issues parallel regions every few microseconds, so workers
// must not sleep between them, but must not burn a core while idle.
constexpr int kWorkerSpin = 1 << 13;
constexpr int kYieldEvery = 256;
// Pause iterations the caller spins for claimed chunks before blocking.
constexpr int kCallerSpin = 1 << 12;
// Straggler detection: if, after taking its last chunk, the caller waits
// longer than kStallNs AND longer than it worked itself, a worker was most
// likely descheduled mid-chunk (the machine is oversubscribed). The pool
// then runs jobs on the caller alone for kSoloNs before trying again, so a
// loaded host degrades to single-thread speed instead of stalling on every
// parallel region. Normal imbalance is at most one chunk (~1/4 of a share).
// (ThreadPool::kStallNs, ThreadPool::kSoloNs.)

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

int MaxThreadCount() {
  const int64_t hw = std::max(1u, std::thread::hardware_concurrency());
  return static_cast<int>(std::min<int64_t>(kThreadsPerCoreLimit * hw, kMaxThreadsLimit));
}

Status ValidateThreadCount(int64_t n) {
  const int max = MaxThreadCount();
  if (n > max) {
    return InvalidArgument("{} threads is too many: at most {} ({} per hardware thread, {} hardware threads; never "
                           "more than {})",
                           n, max, kThreadsPerCoreLimit, std::max(1u, std::thread::hardware_concurrency()),
                           kMaxThreadsLimit);
  }
  return Status::Ok();
}

int ResolveThreadCount(int n) {
  if (n <= 0) return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::min(n, kMaxThreadsLimit);
}

int64_t ThreadPool::Now() const { return hooks_.now_ns != nullptr ? hooks_.now_ns(hooks_.ctx) : NowNs(); }

ThreadPool::ThreadPool(int n_threads) {
  n_threads_ = ResolveThreadCount(n_threads);
  workers_.reserve(static_cast<size_t>(n_threads_ - 1));
  try {
    for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
  } catch (...) {
    // std::system_error (no more threads): the destructor will not run, and
    // destroying a joinable std::thread terminates the process, so stop the
    // workers started so far before the exception leaves.
    StopWorkers();
    throw;
  }
}

void ThreadPool::StopWorkers() {
  stop_.store(true, std::memory_order_seq_cst);
  wake_.fetch_add(1, std::memory_order_seq_cst);
  FutexWakeAll(wake_);
  for (auto& t : workers_) t.join();
  workers_.clear();
}

ThreadPool::~ThreadPool() {
  if (const char* env = std::getenv("GEMBED_POOL_STATS"); env != nullptr && env[0] == '1') {
    std::fprintf(stderr, "gembed thread pool (%d threads): %lld parallel jobs, %lld stalls, %lld jobs run solo\n",
                 n_threads_, static_cast<long long>(jobs_), static_cast<long long>(stalls_),
                 static_cast<long long>(solo_jobs_));
  }
  StopWorkers();
}

int64_t ThreadPool::ForChunks(int64_t n, int64_t grain) const {
  if (n <= 0) return 0;
  if (n_threads_ == 1) return 1;
  grain = std::max<int64_t>(1, grain);
  const int64_t max_chunks = (n + grain - 1) / grain;
  return std::min<int64_t>(max_chunks, n_threads_ * kChunksPerThread);
}

int64_t ThreadPool::Drain(int thread) {
  int64_t ran = 0;
  uint64_t s = state_.load(std::memory_order_acquire);
  for (;;) {
    const uint64_t idx = s & kChunkMask;
    if (idx == kClosed) return ran;
    // Read the job description, then validate it with the claiming CAS: the
    // caller moves state_ to a new generation (and fences) before rewriting
    // the description, so if any of these loads saw a newer job, the acquire
    // fence makes the CAS see the newer generation and fail.
    const Invoke invoke = invoke_.load(std::memory_order_relaxed);
    void* const ctx = ctx_.load(std::memory_order_relaxed);
    const int64_t n = n_chunks_.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (static_cast<int64_t>(idx) >= n) return ran;
    if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
      continue;  // s now holds the current state
    }
    invoke(ctx, static_cast<int64_t>(idx), thread);
    ++ran;
    if (thread != 0) {
      // seq_cst pairs with the caller's (caller_sleeping_ store, done_ load):
      // either it sees this increment or this thread sees it sleeping.
      done_.fetch_add(1, std::memory_order_seq_cst);
      if (caller_sleeping_.load(std::memory_order_seq_cst)) FutexWakeAll(done_);
    }
    s = state_.load(std::memory_order_acquire);
  }
}

void ThreadPool::Run(int64_t n_chunks, Invoke invoke, void* ctx) {
  if (n_chunks <= 0) return;
  if (n_threads_ == 1 || n_chunks == 1) {
    for (int64_t c = 0; c < n_chunks; ++c) invoke(ctx, c, 0);
    return;
  }
  ++jobs_;
  const int64_t t_start = Now();
  if (t_start < solo_until_ns_) {
    ++solo_jobs_;
    for (int64_t c = 0; c < n_chunks; ++c) invoke(ctx, c, 0);
    return;
  }
  // Publish the job: close the old generation first, then write the
  // description, then open the new generation (see Drain).
  const uint64_t gen = (state_.load(std::memory_order_relaxed) >> 32) + 1;
  state_.store((gen << 32) | kClosed, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  invoke_.store(invoke, std::memory_order_relaxed);
  ctx_.store(ctx, std::memory_order_relaxed);
  n_chunks_.store(n_chunks, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  state_.store(gen << 32, std::memory_order_release);
  wake_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) FutexWakeAll(wake_);

  const int64_t mine = Drain(0);
  // Every chunk is claimed; wait only for those workers are running.
  const uint32_t target = static_cast<uint32_t>(n_chunks - mine);
  uint32_t d = done_.load(std::memory_order_acquire);
  if (d == target) return;
  const int64_t t_drained = Now();
  if (hooks_.after_drain != nullptr) hooks_.after_drain(hooks_.ctx);
  for (int spin = 0; d != target && spin < kCallerSpin; ++spin) {
    GEMBED_PAUSE();
    d = done_.load(std::memory_order_acquire);
  }
  while (d != target) {
    caller_sleeping_.store(true, std::memory_order_seq_cst);
    d = done_.load(std::memory_order_seq_cst);
    if (d != target) FutexWait(done_, d);
    caller_sleeping_.store(false, std::memory_order_relaxed);
    d = done_.load(std::memory_order_acquire);
  }
  const int64_t t_end = Now();
  const int64_t waited = t_end - t_drained;
  if (waited > kStallNs && waited > t_drained - t_start) {
    ++stalls_;
    solo_until_ns_ = t_end + kSoloNs;
  }
}

void ThreadPool::WorkerLoop(int index) {
  // wake_ is 0 until the first job or the destructor: a worker that starts
  // late must still see that bump as new.
  uint32_t seen = 0;
  for (;;) {
    uint32_t w = wake_.load(std::memory_order_acquire);
    for (int spin = 0; w == seen && spin < kWorkerSpin; ++spin) {
      GEMBED_PAUSE();
      // Every kYieldEvery pauses, give the core away if anything else is
      // runnable (a no-op syscall on an idle core): on an oversubscribed
      // host a spinning worker would otherwise burn the time slice the
      // caller (or another process) needs.
      if ((spin & (kYieldEvery - 1)) == kYieldEvery - 1) std::this_thread::yield();
      w = wake_.load(std::memory_order_acquire);
    }
    if (w == seen) {
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      if (wake_.load(std::memory_order_seq_cst) == seen) FutexWait(wake_, seen);
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
      continue;
    }
    seen = w;
    if (stop_.load(std::memory_order_acquire)) return;
    Drain(index);
  }
}

}  // namespace gembed
