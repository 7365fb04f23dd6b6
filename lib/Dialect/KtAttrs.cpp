//===- KtAttrs.cpp - #kt.weight and weight helpers ------------------------===//
#include "kt/Dialect/KtDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::kt;

#define GET_ATTRDEF_CLASSES
#include "kt/Dialect/KtAttrs.cpp.inc"

void KtDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "kt/Dialect/KtAttrs.cpp.inc"
      >();
}

// #kt.weight<"tensor", dtype, [d0, d1], "file">
Attribute WeightAttr::parse(AsmParser &parser, Type) {
  std::string tensor, file;
  Type dtype;
  SmallVector<int64_t> shape;
  if (parser.parseLess() || parser.parseString(&tensor) || parser.parseComma() ||
      parser.parseType(dtype) || parser.parseComma() ||
      parser.parseCommaSeparatedList(AsmParser::Delimiter::Square,
                                     [&]() -> ParseResult {
                                       int64_t dim;
                                       if (parser.parseInteger(dim))
                                         return failure();
                                       shape.push_back(dim);
                                       return success();
                                     }) ||
      parser.parseComma() || parser.parseString(&file) || parser.parseGreater())
    return {};
  return parser.getChecked<WeightAttr>(parser.getContext(), tensor, dtype,
                                       shape, file);
}

void WeightAttr::print(AsmPrinter &printer) const {
  printer << "<\"" << getTensor() << "\", " << getDtype() << ", [";
  llvm::interleaveComma(getShape(), printer);
  printer << "], \"" << getFile() << "\">";
}

LogicalResult WeightAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                 StringRef tensor, Type dtype,
                                 ArrayRef<int64_t> shape, StringRef file) {
  if (tensor.empty())
    return emitError() << "weight tensor name is empty";
  if (!dtype.isIntOrFloat())
    return emitError() << "weight '" << tensor
                       << "' has a non-scalar element type " << dtype;
  for (int64_t d : shape)
    if (d < 0)
      return emitError() << "weight '" << tensor << "' has a negative dim";
  if (file.empty())
    return emitError() << "weight '" << tensor << "' names no file";
  return success();
}

int64_t WeightAttr::getNumElements() const {
  int64_t n = 1;
  for (int64_t d : getShape())
    n *= d;
  return n;
}

uint64_t WeightAttr::getNumBytes() const {
  unsigned bits = getDtype().getIntOrFloatBitWidth();
  return (static_cast<uint64_t>(getNumElements()) * bits + 7) / 8;
}

static void collectFrom(Attribute attr, SmallVectorImpl<WeightAttr> &out) {
  if (auto w = dyn_cast<WeightAttr>(attr)) {
    out.push_back(w);
  } else if (auto arr = dyn_cast<ArrayAttr>(attr)) {
    for (Attribute a : arr)
      collectFrom(a, out);
  } else if (auto dict = dyn_cast<DictionaryAttr>(attr)) {
    for (NamedAttribute na : dict)
      collectFrom(na.getValue(), out);
  }
}

void mlir::kt::collectWeights(Operation *op, SmallVectorImpl<WeightAttr> &out) {
  for (NamedAttribute na : op->getAttrs())
    collectFrom(na.getValue(), out);
}

Type mlir::kt::elementTypeForSafetensors(MLIRContext *ctx, StringRef dtype) {
  Builder b(ctx);
  if (dtype == "F64") return b.getF64Type();
  if (dtype == "F32") return b.getF32Type();
  if (dtype == "F16") return b.getF16Type();
  if (dtype == "BF16") return b.getBF16Type();
  if (dtype == "F8_E4M3") return b.getFloat8E4M3FNType();
  if (dtype == "F8_E5M2") return b.getFloat8E5M2Type();
  if (dtype == "I64") return b.getI64Type();
  if (dtype == "I32") return b.getI32Type();
  if (dtype == "I16") return b.getI16Type();
  if (dtype == "I8") return b.getI8Type();
  if (dtype == "U8") return b.getIntegerType(8, /*isSigned=*/false);
  if (dtype == "BOOL") return b.getI1Type();
  return {};
}
