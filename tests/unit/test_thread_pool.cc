// ThreadPool: every chunk runs exactly once, boundaries are fixed, a chunk's
// thread index is exclusive while it runs, the caller finishes the work alone
// when workers are late, and nothing is lost under oversubscription (more
// threads than cores, many back-to-back jobs).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <chrono>
#include <cstdint>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "base/thread_pool.h"

namespace gembed {
namespace {

TEST(ThreadPool, SizeAndDefault) {
  EXPECT_EQ(ThreadPool(1).size(), 1);
  EXPECT_EQ(ThreadPool(3).size(), 3);
  EXPECT_GE(ThreadPool(0).size(), 1);
  EXPECT_GE(ThreadPool(-5).size(), 1);
}

TEST(ThreadPool, ParallelChunksRunsEveryChunkOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 3, 7, 64, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<int> bad_thread{0};
      pool.ParallelChunks(n, [&](int64_t c, int t) {
        hits[static_cast<size_t>(c)].fetch_add(1);
        if (t < 0 || t >= threads) bad_thread.fetch_add(1);
      });
      for (int64_t c = 0; c < n; ++c) EXPECT_EQ(hits[static_cast<size_t>(c)].load(), 1) << threads << " " << n << " " << c;
      EXPECT_EQ(bad_thread.load(), 0);
    }
  }
}

// ParallelFor covers [0, n) exactly with fixed boundaries: the same (n,
// grain, pool size) always gives the same chunks, whichever thread runs them.
TEST(ThreadPool, ParallelForCoversRangeWithFixedBoundaries) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 5, 100, 4097}) {
      for (int64_t grain : {1, 7, 64, 100000}) {
        std::vector<std::pair<int64_t, int64_t>> first;
        for (int rep = 0; rep < 3; ++rep) {
          std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
          std::vector<std::pair<int64_t, int64_t>> chunks(static_cast<size_t>(pool.ForChunks(n, grain)));
          std::atomic<int64_t> seen{0};
          pool.ParallelFor(n, grain, [&](int64_t b, int64_t e, int) {
            ASSERT_LT(b, e);
            for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
            // Chunk c starts at n*c/chunks: recover c from b to record it.
            const int64_t nc = static_cast<int64_t>(chunks.size());
            int64_t c = 0;
            while (c < nc && n * c / nc != b) ++c;
            ASSERT_LT(c, nc);
            chunks[static_cast<size_t>(c)] = {b, e};
            seen.fetch_add(1);
          });
          for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1);
          EXPECT_EQ(seen.load(), static_cast<int64_t>(chunks.size()));
          EXPECT_LE(static_cast<int64_t>(chunks.size()), std::max<int64_t>(1, (n + grain - 1) / grain));
          if (rep == 0) first = chunks;
          EXPECT_EQ(chunks, first);
        }
      }
    }
  }
}

TEST(ThreadPool, RunOnAllRunsEveryTaskOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int rep = 0; rep < 50; ++rep) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(threads));
      pool.RunOnAll([&](int task) { hits[static_cast<size_t>(task)].fetch_add(1); });
      for (int t = 0; t < threads; ++t) ASSERT_EQ(hits[static_cast<size_t>(t)].load(), 1);
    }
  }
}

// At most one chunk runs per thread index at a time (per-thread scratch is safe).
TEST(ThreadPool, ThreadIndexIsExclusive) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> busy(4);
  std::atomic<int> overlaps{0};
  for (int rep = 0; rep < 20; ++rep) {
    pool.ParallelChunks(200, [&](int64_t, int t) {
      if (busy[static_cast<size_t>(t)].fetch_add(1) != 0) overlaps.fetch_add(1);
      volatile int spin = 0;
      for (int i = 0; i < 2000; ++i) spin = spin + 1;
      busy[static_cast<size_t>(t)].fetch_sub(1);
    });
  }
  EXPECT_EQ(overlaps.load(), 0);
}

// Chunks are claimed dynamically: the first chunk to start blocks until all
// the others are done, so the other thread must take every remaining chunk.
// A pool that gave each thread a fixed share would time out here (the
// blocked thread's share could never run).
TEST(ThreadPool, CallerCompletesWorkWhileAWorkerIsStuck) {
  ThreadPool pool(2);
  for (int rep = 0; rep < 20; ++rep) {
    constexpr int64_t kChunks = 64;
    std::atomic<int64_t> done{0};
    std::atomic<bool> first_taken{false};
    pool.ParallelChunks(kChunks, [&](int64_t, int) {
      if (!first_taken.exchange(true)) {
        // Whoever runs this chunk waits for all others: they must be run by
        // the other thread.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (done.load() < kChunks - 1 && std::chrono::steady_clock::now() < deadline)
          std::this_thread::yield();
      }
      done.fetch_add(1);
    });
    ASSERT_EQ(done.load(), kChunks);
  }
}

