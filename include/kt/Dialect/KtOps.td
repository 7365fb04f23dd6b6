//===- KtOps.td - kt dialect operations ---------------------*- tablegen -*-===//

#ifndef KT_DIALECT_KTOPS_TD
#define KT_DIALECT_KTOPS_TD

include "kt/Dialect/KtBase.td"
include "mlir/IR/OpBase.td"
include "mlir/IR/RegionKindInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

class Kt_Op<string mnemonic, list<Trait> traits = []>
    : Op<Kt_Dialect, mnemonic, traits>;

// Attributes every module op carries: identity, then placement.
defvar ModuleAttrs = (ins StrAttr:$name, StrAttr:$module_class,
                          OptionalAttr<StrAttr>:$generate_device,
                          OptionalAttr<StrAttr>:$prefill_device,
                          OptionalAttr<I64Attr>:$rule,
                          OptionalAttr<StrAttr>:$impl,
                          OptionalAttr<DictionaryAttr>:$kwargs);

defvar Activation = AnyRankedTensor;
defvar Ids = TensorOf<[I64]>;

class Kt_ModuleOp<string mnemonic, list<Trait> traits = []>
    : Kt_Op<mnemonic, traits # [DeclareOpInterfaceMethods<Kt_ModuleOpInterface>]>;

//===----------------------------------------------------------------------===//
// Containers
//===----------------------------------------------------------------------===//

class Kt_ContainerOp<string mnemonic, list<Trait> traits = []>
    : Kt_ModuleOp<mnemonic, traits # [IsolatedFromAbove, SingleBlock]> {
  let regions = (region SizedRegion<1>:$body);
  let results = (outs Variadic<AnyType>:$outputs);
  let hasVerifier = 1;
}

def Kt_ModuleContainerOp : Kt_ContainerOp<"module"> {
  let summary = "A module holding child modules (model, layer, attention, MoE block, MLP)";
  let description = [{
    A generic PyTorch container module. The single block's arguments are the
    module's forward inputs (same types as the operands); `kt.yield` returns
    its outputs. Children are the module ops in the block.

    ```mlir
    %h = kt.module "model.layers.0" : "DeepseekV2DecoderLayer" (%x, %pos)
        : (tensor<?x64xf32>, tensor<?xi64>) -> tensor<?x64xf32> { ... }
    ```
  }];
  let arguments = !con(ModuleAttrs, (ins Variadic<AnyType>:$inputs));
  let assemblyFormat = [{
    $name `:` $module_class ` ` `(` $inputs `)` attr-dict `:`
    functional-type($inputs, results) $body
  }];
}

def Kt_MlaOp : Kt_ContainerOp<"mla"> {
  let summary = "DeepSeek multi-head latent attention (injected)";
  let description = [{
    Replaces a DeepSeek attention container (upstream `KDeepseekV2Attention`).
    Its children are the projections of the original module; with `absorb`
    the runtime folds `kv_b_proj` into the query and output projections
    (matrix absorption) and caches only the compressed latent and the rope
    key.
  }];
  let arguments = !con(ModuleAttrs, (ins Variadic<AnyType>:$inputs,
      I64Attr:$num_heads, I64Attr:$q_lora_rank, I64Attr:$kv_lora_rank,
      I64Attr:$qk_nope_head_dim, I64Attr:$qk_rope_head_dim,
      I64Attr:$v_head_dim, F64Attr:$softmax_scale,
      DefaultValuedAttr<BoolAttr, "true">:$absorb));
  let assemblyFormat = [{
    $name `:` $module_class ` ` `(` $inputs `)` attr-dict `:`
    functional-type($inputs, results) $body
  }];
}

def Kt_ExpertsOp : Kt_ModuleOp<"experts", [IsolatedFromAbove]> {
  let summary = "The routed experts of a MoE block";
  let description = [{
    out[t] = sum_k weights[t,k] * expert_{ids[t,k]}(x[t]); ids < 0 are
    skipped. In the per-expert form (checkpoints with
    `experts.N.gate_proj.weight`), the region's block takes one argument
    (the tokens routed to an expert) and holds one child module per expert;
    `kt.yield` returns expert i's output as its i-th operand. In the fused
    form (`experts.gate_up_proj` [E, 2I, H], `experts.down_proj` [E, H, I])
    the region is empty and the weights are attributes.
  }];
  let arguments = !con(ModuleAttrs, (ins Activation:$input, Ids:$ids,
      TensorOf<[F32]>:$weights, I64Attr:$num_experts, I64Attr:$hidden_size,
      I64Attr:$intermediate_size, DefaultValuedAttr<StrAttr, "\"silu\"">:$act,
      OptionalAttr<Kt_WeightAttr>:$gate_up_fused,
      OptionalAttr<Kt_WeightAttr>:$down_fused));
  let results = (outs Activation:$output);
  let regions = (region AnyRegion:$body);
  let assemblyFormat = [{
    $name `:` $module_class ` ` `(` $input `,` $ids `,` $weights `)` attr-dict
    `:` functional-type(operands, results) $body
  }];
  let hasVerifier = 1;
}

