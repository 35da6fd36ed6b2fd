// GPU rung 0 -- naive: one thread per element of C, and the threads of a warp
//   walk down a column of C.
//
// Idea: the textbook triple loop with the two outer loops handed to threads.
// Locality: none to speak of. threadIdx.x runs along i, so the 32 threads of a
//   warp read A(i, p) from 32 different rows (k floats apart) and write C(i, j)
//   n floats apart: every access of the warp is 32 separate memory
//   transactions where one would do. B(p, j) is the same for the whole warp.
// Cost: memory transactions, not arithmetic, set the pace.
// Edges: threads outside C return at once; any shape. Speed: the ladder
//   table in docs/gpu-matmul.md.
#include "../cuda_check.cuh"
#include "rungs.cuh"

namespace locality::gpu {
namespace {

constexpr int kBlock = 32;  // 32 x 32 threads per block

__global__ void naive_kernel(const float* a, const float* b, float* c, int m, int n, int k) {
  const int i = blockIdx.x * kBlock + threadIdx.x;  // consecutive threads: consecutive rows
  const int j = blockIdx.y * kBlock + threadIdx.y;
  if (i >= m || j >= n) return;
  float sum = 0.0f;
  for (int p = 0; p < k; ++p) sum += a[i * k + p] * b[p * n + j];
  c[i * n + j] = sum;
}

}  // namespace

void naive_matmul(const float* a, const float* b, float* c, int m, int n, int k) {
  const dim3 grid(ceil_div(m, kBlock), ceil_div(n, kBlock)), block(kBlock, kBlock);
  naive_kernel<<<grid, block>>>(a, b, c, m, n, k);
  LOCALITY_CUDA_LAUNCHED();
}

}  // namespace locality::gpu
