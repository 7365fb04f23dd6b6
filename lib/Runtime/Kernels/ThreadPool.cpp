//===- ThreadPool.cpp - Fork-join pool with work stealing -----------------===//
//
// Stealing: each thread owns a range [begin, end) of task indices packed in
// one 64-bit atomic (begin in the high half). The owner pops from the front
// with a CAS; a thief scans all ranges, picks the largest and CASes its end
// down to the middle, then publishes the upper half as its own range. Every
// index is in at most one range at a time and leaves it exactly once (by a
// successful CAS), so every task runs exactly once. A thread stops when a
// scan finds every range empty; tasks a thief holds between its CAS and its
// store are run by that thief before it stops.
//
//===----------------------------------------------------------------------===//

#include "kt/Runtime/Kernels/ThreadPool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace kt::kernels {

namespace {

struct alignas(64) Range {
  std::atomic<uint64_t> v{0};
};

constexpr uint64_t pack(uint32_t b, uint32_t e) {
  return static_cast<uint64_t>(b) << 32 | e;
}
constexpr uint32_t rangeBegin(uint64_t v) {
  return static_cast<uint32_t>(v >> 32);
}
constexpr uint32_t rangeEnd(uint64_t v) { return static_cast<uint32_t>(v); }

} // namespace

struct ThreadPool::State {
  ThreadPoolOptions opts;
  int threads = 1;

  std::mutex runMu; // serialises run() callers
  std::mutex mu;
  std::condition_variable wake, done;
  std::vector<std::thread> workers;
  int started = 0; // workers whose onStart returned
  const std::function<void(int, int)> *fn = nullptr;
  int n = 0;
  int busy = 0;
  uint64_t generation = 0;
  bool stop = false;
  std::atomic<int> next{0};        // Schedule::Shared
  std::unique_ptr<Range[]> ranges; // Schedule::Stealing

  // Driver thread for submit().
  std::mutex driverMu;
  std::condition_variable driverWake;
  std::deque<std::packaged_task<void()>> jobs;
  std::thread driver;
  bool driverStop = false;

  void work(int t);
  void workShared(int t);
  void workStealing(int t);
  bool popFront(int t, int &task);
  bool steal(int t);
  void driverLoop();
};

namespace {
// The pool whose tasks the current thread is running, and its index there
// (nested run() calls run inline).
thread_local const void *tlsPool = nullptr;
thread_local int tlsThread = 0;

/// Marks the current thread as running tasks of `pool` as thread `t`.
struct ActiveScope {
  const void *outer = tlsPool;
  int outerThread = tlsThread;
  ActiveScope(const void *pool, int t) {
    tlsPool = pool;
    tlsThread = t;
  }
  ~ActiveScope() {
    tlsPool = outer;
    tlsThread = outerThread;
  }
};
} // namespace

void ThreadPool::State::work(int t) {
  ActiveScope scope(this, t);
  if (opts.schedule == Schedule::Shared)
    workShared(t);
  else
    workStealing(t);
}

void ThreadPool::State::workShared(int t) {
  for (;;) {
    int i = next.fetch_add(1, std::memory_order_relaxed);
    if (i >= n)
      return;
    (*fn)(i, t);
  }
}

bool ThreadPool::State::popFront(int t, int &task) {
  std::atomic<uint64_t> &r = ranges[t].v;
  uint64_t cur = r.load(std::memory_order_acquire);
  for (;;) {
    const uint32_t b = rangeBegin(cur), e = rangeEnd(cur);
    if (b >= e)
      return false;
    if (r.compare_exchange_weak(cur, pack(b + 1, e), std::memory_order_acq_rel,
                                std::memory_order_acquire)) {
      task = static_cast<int>(b);
      return true;
    }
  }
}

bool ThreadPool::State::steal(int t) {
  for (;;) {
    int victim = -1;
    uint32_t most = 0;
    uint64_t seen = 0;
    for (int k = 1; k < threads; ++k) { // start after t: spreads thieves
      const int v = (t + k) % threads;
      const uint64_t cur = ranges[v].v.load(std::memory_order_acquire);
      const uint32_t b = rangeBegin(cur), e = rangeEnd(cur);
      if (e > b && e - b > most) {
        most = e - b;
        victim = v;
        seen = cur;
      }
    }
    if (victim < 0)
      return false;
    const uint32_t b = rangeBegin(seen), e = rangeEnd(seen);
    const uint32_t mid = e - (e - b + 1) / 2; // take the upper half
    if (ranges[victim].v.compare_exchange_strong(seen, pack(b, mid),
                                                 std::memory_order_acq_rel,
                                                 std::memory_order_acquire)) {
      ranges[t].v.store(pack(mid, e), std::memory_order_release);
      return true;
    }
  }
}

