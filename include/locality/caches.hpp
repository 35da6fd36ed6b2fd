// The machine's caches, read at run time. The packed and flash rungs size
// their blocks by them (cpu/matmul/blocking.cpp), and bench/cachegrind.py
// models them (through `locality caches --json`): one reader for both.
//
// Sources, in order: the kernel's sysfs folder for cpu0
// (/sys/devices/system/cpu/cpu0/cache, or $LOCALITY_CACHE_SYSFS), then
// sysconf (glibc's CPUID reading, what `getconf -a` prints). Sizes are per
// instance: an L2 private to each core is one core's L2.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace locality {

class CacheError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Cache {
  int level = 0;             // 1, 2, 3, ...
  std::string type;          // "Data", "Instruction" or "Unified"
  std::int64_t size_bytes = 0;
  std::int64_t ways = 0;        // 0 where the source gives none
  std::int64_t line_bytes = 0;  // 0 where the source gives none
};

struct CacheReading {
  std::vector<Cache> caches;
  std::string source;  // "sysfs (<folder>)" or "sysconf"
};

// The caches one sysfs folder lists (index0, index1, ...); throws CacheError
// when the folder is missing, lists none or holds an unreadable entry.
std::vector<Cache> sysfs_caches(const std::string& folder);
// The caches sysconf reports (sizes of zero are left out); throws CacheError
// when it reports none.
std::vector<Cache> sysconf_caches();
// sysfs, else sysconf; throws CacheError naming both reasons.
CacheReading read_caches();

// What the blocking rules read: one core's L1 data cache and L2.
struct CacheSizes {
  std::int64_t l1d_bytes = 0;
  std::int64_t l2_bytes = 0;
  std::string source;  // where they came from, or why they are the fallback
};

// The L1 data cache and the L2 of `caches`; throws CacheError when either is
// missing or smaller than 4 KiB (not a size a block can be cut for).
CacheSizes cache_sizes_from(const std::vector<Cache>& caches);
// The sizes of the caches the reference machine has (48 KiB L1d, 2 MiB L2).
CacheSizes reference_cache_sizes();
// This machine's, read once; where neither source answers, the reference
// machine's, with the reason in `source`.
const CacheSizes& machine_cache_sizes();

}  // namespace locality
