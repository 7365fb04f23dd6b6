//===- bench_moe.cpp - CPU MoE kernel benchmark ---------------------------===//
//
// Qwen3-30B-A3B-like routed experts: H 2048, I 768, top 8, with 32 experts
// per layer (the model has 128; 32 keeps 4 BF16 layers at 1.2 GB and still
// spreads 512 tokens over every expert) and 4 layers used in rotation, so
// each iteration reads weights that are not in cache (4 layers >> L3).
//
// Names: moe/<bf16|int8|int4>/tokens:N. Counters:
//   GBps      bytes of packed weights (routed experts) + activations / s
//   TFLOPS    6 * H * I * routed pairs / s (int8: integer ops, same count)
//   frac_of_ceiling  roofline fraction: max(bytes / read_bw, flops / peak)
//                    / measured time, with read_bw and peak (fp32 FMA for
//                    bf16/int4, the int8 dot unit for int8) measured by the
//                    ceiling/* benchmarks of this program.
// Threads: all hardware threads (KT_BENCH_THREADS overrides).
//
//===----------------------------------------------------------------------===//

#include "kt/Runtime/Kernels/Moe.h"

#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace kt::kernels;

namespace {

constexpr int kHidden = 2048, kInter = 768, kExperts = 32, kTopK = 8,
              kLayers = 4, kUnique = 8;

int benchThreads() {
  if (const char *s = std::getenv("KT_BENCH_THREADS"))
    return std::max(1, std::atoi(s));
  return std::max(1u, std::thread::hardware_concurrency());
}

ThreadPool &pool() {
  static ThreadPool p(benchThreads());
  return p;
}

double seconds(std::chrono::steady_clock::time_point a,
               std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

//===----------------------------------------------------------------------===//
// Ceilings
//===----------------------------------------------------------------------===//

__attribute__((target("avx2"))) double readAvx2(const float *p, size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
  float t[8];
  _mm256_storeu_ps(t, s);
  return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}

double readScalar(const float *p, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i)
    s += p[i];
  return s;
}

/// Streaming read bandwidth (GB/s) over a 1 GiB buffer, all threads.
double measureReadBw() {
  static double bw = [] {
    const size_t n = (size_t(1) << 30) / sizeof(float);
    float *buf = static_cast<float *>(std::aligned_alloc(64, n * sizeof(float)));
    ThreadPool &tp = pool();
    const int chunks = tp.size() * 16;
    tp.run(chunks, [&](int c, int) {
      size_t lo = n / chunks * c, hi = n / chunks * (c + 1);
      for (size_t i = lo; i < hi; ++i)
        buf[i] = float(i & 1023);
    });
    bool avx2 = cpuFeatures().avx2;
    std::atomic<double> sink{0};
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      tp.run(chunks, [&](int c, int) {
        size_t lo = n / chunks * c, hi = n / chunks * (c + 1);
        double s = avx2 ? readAvx2(buf + lo, hi - lo) : readScalar(buf + lo, hi - lo);
        sink.store(s, std::memory_order_relaxed);
      });
      best = std::max(best, n * sizeof(float) / seconds(t0, std::chrono::steady_clock::now()) / 1e9);
    }
    benchmark::DoNotOptimize(sink.load());
    std::free(buf);
    return best;
  }();
  return bw;
}

constexpr long kPeakIters = 10'000'000;

