// One case per diagnostic of the kt verifiers (lib/Dialect/KtOps.cpp) and of
// #kt.weight (lib/Dialect/KtAttrs.cpp). Each case is a root kt.module whose
// block arguments provide the values the op under test consumes.
// RUN: kt-opt %s -split-input-file -verify-diagnostics

//===----------------------------------------------------------------------===//
// #kt.weight
//===----------------------------------------------------------------------===//

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{weight tensor name is empty}}
  %1 = kt.linear "l" : "torch.nn.Linear" (%x) {weight = #kt.weight<"", f32, [8, 8], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{weight 'l.weight' has a non-scalar element type 'index'}}
  %1 = kt.linear "l" : "torch.nn.Linear" (%x) {weight = #kt.weight<"l.weight", index, [8, 8], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{weight 'l.weight' has a negative dim}}
  %1 = kt.linear "l" : "torch.nn.Linear" (%x) {weight = #kt.weight<"l.weight", f32, [-1, 8], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{weight 'l.weight' names no file}}
  %1 = kt.linear "l" : "torch.nn.Linear" (%x) {weight = #kt.weight<"l.weight", f32, [8, 8], "">} : tensor<?x8xf32> -> tensor<?x8xf32>
  kt.yield
}

//===----------------------------------------------------------------------===//
// Module attributes (every module op)
//===----------------------------------------------------------------------===//

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{generate_device 'gpu:0' is not a device (cpu, cuda, cuda:N)}}
  %1 = kt.linear "l" : "torch.nn.Linear" (%x) {generate_device = "gpu:0", weight = #kt.weight<"l.weight", f32, [8, 8], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{prefill_device 'cuda:' is not a device (cpu, cuda, cuda:N)}}
  %1 = kt.linear "l" : "torch.nn.Linear" (%x) {prefill_device = "cuda:", weight = #kt.weight<"l.weight", f32, [8, 8], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{generate_device 'cuda:1a' is not a device}}
  %1 = kt.rms_norm "n" : "RMSNorm" (%x) {generate_device = "cuda:1a", eps = 1.0e-6 : f64, weight = #kt.weight<"n.weight", f32, [8], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x8xf32>
  kt.yield
}

// -----

// expected-error @+1 {{generate_device 'GPU' is not a device}}
kt.module "" : "M" () {generate_device = "GPU"} : () -> () {
^bb0(%x: tensor<?x8xf32>):
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{module name 'model..mlp' is not dotted}}
  %1 = kt.linear "model..mlp" : "torch.nn.Linear" (%x) {weight = #kt.weight<"l.weight", f32, [8, 8], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{module name 'model.layers.' is not dotted}}
  %1 = kt.module "model.layers." : "M" (%x) : (tensor<?x8xf32>) -> tensor<?x8xf32> {
  ^bb0(%y: tensor<?x8xf32>):
    kt.yield %y : tensor<?x8xf32>
  }
  kt.yield
}

//===----------------------------------------------------------------------===//
// Containers: kt.module, kt.mla, kt.yield
//===----------------------------------------------------------------------===//

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %p: tensor<?xi64>):
  // expected-error @+1 {{body takes 1 arguments but the module has 2 inputs}}
  %1 = kt.module "a" : "M" (%x, %p) : (tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x8xf32> {
  ^bb0(%y: tensor<?x8xf32>):
    kt.yield %y : tensor<?x8xf32>
  }
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{body argument #0 has type 'tensor<?x4xf32>' but input has type 'tensor<?x8xf32>'}}
  %1 = kt.module "a" : "M" (%x) : (tensor<?x8xf32>) -> tensor<?x8xf32> {
  ^bb0(%y: tensor<?x4xf32>):
    kt.yield %x : tensor<?x8xf32>
  }
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{kt.yield types do not match the results}}
  %1 = kt.module "a" : "M" (%x) : (tensor<?x8xf32>) -> tensor<?x8xf32> {
  ^bb0(%y: tensor<?x8xf32>):
    kt.yield %y, %y : tensor<?x8xf32>, tensor<?x8xf32>
  }
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{kt.yield types do not match the results}}
  %1 = kt.module "a" : "M" (%x) : (tensor<?x8xf32>) -> tensor<?x4xf32> {
  ^bb0(%y: tensor<?x8xf32>):
    kt.yield %y : tensor<?x8xf32>
  }
  kt.yield
}

// -----

// The root module (no operands, directly under builtin.module) is the model
// entry and may take any arguments, but its yield must still match.
// expected-error @+1 {{kt.yield types do not match the results}}
%0 = kt.module "" : "M" () : () -> tensor<?x8xf32> {
^bb0(%x: tensor<?x8xf32>):
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{body must end with kt.yield}}
  %1 = kt.module "a" : "M" (%x) : (tensor<?x8xf32>) -> tensor<?x8xf32> {
  ^bb0(%y: tensor<?x8xf32>):
    %2 = kt.add %y, %y : tensor<?x8xf32>
  }
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  kt.yield
}
// expected-error @+1 {{'kt.yield' op expects parent op to be one of 'kt.module, kt.mla, kt.experts'}}
kt.yield

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %p: tensor<?xi64>):
  // expected-error @+1 {{has invalid MLA dimensions}}
  %1 = kt.mla "attn" : "DeepseekV2Attention" (%x, %p) {num_heads = 2 : i64, q_lora_rank = 0 : i64, kv_lora_rank = 6 : i64, qk_nope_head_dim = 4 : i64, qk_rope_head_dim = 3 : i64, v_head_dim = 4 : i64, softmax_scale = 0.5 : f64} : (tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x8xf32> {
  ^bb0(%y: tensor<?x8xf32>, %q: tensor<?xi64>):
    kt.yield %y : tensor<?x8xf32>
  }
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %p: tensor<?xi64>):
  // expected-error @+1 {{has invalid MLA dimensions}}
  %1 = kt.mla "attn" : "DeepseekV2Attention" (%x, %p) {num_heads = 0 : i64, q_lora_rank = 0 : i64, kv_lora_rank = 6 : i64, qk_nope_head_dim = 4 : i64, qk_rope_head_dim = 2 : i64, v_head_dim = 4 : i64, softmax_scale = 0.5 : f64} : (tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x8xf32> {
  ^bb0(%y: tensor<?x8xf32>, %q: tensor<?xi64>):
    kt.yield %y : tensor<?x8xf32>
  }
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %p: tensor<?xi64>):
  // expected-error @+1 {{body takes 1 arguments but the module has 2 inputs}}
  %1 = kt.mla "attn" : "DeepseekV2Attention" (%x, %p) {num_heads = 2 : i64, q_lora_rank = 0 : i64, kv_lora_rank = 6 : i64, qk_nope_head_dim = 4 : i64, qk_rope_head_dim = 2 : i64, v_head_dim = 4 : i64, softmax_scale = 0.5 : f64} : (tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x8xf32> {
  ^bb0(%y: tensor<?x8xf32>):
    kt.yield %y : tensor<?x8xf32>
  }
  kt.yield
}

