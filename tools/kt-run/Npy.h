//===- Npy.h - NumPy .npy writer --------------------------------*- C++ -*-===//

#ifndef KT_TOOLS_KTRUN_NPY_H
#define KT_TOOLS_KTRUN_NPY_H

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ktrun {
/// Writes a little-endian float32 [rows, cols] .npy file (format 1.0) via a
/// temporary file renamed into place, so a failure leaves no partial file.
/// Returns an error message on failure.
std::optional<std::string> writeNpyF32(const std::string &path,
                                       const std::vector<float> &data,
                                       int64_t rows, int64_t cols);
} // namespace ktrun

#endif
