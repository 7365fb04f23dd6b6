//===- Linear.cpp - Dense linear and embedding lookup --------------------===//
//
// linear: y = x · wᵀ + b, the weight read in its own type (f32/bf16/f16) and
// widened on the fly. Work is split over blocks of output rows (each task
// streams its rows once per chunk of tokens), so the 1-token GEMV and the
// many-token GEMM share one driver.
//
//===----------------------------------------------------------------------===//

#include "OpsInternal.h"

#include <algorithm>

namespace kt::cpu {

using namespace detail;

void linear(const float *x, int64_t tokens, const MatrixView &w,
            const float *bias, float *y, ThreadPool *pool) {
  if (tokens <= 0 || w.rows <= 0)
    return;
  if (w.cols == 0) {
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t r = 0; r < w.rows; ++r)
        y[t * w.rows + r] = bias ? bias[r] : 0.0f;
    return;
  }
  const Kernels &k = kernels();
  const int threads = poolThreads(pool);
  // About four tasks per thread for balance, rows a multiple of 4 (the tile
  // height), at least 16 rows per task.
  int64_t chunk = (w.rows + threads * 4 - 1) / (threads * 4);
  chunk = std::max<int64_t>(16, (chunk + 3) / 4 * 4);
  const int64_t tasks = (w.rows + chunk - 1) / chunk;
  // Tokens are processed in chunks so that the activations a task re-reads
  // for each row tile stay in cache.
  constexpr int64_t TokenChunk = 48;
  parallelFor(pool, tasks, [&](int64_t task, int) {
    const int64_t r0 = task * chunk, r1 = std::min(w.rows, r0 + chunk);
    for (int64_t t0 = 0; t0 < tokens; t0 += TokenChunk) {
      const int64_t nt = std::min(TokenChunk, tokens - t0);
      k.gemm(x + t0 * w.cols, w.cols, nt, w, r0, r1, bias, y + t0 * w.rows,
             w.rows);
    }
  });
}

void embedding(const int64_t *ids, int64_t tokens, const MatrixView &table,
               float *out) {
  for (int64_t t = 0; t < tokens; ++t) {
    const void *row = rowPtr(table, ids[t]);
    float *o = out + t * table.cols;
    switch (table.type) {
    case WType::F32:
      std::copy_n(static_cast<const float *>(row), table.cols, o);
      break;
    default:
      for (int64_t i = 0; i < table.cols; ++i)
        o[i] = loadW(row, table.type, i);
    }
  }
}

} // namespace kt::cpu
