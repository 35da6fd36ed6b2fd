// The verifier itself: it must pass a correct product and catch the mistakes a
// kernel makes (a dropped product, an unwritten element, a wrong NaN), or
// every other test here proves nothing.
#include "locality/verify.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "locality/matmul.hpp"

namespace locality {
namespace {

struct Product {
  Matrix<float> a, b, c;
  Product(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k) : a(m, k), b(k, n), c(m, n) {
    fill_random(a.view(), 7);
    fill_random(b.view(), 8);
    matmul(cpu::matmul_variants().front(), a.cview(), b.cview(), c.view());
  }
};

TEST(Verify, AcceptsACorrectProduct) {
  Product p(40, 50, 300);
  const VerifyResult r = verify_matmul(p.a.cview(), p.b.cview(), p.c.cview());
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_LE(r.max_bound_ratio, 1.0);
}

TEST(Verify, CatchesOneDroppedProduct) {
  // Smallest mistake a blocked kernel makes: one of k terms left out.
  for (std::ptrdiff_t k : {1, 17, 300, 2000}) {
    Product p(8, 9, k);
    std::ptrdiff_t largest = 0;  // the term a skipped block would most likely hold
    for (std::ptrdiff_t q = 0; q < k; ++q) {
      if (std::abs(p.a(3, q) * p.b(q, 4)) > std::abs(p.a(3, largest) * p.b(largest, 4)))
        largest = q;
    }
    p.c(3, 4) -= p.a(3, largest) * p.b(largest, 4);
    const VerifyResult r = verify_matmul(p.a.cview(), p.b.cview(), p.c.cview());
    EXPECT_FALSE(r.ok) << "k = " << k;
    EXPECT_NE(r.message.find("C(3,4)"), std::string::npos) << r.message;
  }
}

TEST(Verify, CatchesAnUnwrittenElement) {
  Product p(5, 6, 7);
  p.c(4, 5) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(verify_matmul(p.a.cview(), p.b.cview(), p.c.cview()).ok);
}

TEST(Verify, NonFiniteReferenceMustBeMatched) {
  Product p(3, 3, 4);
  p.a(1, 2) = std::numeric_limits<float>::quiet_NaN();  // row 1 of C is NaN
  matmul(cpu::matmul_variants().front(), p.a.cview(), p.b.cview(), p.c.view());
  EXPECT_TRUE(verify_matmul(p.a.cview(), p.b.cview(), p.c.cview()).ok);
  p.c(1, 0) = 0.0f;  // a kernel that lost the NaN
  EXPECT_FALSE(verify_matmul(p.a.cview(), p.b.cview(), p.c.cview()).ok);
}

TEST(Verify, EmptySumMustBeExactlyZero) {
  Matrix<float> a(2, 0), b(0, 3), c(2, 3);
  EXPECT_TRUE(verify_matmul(a.cview(), b.cview(), c.cview()).ok);
  c(1, 1) = 1e-30f;
  EXPECT_FALSE(verify_matmul(a.cview(), b.cview(), c.cview()).ok);
}

TEST(Verify, RowSubsetChecksOnlyThoseRowsAndRejectsBadRows) {
  Product p(10, 4, 5);
  p.c(9, 0) += 1.0f;
  const std::ptrdiff_t first_rows[] = {0, 1, 2};
  EXPECT_TRUE(verify_matmul_rows(p.a.cview(), p.b.cview(), p.c.cview(), first_rows).ok);
  const std::ptrdiff_t last_row[] = {9};
  EXPECT_FALSE(verify_matmul_rows(p.a.cview(), p.b.cview(), p.c.cview(), last_row).ok);
  const std::ptrdiff_t outside[] = {10};
  EXPECT_FALSE(verify_matmul_rows(p.a.cview(), p.b.cview(), p.c.cview(), outside).ok);
}

TEST(Verify, BoundGrowsWithK) {
  EXPECT_LT(matmul_error_factor(10), matmul_error_factor(1000));
  EXPECT_NEAR(matmul_error_factor(1), std::ldexp(1.0, -24), 1e-12);
}

TEST(FillRandom, IsReproducibleAndNeverZero) {
  Matrix<float> x(30, 30), y(30, 30);
  fill_random(x.view(), 42);
  fill_random(y.view(), 42);
  for (std::ptrdiff_t i = 0; i < 30; ++i) {
    for (std::ptrdiff_t j = 0; j < 30; ++j) {
      EXPECT_EQ(x(i, j), y(i, j));
      EXPECT_GE(std::abs(x(i, j)), 1.0f / 64);
      EXPECT_LE(std::abs(x(i, j)), 1.0f);
    }
  }
}

}  // namespace
}  // namespace locality
