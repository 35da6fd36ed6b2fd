// bf16 rung 4 -- wgmma_ws: the same instructions as rung 3, the work split
//   by role. One warpgroup only copies, two only multiply, and the blocks
//   stay resident and walk the tiles of C in an order that keeps L2 warm.
//
// Idea: three warpgroups per block. The producer (one thread of warpgroup
//   0) streams 128 x 64 boxes of A and 64 x 256 of B through a ring of 4
//   stages; two consumer warpgroups each multiply a 64 x 256 piece of a
//   128 x 256 tile of C (wgmma.m64n256k16). Two mbarriers per stage: `full`
//   counts the copy's bytes, `empty` the consumer warps done reading it, so
//   the producer refills a stage as soon as it is free, never at a block-wide
//   barrier. A consumer keeps one tile's MMAs in flight while it issues the
//   next (wgmma.wait_group 1), releasing the stage before. setmaxnreg moves
//   registers from the producer (40) to the consumers (232), who hold 128
//   accumulators each. Blocks are persistent, one per multiprocessor, and
//   take tiles in groups of 8 tile-rows so that neighbouring blocks share
//   panels of A and B in L2; while consumers store one tile, the producer is
//   already copying the next.
// Locality: each element of A is read from device memory once per 256
//   columns of C, each of B once per 128 rows (rung 3: 128 and 128); the
//   grouped order makes most of those reads L2 hits. Shared memory as in rung
//   3: the copy engine's 128-byte swizzle, which wgmma reads conflict-free.
// Cost: 192 KiB of shared memory and one block per multiprocessor; 128
//   accumulators per consumer thread. The stores of C are plain (no TMA
//   store), each thread two floats at a time.
// Edges: sm_90a only (registered for compute capability 9.0). m any; k and n
//   multiples of 8 and 16-byte aligned matrices (the copy engine's rule for
//   row strides); boxes past the matrix arrive as zeros and only stores
//   inside it are made.
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "../cuda_check.cuh"
#include "hopper.cuh"
#include "locality/gpu.hpp"
#include "wgmma_tile.cuh"

namespace locality::gpu {
namespace {

constexpr int kBM = 128, kBN = 256, kBK = 64, kStages = 4;
constexpr int kConsumers = 2, kThreads = 128 * (1 + kConsumers);
// setmaxnreg: 40 + 2 x 232 = 504, the 3 x 168 the warpgroups start with.
constexpr int kProducerRegs = 40, kConsumerRegs = 232;
static_assert(hopper::role_registers_fit(kProducerRegs, kConsumers, kConsumerRegs));
constexpr int kGroupRows = 8;               // tile-rows per group of the order
constexpr int kABytes = kBM * kBK * 2;      // 16 KiB: 128 rows of 128 bytes
constexpr int kBSliceBytes = kBK * 64 * 2;  // 8 KiB: 64 k-rows of 64 n values
constexpr int kStageBytes = kABytes + (kBN / 64) * kBSliceBytes;  // 48 KiB
constexpr int kSharedBytes = kStages * kStageBytes + 2 * kStages * 8 + 1024;

// Tile `id` of a grid of tiles_m x tiles_n, in groups of kGroupRows tile-rows
// taken column by column: consecutive ids share B's panel, and a group's
// A panels stay in L2 while it sweeps across.
__device__ __forceinline__ void tile_of(int id, int tiles_m, int tiles_n, int& tm, int& tn) {
  const int per_group = kGroupRows * tiles_n;
  const int group = id / per_group, first = group * kGroupRows;
  const int rows = min(kGroupRows, tiles_m - first);
  const int in_group = id % per_group;
  tm = first + in_group % rows;
  tn = in_group / rows;
}

__global__ void __launch_bounds__(kThreads, 1)
    wgmma_ws_kernel(const __grid_constant__ CUtensorMap a_map,
                    const __grid_constant__ CUtensorMap b_map, float* c, int m, int n, int k) {
  extern __shared__ __align__(1024) std::uint8_t smem_raw[];
  std::uint8_t* ring = reinterpret_cast<std::uint8_t*>(
      (reinterpret_cast<std::uintptr_t>(smem_raw) + 1023) & ~std::uintptr_t{1023});
  std::uint64_t* full = reinterpret_cast<std::uint64_t*>(ring + kStages * kStageBytes);
  std::uint64_t* empty = full + kStages;

  const int tid = threadIdx.x, warpgroup = tid / 128;
  const int tiles_m = (m + kBM - 1) / kBM, tiles_n = (n + kBN - 1) / kBN;
  const int tiles = tiles_m * tiles_n, ksteps = (k + kBK - 1) / kBK;

  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      hopper::mbarrier_init(&full[s], 1);
      hopper::mbarrier_init(&empty[s], 4 * kConsumers);  // every consumer warp
    }
    hopper::fence_barrier_init();
  }
  __syncthreads();

