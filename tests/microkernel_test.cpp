// Every micro-kernel compiled into this build (not only the one the packed
// rungs pick) through both five-loop drivers, on shapes that leave ragged
// tiles at every edge and cross every block boundary of its table.
#include "microkernel.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace locality {
namespace {

using cpu::MicroKernel;
using testing::Shape;

std::string kernel_name(const ::testing::TestParamInfo<const MicroKernel*>& info) {
  return std::string(info.param->name);
}

std::vector<const MicroKernel*> kernels() {
  std::vector<const MicroKernel*> out;
  for (const MicroKernel& uk : cpu::available_microkernels()) out.push_back(&uk);
  return out;
}

// The parallel loops run small products (under 2^20 multiply-adds) on one
// thread, as the first three shapes are; the others take the team path, cut
// into column bands (wide C), row bands (narrow C) or both (4 threads on the
// last shape: two bands of each).
class MicroKernelTest : public ::testing::TestWithParam<const MicroKernel*> {
 protected:
  std::vector<Shape> shapes() const {
    const MicroKernel& uk = *GetParam();
    return {
        {1, 1, 1},
        {uk.mr, uk.nr, 8},                                 // exactly one register tile
        {uk.mr + 1, uk.nr + 1, uk.kc + 1},                 // one past each tile and kc
        {uk.mc + uk.mr - 1, 2 * uk.nr - 1, 2 * uk.kc, 3},  // past mc; two kc slices
        {uk.mr - 1, uk.nc + 3, 100, 1},                    // past nc, short of one tile
        {3 * uk.mc + 7, 17, 100},                          // several mc blocks
        {uk.mc + 5, 8 * uk.nr + 5, 50},                    // a 2 x 2 grid of bands
    };
  }
};

TEST_P(MicroKernelTest, PackedLoops) {
  std::uint64_t seed = 1;
  for (const Shape& s : shapes()) {
    testing::check_product(s, seed++, [&](ConstView<float> a, ConstView<float> b, View<float> c) {
      cpu::packed_matmul_with(*GetParam(), a, b, c);
    });
  }
}

TEST_P(MicroKernelTest, ParallelLoops) {
  std::uint64_t seed = 50;
  for (int threads : {1, 2, 3, 4}) {
    for (const Shape& s : shapes()) {
      testing::check_product(s, seed++, [&](ConstView<float> a, ConstView<float> b, View<float> c) {
        cpu::parallel_matmul_with(*GetParam(), a, b, c, threads);
      });
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cpu, MicroKernelTest, ::testing::ValuesIn(kernels()), kernel_name);

TEST(MicroKernelTable, PortableKernelIsAlwaysPresentAndBestIsFirst) {
  const auto table = cpu::available_microkernels();
  ASSERT_FALSE(table.empty());
  EXPECT_EQ(&cpu::best_microkernel(), &table.front());
  EXPECT_EQ(table.back().name, "microkernel_portable_4x16");
#if defined(__AVX512F__)
  EXPECT_EQ(table.front().name, "microkernel_avx512_12x32");
#endif
  for (const MicroKernel& uk : table) {
    EXPECT_EQ(uk.mc % uk.mr, 0) << uk.name << ": mc should be whole register tiles";
    EXPECT_EQ(uk.nc % uk.nr, 0) << uk.name << ": nc should be whole register tiles";
  }
}

}  // namespace
}  // namespace locality
