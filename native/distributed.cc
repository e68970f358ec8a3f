// Process groups on PyTorch's c10d: rendezvous through a TCPStore, Gloo on CPU
// (NCCL where the addon is built against a CUDA libtorch with NCCL headers),
// and the collectives data-parallel training needs: all-reduce, broadcast,
// all-gather, barrier. Every collective runs synchronously: the op enqueues the
// c10d work and blocks the calling (JavaScript) thread in Work::wait until it
// completes, fails, or its timeout passes.
//
// Policy (which environment variables, defaults, the single-process case)
// lives in src/distributed/process-group.ts; this file only maps calls onto
// c10d. Errors propagate as std::runtime_error / c10::Error and the defineOp
// guard prefixes the op's name; the TypeScript side adds the rank.
#include "common.h"

#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#if defined(USE_C10D_GLOO)
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#define ADVML_C10D 1
#endif

// NCCL: only with a CUDA libtorch (ADVML_CUDA comes from torch-config.cjs) and
// NCCL's header on the include path; c10d's header compiles empty without
// USE_C10D_NCCL. Untested here (no GPU, Debian's libtorch is CPU-only).
#if defined(ADVML_C10D) && defined(ADVML_CUDA) && __has_include(<nccl.h>)
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define ADVML_NCCL 1
#endif

namespace advml {

namespace {

using std::chrono::milliseconds;

#if defined(ADVML_C10D)

// One process group and the store its rendezvous went through. The store
// stays alive with the group: rank 0 hosts the TCPStore server, which other
// ranks' groups may still read while connecting.
struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  int rank = 0;
  int size = 1;
  std::string backend;
  // Set by the first failed collective: Gloo's pairs are unusable after an
  // I/O error or a timeout, so later calls fail at once instead of hanging.
  std::string broken;
};

void shutdown(Group* g) {
  if (!g->broken.empty() && g->pg) {
    (void)g->pg.release();  // deliberately leaked, with the store it references
    (void)g->store.release();
  }
  g->pg.reset();
  g->store.reset();
}

// Group handles carry a type tag, so a tensor handle passed by mistake is an
// argument error rather than a reinterpreted pointer.
const napi_type_tag kGroupTag = {0x6164766d6c646973ULL, 0x7470726f63677270ULL};

Group* rawGroupAt(const Napi::CallbackInfo& info, size_t i) {
  bool tagged = false;
  if (i < info.Length() && info[i].IsExternal()) {
    napi_check_object_type_tag(info.Env(), info[i], &kGroupTag, &tagged);
  }
  if (!tagged) throw ArgError("argument " + std::to_string(i) + " must be a process group handle");
  return info[i].As<Napi::External<Group>>().Data();
}

Group* groupAt(const Napi::CallbackInfo& info, size_t i) {
  Group* g = rawGroupAt(info, i);
  if (!g->pg) throw ArgError("the process group was destroyed");
  if (!g->broken.empty()) {
    throw std::runtime_error("the process group is unusable after an earlier failure (" + g->broken +
                             "); destroy it and start a new one");
  }
  return g;
}

std::string stringAt(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsString()) throw ArgError("argument " + std::to_string(i) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

std::string optStringAt(const Napi::CallbackInfo& info, size_t i) {
  if (isAbsent(info, i)) return "";
  return stringAt(info, i);
}

milliseconds timeoutAt(const Napi::CallbackInfo& info, size_t i) {
  int64_t ms = intAt(info, i);
  if (ms < 1) throw ArgError("timeout must be a positive number of milliseconds, got " + std::to_string(ms));
  return milliseconds(ms);
}

std::string describe(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const c10::Error& err) {
    return err.what_without_backtrace();
  } catch (const std::exception& err) {
    return err.what();
  } catch (...) {
    return "unknown error";
  }
}

// advml's name of a dtype (src/engine/dtype.ts), for messages.
std::string dtypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kShort: return "int16";
    case at::kChar: return "int8";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return c10::toString(t);
  }
}

// Waits for `work` at most `timeout`. Gloo applies the group's timeout (given
// at init) to each of its own waits; Work::wait enforces the per-call one. A
// failure marks the group broken: its connections are out of step after an
// I/O error, and a timed-out collective may still be in flight.
void await(Group* g, const c10::intrusive_ptr<c10d::Work>& work, milliseconds timeout) {
  try {
    work->wait(timeout);
  } catch (...) {
    std::string what = describe(std::current_exception());
    if (what.find("Operation timed out") != std::string::npos) {
      what = "timed out after " + std::to_string(timeout.count()) + " ms waiting for the other ranks";
    }
    g->broken = what;
    throw std::runtime_error(what);
  }
}

