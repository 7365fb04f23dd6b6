// Negative values in I64Attr attributes. ODS gives I64Attr getters the
// return type uint64_t, so a verifier check written as `getX() < 0` or
// `getX() <= 0` never sees a negative value: -1 reads as 2^64-1. Every case
// below must still be rejected with the verifier's own message.
// RUN: kt-opt %s -split-input-file -verify-diagnostics

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{needs offset >= 0 and size > 0}}
  %1 = kt.slice %x {offset = -1 : i64, size = 2 : i64} : tensor<?x8xf32> -> tensor<?x2xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x?xf32>):
  // expected-error @+1 {{needs offset >= 0 and size > 0}}
  %1 = kt.slice %x {offset = 0 : i64, size = -2 : i64} : tensor<?x?xf32> -> tensor<?x?xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{group_size must be positive or -1}}
  %1 = kt.marlin_linear "l" : "torch.nn.Linear" (%x) {group_size = -5 : i64, weight = #kt.weight<"l.weight", f32, [4, 8], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x4xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error @+1 {{lora_rank must be positive}}
  %1 = kt.lora_linear "l" : "torch.nn.Linear" (%x) {lora_rank = -1 : i64, lora_alpha = 16.0 : f64, weight = #kt.weight<"l.weight", f32, [4, 8], "model.safetensors">} : tensor<?x8xf32> -> tensor<?x4xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%p: tensor<?xi64>):
  // expected-error @+1 {{dim must be positive and even}}
  %c, %s = kt.rotary "r" : "RotaryEmbedding" (%p) {dim = -2 : i64, base = 10000.0 : f64, max_position = 512 : i64} : tensor<?xi64> -> tensor<?x?xf32>, tensor<?x?xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %p: tensor<?xi64>):
  // expected-error @+1 {{has invalid MLA dimensions}}
  %1 = kt.mla "attn" : "DeepseekV2Attention" (%x, %p) {num_heads = -2 : i64, q_lora_rank = 0 : i64, kv_lora_rank = 6 : i64, qk_nope_head_dim = 4 : i64, qk_rope_head_dim = 2 : i64, v_head_dim = 4 : i64, softmax_scale = 0.5 : f64} : (tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x8xf32> {
  ^bb0(%y: tensor<?x8xf32>, %q: tensor<?xi64>):
    kt.yield %y : tensor<?x8xf32>
  }
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %p: tensor<?xi64>):
  // expected-error @+1 {{has invalid MLA dimensions}}
  %1 = kt.mla "attn" : "DeepseekV2Attention" (%x, %p) {num_heads = 2 : i64, q_lora_rank = -1 : i64, kv_lora_rank = 6 : i64, qk_nope_head_dim = 4 : i64, qk_rope_head_dim = 2 : i64, v_head_dim = 4 : i64, softmax_scale = 0.5 : f64} : (tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x8xf32> {
  ^bb0(%y: tensor<?x8xf32>, %q: tensor<?xi64>):
    kt.yield %y : tensor<?x8xf32>
  }
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %p: tensor<?xi64>):
  // expected-error @+1 {{has invalid MLA dimensions}}
  %1 = kt.mla "attn" : "DeepseekV2Attention" (%x, %p) {num_heads = 2 : i64, q_lora_rank = 0 : i64, kv_lora_rank = 6 : i64, qk_nope_head_dim = -4 : i64, qk_rope_head_dim = 2 : i64, v_head_dim = 4 : i64, softmax_scale = 0.5 : f64} : (tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x8xf32> {
  ^bb0(%y: tensor<?x8xf32>, %q: tensor<?xi64>):
    kt.yield %y : tensor<?x8xf32>
  }
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%l: tensor<?x?xf32>):
  // expected-error @+1 {{top_k must be positive}}
  %i, %w = kt.topk_route %l {top_k = -1 : i64} : tensor<?x?xf32> -> tensor<?x?xi64>, tensor<?x?xf32>
  kt.yield
}

// -----

kt.module "" : "M" () : () -> () {
^bb0(%q: tensor<?x?xf32>, %k: tensor<?x?xf32>, %v: tensor<?x?xf32>, %c: tensor<?x?xf32>, %s: tensor<?x?xf32>):
  // expected-error @+1 {{rotary_dim must be even and at most head_dim}}
  %1 = kt.attention_core %q, %k, %v, %c, %s {num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 4 : i64, rotary_dim = -2 : i64, scale = 0.5 : f64, layer = 0 : i64} : (tensor<?x?xf32>, tensor<?x?xf32>, tensor<?x?xf32>, tensor<?x?xf32>, tensor<?x?xf32>) -> tensor<?x?xf32>
  kt.yield
}
