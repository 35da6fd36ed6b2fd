// bf16 rung 1 -- wmma: the tensor cores through CUDA's portable warp-level
//   API. A warp multiplies 16 x 16 x 16 tiles in one call; everything around
//   that call is the float ladder's shared-memory tiling.
//
// Idea: a block of 8 warps computes a 128 x 128 tile of C, each warp a
//   64 x 32 piece held as 4 x 2 accumulator fragments (nvcuda::wmma,
//   float). Per 32 steps of k the block copies a 128 x 32 tile of A and a
//   32 x 128 tile of B into shared memory; each warp loads its fragments of
//   them (load_matrix_sync) and issues 8 mma_sync per 16 steps. Full
//   fragments of C are stored straight to device memory, edge ones through
//   a 16 x 16 scratch tile in shared memory.
// Locality: as the float ladder's shared-memory rungs: each element of A is
//   read from device memory once per 128 columns of C, each of B once per
//   128 rows. Rows of the shared tiles are padded by 8 values (16 bytes) so
//   that the rows a fragment load reads start in different banks.
// Cost: what the API hides is what a Hopper GPU needs: the fragment layout
//   is opaque (no ldmatrix of our choosing, no swizzle), loads and
//   multiplies are not overlapped (a barrier, copies through registers, a
//   barrier, the products), and it compiles to mma.sync (HMMA), never to
//   Hopper's warpgroup wgmma. Rung 2 takes each of these in hand.
// Edges: any m, n, k (tiles zero-filled past the edges); 128-bit copies when
//   k and n are multiples of 8 and the matrices 16-byte aligned.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <cstdint>

#include "../cuda_check.cuh"
#include "../matmul/rungs.cuh"
#include "locality/gpu.hpp"

namespace locality::gpu {
namespace {

using namespace nvcuda;

constexpr int kBM = 128, kBN = 128, kBK = 32;
constexpr int kWarpsN = 4, kWM = 64, kWN = 32;  // 2 x 4 warps of 64 x 32
constexpr int kThreads = 32 * (kBM / kWM) * kWarpsN;
constexpr int kPad = 8;  // values of padding per shared row
constexpr int kLdA = kBK + kPad, kLdB = kBN + kPad;

// Eight consecutive values of a row into shared memory, zero past `cols` (or
// everywhere when the row is outside the matrix).
template <bool kVec>
__device__ __forceinline__ void copy8(__nv_bfloat16* dst, const __nv_bfloat16* row, bool row_ok,
                                      int col, int cols) {
  if (kVec) {  // cols is a multiple of 8: the eight are all in or all out
    uint4 v = make_uint4(0, 0, 0, 0);
    if (row_ok && col < cols) v = *reinterpret_cast<const uint4*>(row + col);
    *reinterpret_cast<uint4*>(dst) = v;
  } else {
    for (int e = 0; e < 8; ++e) {
      dst[e] = row_ok && col + e < cols ? row[col + e] : __float2bfloat16(0.0f);
    }
  }
}

template <bool kVec>
__global__ void __launch_bounds__(kThreads)
    wmma_kernel(const __nv_bfloat16* a, const __nv_bfloat16* b, float* c, int m, int n, int k) {
  __shared__ __align__(128) __nv_bfloat16 as[kBM * kLdA];
  __shared__ __align__(128) __nv_bfloat16 bs[kBK * kLdB];
  __shared__ __align__(128) float scratch[kThreads / 32][16 * 16];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int row0 = blockIdx.y * kBM, col0 = blockIdx.x * kBN;
  const int wm = (warp / kWarpsN) * kWM, wn = (warp % kWarpsN) * kWN;

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[4][2];
  for (auto& row : acc) {
    for (auto& f : row) wmma::fill_fragment(f, 0.0f);
  }
  for (int k0 = 0; k0 < k; k0 += kBK) {
    // 128 x 32 of A and 32 x 128 of B, eight values per copy.
    for (int id = tid; id < kBM * kBK / 8; id += kThreads) {
      const int r = id / (kBK / 8), col = (id % (kBK / 8)) * 8;
      copy8<kVec>(as + r * kLdA + col, a + std::int64_t{row0 + r} * k + k0, row0 + r < m, col,
                  k - k0);
    }
    for (int id = tid; id < kBK * kBN / 8; id += kThreads) {
      const int r = id / (kBN / 8), col = (id % (kBN / 8)) * 8;
      copy8<kVec>(bs + r * kLdB + col, b + std::int64_t{k0 + r} * n + col0, k0 + r < k, col,
                  n - col0);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[4];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb[2];
      for (int i = 0; i < 4; ++i)
        wmma::load_matrix_sync(fa[i], as + (wm + 16 * i) * kLdA + kk, kLdA);
      for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j], bs + kk * kLdB + wn + 16 * j, kLdB);
      for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
      }
    }
    __syncthreads();
  }

  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 2; ++j) {
      const int r = row0 + wm + 16 * i, col = col0 + wn + 16 * j;
      if (kVec && r + 16 <= m && col + 16 <= n) {  // whole, and 32-byte aligned: n % 8 == 0
        wmma::store_matrix_sync(c + std::int64_t{r} * n + col, acc[i][j], n, wmma::mem_row_major);
        continue;
      }
      float* s = scratch[warp];
      wmma::store_matrix_sync(s, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      for (int e = lane; e < 256; e += 32) {
        const int er = r + e / 16, ec = col + e % 16;
        if (er < m && ec < n) c[std::int64_t{er} * n + ec] = s[e];
      }
      __syncwarp();
    }
  }
}

}  // namespace

void wmma_bf16_matmul(const std::uint16_t* a, const std::uint16_t* b, float* c, int m, int n,
                      int k) {
  if ((m + kBM - 1) / kBM > 65535) {
    throw ShapeError("the wmma bf16 rung takes at most 65535 x 128 rows");
  }
  const dim3 grid((n + kBN - 1) / kBN, (m + kBM - 1) / kBM);
  const auto* ab = reinterpret_cast<const __nv_bfloat16*>(a);
  const auto* bb = reinterpret_cast<const __nv_bfloat16*>(b);
  // store_matrix_sync straight to C wants 32-byte aligned fragment rows.
  const bool c_aligned = reinterpret_cast<std::uintptr_t>(c) % 32 == 0;
  if (k % 8 == 0 && n % 8 == 0 && aligned16(a) && aligned16(b) && c_aligned) {
    wmma_kernel<true><<<grid, kThreads>>>(ab, bb, c, m, n, k);
  } else {
    wmma_kernel<false><<<grid, kThreads>>>(ab, bb, c, m, n, k);
  }
  LOCALITY_CUDA_LAUNCHED();
}

}  // namespace locality::gpu