// Gloo (as in libtorch 1.13) handles float32, float64, float16, int8, uint8,
// int32 and int64, and raises "Invalid scalar type" inside the work for the
// rest, which would leave the group broken. Collectives that only move data
// (broadcast, all-gather) send bool, int16 and bfloat16 through a view of the
// same element size, sharing storage, so results land in the original tensor;
// all-reduce sums int16 in int32 and bfloat16 in float32 buffers.
at::Tensor asMovable(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kBool: return t.view(at::kByte);
    case at::kShort: case at::kBFloat16: return t.view(at::kHalf);
    default: return t;
  }
}

at::ScalarType reductionType(at::ScalarType t) {
  switch (t) {
    case at::kShort: return at::kInt;
    case at::kBFloat16: return at::kFloat;
    default: return t;
  }
}

// Tensors grouped by (dtype, device), in first-seen order, each group to
// travel as one flat buffer.
std::vector<std::vector<size_t>> bucketsOf(const std::vector<at::Tensor>& ts) {
  std::vector<std::vector<size_t>> buckets;
  std::vector<std::pair<at::ScalarType, at::Device>> keys;
  for (size_t i = 0; i < ts.size(); i++) {
    std::pair<at::ScalarType, at::Device> key{ts[i].scalar_type(), ts[i].device()};
    size_t b = 0;
    while (b < keys.size() && keys[b] != key) b++;
    if (b == keys.size()) {
      keys.push_back(key);
      buckets.emplace_back();
    }
    buckets[b].push_back(i);
  }
  return buckets;
}

// A flat buffer holding copies of `ts[idx...]` in order (or, when `fill` is
// false, uninitialised), unless the bucket is a single contiguous tensor,
// which is used in place.
// The buffer has dtype `wire` (default: the tensors' own).
at::Tensor flatten(const std::vector<at::Tensor>& ts, const std::vector<size_t>& idx, bool fill, bool& inPlace,
                   c10::optional<at::ScalarType> wire = c10::nullopt) {
  const at::Tensor& first = ts[idx[0]];
  at::ScalarType dtype = wire.value_or(first.scalar_type());
  if (idx.size() == 1 && first.is_contiguous() && dtype == first.scalar_type()) {
    inPlace = true;
    return first;
  }
  inPlace = false;
  int64_t total = 0;
  for (size_t i : idx) total += ts[i].numel();
  at::Tensor flat = at::empty({total}, first.options().dtype(dtype));
  if (fill) {
    int64_t off = 0;
    for (size_t i : idx) {
      int64_t n = ts[i].numel();
      flat.narrow(0, off, n).view(ts[i].sizes()).copy_(ts[i]);
      off += n;
    }
  }
  return flat;
}

void unflatten(const std::vector<at::Tensor>& ts, const std::vector<size_t>& idx, const at::Tensor& flat) {
  int64_t off = 0;
  for (size_t i : idx) {
    int64_t n = ts[i].numel();
    // copy_ through a local handle: the tensor is shared with its JS Holder.
    at::Tensor dst = ts[i];
    dst.copy_(flat.narrow(0, off, n).view(ts[i].sizes()));
    off += n;
  }
}

// ---- ops ----

// distInit(masterAddr, masterPort, rank, worldSize, initTimeoutMs,
//          timeoutMs, backend, interface, hostname) -> group handle.
// Rank 0 hosts the TCPStore server on masterPort and waits for the others to
// connect; every rank then connects its Gloo pairs through the store, all
// within initTimeoutMs. Gloo's own timeout (each of its internal waits) is the
// larger of the two: it bounds what a per-call timeout can extend to.
Napi::Value distInit(const Napi::CallbackInfo& info) {
  std::string addr = stringAt(info, 0);
  int64_t port = intAt(info, 1);
  int64_t rank = intAt(info, 2);
  int64_t size = intAt(info, 3);
  milliseconds initTimeout = timeoutAt(info, 4);
  milliseconds timeout = std::max(initTimeout, timeoutAt(info, 5));
  std::string backend = stringAt(info, 6);
  std::string iface = optStringAt(info, 7);
  std::string hostname = optStringAt(info, 8);
  if (port < 1 || port > 65535) throw ArgError("master port must be in 1..65535, got " + std::to_string(port));
  if (size < 1) throw ArgError("world size must be at least 1, got " + std::to_string(size));
  if (rank < 0 || rank >= size) {
    throw ArgError("rank must be in [0, " + std::to_string(size) + "), got " + std::to_string(rank));
  }

  auto g = std::make_unique<Group>();
  g->rank = static_cast<int>(rank);
  g->size = static_cast<int>(size);
  g->backend = backend;

  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(port);
  so.isServer = rank == 0;
  so.numWorkers = static_cast<std::size_t>(size);
  so.waitWorkers = true;
  so.timeout = initTimeout;
  g->store = c10::make_intrusive<c10d::TCPStore>(addr, so);

  if (backend == "gloo") {
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    if (!iface.empty()) {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
    } else if (!hostname.empty()) {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(hostname));
    } else {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    opts->threads = 2;
    g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, g->rank, g->size, opts);
  } else if (backend == "nccl") {
#if defined(ADVML_NCCL)
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    g->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(g->store, g->rank, g->size, opts);
#else
    throw ArgError("backend 'nccl' needs an addon built against a CUDA libtorch with NCCL headers (LIBTORCH=...)");
#endif
  } else {
    throw ArgError("unknown backend '" + backend + "': expected 'gloo' or 'nccl'");
  }

  Group* raw = g.release();
  auto handle = Napi::External<Group>::New(info.Env(), raw, [](Napi::Env, Group* p) {
    shutdown(p);
    delete p;
  });
  napi_type_tag_object(info.Env(), handle, &kGroupTag);
  return handle;
}

