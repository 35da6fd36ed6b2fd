// bf16 rung 2 -- mma_sync: the tensor cores through PTX, fed the way they
//   need: tiles copied three steps ahead, laid out so every fragment load is
//   free of bank conflicts, fragments loaded a step ahead of the multiply.
//
// Idea: a block of 8 warps computes a 128 x 128 tile of C, each warp a
//   64 x 32 piece: 4 x 4 tiles of 16 x 8, one mma.sync.m16n8k16 each per 16
//   steps of k. A ring of 3 shared buffers holds 128 x 64 of A and 64 x 128
//   of B each; cp.async fills the buffer two steps ahead while the warps
//   multiply out of the current one (cp.async.wait_group, one barrier per
//   step). ldmatrix.x4 loads a 16 x 16 fragment of A (or, transposed on the
//   way, two 16 x 8 of B) for the whole warp in one instruction, and the next
//   16-wide slice's fragments are loaded before this slice's products.
// Locality: each element of A is read from device memory once per 128
//   columns of C and each of B once per 128 rows, as in the float ladder's
//   rung 6. Shared memory is swizzled, not padded: 16-byte chunk c of row r
//   is stored at chunk c XOR (r mod 8), so the 8 rows one ldmatrix matrix
//   reads (same chunk, 8 consecutive rows) land in 8 different bank groups,
//   and no byte of the 96 KiB is padding.
// Cost: 64 accumulators and two sets of fragments per thread; 96 KiB of
//   shared memory per block. On Hopper mma.sync is the previous generation's
//   instruction: it issues from each warp alone and cannot reach the
//   throughput wgmma gets from a warpgroup (rungs 3-4).
// Edges: m any; k and n multiples of 8 with 16-byte aligned rows (each
//   16-byte copy is wholly inside or outside the matrix and is zero-filled
//   outside); other shapes are refused with ShapeError.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "../cuda_check.cuh"
#include "../matmul/rungs.cuh"
#include "locality/gpu.hpp"
#include "../ptx.cuh"