def Kt_YieldOp : Kt_Op<"yield", [Pure, Terminator,
    ParentOneOf<["ModuleContainerOp", "MlaOp", "ExpertsOp"]>]> {
  let summary = "Returns a container module's outputs";
  let arguments = (ins Variadic<AnyType>:$values);
  let assemblyFormat = "attr-dict ($values^ `:` type($values))?";
}

//===----------------------------------------------------------------------===//
// Leaf modules
//===----------------------------------------------------------------------===//

def Kt_EmbeddingOp : Kt_ModuleOp<"embedding"> {
  let summary = "Token embedding (torch.nn.Embedding)";
  let arguments = !con(ModuleAttrs, (ins Ids:$ids, Kt_WeightAttr:$weight));
  let results = (outs Activation:$output);
  let assemblyFormat = [{
    $name `:` $module_class ` ` `(` $ids `)` attr-dict `:` type($ids) `->` type($output)
  }];
  let hasVerifier = 1;
}

class Kt_LinearLikeOp<string mnemonic, dag extra = (ins)> : Kt_ModuleOp<mnemonic> {
  let arguments = !con(ModuleAttrs, (ins Activation:$input,
      Kt_WeightAttr:$weight, OptionalAttr<Kt_WeightAttr>:$bias,
      OptionalAttr<Kt_WeightAttr>:$weight_scale), extra);
  let results = (outs Activation:$output);
  let assemblyFormat = [{
    $name `:` $module_class ` ` `(` $input `)` attr-dict `:` type($input) `->` type($output)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    int64_t getInFeatures() { return getWeight().getShape().back(); }
    int64_t getOutFeatures() { return getWeight().getShape().front(); }
  }];
}

def Kt_LinearOp : Kt_LinearLikeOp<"linear"> {
  let summary = "Dense linear y = x W^T + b (torch.nn.Linear)";
  let description = [{
    `weight` is [out_features, in_features]. `weight_scale` is the block
    scale of FP8 checkpoints (DeepSeek-V3 `weight_scale_inv`).
  }];
}

def Kt_MarlinLinearOp : Kt_LinearLikeOp<"marlin_linear",
    (ins DefaultValuedAttr<I64Attr, "4">:$bits,
         DefaultValuedAttr<I64Attr, "128">:$group_size)> {
  let summary = "W4A16 GPU linear (Marlin layout), quantised at load (injected)";
}

def Kt_Fp8LinearOp : Kt_LinearLikeOp<"fp8_linear",
    (ins DefaultValuedAttr<I64Attr, "128">:$block_size)> {
  let summary = "FP8 (e4m3) block-scaled GPU linear (injected)";
}

def Kt_LoraLinearOp : Kt_LinearLikeOp<"lora_linear",
    (ins I64Attr:$lora_rank, F64Attr:$lora_alpha,
         DefaultValuedAttr<F64Attr, "0.0">:$lora_dropout,
         OptionalAttr<Kt_WeightAttr>:$lora_a,
         OptionalAttr<Kt_WeightAttr>:$lora_b)> {
  let summary = "Frozen linear plus a trainable low-rank adapter (injected)";
  let description = [{
    y = x W^T + b + (alpha / rank) * dropout(x) A^T B^T, with A [rank, in]
    and B [out, rank]. `lora_a` / `lora_b` reference an adapter file when
    one is loaded; otherwise the runtime initialises them (A Kaiming, B zero).
  }];
}

