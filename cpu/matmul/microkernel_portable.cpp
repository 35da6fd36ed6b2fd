// microkernel_portable_4x16: plain C++, no intrinsics, for any target.
//
// The accumulator tile is a local array the compiler can keep in vector
// registers (16 floats a row is one AVX-512 or two AVX2 or four SSE vectors);
// how well it does depends on the compiler, which is the lesson: the AVX
// kernels beside it say explicitly what this one hopes for.
#include "microkernel_impl.hpp"

namespace locality::cpu {

void microkernel_portable_4x16(std::ptrdiff_t kc, const float* __restrict a,
                               const float* __restrict b, float* __restrict c, std::ptrdiff_t ldc,
                               bool accumulate) {
  constexpr int kMR = 4, kNR = 16;
  float acc[kMR][kNR] = {};
  for (std::ptrdiff_t p = 0; p < kc; ++p) {
    for (int r = 0; r < kMR; ++r) {
      const float a_r = a[r];
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