// A slow worker (every chunk it takes sleeps, like a thread that keeps being
// descheduled) neither loses nor duplicates chunks over many small jobs.
TEST(ThreadPool, SlowWorkerDoesNotLoseOrDuplicateChunks) {
  ThreadPool pool(2);
  for (int job = 0; job < 200; ++job) {
    std::vector<std::atomic<int>> hits(37);
    pool.ParallelChunks(37, [&](int64_t c, int t) {
      if (t != 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
      hits[static_cast<size_t>(c)].fetch_add(1);
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1) << "job " << job;
  }
}

// Oversubscription: more threads than cores, thousands of back-to-back jobs
// of varying sizes (workers keep arriving late into later jobs); every job
// must see each chunk exactly once, and sums must be exact.
TEST(ThreadPool, StressMoreThreadsThanCores) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ThreadPool pool(cores * 3 + 1);
  uint64_t expect_total = 0;
  std::atomic<uint64_t> total{0};
  for (int job = 0; job < 3000; ++job) {
    const int64_t n = 1 + (job * 7919) % 97;
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    pool.ParallelChunks(n, [&](int64_t c, int) {
      hits[static_cast<size_t>(c)].fetch_add(1, std::memory_order_relaxed);
      total.fetch_add(static_cast<uint64_t>(c) + 1, std::memory_order_relaxed);
    });
    for (int64_t c = 0; c < n; ++c) ASSERT_EQ(hits[static_cast<size_t>(c)].load(), 1) << "job " << job << " chunk " << c;
    expect_total += static_cast<uint64_t>(n * (n + 1) / 2);
  }
  EXPECT_EQ(total.load(), expect_total);
}

// Writes made inside chunks are visible to the caller after the call (the
// pool's completion handshake orders them), for plain non-atomic memory.
TEST(ThreadPool, ChunkWritesAreVisibleAfterReturn) {
  ThreadPool pool(3);
  std::vector<uint64_t> data(1 << 16);
  for (int rep = 0; rep < 100; ++rep) {
    pool.ParallelFor(static_cast<int64_t>(data.size()), 256, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) data[static_cast<size_t>(i)] = static_cast<uint64_t>(i) * 3 + rep;
    });
    uint64_t bad = 0;
    for (size_t i = 0; i < data.size(); ++i) bad += data[i] != i * 3 + static_cast<uint64_t>(rep);
    ASSERT_EQ(bad, 0u) << "rep " << rep;
  }
}

// Deterministic reductions: per-chunk partial sums combined in chunk order
// give bit-identical float results for 1, 2 and 3 threads.
TEST(ThreadPool, ChunkOrderedReductionIsBitIdenticalAcrossThreadCounts) {
  std::vector<float> x(100003);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(std::sin(static_cast<double>(i))) * 1e3f;
  auto sum_with = [&](int threads) {
    ThreadPool pool(threads);
    constexpr int64_t kChunks = 17;  // fixed: independent of the pool size
    std::vector<float> part(kChunks);
    const int64_t n = static_cast<int64_t>(x.size());
    pool.ParallelChunks(kChunks, [&](int64_t c, int) {
      float s = 0;
      for (int64_t i = n * c / kChunks; i < n * (c + 1) / kChunks; ++i) s += x[static_cast<size_t>(i)];
      part[static_cast<size_t>(c)] = s;
    });
    float s = 0;
    for (float p : part) s += p;
    return s;
  };
  const float s1 = sum_with(1);
  for (int rep = 0; rep < 10; ++rep) {
    EXPECT_EQ(sum_with(2), s1);
    EXPECT_EQ(sum_with(3), s1);
  }
}

