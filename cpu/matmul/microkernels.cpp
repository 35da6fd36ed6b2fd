// The table of micro-kernels and their block sizes (see microkernel.hpp).
//
// Block sizes are for this project's reference machine (48 KiB L1d, 2 MiB L2
// per core, a large shared L3); each comment says what the number fills.
#include "microkernel_impl.hpp"

namespace locality::cpu {
namespace {

constexpr MicroKernel kMicroKernels[] = {
#if defined(__AVX512F__)
    // A micro-panel 12 x 256 x 4 B = 12 KiB (L1), B panel 256 x 1024 x 4 B = 1 MiB (L2),
    // A packed 24 rows (two micro-panels, 24 KiB) at a time, just before use.
    {"microkernel_avx512_12x32", 12, 32, 256, 24, 1024, microkernel_avx512_12x32},
#endif
#if defined(__AVX2__) && defined(__FMA__)
    // A micro-panel 6 x 256 x 4 B = 6 KiB (L1), B panel 1 MiB (L2), A packed 24 rows at a time.
    {"microkernel_avx2_6x16", 6, 16, 256, 24, 1024, microkernel_avx2_6x16},
#endif
    // A micro-panel 4 x 256 x 4 B = 4 KiB (L1), B panel 1 MiB (L2), A packed 24 rows at a time.
    {"microkernel_portable_4x16", 4, 16, 256, 24, 1024, microkernel_portable_4x16},
};

constexpr bool tiles_fit_scratch() {
  for (const MicroKernel& uk : kMicroKernels) {
    if (uk.mr * uk.nr > kMaxMicroTileFloats || uk.mr > kMaxMicroTileRows) return false;
  }
  return true;
}
static_assert(tiles_fit_scratch(), "raise kMaxMicroTileFloats");

}  // namespace

std::span<const MicroKernel> available_microkernels() { return kMicroKernels; }

const MicroKernel& best_microkernel() { return kMicroKernels[0]; }

}  // namespace locality::cpu
