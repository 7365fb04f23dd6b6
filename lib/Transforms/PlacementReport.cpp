//===- PlacementReport.cpp - JSON placement of every module ---------------===//
#include "kt/Transforms/Passes.h"

#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/ToolOutputFile.h"

namespace mlir::kt {
#define GEN_PASS_DEF_PLACEMENTREPORT
#include "kt/Transforms/Passes.h.inc"
} // namespace mlir::kt

using namespace mlir;
using namespace mlir::kt;

namespace {
llvm::json::Value attrToJson(Attribute a) {
  if (auto s = dyn_cast<StringAttr>(a))
    return s.getValue().str();
  if (auto b = dyn_cast<BoolAttr>(a))
    return b.getValue();
  if (auto i = dyn_cast<IntegerAttr>(a))
    return i.getInt();
  if (auto f = dyn_cast<FloatAttr>(a))
    return f.getValueAsDouble();
  if (auto d = dyn_cast<DictionaryAttr>(a)) {
    llvm::json::Object o;
    for (NamedAttribute na : d)
      o[na.getName().getValue()] = attrToJson(na.getValue());
    return o;
  }
  if (auto arr = dyn_cast<ArrayAttr>(a)) {
    llvm::json::Array out;
    for (Attribute e : arr)
      out.push_back(attrToJson(e));
    return out;
  }
  return nullptr;
}

llvm::json::Value optStr(Operation *op, StringRef key) {
  if (auto a = op->getAttrOfType<StringAttr>(key))
    return a.getValue().str();
  return nullptr;
}

} // namespace

std::string mlir::kt::placementReportJson(Operation *root) {
  llvm::json::Array rows;
  walkModules(root, [&](ModuleOpInterface m) {
    Operation *op = m.getOperation();
    llvm::json::Object row;
    row["module"] = m.getModuleName().str();
    row["class"] = m.getModuleClass().str();
    row["op"] = op->getName().getStringRef().str();
    auto rule = op->getAttrOfType<IntegerAttr>("rule");
    row["rule"] = rule ? llvm::json::Value(rule.getInt()) : nullptr;
    row["generate_device"] = optStr(op, "generate_device");
    row["prefill_device"] = optStr(op, "prefill_device");
    row["placed_by"] = optStr(op, "kt.placed_by");
    if (auto impl = op->getAttrOfType<StringAttr>("impl"))
      row["impl"] = impl.getValue().str();
    auto kwargs = op->getAttrOfType<DictionaryAttr>("kwargs");
    row["kwargs"] = kwargs ? attrToJson(kwargs) : llvm::json::Object();
    rows.push_back(std::move(row));
  });
  return llvm::formatv("{0:2}", llvm::json::Value(std::move(rows))).str() +
         "\n";
}

namespace {
struct PlacementReportPass
    : public mlir::kt::impl::PlacementReportBase<PlacementReportPass> {
  using PlacementReportBase::PlacementReportBase;
  void runOnOperation() override {
    std::string error;
    auto out = openOutputFile(outputFile, &error);
    if (!out) {
      emitError(getOperation().getLoc()) << error;
      return signalPassFailure();
    }
    out->os() << placementReportJson(getOperation());
    out->keep();
    markAllAnalysesPreserved();
  }
};
} // namespace
