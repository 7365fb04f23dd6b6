//===- Dispatch.cpp - Run-time choice of the CPU ops path ----------------===//
//
// Auto resolves to AVX512 (F+BW+VL) when present, else AVX2 (+FMA, F16C),
// else scalar. setCpuOpsPath() forces one for tests.
//
//===----------------------------------------------------------------------===//

#include "OpsInternal.h"

#include <atomic>

namespace kt::cpu {
namespace {

bool supported(OpsPath p) {
  const kernels::CpuFeatures &c = kernels::cpuFeatures();
  switch (p) {
  case OpsPath::Auto:
  case OpsPath::Scalar:
    return true;
  case OpsPath::AVX2:
    return c.avx2 && c.fma && c.f16c;
  case OpsPath::AVX512:
    return c.avx512f && c.avx512bw && c.avx512vl && c.fma;
  }
  return false;
}

OpsPath best() {
  if (supported(OpsPath::AVX512))
    return OpsPath::AVX512;
  if (supported(OpsPath::AVX2))
    return OpsPath::AVX2;
  return OpsPath::Scalar;
}

std::atomic<OpsPath> &current() {
  static std::atomic<OpsPath> p{best()};
  return p;
}

} // namespace

bool setCpuOpsPath(OpsPath path) {
  if (!supported(path))
    return false;
  current().store(path == OpsPath::Auto ? best() : path);
  return true;
}

OpsPath activeCpuOpsPath() { return current().load(); }

const char *toString(OpsPath path) {
  switch (path) {
  case OpsPath::Auto:
    return "auto";
  case OpsPath::Scalar:
    return "scalar";
  case OpsPath::AVX2:
    return "avx2";
  case OpsPath::AVX512:
    return "avx512";
  }
  return "?";
}

MatrixView MatrixView::rowRange(int64_t first, int64_t count) const {
  MatrixView v = *this;
  v.data = detail::rowPtr(*this, first);
  v.rows = count;
  return v;
}

namespace detail {

const Kernels &kernels() {
  switch (current().load(std::memory_order_relaxed)) {
  case OpsPath::AVX512:
    return avx512Kernels();
  case OpsPath::AVX2:
    return avx2Kernels();
  default:
    return scalarKernels();
  }
}

} // namespace detail
} // namespace kt::cpu
