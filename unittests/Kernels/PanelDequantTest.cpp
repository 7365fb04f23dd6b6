//===- PanelDequantTest.cpp - INT4 weights to bf16 tiles
//-------------------===//
//
// The dequantisation that feeds INT4 weights to the BF16 panel kernels
// (AMX): every element lands at PackedMatrix::tileIndex of a bf16 tile
// block, rounded from the packed value, rows past the matrix are zero, and
// the AVX512 version writes the scalar reference's bits.
//
//===----------------------------------------------------------------------===//

#include "MoeInternal.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

using namespace kt::kernels;

namespace {

PackedMatrix randomInt4(int rows, int cols, int group, bool asym) {
  std::mt19937 rng(rows * 131 + cols + group + asym);
  std::normal_distribution<float> n01;
  std::vector<float> w(static_cast<size_t>(rows) * cols);
  for (float &v : w)
    v = n01(rng);
  return packMatrix(w.data(), DType::F32, rows, cols,
                    {WeightFormat::INT4, group, asym});
}

// Index of element (n, c) of a 16-row block in bf16 tiles (as tileIndex).
size_t at(int n, int c) {
  return (c / 32) * 512 + (c % 32) / 2 * 32 + n * 2 + c % 2;
}

TEST(PanelDequant, ScalarPlacesEveryElement) {
  for (auto [rows, cols, group, asym] :
       {std::tuple{40, 200, 32, true}, std::tuple{16, 128, 128, false},
        std::tuple{7, 72, 64, false}}) {
    PackedMatrix m = randomInt4(rows, cols, group, asym);
    const int blocks = m.tileRows() / 16;
    std::vector<uint16_t> dst(16 * m.paddedCols, 0xffff);
    for (int rb = 0; rb < blocks; ++rb) {
      detail::scalarDequant()(m, rb, dst.data());
      for (int n = 0; n < 16; ++n)
        for (int c = 0; c < m.paddedCols; ++c) {
          const int r = rb * 16 + n;
          const uint16_t want = r < rows ? f32ToBf16(m.dequant(r, c)) : 0;
          ASSERT_EQ(dst[at(n, c)], want) << "row " << r << " col " << c;
        }
    }
  }
}

TEST(PanelDequant, Avx512MatchesScalarBits) {
  const CpuFeatures &f = cpuFeatures();
  if (!(f.avx512f && f.avx512bw && f.avx512vl && f.avx512bf16))
    GTEST_SKIP() << "skipped: CPU lacks AVX512 with AVX512-BF16";
  for (auto [rows, cols, group, asym] :
       {std::tuple{40, 200, 32, true}, std::tuple{768, 2048, 64, false},
        std::tuple{33, 384, 128, true}, std::tuple{5, 100, 64, true}}) {
    PackedMatrix m = randomInt4(rows, cols, group, asym);
    std::vector<uint16_t> a(16 * m.paddedCols), b(16 * m.paddedCols);
    for (int rb = 0; rb < m.tileRows() / 16; ++rb) {
      detail::scalarDequant()(m, rb, a.data());
      detail::avx512Dequant()(m, rb, b.data());
      ASSERT_EQ(a, b) << "rows " << rows << " cols " << cols << " block " << rb;
    }
  }
}

} // namespace
