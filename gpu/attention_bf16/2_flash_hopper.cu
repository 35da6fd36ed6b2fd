// bf16 attention rung 2 -- flash_hopper: FlashAttention on Hopper's own path:
//   the copy engine brings K and V, warpgroups multiply with wgmma.
//
// Idea: three warpgroups per block of 128 query rows. One thread of the
//   first (the producer, setmaxnreg down to 24 registers) asks the tensor
//   memory accelerator for Q once and then for each tile of keys (128 at
//   head_dim 64, 64 at 128) and its values, into a ring of 2 stages; `full`
//   mbarriers count each stage's bytes, `empty` ones the 8 consumer warps done
//   with it. The two consumer warpgroups (up to 240 registers) own 64 rows
//   each: S = Q K^T with one wgmma per 16 of head_dim (Q and K both read from
//   shared memory, K's rows as B's columns: K-major), the online softmax in
//   float on S's accumulators (a row's scores sit in the 4 lanes of a quad),
//   O rescaled, then O += P V with P as wgmma's register operand: S's
//   accumulator layout is wgmma's A-fragment layout, so the weights are
//   rounded to bf16 where they sit, and V is read N-major from shared memory.
//   One division by the row sum at the end; O leaves in bf16.
// Locality: Q is read from device memory once per block, each K and V tile
//   once per block and used by its 128 rows; S and P live in registers only.
//   The 128-byte swizzle the copy engine writes is the layout wgmma reads
//   without bank conflicts, for both products.
// Cost: 16 or 32 KiB of Q (head_dim 64, 128), 2 stages of 32 KiB of K and V.
//   Each product waits for its own MMAs (wait_group 0): one tile's softmax
//   does not overlap the next tile's MMAs (FlashAttention-3's ping-pong).
// Edges: sm_90a only (registered for compute capability 9.0). head_dim 64 or
//   128 (others refused with ShapeError), any seq_q and seq_kv, 16-byte
//   aligned tensors; the copy engine zero-fills rows past a head's sequence,
//   which are then masked. Causal: tiles no row of the block sees are never
//   loaded, a warpgroup skips the products of tiles none of its rows sees,
//   and a partly hidden tile whose V rows hold a NaN or an infinity has its
//   P V summed key by key on the CUDA cores: a hidden key's V never reaches O.
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "../cuda_check.cuh"
#include "../matmul_bf16/hopper.cuh"
#include "hopper_flash.cuh"
#include "locality/gpu.hpp"

namespace locality::gpu {
namespace {

using namespace hopper_flash;
constexpr int kStages = 2;

template <int D>
__global__ void __launch_bounds__(kThreads, 1)
    flash_hopper_kernel(const __grid_constant__ CUtensorMap q_map,
                        const __grid_constant__ CUtensorMap k_map,
                        const __grid_constant__ CUtensorMap v_map, __nv_bfloat16* o, int heads,
                        int seq_q, int seq_kv, float scale_log2, bool causal) {
  constexpr int kBC = Tiles<D, kStages>::kBC;
  extern __shared__ __align__(1024) std::uint8_t smem_raw[];
  const Layout<D, kStages> l(smem_raw);
  const Block b = block_of<kBC>(heads, seq_q, seq_kv, causal);
  if (produced(l, b, &q_map, &k_map, &v_map)) return;

  const Rows r = consumer_rows(b);
  const std::uint8_t* q_rows = l.qs + (r.wg_r0 - b.r0) * 128;
  hopper::mbarrier_wait(l.q_full, 0);

  float acc[D / 2];                        // O: n8 slice n at acc[4 n ..]
  float row_max[2], row_sum[2], alpha[2];  // rows g and g + 8 of the warp: log2 units
#pragma unroll
  for (int i = 0; i < D / 2; ++i) acc[i] = 0.0f;
  for (int h = 0; h < 2; ++h) row_max[h] = -INFINITY, row_sum[h] = 0.0f;

  for (int t = 0; t < b.tiles; ++t) {
    const int kv0 = t * kBC;
    l.wait_full(t);
    if (!causal || kv0 <= r.wg_r0 + 63) {  // else no row of this warpgroup sees a key of the tile
      float sc[kBC / 2];
#pragma unroll
      for (int i = 0; i < kBC / 2; ++i) sc[i] = 0.0f;
      hopper::wgmma_fence();
      issue_scores<D, kBC>(sc, q_rows, l.k_tile(t));
      hopper::wgmma_commit();
      hopper::wgmma_wait<0>();

      softmax<kBC>(sc, row_max, row_sum, alpha, r, kv0, seq_kv, causal, scale_log2);
      rescale<D>(acc, alpha);
      std::uint32_t pa[kBC / 16][4];
      pack_weights<kBC>(sc, pa);
      if (!values_by_key<D, kBC>(l.v_tile(t), r, kv0, seq_kv, causal)) {
        hopper::wgmma_fence();
        issue_weighted_values<D, kBC>(acc, pa, l.v_tile(t));
        hopper::wgmma_commit();
        hopper::wgmma_wait<0>();
      } else {
        weighted_values_by_key<D, kBC>(acc, pa, l.v_tile(t), r, kv0, seq_kv);
      }
    }
    l.release(t, r.lane);
  }
  store_output<D>(acc, row_sum, o, r, b.head, seq_q);
}

template <int D>
void launch(const Bf16AttentionArgs& args) {
  constexpr int kBytes = Tiles<D, kStages>::kSharedBytes;
  const Launch p = prepare<D, kStages>(args, flash_hopper_kernel<D>, "flash_hopper");
  flash_hopper_kernel<D><<<p.blocks, kThreads, kBytes>>>(p.q, p.k, p.v, p.o, p.heads, p.seq_q,
                                                         p.seq_kv, p.scale_log2, args.causal);
  LOCALITY_CUDA_LAUNCHED();
}

}  // namespace

void flash_hopper_bf16_attention(const Bf16AttentionArgs& args) {
  if (!check(args, "flash_hopper")) return;
  args.shape.head_dim == 64 ? launch<64>(args) : launch<128>(args);
}

}  // namespace locality::gpu
