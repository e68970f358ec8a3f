// Training-mode batch norm, optional residual add and ReLU as one autograd
// node: y = relu(bn(x) + residual), the tail of every residual block.
//
// Eager libtorch runs these as three or four ops, each a pass over the
// activations: batch statistics (two passes), normalisation, the add, the
// ReLU forward; ReLU's mask, then batch norm's two passes backward. Here the
// forward takes two passes (shifted sums, then normalise-add-clamp) and the
// backward two (masked sums, then the input gradient), on channels-last
// batches, where the channels of one pixel are adjacent: float32, or bfloat16
// as autocast's convolutions give them (the arithmetic stays float32).
// src/nn/fused.ts decides when this applies and falls back to the separate
// ops otherwise (another layout or dtype, synchronised batch norm).
#include "common.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace advml {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Each hot loop is compiled for AVX-512, AVX2 and the baseline; the loader
// picks the best the CPU has. Their pointers never overlap (__restrict__):
// otherwise the compiler guards the vector loop with overlap checks, and with
// this many pointers it falls back to the scalar loop.
#define ADVML_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))

// A channels-last batch is a [rows, channels] matrix. With 16 to 64 channels a
// row is too short a loop to vectorise well, so the loops run over tiles of
// several rows (about 512 elements), against per-channel vectors repeated to
// the tile's length.
struct Tiling {
  int64_t rows, channels, tileRows, span, tiles;
  Tiling(int64_t rows, int64_t channels)
      : rows(rows), channels(channels), tileRows(std::max<int64_t>(1, 512 / channels)), span(tileRows * channels),
        tiles((rows + tileRows - 1) / tileRows) {}
  int64_t offset(int64_t tile) const { return tile * span; }
  int64_t length(int64_t tile) const { return (std::min(rows, (tile + 1) * tileRows) - tile * tileRows) * channels; }
  // Tiles per parallel task: enough work that starting the task does not dominate.
  int64_t grain() const { return std::max<int64_t>(1, 32768 / span); }
  template <typename T>
  std::vector<float> repeat(const T* perChannel) const {
    std::vector<float> out(span);
    for (int64_t i = 0; i < span; ++i) out[i] = static_cast<float>(perChannel[i % channels]);
    return out;
  }
};

// Sums are kept in float over this many tiles (vectorised), then added in
// double per channel (exact enough for millions of rows).
constexpr int64_t kTilesPerBlock = 64;

// Activations come as float32, or as bfloat16 from autocast's convolutions;
// the arithmetic is float32 either way. Each kernel is a template inlined into
// one cloned function per activation type. bfloat16 is handled as its bits
// (uint16_t, the upper half of a float32): plain shifts and adds vectorise,
// where c10::BFloat16's conversions kept the loops scalar (10x slower).
#define ADVML_INLINE inline __attribute__((always_inline))
ADVML_INLINE float toFloat(float v) { return v; }
ADVML_INLINE float toFloat(uint16_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
template <typename T>
T fromFloat(float v);
template <>
ADVML_INLINE float fromFloat<float>(float v) { return v; }
// Round to nearest even, NaN kept a (quiet) NaN: c10::BFloat16's rounding.
template <>
ADVML_INLINE uint16_t fromFloat<uint16_t>(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  return v != v ? static_cast<uint16_t>(0x7FC0) : static_cast<uint16_t>(rounded);
}

// Over n elements, the sums of d = x - shift and of d^2, added into s and q.
// The shift (one sample per channel) keeps the variance from cancelling when
// the mean is large against the spread.
template <typename T>
ADVML_INLINE void shiftedSumsImpl(const T* __restrict__ x, const float* __restrict__ shift, int64_t n, float* __restrict__ s,
                                  float* __restrict__ q) {
  for (int64_t i = 0; i < n; ++i) {
    const float d = toFloat(x[i]) - shift[i];
    s[i] += d;
    q[i] += d * d;
  }
}

// y = max(x * scale + shift (+ residual), 0) over n elements. A NaN stays NaN, as in relu.
template <typename T>
ADVML_INLINE void normaliseReluImpl(const T* __restrict__ x, const T* __restrict__ residual, T* __restrict__ y,
                                    const float* __restrict__ scale, const float* __restrict__ shift, int64_t n) {
  if (residual) {
    for (int64_t i = 0; i < n; ++i) {
      const float v = toFloat(x[i]) * scale[i] + shift[i] + toFloat(residual[i]);
      y[i] = fromFloat<T>(v < 0.f ? 0.f : v);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const float v = toFloat(x[i]) * scale[i] + shift[i];
      y[i] = fromFloat<T>(v < 0.f ? 0.f : v);
    }
  }
}

// The ReLU's gradient: gy where the output y is positive, else 0. Both loads
// are unconditional, so the choice is a vector blend, not a branch.
template <typename T>
ADVML_INLINE float reluGrad(T gy, T y) {
  const float g = toFloat(gy);
  return toFloat(y) <= 0.f ? 0.f : g;
}

// With g = reluGrad(gy, y): over n elements, g and
// g * (x - mean) added into s and d.
template <typename T>
ADVML_INLINE void maskedGradSumsImpl(const T* __restrict__ gy, const T* __restrict__ y, const T* __restrict__ x,
                                     const float* __restrict__ mean, int64_t n, float* __restrict__ s, float* __restrict__ d) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = reluGrad(gy[i], y[i]);
    s[i] += g;
    d[i] += g * (toFloat(x[i]) - mean[i]);
  }
}

