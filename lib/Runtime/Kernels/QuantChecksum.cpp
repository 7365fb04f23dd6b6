//===- QuantChecksum.cpp - CRC32C and source fingerprints -----------------===//
//
// The integrity checks of the packed layer files (QuantFile.h): CRC32C over
// header and sections, and the FNV-1a fingerprint of a layer's source
// tensors.
//
//===----------------------------------------------------------------------===//

#include "kt/Runtime/Kernels/QuantFile.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace kt::kernels {
namespace {

constexpr uint32_t kCrc32cPoly = 0x82F63B78u; // reflected Castagnoli

constexpr std::array<uint32_t, 256> makeCrcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k)
      c = c & 1 ? (c >> 1) ^ kCrc32cPoly : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kCrcTable = makeCrcTable();

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t
crc32cSse42(uint32_t crc, const unsigned char *p, std::size_t n) {
  uint64_t c = ~crc;
  for (; n && reinterpret_cast<uintptr_t>(p) % 8; --n)
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
  }
  for (; n; --n)
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
  return ~static_cast<uint32_t>(c);
}
#endif

} // namespace

uint32_t crc32cPortable(uint32_t crc, const void *data, std::size_t n) {
  const auto *p = static_cast<const unsigned char *>(data);
  uint32_t c = ~crc;
  for (std::size_t i = 0; i < n; ++i)
    c = kCrcTable[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return ~c;
}

uint32_t crc32c(uint32_t crc, const void *data, std::size_t n) {
#if defined(__x86_64__)
  static const bool sse42 = __builtin_cpu_supports("sse4.2");
  if (sse42)
    return crc32cSse42(crc, static_cast<const unsigned char *>(data), n);
#endif
  return crc32cPortable(crc, data, n);
}

uint64_t sourceFingerprint(const std::vector<SourceTensor> &tensors) {
  std::string text = "kt-quant sources v1\n";
  for (const SourceTensor &t : tensors) {
    text += t.name + '\n' + t.file + '\n' + t.dtype + "\n[";
    for (std::size_t i = 0; i < t.shape.size(); ++i)
      text += (i ? "," : "") + std::to_string(t.shape[i]);
    text += "]\n" + std::to_string(t.fileSize) + ' ' +
            std::to_string(t.offset) + ' ' + std::to_string(t.bytes) + '\n';
  }
  uint64_t h = 0xcbf29ce484222325ull; // FNV-1a 64
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string formatFingerprint(uint64_t fingerprint) {
  static const char digits[] = "0123456789abcdef";
  std::string s = "0x";
  for (int shift = 60; shift >= 0; shift -= 4)
    s += digits[fingerprint >> shift & 15];
  return s;
}

} // namespace kt::kernels
