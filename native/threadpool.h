// A small persistent thread pool: parallelFor(n, fn) splits [0, n) into contiguous chunks,
// one per worker (the caller's thread is worker 0). Size = hardware cores, or GRAFT_NUM_THREADS.
#pragma once
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

}  // namespace graft
