//===- HFImporter.cpp - Hugging Face model directory -> kt IR -------------===//
#include "kt/Transforms/Import.h"

#include "ModelBuilder.h"

#include "mlir/IR/Verifier.h"

using namespace mlir;
using namespace mlir::kt;

static bool isDeepseek(::kt::ModelFamily f) {
  return f == ::kt::ModelFamily::DeepseekV2 ||
         f == ::kt::ModelFamily::DeepseekV3;
}

ImportResult mlir::kt::importModelDirectory(MLIRContext *ctx,
                                            const std::string &dir) {
  ImportResult result;
  ctx->getOrLoadDialect<KtDialect>();
  ::kt::Result<::kt::ModelDir> opened = ::kt::openModelDir(dir);
  if (!opened) {
    result.errors.push_back(opened.error().message);
    return result;
  }
  const ::kt::ModelDir &md = opened.value();
  ::kt::Result<::kt::ModelConfig> parsed =
      ::kt::parseModelConfig(md.config, dir + "/config.json");
  if (!parsed) {
    result.errors.push_back(parsed.error().message);
    return result;
  }
  const ::kt::ModelConfig &cfg = parsed.value();

  std::string prefix = isDeepseek(cfg.family) ? "modeling_deepseek."
                                              : transformersClassPrefix(cfg.family);
  ModelBuilder mb(ctx, md, cfg, prefix);
  OwningOpRef<ModuleOp> module = ModuleOp::create(mb.loc);
  mb.b.setInsertionPointToEnd(module->getBody());
  if (isDeepseek(cfg.family))
    buildDeepseek(mb);
  else
    buildTransformersFamily(mb);

  if (!mb.errors.empty()) {
    result.errors = std::move(mb.errors);
    return result;
  }
  for (const auto &[name, info] : md.tensors)
    if (!mb.used.count(name))
      result.extraTensors.push_back(name);

  Builder &b = mb.b;
  SmallVector<Attribute> extra;
  for (const std::string &t : result.extraTensors)
    extra.push_back(b.getStringAttr(t));
  (*module)->setAttr("kt.source", b.getStringAttr(dir));
  (*module)->setAttr("kt.architecture", b.getStringAttr(cfg.architecture));
  if (!extra.empty())
    (*module)->setAttr("kt.extra_tensors", b.getArrayAttr(extra));
  if (failed(verify(*module))) {
    result.errors.push_back("internal error: imported IR does not verify");
    return result;
  }
  result.module = std::move(module);
  return result;
}