// dx = a g + b x + k per channel (batch norm's input gradient, rearranged),
// and the residual's gradient g where asked for. One loop per combination of
// outputs: a store under a condition would keep the loop from vectorising.
template <typename T>
ADVML_INLINE void inputGradImpl(const T* __restrict__ gy, const T* __restrict__ y, const T* __restrict__ x, T* __restrict__ dx,
                                T* __restrict__ dResidual, const float* __restrict__ a, const float* __restrict__ b,
                                const float* __restrict__ k, int64_t n) {
  if (dx && dResidual) {
    for (int64_t i = 0; i < n; ++i) {
      const float g = reluGrad(gy[i], y[i]);
      dx[i] = fromFloat<T>(a[i] * g + b[i] * toFloat(x[i]) + k[i]);
      dResidual[i] = fromFloat<T>(g);
    }
  } else if (dx) {
    for (int64_t i = 0; i < n; ++i) {
      const float g = reluGrad(gy[i], y[i]);
      dx[i] = fromFloat<T>(a[i] * g + b[i] * toFloat(x[i]) + k[i]);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) dResidual[i] = fromFloat<T>(reluGrad(gy[i], y[i]));
  }
}

// The cloned entry points, one per kernel and activation type.
#define ADVML_KERNELS(T)                                                                                              \
  ADVML_VECTOR_CLONES void shiftedSums(const T* x, const float* shift, int64_t n, float* s, float* q) {               \
    shiftedSumsImpl(x, shift, n, s, q);                                                                               \
  }                                                                                                                   \
  ADVML_VECTOR_CLONES void normaliseRelu(const T* x, const T* residual, T* y, const float* scale, const float* shift,  \
                                         int64_t n) {                                                                 \
    normaliseReluImpl(x, residual, y, scale, shift, n);                                                               \
  }                                                                                                                   \
  ADVML_VECTOR_CLONES void maskedGradSums(const T* gy, const T* y, const T* x, const float* mean, int64_t n, float* s, \
                                          float* d) {                                                                 \
    maskedGradSumsImpl(gy, y, x, mean, n, s, d);                                                                      \
  }                                                                                                                   \
  ADVML_VECTOR_CLONES void inputGrad(const T* gy, const T* y, const T* x, T* dx, T* dResidual, const float* a,        \
                                     const float* b, const float* k, int64_t n) {                                     \
    inputGradImpl(gy, y, x, dx, dResidual, a, b, k, n);                                                               \
  }
ADVML_KERNELS(float)
ADVML_KERNELS(uint16_t)
#undef ADVML_KERNELS

