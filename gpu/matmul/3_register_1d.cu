// GPU rung 3 -- register-blocked in one dimension: each thread computes a
//   column of 8 elements of C.
//
// Idea: a block owns a 64 x 64 tile of C and steps along k 8 at a time. Each
//   of its 512 threads keeps 8 partial sums in registers, for 8 consecutive
//   rows of one column: per step of k it loads one value of B's tile into a
//   register and multiplies it with 8 values of A's tile.
// Locality: registers become the innermost level. Shared-memory loads per FMA
//   fall from 2 (rung 2) to about 1.1: the B value is loaded once for 8 FMAs.
// Cost: A's tile is still read once per FMA from shared memory; the tile is
//   small (64 x 8), so the block steps along k often and waits at its barriers.
// Edges: tile elements past the matrix are loaded as zeros; results past C
//   are not stored.
#include "../cuda_check.cuh"
#include "rungs.cuh"

namespace locality::gpu {
namespace {

constexpr int kBM = 64, kBN = 64, kBK = 8;  // block tile of C, and the step along k
constexpr int kTM = 8;                      // rows of C per thread
constexpr int kThreads = kBM * kBN / kTM;   // 512

__global__ void __launch_bounds__(kThreads)
    register_1d_kernel(const float* a, const float* b, float* c, int m, int n, int k) {
  __shared__ float as[kBM][kBK];
  __shared__ float bs[kBK][kBN];
  const int tid = threadIdx.x;
  const int row0 = blockIdx.y * kBM, col0 = blockIdx.x * kBN;
  const int tx = tid % kBN, ty = tid / kBN;  // this thread: column tx, rows ty*kTM ..
  // What each thread loads: one element of A's tile and one of B's.
  const int a_r = tid / kBK, a_c = tid % kBK, b_r = tid / kBN, b_c = tid % kBN;
  float sum[kTM] = {};
  for (int p0 = 0; p0 < k; p0 += kBK) {
    const int ai = row0 + a_r, ap = p0 + a_c, bp = p0 + b_r, bj = col0 + b_c;
    as[a_r][a_c] = (ai < m && ap < k) ? a[ai * k + ap] : 0.0f;
    bs[b_r][b_c] = (bp < k && bj < n) ? b[bp * n + bj] : 0.0f;
    __syncthreads();
#pragma unroll
    for (int p = 0; p < kBK; ++p) {
      const float bv = bs[p][tx];
#pragma unroll
      for (int r = 0; r < kTM; ++r) sum[r] += as[ty * kTM + r][p] * bv;
    }
    __syncthreads();
  }
  const int j = col0 + tx;
#pragma unroll
  for (int r = 0; r < kTM; ++r) {
    const int i = row0 + ty * kTM + r;
    if (i < m && j < n) c[i * n + j] = sum[r];
  }
}

}  // namespace

void register_1d_matmul(const float* a, const float* b, float* c, int m, int n, int k) {
  const dim3 grid(ceil_div(n, kBN), ceil_div(m, kBM));
  register_1d_kernel<<<grid, kThreads>>>(a, b, c, m, n, k);
  LOCALITY_CUDA_LAUNCHED();
}

}  // namespace locality::gpu
