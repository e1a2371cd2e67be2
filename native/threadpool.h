// A small persistent thread pool: parallelFor(n, fn) splits [0, n) into contiguous chunks,
// one per worker (the caller's thread is worker 0). Size = hardware cores, or GRAFT_NUM_THREADS.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>

namespace graft {

int numThreads();
void setNumThreads(int n);

// fn(begin, end, threadIndex). Runs inline when n is small (n <= grain) or the pool has one thread.
// Calls from inside a parallel region run inline (no nested parallelism).
void parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn);

// Runs fn(threadIndex, nThreads) once on every worker; for kernels that partition work themselves.
void parallelRun(const std::function<void(int, int)>& fn);

// Like parallelRun, for a job that divides its work among whichever workers turn up: fn runs on the
// caller and on the workers that start before the caller has finished its own call; the others skip
// this job rather than make the caller wait for them.
void parallelRunDynamic(const std::function<void(int, int)>& fn);

// fn(u0, u1) over [0, units) on every worker, guided: each claim takes 1 / (2 * threads) of the units
// left (at least one), so the workers finish within about a unit of each other; a fixed chunk size
// leaves one idle for up to a chunk at the end. For streaming kernels of uneven speed per thread. A
// worker late to start (kept from its core) is not waited for: the others take its units.
template <class F>
void parallelGuided(int64_t units, const F& fn) {
  std::atomic<int64_t> next{0};
  parallelRunDynamic([&](int, int nt) {
    for (int64_t u = next.load(std::memory_order_relaxed); u < units;) {
      const int64_t take = std::max<int64_t>(1, (units - u) / (2 * int64_t(nt)));
      if (next.compare_exchange_weak(u, u + take, std::memory_order_relaxed)) {
        fn(u, std::min(units, u + take));
        u = next.load(std::memory_order_relaxed);
      }
    }
  });
}

}  // namespace graft
