// The table of micro-kernels, and the rule that cuts their blocks for the
// caches of the machine they run on (see microkernel.hpp).
#include <algorithm>
#include <vector>

#include "locality/caches.hpp"
#include "microkernel.hpp"
#include "microkernel_impl.hpp"

namespace locality::cpu {
namespace {

// Block sizes are left at 0 here: blocked_for() fills them in.
constexpr MicroKernel kMicroKernels[] = {
#if defined(__AVX512F__)
    {"microkernel_avx512_12x32", "avx512", 12, 32, 0, 0, 0, 0, microkernel_avx512_12x32},
    {"microkernel_avx512_8x32", "avx512", 8, 32, 0, 0, 0, 0, microkernel_avx512_8x32},
#endif
#if defined(__AVX2__) && defined(__FMA__)
    {"microkernel_avx2_6x16", "avx2", 6, 16, 0, 0, 0, 0, microkernel_avx2_6x16},
#endif
    {"microkernel_portable_4x16", "portable", 4, 16, 0, 0, 0, 0, microkernel_portable_4x16},
};

constexpr bool tiles_fit_scratch() {
  for (const MicroKernel& uk : kMicroKernels) {
    if (uk.mr * uk.nr > kMaxMicroTileFloats || uk.mr > kMaxMicroTileRows) return false;
  }
  return true;
}
static_assert(tiles_fit_scratch(), "raise kMaxMicroTileFloats");

std::ptrdiff_t round_down(std::ptrdiff_t x, std::ptrdiff_t to) { return x / to * to; }

}  // namespace

MicroKernel blocked_for(MicroKernel uk, const CacheSizes& caches) {
  constexpr std::ptrdiff_t kFloat = sizeof(float);
  const std::ptrdiff_t l1 = caches.l1d_bytes, l2 = caches.l2_bytes;
  // kc: the MR x kc micro-panel of A, which stays in L1 across the jr loop,
  // takes at most a quarter of L1d (the B micro-panels stream through the
  // rest); a multiple of 16, from 64 to 256. Past 256 the C tile's loads and
  // stores are already under 1/256 of the work, and longer panels gained
  // nothing where measured.
  uk.kc = std::clamp<std::ptrdiff_t>(round_down(l1 / 4 / (uk.mr * kFloat), 16), 64, 256);
  // mc: rows of A packed at a time, just before use: the mc x kc block takes
  // at most half of L1d; whole micro-panels, at least one.
  uk.mc = std::max(uk.mr, round_down(l1 / 2 / (uk.kc * kFloat), uk.mr));
  // nc: the kc x nc panel of B, read once per MR rows of C, takes at most
  // half of L2 (at most 4096 columns: past that, the panel only grows the
  // buffer). A is read again for every nc columns (its packed kc slice,
  // where there are several panels), so where half of L2 holds fewer than
  // 1024 columns the panel is left to stream from L3, and then it takes the
  // full 4096: it streams from L3 at any width, and the wider it is, the
  // fewer times A is read (docs/cpu-matmul.md, "Blocks from the caches";
  // measured when A was packed again per panel). Whole micro-panels.
  const std::ptrdiff_t nc_max = round_down(4096, uk.nr);
  const std::ptrdiff_t nc_l2 = round_down(l2 / 2 / (uk.kc * kFloat), uk.nr);
  uk.nc = nc_l2 >= round_down(1024, uk.nr) ? std::min(nc_l2, nc_max) : nc_max;
  uk.l2_panel_floats = l2 / 2 / kFloat;
  return uk;
}

std::span<const MicroKernel> available_microkernels() {
  static const std::vector<MicroKernel> table = [] {
    std::vector<MicroKernel> out;
    for (const MicroKernel& uk : kMicroKernels) {
      out.push_back(blocked_for(uk, machine_cache_sizes()));
    }
    return out;
  }();
  return table;
}

const MicroKernel& best_microkernel() { return available_microkernels().front(); }

}  // namespace locality::cpu
