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
// Wake-up: run() writes fn, n and the ranges, then bumps the atomic
// generation (release); a worker that sees the new generation (acquire) sees
// them. Completion: each worker decrements the atomic busy counter; the
// caller sees 0 (acquire) after every worker's tasks. Both sides first poll
// for spinMicros, then sleep on a condition variable. A sleeper announces
// itself (sleepers, callerSleeping) with a seq_cst write under mu before its
// last seq_cst check of the condition; the other side makes the condition
// true with a seq_cst RMW and then reads the announcement (seq_cst). In the
// single total order of these operations one of the two comes first, so
// either the sleeper sees the condition or the waker sees the sleeper, and
// then takes mu (the sleeper holds mu from its announcement until it waits)
// and notifies: no lost wake-up, and no lock when nobody sleeps.
//
//===----------------------------------------------------------------------===//

#include "kt/Runtime/Kernels/ThreadPool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
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

/// A spin-wait hint to the CPU (lets the sibling hyperthread run, saves
/// power, avoids the memory-order flush when the polled line changes).
inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Spinning: a gap between two looks at the clock (64 polls, a few
/// microseconds) longer than this means the spinner was descheduled ...
constexpr int64_t kPreemptedNs = 50'000;
/// ... and the pool then does not spin for this long.
constexpr int64_t kQuietNs = 100'000'000;

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

} // namespace

struct ThreadPool::State {
  ThreadPoolOptions opts;
  int threads = 1;

  std::mutex runMu; // serialises run() callers
  std::mutex mu;
  std::condition_variable wake, done;
  std::vector<std::thread> workers;
  int started = 0; // workers whose onStart returned (under mu)
  // The current run; written by run() before it bumps the generation.
  const std::function<void(int, int)> *fn = nullptr;
  int n = 0;
  alignas(64) std::atomic<int> next{0}; // Schedule::Shared (own line)
  std::unique_ptr<Range[]> ranges; // Schedule::Stealing

  // Polled by the spinning workers / the spinning caller: one line each.
  alignas(64) std::atomic<uint64_t> generation{0}; // bumped per run and stop
  alignas(64) std::atomic<int> busy{0};     // workers still in the current run
  alignas(64) std::atomic<int> sleepers{0}; // workers asleep on wake (mu)
  std::atomic<bool> callerSleeping{false};  // run() asleep on done (mu)
  std::atomic<bool> stop{false};
  std::chrono::nanoseconds spinBudget{0}; // 0 when oversubscribed
  std::atomic<int64_t> quietUntil{0};     // nowNs() to spin again; 0: now

  // Driver thread for submit().
  std::mutex driverMu;
  std::condition_variable driverWake;
  std::deque<std::packaged_task<void()>> jobs;
  std::thread driver;
  bool driverStop = false;

  bool spinAllowed();
  template <class Ready> bool spinUntil(Ready ready);
  void publish();
  uint64_t waitForRun(uint64_t seen);
  void finishRun();
  void waitForWorkers();
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

/// Whether waits spin now: a budget, and no preemption seen lately.
bool ThreadPool::State::spinAllowed() {
  if (spinBudget.count() <= 0)
    return false;
  int64_t quiet = quietUntil.load(std::memory_order_relaxed);
  if (quiet == 0)
    return true;
  if (nowNs() < quiet)
    return false;
  quietUntil.compare_exchange_strong(quiet, 0, std::memory_order_relaxed);
  return true;
}

/// Polls ready() with the CPU's pause hint until it holds (true) or the
/// spin budget is spent (false). Looks at the clock every 64 polls only, so
/// a wait shorter than that never reads it; the budget starts at the first
/// look. Two looks more than kPreemptedNs apart mean the OS took the core
/// away: the machine has more runnable threads than cores, where spinning
/// competes with the very threads we wait for and loses the scheduler's
/// preference for threads that wake from sleep (a run of 16 tasks on the
/// 2-core VM with three busy processes took 0.1 to 1.4 ms instead of
/// 50 us). Then this wait stops spinning and no wait of the pool spins
/// for kQuietNs.
template <class Ready> bool ThreadPool::State::spinUntil(Ready ready) {
  if (!spinAllowed())
    return ready();
  int64_t deadline = 0, last = 0;
  for (unsigned i = 1;; ++i) {
    if (ready())
      return true;
    if (i % 64 != 0) {
      cpuRelax();
      continue;
    }
    const int64_t now = nowNs();
    if (i == 64) {
      deadline = now + spinBudget.count();
    } else if (now - last > kPreemptedNs) {
      quietUntil.store(now + kQuietNs, std::memory_order_relaxed);
      return ready();
    } else if (now >= deadline) {
      return ready();
    }
    last = now;
  }
}

/// Starts a new generation (a run, or stop): the writes before it are
/// visible to the workers that see it. Wakes the sleeping workers.
void ThreadPool::State::publish() {
  generation.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers.load(std::memory_order_seq_cst) > 0) {
    // A sleeper holds mu from its announcement until it waits.
    { std::lock_guard<std::mutex> lock(mu); }
    wake.notify_all();
  }
}

