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
#include <numeric>
#include <optional>
#include <random>
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

// The order in which the variants of one problem (a size and a team, for
// instance) run: a permutation of [0, count), a fresh draw from `rng` for
// each problem. locality_bench registers the problems one after another and
// each problem's variants together in this order, so a rung and the peers it
// is compared with run seconds apart, not minutes, while no variant always
// goes first.
inline std::vector<std::size_t> shuffled_order(std::size_t count, std::mt19937_64& rng) {
  std::vector<std::size_t> order(count);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::shuffle(order.begin(), order.end(), rng);
  return order;
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
