#include "threadpool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace graft {
namespace {

// How long an idle worker keeps polling before it sleeps on the condition variable.
constexpr std::chrono::microseconds kSpinFor{5000};

inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

class Pool {
 public:
  explicit Pool(int n) { start(n); }
  ~Pool() { stop(); }

  int size() const { return size_; }

  void resize(int n) {
    stop();
    start(n);
  }

  // dynamic: the job divides its work itself as workers come (parallelGuided), so once the caller has
  // done its share, a worker that has not started yet is let off instead of waited for (one kept from
  // its core by another thread would otherwise hold the caller for a scheduler slice, milliseconds).
  void run(const std::function<void(int, int)>& fn, bool dynamic = false) {
    if (size_ == 1 || inside_) {
      fn(0, 1);
      return;
    }
    uint64_t epoch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &fn;
      dynamic_ = dynamic;
      pending_.store(dynamic ? 0 : size_ - 1, std::memory_order_release);
      epoch = ++generation_;
      entry_.store((epoch & 0xffffffffu) << 32, std::memory_order_release);
      done_.store(0, std::memory_order_release);
    }
    cv_.notify_all();
    inside_ = true;
    fn(0, size_);
    inside_ = false;
    // Spin briefly, then yield, until every worker that runs the job has finished.
    if (dynamic) {
      const uint64_t started = entry_.fetch_or(kClosed, std::memory_order_acq_rel) & kCount;
      for (int spins = 0; done_.load(std::memory_order_acquire) != static_cast<int>(started);)
        if (++spins > 2000) std::this_thread::yield();
    } else {
      for (int spins = 0; pending_.load(std::memory_order_acquire) != 0;)
        if (++spins > 2000) std::this_thread::yield();
    }
    job_ = nullptr;
  }

 private:
  void start(int n) {
    size_ = std::max(1, n);
    quit_ = false;
    // Only this (the calling) thread bumps generation_, so a worker starts from the value it has
    // now. Reading it in the worker instead would race with a run() issued before the worker got
    // going: the worker would take that job's generation as already seen and never run it, and
    // run() would wait for it forever.
    const uint64_t seen = generation_.load();
    for (int i = 1; i < size_; i++) workers_.emplace_back([this, i, seen] { loop(i, seen); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
      generation_++;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  void loop(int index, uint64_t seen) {
    while (true) {
      const std::function<void(int, int)>* job = nullptr;
      // Kernels come back to back, or with a little JS between: a decode step makes a few passes per
      // layer tens of microseconds apart, and a few milliseconds pass between tokens. So a worker
      // polls hot for ~50 us, then with pause instructions for up to kSpinFor, before it sleeps: a
      // sleeping worker costs the next pass a wake-up, ~50 us and up to hundreds on a VM.
      bool ready = false;
      for (int spin = 0; spin < 200000 && !ready; spin++) ready = generation_.load(std::memory_order_acquire) != seen;
      for (auto until = std::chrono::steady_clock::now() + kSpinFor; !ready && std::chrono::steady_clock::now() < until;) {
        for (int i = 0; i < 64; i++) cpuRelax();
        ready = generation_.load(std::memory_order_acquire) != seen;
      }
      bool dynamic;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return generation_.load() != seen || quit_; });
        if (quit_) return;
        seen = generation_.load();
        job = job_;
        dynamic = dynamic_;
      }
      if (!dynamic) {
        inside_ = true;
        (*job)(index, size_);
        inside_ = false;
        pending_.fetch_sub(1, std::memory_order_acq_rel);
        continue;
      }
      // A dynamic job: join only while the caller has not closed it (then job may be gone).
      uint64_t e = entry_.load(std::memory_order_acquire);
      bool joined = false;
      while ((e >> 32) == (seen & 0xffffffffu) && !(e & kClosed)) {
        if (entry_.compare_exchange_weak(e, e + 1, std::memory_order_acq_rel)) {
          joined = true;
          break;
        }
      }
      if (!joined) continue;
      inside_ = true;
      (*job)(index, size_);
      inside_ = false;
      done_.fetch_add(1, std::memory_order_acq_rel);
    }
  }

  int size_ = 1;
  bool quit_ = false;
  std::atomic<uint64_t> generation_{0};
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<int> pending_{0};
  // Dynamic runs: entry_ holds the run's epoch (high 32 bits), kClosed, and how many workers joined.
  static constexpr uint64_t kClosed = uint64_t(1) << 31, kCount = kClosed - 1;
  bool dynamic_ = false;
  std::atomic<uint64_t> entry_{0};
  std::atomic<int> done_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread> workers_;
  static thread_local bool inside_;
};

thread_local bool Pool::inside_ = false;

int defaultThreads() {
  if (const char* env = std::getenv("GRAFT_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

Pool& pool() {
  static Pool p(defaultThreads());
  return p;
}

}  // namespace

int numThreads() { return pool().size(); }

void setNumThreads(int n) { pool().resize(n); }

void parallelRun(const std::function<void(int, int)>& fn) { pool().run(fn); }

void parallelRunDynamic(const std::function<void(int, int)>& fn) { pool().run(fn, true); }

void parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  int threads = numThreads();
  if (threads == 1 || n <= std::max<int64_t>(grain, 1)) {
    fn(0, n, 0);
    return;
  }
  int64_t parts = std::min<int64_t>(threads, (n + std::max<int64_t>(grain, 1) - 1) / std::max<int64_t>(grain, 1));
  parallelRun([&](int t, int nt) {
    if (t >= parts) return;
    (void)nt;
    int64_t chunk = (n + parts - 1) / parts;
    int64_t b = t * chunk, e = std::min(n, b + chunk);
    if (b < e) fn(b, e, t);
  });
}

}  // namespace graft
