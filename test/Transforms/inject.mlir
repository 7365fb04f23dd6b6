// Tests of kt-inject (rule matching and replacement) on hand-written IR with
// the rules in Inputs/inject.yaml; --no-place shows what the rules alone set.
//
// RUN: kt-opt %s --kt-inject=rules=%S/Inputs/inject.yaml | FileCheck %s
// RUN: kt-opt %s --rules=%S/Inputs/inject.yaml --no-place | FileCheck %s
// RUN: kt-opt %s --rules=%S/Inputs/inject.yaml --placement-report=%t.json -o %t.mlir
// RUN: FileCheck %s --check-prefix=PLACED < %t.mlir
// RUN: %python %scripts/upstream_placement.py %S/Inputs/inject.yaml %t.json --list | FileCheck %s --check-prefix=UPSTREAM
//
// Conversion errors point at the rule's replace.class line; nothing is written.
// RUN: not kt-opt %s --rules=%S/Inputs/inject-bad-linear.yaml -o %t.bad 2>&1 | FileCheck %s --check-prefix=BAD-LINEAR
// RUN: not test -e %t.bad
// RUN: not kt-opt %s --rules=%S/Inputs/inject-bad-mla.yaml -o %t.bad 2>&1 | FileCheck %s --check-prefix=BAD-MLA
// RUN: not test -e %t.bad
// RUN: not kt-opt %s --rules=%S/Inputs/inject-bad-experts.yaml -o %t.bad 2>&1 | FileCheck %s --check-prefix=BAD-EXPERTS
// RUN: not test -e %t.bad

// BAD-LINEAR: inject-bad-linear.yaml:10:1: error: ktransformers.operators.linear.KTransformersLinear cannot replace a module of kind kt.embedding (module 'model.embed_tokens')
// BAD-MLA: inject-bad-mla.yaml:9:1: error: 'ktransformers.operators.attention.KDeepseekV2Attention' needs a DeepSeek MLA attention module, but 'model.layers.0' is a modeling_deepseek.DeepseekV2DecoderLayer
// BAD-EXPERTS: inject-bad-experts.yaml:5:1: error: kt.gpu_experts cannot replace a module of kind kt.linear (module 'model.layers.0.self_attn.q_proj')