// distDestroy(group): releases the process group (joins its threads, closes
// its connections) and the store. Later use of the handle is an error. A group
// broken by a failure is abandoned instead of joined: a collective that timed
// out may still sit in Gloo's worker thread until Gloo's own timeout, and
// destroy() must not wait for it (the process normally exits next).
Napi::Value distDestroy(const Napi::CallbackInfo& info) {
  shutdown(rawGroupAt(info, 0));
  return info.Env().Undefined();
}

// Tensors at least this large travel on their own, in place when contiguous:
// copying them into a shared buffer and back costs more than the message it
// saves. Smaller ones share one flat buffer per dtype. The split depends only
// on sizes and dtypes, which all ranks agree on, so every rank sends the same
// sequence of messages. (docs/distributed.md has the measurements.)
constexpr int64_t kOwnMessageBytes = 1 << 20;

// The messages of `auto` mode: within each dtype-and-device bucket, each large
// tensor alone, then the small ones together.
std::vector<std::vector<size_t>> messagesOf(const std::vector<at::Tensor>& ts) {
  std::vector<std::vector<size_t>> out;
  for (const auto& idx : bucketsOf(ts)) {
    std::vector<size_t> small;
    for (size_t i : idx) {
      if (ts[i].numel() * static_cast<int64_t>(ts[i].element_size()) >= kOwnMessageBytes) out.push_back({i});
      else small.push_back(i);
    }
    if (!small.empty()) out.push_back(small);
  }
  return out;
}

// distAllReduce(group, tensors, op, timeoutMs, mode): in place.
//   op: 'sum' | 'avg' | 'max' | 'min' ('avg' sums, then divides by the world size)
//   mode: 'auto' (default: large tensors alone, small ones flattened into one
//         buffer per dtype), 'flatten' (one buffer per dtype and device),
//         'coalesced' (ProcessGroup::allreduce_coalesced per dtype), 'each'
//         (one allreduce per tensor).
Napi::Value distAllReduce(const Napi::CallbackInfo& info) {
  Group* g = groupAt(info, 0);
  std::vector<at::Tensor> ts = tensorListAt(info, 1);
  std::string opName = stringAt(info, 2);
  milliseconds timeout = timeoutAt(info, 3);
  std::string mode = isAbsent(info, 4) ? "auto" : stringAt(info, 4);
  c10d::ReduceOp::RedOpType op;
  bool avg = false;
  if (opName == "sum") op = c10d::ReduceOp::SUM;
  else if (opName == "avg") { op = c10d::ReduceOp::SUM; avg = true; }
  else if (opName == "max") op = c10d::ReduceOp::MAX;
  else if (opName == "min") op = c10d::ReduceOp::MIN;
  else throw ArgError("unknown reduction '" + opName + "': expected sum, avg, max or min");
  if (mode != "auto" && mode != "flatten" && mode != "coalesced" && mode != "each") {
    throw ArgError("unknown mode '" + mode + "': expected auto, flatten, coalesced or each");
  }
  for (size_t i = 0; i < ts.size(); i++) {
    if (avg && !at::isFloatingType(ts[i].scalar_type())) {
      throw ArgError("'avg' needs floating-point tensors; tensor " + std::to_string(i) + " is " +
                     dtypeName(ts[i].scalar_type()));
    }
    if (ts[i].scalar_type() == at::kBool) throw ArgError("tensor " + std::to_string(i) + " is bool, which c10d cannot reduce");
  }
  at::NoGradGuard noGrad;

  if (mode == "coalesced") {
    for (const auto& idx : bucketsOf(ts)) {
      // c10d flattens the bucket itself and copies the result back.
      std::vector<at::Tensor> v;
      for (size_t i : idx) {
        at::ScalarType wire = reductionType(ts[i].scalar_type());
        v.push_back(ts[i].is_contiguous() && wire == ts[i].scalar_type() ? ts[i] : ts[i].to(wire).contiguous());
      }
      c10d::AllreduceCoalescedOptions co;
      co.reduceOp = op;
      co.timeout = timeout;
      await(g, g->pg->allreduce_coalesced(v, co), timeout);
      for (size_t k = 0; k < idx.size(); k++) {
        at::Tensor dst = ts[idx[k]];
        if (avg) v[k].div_(g->size);
        if (!v[k].is_same(dst)) dst.copy_(v[k]);
      }
    }
    return info.Env().Undefined();
  }

  std::vector<std::vector<size_t>> messages;
  if (mode == "auto") {
    messages = messagesOf(ts);
  } else if (mode == "flatten") {
    messages = bucketsOf(ts);
  } else {
    for (size_t i = 0; i < ts.size(); i++) messages.push_back({i});
  }
  c10d::AllreduceOptions ro;
  ro.reduceOp = op;
  ro.timeout = timeout;
  for (const auto& idx : messages) {
    bool inPlace = false;
    at::Tensor flat = flatten(ts, idx, true, inPlace, reductionType(ts[idx[0]].scalar_type()));
    if (flat.numel() == 0) continue;
    std::vector<at::Tensor> v{flat};
    await(g, g->pg->allreduce(v, ro), timeout);
    if (avg) flat.div_(g->size);
    if (!inPlace) unflatten(ts, idx, flat);
  }
  return info.Env().Undefined();
}

