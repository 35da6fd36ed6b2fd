// bf16 rung 3 -- wgmma: Hopper's own path to the tensor cores. The copy
//   engine lays the tiles out in shared memory, four warps multiply them
//   together, and no thread computes an address or loads a fragment.
//
// Idea: a block of two warpgroups (8 warps) computes a 128 x 128 tile of C,
//   each warpgroup 64 x 128 with one wgmma.m64n128k16 per 16 steps of k.
//   wgmma reads both operands straight from shared memory through
//   descriptors, so the ldmatrix loads of rung 2 vanish. One thread asks the
//   tensor memory accelerator (TMA) for each 128 x 64 box of A and two
//   64 x 64 boxes of B; a ring of 4 stages is filled ahead, each stage's
//   arrival counted in bytes on its own mbarrier, which the warpgroups wait
//   on. A stage is refilled once both warpgroups have finished with it (a
//   block barrier after each tile).
// Locality: as rung 2, each element of A is read from device memory once per
//   128 columns of C and each of B once per 128 rows. The copy engine writes
//   with a 128-byte swizzle (16-byte chunk c of row r at chunk c xor r mod 8),
//   the layout wgmma reads without bank conflicts: A K-major (rows of 64 k
//   values, 128 bytes), B N-major (rows of 64 n values), so neither operand is
//   transposed anywhere.
// Cost: 64 float accumulators per thread; 128 KiB of shared memory. Every
//   tile ends with wgmma.wait_group 0 and a block barrier before its stage is
//   refilled, so the tensor cores idle while the next tile's MMAs are issued;
//   rung 4 removes that with warps that only copy and warpgroups that only
//   multiply.
// Edges: sm_90a only (registered for compute capability 9.0). m any; k and n
//   multiples of 8 and 16-byte aligned matrices (the copy engine's rule for
//   row strides); TMA zero-fills boxes past the matrix, and only stores
//   inside it are made.
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "../cuda_check.cuh"
#include "hopper.cuh"
#include "locality/gpu.hpp"
#include "wgmma_tile.cuh"

namespace locality::gpu {
namespace {

constexpr int kBM = 128, kBN = 128, kBK = 64, kStages = 4;
constexpr int kThreads = 256;              // two warpgroups of 64 rows each
constexpr int kABytes = kBM * kBK * 2;     // 16 KiB: 128 rows of 128 bytes
constexpr int kBHalfBytes = kBK * 64 * 2;  // 8 KiB: 64 k-rows of 64 n values
constexpr int kStageBytes = kABytes + 2 * kBHalfBytes;
constexpr int kSharedBytes = kStages * kStageBytes + kStages * 8 + 1024;  // + barriers, alignment

__global__ void __launch_bounds__(kThreads)
    wgmma_kernel(const __grid_constant__ CUtensorMap a_map,
                 const __grid_constant__ CUtensorMap b_map, float* c, int m, int n, int k) {
  extern __shared__ __align__(1024) std::uint8_t smem_raw[];
  // The 128-byte swizzle repeats every 1024 bytes and wgmma assumes the
  // pattern starts at such a boundary: align the ring to it.
  unsigned char* ring = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<std::uintptr_t>(smem_raw) + 1023) & ~std::uintptr_t{1023});
  std::uint64_t* full = reinterpret_cast<std::uint64_t*>(ring + kStages * kStageBytes);

  const int tid = threadIdx.x, warpgroup = tid / 128;
  const int row0 = blockIdx.y * kBM, col0 = blockIdx.x * kBN;
  const int tiles = (k + kBK - 1) / kBK;

  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) hopper::mbarrier_init(&full[s], 1);
    hopper::fence_barrier_init();
  }
  __syncthreads();

  // Thread 0 asks for tile t: A's rows row0.., k columns t kBK..; B's k rows
  // t kBK.., columns col0.. and col0 + 64.. (x is the contiguous coordinate).
  const auto request = [&](int t) {
    const int s = t % kStages;
    unsigned char* stage = ring + s * kStageBytes;
    hopper::mbarrier_arrive_expect_tx(&full[s], kStageBytes);
    hopper::tma_load_2d(stage, &a_map, &full[s], t * kBK, row0);
    hopper::tma_load_2d(stage + kABytes, &b_map, &full[s], col0, t * kBK);
    hopper::tma_load_2d(stage + kABytes + kBHalfBytes, &b_map, &full[s], col0 + 64, t * kBK);
  };
  if (tid == 0) {
    for (int t = 0; t < kStages && t < tiles; ++t) request(t);
  }

  float acc[64] = {};
  for (int t = 0; t < tiles; ++t) {
    const int s = t % kStages;
    hopper::mbarrier_wait(&full[s], (t / kStages) & 1);
    const unsigned char* a_tile = ring + s * kStageBytes + warpgroup * (64 * 128);
    const unsigned char* b_tile = ring + s * kStageBytes + kABytes;
    hopper::wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk) {
      // A: K-major, 16 k values (32 bytes) further along each row; rows in
      // atoms of 8 x 128 bytes (stride 1024), leading offset unused.
      // B: N-major, 16 k-rows (2048 bytes) further; 8-row atoms 1024 apart
      // along k, the second 64 columns 8 KiB on (leading offset).
      const std::uint64_t a_desc = hopper::smem_descriptor(a_tile + 32 * kk, 16, 1024);
      const std::uint64_t b_desc = hopper::smem_descriptor(b_tile + 2048 * kk, kBHalfBytes, 1024);
      hopper::wgmma_m64n128k16(acc, a_desc, b_desc);
    }
    hopper::wgmma_commit();
    hopper::wgmma_wait<0>();
    __syncthreads();  // both warpgroups are done with stage s
    if (tid == 0 && t + kStages < tiles) request(t + kStages);
  }

  hopper::store_accumulators<kBN>(acc, c, m, n, row0 + 64 * warpgroup, col0);
}

}  // namespace

void wgmma_bf16_matmul(const std::uint16_t* a, const std::uint16_t* b, float* c, int m, int n,
                       int k) {
  hopper::check_tma_operands("wgmma", a, b, c, k, n);
  if ((m + kBM - 1) / kBM > 65535) {
    throw ShapeError("the wgmma bf16 rung takes at most 65535 x 128 rows");
  }
  const CUtensorMap a_map = hopper::bf16_tensor_map(a, m, k, kBM, kBK);
  const CUtensorMap b_map = hopper::bf16_tensor_map(b, k, n, kBK, 64);
  LOCALITY_CUDA(cudaFuncSetAttribute(wgmma_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     kSharedBytes));
  const dim3 grid((n + kBN - 1) / kBN, (m + kBM - 1) / kBM);
  wgmma_kernel<<<grid, kThreads, kSharedBytes>>>(a_map, b_map, c, m, n, k);
  LOCALITY_CUDA_LAUNCHED();
}

}  // namespace locality::gpu
