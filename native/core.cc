// Tensor handles, argument readers, data in and out, and process-wide settings.
#include "allocator.h"
#include "common.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>
#include <torch/version.h>

#include <dlfcn.h>
#include <malloc.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <cstdlib>

namespace advml {

namespace {

std::atomic<int64_t> liveTensors{0};
std::atomic<int64_t> liveBytes{0};
// What every disposed tensor's handle points at: its tensor is undefined, so
// ops given it report "argument i is a disposed tensor". Never deleted.
Holder disposedHolder;
const char* const kDisposed = " is a disposed tensor (freed by dispose() or by the scope() that made it)";

struct OpEntry {
  const char* name;
  OpFn fn;
};

Napi::Value guarded(const Napi::CallbackInfo& info) {
  auto* op = static_cast<OpEntry*>(info.Data());
  std::string message;
  try {
    return op->fn(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    message = e.what_without_backtrace();
  } catch (const std::exception& e) {
    message = e.what();
  } catch (...) {
    message = "unknown native error";
  }
  Napi::Error err = Napi::Error::New(info.Env(), std::string(op->name) + ": " + message);
  err.Set("op", Napi::String::New(info.Env(), op->name));
  throw err;
}

std::string position(size_t i) { return "argument " + std::to_string(i); }

int64_t storageBytes(const at::Tensor& t) {
  if (!t.defined() || !t.has_storage()) return 0;
  return static_cast<int64_t>(t.storage().nbytes());
}

// What a JavaScript value is, for argument errors.
std::string kindOf(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || info[i].IsUndefined()) return "undefined";
  Napi::Value v = info[i];
  if (v.IsNull()) return "null";
  if (v.IsString()) return "a string";
  if (v.IsNumber()) return "a number";
  if (v.IsBoolean()) return "a boolean";
  if (v.IsArray()) return "an array";
  if (v.IsFunction()) return "a function";
  if (v.IsExternal()) return "a native handle";
  return "an object";
}

at::Scalar toScalar(double v) {
  // Integers exactly representable in a double become integer Scalars; -0
  // keeps its sign as a double.
  if (std::trunc(v) == v && std::abs(v) <= 9007199254740992.0 && !(v == 0 && std::signbit(v))) {
    return at::Scalar(static_cast<int64_t>(v));
  }
  return at::Scalar(v);
}

Holder* holderAt(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsExternal()) {
    throw ArgError(position(i) + " must be a tensor, got " + kindOf(info, i));
  }
  return info[i].As<Napi::External<Holder>>().Data();
}

}  // namespace

void defineOp(Napi::Env env, Napi::Object exports, const char* name, OpFn fn) {
  auto* entry = new OpEntry{name, fn};  // lives as long as the process
  exports.Set(name, Napi::Function::New(env, guarded, name, entry));
}

void release(Napi::Env env, Holder* h) {
  if (!h->t.defined()) return;
  h->t = at::Tensor();
  liveTensors--;
  liveBytes -= h->bytes;
  Napi::MemoryManagement::AdjustExternalMemory(env, -h->bytes);
}

Napi::Value wrap(Napi::Env env, at::Tensor t) {
  if (!t.defined()) return env.Undefined();
  auto* h = new Holder{std::move(t), 0};
  h->bytes = storageBytes(h->t);
  liveTensors++;
  liveBytes += h->bytes;
  if (h->bytes) Napi::MemoryManagement::AdjustExternalMemory(env, h->bytes);
  return Napi::External<Holder>::New(env, h);
}

Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& ts) {
  Napi::Array out = Napi::Array::New(env, ts.size());
  for (size_t i = 0; i < ts.size(); i++) out.Set(i, wrap(env, ts[i]));
  return out;
}

bool isAbsent(const Napi::CallbackInfo& info, size_t i) {
  return i >= info.Length() || info[i].IsUndefined() || info[i].IsNull();
}

at::Tensor& tensorAt(const Napi::CallbackInfo& info, size_t i) {
  Holder* h = holderAt(info, i);
  if (!h->t.defined()) {
    throw ArgError(position(i) + kDisposed);
  }
  return h->t;
}

c10::optional<at::Tensor> optTensorAt(const Napi::CallbackInfo& info, size_t i) {
  if (isAbsent(info, i)) return c10::nullopt;
  return tensorAt(info, i);
}

