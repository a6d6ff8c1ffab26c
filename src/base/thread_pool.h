// ThreadPool: a fixed set of worker threads that run parallel loops.
//
// Threading contract: one caller at a time drives the pool (the engine owns
// one pool and calls it from its single compute thread). ParallelFor blocks
// until every chunk is done; the calling thread works too, so a pool of N
// threads starts N-1 workers. Workers spin briefly, then sleep on an atomic
// wait, so back-to-back loops (one per op) cost no thread creation and no
// condition-variable storms.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace gembed {

class ThreadPool {
 public:
  // n_threads <= 0 picks the hardware concurrency.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(thread_index) once on each of the size() threads (index 0 is the
  // caller) and waits for all.
  void RunOnAll(const std::function<void(int)>& fn);

  // Splits [0, n) into contiguous chunks of at least `grain` items, one set of
  // chunks per thread, and calls fn(begin, end, thread_index).
  void ParallelFor(int64_t n, int64_t grain,
                   const std::function<void(int64_t, int64_t, int)>& fn);

 private:
  void WorkerLoop(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* task_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace gembed
