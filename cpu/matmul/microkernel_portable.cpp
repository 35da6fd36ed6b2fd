// microkernel_portable_4x16: plain C++, no intrinsics, for any target.
//
// The 4 x 16 accumulator tile is a local array that a compiler can keep in
// vector registers (a row of 16 floats is one AVX-512, two AVX or four SSE
// registers). Left alone, GCC 12 at -O3 vectorizes the long k loop, with
// gathers, and leaves the tile in memory (a fraction of the speed;
// docs/cpu-matmul.md); `omp simd` on the 16 columns tells it which loop to
// vectorize, as rung 3 does, and the intrinsics kernels beside it spell out.
#include "microkernel_impl.hpp"

namespace locality::cpu {

void microkernel_portable_4x16(std::ptrdiff_t kc, const float* __restrict a,
                               const float* __restrict b, float* __restrict c, std::ptrdiff_t ldc,
                               bool accumulate) {
  constexpr int kMR = 4, kNR = 16;
  float acc[kMR][kNR] = {};
  for (std::ptrdiff_t p = 0; p < kc; ++p) {
#pragma GCC unroll 4
    for (int r = 0; r < kMR; ++r) {
      const float a_r = a[r];
#pragma omp simd
      for (int j = 0; j < kNR; ++j) acc[r][j] += a_r * b[j];
    }
    a += kMR;
    b += kNR;
  }
  for (int r = 0; r < kMR; ++r) {
    float* c_row = c + r * ldc;
    for (int j = 0; j < kNR; ++j) c_row[j] = accumulate ? c_row[j] + acc[r][j] : acc[r][j];
  }
}

}  // namespace locality::cpu
