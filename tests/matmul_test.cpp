// Every registered CPU matmul rung against Eigen (in double), at 1 and 2
// threads, on fixed awkward shapes and 50 random ones from a fixed seed.
#include "locality/matmul.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "test_util.hpp"

namespace locality {
namespace {

using testing::check_product;
using testing::Shape;
using Case = testing::RungCase<MatmulVariant>;

class MatmulRung : public ::testing::TestWithParam<Case> {
 protected:
  void check(const Shape& s, std::uint64_t seed) {
    const Case& c = GetParam();
    check_product(s, seed, [&](ConstView<float> a, ConstView<float> b, View<float> out) {
      matmul(*c.variant, a, b, out, c.threads);
    });
  }
};

// Sizes chosen against the block sizes of the rungs: register tiles 12x32,
// 6x16, 4x16; tiled blocks 256/32/256; packed kc = 256, mc = 24, nc = 1024.
// Each set is crossed by at least one shape, by one element.
TEST_P(MatmulRung, OneByOneByOne) { check({1, 1, 1}, 1); }

TEST_P(MatmulRung, Primes) {
  check({7, 13, 17}, 2);
  check({31, 37, 41}, 3);
  check({97, 101, 103}, 4);
}

TEST_P(MatmulRung, NotMultiplesOfAnyTile) {
  check({13, 33, 257}, 5);   // k just past kc and kBlockK multiples
  check({481, 65, 97}, 6);   // m just past 20 blocks of mc (24) and 40 tiles of 12
  check({289, 31, 19}, 7);   // m just past 12 blocks of mc and 48 tiles of 6
  check({25, 257, 300}, 8);  // m just past mc, n just past kBlockN
}

TEST_P(MatmulRung, WiderThanTheBPanel) {  // n > nc = 1024: several panels of B
  check({13, 1025, 5}, 9);
  check({13, 4100, 5}, 19);
  check({61, 1100, 300, 3}, 20);  // A packed a kc slice at a time: blocks, slices, edges
}

// Rung 5 with 2 threads: 260 rows each, so each packs its own panel of B
// even where the panel (kc = 256 by 600 columns, 600 KiB) is past half of a
// small L2.
TEST_P(MatmulRung, RowsEnoughForAPanelPerThread) { check({520, 600, 260}, 21); }

TEST_P(MatmulRung, TallSkinnyAndShortWide) {
  check({1000, 3, 5}, 10);
  check({3, 1000, 5}, 11);
  check({2, 3, 1500}, 12);   // long inner product
  check({1, 300, 300}, 13);  // a single row
  check({300, 1, 300}, 14);  // a single column
}

TEST_P(MatmulRung, KEqualsOne) { check({40, 50, 1}, 15); }

TEST_P(MatmulRung, ViewsIntoLargerBuffers) {
  check({17, 19, 23, 5}, 16);
  check({64, 64, 64, 1}, 17);
  check({50, 70, 300, 13}, 18);
}

TEST_P(MatmulRung, EmptyInnerDimensionGivesZero) {
  Matrix<float> a(5, 0), b(0, 7), c(5, 7);
  c.fill(std::numeric_limits<float>::quiet_NaN());
  matmul(*GetParam().variant, a.cview(), b.cview(), c.view(), GetParam().threads);
  for (std::ptrdiff_t i = 0; i < 5; ++i) {
    for (std::ptrdiff_t j = 0; j < 7; ++j) EXPECT_EQ(c(i, j), 0.0f);
  }
}

TEST_P(MatmulRung, EmptyOutputIsANoOp) {
  Matrix<float> a(0, 4), b(4, 6), c(0, 6);
  EXPECT_NO_THROW(matmul(*GetParam().variant, a.cview(), b.cview(), c.view(), GetParam().threads));
  Matrix<float> a2(3, 4), b2(4, 0), c2(3, 0);
  EXPECT_NO_THROW(
      matmul(*GetParam().variant, a2.cview(), b2.cview(), c2.view(), GetParam().threads));
}

TEST_P(MatmulRung, FiftyRandomShapes) {
  std::mt19937_64 rng(20261122);
  // Mostly small, sometimes past a block edge; m*n*k stays below ~10^7 so the
  // naive rung finishes quickly even in the sanitizer build.
  std::uniform_int_distribution<std::ptrdiff_t> small(1, 70), large(200, 520), pad(0, 9);
  std::bernoulli_distribution pick_large(0.25);
  for (int trial = 0; trial < 50; ++trial) {
    const auto dim = [&] { return pick_large(rng) ? large(rng) : small(rng); };
    Shape s{dim(), dim(), dim(), pad(rng)};
    while (s.m * s.n * s.k > 10'000'000) s.m = (s.m + 1) / 2;
    SCOPED_TRACE("random shape " + std::to_string(trial) + ": " + testing::describe(s));
    check(s, 100 + static_cast<std::uint64_t>(trial));
  }
}

INSTANTIATE_TEST_SUITE_P(Cpu, MatmulRung,
                         ::testing::ValuesIn(testing::rung_cases(cpu::matmul_variants())),
                         testing::rung_case_name<MatmulVariant>);

TEST(MatmulArgs, ShapeMismatchIsAClearError) {
  const MatmulVariant& v = cpu::matmul_variants().front();
  Matrix<float> a(3, 4), b(5, 6), c(3, 6);
  try {
    matmul(v, a.cview(), b.cview(), c.view());
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("A is 3x4, B is 5x6, C is 3x6"), std::string::npos)
        << e.what();
  }
  Matrix<float> b2(4, 6), c_wrong(2, 6);
  EXPECT_THROW(matmul(v, a.cview(), b2.cview(), c_wrong.view()), ShapeError);
}

TEST(MatmulArgs, ThreadCountOutOfRange) {
  Matrix<float> a(2, 2), b(2, 2), c(2, 2);
  for (const MatmulVariant& v : cpu::matmul_variants()) {
    EXPECT_THROW(matmul(v, a.cview(), b.cview(), c.view(), 0), std::invalid_argument);
    EXPECT_THROW(matmul(v, a.cview(), b.cview(), c.view(), -3), std::invalid_argument);
    EXPECT_THROW(matmul(v, a.cview(), b.cview(), c.view(), kMaxThreads + 1), std::invalid_argument);
  }
}

TEST(MatmulArgs, OutputOverlappingAnInputIsRefused) {
  Matrix<float> a(4, 4), b(4, 4);
  const MatmulVariant& v = cpu::matmul_variants().back();
  EXPECT_THROW(matmul(v, a.cview(), b.cview(), a.view()), ShapeError);
  EXPECT_THROW(matmul(v, a.cview(), b.cview(), b.view()), ShapeError);
}

TEST(MatmulRegistry, RungsAreNumberedInOrderWithUniqueNamesAndLessons) {
  const auto variants = cpu::matmul_variants();
  ASSERT_GE(variants.size(), 5u);
  for (std::size_t i = 0; i < variants.size(); ++i) {
    EXPECT_EQ(variants[i].rung, static_cast<int>(i));
    EXPECT_FALSE(variants[i].lesson.empty());
    EXPECT_NE(variants[i].run, nullptr);
    EXPECT_EQ(cpu::find_matmul_variant(variants[i].name), &variants[i]);
  }
  EXPECT_EQ(cpu::find_matmul_variant("no-such-rung"), nullptr);
}

}  // namespace
}  // namespace locality
