// microkernel_avx512_12x32: a 12 x 32 block of C held in 24 zmm registers.
//
// Per step p: two 16-float loads of packed B, twelve broadcasts of packed A
// (folded into the FMAs as {1to16} memory operands), 24 independent FMAs.
// 24 accumulators cover the 4-cycle FMA latency on both FMA ports (8 needed)
// three times over; 24 + 2 B vectors + 1 broadcast leave 5 of 32 registers free.
#include "microkernel_impl.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>

namespace locality::cpu {

void microkernel_avx512_12x32(std::ptrdiff_t kc, const float* __restrict a,
                              const float* __restrict b, float* __restrict c, std::ptrdiff_t ldc,
                              bool accumulate) {
  constexpr int kMR = 12;
  __m512 acc[kMR][2];
#pragma GCC unroll 12
  for (int r = 0; r < kMR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();

  for (std::ptrdiff_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_load_ps(b);
    const __m512 b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
    for (int r = 0; r < kMR; ++r) {
      const __m512 a_r = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(a_r, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(a_r, b1, acc[r][1]);
    }
    a += kMR;
    b += 32;
  }

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
