//===- bench_moe.cpp - CPU MoE kernel benchmark ---------------------------===//
//
// Qwen3-30B-A3B-like routed experts: H 2048, I 768, top 8, with 32 experts
// per layer (the model has 128; 32 keeps 4 BF16 layers at 1.2 GB and still
// spreads 512 tokens over every expert) and 4 layers used in rotation, so
// each iteration reads weights that are not in cache (4 layers >> L3).
//
// Names: moe/<method>/tokens:N with method
//   bf16, int8, int4   the best non-AMX path (AVX512 / VNNI, else AVX2), row
//                      layout; int8 packs both layouts and uses the VNNI
//                      panel kernel for experts with >= kVnniPanelMinTokens
//                      tokens
//   int8_rows          int8 with the VNNI row kernel only
//   int4_float         int4 with Int4Activations::Float (on a VNNI CPU,
//                      int4 multiplies the nibbles by int8 activations with
//                      vpdpbusd; int4_float is the fp32 FMA kernel)
//   avx512bf16         BF16 weights, vdpbf16ps on bf16 activations
//   amx_int8, amx_bf16 KernelPath::AMX on the default packing (tile layout
//                      only on an AMX CPU): AMX tiles for experts with >=
//                      kAmxMinTokensInt8 / Bf16 tokens, the VNNI /
//                      AVX512-BF16 panel kernels on the same tiles below
//   amx_int8_float     amx_int8 with Int8Activations::Float (W8A16: INT8
//                      weights dequantised to bf16 tiles, tdpbf16ps)
//   amx_int4           KernelPath::AMX on INT4 g64 weights: nibbles
//                      dequantised to bf16 tiles for tdpbf16ps from
//                      kAmxMinTokensInt4 tokens, the AVX512 row kernel below
//   rowlayout_int8,    tokens 1 and 8 only: the AMX path's decode before the
//   rowlayout_bf16     one layout, i.e. the VNNI / AVX512-BF16 row kernels
//                      on the row layout (both layouts packed, AVX512 /
//                      AVX512BF16 path forced); compare with amx_* decode
// Counter layer_GB: memory one layer's packed experts hold (all layouts).
// qwen3_30b_a3b/<method>/tokens:N: the same shape with the model's 128
// experts (one layer, 1.2 GB in BF16: not cache resident either).
// threshold/<int8|bf16|int4>/<small_panel|rows|amx>/per_expert:N: N tokens,
// all routed to the same 8 experts, on the AMX path with the small-expert
// kernel (VNNI / AVX512-BF16 panels; INT4: the row kernel) or with AMX tiles
// forced; the crossing point gives kAmxMinTokensInt8 / Bf16 / Int4.
// numa/<bf16|int8|int4>/nodes:K/tokens:N: NumaMoe (intermediate dimension
// split across K nodes, per-node pinned pools, partial sums merged) on
// CpuTopology::host().split(K), i.e. *virtual* nodes unless the machine has
// K real ones; nodes:1 is the same pinned pool running the unsplit call.
// schedule/<stealing|shared>/<bf16|int8>/tokens:N: moeForward on a pool with
// work stealing (the default) or the first version's shared counter.
// tune/<amx_int8|amx_bf16>/gaterows:G/downrows:D/tokens:N: the AMX path with
// MoeOptions::panelGateRows = G and panelDownRows = D, to choose
// kPanelGateRows / kPanelDownRows.
// micro/<amx|vnni|avx512bf16>_<int8|bf16>/kchunks:K: one panel micro-kernel
// over the same 32 x K A rows and two 16-row weight blocks on every thread
// (K 4: an INT8 activation block; 8: operands in L1; 12 / 24: the down
// shape at I 768; 32 / 64: the gate/up shape, in L2), TFLOPS and fraction of
// the unit's register peak (ceiling/amx_*_peak, int8_peak, avx512bf16_peak).
// pool/<stealing|shared>/<even|skewed>/tasks:N: one ThreadPool::run of N
// tasks of ~1 us each (even) or with the first eighth 30x heavier (skewed):
// scheduling overhead and balance without the kernels.
// pool/<stealing|shared>/empty/tasks:N: one ThreadPool::run of N tasks that
// do nothing: the per-run overhead (wake-up, hand-out, completion).
// Counters:
//   us_per_run  pool/*/empty: microseconds per run() (= time per iteration)
//   GBps      bytes of packed weights (routed experts) + activations / s
//   TFLOPS    6 * H * I * routed pairs / s (int8: integer ops, same count)
//   frac_of_ceiling  roofline fraction: max(bytes / read_bw, flops / peak)
//                    / measured time, with read_bw and peak (fp32 FMA for
//                    bf16/int4, VNNI for int8, vdpbf16ps for avx512bf16,
//                    tdpbssd / tdpbf16ps for amx_*) measured by the
//                    ceiling/* benchmarks of this program.
// Threads: all hardware threads (KT_BENCH_THREADS overrides).
//
//===----------------------------------------------------------------------===//

#include "kt/Runtime/Kernels/Moe.h"
#include "kt/Runtime/Kernels/NumaMoe.h"

