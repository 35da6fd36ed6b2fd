// microkernel_avx2_6x16: a 6 x 16 block of C held in 12 ymm registers.
//
// The AVX2 + FMA shape of BLIS's Haswell kernel, transposed for row-major C:
// per step p, two 8-float loads of packed B and six broadcasts of packed A feed
// 12 independent FMAs (enough to hide a 5-cycle latency on two ports);
// 12 + 2 + 1 registers of the 16 available.
//
// Two things BLIS's kernel does and this one copies: the six rows of the C
// tile are prefetched before the k loop, so that their lines arrive while the
// FMAs run instead of stalling the final load-add-store; and the k loop is
// unrolled by 4, so the pointer bumps and the branch are paid once per four
// steps. (docs/cpu-matmul.md has the measurement that kept them.)
#include "microkernel_impl.hpp"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

namespace locality::cpu {

void microkernel_avx2_6x16(std::ptrdiff_t kc, const float* __restrict a, const float* __restrict b,
                           float* __restrict c, std::ptrdiff_t ldc, bool accumulate) {
  constexpr int kMR = 6;
  __m256 acc[kMR][2];
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) {
    acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
  }

#pragma GCC unroll 4
  for (std::ptrdiff_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int r = 0; r < kMR; ++r) {
      const __m256 a_r = _mm256_broadcast_ss(a + r);
      acc[r][0] = _mm256_fmadd_ps(a_r, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(a_r, b1, acc[r][1]);
    }
    a += kMR;
    b += 16;
  }

#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) {
    float* c_row = c + r * ldc;
    if (accumulate) {
      acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(c_row));
      acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(c_row + 8));
    }
    _mm256_storeu_ps(c_row, acc[r][0]);
    _mm256_storeu_ps(c_row + 8, acc[r][1]);
  }
}

}  // namespace locality::cpu
#endif