at::Tensor tensorOrScalarAt(const Napi::CallbackInfo& info, size_t i) {
  if (i < info.Length() && info[i].IsNumber()) {
    at::Tensor t = at::scalar_to_tensor(toScalar(info[i].As<Napi::Number>().DoubleValue()));
    t.unsafeGetTensorImpl()->set_wrapped_number(true);
    return t;
  }
  if (i < info.Length() && info[i].IsBoolean()) {
    at::Tensor t = at::scalar_to_tensor(at::Scalar(info[i].As<Napi::Boolean>().Value()));
    t.unsafeGetTensorImpl()->set_wrapped_number(true);
    return t;
  }
  if (i >= info.Length() || !info[i].IsExternal()) {
    throw ArgError(position(i) + " must be a tensor or a number, got " + kindOf(info, i));
  }
  return tensorAt(info, i);
}

std::vector<at::Tensor> tensorListAt(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsArray()) throw ArgError(position(i) + " must be an array of tensors");
  Napi::Array arr = info[i].As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value v = arr.Get(k);
    if (!v.IsExternal()) throw ArgError(position(i) + "[" + std::to_string(k) + "] must be a tensor");
    Holder* h = v.As<Napi::External<Holder>>().Data();
    if (!h->t.defined()) throw ArgError(position(i) + "[" + std::to_string(k) + "]" + kDisposed);
    out.push_back(h->t);
  }
  return out;
}

double numberAt(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsNumber()) throw ArgError(position(i) + " must be a number, got " + kindOf(info, i));
  return info[i].As<Napi::Number>().DoubleValue();
}

at::Scalar scalarAt(const Napi::CallbackInfo& info, size_t i) { return toScalar(numberAt(info, i)); }

int64_t intAt(const Napi::CallbackInfo& info, size_t i) {
  double v = numberAt(info, i);
  if (v != static_cast<double>(static_cast<int64_t>(v))) {
    throw ArgError(position(i) + " must be an integer, got " + std::to_string(v));
  }
  return static_cast<int64_t>(v);
}

bool boolAt(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsBoolean()) throw ArgError(position(i) + " must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

std::vector<int64_t> intListAt(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsArray()) throw ArgError(position(i) + " must be an array of integers");
  Napi::Array arr = info[i].As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value v = arr.Get(k);
    if (!v.IsNumber()) throw ArgError(position(i) + "[" + std::to_string(k) + "] must be an integer");
    double d = v.As<Napi::Number>().DoubleValue();
    if (d != static_cast<double>(static_cast<int64_t>(d))) {
      throw ArgError(position(i) + "[" + std::to_string(k) + "] must be an integer, got " + std::to_string(d));
    }
    out[k] = static_cast<int64_t>(d);
  }
  return out;
}

c10::optional<std::vector<int64_t>> optIntListAt(const Napi::CallbackInfo& info, size_t i) {
  if (isAbsent(info, i)) return c10::nullopt;
  return intListAt(info, i);
}

at::ScalarType dtypeAt(const Napi::CallbackInfo& info, size_t i) {
  int64_t code = intAt(info, i);
  switch (static_cast<at::ScalarType>(code)) {
    case at::kByte: case at::kChar: case at::kShort: case at::kInt: case at::kLong:
    case at::kHalf: case at::kFloat: case at::kDouble: case at::kBool: case at::kBFloat16:
      return static_cast<at::ScalarType>(code);
    default:
      throw ArgError(position(i) + ": unsupported dtype code " + std::to_string(code));
  }
}

c10::optional<at::ScalarType> optDtypeAt(const Napi::CallbackInfo& info, size_t i) {
  if (isAbsent(info, i)) return c10::nullopt;
  return dtypeAt(info, i);
}

at::Device deviceAt(const Napi::CallbackInfo& info, size_t i) {
  if (isAbsent(info, i)) return at::Device(at::kCPU);
  if (!info[i].IsString()) throw ArgError(position(i) + " must be a device string such as 'cpu' or 'cuda:0'");
  return at::Device(info[i].As<Napi::String>().Utf8Value());
}

c10::optional<at::Generator> optGeneratorAt(const Napi::CallbackInfo& info, size_t i) {
  if (isAbsent(info, i)) return c10::nullopt;
  if (!info[i].IsExternal()) throw ArgError(position(i) + " must be a generator handle");
  return *info[i].As<Napi::External<at::Generator>>().Data();
}

