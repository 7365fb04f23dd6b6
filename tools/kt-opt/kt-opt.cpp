//===- kt-opt.cpp - import, inject, place, report -------------------------===//
//
// kt-opt <model-dir | file.mlir> [--rules R.yaml] [--placement-report=FILE]
//        [--memory-report=FILE] [--plan=FILE] [--default-device=DEV]
//        [-o FILE]
//
// A model directory is imported into the kt dialect first. With --rules the
// pipeline is kt-inject, kt-place, the requested reports and, with --plan,
// the lowering to the runtime's plan (kt-lower-plan); any other
// mlir-opt option (a pass pipeline, -split-input-file,
// -verify-diagnostics, ...) works on .mlir inputs. Nothing is written when
// anything fails.
//
//===----------------------------------------------------------------------===//
#include "kt/Dialect/KtDialect.h"
#include "kt/Transforms/Compile.h"
#include "kt/Transforms/Passes.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace mlir;

static llvm::cl::OptionCategory ktCategory("kt-opt options");
static llvm::cl::opt<std::string>
    rulesFile("rules", llvm::cl::desc("YAML injection rules to apply"),
              llvm::cl::value_desc("file"), llvm::cl::cat(ktCategory));
static llvm::cl::opt<std::string> placementReport(
    "placement-report",
    llvm::cl::desc("Write the placement of every module as JSON ('-' = stdout)"),
    llvm::cl::value_desc("file"), llvm::cl::cat(ktCategory));
static llvm::cl::opt<std::string> memoryReport(
    "memory-report",
    llvm::cl::desc("Write weight bytes per device ('-' = stdout)"),
    llvm::cl::value_desc("file"), llvm::cl::ValueOptional,
    llvm::cl::cat(ktCategory));
static llvm::cl::opt<std::string> planFile(
    "plan",
    llvm::cl::desc("Lower the placed module to the runtime's plan and write "
                   "it as JSON ('-' = stdout)"),
    llvm::cl::value_desc("file"), llvm::cl::cat(ktCategory));
static llvm::cl::opt<std::string> defaultDevice(
    "default-device",
    llvm::cl::desc("Device of the root module when no rule places it "
                   "(default cuda:0, as KTransformers)"),
    llvm::cl::init("cuda:0"), llvm::cl::cat(ktCategory));
static llvm::cl::opt<bool>
    noPlace("no-place", llvm::cl::desc("Apply rules only (skip kt-place)"),
            llvm::cl::cat(ktCategory));

/// The kt pipeline the options ask for, after any user-given passes.
static LogicalResult addKtPipeline(PassManager &pm) {
  if (!rulesFile.empty())
    pm.addPass(mlir::kt::createInjectRules({rulesFile}));
  bool wantsPlacement = !rulesFile.empty() || !placementReport.empty() ||
                        memoryReport.getNumOccurrences() || !planFile.empty();
  if (wantsPlacement && !noPlace)
    pm.addPass(mlir::kt::createPlaceDevices({defaultDevice}));
  if (!placementReport.empty())
    pm.addPass(mlir::kt::createPlacementReport({placementReport}));
  if (memoryReport.getNumOccurrences())
    pm.addPass(mlir::kt::createMemoryReport(
        {memoryReport.empty() ? std::string("-") : memoryReport.getValue()}));
  // Last: the plan is written only when everything before succeeded.
  if (!planFile.empty())
    pm.addPass(mlir::kt::createLowerToPlan({planFile}));
  return success();
}

/// Fails early, before importing a large model, when the rules are bad.
static bool checkRules() {
  return rulesFile.empty() || ::kt::checkRulesFile(rulesFile, llvm::errs());
}

static int runOnModelDirectory(const std::string &dir,
                               const std::string &outputFile,
                               DialectRegistry &registry,
                               const MlirOptMainConfig &config) {
  MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  // Print warnings and remarks too (the default handler shows only errors).
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagHandler(sourceMgr, &ctx);
  OwningOpRef<ModuleOp> module = ::kt::importModel(&ctx, dir, llvm::errs());
  if (!module)
    return 1;
  PassManager pm(&ctx);
  if (failed(applyPassManagerCLOptions(pm)) ||
      failed(config.setupPassPipeline(pm)) || failed(pm.run(*module)))
    return 1;
  std::string error;
  auto out = openOutputFile(outputFile, &error);
  if (!out) {
    llvm::errs() << error << "\n";
    return 1;
  }
  module->print(out->os());
  out->os() << "\n";
  out->keep();
  return 0;
}

int main(int argc, char **argv) {
  llvm::InitLLVM y(argc, argv);
  DialectRegistry registry;
  registry.insert<mlir::kt::KtDialect>();
  mlir::kt::registerKtPasses();
  registerPassManagerCLOptions();

  auto [inputFile, outputFile] =
      registerAndParseCLIOptions(argc, argv, "kt-opt: kt MLIR driver", registry);
  if (!checkRules())
    return 1;
  // The user's pass pipeline (--pass-pipeline, --kt-place, ...) first, then
  // what the kt options ask for.
  MlirOptMainConfig userConfig = MlirOptMainConfig::createFromCLOptions();
  MlirOptMainConfig config = userConfig;
  config.setPassPipelineSetupFn([userConfig](PassManager &pm) {
    if (failed(userConfig.setupPassPipeline(pm)))
      return failure();
    return addKtPipeline(pm);
  });
  if (llvm::sys::fs::is_directory(inputFile))
    return runOnModelDirectory(inputFile, outputFile, registry, config);

  std::string error;
  auto file = openInputFile(inputFile, &error);
  if (!file) {
    llvm::errs() << error << "\n";
    return 1;
  }
  auto output = openOutputFile(outputFile, &error);
  if (!output) {
    llvm::errs() << error << "\n";
    return 1;
  }
  if (failed(MlirOptMain(output->os(), std::move(file), registry, config)))
    return 1;
  output->keep();
  return 0;
}
