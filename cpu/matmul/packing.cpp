// Packing and the macro-kernel, shared by rungs 4 and 5 (packing.hpp says
// what each piece is for): A is copied into MR-row micro-panels, B into
// NR-column micro-panels, each laid out in the order the micro-kernel reads
// it and zero-padded at ragged edges; the macro-kernel walks the jr and ir
// loops over them and runs ragged tiles through a small buffer of its own.
#include "packing.hpp"

#include <algorithm>
#include <cstring>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace locality::cpu {

float* PackBuffer::get(std::size_t floats) {
  if (floats > size_) {
    data_.reset(static_cast<float*>(
        ::operator new (floats * sizeof(float), std::align_val_t{kCacheLineBytes})));
    size_ = floats;
  }
  return data_.get();
}

std::size_t packed_a_floats(const MicroKernel& uk, std::ptrdiff_t mc, std::ptrdiff_t kc) {
  return static_cast<std::size_t>(micropanel_count(mc, uk.mr) * uk.mr * kc);
}

std::size_t packed_b_floats(const MicroKernel& uk, std::ptrdiff_t kc, std::ptrdiff_t nc) {
  return static_cast<std::size_t>(micropanel_count(nc, uk.nr) * uk.nr * kc);
}

#if defined(__AVX512F__)
namespace {
// The AVX-512 path of pack_a_micropanel for a full panel of MR = 4 G rows:
// 16 columns at a time, each group of 4 rows transposed in registers (two
// rounds of unpacks turn 4 rows of 16 into 16 columns of 4, a 128-bit lane
// each) and stored as 4-float pieces. Returns the columns it packed (a
// multiple of 16); the scalar loop does the rest.
template <int G>
std::ptrdiff_t pack_a_columns_avx512(const float* src, std::ptrdiff_t lda, std::ptrdiff_t kc,
                                     float* dst) {
  constexpr int kMR = 4 * G;
  std::ptrdiff_t p = 0;
  for (; p + 16 <= kc; p += 16, dst += 16 * kMR) {
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) {
      const float* row = src + 4 * g * lda + p;
      const __m512 r0 = _mm512_loadu_ps(row), r1 = _mm512_loadu_ps(row + lda);
      const __m512 r2 = _mm512_loadu_ps(row + 2 * lda), r3 = _mm512_loadu_ps(row + 3 * lda);
      const __m512d t0 = _mm512_castps_pd(_mm512_unpacklo_ps(r0, r1));
      const __m512d t1 = _mm512_castps_pd(_mm512_unpackhi_ps(r0, r1));
      const __m512d t2 = _mm512_castps_pd(_mm512_unpacklo_ps(r2, r3));
      const __m512d t3 = _mm512_castps_pd(_mm512_unpackhi_ps(r2, r3));
      // Lane l of column_q holds rows 4g .. 4g+3 of column 4l + q.
      const __m512 column[4] = {_mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2)),
                                _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2)),
                                _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3)),
                                _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3))};
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) {
        float* out = dst + q * kMR + 4 * g;
        _mm_storeu_ps(out, _mm512_castps512_ps128(column[q]));
        _mm_storeu_ps(out + 4 * kMR, _mm512_extractf32x4_ps(column[q], 1));
        _mm_storeu_ps(out + 8 * kMR, _mm512_extractf32x4_ps(column[q], 2));
        _mm_storeu_ps(out + 12 * kMR, _mm512_extractf32x4_ps(column[q], 3));
      }
    }
  }
  return p;
}
}  // namespace
#endif

#if defined(__AVX2__)
namespace {
// The AVX2 path of pack_a_micropanel for a full panel of MR = 6 rows: 8
// columns at a time, the 6 rows (and two don't-care rows) transposed in
// registers as an 8 x 8 block (transpose_8x8), and each column's first 6
// floats stored. Returns the columns it
// packed (a multiple of 8); the scalar loop does the rest.
std::ptrdiff_t pack_a_columns_avx2_6(const float* src, std::ptrdiff_t lda, std::ptrdiff_t kc,
                                     float* dst) {
  constexpr int kMR = 6;
  std::ptrdiff_t p = 0;
  for (; p + 8 <= kc; p += 8, dst += 8 * kMR) {
    // Rows 6 and 7 of the 8 x 8 block would land in lanes 6 and 7 of each
    // column, which are never stored: rows 4 and 5 stand in for them (the
    // compiler drops the repeated unpacks).
    __m256 column[8];
#pragma GCC unroll 6
    for (int i = 0; i < kMR; ++i) column[i] = _mm256_loadu_ps(src + i * lda + p);
    column[6] = column[4];
    column[7] = column[5];
    transpose_8x8(column);
    // Each 8-float store spills 2 floats into the next column's place, which
    // the next store overwrites; the last column is stored as 4 + 2.
#pragma GCC unroll 7
    for (int q = 0; q < 7; ++q) _mm256_storeu_ps(dst + q * kMR, column[q]);
    _mm_storeu_ps(dst + 7 * kMR, _mm256_castps256_ps128(column[7]));
    _mm_storel_pi(reinterpret_cast<__m64*>(dst + 7 * kMR + 4), _mm256_extractf128_ps(column[7], 1));
  }
  return p;
}
}  // namespace
#endif