namespace {

// ---- data in and out ----

// fromBuffer(arrayBufferView, shape, srcDtype, dstDtype, device): copies the
// bytes, so the JavaScript buffer may be collected afterwards.
Napi::Value fromBuffer(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray()) throw ArgError("argument 0 must be a typed array");
  Napi::TypedArray arr = info[0].As<Napi::TypedArray>();
  std::vector<int64_t> shape = intListAt(info, 1);
  at::ScalarType src = dtypeAt(info, 2);
  at::ScalarType dst = dtypeAt(info, 3);
  at::Device device = deviceAt(info, 4);
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) throw ArgError("shape has a negative dimension");
    numel *= d;
  }
  size_t elemSize = c10::elementSize(src);
  if (static_cast<size_t>(numel) * elemSize != arr.ByteLength()) {
    throw ArgError("shape [" + c10::Join(", ", shape) + "] holds " + std::to_string(numel) +
                   " elements but the data has " + std::to_string(arr.ByteLength() / elemSize));
  }
  uint8_t* data = static_cast<uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset();
  at::Tensor view = at::from_blob(data, shape, at::TensorOptions().dtype(src));
  at::Tensor out = at::empty(shape, at::TensorOptions().dtype(dst).device(device));
  out.copy_(view);
  return wrap(info.Env(), out);
}

// toBuffer(t, raw): a fresh ArrayBuffer with the contiguous CPU bytes. Unless
// `raw`, bfloat16 and float16 come out widened to float32; bool is one byte.
Napi::Value toBuffer(const Napi::CallbackInfo& info) {
  at::Tensor t = tensorAt(info, 0).detach();
  bool raw = !isAbsent(info, 1) && boolAt(info, 1);
  if (!raw && (t.scalar_type() == at::kBFloat16 || t.scalar_type() == at::kHalf)) t = t.to(at::kFloat);
  t = t.to(at::kCPU).contiguous();
  size_t bytes = t.numel() * t.element_size();
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(info.Env(), bytes);
  if (bytes) std::memcpy(buf.Data(), t.data_ptr(), bytes);
  return buf;
}

Napi::Value item(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorAt(info, 0);
  if (t.numel() != 1) throw ArgError("item() needs a tensor with one element, got " + std::to_string(t.numel()));
  at::Scalar s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(info.Env(), s.toBool());
  return Napi::Number::New(info.Env(), s.toDouble());
}

// ---- metadata ----

Napi::Value shape(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorAt(info, 0);
  Napi::Array out = Napi::Array::New(info.Env(), t.dim());
  for (int64_t d = 0; d < t.dim(); d++) out.Set(static_cast<uint32_t>(d), Napi::Number::New(info.Env(), t.size(d)));
  return out;
}

Napi::Value dtype(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<int>(tensorAt(info, 0).scalar_type()));
}

Napi::Value device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), tensorAt(info, 0).device().str());
}

// The version counter (bumped by every in-place write) and the data address of
// each tensor: equal stamps mean equal contents unless something wrote behind
// autograd's back. Caches of values derived from parameters compare them.
Napi::Value stateStamp(const Napi::CallbackInfo& info) {
  std::vector<at::Tensor> ts = tensorListAt(info, 0);
  Napi::Array out = Napi::Array::New(info.Env(), ts.size() * 2);
  for (size_t i = 0; i < ts.size(); i++) {
    out.Set(2 * i, Napi::Number::New(info.Env(), static_cast<double>(ts[i]._version())));
    out.Set(2 * i + 1, Napi::Number::New(info.Env(), static_cast<double>(reinterpret_cast<uintptr_t>(ts[i].data_ptr()))));
  }
  return out;
}

Napi::Value isContiguous(const Napi::CallbackInfo& info) {
  bool channelsLast = !isAbsent(info, 1) && boolAt(info, 1);
  at::Tensor& t = tensorAt(info, 0);
  return Napi::Boolean::New(info.Env(), t.is_contiguous(channelsLast ? at::MemoryFormat::ChannelsLast
                                                                     : at::MemoryFormat::Contiguous));
}

// dispose(handle): frees the tensor and its Holder. The handle must not be
// used again (the Tensor class swaps in disposedHandle()); disposing the
// disposed handle itself does nothing.
Napi::Value dispose(const Napi::CallbackInfo& info) {
  Holder* h = holderAt(info, 0);
  if (h == &disposedHolder) return info.Env().Undefined();
  release(info.Env(), h);
  delete h;
  return info.Env().Undefined();
}

