// The GPU side: every CUDA rung against Eigen in double (the CPU ladder's
// verifier and bound), on the CPU tests' awkward shapes, with C poisoned with
// NaN first. Without a usable device every such test skips and says why; the
// tests that need no device (registry, errors) always run.
#include "locality/gpu.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "pipelined_width.hpp"
#include "test_util.hpp"

namespace locality {
namespace {

TEST(GpuDevice, QueryNeverThrowsAndExplainsAbsence) {
  const gpu::DeviceStatus status = gpu::query_device();
  if (!status.available) {
    EXPECT_FALSE(status.reason.empty());
    GTEST_SKIP() << status.reason;
  }
  EXPECT_FALSE(status.name.empty());
}

TEST(GpuRegistry, RungsInOrderWithNamesAndLessons) {
#ifdef LOCALITY_HAVE_CUDA
  ASSERT_EQ(gpu::matmul_variants().size(), 7u);
#else
  EXPECT_TRUE(gpu::matmul_variants().empty()) << "a build without CUDA has no GPU rungs";
#endif
  int rung = 0;
  for (const gpu::GpuMatmulVariant& v : gpu::matmul_variants()) {
    EXPECT_EQ(v.rung, rung++) << v.name;
    EXPECT_FALSE(v.lesson.empty()) << v.name;
    EXPECT_EQ(gpu::find_matmul_variant(v.name), &v);
  }
  EXPECT_EQ(gpu::find_matmul_variant("fastest"), nullptr);
}

// Without a device the entry points throw GpuError naming the reason; shape
// errors come first, as on the CPU.
TEST(GpuErrors, NoDeviceIsAClearError) {
  if (gpu::query_device().available) GTEST_SKIP() << "a GPU is present";
  Matrix<float> a(4, 5), b(5, 6), c(4, 6);
  for (const gpu::GpuMatmulVariant& v : gpu::matmul_variants()) {
    EXPECT_THROW(gpu::matmul(v, a.cview(), b.cview(), c.view()), gpu::GpuError) << v.name;
    Matrix<float> wrong(3, 6);
    EXPECT_THROW(gpu::matmul(v, a.cview(), b.cview(), wrong.view()), ShapeError) << v.name;
  }
  EXPECT_THROW(gpu::MatmulBench(64, 64, 64), gpu::GpuError);
  EXPECT_THROW(gpu::device_info(), gpu::GpuError);
}

// Rung 6 picks 128 x 256 or 128 x 128 blocks by the busiest SM's load
// (host arithmetic: tested in every build, CUDA or not). On an H100's 132 SMs:
TEST(GpuPipelinedTiles, WidthFollowsTheBusiestSm) {
  EXPECT_EQ(gpu::pipelined_tile_width(4096, 4096, 132),
            256);  // 512 or 1024 blocks: 4 waves either way
  EXPECT_EQ(gpu::pipelined_tile_width(8192, 8192, 132), 256);
  EXPECT_EQ(gpu::pipelined_tile_width(2048, 2048, 132), 256);  // 128 blocks, or 256 in 2 rounds
  EXPECT_EQ(gpu::pipelined_tile_width(3001, 4099, 132),
            128);  // 408 blocks = 4 rounds, 792 = 6 half-rounds
  EXPECT_EQ(gpu::pipelined_tile_width(1024, 1024, 132), 128);  // 32 or 64 blocks: all SMs take one
  EXPECT_EQ(gpu::pipelined_tile_width(1, 1, 132), 128);
  EXPECT_EQ(gpu::pipelined_tile_width(128 * 67, 256, 132), 256);
  EXPECT_EQ(gpu::pipelined_tile_width(128 * 66, 256, 132), 128);
  static_assert(gpu::pipelined_tile_width(4096, 4096, 132) == 256);
}

class GpuMatmulRung : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const gpu::DeviceStatus status = gpu::query_device();
    if (!status.available) GTEST_SKIP() << status.reason;
    variant_ = gpu::find_matmul_variant(GetParam());
    ASSERT_NE(variant_, nullptr);
  }
  void check(const testing::Shape& s, std::uint64_t seed) {
    testing::check_product(s, seed, [&](ConstView<float> a, ConstView<float> b, View<float> c) {
      gpu::matmul(*variant_, a, b, c);
    });
  }
  const gpu::GpuMatmulVariant* variant_ = nullptr;
};

