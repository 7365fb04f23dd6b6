//===- Rope.cpp - Rotary position embedding tables and rotation ----------===//
//
// ropeTables mirrors transformers' modeling_rope_utils (_compute_*_parameters)
// and the rotary modules' forward: inv_freq [dim/2] in fp32, freqs = position
// * inv_freq in fp32, emb = cat(freqs, freqs), cos/sin(emb) * attention
// factor. The fp32 steps are reproduced in float (torch's order of
// operations) so the tables agree with torch to about one ulp of the angle;
// scheme constants that HF computes in Python floats are computed in double.
//
//===----------------------------------------------------------------------===//

#include "OpsInternal.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace kt::cpu {
namespace {

/// 1 / base ** (2i / dim) in fp32, as
/// `1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))`.
std::vector<float> defaultInvFreq(double base, int64_t dim) {
  std::vector<float> inv(static_cast<size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float e = static_cast<float>(2 * i) / static_cast<float>(dim);
    const float p = std::pow(static_cast<float>(base), e);
    inv[i] = 1.0f / p;
  }
  return inv;
}

double yarnGetMscale(double scale, double mscale) {
  if (scale <= 1)
    return 1.0;
  return 0.1 * mscale * std::log(scale) + 1.0;
}

/// _compute_yarn_parameters.
std::vector<float> yarnInvFreq(const RopeParams &p, double &attention) {
  const int64_t dim = p.dim;
  const double base = p.base, factor = p.factor;
  const double original = static_cast<double>(
      p.originalMaxPosition > 0 ? p.originalMaxPosition : p.maxPosition);
  if (p.attentionFactor != 0)
    attention = p.attentionFactor;
  else if (p.mscale != 0 && p.mscaleAllDim != 0)
    attention =
        yarnGetMscale(factor, p.mscale) / yarnGetMscale(factor, p.mscaleAllDim);
  else
    attention = yarnGetMscale(factor, 1.0);
  const double betaFast = p.betaFast != 0 ? p.betaFast : 32;
  const double betaSlow = p.betaSlow != 0 ? p.betaSlow : 1;
  auto correctionDim = [&](double rotations) {
    return (dim * std::log(original / (rotations * 2 * M_PI))) /
           (2 * std::log(base));
  };
  double low = correctionDim(betaFast), high = correctionDim(betaSlow);
  if (p.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high)
    high += 0.001; // HF: "Prevent singularity"
  // linear_ramp_factor in fp32 (torch.arange(float32) - min) / (max - min).
  const float lowF = static_cast<float>(low);
  const float spanF = static_cast<float>(high - low);
  std::vector<float> inv(static_cast<size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float e = static_cast<float>(2 * i) / static_cast<float>(dim);
    const float posFreq = std::pow(static_cast<float>(base), e);
    const float extrapolation = 1.0f / posFreq;
    const float interpolation = 1.0f / (static_cast<float>(factor) * posFreq);
    float ramp = (static_cast<float>(i) - lowF) / spanF;
    ramp = std::min(1.0f, std::max(0.0f, ramp));
    const float extrapolationFactor = 1.0f - ramp;
    inv[i] = interpolation * (1.0f - extrapolationFactor) +
             extrapolation * extrapolationFactor;
  }
  return inv;
}

/// _compute_llama3_parameters.
std::vector<float> llama3InvFreq(const RopeParams &p) {
  std::vector<float> inv = defaultInvFreq(p.base, p.dim);
  const double oldContext = static_cast<double>(
      p.originalMaxPosition > 0 ? p.originalMaxPosition : p.maxPosition);
  const float factor = static_cast<float>(p.factor);
  const float lowWavelen = static_cast<float>(oldContext / p.lowFreqFactor);
  const float highWavelen = static_cast<float>(oldContext / p.highFreqFactor);
  const float lowF = static_cast<float>(p.lowFreqFactor);
  const float span = static_cast<float>(p.highFreqFactor - p.lowFreqFactor);
  for (float &f : inv) {
    const float wavelen = static_cast<float>(2 * M_PI) / f;
    const float llama = wavelen > lowWavelen ? f / factor : f;
    const float smooth =
        (static_cast<float>(oldContext) / wavelen - lowF) / span;
    const float smoothed = (1.0f - smooth) * llama / factor + smooth * llama;
    const bool medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
    f = medium ? smoothed : llama;
  }
  return inv;
}

} // namespace

void ropeTables(const RopeParams &p, const int64_t *positions, int64_t tokens,
                float *cos, float *sin) {
  const int64_t dim = p.dim, half = dim / 2;
  if (tokens <= 0 || half <= 0)
    return;
  double attention = 1.0;
  std::vector<float> inv;
  if (p.scaling == "linear") {
    inv = defaultInvFreq(p.base, dim);
    for (float &f : inv)
      f /= static_cast<float>(p.factor);
  } else if (p.scaling == "dynamic") {
    // dynamic_rope_update: seq_len = max(position_ids) + 1; the base grows
    // once seq_len exceeds max_position_embeddings.
    int64_t seqLen = 0;
    for (int64_t t = 0; t < tokens; ++t)
      seqLen = std::max(seqLen, positions[t] + 1);
    double base = p.base;
    const double maxPos = static_cast<double>(p.maxPosition);
    if (maxPos > 0) {
      const double s = std::max(static_cast<double>(seqLen), maxPos);
      base = base * std::pow(p.factor * s / maxPos - (p.factor - 1),
                             static_cast<double>(dim) / (dim - 2));
    }
    inv = defaultInvFreq(base, dim);
  } else if (p.scaling == "yarn") {
    inv = yarnInvFreq(p, attention);
  } else if (p.scaling == "llama3") {
    inv = llama3InvFreq(p);
  } else {
    inv = defaultInvFreq(p.base, dim);
  }
  const float af = static_cast<float>(attention);
  for (int64_t t = 0; t < tokens; ++t) {
    const float pos = static_cast<float>(positions[t]);
    float *c = cos + t * dim, *s = sin + t * dim;
    for (int64_t i = 0; i < half; ++i) {
      const float angle = pos * inv[i]; // fp32, as torch's matmul
      const float cv = static_cast<float>(std::cos(static_cast<double>(angle)));
      const float sv = static_cast<float>(std::sin(static_cast<double>(angle)));
      c[i] = c[i + half] = cv * af;
      s[i] = s[i + half] = sv * af;
    }
  }
}

void applyRope(float *x, int64_t tokens, int64_t heads, int64_t headDim,
               int64_t rotaryDim, const float *cos, const float *sin,
               bool interleaved) {
  const int64_t half = rotaryDim / 2;
  for (int64_t t = 0; t < tokens; ++t) {
    const float *c = cos + t * rotaryDim, *s = sin + t * rotaryDim;
    for (int64_t h = 0; h < heads; ++h) {
      float *v = x + (t * heads + h) * headDim;
      if (interleaved) {
        // DeepSeek: pairs (2i, 2i+1) as complex numbers times e^{i·freq_i}.
        for (int64_t i = 0; i < half; ++i) {
          const float a = v[2 * i], b = v[2 * i + 1];
          v[2 * i] = a * c[i] - b * s[i];
          v[2 * i + 1] = b * c[i] + a * s[i];
        }
      } else {
        // x * cos + rotate_half(x) * sin, rotate_half = cat(-x2, x1).
        for (int64_t i = 0; i < half; ++i) {
          const float a = v[i], b = v[i + half];
          v[i] = a * c[i] - b * s[i];
          v[i + half] = b * c[i + half] + a * s[i + half];
        }
      }
    }
  }
}

} // namespace kt::cpu