// Rule 7 (name "embed", class torch.nn.Linear) does not apply to an
// Embedding: name and class must both hold. `default` keeps the op.
// CHECK: kt.embedding "model.embed_tokens" : "torch.nn.Embedding"
// CHECK-SAME: {generate_device = "cpu", kwargs = {generate_device = "cpu", prefill_device = "cpu"}, prefill_device = "cpu", rule = 8 : i64,
// The root and unmatched containers get nothing.
// CHECK-NEXT: kt.module "model.layers.0" : "modeling_deepseek.DeepseekV2DecoderLayer" (%{{.*}}) : (
// isinstance: the YaRN rotary is a DeepseekV2RotaryEmbedding (rule 1), not a
// DeepseekV3RotaryEmbedding (rule 0). Devices are normalised.
// CHECK: kt.rotary "model.layers.0.self_attn.rotary_emb" : "modeling_deepseek.DeepseekV2YarnRotaryEmbedding"
// CHECK-SAME: generate_device = "cuda:0", impl = "YarnRotaryEmbedding", kwargs = {generate_device = "cuda"}
// CHECK-SAME: rule = 1 : i64
// First match wins: q_proj also matches rule 4, whose kwargs are not merged.
// CHECK-NEXT: kt.marlin_linear "model.layers.0.self_attn.q_proj" : "torch.nn.Linear"
// CHECK-SAME: impl = "KLinearMarlin", kwargs = {generate_device = "cuda", generate_op = "KLinearMarlin", prefill_device = "cuda", prefill_op = "KLinearTorch"}
// CHECK-NOT: from_rule_four
// CHECK-SAME: rule = 3 : i64
// The lookahead excludes kv_b_proj from rule 3; nothing else matches it.
// CHECK-NEXT: kt.linear "model.layers.0.self_attn.kv_b_proj" : "torch.nn.Linear" (%{{.*}}) {weight =
// CHECK-NEXT: kt.module "model.layers.0.mlp" : "modeling_deepseek.DeepseekV2MoE"
// CHECK-SAME: impl = "KDeepseekV2MoE"
// CHECK-SAME: rule = 5 : i64
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kt.moe_gate "model.layers.0.mlp.gate"
// CHECK-NOT: rule =
// CHECK-NEXT: kt.cpu_experts "model.layers.0.mlp.experts" : "torch.nn.ModuleList"
// CHECK-SAME: {backend = "AMXInt8", down_proj = [#kt.weight<"e0d", f32, [4, 3], "m.safetensors">, #kt.weight<"e1d", f32, [4, 3], "m.safetensors">], gate_proj = [#kt.weight<"e0g", f32, [3, 4], "m.safetensors">, #kt.weight<"e1g", f32, [3, 4], "m.safetensors">]
// CHECK-SAME: generate_device = "cpu", generate_op = "KExpertsCPU"
// CHECK-SAME: out_device = "cuda:0", prefill_device = "cuda:0", prefill_op = "KExpertsTorch", rule = 6 : i64, up_proj = [#kt.weight<"e0u", f32, [3, 4], "m.safetensors">, #kt.weight<"e1u", f32, [3, 4], "m.safetensors">]}
// The per-expert modules are folded into the op (recursive: False).
// CHECK-NOT: experts.0
// CHECK-NEXT: kt.yield
// recursive: False on layer 1: neither its rotary (rule 1) nor its q_proj
// (rule 3) is replaced.
// CHECK: kt.module "model.layers.1" : "modeling_deepseek.DeepseekV2DecoderLayer"
// CHECK-SAME: {generate_device = "cpu", kwargs = {generate_device = "cpu", prefill_device = "cpu"}, prefill_device = "cpu", rule = 2 : i64}
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kt.rotary "model.layers.1.self_attn.rotary_emb" : "modeling_deepseek.DeepseekV2YarnRotaryEmbedding" (%{{.*}}) {base =
// CHECK-NOT: rule =
// CHECK-NEXT: kt.linear "model.layers.1.self_attn.q_proj" : "torch.nn.Linear" (%{{.*}}) {weight =
// Every class is a torch.nn.Module; only generate_device given.
// CHECK: kt.linear "lm_head" : "torch.nn.Linear" (%{{.*}}) {generate_device = "cuda:1", kwargs = {generate_device = "cuda:1"}, rule = 9 : i64,

// After kt-place: values cross module boundaries freely (a block argument
// lives where the module's operand lives, a module's result where its
// yielded value lives); a kt.transfer is made right before the op that uses
// a value living on another device. The root's ids (cuda:0) move to the CPU
// for embed_tokens; the embedding (CPU) enters layer 0 as it is and moves to
// cuda:0 right before q_proj. The CPU experts take their inputs on their own
// device (generate cpu, prefill cuda:0) and give their result on out_device
// cuda:0, so layer 0's result is on cuda:0. The walk stopped at layer 1, but
// placement still reaches its children (they inherit the CPU), which move
// their inputs there; lm_head's prefill follows generate.
// PLACED: kt.module "" : "modeling_deepseek.DeepseekV2ForCausalLM"
// PLACED-NEXT: ^bb0(%[[IDS:[a-z0-9]+]]: tensor<?xi64>):
// PLACED-NEXT: %[[TIDS:[0-9]+]] = kt.transfer %[[IDS]] {generate_from = "cuda:0", generate_to = "cpu", prefill_from = "cuda:0", prefill_to = "cpu"} : tensor<?xi64>
// PLACED-NEXT: %[[EMB:[0-9]+]] = kt.embedding "model.embed_tokens" : "torch.nn.Embedding" (%[[TIDS]]) {generate_device = "cpu", kt.placed_by = "rule",
// PLACED-NEXT: %[[L0:[0-9]+]] = kt.module "model.layers.0" : "modeling_deepseek.DeepseekV2DecoderLayer" (%[[EMB]], %[[IDS]]) {generate_device = "cuda:0", kt.placed_by = "inherited", prefill_device = "cuda:0"}
// PLACED-NEXT: ^bb0(%[[X0:[a-z0-9]+]]: tensor<?x4xf32>, %[[P0:[a-z0-9]+]]: tensor<?xi64>):
// PLACED-NEXT: kt.rotary "model.layers.0.self_attn.rotary_emb" : "{{[^"]+}}" (%[[P0]]) {{.*}}generate_device = "cuda:0"
// PLACED-NEXT: %[[TX0:[0-9]+]] = kt.transfer %[[X0]] {generate_from = "cpu", generate_to = "cuda:0", prefill_from = "cpu", prefill_to = "cuda:0"} : tensor<?x4xf32>
// PLACED-NEXT: %[[Q0:[0-9]+]] = kt.marlin_linear "model.layers.0.self_attn.q_proj" : "torch.nn.Linear" (%[[TX0]]) {generate_device = "cuda:0",
// PLACED-NEXT: %[[KV0:[0-9]+]] = kt.linear "model.layers.0.self_attn.kv_b_proj" : "torch.nn.Linear" (%[[Q0]]) {generate_device = "cuda:0",
// PLACED-NEXT: %[[M0:[0-9]+]] = kt.module "model.layers.0.mlp" : "modeling_deepseek.DeepseekV2MoE" (%[[KV0]]) {generate_device = "cuda:0",
// PLACED-NEXT: ^bb0(%[[H:[a-z0-9]+]]: tensor<?x4xf32>):
// PLACED-NEXT: %[[GID:[a-z0-9]+]], %[[GW:[a-z0-9]+]] = kt.moe_gate "model.layers.0.mlp.gate" : "modeling_deepseek.MoEGate" (%[[H]]) {generate_device = "cuda:0",
// PLACED-NEXT: %[[TH:[0-9]+]] = kt.transfer %[[H]] {generate_from = "cuda:0", generate_to = "cpu", prefill_from = "cuda:0", prefill_to = "cuda:0"} : tensor<?x4xf32>
// PLACED-NEXT: %[[TGID:[0-9]+]] = kt.transfer %[[GID]] {generate_from = "cuda:0", generate_to = "cpu", prefill_from = "cuda:0", prefill_to = "cuda:0"} : tensor<?x1xi64>
// PLACED-NEXT: %[[TGW:[0-9]+]] = kt.transfer %[[GW]] {generate_from = "cuda:0", generate_to = "cpu", prefill_from = "cuda:0", prefill_to = "cuda:0"} : tensor<?x1xf32>
// PLACED-NEXT: %[[EX:[0-9]+]] = kt.cpu_experts "model.layers.0.mlp.experts" : "torch.nn.ModuleList" (%[[TH]], %[[TGID]], %[[TGW]])
// PLACED-SAME: generate_device = "cpu"
// PLACED-SAME: out_device = "cuda:0", prefill_device = "cuda:0"
// PLACED-NEXT: kt.yield %[[EX]]
// PLACED-NEXT: }
// PLACED-NEXT: kt.yield %[[M0]]
// PLACED-NEXT: }
// PLACED-NEXT: %[[L1:[0-9]+]] = kt.module "model.layers.1" : "modeling_deepseek.DeepseekV2DecoderLayer" (%[[L0]], %[[IDS]])
// PLACED-SAME: kt.placed_by = "rule"
// PLACED-NEXT: ^bb0(%[[X1:[a-z0-9]+]]: tensor<?x4xf32>, %[[P1:[a-z0-9]+]]: tensor<?xi64>):
// PLACED-NEXT: %[[TP1:[0-9]+]] = kt.transfer %[[P1]] {generate_from = "cuda:0", generate_to = "cpu", prefill_from = "cuda:0", prefill_to = "cpu"} : tensor<?xi64>
// PLACED-NEXT: kt.rotary "model.layers.1.self_attn.rotary_emb" : "{{[^"]+}}" (%[[TP1]])
// PLACED-SAME: generate_device = "cpu", kt.placed_by = "inherited"
// PLACED-NEXT: %[[TX1:[0-9]+]] = kt.transfer %[[X1]] {generate_from = "cuda:0", generate_to = "cpu", prefill_from = "cuda:0", prefill_to = "cpu"} : tensor<?x4xf32>
// PLACED-NEXT: %[[Q1:[0-9]+]] = kt.linear "model.layers.1.self_attn.q_proj" : "torch.nn.Linear" (%[[TX1]]) {generate_device = "cpu", kt.placed_by = "inherited", prefill_device = "cpu",
// PLACED-NEXT: kt.yield %[[Q1]]
// PLACED-NEXT: }
// PLACED-NEXT: %[[TL1:[0-9]+]] = kt.transfer %[[L1]] {generate_from = "cpu", generate_to = "cuda:1", prefill_from = "cpu", prefill_to = "cuda:1"} : tensor<?x4xf32>
// PLACED-NEXT: %[[LM:[0-9]+]] = kt.linear "lm_head" : "torch.nn.Linear" (%[[TL1]])
// PLACED-SAME: generate_device = "cuda:1", kt.placed_by = "rule", kwargs = {generate_device = "cuda:1"}, prefill_device = "cuda:1"
// PLACED-NEXT: kt.yield %[[LM]]

// The independent model of upstream agrees (modules below layer 1 are not
// compared: upstream never visits them).
// UPSTREAM: model.layers.1: kt.module rule=2 generate=cpu prefill=cpu placed_by=rule
// UPSTREAM: lm_head: kt.linear rule=9 generate=cuda:1 prefill=cuda:1 placed_by=rule
// UPSTREAM: note: rule 0 ({{.*}}DeepseekV3RotaryEmbedding{{.*}}) placed no module
// UPSTREAM-NEXT: note: rule 4 ({{.*}}) placed no module
// UPSTREAM-NEXT: note: rule 7 ({{.*}}) placed no module
// UPSTREAM-NEXT: OK 11 modules

module {
  %0 = kt.module "" : "modeling_deepseek.DeepseekV2ForCausalLM" () : () -> tensor<?x8xf32> {
  ^bb0(%ids: tensor<?xi64>):
    %e = kt.embedding "model.embed_tokens" : "torch.nn.Embedding" (%ids) {weight = #kt.weight<"e", f32, [16, 4], "m.safetensors">} : tensor<?xi64> -> tensor<?x4xf32>
    %l0 = kt.module "model.layers.0" : "modeling_deepseek.DeepseekV2DecoderLayer" (%e, %ids) : (tensor<?x4xf32>, tensor<?xi64>) -> tensor<?x4xf32> {
    ^bb0(%x: tensor<?x4xf32>, %pos: tensor<?xi64>):
      %cos, %sin = kt.rotary "model.layers.0.self_attn.rotary_emb" : "modeling_deepseek.DeepseekV2YarnRotaryEmbedding" (%pos) {dim = 2 : i64, base = 10000.0 : f64, max_position = 64 : i64, scaling = "yarn"} : tensor<?xi64> -> tensor<?x2xf32>, tensor<?x2xf32>
      %q = kt.linear "model.layers.0.self_attn.q_proj" : "torch.nn.Linear" (%x) {weight = #kt.weight<"q0", f32, [4, 4], "m.safetensors">} : tensor<?x4xf32> -> tensor<?x4xf32>
      %kv = kt.linear "model.layers.0.self_attn.kv_b_proj" : "torch.nn.Linear" (%q) {weight = #kt.weight<"kv0", f32, [4, 4], "m.safetensors">} : tensor<?x4xf32> -> tensor<?x4xf32>
      %m = kt.module "model.layers.0.mlp" : "modeling_deepseek.DeepseekV2MoE" (%kv) : (tensor<?x4xf32>) -> tensor<?x4xf32> {
      ^bb0(%h: tensor<?x4xf32>):
        %tid, %tw = kt.moe_gate "model.layers.0.mlp.gate" : "modeling_deepseek.MoEGate" (%h) {weight = #kt.weight<"g", f32, [2, 4], "m.safetensors">, top_k = 1 : i64, num_experts = 2 : i64, scoring_func = "softmax", topk_method = "greedy"} : tensor<?x4xf32> -> tensor<?x1xi64>, tensor<?x1xf32>
        %y = kt.experts "model.layers.0.mlp.experts" : "torch.nn.ModuleList" (%h, %tid, %tw) {hidden_size = 4 : i64, intermediate_size = 3 : i64, num_experts = 2 : i64} : (tensor<?x4xf32>, tensor<?x1xi64>, tensor<?x1xf32>) -> tensor<?x4xf32> {
        ^bb0(%t: tensor<?x4xf32>):
          %x0 = kt.module "model.layers.0.mlp.experts.0" : "modeling_deepseek.DeepseekV2MLP" (%t) : (tensor<?x4xf32>) -> tensor<?x4xf32> {
          ^bb0(%a: tensor<?x4xf32>):
            %g0 = kt.linear "model.layers.0.mlp.experts.0.gate_proj" : "torch.nn.Linear" (%a) {weight = #kt.weight<"e0g", f32, [3, 4], "m.safetensors">} : tensor<?x4xf32> -> tensor<?x3xf32>
            %u0 = kt.linear "model.layers.0.mlp.experts.0.up_proj" : "torch.nn.Linear" (%a) {weight = #kt.weight<"e0u", f32, [3, 4], "m.safetensors">} : tensor<?x4xf32> -> tensor<?x3xf32>
            %s0 = kt.silu_mul %g0, %u0 : tensor<?x3xf32>
            %d0 = kt.linear "model.layers.0.mlp.experts.0.down_proj" : "torch.nn.Linear" (%s0) {weight = #kt.weight<"e0d", f32, [4, 3], "m.safetensors">} : tensor<?x3xf32> -> tensor<?x4xf32>
            kt.yield %d0 : tensor<?x4xf32>
          }
          %x1 = kt.module "model.layers.0.mlp.experts.1" : "modeling_deepseek.DeepseekV2MLP" (%t) : (tensor<?x4xf32>) -> tensor<?x4xf32> {
          ^bb0(%a: tensor<?x4xf32>):
            %g1 = kt.linear "model.layers.0.mlp.experts.1.gate_proj" : "torch.nn.Linear" (%a) {weight = #kt.weight<"e1g", f32, [3, 4], "m.safetensors">} : tensor<?x4xf32> -> tensor<?x3xf32>
            %u1 = kt.linear "model.layers.0.mlp.experts.1.up_proj" : "torch.nn.Linear" (%a) {weight = #kt.weight<"e1u", f32, [3, 4], "m.safetensors">} : tensor<?x4xf32> -> tensor<?x3xf32>
            %s1 = kt.silu_mul %g1, %u1 : tensor<?x3xf32>
            %d1 = kt.linear "model.layers.0.mlp.experts.1.down_proj" : "torch.nn.Linear" (%s1) {weight = #kt.weight<"e1d", f32, [4, 3], "m.safetensors">} : tensor<?x3xf32> -> tensor<?x4xf32>
            kt.yield %d1 : tensor<?x4xf32>
          }
          kt.yield %x0, %x1 : tensor<?x4xf32>, tensor<?x4xf32>
        }
        kt.yield %y : tensor<?x4xf32>
      }
      kt.yield %m : tensor<?x4xf32>
    }
    %l1 = kt.module "model.layers.1" : "modeling_deepseek.DeepseekV2DecoderLayer" (%l0, %ids) : (tensor<?x4xf32>, tensor<?xi64>) -> tensor<?x4xf32> {
    ^bb0(%x: tensor<?x4xf32>, %pos: tensor<?xi64>):
      %cos, %sin = kt.rotary "model.layers.1.self_attn.rotary_emb" : "modeling_deepseek.DeepseekV2YarnRotaryEmbedding" (%pos) {dim = 2 : i64, base = 10000.0 : f64, max_position = 64 : i64, scaling = "yarn"} : tensor<?xi64> -> tensor<?x2xf32>, tensor<?x2xf32>
      %q = kt.linear "model.layers.1.self_attn.q_proj" : "torch.nn.Linear" (%x) {weight = #kt.weight<"q1", f32, [4, 4], "m.safetensors">} : tensor<?x4xf32> -> tensor<?x4xf32>
      kt.yield %q : tensor<?x4xf32>
    }
    %h = kt.linear "lm_head" : "torch.nn.Linear" (%l1) {weight = #kt.weight<"lm", f32, [8, 4], "m.safetensors">} : tensor<?x4xf32> -> tensor<?x8xf32>
    kt.yield %h : tensor<?x8xf32>
  }
}
