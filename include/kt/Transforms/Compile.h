//===- Compile.h - model directory to plan, in one call ---------*- C++ -*-===//
//
// What kt-opt does for a model directory (import, rules, kt-inject,
// kt-place, placement report) followed by the lowering to a kt::Plan, as a
// library call for kt-run. Diagnostics are collected as text in the usual
// "FILE:LINE:COL: error: ..." form instead of being printed.
//
//===----------------------------------------------------------------------===//
#ifndef KT_TRANSFORMS_COMPILE_H
#define KT_TRANSFORMS_COMPILE_H

#include "kt/Runtime/Plan.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Support/LogicalResult.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>
#include <string>

namespace mlir::kt {
/// Lowers a module after kt-inject and kt-place to a plan (see the
/// kt-lower-plan pass in Passes.td and docs/plan.md). Emits an error at the
/// offending op and fails for anything not lowerable. The plan returned has
/// passed kt::planFromJson's checks.
FailureOr<::kt::Plan> lowerToPlan(ModuleOp module);
} // namespace mlir::kt

namespace kt {

struct CompileOptions {
  std::string modelDir;                 ///< Hugging Face model directory
  std::string rulesPath;                ///< YAML rules; empty: no kt-inject
  std::string defaultDevice = "cuda:0"; ///< kt-place's default device
  bool place = true;                    ///< run kt-place (needed for a plan)
};

struct CompileResult {
  /// Set on success.
  std::optional<kt::Plan> plan;
  /// Every error, warning and note, one per line, as
  /// "FILE:LINE:COL: error: ..." (the model directory for import problems,
  /// the rules file for rule problems).
  std::string diagnostics;
  /// The placement report (kt-placement-report's JSON array); empty when
  /// compilation failed before placement.
  std::string placementReportJson;
};

/// Imports `options.modelDir`, applies the rules, places, writes the
/// placement report into the result and lowers to a plan. Thread-safe (each
/// call has its own MLIRContext); prints nothing.
CompileResult compileModel(const CompileOptions &options);

//===----------------------------------------------------------------------===//
// Pieces shared with kt-opt
//===----------------------------------------------------------------------===//

/// Parses the rules file; on failure writes "FILE:LINE[:COL]: error: ..."
/// to `diag` and returns false.
bool checkRulesFile(const std::string &path, llvm::raw_ostream &diag);

/// Imports a model directory. Import errors ("DIR: error: ...") and the
/// note about unused checkpoint tensors go to `diag`; null on failure.
mlir::OwningOpRef<mlir::ModuleOp> importModel(mlir::MLIRContext *ctx,
                                              const std::string &dir,
                                              llvm::raw_ostream &diag);

} // namespace kt

#endif // KT_TRANSFORMS_COMPILE_H
