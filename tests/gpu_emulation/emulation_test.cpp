// Every GPU rung run on the CPU (those not yet run on a GPU, and the others
// as a guard against a change that breaks them): their kernels compiled
// from the same .cu files (rewrite.py changes only the launches,
// shared-memory declarations and includes), each CUDA thread a std::thread
// (cuda_runtime.h here), wmma and the PTX instructions emulated from their
// documented semantics (mma.h, ptx.cuh). Checked against Eigen in double
// with the verifier's bounds, as tests/gpu_test.cpp checks them on a GPU, on
// the same kinds of shapes, smaller (every CUDA thread is a CPU thread
// here). What it proves: the indexing, masking, swizzles and pipelines
// compute the right answer under CUDA's semantics, every shared-memory
// address an instruction is given is one the GPU accepts, and the rungs
// that say their ldmatrix loads are free of bank conflicts make them so
// (banks.hpp). What it cannot: speed, or what a race the barriers miss
// would do on hardware.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "banks.hpp"
#include "locality/attention.hpp"
#include "locality/bf16.hpp"
#include "locality/gpu.hpp"
#include "locality/matrix.hpp"
#include "locality/verify.hpp"

namespace locality::gpu {
// The rungs come from the ladders' registries (compiled here as they are).
void PrintTo(const GpuMatmulVariant& v, std::ostream* out) { *out << v.name; }
void PrintTo(const GpuAttentionVariant& v, std::ostream* out) { *out << v.name; }
void PrintTo(const GpuBf16MatmulVariant& v, std::ostream* out) { *out << v.name; }
void PrintTo(const GpuBf16AttentionVariant& v, std::ostream* out) { *out << v.name; }
}  // namespace locality::gpu