__attribute__((target("avx2,fma"))) float fmaLoopAvx2() {
  __m256 a[10];
  for (int i = 0; i < 10; ++i)
    a[i] = _mm256_set1_ps(1.0f + i * 1e-3f);
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < kPeakIters; ++it)
    for (int i = 0; i < 10; ++i)
      a[i] = _mm256_fmadd_ps(a[i], m, c);
  __m256 s = a[0];
  for (int i = 1; i < 10; ++i)
    s = _mm256_add_ps(s, a[i]);
  return _mm256_cvtss_f32(s);
}
__attribute__((target("avx512f"))) float fmaLoopAvx512() {
  __m512 a[10];
  for (int i = 0; i < 10; ++i)
    a[i] = _mm512_set1_ps(1.0f + i * 1e-3f);
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (long it = 0; it < kPeakIters; ++it)
    for (int i = 0; i < 10; ++i)
      a[i] = _mm512_fmadd_ps(a[i], m, c);
  __m512 s = a[0];
  for (int i = 1; i < 10; ++i)
    s = _mm512_add_ps(s, a[i]);
  return _mm512_reduce_add_ps(s);
}
// AVX2 int8 dot unit as the AVX2 kernel uses it: vpmaddwd on s16 (16 MACs).
__attribute__((target("avx2"))) int madLoopAvx2() {
  __m256i a[10];
  for (int i = 0; i < 10; ++i)
    a[i] = _mm256_set1_epi32(i);
  const __m256i x = _mm256_set1_epi16(3), w = _mm256_set1_epi16(-2);
  for (long it = 0; it < kPeakIters; ++it)
    for (int i = 0; i < 10; ++i)
      a[i] = _mm256_add_epi32(a[i], _mm256_madd_epi16(x, w));
  __m256i s = a[0];
  for (int i = 1; i < 10; ++i)
    s = _mm256_add_epi32(s, a[i]);
  return _mm256_extract_epi32(s, 0);
}
// AVX512-VNNI: vpdpbusd on zmm (64 u8 x s8 MACs).
__attribute__((target("avx512f,avx512vnni"))) int vnniLoop() {
  __m512i a[10];
  for (int i = 0; i < 10; ++i)
    a[i] = _mm512_set1_epi32(i);
  const __m512i x = _mm512_set1_epi8(3), w = _mm512_set1_epi8(-2);
  for (long it = 0; it < kPeakIters; ++it)
    for (int i = 0; i < 10; ++i)
      a[i] = _mm512_dpbusd_epi32(a[i], x, w);
  __m512i s = a[0];
  for (int i = 1; i < 10; ++i)
    s = _mm512_add_epi32(s, a[i]);
  return _mm512_reduce_add_epi32(s);
}

/// Runs `loop` on every thread; returns tera-ops/s with `opsPerIter`
/// operations (2 per multiply-add) per inner iteration.
template <class Loop> double peakOf(Loop loop, double opsPerIter) {
  ThreadPool &tp = pool();
  std::atomic<long> sink{0};
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) { // best of 3: the machine may be shared
    auto t0 = std::chrono::steady_clock::now();
    tp.run(tp.size(), [&](int, int) { sink += static_cast<long>(loop()); });
    double t = seconds(t0, std::chrono::steady_clock::now());
    best = std::max(best, opsPerIter * kPeakIters * tp.size() / t / 1e12);
  }
  benchmark::DoNotOptimize(sink.load());
  return best;
}

struct Peaks {
  double fma = 0, int8 = 0;
  const char *fmaUnit = "", *int8Unit = "";
};
const Peaks &peaks() {
  static Peaks p = [] {
    Peaks r;
    const CpuFeatures &c = cpuFeatures();
    if (c.avx512f) {
      r.fma = peakOf(fmaLoopAvx512, 10 * 16 * 2);
      r.fmaUnit = "avx512 fp32 fma";
    } else if (c.avx2 && c.fma) {
      r.fma = peakOf(fmaLoopAvx2, 10 * 8 * 2);
      r.fmaUnit = "avx2 fp32 fma";
    }
    if (c.avx512f && c.avx512vnni) {
      r.int8 = peakOf(vnniLoop, 10 * 64 * 2);
      r.int8Unit = "avx512-vnni vpdpbusd";
    } else if (c.avx2) {
      r.int8 = peakOf(madLoopAvx2, 10 * 16 * 2);
      r.int8Unit = "avx2 vpmaddwd (no VNNI on this CPU)";
    }
    return r;
  }();
  return p;
}

//===----------------------------------------------------------------------===//
// Weights and routing
//===----------------------------------------------------------------------===//

QuantConfig configOf(WeightFormat f) {
  return {f, 64, false}; // INT4: group 64, symmetric
}

/// kLayers layers of kExperts experts; kUnique experts are packed from
/// random bf16 data and copied into the rest (content does not change the
/// speed; distinct memory does).
const std::vector<MoeWeights> &layers(WeightFormat f) {
  static std::map<WeightFormat, std::vector<MoeWeights>> cache;
  auto it = cache.find(f);
  if (it != cache.end())
    return it->second;
  static std::vector<uint16_t> src = [] {
    size_t per = size_t(3) * kHidden * kInter;
    std::vector<uint16_t> s(per * kUnique);
    std::mt19937 rng(42);
    std::normal_distribution<float> n01(0.f, 1.f / std::sqrt(float(kHidden)));
    for (auto &v : s)
      v = f32ToBf16(n01(rng));
    return s;
  }();
  std::vector<ExpertSource> es(kUnique);
  const size_t m = size_t(kHidden) * kInter;
  for (int e = 0; e < kUnique; ++e)
    es[e] = {&src[(3 * e) * m], &src[(3 * e + 1) * m], &src[(3 * e + 2) * m]};
  MoeWeights unique = packMoe(es, DType::BF16, kHidden, kInter, configOf(f), &pool());
  std::vector<MoeWeights> ls(kLayers);
  for (auto &l : ls) {
    l.numExperts = kExperts;
    l.hidden = kHidden;
    l.intermediate = kInter;
    l.config = unique.config;
    for (int e = 0; e < kExperts; ++e) {
      l.gate.push_back(unique.gate[e % kUnique]);
      l.up.push_back(unique.up[e % kUnique]);
      l.down.push_back(unique.down[e % kUnique]);
    }
  }
  return cache.emplace(f, std::move(ls)).first->second;
}

