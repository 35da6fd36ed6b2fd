// Views and the owning matrix: shapes are checked, storage is aligned.
#include "locality/matrix.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace locality {
namespace {

TEST(Matrix, IsCacheLineAligned) {
  for (std::ptrdiff_t n : {1, 3, 17, 100}) {
    Matrix<float> m(n, n);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(m.data()) % kCacheLineBytes, 0u);
  }
}

TEST(Matrix, StartsZeroedAndHonoursLeadingDimension) {
  Matrix<float> m(3, 4, 7);
  EXPECT_EQ(m.ld(), 7);
  m(2, 3) = 5.0f;
  EXPECT_EQ(m.data()[2 * 7 + 3], 5.0f);
  EXPECT_EQ(m(0, 0), 0.0f);
}

TEST(Matrix, EmptyShapesAreFine) {
  Matrix<float> m(0, 5);
  EXPECT_EQ(m.rows(), 0);
  EXPECT_NO_THROW(m.view());
}

TEST(Matrix, NegativeOrOverflowingSizesThrow) {
  EXPECT_THROW(Matrix<float>(-1, 3), ShapeError);
  EXPECT_THROW(Matrix<float>(3, -1), ShapeError);
  const auto huge = std::numeric_limits<std::ptrdiff_t>::max() / 2;
  EXPECT_THROW(Matrix<float>(huge, huge), ShapeError);
}

TEST(View, LeadingDimensionSmallerThanColumnsThrows) {
  float data[16] = {};
  EXPECT_THROW(View<float>(data, 2, 8, 4), ShapeError);
  EXPECT_THROW(ConstView<float>(data, 2, 8, 4), ShapeError);
}

TEST(View, NullDataWithElementsThrows) {
  EXPECT_THROW(View<float>(nullptr, 2, 2), ShapeError);
  EXPECT_NO_THROW(View<float>(nullptr, 0, 2));
}

TEST(View, BlockAddressesTheRightElementsAndChecksRange) {
  Matrix<float> m(4, 5);
  m(2, 3) = 9.0f;
  View<float> b = m.view().block(1, 2, 2, 3);
  EXPECT_EQ(b(1, 1), 9.0f);
  EXPECT_EQ(b.ld(), 5);
  EXPECT_THROW(m.view().block(3, 0, 2, 1), ShapeError);
  EXPECT_THROW(m.view().block(0, 4, 1, 2), ShapeError);
  EXPECT_THROW(m.view().block(-1, 0, 1, 1), ShapeError);
}

}  // namespace
}  // namespace locality
