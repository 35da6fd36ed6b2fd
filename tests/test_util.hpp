// Helpers shared by the tests: the per-rung test parameters, and one place
// that builds matmul operands, runs a kernel and checks it against the verifier.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "locality/matmul.hpp"
#include "locality/verify.hpp"

namespace locality::testing {

// The parameter of every per-rung test suite: one rung at one thread count.
template <typename Variant>
struct RungCase {
  const Variant* variant;
  int threads;
};

// Every rung of a ladder at 1 and 2 threads.
template <typename Variant>
std::vector<RungCase<Variant>> rung_cases(std::span<const Variant> variants) {
  std::vector<RungCase<Variant>> cases;
  for (const Variant& v : variants) {
    for (int threads : {1, 2}) cases.push_back({&v, threads});
  }
  return cases;
}

// How GoogleTest prints a case in a failure message and in ctest's test
// names: "packed, 2 threads", not the bytes of the struct.
template <typename Variant>
void PrintTo(const RungCase<Variant>& c, std::ostream* out) {
  *out << c.variant->name << ", " << c.threads << (c.threads == 1 ? " thread" : " threads");
}

// "<variant>_<t>threads", the name GoogleTest shows for a case.
template <typename Variant>
std::string rung_case_name(const ::testing::TestParamInfo<RungCase<Variant>>& info) {
  return std::string(info.param.variant->name) + "_" + std::to_string(info.param.threads) +
         "threads";
}

struct Shape {
  std::ptrdiff_t m, n, k;
  std::ptrdiff_t pad = 0;  // extra columns in every leading dimension
};

inline std::string describe(const Shape& s) {
  std::ostringstream out;
  out << s.m << "x" << s.n << "x" << s.k << " (ld pad " << s.pad << ")";
  return out.str();
}

// Builds A (m x k), B (k x n) and C (m x n) as views one row and `pad` columns
// inside larger buffers (so ld > cols and data is not 64-byte aligned), fills
// A and B with random non-zero values, poisons C with NaN and the margins
// around every view with a sentinel, runs `kernel` and checks C against Eigen
// and the margins against the sentinel.
inline void check_product(
    const Shape& s, std::uint64_t seed,
    const std::function<void(ConstView<float>, ConstView<float>, View<float>)>& kernel) {
  constexpr float kSentinel = 12345.0f;
  const std::ptrdiff_t off = s.pad > 0 ? 1 : 0;
  Matrix<float> a_buf(s.m + off, s.k + s.pad), b_buf(s.k + off, s.n + s.pad),
      c_buf(s.m + off, s.n + s.pad);
  a_buf.fill(kSentinel);
  b_buf.fill(kSentinel);
  c_buf.fill(kSentinel);
  View<float> a = a_buf.view().block(off, off, s.m, s.k);
  View<float> b = b_buf.view().block(off, off, s.k, s.n);
  View<float> c = c_buf.view().block(off, off, s.m, s.n);
  fill_random(a, seed);
  fill_random(b, seed + 1);
  poison(c);

  kernel(a, b, c);

  const VerifyResult r = verify_matmul(a, b, c);
  EXPECT_TRUE(r.ok) << describe(s) << ": " << r.message;
  for (std::ptrdiff_t i = 0; i < c_buf.rows(); ++i) {
    for (std::ptrdiff_t j = 0; j < c_buf.cols(); ++j) {
      const bool inside = i >= off && i < off + s.m && j >= off && j < off + s.n;
      if (!inside && c_buf(i, j) != kSentinel) {
        ADD_FAILURE() << describe(s) << ": wrote outside C at buffer (" << i << "," << j << ")";
        return;
      }
    }
  }
}

}  // namespace locality::testing
