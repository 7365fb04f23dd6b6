// Tests of kt-place (device resolution and transfers) on hand-written IR.
// Device attributes present in the input stand for what rules set.
//
// RUN: kt-opt %s -split-input-file -verify-diagnostics --kt-place | FileCheck %s
// "cuda" is normalised to cuda:0.
// RUN: kt-opt %s -split-input-file -verify-diagnostics --kt-place=default-device=cuda | FileCheck %s
// RUN: kt-opt %s -split-input-file --kt-place=default-device=cpu 2>/dev/null | FileCheck %s --check-prefix=CPU
// kt-opt's own --default-device (which adds kt-place with a placement report)
// gives the same placement, and both reject a bad device.
// RUN: kt-opt %s -split-input-file -verify-diagnostics --placement-report=%t.json | FileCheck %s
// RUN: kt-opt %s -split-input-file --placement-report=%t.json --default-device=cpu 2>/dev/null | FileCheck %s --check-prefix=CPU
// RUN: not kt-opt %s -split-input-file --placement-report=%t.json --default-device=tpu 2>&1 | FileCheck %s --check-prefix=BADDEV
// RUN: not kt-opt %s -split-input-file --kt-place=default-device=tpu 2>&1 | FileCheck %s --check-prefix=BADDEV

// BADDEV: error: --default-device 'tpu' is not a device (cpu, cuda, cuda:N)

