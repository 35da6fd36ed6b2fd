// Numerical edge cases, every rung of every CPU ladder, at 1 and 2 threads.
//
// What we promise (and what the reference, Eigen in double, does):
// - Matmul: a NaN in row i of A makes row i of C NaN and touches no other
//   row; a NaN in column j of B does the same to column j. An infinity in
//   B(p, j) makes column j of C an infinity of the sign of A(i, p) B(p, j).
// - Attention: a NaN in query row i makes output row i NaN, and no other. A
//   NaN in key j (K's row j) makes NaN every output row that attends to key j
//   (all of them; with the causal mask, rows i >= j) and no other. A NaN or
//   infinity in V(j, c) reaches column c of the rows that attend to key j,
//   and only that column: a masked key contributes nothing, not 0 x NaN.
// - Subnormal inputs are computed, not flushed: results stay within the
//   verifier's bound, which accounts for underflow.
// - The thread count changes at most the order of the sums: every count is
//   within the bound of the reference.
// Each expectation is checked twice: by the verifier (non-finite reference
// entries must be matched exactly) and by the structural rule above.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "locality/attention.hpp"
#include "locality/matmul.hpp"
#include "locality/verify.hpp"
#include "test_util.hpp"

namespace locality {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// ---- matmul ---------------------------------------------------------------

class MatmulNumerics : public ::testing::TestWithParam<testing::RungCase<MatmulVariant>> {
 protected:
  // Random A (m x k) and B (k x n), C poisoned.
  void SetUp() override {
    fill_random(a_.view(), 11);
    fill_random(b_.view(), 12);
  }
  void run() {
    poison(c_.view());
    matmul(*GetParam().variant, a_.view(), b_.view(), c_.view(), GetParam().threads);
    const VerifyResult r = verify_matmul(a_.view(), b_.view(), c_.view());
    EXPECT_TRUE(r.ok) << r.message;
  }
  // Shapes past every register tile and cache block of the rungs, by a little.
  static constexpr std::ptrdiff_t m = 37, n = 45, k = 300;
  Matrix<float> a_{m, k}, b_{k, n}, c_{m, n};
};

TEST_P(MatmulNumerics, NaNInARowOfAPoisonsThatRowOnly) {
  a_(5, 299) = kNaN;
  run();
  for (std::ptrdiff_t i = 0; i < m; ++i) {
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      ASSERT_EQ(std::isnan(c_(i, j)), i == 5) << "C(" << i << "," << j << ")";
    }
  }
}

TEST_P(MatmulNumerics, NaNInAColumnOfBPoisonsThatColumnOnly) {
  b_(0, 33) = kNaN;
  run();
  for (std::ptrdiff_t i = 0; i < m; ++i) {
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      ASSERT_EQ(std::isnan(c_(i, j)), j == 33) << "C(" << i << "," << j << ")";
    }
  }
}

TEST_P(MatmulNumerics, InfinityInBGivesSignedInfinities) {
  b_(17, 2) = kInf;
  run();
  for (std::ptrdiff_t i = 0; i < m; ++i) {
    EXPECT_EQ(c_(i, 2), a_(i, 17) > 0 ? kInf : -kInf) << "row " << i;
    EXPECT_TRUE(std::isfinite(c_(i, 3))) << "row " << i;
  }
}

TEST_P(MatmulNumerics, SubnormalInputsAreNotFlushed) {
  // A in [2^-136, 2^-130]: every product and most sums are subnormal floats.
  for (std::ptrdiff_t i = 0; i < m; ++i) {
    for (std::ptrdiff_t p = 0; p < k; ++p) a_(i, p) = std::ldexp(a_(i, p), -130);
  }
  run();
  std::ptrdiff_t nonzero = 0;
  for (std::ptrdiff_t i = 0; i < m; ++i) {
    for (std::ptrdiff_t j = 0; j < n; ++j) nonzero += c_(i, j) != 0.0f;
  }
  EXPECT_GT(nonzero, m * n / 2) << "subnormal products were flushed to zero";
}

TEST_P(MatmulNumerics, ThreadCountOnlyReordersSums) {
  for (int threads : {3, 5}) {
    poison(c_.view());
    matmul(*GetParam().variant, a_.view(), b_.view(), c_.view(), threads);
    const VerifyResult r = verify_matmul(a_.view(), b_.view(), c_.view());
    EXPECT_TRUE(r.ok) << threads << " threads: " << r.message;
  }
}

INSTANTIATE_TEST_SUITE_P(Cpu, MatmulNumerics,
                         ::testing::ValuesIn(testing::rung_cases(cpu::matmul_variants())),
                         testing::rung_case_name<MatmulVariant>);

// ---- attention ------------------------------------------------------------

class AttentionNumerics : public ::testing::TestWithParam<testing::RungCase<AttentionVariant>> {
 protected:
  // One head, seq 70 (past two 32-query blocks, inside one key block), and
  // head_dim 40 (not a multiple of any SIMD width or panel height).
  static constexpr AttentionShape kShape{1, 1, 70, 70, 40};
  static constexpr std::ptrdiff_t d = 40, seq = 70;

