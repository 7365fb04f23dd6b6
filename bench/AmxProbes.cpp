//===- AmxProbes.cpp - How AMX tile products and tile loads overlap -------===//
//
// `amxprobe/...` benchmarks in kt-bench-moe: short tdpbf16ps / tileloadd
// loops on every thread, to tell why the panel micro-kernel (2 x 2 C tiles,
// 4 tile loads per 4 products, KernelsAmx.cpp) reaches about half of the
// register-tile peak even with its operands in L1:
//  * chains:N       N independent C tiles, products only (register operands):
//                   if the product's latency exceeds N x its issue interval,
//                   fewer chains run slower;
//  * loads/<contig|strided>  tileloadd alone (1 KiB contiguous, or 16 rows
//                   4160 bytes apart as in a token panel);
//  * chains:3/loads:L  3 chains plus L loads into a tile no product reads
//                   (do loads steal product time?);
//  * pattern:2x2    the micro-kernel's loop on L1-resident operands.
// Counters: ns_per_iter (one loop iteration on one thread), TFLOPS (all
// threads, 16 x 16 x 32 multiply-adds per product).
//
//===----------------------------------------------------------------------===//

#include "kt/Runtime/Kernels/Moe.h"
#include "kt/Runtime/Kernels/ThreadPool.h"

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

using namespace kt::kernels;