#include "MoeInternal.h" // micro/: the panel micro-kernels themselves

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
#include <tuple>
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
constexpr long kAmxPeakIters = 1'000'000;

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
// AVX2 int8 dot unit as the AVX2 kernel uses it: vpsignb + vpmaddubsw on
// u8 x s8 (32 MACs), vpmaddwd by ones to int32, vpaddd.
__attribute__((target("avx2"))) int madLoopAvx2() {
  __m256i a[10];
  for (int i = 0; i < 10; ++i)
    a[i] = _mm256_set1_epi32(i);
  const __m256i x = _mm256_set1_epi8(3), w = _mm256_set1_epi8(-2);
  const __m256i ones = _mm256_set1_epi16(1);
  for (long it = 0; it < kPeakIters; ++it)
    for (int i = 0; i < 10; ++i)
      a[i] = _mm256_add_epi32(
          a[i], _mm256_madd_epi16(
                    _mm256_maddubs_epi16(w, _mm256_sign_epi8(x, w)), ones));
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

// AVX512-BF16: vdpbf16ps on zmm (32 bf16 pairs, 64 flops).
__attribute__((target("avx512f,avx512bf16"))) float dpbf16Loop() {
  __m512 a[10];
  for (int i = 0; i < 10; ++i)
    a[i] = _mm512_set1_ps(i);
  const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80); // 1.0
  const __m512bh w = (__m512bh)_mm512_set1_epi16(0x3c00); // 2^-7
  for (long it = 0; it < kPeakIters; ++it)
    for (int i = 0; i < 10; ++i)
      a[i] = _mm512_dpbf16_ps(a[i], x, w);
  __m512 s = a[0];
  for (int i = 1; i < 10; ++i)
    s = _mm512_add_ps(s, a[i]);
  return _mm512_reduce_add_ps(s);
}

// AMX: 4 independent C tiles (tmm0-3) fed from register tiles tmm4-7 (no
// loads in the loop): tdpbssd does 16 x 16 x 64 multiply-adds, tdpbf16ps
// 16 x 16 x 32. The configuration is the one the kernels use (8 tiles of
// 16 x 64 bytes); it is left loaded (the kernels' threads keep theirs).
struct alignas(64) AmxConfig {
  uint8_t palette = 1, startRow = 0, reserved[14] = {};
  uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};
template <bool Int8> int amxLoop() {
  static const AmxConfig cfg;
  // Non-zero data (bf16 1.0; as int8: -128, 63), in case zeros were cheaper.
  alignas(64) uint16_t src[16 * 32];
  std::fill(std::begin(src), std::end(src), uint16_t(0x3f80));
  __asm__ volatile("ldtilecfg %0" ::"m"(cfg) : "memory");
  __asm__ volatile("tilezero %%tmm0\n\ttilezero %%tmm1\n\ttilezero "
                   "%%tmm2\n\ttilezero %%tmm3" ::);
  __asm__ volatile( // tmm4-7 from src (stride 64)
"tileloadd (%0,%1,1), %%tmm4\n\t"
                     "tileloadd (%0,%1,1), %%tmm5\n\t"
                     "tileloadd (%0,%1,1), %%tmm6\n\t"
                     "tileloadd (%0,%1,1), %%tmm7" ::"r"(src),
                     "r"(64L)
                     : "memory");
  for (long it = 0; it < kAmxPeakIters; ++it) {
    if constexpr (Int8)
      __asm__ volatile("tdpbssd %%tmm6, %%tmm4, %%tmm0\n\t"
                       "tdpbssd %%tmm7, %%tmm4, %%tmm1\n\t"
                       "tdpbssd %%tmm6, %%tmm5, %%tmm2\n\t"
                       "tdpbssd %%tmm7, %%tmm5, %%tmm3" ::);
    else
      __asm__ volatile("tdpbf16ps %%tmm6, %%tmm4, %%tmm0\n\t"
                       "tdpbf16ps %%tmm7, %%tmm4, %%tmm1\n\t"
                       "tdpbf16ps %%tmm6, %%tmm5, %%tmm2\n\t"
                       "tdpbf16ps %%tmm7, %%tmm5, %%tmm3" ::);
  }
  alignas(64) int32_t out[16 * 16];
  __asm__ volatile("tilestored %%tmm0, (%0,%1,1)" ::"r"(out), "r"(64L)
                   : "memory");
  return out[0];
}

/// Runs `loop` on every thread; returns tera-ops/s with `opsPerIter`
/// operations (2 per multiply-add) per inner iteration.
template <class Loop>
double peakOf(Loop loop, double opsPerIter, long iters = kPeakIters) {
  ThreadPool &tp = pool();
  std::atomic<long> sink{0};
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) { // best of 3: the machine may be shared
    auto t0 = std::chrono::steady_clock::now();
    tp.run(tp.size(), [&](int, int) { sink += static_cast<long>(loop()); });
    double t = seconds(t0, std::chrono::steady_clock::now());
    best = std::max(best, opsPerIter * iters * tp.size() / t / 1e12);
  }
  benchmark::DoNotOptimize(sink.load());
  return best;
}

