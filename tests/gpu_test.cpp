// The GPU side: every CUDA rung of both ladders against Eigen in double (the
// CPU ladders' verifiers and bounds), on the CPU tests' awkward shapes, with
// the output poisoned with NaN first. Without a usable device every such test skips and says why;
// the tests that need no device (registry, errors) always run.
#include "locality/gpu.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "locality/bf16.hpp"
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

TEST(GpuRegistry, AttentionRungsInOrderWithNamesAndLessons) {
#ifdef LOCALITY_HAVE_CUDA
  ASSERT_EQ(gpu::attention_variants().size(), 4u);
#else
  EXPECT_TRUE(gpu::attention_variants().empty()) << "a build without CUDA has no GPU rungs";
#endif
  int rung = 0;
  for (const gpu::GpuAttentionVariant& v : gpu::attention_variants()) {
    EXPECT_EQ(v.rung, rung++) << v.name;
    EXPECT_FALSE(v.lesson.empty()) << v.name;
    EXPECT_EQ(gpu::find_attention_variant(v.name), &v);
  }
  EXPECT_EQ(gpu::find_attention_variant("fastest"), nullptr);
}

// The fused rungs (rung 2 on) keep scores on chip: their device workspace
// must not grow with seq_q x seq_kv (host arithmetic: runs in every build).
TEST(GpuRegistry, FusedAttentionWorkspaceDoesNotGrowWithTheScores) {
  for (const gpu::GpuAttentionVariant& v : gpu::attention_variants()) {
    const AttentionShape small{1, 1, 64, 64, 128}, large{1, 1, 16384, 8192, 128};
    if (v.rung < 2) {
      EXPECT_GE(v.workspace_floats(large), 16384u * 8192u) << v.name << " materializes S";
      continue;
    }
    EXPECT_EQ(v.workspace_floats(large), v.workspace_floats(small)) << v.name;
  }
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
  const AttentionShape shape{1, 2, 5, 7, 8};
  std::vector<float> q(shape.q_elements()), kv(shape.kv_elements()), o(shape.q_elements());
  for (const gpu::GpuAttentionVariant& v : gpu::attention_variants()) {
    EXPECT_THROW(gpu::attention(v, shape, q, kv, kv, o), gpu::GpuError) << v.name;
    EXPECT_THROW(gpu::attention(v, shape, q, kv, kv, std::span<float>(o).first(3)), ShapeError)
        << v.name;
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

// Every GPU attention rung against the Eigen reference in double, with the
// CPU ladder's bound (the rungs use its exponential): O poisoned first.
class GpuAttentionRung : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const gpu::DeviceStatus status = gpu::query_device();
    if (!status.available) GTEST_SKIP() << status.reason;
    variant_ = gpu::find_attention_variant(GetParam());
    ASSERT_NE(variant_, nullptr);
  }
  // Random non-zero Q, K and V; Q times q_gain (scores of large magnitude);
  // every 97th element of K and V ten times larger with outliers set.
  // Q, K and V random and non-zero from `seed`; O to be poisoned.
  struct Tensors {
    std::vector<float> q, k, v, o;
  };
  static Tensors random_tensors(const AttentionShape& s, std::uint64_t seed) {
    Tensors t{std::vector<float>(s.q_elements()), std::vector<float>(s.kv_elements()),
              std::vector<float>(s.kv_elements()), std::vector<float>(s.q_elements())};
    fill_random(std::span<float>(t.q), seed);
    fill_random(std::span<float>(t.k), seed + 1);
    fill_random(std::span<float>(t.v), seed + 2);
    return t;
  }
  void check(const AttentionShape& s, bool causal, std::uint64_t seed, float q_gain = 1.0f,
             bool outliers = false) {
    auto [q, k, v, o] = random_tensors(s, seed);
    for (float& x : q) x *= q_gain;
    if (outliers) {
      for (std::size_t i = 0; i < k.size(); i += 97) k[i] *= 10.0f, v[i] *= 10.0f;
    }
    run_and_verify(s, causal, q, k, v, o);
  }
  void run_and_verify(const AttentionShape& s, bool causal, const std::vector<float>& q,
                      const std::vector<float>& k, const std::vector<float>& v,
                      std::vector<float>& o) {
    const AttentionOptions options{std::nullopt, causal};
    poison(std::span<float>(o));
    gpu::attention(*variant_, s, q, k, v, o, options);
    const VerifyResult r = verify_attention(s, q, k, v, o, options);
    EXPECT_TRUE(r.ok) << GetParam() << " [" << s.batch << "," << s.heads << "," << s.seq_q << ","
                      << s.seq_kv << "," << s.head_dim << "]" << (causal ? " causal" : "") << ": "
                      << r.message;
  }
  const gpu::GpuAttentionVariant* variant_ = nullptr;
};

