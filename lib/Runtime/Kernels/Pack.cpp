//===- Pack.cpp - Packed weight formats and CPU features ------------------===//

#include "MoeInternal.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace kt::kernels {

const char *toString(WeightFormat f) {
  switch (f) {
  case WeightFormat::BF16: return "bf16";
  case WeightFormat::INT8: return "int8";
  case WeightFormat::INT4: return "int4";
  }
  return "?";
}

const char *toString(KernelPath p) {
  switch (p) {
  case KernelPath::Auto: return "auto";
  case KernelPath::Scalar: return "scalar";
  case KernelPath::AVX2: return "avx2";
  case KernelPath::AVX512: return "avx512";
  case KernelPath::AVX512BF16: return "avx512bf16";
  case KernelPath::AMX: return "amx";
  }
  return "?";
}

const char *toString(Int8Activations a) {
  return a == Int8Activations::Int8 ? "int8" : "float";
}

const CpuFeatures &cpuFeatures() {
  static const CpuFeatures f = [] {
    CpuFeatures c;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    c.avx2 = __builtin_cpu_supports("avx2");
    c.fma = __builtin_cpu_supports("fma");
    c.f16c = __builtin_cpu_supports("f16c");
    c.avx512f = __builtin_cpu_supports("avx512f");
    c.avx512bw = __builtin_cpu_supports("avx512bw");
    c.avx512vl = __builtin_cpu_supports("avx512vl");
    c.avx512vnni = __builtin_cpu_supports("avx512vnni");
    unsigned a, b, cx, d;
    if (__get_cpuid_max(0, nullptr) >= 7) {
      __cpuid_count(7, 0, a, b, cx, d);
      const unsigned maxSub = a;
      c.amxBf16 = d >> 22 & 1;
      c.amxTile = d >> 24 & 1;
      c.amxInt8 = d >> 25 & 1;
      if (maxSub >= 1) {
        __cpuid_count(7, 1, a, b, cx, d);
        c.avx512bf16 = a >> 5 & 1;
      }
    }
    __cpuid(1, a, b, cx, d);
    if (cx >> 27 & 1) { // OSXSAVE: XCR0 is readable
      unsigned lo, hi;
      __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
      c.amxOsEnabled = (lo >> 17 & 3) == 3; // XTILECFG, XTILEDATA
    }
#if defined(__linux__)
    // Linux enables the 8 KiB tile data state per process on request
    // (ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18); without it
    // the first tile instruction raises SIGILL.
    if (c.amxTile && c.amxOsEnabled)
      c.amxPermitted = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#endif
#endif
    return c;
  }();
  return f;
}

std::string missingFeature(KernelPath path, WeightFormat format) {
  const CpuFeatures &c = cpuFeatures();
  switch (path) {
  case KernelPath::Auto:
  case KernelPath::Scalar:
    return "";
  case KernelPath::AVX2:
    if (!c.avx2 || !c.fma)
      return "CPU lacks AVX2/FMA";
    return "";
  case KernelPath::AVX512: {
    std::string lacks;
    auto need = [&](bool have, const char *name) {
      if (!have)
        lacks += lacks.empty() ? name : std::string(", ") + name;
    };
    if (format == WeightFormat::INT8)
      need(c.avx512vnni, "AVX512-VNNI");
    need(c.avx512f, "AVX512F");
    need(c.avx512bw, "AVX512BW");
    need(c.avx512vl, "AVX512VL");
    need(c.fma, "FMA");
    return lacks.empty() ? "" : "CPU lacks " + lacks;
  }
  case KernelPath::AVX512BF16:
  case KernelPath::AMX: {
    const bool amx = path == KernelPath::AMX;
    // INT4 on AMX: nibbles dequantised to bf16 tiles for tdpbf16ps.
    const bool bf16Tiles = format != WeightFormat::INT8;
    std::string lacks;
    auto need = [&](bool have, const char *name) {
      if (!have)
        lacks += lacks.empty() ? name : std::string(", ") + name;
    };
    if (amx) {
      need(c.amxTile, "AMX-TILE");
      need(format != WeightFormat::INT8 || c.amxInt8, "AMX-INT8");
      need(!bf16Tiles || c.amxBf16, "AMX-BF16");
    }
    // The row kernels (decode, and INT4 on AVX512BF16); AMX INT4 also
    // rounds its dequantised weights with vcvtne2ps2bf16.
    need(format != WeightFormat::INT8 || c.avx512vnni, "AVX512-VNNI");
    const bool wantsBf16 =
        format == WeightFormat::BF16 || (amx && format == WeightFormat::INT4);
    need(!wantsBf16 || c.avx512bf16, "AVX512-BF16");
    need(c.avx512f, "AVX512F");
    need(c.avx512bw, "AVX512BW");
    need(c.avx512vl, "AVX512VL");
    need(c.fma, "FMA");
    if (!lacks.empty())
      return amx && !c.amxTile ? "CPU lacks AMX (" + lacks + ")"
                               : "CPU lacks " + lacks;
    if (amx && !c.amxOsEnabled)
      return "OS has not enabled AMX tile state (XCR0 bits 17/18)";
    if (amx && !c.amxPermitted)
      return "not permitted: arch_prctl(ARCH_REQ_XCOMP_PERM, "
             "XFEATURE_XTILEDATA=18) failed";
    return "";
  }
  }
  return "unknown path";
}

