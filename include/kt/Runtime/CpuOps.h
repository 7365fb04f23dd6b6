//===- CpuOps.h - CPU implementations of the kt ops -----------*- C++ -*-===//
//
// The CPU side of every op the importers produce, as plain functions on
// row-major buffers. The executor (Executor.h) maps plan ops onto them.
//
// Conventions
// - Activations are fp32, row-major [tokens, cols].
// - Weights are MatrixViews, row-major [rows, cols] as torch stores them
//   (a Linear's weight is [out, in]); f32, bf16 or f16 data is read as is
//   and widened to fp32 on the fly, so a bf16 checkpoint needs no copy.
// - All accumulation is fp32 (the references in the tests are float64).
// - Vectorised with AVX512 and AVX2 (+FMA/F16C), chosen at run time by CPU
//   features (kt::kernels::cpuFeatures()), with a scalar fallback;
//   setCpuOpsPath() forces one for tests.
// - `pool` may be null (single thread). Functions never throw; callers
//   validate shapes and ids beforehand.
//
//===----------------------------------------------------------------------===//

#ifndef KT_RUNTIME_CPUOPS_H
#define KT_RUNTIME_CPUOPS_H

#include "kt/Runtime/Kernels/Moe.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kt::cpu {

using kernels::ThreadPool;

/// Which implementation the ops use. Auto = best the CPU supports.
enum class OpsPath { Auto, Scalar, AVX2, AVX512 };
/// Force a path (tests). Returns false, changing nothing, when the CPU
/// lacks it.
bool setCpuOpsPath(OpsPath path);
OpsPath activeCpuOpsPath();
const char *toString(OpsPath path);

enum class WType { F32, BF16, F16 };

/// A row-major [rows, cols] matrix of f32/bf16/f16 elements.
struct MatrixView {
  WType type = WType::F32;
  const void *data = nullptr;
  int64_t rows = 0, cols = 0;
  /// View of rows [first, first + count).
  MatrixView rowRange(int64_t first, int64_t count) const;
};

//===----------------------------------------------------------------------===//
// Dense
//===----------------------------------------------------------------------===//

/// y[T, w.rows] = x[T, w.cols] · wᵀ + bias (bias: f32 [w.rows] or null).
void linear(const float *x, int64_t tokens, const MatrixView &w,
            const float *bias, float *y, ThreadPool *pool);

/// out[t, :] = table[ids[t], :] (ids already checked to be in range).
void embedding(const int64_t *ids, int64_t tokens, const MatrixView &table,
               float *out);

/// RMSNorm over each group of `groupSize` elements of each row of x
/// [tokens, cols] (cols a multiple of groupSize): y = x / sqrt(mean(x²) +
/// eps) * weight, weight f32 [groupSize]. In place is allowed (y == x).
void rmsNorm(const float *x, int64_t tokens, int64_t cols,
             const float *weight, int64_t groupSize, double eps, float *y);

void add(const float *a, const float *b, int64_t n, float *y);
/// y = silu(gate) * up, elementwise over n.
void siluMul(const float *gate, const float *up, int64_t n, float *y);
/// y[t, :] = sigmoid(g[t]) * x[t, :] (Qwen2-MoE's shared_expert_gate).
void sigmoidGate(const float *g, const float *x, int64_t tokens, int64_t cols,
                 float *y);

//===----------------------------------------------------------------------===//
// Rotary position embedding
//===----------------------------------------------------------------------===//

/// The attributes of kt.rotary (docs/dialect.md).
struct RopeParams {
  std::string scaling = "default"; ///< default|linear|dynamic|yarn|llama3
  int64_t dim = 0;                 ///< rotated dims per head (even)
  double base = 10000;
  int64_t maxPosition = 0;
  double factor = 1;
  int64_t originalMaxPosition = 0;
  double betaFast = 32, betaSlow = 1;
  double mscale = 1, mscaleAllDim = 0;
  double lowFreqFactor = 1, highFreqFactor = 4;
  /// yarn: an explicit `attention_factor` from rope_parameters; 0 = derive
  /// it from factor / mscale / mscale_all_dim as Hugging Face does.
  double attentionFactor = 0;
  /// yarn: HF's `truncate` (default true): floor/ceil the correction range.
  bool truncate = true;
};

/// cos and sin [tokens, dim] for `positions`, laid out as Hugging Face
/// does (cat(freqs, freqs) along the last dim, times the scheme's attention
/// factor, e.g. YaRN's mscale ratio). `dynamic` uses the largest position +
/// 1 as the sequence length.
void ropeTables(const RopeParams &p, const int64_t *positions, int64_t tokens,
                float *cos, float *sin);

/// Rotates the first `rotaryDim` elements of each of `heads` heads of
/// x [tokens, heads * headDim] in place with cos/sin [tokens, rotaryDim].
/// interleaved = false: pairs (i, i + rotaryDim/2) (rotate_half);
/// interleaved = true: pairs (2i, 2i + 1) using cos[i]/sin[i] (DeepSeek).
void applyRope(float *x, int64_t tokens, int64_t heads, int64_t headDim,
               int64_t rotaryDim, const float *cos, const float *sin,
               bool interleaved);

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

