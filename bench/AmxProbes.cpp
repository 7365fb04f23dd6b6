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
//  * pattern:2x2    the micro-kernel's loop on L1-resident operands;
//  * pattern:2x2/prefetch  plus the micro-kernel's 64 prefetcht0 per chunk
//                   (of lines already in L1);
//  * pattern:2x2/spread  the same loads and products, each load placed just
//                   after the last product that reads its tile's old value;
//  * avx:N, pattern:2x2/avx:N  N vdpbf16ps (AVX512-BF16, register operands,
//                   16 accumulators) alone and inside the 2 x 2 loop: do the
//                   vector units run while the tile unit works?
//  * pattern:2x2/avxmem:T  the 2 x 2 loop plus T more tokens against both B
//                   tiles on the vector units (B rows loaded from L1, the
//                   token's bf16 pairs broadcast), as a hybrid kernel would.
// Counters: ns_per_iter (one loop iteration on one thread), TFLOPS (all
// threads, 16 x 16 x 32 multiply-adds per product).
//
//===----------------------------------------------------------------------===//

#include "kt/Runtime/Kernels/Moe.h"
#include "kt/Runtime/Kernels/ThreadPool.h"

#include <benchmark/benchmark.h>
#include <immintrin.h>

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
  Pattern2x2,
  Pattern2x2Spread,
  Pattern2x2Prefetch,
  Avx32,
  Avx64,
  Pattern2x2Avx32,
  Pattern2x2Avx64,
  Pattern2x2Avx128,
  AvxMem4,
  Pattern2x2AvxMem4,
  Pattern2x2AvxMem8
};

struct ProbeInfo {
  const char *name;
  Probe probe;
  int products; // per iteration
  int vectorDots; // vdpbf16ps per iteration (16 x 2 multiply-adds each)
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
    {"pattern:2x2/spread", Probe::Pattern2x2Spread, 4},
    {"pattern:2x2/prefetch", Probe::Pattern2x2Prefetch, 4},
    {"avx:32", Probe::Avx32, 0, 32},
    {"avx:64", Probe::Avx64, 0, 64},
    {"pattern:2x2/avx:32", Probe::Pattern2x2Avx32, 4, 32},
    {"pattern:2x2/avx:64", Probe::Pattern2x2Avx64, 4, 64},
    {"pattern:2x2/avx:128", Probe::Pattern2x2Avx128, 4, 128},
    {"avxmem:4", Probe::AvxMem4, 0, 128},
    {"pattern:2x2/avxmem:4", Probe::Pattern2x2AvxMem4, 4, 128},
    {"pattern:2x2/avxmem:8", Probe::Pattern2x2AvxMem8, 4, 256},
};

#define KT_PROBE_TARGET                                                        \
  __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bf16")))

/// N vdpbf16ps over 16 register accumulators.
template <int N>
KT_PROBE_TARGET inline void vectorDots(__m512 (&acc)[16], __m512bh x,
                                       __m512bh y) {
#pragma GCC unroll 128
  for (int i = 0; i < N; ++i)
    acc[i % 16] = _mm512_dpbf16_ps(acc[i % 16], x, y);
}

/// T tokens of a hybrid kernel's vector part for one 64-byte chunk: for each
/// of the 16 bf16 pairs, the pair's row of both B tiles (L1) against each
/// token's pair broadcast from the strided panel.
template <int T>
KT_PROBE_TARGET inline void vectorTokens(__m512 (&acc)[16], const char *a,
                                         const char *b) {
#pragma GCC unroll 16
  for (int p = 0; p < 16; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(b + 64 * p);
    const __m512bh b1 = (__m512bh)_mm512_load_si512(b + 1024 + 64 * p);
    for (int t = 0; t < T; ++t) {
      int32_t pair;
      __builtin_memcpy(&pair, a + t * kStrided + 4 * p, 4);
      const __m512bh x = (__m512bh)_mm512_set1_epi32(pair);
      acc[2 * t % 16] = _mm512_dpbf16_ps(acc[2 * t % 16], x, b0);
      acc[(2 * t + 1) % 16] = _mm512_dpbf16_ps(acc[(2 * t + 1) % 16], x, b1);
    }
  }
}