/// In a worker: waits until the generation differs from `seen`, spinning
/// first; returns the new generation.
uint64_t ThreadPool::State::waitForRun(uint64_t seen) {
  uint64_t g = seen;
  if (spinUntil([&] {
        g = generation.load(std::memory_order_acquire);
        return g != seen;
      }))
    return g;
  std::unique_lock<std::mutex> lock(mu);
  sleepers.fetch_add(1, std::memory_order_seq_cst);
  wake.wait(lock, [&] {
    g = generation.load(std::memory_order_seq_cst);
    return g != seen;
  });
  sleepers.fetch_sub(1, std::memory_order_relaxed);
  return g;
}

/// In a worker, after its last task of the run: the last one out wakes
/// the caller if it sleeps. Touches nothing of the run (fn may be gone).
void ThreadPool::State::finishRun() {
  if (busy.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
      callerSleeping.load(std::memory_order_seq_cst)) {
    { std::lock_guard<std::mutex> lock(mu); }
    done.notify_one();
  }
}

/// In run()'s caller: waits until every worker finished the run.
void ThreadPool::State::waitForWorkers() {
  if (spinUntil([&] { return busy.load(std::memory_order_acquire) == 0; }))
    return;
  std::unique_lock<std::mutex> lock(mu);
  callerSleeping.store(true, std::memory_order_seq_cst);
  done.wait(lock, [&] { return busy.load(std::memory_order_seq_cst) == 0; });
  callerSleeping.store(false, std::memory_order_relaxed);
}

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
  const unsigned hw = std::thread::hardware_concurrency();
  if (hw == 0 || static_cast<unsigned>(threads_) <= hw)
    s->spinBudget = std::chrono::microseconds(std::max(0, s->opts.spinMicros));
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
        seen = s->waitForRun(seen);
        if (s->stop.load(std::memory_order_relaxed)) // ordered by generation
          return;
        s->work(t);
        s->finishRun();
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
  // A new generation with stop set: spinning workers see it at their next
  // poll, sleeping ones are woken.
  s->stop.store(true, std::memory_order_relaxed);
  s->publish();
  for (auto &t : s->workers)
    t.join();
}

Schedule ThreadPool::schedule() const { return state_->opts.schedule; }
int ThreadPool::spinMicros() const { return state_->opts.spinMicros; }

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
  // Every worker finished the last run (busy is 0) and waits for the next
  // generation, which publishes these writes.
  s->fn = &fn;
  s->n = n;
  s->next.store(0, std::memory_order_relaxed);
  for (int t = 0; t < threads_; ++t) {
    const auto b = static_cast<uint32_t>(int64_t(n) * t / threads_);
    const auto e = static_cast<uint32_t>(int64_t(n) * (t + 1) / threads_);
    s->ranges[t].v.store(pack(b, e), std::memory_order_relaxed);
  }
  s->busy.store(threads_ - 1, std::memory_order_relaxed);
  s->publish();
  s->work(0);
  s->waitForWorkers();
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
