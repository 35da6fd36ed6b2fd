// What the wgmma rungs share beyond the instructions (hopper.cuh): the
// check of their operands and the store of a warpgroup's accumulators.
// Plain CUDA, so the CPU emulation compiles it as it is.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "../matmul/rungs.cuh"
#include "locality/matrix.hpp"

namespace locality::gpu::hopper {

// setmaxnreg moves registers within what the block was given at launch:
// under __launch_bounds__(threads, 1) each thread starts with the register
// file's 64 K shared out in steps of 8 (168 for 384 threads), and a
// warpgroup's setmaxnreg.inc waits until the others' .dec have freed enough.
// So a producer warpgroup's count and its consumers' (each a multiple of 8
// from 24 to 256) must add up to no more than the warpgroups started with,
// or the consumers wait for ever.
constexpr bool role_registers_fit(int producer_regs, int consumers, int consumer_regs) {
  const int threads = 128 * (1 + consumers), at_launch = 65536 / threads / 8 * 8;
  const auto valid = [](int regs) { return regs % 8 == 0 && regs >= 24 && regs <= 256; };
  return valid(producer_regs) && valid(consumer_regs) &&
         producer_regs + consumers * consumer_regs <= (1 + consumers) * at_launch;
}

// What the copy engine needs of a row-major matrix (row strides a multiple of
// 16 bytes, 16-byte aligned starts), checked for a rung's A (m x k bf16), B
// (k x n bf16) and C (m x n float); ShapeError otherwise.
inline void check_tma_operands(const char* rung, const void* a, const void* b, const void* c, int k,
                               int n) {
  if (k % 8 != 0 || n % 8 != 0 || !aligned16(a) || !aligned16(b) || !aligned16(c)) {
    throw ShapeError(std::string("the ") + rung +
                     " bf16 rung needs k and n multiples of 8 and 16-byte aligned matrices "
                     "(got k = " +
                     std::to_string(k) + ", n = " + std::to_string(n) + ")");
  }
}

// Stores a warpgroup's 64 x N accumulators (wgmma's layout, hopper.cuh) into the
// row-major m x n float C, the warpgroup's first row at `row0` and first
// column at `col0`, the elements inside C only (n even: pairs stay whole).
template <int N>
__device__ __forceinline__ void store_accumulators(const float (&d)[N / 2], float* c, int m, int n,
                                                   int row0, int col0) {
  const int t = threadIdx.x % 128, lane = t % 32;
  const int r = row0 + 16 * (t / 32) + lane / 4;
#pragma unroll
  for (int j = 0; j < N / 8; ++j) {
    const int col = col0 + 8 * j + 2 * (lane % 4);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = r + 8 * h;
      if (row < m && col < n) {
        *reinterpret_cast<float2*>(c + std::int64_t{row} * n + col) =
            make_float2(d[4 * j + 2 * h], d[4 * j + 2 * h + 1]);
      }
    }
  }
}

}  // namespace locality::gpu::hopper