// Runs `tileSums(offset, length, sumA, sumB)` (adding into two tile-long float
// buffers) over all tiles in parallel; returns the two sums per channel.
template <typename F>
std::pair<std::vector<double>, std::vector<double>> channelSums(const Tiling& tiling, F tileSums) {
  const int64_t channels = tiling.channels;
  const int threads = at::get_num_threads();
  std::vector<double> sums(static_cast<size_t>(threads) * 2 * channels, 0.0);
  at::parallel_for(0, tiling.tiles, tiling.grain(), [&](int64_t begin, int64_t end) {
    std::vector<float> a(tiling.span), b(tiling.span);
    double* mine = sums.data() + static_cast<size_t>(at::get_thread_num()) * 2 * channels;
    for (int64_t t0 = begin; t0 < end; t0 += kTilesPerBlock) {
      std::fill(a.begin(), a.end(), 0.f);
      std::fill(b.begin(), b.end(), 0.f);
      for (int64_t t = t0; t < std::min(end, t0 + kTilesPerBlock); ++t) tileSums(tiling.offset(t), tiling.length(t), a.data(), b.data());
      for (int64_t r = 0; r < tiling.tileRows; ++r) {
        for (int64_t c = 0; c < channels; ++c) {
          mine[c] += a[r * channels + c];
          mine[channels + c] += b[r * channels + c];
        }
      }
    }
  });
  std::vector<double> a(channels, 0.0), b(channels, 0.0);
  for (int t = 0; t < threads; ++t) {
    const double* part = sums.data() + static_cast<size_t>(t) * 2 * channels;
    for (int64_t c = 0; c < channels; ++c) {
      a[c] += part[c];
      b[c] += part[channels + c];
    }
  }
  return {std::move(a), std::move(b)};
}

// Runs `tileMap(offset, length)` over all tiles in parallel.
template <typename F>
void forEachTile(const Tiling& tiling, F tileMap) {
  at::parallel_for(0, tiling.tiles, tiling.grain(), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) tileMap(tiling.offset(t), tiling.length(t));
  });
}

at::Tensor floatVector(const std::vector<double>& v) {
  at::Tensor t = at::empty({static_cast<int64_t>(v.size())}, at::kFloat);
  std::copy(v.begin(), v.end(), t.data_ptr<float>());
  return t;
}

bool channelsLastActivation(const at::Tensor& t) {
  return t.defined() && t.dim() == 4 && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16) &&
         t.device().is_cpu() && t.is_contiguous(at::MemoryFormat::ChannelsLast);
}

// Calls f(T{}) with T the kernels' type for float32 or bfloat16 activations
// (uint16_t: bfloat16's bits).
template <typename F>
void forActivationType(at::ScalarType type, F f) {
  if (type == at::kBFloat16) f(uint16_t());
  else f(float());
}

// A tensor's elements as the kernels' type; the dtype was checked on entry.
template <typename T>
T* dataOf(const at::Tensor& t) {
  return static_cast<T*>(t.data_ptr());
}