// distBroadcast(group, tensors, root, timeoutMs): every rank's tensors get
// root's values, in place; messages as all-reduce's 'auto' mode.
Napi::Value distBroadcast(const Napi::CallbackInfo& info) {
  Group* g = groupAt(info, 0);
  std::vector<at::Tensor> ts = tensorListAt(info, 1);
  for (auto& t : ts) t = asMovable(t);
  int64_t root = intAt(info, 2);
  milliseconds timeout = timeoutAt(info, 3);
  if (root < 0 || root >= g->size) {
    throw ArgError("root must be in [0, " + std::to_string(g->size) + "), got " + std::to_string(root));
  }
  at::NoGradGuard noGrad;
  c10d::BroadcastOptions bo;
  bo.rootRank = root;
  bo.rootTensor = 0;
  bo.timeout = timeout;
  bool isRoot = root == g->rank;
  for (const auto& idx : messagesOf(ts)) {
    bool inPlace = false;
    at::Tensor flat = flatten(ts, idx, isRoot, inPlace);
    if (flat.numel() == 0) continue;
    std::vector<at::Tensor> v{flat};
    await(g, g->pg->broadcast(v, bo), timeout);
    if (!isRoot && !inPlace) unflatten(ts, idx, flat);
  }
  return info.Env().Undefined();
}

// distAllGather(group, tensor, timeoutMs) -> tensors, one per rank in rank
// order. Ranks may differ in the size of dimension 0 (a last, smaller shard);
// dtype and the other dimensions must agree. A first, small all-gather
// exchanges each rank's dtype and shape, so a mismatch raises the same error on
// every rank instead of a hang or garbage.
Napi::Value distAllGather(const Napi::CallbackInfo& info) {
  Group* g = groupAt(info, 0);
  at::Tensor original = tensorAt(info, 1).detach();
  at::Tensor t = asMovable(original);
  milliseconds timeout = timeoutAt(info, 2);
  constexpr int64_t kMaxDims = 16;
  constexpr int64_t kMeta = 2 + kMaxDims;
  at::NoGradGuard noGrad;

  c10d::AllgatherOptions ao;
  ao.timeout = timeout;
  at::Tensor meta = at::zeros({kMeta}, at::TensorOptions().dtype(at::kLong).device(t.device()));
  {
    at::Tensor cpu = at::zeros({kMeta}, at::kLong);
    auto* m = cpu.data_ptr<int64_t>();
    m[0] = static_cast<int64_t>(original.scalar_type());
    m[1] = t.dim();
    for (int64_t d = 0; d < std::min<int64_t>(t.dim(), kMaxDims); d++) m[2 + d] = t.size(d);
    meta.copy_(cpu);
  }
  std::vector<std::vector<at::Tensor>> metaOut(1);
  for (int r = 0; r < g->size; r++) metaOut[0].push_back(at::empty_like(meta));
  std::vector<at::Tensor> metaIn{meta};
  await(g, g->pg->allgather(metaOut, metaIn, ao), timeout);

  std::vector<std::vector<int64_t>> shapes(g->size);
  std::vector<at::ScalarType> dtypes(g->size);
  for (int r = 0; r < g->size; r++) {
    at::Tensor m = metaOut[0][r].to(at::kCPU);
    const int64_t* p = m.data_ptr<int64_t>();
    dtypes[r] = static_cast<at::ScalarType>(p[0]);
    shapes[r].assign(p + 2, p + 2 + std::min<int64_t>(p[1], kMaxDims));
    if (p[1] > kMaxDims) throw ArgError("rank " + std::to_string(r) + " gave a tensor of " + std::to_string(p[1]) +
                                        " dimensions; allGather takes at most " + std::to_string(kMaxDims));
  }
  auto shapeStr = [&](int r) { return dtypeName(dtypes[r]) + " [" + c10::Join(", ", shapes[r]) + "]"; };
  for (int r = 1; r < g->size; r++) {
    bool same = dtypes[r] == dtypes[0] && shapes[r].size() == shapes[0].size();
    for (size_t d = 1; same && d < shapes[0].size(); d++) same = shapes[r][d] == shapes[0][d];
    if (!same) {
      throw ArgError("ranks disagree on dtype or shape (only dimension 0 may differ): rank 0 has " + shapeStr(0) +
                     ", rank " + std::to_string(r) + " has " + shapeStr(r));
    }
  }
  std::vector<int64_t> padded = shapes[0];
  int64_t lead = 0;
  if (!padded.empty()) {
    for (int r = 0; r < g->size; r++) lead = std::max(lead, shapes[r][0]);
    padded[0] = lead;
  }
  at::Tensor in = t.contiguous();
  if (!padded.empty() && t.size(0) != lead) {
    in = at::zeros(padded, t.options());
    in.narrow(0, 0, t.size(0)).copy_(t);
  }
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < g->size; r++) out[0].push_back(at::empty(padded, t.options()));
  std::vector<at::Tensor> inputs{in};
  await(g, g->pg->allgather(out, inputs, ao), timeout);
  std::vector<at::Tensor> result;
  for (int r = 0; r < g->size; r++) {
    at::Tensor o = out[0][r];
    if (!padded.empty() && shapes[r][0] != lead) o = o.narrow(0, 0, shapes[r][0]).clone();
    result.push_back(o.scalar_type() == original.scalar_type() ? o : o.view(original.scalar_type()));
  }
  return wrapList(info.Env(), result);
}

