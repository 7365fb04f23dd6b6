//===- KtDialect.cpp - kt dialect registration ----------------------------===//
#include "kt/Dialect/KtDialect.h"

#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::kt;

#include "kt/Dialect/KtDialect.cpp.inc"
#include "kt/Dialect/KtInterfaces.cpp.inc"

void KtDialect::initialize() {
  registerAttributes();
  addOperations<
#define GET_OP_LIST
#include "kt/Dialect/KtOps.cpp.inc"
      >();
}