TEST_P(GpuAttentionRung, OneQueryOneKey) {
  check({1, 1, 1, 1, 1}, false, 1);
  check({1, 1, 1, 1, 1}, true, 2);
}

TEST_P(GpuAttentionRung, SeqQAndSeqKvDifferBothWays) {
  for (bool causal : {false, true}) {
    check({2, 3, 37, 53, 64}, causal, 3);
    check({1, 2, 53, 37, 128}, causal, 4);
    check({1, 1, 200, 7, 16}, causal, 5);
  }
}

TEST_P(GpuAttentionRung, AwkwardHeadDims) {
  for (std::ptrdiff_t d : {1, 3, 63, 65, 100, 129, 256}) {
    check({1, 2, 33, 71, d}, false, 10 + d);
    check({1, 2, 71, 33, d}, true, 20 + d);
  }
}

TEST_P(GpuAttentionRung, ManyQueryTilesWithRaggedEnds) {
  for (bool causal : {false, true}) {
    check({2, 2, 517, 389, 64}, causal, 30);
    check({1, 3, 300, 1025, 128}, causal, 31);
  }
}

TEST_P(GpuAttentionRung, ScoresOfLargeMagnitudeAndOutliers) {
  for (bool causal : {false, true}) {
    check({1, 2, 130, 130, 64}, causal, 40, 1000.0f);  // scores about +-1e4
    check({1, 2, 130, 257, 64}, causal, 41, 1.0f, true);
  }
}

// attention.hpp's rules: a NaN in row i of Q reaches row i of O only; a NaN
// or an infinity in V at key j reaches the rows that see key j, and with the
// causal mask never the rows before j.
TEST_P(GpuAttentionRung, NonFiniteInputsPropagateAsDocumented) {
  const AttentionShape s{1, 2, 40, 40, 32};
  auto [q, k, v, o] = random_tensors(s, 50);
  q[7 * 32 + 3] = std::numeric_limits<float>::quiet_NaN();
  v[(40 + 20) * 32 + 5] = std::numeric_limits<float>::infinity();   // head 1, key 20
  v[(40 + 30) * 32 + 6] = std::numeric_limits<float>::quiet_NaN();  // head 1, key 30
  for (bool causal : {false, true}) run_and_verify(s, causal, q, k, v, o);
  // The causal run's O: head 1's rows before key 20 stay finite.
  for (std::ptrdiff_t i = 0; i < 20; ++i) {
    for (std::ptrdiff_t c = 0; c < 32; ++c) {
      ASSERT_TRUE(std::isfinite(o[(40 + i) * 32 + c])) << "row " << i << " col " << c;
    }
  }
}