// distBarrier(group, timeoutMs): returns once every rank has entered.
Napi::Value distBarrier(const Napi::CallbackInfo& info) {
  Group* g = groupAt(info, 0);
  milliseconds timeout = timeoutAt(info, 1);
  c10d::BarrierOptions bo;
  bo.timeout = timeout;
  await(g, g->pg->barrier(bo), timeout);
  return info.Env().Undefined();
}

// A sum all-reduce that autograd differentiates: forward sums x over the
// ranks, backward sums the incoming gradient over the ranks (the gradient of
// sum_r x_r with respect to each x_r, summed over every rank's use of the
// result). Synchronised batch norm builds its global statistics with it.
struct DifferentiableAllReduce : public torch::autograd::Function<DifferentiableAllReduce> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, Group* g, int64_t timeoutMs) {
    ctx->saved_data["group"] = reinterpret_cast<int64_t>(g);
    ctx->saved_data["timeout"] = timeoutMs;
    return sumOverRanks(g, x, milliseconds(timeoutMs));
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    Group* g = reinterpret_cast<Group*>(ctx->saved_data["group"].toInt());
    milliseconds timeout(ctx->saved_data["timeout"].toInt());
    return {sumOverRanks(g, grads[0], timeout), at::Tensor(), at::Tensor()};
  }

  static at::Tensor sumOverRanks(Group* g, const at::Tensor& x, milliseconds timeout) {
    if (!g->broken.empty()) throw std::runtime_error("the process group is unusable after an earlier failure (" + g->broken + ")");
    at::NoGradGuard noGrad;
    at::Tensor out = x.contiguous().clone();
    std::vector<at::Tensor> v{out};
    c10d::AllreduceOptions ro;
    ro.reduceOp = c10d::ReduceOp::SUM;
    ro.timeout = timeout;
    await(g, g->pg->allreduce(v, ro), timeout);
    return out;
  }
};

// distAllReduceAutograd(group, tensor, timeoutMs): a new tensor, the sum over
// ranks, differentiable (see DifferentiableAllReduce).
Napi::Value distAllReduceAutograd(const Napi::CallbackInfo& info) {
  Group* g = groupAt(info, 0);
  at::Tensor& x = tensorAt(info, 1);
  int64_t timeoutMs = timeoutAt(info, 2).count();
  if (!at::isFloatingType(x.scalar_type())) throw ArgError("the differentiable all-reduce needs a floating-point tensor");
  return wrap(info.Env(), DifferentiableAllReduce::apply(x, g, timeoutMs));
}

