//===- KtBase.td - kt dialect, attributes, interfaces -------*- tablegen -*-===//
//
// The kt dialect holds a model as the module tree PyTorch would build for it:
// every module is an op carrying its dotted name and Python class; containers
// hold their children in a single-block region whose block arguments are the
// container's inputs; SSA values carry the forward dataflow. Weights are
// referenced by #kt.weight attributes, never copied into the IR.
//
//===----------------------------------------------------------------------===//

#ifndef KT_DIALECT_KTBASE_TD
#define KT_DIALECT_KTBASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"

def Kt_Dialect : Dialect {
  let name = "kt";
  let cppNamespace = "::mlir::kt";
  let summary = "Module trees of Mixture-of-Experts language models";
  let description = [{
    A model imported from a Hugging Face directory, as a tree of module ops
    (`kt.module`, `kt.linear`, `kt.experts`, ...) that YAML injection rules
    rewrite into fast operators (`kt.cpu_experts`, `kt.marlin_linear`,
    `kt.mla`, `kt.lora_linear`) placed on CPU or CUDA devices.
  }];
  let useDefaultAttributePrinterParser = 1;
  let extraClassDeclaration = [{
    void registerAttributes();
  }];
}

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

def Kt_WeightAttr : AttrDef<Kt_Dialect, "Weight"> {
  let mnemonic = "weight";
  let summary = "Reference to a tensor stored in a safetensors file";
  let description = [{
    `#kt.weight<"model.layers.0.mlp.gate_proj.weight", bf16, [1408, 2048],
    "model-00001-of-00004.safetensors">` names a checkpoint tensor by its
    name, element type, shape and file (relative to the model directory).
    The IR never holds weight data; the runtime maps the file.
  }];
  let parameters = (ins StringRefParameter<"tensor name">:$tensor,
                        "::mlir::Type":$dtype,
                        ArrayRefParameter<"int64_t", "shape">:$shape,
                        StringRefParameter<"file">:$file);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Number of bytes the tensor occupies in the checkpoint.
    uint64_t getNumBytes() const;
    int64_t getNumElements() const;
  }];
}

//===----------------------------------------------------------------------===//
// Interfaces
//===----------------------------------------------------------------------===//

def Kt_ModuleOpInterface : OpInterface<"ModuleOpInterface"> {
  let cppNamespace = "::mlir::kt";
  let description = [{
    An op that stands for one module of the PyTorch module tree. Its dotted
    name (`name`) and the Python class of the original module
    (`module_class`) are what injection rules match against; placement
    attributes (`generate_device`, `prefill_device`, `rule`, `impl`,
    `kwargs`) are set by the inject and place passes.
  }];
  let methods = [
    InterfaceMethod<"Dotted module name, e.g. model.layers.3.mlp.",
      "::llvm::StringRef", "getModuleName", (ins), [{}], [{
        return $_op->template getAttrOfType<::mlir::StringAttr>("name")
            .getValue();
      }]>,
    InterfaceMethod<"Python class of the original module.",
      "::llvm::StringRef", "getModuleClass", (ins), [{}], [{
        return $_op->template getAttrOfType<::mlir::StringAttr>(
            "module_class").getValue();
      }]>,
  ];
  let verify = [{ return ::mlir::kt::verifyModuleAttrs($_op); }];
}

#endif // KT_DIALECT_KTBASE_TD