Napi::Value disposedHandle(const Napi::CallbackInfo& info) {
  return Napi::External<Holder>::New(info.Env(), &disposedHolder);
}

Napi::Value isDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !holderAt(info, 0)->t.defined());
}

Napi::Value toString(const Napi::CallbackInfo& info) {
  std::ostringstream os;
  os << tensorAt(info, 0);
  return Napi::String::New(info.Env(), os.str());
}

// ---- process-wide settings ----

Napi::Value memory(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  struct mallinfo2 mi = mallinfo2();
  o.Set("liveTensors", Napi::Number::New(info.Env(), static_cast<double>(liveTensors.load())));
  o.Set("tensorBytes", Napi::Number::New(info.Env(), static_cast<double>(liveBytes.load())));
  o.Set("heapBytes", Napi::Number::New(info.Env(), static_cast<double>(mi.uordblks + mi.hblkhd)));
  CpuCacheStats cache = cpuCacheStats();
  o.Set("largeBlockBytes", Napi::Number::New(info.Env(), static_cast<double>(cache.mappedBytes)));
  o.Set("cachedBytes", Napi::Number::New(info.Env(), static_cast<double>(cache.cachedBytes)));
  o.Set("cacheLimitBytes", Napi::Number::New(info.Env(), static_cast<double>(cache.limitBytes)));
  return o;
}

Napi::Value emptyCache(const Napi::CallbackInfo& info) {
  emptyCpuCache();
  return info.Env().Undefined();
}

Napi::Value setNumThreads(const Napi::CallbackInfo& info) {
  int64_t n = intAt(info, 0);
  if (n < 1) throw ArgError("thread count must be at least 1, got " + std::to_string(n));
  at::set_num_threads(static_cast<int>(n));
  return info.Env().Undefined();
}

Napi::Value getNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

Napi::Value setGradEnabled(const Napi::CallbackInfo& info) {
  bool previous = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(boolAt(info, 0));
  return Napi::Boolean::New(info.Env(), previous);
}

Napi::Value isGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), c10::GradMode::is_enabled());
}

// setAutocast(enabled, dtypeCode, clearCache, cuda): sets CPU autocast, or CUDA
// autocast when cuda is true (ops such as conv and matmul then run in dtype,
// e.g. bfloat16), and returns the previous [enabled, dtypeCode] of that
// device; clearCache drops the cast-weight cache, which PyTorch does when the
// outermost autocast region ends.
Napi::Value setAutocast(const Napi::CallbackInfo& info) {
  const bool cuda = !isAbsent(info, 3) && boolAt(info, 3);
  Napi::Array previous = Napi::Array::New(info.Env(), 2);
  const bool wasOn = cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
  const auto wasDtype = cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
  previous.Set(0u, Napi::Boolean::New(info.Env(), wasOn));
  previous.Set(1u, Napi::Number::New(info.Env(), static_cast<int>(wasDtype)));
  if (cuda) {
    at::autocast::set_autocast_gpu_dtype(dtypeAt(info, 1));
    at::autocast::set_enabled(boolAt(info, 0));
  } else {
    at::autocast::set_autocast_cpu_dtype(dtypeAt(info, 1));
    at::autocast::set_cpu_enabled(boolAt(info, 0));
  }
  if (!isAbsent(info, 2) && boolAt(info, 2)) at::autocast::clear_cache();
  return previous;
}

Napi::Value manualSeed(const Napi::CallbackInfo& info) {
  at::manual_seed(static_cast<uint64_t>(intAt(info, 0)));
  return info.Env().Undefined();
}

Napi::Value newGenerator(const Napi::CallbackInfo& info) {
  auto* g = new at::Generator(at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(intAt(info, 0))));
  return Napi::External<at::Generator>::New(info.Env(), g, [](Napi::Env, at::Generator* p) { delete p; });
}

// A generator handle, or the global default generator when the argument is null.
at::Generator generatorOrDefault(const Napi::CallbackInfo& info) {
  if (isAbsent(info, 0)) return at::detail::getDefaultCPUGenerator();
  if (!info[0].IsExternal()) throw ArgError("argument 0 must be a generator handle or null");
  return *info[0].As<Napi::External<at::Generator>>().Data();
}