// ---- the gradient reducer: all-reduce overlapped with backward ----
//
// In the style of PyTorch's DistributedDataParallel reducer (own code):
// parameters are grouped at construction into buckets of about `bucketBytes`
// (the first one smaller, so the first message leaves early), in reverse
// parameter order, which is roughly the order backward produces gradients in.
// A post hook on each parameter's AccumulateGrad node fires once its gradient
// is final for this backward; the reducer copies it into its bucket's flat
// buffer and, once every gradient of a bucket is in, starts an asynchronous
// c10d allreduce of that bucket (ProcessGroup::allreduce returns a Work; it is
// not waited for there). Buckets are sent strictly in index order (a bucket
// that is complete waits for the ones before it), so every rank issues the
// same sequence of collectives whatever order its hooks fire in.
// finish() sends whatever is left, waits for every Work in order and copies
// the sums back into the parameters' .grad.
//
// Parameters whose gradient never arrives (not reached by the loss, or no
// gradient defined) contribute zeros, so a step never hangs. Each bucket
// carries, after its gradients, one flag per parameter (1 when this rank had a
// gradient), summed with the rest: a parameter no rank had a gradient for
// keeps .grad unset, as reduce-after-backward (which reduces only the defined
// gradients) leaves it; otherwise every rank gets the sum.
struct Reducer {
  struct Bucket {
    std::vector<size_t> members;  // parameter indices, in bucket order
    std::vector<int64_t> offsets; // element offset of each member's gradient in `flat`
    int64_t flags = 0;            // element offset of the used flags (one per member)
    at::Tensor flat;
    size_t pending = 0;
    c10::intrusive_ptr<c10d::Work> work;
  };

  Group* g = nullptr;
  milliseconds timeout{0};
  std::vector<at::Tensor> params;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
  std::vector<uintptr_t> hookKeys;
  std::vector<Bucket> buckets;
  std::vector<size_t> bucketOf, slotOf;
  std::vector<char> ready;
  size_t nextLaunch = 0;  // buckets [0, nextLaunch) are sent this step
  size_t sentInBackward = 0;
  bool armed = false;
  std::string error;  // a failure inside a hook, raised by finish()
  std::mutex mu;

  ~Reducer() {
    for (size_t i = 0; i < accumulators.size(); i++) {
      if (accumulators[i]) accumulators[i]->del_post_hook(hookKeys[i]);
    }
  }

  void hook(size_t i) {
    auto fn = [this, i](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
      std::lock_guard<std::mutex> lock(mu);
      if (armed) markReady(i);
      return outputs;
    };
    hookKeys[i] = accumulators[i]->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(fn));
  }

  // The accumulator of a parameter is kept alive by the reducer, but libtorch
  // makes a new one if the parameter's data changed type (set_data); the hook
  // then moves to the new node.
  void refreshAccumulators() {
    for (size_t i = 0; i < params.size(); i++) {
      auto acc = torch::autograd::impl::grad_accumulator(params[i]);
      if (acc == accumulators[i]) continue;
      if (accumulators[i]) accumulators[i]->del_post_hook(hookKeys[i]);
      accumulators[i] = acc;
      hook(i);
    }
  }

  // Copies parameter i's gradient (zeros when it has none) and its flag into
  // its bucket; sends every bucket that is now complete and next in order.
  void markReady(size_t i) {
    Bucket& b = buckets[bucketOf[i]];
    size_t k = slotOf[i];
    if (ready[i]) {
      if (bucketOf[i] < nextLaunch && error.empty()) {
        error = "the gradient of parameter " + std::to_string(i) +
                " arrived again after its bucket was sent: call backward once between prepare() and finish()";
      }
      if (bucketOf[i] < nextLaunch) return;
    } else {
      ready[i] = 1;
      b.pending--;
    }
    at::NoGradGuard noGrad;
    const at::Tensor& p = params[i];
    at::Tensor grad = p.grad();
    at::Tensor slot = b.flat.narrow(0, b.offsets[k], p.numel()).view(p.sizes());
    if (grad.defined()) slot.copy_(grad);
    else slot.zero_();
    b.flat.narrow(0, b.flags + static_cast<int64_t>(k), 1).fill_(grad.defined() ? 1 : 0);
    while (nextLaunch < buckets.size() && buckets[nextLaunch].pending == 0) launch(buckets[nextLaunch++]);
  }

  void launch(Bucket& b) {
    if (!error.empty()) return;
    if (!g->pg) { error = "the process group was destroyed"; return; }
    if (!g->broken.empty()) { error = "the process group is unusable after an earlier failure (" + g->broken + ")"; return; }
    try {
      c10d::AllreduceOptions ro;
      ro.reduceOp = c10d::ReduceOp::SUM;
      ro.timeout = timeout;
      std::vector<at::Tensor> v{b.flat};
      b.work = g->pg->allreduce(v, ro);
    } catch (...) {
      error = describe(std::current_exception());
    }
  }
};

const napi_type_tag kReducerTag = {0x6164766d6c726564ULL, 0x7563657262756b74ULL};

Reducer* reducerAt(const Napi::CallbackInfo& info, size_t i) {
  bool tagged = false;
  if (i < info.Length() && info[i].IsExternal()) napi_check_object_type_tag(info.Env(), info[i], &kReducerTag, &tagged);
  if (!tagged) throw ArgError("argument " + std::to_string(i) + " must be a gradient reducer handle");
  return info[i].As<Napi::External<Reducer>>().Data();
}

