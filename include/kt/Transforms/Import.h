//===- Import.h - Hugging Face model directory importer ---------*- C++ -*-===//
//
// Builds the kt module tree of a Hugging Face model directory from its
// config.json and safetensors headers, without reading weight data.
//
//===----------------------------------------------------------------------===//
#ifndef KT_TRANSFORMS_IMPORT_H
#define KT_TRANSFORMS_IMPORT_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <string>
#include <vector>

namespace mlir::kt {

struct ImportResult {
  OwningOpRef<ModuleOp> module;
  /// Checkpoint tensors no module uses (e.g. DeepSeek-V3's MTP layer).
  std::vector<std::string> extraTensors;
  /// Set when the import failed: every problem found, each naming the file
  /// and tensor (or config field).
  std::vector<std::string> errors;
};

/// Imports `dir`. On failure `module` is null and `errors` says why.
ImportResult importModelDirectory(MLIRContext *ctx, const std::string &dir);

} // namespace mlir::kt

#endif // KT_TRANSFORMS_IMPORT_H