struct Peaks {
  double fma = 0, int8 = 0, dpbf16 = 0, amxInt8 = 0, amxBf16 = 0;
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
      r.int8 = peakOf(madLoopAvx2, 10 * 32 * 2);
      r.int8Unit = "avx2 vpmaddubsw (no VNNI on this CPU)";
    }
    if (pathSupported(KernelPath::AVX512BF16, WeightFormat::BF16))
      r.dpbf16 = peakOf(dpbf16Loop, 10 * 32 * 2);
    if (pathSupported(KernelPath::AMX, WeightFormat::INT8))
      r.amxInt8 = peakOf(amxLoop<true>, 4 * 16 * 16 * 64 * 2, kAmxPeakIters);
    if (pathSupported(KernelPath::AMX, WeightFormat::BF16))
      r.amxBf16 = peakOf(amxLoop<false>, 4 * 16 * 16 * 32 * 2, kAmxPeakIters);
    return r;
  }();
  return p;
}

//===----------------------------------------------------------------------===//
// Weights and routing
//===----------------------------------------------------------------------===//

QuantConfig configOf(WeightFormat f, TilePacking tiles) {
  return {f, 64, false, tiles}; // INT4: group 64, symmetric
}

struct Method {
  const char *name;
  WeightFormat format;
  KernelPath path; // Auto: the best row-kernel path (AVX512, else AVX2)
  /// Layouts packed: Auto is the library's default (tile-only on an AMX
  /// CPU); the row-kernel methods need the rows.
  TilePacking tiles = TilePacking::Never;
  /// MoeOptions::vnniMinTokens (0: the library's default).
  int vnniMinTokens = 0;
  bool decodeOnly = false; ///< only tokens 1 and 8 (qwen3_30b_a3b: 1)
  Int8Activations int8Act = Int8Activations::Int8;
  Int4Activations int4Act = Int4Activations::Int8;
  /// INT8: down weights without their rotation (PackedMatrix::rotation 0, so
  /// moeForward skips rotating h): what the rotation costs.
  bool unrotated = false;
  /// INT8 panels: MoeOptions::int8PanelBlock (0: one activation scale per
  /// token row, what the blocks cost).
  int int8PanelBlock = kInt8PanelBlock;
  /// A variant of another method (unrotated, other activation blocks): not
  /// in the tune/ and threshold/ sweeps.
  bool variant() const {
    return unrotated || int8PanelBlock != kInt8PanelBlock;
  }
};
constexpr int kNoPanels = 1 << 30;
const Method kMethods[] = {
    {"bf16", WeightFormat::BF16, KernelPath::Auto},
    {"int8", WeightFormat::INT8, KernelPath::Auto, TilePacking::Always},
    {"int8_rows", WeightFormat::INT8, KernelPath::Auto, TilePacking::Never,
     kNoPanels},
    {"int4", WeightFormat::INT4, KernelPath::Auto},
    {"int4_float", WeightFormat::INT4, KernelPath::Auto, TilePacking::Never, 0,
     false, Int8Activations::Int8, Int4Activations::Float},
    {"avx512bf16", WeightFormat::BF16, KernelPath::AVX512BF16},
    {"amx_int8", WeightFormat::INT8, KernelPath::AMX, TilePacking::Auto},
    {"amx_bf16", WeightFormat::BF16, KernelPath::AMX, TilePacking::Auto},
    {"amx_int4", WeightFormat::INT4, KernelPath::AMX, TilePacking::Auto},
    {"amx_int8_float", WeightFormat::INT8, KernelPath::AMX, TilePacking::Auto,
     0, false, Int8Activations::Float},
    {"amx_int8_unrotated", WeightFormat::INT8, KernelPath::AMX,
     TilePacking::Auto, 0, false, Int8Activations::Int8, Int4Activations::Int8,
     true},
    {"int8_rowscale", WeightFormat::INT8, KernelPath::Auto, TilePacking::Always,
     0, false, Int8Activations::Int8, Int4Activations::Int8, false, 0},
    {"amx_int8_rowscale", WeightFormat::INT8, KernelPath::AMX,
     TilePacking::Auto, 0, false, Int8Activations::Int8, Int4Activations::Int8,
     false, 0},
    {"rowlayout_int8", WeightFormat::INT8, KernelPath::AVX512,
     TilePacking::Always, kNoPanels, true},
    {"rowlayout_bf16", WeightFormat::BF16, KernelPath::AVX512BF16,
     TilePacking::Always, 0, true},
};

KernelPath resolve(const Method &m) {
  if (m.path != KernelPath::Auto)
    return m.path;
  return pathSupported(KernelPath::AVX512, m.format) ? KernelPath::AVX512
         : pathSupported(KernelPath::AVX2, m.format) ? KernelPath::AVX2
                                                     : KernelPath::Scalar;
}

