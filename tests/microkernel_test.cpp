// Every micro-kernel compiled into this build (not only the one the packed
// rungs pick) through both five-loop drivers, blocked for this machine's
// caches and for four others, on shapes that leave ragged tiles at every edge
// and cross every block boundary; and the blocking rule's promises.
#include "microkernel.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>
#include <string>
#include <vector>

#include "flash.hpp"
#include "packing.hpp"
#include "test_util.hpp"

namespace locality {
namespace {

using cpu::MicroKernel;
using testing::Shape;

// Caches the rule must cut good blocks for: the reference Xeon, an EPYC with
// 1 MiB of L2, and older or smaller cores.
const CacheSizes kGeometries[] = {
    {48 << 10, 2 << 20, "48K_2M"},
    {48 << 10, 1 << 20, "48K_1M"},
    {32 << 10, 256 << 10, "32K_256K"},
    {32 << 10, 512 << 10, "32K_512K"},
};

// A micro-kernel with its blocks, and the caches they were cut for.
struct Blocked {
  MicroKernel uk;
  CacheSizes caches;
  std::string label;
};

std::string kernel_name(const ::testing::TestParamInfo<const Blocked*>& info) {
  return info.param->label;
}

// How a failing case names itself: the kernel, the caches and the blocks.
void PrintTo(const Blocked* b, std::ostream* os) {
  *os << b->label << " (kc " << b->uk.kc << ", mc " << b->uk.mc << ", nc " << b->uk.nc << ")";
}

const std::vector<Blocked>& cases() {
  static const std::vector<Blocked> out = [] {
    std::vector<Blocked> v;
    for (const MicroKernel& uk : cpu::available_microkernels()) {
      const std::string name(uk.name.substr(uk.name.find('_') + 1));
      v.push_back({uk, machine_cache_sizes(), name + "_this_machine"});
      for (const CacheSizes& g : kGeometries) {
        v.push_back({cpu::blocked_for(uk, g), g, name + "_" + g.source});
      }
    }
    return v;
  }();
  return out;
}

std::vector<const Blocked*> kernels() {
  std::vector<const Blocked*> out;
  for (const Blocked& b : cases()) out.push_back(&b);
  return out;
}

// The parallel loops run small products (under 2^20 multiply-adds) on one
// thread, as the first three shapes are; the others take the team path:
// blocks of rows handed out (several mc blocks), blocks cut into column
// chunks too (short C), and a single row block over several kc slices, where
// a thread that kept its packed A from one slice to the next would be
// caught.
class MicroKernelTest : public ::testing::TestWithParam<const Blocked*> {
 protected:
  const MicroKernel& uk() const { return GetParam()->uk; }
  std::vector<Shape> shapes() const {
    const MicroKernel& uk = this->uk();
    return {
        {1, 1, 1},
        {uk.mr, uk.nr, 8},                                 // exactly one register tile
        {uk.mr + 1, uk.nr + 1, uk.kc + 1},                 // one past each tile and kc
        {uk.mc + uk.mr - 1, 2 * uk.nr - 1, 2 * uk.kc, 3},  // past mc; two kc slices
        {uk.mr - 1, uk.nc + 3, 100, 1},                    // past nc, short of one tile
        {3 * uk.mc + 7, 17, 100},                          // several mc blocks
        {uk.mc + 5, 8 * uk.nr + 5, 50},                    // two row blocks, chunked
        {uk.mr, 128 * uk.nr + 5, 2 * uk.kc + 1},           // one row block, three kc slices
        // several panels of B, so A is packed a kc slice at a time: ragged
        // row blocks, panels and slices
        {2 * uk.mc + uk.mr + 1, uk.nc + uk.nr + 3, uk.kc + 7, 2},
    };
  }
};

TEST_P(MicroKernelTest, PackedLoops) {
  std::uint64_t seed = 1;
  for (const Shape& s : shapes()) {
    testing::check_product(s, seed++, [&](ConstView<float> a, ConstView<float> b, View<float> c) {
      cpu::packed_matmul_with(uk(), a, b, c);
    });
  }
}

TEST_P(MicroKernelTest, ParallelLoops) {
  std::uint64_t seed = 50;
  for (int threads : {1, 2, 3, 4}) {
    for (const Shape& s : shapes()) {
      testing::check_product(s, seed++, [&](ConstView<float> a, ConstView<float> b, View<float> c) {
        cpu::parallel_matmul_with(uk(), a, b, c, threads);
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
}

// pack_a_micropanel, whichever path it takes (the vector ones for full panels
// of some MRs, the scalar one elsewhere), against the layout written out
// element by element: column p of the panel is A(i0 .. i0 + MR, p), rows past
// A's end are zeros. The panel sits between two guard regions that must come
// back untouched; A's leading dimension is wider than its columns.
TEST(Packing, APanelsMatchTheirLayoutElementByElement) {
  constexpr float kGuard = -7.0f;
  for (const MicroKernel& uk : cpu::available_microkernels()) {
    for (std::ptrdiff_t kc : {1, 7, 8, 9, 16, 17, 31, 64, 100}) {
      for (std::ptrdiff_t m : {uk.mr, 2 * uk.mr - 1, 2 * uk.mr + 1}) {
        const std::ptrdiff_t ld = kc + 3;
        std::vector<float> a_data(static_cast<std::size_t>(m * ld));
        for (std::size_t i = 0; i < a_data.size(); ++i) a_data[i] = static_cast<float>(i) + 0.5f;
        const ConstView<float> a(a_data.data(), m, kc, ld);
        const std::ptrdiff_t panels = cpu::micropanel_count(m, uk.mr);
        const std::ptrdiff_t floats = panels * uk.mr * kc, guard = 64;
        std::vector<float> packed(static_cast<std::size_t>(floats + 2 * guard), kGuard);
        for (std::ptrdiff_t q = 0; q < panels; ++q) {
          cpu::pack_a_micropanel(uk, a, q, packed.data() + guard);
        }
        SCOPED_TRACE(std::string(uk.name) + ", kc " + std::to_string(kc) + ", m " +
                     std::to_string(m));
        for (std::ptrdiff_t i = 0; i < guard; ++i) {
          ASSERT_EQ(packed[i], kGuard) << "written before the panels";
          ASSERT_EQ(packed[guard + floats + i], kGuard) << "written past the panels";
        }
        for (std::ptrdiff_t q = 0; q < panels; ++q) {
          for (std::ptrdiff_t p = 0; p < kc; ++p) {
            for (std::ptrdiff_t r = 0; r < uk.mr; ++r) {
              const std::ptrdiff_t row = q * uk.mr + r;
              const float want = row < m ? a(row, p) : 0.0f;
              ASSERT_EQ(packed[guard + (q * kc + p) * uk.mr + r], want)
                  << "panel " << q << ", column " << p << ", row " << r;
            }
          }
        }
      }
    }
  }
}

// What microkernels.cpp promises of the blocks it cuts, for every kernel and
// geometry: each panel fits the cache it is meant for, in whole register tiles.
TEST(BlockingRule, EveryPanelFitsTheCacheItIsMeantFor) {
  constexpr std::ptrdiff_t kFloat = sizeof(float);
  for (const Blocked& b : cases()) {
    const MicroKernel& uk = b.uk;
    const CacheSizes& caches = b.caches;
    ASSERT_GT(caches.l1d_bytes, 0) << b.label;
    SCOPED_TRACE(b.label + ": kc " + std::to_string(uk.kc) + ", mc " + std::to_string(uk.mc) +
                 ", nc " + std::to_string(uk.nc));
    EXPECT_EQ(uk.mc % uk.mr, 0) << "mc should be whole register tiles";
    EXPECT_EQ(uk.nc % uk.nr, 0) << "nc should be whole register tiles";
    EXPECT_EQ(uk.kc % 16, 0);
    EXPECT_GE(uk.kc, 64);
    EXPECT_LE(uk.kc, 256);
    // L1: the A micro-panel (a quarter of it), the A block (half).
    EXPECT_LE(uk.mr * uk.kc * kFloat, caches.l1d_bytes / 4);
    EXPECT_LE(uk.mc * uk.kc * kFloat, std::max(caches.l1d_bytes / 2, uk.mr * uk.kc * kFloat));
    // L2: the B panel takes at most half of it where half of it holds 1024
    // columns; where it does not, the panel streams from L3 at the widest nc
    // (4096 columns), as the rule's comment says.
    const std::ptrdiff_t nc_floor = 1024 / uk.nr * uk.nr, nc_max = 4096 / uk.nr * uk.nr;
    if (uk.kc * nc_floor * kFloat <= caches.l2_bytes / 2) {
      EXPECT_LE(uk.kc * uk.nc * kFloat, caches.l2_bytes / 2);
      EXPECT_GE(uk.nc, nc_floor);
      EXPECT_GE(uk.kc * uk.nc * kFloat, caches.l2_bytes / 4) << "a panel far below half the L2";
    } else {
      EXPECT_EQ(uk.nc, nc_max) << "a panel that spills to L3 should be as wide as allowed";
    }
    // Flash: the kv_block x NR score block takes at most half of L1d.
    const std::ptrdiff_t kv = cpu::flash_kv_block(uk, caches);
    EXPECT_EQ(kv % uk.mr, 0);
    EXPECT_LE(kv * uk.nr * kFloat, caches.l1d_bytes / 2);
    EXPECT_GT((kv + uk.mr) * uk.nr * kFloat, caches.l1d_bytes / 2) << "kv_block could be longer";
  }
}

// The flash rungs' P V kernel: of the score kernel's instruction set, as wide
// as its score block, and padding head_dim to whole panels no more than any
// other such kernel would.
TEST(FlashPvKernel, PadsHeadDimLeastAndKeepsTheScoreBlockWidth) {
  const MicroKernel& uk = cpu::best_microkernel();
  const auto padded = [](std::ptrdiff_t d, std::ptrdiff_t mr) { return (d + mr - 1) / mr * mr; };
  for (std::ptrdiff_t d = 1; d <= 256; ++d) {
    const MicroKernel& pv = cpu::pv_microkernel(uk, d);
    EXPECT_EQ(pv.nr, uk.nr) << d;
    EXPECT_EQ(pv.isa, uk.isa) << d;
    for (const MicroKernel& k : cpu::available_microkernels()) {
      if (k.nr != uk.nr || k.isa != uk.isa) continue;
      EXPECT_LE(padded(d, pv.mr), padded(d, k.mr)) << d << " " << k.name;
    }
  }
#if defined(__AVX512F__)
  EXPECT_EQ(cpu::pv_microkernel(uk, 64).name, "microkernel_avx512_8x32");
  EXPECT_EQ(cpu::pv_microkernel(uk, 96).name, "microkernel_avx512_12x32");  // a tie: the faster
#endif
}

// On the reference machine the rule gives the blocks the rungs were tuned
// with there (docs/cpu-matmul.md): kc 256, mc 24, nc 1024 for every kernel.
TEST(BlockingRule, ReferenceMachineKeepsItsTunedBlocks) {
  for (const MicroKernel& uk : cpu::available_microkernels()) {
    const MicroKernel ref = cpu::blocked_for(uk, reference_cache_sizes());
    EXPECT_EQ(ref.kc, 256) << uk.name;
    EXPECT_EQ(ref.mc, 24) << uk.name;
    EXPECT_EQ(ref.nc, 1024) << uk.name;
  }
}

}  // namespace
}  // namespace locality