namespace locality {
namespace {

// Rungs the benchmarks keep to short sequences (naive: a thread per score)
// are kept to small shapes here too: every CUDA thread is a CPU thread.
bool short_sequences_only(const gpu::GpuAttentionVariant& v) {
  return v.largest_timed != std::numeric_limits<std::int64_t>::max();
}

// The rungs whose headers say their ldmatrix loads are free of bank
// conflicts: the emulation counts the passes through the banks.
bool conflict_free_ldmatrix(std::string_view rung) {
  return rung == "mma_sync" || rung == "flash2_mma";
}

struct Inputs {
  std::vector<float> q, k, v;
};

// Random Q, K, V for head 0 of `s` onwards; `gain` scales Q (large scores);
// `special` plants NaN and infinities (1: NaN in Q and in keys 7 and 35,
// -inf, +inf and NaN in V at keys 3, 20 and 30; 2: +inf in Q, -inf in K).
Inputs attention_inputs(const AttentionShape& s, std::uint64_t seed, float gain, int special) {
  Inputs in{std::vector<float>(s.q_elements()), std::vector<float>(s.kv_elements()),
            std::vector<float>(s.kv_elements())};
  fill_random(std::span<float>(in.q), seed);
  fill_random(std::span<float>(in.k), seed + 1);
  fill_random(std::span<float>(in.v), seed + 2);
  for (float& x : in.q) x *= gain;
  const std::ptrdiff_t d = s.head_dim;
  constexpr float kInf = std::numeric_limits<float>::infinity();
  if (special == 1) {
    in.q[3 * d + 1] = std::nanf("");
    in.k[7 * d] = std::nanf("");
    in.k[35 * d] = std::nanf("");
    in.v[3 * d + 9 % d] = -kInf;
    in.v[20 * d + 2 % d] = kInf;
    in.v[30 * d + 3 % d] = std::nanf("");
  } else if (special == 2) {
    in.q[5 * d + 2 % d] = kInf;
    in.k[9 * d + 1 % d] = -kInf;
  }
  return in;
}

class EmulatedAttention : public ::testing::TestWithParam<gpu::GpuAttentionVariant> {
 protected:
  void check(AttentionShape s, bool causal, std::uint64_t seed, float gain = 1.0f,
             int special = 0) {
    auto [q, k, v] = attention_inputs(s, seed, gain, special);
    std::vector<float> o(s.q_elements());
    poison(std::span<float>(o));
    const AttentionOptions options{std::nullopt, causal};
    const AttentionArgs args{
        s, q.data(), k.data(), v.data(), o.data(), attention_scale(s, options), causal};
    std::vector<float> workspace(GetParam().workspace_floats(s));
    GetParam().run(args, workspace.empty() ? nullptr : workspace.data());
    const VerifyResult r = verify_attention(s, q, k, v, o, options);
    EXPECT_TRUE(r.ok) << GetParam().name << " [" << s.batch << "," << s.heads << "," << s.seq_q
                      << "," << s.seq_kv << "," << s.head_dim << "]" << (causal ? " causal" : "")
                      << ": " << r.message;
  }
};

TEST_P(EmulatedAttention, SeqQAndSeqKvDifferBothWays) {
  for (bool causal : {false, true}) {
    check({1, 1, 1, 1, 1}, causal, 1);
    check({2, 3, 37, 53, 64}, causal, 3);
    check({1, 2, 53, 37, 128}, causal, 4);
    check({1, 1, 200, 7, 16}, causal, 5);
  }
}

TEST_P(EmulatedAttention, EveryPaddedHeadDim) {
  for (std::ptrdiff_t d : {1, 3, 63, 65, 100, 129, 256}) {
    check({1, 2, 33, 71, d}, false, 10 + d);
    check({1, 2, 71, 33, d}, true, 20 + d);
  }
}

TEST_P(EmulatedAttention, ManyTilesLargeScoresAndNonFiniteInputs) {
  for (bool causal : {false, true}) {
    if (!short_sequences_only(GetParam())) check({1, 3, 300, 1025, 128}, causal, 31);
    check({1, 2, 130, 130, 64}, causal, 40, 1000.0f);
    check({1, 2, 40, 40, 32}, causal, 50, 1.0f, 1);
    check({1, 2, 40, 40, 32}, causal, 51, 1.0f, 2);
    check({1, 1, 150, 150, 64}, causal, 52, 1.0f, 1);
  }
}

INSTANTIATE_TEST_SUITE_P(Emulated, EmulatedAttention,
                         ::testing::ValuesIn(gpu::attention_variants()),
                         [](const auto& p) { return std::string(p.param.name); });

// The float matmul ladder, every rung of its registry: a GPU run has
// checked them all, so here they guard against a change that breaks them.
class EmulatedFloatMatmul : public ::testing::TestWithParam<gpu::GpuMatmulVariant> {
 protected:
  void check(int m, int n, int k, std::uint64_t seed) {
    Matrix<float> a(m, k), b(k, n), c(m, n);
    fill_random(a.view(), seed);
    fill_random(b.view(), seed + 1);
    poison(c.view());
    GetParam().run(a.data(), b.data(), c.data(), m, n, k);
    const VerifyResult r = verify_matmul(a.cview(), b.cview(), c.cview());
    EXPECT_TRUE(r.ok) << GetParam().name << " " << m << "x" << n << "x" << k << ": " << r.message;
  }
};

// Both paths: 128-bit where n and k are multiples of 4, element by element
// elsewhere; edges past every tile.
TEST_P(EmulatedFloatMatmul, NotMultiplesOfAnyTile) {
  check(1, 1, 1, 1);
  check(129, 131, 9, 5);
  check(130, 132, 20, 7);
  check(65, 257, 33, 6);
  check(256, 256, 48, 8);  // whole tiles: the unchecked paths
}

INSTANTIATE_TEST_SUITE_P(Emulated, EmulatedFloatMatmul, ::testing::ValuesIn(gpu::matmul_variants()),
                         [](const auto& p) { return std::string(p.param.name); });

// The bank rule itself, on the layouts the rungs could have used: rows of a
// tile 64 bf16 wide (128 bytes), 8 consecutive rows of one 16-byte column.
TEST(EmulatedLdmatrix, CountsTheBankConflictsOfALayout) {
  std::uint64_t plain[8], swizzled[8], half_width[8], padded[8], broadcast[8];
  for (std::uint64_t r = 0; r < 8; ++r) {
    plain[r] = 128 * r + 16 * 3;           // every row in bank group 3
    swizzled[r] = 128 * r + 16 * (3 ^ r);  // chunk c of row r at c xor r
    half_width[r] = 64 * r;                // 64-byte rows: two rows per 128 bytes
    padded[r] = (128 + 16) * r;            // one 16-byte pad per row
    broadcast[r] = 256;                    // one row given eight times
  }
  EXPECT_EQ(emu::ldmatrix_wavefronts(plain), 8);
  EXPECT_EQ(emu::ldmatrix_wavefronts(swizzled), 1);
  EXPECT_EQ(emu::ldmatrix_wavefronts(half_width), 4);
  EXPECT_EQ(emu::ldmatrix_wavefronts(padded), 1);
  EXPECT_EQ(emu::ldmatrix_wavefronts(broadcast), 1);
}

// After a rung's run: if its header says its ldmatrix loads are free of
// bank conflicts, every matrix took one pass through the banks; `what`
// names the run.
void expect_conflict_free_ldmatrix(std::string_view rung, const std::string& what) {
  if (!conflict_free_ldmatrix(rung)) return;
  const std::uint64_t matrices = emu::ldmatrix_count.matrices;
  EXPECT_GT(matrices, 0u) << what << ": no ldmatrix ran";
  EXPECT_EQ(emu::ldmatrix_count.wavefronts.load(), matrices)
      << what << ": ldmatrix bank conflicts (passes through the banks against matrices read)";
}

class EmulatedBf16Matmul : public ::testing::TestWithParam<gpu::GpuBf16MatmulVariant> {
 protected:
  void check(int m, int n, int k, std::uint64_t seed, bool with_nan = false) {
    Matrix<float> a(m, k), b(k, n), c(m, n);
    fill_random(a.view(), seed);
    fill_random(b.view(), seed + 1);
    if (with_nan) a(m / 2, k / 2) = std::nanf("");
    round_to_bf16(a.view());  // the values the device computes with, NaN kept
    round_to_bf16(b.view());
    const std::vector<std::uint16_t> ha = bf16_bits(a.cview()), hb = bf16_bits(b.cview());
    poison(c.view());  // c is contiguous (ld = n), as the rungs want
    emu::ldmatrix_count.reset();
    GetParam().run(ha.data(), hb.data(), c.data(), m, n, k);
    const std::string what = std::string(GetParam().name) + " " + std::to_string(m) + "x" +
                             std::to_string(n) + "x" + std::to_string(k);
    const VerifyResult r =
        verify_matmul_bf16_rows(a.cview(), b.cview(), c.cview(), spread_rows(m, m));
    EXPECT_TRUE(r.ok) << what << ": " << r.message;
    expect_conflict_free_ldmatrix(GetParam().name, what);
  }
  int ok(int x) const {
    return (x + GetParam().multiple - 1) / GetParam().multiple * GetParam().multiple;
  }
};

TEST_P(EmulatedBf16Matmul, NotMultiplesOfAnyTile) {
  check(1, ok(1), ok(1), 1);
  check(37, ok(24), ok(40), 4);
  check(129, ok(136), ok(72), 2);
  check(130, ok(264), ok(200), 3);
  check(129, ok(8), ok(520), 6);
  check(1100, ok(264), ok(16), 7);  // more tile-rows than one group of wgmma_ws's order
}

TEST_P(EmulatedBf16Matmul, AnySizeWhereItTakesAny) {
  if (GetParam().multiple > 1) GTEST_SKIP() << "takes only multiples of " << GetParam().multiple;
  check(33, 71, 13, 8);
  check(5, 3, 1, 9);
  check(150, 130, 35, 11);
}

TEST_P(EmulatedBf16Matmul, NaNPropagatesToItsRow) { check(64, 64, 64, 10, true); }

INSTANTIATE_TEST_SUITE_P(Emulated, EmulatedBf16Matmul,
                         ::testing::ValuesIn(gpu::bf16_matmul_variants()),
                         [](const auto& p) { return std::string(p.param.name); });

// The bf16 attention rungs: Q, K and V rounded to bf16, O written in bf16,
// checked with the bf16 bound; the diagonal steps' non-finite V included.
class EmulatedBf16Attention : public ::testing::TestWithParam<gpu::GpuBf16AttentionVariant> {
 protected:
  // As EmulatedAttention::check; `special` 1 puts V's non-finite values
  // inside diagonal 16-key steps (keys 3, 20 and 30).
  void check(AttentionShape s, bool causal, std::uint64_t seed, float gain = 1.0f,
             int special = 0) {
    auto [q, k, v] = attention_inputs(s, seed, gain, special);
    std::vector<float> o(s.q_elements());
    for (auto* x : {&q, &k, &v}) round_to_bf16(std::span<float>(*x));
    const std::vector<std::uint16_t> hq = bf16_bits(std::span<const float>(q)),
                                     hk = bf16_bits(std::span<const float>(k)),
                                     hv = bf16_bits(std::span<const float>(v));
    std::vector<std::uint16_t> ho(o.size(), 0xffff);  // NaN: an unwritten element shows
    const AttentionOptions options{std::nullopt, causal};
    emu::ldmatrix_count.reset();
    GetParam().run(
        {s, hq.data(), hk.data(), hv.data(), ho.data(), attention_scale(s, options), causal});
    for (std::size_t i = 0; i < o.size(); ++i) o[i] = from_bf16_bits(ho[i]);
    const std::string what = std::string(GetParam().name) + " [" + std::to_string(s.batch) + "," +
                             std::to_string(s.heads) + "," + std::to_string(s.seq_q) + "," +
                             std::to_string(s.seq_kv) + "," + std::to_string(s.head_dim) + "]" +
                             (causal ? " causal" : "");
    const VerifyResult r = verify_attention_bf16_rows(
        s, q, k, v, o, options,
        spread_rows(s.batch * s.heads * s.seq_q, s.batch * s.heads * s.seq_q));
    EXPECT_TRUE(r.ok) << what << ": " << r.message;
    expect_conflict_free_ldmatrix(GetParam().name, what);
  }
};

TEST_P(EmulatedBf16Attention, SeqQAndSeqKvDifferBothWays) {
  for (bool causal : {false, true}) {
    check({1, 1, 1, 1, 64}, causal, 1);
    check({2, 3, 37, 53, 64}, causal, 3);
    check({1, 2, 53, 37, 128}, causal, 4);
    check({1, 1, 200, 7, 64}, causal, 5);
  }
}

TEST_P(EmulatedBf16Attention, ManyTilesLargeScoresAndNonFiniteInputs) {
  for (bool causal : {false, true}) {
    check({1, 2, 300, 389, 128}, causal, 31);
    check({1, 1, 130, 130, 64}, causal, 40, 1000.0f);
    check({1, 2, 40, 40, 64}, causal, 50, 1.0f, 1);
    check({1, 1, 150, 150, 128}, causal, 52, 1.0f, 1);
  }
}

INSTANTIATE_TEST_SUITE_P(Emulated, EmulatedBf16Attention,
                         ::testing::ValuesIn(gpu::bf16_attention_variants()),
                         [](const auto& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace locality