bool pathSupported(KernelPath path, WeightFormat format) {
  return missingFeature(path, format).empty();
}

KernelPath bestPath(WeightFormat format) {
  if (pathSupported(KernelPath::AMX, format))
    return KernelPath::AMX;
  if (format == WeightFormat::BF16 &&
      pathSupported(KernelPath::AVX512BF16, format))
    return KernelPath::AVX512BF16;
  if (pathSupported(KernelPath::AVX512, format))
    return KernelPath::AVX512;
  if (pathSupported(KernelPath::AVX2, format))
    return KernelPath::AVX2;
  return KernelPath::Scalar;
}

//===----------------------------------------------------------------------===//
// Packing
//===----------------------------------------------------------------------===//

std::size_t PackedMatrix::bytes() const {
  const std::size_t rowLayout = bf16.size() * 2 + q8.size() + q4.size();
  const std::size_t tiles = q8Tiles.size() + bf16Tiles.size() * 2;
  return (hasRows() ? rowLayout : tiles) + rowSum.size() * 4 +
         scales.size() * 4 + offsets.size() * 4;
}

std::size_t PackedMatrix::memoryBytes() const {
  return bf16.size() * 2 + q8.size() + q4.size() + q8Tiles.size() +
         bf16Tiles.size() * 2 + rowSum.size() * 4 + scales.size() * 4 +
         offsets.size() * 4;
}

float PackedMatrix::dequant(int r, int c) const {
  std::size_t i = static_cast<std::size_t>(r) * paddedCols + c;
  const bool rowLayout = hasRows();
  switch (format) {
  case WeightFormat::BF16:
    return bf16ToF32(rowLayout ? bf16[i] : bf16Tiles[tileIndex(r, c)]);
  case WeightFormat::INT8:
    return (rowLayout ? q8[i] : q8Tiles[tileIndex(r, c)]) * scales[r];
  case WeightFormat::INT4: {
    int blk = c / 32, e = c % 32;
    uint8_t b = q4[(static_cast<std::size_t>(r) * paddedCols + blk * 32) / 2 +
                   (e & 15)];
    int q = e < 16 ? (b & 15) : (b >> 4);
    std::size_t g = static_cast<std::size_t>(r) * groupsPerRow() + c / groupSize;
    return q * scales[g] + offsets[g];
  }
  }
  return 0;
}

void PackedMatrix::dequantRow(int r, float *out) const {
  for (int c = 0; c < cols; ++c)
    out[c] = dequant(r, c);
  hadamardRotate(out, cols, rotation);
}

int downRotation(const QuantConfig &cfg) {
  return cfg.format == WeightFormat::INT8 && cfg.rotateDown ? kRotationBlock
                                                            : 0;
}

