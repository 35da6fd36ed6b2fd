// The table of micro-kernels and their block sizes (see microkernel.hpp).
//
// Block sizes are for this project's reference machine (48 KiB L1d, 2 MiB L2
// per core, a large shared L3); each comment says what the number fills.
#include "microkernel_impl.hpp"

namespace locality::cpu {
namespace {

constexpr MicroKernel kMicroKernels[] = {
#if defined(__AVX512F__)
    // B micro-panel 256 x 32 x 4 B = 32 KiB (L1), A block 240 x 256 x 4 B = 240 KiB (L2,
    // with room for the next one, prefetched), B panel 256 x 2048 x 4 B = 2 MiB (L2/L3).
    {"microkernel_avx512_12x32", 12, 32, 256, 240, 2048, microkernel_avx512_12x32},
#endif
#if defined(__AVX2__) && defined(__FMA__)
    // B micro-panel 256 x 16 x 4 B = 16 KiB (L1), A block 288 x 256 x 4 B = 288 KiB (L2).
    {"microkernel_avx2_6x16", 6, 16, 256, 288, 4096, microkernel_avx2_6x16},
#endif
    // B micro-panel 256 x 16 x 4 B = 16 KiB (L1), A block 256 x 256 x 4 B = 256 KiB (L2).
    {"microkernel_portable_4x16", 4, 16, 256, 256, 4096, microkernel_portable_4x16},
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
