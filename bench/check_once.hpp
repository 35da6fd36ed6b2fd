// The check before timing runs once per benchmark, on its first call: Google
// Benchmark calls a benchmark function again for every repetition, and for
// the slow rungs the warm-up call and the Eigen reference cost as much as the
// timed calls themselves. Later calls reuse the first verdict and skip both.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "locality/verify.hpp"

namespace locality::bench {

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
