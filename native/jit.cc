// TorchScript modules (torch.jit.save of a scripted or traced module) loaded
// with libtorch's own JIT. The module's parameters and buffers are handed to
// JavaScript as ordinary tensor handles that share their TensorImpl with the
// module, so advml's optimizers, state dicts and collectives update the very
// tensors the JIT runs on.
#include "common.h"

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/csrc/jit/serialization/import.h>

#include <sstream>

namespace advml {
namespace {

using Info = Napi::CallbackInfo;

// A loaded module, tagged so that another kind of handle is refused by name.
struct Script {
  static constexpr uint64_t kTag = 0x5343524950544a31ull;  // "SCRIPTJ1"
  uint64_t tag = kTag;
  torch::jit::Module module;
};

Script& scriptAt(const Info& info, size_t i) {
  if (i >= info.Length() || !info[i].IsExternal()) throw ArgError("argument " + std::to_string(i) + " must be a TorchScript module handle");
  auto* s = info[i].As<Napi::External<Script>>().Data();
  if (s == nullptr || s->tag != Script::kTag) throw ArgError("argument " + std::to_string(i) + " is not a TorchScript module handle");
  if (!s->module._ivalue()) throw ArgError("the TorchScript module has been freed");
  return *s;
}

// jitLoad(bytes): the module from the bytes of a .pt file (the caller reads
// the file, so size and file-type checks live in one place in TypeScript).
Napi::Value jitLoad(const Info& info) {
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw ArgError("argument 0 must be a Uint8Array");
  auto bytes = info[0].As<Napi::Uint8Array>();
  std::string data(reinterpret_cast<const char*>(bytes.Data()), bytes.ByteLength());
  std::istringstream in(data);
  auto* s = new Script();
  try {
    s->module = torch::jit::load(in, at::kCPU);
  } catch (...) {
    delete s;
    throw;
  }
  return Napi::External<Script>::New(info.Env(), s, [](Napi::Env, Script* p) { delete p; });
}

// jitFree(handle): releases the module now (the finalizer is the safety net).
Napi::Value jitFree(const Info& info) {
  scriptAt(info, 0).module = torch::jit::Module();
  return info.Env().Undefined();
}

Napi::Value namedList(const Info& info, bool parameters) {
  Script& s = scriptAt(info, 0);
  Napi::Array out = Napi::Array::New(info.Env());
  uint32_t k = 0;
  auto add = [&](const std::string& name, const at::Tensor& t) {
    Napi::Array pair = Napi::Array::New(info.Env(), 2);
    pair.Set(uint32_t{0}, Napi::String::New(info.Env(), name));
    pair.Set(uint32_t{1}, wrap(info.Env(), t));
    out.Set(k++, pair);
  };
  if (parameters) {
    for (const auto& p : s.module.named_parameters(true)) add(p.name, p.value);
  } else {
    for (const auto& b : s.module.named_buffers(true)) add(b.name, b.value);
  }
  return out;
}

// jitParameters(handle) / jitBuffers(handle): [name, tensor] pairs with
// PyTorch's dotted names; the tensors are the module's own.
Napi::Value jitParameters(const Info& info) { return namedList(info, true); }
Napi::Value jitBuffers(const Info& info) { return namedList(info, false); }

// jitTrain(handle, on): module.train(on) on every submodule.
Napi::Value jitTrain(const Info& info) {
  scriptAt(info, 0).module.train(boolAt(info, 1));
  return info.Env().Undefined();
}

// jitForward(handle, x): forward(x). A tuple or list output gives its first
// tensor (the logits of models with auxiliary heads); a dict is refused.
Napi::Value jitForward(const Info& info) {
  Script& s = scriptAt(info, 0);
  c10::IValue out = s.module.forward({tensorAt(info, 1)});
  if (out.isTensor()) return wrap(info.Env(), out.toTensor());
  if (out.isTuple()) {
    const auto& elems = out.toTupleRef().elements();
    if (!elems.empty() && elems[0].isTensor()) return wrap(info.Env(), elems[0].toTensor());
  }
  if (out.isList()) {
    auto list = out.toList();
    if (list.size() > 0 && list.get(0).isTensor()) return wrap(info.Env(), list.get(0).toTensor());
  }
  throw ArgError("forward returned " + out.tagKind() + ", expected a tensor or a tuple whose first element is a tensor");
}

// jitSave(handle): the bytes of the module in torch.jit.save's format, for
// the caller to write atomically.
Napi::Value jitSave(const Info& info) {
  std::ostringstream out;
  scriptAt(info, 0).module.save(out);
  const std::string bytes = out.str();
  return Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

// jitFreeze(handle): a frozen copy for inference (torch.jit.freeze: weights
// become constants, batch norm folded into the convolution before it, dropout
// removed). The module must be in eval mode. Input gradients still flow.
Napi::Value jitFreeze(const Info& info) {
  Script& s = scriptAt(info, 0);
  auto* frozen = new Script();
  try {
    frozen->module = torch::jit::freeze(s.module);
  } catch (...) {
    delete frozen;
    throw;
  }
  return Napi::External<Script>::New(info.Env(), frozen, [](Napi::Env, Script* p) { delete p; });
}

// jitMethods(handle): names of the module's methods (forward must be among them).
Napi::Value jitMethods(const Info& info) {
  Script& s = scriptAt(info, 0);
  Napi::Array out = Napi::Array::New(info.Env());
  uint32_t k = 0;
  for (const auto& m : s.module.get_methods()) out.Set(k++, Napi::String::New(info.Env(), m.name()));
  return out;
}

}  // namespace

void initJit(Napi::Env env, Napi::Object exports) {
  // The profiling executor re-specialises a graph on its first calls and
  // whenever shapes or grad flags change (attacks switch between both); the
  // simple executor runs each graph as saved, op by op, as eager PyTorch would.
  torch::jit::getProfilingMode() = false;
  torch::jit::getExecutorMode() = false;
  defineOp(env, exports, "jitLoad", jitLoad);
  defineOp(env, exports, "jitFree", jitFree);
  defineOp(env, exports, "jitParameters", jitParameters);
  defineOp(env, exports, "jitBuffers", jitBuffers);
  defineOp(env, exports, "jitTrain", jitTrain);
  defineOp(env, exports, "jitForward", jitForward);
  defineOp(env, exports, "jitSave", jitSave);
  defineOp(env, exports, "jitMethods", jitMethods);
  defineOp(env, exports, "jitFreeze", jitFreeze);
}

}  // namespace advml