/// The compute ceiling (Tops/s) of the unit `path` uses for `f`.
double peakFor(WeightFormat f, KernelPath path, const char **unit) {
  const Peaks &pk = peaks();
  if (path == KernelPath::AMX) {
    *unit =
        f == WeightFormat::INT8 ? "amx tdpbssd" : "amx tdpbf16ps"; // INT4: bf16
    return f == WeightFormat::INT8 ? pk.amxInt8 : pk.amxBf16;
  }
  if (path == KernelPath::AVX512BF16 && f == WeightFormat::BF16) {
    *unit = "avx512 vdpbf16ps";
    return pk.dpbf16;
  }
  *unit = f == WeightFormat::INT8 ? pk.int8Unit : pk.fmaUnit;
  return f == WeightFormat::INT8 ? pk.int8 : pk.fma;
}

/// kUnique experts of random bf16 data (HF layout).
std::vector<ExpertSource> uniqueSources() {
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
  return es;
}

/// kLayers layers of kExperts experts; kUnique experts are packed from
/// random bf16 data and copied into the rest (content does not change the
/// speed; distinct memory does).
const std::vector<MoeWeights> &layers(WeightFormat f, TilePacking tiles,
                                      int numExperts = kExperts,
                                      int numLayers = kLayers,
                                      bool unrotated = false) {
  static std::map<std::tuple<WeightFormat, TilePacking, int, int, bool>,
                  std::vector<MoeWeights>>
      cache;
  const auto key = std::make_tuple(f, tiles, numExperts, numLayers, unrotated);
  auto it = cache.find(key);
  if (it != cache.end())
    return it->second;
  MoeWeights unique = packMoe(uniqueSources(), DType::BF16, kHidden, kInter,
                              configOf(f, tiles), &pool());
  std::vector<MoeWeights> ls(numLayers);
  for (auto &l : ls) {
    l.numExperts = numExperts;
    l.hidden = kHidden;
    l.intermediate = kInter;
    l.config = unique.config;
    for (int e = 0; e < numExperts; ++e) {
      l.gate.push_back(unique.gate[e % kUnique]);
      l.up.push_back(unique.up[e % kUnique]);
      l.down.push_back(unique.down[e % kUnique]);
      if (unrotated)
        l.down.back().rotation = 0;
    }
  }
  return cache.emplace(key, std::move(ls)).first->second;
}

struct Batch {
  std::vector<uint16_t> x; // bf16 [T, H]
  std::vector<int32_t> ids;
  std::vector<float> w;
  std::vector<float> out;
};

/// T tokens routed to distinct random experts of `numExperts`; `sameExperts`:
/// every token to experts 0..kTopK-1 (each of them gets all T tokens).
Batch makeBatch(int T, int numExperts = kExperts, bool sameExperts = false) {
  Batch b;
  std::mt19937 rng(T);
  std::normal_distribution<float> n01;
  b.x.resize(size_t(T) * kHidden);
  for (auto &v : b.x)
    v = f32ToBf16(n01(rng));
  b.ids.resize(size_t(T) * kTopK);
  b.w.assign(b.ids.size(), 1.f / kTopK);
  std::vector<int> perm(numExperts);
  for (int t = 0; t < T; ++t) {
    for (int e = 0; e < numExperts; ++e)
      perm[e] = e;
    if (!sameExperts)
      std::shuffle(perm.begin(), perm.end(), rng);
    for (int j = 0; j < kTopK; ++j)
      b.ids[t * kTopK + j] = perm[j];
  }
  b.out.resize(size_t(T) * kHidden);
  return b;
}

struct Case {
  Method method;
  int tokens;
  int experts = kExperts, numLayers = kLayers;
  bool sameExperts = false;
  int amxMinTokens = 0; // 0: the library's default
  int gateRows = 0, downRows = 0; // MoeOptions::panelGateRows / DownRows
};

