//===- ModuleTree.cpp - walking the module tree ---------------------------===//
#include "kt/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::kt;

ModuleOpInterface mlir::kt::parentModule(Operation *op) {
  for (Operation *p = op->getParentOp(); p; p = p->getParentOp())
    if (auto m = dyn_cast<ModuleOpInterface>(p))
      return m;
  return {};
}

void mlir::kt::walkModules(Operation *root,
                           function_ref<void(ModuleOpInterface)> fn) {
  root->walk<WalkOrder::PreOrder>([&](Operation *op) {
    if (auto m = dyn_cast<ModuleOpInterface>(op))
      fn(m);
  });
}