struct BatchNormReluFunction : torch::autograd::Function<BatchNormReluFunction> {
  // The residual is optional, and an absent one is no autograd input: its
  // gradient edge, when present, follows the five tensors before it.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                            at::Tensor runningMean, at::Tensor runningVar, const c10::optional<at::Tensor>& residual,
                            double momentum, double eps) {
    const int64_t channels = x.size(1);
    const int64_t rows = x.numel() / channels;
    TORCH_CHECK(rows > 1, "Expected more than 1 value per channel when training, got input size ", x.sizes());
    const Tiling tiling(rows, channels);
    std::vector<double> mean(channels), var(channels), invstd(channels);
    at::Tensor y = at::empty_like(x, at::MemoryFormat::ChannelsLast);
    forActivationType(x.scalar_type(), [&](auto tag) {
      using T = decltype(tag);
      const T* xp = dataOf<T>(x);
      // Statistics: shifted sums around the first pixel's values.
      std::vector<float> shift(channels);
      for (int64_t c = 0; c < channels; ++c) shift[c] = toFloat(xp[c]);
      const std::vector<float> shifts = tiling.repeat(shift.data());
      auto [sum, sumSq] = channelSums(tiling, [&](int64_t o, int64_t n, float* s, float* q) {
        shiftedSums(xp + o, shifts.data(), n, s, q);
      });
      std::vector<double> scale(channels), offset(channels);
      const float* w = weight.data_ptr<float>();
      const float* bi = bias.data_ptr<float>();
      for (int64_t c = 0; c < channels; ++c) {
        const double m = sum[c] / rows;
        mean[c] = shift[c] + m;
        var[c] = std::max(sumSq[c] / rows - m * m, 0.0);
        invstd[c] = 1.0 / std::sqrt(var[c] + eps);
        scale[c] = w[c] * invstd[c];
        offset[c] = bi[c] - mean[c] * scale[c];
      }
      const T* rp = residual ? dataOf<T>(*residual) : nullptr;
      T* yp = dataOf<T>(y);
      const std::vector<float> scales = tiling.repeat(scale.data()), offsets = tiling.repeat(offset.data());
      forEachTile(tiling, [&](int64_t o, int64_t n) {
        normaliseRelu(xp + o, rp ? rp + o : nullptr, yp + o, scales.data(), offsets.data(), n);
      });
    });

    // Running statistics as at::batch_norm keeps them: the variance unbiased.
    at::Tensor batchMean = floatVector(mean), batchInvstd = floatVector(invstd);
    runningMean.mul_(1 - momentum).add_(batchMean, momentum);
    std::vector<double> unbiased(var);
    for (double& v : unbiased) v *= static_cast<double>(rows) / (rows - 1);
    runningVar.mul_(1 - momentum).add_(floatVector(unbiased), momentum);
    ctx->save_for_backward({x, y, weight, bias, batchMean, batchInvstd});
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["residual"] = residual.has_value();
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &y = saved[1], &weight = saved[2], &bias = saved[3];
    const at::Tensor &mean = saved[4], &invstd = saved[5];
    const bool needX = ctx->needs_input_grad(0), needWeight = ctx->needs_input_grad(1);
    const bool needBias = ctx->needs_input_grad(2);
    const bool needResidual = ctx->saved_data["residual"].toBool() && ctx->needs_input_grad(5);
    variable_list out(8);
    if (at::GradMode::is_enabled()) return differentiableBackward(grads[0], x, y, weight, bias, ctx->saved_data["eps"].toDouble(),
                                                                  needX, needWeight, needBias, needResidual);

    forActivationType(x.scalar_type(), [&](auto tag) {
      using T = decltype(tag);
      backwardKernels<T>(grads[0].to(x.scalar_type()).contiguous(at::MemoryFormat::ChannelsLast), x, y, weight, mean, invstd,
                         needX, needWeight, needBias, needResidual, out);
    });
    return out;
  }

  // The backward pass on activations of type T, filling out[0] (x), out[1]
  // (weight), out[2] (bias) and out[5] (residual) where asked for.
  template <typename T>
  static void backwardKernels(const at::Tensor& gy, const at::Tensor& x, const at::Tensor& y, const at::Tensor& weight,
                              const at::Tensor& mean, const at::Tensor& invstd, bool needX, bool needWeight, bool needBias,
                              bool needResidual, variable_list& out) {
    const int64_t channels = x.size(1);
    const int64_t rows = x.numel() / channels;
    const T *gp = dataOf<T>(gy), *yp = dataOf<T>(y), *xp = dataOf<T>(x);
    const float *mp = mean.data_ptr<float>(), *ip = invstd.data_ptr<float>(), *wp = weight.data_ptr<float>();
    const Tiling tiling(rows, channels);
    const std::vector<float> means = tiling.repeat(mp);
    auto [sumG, sumGx] = channelSums(tiling, [&](int64_t o, int64_t n, float* s, float* d) {
      maskedGradSums(gp + o, yp + o, xp + o, means.data(), n, s, d);
    });
    if (needWeight) {
      std::vector<double> gw(channels);
      for (int64_t c = 0; c < channels; ++c) gw[c] = sumGx[c] * ip[c];
      out[1] = floatVector(gw);
    }
    if (needBias) out[2] = floatVector(sumG);
    if (needX || needResidual) {
      // dx = w invstd (g - sumG / n - (x - mean) invstd^2 sumGx / n) = a g + b x + k.
      std::vector<double> a(channels), b(channels), k(channels);
      for (int64_t c = 0; c < channels; ++c) {
        const double s = static_cast<double>(wp[c]) * ip[c];
        const double slope = static_cast<double>(ip[c]) * ip[c] * sumGx[c] / rows;
        a[c] = s;
        b[c] = -s * slope;
        k[c] = s * (slope * mp[c] - sumG[c] / rows);
      }
      at::Tensor dx = needX ? at::empty_like(x, at::MemoryFormat::ChannelsLast) : at::Tensor();
      at::Tensor dr = needResidual ? at::empty_like(x, at::MemoryFormat::ChannelsLast) : at::Tensor();
      T* dxp = needX ? dataOf<T>(dx) : nullptr;
      T* drp = needResidual ? dataOf<T>(dr) : nullptr;
      const std::vector<float> as = tiling.repeat(a.data()), bs = tiling.repeat(b.data()), ks = tiling.repeat(k.data());
      forEachTile(tiling, [&](int64_t o, int64_t n) {
        inputGrad(gp + o, yp + o, xp + o, dxp ? dxp + o : nullptr, drp ? drp + o : nullptr, as.data(), bs.data(), ks.data(), n);
      });
      out[0] = dx;
      out[5] = dr;
    }
  }

  // Under createGraph the gradient must itself be differentiable: batch norm
  // is run again from the saved input with libtorch's own ops and
  // differentiated through, the ReLU's mask taken from the saved output.
  static variable_list differentiableBackward(const at::Tensor& gy, const at::Tensor& x, const at::Tensor& y,
                                              const at::Tensor& weight, const at::Tensor& bias, double eps, bool needX,
                                              bool needWeight, bool needBias, bool needResidual) {
    at::Tensor g = at::threshold_backward(gy, y, 0);
    variable_list out(8);
    if (needResidual) out[5] = g;
    std::vector<at::Tensor> inputs;
    std::vector<size_t> slots;
    if (needX) inputs.push_back(x), slots.push_back(0);
    if (needWeight) inputs.push_back(weight), slots.push_back(1);
    if (needBias) inputs.push_back(bias), slots.push_back(2);
    if (inputs.empty()) return out;
    at::Tensor z = at::batch_norm(x, weight, bias, {}, {}, true, 0.0, eps, false);
    auto grads = torch::autograd::grad({z}, inputs, {g}, true, true, true);
    for (size_t i = 0; i < slots.size(); ++i) out[slots[i]] = grads[i];
    return out;
  }
};