struct Batch {
  std::vector<uint16_t> x; // bf16 [T, H]
  std::vector<int32_t> ids;
  std::vector<float> w;
  std::vector<float> out;
};

Batch makeBatch(int T) {
  Batch b;
  std::mt19937 rng(T);
  std::normal_distribution<float> n01;
  b.x.resize(size_t(T) * kHidden);
  for (auto &v : b.x)
    v = f32ToBf16(n01(rng));
  b.ids.resize(size_t(T) * kTopK);
  b.w.assign(b.ids.size(), 1.f / kTopK);
  std::vector<int> perm(kExperts);
  for (int t = 0; t < T; ++t) {
    for (int e = 0; e < kExperts; ++e)
      perm[e] = e;
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int j = 0; j < kTopK; ++j)
      b.ids[t * kTopK + j] = perm[j];
  }
  b.out.resize(size_t(T) * kHidden);
  return b;
}

void BM_Moe(benchmark::State &state, WeightFormat f, int T) {
  const std::vector<MoeWeights> &ls = layers(f);
  Batch b = makeBatch(T);
  MoeArgs a{T, kTopK, b.x.data(), DType::BF16, b.ids.data(), IdType::I32,
            b.w.data(), b.out.data(), DType::F32};
  MoeOptions o;
  o.pool = &pool();
  const double bytes = moeBytesRead(ls[0], a), flops = moeFlops(ls[0], a);
  const double bw = measureReadBw();
  const Peaks &pk = peaks();
  const double peak = f == WeightFormat::INT8 ? pk.int8 : pk.fma;
  size_t layer = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    moeForward(ls[layer++ % kLayers], a, o);
    benchmark::ClobberMemory();
  }
  double t = seconds(t0, std::chrono::steady_clock::now()) / state.iterations();
  state.counters["GBps"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["TFLOPS"] = benchmark::Counter(flops / 1e12, benchmark::Counter::kIsIterationInvariantRate);
  double ideal = std::max(bytes / (bw * 1e9), flops / (peak * 1e12));
  state.counters["frac_of_ceiling"] = ideal / t;
  state.counters["frac_of_read_bw"] = bytes / t / 1e9 / bw;
  state.counters["frac_of_peak"] = flops / t / 1e12 / peak;
  state.counters["threads"] = pool().size();
  state.SetLabel(std::string(toString(bestPath(f))) + ", " + std::to_string(kExperts) +
                 " experts x " + std::to_string(kLayers) + " layers");
}

void BM_ReadBw(benchmark::State &state) {
  double bw = 0;
  for (auto _ : state) {
    bw = measureReadBw();
    state.SetIterationTime(1.0);
  }
  state.counters["GBps"] = bw;
  state.counters["threads"] = pool().size();
  state.SetLabel("1 GiB streaming read, best of 5");
}

void BM_Peak(benchmark::State &state, bool int8) {
  double v = 0;
  for (auto _ : state) {
    v = int8 ? peaks().int8 : peaks().fma;
    state.SetIterationTime(1.0);
  }
  state.counters["TFLOPS"] = v;
  state.counters["threads"] = pool().size();
  state.SetLabel(int8 ? peaks().int8Unit : peaks().fmaUnit);
}

int registerAll() {
  benchmark::RegisterBenchmark("ceiling/read_bw", BM_ReadBw)->Iterations(1)->UseManualTime();
  benchmark::RegisterBenchmark("ceiling/fp32_fma_peak", BM_Peak, false)->Iterations(1)->UseManualTime();
  benchmark::RegisterBenchmark("ceiling/int8_peak", BM_Peak, true)->Iterations(1)->UseManualTime();
  for (WeightFormat f : {WeightFormat::BF16, WeightFormat::INT8, WeightFormat::INT4})
    for (int T : {1, 8, 64, 512})
      benchmark::RegisterBenchmark(
          (std::string("moe/") + toString(f) + "/tokens:" + std::to_string(T)).c_str(),
          BM_Moe, f, T)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
  return 0;
}
const int registered = registerAll();

} // namespace

BENCHMARK_MAIN();
