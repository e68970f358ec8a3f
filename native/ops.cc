// The op table: each op reads its arguments and calls one at:: function.
// Argument order follows the ATen signature; optional arguments may be
// undefined or null. No policy lives here: defaults are chosen in TypeScript.
#include "common.h"

namespace advml {
namespace {

using Info = Napi::CallbackInfo;
#define T(i) tensorAt(info, i)
#define TS(i) tensorOrScalarAt(info, i)
#define OT(i) optTensorAt(info, i)
#define N(i) numberAt(info, i)
#define S(i) scalarAt(info, i)
#define I(i) intAt(info, i)
#define B(i) boolAt(info, i)
#define IL(i) intListAt(info, i)
#define R(expr) return wrap(info.Env(), (expr))
#define OP(name, expr) \
  Napi::Value op_##name(const Info& info) { R(expr); }

at::TensorOptions optionsAt(const Info& info, size_t dtypeIdx, size_t deviceIdx) {
  return at::TensorOptions().dtype(dtypeAt(info, dtypeIdx)).device(deviceAt(info, deviceIdx));
}

at::MemoryFormat memoryFormatAt(const Info& info, size_t i) {
  if (isAbsent(info, i)) return at::MemoryFormat::Contiguous;
  return B(i) ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
}

// ---- elementwise, binary (tensor or number on the right) ----
// alpha is an integer Scalar when integral: libtorch rejects a floating alpha
// for integer tensors, so a double 1.0 default broke int64 + int64.
at::Scalar alphaAt(const Info& info, size_t i) { return isAbsent(info, i) ? at::Scalar(int64_t{1}) : S(i); }
OP(add, at::add(T(0), TS(1), alphaAt(info, 2)))
OP(sub, at::sub(T(0), TS(1), alphaAt(info, 2)))
OP(mul, at::mul(T(0), TS(1)))
OP(div, at::div(T(0), TS(1)))
// A number exponent goes to pow(Tensor, Scalar), as in PyTorch: an integer
// tensor to a negative integer power is then refused, not truncated to 0.
Napi::Value op_pow(const Info& info) {
  if (info.Length() > 1 && info[1].IsNumber()) R(at::pow(T(0), S(1)));
  R(at::pow(T(0), TS(1)));
}
OP(maximum, at::maximum(T(0), TS(1)))
OP(minimum, at::minimum(T(0), TS(1)))
OP(eq, at::eq(T(0), TS(1)))
OP(ne, at::ne(T(0), TS(1)))
OP(lt, at::lt(T(0), TS(1)))
OP(le, at::le(T(0), TS(1)))
OP(gt, at::gt(T(0), TS(1)))
OP(ge, at::ge(T(0), TS(1)))
OP(logicalAnd, at::logical_and(T(0), TS(1)))
OP(logicalOr, at::logical_or(T(0), TS(1)))
// where(cond, a, b): a and b are brought to their common type first, since
// libtorch 1.13's kernel asserts when given a wrapped number of another type.
// Two numbers give the default dtype when either is fractional, as in PyTorch.
Napi::Value op_where(const Info& info) {
  at::Tensor a = TS(1), b = TS(2);
  bool numbers = a.unsafeGetTensorImpl()->is_wrapped_number() && b.unsafeGetTensorImpl()->is_wrapped_number();
  at::ScalarType rt = at::result_type(a, b);
  if (numbers && at::isFloatingType(rt)) rt = at::typeMetaToScalarType(at::get_default_dtype());
  R(at::where(T(0), a.to(rt), b.to(rt)));
}
OP(remainder, at::remainder(T(0), TS(1)))

// ---- elementwise, unary ----
OP(neg, at::neg(T(0)))
OP(abs, at::abs(T(0)))
OP(exp, at::exp(T(0)))
OP(log, at::log(T(0)))
OP(log1p, at::log1p(T(0)))
OP(sqrt, at::sqrt(T(0)))
OP(rsqrt, at::rsqrt(T(0)))
OP(square, at::square(T(0)))
OP(reciprocal, at::reciprocal(T(0)))
OP(sign, at::sign(T(0)))
OP(floor, at::floor(T(0)))
OP(ceil, at::ceil(T(0)))
OP(round, at::round(T(0)))
OP(erf, at::erf(T(0)))
OP(erfinv, at::erfinv(T(0)))
OP(sin, at::sin(T(0)))
OP(cos, at::cos(T(0)))
OP(logicalNot, at::logical_not(T(0)))
OP(isnan, at::isnan(T(0)))
OP(isfinite, at::isfinite(T(0)))
OP(relu, at::relu(T(0)))
OP(sigmoid, at::sigmoid(T(0)))
OP(tanh, at::tanh(T(0)))
OP(hardtanh, at::hardtanh(T(0), N(1), N(2)))
OP(leakyRelu, at::leaky_relu(T(0), N(1)))
OP(elu, at::elu(T(0), N(1)))
OP(softplus, at::softplus(T(0), N(1), N(2)))
// clamp(x, min, max): each bound a number, a tensor (broadcast) or absent.
Napi::Value op_clamp(const Info& info) {
  if ((isAbsent(info, 1) || info[1].IsNumber()) && (isAbsent(info, 2) || info[2].IsNumber())) {
    c10::optional<at::Scalar> lo, hi;
    if (!isAbsent(info, 1)) lo = S(1);
    if (!isAbsent(info, 2)) hi = S(2);
    R(at::clamp(T(0), lo, hi));
  }
  c10::optional<at::Tensor> lo, hi;
  if (!isAbsent(info, 1)) lo = TS(1);
  if (!isAbsent(info, 2)) hi = TS(2);
  R(at::clamp(T(0), lo, hi));
}

// ---- reductions; dims absent means all ----
// Every dimension of t, so that keepDim is honoured when reducing over all.
std::vector<int64_t> allDims(const at::Tensor& t) {
  std::vector<int64_t> d(t.dim());
  for (int64_t k = 0; k < t.dim(); k++) d[k] = k;
  return d;
}
Napi::Value op_sum(const Info& info) {
  auto dt = optDtypeAt(info, 3);
  if (isAbsent(info, 1)) {
    if (!B(2)) R(at::sum(T(0), dt));
    R(at::sum(T(0), allDims(T(0)), true, dt));
  }
  R(at::sum(T(0), IL(1), B(2), dt));
}
Napi::Value op_mean(const Info& info) {
  if (isAbsent(info, 1)) {
    if (!B(2)) R(at::mean(T(0)));
    R(at::mean(T(0), allDims(T(0)), true));
  }
  R(at::mean(T(0), IL(1), B(2)));
}
Napi::Value op_amax(const Info& info) { R(at::amax(T(0), isAbsent(info, 1) ? std::vector<int64_t>{} : IL(1), B(2))); }
Napi::Value op_amin(const Info& info) { R(at::amin(T(0), isAbsent(info, 1) ? std::vector<int64_t>{} : IL(1), B(2))); }
Napi::Value op_var(const Info& info) {
  c10::optional<at::IntArrayRef> dims;
  std::vector<int64_t> d;
  if (!isAbsent(info, 1)) { d = IL(1); dims = d; }
  R(at::var(T(0), dims, I(2), B(3)));
}
Napi::Value op_std(const Info& info) {
  c10::optional<at::IntArrayRef> dims;
  std::vector<int64_t> d;
  if (!isAbsent(info, 1)) { d = IL(1); dims = d; }
  R(at::std(T(0), dims, I(2), B(3)));
}
Napi::Value op_norm(const Info& info) {
  double p = N(1);
  if (isAbsent(info, 2)) {
    if (!B(3)) R(at::norm(T(0), p));
    R(at::norm(T(0), p, allDims(T(0)), true));
  }
  R(at::norm(T(0), p, IL(2), B(3)));
}
Napi::Value op_logsumexp(const Info& info) { R(at::logsumexp(T(0), IL(1), B(2))); }
Napi::Value op_argmax(const Info& info) {
  c10::optional<int64_t> dim;
  if (!isAbsent(info, 1)) dim = I(1);
  R(at::argmax(T(0), dim, B(2)));
}
Napi::Value op_argmin(const Info& info) {
  c10::optional<int64_t> dim;
  if (!isAbsent(info, 1)) dim = I(1);
  R(at::argmin(T(0), dim, B(2)));
}
Napi::Value op_topk(const Info& info) {
  auto r = at::topk(T(0), I(1), I(2), B(3), B(4));
  return wrapList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}
Napi::Value op_sort(const Info& info) {
  auto r = at::sort(T(0), I(1), B(2));
  return wrapList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}
Napi::Value op_all(const Info& info) { R(at::all(T(0))); }
Napi::Value op_any(const Info& info) { R(at::any(T(0))); }
Napi::Value op_cumsum(const Info& info) { R(at::cumsum(T(0), I(1))); }

// ---- linear algebra and network layers ----
OP(matmul, at::matmul(T(0), T(1)))
OP(linear, at::linear(T(0), T(1), OT(2)))
OP(conv2d, at::conv2d(T(0), T(1), OT(2), IL(3), IL(4), IL(5), I(6)))
OP(maxPool2d, at::max_pool2d(T(0), IL(1), IL(2), IL(3), IL(4), B(5)))
OP(avgPool2d, at::avg_pool2d(T(0), IL(1), IL(2), IL(3), B(4), B(5)))
OP(adaptiveAvgPool2d, at::adaptive_avg_pool2d(T(0), IL(1)))
// convTranspose2d(x, weight [C_in, C_out/groups, kH, kW], bias, stride, padding, outputPadding, groups, dilation)
OP(convTranspose2d, at::conv_transpose2d(T(0), T(1), OT(2), IL(3), IL(4), IL(5), I(6), IL(7)))
// reflectionPad2d / replicationPad2d(x, [left, right, top, bottom]): 3-d or 4-d input.
OP(reflectionPad2d, at::reflection_pad2d(T(0), IL(1)))
OP(replicationPad2d, at::replication_pad2d(T(0), IL(1)))
// pad(x, [left, right, top, bottom, ...] from the last dimension back, value): constant padding.
OP(pad, at::constant_pad_nd(T(0), IL(1), N(2)))
// batchNorm(x, weight, bias, runningMean, runningVar, training, momentum, eps):
// in training mode the running statistics are updated in place.
OP(batchNorm, at::batch_norm(T(0), OT(1), OT(2), OT(3), OT(4), B(5), N(6), N(7), true))
OP(dropout, at::dropout(T(0), N(1), B(2)))
OP(softmax, at::softmax(T(0), I(1)))
// gelu(x, tanhApproximation)
OP(gelu, at::gelu(T(0), B(1) ? "tanh" : "none"))
OP(hardswish, at::hardswish(T(0)))
OP(hardsigmoid, at::hardsigmoid(T(0)))
OP(logSoftmax, at::log_softmax(T(0), I(1)))
// crossEntropy(logits, target, weight, reduction 0 none|1 mean|2 sum, ignoreIndex, labelSmoothing)
OP(crossEntropy, at::cross_entropy_loss(T(0), T(1), OT(2), I(3), I(4), N(5)))
OP(nllLoss, at::nll_loss(T(0), T(1), OT(2), I(3), I(4)))
OP(mseLoss, at::mse_loss(T(0), T(1), I(2)))
OP(klDiv, at::kl_div(T(0), T(1), I(2), B(3)))
OP(oneHot, at::one_hot(T(0), I(1)))

// ---- shape, layout, indexing ----
OP(reshape, at::reshape(T(0), IL(1)))
OP(permute, T(0).permute(IL(1)))
OP(transpose, at::transpose(T(0), I(1), I(2)))
OP(flatten, at::flatten(T(0), I(1), I(2)))
OP(unsqueeze, at::unsqueeze(T(0), I(1)))
OP(expand, T(0).expand(IL(1)))
OP(repeat, T(0).repeat(IL(1)))
OP(flip, at::flip(T(0), IL(1)))
Napi::Value op_squeeze(const Info& info) {
  if (isAbsent(info, 1)) R(at::squeeze(T(0)));
  R(at::squeeze(T(0), I(1)));
}
OP(contiguous, T(0).contiguous(memoryFormatAt(info, 1)))
// A copy laid out exactly in the memory format, size-1 dims included (PyTorch's
// t.to(memory_format=...)): contiguous() keeps NCHW strides for a [N, 1, H, W]
// tensor, which then steers convolutions away from channels-last.
OP(copyInFormat, T(0).to(T(0).options(), false, true, memoryFormatAt(info, 1)))
OP(cat, at::cat(tensorListAt(info, 0), I(1)))
OP(stack, at::stack(tensorListAt(info, 0), I(1)))
OP(narrow, at::narrow(T(0), I(1), I(2), I(3)))
OP(select, at::select(T(0), I(1), I(2)))
OP(slice, at::slice(T(0), I(1), I(2), I(3), I(4)))
OP(indexSelect, at::index_select(T(0), I(1), T(2)))
OP(gather, at::gather(T(0), I(1), T(2)))
OP(scatter, at::scatter(T(0), I(1), T(2), T(3)))
// Rows `index` of a copy of the tensor replaced by `source`: attacks merge back the images still being attacked.
OP(indexCopy, at::index_copy(T(0), I(1), T(2), T(3)))
// libtorch 1.13 reads a non-bool mask's bytes as booleans (a float mask of
// ones filled nothing); later versions refuse it, and so do we.
Napi::Value op_maskedFill(const Info& info) {
  const at::Tensor& mask = T(1);
  TORCH_CHECK(mask.scalar_type() == at::kBool, "masked_fill only supports boolean masks, but got mask with dtype ",
              mask.scalar_type());
  R(at::masked_fill(T(0), mask, N(2)));
}
OP(maskedSelect, at::masked_select(T(0), T(1)))
Napi::Value op_chunk(const Info& info) { return wrapList(info.Env(), at::chunk(T(0), I(1), I(2))); }
Napi::Value op_split(const Info& info) { return wrapList(info.Env(), at::split_with_sizes(T(0), IL(1), I(2))); }

// ---- dtype, device, copies ----
OP(toDtype, T(0).to(dtypeAt(info, 1)))
OP(toDevice, T(0).to(deviceAt(info, 1)))
OP(clone, T(0).clone(at::MemoryFormat::Preserve))
OP(detach, T(0).detach())

// ---- in place (optimizers, buffers); each returns its first argument ----
Napi::Value op_add_(const Info& info) { T(0).add_(TS(1), alphaAt(info, 2)); return info[0]; }
Napi::Value op_mul_(const Info& info) { T(0).mul_(TS(1)); return info[0]; }
Napi::Value op_div_(const Info& info) { T(0).div_(TS(1)); return info[0]; }
Napi::Value op_addcmul_(const Info& info) { T(0).addcmul_(T(1), T(2), N(3)); return info[0]; }
Napi::Value op_addcdiv_(const Info& info) { T(0).addcdiv_(T(1), T(2), N(3)); return info[0]; }
Napi::Value op_lerp_(const Info& info) { T(0).lerp_(T(1), N(2)); return info[0]; }
Napi::Value op_copy_(const Info& info) { T(0).copy_(T(1)); return info[0]; }
Napi::Value op_zero_(const Info& info) { T(0).zero_(); return info[0]; }
Napi::Value op_fill_(const Info& info) { T(0).fill_(N(1)); return info[0]; }
Napi::Value op_clampInPlace_(const Info& info) { T(0).clamp_(OT(1), OT(2)); return info[0]; }
Napi::Value op_uniform_(const Info& info) { T(0).uniform_(N(1), N(2), optGeneratorAt(info, 3)); return info[0]; }
Napi::Value op_normal_(const Info& info) { T(0).normal_(N(1), N(2), optGeneratorAt(info, 3)); return info[0]; }
// setData(param, value): swaps a parameter's storage (layout or dtype change)
// while keeping its identity and autograd leaf status.
Napi::Value op_setData(const Info& info) { T(0).set_data(T(1)); return info[0]; }

// ---- creation ----
OP(zeros, at::zeros(IL(0), optionsAt(info, 1, 2)))
OP(ones, at::ones(IL(0), optionsAt(info, 1, 2)))
OP(full, at::full(IL(0), N(1), optionsAt(info, 2, 3)))
OP(empty, at::empty(IL(0), optionsAt(info, 1, 2)))
OP(arange, at::arange(N(0), N(1), N(2), optionsAt(info, 3, 4)))
OP(linspace, at::linspace(N(0), N(1), I(2), optionsAt(info, 3, 4)))
OP(eye, at::eye(I(0), optionsAt(info, 1, 2)))
OP(zerosLike, at::zeros_like(T(0)))
OP(onesLike, at::ones_like(T(0)))
OP(rand, at::rand(IL(0), optGeneratorAt(info, 3), optionsAt(info, 1, 2)))
OP(randn, at::randn(IL(0), optGeneratorAt(info, 3), optionsAt(info, 1, 2)))
OP(randint, at::randint(I(0), I(1), IL(2), optGeneratorAt(info, 5), optionsAt(info, 3, 4)))
OP(randperm, at::randperm(I(0), optGeneratorAt(info, 3), optionsAt(info, 1, 2)))
OP(bernoulli, at::bernoulli(T(0), optGeneratorAt(info, 1)))
OP(multinomial, at::multinomial(T(0), I(1), B(2), optGeneratorAt(info, 3)))

#undef OP

}  // namespace

void initOps(Napi::Env env, Napi::Object exports) {
#define REG(name) defineOp(env, exports, #name, op_##name)
  REG(add); REG(sub); REG(mul); REG(div); REG(pow); REG(maximum); REG(minimum);
  REG(eq); REG(ne); REG(lt); REG(le); REG(gt); REG(ge); REG(logicalAnd); REG(logicalOr);
  REG(where); REG(remainder);
  REG(neg); REG(abs); REG(exp); REG(log); REG(log1p); REG(sqrt); REG(rsqrt); REG(square);
  REG(reciprocal); REG(sign); REG(floor); REG(ceil); REG(round); REG(erf); REG(erfinv);
  REG(sin); REG(cos); REG(logicalNot); REG(isnan); REG(isfinite); REG(relu); REG(sigmoid);
  REG(tanh); REG(hardtanh); REG(leakyRelu); REG(elu); REG(softplus); REG(clamp);
  REG(sum); REG(mean); REG(amax); REG(amin); REG(var); REG(std); REG(norm); REG(logsumexp);
  REG(argmax); REG(argmin); REG(topk); REG(sort); REG(all); REG(any); REG(cumsum);
  REG(matmul); REG(linear); REG(conv2d); REG(maxPool2d); REG(avgPool2d); REG(adaptiveAvgPool2d); REG(pad);
  REG(convTranspose2d); REG(reflectionPad2d); REG(replicationPad2d); REG(gelu); REG(hardswish); REG(hardsigmoid);
  REG(batchNorm); REG(dropout); REG(softmax); REG(logSoftmax); REG(crossEntropy); REG(nllLoss);
  REG(mseLoss); REG(klDiv); REG(oneHot);
  REG(reshape); REG(permute); REG(transpose); REG(flatten); REG(unsqueeze); REG(expand);
  REG(repeat); REG(flip); REG(squeeze); REG(contiguous); REG(copyInFormat); REG(cat); REG(stack); REG(narrow);
  REG(select); REG(slice); REG(indexSelect); REG(gather); REG(scatter); REG(indexCopy); REG(maskedFill);
  REG(maskedSelect); REG(chunk); REG(split);
  REG(toDtype); REG(toDevice); REG(clone); REG(detach);
  REG(add_); REG(mul_); REG(div_); REG(addcmul_); REG(addcdiv_); REG(lerp_); REG(copy_);
  REG(zero_); REG(fill_); REG(clampInPlace_); REG(uniform_); REG(normal_); REG(setData);
  REG(zeros); REG(ones); REG(full); REG(empty); REG(arange); REG(linspace); REG(eye);
  REG(zerosLike); REG(onesLike); REG(rand); REG(randn); REG(randint); REG(randperm);
  REG(bernoulli); REG(multinomial);
#undef REG
}

}  // namespace advml
