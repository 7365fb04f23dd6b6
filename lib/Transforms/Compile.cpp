//===- Compile.cpp - model directory to plan, in one call -----------------===//
//
// See include/kt/Transforms/Compile.h. kt-opt uses checkRulesFile and
// importModel too, so that both report the same problems the same way.
//
//===----------------------------------------------------------------------===//
#include "kt/Transforms/Compile.h"
#include "kt/Dialect/KtDialect.h"
#include "kt/Transforms/Import.h"
#include "kt/Transforms/Passes.h"
#include "kt/Transforms/Rules.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/SourceMgr.h"

#include <variant>

using namespace mlir;

namespace kt {

bool checkRulesFile(const std::string &path, llvm::raw_ostream &diag) {
  auto parsed = rules::RuleSet::parseFile(path);
  if (auto *d = std::get_if<rules::Diagnostic>(&parsed)) {
    diag << d->str() << "\n";
    return false;
  }
  return true;
}

OwningOpRef<ModuleOp> importModel(MLIRContext *ctx, const std::string &dir,
                                  llvm::raw_ostream &diag) {
  mlir::kt::ImportResult imported = mlir::kt::importModelDirectory(ctx, dir);
  if (!imported.module) {
    for (const std::string &e : imported.errors)
      diag << dir << ": error: " << e << "\n";
    return nullptr;
  }
  if (!imported.extraTensors.empty())
    diag << dir << ": note: " << imported.extraTensors.size()
         << " checkpoint tensor(s) not used by the model, e.g. '"
         << imported.extraTensors.front()
         << "' (listed in the kt.extra_tensors attribute)\n";
  return std::move(imported.module);
}

CompileResult compileModel(const CompileOptions &options) {
  CompileResult result;
  llvm::raw_string_ostream diag(result.diagnostics);
  if (!options.rulesPath.empty() && !checkRulesFile(options.rulesPath, diag))
    return result;

  DialectRegistry registry;
  registry.insert<mlir::kt::KtDialect>();
  MLIRContext ctx(registry, MLIRContext::Threading::DISABLED);
  ctx.loadAllAvailableDialects();
  // Errors, warnings and notes from the passes go into the string.
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler handler(sourceMgr, &ctx, diag);

  OwningOpRef<ModuleOp> module = importModel(&ctx, options.modelDir, diag);
  if (!module)
    return result;

  PassManager pm(&ctx);
  if (!options.rulesPath.empty())
    pm.addPass(mlir::kt::createInjectRules({options.rulesPath}));
  if (options.place)
    pm.addPass(mlir::kt::createPlaceDevices({options.defaultDevice}));
  if (failed(pm.run(*module)))
    return result;
  result.placementReportJson = mlir::kt::placementReportJson(*module);

  FailureOr<Plan> plan = mlir::kt::lowerToPlan(*module);
  if (succeeded(plan))
    result.plan = std::move(*plan);
  return result;
}

} // namespace kt
