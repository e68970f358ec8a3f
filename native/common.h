// Shared plumbing of the addon: how tensors cross into JavaScript, how
// arguments are read, and how every op is registered behind one error guard.
#pragma once

#include <napi.h>
#include <ATen/ATen.h>


#include <stdexcept>
#include <string>
#include <vector>

namespace advml {

// A JavaScript tensor handle is a Napi::External pointing at a Holder. The
// External has no Node-API finalizer: Node runs those only when the event loop
// turns, so a synchronous loop of scoped steps piled up every disposed
// handle's bookkeeping (~65 bytes a tensor) until it returned. Instead
// `dispose` frees the storage and deletes the Holder at once, the Tensor class
// then holds the shared disposed handle, and a FinalizationRegistry in
// src/engine/tensor.ts disposes tensors that are collected undisposed.
struct Holder {
  at::Tensor t;
  int64_t bytes = 0;
};

// Thrown by argument readers; the guard prefixes the op's name.
struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using OpFn = Napi::Value (*)(const Napi::CallbackInfo&);

// Registers `fn` as exports[name]; libtorch and argument errors thrown inside
// become JavaScript Errors whose message starts with the op's name.
void defineOp(Napi::Env env, Napi::Object exports, const char* name, OpFn fn);

Napi::Value wrap(Napi::Env env, at::Tensor t);
Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& ts);
void release(Napi::Env env, Holder* h);

// Argument readers. Each names the argument position in its error.
at::Tensor& tensorAt(const Napi::CallbackInfo& info, size_t i);
c10::optional<at::Tensor> optTensorAt(const Napi::CallbackInfo& info, size_t i);
// A tensor, or a JavaScript number turned into a 0-dim "wrapped number" tensor
// so type promotion treats it as PyTorch treats a Python scalar.
at::Tensor tensorOrScalarAt(const Napi::CallbackInfo& info, size_t i);
std::vector<at::Tensor> tensorListAt(const Napi::CallbackInfo& info, size_t i);
double numberAt(const Napi::CallbackInfo& info, size_t i);
// A JavaScript number as a Scalar: an integer Scalar when the value is an
// integer (as a Python int), else a double, so that int64 tensors stay int64
// under `x + 1` and `alpha` checks accept integral tensors.
at::Scalar scalarAt(const Napi::CallbackInfo& info, size_t i);
int64_t intAt(const Napi::CallbackInfo& info, size_t i);
bool boolAt(const Napi::CallbackInfo& info, size_t i);
std::vector<int64_t> intListAt(const Napi::CallbackInfo& info, size_t i);
c10::optional<std::vector<int64_t>> optIntListAt(const Napi::CallbackInfo& info, size_t i);
at::ScalarType dtypeAt(const Napi::CallbackInfo& info, size_t i);
c10::optional<at::ScalarType> optDtypeAt(const Napi::CallbackInfo& info, size_t i);
at::Device deviceAt(const Napi::CallbackInfo& info, size_t i);
c10::optional<at::Generator> optGeneratorAt(const Napi::CallbackInfo& info, size_t i);
bool isAbsent(const Napi::CallbackInfo& info, size_t i);

void initCore(Napi::Env env, Napi::Object exports);
void initOps(Napi::Env env, Napi::Object exports);
void initAutograd(Napi::Env env, Napi::Object exports);
// Fused training-mode batch norm + residual + ReLU (native/fused.cc).
void initFused(Napi::Env env, Napi::Object exports);
// Process groups and collectives on c10d (native/distributed.cc).
void initDistributed(Napi::Env env, Napi::Object exports);
// TorchScript modules through libtorch's JIT (native/jit.cc).
void initJit(Napi::Env env, Napi::Object exports);
// JPEG decode + crop + PIL-style bilinear resize on libuv's pool (native/jpeg.cc).
void initJpeg(Napi::Env env, Napi::Object exports);

}  // namespace advml