// batchNormRelu(x, weight, bias, runningMean, runningVar, residual?, momentum, eps):
// relu(batch_norm(x) + residual) in training mode, updating the running
// statistics in place. x (and residual) must be channels-last float32 on the CPU.
Napi::Value batchNormRelu(const Napi::CallbackInfo& info) {
  const at::Tensor& x = tensorAt(info, 0);
  const at::Tensor& weight = tensorAt(info, 1);
  const at::Tensor& bias = tensorAt(info, 2);
  const at::Tensor& runningMean = tensorAt(info, 3);
  const at::Tensor& runningVar = tensorAt(info, 4);
  const c10::optional<at::Tensor> residual = optTensorAt(info, 5);
  TORCH_CHECK(channelsLastActivation(x), "expected a 4-d channels-last float32 or bfloat16 CPU tensor, got ", x.sizes(), " ",
              x.scalar_type());
  TORCH_CHECK(!residual || (channelsLastActivation(*residual) && residual->sizes() == x.sizes() &&
                            residual->scalar_type() == x.scalar_type()),
              "the residual must be a channels-last CPU tensor of the input's size ", x.sizes(), " and type ", x.scalar_type());
  const int64_t channels = x.size(1);
  TORCH_CHECK(channels > 0, "expected at least one channel, got input size ", x.sizes());
  for (const at::Tensor* p : {&weight, &bias, &runningMean, &runningVar}) {
    TORCH_CHECK(p->dim() == 1 && p->size(0) == channels && p->scalar_type() == at::kFloat && p->is_contiguous(),
                "weight, bias and running statistics must be float32 vectors of ", channels, " channels");
  }
  return wrap(info.Env(), BatchNormReluFunction::apply(x, weight, bias, runningMean, runningVar, residual,
                                                       numberAt(info, 6), numberAt(info, 7)));
}

}  // namespace

void initFused(Napi::Env env, Napi::Object exports) { defineOp(env, exports, "batchNormRelu", batchNormRelu); }

}  // namespace advml