void pack_a_micropanel(const MicroKernel& uk, ConstView<float> a, std::ptrdiff_t index,
                       float* packed) {
  const std::ptrdiff_t kc = a.cols(), mr = uk.mr;
  const std::ptrdiff_t i0 = index * mr;
  const std::ptrdiff_t rows = std::min(mr, a.rows() - i0);
  float* __restrict dst = packed + index * mr * kc;
  // Walk the MR rows side by side (MR sequential read streams) and write the
  // panel front to back, one column of MR values after another.
  const float* src[kMaxMicroTileRows];
  for (std::ptrdiff_t r = 0; r < rows; ++r) src[r] = a.row(i0 + r);
  std::ptrdiff_t p = 0;
#if defined(__AVX512F__)
  if (rows == mr) {
    switch (mr) {
      case 4: p = pack_a_columns_avx512<1>(src[0], a.ld(), kc, dst); break;
      case 8: p = pack_a_columns_avx512<2>(src[0], a.ld(), kc, dst); break;
      case 12: p = pack_a_columns_avx512<3>(src[0], a.ld(), kc, dst); break;
      case 16: p = pack_a_columns_avx512<4>(src[0], a.ld(), kc, dst); break;
      default: break;
    }
    dst += p * mr;
  }
#endif
#if defined(__AVX2__)
  if (rows == mr && mr == 6) {  // (the AVX-512 build has this kernel too)
    p = pack_a_columns_avx2_6(src[0], a.ld(), kc, dst);
    dst += p * mr;
  }
#endif
  for (; p < kc; ++p) {
    for (std::ptrdiff_t r = 0; r < rows; ++r) dst[r] = src[r][p];
    for (std::ptrdiff_t r = rows; r < mr; ++r) dst[r] = 0.0f;
    dst += mr;
  }
}

void pack_b_panel(const MicroKernel& uk, ConstView<float> b, float* packed) {
  const std::ptrdiff_t kc = b.rows(), j1 = b.cols(), nr = uk.nr;
  // Row by row: each row of B is read once, front to back, and its NR-wide
  // pieces go to the same row of consecutive micro-panels.
  for (std::ptrdiff_t p = 0; p < kc; ++p) {
    const float* __restrict src = b.row(p);
    float* __restrict dst = packed + p * nr;
    std::ptrdiff_t j = 0;
    // A copy of a size known at compile time is inlined into a few vector
    // moves; the library call for 128 bytes costs a third of the packing.
    if (nr == 32) {
      for (; j + 32 <= j1; j += 32, dst += 32 * kc) std::memcpy(dst, src + j, 32 * sizeof(float));
    } else if (nr == 16) {
      for (; j + 16 <= j1; j += 16, dst += 16 * kc) std::memcpy(dst, src + j, 16 * sizeof(float));
    }
    for (; j + nr <= j1; j += nr, dst += nr * kc) {
      std::memcpy(dst, src + j, static_cast<std::size_t>(nr) * sizeof(float));
    }
    if (j < j1) {  // the ragged last micro-panel: copy what exists, zero the rest
      std::memcpy(dst, src + j, static_cast<std::size_t>(j1 - j) * sizeof(float));
      std::memset(dst + (j1 - j), 0, static_cast<std::size_t>(nr - (j1 - j)) * sizeof(float));
    }
  }
}

void macro_kernel(const MicroKernel& uk, std::ptrdiff_t kc, const float* packed_a,
                  const float* packed_b, View<float> c, bool accumulate, ConstView<float> next) {
  const std::ptrdiff_t mc = c.rows(), nc = c.cols(), mr = uk.mr, nr = uk.nr;
  alignas(kCacheLineBytes) float edge[kMaxMicroTileFloats];
  // Prefetch `next` into L2 a few lines per micro-kernel call, spread evenly
  // over the calls: the cursor (row, col) walks it line by line.
  constexpr std::ptrdiff_t kLine = kCacheLineBytes / sizeof(float);
  const std::ptrdiff_t lines = next.rows() * ((next.cols() + kLine - 1) / kLine);
  const std::ptrdiff_t calls = micropanel_count(nc, nr) * micropanel_count(mc, mr);
  const std::ptrdiff_t per_call = (lines + calls - 1) / calls;
  std::ptrdiff_t pf_row = 0, pf_col = 0;
  // ir outside, jr inside: one MR x kc micro-panel of A (12 KiB for the
  // AVX-512 kernel) stays in L1 while the kc x NR micro-panels of B stream
  // past it from L2, where the whole kc x nc panel of B lives.
  for (std::ptrdiff_t ir = 0; ir < mc; ir += mr) {
    const std::ptrdiff_t rows = std::min(mr, mc - ir);
    const float* a_panel = packed_a + (ir / mr) * mr * kc;
    for (std::ptrdiff_t jr = 0; jr < nc; jr += nr) {
      const std::ptrdiff_t cols = std::min(nr, nc - jr);
      const float* b_panel = packed_b + (jr / nr) * nr * kc;
      float* c_tile = c.row(ir) + jr;
      for (std::ptrdiff_t i = 0; i < per_call && pf_row < next.rows(); ++i) {
        __builtin_prefetch(next.row(pf_row) + pf_col, 0, 2);  // prefetcht1: into L2
        if ((pf_col += kLine) >= next.cols()) pf_col = 0, ++pf_row;
      }
      if (rows == mr && cols == nr) {
        uk.run(kc, a_panel, b_panel, c_tile, c.ld(), accumulate);
        continue;
      }
      // Ragged edge: compute the full tile aside, keep the part inside C.
      uk.run(kc, a_panel, b_panel, edge, nr, false);
      for (std::ptrdiff_t r = 0; r < rows; ++r) {
        float* dst = c_tile + r * c.ld();
        const float* src = edge + r * nr;
        for (std::ptrdiff_t j = 0; j < cols; ++j) dst[j] = accumulate ? dst[j] + src[j] : src[j];
      }
    }
  }
}

}  // namespace locality::cpu
