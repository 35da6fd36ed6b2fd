// Property test: random shapes through every CPU rung of both ladders
// against Eigen, for a bounded time. Unlike the fixed-seed tests, each run
// draws a fresh seed, so the shapes keep changing from run to run; a failure
// prints the seed of the failing case, and
//
//   LOCALITY_PROPERTY_SEED=<seed> ./build/release/tests/locality_tests --gtest_filter='Property*'
//
// replays it first. LOCALITY_PROPERTY_SECONDS sets the time per ladder
// (default 20; every rung runs at least a few cases whatever the budget).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "locality/attention.hpp"
#include "locality/matmul.hpp"
#include "locality/verify.hpp"

namespace locality {
namespace {

constexpr int kMinCases = 3;

std::uint64_t base_seed() {
  if (const char* text = std::getenv("LOCALITY_PROPERTY_SEED")) {
    return std::strtoull(text, nullptr, 10);
  }
  std::random_device device;
  return (std::uint64_t{device()} << 32) ^ device();
}

double budget_seconds() {
  if (const char* text = std::getenv("LOCALITY_PROPERTY_SECONDS")) {
    const double s = std::strtod(text, nullptr);
    if (s > 0) return s;
  }
  return 20.0;
}

// Calls `one_case(seed)` for seeds base, base + 1, ... until the budget is
// spent (and at least kMinCases times), stopping at the first failure.
template <typename Fn>
void for_random_cases(const char* ladder, Fn one_case) {
  const std::uint64_t base = base_seed();
  const auto start = std::chrono::steady_clock::now();
  const std::chrono::duration<double> budget(budget_seconds());
  int cases = 0;
  for (std::uint64_t seed = base;; ++seed, ++cases) {
    if (cases >= kMinCases && std::chrono::steady_clock::now() - start > budget) break;
    SCOPED_TRACE("replay with LOCALITY_PROPERTY_SEED=" + std::to_string(seed));
    one_case(seed);
    if (::testing::Test::HasFailure()) return;
  }
  std::printf("%s: %d random cases from seed %llu, all rungs verified\n", ladder, cases,
              static_cast<unsigned long long>(base));
}

std::ptrdiff_t pick(std::mt19937_64& rng, std::ptrdiff_t lo, std::ptrdiff_t hi) {
  return std::uniform_int_distribution<std::ptrdiff_t>(lo, hi)(rng);
}

TEST(Property, MatmulRandomShapesEveryRung) {
  for_random_cases("matmul", [](std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    // Mostly small, sometimes past the rungs' cache blocks (kc 256, mc 480).
    const std::ptrdiff_t hi = pick(rng, 0, 3) == 0 ? 600 : 90;
    const std::ptrdiff_t m = pick(rng, 1, hi), n = pick(rng, 1, hi), k = pick(rng, 1, hi);
    const std::ptrdiff_t pad = pick(rng, 0, 2) == 0 ? pick(rng, 1, 9) : 0;  // ld > cols
    Matrix<float> a(m, k + pad), b(k, n + pad), c(m, n + pad);
    const View<float> av = a.view().block(0, 0, m, k), bv = b.view().block(0, 0, k, n),
                      cv = c.view().block(0, 0, m, n);
    fill_random(av, seed);
    fill_random(bv, seed ^ 0x9e3779b97f4a7c15ULL);
    for (const MatmulVariant& v : cpu::matmul_variants()) {
      const int threads = static_cast<int>(pick(rng, 1, 4));
      poison(cv);
      matmul(v, av, bv, cv, threads);
      const VerifyResult r = verify_matmul(av, bv, cv);
      ASSERT_TRUE(r.ok) << v.name << ", " << m << "x" << n << "x" << k << " (ld pad " << pad
                        << "), " << threads << " threads: " << r.message;
    }
  });
}

TEST(Property, AttentionRandomShapesEveryRung) {
  for_random_cases("attention", [](std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    const AttentionShape s{pick(rng, 1, 2), pick(rng, 1, 3), pick(rng, 1, 300), pick(rng, 1, 300),
                           pick(rng, 0, 4) == 0 ? pick(rng, 129, kMaxHeadDim) : pick(rng, 1, 128)};
    const AttentionOptions options{std::nullopt, pick(rng, 0, 1) == 1};
    const float gain = pick(rng, 0, 4) == 0 ? 1000.0f : 1.0f;  // sometimes huge scores
    std::vector<float> q(s.q_elements()), k(s.kv_elements()), v(s.kv_elements()), o(s.q_elements());
    fill_random(std::span<float>(q), seed);
    fill_random(std::span<float>(k), seed + 1);
    fill_random(std::span<float>(v), seed + 2);
    for (float& x : q) x *= gain;
    for (const AttentionVariant& variant : cpu::attention_variants()) {
      const int threads = static_cast<int>(pick(rng, 1, 4));
      poison(std::span<float>(o));
      attention(variant, s, q, k, v, o, options, threads);
      const VerifyResult r = verify_attention(s, q, k, v, o, options);
      ASSERT_TRUE(r.ok) << variant.name << ", [" << s.batch << "," << s.heads << "," << s.seq_q
                        << "," << s.seq_kv << "," << s.head_dim << "]"
                        << (options.causal ? " causal" : "") << ", q x " << gain << ", " << threads
                        << " threads: " << r.message;
    }
  });
}

}  // namespace
}  // namespace locality
