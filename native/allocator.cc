// A caching allocator for large CPU tensor blocks, installed as libtorch's CPU
// allocator at addon load.
//
// Why: a training or attack step frees and re-allocates the same large blocks
// (activations, gradients) every step. In glibc's main heap those blocks share
// space with the small, long-lived allocations of the JavaScript engine, which
// split the holes the large blocks leave; the heap then grows at its top and
// every step faults fresh pages in (ResNet-20 training at batch 128: ~4,800
// page faults and 11 ms of kernel time a step, the resident set growing
// ~20 MB a step up to 1.5 GB while 60 MB were in use). Here large blocks live
// in their own mappings, freed blocks wait in a per-size cache for the next
// step, and blocks of 2 MiB and more are aligned for transparent huge pages.
//
// Small blocks go to libtorch's default allocator. The cache is bounded
// (ADVML_CPU_CACHE_MB, default 1024; 0 turns this allocator off), evicting
// the least recently freed blocks first; emptyCache() returns everything.
#include "allocator.h"

#include <c10/core/CPUAllocator.h>
#include <sys/mman.h>

#include <cstdlib>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace advml {
namespace {

constexpr size_t kMinCached = 256 << 10;  // smaller blocks: glibc's bins serve them well
constexpr size_t kHuge = 2 << 20;         // the huge page size on x86-64 and arm64
constexpr size_t kSmallGranule = 64 << 10;

// Blocks of one rounded size are interchangeable; rounding up costs address
// space only, since pages that are never touched are never made resident.
size_t roundedSize(size_t n) {
  const size_t granule = n >= kHuge ? kHuge : kSmallGranule;
  return (n + granule - 1) / granule * granule;
}

// Maps `size` bytes; sizes of 2 MiB and more start on a 2 MiB boundary and are
// offered to transparent huge pages, which fault in 512x fewer times.
void* mapBlock(size_t size) {
  const size_t align = size >= kHuge ? kHuge : 0;
  void* raw = mmap(nullptr, size + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  if (!align) return raw;
  auto base = reinterpret_cast<uintptr_t>(raw);
  uintptr_t start = (base + align - 1) & ~(align - 1);
  if (start > base) munmap(raw, start - base);
  size_t tail = base + size + align - (start + size);
  if (tail) munmap(reinterpret_cast<void*>(start + size), tail);
  void* p = reinterpret_cast<void*>(start);
  madvise(p, size, MADV_HUGEPAGE);
  return p;
}

size_t cacheLimitFromEnv() {
  const char* v = std::getenv("ADVML_CPU_CACHE_MB");
  if (!v || !*v) return size_t(1024) << 20;
  char* end = nullptr;
  unsigned long long mb = std::strtoull(v, &end, 10);
  if (*end) return size_t(1024) << 20;  // unreadable: keep the default rather than fail at load
  return static_cast<size_t>(mb) << 20;
}

class CachingCpuAllocator final : public c10::Allocator {
 public:
  CachingCpuAllocator(c10::Allocator* fallback, size_t limit) : fallback_(fallback), limit_(limit) {}

  c10::DataPtr allocate(size_t n) const override {
    if (n < kMinCached) return fallback_->allocate(n);
    const size_t size = roundedSize(n);
    void* p = take(size);
    if (!p) {
      p = mapBlock(size);
      if (!p) {
        // Out of address space or memory: give the cache back and try once more.
        self().emptyCache();
        p = mapBlock(size);
      }
      if (!p) throw std::bad_alloc();
      std::lock_guard<std::mutex> lock(mutex_);
      sizes_[p] = size;
      mappedBytes_ += size;
    }
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  void emptyCache() {
    std::vector<std::pair<void*, size_t>> out;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& [p, size] : lru_) {
        out.emplace_back(p, size);
        sizes_.erase(p);
        mappedBytes_ -= size;
      }
      lru_.clear();
      bySize_.clear();
      cachedBytes_ = 0;
    }
    for (auto& [p, size] : out) munmap(p, size);
  }

  CpuCacheStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {mappedBytes_, cachedBytes_, limit_};
  }

 private:
  using Lru = std::list<std::pair<void*, size_t>>;  // free blocks, least recently freed first

  CachingCpuAllocator& self() const { return const_cast<CachingCpuAllocator&>(*this); }

  // A cached block of exactly `size` bytes, most recently freed first (its pages are likeliest in cache).
  void* take(size_t size) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = bySize_.find(size);
    if (it == bySize_.end() || it->second.empty()) return nullptr;
    Lru::iterator entry = it->second.back();
    it->second.pop_back();
    void* p = entry->first;
    lru_.erase(entry);
    cachedBytes_ -= size;
    return p;
  }

  static void release(void* p);

  void put(void* p) {
    std::vector<std::pair<void*, size_t>> evicted;
    bool ours;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto found = sizes_.find(p);
      ours = found != sizes_.end();
      if (ours) {
        const size_t size = found->second;
        if (size > limit_) {
          sizes_.erase(found);
          mappedBytes_ -= size;
          evicted.emplace_back(p, size);
        } else {
          while (cachedBytes_ + size > limit_ && !lru_.empty()) evictOldest(evicted);
          lru_.emplace_back(p, size);
          bySize_[size].push_back(std::prev(lru_.end()));
          cachedBytes_ += size;
        }
      }
    }
    // Not ours: a small block the default allocator made (raw_allocate hands every pointer to raw_deleter).
    if (!ours) fallback_->raw_deleter()(p);
    for (auto& [q, size] : evicted) munmap(q, size);
  }

  void evictOldest(std::vector<std::pair<void*, size_t>>& out) {
    auto [p, size] = lru_.front();
    auto& same = bySize_[size];
    for (auto it = same.begin(); it != same.end(); ++it) {
      if ((*it)->first == p) {
        same.erase(it);
        break;
      }
    }
    lru_.pop_front();
    sizes_.erase(p);
    cachedBytes_ -= size;
    mappedBytes_ -= size;
    out.emplace_back(p, size);
  }

  c10::Allocator* fallback_;
  const size_t limit_;
  mutable std::mutex mutex_;
  mutable std::unordered_map<void*, size_t> sizes_;  // every mapped block, free or in use
  mutable Lru lru_;
  mutable std::unordered_map<size_t, std::vector<Lru::iterator>> bySize_;
  mutable size_t cachedBytes_ = 0;
  mutable size_t mappedBytes_ = 0;
};

// Never destroyed: tensors may still be freed while the process exits.
CachingCpuAllocator* instance = nullptr;

void CachingCpuAllocator::release(void* p) { instance->put(p); }

}  // namespace

void installCpuAllocator() {
  static std::once_flag once;
  std::call_once(once, [] {
    const size_t limit = cacheLimitFromEnv();
    if (limit == 0) return;
    instance = new CachingCpuAllocator(c10::GetDefaultCPUAllocator(), limit);
    // Priority above the default registration, so the default cannot displace it.
    c10::SetCPUAllocator(instance, 1);
  });
}

CpuCacheStats cpuCacheStats() { return instance ? instance->stats() : CpuCacheStats{0, 0, 0}; }

void emptyCpuCache() {
  if (instance) instance->emptyCache();
}

}  // namespace advml