namespace {

constexpr long kIters = 200'000;
constexpr long kStrided = 4160; // a token panel's row stride (2048 bf16 + 64)

struct alignas(64) ProbeConfig {
  uint8_t palette = 1, startRow = 0, reserved[14] = {};
  uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};

// Operands: %0 strided base (rows kStrided apart), %1 / %2 two contiguous
// 1 KiB tiles, %3 = kStrided, %4 = 64.
#define KT_P(...)                                                              \
  __asm__ volatile(__VA_ARGS__ ::"r"(a), "r"(b), "r"(b + 1024), "r"(kStrided), \
                   "r"(64L)                                                    \
                   : "memory")
#define KT_TDP(c, x, y) "tdpbf16ps %%tmm" #y ", %%tmm" #x ", %%tmm" #c "\n\t"
#define KT_LDA(t) "tileloadd (%0,%3,1), %%tmm" #t "\n\t"
#define KT_LDB(t, base) "tileloadd (" base ",%4,1), %%tmm" #t "\n\t"

enum class Probe {
  Chains1,
  Chains2,
  Chains3,
  Chains4,
  Chains5,
  Chains6,
  LoadsContig,
  LoadsStrided,
  Chains3Loads1,
  Chains3Loads3,
  Pattern2x2
};

struct ProbeInfo {
  const char *name;
  Probe probe;
  int products; // per iteration
};

const ProbeInfo kProbes[] = {
    {"chains:1", Probe::Chains1, 1},
    {"chains:2", Probe::Chains2, 2},
    {"chains:3", Probe::Chains3, 3},
    {"chains:4", Probe::Chains4, 4},
    {"chains:5", Probe::Chains5, 5},
    {"chains:6", Probe::Chains6, 6},
    {"loads/contig", Probe::LoadsContig, 0},
    {"loads/strided", Probe::LoadsStrided, 0},
    {"chains:3/loads:1", Probe::Chains3Loads1, 3},
    {"chains:3/loads:3", Probe::Chains3Loads3, 3},
    {"pattern:2x2", Probe::Pattern2x2, 4},
};

__attribute__((target("amx-tile,amx-bf16"))) void
probeLoop(Probe p, const char *a, const char *b) {
  static const ProbeConfig cfg;
  __asm__ volatile("ldtilecfg %0" ::"m"(cfg) : "memory");
  KT_P(KT_LDB(0, "%1") KT_LDB(1, "%1") KT_LDB(2, "%1") KT_LDB(3, "%1")
           KT_LDB(4, "%1") KT_LDB(5, "%1") KT_LDB(6, "%1") KT_LDB(7, "%1"));
  for (long i = 0; i < kIters; ++i) {
    switch (p) {
    case Probe::Chains1:
      KT_P(KT_TDP(0, 6, 7));
      break;
    case Probe::Chains2:
      KT_P(KT_TDP(0, 6, 7) KT_TDP(1, 6, 7));
      break;
    case Probe::Chains3:
      KT_P(KT_TDP(0, 6, 7) KT_TDP(1, 6, 7) KT_TDP(2, 6, 7));
      break;
    case Probe::Chains4:
      KT_P(KT_TDP(0, 6, 7) KT_TDP(1, 6, 7) KT_TDP(2, 6, 7) KT_TDP(3, 6, 7));
      break;
    case Probe::Chains5:
      KT_P(KT_TDP(0, 6, 7) KT_TDP(1, 6, 7) KT_TDP(2, 6, 7) KT_TDP(3, 6, 7)
               KT_TDP(4, 6, 7));
      break;
    case Probe::Chains6:
      KT_P(KT_TDP(0, 6, 7) KT_TDP(1, 6, 7) KT_TDP(2, 6, 7) KT_TDP(3, 6, 7)
               KT_TDP(4, 6, 7) KT_TDP(5, 6, 7));
      break;
    case Probe::LoadsContig:
      KT_P(KT_LDB(7, "%1") KT_LDB(6, "%2") KT_LDB(5, "%1") KT_LDB(4, "%2"));
      break;
    case Probe::LoadsStrided:
      KT_P(KT_LDA(7) KT_LDA(6) KT_LDA(5) KT_LDA(4));
      break;
    case Probe::Chains3Loads1:
      KT_P(KT_TDP(0, 5, 6) KT_TDP(1, 5, 6) KT_TDP(2, 5, 6) KT_LDB(7, "%1"));
      break;
    case Probe::Chains3Loads3:
      KT_P(KT_TDP(0, 5, 6) KT_LDB(7, "%1") KT_TDP(1, 5, 6) KT_LDA(7)
               KT_TDP(2, 5, 6) KT_LDB(7, "%2"));
      break;
    case Probe::Pattern2x2: // B0, A0, B1, A1 then the four products
      KT_P(KT_LDB(6, "%1") KT_LDA(4) KT_LDB(7, "%2") KT_LDA(5) KT_TDP(0, 4, 6)
               KT_TDP(1, 4, 7) KT_TDP(2, 5, 6) KT_TDP(3, 5, 7));
      break;
    }
  }
}

void BM_AmxProbe(benchmark::State &state, ProbeInfo info) {
  if (!pathSupported(KernelPath::AMX, WeightFormat::BF16)) {
    state.SkipWithError(
        missingFeature(KernelPath::AMX, WeightFormat::BF16).c_str());
    return;
  }
  int threads = std::max(1u, std::thread::hardware_concurrency());
  if (const char *e = std::getenv("KT_BENCH_THREADS"))
    threads = std::max(1, std::atoi(e));
  ThreadPool pool(threads);
  double best = 1e30;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    pool.run(threads, [&](int, int) {
      // bf16 0.75 everywhere: no zeros or denormals.
      std::vector<uint16_t> buf((16 * kStrided + 4096) / 2, 0x3f40);
      const char *a = reinterpret_cast<const char *>(
          (reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t(63));
      probeLoop(info.probe, a, a + 16 * kStrided);
    });
    const double t =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    state.SetIterationTime(t);
    best = std::min(best, t);
  }
  state.counters["ns_per_iter"] = best / kIters * 1e9;
  state.counters["TFLOPS"] =
      info.products * 16.0 * 16 * 32 * 2 * kIters * threads / best / 1e12;
  state.counters["threads"] = threads;
}

const int kRegistered = [] {
  for (const ProbeInfo &p : kProbes)
    benchmark::RegisterBenchmark((std::string("amxprobe/") + p.name).c_str(),
                                 BM_AmxProbe, p)
        ->Iterations(5)
        ->UseManualTime();
  return 0;
}();

} // namespace