#define KT_PATTERN_2X2                                                         \
  KT_P(KT_LDB(6, "%1") KT_LDA(4) KT_LDB(7, "%2") KT_LDA(5) KT_TDP(0, 4, 6)     \
           KT_TDP(1, 4, 7) KT_TDP(2, 5, 6) KT_TDP(3, 5, 7))

KT_PROBE_TARGET void probeLoop(Probe p, const char *a, const char *b) {
  static const ProbeConfig cfg;
  __asm__ volatile("ldtilecfg %0" ::"m"(cfg) : "memory");
  KT_P(KT_LDB(0, "%1") KT_LDB(1, "%1") KT_LDB(2, "%1") KT_LDB(3, "%1")
           KT_LDB(4, "%1") KT_LDB(5, "%1") KT_LDB(6, "%1") KT_LDB(7, "%1"));
  __m512 acc[16];
  for (__m512 &v : acc)
    v = _mm512_setzero_ps();
  const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f40);
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
      KT_PATTERN_2X2;
      break;
    case Probe::Pattern2x2Spread: // A1 after its tile's last reader, etc.
      KT_P(KT_LDB(6, "%1") KT_LDA(4) KT_TDP(0, 4, 6) KT_LDB(7, "%2")
               KT_TDP(1, 4, 7) KT_LDA(5) KT_TDP(2, 5, 6) KT_TDP(3, 5, 7));
      break;
    case Probe::Pattern2x2Prefetch: // + the micro-kernel's 64 prefetcht0
      KT_PATTERN_2X2;
#pragma GCC unroll 32
      for (int r = 0; r < 32; ++r)
        _mm_prefetch(a + r * kStrided, _MM_HINT_T0);
#pragma GCC unroll 16
      for (int l = 0; l < 1024; l += 64) {
        _mm_prefetch(b + l, _MM_HINT_T0);
        _mm_prefetch(b + 1024 + l, _MM_HINT_T0);
      }
      break;
    case Probe::Avx32:
      vectorDots<32>(acc, x, x);
      break;
    case Probe::Avx64:
      vectorDots<64>(acc, x, x);
      break;
    case Probe::Pattern2x2Avx32:
      KT_PATTERN_2X2;
      vectorDots<32>(acc, x, x);
      break;
    case Probe::Pattern2x2Avx64:
      KT_PATTERN_2X2;
      vectorDots<64>(acc, x, x);
      break;
    case Probe::Pattern2x2Avx128:
      KT_PATTERN_2X2;
      vectorDots<128>(acc, x, x);
      break;
    case Probe::AvxMem4:
      vectorTokens<4>(acc, a + 32 * kStrided, b);
      break;
    case Probe::Pattern2x2AvxMem4:
      KT_PATTERN_2X2;
      vectorTokens<4>(acc, a + 32 * kStrided, b);
      break;
    case Probe::Pattern2x2AvxMem8:
      KT_PATTERN_2X2;
      vectorTokens<8>(acc, a + 32 * kStrided, b);
      break;
    }
  }
  __m512 sum = acc[0];
  for (int i = 1; i < 16; ++i)
    sum = _mm512_add_ps(sum, acc[i]);
  static volatile float sink;
  sink = _mm512_reduce_add_ps(sum);
}

void BM_AmxProbe(benchmark::State &state, ProbeInfo info) {
  if (!pathSupported(KernelPath::AMX, WeightFormat::BF16)) {
    state.SkipWithError(
        missingFeature(KernelPath::AMX, WeightFormat::BF16).c_str());
    return;
  }
  if (info.vectorDots && !cpuFeatures().avx512bf16) {
    state.SkipWithError("CPU lacks AVX512-BF16");
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
      std::vector<uint16_t> buf((40 * kStrided + 4096) / 2, 0x3f40);
      const char *a = reinterpret_cast<const char *>(
          (reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t(63));
      probeLoop(info.probe, a, a + 40 * kStrided);
    });
    const double t =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    state.SetIterationTime(t);
    best = std::min(best, t);
  }
  state.counters["ns_per_iter"] = best / kIters * 1e9;
  state.counters["TFLOPS"] =
      (info.products * 16.0 * 16 * 32 + info.vectorDots * 16.0 * 2) * 2 *
      kIters * threads / best / 1e12;
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
