//===- ThreadPool.h - Fork-join pool with work stealing ---------*- C++ -*-===//
//
// A pool of std::threads for the CPU kernels. run(n, fn) calls fn(task,
// thread) for every task in [0, n) on the calling thread (index 0) and the
// workers (1 .. size() - 1), and returns when all are done. Tasks are
// scheduled by work stealing: each thread starts on its own contiguous range
// of task indices (neighbouring tasks, e.g. column blocks of one expert,
// share data) and, when it runs dry, takes half of the largest range left.
// submit() runs a job on the pool's driver thread, so the caller can do
// other work meanwhile. Between runs the threads spin for a bounded time
// (ThreadPoolOptions::spinMicros) before sleeping, so a run that follows
// soon after the last one starts and finishes without a kernel wake-up.
// docs/kernels.md ("Thread pool") describes the policy.
//
//===----------------------------------------------------------------------===//
#ifndef KT_RUNTIME_KERNELS_THREADPOOL_H
#define KT_RUNTIME_KERNELS_THREADPOOL_H

#include <functional>
#include <future>
#include <memory>

namespace kt::kernels {

/// How run() hands out task indices.
enum class Schedule {
  /// Per-thread contiguous ranges; idle threads steal half of the largest
  /// remaining range (the default).
  Stealing,
  /// One shared atomic counter (the first version; kept for comparison in
  /// bench_moe).
  Shared
};

struct ThreadPoolOptions {
  /// Called once in each thread with its index before it runs any task:
  /// in every worker (1 .. threads - 1) and, when `hookCaller`, in the
  /// constructing thread with index 0; also in the driver thread (index 0)
  /// when submit() first starts it. The constructor returns after all the
  /// workers' calls have returned, so e.g. pinning is in place before the
  /// first task. Must not throw.
  std::function<void(int)> onStart;
  /// Also call onStart(0) in the constructing thread (the thread expected to
  /// call run()).
  bool hookCaller = true;
  Schedule schedule = Schedule::Stealing;
  /// Spin budget in microseconds (0: never spin). A worker that finished a
  /// run polls for the next one this long (with the CPU's pause hint)
  /// before it sleeps on a condition variable, and run()'s caller polls
  /// this long for the workers to finish before it sleeps, so back-to-back
  /// runs skip the kernel's wake-ups. A pool with more threads than
  /// std::thread::hardware_concurrency() never spins (its threads share
  /// cores: a spinner would keep a working thread off its core), and a pool
  /// whose spinning thread was descheduled (a machine loaded by other
  /// processes) stops spinning for 100 ms.
  int spinMicros = 200;
};

class ThreadPool {
public:
  explicit ThreadPool(int threads, ThreadPoolOptions opts = {});
  /// Finishes the jobs already submitted, then stops the threads.
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  int size() const { return threads_; }
  Schedule schedule() const;
  /// ThreadPoolOptions::spinMicros as given.
  int spinMicros() const;

  /// fn(task, threadIndex) for every task in [0, n), each exactly once;
  /// returns when all are done. Calls from different threads are
  /// serialised (they never share the workers). A call from inside one of
  /// this pool's tasks runs its tasks inline on that thread, with that
  /// thread's index. fn must not throw.
  void run(int n, const std::function<void(int, int)> &fn);

  /// Runs job() on this pool's driver thread (started on first use), which
  /// may call run() as thread 0 while the caller continues. Jobs run one at
  /// a time in submission order; the future rethrows the job's exception.
  /// Whatever the job reads must stay valid until the future is ready.
  std::future<void> submit(std::function<void()> job);

private:
  struct State;
  int threads_;
  std::unique_ptr<State> state_;
};

} // namespace kt::kernels

#endif // KT_RUNTIME_KERNELS_THREADPOOL_H
