#include "locality/caches.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <system_error>

namespace locality {
namespace {

constexpr const char* kSysfsCaches = "/sys/devices/system/cpu/cpu0/cache";

std::string read_line(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line)) throw CacheError(file.string() + ": unreadable");
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  return line;
}

// A whole number of at most 15 digits, with an optional K, M or G suffix.
std::int64_t parse_size(const std::string& text, const std::filesystem::path& file) {
  std::string digits = text;
  std::int64_t scale = 1;
  if (!digits.empty() && (digits.back() == 'K' || digits.back() == 'M' || digits.back() == 'G')) {
    scale = digits.back() == 'K' ? 1 << 10 : digits.back() == 'M' ? 1 << 20 : 1 << 30;
    digits.pop_back();
  }
  // At most 15 digits: stoll cannot overflow, and only the scale can.
  const bool number = !digits.empty() && digits.size() <= 15 &&
                      std::all_of(digits.begin(), digits.end(),
                                  [](char c) { return c >= '0' && c <= '9'; });
  const std::int64_t value = number ? std::stoll(digits) : -1;
  if (value < 0 || value > std::numeric_limits<std::int64_t>::max() / scale) {
    throw CacheError(file.string() + ": not a size ('" + text.substr(0, 40) + "')");
  }
  return value * scale;
}

}  // namespace

std::vector<Cache> sysfs_caches(const std::string& folder) {
  std::error_code ec;
  std::vector<std::filesystem::path> entries;
  for (const auto& e : std::filesystem::directory_iterator(folder, ec)) {
    if (e.path().filename().string().rfind("index", 0) == 0) entries.push_back(e.path());
  }
  if (ec) throw CacheError(folder + ": " + ec.message());
  if (entries.empty()) throw CacheError(folder + " lists no caches");
  std::sort(entries.begin(), entries.end());
  std::vector<Cache> out;
  for (const auto& dir : entries) {
    Cache c;
    c.level = static_cast<int>(parse_size(read_line(dir / "level"), dir / "level"));
    c.type = read_line(dir / "type");
    c.size_bytes = parse_size(read_line(dir / "size"), dir / "size");
    c.ways = parse_size(read_line(dir / "ways_of_associativity"), dir / "ways_of_associativity");
    c.line_bytes = parse_size(read_line(dir / "coherency_line_size"), dir / "coherency_line_size");
    out.push_back(c);
  }
  return out;
}

std::vector<Cache> sysconf_caches() {
  struct Level {
    int level;
    const char* type;
    int size, ways, line;
  };
  const Level levels[] = {
      {1, "Instruction", _SC_LEVEL1_ICACHE_SIZE, _SC_LEVEL1_ICACHE_ASSOC, _SC_LEVEL1_ICACHE_LINESIZE},
      {1, "Data", _SC_LEVEL1_DCACHE_SIZE, _SC_LEVEL1_DCACHE_ASSOC, _SC_LEVEL1_DCACHE_LINESIZE},
      {2, "Unified", _SC_LEVEL2_CACHE_SIZE, _SC_LEVEL2_CACHE_ASSOC, _SC_LEVEL2_CACHE_LINESIZE},
      {3, "Unified", _SC_LEVEL3_CACHE_SIZE, _SC_LEVEL3_CACHE_ASSOC, _SC_LEVEL3_CACHE_LINESIZE},
      {4, "Unified", _SC_LEVEL4_CACHE_SIZE, _SC_LEVEL4_CACHE_ASSOC, _SC_LEVEL4_CACHE_LINESIZE},
  };
  std::vector<Cache> out;
  for (const Level& l : levels) {
    const long size = sysconf(l.size);
    if (size <= 0) continue;
    out.push_back({l.level, l.type, size, std::max(0L, sysconf(l.ways)),
                   std::max(0L, sysconf(l.line))});
  }
  if (out.empty()) throw CacheError("sysconf reports no cache sizes");
  return out;
}

CacheReading read_caches() {
  const char* env = std::getenv("LOCALITY_CACHE_SYSFS");
  const std::string folder = env && *env ? env : kSysfsCaches;
  std::string why;
  try {
    return {sysfs_caches(folder), "sysfs (" + folder + ")"};
  } catch (const CacheError& e) {
    why = e.what();
  }
  try {
    return {sysconf_caches(), "sysconf"};
  } catch (const CacheError& e) {
    throw CacheError("cannot read the cache geometry: " + why + "; " + e.what());
  }
}

CacheSizes cache_sizes_from(const std::vector<Cache>& caches) {
  const auto find = [&](int level, const char* type) -> std::int64_t {
    for (const Cache& c : caches) {
      if (c.level == level && c.type == type) return c.size_bytes;
    }
    return 0;
  };
  CacheSizes sizes{find(1, "Data"), find(2, "Unified"), ""};
  constexpr std::int64_t kSmallest = 4 << 10;
  if (sizes.l1d_bytes < kSmallest) throw CacheError("no L1 data cache of 4 KiB or more");
  if (sizes.l2_bytes < kSmallest) throw CacheError("no L2 cache of 4 KiB or more");
  return sizes;
}

CacheSizes reference_cache_sizes() { return {48 << 10, 2 << 20, "the reference machine's"}; }

const CacheSizes& machine_cache_sizes() {
  static const CacheSizes sizes = [] {
    try {
      const CacheReading reading = read_caches();
      CacheSizes s = cache_sizes_from(reading.caches);
      s.source = reading.source;
      return s;
    } catch (const CacheError& e) {
      CacheSizes s = reference_cache_sizes();
      s.source = std::string("the reference machine's (") + e.what() + ")";
      return s;
    }
  }();
  return sizes;
}

}  // namespace locality
