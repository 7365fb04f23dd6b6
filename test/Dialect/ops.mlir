// Round trip of every op of the kt dialect and of #kt.weight: parse, print,
// parse the printed form again (custom and generic), print. The CHECK lines
// spell out whole ops, and the attributes set explicitly differ from their
// defaults, so a printer or parser that drops or rewrites one fails a CHECK;
// SSA captures check that operands survive too.
// RUN: kt-opt %s | kt-opt | FileCheck %s
// RUN: kt-opt %s --mlir-print-op-generic | kt-opt | FileCheck %s
// Default-valued attributes are elided by the custom printer and
// materialised in generic form.
// RUN: kt-opt %s --mlir-print-op-generic | FileCheck %s --check-prefix=GENERIC

// CHECK-LABEL: module {
// CHECK-NEXT: = kt.module "" : "demo.DemoForCausalLM" () {generate_device = "cuda:0", prefill_device = "cuda"} : () -> tensor<?x16xbf16> {
// CHECK-NEXT: ^bb0([[IDS:%[a-z0-9_]+]]: tensor<?xi64>, [[POS:%[a-z0-9_]+]]: tensor<?xi64>):
// CHECK-NEXT: [[E:%[a-z0-9_]+]] = kt.embedding "model.embed_tokens" : "torch.nn.Embedding" ([[IDS]]) {generate_device = "cpu", kwargs = {generate_device = "cpu", per_layer = 0 : i64}, prefill_device = "cpu", rule = 3 : i64, weight = #kt.weight<"model.embed_tokens.weight", bf16, [16, 8], "model-00001-of-00002.safetensors">} : tensor<?xi64> -> tensor<?x8xbf16>
// CHECK-NEXT: [[COS:%[a-z0-9_]+]], [[SIN:%[a-z0-9_]+]] = kt.rotary "model.rotary_emb" : "demo.DemoRotaryEmbedding" ([[POS]]) {base = 1.000000e+04 : f64, beta_fast = 1.600000e+01 : f64, beta_slow = 2.000000e+00 : f64, dim = 4 : i64, factor = 8.000000e+00 : f64, high_freq_factor = 8.000000e+00 : f64, interleaved = true, low_freq_factor = 2.000000e+00 : f64, max_position = 512 : i64, mscale = 5.000000e-01 : f64, mscale_all_dim = 7.500000e-01 : f64, original_max_position = 64 : i64, scaling = "llama3"} : tensor<?xi64> -> tensor<?x4xf32>, tensor<?x4xf32>
// CHECK-NEXT: [[N:%[a-z0-9_]+]] = kt.rms_norm "model.norm" : "demo.DemoRMSNorm" ([[E]]) {eps = 1.000000e-05 : f64, weight = #kt.weight<"model.norm.weight", f32, [8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x8xbf16>
// CHECK-NEXT: [[QN:%[a-z0-9_]+]] = kt.rms_norm "model.q_norm" : "demo.DemoRMSNorm" ([[N]]) {eps = 9.9999999999999995E-7 : f64, weight = #kt.weight<"model.q_norm.weight", f32, [4], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x8xbf16>
// CHECK-NEXT: [[FC:%[a-z0-9_]+]] = kt.linear "model.fc" : "torch.nn.Linear" ([[QN]]) {bias = #kt.weight<"model.fc.bias", bf16, [8], "model.safetensors">, weight = #kt.weight<"model.fc.weight", f8E4M3FN, [8, 8], "model.safetensors">, weight_scale = #kt.weight<"model.fc.weight_scale_inv", f32, [1, 1], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x8xbf16>
// CHECK-NEXT: [[M:%[a-z0-9_]+]] = kt.marlin_linear "model.marlin" : "torch.nn.Linear" ([[FC]]) {bits = 8 : i64, generate_device = "cuda:1", group_size = 64 : i64, impl = "KLinearMarlin", prefill_device = "cuda:1", rule = 1 : i64, weight = #kt.weight<"model.marlin.weight", bf16, [8, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x8xbf16>
// CHECK-NEXT: [[M2:%[a-z0-9_]+]] = kt.marlin_linear "model.marlin_default" : "torch.nn.Linear" ([[M]]) {weight = #kt.weight<"model.marlin_default.weight", bf16, [8, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x8xbf16>
// CHECK-NEXT: [[F:%[a-z0-9_]+]] = kt.fp8_linear "model.fp8" : "torch.nn.Linear" ([[M2]]) {block_size = 64 : i64, weight = #kt.weight<"model.fp8.weight", f8E4M3FN, [8, 8], "model.safetensors">, weight_scale = #kt.weight<"model.fp8.weight_scale_inv", f32, [1, 1], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x8xbf16>
// CHECK-NEXT: = kt.lora_linear "model.lora" : "torch.nn.Linear" ([[F]]) {lora_a = #kt.weight<"model.lora.lora_A", f32, [2, 8], "adapter.safetensors">, lora_alpha = 1.600000e+01 : f64, lora_b = #kt.weight<"model.lora.lora_B", f32, [4, 2], "adapter.safetensors">, lora_dropout = 1.250000e-01 : f64, lora_rank = 2 : i64, weight = #kt.weight<"model.lora.weight", bf16, [4, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x4xbf16>
// CHECK-NEXT: [[GIDS:%[a-z0-9_]+]], [[GW:%[a-z0-9_]+]] = kt.moe_gate "model.gate" : "modeling_deepseek.MoEGate" ([[N]]) {n_group = 2 : i64, norm_topk_prob = true, num_experts = 4 : i64, routed_scaling_factor = 2.500000e+00 : f64, score_bias = #kt.weight<"model.gate.e_score_correction_bias", f32, [4], "model.safetensors">, scoring_func = "sigmoid", top_k = 2 : i64, topk_method = "noaux_tc", weight = #kt.weight<"model.gate.weight", f32, [4, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x2xi64>, tensor<?x2xf32>
// CHECK-NEXT: [[LOGITS:%[a-z0-9_]+]] = kt.linear "model.router" : "torch.nn.Linear" ([[N]]) {weight = #kt.weight<"model.router.weight", bf16, [2, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x2xbf16>
// CHECK-NEXT: [[RIDS:%[a-z0-9_]+]], [[RW:%[a-z0-9_]+]] = kt.topk_route [[LOGITS]] {norm_topk_prob = true, top_k = 2 : i64} : tensor<?x2xbf16> -> tensor<?x2xi64>, tensor<?x2xf32>
// CHECK-NEXT: [[X1:%[a-z0-9_]+]] = kt.experts "model.experts" : "torch.nn.ModuleList" ([[N]], [[RIDS]], [[RW]]) {act = "gelu", hidden_size = 8 : i64, intermediate_size = 4 : i64, num_experts = 2 : i64} : (tensor<?x8xbf16>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xbf16> {
// CHECK-NEXT: ^bb0([[T:%[a-z0-9_]+]]: tensor<?x8xbf16>):
// CHECK-NEXT: [[A:%[a-z0-9_]+]] = kt.module "model.experts.0" : "demo.DemoMLP" ([[T]]) : (tensor<?x8xbf16>) -> tensor<?x8xbf16> {
// CHECK-NEXT: ^bb0([[U:%[a-z0-9_]+]]: tensor<?x8xbf16>):
// CHECK-NEXT: [[G:%[a-z0-9_]+]] = kt.linear "model.experts.0.gate_proj" : "torch.nn.Linear" ([[U]]) {weight = #kt.weight<"model.experts.0.gate_proj.weight", bf16, [4, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x4xbf16>
// CHECK-NEXT: [[UP:%[a-z0-9_]+]] = kt.linear "model.experts.0.up_proj" : "torch.nn.Linear" ([[U]]) {weight = #kt.weight<"model.experts.0.up_proj.weight", bf16, [4, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x4xbf16>
// CHECK-NEXT: [[H:%[a-z0-9_]+]] = kt.silu_mul [[G]], [[UP]] : tensor<?x4xbf16>
// CHECK-NEXT: [[D:%[a-z0-9_]+]] = kt.linear "model.experts.0.down_proj" : "torch.nn.Linear" ([[H]]) {weight = #kt.weight<"model.experts.0.down_proj.weight", bf16, [8, 4], "model.safetensors">} : tensor<?x4xbf16> -> tensor<?x8xbf16>
// CHECK-NEXT: kt.yield [[D]] : tensor<?x8xbf16>
// CHECK-NEXT: }
// CHECK-NEXT: [[B:%[a-z0-9_]+]] = kt.module "model.experts.1" : "demo.DemoMLP" ([[T]]) : (tensor<?x8xbf16>) -> tensor<?x8xbf16> {
// CHECK-NEXT: ^bb0([[U1:%[a-z0-9_]+]]: tensor<?x8xbf16>):
// CHECK-NEXT: kt.yield [[U1]] : tensor<?x8xbf16>
// CHECK-NEXT: }
// CHECK-NEXT: kt.yield [[A]], [[B]] : tensor<?x8xbf16>, tensor<?x8xbf16>
// CHECK-NEXT: }
// CHECK-NEXT: [[X2:%[a-z0-9_]+]] = kt.experts "model.fused_experts" : "demo.DemoExperts" ([[X1]], [[GIDS]], [[GW]]) {down_fused = #kt.weight<"model.fused_experts.down_proj", bf16, [4, 8, 4], "model.safetensors">, gate_up_fused = #kt.weight<"model.fused_experts.gate_up_proj", bf16, [4, 8, 8], "model.safetensors">, hidden_size = 8 : i64, intermediate_size = 4 : i64, num_experts = 4 : i64} : (tensor<?x8xbf16>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xbf16> {
// CHECK-NEXT: }
// CHECK-NEXT: [[X3:%[a-z0-9_]+]] = kt.cpu_experts "model.cpu_experts" : "torch.nn.ModuleList" ([[X2]], [[RIDS]], [[RW]]) {backend = "AMXInt8", down_proj = [#kt.weight<"e.0.down_proj.weight", bf16, [8, 4], "model.safetensors">, #kt.weight<"e.1.down_proj.weight", bf16, [8, 4], "model-00002-of-00002.safetensors">], gate_proj = [#kt.weight<"e.0.gate_proj.weight", bf16, [4, 8], "model.safetensors">, #kt.weight<"e.1.gate_proj.weight", bf16, [4, 8], "model.safetensors">], generate_device = "cpu", generate_op = "KExpertsCPU", hidden_size = 8 : i64, intermediate_size = 4 : i64, num_experts = 2 : i64, out_device = "cuda:0", prefill_device = "cuda", prefill_op = "KExpertsTorch", up_proj = [#kt.weight<"e.0.up_proj.weight", bf16, [4, 8], "model.safetensors">, #kt.weight<"e.1.up_proj.weight", bf16, [4, 8], "model.safetensors">]} : (tensor<?x8xbf16>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xbf16>
// CHECK-NEXT: [[X4:%[a-z0-9_]+]] = kt.gpu_experts "model.gpu_experts" : "demo.DemoExperts" ([[X3]], [[GIDS]], [[GW]]) {down_fused = #kt.weight<"g.down_proj", bf16, [4, 8, 4], "model.safetensors">, gate_up_fused = #kt.weight<"g.gate_up_proj", bf16, [4, 8, 8], "model.safetensors">, generate_device = "cuda:1", hidden_size = 8 : i64, intermediate_size = 4 : i64, num_experts = 4 : i64} : (tensor<?x8xbf16>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xbf16>
// CHECK-NEXT: [[SG:%[a-z0-9_]+]] = kt.linear "model.shared_expert_gate" : "torch.nn.Linear" ([[N]]) {weight = #kt.weight<"model.shared_expert_gate.weight", bf16, [1, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x1xbf16>
// CHECK-NEXT: [[GATED:%[a-z0-9_]+]] = kt.sigmoid_gate [[SG]], [[X4]] : tensor<?x1xbf16>, tensor<?x8xbf16> -> tensor<?x8xbf16>
// CHECK-NEXT: [[SUM:%[a-z0-9_]+]] = kt.add [[GATED]], [[N]] : tensor<?x8xbf16>
// CHECK-NEXT: [[SM:%[a-z0-9_]+]] = kt.silu_mul [[SUM]], [[N]] : tensor<?x8xbf16>
// CHECK-NEXT: [[Q:%[a-z0-9_]+]] = kt.linear "model.q_proj" : "torch.nn.Linear" ([[SM]]) {weight = #kt.weight<"model.q_proj.weight", bf16, [8, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x8xbf16>
// CHECK-NEXT: [[K:%[a-z0-9_]+]] = kt.slice [[Q]] {offset = 0 : i64, size = 4 : i64} : tensor<?x8xbf16> -> tensor<?x4xbf16>
// CHECK-NEXT: [[V:%[a-z0-9_]+]] = kt.slice [[Q]] {offset = 4 : i64, size = 4 : i64} : tensor<?x8xbf16> -> tensor<?x4xbf16>
// CHECK-NEXT: [[ATT:%[a-z0-9_]+]] = kt.attention_core [[Q]], [[K]], [[V]], [[COS]], [[SIN]] {head_dim = 4 : i64, interleaved = true, layer = 7 : i64, num_heads = 2 : i64, num_kv_heads = 1 : i64, rotary_dim = 2 : i64, scale = 5.000000e-01 : f64} : (tensor<?x8xbf16>, tensor<?x4xbf16>, tensor<?x4xbf16>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x8xbf16>
// CHECK-NEXT: [[MLA:%[a-z0-9_]+]] = kt.mla "model.layers.0.self_attn" : "modeling_deepseek.DeepseekV2Attention" ([[ATT]], [[POS]]) {absorb = false, generate_device = "cuda:0", impl = "KDeepseekV2Attention", kv_lora_rank = 6 : i64, num_heads = 2 : i64, q_lora_rank = 0 : i64, qk_nope_head_dim = 4 : i64, qk_rope_head_dim = 2 : i64, softmax_scale = 0.40824829046386307 : f64, v_head_dim = 4 : i64} : (tensor<?x8xbf16>, tensor<?xi64>) -> tensor<?x8xbf16> {
// CHECK-NEXT: ^bb0([[MX:%[a-z0-9_]+]]: tensor<?x8xbf16>, [[MP:%[a-z0-9_]+]]: tensor<?xi64>):
// CHECK-NEXT: [[MQ:%[a-z0-9_]+]] = kt.linear "model.layers.0.self_attn.q_proj" : "torch.nn.Linear" ([[MX]]) {weight = #kt.weight<"model.layers.0.self_attn.q_proj.weight", bf16, [12, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x12xbf16>
// CHECK-NEXT: [[CKV:%[a-z0-9_]+]] = kt.linear "model.layers.0.self_attn.kv_a_proj_with_mqa" : "torch.nn.Linear" ([[MX]]) {weight = #kt.weight<"model.layers.0.self_attn.kv_a_proj_with_mqa.weight", bf16, [8, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x8xbf16>
// CHECK-NEXT: [[LAT:%[a-z0-9_]+]] = kt.slice [[CKV]] {offset = 0 : i64, size = 6 : i64} : tensor<?x8xbf16> -> tensor<?x6xbf16>
// CHECK-NEXT: [[KPE:%[a-z0-9_]+]] = kt.slice [[CKV]] {offset = 6 : i64, size = 2 : i64} : tensor<?x8xbf16> -> tensor<?x2xbf16>
// CHECK-NEXT: [[LATN:%[a-z0-9_]+]] = kt.rms_norm "model.layers.0.self_attn.kv_a_layernorm" : "modeling_deepseek.DeepseekV2RMSNorm" ([[LAT]]) {eps = 9.9999999999999995E-7 : f64, weight = #kt.weight<"model.layers.0.self_attn.kv_a_layernorm.weight", bf16, [6], "model.safetensors">} : tensor<?x6xbf16> -> tensor<?x6xbf16>
// CHECK-NEXT: [[KV:%[a-z0-9_]+]] = kt.linear "model.layers.0.self_attn.kv_b_proj" : "torch.nn.Linear" ([[LATN]]) {weight = #kt.weight<"model.layers.0.self_attn.kv_b_proj.weight", bf16, [16, 6], "model.safetensors">} : tensor<?x6xbf16> -> tensor<?x16xbf16>
// CHECK-NEXT: [[C2:%[a-z0-9_]+]], [[S2:%[a-z0-9_]+]] = kt.rotary "model.layers.0.self_attn.rotary_emb" : "modeling_deepseek.DeepseekV2YarnRotaryEmbedding" ([[MP]]) {base = 1.000000e+04 : f64, dim = 2 : i64, max_position = 4096 : i64} : tensor<?xi64> -> tensor<?x2xf32>, tensor<?x2xf32>
// CHECK-NEXT: [[O:%[a-z0-9_]+]] = kt.mla_core [[MQ]], [[KV]], [[LATN]], [[KPE]], [[C2]], [[S2]] {interleaved = true, layer = 0 : i64, num_heads = 2 : i64, qk_nope_head_dim = 4 : i64, qk_rope_head_dim = 2 : i64, scale = 2.500000e-01 : f64, v_head_dim = 4 : i64} : (tensor<?x12xbf16>, tensor<?x16xbf16>, tensor<?x6xbf16>, tensor<?x2xbf16>, tensor<?x2xf32>, tensor<?x2xf32>) -> tensor<?x8xbf16>
// CHECK-NEXT: [[OUT:%[a-z0-9_]+]] = kt.linear "model.layers.0.self_attn.o_proj" : "torch.nn.Linear" ([[O]]) {weight = #kt.weight<"model.layers.0.self_attn.o_proj.weight", bf16, [8, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x8xbf16>
// CHECK-NEXT: kt.yield [[OUT]] : tensor<?x8xbf16>
// CHECK-NEXT: }
// CHECK-NEXT: [[TR:%[a-z0-9_]+]] = kt.transfer [[MLA]] {generate_from = "cuda:0", generate_to = "cpu", prefill_from = "cuda", prefill_to = "cuda:12"} : tensor<?x8xbf16>
// CHECK-NEXT: [[HEAD:%[a-z0-9_]+]] = kt.linear "lm_head" : "torch.nn.Linear" ([[TR]]) {weight = #kt.weight<"lm_head.weight", bf16, [16, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x16xbf16>
// CHECK-NEXT: kt.yield [[HEAD]] : tensor<?x16xbf16>
// CHECK-NEXT: }
// CHECK-NEXT: }

