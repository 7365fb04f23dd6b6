// kt-lower-plan rejects IR the runtime cannot execute, at the offending op,
// and writes nothing.
//
// RUN: kt-opt %s -split-input-file -verify-diagnostics -allow-unregistered-dialect --kt-lower-plan=file=%t.json
// RUN: test ! -e %t.json

// An op of another dialect.
kt.module "" : "M" () {generate_device = "cpu", prefill_device = "cpu"} : () -> tensor<?x4xf32> {
^bb0(%ids: tensor<?xi64>, %pos: tensor<?xi64>):
  %e = kt.embedding "embed" : "torch.nn.Embedding" (%ids) {weight = #kt.weight<"embed.weight", f32, [8, 4], "model.safetensors">} : tensor<?xi64> -> tensor<?x4xf32>
  // expected-error @+1 {{cannot lower 'test.unknown' to a plan: the runtime has no such op}}
  %u = "test.unknown"(%e) : (tensor<?x4xf32>) -> tensor<?x4xf32>
  kt.yield %u : tensor<?x4xf32>
}

// -----

// A value that is not an f32 or i64 tensor.
kt.module "" : "M" () {generate_device = "cpu", prefill_device = "cpu"} : () -> tensor<?x4xi32> {
^bb0(%ids: tensor<?xi64>, %pos: tensor<?xi64>):
  // expected-error @+1 {{cannot lower to a plan: value of type 'tensor<?x4xi32>' has an element type that is neither i64 nor floating point}}
  %e = kt.embedding "embed" : "torch.nn.Embedding" (%ids) {weight = #kt.weight<"embed.weight", i32, [8, 4], "model.safetensors">} : tensor<?xi64> -> tensor<?x4xi32>
  kt.yield %e : tensor<?x4xi32>
}

// -----

// Not placed.
kt.module "" : "M" () : () -> tensor<?x4xf32> {
^bb0(%ids: tensor<?xi64>, %pos: tensor<?xi64>):
  // expected-error @+1 {{cannot lower to a plan: the op has no device in both phases (run kt-place first)}}
  %e = kt.embedding "embed" : "torch.nn.Embedding" (%ids) {weight = #kt.weight<"embed.weight", f32, [8, 4], "model.safetensors">} : tensor<?xi64> -> tensor<?x4xf32>
  kt.yield %e : tensor<?x4xf32>
}

// -----

// The root must take (token ids, positions).
// expected-error @+1 {{cannot lower to a plan: the root kt.module must take (token ids, positions) as block arguments and yield the logits}}
kt.module "" : "M" () {generate_device = "cpu", prefill_device = "cpu"} : () -> tensor<?x4xf32> {
^bb0(%ids: tensor<?xi64>):
  %e = kt.embedding "embed" : "torch.nn.Embedding" (%ids) {weight = #kt.weight<"embed.weight", f32, [8, 4], "model.safetensors">} : tensor<?xi64> -> tensor<?x4xf32>
  kt.yield %e : tensor<?x4xf32>
}

// -----

// mla_core's kv must come from the kv_b_proj linear.
kt.module "" : "M" () {generate_device = "cpu", prefill_device = "cpu"} : () -> tensor<?x64xf32> {
^bb0(%ids: tensor<?xi64>, %pos: tensor<?xi64>):
  %q = kt.embedding "q" : "torch.nn.Embedding" (%ids) {weight = #kt.weight<"q.weight", f32, [8, 96], "model.safetensors">} : tensor<?xi64> -> tensor<?x96xf32>
  %kv = kt.embedding "kv" : "torch.nn.Embedding" (%ids) {weight = #kt.weight<"kv.weight", f32, [8, 128], "model.safetensors">} : tensor<?xi64> -> tensor<?x128xf32>
  %lat = kt.embedding "lat" : "torch.nn.Embedding" (%ids) {weight = #kt.weight<"lat.weight", f32, [8, 32], "model.safetensors">} : tensor<?xi64> -> tensor<?x32xf32>
  %kpe = kt.embedding "kpe" : "torch.nn.Embedding" (%ids) {weight = #kt.weight<"kpe.weight", f32, [8, 8], "model.safetensors">} : tensor<?xi64> -> tensor<?x8xf32>
  %cos, %sin = kt.rotary "rope" : "R" (%pos) {base = 1.0e4 : f64, dim = 8 : i64, max_position = 64 : i64} : tensor<?xi64> -> tensor<?x8xf32>, tensor<?x8xf32>
  // expected-error @+1 {{cannot lower to a plan: the kv operand of kt.mla_core must be produced by the kv_b_proj linear}}
  %o = kt.mla_core %q, %kv, %lat, %kpe, %cos, %sin {layer = 0 : i64, num_heads = 4 : i64, qk_nope_head_dim = 16 : i64, qk_rope_head_dim = 8 : i64, scale = 0.25 : f64, v_head_dim = 16 : i64} : (tensor<?x96xf32>, tensor<?x128xf32>, tensor<?x32xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x64xf32>
  kt.yield %o : tensor<?x64xf32>
}

// -----

// Something other than the model at the top level.
kt.module "" : "M" () {generate_device = "cpu", prefill_device = "cpu"} : () -> tensor<?x4xf32> {
^bb0(%ids: tensor<?xi64>, %pos: tensor<?xi64>):
  %e = kt.embedding "embed" : "torch.nn.Embedding" (%ids) {weight = #kt.weight<"embed.weight", f32, [8, 4], "model.safetensors">} : tensor<?xi64> -> tensor<?x4xf32>
  kt.yield %e : tensor<?x4xf32>
}
// expected-error @+1 {{cannot lower to a plan: the module must hold exactly one root kt.module (the model) and nothing else}}
"test.other"() : () -> ()