// Waits for the works of an abandoned step (backward threw before finish()),
// so the buffers are free to be refilled; their results are dropped.
void drain(Reducer* r) {
  for (auto& b : r->buckets) {
    if (!b.work) continue;
    auto w = std::move(b.work);
    await(r->g, w, r->timeout);
  }
}

// distReducer(group, params, bucketBytes, firstBucketBytes, timeoutMs) -> reducer handle.
// Every parameter must be a leaf that requires grad, each given once.
Napi::Value distReducer(const Napi::CallbackInfo& info) {
  Group* g = groupAt(info, 0);
  std::vector<at::Tensor> params = tensorListAt(info, 1);
  int64_t cap = intAt(info, 2);
  int64_t firstCap = intAt(info, 3);
  milliseconds timeout = timeoutAt(info, 4);
  if (cap < 1 || firstCap < 1) throw ArgError("bucket sizes must be positive numbers of bytes");
  std::unordered_set<const void*> seen;
  for (size_t i = 0; i < params.size(); i++) {
    const at::Tensor& p = params[i];
    if (!p.requires_grad() || !p.is_leaf()) throw ArgError("parameter " + std::to_string(i) + " is not a leaf that requires grad");
    if (p.scalar_type() == at::kBool || !at::isFloatingType(p.scalar_type())) {
      throw ArgError("parameter " + std::to_string(i) + " is " + dtypeName(p.scalar_type()) + "; gradients are floating-point");
    }
    if (!seen.insert(p.unsafeGetTensorImpl()).second) throw ArgError("parameter " + std::to_string(i) + " is given twice");
  }
  auto r = std::make_unique<Reducer>();
  r->g = g;
  r->timeout = timeout;
  r->params = params;
  size_t n = params.size();
  r->accumulators.resize(n);
  r->hookKeys.resize(n);
  r->bucketOf.resize(n);
  r->slotOf.resize(n);
  r->ready.assign(n, 0);

  // Reverse parameter order; one open bucket per (dtype, device); a bucket
  // closes once it holds at least its cap. Buckets are numbered as they open.
  std::vector<std::pair<std::pair<at::ScalarType, at::Device>, size_t>> open;  // key -> bucket index
  std::vector<int64_t> bytes;
  for (size_t j = n; j-- > 0;) {
    const at::Tensor& p = params[j];
    std::pair<at::ScalarType, at::Device> key{p.scalar_type(), p.device()};
    auto it = std::find_if(open.begin(), open.end(), [&](const auto& e) { return e.first == key; });
    size_t bi;
    if (it == open.end()) {
      bi = r->buckets.size();
      r->buckets.emplace_back();
      bytes.push_back(0);
      open.push_back({key, bi});
      it = open.end() - 1;
    } else {
      bi = it->second;
    }
    Reducer::Bucket& b = r->buckets[bi];
    r->bucketOf[j] = bi;
    r->slotOf[j] = b.members.size();
    b.members.push_back(j);
    bytes[bi] += p.numel() * static_cast<int64_t>(p.element_size());
    bool first = bi == 0;
    if (bytes[bi] >= (first ? firstCap : cap)) open.erase(it);
  }
  for (auto& b : r->buckets) {
    int64_t off = 0;
    for (size_t j : b.members) {
      b.offsets.push_back(off);
      off += params[j].numel();
    }
    b.flags = off;
    const at::Tensor& p0 = params[b.members[0]];
    b.flat = at::zeros({off + static_cast<int64_t>(b.members.size())}, p0.options().dtype(reductionType(p0.scalar_type())).requires_grad(false));
    b.pending = b.members.size();
  }
  for (size_t i = 0; i < n; i++) {
    r->accumulators[i] = torch::autograd::impl::grad_accumulator(params[i]);
    r->hook(i);
  }

  auto handle = Napi::External<Reducer>::New(info.Env(), r.release(), [](Napi::Env, Reducer* p) { delete p; });
  napi_type_tag_object(info.Env(), handle, &kReducerTag);
  return handle;
}

// distReducerBuckets(reducer) -> the parameter indices of each bucket, in the order they are sent.
Napi::Value distReducerBuckets(const Napi::CallbackInfo& info) {
  Reducer* r = reducerAt(info, 0);
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env, r->buckets.size());
  for (size_t b = 0; b < r->buckets.size(); b++) {
    const auto& m = r->buckets[b].members;
    Napi::Array a = Napi::Array::New(env, m.size());
    for (size_t k = 0; k < m.size(); k++) a.Set(k, Napi::Number::New(env, static_cast<double>(m[k])));
    out.Set(b, a);
  }
  return out;
}

