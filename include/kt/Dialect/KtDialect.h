//===- KtDialect.h - kt dialect declarations --------------------*- C++ -*-===//
#ifndef KT_DIALECT_KTDIALECT_H
#define KT_DIALECT_KTDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/RegionKindInterface.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "kt/Dialect/KtDialect.h.inc"

namespace mlir::kt {
/// Checks the identity and placement attributes every module op carries.
LogicalResult verifyModuleAttrs(Operation *op);
/// "cpu", "cuda" or "cuda:N".
bool isValidDeviceName(llvm::StringRef device);
} // namespace mlir::kt

#define GET_ATTRDEF_CLASSES
#include "kt/Dialect/KtAttrs.h.inc"

#include "kt/Dialect/KtInterfaces.h.inc"

#define GET_OP_CLASSES
#include "kt/Dialect/KtOps.h.inc"

namespace mlir::kt {
/// Every #kt.weight attribute an op references (directly or inside arrays).
void collectWeights(Operation *op, SmallVectorImpl<WeightAttr> &weights);
/// Element type named by a safetensors dtype string ("BF16", "F8_E4M3", ...),
/// or null when kt has no MLIR type for it.
Type elementTypeForSafetensors(MLIRContext *ctx, llvm::StringRef dtype);
} // namespace mlir::kt

#endif // KT_DIALECT_KTDIALECT_H
