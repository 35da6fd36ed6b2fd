// Micro-kernels and their block sizes: the only machine-specific part of the
// packed rungs (BLIS's split: portable loops around a tiny per-ISA kernel).
//
// A micro-kernel multiplies an MR x kc micro-panel of packed A by a kc x NR
// micro-panel of packed B and writes (or adds) the MR x NR product into C:
//
//   packed A: for p in [0, kc): MR consecutive floats, column p of the panel
//   packed B: for p in [0, kc): NR consecutive floats, row p of the panel
//
// Both panels are zero-padded to full MR / NR, so a kernel never branches on
// edges; the caller handles partial tiles of C (see packing.hpp).
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "locality/caches.hpp"
#include "locality/matrix.hpp"

namespace locality::cpu {

// Floats in the widest vector register the build targets (rung 3's tile and
// the flash rungs' softmax vectors are as wide).
#if defined(__AVX512F__)
inline constexpr int kVectorFloats = 16;
#elif defined(__AVX__)
inline constexpr int kVectorFloats = 8;
#else
inline constexpr int kVectorFloats = 4;
#endif

// Largest MR x NR tile in the table; the macro-kernel's edge scratch holds one.
inline constexpr std::ptrdiff_t kMaxMicroTileFloats = 512;
// Largest MR in the table; packing keeps one row pointer per row of a tile.
inline constexpr std::ptrdiff_t kMaxMicroTileRows = 16;

// c[0..MR) x [0..NR) with row stride ldc; accumulate: C += A*B, else C = A*B.
using MicroKernelFn = void (*)(std::ptrdiff_t kc, const float* __restrict a_panel,
                               const float* __restrict b_panel, float* __restrict c,
                               std::ptrdiff_t ldc, bool accumulate);

struct MicroKernel {
  std::string_view name;  // microkernel_<isa>_<MR>x<NR>
  std::string_view isa;   // avx512, avx2, portable
  std::ptrdiff_t mr;      // rows of C per call (A values broadcast)
  std::ptrdiff_t nr;      // columns of C per call (vector lanes of B)
  // Block sizes, BLIS-style, each sized for one level of the cache by
  // blocked_for() from the caches of the machine it runs on:
  std::ptrdiff_t kc;  // depth: an MR x kc micro-panel of A stays in L1 across the jr loop
  std::ptrdiff_t mc;  // rows of A packed at a time, used while still in L1/L2
  std::ptrdiff_t nc;  // columns: the kc x nc panel of packed B stays in L2
  // The largest panel of packed B, in floats, that stays in one core's L2
  // (half of it); a wider panel streams from L3.
  std::ptrdiff_t l2_panel_floats;
  MicroKernelFn run;
};

// `uk` with kc, mc and nc cut for `caches` (the rule is in microkernels.cpp).
MicroKernel blocked_for(MicroKernel uk, const CacheSizes& caches);

// Micro-kernels compiled into this build (the instruction sets the compiler
// was allowed to target), fastest first, blocked for machine_cache_sizes().
// Never empty: the portable one is always there.
std::span<const MicroKernel> available_microkernels();

// The first of available_microkernels(): what the packed rungs use.
const MicroKernel& best_microkernel();

// The loops of rung 4 (packed) and rung 5 (parallel) around a chosen
// micro-kernel; the rungs call these with best_microkernel(), and the tests
// call them with every available one. Shapes must already be checked.
void packed_matmul_with(const MicroKernel& uk, ConstView<float> a, ConstView<float> b,
                        View<float> c);
// Whether the packed loops pack a whole kc slice of A (all m rows) at once
// and keep it for every panel of B: where there is more than one panel (n > nc).
// Otherwise A is packed mc rows at a time, just before use.
bool packs_a_slice(const MicroKernel& uk, std::ptrdiff_t n);
// The packed rung's loops with the caller's packing buffer, of at least
// packed_matmul_buffer_floats(uk, m, n, k) floats, 64-byte aligned (the
// attention ladder carves it from its workspace).
std::size_t packed_matmul_buffer_floats(const MicroKernel& uk, std::ptrdiff_t m, std::ptrdiff_t n,
                                        std::ptrdiff_t k);
void packed_matmul_into(const MicroKernel& uk, ConstView<float> a, ConstView<float> b,
                        View<float> c, float* buffer);
void parallel_matmul_with(const MicroKernel& uk, ConstView<float> a, ConstView<float> b,
                          View<float> c, int threads);

}  // namespace locality::cpu
