// The caching CPU allocator (native/allocator.cc).
#pragma once

#include <cstddef>

namespace advml {

struct CpuCacheStats {
  size_t mappedBytes;  // large blocks mapped, in use or cached
  size_t cachedBytes;  // of those, free blocks waiting for reuse
  size_t limitBytes;   // the most the cache holds (0: the allocator is off)
};

// Makes the caching allocator libtorch's CPU allocator, once per process,
// unless ADVML_CPU_CACHE_MB is 0.
void installCpuAllocator();
CpuCacheStats cpuCacheStats();
// Unmaps every cached block.
void emptyCpuCache();

}  // namespace advml
