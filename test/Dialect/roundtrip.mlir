// RUN: kt-opt %s | kt-opt | FileCheck %s
// CHECK: kt.linear "model.layers.0.mlp.gate_proj" : "torch.nn.Linear"
// CHECK-SAME: #kt.weight<"w", bf16, [8, 4], "model.safetensors">
module {
  %0 = kt.module "" : "LlamaForCausalLM" () : () -> tensor<?x8xbf16> {
  ^bb0(%x: tensor<?x4xbf16>):
    %1 = kt.linear "model.layers.0.mlp.gate_proj" : "torch.nn.Linear" (%x) {weight = #kt.weight<"w", bf16, [8, 4], "model.safetensors">} : tensor<?x4xbf16> -> tensor<?x8xbf16>
    kt.yield %1 : tensor<?x8xbf16>
  }
}
