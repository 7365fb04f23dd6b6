// Region bodies that are empty or lack a terminator must be diagnosed, not
// crash the verifier: ExpertsOp::verify and verifyContainer call
// Block::getTerminator(), which requires a non-empty block that ends in a
// terminator (an assertion in +Asserts builds, undefined behaviour in
// release builds).
// RUN: kt-opt %s -split-input-file -verify-diagnostics

kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>):
  // expected-error-re @+1 {{{{.+}}}}
  %1 = kt.module "a" : "M" (%x) : (tensor<?x8xf32>) -> tensor<?x8xf32> {
  ^bb0(%y: tensor<?x8xf32>):
  }
  kt.yield
}

// -----

// A block with its argument but no operation at all.
kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error-re @+1 {{{{.+}}}}
  %1 = kt.experts "e" : "torch.nn.ModuleList" (%x, %ids, %w) {num_experts = 1 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32> {
  ^bb0(%t: tensor<?x8xf32>):
  }
  kt.yield
}

// -----

// A block that does not end in kt.yield.
kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error-re @+1 {{{{.+}}}}
  %1 = kt.experts "e" : "torch.nn.ModuleList" (%x, %ids, %w) {num_experts = 1 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32> {
  ^bb0(%t: tensor<?x8xf32>):
    %2 = kt.add %t, %t : tensor<?x8xf32>
  }
  kt.yield
}

// -----

// Two blocks in an experts region.
kt.module "" : "M" () : () -> () {
^bb0(%x: tensor<?x8xf32>, %ids: tensor<?x2xi64>, %w: tensor<?x2xf32>):
  // expected-error-re @+1 {{{{.+}}}}
  %1 = kt.experts "e" : "torch.nn.ModuleList" (%x, %ids, %w) {num_experts = 1 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64} : (tensor<?x8xf32>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xf32> {
  ^bb0(%t: tensor<?x8xf32>):
    kt.yield %t : tensor<?x8xf32>
  ^bb1(%u: tensor<?x8xf32>):
    kt.yield %u : tensor<?x8xf32>
  }
  kt.yield
}
