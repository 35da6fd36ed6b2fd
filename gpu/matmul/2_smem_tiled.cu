// GPU rung 2 -- shared-memory tiled: a block stages 32 x 32 tiles of A and B
//   in shared memory and every thread reuses them 32 times.
//
// Idea: as the CPU's tiled rung, with shared memory as the cache the program
//   manages itself. Each block owns a 32 x 32 tile of C; for each step of 32
//   along k, its 1024 threads load one element of A's tile and one of B's
//   (coalesced), wait, and each does 32 multiply-adds out of shared memory.
// Locality: global traffic falls 32-fold against rung 1: each loaded element
//   serves 32 multiply-adds. A thread reads its row of the A tile (one
//   address for the warp: a broadcast) and the B tile along a row
//   (consecutive banks: no conflicts).
// Cost: two shared-memory loads per FMA, and two barriers per step; the FMA
//   units wait on shared memory now.
// Edges: tile elements past the matrix are loaded as zeros, so ragged m, n
//   and k take the same loop.
#include "../cuda_check.cuh"
#include "rungs.cuh"

namespace locality::gpu {
namespace {

constexpr int kTile = 32;

__global__ void smem_tiled_kernel(const float* a, const float* b, float* c, int m, int n, int k) {
  __shared__ float as[kTile][kTile];
  __shared__ float bs[kTile][kTile];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int i = blockIdx.y * kTile + ty, j = blockIdx.x * kTile + tx;
  float sum = 0.0f;
  for (int p0 = 0; p0 < k; p0 += kTile) {
    // Zero past the edges, so the loop below needs no bounds checks.
    as[ty][tx] = (i < m && p0 + tx < k) ? a[i * k + p0 + tx] : 0.0f;
    bs[ty][tx] = (p0 + ty < k && j < n) ? b[(p0 + ty) * n + j] : 0.0f;
    __syncthreads();
#pragma unroll
    for (int p = 0; p < kTile; ++p) sum += as[ty][p] * bs[p][tx];
    __syncthreads();
  }
  if (i < m && j < n) c[i * n + j] = sum;
}

}  // namespace

void smem_tiled_matmul(const float* a, const float* b, float* c, int m, int n, int k) {
  const dim3 grid(ceil_div(n, kTile), ceil_div(m, kTile)), block(kTile, kTile);
  smem_tiled_kernel<<<grid, block>>>(a, b, c, m, n, k);
  LOCALITY_CUDA_LAUNCHED();
}

}  // namespace locality::gpu