// The oversubscription guard, made deterministic with the pool's test hooks:
// a fake clock that only the test advances, and a hook that runs when the
// caller has claimed its last chunk while the worker still runs one. The job
// has 2 chunks; the caller's chunk waits until the worker has claimed the
// other (so each thread runs exactly one, whatever the scheduler does), and
// the worker's chunk waits until the hook has moved the fake clock 1 s on:
// the caller "waited" 1 s for a worker after 0 ns of its own work, which is
// a stall. No real time is measured, so a loaded host cannot change the
// outcome; the waits have a 60 s deadline only so a bug fails instead of
// hanging.
struct FakeClock {
  std::atomic<int64_t> now{1'000'000'000};
  std::atomic<bool> worker_started{false}, release_worker{false};
  std::atomic<bool> armed{true};  // the hook acts in the first job only
  static int64_t Now(void* self) { return static_cast<FakeClock*>(self)->now.load(); }
  static void AfterDrain(void* self) {
    auto* c = static_cast<FakeClock*>(self);
    if (!c->armed.exchange(false)) return;  // later jobs: no fake waiting
    c->now.fetch_add(1'000'000'000);       // the caller waits "1 s" from here on
    c->release_worker.store(true);
  }
};

bool WaitFor(const std::atomic<bool>& flag) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!flag.load()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST(ThreadPool, StalledWorkerSwitchesToSoloMode) {
  ThreadPool pool(2);
  FakeClock clock;
  pool.SetTestHooks({&FakeClock::Now, &FakeClock::AfterDrain, &clock});
  std::atomic<int> ran_by_caller{0}, ran_by_worker{0};
  std::atomic<bool> timed_out{false};
  pool.ParallelChunks(2, [&](int64_t, int t) {
    if (t == 0) {
      ++ran_by_caller;
      if (!WaitFor(clock.worker_started)) timed_out = true;
    } else {
      ++ran_by_worker;
      clock.worker_started = true;
      if (!WaitFor(clock.release_worker)) timed_out = true;
    }
  });
  ASSERT_FALSE(timed_out.load());
  EXPECT_EQ(ran_by_caller.load(), 1);
  EXPECT_EQ(ran_by_worker.load(), 1);
  EXPECT_EQ(pool.stalls(), 1);

  // Solo mode: the clock has not moved, so the next jobs run on the caller.
  for (int job = 0; job < 3; ++job) {
    const int64_t solo_before = pool.solo_jobs();
    std::vector<std::atomic<int>> hits(16);
    pool.ParallelChunks(16, [&](int64_t c, int t) {
      EXPECT_EQ(t, 0);  // solo: the caller runs everything
      hits[static_cast<size_t>(c)].fetch_add(1);
    });
    for (auto& h : hits) EXPECT_EQ(h.load(), 1);
    EXPECT_EQ(pool.solo_jobs(), solo_before + 1);
  }

  // Once kSoloNs have passed, jobs are parallel again (not solo), and a job
  // whose caller does not wait for anyone is no stall.
  clock.now.fetch_add(ThreadPool::kSoloNs + 1);
  const int64_t solo_before = pool.solo_jobs();
  std::vector<std::atomic<int>> hits(64);
  pool.ParallelChunks(64, [&](int64_t c, int) { hits[static_cast<size_t>(c)].fetch_add(1); });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  EXPECT_EQ(pool.solo_jobs(), solo_before);
  EXPECT_EQ(pool.stalls(), 1);
}

// A caller that waits for a worker no longer than it worked itself is not a
// stall, however long in absolute terms (imbalance, not a descheduled worker).
TEST(ThreadPool, WaitShorterThanOwnWorkIsNoStall) {
  ThreadPool pool(2);
  FakeClock clock;
  std::atomic<bool> caller_done{false};
  // The caller's chunk advances the clock by 2 s (its own work); the hook
  // then adds only 1 s of waiting.
  pool.SetTestHooks({&FakeClock::Now, &FakeClock::AfterDrain, &clock});
  std::atomic<bool> timed_out{false};
  pool.ParallelChunks(2, [&](int64_t, int t) {
    if (t == 0) {
      if (!WaitFor(clock.worker_started)) timed_out = true;
      clock.now.fetch_add(2'000'000'000);
    } else {
      clock.worker_started = true;
      if (!WaitFor(clock.release_worker)) timed_out = true;
    }
  });
  ASSERT_FALSE(timed_out.load());
  EXPECT_EQ(pool.stalls(), 0);
  const int64_t solo_before = pool.solo_jobs();
  std::atomic<int> n{0};
  pool.ParallelChunks(8, [&](int64_t, int) { n.fetch_add(1); });
  EXPECT_EQ(n.load(), 8);
  EXPECT_EQ(pool.solo_jobs(), solo_before);
}

// The bound every face applies to a requested thread count.
TEST(ThreadCount, ValidateRefusesAbsurdCounts) {
  const int max = MaxThreadCount();
  EXPECT_GE(max, kThreadsPerCoreLimit);
  EXPECT_LE(max, kMaxThreadsLimit);
  EXPECT_EQ(max, std::min<int>(kMaxThreadsLimit,
                               kThreadsPerCoreLimit * static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))));
  for (int ok : {-5, 0, 1, 2, max}) EXPECT_TRUE(ValidateThreadCount(ok).ok()) << ok;
  for (int bad : {max + 1, 10000, 50000, 2147483647}) {
    const Status s = ValidateThreadCount(bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find(std::to_string(bad) + " threads is too many: at most " + std::to_string(max)),
              std::string::npos)
        << s.message();
  }
  EXPECT_EQ(ResolveThreadCount(3), 3);
  EXPECT_EQ(ResolveThreadCount(2147483647), kMaxThreadsLimit);
  EXPECT_GE(ResolveThreadCount(0), 1);
}

TEST(ThreadPool, DestroyWhileIdleAndAfterSleeping) {
  for (int rep = 0; rep < 20; ++rep) {
    ThreadPool pool(3);
    if (rep % 2) std::this_thread::sleep_for(std::chrono::milliseconds(5));  // workers fall asleep
    std::atomic<int> n{0};
    pool.ParallelChunks(10, [&](int64_t, int) { n.fetch_add(1); });
    EXPECT_EQ(n.load(), 10);
  }
}

}  // namespace
}  // namespace gembed