namespace locality::gpu {
namespace {

constexpr int kBM = 128, kBN = 128, kBK = 64, kStages = 3;
constexpr int kWarpsN = 4, kWM = 64, kWN = 32;  // 2 x 4 warps of 64 x 32
constexpr int kThreads = 32 * (kBM / kWM) * kWarpsN;
constexpr int kAChunks = kBK / 8, kBChunks = kBN / 8;  // 16-byte chunks per row
constexpr int kStageElems = kBM * kBK + kBK * kBN;     // bf16 values per stage
constexpr int kSharedBytes = kStages * kStageElems * 2;

// Where 16-byte chunk `chunk` of row `row` lives in a tile whose rows hold
// `chunks` chunks: the chunk index XOR the row's low three bits.
__device__ __forceinline__ int swizzled(int row, int chunk, int chunks) {
  return row * chunks * 8 + ((chunk ^ (row & 7)) * 8);
}

__global__ void __launch_bounds__(kThreads)
    mma_sync_kernel(const __nv_bfloat16* a, const __nv_bfloat16* b, float* c, int m, int n, int k) {
  extern __shared__ __align__(128) __nv_bfloat16 smem_bf16[];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int row0 = blockIdx.y * kBM, col0 = blockIdx.x * kBN;
  const int wm = (warp / kWarpsN) * kWM, wn = (warp % kWarpsN) * kWN;
  const int tiles = (k + kBK - 1) / kBK;

  // One stage's copies: 4 chunks of A and 4 of B per thread.
  const auto load_stage = [&](int stage, int tile) {
    __nv_bfloat16* as = smem_bf16 + stage * kStageElems;
    __nv_bfloat16* bs = as + kBM * kBK;
    const int k0 = tile * kBK;
    for (int id = tid; id < kBM * kAChunks; id += kThreads) {
      const int r = id / kAChunks, ch = id % kAChunks;
      const int gr = row0 + r, gk = k0 + ch * 8;
      const bool in = gr < m && gk < k;
      ptx::cp_async_16(as + swizzled(r, ch, kAChunks), in ? a + std::int64_t{gr} * k + gk : a,
                       in ? 16 : 0);
    }
    for (int id = tid; id < kBK * kBChunks; id += kThreads) {
      const int r = id / kBChunks, ch = id % kBChunks;
      const int gk = k0 + r, gc = col0 + ch * 8;
      const bool in = gk < k && gc < n;
      ptx::cp_async_16(bs + swizzled(r, ch, kBChunks), in ? b + std::int64_t{gk} * n + gc : b,
                       in ? 16 : 0);
    }
  };

  float acc[4][4][4] = {};    // [m16 tile][n8 tile][fragment]
  std::uint32_t fa[2][4][4];  // A fragments, two 16-wide slices of k
  std::uint32_t fb[2][2][4];  // B fragments: two 16 x 16 pieces (four n8 tiles)
  const auto load_fragments = [&](int buf, int stage, int kk) {
    const __nv_bfloat16* as = smem_bf16 + stage * kStageElems;
    const __nv_bfloat16* bs = as + kBM * kBK;
    for (int i = 0; i < 4; ++i) {  // rows wm + 16 i + lane % 16, columns kk + 8 (lane / 16)
      const int r = wm + 16 * i + lane % 16;
      ptx::ldmatrix_x4(fa[buf][i], as + swizzled(r, kk / 8 + lane / 16, kAChunks));
    }
    for (int j = 0; j < 2; ++j) {  // rows kk + lane % 16, columns wn + 16 j + 8 (lane / 16)
      const int r = kk + lane % 16;
      ptx::ldmatrix_x4_trans(fb[buf][j], bs + swizzled(r, (wn + 16 * j) / 8 + lane / 16, kBChunks));
    }
  };

  for (int s = 0; s < kStages - 1; ++s) {
    if (s < tiles) load_stage(s, s);
    ptx::cp_async_commit();
  }
  for (int t = 0; t < tiles; ++t) {
    ptx::cp_async_wait<kStages - 2>();  // tile t has landed
    __syncthreads();                    // ...for every thread, and tile t - 1 is done with
    if (t + kStages - 1 < tiles) load_stage((t + kStages - 1) % kStages, t + kStages - 1);
    ptx::cp_async_commit();
    const int stage = t % kStages;
    load_fragments(0, stage, 0);
#pragma unroll
    for (int s = 0; s < kBK / 16; ++s) {
      if (s + 1 < kBK / 16) load_fragments((s + 1) & 1, stage, 16 * (s + 1));
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const std::uint32_t bj[2] = {fb[s & 1][j / 2][2 * (j % 2)],
                                       fb[s & 1][j / 2][2 * (j % 2) + 1]};
          ptx::mma_bf16_16816(acc[i][j], fa[s & 1][i], bj);
        }
      }
    }
  }
  ptx::cp_async_wait<0>();

  // D fragments: rows g and g + 8, columns 2t and 2t + 1 of each 16 x 8 tile.
  const int g = lane / 4, tq = lane % 4;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int col = col0 + wn + 8 * j + 2 * tq;
      for (int h = 0; h < 2; ++h) {
        const int row = row0 + wm + 16 * i + g + 8 * h;
        if (row < m && col < n) {
          *reinterpret_cast<float2*>(c + std::int64_t{row} * n + col) =
              make_float2(acc[i][j][2 * h], acc[i][j][2 * h + 1]);
        }
      }
    }
  }
}

}  // namespace

void mma_sync_bf16_matmul(const std::uint16_t* a, const std::uint16_t* b, float* c, int m, int n,
                          int k) {
  if (k % 8 != 0 || n % 8 != 0 || !aligned16(a) || !aligned16(b) || !aligned16(c)) {
    throw ShapeError(
        "the mma_sync bf16 rung needs k and n multiples of 8 and 16-byte aligned "
        "matrices (got k = " +
        std::to_string(k) + ", n = " + std::to_string(n) + ")");
  }
  LOCALITY_CUDA(cudaFuncSetAttribute(mma_sync_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     kSharedBytes));
  if ((m + kBM - 1) / kBM > 65535) {
    throw ShapeError("the mma_sync bf16 rung takes at most 65535 x 128 rows");
  }
  const dim3 grid((n + kBN - 1) / kBN, (m + kBM - 1) / kBM);
  mma_sync_kernel<<<grid, kThreads, kSharedBytes>>>(reinterpret_cast<const __nv_bfloat16*>(a),
                                                    reinterpret_cast<const __nv_bfloat16*>(b), c, m,
                                                    n, k);
  LOCALITY_CUDA_LAUNCHED();
}

}  // namespace locality::gpu