//===----------------------------------------------------------------------===//
// kt.experts
//===----------------------------------------------------------------------===//

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error @+1 {{without per-expert children needs both gate_up_fused and down_fused weights}}
  %1 = kt.experts "e" : "torch.nn.ModuleList" (%x, %ids, %w) {num_experts = 2 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32> {
  }
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error @+1 {{without per-expert children needs both gate_up_fused and down_fused weights}}
  %1 = kt.experts "e" : "E" (%x, %ids, %w) {num_experts = 2 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64, gate_up_fused = #kt.weight<"e.gate_up_proj", f32, [2, 8, 8], "model.safetensors">} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32> {
  }
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error @+1 {{gate_up_fused 'e.gate_up_proj' has shape [2, 4, 8], expected [2, 8, 8]}}
  %1 = kt.experts "e" : "E" (%x, %ids, %w) {num_experts = 2 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64, gate_up_fused = #kt.weight<"e.gate_up_proj", f32, [2, 4, 8], "model.safetensors">, down_fused = #kt.weight<"e.down_proj", f32, [2, 8, 4], "model.safetensors">} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32> {
  }
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error @+1 {{down_fused 'e.down_proj' has shape [2, 4, 8], expected [2, 8, 4]}}
  %1 = kt.experts "e" : "E" (%x, %ids, %w) {num_experts = 2 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64, gate_up_fused = #kt.weight<"e.gate_up_proj", f32, [2, 8, 8], "model.safetensors">, down_fused = #kt.weight<"e.down_proj", f32, [2, 4, 8], "model.safetensors">} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32> {
  }
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error @+1 {{has both per-expert children and fused weights}}
  %1 = kt.experts "e" : "E" (%x, %ids, %w) {num_experts = 1 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64, gate_up_fused = #kt.weight<"e.gate_up_proj", f32, [1, 8, 8], "model.safetensors">, down_fused = #kt.weight<"e.down_proj", f32, [1, 8, 4], "model.safetensors">} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32> {
  ^bb0(%t: tensor<?x8xf32>):
    kt.yield %t : tensor<?x8xf32>
  }
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error @+1 {{body must yield one value per expert (2)}}
  %1 = kt.experts "e" : "torch.nn.ModuleList" (%x, %ids, %w) {num_experts = 2 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32> {
  ^bb0(%t: tensor<?x8xf32>):
    kt.yield %t, %t, %t : tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>
  }
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error @+1 {{body must take one argument of the input type}}
  %1 = kt.experts "e" : "torch.nn.ModuleList" (%x, %ids, %w) {num_experts = 1 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32> {
  ^bb0(%t: tensor<?x8xf32>, %u: tensor<?x8xf32>):
    kt.yield %t : tensor<?x8xf32>
  }
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error @+1 {{output type must equal input type}}
  %1 = kt.experts "e" : "E" (%x, %ids, %w) {num_experts = 2 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64, gate_up_fused = #kt.weight<"e.gate_up_proj", f32, [2, 8, 8], "model.safetensors">, down_fused = #kt.weight<"e.down_proj", f32, [2, 8, 4], "model.safetensors">} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xbf16> {
  }
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error @+1 {{needs positive num_experts, hidden_size and intermediate_size}}
  %1 = kt.experts "e" : "E" (%x, %ids, %w) {num_experts = 0 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64, gate_up_fused = #kt.weight<"e.gate_up_proj", f32, [0, 8, 8], "model.safetensors">, down_fused = #kt.weight<"e.down_proj", f32, [0, 8, 4], "model.safetensors">} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32> {
  }
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error @+1 {{input has last dimension 8, expected 16}}
  %1 = kt.experts "e" : "E" (%x, %ids, %w) {num_experts = 2 : i64, hidden_size = 16 : i64, intermediate_size = 4 : i64, gate_up_fused = #kt.weight<"e.gate_up_proj", f32, [2, 8, 16], "model.safetensors">, down_fused = #kt.weight<"e.down_proj", f32, [2, 16, 4], "model.safetensors">} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32> {
  }
  kt.yield
}

//===----------------------------------------------------------------------===//
// kt.embedding
//===----------------------------------------------------------------------===//

// -----

kt.module "" : "M" () : () -> () {
^bb0(%ids: tensor<?xi64>):
  // expected-error @+1 {{weight must be [vocab, hidden]}}
  %1 = kt.embedding "model.embed_tokens" : "torch.nn.Embedding" (%ids) {weight = #kt.weight<"model.embed_tokens.weight", f32, [128], "model.safetensors">} : tensor<?xi64> -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%ids: tensor<?xi64>):
  // expected-error @+1 {{output has last dimension 4, expected 8}}
  %1 = kt.embedding "model.embed_tokens" : "torch.nn.Embedding" (%ids) {weight = #kt.weight<"model.embed_tokens.weight", f32, [128, 8], "model.safetensors">} : tensor<?xi64> -> tensor<?x4xf32>
  kt.yield
}

//===----------------------------------------------------------------------===//
// Linear ops: kt.linear, kt.marlin_linear, kt.fp8_linear, kt.lora_linear
//===----------------------------------------------------------------------===//

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{weight 'l.weight' must be [out_features, in_features]}}
  %1 = kt.linear "l" : "torch.nn.Linear" (%x) {weight = #kt.weight<"l.weight", f32, [8], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{input has last dimension 8, expected 16}}
  %1 = kt.linear "l" : "torch.nn.Linear" (%x) {weight = #kt.weight<"l.weight", f32, [4, 16], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x4xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{output has last dimension 8, expected 4}}
  %1 = kt.linear "l" : "torch.nn.Linear" (%x) {weight = #kt.weight<"l.weight", f32, [4, 8], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{bias 'l.bias' has shape [8], expected [4]}}
  %1 = kt.linear "l" : "torch.nn.Linear" (%x) {weight = #kt.weight<"l.weight", f32, [4, 8], "model.safetensors">, bias = #kt.weight<"l.bias", f32, [8], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x4xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{supports 4 or 8 bits, got 3}}
  %1 = kt.marlin_linear "l" : "torch.nn.Linear" (%x) {bits = 3 : i64, weight = #kt.weight<"l.weight", f32, [4, 8], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x4xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{group_size must be positive or -1}}
  %1 = kt.marlin_linear "l" : "torch.nn.Linear" (%x) {group_size = 0 : i64, weight = #kt.weight<"l.weight", f32, [4, 8], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x4xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{input has last dimension 8, expected 16}}
  %1 = kt.marlin_linear "l" : "torch.nn.Linear" (%x) {weight = #kt.weight<"l.weight", f32, [4, 16], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x4xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{output has last dimension 8, expected 4}}
  %1 = kt.fp8_linear "l" : "torch.nn.Linear" (%x) {weight = #kt.weight<"l.weight", f8E4M3FN, [4, 8], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{lora_rank must be positive}}
  %1 = kt.lora_linear "l" : "torch.nn.Linear" (%x) {lora_rank = 0 : i64, lora_alpha = 16.0 : f64, weight = #kt.weight<"l.weight", f32, [4, 8], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x4xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{lora_a 'l.lora_A' has shape [8, 2], expected [2, 8]}}
  %1 = kt.lora_linear "l" : "torch.nn.Linear" (%x) {lora_rank = 2 : i64, lora_alpha = 16.0 : f64, lora_a = #kt.weight<"l.lora_A", f32, [8, 2], "adapter.safetensors">, weight = #kt.weight<"l.weight", f32, [4, 8], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x4xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{lora_b 'l.lora_B' has shape [2, 4], expected [4, 2]}}
  %1 = kt.lora_linear "l" : "torch.nn.Linear" (%x) {lora_rank = 2 : i64, lora_alpha = 16.0 : f64, lora_b = #kt.weight<"l.lora_B", f32, [2, 4], "adapter.safetensors">, weight = #kt.weight<"l.weight", f32, [4, 8], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x4xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{input has last dimension 8, expected 16}}
  %1 = kt.lora_linear "l" : "torch.nn.Linear" (%x) {lora_rank = 2 : i64, lora_alpha = 16.0 : f64, weight = #kt.weight<"l.weight", f32, [4, 16], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x4xf32>
  kt.yield
}

//===----------------------------------------------------------------------===//
// kt.rms_norm
//===----------------------------------------------------------------------===//

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{weight must be one-dimensional}}
  %1 = kt.rms_norm "n" : "RMSNorm" (%x) {eps = 1.0e-6 : f64, weight = #kt.weight<"n.weight", f32, [2, 4], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x10xf32>):
  // expected-error @+1 {{last dimension 10 is not a multiple of the norm size 4}}
  %1 = kt.rms_norm "n" : "RMSNorm" (%x) {eps = 1.0e-6 : f64, weight = #kt.weight<"n.weight", f32, [4], "model.safetensors">} : tensor<?x10xf32> -> tensor<?x10xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{last dimension 8 is not a multiple of the norm size 0}}
  %1 = kt.rms_norm "n" : "RMSNorm" (%x) {eps = 1.0e-6 : f64, weight = #kt.weight<"n.weight", f32, [0], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{output type must equal input type}}
  %1 = kt.rms_norm "n" : "RMSNorm" (%x) {eps = 1.0e-6 : f64, weight = #kt.weight<"n.weight", f32, [8], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x8xbf16>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{eps must be positive}}
  %1 = kt.rms_norm "n" : "RMSNorm" (%x) {eps = 0.0 : f64, weight = #kt.weight<"n.weight", f32, [8], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x8xf32>
  kt.yield
}

//===----------------------------------------------------------------------===//
// kt.rotary
//===----------------------------------------------------------------------===//

// -----

kt.module "" : "M" () : () -> () {
^bb0(%p: tensor<?xi64>):
  // expected-error @+1 {{dim must be positive and even}}
  %c, %s = kt.rotary "r" : "RotaryEmbedding" (%p) {dim = 7 : i64, base = 10000.0 : f64, max_position = 512 : i64} : tensor<?xi64> -> tensor<?x7xf32>, tensor<?x7xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%p: tensor<?xi64>):
  // expected-error @+1 {{dim must be positive and even}}
  %c, %s = kt.rotary "r" : "RotaryEmbedding" (%p) {dim = 0 : i64, base = 10000.0 : f64, max_position = 512 : i64} : tensor<?xi64> -> tensor<?x?xf32>, tensor<?x?xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%p: tensor<?xi64>):
  // expected-error @+1 {{unknown rope scaling 'ntk'}}
  %c, %s = kt.rotary "r" : "RotaryEmbedding" (%p) {dim = 8 : i64, base = 10000.0 : f64, max_position = 512 : i64, scaling = "ntk"} : tensor<?xi64> -> tensor<?x8xf32>, tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%p: tensor<?xi64>):
  // expected-error @+1 {{sin has last dimension 4, expected 8}}
  %c, %s = kt.rotary "r" : "RotaryEmbedding" (%p) {dim = 8 : i64, base = 10000.0 : f64, max_position = 512 : i64} : tensor<?xi64> -> tensor<?x8xf32>, tensor<?x4xf32>
  kt.yield
}

//===----------------------------------------------------------------------===//
// kt.moe_gate
//===----------------------------------------------------------------------===//

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{weight must be [num_experts, hidden]}}
  %i, %w = kt.moe_gate "g" : "MoEGate" (%x) {weight = #kt.weight<"g.weight", f32, [8, 8], "model.safetensors">, top_k = 2 : i64, num_experts = 4 : i64, scoring_func = "softmax", topk_method = "greedy"} : tensor<?x8xf32> -> tensor<?x2xi64>, tensor<?x2xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{top_k must be in [1, num_experts]}}
  %i, %w = kt.moe_gate "g" : "MoEGate" (%x) {weight = #kt.weight<"g.weight", f32, [4, 8], "model.safetensors">, top_k = 5 : i64, num_experts = 4 : i64, scoring_func = "softmax", topk_method = "greedy"} : tensor<?x8xf32> -> tensor<?x5xi64>, tensor<?x5xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{top_k must be in [1, num_experts]}}
  %i, %w = kt.moe_gate "g" : "MoEGate" (%x) {weight = #kt.weight<"g.weight", f32, [4, 8], "model.safetensors">, top_k = 0 : i64, num_experts = 4 : i64, scoring_func = "softmax", topk_method = "greedy"} : tensor<?x8xf32> -> tensor<?x?xi64>, tensor<?x?xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{unknown scoring_func 'relu'}}
  %i, %w = kt.moe_gate "g" : "MoEGate" (%x) {weight = #kt.weight<"g.weight", f32, [4, 8], "model.safetensors">, top_k = 2 : i64, num_experts = 4 : i64, scoring_func = "relu", topk_method = "greedy"} : tensor<?x8xf32> -> tensor<?x2xi64>, tensor<?x2xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{unknown topk_method 'aux_tc'}}
  %i, %w = kt.moe_gate "g" : "MoEGate" (%x) {weight = #kt.weight<"g.weight", f32, [4, 8], "model.safetensors">, top_k = 2 : i64, num_experts = 4 : i64, scoring_func = "softmax", topk_method = "aux_tc"} : tensor<?x8xf32> -> tensor<?x2xi64>, tensor<?x2xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{n_group must divide num_experts and topk_group must be in [1, n_group]}}
  %i, %w = kt.moe_gate "g" : "MoEGate" (%x) {weight = #kt.weight<"g.weight", f32, [4, 8], "model.safetensors">, top_k = 2 : i64, num_experts = 4 : i64, scoring_func = "softmax", topk_method = "group_limited_greedy", n_group = 3 : i64, topk_group = 1 : i64} : tensor<?x8xf32> -> tensor<?x2xi64>, tensor<?x2xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{n_group must divide num_experts and topk_group must be in [1, n_group]}}
  %i, %w = kt.moe_gate "g" : "MoEGate" (%x) {weight = #kt.weight<"g.weight", f32, [4, 8], "model.safetensors">, top_k = 2 : i64, num_experts = 4 : i64, scoring_func = "softmax", topk_method = "group_limited_greedy", n_group = 2 : i64, topk_group = 3 : i64} : tensor<?x8xf32> -> tensor<?x2xi64>, tensor<?x2xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{noaux_tc needs e_score_correction_bias}}
  %i, %w = kt.moe_gate "g" : "MoEGate" (%x) {weight = #kt.weight<"g.weight", f32, [4, 8], "model.safetensors">, top_k = 2 : i64, num_experts = 4 : i64, scoring_func = "sigmoid", topk_method = "noaux_tc"} : tensor<?x8xf32> -> tensor<?x2xi64>, tensor<?x2xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{score_bias 'g.e_score_correction_bias' has shape [8], expected [4]}}
  %i, %w = kt.moe_gate "g" : "MoEGate" (%x) {weight = #kt.weight<"g.weight", f32, [4, 8], "model.safetensors">, score_bias = #kt.weight<"g.e_score_correction_bias", f32, [8], "model.safetensors">, top_k = 2 : i64, num_experts = 4 : i64, scoring_func = "sigmoid", topk_method = "noaux_tc"} : tensor<?x8xf32> -> tensor<?x2xi64>, tensor<?x2xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{ids has last dimension 3, expected 2}}
  %i, %w = kt.moe_gate "g" : "MoEGate" (%x) {weight = #kt.weight<"g.weight", f32, [4, 8], "model.safetensors">, top_k = 2 : i64, num_experts = 4 : i64, scoring_func = "softmax", topk_method = "greedy"} : tensor<?x8xf32> -> tensor<?x3xi64>, tensor<?x2xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{weights has last dimension 3, expected 2}}
  %i, %w = kt.moe_gate "g" : "MoEGate" (%x) {weight = #kt.weight<"g.weight", f32, [4, 8], "model.safetensors">, top_k = 2 : i64, num_experts = 4 : i64, scoring_func = "softmax", topk_method = "greedy"} : tensor<?x8xf32> -> tensor<?x2xi64>, tensor<?x3xf32>
  kt.yield
}

//===----------------------------------------------------------------------===//
// kt.cpu_experts, kt.gpu_experts
//===----------------------------------------------------------------------===//

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error @+1 {{needs either per-expert weights or fused weights}}
  %1 = kt.cpu_experts "e" : "E" (%x, %ids, %w) {num_experts = 2 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error @+1 {{needs either per-expert weights or fused weights}}
  %1 = kt.gpu_experts "e" : "E" (%x, %ids, %w) {num_experts = 1 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64, gate_proj = [#kt.weight<"g0", f32, [4, 8], "m.safetensors">], up_proj = [#kt.weight<"u0", f32, [4, 8], "m.safetensors">], down_proj = [#kt.weight<"d0", f32, [8, 4], "m.safetensors">], gate_up_fused = #kt.weight<"e.gate_up_proj", f32, [1, 8, 8], "model.safetensors">, down_fused = #kt.weight<"e.down_proj", f32, [1, 8, 4], "model.safetensors">} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error @+1 {{needs positive expert dimensions}}
  %1 = kt.cpu_experts "e" : "E" (%x, %ids, %w) {num_experts = 2 : i64, hidden_size = 8 : i64, intermediate_size = -4 : i64, gate_up_fused = #kt.weight<"e.gate_up_proj", f32, [2, 8, 8], "model.safetensors">, down_fused = #kt.weight<"e.down_proj", f32, [2, 8, 4], "model.safetensors">} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error @+1 {{needs both gate_up_fused and down_fused}}
  %1 = kt.gpu_experts "e" : "E" (%x, %ids, %w) {num_experts = 2 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64, down_fused = #kt.weight<"e.down_proj", f32, [2, 8, 4], "model.safetensors">} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error @+1 {{gate_up_fused 'e.gate_up_proj' has shape [2, 4, 8], expected [2, 8, 8]}}
  %1 = kt.gpu_experts "e" : "E" (%x, %ids, %w) {num_experts = 2 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64, gate_up_fused = #kt.weight<"e.gate_up_proj", f32, [2, 4, 8], "model.safetensors">, down_fused = #kt.weight<"e.down_proj", f32, [2, 8, 4], "model.safetensors">} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error @+1 {{needs gate_proj, up_proj and down_proj}}
  %1 = kt.cpu_experts "e" : "E" (%x, %ids, %w) {num_experts = 1 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64, gate_proj = [#kt.weight<"g0", f32, [4, 8], "m.safetensors">], down_proj = [#kt.weight<"d0", f32, [8, 4], "m.safetensors">]} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error @+1 {{gate_proj has 1 weights, expected 2}}
  %1 = kt.cpu_experts "e" : "E" (%x, %ids, %w) {num_experts = 2 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64, gate_proj = [#kt.weight<"g0", f32, [4, 8], "m.safetensors">], up_proj = [#kt.weight<"u0", f32, [4, 8], "m.safetensors">, #kt.weight<"u1", f32, [4, 8], "m.safetensors">], down_proj = [#kt.weight<"d0", f32, [8, 4], "m.safetensors">, #kt.weight<"d1", f32, [8, 4], "m.safetensors">]} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error @+1 {{down_proj has 3 weights, expected 2}}
  %1 = kt.cpu_experts "e" : "E" (%x, %ids, %w) {num_experts = 2 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64, gate_proj = [#kt.weight<"g0", f32, [4, 8], "m.safetensors">, #kt.weight<"g1", f32, [4, 8], "m.safetensors">], up_proj = [#kt.weight<"u0", f32, [4, 8], "m.safetensors">, #kt.weight<"u1", f32, [4, 8], "m.safetensors">], down_proj = [#kt.weight<"d0", f32, [8, 4], "m.safetensors">, #kt.weight<"d1", f32, [8, 4], "m.safetensors">, #kt.weight<"d2", f32, [8, 4], "m.safetensors">]} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error @+1 {{up_proj 'u1' has shape [8, 4], expected [4, 8]}}
  %1 = kt.cpu_experts "e" : "E" (%x, %ids, %w) {num_experts = 2 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64, gate_proj = [#kt.weight<"g0", f32, [4, 8], "m.safetensors">, #kt.weight<"g1", f32, [4, 8], "m.safetensors">], up_proj = [#kt.weight<"u0", f32, [4, 8], "m.safetensors">, #kt.weight<"u1", f32, [8, 4], "m.safetensors">], down_proj = [#kt.weight<"d0", f32, [8, 4], "m.safetensors">, #kt.weight<"d1", f32, [8, 4], "m.safetensors">]} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error @+1 {{out_device 'gpu' is not a device}}
  %1 = kt.cpu_experts "e" : "E" (%x, %ids, %w) {num_experts = 2 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64, out_device = "gpu", gate_up_fused = #kt.weight<"e.gate_up_proj", f32, [2, 8, 8], "model.safetensors">, down_fused = #kt.weight<"e.down_proj", f32, [2, 8, 4], "model.safetensors">} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error @+1 {{input has last dimension 8, expected 16}}
  %1 = kt.gpu_experts "e" : "E" (%x, %ids, %w) {num_experts = 2 : i64, hidden_size = 16 : i64, intermediate_size = 4 : i64, gate_up_fused = #kt.weight<"e.gate_up_proj", f32, [2, 8, 16], "model.safetensors">, down_fused = #kt.weight<"e.down_proj", f32, [2, 16, 4], "model.safetensors">} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32>
  kt.yield
}

//===----------------------------------------------------------------------===//
// Computation ops
//===----------------------------------------------------------------------===//

// -----

kt.module "" : "M" () : () -> () {
^bb0(%g: tensor<?x1xf32>, %x: tensor<?x8xf32>):
  // expected-error @+1 {{result type must equal input type}}
  %1 = kt.sigmoid_gate %g, %x : tensor<?x1xf32>, tensor<?x8xf32> -> tensor<?x4xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%g: tensor<?x2xf32>, %x: tensor<?x8xf32>):
  // expected-error @+1 {{gate has last dimension 2, expected 1}}
  %1 = kt.sigmoid_gate %g, %x : tensor<?x2xf32>, tensor<?x8xf32> -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%l: tensor<?x4xf32>):
  // expected-error @+1 {{top_k must be positive}}
  %i, %w = kt.topk_route %l {top_k = 0 : i64} : tensor<?x4xf32> -> tensor<?x?xi64>, tensor<?x?xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%l: tensor<?x4xf32>):
  // expected-error @+1 {{top_k 5 exceeds 4 experts}}
  %i, %w = kt.topk_route %l {top_k = 5 : i64} : tensor<?x4xf32> -> tensor<?x5xi64>, tensor<?x5xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%l: tensor<?x4xf32>):
  // expected-error @+1 {{ids has last dimension 3, expected 2}}
  %i, %w = kt.topk_route %l {top_k = 2 : i64} : tensor<?x4xf32> -> tensor<?x3xi64>, tensor<?x2xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%q: tensor<?x12xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %c: tensor<?x4xf32>, %s: tensor<?x4xf32>):
  // expected-error @+1 {{num_heads must be a multiple of num_kv_heads}}
  %1 = kt.attention_core %q, %k, %v, %c, %s {num_heads = 3 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, rotary_dim = 4 : i64, scale = 0.5 : f64, layer = 0 : i64} : (tensor<?x12xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x12xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%q: tensor<?x8xf32>, %k: tensor<?x4xf32>, %v: tensor<?x4xf32>, %c: tensor<?x4xf32>, %s: tensor<?x4xf32>):
  // expected-error @+1 {{num_heads must be a multiple of num_kv_heads}}
  %1 = kt.attention_core %q, %k, %v, %c, %s {num_heads = 2 : i64, num_kv_heads = 0 : i64, head_dim = 4 : i64, rotary_dim = 4 : i64, scale = 0.5 : f64, layer = 0 : i64} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%q: tensor<?x8xf32>, %k: tensor<?x4xf32>, %v: tensor<?x4xf32>, %c: tensor<?x4xf32>, %s: tensor<?x4xf32>):
  // expected-error @+1 {{rotary_dim must be even and at most head_dim}}
  %1 = kt.attention_core %q, %k, %v, %c, %s {num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 4 : i64, rotary_dim = 6 : i64, scale = 0.5 : f64, layer = 0 : i64} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%q: tensor<?x8xf32>, %k: tensor<?x4xf32>, %v: tensor<?x4xf32>, %c: tensor<?x4xf32>, %s: tensor<?x4xf32>):
  // expected-error @+1 {{rotary_dim must be even and at most head_dim}}
  %1 = kt.attention_core %q, %k, %v, %c, %s {num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 4 : i64, rotary_dim = 3 : i64, scale = 0.5 : f64, layer = 0 : i64} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%q: tensor<?x8xf32>, %k: tensor<?x8xf32>, %v: tensor<?x4xf32>, %c: tensor<?x4xf32>, %s: tensor<?x4xf32>):
  // expected-error @+1 {{k has last dimension 8, expected 4}}
  %1 = kt.attention_core %q, %k, %v, %c, %s {num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 4 : i64, rotary_dim = 4 : i64, scale = 0.5 : f64, layer = 0 : i64} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%q: tensor<?x8xf32>, %k: tensor<?x4xf32>, %v: tensor<?x4xf32>, %c: tensor<?x4xf32>, %s: tensor<?x4xf32>):
  // expected-error @+1 {{output has last dimension 4, expected 8}}
  %1 = kt.attention_core %q, %k, %v, %c, %s {num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 4 : i64, rotary_dim = 4 : i64, scale = 0.5 : f64, layer = 0 : i64} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x4xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%q: tensor<?x10xf32>, %kv: tensor<?x16xf32>, %lat: tensor<?x6xf32>, %kpe: tensor<?x2xf32>, %c: tensor<?x2xf32>, %s: tensor<?x2xf32>):
  // expected-error @+1 {{q has last dimension 10, expected 12}}
  %1 = kt.mla_core %q, %kv, %lat, %kpe, %c, %s {num_heads = 2 : i64, qk_nope_head_dim = 4 : i64, qk_rope_head_dim = 2 : i64, v_head_dim = 4 : i64, scale = 0.25 : f64, layer = 0 : i64} : (tensor<?x10xf32>, tensor<?x16xf32>, tensor<?x6xf32>, tensor<?x2xf32>, tensor<?x2xf32>, tensor<?x2xf32>) -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%q: tensor<?x12xf32>, %kv: tensor<?x12xf32>, %lat: tensor<?x6xf32>, %kpe: tensor<?x2xf32>, %c: tensor<?x2xf32>, %s: tensor<?x2xf32>):
  // expected-error @+1 {{kv has last dimension 12, expected 16}}
  %1 = kt.mla_core %q, %kv, %lat, %kpe, %c, %s {num_heads = 2 : i64, qk_nope_head_dim = 4 : i64, qk_rope_head_dim = 2 : i64, v_head_dim = 4 : i64, scale = 0.25 : f64, layer = 0 : i64} : (tensor<?x12xf32>, tensor<?x12xf32>, tensor<?x6xf32>, tensor<?x2xf32>, tensor<?x2xf32>, tensor<?x2xf32>) -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%q: tensor<?x12xf32>, %kv: tensor<?x16xf32>, %lat: tensor<?x6xf32>, %kpe: tensor<?x4xf32>, %c: tensor<?x2xf32>, %s: tensor<?x2xf32>):
  // expected-error @+1 {{k_pe has last dimension 4, expected 2}}
  %1 = kt.mla_core %q, %kv, %lat, %kpe, %c, %s {num_heads = 2 : i64, qk_nope_head_dim = 4 : i64, qk_rope_head_dim = 2 : i64, v_head_dim = 4 : i64, scale = 0.25 : f64, layer = 0 : i64} : (tensor<?x12xf32>, tensor<?x16xf32>, tensor<?x6xf32>, tensor<?x4xf32>, tensor<?x2xf32>, tensor<?x2xf32>) -> tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%q: tensor<?x12xf32>, %kv: tensor<?x16xf32>, %lat: tensor<?x6xf32>, %kpe: tensor<?x2xf32>, %c: tensor<?x2xf32>, %s: tensor<?x2xf32>):
  // expected-error @+1 {{output has last dimension 12, expected 8}}
  %1 = kt.mla_core %q, %kv, %lat, %kpe, %c, %s {num_heads = 2 : i64, qk_nope_head_dim = 4 : i64, qk_rope_head_dim = 2 : i64, v_head_dim = 4 : i64, scale = 0.25 : f64, layer = 0 : i64} : (tensor<?x12xf32>, tensor<?x16xf32>, tensor<?x6xf32>, tensor<?x2xf32>, tensor<?x2xf32>, tensor<?x2xf32>) -> tensor<?x12xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{slice [4, 12) exceeds 8}}
  %1 = kt.slice %x {offset = 4 : i64, size = 8 : i64} : tensor<?x8xf32> -> tensor<?x8xf32>
  kt.yield
}


// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{needs offset >= 0 and size > 0}}
  %1 = kt.slice %x {offset = 0 : i64, size = 0 : i64} : tensor<?x8xf32> -> tensor<?x0xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{result has last dimension 4, expected 2}}
  %1 = kt.slice %x {offset = 0 : i64, size = 2 : i64} : tensor<?x8xf32> -> tensor<?x4xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{'gpu:0' is not a device}}
  %1 = kt.transfer %x {generate_from = "cuda:0", generate_to = "gpu:0", prefill_from = "cuda", prefill_to = "cuda"} : tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{'CPU' is not a device}}
  %1 = kt.transfer %x {generate_from = "cpu", generate_to = "cuda", prefill_from = "CPU", prefill_to = "cuda"} : tensor<?x8xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{all of {input, result} have same type}}
  %1 = "kt.transfer"(%x) <{generate_from = "cpu", generate_to = "cuda", prefill_from = "cpu", prefill_to = "cuda"}> : (tensor<?x8xf32>) -> tensor<?x4xf32>
  kt.yield
}