// GENERIC: "kt.marlin_linear"(%{{.*}}) <{bits = 4 : i64, group_size = 128 : i64, module_class = "torch.nn.Linear", name = "model.marlin_default",
// GENERIC: "kt.experts"(%{{.*}}) <{act = "silu", down_fused = #kt.weight<"model.fused_experts.down_proj", bf16, [4, 8, 4], "model.safetensors">, gate_up_fused = #kt.weight<"model.fused_experts.gate_up_proj", bf16, [4, 8, 8], "model.safetensors">, hidden_size = 8 : i64, intermediate_size = 4 : i64, module_class = "demo.DemoExperts", name = "model.fused_experts", num_experts = 4 : i64}> ({
// GENERIC-NEXT: })
// GENERIC: "kt.rotary"(%{{.*}}) <{base = 1.000000e+04 : f64, beta_fast = 3.200000e+01 : f64, beta_slow = 1.000000e+00 : f64, dim = 2 : i64, factor = 1.000000e+00 : f64, high_freq_factor = 4.000000e+00 : f64, interleaved = false, low_freq_factor = 1.000000e+00 : f64, max_position = 4096 : i64, module_class = "modeling_deepseek.DeepseekV2YarnRotaryEmbedding", mscale = 1.000000e+00 : f64, mscale_all_dim = 0.000000e+00 : f64, name = "model.layers.0.self_attn.rotary_emb", original_max_position = 0 : i64, scaling = "default"}>

