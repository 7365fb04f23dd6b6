//===- Passes.h - kt passes -------------------------------------*- C++ -*-===//
#ifndef KT_TRANSFORMS_PASSES_H
#define KT_TRANSFORMS_PASSES_H

#include "kt/Dialect/KtDialect.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::kt {
#define GEN_PASS_DECL
#include "kt/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "kt/Transforms/Passes.h.inc"

/// The module op enclosing `op` (its parent in the module tree), or null.
ModuleOpInterface parentModule(Operation *op);
/// Calls `fn` on every module op, parents before children.
void walkModules(Operation *root, llvm::function_ref<void(ModuleOpInterface)> fn);
/// The placement report of `root` (the JSON text kt-placement-report
/// writes, DESIGN.md's contract).
std::string placementReportJson(Operation *root);
} // namespace mlir::kt

#endif // KT_TRANSFORMS_PASSES_H