def Kt_RmsNormOp : Kt_ModuleOp<"rms_norm"> {
  let summary = "RMSNorm over groups of weight.size elements of the last dim";
  let description = [{
    With weight [D] and input [..., G*D], each group of D elements is
    normalised on its own (Qwen3's per-head q_norm / k_norm use G = heads).
  }];
  let arguments = !con(ModuleAttrs, (ins Activation:$input,
      Kt_WeightAttr:$weight, F64Attr:$eps));
  let results = (outs Activation:$output);
  let assemblyFormat = [{
    $name `:` $module_class ` ` `(` $input `)` attr-dict `:` type($input) `->` type($output)
  }];
  let hasVerifier = 1;
}

def Kt_RotaryOp : Kt_ModuleOp<"rotary"> {
  let summary = "Rotary position embedding tables (default, linear, dynamic, YaRN, llama3)";
  let description = [{
    Produces cos and sin [tokens, dim] for the positions. `scaling` selects
    the frequency scheme; for `yarn`, `mscale` / `mscale_all_dim` follow
    DeepSeek's definition (the attention scale is multiplied by
    yarn_get_mscale(factor, mscale_all_dim)^2). `interleaved` says the
    rotation pairs are adjacent elements (DeepSeek hub checkpoints) rather
    than the two halves.
  }];
  let arguments = !con(ModuleAttrs, (ins Ids:$positions, I64Attr:$dim,
      F64Attr:$base, I64Attr:$max_position,
      DefaultValuedAttr<StrAttr, "\"default\"">:$scaling,
      DefaultValuedAttr<F64Attr, "1.0">:$factor,
      DefaultValuedAttr<I64Attr, "0">:$original_max_position,
      DefaultValuedAttr<F64Attr, "32.0">:$beta_fast,
      DefaultValuedAttr<F64Attr, "1.0">:$beta_slow,
      DefaultValuedAttr<F64Attr, "1.0">:$mscale,
      DefaultValuedAttr<F64Attr, "0.0">:$mscale_all_dim,
      DefaultValuedAttr<F64Attr, "1.0">:$low_freq_factor,
      DefaultValuedAttr<F64Attr, "4.0">:$high_freq_factor,
      DefaultValuedAttr<BoolAttr, "false">:$interleaved));
  let results = (outs TensorOf<[F32]>:$cos, TensorOf<[F32]>:$sin);
  let assemblyFormat = [{
    $name `:` $module_class ` ` `(` $positions `)` attr-dict `:` type($positions) `->` type(results)
  }];
  let hasVerifier = 1;
}

def Kt_MoeGateOp : Kt_ModuleOp<"moe_gate"> {
  let summary = "DeepSeek MoEGate: router projection plus top-k selection";
  let description = [{
    logits = x W^T; scores = softmax or sigmoid (`scoring_func`);
    `topk_method` greedy, group_limited_greedy (V2: best `topk_group` of
    `n_group` groups by max score) or noaux_tc (V3: selection on scores +
    `e_score_correction_bias`, groups ranked by the sum of their top-2);
    weights optionally renormalised (`norm_topk_prob`) and multiplied by
    `routed_scaling_factor`.
  }];
  let arguments = !con(ModuleAttrs, (ins Activation:$input,
      Kt_WeightAttr:$weight, OptionalAttr<Kt_WeightAttr>:$score_bias,
      I64Attr:$top_k, I64Attr:$num_experts, StrAttr:$scoring_func,
      StrAttr:$topk_method, DefaultValuedAttr<I64Attr, "1">:$n_group,
      DefaultValuedAttr<I64Attr, "1">:$topk_group,
      DefaultValuedAttr<BoolAttr, "false">:$norm_topk_prob,
      DefaultValuedAttr<F64Attr, "1.0">:$routed_scaling_factor));
  let results = (outs Ids:$ids, TensorOf<[F32]>:$weights);
  let assemblyFormat = [{
    $name `:` $module_class ` ` `(` $input `)` attr-dict `:` type($input) `->` type(results)
  }];
  let hasVerifier = 1;
}