void BM_Moe(benchmark::State &state, Case c) {
  const WeightFormat f = c.method.format;
  const KernelPath path = resolve(c.method);
  const int T = c.tokens;
  if (std::string why = missingFeature(path, f); !why.empty()) {
    state.SkipWithError(("skipped: " + why).c_str());
    return;
  }
  const std::vector<MoeWeights> &ls =
      layers(f, c.method.tiles, c.experts, c.numLayers, c.method.unrotated);
  if (path == KernelPath::AMX && f != WeightFormat::INT4 && !ls[0].hasTiles()) {
    state.SkipWithError("skipped: weights packed without the tile layout");
    return;
  }
  Batch b = makeBatch(T, c.experts, c.sameExperts);
  MoeArgs a{T, kTopK, b.x.data(), DType::BF16, b.ids.data(), IdType::I32,
            b.w.data(), b.out.data(), DType::F32};
  MoeOptions o;
  o.pool = &pool();
  o.path = path;
  o.amxMinTokens = c.amxMinTokens;
  o.vnniMinTokens = c.method.vnniMinTokens;
  o.panelGateRows = c.gateRows;
  o.panelDownRows = c.downRows;
  o.int8Activations = c.method.int8Act;
  o.int4Activations = c.method.int4Act;
  o.int8PanelBlock = c.method.int8PanelBlock;
  const double bytes = moeBytesRead(ls[0], a), flops = moeFlops(ls[0], a);
  const double bw = measureReadBw();
  const char *unit = "";
  // The unit the kernels use: W8A16 runs like BF16; INT4 on a VNNI CPU's
  // AVX512 row kernels multiplies nibbles by int8 activations (vpdpbusd).
  const bool int4Vnni = f == WeightFormat::INT4 &&
                        c.method.int4Act == Int4Activations::Int8 &&
                        path == KernelPath::AVX512 && cpuFeatures().avx512vnni;
  const double peak =
      peakFor(c.method.int8Act == Int8Activations::Float ? WeightFormat::BF16
              : int4Vnni                                 ? WeightFormat::INT8
                                                         : f,
              path, &unit);
  size_t layer = 0;
  moeForward(ls[layer++ % ls.size()], a, o); // warm-up: pool, tiles, pages
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    moeForward(ls[layer++ % ls.size()], a, o);
    benchmark::ClobberMemory();
  }
  double t = seconds(t0, std::chrono::steady_clock::now()) / state.iterations();
  MoeStats st; // phase times of one more call, in ms
  o.stats = &st;
  moeForward(ls[layer++ % ls.size()], a, o);
  state.counters["ms_prepare"] = st.prepare * 1e3;
  state.counters["ms_panels"] = st.panels * 1e3;
  state.counters["ms_gate_up"] = st.gateUp * 1e3;
  state.counters["ms_quant_h"] = st.quantH * 1e3;
  state.counters["ms_down"] = st.down * 1e3;
  state.counters["ms_gate_up_busy_mean"] = st.gateUpBusyMean * 1e3;
  state.counters["ms_gate_up_busy_max"] = st.gateUpBusyMax * 1e3;
  state.counters["ms_down_busy_mean"] = st.downBusyMean * 1e3;
  state.counters["ms_down_busy_max"] = st.downBusyMax * 1e3;
  state.counters["ms_rows"] = st.rows * 1e3;
  state.counters["ms_combine"] = st.combine * 1e3;
  state.counters["panel_experts"] = st.panelExperts;
  state.counters["layer_GB"] = ls[0].memoryBytes() / 1e9;
  state.counters["GBps"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["TFLOPS"] = benchmark::Counter(flops / 1e12, benchmark::Counter::kIsIterationInvariantRate);
  double ideal = std::max(bytes / (bw * 1e9), flops / (peak * 1e12));
  state.counters["frac_of_ceiling"] = ideal / t;
  state.counters["frac_of_read_bw"] = bytes / t / 1e9 / bw;
  state.counters["frac_of_peak"] = flops / t / 1e12 / peak;
  state.counters["threads"] = pool().size();
  state.counters["peak_TFLOPS"] = peak;
  state.SetLabel(std::string(toString(path)) + " (" + unit + "), " +
                 std::to_string(c.experts) + " experts x " +
                 std::to_string(ls.size()) + " layers");
}

//===----------------------------------------------------------------------===//
// NUMA split, schedules
//===----------------------------------------------------------------------===//

NumaPool &numaPool(int nodes) {
  static std::map<int, std::unique_ptr<NumaPool>> pools;
  auto &p = pools[nodes];
  if (!p) {
    NumaPoolOptions o;
    o.threads = benchThreads();
    // KT_NUMA_PIN_CALLER=0: the caller is not pinned to node 0 for the
    // call (for A/B runs of that pin).
    if (const char *s = std::getenv("KT_NUMA_PIN_CALLER"))
      o.pinCaller = std::atoi(s) != 0;
    p = std::make_unique<NumaPool>(CpuTopology::host().split(nodes), o);
  }
  return *p;
}

/// As layers(), split over `nodes` nodes; each node copies its slices of
/// the replicated experts itself (first touch on the node).
const std::vector<NumaMoe> &numaLayers(WeightFormat f, TilePacking tiles,
                                       int nodes) {
  static std::map<std::tuple<WeightFormat, TilePacking, int>,
                  std::vector<NumaMoe>>
      cache;
  const auto key = std::make_tuple(f, tiles, nodes);
  auto it = cache.find(key);
  if (it != cache.end())
    return it->second;
  NumaPool &np = numaPool(nodes);
  NumaMoe unique = packNumaMoe(uniqueSources(), DType::BF16, kHidden, kInter,
                               configOf(f, tiles), np);
  std::vector<NumaMoe> ls(kLayers);
  for (NumaMoe &l : ls) {
    l.numExperts = kExperts;
    l.hidden = kHidden;
    l.intermediate = kInter;
    l.config = unique.config;
    l.bounds = unique.bounds;
    l.slices.resize(unique.slices.size());
    for (size_t k = 0; k < l.slices.size(); ++k) {
      MoeWeights &d = l.slices[k];
      const MoeWeights &u = unique.slices[k];
      d.numExperts = kExperts;
      d.hidden = kHidden;
      d.intermediate = u.intermediate;
      d.config = u.config;
      d.gate.resize(kExperts);
      d.up.resize(kExperts);
      d.down.resize(kExperts);
      np.pool(static_cast<int>(k))
          .submit([&] {
            np.pool(static_cast<int>(k)).run(kExperts, [&](int e, int) {
              d.gate[e] = u.gate[e % kUnique];
              d.up[e] = u.up[e % kUnique];
              d.down[e] = u.down[e % kUnique];
            });
          })
          .get();
    }
  }
  return cache.emplace(key, std::move(ls)).first->second;
}

