// Autograd: leaf flags, .grad, backward and grad(outputs, inputs).
#include "common.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>

namespace advml {
namespace {

using Info = Napi::CallbackInfo;

// requires_grad_ (not set_requires_grad): it refuses to turn the flag off on a
// non-leaf, which set_requires_grad silently ignored.
Napi::Value setRequiresGrad(const Info& info) {
  tensorAt(info, 0).requires_grad_(boolAt(info, 1));
  return info[0];
}

Napi::Value requiresGrad(const Info& info) {
  return Napi::Boolean::New(info.Env(), tensorAt(info, 0).requires_grad());
}

Napi::Value isLeaf(const Info& info) {
  return Napi::Boolean::New(info.Env(), tensorAt(info, 0).is_leaf());
}

Napi::Value gradFn(const Info& info) {
  const auto& fn = tensorAt(info, 0).grad_fn();
  if (!fn) return info.Env().Null();
  return Napi::String::New(info.Env(), fn->name());
}

// The accumulated gradient of a leaf, as a new handle sharing its storage;
// undefined when none has been computed.
Napi::Value getGrad(const Info& info) {
  return wrap(info.Env(), tensorAt(info, 0).grad());
}

// setGrad(t, g?): the checks PyTorch's .grad setter makes, so that a wrong
// gradient fails here rather than later inside an optimizer or backward().
Napi::Value setGrad(const Info& info) {
  at::Tensor& t = tensorAt(info, 0);
  if (isAbsent(info, 1)) {
    t.mutable_grad() = at::Tensor();
    return info.Env().Undefined();
  }
  const at::Tensor& g = tensorAt(info, 1);
  TORCH_CHECK(g.scalar_type() == t.scalar_type(), "assigned grad has data of a different type (", g.scalar_type(),
              " for a ", t.scalar_type(), " tensor)");
  TORCH_CHECK(g.device() == t.device(), "assigned grad has data located on a different device");
  TORCH_CHECK(g.sizes() == t.sizes(), "assigned grad has data of a different size (", g.sizes(),
              " for a tensor of size ", t.sizes(), ")");
  t.mutable_grad() = g;
  return info.Env().Undefined();
}

// backward(loss, gradient?, retainGraph, createGraph)
Napi::Value backward(const Info& info) {
  at::Tensor& t = tensorAt(info, 0);
  auto gradient = optTensorAt(info, 1);
  t.backward(gradient ? *gradient : at::Tensor(), boolAt(info, 2), boolAt(info, 3));
  return info.Env().Undefined();
}

// grad(outputs, inputs, gradOutputs?, retainGraph, createGraph, allowUnused):
// gradients of the outputs with respect to the inputs only; parameters the
// graph also reaches are left untouched, which is what attacks need.
Napi::Value grad(const Info& info) {
  std::vector<at::Tensor> outputs = tensorListAt(info, 0);
  std::vector<at::Tensor> inputs = tensorListAt(info, 1);
  std::vector<at::Tensor> gradOutputs;
  if (!isAbsent(info, 2)) gradOutputs = tensorListAt(info, 2);
  bool retain = boolAt(info, 3);
  bool create = boolAt(info, 4);
  bool allowUnused = boolAt(info, 5);
  auto grads = torch::autograd::grad(outputs, inputs, gradOutputs, retain, create, allowUnused);
  return wrapList(info.Env(), grads);
}

}  // namespace

void initAutograd(Napi::Env env, Napi::Object exports) {
  defineOp(env, exports, "setRequiresGrad", setRequiresGrad);
  defineOp(env, exports, "requiresGrad", requiresGrad);
  defineOp(env, exports, "isLeaf", isLeaf);
  defineOp(env, exports, "gradFn", gradFn);
  defineOp(env, exports, "getGrad", getGrad);
  defineOp(env, exports, "setGrad", setGrad);
  defineOp(env, exports, "backward", backward);
  defineOp(env, exports, "grad", grad);
}

}  // namespace advml
