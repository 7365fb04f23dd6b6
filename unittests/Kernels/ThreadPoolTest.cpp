//===- ThreadPoolTest.cpp - work stealing, hooks, nesting, submit ---------===//
//
// Properties of the pool whatever the scheduling of the OS: every task runs
// exactly once (balanced and heavily imbalanced costs, n below and far
// above the thread count), a blocked task does not hold back the rest of
// its thread's range (it is stolen), nested run() calls run inline,
// concurrent callers never share the workers, the start hook runs once per
// thread before any task, submitted jobs run on the driver thread and
// their exceptions reach the future. The wake-up (spin, then sleep): many
// back-to-back runs each run every task once, workers and caller that went
// to sleep (waits longer than the spin budget) are woken, no spinning
// (spinMicros 0) and oversubscribed pools work, the destructor stops
// spinning workers. A lost wake-up hangs run(): those tests run under a
// one-minute watchdog, so it fails them instead.
//
//===----------------------------------------------------------------------===//

#include "kt/Runtime/Kernels/ThreadPool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

using namespace kt::kernels;

namespace {

const char *name(Schedule s) {
  return s == Schedule::Stealing ? "stealing" : "shared";
}

ThreadPoolOptions withSchedule(Schedule s) {
  ThreadPoolOptions o;
  o.schedule = s;
  return o;
}

ThreadPoolOptions withSpin(Schedule s, int spinMicros) {
  ThreadPoolOptions o;
  o.schedule = s;
  o.spinMicros = spinMicros;
  return o;
}

/// Runs body on a thread of its own; fails the test if it has not returned
/// within a minute (a lost wake-up leaves run() waiting forever) and then
/// leaves it hung rather than the test binary. body must own everything it
/// uses.
void finishesWithinAMinute(std::function<void()> body) {
  std::packaged_task<void()> task(std::move(body));
  std::future<void> f = task.get_future();
  std::thread t(std::move(task));
  if (f.wait_for(std::chrono::minutes(1)) != std::future_status::ready) {
    t.detach();
    FAIL() << "did not finish within a minute: lost wake-up?";
  }
  t.join();
  f.get();
}

/// A few microseconds of work the compiler cannot drop.
void spin(int iters) {
  volatile unsigned x = 1;
  for (int i = 0; i < iters; ++i)
    x = x * 1664525u + 1013904223u;
}

class EveryTaskOnce : public testing::TestWithParam<std::tuple<Schedule, int>> {
};

TEST_P(EveryTaskOnce, ForAnyTaskCount) {
  auto [sched, threads] = GetParam();
  ThreadPool pool(threads, withSchedule(sched));
  ASSERT_EQ(pool.size(), threads);
  for (int n :
       {0, 1, 2, 3, threads - 1, threads, threads + 1, 7, 64, 1000, 100000}) {
    std::vector<std::atomic<int>> count(std::max(n, 1));
    std::atomic<int> badThread{0};
    pool.run(n, [&](int task, int thread) {
      count[task].fetch_add(1, std::memory_order_relaxed);
      if (thread < 0 || thread >= threads)
        badThread = 1;
    });
    for (int i = 0; i < n; ++i)
      ASSERT_EQ(count[i].load(), 1) << "task " << i << " of " << n;
    EXPECT_EQ(badThread.load(), 0);
  }
}

TEST_P(EveryTaskOnce, ImbalancedCosts) {
  auto [sched, threads] = GetParam();
  ThreadPool pool(threads, withSchedule(sched));
  for (int n : {threads, 5 * threads + 3, 500}) {
    // The first eighth (thread 0's range) costs ~1000x more, and every
    // 17th task is heavy too.
    std::vector<std::atomic<int>> count(n);
    pool.run(n, [&](int task, int) {
      spin(task < n / 8 || task % 17 == 0 ? 200000 : 200);
      count[task].fetch_add(1, std::memory_order_relaxed);
    });
    for (int i = 0; i < n; ++i)
      ASSERT_EQ(count[i].load(), 1) << "task " << i << " of " << n;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Pools, EveryTaskOnce,
    testing::Combine(testing::Values(Schedule::Stealing, Schedule::Shared),
                     testing::Values(1, 2, 3, 5, 8)),
    [](const auto &info) {
      return std::string(name(std::get<0>(info.param))) + "_" +
             std::to_string(std::get<1>(info.param)) + "_threads";
    });

/// Task 0 (thread 0's first) blocks until every other task has run. With a
/// static partition the rest of thread 0's range [1, n/3) would wait
/// behind it; stealing must hand those tasks to the other threads. A
/// deadlock shows as a timeout (30 s), not a hang.
TEST(ThreadPool, BlockedTaskDoesNotHoldBackItsRange) {
  for (Schedule sched : {Schedule::Stealing, Schedule::Shared}) {
    ThreadPool pool(3, withSchedule(sched));
    const int n = 60;
    std::mutex mu;
    std::condition_variable cv;
    int done = 0;
    bool timedOut = false;
    std::vector<std::atomic<int>> count(n);
    pool.run(n, [&](int task, int) {
      if (task == 0) {
        std::unique_lock<std::mutex> lock(mu);
        timedOut = !cv.wait_for(lock, std::chrono::seconds(30),
                                [&] { return done == n - 1; });
      } else {
        std::lock_guard<std::mutex> lock(mu);
        ++done;
        cv.notify_all();
      }
      count[task].fetch_add(1);
    });
    EXPECT_FALSE(timedOut) << name(sched);
    for (int i = 0; i < n; ++i)
      EXPECT_EQ(count[i].load(), 1) << name(sched) << " task " << i;
  }
}

/// Many consecutive runs of a few tasks, 0 to ~4 us apart: with a 1 us
/// budget the workers are often just between spinning and sleeping when
/// the next generation is published. A worker that misses one hangs the
/// run; a caller that returns early finds tasks not yet run.
class BackToBackRuns
    : public testing::TestWithParam<std::tuple<Schedule, int, int>> {};

TEST_P(BackToBackRuns, EveryTaskOnceInEveryRun) {
  auto [sched, threads, spinMicros] = GetParam();
  finishesWithinAMinute([sched, threads, spinMicros] {
    ThreadPool pool(threads, withSpin(sched, spinMicros));
    const int runs = threads > 4 ? 2000 : 10000, maxN = 2 * threads + 1;
    std::vector<std::atomic<int>> count(maxN);
    std::atomic<int> badThread{0};
    for (int r = 0; r < runs; ++r) {
      const int n = 2 + r % (maxN - 1);
      for (int i = 0; i < n; ++i)
        count[i].store(0, std::memory_order_relaxed);
      pool.run(n, [&](int task, int thread) {
        count[task].fetch_add(1, std::memory_order_relaxed);
        if (thread < 0 || thread >= threads)
          badThread = 1;
      });
      for (int i = 0; i < n; ++i)
        ASSERT_EQ(count[i].load(std::memory_order_relaxed), 1)
            << "run " << r << ", task " << i << " of " << n;
      spin(r % 8 * 300);
    }
    EXPECT_EQ(badThread.load(), 0);
  });
}

INSTANTIATE_TEST_SUITE_P(
    ThreadPool, BackToBackRuns,
    testing::Combine(testing::Values(Schedule::Stealing, Schedule::Shared),
                     testing::Values(2, 3, 8), testing::Values(0, 1, 200)),
    [](const auto &info) {
      return std::string(name(std::get<0>(info.param))) + "_" +
             std::to_string(std::get<1>(info.param)) + "_threads_spin_" +
             std::to_string(std::get<2>(info.param));
    });

/// Tasks that each wait (up to 30 s) until `n` of them have arrived;
/// timedOut counts the waits that gave up.
struct Rendezvous {
  explicit Rendezvous(int n) : n(n) {}
  void arrive() {
    std::unique_lock<std::mutex> lock(mu);
    ++arrived;
    cv.notify_all();
    if (!cv.wait_for(lock, std::chrono::seconds(30),
                     [&] { return arrived == n; }))
      timedOut.fetch_add(1);
  }
  const int n;
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  std::atomic<int> timedOut{0};
};

/// Runs `threads` tasks that each wait until all of them have started: only
/// possible when every worker took part. Between runs the test sleeps
/// longer than the spin budget, so the workers are asleep and must be
/// woken.
TEST(ThreadPool, WorkersAsleepAreWoken) {
  for (Schedule sched : {Schedule::Stealing, Schedule::Shared})
    for (int threads : {2, 3})
      for (int spinMicros : {0, 50, 200})
        finishesWithinAMinute([=] {
          ThreadPool pool(threads, withSpin(sched, spinMicros));
          for (int rep = 0; rep < 6; ++rep) {
            std::this_thread::sleep_for(std::chrono::milliseconds(3));
            Rendezvous all(threads);
            std::vector<std::atomic<int>> count(threads);
            pool.run(threads, [&](int task, int) {
              all.arrive();
              count[task].fetch_add(1);
            });
            ASSERT_EQ(all.timedOut.load(), 0)
                << name(sched) << ", " << threads << " threads, spin "
                << spinMicros << ", rep " << rep;
            for (int i = 0; i < threads; ++i)
              ASSERT_EQ(count[i].load(), 1);
          }
        });
}

/// One task per thread; once all have started (so every thread holds one),
/// the workers' tasks outlast the caller's spin budget: the caller sleeps
/// and the last worker must wake it.
TEST(ThreadPool, CallerAsleepIsWoken) {
  for (Schedule sched : {Schedule::Stealing, Schedule::Shared})
    for (int threads : {2, 3})
      for (int spinMicros : {0, 50})
        finishesWithinAMinute([=] {
          ThreadPool pool(threads, withSpin(sched, spinMicros));
          for (int rep = 0; rep < 10; ++rep) {
            Rendezvous all(threads);
            std::vector<std::atomic<int>> count(threads);
            pool.run(threads, [&](int task, int thread) {
              all.arrive();
              if (thread != 0)
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
              count[task].fetch_add(1);
            });
            ASSERT_EQ(all.timedOut.load(), 0);
            for (int i = 0; i < threads; ++i)
              ASSERT_EQ(count[i].load(), 1) << name(sched) << " task " << i;
          }
        });
}

/// Four threads per hardware thread (8 on a 2-core machine), default
/// options: runs with some work complete, every task once.
TEST(ThreadPool, OversubscribedPoolCompletesRuns) {
  const int threads =
      4 * std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  for (Schedule sched : {Schedule::Stealing, Schedule::Shared})
    finishesWithinAMinute([=] {
      ThreadPool pool(threads, withSchedule(sched));
      for (int rep = 0; rep < 300; ++rep) {
        const int n = 3 * threads + rep % 7;
        std::vector<std::atomic<int>> count(n);
        pool.run(n, [&](int task, int) {
          spin(rep % 3 == 0 ? 0 : 2000);
          count[task].fetch_add(1, std::memory_order_relaxed);
        });
        for (int i = 0; i < n; ++i)
          ASSERT_EQ(count[i].load(), 1) << name(sched) << " rep " << rep;
      }
    });
}

/// With a ten-minute spin budget the workers are spinning when the pool is
/// destroyed (right after construction or after a run): the destructor
/// must stop them, not wait for the budget to run out.
TEST(ThreadPool, DestructorStopsSpinningWorkers) {
  for (int threads : {2, 3})
    finishesWithinAMinute([threads] {
      for (int rep = 0; rep < 10; ++rep) {
        ThreadPool pool(threads, withSpin(Schedule::Stealing, 600'000'000));
        std::atomic<int> ran{0};
        if (rep % 2)
          pool.run(4 * threads, [&](int, int) { ran.fetch_add(1); });
        EXPECT_EQ(ran.load(), rep % 2 ? 4 * threads : 0);
      }
    });
}

TEST(ThreadPool, NestedRunRunsInline) {
  ThreadPool pool(3);
  const int outer = 12, inner = 7;
  std::vector<std::atomic<int>> count(outer * inner);
  std::atomic<int> wrongThread{0};
  pool.run(outer, [&](int o, int thread) {
    const auto id = std::this_thread::get_id();
    pool.run(inner, [&](int i, int t) {
      if (t != thread || std::this_thread::get_id() != id)
        wrongThread = 1;
      count[o * inner + i].fetch_add(1);
    });
  });
  for (auto &c : count)
    EXPECT_EQ(c.load(), 1);
  EXPECT_EQ(wrongThread.load(), 0);
}

/// Each caller counts the tasks its current run() has finished. While a
/// task of caller c runs, every other caller's run is either not started
/// (0) or complete (n): runs never overlap.
TEST(ThreadPool, ConcurrentCallersAreSerialised) {
  for (Schedule sched : {Schedule::Stealing, Schedule::Shared}) {
    ThreadPool pool(3, withSchedule(sched));
    const int callers = 4, reps = 30, n = 40;
    std::vector<std::atomic<int>> doneInRun(callers);
    std::atomic<int> overlaps{0}, total{0};
    std::vector<std::thread> ts;
    for (int c = 0; c < callers; ++c)
      ts.emplace_back([&, c] {
        for (int r = 0; r < reps; ++r) {
          doneInRun[c] = 0;
          pool.run(n, [&](int, int) {
            for (int d = 0; d < callers; ++d) {
              if (d == c)
                continue;
              const int v = doneInRun[d].load();
              if (v != 0 && v != n)
                overlaps.fetch_add(1);
            }
            spin(2000);
            doneInRun[c].fetch_add(1);
            total.fetch_add(1);
          });
          EXPECT_EQ(doneInRun[c].load(), n);
        }
      });
    for (auto &t : ts)
      t.join();
    EXPECT_EQ(overlaps.load(), 0) << name(sched);
    EXPECT_EQ(total.load(), callers * reps * n) << name(sched);
  }
}

struct HookLog {
  std::mutex mu;
  std::vector<std::pair<int, std::thread::id>> calls;
  void operator()(int t) {
    std::lock_guard<std::mutex> lock(mu);
    calls.push_back({t, std::this_thread::get_id()});
  }
};

TEST(ThreadPool, StartHookOncePerThread) {
  HookLog log;
  ThreadPoolOptions o;
  o.onStart = [&](int t) { log(t); };
  ThreadPool pool(4, o);
  // The constructor returned: every thread's hook has run, once.
  std::map<int, std::thread::id> idOf;
  {
    std::lock_guard<std::mutex> lock(log.mu);
    ASSERT_EQ(log.calls.size(), 4u);
    for (auto [t, id] : log.calls) {
      EXPECT_TRUE(idOf.emplace(t, id).second) << "index " << t << " twice";
    }
  }
  ASSERT_EQ(idOf.size(), 4u);
  EXPECT_EQ(idOf[0], std::this_thread::get_id());
  std::set<std::thread::id> distinct;
  for (auto [t, id] : idOf)
    distinct.insert(id);
  EXPECT_EQ(distinct.size(), 4u);
  // Tasks run on the threads the hook saw, under the same index.
  std::atomic<int> mismatches{0};
  for (int rep = 0; rep < 20; ++rep)
    pool.run(64, [&](int, int t) {
      if (std::this_thread::get_id() != idOf.at(t))
        mismatches.fetch_add(1);
      spin(1000);
    });
  EXPECT_EQ(mismatches.load(), 0);
  // submit() starts the driver thread: the hook runs there with index 0,
  // once, and the job's run() uses it as thread 0.
  std::thread::id driverId;
  for (int i = 0; i < 3; ++i)
    pool.submit([&] {
          driverId = std::this_thread::get_id();
          pool.run(8, [&](int, int t) {
            if (t == 0 && std::this_thread::get_id() != driverId)
              mismatches.fetch_add(1);
          });
        })
        .get();
  EXPECT_EQ(mismatches.load(), 0);
  std::lock_guard<std::mutex> lock(log.mu);
  ASSERT_EQ(log.calls.size(), 5u);
  EXPECT_EQ(log.calls.back().first, 0);
  EXPECT_EQ(log.calls.back().second, driverId);
  EXPECT_NE(driverId, std::this_thread::get_id());
}

TEST(ThreadPool, HookCallerOff) {
  HookLog log;
  ThreadPoolOptions o;
  o.onStart = [&](int t) { log(t); };
  o.hookCaller = false;
  ThreadPool pool(3, o);
  std::lock_guard<std::mutex> lock(log.mu);
  ASSERT_EQ(log.calls.size(), 2u);
  for (auto [t, id] : log.calls) {
    EXPECT_NE(t, 0);
    EXPECT_NE(id, std::this_thread::get_id());
  }
}

TEST(ThreadPool, SubmitRunsInOrderAndRethrows) {
  ThreadPool pool(2);
  std::vector<int> order;
  std::vector<std::future<void>> fs;
  for (int i = 0; i < 5; ++i)
    fs.push_back(pool.submit([&order, i] { order.push_back(i); }));
  auto bad = pool.submit([] { throw std::runtime_error("job failed"); });
  for (auto &f : fs)
    f.get();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_THROW(bad.get(), std::runtime_error);
  // The driver survives a failed job.
  int after = 0;
  pool.submit([&] { after = 1; }).get();
  EXPECT_EQ(after, 1);
}

TEST(ThreadPool, DestructorFinishesSubmittedJobs) {
  std::atomic<int> ran{0};
  {
    ThreadPool pool(2);
    for (int i = 0; i < 4; ++i)
      pool.submit([&] {
        spin(20000);
        ran.fetch_add(1);
      });
  }
  EXPECT_EQ(ran.load(), 4);
}

} // namespace
