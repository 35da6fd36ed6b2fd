// microkernel_avx512_12x32 and _8x32: an MR x 32 block of C held in 2 MR zmm
// registers.
//
// Per step p: two 16-float loads of packed B and 2 MR independent FMAs, each
// taking its value of packed A straight from memory, broadcast to 16 lanes
// by the FMA itself (AVX-512's embedded broadcast, `{1to16}`). 12 x 32 is the
// matmul rungs' shape: 24 accumulators cover the 4-cycle FMA latency on both
// FMA ports (8 needed) three times over, and 24 + 2 B vectors leave 6 of the
// 32 registers free. 8 x 32 (16 accumulators) is for products whose row
// count is a multiple of 8 and not of 12: the flash rungs' P V, with
// head_dim 64 or 128 rows, where 12-row panels would pad 64 to 72.
//
// Why the FMAs are written in assembly: given the intrinsics, the compiler
// loads each A value once into a register (a separate broadcast instruction)
// and feeds both FMAs from it, 3 MR + 2 instructions a step where 2 MR + 2
// do. The FMA ports stay the limit on a quiet core, but where the core's
// front end is shared or slowed the extra instructions cost time
// (docs/cpu-matmul.md has the measurement); the loop over p is unrolled by 4
// for the same reason. AddressSanitizer does not see into the assembly: the
// A reads there go unchecked, the B loads beside them are checked.
//
// The C tile is prefetched one cache line per step during the first 2 MR
// steps, not all at once, so the prefetches do not hold the line-fill
// buffers that the packed A stream needs.
#include "microkernel_impl.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>

#include <algorithm>

namespace locality::cpu {
namespace {

constexpr int kNR = 32;

template <int MR>
using Tile = __m512[MR][2];

// acc += (column p of the A panel) x (row p of the B panel): 2 MR FMAs.
template <int MR>
__attribute__((always_inline)) inline void rank1_update(Tile<MR>& acc, const float* a,
                                                        const float* b) {
  const __m512 b0 = _mm512_load_ps(b);
  const __m512 b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
    // Copies in and out, so that the compiler keeps acc in registers.
    __m512 left = acc[r][0], right = acc[r][1];
    asm("vfmadd231ps %[a]%{1to16%}, %[b0], %[left]\n\t"
        "vfmadd231ps %[a]%{1to16%}, %[b1], %[right]"
        : [left] "+v"(left), [right] "+v"(right)
        : [b0] "v"(b0), [b1] "v"(b1), [a] "m"(a[r]));
    acc[r][0] = left;
    acc[r][1] = right;
  }
}

template <int MR>
void microkernel_avx512(std::ptrdiff_t kc, const float* __restrict a, const float* __restrict b,
                        float* __restrict c, std::ptrdiff_t ldc, bool accumulate) {
  Tile<MR> acc;
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();

  std::ptrdiff_t p = 0;
  const std::ptrdiff_t prefetch_steps = std::min<std::ptrdiff_t>(kc, 2 * MR);
  for (; p < prefetch_steps; ++p, a += MR, b += kNR) {
    // Row p / 2 of the C tile, left or right half: one line per step.
    _mm_prefetch(reinterpret_cast<const char*>(c + (p >> 1) * ldc + (p & 1) * 16), _MM_HINT_T0);
    rank1_update<MR>(acc, a, b);
  }
#pragma GCC unroll 4
  for (; p < kc; ++p, a += MR, b += kNR) rank1_update<MR>(acc, a, b);

#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
    float* c_row = c + r * ldc;
    if (accumulate) {
      acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_loadu_ps(c_row));
      acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_loadu_ps(c_row + 16));
    }
    _mm512_storeu_ps(c_row, acc[r][0]);
    _mm512_storeu_ps(c_row + 16, acc[r][1]);
  }
}

}  // namespace

void microkernel_avx512_12x32(std::ptrdiff_t kc, const float* __restrict a,
                              const float* __restrict b, float* __restrict c, std::ptrdiff_t ldc,
                              bool accumulate) {
  microkernel_avx512<12>(kc, a, b, c, ldc, accumulate);
}

void microkernel_avx512_8x32(std::ptrdiff_t kc, const float* __restrict a,
                             const float* __restrict b, float* __restrict c, std::ptrdiff_t ldc,
                             bool accumulate) {
  microkernel_avx512<8>(kc, a, b, c, ldc, accumulate);
}

}  // namespace locality::cpu
#endif
