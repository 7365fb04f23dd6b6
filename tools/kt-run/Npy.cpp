//===- Npy.cpp - NumPy .npy writer ---------------------------------------===//

#include "Npy.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace ktrun {

std::optional<std::string> writeNpyF32(const std::string &path,
                                       const std::vector<float> &data,
                                       int64_t rows, int64_t cols) {
  if (static_cast<int64_t>(data.size()) != rows * cols)
    return path + ": internal error: " + std::to_string(data.size()) +
           " values for shape (" + std::to_string(rows) + ", " +
           std::to_string(cols) + ")";
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                     std::to_string(rows) + ", " + std::to_string(cols) +
                     "), }";
  // Magic (6) + version (2) + header length (2) + dict + padding + '\n' is
  // a multiple of 64.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict.push_back('\n');
  std::string tmp = path + ".tmp";
  std::FILE *f = std::fopen(tmp.c_str(), "wb");
  if (!f)
    return path + ": cannot write: " + std::strerror(errno);
  auto len = static_cast<uint16_t>(dict.size());
  unsigned char head[10] = {0x93,
                            'N',
                            'U',
                            'M',
                            'P',
                            'Y',
                            1,
                            0,
                            static_cast<unsigned char>(len & 0xff),
                            static_cast<unsigned char>(len >> 8)};
  bool ok =
      std::fwrite(head, 1, 10, f) == 10 &&
      std::fwrite(dict.data(), 1, dict.size(), f) == dict.size() &&
      std::fwrite(data.data(), sizeof(float), data.size(), f) == data.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return path + ": cannot write: " + std::strerror(errno);
  }
  return std::nullopt;
}

} // namespace ktrun
