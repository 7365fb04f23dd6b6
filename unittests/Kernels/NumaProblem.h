//===- NumaProblem.h - random MoE problems for the NUMA tests ---*- C++ -*-===//
//
// Shared by NumaMoeTest.cpp (virtual nodes, every machine) and
// NumaMachineTest.cpp (real nodes, run in scripts/numa-vm.py's VM).
//
//===----------------------------------------------------------------------===//
#ifndef KT_UNITTESTS_KERNELS_NUMAPROBLEM_H
#define KT_UNITTESTS_KERNELS_NUMAPROBLEM_H

#include "kt/Runtime/Kernels/NumaMoe.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

namespace kt::kernels::testing_numa {

struct Problem {
  int E, H, I, T, K;
  std::vector<float> gate, up, down, x, wts;
  std::vector<int64_t> ids;
  std::vector<ExpertSource> sources() const {
    std::vector<ExpertSource> s(E);
    for (int e = 0; e < E; ++e)
      s[e] = {&gate[size_t(e) * I * H], &up[size_t(e) * I * H],
              &down[size_t(e) * H * I]};
    return s;
  }
};

inline Problem makeProblem(int E, int H, int I, int T, int K, unsigned seed) {
  Problem p{E, H, I, T, K, {}, {}, {}, {}, {}, {}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> n01;
  auto fill = [&](std::vector<float> &v, size_t n, float sd) {
    v.resize(n);
    for (float &f : v)
      f = n01(rng) * sd;
  };
  fill(p.gate, size_t(E) * I * H, 1 / std::sqrt(float(H)));
  fill(p.up, size_t(E) * I * H, 1 / std::sqrt(float(H)));
  fill(p.down, size_t(E) * H * I, 1 / std::sqrt(float(I)));
  fill(p.x, size_t(T) * H, 1);
  p.ids.resize(size_t(T) * K);
  p.wts.resize(p.ids.size());
  for (int t = 0; t < T; ++t) {
    std::vector<int> perm(E);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int j = 0; j < K; ++j) {
      p.ids[t * K + j] = t % 5 == 2 && j == 1 ? -1 : perm[j]; // some skips
      p.wts[t * K + j] = std::uniform_real_distribution<float>(0.1f, 1)(rng);
    }
  }
  return p;
}

inline MoeArgs argsOf(const Problem &p, std::vector<float> &out) {
  out.assign(size_t(p.T) * p.H, NAN);
  return {p.T,         p.K,          p.x.data(), DType::F32, p.ids.data(),
          IdType::I64, p.wts.data(), out.data(), DType::F32};
}

struct Fmt {
  const char *name;
  QuantConfig cfg;
};
inline const Fmt kFormats[] = {
    {"bf16", {WeightFormat::BF16, 64, false}},
    {"int8", {WeightFormat::INT8, 64, false}},
    {"int4_g32_sym", {WeightFormat::INT4, 32, false}},
    {"int4_g128_asym", {WeightFormat::INT4, 128, true}},
};

inline double maxDiffRel(const std::vector<float> &a,
                         const std::vector<float> &b) {
  double d = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d = std::max(d, std::fabs(double(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(double(b[i])));
  }
  return d / scale;
}

constexpr double kSplitTolerance = 1e-6;
constexpr double kSplitPanelInt8Tolerance = 0.05;

/// The best path that runs every expert on the row kernels (the AMX path
/// runs them all on the tile layout; its row-layout counterpart is
/// AVX512BF16 / AVX512). With vnniMinTokens = 1 << 30 nothing takes panels.
inline KernelPath rowPath(WeightFormat f) {
  const KernelPath p = bestPath(f);
  if (p != KernelPath::AMX)
    return p;
  return f == WeightFormat::BF16 ? KernelPath::AVX512BF16 : KernelPath::AVX512;
}

/// f.cfg with both layouts: the row kernels' exact split and the default
/// path's panels on one packed set.
inline QuantConfig bothLayouts(QuantConfig cfg) {
  cfg.tiles = TilePacking::Always;
  return cfg;
}

} // namespace kt::kernels::testing_numa

#endif // KT_UNITTESTS_KERNELS_NUMAPROBLEM_H
