// GPU rung 4 -- register-blocked in two dimensions, with 128-bit loads: each
//   thread computes an 8 x 8 tile of C.
//
// Idea: a block of 256 threads owns a 128 x 128 tile of C and steps along k 8
//   at a time. Per step, each thread loads 8 values of A's tile and 8 of B's
//   into registers and does their 64 multiply-adds (an outer product).
//   Global loads and shared-memory reads move 4 floats at a time (float4),
//   and A's tile is stored transposed so a thread's 8 values of it are
//   consecutive.
// Locality: 16 register loads feed 64 FMAs (0.25 per FMA, against 1.1 in rung
//   3), and the bigger block tile halves global traffic per FMA again.
// Cost: 64 accumulators and 16 operands per thread: about 100 registers, so
//   fewer blocks fit on an SM; with a single shared-memory buffer the loads of
//   the next step wait for the barrier. Big tiles make few blocks: at small n
//   some SMs sit idle, and rung 3 is faster there.
// Edges: 128-bit loads need n and k to be multiples of 4 (rows stay 16-byte
//   aligned); other shapes take the same kernel with one-float loads.
#include "../cuda_check.cuh"
#include "rungs.cuh"

namespace locality::gpu {
namespace {

constexpr int kBM = 128, kBN = 128, kBK = 8;  // block tile of C, step along k
constexpr int kTM = 8, kTN = 8;                // tile of C per thread
constexpr int kThreads = (kBM / kTM) * (kBN / kTN);  // 256

template <bool kVec>
__global__ void __launch_bounds__(kThreads)
    register_2d_kernel(const float* a, const float* b, float* c, int m, int n, int k) {
  __shared__ __align__(16) float as[kBK][kBM];  // A's tile, transposed: as[p][i]
  __shared__ __align__(16) float bs[kBK][kBN];
  const int tid = threadIdx.x;
  const int row0 = blockIdx.y * kBM, col0 = blockIdx.x * kBN;
  const int ty = tid / (kBN / kTN), tx = tid % (kBN / kTN);
  // Loads: A's tile is 128 x 8 floats, one float4 (4 along k) per thread;
  // B's is 8 x 128, one float4 (4 along n) per thread.
  const int a_r = tid / 2, a_c = (tid % 2) * 4;
  const int b_r = tid / (kBN / 4), b_c = (tid % (kBN / 4)) * 4;

  float sum[kTM][kTN] = {};
  for (int p0 = 0; p0 < k; p0 += kBK) {
    const int ai = row0 + a_r;
    const float4 av = load4<kVec>(a + static_cast<long long>(ai) * k + p0, ai < m, a_c, k - p0);
    as[a_c + 0][a_r] = av.x;
    as[a_c + 1][a_r] = av.y;
    as[a_c + 2][a_r] = av.z;
    as[a_c + 3][a_r] = av.w;
    const int bp = p0 + b_r;
    *reinterpret_cast<float4*>(&bs[b_r][b_c]) =
        load4<kVec>(b + static_cast<long long>(bp) * n + col0, bp < k, b_c, n - col0);
    __syncthreads();
#pragma unroll
    for (int p = 0; p < kBK; ++p) {
      float ar[kTM], br[kTN];
#pragma unroll
      for (int r = 0; r < kTM; r += 4) {
        const float4 v = *reinterpret_cast<const float4*>(&as[p][ty * kTM + r]);
        ar[r] = v.x, ar[r + 1] = v.y, ar[r + 2] = v.z, ar[r + 3] = v.w;
      }
#pragma unroll
      for (int s = 0; s < kTN; s += 4) {
        const float4 v = *reinterpret_cast<const float4*>(&bs[p][tx * kTN + s]);
        br[s] = v.x, br[s + 1] = v.y, br[s + 2] = v.z, br[s + 3] = v.w;
      }
#pragma unroll
      for (int r = 0; r < kTM; ++r)
#pragma unroll
        for (int s = 0; s < kTN; ++s) sum[r][s] += ar[r] * br[s];
    }
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < kTM; ++r) {
    const int i = row0 + ty * kTM + r;
    float* c_row = c + static_cast<long long>(i) * n + col0;
#pragma unroll
    for (int s = 0; s < kTN; s += 4) {
      store4<kVec>(c_row, i < m, tx * kTN + s, n - col0,
                   make_float4(sum[r][s], sum[r][s + 1], sum[r][s + 2], sum[r][s + 3]));
    }
  }
}

}  // namespace

void register_2d_matmul(const float* a, const float* b, float* c, int m, int n, int k) {
  const dim3 grid(ceil_div(n, kBN), ceil_div(m, kBM));
  if (vector_ok(a, b, c, n, k)) {
    register_2d_kernel<true><<<grid, kThreads>>>(a, b, c, m, n, k);
  } else {
    register_2d_kernel<false><<<grid, kThreads>>>(a, b, c, m, n, k);
  }
  LOCALITY_CUDA_LAUNCHED();
}

}  // namespace locality::gpu
