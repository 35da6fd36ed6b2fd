// GPU rung 5 -- warp-tiled and double-buffered: the block tile is split
//   among warps, each warp's among its threads, and the next step's tiles are
//   loaded while this step's are used.
//
// Idea: the 128 x 128 block tile of C is cut into eight 64 x 32 warp tiles
//   (2 x 4 warps); in a warp, each thread owns an 8 x 8 piece made of four
//   4 x 4 pieces, 32 rows and 16 columns apart. Two shared-memory buffers
//   alternate: while the warps compute on one, each thread's loads of the
//   next step's tiles are already in flight into registers, and land in the
//   other buffer after the arithmetic. One barrier per step instead of two.
// Locality: a warp's shared-memory reads touch only its own 64 x 8 strip of
//   A and 8 x 32 strip of B per step: 4 distinct float4 addresses of B and 8
//   of A per instruction, served as broadcasts without bank conflicts, where
//   rung 4's thread layout has threads 8 columns apart hitting the same banks.
// Cost: twice the shared memory (16 KiB per block) and the registers to hold
//   the loads in flight; the arithmetic per thread is rung 4's.
// Edges: as rung 4 (128-bit paths when n and k are multiples of 4).
#include "../cuda_check.cuh"
#include "rungs.cuh"

namespace locality::gpu {
namespace {

constexpr int kBM = 128, kBN = 128, kBK = 8;
constexpr int kWM = 64, kWN = 32;                                // warp tile
constexpr int kWarpsN = kBN / kWN;                               // 4 warps across, 2 down
constexpr int kThreads = (kBM / kWM) * kWarpsN * 32;             // 256
constexpr int kHalfM = kWM / 2, kHalfN = kWN / 2;                // 32, 16: the 4 x 4 pieces' spacing

template <bool kVec>
__global__ void __launch_bounds__(kThreads)
    warp_tiled_kernel(const float* a, const float* b, float* c, int m, int n, int k) {
  __shared__ __align__(16) float as[2][kBK][kBM];  // A's tile, transposed
  __shared__ __align__(16) float bs[2][kBK][kBN];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int row0 = blockIdx.y * kBM, col0 = blockIdx.x * kBN;
  // This thread's pieces: rows wr + {0..3} and wr + 32 + {0..3}, columns
  // wc + {0..3} and wc + 16 + {0..3}, inside the block tile.
  const int wr = (warp / kWarpsN) * kWM + (lane / 4) * 4;
  const int wc = (warp % kWarpsN) * kWN + (lane % 4) * 4;
  // Loads, as rung 4: one float4 of A's tile and one of B's per thread.
  const int a_r = tid / 2, a_c = (tid % 2) * 4;
  const int b_r = tid / (kBN / 4), b_c = (tid % (kBN / 4)) * 4;
  const int ai = row0 + a_r;
  const float* a_row = a + static_cast<long long>(ai) * k;

  const auto load_a = [&](int p0) { return load4<kVec>(a_row + p0, ai < m, a_c, k - p0); };
  const auto load_b = [&](int p0) {
    const int bp = p0 + b_r;
    return load4<kVec>(b + static_cast<long long>(bp) * n + col0, bp < k, b_c, n - col0);
  };
  const auto stage = [&](int buf, float4 av, float4 bv) {
    as[buf][a_c + 0][a_r] = av.x;
    as[buf][a_c + 1][a_r] = av.y;
    as[buf][a_c + 2][a_r] = av.z;
    as[buf][a_c + 3][a_r] = av.w;
    *reinterpret_cast<float4*>(&bs[buf][b_r][b_c]) = bv;
  };

  float sum[8][8] = {};
  stage(0, load_a(0), load_b(0));
  __syncthreads();
  int buf = 0;
  for (int p0 = 0; p0 < k; p0 += kBK) {
    const bool more = p0 + kBK < k;
    float4 next_a = make_float4(0.0f, 0.0f, 0.0f, 0.0f), next_b = next_a;
    if (more) {  // in flight during the arithmetic below
      next_a = load_a(p0 + kBK);
      next_b = load_b(p0 + kBK);
    }
#pragma unroll
    for (int p = 0; p < kBK; ++p) {
      const float4 a0 = *reinterpret_cast<const float4*>(&as[buf][p][wr]);
      const float4 a1 = *reinterpret_cast<const float4*>(&as[buf][p][wr + kHalfM]);
      const float4 b0 = *reinterpret_cast<const float4*>(&bs[buf][p][wc]);
      const float4 b1 = *reinterpret_cast<const float4*>(&bs[buf][p][wc + kHalfN]);
      const float ar[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float br[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
      for (int r = 0; r < 8; ++r)
#pragma unroll
        for (int s = 0; s < 8; ++s) sum[r][s] += ar[r] * br[s];
    }
    if (more) stage(buf ^ 1, next_a, next_b);
    __syncthreads();  // the other buffer is complete, and no warp still reads this one
    buf ^= 1;
  }
#pragma unroll
  for (int r = 0; r < 8; ++r) {
    const int i = row0 + wr + (r < 4 ? r : kHalfM + r - 4);
    float* c_row = c + static_cast<long long>(i) * n + col0;
    store4<kVec>(c_row, i < m, wc, n - col0, make_float4(sum[r][0], sum[r][1], sum[r][2], sum[r][3]));
    store4<kVec>(c_row, i < m, wc + kHalfN, n - col0,
                 make_float4(sum[r][4], sum[r][5], sum[r][6], sum[r][7]));
  }
}

}  // namespace

void warp_tiled_matmul(const float* a, const float* b, float* c, int m, int n, int k) {
  const dim3 grid(ceil_div(n, kBN), ceil_div(m, kBM));
  if (vector_ok(a, b, c, n, k)) {
    warp_tiled_kernel<true><<<grid, kThreads>>>(a, b, c, m, n, k);
  } else {
    warp_tiled_kernel<false><<<grid, kThreads>>>(a, b, c, m, n, k);
  }
  LOCALITY_CUDA_LAUNCHED();
}

}  // namespace locality::gpu