namespace {

inline float loadSrc(const void *src, DType t, std::size_t i) {
  return t == DType::F32 ? static_cast<const float *>(src)[i]
                         : bf16ToF32(static_cast<const uint16_t *>(src)[i]);
}

// Quantise one INT4 group of n values to nibbles in [0, 15] with
// w ~= q * scale + offset (symmetric: offset = -8 * scale), least squared
// error first:
//  1. candidate ranges: a few clipping ratios of the group's range
//     (asymmetric) or of its largest magnitude mapped to level 0
//     (symmetric, as llama.cpp's Q4_0: all 16 levels are used; mapping it
//     to level 15 as well was measured: 0.3% less error, twice the time);
//  2. refinement: with the levels fixed, the least-squares scale (and
//     offset) has a closed form; refit and reassign while the error drops
//     (llama.cpp's k-quants refine their scales in the same spirit).
// Measured on one Gaussian projection (Int4SingleProjectionError): about 4%
// less error than the clipping search alone for asymmetric groups.
void quantGroup4(const float *w, int n, bool asym, uint8_t *q, float &scale,
                 float &offset) {
  static const float ratios[] = {1.0f, 0.95f, 0.9f, 0.85f, 0.8f, 0.75f};
  float lo = 0, hi = 0, big = 0; // big: the value of largest magnitude
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, w[i]);
    hi = std::max(hi, w[i]);
    if (std::fabs(w[i]) > std::fabs(big))
      big = w[i];
  }
  float bestErr = INFINITY, bestS = 0, bestO = 0;
  uint8_t tmp[128];
  // Levels for (s, o) into tmp; keeps them in q when the error is lower.
  auto consider = [&](float s, float o) {
    if (!std::isfinite(s) || !std::isfinite(o))
      return false;
    // Level = round((w - o) / s), clamped to [0, 15]: the quotient is
    // clamped first, then rounded half up by truncation (no libm call in
    // this hot loop; ties may round differently from nearbyint, harmless).
    const float inv = s != 0 ? 1.f / s : 0.f;
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const float t = std::clamp((w[i] - o) * inv, -1.f, 16.f);
      int v = s != 0 ? static_cast<int>(t + 0.5f) : (asym ? 0 : 8);
      v = std::clamp(v, 0, 15);
      tmp[i] = static_cast<uint8_t>(v);
      const float d = v * s + o - w[i];
      err += d * d;
    }
    if (!(err < bestErr))
      return false;
    bestErr = err;
    bestS = s;
    bestO = o;
    std::copy(tmp, tmp + n, q);
    return true;
  };
  for (float ratio : ratios) {
    if (asym) {
      consider((hi - lo) * ratio / 15.f, lo * ratio);
    } else {
      consider(-big * ratio / 8.f, big * ratio); // big at level 0
    }
  }
  for (int round = 0; round < 3 && bestErr > 0; ++round) {
    double sl = 0, sll = 0, sw = 0, slw = 0;
    for (int i = 0; i < n; ++i) {
      const double l = asym ? q[i] : q[i] - 8.0; // w ~ s * l (+ o)
      sl += l;
      sll += l * l;
      sw += w[i];
      slw += l * w[i];
    }
    double s, o;
    if (asym) {
      const double det = n * sll - sl * sl;
      if (det <= 0)
        break;
      s = (n * slw - sl * sw) / det;
      o = (sw - s * sl) / n;
    } else {
      if (sll <= 0)
        break;
      s = slw / sll;
      o = -8 * s;
    }
    if (s == 0 || !consider(static_cast<float>(s), static_cast<float>(o)))
      break;
  }
  scale = bestS;
  offset = bestO;
}

} // namespace

PackedMatrix packMatrix(const void *src, DType srcType, int rows, int cols,
                        const QuantConfig &cfg, int rotation) {
  return packMatrixColumns(src, srcType, rows, cols, 0, cols, cfg, rotation);
}

