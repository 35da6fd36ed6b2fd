// microkernel_avx512_12x32: a 12 x 32 block of C held in 24 zmm registers.
//
// Per step p: two 16-float loads of packed B, twelve broadcasts of packed A,
// 24 independent FMAs. 24 accumulators cover the 4-cycle FMA latency on both
// FMA ports (8 needed) three times over; 24 + 2 B vectors + 1 broadcast leave
// 5 of the 32 registers free.
//
// The C tile is prefetched one cache line per step during the first 24 steps,
// not all at once, so the prefetches do not hold the line-fill buffers that
// the packed A stream needs (docs/cpu-matmul.md has the measurement).
#include "microkernel_impl.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>

#include <algorithm>

namespace locality::cpu {
namespace {

constexpr int kMR = 12;
constexpr int kNR = 32;
using Tile = __m512[kMR][2];

// acc += (column p of the A panel) x (row p of the B panel): 24 FMAs.
__attribute__((always_inline)) inline void rank1_update(Tile& acc, const float* a, const float* b) {
  const __m512 b0 = _mm512_load_ps(b);
  const __m512 b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
  for (int r = 0; r < kMR; ++r) {
    const __m512 a_r = _mm512_set1_ps(a[r]);
    acc[r][0] = _mm512_fmadd_ps(a_r, b0, acc[r][0]);
    acc[r][1] = _mm512_fmadd_ps(a_r, b1, acc[r][1]);
  }
}

}  // namespace

void microkernel_avx512_12x32(std::ptrdiff_t kc, const float* __restrict a,
                              const float* __restrict b, float* __restrict c, std::ptrdiff_t ldc,
                              bool accumulate) {
  Tile acc;
#pragma GCC unroll 12
  for (int r = 0; r < kMR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();

  std::ptrdiff_t p = 0;
  const std::ptrdiff_t prefetch_steps = std::min<std::ptrdiff_t>(kc, 2 * kMR);
  for (; p < prefetch_steps; ++p, a += kMR, b += kNR) {
    // Row p / 2 of the C tile, left or right half: one line per step.
    _mm_prefetch(reinterpret_cast<const char*>(c + (p >> 1) * ldc + (p & 1) * 16), _MM_HINT_T0);
    rank1_update(acc, a, b);
  }
  for (; p < kc; ++p, a += kMR, b += kNR) rank1_update(acc, a, b);

#pragma GCC unroll 12
  for (int r = 0; r < kMR; ++r) {
    float* c_row = c + r * ldc;
    if (accumulate) {
      acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_loadu_ps(c_row));
      acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_loadu_ps(c_row + 16));
    }
    _mm512_storeu_ps(c_row, acc[r][0]);
    _mm512_storeu_ps(c_row + 16, acc[r][1]);
  }
}

}  // namespace locality::cpu
#endif
