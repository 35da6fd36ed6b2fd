// Declarations of the micro-kernels each ISA's file defines (internal).
#pragma once

#include "microkernel.hpp"

namespace locality::cpu {

#if defined(__AVX512F__)
void microkernel_avx512_12x32(std::ptrdiff_t kc, const float* __restrict a,
                              const float* __restrict b, float* __restrict c, std::ptrdiff_t ldc,
                              bool accumulate);
void microkernel_avx512_8x32(std::ptrdiff_t kc, const float* __restrict a,
                             const float* __restrict b, float* __restrict c, std::ptrdiff_t ldc,
                             bool accumulate);
#endif
#if defined(__AVX2__) && defined(__FMA__)
void microkernel_avx2_6x16(std::ptrdiff_t kc, const float* __restrict a, const float* __restrict b,
                           float* __restrict c, std::ptrdiff_t ldc, bool accumulate);
#endif
void microkernel_portable_4x16(std::ptrdiff_t kc, const float* __restrict a,
                               const float* __restrict b, float* __restrict c, std::ptrdiff_t ldc,
                               bool accumulate);

}  // namespace locality::cpu
