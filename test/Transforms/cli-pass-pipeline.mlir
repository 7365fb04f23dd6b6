// kt-opt on a .mlir input must run the passes named on the command line, as
// its header says ("any other mlir-opt option (a pass pipeline, ...) works on
// .mlir inputs") and as place.mlir / inject.mlir would like to use them.
//
// Regression test: tools/kt-opt/kt-opt.cpp used to call
// config.setPassPipelineSetupFn(addKtPipeline) after
// MlirOptMainConfig::createFromCLOptions(), which replaced the callback that
// createFromCLOptions installed for the command-line pass pipeline, so
// --kt-place, --kt-inject=... and --pass-pipeline=... were silently ignored
// (the input was printed unchanged, exit status 0).
//
// RUN: kt-opt %s --kt-place | FileCheck %s --check-prefix=PLACE
// RUN: kt-opt %s --kt-place=default-device=cpu | FileCheck %s --check-prefix=CPU
// RUN: kt-opt %s --kt-inject=rules=%S/Inputs/cli.yaml | FileCheck %s --check-prefix=INJECT
// RUN: kt-opt %s --pass-pipeline='builtin.module(kt-inject{rules=%S/Inputs/cli.yaml},kt-place)' | FileCheck %s --check-prefix=PIPE

// PLACE: kt.linear "lin_a"
// PLACE-SAME: generate_device = "cuda:0", kt.placed_by = "inherited"
// CPU: kt.linear "lin_a"
// CPU-SAME: generate_device = "cpu", kt.placed_by = "inherited"
// INJECT: kt.marlin_linear "lin_a"
// INJECT-SAME: rule = 0 : i64
// PIPE: kt.transfer
// PIPE-NEXT: kt.marlin_linear "lin_a"
// PIPE-SAME: generate_device = "cuda:1", kt.placed_by = "rule"
module {
  %0 = kt.module "" : "LlamaForCausalLM" () : () -> tensor<?x4xf32> {
  ^bb0(%x: tensor<?x4xf32>):
    %a = kt.linear "lin_a" : "torch.nn.Linear" (%x) {weight = #kt.weight<"a", f32, [4, 4], "m.safetensors">} : tensor<?x4xf32> -> tensor<?x4xf32>
    kt.yield %a : tensor<?x4xf32>
  }
}