/// Keys (rope applied) and values of one layer, fp32.
struct KvCache {
  int64_t capacity = 0, kvHeads = 0, headDim = 0;
  int64_t length = 0;   ///< positions filled
  std::vector<float> k; ///< [capacity, kvHeads, headDim]
  std::vector<float> v; ///< [capacity, kvHeads, headDim]
  void reset(int64_t capacity, int64_t kvHeads, int64_t headDim);
};

struct AttentionParams {
  int64_t numHeads = 0, numKvHeads = 0, headDim = 0, rotaryDim = 0;
  double scale = 0;
  bool interleaved = false;
  int64_t slidingWindow = 0; ///< 0 = none
  /// New positions in this call (the T of q/k/v below); the signature has
  /// no other place for it. 0 does nothing.
  int64_t tokens = 0;
};

/// Causal GQA attention for `tokens` new positions cache.length ..
/// cache.length + tokens - 1. q [T, H*hd], k/v [T, KvH*hd] before rope;
/// applies rope to (copies of) q and k, appends k and v to the cache
/// (caller ensured capacity), out [T, H*hd]. Softmax in fp32.
void attention(const AttentionParams &p, const float *q, const float *k,
               const float *v, const float *cos, const float *sin,
               KvCache &cache, float *out, ThreadPool *pool);

/// MLA cache: the compressed latent and the rotated rope key per position.
struct MlaCache {
  int64_t capacity = 0, kvLoraRank = 0, ropeDim = 0;
  int64_t length = 0;
  std::vector<float> latent; ///< [capacity, kvLoraRank]
  std::vector<float> kPe;    ///< [capacity, ropeDim], rope applied
  void reset(int64_t capacity, int64_t kvLoraRank, int64_t ropeDim);
};

struct MlaParams {
  int64_t numHeads = 0, qkNopeHeadDim = 0, qkRopeHeadDim = 0, vHeadDim = 0,
          kvLoraRank = 0;
  double scale = 0;
  bool interleaved = false;
  /// false: k_nope and v of every cached position are recomputed as
  /// kvB · latent (plain). true: q_nope is folded through W_UK into the
  /// latent space and the output through W_UV (matrix absorption).
  bool absorb = false;
  /// New positions in this call (the T of q/latent/kPe below). 0 does
  /// nothing.
  int64_t tokens = 0;
};

/// DeepSeek MLA for new positions cache.length ... q [T, H*(nope+rope)]
/// (rope part last in each head), latent [T, kvLoraRank] (after
/// kv_a_layernorm), kPe [T, rope] before rope, cos/sin [T, rope], kvB the
/// kv_b_proj weight [H*(nope+v), kvLoraRank] (per head: nope rows, then v
/// rows). Appends latent and rotated kPe to the cache; out [T, H*v].
void mla(const MlaParams &p, const float *q, const float *latent,
         const float *kPe, const float *cos, const float *sin,
         const MatrixView &kvB, MlaCache &cache, float *out,
         ThreadPool *pool);

//===----------------------------------------------------------------------===//
// Routing and experts
//===----------------------------------------------------------------------===//

/// softmax over each row of logits [T, E], top-k (ties: lower index
/// first, like torch.topk), optionally renormalised to sum 1. ids/weights
/// [T, k], ordered by decreasing weight.
void topkSoftmax(const float *logits, int64_t tokens, int64_t experts,
                 int64_t k, bool normTopk, int64_t *ids, float *weights);

/// The attributes of kt.moe_gate.
struct MoeGateParams {
  int64_t topK = 0, numExperts = 0, nGroup = 1, topkGroup = 1;
  std::string scoringFunc = "softmax"; ///< softmax|sigmoid
  std::string topkMethod = "greedy"; ///< greedy|group_limited_greedy|noaux_tc
  bool normTopkProb = false;
  double routedScalingFactor = 1.0;
};

/// DeepSeek V2/V3 routing on router logits [T, E] (x · gateᵀ, computed by
/// the caller); scoreBias f32 [E] (e_score_correction_bias) or null. Same
/// results as Hugging Face transformers' DeepseekV2/V3 MoE gates.
void moeGate(const MoeGateParams &p, const float *logits,
             const float *scoreBias, int64_t tokens, int64_t *ids,
             float *weights);

/// One expert: gate/up [I, H], down [H, I].
struct ExpertWeights {
  MatrixView gate, up, down;
};

/// out[t] = Σ_j weights[t,j] · down(silu(gate·x[t]) ⊙ up·x[t]) over the k
/// chosen experts ids[t, j] (ids < 0 skipped; the rest already checked
/// to be < experts.size()). Tokens are grouped by expert. out [T, H] is
/// overwritten.
void expertsReference(const float *x, int64_t tokens, int64_t hidden,
                      const int64_t *ids, const float *weights, int64_t k,
                      const std::vector<ExpertWeights> &experts, float *out,
                      ThreadPool *pool);

} // namespace kt::cpu

#endif // KT_RUNTIME_CPUOPS_H