void ThreadPool::State::workStealing(int t) {
  for (;;) {
    int i;
    while (popFront(t, i))
      (*fn)(i, t);
    if (!steal(t))
      return;
  }
}

void ThreadPool::State::driverLoop() {
  if (opts.onStart)
    opts.onStart(0);
  for (;;) {
    std::packaged_task<void()> job;
    {
      std::unique_lock<std::mutex> lock(driverMu);
      driverWake.wait(lock, [&] { return driverStop || !jobs.empty(); });
      if (jobs.empty())
        return; // stopping, queue drained
      job = std::move(jobs.front());
      jobs.pop_front();
    }
    job(); // stores the job's exception in its future
  }
}

ThreadPool::ThreadPool(int threads, ThreadPoolOptions opts)
    : threads_(std::max(1, threads)), state_(std::make_unique<State>()) {
  State *s = state_.get();
  s->opts = std::move(opts);
  s->threads = threads_;
  s->ranges = std::make_unique<Range[]>(threads_);
  if (s->opts.onStart && s->opts.hookCaller)
    s->opts.onStart(0);
  for (int t = 1; t < threads_; ++t)
    s->workers.emplace_back([s, t] {
      if (s->opts.onStart)
        s->opts.onStart(t);
      uint64_t seen = 0;
      {
        std::lock_guard<std::mutex> lock(s->mu);
        ++s->started;
      }
      s->done.notify_all();
      for (;;) {
        {
          std::unique_lock<std::mutex> lock(s->mu);
          s->wake.wait(lock, [&] { return s->stop || s->generation != seen; });
          if (s->stop)
            return;
          seen = s->generation;
        }
        s->work(t);
        std::lock_guard<std::mutex> lock(s->mu);
        if (--s->busy == 0)
          s->done.notify_all();
      }
    });
  std::unique_lock<std::mutex> lock(s->mu);
  s->done.wait(lock, [&] { return s->started == threads_ - 1; });
}

ThreadPool::~ThreadPool() {
  State *s = state_.get();
  {
    std::lock_guard<std::mutex> lock(s->driverMu);
    s->driverStop = true;
  }
  s->driverWake.notify_all();
  if (s->driver.joinable())
    s->driver.join();
  {
    std::lock_guard<std::mutex> lock(s->mu);
    s->stop = true;
  }
  s->wake.notify_all();
  for (auto &t : s->workers)
    t.join();
}

Schedule ThreadPool::schedule() const { return state_->opts.schedule; }

void ThreadPool::run(int n, const std::function<void(int, int)> &fn) {
  if (n <= 0)
    return;
  State *s = state_.get();
  if (tlsPool == s) { // nested: inline on this thread
    const int t = tlsThread;
    for (int i = 0; i < n; ++i)
      fn(i, t);
    return;
  }
  std::lock_guard<std::mutex> runLock(s->runMu);
  if (threads_ == 1 || n == 1) {
    ActiveScope scope(s, 0);
    for (int i = 0; i < n; ++i)
      fn(i, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(s->mu);
    s->fn = &fn;
    s->n = n;
    s->next.store(0, std::memory_order_relaxed);
    for (int t = 0; t < threads_; ++t) {
      const auto b = static_cast<uint32_t>(int64_t(n) * t / threads_);
      const auto e = static_cast<uint32_t>(int64_t(n) * (t + 1) / threads_);
      s->ranges[t].v.store(pack(b, e), std::memory_order_relaxed);
    }
    s->busy = threads_ - 1;
    ++s->generation;
  }
  s->wake.notify_all();
  s->work(0);
  std::unique_lock<std::mutex> lock(s->mu);
  s->done.wait(lock, [&] { return s->busy == 0; });
  s->fn = nullptr;
}

std::future<void> ThreadPool::submit(std::function<void()> job) {
  State *s = state_.get();
  std::packaged_task<void()> task(std::move(job));
  std::future<void> f = task.get_future();
  {
    std::lock_guard<std::mutex> lock(s->driverMu);
    s->jobs.push_back(std::move(task));
    if (!s->driver.joinable())
      s->driver = std::thread([s] { s->driverLoop(); });
  }
  s->driverWake.notify_one();
  return f;
}

} // namespace kt::kernels