// Generator state as bytes, so a training run can checkpoint and resume it.
Napi::Value generatorState(const Napi::CallbackInfo& info) {
  at::Generator g = generatorOrDefault(info);
  std::lock_guard<std::mutex> lock(g.mutex());
  return wrap(info.Env(), g.get_state());
}

Napi::Value setGeneratorState(const Napi::CallbackInfo& info) {
  at::Generator g = generatorOrDefault(info);
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(tensorAt(info, 1));
  return info.Env().Undefined();
}

Napi::Value cudaDeviceCount(const Napi::CallbackInfo& info) {
  int n = at::hasCUDA() ? static_cast<int>(at::detail::getCUDAHooks().getNumGPUs()) : 0;
  return Napi::Number::New(info.Env(), n);
}

// True where the current CUDA device computes in bfloat16 natively (compute
// capability 8.0 or later, as libtorch's own check for bfloat16 convolutions
// through cuDNN); false without CUDA.
Napi::Value cudaBf16Supported(const Napi::CallbackInfo& info) {
  const bool yes = at::hasCUDA() && at::detail::getCUDAHooks().supportsBFloat16ConvolutionWithCuDNNv8();
  return Napi::Boolean::New(info.Env(), yes);
}

Napi::Value buildConfig(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("torchVersion", Napi::String::New(info.Env(), TORCH_VERSION));
  o.Set("parallel", Napi::String::New(info.Env(), at::get_parallel_info()));
  o.Set("config", Napi::String::New(info.Env(), at::show_config()));
  return o;
}

}  // namespace

void initCore(Napi::Env env, Napi::Object exports) {
  installCpuAllocator();
  // Keep large freed blocks inside the process: returning them to the OS after
  // every op made a forward pass up to 30% slower (page faults on reuse).
  const char* keep = std::getenv("ADVML_MALLOC_KEEP");
  if (!keep || std::string(keep) != "0") {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
  // libtorch runs its own thread pool around BLAS calls; OpenBLAS's threads on
  // top of it oversubscribe the cores (float32 batch-1 passes were 3-7x slower,
  // docs/benchmarks.md). One OpenBLAS thread unless the user asks otherwise.
  if (!std::getenv("OPENBLAS_NUM_THREADS")) {
    using SetThreads = void (*)(int);
    if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(1);
  }
  defineOp(env, exports, "fromBuffer", fromBuffer);
  defineOp(env, exports, "toBuffer", toBuffer);
  defineOp(env, exports, "item", item);
  defineOp(env, exports, "shape", shape);
  defineOp(env, exports, "dtype", dtype);
  defineOp(env, exports, "device", device);
  defineOp(env, exports, "isContiguous", isContiguous);
  defineOp(env, exports, "stateStamp", stateStamp);
  defineOp(env, exports, "dispose", dispose);
  defineOp(env, exports, "isDisposed", isDisposed);
  defineOp(env, exports, "disposedHandle", disposedHandle);
  defineOp(env, exports, "toString", toString);
  defineOp(env, exports, "memory", memory);
  defineOp(env, exports, "emptyCache", emptyCache);
  defineOp(env, exports, "setNumThreads", setNumThreads);
  defineOp(env, exports, "getNumThreads", getNumThreads);
  defineOp(env, exports, "setGradEnabled", setGradEnabled);
  defineOp(env, exports, "isGradEnabled", isGradEnabled);
  defineOp(env, exports, "manualSeed", manualSeed);
  defineOp(env, exports, "setAutocast", setAutocast);
  defineOp(env, exports, "newGenerator", newGenerator);
  defineOp(env, exports, "generatorState", generatorState);
  defineOp(env, exports, "setGeneratorState", setGeneratorState);
  defineOp(env, exports, "cudaDeviceCount", cudaDeviceCount);
  defineOp(env, exports, "cudaBf16Supported", cudaBf16Supported);
  defineOp(env, exports, "buildConfig", buildConfig);
}

}  // namespace advml

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  advml::initCore(env, exports);
  advml::initOps(env, exports);
  advml::initAutograd(env, exports);
  advml::initFused(env, exports);
  advml::initDistributed(env, exports);
  advml::initJit(env, exports);
  advml::initJpeg(env, exports);
  return exports;
}

NODE_API_MODULE(advml, Init)
