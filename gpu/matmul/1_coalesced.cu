// GPU rung 1 -- coalesced: the same loop, with the warp along a row of C.
//
// Idea: swap which thread index runs along i and which along j.
// Locality: the 32 threads of a warp now read B(p, j .. j + 31), 128
//   consecutive bytes (one transaction), share A(i, p) (a broadcast), and
//   write 128 consecutive bytes of C. Global memory is read in whole lines.
// Cost: every operand still comes from global memory (through L1/L2) once per
//   multiply-add: 2 loads per FMA, so memory bandwidth is the limit.
// Edges: threads outside C return at once; any shape. Where to see it:
//   global sectors per load request (Nsight Compute; gpu/ncu_profile.py):
//   rung 0's loads of A touch 32 sectors each, this rung's loads of B 4.
#include "../cuda_check.cuh"
#include "rungs.cuh"

namespace locality::gpu {
namespace {

constexpr int kBlock = 32;

__global__ void coalesced_kernel(const float* a, const float* b, float* c, int m, int n, int k) {
  const int j = blockIdx.x * kBlock + threadIdx.x;  // consecutive threads: consecutive columns
  const int i = blockIdx.y * kBlock + threadIdx.y;
  if (i >= m || j >= n) return;
  float sum = 0.0f;
  for (int p = 0; p < k; ++p) sum += a[i * k + p] * b[p * n + j];
  c[i * n + j] = sum;
}

}  // namespace

void coalesced_matmul(const float* a, const float* b, float* c, int m, int n, int k) {
  const dim3 grid(ceil_div(n, kBlock), ceil_div(m, kBlock)), block(kBlock, kBlock);
  coalesced_kernel<<<grid, block>>>(a, b, c, m, n, k);
  LOCALITY_CUDA_LAUNCHED();
}

}  // namespace locality::gpu