module {
  %0 = kt.module "" : "demo.DemoForCausalLM" () {generate_device = "cuda:0", prefill_device = "cuda"} : () -> tensor<?x16xbf16> {
  ^bb0(%ids: tensor<?xi64>, %pos: tensor<?xi64>):
    %e = kt.embedding "model.embed_tokens" : "torch.nn.Embedding" (%ids) {generate_device = "cpu", prefill_device = "cpu", rule = 3 : i64, kwargs = {generate_device = "cpu", per_layer = 0 : i64}, weight = #kt.weight<"model.embed_tokens.weight", bf16, [16, 8], "model-00001-of-00002.safetensors">} : tensor<?xi64> -> tensor<?x8xbf16>
    %cos, %sin = kt.rotary "model.rotary_emb" : "demo.DemoRotaryEmbedding" (%pos) {dim = 4 : i64, base = 10000.0 : f64, max_position = 512 : i64, scaling = "llama3", factor = 8.0 : f64, original_max_position = 64 : i64, beta_fast = 16.0 : f64, beta_slow = 2.0 : f64, mscale = 0.5 : f64, mscale_all_dim = 0.75 : f64, low_freq_factor = 2.0 : f64, high_freq_factor = 8.0 : f64, interleaved = true} : tensor<?xi64> -> tensor<?x4xf32>, tensor<?x4xf32>
    %n = kt.rms_norm "model.norm" : "demo.DemoRMSNorm" (%e) {eps = 1.0e-05 : f64, weight = #kt.weight<"model.norm.weight", f32, [8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x8xbf16>
    %qn = kt.rms_norm "model.q_norm" : "demo.DemoRMSNorm" (%n) {eps = 1.0e-06 : f64, weight = #kt.weight<"model.q_norm.weight", f32, [4], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x8xbf16>
    %l = kt.linear "model.fc" : "torch.nn.Linear" (%qn) {weight = #kt.weight<"model.fc.weight", f8E4M3FN, [8, 8], "model.safetensors">, bias = #kt.weight<"model.fc.bias", bf16, [8], "model.safetensors">, weight_scale = #kt.weight<"model.fc.weight_scale_inv", f32, [1, 1], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x8xbf16>
    %m = kt.marlin_linear "model.marlin" : "torch.nn.Linear" (%l) {bits = 8 : i64, group_size = 64 : i64, impl = "KLinearMarlin", rule = 1 : i64, generate_device = "cuda:1", prefill_device = "cuda:1", weight = #kt.weight<"model.marlin.weight", bf16, [8, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x8xbf16>
    %m2 = kt.marlin_linear "model.marlin_default" : "torch.nn.Linear" (%m) {weight = #kt.weight<"model.marlin_default.weight", bf16, [8, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x8xbf16>
    %f = kt.fp8_linear "model.fp8" : "torch.nn.Linear" (%m2) {block_size = 64 : i64, weight = #kt.weight<"model.fp8.weight", f8E4M3FN, [8, 8], "model.safetensors">, weight_scale = #kt.weight<"model.fp8.weight_scale_inv", f32, [1, 1], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x8xbf16>
    %lo = kt.lora_linear "model.lora" : "torch.nn.Linear" (%f) {lora_rank = 2 : i64, lora_alpha = 16.0 : f64, lora_dropout = 0.125 : f64, lora_a = #kt.weight<"model.lora.lora_A", f32, [2, 8], "adapter.safetensors">, lora_b = #kt.weight<"model.lora.lora_B", f32, [4, 2], "adapter.safetensors">, weight = #kt.weight<"model.lora.weight", bf16, [4, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x4xbf16>
    %ids2, %w2 = kt.moe_gate "model.gate" : "modeling_deepseek.MoEGate" (%n) {weight = #kt.weight<"model.gate.weight", f32, [4, 8], "model.safetensors">, score_bias = #kt.weight<"model.gate.e_score_correction_bias", f32, [4], "model.safetensors">, top_k = 2 : i64, num_experts = 4 : i64, scoring_func = "sigmoid", topk_method = "noaux_tc", n_group = 2 : i64, topk_group = 1 : i64, norm_topk_prob = true, routed_scaling_factor = 2.5 : f64} : tensor<?x8xbf16> -> tensor<?x2xi64>, tensor<?x2xf32>
    %logits = kt.linear "model.router" : "torch.nn.Linear" (%n) {weight = #kt.weight<"model.router.weight", bf16, [2, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x2xbf16>
    %rid, %rw = kt.topk_route %logits {top_k = 2 : i64, norm_topk_prob = true} : tensor<?x2xbf16> -> tensor<?x2xi64>, tensor<?x2xf32>
    %x1 = kt.experts "model.experts" : "torch.nn.ModuleList" (%n, %rid, %rw) {num_experts = 2 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64, act = "gelu"} : (tensor<?x8xbf16>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xbf16> {
    ^bb0(%t: tensor<?x8xbf16>):
      %a = kt.module "model.experts.0" : "demo.DemoMLP" (%t) : (tensor<?x8xbf16>) -> tensor<?x8xbf16> {
      ^bb0(%u: tensor<?x8xbf16>):
        %g = kt.linear "model.experts.0.gate_proj" : "torch.nn.Linear" (%u) {weight = #kt.weight<"model.experts.0.gate_proj.weight", bf16, [4, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x4xbf16>
        %up = kt.linear "model.experts.0.up_proj" : "torch.nn.Linear" (%u) {weight = #kt.weight<"model.experts.0.up_proj.weight", bf16, [4, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x4xbf16>
        %h = kt.silu_mul %g, %up : tensor<?x4xbf16>
        %d = kt.linear "model.experts.0.down_proj" : "torch.nn.Linear" (%h) {weight = #kt.weight<"model.experts.0.down_proj.weight", bf16, [8, 4], "model.safetensors">} : tensor<?x4xbf16> -> tensor<?x8xbf16>
        kt.yield %d : tensor<?x8xbf16>
      }
      %b = kt.module "model.experts.1" : "demo.DemoMLP" (%t) : (tensor<?x8xbf16>) -> tensor<?x8xbf16> {
      ^bb0(%u: tensor<?x8xbf16>):
        kt.yield %u : tensor<?x8xbf16>
      }
      kt.yield %a, %b : tensor<?x8xbf16>, tensor<?x8xbf16>
    }
    %x2 = kt.experts "model.fused_experts" : "demo.DemoExperts" (%x1, %ids2, %w2) {num_experts = 4 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64, gate_up_fused = #kt.weight<"model.fused_experts.gate_up_proj", bf16, [4, 8, 8], "model.safetensors">, down_fused = #kt.weight<"model.fused_experts.down_proj", bf16, [4, 8, 4], "model.safetensors">} : (tensor<?x8xbf16>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xbf16> {
    }
    %x3 = kt.cpu_experts "model.cpu_experts" : "torch.nn.ModuleList" (%x2, %rid, %rw) {num_experts = 2 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64, gate_proj = [#kt.weight<"e.0.gate_proj.weight", bf16, [4, 8], "model.safetensors">, #kt.weight<"e.1.gate_proj.weight", bf16, [4, 8], "model.safetensors">], up_proj = [#kt.weight<"e.0.up_proj.weight", bf16, [4, 8], "model.safetensors">, #kt.weight<"e.1.up_proj.weight", bf16, [4, 8], "model.safetensors">], down_proj = [#kt.weight<"e.0.down_proj.weight", bf16, [8, 4], "model.safetensors">, #kt.weight<"e.1.down_proj.weight", bf16, [8, 4], "model-00002-of-00002.safetensors">], backend = "AMXInt8", out_device = "cuda:0", generate_op = "KExpertsCPU", prefill_op = "KExpertsTorch", generate_device = "cpu", prefill_device = "cuda"} : (tensor<?x8xbf16>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xbf16>
    %x4 = kt.gpu_experts "model.gpu_experts" : "demo.DemoExperts" (%x3, %ids2, %w2) {num_experts = 4 : i64, hidden_size = 8 : i64, intermediate_size = 4 : i64, gate_up_fused = #kt.weight<"g.gate_up_proj", bf16, [4, 8, 8], "model.safetensors">, down_fused = #kt.weight<"g.down_proj", bf16, [4, 8, 4], "model.safetensors">, generate_device = "cuda:1"} : (tensor<?x8xbf16>, tensor<?x2xi64>, tensor<?x2xf32>) -> tensor<?x8xbf16>
    %sg = kt.linear "model.shared_expert_gate" : "torch.nn.Linear" (%n) {weight = #kt.weight<"model.shared_expert_gate.weight", bf16, [1, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x1xbf16>
    %gated = kt.sigmoid_gate %sg, %x4 : tensor<?x1xbf16>, tensor<?x8xbf16> -> tensor<?x8xbf16>
    %sum = kt.add %gated, %n : tensor<?x8xbf16>
    %sm = kt.silu_mul %sum, %n : tensor<?x8xbf16>
    %q = kt.linear "model.q_proj" : "torch.nn.Linear" (%sm) {weight = #kt.weight<"model.q_proj.weight", bf16, [8, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x8xbf16>
    %k = kt.slice %q {offset = 0 : i64, size = 4 : i64} : tensor<?x8xbf16> -> tensor<?x4xbf16>
    %v = kt.slice %q {offset = 4 : i64, size = 4 : i64} : tensor<?x8xbf16> -> tensor<?x4xbf16>
    %att = kt.attention_core %q, %k, %v, %cos, %sin {num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 4 : i64, rotary_dim = 2 : i64, scale = 0.5 : f64, layer = 7 : i64, interleaved = true} : (tensor<?x8xbf16>, tensor<?x4xbf16>, tensor<?x4xbf16>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x8xbf16>
    %mla = kt.mla "model.layers.0.self_attn" : "modeling_deepseek.DeepseekV2Attention" (%att, %pos) {num_heads = 2 : i64, q_lora_rank = 0 : i64, kv_lora_rank = 6 : i64, qk_nope_head_dim = 4 : i64, qk_rope_head_dim = 2 : i64, v_head_dim = 4 : i64, softmax_scale = 0.40824829046386307 : f64, absorb = false, impl = "KDeepseekV2Attention", generate_device = "cuda:0"} : (tensor<?x8xbf16>, tensor<?xi64>) -> tensor<?x8xbf16> {
    ^bb0(%x: tensor<?x8xbf16>, %p: tensor<?xi64>):
      %mq = kt.linear "model.layers.0.self_attn.q_proj" : "torch.nn.Linear" (%x) {weight = #kt.weight<"model.layers.0.self_attn.q_proj.weight", bf16, [12, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x12xbf16>
      %ckv = kt.linear "model.layers.0.self_attn.kv_a_proj_with_mqa" : "torch.nn.Linear" (%x) {weight = #kt.weight<"model.layers.0.self_attn.kv_a_proj_with_mqa.weight", bf16, [8, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x8xbf16>
      %lat = kt.slice %ckv {offset = 0 : i64, size = 6 : i64} : tensor<?x8xbf16> -> tensor<?x6xbf16>
      %kpe = kt.slice %ckv {offset = 6 : i64, size = 2 : i64} : tensor<?x8xbf16> -> tensor<?x2xbf16>
      %latn = kt.rms_norm "model.layers.0.self_attn.kv_a_layernorm" : "modeling_deepseek.DeepseekV2RMSNorm" (%lat) {eps = 1.0e-06 : f64, weight = #kt.weight<"model.layers.0.self_attn.kv_a_layernorm.weight", bf16, [6], "model.safetensors">} : tensor<?x6xbf16> -> tensor<?x6xbf16>
      %kv = kt.linear "model.layers.0.self_attn.kv_b_proj" : "torch.nn.Linear" (%latn) {weight = #kt.weight<"model.layers.0.self_attn.kv_b_proj.weight", bf16, [16, 6], "model.safetensors">} : tensor<?x6xbf16> -> tensor<?x16xbf16>
      %c2, %s2 = kt.rotary "model.layers.0.self_attn.rotary_emb" : "modeling_deepseek.DeepseekV2YarnRotaryEmbedding" (%p) {dim = 2 : i64, base = 10000.0 : f64, max_position = 4096 : i64} : tensor<?xi64> -> tensor<?x2xf32>, tensor<?x2xf32>
      %o = kt.mla_core %mq, %kv, %latn, %kpe, %c2, %s2 {num_heads = 2 : i64, qk_nope_head_dim = 4 : i64, qk_rope_head_dim = 2 : i64, v_head_dim = 4 : i64, scale = 0.25 : f64, layer = 0 : i64, interleaved = true} : (tensor<?x12xbf16>, tensor<?x16xbf16>, tensor<?x6xbf16>, tensor<?x2xbf16>, tensor<?x2xf32>, tensor<?x2xf32>) -> tensor<?x8xbf16>
      %out = kt.linear "model.layers.0.self_attn.o_proj" : "torch.nn.Linear" (%o) {weight = #kt.weight<"model.layers.0.self_attn.o_proj.weight", bf16, [8, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x8xbf16>
      kt.yield %out : tensor<?x8xbf16>
    }
    %tr = kt.transfer %mla {generate_from = "cuda:0", generate_to = "cpu", prefill_from = "cuda", prefill_to = "cuda:12"} : tensor<?x8xbf16>
    %head = kt.linear "lm_head" : "torch.nn.Linear" (%tr) {weight = #kt.weight<"lm_head.weight", bf16, [16, 8], "model.safetensors">} : tensor<?x8xbf16> -> tensor<?x16xbf16>
    kt.yield %head : tensor<?x16xbf16>
  }
}