std::vector<std::string> attention_rung_names() {
  std::vector<std::string> names;
  for (const gpu::GpuAttentionVariant& v : gpu::attention_variants()) names.emplace_back(v.name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Gpu, GpuAttentionRung, ::testing::ValuesIn(attention_rung_names()),
                         rung_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GpuAttentionRung);

// The attention benchmark harness: one problem seen as two shapes, every
// rung and the cuBLAS peer timed and checked on each.
TEST(GpuAttentionBench, TimesAndChecksEveryRungAndCublas) {
  const gpu::DeviceStatus status = gpu::query_device();
  if (!status.available) GTEST_SKIP() << status.reason;
  gpu::AttentionBench bench({2, 4, 96, 96, 32}, false);
  const std::vector<std::ptrdiff_t> rows{0, 95, 400, 767};
  for (const auto& [shape, causal] : {std::pair{AttentionShape{2, 4, 96, 96, 32}, false},
                                      std::pair{AttentionShape{4, 8, 48, 48, 16}, true}}) {
    bench.use(shape, causal);
    for (const gpu::GpuAttentionVariant& v : gpu::attention_variants()) {
      EXPECT_GT(bench.time_ms(v), 0.0) << v.name;
      const VerifyResult r = bench.check(v, rows);
      EXPECT_TRUE(r.ok) << v.name << (causal ? " causal" : "") << ": " << r.message;
    }
    EXPECT_GT(bench.time_cublas_ms(), 0.0);
    const VerifyResult r = bench.check_cublas(rows);
    EXPECT_TRUE(r.ok) << "cublas" << (causal ? " causal" : "") << ": " << r.message;
  }
  EXPECT_THROW(bench.use({1, 1, 96, 96, 32}, false), ShapeError);
}

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

// bf16 on the host: round to nearest, ties to even, as CUDA's conversion.
TEST(Bf16, RoundsToNearestEvenAndKeepsNaN) {
  EXPECT_EQ(to_bf16_bits(1.0f), 0x3f80);
  EXPECT_EQ(to_bf16_bits(-2.0f), 0xc000);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: to even (1); just above it, up.
  EXPECT_EQ(to_bf16_bits(1.0f + 0x1p-8f), 0x3f80);
  EXPECT_EQ(to_bf16_bits(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: to even, up.
  EXPECT_EQ(to_bf16_bits(1.0f + 3 * 0x1p-8f), 0x3f82);
  EXPECT_EQ(to_bf16_bits(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(to_bf16_bits(std::numeric_limits<float>::max()), 0x7f80);  // rounds past the top
  EXPECT_TRUE(std::isnan(round_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isnan(round_to_bf16(std::bit_cast<float>(0x7f800001u))));  // low-bit NaN
  EXPECT_EQ(round_to_bf16(0.15625f), 0.15625f);                               // exact in 8 bits
}

// The bf16 bound (verify.hpp) accepts a product summed in float in any
// order from bf16 values, and refuses one product counted twice, a result
// off by far less than one product, and inputs that are not bf16.
TEST(Bf16Verify, AcceptsHonestSumsRefusesWrongOnesAndNonBf16Inputs) {
  const std::ptrdiff_t m = 9, n = 7, k = 72;
  Matrix<float> a(m, k), b(k, n), c(m, n);
  fill_random(a.view(), 3);
  fill_random(b.view(), 4);
  round_to_bf16(a.view());
  round_to_bf16(b.view());
  for (std::ptrdiff_t i = 0; i < m; ++i) {
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      float s = 0.0f;  // backwards, in float: another order than the reference's
      for (std::ptrdiff_t p = k - 1; p >= 0; --p) s += a(i, p) * b(p, j);
      c(i, j) = s;
    }
  }
  const std::vector<std::ptrdiff_t> rows = spread_rows(m, m);
  const VerifyResult honest = verify_matmul_bf16_rows(a.cview(), b.cview(), c.cview(), rows);
  EXPECT_TRUE(honest.ok) << honest.message;
  EXPECT_GT(honest.max_bound_ratio, 0.0);
  const float kept = c(4, 3);
  c(4, 3) += a(4, 10) * b(10, 3);
  EXPECT_FALSE(verify_matmul_bf16_rows(a.cview(), b.cview(), c.cview(), rows).ok);
  c(4, 3) = kept + 1e-3f;  // a few bounds' worth, and a 250th of one product
  EXPECT_FALSE(verify_matmul_bf16_rows(a.cview(), b.cview(), c.cview(), rows).ok);
  c(4, 3) = kept;
  a(2, 5) = std::nextafter(a(2, 5), 2.0f);  // one float ulp: not a bf16 value
  const VerifyResult refused = verify_matmul_bf16_rows(a.cview(), b.cview(), c.cview(), rows);
  EXPECT_FALSE(refused.ok);
  EXPECT_NE(refused.message.find("A(2,5) is not a bf16 value"), std::string::npos)
      << refused.message;
}

TEST(GpuRegistry, Bf16RungsInOrderWithRulesAndLessons) {
#ifdef LOCALITY_HAVE_CUDA
  ASSERT_EQ(gpu::bf16_matmul_variants().size(), 4u);
#else
  EXPECT_TRUE(gpu::bf16_matmul_variants().empty()) << "a build without CUDA has no GPU rungs";
#endif
  int rung = 1;
  for (const gpu::GpuBf16MatmulVariant& v : gpu::bf16_matmul_variants()) {
    EXPECT_EQ(v.rung, rung++) << v.name;
    EXPECT_FALSE(v.lesson.empty()) << v.name;
    EXPECT_GE(v.multiple, 1) << v.name;
    EXPECT_TRUE(v.min_sm == 80 || v.min_sm == 90) << v.name;
    EXPECT_EQ(gpu::find_bf16_matmul_variant(v.name), &v);
    if (!gpu::query_device().available) {
      EXPECT_FALSE(gpu::bf16_unavailable_reason(v).empty()) << v.name;
      Matrix<float> a(4, 8), b(8, 8), c(4, 8);
      EXPECT_THROW(gpu::matmul_bf16(v, a.cview(), b.cview(), c.view()), gpu::GpuError);
    }
  }
  EXPECT_EQ(gpu::find_bf16_matmul_variant("naive"), nullptr);
}

// Every tensor-core rung against the Eigen reference in double from the same
// bf16 inputs, with the bf16 bound, C poisoned; shapes that are no multiple
// of any tile, within each rung's rule for k and n.
class GpuBf16MatmulRung : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    variant_ = gpu::find_bf16_matmul_variant(GetParam());
    ASSERT_NE(variant_, nullptr);
    if (const std::string why = gpu::bf16_unavailable_reason(*variant_); !why.empty()) {
      GTEST_SKIP() << why;
    }
  }
  // An n or k of at least `x` that the rung takes.
  std::ptrdiff_t ok(std::ptrdiff_t x) const {
    return (x + variant_->multiple - 1) / variant_->multiple * variant_->multiple;
  }
  void check(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, std::uint64_t seed,
             bool with_nan = false) {
    Matrix<float> a(m, k), b(k, n), c(m, n);
    fill_random(a.view(), seed);
    fill_random(b.view(), seed + 1);
    round_to_bf16(a.view());
    round_to_bf16(b.view());
    if (with_nan) a(m / 2, k / 2) = std::numeric_limits<float>::quiet_NaN();
    poison(c.view());
    gpu::matmul_bf16(*variant_, a.cview(), b.cview(), c.view());
    const VerifyResult r =
        verify_matmul_bf16_rows(a.cview(), b.cview(), c.cview(), spread_rows(m, m));
    EXPECT_TRUE(r.ok) << m << "x" << n << "x" << k << ": " << r.message;
  }
  const gpu::GpuBf16MatmulVariant* variant_ = nullptr;
};

TEST_P(GpuBf16MatmulRung, SmallestItTakes) { check(1, ok(1), ok(1), 1); }

// Tiles crossed: 128 x 128 blocks, k steps of 32 (wmma) and 64 (mma_sync).
TEST_P(GpuBf16MatmulRung, NotMultiplesOfAnyTile) {
  check(129, ok(136), ok(72), 2);   // one row past a tile, k past one step
  check(200, ok(264), ok(200), 3);  // ragged in all three
  check(37, ok(24), ok(40), 4);     // smaller than one tile
  check(256, 256, 256, 5);          // whole tiles everywhere
  check(1000, ok(8), ok(520), 6);   // tall and skinny, many steps of k
  check(3, ok(1000), ok(16), 7);    // short and wide
}

TEST_P(GpuBf16MatmulRung, AnySizeWhereItTakesAny) {
  if (variant_->multiple > 1) GTEST_SKIP() << "takes only multiples of " << variant_->multiple;
  check(33, 71, 13, 8);
  check(5, 3, 1, 9);
}

TEST_P(GpuBf16MatmulRung, RefusesSizesOutsideItsRule) {
  if (variant_->multiple == 1) GTEST_SKIP() << "takes any size";
  Matrix<float> a(16, variant_->multiple + 1), b(variant_->multiple + 1, 16), c(16, 16);
  EXPECT_THROW(gpu::matmul_bf16(*variant_, a.cview(), b.cview(), c.view()), ShapeError);
  Matrix<float> a2(16, 16), b2(16, variant_->multiple + 1), c2(16, variant_->multiple + 1);
  EXPECT_THROW(gpu::matmul_bf16(*variant_, a2.cview(), b2.cview(), c2.view()), ShapeError);
}

// A NaN in A reaches its row of C, and no other (verify matches NaN exactly).
TEST_P(GpuBf16MatmulRung, NaNPropagatesToItsRow) { check(64, 64, 64, 10, true); }

std::vector<std::string> bf16_rung_names() {
  std::vector<std::string> names;
  for (const gpu::GpuBf16MatmulVariant& v : gpu::bf16_matmul_variants()) names.emplace_back(v.name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Gpu, GpuBf16MatmulRung, ::testing::ValuesIn(bf16_rung_names()), rung_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GpuBf16MatmulRung);

// The bf16 harness: every rung and the cuBLASLt peer timed and checked, and
// the peer's algorithm recorded.
TEST(GpuBf16MatmulBench, TimesAndChecksEveryRungAndCublas) {
  const gpu::DeviceStatus status = gpu::query_device();
  if (!status.available) GTEST_SKIP() << status.reason;
  gpu::Bf16MatmulBench bench(136, 264, 72);
  const std::vector<std::ptrdiff_t> rows{0, 64, 135};
  for (const gpu::GpuBf16MatmulVariant& v : gpu::bf16_matmul_variants()) {
    if (!gpu::bf16_unavailable_reason(v).empty()) continue;
    EXPECT_GT(bench.time_ms(v), 0.0) << v.name;
    const VerifyResult r = bench.check(v, rows);
    EXPECT_TRUE(r.ok) << v.name << ": " << r.message;
  }
  EXPECT_GT(bench.time_cublas_ms(), 0.0);
  const VerifyResult r = bench.check_cublas(rows);
  EXPECT_TRUE(r.ok) << "cublas: " << r.message;
  EXPECT_NE(bench.cublas_algorithm().find("algo "), std::string::npos) << bench.cublas_algorithm();
}

// The bf16 attention bound (verify.hpp): O from the reference in double on
// bf16 inputs, with P rounded to bf16 for the numerator and O rounded to
// bf16, passes; the same with one key dropped, or O off by a few bounds,
// fails; inputs that are not bf16 are refused.
TEST(Bf16AttentionVerify, AcceptsRoundedWeightsRefusesADroppedKey) {
  const AttentionShape s{1, 1, 6, 40, 64};
  std::vector<float> q(s.q_elements()), k(s.kv_elements()), v(s.kv_elements()), o(q.size()),
      dropped(q.size());
  fill_random(std::span<float>(q), 7);
  fill_random(std::span<float>(k), 8);
  fill_random(std::span<float>(v), 9);
  for (auto* x : {&q, &k, &v}) round_to_bf16(std::span<float>(*x));
  const double scale = 1.0 / 8.0;
  for (std::ptrdiff_t i = 0; i < s.seq_q; ++i) {
    std::vector<double> w(s.seq_kv);
    for (std::ptrdiff_t j = 0; j < s.seq_kv; ++j) {
      double dot = 0.0;
      for (std::ptrdiff_t c = 0; c < 64; ++c) dot += double{q[i * 64 + c]} * k[j * 64 + c];
      w[j] = std::exp(scale * dot);
    }
    double sum = 0.0;
    for (double x : w) sum += x;
    for (std::ptrdiff_t c = 0; c < 64; ++c) {
      double num = 0.0, without = 0.0;
      for (std::ptrdiff_t j = 0; j < s.seq_kv; ++j) {
        const double term = round_to_bf16(static_cast<float>(w[j])) * double{v[j * 64 + c]};
        num += term;
        if (j != 17) without += term;
      }
      o[i * 64 + c] = round_to_bf16(static_cast<float>(num / sum));
      dropped[i * 64 + c] = round_to_bf16(static_cast<float>(without / (sum - w[17])));
    }
  }
  const AttentionOptions options;
  const std::vector<std::ptrdiff_t> rows = spread_rows(s.seq_q, s.seq_q);
  const VerifyResult honest = verify_attention_bf16_rows(s, q, k, v, o, options, rows);
  EXPECT_TRUE(honest.ok) << honest.message;
  EXPECT_GT(honest.max_bound_ratio, 0.0);
  EXPECT_FALSE(verify_attention_bf16_rows(s, q, k, v, dropped, options, rows).ok);
  o[3 * 64 + 5] += 0.02f;
  EXPECT_FALSE(verify_attention_bf16_rows(s, q, k, v, o, options, rows).ok);
  o[3 * 64 + 5] -= 0.02f;
  k[100] = std::nextafter(k[100], 2.0f);
  const VerifyResult refused = verify_attention_bf16_rows(s, q, k, v, o, options, rows);
  EXPECT_FALSE(refused.ok);
  EXPECT_NE(refused.message.find("K[100] is not a bf16 value"), std::string::npos)
      << refused.message;
}

TEST(GpuRegistry, Bf16AttentionRungsInOrderWithLessons) {
#ifdef LOCALITY_HAVE_CUDA
  ASSERT_EQ(gpu::bf16_attention_variants().size(), 4u);
#else
  EXPECT_TRUE(gpu::bf16_attention_variants().empty()) << "a build without CUDA has no GPU rungs";
#endif
  int rung = 1;
  for (const gpu::GpuBf16AttentionVariant& v : gpu::bf16_attention_variants()) {
    EXPECT_EQ(v.rung, rung++) << v.name;
    EXPECT_FALSE(v.lesson.empty()) << v.name;
    EXPECT_TRUE(v.min_sm == 80 || v.min_sm == 90) << v.name;
    EXPECT_EQ(gpu::find_bf16_attention_variant(v.name), &v);
    if (!gpu::query_device().available) {
      EXPECT_FALSE(gpu::bf16_unavailable_reason(v).empty()) << v.name;
      const AttentionShape s{1, 1, 4, 4, 64};
      std::vector<float> x(s.q_elements()), o(s.q_elements());
      EXPECT_THROW(gpu::attention_bf16(v, s, x, x, x, o), gpu::GpuError);
    }
  }
  EXPECT_EQ(gpu::find_bf16_attention_variant("flash2"), nullptr);
}

// Every bf16 attention rung against the Eigen reference in double from the
// same bf16 inputs, with the bf16 bound, O poisoned: the float rungs' shapes
// at the head dims the rung takes, and its refusals.
class GpuBf16AttentionRung : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    variant_ = gpu::find_bf16_attention_variant(GetParam());
    ASSERT_NE(variant_, nullptr);
    if (const std::string why = gpu::bf16_unavailable_reason(*variant_); !why.empty()) {
      GTEST_SKIP() << why;
    }
  }
  void check(const AttentionShape& s, bool causal, std::uint64_t seed, float q_gain = 1.0f,
             bool outliers = false) {
    std::vector<float> q(s.q_elements()), k(s.kv_elements()), v(s.kv_elements());
    fill_random(std::span<float>(q), seed);
    fill_random(std::span<float>(k), seed + 1);
    fill_random(std::span<float>(v), seed + 2);
    for (float& x : q) x *= q_gain;
    if (outliers) {
      for (std::size_t i = 0; i < k.size(); i += 97) k[i] *= 10.0f, v[i] *= 10.0f;
    }
    run_and_verify(s, causal, q, k, v);
  }
  std::vector<float> run_and_verify(const AttentionShape& s, bool causal, std::vector<float> q,
                                    std::vector<float> k, std::vector<float> v) {
    for (auto* x : {&q, &k, &v}) round_to_bf16(std::span<float>(*x));
    std::vector<float> o(s.q_elements());
    const AttentionOptions options{std::nullopt, causal};
    gpu::attention_bf16(*variant_, s, q, k, v, o, options);
    const VerifyResult r = verify_attention_bf16_rows(
        s, q, k, v, o, options,
        spread_rows(s.batch * s.heads * s.seq_q, s.batch * s.heads * s.seq_q));
    EXPECT_TRUE(r.ok) << GetParam() << " [" << s.batch << "," << s.heads << "," << s.seq_q << ","
                      << s.seq_kv << "," << s.head_dim << "]" << (causal ? " causal" : "") << ": "
                      << r.message;
    return o;
  }
  const gpu::GpuBf16AttentionVariant* variant_ = nullptr;
};

TEST_P(GpuBf16AttentionRung, OneQueryOneKey) {
  check({1, 1, 1, 1, 64}, false, 1);
  check({1, 1, 1, 1, 128}, true, 2);
}

TEST_P(GpuBf16AttentionRung, SeqQAndSeqKvDifferBothWays) {
  for (bool causal : {false, true}) {
    check({2, 3, 37, 53, 64}, causal, 3);
    check({1, 2, 53, 37, 128}, causal, 4);
    check({1, 1, 200, 7, 64}, causal, 5);
  }
}

TEST_P(GpuBf16AttentionRung, ManyQueryTilesWithRaggedEnds) {
  for (bool causal : {false, true}) {
    check({2, 2, 517, 389, 64}, causal, 30);
    check({1, 3, 300, 1025, 128}, causal, 31);
  }
}

TEST_P(GpuBf16AttentionRung, ScoresOfLargeMagnitudeAndOutliers) {
  for (bool causal : {false, true}) {
    check({1, 2, 130, 130, 64}, causal, 40, 1000.0f);  // scores about +-1e4
    check({1, 2, 130, 257, 128}, causal, 41, 1.0f, true);
  }
}

TEST_P(GpuBf16AttentionRung, RefusesOtherHeadDims) {
  for (std::ptrdiff_t d : {1, 32, 63, 96, 256}) {
    const AttentionShape s{1, 1, 8, 8, d};
    std::vector<float> x(s.q_elements()), o(s.q_elements());
    EXPECT_THROW(gpu::attention_bf16(*variant_, s, x, x, x, o), ShapeError) << d;
  }
}

// attention.hpp's rules: a NaN in row i of Q reaches row i of O only; a NaN
// or an infinity in V at key j reaches the rows that see key j, and with the
// causal mask never the rows before j, also inside a diagonal tile.
TEST_P(GpuBf16AttentionRung, NonFiniteInputsPropagateAsDocumented) {
  const AttentionShape s{1, 2, 40, 40, 64};
  std::vector<float> q(s.q_elements()), k(s.kv_elements()), v(s.kv_elements());
  fill_random(std::span<float>(q), 50);
  fill_random(std::span<float>(k), 51);
  fill_random(std::span<float>(v), 52);
  q[7 * 64 + 3] = std::numeric_limits<float>::quiet_NaN();
  k[(40 + 35) * 64 + 1] = std::numeric_limits<float>::quiet_NaN();  // head 1, key 35
  v[(40 + 20) * 64 + 5] = std::numeric_limits<float>::infinity();   // head 1, key 20
  v[(40 + 30) * 64 + 6] = std::numeric_limits<float>::quiet_NaN();  // head 1, key 30
  v[(40 + 3) * 64 + 9] = -std::numeric_limits<float>::infinity();   // head 1, key 3
  run_and_verify(s, false, q, k, v);
  const std::vector<float> o = run_and_verify(s, true, q, k, v);
  // The causal run: head 1's rows before key 3 stay finite, and rows before
  // key 20 finite but in column 9.
  for (std::ptrdiff_t i = 0; i < 20; ++i) {
    for (std::ptrdiff_t c = 0; c < 64; ++c) {
      if (i >= 3 && c == 9) continue;
      ASSERT_TRUE(std::isfinite(o[(40 + i) * 64 + c])) << "row " << i << " col " << c;
    }
  }
}

std::vector<std::string> bf16_attention_rung_names() {
  std::vector<std::string> names;
  for (const gpu::GpuBf16AttentionVariant& v : gpu::bf16_attention_variants()) {
    names.emplace_back(v.name);
  }
  return names;
}

INSTANTIATE_TEST_SUITE_P(Gpu, GpuBf16AttentionRung,
                         ::testing::ValuesIn(bf16_attention_rung_names()), rung_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GpuBf16AttentionRung);

}  // namespace
}  // namespace locality