// Tiles crossed: 32 x 32 (rungs 0-2), 64 x 64 with steps of 8 (rung 3),
// 128 x 128 (rungs 4-6), 128 x 256 (rung 6, WideTilesOnMostSms); 128-bit paths need n and k
// multiples of 4, so both paths are taken.
TEST_P(GpuMatmulRung, OneByOneByOne) { check({1, 1, 1}, 1); }

TEST_P(GpuMatmulRung, Primes) {
  check({7, 13, 17}, 2);
  check({31, 37, 41}, 3);
  check({97, 101, 103}, 4);
}

TEST_P(GpuMatmulRung, NotMultiplesOfAnyTile) {
  check({129, 131, 9}, 5);     // one past the 128 tiles, k one past a step
  check({65, 257, 33}, 6);     // one past 64 and 256
  check({130, 132, 20}, 7);    // multiples of 4 but not of the tiles: the 128-bit path's edges
  check({256, 256, 256}, 8);   // whole tiles everywhere
  check({2177, 260, 37}, 15);  // 18 tile rows: rung 6's second, short group of 16
}

// Enough 128 x 256 tiles for rung 6 to take them (each SM gets one, or two
// 128 x 128): whole tiles, then ragged ones with and without the 128-bit
// paths, with interior blocks and edge blocks and a ragged first step.
TEST_P(GpuMatmulRung, WideTilesOnMostSms) {
  const int sms = gpu::device_info().sm_count;
  const int m = 128 * std::max(sms / 2, 1);
  for (const testing::Shape s : {testing::Shape{m, 512, 32}, testing::Shape{m - 4, 508, 36},
                                 testing::Shape{m - 5, 507, 37}}) {
    ASSERT_EQ(gpu::pipelined_tile_width(static_cast<int>(s.m), static_cast<int>(s.n), sms), 256)
        << testing::describe(s);
    check(s, 16 + s.k);
  }
}

TEST_P(GpuMatmulRung, TallSkinnyAndShortWide) {
  check({1000, 3, 5}, 9);
  check({3, 1000, 5}, 10);
  check({2, 3, 1500}, 11);
  check({1, 300, 300}, 12);
  check({300, 1, 300}, 13);
}

TEST_P(GpuMatmulRung, ViewsIntoLargerBuffers) { check({50, 70, 300, 13}, 14); }

TEST_P(GpuMatmulRung, EmptyProducts) {
  Matrix<float> a(5, 0), b(0, 7), c(5, 7);
  poison(c.view());
  gpu::matmul(*variant_, a.cview(), b.cview(), c.view());
  for (std::ptrdiff_t i = 0; i < 5; ++i)
    for (std::ptrdiff_t j = 0; j < 7; ++j) ASSERT_EQ(c(i, j), 0.0f);
}

std::vector<std::string> rung_names() {
  std::vector<std::string> names;
  for (const gpu::GpuMatmulVariant& v : gpu::matmul_variants()) names.emplace_back(v.name);
  return names;
}

std::string rung_name(const ::testing::TestParamInfo<std::string>& param) { return param.param; }

INSTANTIATE_TEST_SUITE_P(Gpu, GpuMatmulRung, ::testing::ValuesIn(rung_names()), rung_name);
// A build without CUDA has no GPU rungs to instantiate the suite with.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GpuMatmulRung);

// The benchmark harness: one problem timed and checked (rungs and cuBLAS).
TEST(GpuMatmulBench, TimesAndChecksEveryRungAndCublas) {
  const gpu::DeviceStatus status = gpu::query_device();
  if (!status.available) GTEST_SKIP() << status.reason;
  gpu::MatmulBench bench(130, 257, 33);
  const std::vector<std::ptrdiff_t> rows{0, 64, 129};
  for (const gpu::GpuMatmulVariant& v : gpu::matmul_variants()) {
    EXPECT_GT(bench.time_ms(v), 0.0) << v.name;
    const VerifyResult r = bench.check(v, rows);
    EXPECT_TRUE(r.ok) << v.name << ": " << r.message;
  }
  EXPECT_GT(bench.time_cublas_ms(), 0.0);
  const VerifyResult r = bench.check_cublas(rows);
  EXPECT_TRUE(r.ok) << "cublas: " << r.message;
  const gpu::DeviceInfo info = gpu::device_info();
  EXPECT_FALSE(info.name.empty());
  EXPECT_GT(info.sm_count, 0);
}

}  // namespace
}  // namespace locality
