// Packing and the macro-kernel: the pieces shared by the packed rung and its
// parallel twin (internal to cpu/matmul/).
//
// Packing copies a block of A or B into the order the micro-kernel reads it,
// so the kernel's inner loop touches consecutive addresses only: a few
// sequential streams the hardware prefetcher follows, no TLB misses from
// walking down columns, and zero padding instead of edge branches.
#pragma once

#include <cstddef>
#include <memory>
#include <new>

#include "locality/matrix.hpp"
#include "microkernel.hpp"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace locality::cpu {

// A growable, 64-byte aligned float buffer for packed panels.
class PackBuffer {
 public:
  float* get(std::size_t floats);

 private:
  struct AlignedDelete {
    void operator()(float* p) const { ::operator delete (p, std::align_val_t{kCacheLineBytes}); }
  };
  std::unique_ptr<float[], AlignedDelete> data_;
  std::size_t size_ = 0;
};

// Floats needed for a packed mc x kc block of A / kc x nc panel of B,
// rounded up to whole micro-panels.
std::size_t packed_a_floats(const MicroKernel& uk, std::ptrdiff_t mc, std::ptrdiff_t kc);
std::size_t packed_b_floats(const MicroKernel& uk, std::ptrdiff_t kc, std::ptrdiff_t nc);

// Packs micro-panel `index` (rows index*MR .. +MR) of the block `a` (mc x kc)
// into `packed`, the start of the whole packed block.
void pack_a_micropanel(const MicroKernel& uk, ConstView<float> a, std::ptrdiff_t index,
                       float* packed);
// Packs the panel `b` (kc x nc) into `packed`: micro-panel after micro-panel,
// the last one zero-padded to NR columns.
void pack_b_panel(const MicroKernel& uk, ConstView<float> b, float* packed);

#if defined(__AVX2__)
// An 8 x 8 block of floats transposed in registers: on entry x[i] is row i,
// on return x[q] is column q (lane i holding row i's element q). Unpacks pair
// the rows, shuffles gather four rows of a column in each 128-bit half, and
// the halves are swapped last. Used by A's packing and by the flash rungs'
// query and output transposes.
inline void transpose_8x8(__m256 x[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(x[0], x[1]), t1 = _mm256_unpackhi_ps(x[0], x[1]);
  const __m256 t2 = _mm256_unpacklo_ps(x[2], x[3]), t3 = _mm256_unpackhi_ps(x[2], x[3]);
  const __m256 t4 = _mm256_unpacklo_ps(x[4], x[5]), t5 = _mm256_unpackhi_ps(x[4], x[5]);
  const __m256 t6 = _mm256_unpacklo_ps(x[6], x[7]), t7 = _mm256_unpackhi_ps(x[6], x[7]);
  // u[q]: rows 0-3 (u[q]) or 4-7 (u[q + 4]) of column q in the low half, of
  // column q + 4 in the high half.
  const __m256 u[8] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE),
                       _mm256_shuffle_ps(t1, t3, 0x44), _mm256_shuffle_ps(t1, t3, 0xEE),
                       _mm256_shuffle_ps(t4, t6, 0x44), _mm256_shuffle_ps(t4, t6, 0xEE),
                       _mm256_shuffle_ps(t5, t7, 0x44), _mm256_shuffle_ps(t5, t7, 0xEE)};
  for (int q = 0; q < 4; ++q) {
    x[q] = _mm256_permute2f128_ps(u[q], u[q + 4], 0x20);
    x[q + 4] = _mm256_permute2f128_ps(u[q], u[q + 4], 0x31);
  }
}
#endif

inline std::ptrdiff_t micropanel_count(std::ptrdiff_t extent, std::ptrdiff_t width) {
  return (extent + width - 1) / width;
}

// Packs every micro-panel of the block `a` into `packed`, one after another.
inline void pack_a_block(const MicroKernel& uk, ConstView<float> a, float* packed) {
  for (std::ptrdiff_t q = 0; q < micropanel_count(a.rows(), uk.mr); ++q) {
    pack_a_micropanel(uk, a, q, packed);
  }
}

// The packed A block of micro-panels holding `rows` rows, kc deep, at
// `packed`, seen as a view of its whole cache lines (one per row): what
// macro_kernel's `next` takes to prefetch a block that is packed already.
inline ConstView<float> packed_a_lines(const MicroKernel& uk, const float* packed,
                                       std::ptrdiff_t rows, std::ptrdiff_t kc) {
  constexpr std::ptrdiff_t kLine = kCacheLineBytes / sizeof(float);
  return {packed, micropanel_count(rows, uk.mr) * uk.mr * kc / kLine, kLine, kLine};
}

// C block (mc x nc) = or += packed A (mc x kc) * packed B (kc x nc): the two
// innermost loops (ir over MR-tall rows, then jr over NR-wide columns) around
// the micro-kernel, with a scratch tile for the ragged edges of C. Between calls
// it prefetches `next` (the unpacked block the caller packs next, may be
// empty) into L2, a few lines per call, so that packing reads it from L2
// rather than L3 and the loads overlap the arithmetic.
void macro_kernel(const MicroKernel& uk, std::ptrdiff_t kc, const float* packed_a,
                  const float* packed_b, View<float> c, bool accumulate,
                  ConstView<float> next = {});

}  // namespace locality::cpu