PackedMatrix packMatrixColumns(const void *src, DType srcType, int rows,
                               int srcCols, int c0, int c1,
                               const QuantConfig &cfg, int rotation) {
  if (!src || rows <= 0 || srcCols <= 0)
    throw std::invalid_argument("packMatrix: empty source");
  if (rotation < 0 || (rotation & (rotation - 1)) || rotation > 128)
    throw std::invalid_argument("packMatrix: rotation block " +
                                std::to_string(rotation) +
                                " (need 0 or a power of two up to 128)");
  if (c0 < 0 || c1 > srcCols || c1 <= c0 || c0 % 128)
    throw std::invalid_argument(
        "packMatrixColumns: columns [" + std::to_string(c0) + ", " +
        std::to_string(c1) + ") of " + std::to_string(srcCols) +
        " (need 0 <= c0 < c1 <= cols, c0 a multiple of 128)");
  const int cols = c1 - c0;
  PackedMatrix m;
  m.format = cfg.format;
  m.rows = rows;
  m.cols = cols;
  m.paddedCols = (cols + 127) / 128 * 128;
  m.rotation = rotation;
  const std::size_t P = m.paddedCols;
  std::vector<float> row(P, 0.f);
  // Row r's columns [c0, c1) into `row`, and (INT8) the row's max |w|. A
  // rotation, or the INT8 scale of a column slice, needs the whole source
  // row (rotated): a slice then quantises exactly like the full matrix.
  const bool whole =
      rotation != 0 || (cfg.format == WeightFormat::INT8 && cols != srcCols);
  std::vector<float> full(whole ? srcCols : 0);
  float rowAbsMax = 0;
  auto fetchRow = [&](int r) {
    const std::size_t base = static_cast<std::size_t>(r) * srcCols;
    float *dst = whole ? full.data() : row.data();
    const int c0Src = whole ? 0 : c0, n = whole ? srcCols : cols;
    for (int c = 0; c < n; ++c)
      dst[c] = loadSrc(src, srcType, base + c0Src + c);
    hadamardRotate(dst, n, rotation);
    rowAbsMax = 0;
    for (int c = 0; c < n; ++c)
      rowAbsMax = std::max(rowAbsMax, std::fabs(dst[c]));
    if (whole)
      std::copy(full.begin() + c0, full.begin() + c1, row.begin());
  };
  switch (cfg.format) {
  case WeightFormat::BF16:
    m.bf16.assign(rows * P, 0);
    for (int r = 0; r < rows; ++r) {
      fetchRow(r);
      for (int c = 0; c < cols; ++c)
        m.bf16[r * P + c] = f32ToBf16(row[c]);
    }
    break;
  case WeightFormat::INT8:
    m.q8.assign(rows * P, 0);
    m.scales.assign(rows, 0.f);
    m.rowSum.assign(rows * P / detail::kActBlock, 0);
    for (int r = 0; r < rows; ++r) {
      fetchRow(r);
      float s = rowAbsMax / 127.f;
      m.scales[r] = s;
      for (int c = 0; c < cols; ++c) {
        int v = s != 0 ? static_cast<int>(std::nearbyint(row[c] / s)) : 0;
        v = std::clamp(v, -127, 127);
        m.q8[r * P + c] = static_cast<int8_t>(v);
        m.rowSum[r * P / detail::kActBlock + c / detail::kActBlock] += v;
      }
    }
    break;
  case WeightFormat::INT4: {
    if (cfg.groupSize != 32 && cfg.groupSize != 64 && cfg.groupSize != 128)
      throw std::invalid_argument("packMatrix: INT4 group size must be 32, "
                                  "64 or 128");
    m.groupSize = cfg.groupSize;
    m.asymmetric = cfg.asymmetric;
    const int G = m.groupsPerRow();
    m.q4.assign(rows * P / 2, 0);
    m.scales.assign(static_cast<std::size_t>(rows) * G, 0.f);
    m.offsets.assign(static_cast<std::size_t>(rows) * G, 0.f);
    std::vector<uint8_t> q(P, 0);
    for (int r = 0; r < rows; ++r) {
      fetchRow(r);
      for (int g = 0; g < G; ++g) {
        int c0 = g * cfg.groupSize;
        int n = std::clamp(cols - c0, 0, cfg.groupSize);
        float s = 0, o = 0;
        if (n > 0)
          quantGroup4(&row[c0], n, cfg.asymmetric, &q[c0], s, o);
        // Padding (activations there are zero): the level closest to 0.
        int pad = s != 0 ? std::clamp(static_cast<int>(std::nearbyint(-o / s)),
                                      0, 15)
                         : 0;
        for (int c = c0 + n; c < c0 + cfg.groupSize; ++c)
          q[c] = static_cast<uint8_t>(pad);
        m.scales[static_cast<std::size_t>(r) * G + g] = s;
        m.offsets[static_cast<std::size_t>(r) * G + g] = o;
      }
      uint8_t *dst = &m.q4[r * P / 2];
      for (std::size_t blk = 0; blk < P / 32; ++blk)
        for (int e = 0; e < 16; ++e)
          dst[blk * 16 + e] = static_cast<uint8_t>(
              q[blk * 32 + e] | (q[blk * 32 + 16 + e] << 4));
    }
    break;
  }
  }
  if (wantsTiles(cfg))
    addTileLayout(m);
  if (!wantsRows(cfg))
    dropRowLayout(m);
  return m;
}

bool wantsTiles(const QuantConfig &cfg) {
  if (cfg.format == WeightFormat::INT4)
    return false;
  switch (cfg.tiles) {
  case TilePacking::Always:
  case TilePacking::Only:
    return true;
  case TilePacking::Never:
    return false;
  case TilePacking::Auto:
    return pathSupported(KernelPath::AMX, cfg.format);
  }
  return false;
}