// distReducerPrepare(group, reducer, loss?): arms the hooks for one backward.
// With the loss, parameters its graph does not reach are marked ready now
// (their buckets need not wait for the end of backward).
Napi::Value distReducerPrepare(const Napi::CallbackInfo& info) {
  Group* g = groupAt(info, 0);
  Reducer* r = reducerAt(info, 1);
  if (r->g != g) throw ArgError("the reducer belongs to another process group");
  auto loss = optTensorAt(info, 2);
  std::lock_guard<std::mutex> lock(r->mu);
  r->armed = false;
  drain(r);
  r->refreshAccumulators();
  r->error.clear();
  r->nextLaunch = 0;
  r->sentInBackward = 0;
  std::fill(r->ready.begin(), r->ready.end(), 0);
  for (auto& b : r->buckets) b.pending = b.members.size();
  r->armed = true;
  if (loss && loss->grad_fn()) {
    std::unordered_set<const torch::autograd::Node*> reached;
    std::vector<torch::autograd::Node*> stack{loss->grad_fn().get()};
    reached.insert(stack.back());
    while (!stack.empty()) {
      torch::autograd::Node* fn = stack.back();
      stack.pop_back();
      for (const auto& e : fn->next_edges()) {
        if (e.function && reached.insert(e.function.get()).second) stack.push_back(e.function.get());
      }
    }
    // In bucket order, so buckets of unreached parameters go out as early as possible.
    for (const auto& b : r->buckets) {
      for (size_t i : b.members) {
        if (!reached.count(r->accumulators[i].get())) r->markReady(i);
      }
    }
  }
  return info.Env().Undefined();
}

// distReducerFinish(group, reducer) -> number of buckets sent before the call
// (during backward). Sends what is left, waits for every bucket in order and
// writes the sums into the parameters' .grad.
Napi::Value distReducerFinish(const Napi::CallbackInfo& info) {
  Group* g = groupAt(info, 0);
  Reducer* r = reducerAt(info, 1);
  if (r->g != g) throw ArgError("the reducer belongs to another process group");
  std::lock_guard<std::mutex> lock(r->mu);
  if (!r->armed) throw ArgError("finish() without prepare()");
  size_t sent = r->nextLaunch;
  for (size_t i = 0; i < r->params.size(); i++) {
    if (!r->ready[i]) r->markReady(i);
  }
  r->armed = false;
  if (!r->error.empty()) {
    std::string what = r->error;
    g->broken = what;
    throw std::runtime_error(what);
  }
  at::NoGradGuard noGrad;
  for (auto& b : r->buckets) {
    auto w = std::move(b.work);
    if (w) await(g, w, r->timeout);
  }
  for (auto& b : r->buckets) {
    at::Tensor flags = b.flat.narrow(0, b.flags, static_cast<int64_t>(b.members.size())).to(at::kCPU, at::kDouble);
    const double* used = flags.data_ptr<double>();
    for (size_t k = 0; k < b.members.size(); k++) {
      if (used[k] == 0) continue;  // no rank had a gradient: .grad stays unset
      at::Tensor& p = r->params[b.members[k]];
      at::Tensor sum = b.flat.narrow(0, b.offsets[k], p.numel()).view(p.sizes());
      at::Tensor grad = p.grad();
      if (!grad.defined()) {
        p.mutable_grad() = at::empty_like(p, p.options().requires_grad(false));
        grad = p.grad();
      }
      grad.copy_(sum);
    }
  }
  r->sentInBackward = sent;
  return Napi::Number::New(info.Env(), static_cast<double>(sent));
}

#else  // no c10d in this libtorch

Napi::Value unavailable(const Napi::CallbackInfo&) {
  throw std::runtime_error("this addon was built without c10d Gloo (install libgloo-dev and rebuild)");
}

#endif

}  // namespace

void initDistributed(Napi::Env env, Napi::Object exports) {
#if defined(ADVML_C10D)
  defineOp(env, exports, "distInit", distInit);
  defineOp(env, exports, "distDestroy", distDestroy);
  defineOp(env, exports, "distAllReduce", distAllReduce);
  defineOp(env, exports, "distBroadcast", distBroadcast);
  defineOp(env, exports, "distAllGather", distAllGather);
  defineOp(env, exports, "distBarrier", distBarrier);
  defineOp(env, exports, "distAllReduceAutograd", distAllReduceAutograd);
  defineOp(env, exports, "distReducer", distReducer);
  defineOp(env, exports, "distReducerBuckets", distReducerBuckets);
  defineOp(env, exports, "distReducerPrepare", distReducerPrepare);
  defineOp(env, exports, "distReducerFinish", distReducerFinish);
#else
  for (const char* name : {"distInit", "distDestroy", "distAllReduce", "distBroadcast", "distAllGather", "distBarrier", "distAllReduceAutograd",
                           "distReducer", "distReducerBuckets", "distReducerPrepare", "distReducerFinish"}) {
    defineOp(env, exports, name, unavailable);
  }
#endif
}

}  // namespace advml
