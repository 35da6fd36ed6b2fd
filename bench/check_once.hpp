// The check before timing runs once per benchmark, on its first call: Google
// Benchmark calls a benchmark function again for every repetition, and for
// the slow rungs the warm-up call and the Eigen reference cost as much as the
// timed calls themselves. Later calls reuse the first verdict and skip both.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "locality/verify.hpp"
#include "quiet.hpp"

namespace locality::bench {

// Rows of an m x n x k product's C the check before timing looks at: all of
// them up to 2^27 multiply-adds, else 64 spread over C.
inline std::vector<std::ptrdiff_t> matmul_rows_to_check(std::int64_t m, std::int64_t n,
                                                        std::int64_t k) {
  return spread_rows(m, m * n * k <= (std::int64_t{1} << 27) ? m : 64);
}

// Registers benchmark `name` whose body may throw (a kernel's error, a
// device's): the exception stops that benchmark with its message and marks
// the run failed, so locality_bench exits 1. Each repetition starts once
// the other threads are idle (quiet.hpp).
template <typename Body>
benchmark::internal::Benchmark* register_guarded(const std::string& name, std::atomic<bool>& failed,
                                                 Body body) {
  benchmark::internal::Benchmark* registered =
      benchmark::RegisterBenchmark(name.c_str(), [body, &failed](benchmark::State& state) {
        try {
          body(state);
        } catch (const std::exception& ex) {
          failed = true;
          state.SkipWithError(ex.what());
        }
      });
  return registered->Setup(wait_for_idle_threads);
}

class CheckOnce {
 public:
  // The verdict of an earlier call of benchmark `name`, if there was one.
  static std::optional<VerifyResult> earlier(const std::string& name) {
    const std::lock_guard lock(mutex());
    const auto it = verdicts().find(name);
    if (it == verdicts().end()) return std::nullopt;
    return it->second;
  }
  static void remember(const std::string& name, const VerifyResult& verdict) {
    const std::lock_guard lock(mutex());
    verdicts()[name] = verdict;
  }

 private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::map<std::string, VerifyResult>& verdicts() {
    static std::map<std::string, VerifyResult> v;
    return v;
  }
};

}  // namespace locality::bench