  void SetUp() override {
    fill_random(std::span<float>(q_), 21);
    fill_random(std::span<float>(k_), 22);
    fill_random(std::span<float>(v_), 23);
  }
  void run(bool causal, int threads = 0) {
    std::fill(o_.begin(), o_.end(), kNaN);
    const AttentionOptions options{std::nullopt, causal};
    attention(*GetParam().variant, kShape, q_, k_, v_, o_, options,
              threads > 0 ? threads : GetParam().threads);
    const VerifyResult r = verify_attention(kShape, q_, k_, v_, o_, options);
    EXPECT_TRUE(r.ok) << (causal ? "causal: " : "") << r.message;
  }
  float out(std::ptrdiff_t i, std::ptrdiff_t c) const {
    return o_[static_cast<std::size_t>(i * d + c)];
  }
  float& at(std::vector<float>& x, std::ptrdiff_t row, std::ptrdiff_t c) {
    return x[static_cast<std::size_t>(row * d + c)];
  }

  std::vector<float> q_ = std::vector<float>(seq * d), k_ = q_, v_ = q_, o_ = q_;
};

TEST_P(AttentionNumerics, NaNInAQueryPoisonsThatRowOnly) {
  at(q_, 33, 7) = kNaN;
  for (bool causal : {false, true}) {
    run(causal);
    for (std::ptrdiff_t i = 0; i < seq; ++i) {
      for (std::ptrdiff_t c = 0; c < d; ++c) {
        ASSERT_EQ(std::isnan(out(i, c)), i == 33) << "O(" << i << "," << c << ")";
      }
    }
  }
}

TEST_P(AttentionNumerics, NaNInAKeyPoisonsTheRowsThatSeeIt) {
  constexpr std::ptrdiff_t j = 40;
  at(k_, j, 39) = kNaN;
  for (bool causal : {false, true}) {
    run(causal);
    for (std::ptrdiff_t i = 0; i < seq; ++i) {
      const bool sees = !causal || i >= j;
      for (std::ptrdiff_t c = 0; c < d; ++c) {
        ASSERT_EQ(std::isnan(out(i, c)), sees)
            << (causal ? "causal " : "") << "O(" << i << "," << c << ")";
      }
    }
  }
}

TEST_P(AttentionNumerics, NonFiniteValuesReachOnlyTheirColumnOfTheRowsThatSeeThem) {
  // Key 40 carries a NaN in column 3, key 45 an infinity in column 9; with
  // the causal mask, rows 33..39 share a query block with them but must not
  // see them.
  at(v_, 40, 3) = kNaN;
  at(v_, 45, 9) = -kInf;
  for (bool causal : {false, true}) {
    run(causal);
    for (std::ptrdiff_t i = 0; i < seq; ++i) {
      for (std::ptrdiff_t c = 0; c < d; ++c) {
        const float x = out(i, c);
        const std::string where = std::string(causal ? "causal " : "") + "O(" + std::to_string(i) +
                                  "," + std::to_string(c) + ")";
        if (c == 3 && (!causal || i >= 40)) {
          ASSERT_TRUE(std::isnan(x)) << where;
        } else if (c == 9 && (!causal || i >= 45)) {
          ASSERT_EQ(x, -kInf) << where;
        } else {
          ASSERT_TRUE(std::isfinite(x)) << where << " = " << x;
        }
      }
    }
  }
}

TEST_P(AttentionNumerics, SubnormalInputsAreNotFlushed) {
  // Q and K subnormal: every score is (nearly) zero, the weights uniform.
  // V subnormal: the output is a mean of subnormals, not zero.
  for (std::vector<float>* x : {&q_, &k_, &v_}) {
    for (float& e : *x) e = std::ldexp(e, -130);
  }
  for (bool causal : {false, true}) {
    run(causal);
    std::ptrdiff_t nonzero = 0;
    for (float x : o_) nonzero += x != 0.0f;
    EXPECT_GT(nonzero, seq * d / 2) << "subnormal values were flushed to zero";
  }
}

TEST_P(AttentionNumerics, ThreadCountOnlyReordersSums) {
  // Several heads, so that every thread count splits the work differently.
  const AttentionShape s{2, 3, 45, 50, 24};
  std::vector<float> q(s.q_elements()), k(s.kv_elements()), v(s.kv_elements()), o(s.q_elements());
  fill_random(std::span<float>(q), 31);
  fill_random(std::span<float>(k), 32);
  fill_random(std::span<float>(v), 33);
  for (bool causal : {false, true}) {
    for (int threads : {3, 5, 8}) {
      poison(std::span<float>(o));
      attention(*GetParam().variant, s, q, k, v, o, {std::nullopt, causal}, threads);
      const VerifyResult r = verify_attention(s, q, k, v, o, {std::nullopt, causal});
      EXPECT_TRUE(r.ok) << threads << " threads" << (causal ? ", causal: " : ": ") << r.message;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cpu, AttentionNumerics,
                         ::testing::ValuesIn(testing::rung_cases(cpu::attention_variants())),
                         testing::rung_case_name<AttentionVariant>);

}  // namespace
}  // namespace locality
