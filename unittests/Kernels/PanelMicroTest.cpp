//===- PanelMicroTest.cpp - Panel micro-kernels against the reference -----===//
//
// Every hardware panel micro-kernel (PanelMicro in MoeInternal.h) against
// scalarPanel's portable reference on random tile data: A panels of 1 .. 32
// rows (partial 8-token strips and 16-row A tiles), one or two 16-row weight
// blocks, several input chunks. The hardware kernels skip (with the missing
// feature) on CPUs without them; the reference itself is checked against
// plain dot products over the packed row layout, which runs everywhere.
//
//===----------------------------------------------------------------------===//

#include "MoeInternal.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace kt::kernels;
using namespace kt::kernels::detail;

namespace {

constexpr int kTile = kTileRows * kTileBytes; // 1 KiB

/// Random operands of one micro-kernel call: A (32 rows, stride aStride),
/// B0 / B1 (kChunks tiles each). INT8: A holds s8 values q in [-127, 127]
/// (aU8: q + 128, for the u8 kernels), B s8 weights. BF16: bf16 bits of
/// N(0, 1) values in A and B.
struct Operands {
  int kChunks = 0;
  long aStride = 0;
  std::vector<char> a, aU8, b0, b1;
};

Operands makeOperands(bool int8, int kChunks, unsigned seed) {
  Operands o;
  o.kChunks = kChunks;
  o.aStride = static_cast<long>(kChunks) * kTileBytes + 64; // as MoeTiled
  std::mt19937 rng(seed);
  std::normal_distribution<float> n01;
  std::uniform_int_distribution<int> q(-127, 127);
  auto fill = [&](std::vector<char> &v, std::size_t bytes) {
    v.assign(bytes, 0);
    if (int8) {
      for (char &c : v)
        c = static_cast<char>(q(rng));
    } else {
      for (std::size_t i = 0; i + 1 < bytes; i += 2) {
        const uint16_t h = f32ToBf16(n01(rng));
        std::memcpy(&v[i], &h, 2);
      }
    }
  };
  fill(o.a, 32 * o.aStride);
  fill(o.b0, static_cast<std::size_t>(kChunks) * kTile);
  fill(o.b1, static_cast<std::size_t>(kChunks) * kTile);
  o.aU8 = o.a;
  for (char &c : o.aU8)
    c = static_cast<char>(static_cast<uint8_t>(static_cast<int8_t>(c) + 128));
  return o;
}

/// Sum of |a * b| over the input dimension for token m and output column c:
/// the scale of fp32 rounding in a BF16 dot product.
double absDot(const Operands &o, int m, int c) {
  const std::vector<char> &b = c < 16 ? o.b0 : o.b1;
  double s = 0;
  for (int kc = 0; kc < o.kChunks; ++kc)
    for (int kk = 0; kk < kTileRows; ++kk)
      for (int j = 0; j < 2; ++j) {
        uint16_t x, w;
        std::memcpy(&x, &o.a[m * o.aStride + kc * kTileBytes + kk * 4 + 2 * j],
                    2);
        std::memcpy(&w, &b[kc * kTile + kk * kTileBytes + (c % 16) * 4 + 2 * j],
                    2);
        s += std::fabs(double(bf16ToF32(x)) * bf16ToF32(w));
      }
  return s;
}

/// Runs `k` and the reference on the same operands for M = 1 .. 32 tokens,
/// with one and two weight blocks, and compares: INT8 exactly (u8 kernels
/// remove their activations' offset themselves), BF16 within fp32 rounding.
void compareWithReference(const PanelKernel &k, const char *name) {
  const PanelKernel ref = scalarPanel(k.int8);
  for (int kChunks : {1, 2, 5}) {
    const Operands o = makeOperands(k.int8, kChunks, 17 + kChunks);
    for (int M : {1, 2, 3, 7, 8, 9, 15, 16, 17, 24, 31, 32}) {
      for (bool two : {false, true}) {
        SCOPED_TRACE(std::string(name) + " kChunks " + std::to_string(kChunks) +
                     " M " + std::to_string(M) + (two ? " two" : " one") +
                     " blocks");
        const char *b1 = two ? o.b1.data() : nullptr;
        alignas(64) int32_t got[32 * 32], want[32 * 32];
        std::fill(std::begin(got), std::end(got), 0);
        std::fill(std::begin(want), std::end(want), 0);
        const std::vector<char> &a = k.unsignedA ? o.aU8 : o.a;
        k.micro(a.data(), o.aStride, M, o.b0.data(), b1, kChunks, got);
        ref.micro(o.a.data(), o.aStride, M, o.b0.data(), b1, kChunks, want);
        const int cols = two ? 32 : 16;
        int bad = 0;
        for (int m = 0; m < M; ++m)
          for (int c = 0; c < cols; ++c) {
            const int i = m * 32 + c;
            if (k.int8) {
              bad += got[i] != want[i];
            } else {
              float g, w;
              std::memcpy(&g, &got[i], 4);
              std::memcpy(&w, &want[i], 4);
              const double tol = 1e-6 * kChunks * 32 * absDot(o, m, c) + 1e-30;
              if (!(std::fabs(double(g) - w) <= tol) && bad++ < 5)
                ADD_FAILURE() << "C[" << m << "][" << c << "] = " << g
                              << ", reference " << w;
            }
          }
        EXPECT_EQ(bad, 0);
      }
    }
  }
}

#define SKIP_UNLESS(cond, why)                                                 \
  do {                                                                         \
    if (!(cond))                                                               \
      GTEST_SKIP() << "skipped: " << (why);                                    \
  } while (0)

TEST(PanelMicro, Avx512Bf16MatchesReference) {
  const std::string why =
      missingFeature(KernelPath::AVX512BF16, WeightFormat::BF16);
  SKIP_UNLESS(why.empty(), why);
  compareWithReference(avx512Bf16Panel(), "avx512bf16");
}

TEST(PanelMicro, VnniInt8MatchesReference) {
  const std::string why =
      missingFeature(KernelPath::AVX512, WeightFormat::INT8);
  SKIP_UNLESS(why.empty(), why);
  compareWithReference(vnniInt8Panel(), "vnni");
}

TEST(PanelMicro, AmxInt8MatchesReference) {
  const std::string why = missingFeature(KernelPath::AMX, WeightFormat::INT8);
  SKIP_UNLESS(why.empty(), why);
  compareWithReference(amxInt8Panel(), "amx int8");
}

TEST(PanelMicro, AmxBf16MatchesReference) {
  const std::string why = missingFeature(KernelPath::AMX, WeightFormat::BF16);
  SKIP_UNLESS(why.empty(), why);
  compareWithReference(amxBf16Panel(), "amx bf16");
}

// The reference micro-kernel on a packed matrix's tile layout computes the
// dot products of the row layout (runs on every CPU).
TEST(PanelMicro, ReferenceReadsTheTileLayout) {
  const int rows = 37, cols = 200; // 3 row blocks, last partial; K padded
  std::mt19937 rng(5);
  std::normal_distribution<float> n01;
  std::vector<float> src(rows * cols);
  for (float &v : src)
    v = n01(rng);
  for (WeightFormat f : {WeightFormat::BF16, WeightFormat::INT8}) {
    SCOPED_TRACE(toString(f));
    const bool int8 = f == WeightFormat::INT8;
    QuantConfig cfg{f, 0, false, TilePacking::Always};
    const PackedMatrix w = packMatrix(src.data(), DType::F32, rows, cols, cfg);
    const int P = w.paddedCols, esz = int8 ? 1 : 2;
    const int kChunks = P * esz / kTileBytes;
    const long aStride = static_cast<long>(P) * esz + 64;
    // 5 activation rows (s8 or bf16); 16 rows allocated (a partial A tile).
    std::vector<char> a(16 * aStride, 0);
    for (int m = 0; m < 5; ++m)
      for (int c = 0; c < P; ++c) {
        char *p = &a[m * aStride + c * esz];
        if (int8) {
          *p = static_cast<char>(static_cast<int>(n01(rng) * 40) % 128);
        } else {
          const uint16_t h = f32ToBf16(c < cols ? n01(rng) : 0.f);
          std::memcpy(p, &h, 2);
        }
      }
    const PanelKernel k = scalarPanel(int8);
    const char *tiles =
        int8 ? reinterpret_cast<const char *>(w.q8Tiles.data())
             : reinterpret_cast<const char *>(w.bf16Tiles.data());
    const std::size_t blockBytes = static_cast<std::size_t>(kChunks) * kTile;
    for (int rb = 0; rb < w.tileRows() / kTileRows; rb += 2) {
      const char *b0 = tiles + rb * blockBytes;
      const char *b1 =
          (rb + 1) * kTileRows < w.tileRows() ? b0 + blockBytes : nullptr;
      alignas(64) int32_t c[32 * 32];
      k.micro(a.data(), aStride, 5, b0, b1, kChunks, c);
      for (int m = 0; m < 5; ++m)
        for (int n = 0; n < (b1 ? 32 : 16); ++n) {
          const int r = rb * kTileRows + n;
          double want = 0;
          for (int col = 0; col < P; ++col) {
            const double wv =
                r >= rows ? 0
                : int8
                    ? w.q8[static_cast<std::size_t>(r) * P + col]
                    : bf16ToF32(w.bf16[static_cast<std::size_t>(r) * P + col]);
            double av;
            if (int8) {
              av = static_cast<int8_t>(a[m * aStride + col]);
            } else {
              uint16_t h;
              std::memcpy(&h, &a[m * aStride + 2 * col], 2);
              av = bf16ToF32(h);
            }
            want += wv * av;
          }
          if (int8) {
            EXPECT_EQ(c[m * 32 + n], static_cast<int32_t>(want))
                << "row " << r << " token " << m;
          } else {
            float got;
            std::memcpy(&got, &c[m * 32 + n], 4);
            EXPECT_NEAR(got, want, 1e-4 * (1 + std::fabs(want)))
                << "row " << r << " token " << m;
          }
        }
    }
  }
}

} // namespace
