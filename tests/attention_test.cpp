// Every registered CPU attention rung against Eigen (in double), at 1 and 2
// threads: fixed awkward shapes, causal and not, large scores, and 30 random
// shapes per rung from a fixed seed. Also the workspace each rung declares,
// the exponential the rungs share, and the argument checks.
#include "locality/attention.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common.hpp"
#include "locality/verify.hpp"
#include "test_util.hpp"

namespace locality {
namespace {

struct Problem {
  AttentionShape shape;
  bool causal = false;
  float q_gain = 1.0f;  // Q is multiplied by this (large scores)
  std::optional<float> scale;
};

std::string describe(const Problem& p) {
  std::ostringstream out;
  out << "[" << p.shape.batch << "," << p.shape.heads << "," << p.shape.seq_q << ","
      << p.shape.seq_kv << "," << p.shape.head_dim << "]" << (p.causal ? " causal" : "")
      << (p.q_gain != 1.0f ? " q_gain " + std::to_string(p.q_gain) : "")
      << (p.scale ? " scale " + std::to_string(*p.scale) : "");
  return out.str();
}

using Case = testing::RungCase<AttentionVariant>;

// Random non-zero Q, K, V; O poisoned with NaN; the workspace exactly the size
// the rung declares, followed by a sentinel the rung must not touch.
void check_problem(const Case& c, const Problem& p, std::uint64_t seed) {
  const AttentionShape& s = p.shape;
  std::vector<float> q(s.q_elements()), k(s.kv_elements()), v(s.kv_elements()), o(s.q_elements());
  fill_random(std::span<float>(q), seed);
  fill_random(std::span<float>(k), seed + 1);
  fill_random(std::span<float>(v), seed + 2);
  for (float& x : q) x *= p.q_gain;
  poison(std::span<float>(o));
  const AttentionOptions options{p.scale, p.causal};

  constexpr float kSentinel = 12345.0f;
  constexpr std::size_t kTail = 64;
  const std::size_t need = attention_workspace_bytes(*c.variant, s, c.threads) / sizeof(float);
  std::vector<float> workspace(need + kTail, kSentinel);
  attention(*c.variant, s, q, k, v, o, options, c.threads,
            std::span<float>(workspace.data(), need));

  const VerifyResult r = verify_attention(s, q, k, v, o, options);
  EXPECT_TRUE(r.ok) << describe(p) << ": " << r.message;
  for (std::size_t t = need; t < workspace.size(); ++t) {
    if (workspace[t] != kSentinel) {
      ADD_FAILURE() << describe(p) << ": wrote past its declared workspace";
      break;
    }
  }
}

class AttentionRung : public ::testing::TestWithParam<Case> {
 protected:
  void check(const Problem& p, std::uint64_t seed) { check_problem(GetParam(), p, seed); }
  void both(AttentionShape s, std::uint64_t seed) {
    check({s, false, 1.0f, std::nullopt}, seed);
    check({s, true, 1.0f, std::nullopt}, seed + 7);
  }
};

// Block sizes crossed: flash query blocks of 16/32 rows, key blocks of 192 or
// 384 keys, micro-kernel panels of 4/6/12; SIMD widths of 8 and 16 floats.
TEST_P(AttentionRung, SingleQueryAndKey) {
  both({1, 1, 1, 1, 1}, 1);
  both({1, 1, 1, 1, 64}, 2);
}

TEST_P(AttentionRung, SeqOne) {
  both({1, 1, 1, 37, 16}, 3);  // one query, many keys
  both({1, 1, 37, 1, 16}, 4);  // many queries, one key
}

TEST_P(AttentionRung, Primes) {
  both({1, 1, 7, 13, 5}, 5);
  both({1, 1, 31, 37, 41}, 6);
  both({1, 1, 97, 101, 67}, 7);
}

TEST_P(AttentionRung, SeqQDiffersFromSeqKv) {
  both({1, 1, 33, 200, 64}, 8);   // fewer queries than keys
  both({1, 1, 200, 33, 64}, 9);   // more queries than keys: rows >= 33 see all keys
  both({1, 1, 65, 385, 32}, 10);  // past two key blocks
  both({1, 1, 385, 65, 32}, 11);
}

TEST_P(AttentionRung, HeadDimsNotMultiplesOfTheSimdWidth) {
  for (std::ptrdiff_t d : {1, 3, 13, 17, 33, 80, 127, 129, 256}) both({1, 1, 19, 23, d}, 12 + d);
}

TEST_P(AttentionRung, BatchAndHeads) {
  both({2, 3, 17, 29, 24}, 20);
  both({3, 2, 40, 40, 64}, 21);
}

TEST_P(AttentionRung, LargeScores) {
  // Q scaled so that scores reach about +-1e4: the softmax must subtract the
  // maximum before exponentiating, or it overflows to inf and NaN.
  for (bool causal : {false, true}) {
    check({{1, 2, 45, 70, 64}, causal, 2500.0f, std::nullopt}, 30);
    check({{1, 1, 33, 33, 128}, causal, -2500.0f, std::nullopt}, 31);
  }
}

TEST_P(AttentionRung, ExplicitScale) {
  check({{1, 1, 20, 30, 16}, false, 1.0f, 0.5f}, 40);
  check({{1, 1, 20, 30, 16}, true, 1.0f, -2.0f}, 41);
}

TEST_P(AttentionRung, RandomShapes) {
  std::mt19937_64 rng(2024);
  const auto pick = [&](std::ptrdiff_t lo, std::ptrdiff_t hi) {
    return std::uniform_int_distribution<std::ptrdiff_t>(lo, hi)(rng);
  };
  for (int t = 0; t < 30; ++t) {
    const Problem p{{pick(1, 2), pick(1, 3), pick(1, 250), pick(1, 250), pick(1, 160)},
                    pick(0, 1) == 1,
                    1.0f,
                    std::nullopt};
    check(p, 100 + static_cast<std::uint64_t>(t));
  }
}

TEST_P(AttentionRung, EmptyProblemsAreNoOps) {
  const Case& c = GetParam();
  for (const AttentionShape s : {AttentionShape{0, 1, 5, 5, 8}, AttentionShape{1, 0, 5, 5, 8},
                                 AttentionShape{1, 1, 0, 5, 8}}) {
    std::vector<float> q(s.q_elements()), k(s.kv_elements()), v(s.kv_elements()), o(s.q_elements());
    EXPECT_NO_THROW(attention(*c.variant, s, q, k, v, o, {}, c.threads));
  }
}

INSTANTIATE_TEST_SUITE_P(Cpu, AttentionRung,
                         ::testing::ValuesIn(testing::rung_cases(cpu::attention_variants())),
                         testing::rung_case_name<AttentionVariant>);

// The ladder's point: the flash rungs' workspace does not grow with
// seq_q x seq_kv (not at all with seq_q, linearly with seq_kv), the
// materializing rungs' does.
TEST(AttentionWorkspace, FlashDoesNotGrowWithTheScoreMatrix) {
  for (const AttentionVariant& v : cpu::attention_variants()) {
    for (int threads : {1, 2}) {
      const auto bytes = [&](std::ptrdiff_t sq, std::ptrdiff_t skv) {
        return attention_workspace_bytes(v, {1, 1, sq, skv, 64}, threads);
      };
      const bool flash = v.name.find("flash") != std::string_view::npos;
      if (flash) {
        EXPECT_EQ(bytes(1024, 4096), bytes(8192, 4096)) << v.name;
        EXPECT_LE(bytes(8192, 8192), 2 * bytes(8192, 4096)) << v.name;
        EXPECT_LT(bytes(8192, 8192), std::size_t{8192} * 8192 * sizeof(float) / 16) << v.name;
      } else {
        EXPECT_GE(bytes(4096, 4096), std::size_t{4096} * 4096 * sizeof(float) / threads)
            << v.name << " materializes S";
      }
    }
  }
}

TEST(AttentionExp2, RelativeErrorWithinTheVerifiersBound) {
  double worst = 0.0;
  const auto probe = [&](float x) {
    const double want = std::exp2(static_cast<double>(x));
    const double got = cpu::exp2_nonpositive(x);
    worst = std::max(worst, std::abs(got - want) / want);
  };
  // The vector form (one register's lanes) is what the flash rungs run.
  const auto probe_vec = [&](float x) {
    cpu::Vec lanes{};
    for (int i = 0; i < cpu::kLanes; ++i) lanes[i] = x * static_cast<float>(i + 1) / cpu::kLanes;
    const cpu::Vec got = cpu::exp2_nonpositive(lanes);
    for (int i = 0; i < cpu::kLanes; ++i) {
      const double want = std::exp2(static_cast<double>(lanes[i]));
      worst = std::max(worst, std::abs(got[i] - want) / want);
    }
  };
  constexpr int kSteps = 4'000'000;
  for (int i = 0; i <= kSteps; ++i) probe(-126.0f * static_cast<float>(i) / kSteps);
  // Every float in [-1, -1/4]: the reduced argument sweeps [-1/2, 1/2] twice.
  for (float x = -1.0f; x <= -0.25f; x = std::nextafter(x, 0.0f)) probe(x);
  for (int i = 0; i <= kSteps / 16; ++i) probe_vec(-126.0f * static_cast<float>(i) / (kSteps / 16));
  EXPECT_LE(worst, kExp2MaxRelError);
  EXPECT_EQ(cpu::exp2_nonpositive(0.0f), 1.0f);
  EXPECT_EQ(cpu::exp2_nonpositive(-1.0f), 0.5f);
  EXPECT_EQ(cpu::exp2_nonpositive(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_TRUE(std::isnan(cpu::exp2_nonpositive(std::numeric_limits<float>::quiet_NaN())));
  cpu::Vec edges{};
  edges[0] = -std::numeric_limits<float>::infinity();
  edges[1] = std::numeric_limits<float>::quiet_NaN();
  edges[2] = -1.0f;
  const cpu::Vec e = cpu::exp2_nonpositive(edges);
  EXPECT_EQ(e[0], 0.0f);
  EXPECT_TRUE(std::isnan(e[1]));
  EXPECT_EQ(e[2], 0.5f);
  EXPECT_EQ(e[3], 1.0f);  // exp2(0)
}

// The verifier would catch a rung that drops one key.
TEST(AttentionVerifier, CatchesADroppedKey) {
  const AttentionShape s{1, 1, 8, 300, 64};
  std::vector<float> q(s.q_elements()), k(s.kv_elements()), v(s.kv_elements()), o(s.q_elements());
  fill_random(std::span<float>(q), 1);
  fill_random(std::span<float>(k), 2);
  fill_random(std::span<float>(v), 3);
  attention(*cpu::find_attention_variant("naive"), s, q, k, v, o);
  ASSERT_TRUE(verify_attention(s, q, k, v, o, {}).ok);
  // The same rows without key 299: what a kernel that stops one key short gives.
  const AttentionShape shorter{1, 1, 8, 299, 64};
  std::vector<float> o_short(s.q_elements());
  attention(*cpu::find_attention_variant("naive"), shorter, q,
            std::span<const float>(k).first(299 * 64), std::span<const float>(v).first(299 * 64),
            o_short);
  const VerifyResult r = verify_attention(s, q, k, v, o_short, {});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("reference"), std::string::npos);
  std::vector<float> poisoned(s.q_elements(), std::numeric_limits<float>::quiet_NaN());
  EXPECT_FALSE(verify_attention(s, q, k, v, poisoned, {}).ok);
}

// Address space reserved and never touched (PROT_NONE): spans as large as a
// caller may pass, at no memory cost; any access would crash the test.
class Reserved {
 public:
  explicit Reserved(std::size_t floats) : bytes_(floats * sizeof(float)) {
    p_ = mmap(nullptr, bytes_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  }
  ~Reserved() {
    if (p_ != MAP_FAILED) munmap(p_, bytes_);
  }
  Reserved(const Reserved&) = delete;
  Reserved& operator=(const Reserved&) = delete;
  bool ok() const { return p_ != MAP_FAILED; }
  std::span<float> span() { return {static_cast<float*>(p_), bytes_ / sizeof(float)}; }

 private:
  std::size_t bytes_;
  void* p_;
};

// Sizes near 2^31, 2^32 and 2^63, for every rung: the workspace is either
// refused (ShapeError) or at least what the rung must hold, never a wrapped,
// small number. The materializing rungs (0-2) hold a slab of the score matrix.
TEST(AttentionWorkspace, NeverWrapsNearTwoTo31_32_63) {
  __extension__ using Wide = unsigned __int128;  // exact: no product below can wrap
  const std::ptrdiff_t p31 = std::ptrdiff_t{1} << 31, p32 = std::ptrdiff_t{1} << 32,
                       p62 = std::ptrdiff_t{1} << 62,
                       max = std::numeric_limits<std::ptrdiff_t>::max();
  const std::ptrdiff_t sizes[] = {p31 - 1, p31, p31 + 1, p32 - 1, p32, p32 + 1, p62, max};
  int refused = 0, answered = 0;
  for (const AttentionVariant& v : cpu::attention_variants()) {
    for (std::ptrdiff_t a : sizes) {
      for (const auto& [sq, skv] :
           {std::pair{a, a}, std::pair{std::ptrdiff_t{1}, a}, std::pair{a, std::ptrdiff_t{1}}}) {
        for (std::ptrdiff_t d : {1, 64}) {
          for (int threads : {1, 2, kMaxThreads}) {
            const AttentionShape shape{1, 1, sq, skv, d};
            std::size_t bytes = 0;
            try {
              bytes = attention_workspace_bytes(v, shape, threads);
            } catch (const ShapeError&) {
              ++refused;
              continue;
            }
            ++answered;
            EXPECT_LE(bytes, static_cast<std::size_t>(max)) << v.name;
            Wide need = static_cast<Wide>(skv) * sizeof(float);  // a row of S, or K
            if (v.rung <= 2) {
              const Wide team = static_cast<Wide>(std::min<std::ptrdiff_t>(threads, sq));
              const Wide slab =
                  std::min<Wide>(static_cast<Wide>(sq), (static_cast<Wide>(sq) + team - 1) / team);
              need = slab * static_cast<Wide>(skv) * sizeof(float);
            }
            EXPECT_GE(static_cast<Wide>(bytes), need)
                << v.name << " seq_q " << sq << " seq_kv " << skv << " head_dim " << d
                << " threads " << threads << ": the workspace size wrapped";
          }
        }
      }
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(answered, 0);
}

TEST(AttentionWorkspace, RefusesThreadCountsAsAttentionDoes) {
  for (const AttentionVariant& v : cpu::attention_variants()) {
    for (int threads : {0, -1, kMaxThreads + 1, std::numeric_limits<int>::min()}) {
      EXPECT_THROW(attention_workspace_bytes(v, {1, 1, 4, 4, 8}, threads), std::invalid_argument)
          << v.name << " " << threads;
    }
  }
}

// The reported crash: naive at seq_q = seq_kv = 2^32, head_dim 1, whose
// workspace size wrapped to 60 bytes; attention() then wrote past it. Now both
// entry points refuse the shape before touching any of the tensors.
TEST(AttentionArgs, AWorkspacePastTheAddressSpaceIsRefusedUntouched) {
  const std::size_t n = std::size_t{1} << 32;
  Reserved q(n), k(n), v(n), o(n);
  ASSERT_TRUE(q.ok() && k.ok() && v.ok() && o.ok()) << "cannot reserve 4 x 16 GiB of address space";
  const AttentionShape shape{1, 1, std::ptrdiff_t{1} << 32, std::ptrdiff_t{1} << 32, 1};
  for (const AttentionVariant& rung : cpu::attention_variants()) {
    if (rung.rung > 2) continue;  // the flash rungs' workspace is small: they would run
    EXPECT_THROW(attention_workspace_bytes(rung, shape, 1), ShapeError) << rung.name;
    EXPECT_THROW(attention(rung, shape, q.span(), k.span(), v.span(), o.span()), ShapeError)
        << rung.name;
    std::vector<float> small(15);
    EXPECT_THROW(attention(rung, shape, q.span(), k.span(), v.span(), o.span(), {}, 1, small),
                 ShapeError)
        << rung.name;
  }
}

TEST(AttentionArgs, BadShapesAndSpansAreRefused) {
  const AttentionVariant& naive = *cpu::find_attention_variant("naive");
  const AttentionShape s{1, 2, 4, 5, 8};
  std::vector<float> q(s.q_elements()), k(s.kv_elements()), v(s.kv_elements()), o(s.q_elements());
  EXPECT_THROW(attention(naive, {1, 2, 4, 5, 9}, q, k, v, o), ShapeError);  // sizes mismatch
  EXPECT_THROW(attention(naive, s, q, k, std::span<const float>(v).first(8), o), ShapeError);
  EXPECT_THROW(attention(naive, {1, 1, 4, 0, 8}, {}, {}, {}, {}), ShapeError);  // no keys
  EXPECT_THROW(attention(naive, {1, 1, 4, 5, 0}, {}, {}, {}, {}), ShapeError);  // head_dim 0
  EXPECT_THROW(attention(naive, {1, 1, 1, 1, kMaxHeadDim + 1}, {}, {}, {}, {}), ShapeError);
  EXPECT_THROW(attention(naive, {-1, 1, 4, 5, 8}, {}, {}, {}, {}), ShapeError);
  const std::ptrdiff_t huge = std::ptrdiff_t{1} << 40;
  EXPECT_THROW(attention(naive, {huge, huge, 4, 5, 8}, {}, {}, {}, {}), ShapeError);
  EXPECT_THROW(attention(naive, s, q, k, v, std::span<float>(k).first(o.size())), ShapeError)
      << "O overlapping K";
  EXPECT_THROW(attention(naive, s, q, k, v, o, {}, 0), std::invalid_argument);
  EXPECT_THROW(attention(naive, s, q, k, v, o, {std::numeric_limits<float>::infinity()}),
               std::invalid_argument);
  std::vector<float> small(1);
  EXPECT_THROW(attention(naive, s, q, k, v, o, {}, 1, small), std::invalid_argument);
}

}  // namespace
}  // namespace locality