// The root takes the default device ("default"), modules without devices
// their parent's generate device ("inherited"), modules with devices keep
// them ("rule"). A value crossing devices gets a kt.transfer, root inputs
// live on the root's device.
//
// CHECK-LABEL: kt.module "" : "LlamaForCausalLM" () {generate_device = "cuda:0", kt.placed_by = "default", prefill_device = "cuda:0"}
// CHECK-NEXT: ^bb0(%[[X:[a-z0-9]+]]: tensor<?x4xf32>):
// CHECK-NEXT: %[[T0:[0-9]+]] = kt.transfer %[[X]] {generate_from = "cuda:0", generate_to = "cpu", prefill_from = "cuda:0", prefill_to = "cpu"} : tensor<?x4xf32>
// CHECK-NEXT: %[[A:[0-9]+]] = kt.linear "lin_a" : "torch.nn.Linear" (%[[T0]]) {generate_device = "cpu", kt.placed_by = "rule", prefill_device = "cpu",
// CHECK-NEXT: %[[T1:[0-9]+]] = kt.transfer %[[A]] {generate_from = "cpu", generate_to = "cuda:0", prefill_from = "cpu", prefill_to = "cuda:0"} : tensor<?x4xf32>
// CHECK-NEXT: %[[B:[0-9]+]] = kt.linear "lin_b" : "torch.nn.Linear" (%[[T1]]) {generate_device = "cuda:0", kt.placed_by = "inherited", prefill_device = "cuda:0",
// A second consumer on the same device in the same block reuses the transfer.
// CHECK-NEXT: %[[C:[0-9]+]] = kt.linear "lin_c" : "torch.nn.Linear" (%[[T1]]) {generate_device = "cuda:0", kt.placed_by = "inherited", prefill_device = "cuda:0",
// CHECK-NEXT: %[[S:[0-9]+]] = kt.add %[[B]], %[[C]] : tensor<?x8xf32>
// CHECK-NEXT: kt.yield %[[S]] : tensor<?x8xf32>
//
// With --default-device=cpu the CPU linear needs no transfer in, lin_b and
// lin_c inherit the CPU.
// CPU-LABEL: kt.module "" : "LlamaForCausalLM" () {generate_device = "cpu", kt.placed_by = "default", prefill_device = "cpu"}
// CPU-NEXT: ^bb0(%[[X:[a-z0-9]+]]: tensor<?x4xf32>):
// CPU-NEXT: %[[A:[0-9]+]] = kt.linear "lin_a" : "torch.nn.Linear" (%[[X]]) {generate_device = "cpu", kt.placed_by = "rule", prefill_device = "cpu",
// CPU-NEXT: kt.linear "lin_b" : "torch.nn.Linear" (%[[A]]) {generate_device = "cpu", kt.placed_by = "inherited", prefill_device = "cpu",
module {
  %0 = kt.module "" : "LlamaForCausalLM" () : () -> tensor<?x8xf32> {
  ^bb0(%x: tensor<?x4xf32>):
    %a = kt.linear "lin_a" : "torch.nn.Linear" (%x) {generate_device = "cpu", prefill_device = "cpu", weight = #kt.weight<"a", f32, [4, 4], "m.safetensors">} : tensor<?x4xf32> -> tensor<?x4xf32>
    %b = kt.linear "lin_b" : "torch.nn.Linear" (%a) {weight = #kt.weight<"b", f32, [8, 4], "m.safetensors">} : tensor<?x4xf32> -> tensor<?x8xf32>
    %c = kt.linear "lin_c" : "torch.nn.Linear" (%a) {weight = #kt.weight<"c", f32, [8, 4], "m.safetensors">} : tensor<?x4xf32> -> tensor<?x8xf32>
    %s = kt.add %b, %c : tensor<?x8xf32>
    kt.yield %s : tensor<?x8xf32>
  }
}

// -----

// Inheritance below a module placed elsewhere, and partially given devices:
// only generate_device -> prefill uses it too; only prefill_device ->
// generate is inherited. A module without devices takes its parent's
// *generate* device for both phases. Phases are transferred separately.
//
// Values cross module boundaries without transfers: a block argument lives
// where the module's operand lives, a module's result where its yielded
// value lives. The transfer is made right before the op that computes on
// another device: m's argument (on the root's cuda:0) moves to cuda:1 before
// m.a, not before m; m.c's result (generate cuda:1, prefill cpu) enters m.d
// untouched and moves before m.d.e; m.d.e's result (cpu) leaves m.d, m and
// the root without a transfer.
//
// CHECK-LABEL: kt.module "m" : "LlamaModel" (%{{[a-z0-9]+}})
// CHECK-SAME: {generate_device = "cuda:1", kt.placed_by = "rule", prefill_device = "cuda:1"}
// CHECK-NEXT: ^bb0(%[[X:[a-z0-9]+]]: tensor<?x4xf32>):
// CHECK-NEXT: %[[TX:[0-9]+]] = kt.transfer %[[X]] {generate_from = "cuda:0", generate_to = "cuda:1", prefill_from = "cuda:0", prefill_to = "cuda:1"}
// CHECK-NEXT: %[[A:[0-9]+]] = kt.linear "m.a" : "torch.nn.Linear" (%[[TX]]) {generate_device = "cuda:1", kt.placed_by = "inherited", prefill_device = "cuda:1",
// CHECK-NEXT: %[[TA:[0-9]+]] = kt.transfer %[[A]] {generate_from = "cuda:1", generate_to = "cpu", prefill_from = "cuda:1", prefill_to = "cpu"}
// CHECK-NEXT: %[[B:[0-9]+]] = kt.linear "m.b" : "torch.nn.Linear" (%[[TA]]) {generate_device = "cpu", kt.placed_by = "rule", prefill_device = "cpu",
// CHECK-NEXT: %[[TB:[0-9]+]] = kt.transfer %[[B]] {generate_from = "cpu", generate_to = "cuda:1", prefill_from = "cpu", prefill_to = "cpu"}
// CHECK-NEXT: %[[C:[0-9]+]] = kt.linear "m.c" : "torch.nn.Linear" (%[[TB]]) {generate_device = "cuda:1", kt.placed_by = "rule", prefill_device = "cpu",
// CHECK-NEXT: %[[D:[0-9]+]] = kt.module "m.d" : "LlamaMLP" (%[[C]]) {generate_device = "cpu", kt.placed_by = "rule", prefill_device = "cuda:0"}
// CHECK-NEXT: ^bb0(%[[Y:[a-z0-9]+]]: tensor<?x4xf32>):
// CHECK-NEXT: %[[TY:[0-9]+]] = kt.transfer %[[Y]] {generate_from = "cuda:1", generate_to = "cpu", prefill_from = "cpu", prefill_to = "cpu"}
// CHECK-NEXT: %[[E:[0-9]+]] = kt.linear "m.d.e" : "torch.nn.Linear" (%[[TY]]) {generate_device = "cpu", kt.placed_by = "inherited", prefill_device = "cpu",
// CHECK-NEXT: kt.yield %[[E]]
// CHECK-NEXT: }
// CHECK-NEXT: kt.yield %[[D]]
// CHECK-NEXT: }
// CHECK-NEXT: kt.yield %{{[0-9]+}}
// CHECK-NOT: kt.transfer
module {
  %0 = kt.module "" : "LlamaForCausalLM" () : () -> tensor<?x4xf32> {
  ^bb0(%x: tensor<?x4xf32>):
    %m = kt.module "m" : "LlamaModel" (%x) {generate_device = "cuda:1", prefill_device = "cuda:1"} : (tensor<?x4xf32>) -> tensor<?x4xf32> {
    ^bb0(%in: tensor<?x4xf32>):
      %a = kt.linear "m.a" : "torch.nn.Linear" (%in) {weight = #kt.weight<"a", f32, [4, 4], "m.safetensors">} : tensor<?x4xf32> -> tensor<?x4xf32>
      %b = kt.linear "m.b" : "torch.nn.Linear" (%a) {generate_device = "cpu", weight = #kt.weight<"b", f32, [4, 4], "m.safetensors">} : tensor<?x4xf32> -> tensor<?x4xf32>
      %c = kt.linear "m.c" : "torch.nn.Linear" (%b) {prefill_device = "cpu", weight = #kt.weight<"c", f32, [4, 4], "m.safetensors">} : tensor<?x4xf32> -> tensor<?x4xf32>
      %d = kt.module "m.d" : "LlamaMLP" (%c) {generate_device = "cpu", prefill_device = "cuda:0"} : (tensor<?x4xf32>) -> tensor<?x4xf32> {
      ^bb0(%y: tensor<?x4xf32>):
        %e = kt.linear "m.d.e" : "torch.nn.Linear" (%y) {weight = #kt.weight<"e", f32, [4, 4], "m.safetensors">} : tensor<?x4xf32> -> tensor<?x4xf32>
        kt.yield %e : tensor<?x4xf32>
      }
      kt.yield %d : tensor<?x4xf32>
    }
    kt.yield %m : tensor<?x4xf32>
  }
}

// -----

// Routed experts on the CPU for generate: inputs move per phase, the result
// lives on out_device, so only experts without out_device need a transfer
// back. Transfers of one value to one place are shared within a block.
//
// CHECK-LABEL: kt.module "mlp" : "Qwen2MoeSparseMoeBlock"
// CHECK-NEXT: ^bb0(%[[H:[a-z0-9]+]]: tensor<?x4xf32>):
// CHECK-NEXT: kt.linear "mlp.gate"
// CHECK-NEXT: %[[IDS:[a-z0-9]+]], %[[W:[a-z0-9]+]] = kt.topk_route
// CHECK-NEXT: %[[TH:[0-9]+]] = kt.transfer %[[H]] {generate_from = "cuda:0", generate_to = "cpu", prefill_from = "cuda:0", prefill_to = "cuda:0"} : tensor<?x4xf32>
// CHECK-NEXT: %[[TI:[0-9]+]] = kt.transfer %[[IDS]] {generate_from = "cuda:0", generate_to = "cpu", prefill_from = "cuda:0", prefill_to = "cuda:0"} : tensor<?x1xi64>
// CHECK-NEXT: %[[TW:[0-9]+]] = kt.transfer %[[W]] {generate_from = "cuda:0", generate_to = "cpu", prefill_from = "cuda:0", prefill_to = "cuda:0"} : tensor<?x1xf32>
// CHECK-NEXT: %[[E1:[0-9]+]] = kt.cpu_experts "mlp.experts" : "torch.nn.ModuleList" (%[[TH]], %[[TI]], %[[TW]])
// CHECK-SAME: generate_device = "cpu"
// CHECK-SAME: kt.placed_by = "rule"
// CHECK-SAME: out_device = "cuda:0", prefill_device = "cuda:0"
// CHECK-NEXT: %[[E2:[0-9]+]] = kt.cpu_experts "mlp.experts_same" : "torch.nn.ModuleList" (%[[TH]], %[[TI]], %[[TW]])
// CHECK-NEXT: %[[UH:[0-9]+]] = kt.transfer %[[H]] {generate_from = "cuda:0", generate_to = "cpu", prefill_from = "cuda:0", prefill_to = "cpu"}
// CHECK-NEXT: %[[UI:[0-9]+]] = kt.transfer %[[IDS]] {generate_from = "cuda:0", generate_to = "cpu", prefill_from = "cuda:0", prefill_to = "cpu"}
// CHECK-NEXT: %[[UW:[0-9]+]] = kt.transfer %[[W]] {generate_from = "cuda:0", generate_to = "cpu", prefill_from = "cuda:0", prefill_to = "cpu"}
// CHECK-NEXT: %[[E3:[0-9]+]] = kt.cpu_experts "mlp.experts_cpu" : "torch.nn.ModuleList" (%[[UH]], %[[UI]], %[[UW]])
// CHECK-NOT: out_device
// CHECK-NEXT: %[[S1:[0-9]+]] = kt.add %[[E1]], %[[E2]] : tensor<?x4xf32>
// CHECK-NEXT: %[[T3:[0-9]+]] = kt.transfer %[[E3]] {generate_from = "cpu", generate_to = "cuda:0", prefill_from = "cpu", prefill_to = "cuda:0"}
// CHECK-NEXT: %[[S2:[0-9]+]] = kt.add %[[S1]], %[[T3]] : tensor<?x4xf32>
// CHECK-NEXT: kt.yield %[[S2]]
module {
  %0 = kt.module "" : "Qwen2MoeForCausalLM" () : () -> tensor<?x4xf32> {
  ^bb0(%x: tensor<?x4xf32>):
    %m = kt.module "mlp" : "Qwen2MoeSparseMoeBlock" (%x) : (tensor<?x4xf32>) -> tensor<?x4xf32> {
    ^bb0(%h: tensor<?x4xf32>):
      %g = kt.linear "mlp.gate" : "torch.nn.Linear" (%h) {weight = #kt.weight<"g", f32, [2, 4], "m.safetensors">} : tensor<?x4xf32> -> tensor<?x2xf32>
      %ids, %w = kt.topk_route %g {top_k = 1 : i64} : tensor<?x2xf32> -> tensor<?x1xi64>, tensor<?x1xf32>
      %e1 = kt.cpu_experts "mlp.experts" : "torch.nn.ModuleList" (%h, %ids, %w) {generate_device = "cpu", prefill_device = "cuda:0", out_device = "cuda:0", num_experts = 2 : i64, hidden_size = 4 : i64, intermediate_size = 3 : i64, gate_proj = [#kt.weight<"g0", f32, [3, 4], "m.safetensors">, #kt.weight<"g1", f32, [3, 4], "m.safetensors">], up_proj = [#kt.weight<"u0", f32, [3, 4], "m.safetensors">, #kt.weight<"u1", f32, [3, 4], "m.safetensors">], down_proj = [#kt.weight<"d0", f32, [4, 3], "m.safetensors">, #kt.weight<"d1", f32, [4, 3], "m.safetensors">]} : (tensor<?x4xf32>, tensor<?x1xi64>, tensor<?x1xf32>) -> tensor<?x4xf32>
      %e2 = kt.cpu_experts "mlp.experts_same" : "torch.nn.ModuleList" (%h, %ids, %w) {generate_device = "cpu", prefill_device = "cuda:0", out_device = "cuda:0", num_experts = 2 : i64, hidden_size = 4 : i64, intermediate_size = 3 : i64, gate_proj = [#kt.weight<"g0", f32, [3, 4], "m.safetensors">, #kt.weight<"g1", f32, [3, 4], "m.safetensors">], up_proj = [#kt.weight<"u0", f32, [3, 4], "m.safetensors">, #kt.weight<"u1", f32, [3, 4], "m.safetensors">], down_proj = [#kt.weight<"d0", f32, [4, 3], "m.safetensors">, #kt.weight<"d1", f32, [4, 3], "m.safetensors">]} : (tensor<?x4xf32>, tensor<?x1xi64>, tensor<?x1xf32>) -> tensor<?x4xf32>
      %e3 = kt.cpu_experts "mlp.experts_cpu" : "torch.nn.ModuleList" (%h, %ids, %w) {generate_device = "cpu", prefill_device = "cpu", num_experts = 2 : i64, hidden_size = 4 : i64, intermediate_size = 3 : i64, gate_proj = [#kt.weight<"g0", f32, [3, 4], "m.safetensors">, #kt.weight<"g1", f32, [3, 4], "m.safetensors">], up_proj = [#kt.weight<"u0", f32, [3, 4], "m.safetensors">, #kt.weight<"u1", f32, [3, 4], "m.safetensors">], down_proj = [#kt.weight<"d0", f32, [4, 3], "m.safetensors">, #kt.weight<"d1", f32, [4, 3], "m.safetensors">]} : (tensor<?x4xf32>, tensor<?x1xi64>, tensor<?x1xf32>) -> tensor<?x4xf32>
      %s1 = kt.add %e1, %e2 : tensor<?x4xf32>
      %s2 = kt.add %s1, %e3 : tensor<?x4xf32>
      kt.yield %s2 : tensor<?x4xf32>
    }
    kt.yield %m : tensor<?x4xf32>
  }
}

// -----

// A model's transfer_map (upstream KDeepseekV2Model) is checked against the
// placement of its layers: a disagreeing layer and a missing layer warn, an
// agreeing layer does not.
//
// CHECK-LABEL: kt.module "model.layers.2" : "DeepseekV3DecoderLayer"
// CHECK-SAME: generate_device = "cuda:1"
module {
  %0 = kt.module "" : "DeepseekV3ForCausalLM" () : () -> tensor<?x4xf32> {
  ^bb0(%x: tensor<?x4xf32>):
    // expected-warning @+2 {{transfer_map moves the hidden state to cuda:1 at 'model.layers.1', but the rules place that layer on cuda:0}}
    // expected-warning @+1 {{transfer_map names layer 7, which the model does not have}}
    %m = kt.module "model" : "DeepseekV3Model" (%x) {kwargs = {transfer_map = {"1" = "cuda:1", "2" = "cuda:1", "7" = "cuda:1"}}} : (tensor<?x4xf32>) -> tensor<?x4xf32> {
    ^bb0(%in: tensor<?x4xf32>):
      %l0 = kt.module "model.layers.0" : "DeepseekV3DecoderLayer" (%in) : (tensor<?x4xf32>) -> tensor<?x4xf32> {
      ^bb0(%a: tensor<?x4xf32>):
        kt.yield %a : tensor<?x4xf32>
      }
      %l1 = kt.module "model.layers.1" : "DeepseekV3DecoderLayer" (%l0) : (tensor<?x4xf32>) -> tensor<?x4xf32> {
      ^bb0(%a: tensor<?x4xf32>):
        kt.yield %a : tensor<?x4xf32>
      }
      %l2 = kt.module "model.layers.2" : "DeepseekV3DecoderLayer" (%l1) {generate_device = "cuda:1", prefill_device = "cuda:1"} : (tensor<?x4xf32>) -> tensor<?x4xf32> {
      ^bb0(%a: tensor<?x4xf32>):
        kt.yield %a : tensor<?x4xf32>
      }
      kt.yield %l2 : tensor<?x4xf32>
    }
    kt.yield %m : tensor<?x4xf32>
  }
}