  if (warpgroup == 0) {
    hopper::setmaxnreg_dec<kProducerRegs>();
    if (tid == 0) {
      int it = 0;  // stages used so far, over all tiles: slot it % kStages
      for (int id = blockIdx.x; id < tiles; id += gridDim.x) {
        int tm, tn;
        tile_of(id, tiles_m, tiles_n, tm, tn);
        for (int t = 0; t < ksteps; ++t, ++it) {
          const int s = it % kStages;
          // Free once the consumers released its previous use (on the first
          // pass the "previous phase" counts as complete).
          hopper::mbarrier_wait(&empty[s], ((it / kStages) & 1) ^ 1);
          std::uint8_t* stage = ring + s * kStageBytes;
          hopper::mbarrier_arrive_expect_tx(&full[s], kStageBytes);
          hopper::tma_load_2d(stage, &a_map, &full[s], t * kBK, tm * kBM);
          for (int q = 0; q < kBN / 64; ++q) {
            hopper::tma_load_2d(stage + kABytes + q * kBSliceBytes, &b_map, &full[s],
                                tn * kBN + 64 * q, t * kBK);
          }
        }
      }
    }
  } else {
    hopper::setmaxnreg_inc<kConsumerRegs>();
    const int consumer = warpgroup - 1, lane = tid % 32;
    int it = 0;
    for (int id = blockIdx.x; id < tiles; id += gridDim.x) {
      int tm, tn;
      tile_of(id, tiles_m, tiles_n, tm, tn);
      float acc[128];
#pragma unroll
      for (int i = 0; i < 128; ++i) acc[i] = 0.0f;
      for (int t = 0; t < ksteps; ++t, ++it) {
        const int s = it % kStages;
        hopper::mbarrier_wait(&full[s], (it / kStages) & 1);
        const std::uint8_t* a_tile = ring + s * kStageBytes + consumer * (64 * 128);
        const std::uint8_t* b_tile = ring + s * kStageBytes + kABytes;
        hopper::wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kBK / 16; ++kk) {
          // Descriptors as rung 3's; B's 64-column slices 8 KiB apart.
          hopper::wgmma_m64n256k16(acc, hopper::smem_descriptor(a_tile + 32 * kk, 16, 1024),
                                   hopper::smem_descriptor(b_tile + 2048 * kk, kBSliceBytes, 1024));
        }
        hopper::wgmma_commit();
        // The previous step's MMAs are done: its stage can be refilled.
        hopper::wgmma_wait<1>();
        if (t > 0 && lane == 0) hopper::mbarrier_arrive(&empty[(it - 1) % kStages]);
      }
      hopper::wgmma_wait<0>();
      if (ksteps > 0 && lane == 0) hopper::mbarrier_arrive(&empty[(it - 1) % kStages]);

      hopper::store_accumulators<kBN>(acc, c, m, n, tm * kBM + 64 * consumer, tn * kBN);
    }
  }
}

}  // namespace

void wgmma_ws_bf16_matmul(const std::uint16_t* a, const std::uint16_t* b, float* c, int m, int n,
                          int k) {
  hopper::check_tma_operands("wgmma_ws", a, b, c, k, n);
  const CUtensorMap a_map = hopper::bf16_tensor_map(a, m, k, kBM, kBK);
  const CUtensorMap b_map = hopper::bf16_tensor_map(b, k, n, kBK, 64);
  LOCALITY_CUDA(cudaFuncSetAttribute(wgmma_ws_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     kSharedBytes));
  int sms = 0;
  LOCALITY_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const long long tiles =
      static_cast<long long>((m + kBM - 1) / kBM) * static_cast<long long>((n + kBN - 1) / kBN);
  const int blocks = static_cast<int>(std::min<long long>(tiles, std::max(sms, 1)));
  wgmma_ws_kernel<<<blocks, kThreads, kSharedBytes>>>(a_map, b_map, c, m, n, k);
  LOCALITY_CUDA_LAUNCHED();
}

}  // namespace locality::gpu
