//===- PanelDequant.cpp - Weights to bf16 tiles, portable reference -------===//
//
// The BF16 panel micro-kernels read weights as 1 KiB bf16 tiles (16 weight
// rows x 32 input elements, pairs of elements per 32-bit word; see
// PackedMatrix::tileIndex). Formats without a bf16 tile layout of their own
// (INT4's nibbles and group scales) are dequantised into that layout one
// 16-row block at a time, just before the micro-kernel uses it.
//
//===----------------------------------------------------------------------===//

#include "MoeInternal.h"

#include <cstring>

namespace kt::kernels::detail {
namespace {

void dequantScalar(const PackedMatrix &m, int rowBlock, uint16_t *dst) {
  const int P = m.paddedCols;
  std::memset(dst, 0, static_cast<std::size_t>(kTileRows) * P * 2);
  for (int n = 0; n < kTileRows; ++n) {
    const int r = rowBlock * kTileRows + n;
    if (r >= m.rows)
      break;
    // Padding columns hold whatever the format stores there (INT4: the
    // level nearest zero); activations are zero there.
    for (int c = 0; c < P; ++c)
      dst[(c / 32) * 512 + (c % 32) / 2 * 32 + n * 2 + c % 2] =
          f32ToBf16(m.dequant(r, c));
  }
}

} // namespace

PanelDequant scalarDequant() { return dequantScalar; }

} // namespace kt::kernels::detail