bool wantsRows(const QuantConfig &cfg) {
  // INT4 has no tile layout (Only behaves as rows); Always keeps both; the
  // other choices keep exactly one layout.
  return cfg.format == WeightFormat::INT4 || cfg.tiles == TilePacking::Always ||
         !wantsTiles(cfg);
}

void addTileLayout(PackedMatrix &m) {
  if (m.format == WeightFormat::INT4)
    return;
  // Rows padded to a multiple of 16 with zeros; see tileIndex().
  const std::size_t P = m.paddedCols;
  const std::size_t n = static_cast<std::size_t>(m.tileRows()) * P;
  if (m.format == WeightFormat::INT8) {
    m.q8Tiles.assign(n, 0);
    for (int r = 0; r < m.rows; ++r)
      for (int c = 0; c < m.paddedCols; ++c)
        m.q8Tiles[m.tileIndex(r, c)] = m.q8[r * P + c];
  } else {
    m.bf16Tiles.assign(n, 0);
    for (int r = 0; r < m.rows; ++r)
      for (int c = 0; c < m.paddedCols; ++c)
        m.bf16Tiles[m.tileIndex(r, c)] = m.bf16[r * P + c];
  }
}

void dropRowLayout(PackedMatrix &m) {
  if (m.format == WeightFormat::INT4 || !m.hasTiles())
    return;
  // Swap with empty vectors: clear() would keep the capacity.
  std::vector<uint16_t>().swap(m.bf16);
  std::vector<int8_t>().swap(m.q8);
}

void addRowLayout(PackedMatrix &m) {
  if (m.format == WeightFormat::INT4 || m.hasRows() || !m.hasTiles())
    return;
  const std::size_t P = m.paddedCols;
  const std::size_t n = static_cast<std::size_t>(m.rows) * P;
  if (m.format == WeightFormat::INT8) {
    m.q8.resize(n);
    for (int r = 0; r < m.rows; ++r)
      for (int c = 0; c < m.paddedCols; ++c)
        m.q8[r * P + c] = m.q8Tiles[m.tileIndex(r, c)];
  } else {
    m.bf16.resize(n);
    for (int r = 0; r < m.rows; ++r)
      for (int c = 0; c < m.paddedCols; ++c)
        m.bf16[r * P + c] = m.bf16Tiles[m.tileIndex(r, c)];
  }
}

std::size_t MoeWeights::bytes() const {
  std::size_t b = 0;
  for (const auto *v : {&gate, &up, &down})
    for (const PackedMatrix &m : *v)
      b += m.bytes();
  return b;
}

std::size_t MoeWeights::memoryBytes() const {
  std::size_t b = 0;
  for (const auto *v : {&gate, &up, &down})
    for (const PackedMatrix &m : *v)
      b += m.memoryBytes();
  return b;
}

bool MoeWeights::hasTiles() const {
  for (const auto *v : {&gate, &up, &down})
    for (const PackedMatrix &m : *v)
      if (!m.hasTiles())
        return false;
  return true;
}

bool MoeWeights::hasRows() const {
  for (const auto *v : {&gate, &up, &down})
    for (const PackedMatrix &m : *v)
      if (!m.hasRows())
        return false;
  return true;
}

MoeWeights packMoe(const std::vector<ExpertSource> &experts, DType srcType,
                   int hidden, int intermediate, const QuantConfig &cfg,
                   ThreadPool *pool) {
  MoeWeights w;
  w.numExperts = static_cast<int>(experts.size());
  w.hidden = hidden;
  w.intermediate = intermediate;
  w.config = cfg;
  w.gate.resize(experts.size());
  w.up.resize(experts.size());
  w.down.resize(experts.size());
  std::vector<std::exception_ptr> errors(experts.size());
  auto task = [&](int e, int) {
    try {
      const ExpertSource &s = experts[e];
      w.gate[e] = packMatrix(s.gate, srcType, intermediate, hidden, cfg);
      w.up[e] = packMatrix(s.up, srcType, intermediate, hidden, cfg);
      w.down[e] = packMatrix(s.down, srcType, hidden, intermediate, cfg,
                             downRotation(cfg));
    } catch (...) {
      errors[e] = std::current_exception();
    }
  };
  if (pool)
    pool->run(w.numExperts, task);
  else
    for (int e = 0; e < w.numExperts; ++e)
      task(e, 0);
  for (auto &err : errors)
    if (err)
      std::rethrow_exception(err);
  return w;
}

} // namespace kt::kernels