class Kt_ExpertKernelOp<string mnemonic> : Kt_ModuleOp<mnemonic> {
  let arguments = !con(ModuleAttrs, (ins Activation:$input, Ids:$ids,
      TensorOf<[F32]>:$weights, I64Attr:$num_experts, I64Attr:$hidden_size,
      I64Attr:$intermediate_size,
      OptionalAttr<TypedArrayAttrBase<Kt_WeightAttr, "per-expert weights">>:$gate_proj,
      OptionalAttr<TypedArrayAttrBase<Kt_WeightAttr, "per-expert weights">>:$up_proj,
      OptionalAttr<TypedArrayAttrBase<Kt_WeightAttr, "per-expert weights">>:$down_proj,
      OptionalAttr<Kt_WeightAttr>:$gate_up_fused,
      OptionalAttr<Kt_WeightAttr>:$down_fused,
      OptionalAttr<StrAttr>:$backend, OptionalAttr<StrAttr>:$out_device,
      OptionalAttr<StrAttr>:$generate_op, OptionalAttr<StrAttr>:$prefill_op));
  let results = (outs Activation:$output);
  let assemblyFormat = [{
    $name `:` $module_class ` ` `(` $input `,` $ids `,` $weights `)` attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Kt_CpuExpertsOp : Kt_ExpertKernelOp<"cpu_experts"> {
  let summary = "Routed experts computed on the CPU (AMX / AVX512 / AVX2) (injected)";
  let description = [{
    Replaces `kt.experts` (upstream `KTransformersExperts` with
    generate_device cpu). Weights are either per-expert arrays
    (`gate_proj`, `up_proj`, `down_proj`, one #kt.weight per expert) or the
    fused pair. `backend` names the kernel family (AMXInt8, AMXBF16,
    AVX512, AVX2, llamafile); the result lives on `out_device`.
  }];
}

def Kt_GpuExpertsOp : Kt_ExpertKernelOp<"gpu_experts"> {
  let summary = "Routed experts computed on a CUDA device (injected)";
}

//===----------------------------------------------------------------------===//
// Computation inside containers (not modules)
//===----------------------------------------------------------------------===//

def Kt_AddOp : Kt_Op<"add", [Pure, SameOperandsAndResultType]> {
  let summary = "Elementwise sum (residual connections, shared + routed experts)";
  let arguments = (ins Activation:$lhs, Activation:$rhs);
  let results = (outs Activation:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def Kt_SiluMulOp : Kt_Op<"silu_mul", [Pure, SameOperandsAndResultType]> {
  let summary = "silu(gate) * up, the gated MLP activation";
  let arguments = (ins Activation:$gate, Activation:$up);
  let results = (outs Activation:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($result)";
}

def Kt_SigmoidGateOp : Kt_Op<"sigmoid_gate", [Pure]> {
  let summary = "sigmoid(gate[t, 0]) * x[t] (Qwen2-MoE shared expert gate)";
  let arguments = (ins Activation:$gate, Activation:$input);
  let results = (outs Activation:$result);
  let assemblyFormat = "$gate `,` $input attr-dict `:` type($gate) `,` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Kt_TopkRouteOp : Kt_Op<"topk_route", [Pure]> {
  let summary = "softmax over router logits, top-k, optional renormalisation";
  let arguments = (ins Activation:$logits, I64Attr:$top_k,
      DefaultValuedAttr<BoolAttr, "false">:$norm_topk_prob);
  let results = (outs Ids:$ids, TensorOf<[F32]>:$weights);
  let assemblyFormat = "$logits attr-dict `:` type($logits) `->` type(results)";
  let hasVerifier = 1;
}

def Kt_AttentionCoreOp : Kt_Op<"attention_core", [Pure]> {
  let summary = "Causal grouped-query attention with rope and a KV cache";
  let description = [{
    q [T, heads*head_dim], k and v [T, kv_heads*head_dim] (after any q/k
    norm); rope from cos/sin is applied to the first `rotary_dim` elements
    of each head; keys and values are appended to the layer's cache slot
    `layer`.
  }];
  let arguments = (ins Activation:$q, Activation:$k, Activation:$v,
      TensorOf<[F32]>:$cos, TensorOf<[F32]>:$sin, I64Attr:$num_heads,
      I64Attr:$num_kv_heads, I64Attr:$head_dim, I64Attr:$rotary_dim,
      F64Attr:$scale, I64Attr:$layer,
      DefaultValuedAttr<BoolAttr, "false">:$interleaved);
  let results = (outs Activation:$output);
  let assemblyFormat = "$q `,` $k `,` $v `,` $cos `,` $sin attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Kt_MlaCoreOp : Kt_Op<"mla_core", [Pure]> {
  let summary = "DeepSeek MLA attention given projected q, kv and the rope key";
  let description = [{
    q [T, heads*(nope+rope)], kv = kv_b_proj(kv_a_layernorm(latent))
    [T, heads*(nope+v)], k_pe [T, rope] shared by all heads. Rope applies to
    the last `qk_rope_head_dim` elements of each q head and to k_pe.
  }];
  let arguments = (ins Activation:$q, Activation:$kv, Activation:$latent,
      Activation:$k_pe, TensorOf<[F32]>:$cos, TensorOf<[F32]>:$sin,
      I64Attr:$num_heads, I64Attr:$qk_nope_head_dim, I64Attr:$qk_rope_head_dim,
      I64Attr:$v_head_dim, F64Attr:$scale, I64Attr:$layer,
      DefaultValuedAttr<BoolAttr, "false">:$interleaved);
  let results = (outs Activation:$output);
  let assemblyFormat = [{
    $q `,` $kv `,` $latent `,` $k_pe `,` $cos `,` $sin attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Kt_SliceOp : Kt_Op<"slice", [Pure]> {
  let summary = "Columns [offset, offset + size) of the last dim";
  let arguments = (ins Activation:$input, I64Attr:$offset, I64Attr:$size);
  let results = (outs Activation:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Kt_TransferOp : Kt_Op<"transfer", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "Moves a value across a device boundary (made explicit by kt-place)";
  let description = [{
    Inserted where a value produced on one device is consumed on another.
    Devices are given per phase; in a phase where `from` and `to` agree the
    transfer is a no-op.
  }];
  let arguments = (ins AnyType:$input, StrAttr:$generate_from,
      StrAttr:$generate_to, StrAttr:$prefill_from, StrAttr:$prefill_to);
  let results = (outs AnyType:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

#endif // KT_DIALECT_KTOPS_TD