void setRates(benchmark::State &state, double bytes, double flops) {
  state.counters["GBps"] = benchmark::Counter(
      bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["TFLOPS"] = benchmark::Counter(
      flops / 1e12, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_MoeNuma(benchmark::State &state, Method m, int nodes, int T) {
  const KernelPath path = resolve(m);
  const std::vector<NumaMoe> &ls = numaLayers(m.format, m.tiles, nodes);
  NumaPool &np = numaPool(nodes);
  Batch b = makeBatch(T);
  MoeArgs a{T,           kTopK,      b.x.data(),   DType::BF16, b.ids.data(),
            IdType::I32, b.w.data(), b.out.data(), DType::F32};
  MoeOptions o;
  o.path = path;
  const double bytes = moeBytesRead(ls[0], a), flops = moeFlops(ls[0], a);
  size_t layer = 0;
  moeForward(ls[layer++ % ls.size()], a, np, o); // warm-up
  for (auto _ : state) {
    moeForward(ls[layer++ % ls.size()], a, np, o);
    benchmark::ClobberMemory();
  }
  setRates(state, bytes, flops);
  state.counters["frac_of_read_bw"] =
      benchmark::Counter(bytes / 1e9 / measureReadBw(),
                         benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = np.threads();
  state.counters["slices"] = static_cast<double>(ls[0].slices.size());
  state.SetLabel(std::string(toString(path)) + ", " + np.topology().describe() +
                 ", pinned");
}

ThreadPool &schedulePool(Schedule s) {
  if (s == Schedule::Stealing)
    return pool();
  static ThreadPool shared(benchThreads(), [] {
    ThreadPoolOptions o;
    o.schedule = Schedule::Shared;
    return o;
  }());
  return shared;
}

void BM_MoeSchedule(benchmark::State &state, Method m, Schedule s, int T) {
  const KernelPath path = resolve(m);
  const std::vector<MoeWeights> &ls = layers(m.format, m.tiles);
  Batch b = makeBatch(T);
  MoeArgs a{T,           kTopK,      b.x.data(),   DType::BF16, b.ids.data(),
            IdType::I32, b.w.data(), b.out.data(), DType::F32};
  MoeOptions o;
  o.pool = &schedulePool(s);
  o.path = path;
  size_t layer = 0;
  moeForward(ls[layer++ % ls.size()], a, o);
  for (auto _ : state) {
    moeForward(ls[layer++ % ls.size()], a, o);
    benchmark::ClobberMemory();
  }
  setRates(state, moeBytesRead(ls[0], a), moeFlops(ls[0], a));
  state.counters["threads"] = o.pool->size();
  state.SetLabel(toString(path));
}

/// ~n ns of dependent integer work.
void spinWork(int n) {
  unsigned x = 1;
  for (int i = 0; i < n; ++i)
    x = x * 1664525u + 1013904223u;
  benchmark::DoNotOptimize(x);
}

void BM_PoolRun(benchmark::State &state, Schedule s, bool skewed, int n) {
  ThreadPool &tp = schedulePool(s);
  for (auto _ : state)
    tp.run(n, [&](int task, int) {
      spinWork(skewed && task < n / 8 ? 30000 : 1000);
    });
  state.counters["threads"] = tp.size();
  state.counters["tasks_per_s"] =
      benchmark::Counter(n, benchmark::Counter::kIsIterationInvariantRate);
}

/// Per-run overhead: one run() of n tasks that do nothing (wake the
/// workers, hand out the ranges, wait for completion).
void BM_PoolEmpty(benchmark::State &state, Schedule s, int n) {
  ThreadPool &tp = schedulePool(s);
  std::atomic<int> sink{0};
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state)
    tp.run(n, [&](int task, int) {
      if (task < 0) // never: keeps the task from being empty
        sink.fetch_add(1, std::memory_order_relaxed);
    });
  const auto t1 = std::chrono::steady_clock::now();
  state.counters["threads"] = tp.size();
  state.counters["us_per_run"] =
      1e6 * seconds(t0, t1) / static_cast<double>(state.iterations());
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

enum class PeakKind { Fma, Int8, Dpbf16, AmxInt8, AmxBf16 };

void BM_Peak(benchmark::State &state, PeakKind k) {
  const Peaks &pk = peaks();
  double v = 0;
  const char *unit = "";
  switch (k) {
  case PeakKind::Fma: v = pk.fma; unit = pk.fmaUnit; break;
  case PeakKind::Int8: v = pk.int8; unit = pk.int8Unit; break;
  case PeakKind::Dpbf16: v = pk.dpbf16; unit = "avx512 vdpbf16ps"; break;
  case PeakKind::AmxInt8: v = pk.amxInt8; unit = "amx tdpbssd, register tiles"; break;
  case PeakKind::AmxBf16: v = pk.amxBf16; unit = "amx tdpbf16ps, register tiles"; break;
  }
  if (v == 0) {
    state.SkipWithError("skipped: CPU lacks the unit");
    return;
  }
  for (auto _ : state)
    state.SetIterationTime(1.0);
  state.counters["TFLOPS"] = v;
  state.counters["threads"] = pool().size();
  // Ratios to the VNNI / fp32 FMA ceilings, like the kernels' fractions.
  if (k == PeakKind::AmxInt8 && pk.int8 > 0)
    state.counters["x_vnni_peak"] = v / pk.int8;
  if ((k == PeakKind::AmxBf16 || k == PeakKind::Dpbf16) && pk.fma > 0)
    state.counters["x_fp32_fma_peak"] = v / pk.fma;
  state.SetLabel(unit);
}

/// One panel micro-kernel (AMX or VNNI) called over and over on the same
/// operands on every thread: A = 32 token rows of kChunks 64-byte chunks
/// (row stride + 64, as the pipeline's panels), B = two 16-row weight
/// blocks. kChunks 8: 16 KiB each, in L1; 32 / 64: the real gate/up shape
/// (H 2048, INT8 / BF16), A and B 64 / 128 KiB each, in L2. Its fraction of
/// the register-tile peak shows what the micro-kernel alone reaches with
/// cache-resident operands, without the pipeline around it.
struct MicroCase {
  bool int8, amx;
  int kChunks;
};
void BM_Micro(benchmark::State &state, MicroCase c) {
  using namespace kt::kernels::detail;
  const WeightFormat f = c.int8 ? WeightFormat::INT8 : WeightFormat::BF16;
  const KernelPath path = c.amx ? KernelPath::AMX
                          : c.int8 ? KernelPath::AVX512
                                   : KernelPath::AVX512BF16;
  if (std::string why = missingFeature(path, f); !why.empty() ||
      (!c.int8 && c.amx && !cpuFeatures().amxBf16)) {
    state.SkipWithError(("skipped: " + (why.empty() ? "no AMX-BF16" : why)).c_str());
    return;
  }
  const PanelKernel k = c.amx ? (c.int8 ? amxInt8Panel() : amxBf16Panel())
                        : c.int8 ? vnniInt8Panel()
                                 : avx512Bf16Panel();
  const long stride = c.kChunks * 64L + 64;
  const long calls = std::max(1L, (1L << 22) / c.kChunks); // ~ same work
  ThreadPool &tp = pool();
  std::atomic<long> sink{0};
  double best = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    tp.run(tp.size(), [&](int, int) {
      // 0x3F: int8 63, bf16 0.75 (no zeros or denormals). 64-byte aligned,
      // as the pipeline's panels and tiles (a split line costs two).
      const long aBytes = 32 * stride, bBytes = 2L * c.kChunks * 1024;
      std::vector<char> buf(aBytes + bBytes + 64, 0x3F);
      char *a = reinterpret_cast<char *>(
          (reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t(63));
      char *b = a + aBytes;
      alignas(64) int32_t cbuf[32 * 32];
      for (long i = 0; i < calls / 64; ++i)
        k.micro(a, stride, 32, b, b + c.kChunks * 1024L, c.kChunks, cbuf);
      sink += cbuf[0];
    });
    const double t = seconds(t0, std::chrono::steady_clock::now());
    // 32 tokens x 32 rows x K elements, 2 ops each.
    const double K = c.kChunks * (c.int8 ? 64.0 : 32.0);
    best = std::max(best, 2.0 * 32 * 32 * K * (calls / 64) * tp.size() / t /
                              1e12);
    state.SetIterationTime(t);
  }
  benchmark::DoNotOptimize(sink.load());
  const Peaks &pk = peaks();
  const double peak = c.amx ? (c.int8 ? pk.amxInt8 : pk.amxBf16)
                      : c.int8 ? pk.int8
                               : pk.dpbf16;
  state.counters["TFLOPS"] = best;
  if (peak > 0)
    state.counters["frac_of_peak"] = best / peak;
  state.counters["threads"] = tp.size();
}

int registerAll() {
  benchmark::RegisterBenchmark("ceiling/read_bw", BM_ReadBw)->Iterations(1)->UseManualTime();
  const std::pair<const char *, PeakKind> peakNames[] = {
      {"ceiling/fp32_fma_peak", PeakKind::Fma},
      {"ceiling/int8_peak", PeakKind::Int8},
      {"ceiling/avx512bf16_peak", PeakKind::Dpbf16},
      {"ceiling/amx_int8_peak", PeakKind::AmxInt8},
      {"ceiling/amx_bf16_peak", PeakKind::AmxBf16}};
  for (auto [name, k] : peakNames)
    benchmark::RegisterBenchmark(name, BM_Peak, k)->Iterations(1)->UseManualTime();
  for (bool amx : {true, false})
    for (bool int8 : {true, false})
      for (int kc : {4, 8, int8 ? 12 : 24, int8 ? 32 : 64}) {
        const std::string name = std::string("micro/") +
                                 (amx ? "amx_" : int8 ? "vnni_" : "avx512bf16_") +
                                 (int8 ? "int8" : "bf16") +
                                 "/kchunks:" + std::to_string(kc);
        benchmark::RegisterBenchmark(name.c_str(), BM_Micro,
                                     MicroCase{int8, amx, kc})
            ->Iterations(3)
            ->UseManualTime();
      }
  auto add = [](const std::string &name, const Case &c) {
    benchmark::RegisterBenchmark(name.c_str(), BM_Moe, c)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  };
  for (const Method &m : kMethods)
    for (int T : {1, 8, 64, 512, 2048})
      if (!m.decodeOnly || T <= 8)
        add(std::string("moe/") + m.name + "/tokens:" + std::to_string(T),
            {m, T});
  // The model's 128 experts, one layer (1.2 GB in BF16).
  for (const Method &m : kMethods) {
    if (m.format == WeightFormat::INT4 && m.path != KernelPath::AMX)
      continue;
    for (int T : {1, 64, 512, 2048})
      if (!m.decodeOnly || T == 1)
        add(std::string("qwen3_30b_a3b/") + m.name +
                "/tokens:" + std::to_string(T),
            {m, T, 128, 1});
  }
  // Panel task sizes (kPanelGateRows, kPanelDownRows): the AMX path at
  // prefill sizes with other gate/up and down task heights; run with
  // --benchmark_repetitions and random interleaving to compare on a noisy
  // machine.
  for (const Method &m : kMethods) {
    if (m.path != KernelPath::AMX || m.format == WeightFormat::INT4 ||
        m.int8Act == Int8Activations::Float || m.variant())
      continue;
    for (int gr : {32, 64, 128})
      for (int dr : {32, 64, 128})
        for (int T : {512, 2048}) {
          Case c{m, T};
          c.gateRows = gr;
          c.downRows = dr;
          add(std::string("tune/") + m.name + "/gaterows:" +
                  std::to_string(gr) + "/downrows:" + std::to_string(dr) +
                  "/tokens:" + std::to_string(T),
              c);
        }
  }
  // AMX threshold: every expert gets N tokens; rows vs tiles.
  for (const Method &m : kMethods) {
    if (m.path == KernelPath::Auto && m.format == WeightFormat::INT8 &&
        m.vnniMinTokens == 0 &&
        !m.variant()) // VNNI: row kernel vs panel kernel
      for (int N : {1, 2, 4, 5, 6, 8, 16, 32})
        for (bool panel : {false, true}) {
          Method v = m;
          v.vnniMinTokens = panel ? 1 : 1 << 30;
          add(std::string("threshold/int8") + (panel ? "/vnni_panel" : "/vnni_rows") +
                  "/per_expert:" + std::to_string(N),
              {v, N, kExperts, kLayers, true});
        }
    if (m.path != KernelPath::AMX || m.int8Act == Int8Activations::Float ||
        m.variant())
      continue;
    const char *fmt = m.format == WeightFormat::INT8   ? "int8"
                      : m.format == WeightFormat::INT4 ? "int4"
                                                       : "bf16";
    for (int N : {1, 2, 3, 4, 5, 6, 8, 12, 16, 32}) {
      for (bool tiles : {false, true})
        add(std::string("threshold/") + fmt +
                (tiles                            ? "/amx"
                 : m.format == WeightFormat::INT4 ? "/rows"
                                                  : "/small_panel") +
                "/per_expert:" + std::to_string(N),
            {m, N, kExperts, kLayers, true, tiles ? 1 : kNoPanels});
    }
  }
  // NUMA split on (virtual) nodes, and the pool's schedules.
  for (const Method &m : kMethods) {
    if (m.path != KernelPath::Auto || m.variant())
      continue;
    for (int nodes : {1, 2, 3})
      for (int T : {1, 64, 512})
        benchmark::RegisterBenchmark((std::string("numa/") + m.name +
                                      "/nodes:" + std::to_string(nodes) +
                                      "/tokens:" + std::to_string(T))
                                         .c_str(),
                                     BM_MoeNuma, m, nodes, T)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
  }
  for (Schedule sc : {Schedule::Stealing, Schedule::Shared}) {
    const char *sn = sc == Schedule::Stealing ? "stealing" : "shared";
    for (const Method &m : kMethods) {
      if (m.path != KernelPath::Auto || m.format == WeightFormat::INT4)
        continue;
      for (int T : {1, 64, 512})
        benchmark::RegisterBenchmark((std::string("schedule/") + sn + "/" +
                                      m.name + "/tokens:" + std::to_string(T))
                                         .c_str(),
                                     BM_MoeSchedule, m, sc, T)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
    }
    for (bool skewed : {false, true})
      for (int n : {16, 256, 4096})
        benchmark::RegisterBenchmark((std::string("pool/") + sn +
                                      (skewed ? "/skewed" : "/even") +
                                      "/tasks:" + std::to_string(n))
                                         .c_str(),
                                     BM_PoolRun, sc, skewed, n)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
    for (int n : {2, 16, 256})
      benchmark::RegisterBenchmark(
          (std::string("pool/") + sn + "/empty/tasks:" + std::to_string(n))
              .c_str(),
          BM_PoolEmpty, sc, n)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
  }
  return 0;
}
const int registered = registerAll();

} // namespace

BENCHMARK_MAIN();
