// Routed experts replaced by a rule that gives no devices: the replacement is
// a CPU experts kernel, so it must compute on the CPU for generate.
// Upstream's KTransformersExperts defaults to generate_device "cpu",
// prefill_device "cuda" (its constructor defaults; gen_optimize_config passes
// only the rule's kwargs).
//
// Regression test: kt-inject picks kt.cpu_experts (no generate_device counts
// as CPU in resolveTarget), but kt-place used to resolve the missing device
// from the parent (cuda:0, placed_by "inherited"), giving a kt.cpu_experts
// with generate_device "cuda:0". Same for `class: kt.cpu_experts`.
//
// RUN: kt-opt %s --rules=%S/Inputs/experts-no-device.yaml --placement-report=%t.json | FileCheck %s
// RUN: %python %scripts/upstream_placement.py %S/Inputs/experts-no-device.yaml %t.json | FileCheck %s --check-prefix=UPSTREAM

// CHECK: kt.cpu_experts "mlp.experts"
// CHECK-SAME: generate_device = "cpu"
// CHECK-SAME: prefill_device = "cuda:0"
// CHECK: kt.cpu_experts "mlp.experts_kt"
// CHECK-SAME: generate_device = "cpu"
// CHECK-SAME: prefill_device = "cuda:0"
// UPSTREAM-NOT: MISMATCH
// UPSTREAM: OK 4 modules
module {
  %0 = kt.module "" : "Qwen2MoeForCausalLM" () : () -> tensor<?x4xf32> {
  ^bb0(%x: tensor<?x4xf32>, %ids: tensor<?x1xi64>, %w: tensor<?x1xf32>):
    %m = kt.module "mlp" : "Qwen2MoeSparseMoeBlock" (%x, %ids, %w) : (tensor<?x4xf32>, tensor<?x1xi64>, tensor<?x1xf32>) -> tensor<?x4xf32> {
    ^bb0(%h: tensor<?x4xf32>, %i: tensor<?x1xi64>, %v: tensor<?x1xf32>):
      %y = kt.experts "mlp.experts" : "torch.nn.ModuleList" (%h, %i, %v) {hidden_size = 4 : i64, intermediate_size = 3 : i64, num_experts = 2 : i64, gate_up_fused = #kt.weight<"gu", f32, [2, 6, 4], "m.safetensors">, down_fused = #kt.weight<"dn", f32, [2, 4, 3], "m.safetensors">} : (tensor<?x4xf32>, tensor<?x1xi64>, tensor<?x1xf32>) -> tensor<?x4xf32> {
      }
      %z = kt.experts "mlp.experts_kt" : "torch.nn.ModuleList" (%h, %i, %v) {hidden_size = 4 : i64, intermediate_size = 3 : i64, num_experts = 2 : i64, gate_up_fused = #kt.weight<"gu", f32, [2, 6, 4], "m.safetensors">, down_fused = #kt.weight<"dn", f32, [2, 4, 3], "m.safetensors">} : (tensor<?x4xf32>, tensor<?x1xi64>, tensor<?x1xf32>) -> tensor<?x4xf32> {
      }
      %s = kt.add %y, %z : tensor<?x4xf32>
      kt.yield %s : tensor<?x4xf32>
    }
    kt.yield %m : tensor<?x4xf32>
  }
}
