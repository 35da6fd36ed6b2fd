// bf16 attention rung 3 -- flash_overlap: flash_hopper with each warpgroup's
//   softmax running while its tensor cores work (FlashAttention-3's
//   intra-warpgroup pipelining).
//
// Idea: in rung 2 a consumer warpgroup waits for S = Q K^T, does the softmax
//   while its MMAs sit idle, then waits for P V. Here, per tile t: P(t) is
//   packed out of S's registers, then S(t+1) = Q K(t+1)^T and P(t) V(t) are
//   issued together; the first wait retires S(t+1) alone, and its softmax
//   runs on the CUDA cores while P(t) V(t) runs on the tensor cores; the
//   second wait retires P(t) V(t) and frees tile t's stage.
// Locality: as rung 2: Q read once per block, each K and V tile once per
//   block and used by its 128 rows, S and P in registers only, 2 stages
//   (nothing is in flight from one step to the next).
// Cost: the same registers as rung 2 (one array of scores, P, O); the waits
//   count groups, which ptxas must not serialize (gpu/wgmma_guard.sh fails
//   the build if it does). The packing of P and the rescaling of O still
//   wait for the previous P V, with the warpgroup's tensor cores idle.
// Edges: as rung 2 (sm_90a only; head_dim 64 or 128, else ShapeError; any
//   seq_q and seq_kv; 16-byte aligned tensors). Under the causal mask the
//   pipelined loop takes the tiles every row of the warpgroup sees whole;
//   the tiles crossing its diagonal follow, in rung 2's order (no wgmma in
//   a branch of the pipelined loop, and a partly hidden tile whose V holds a
//   NaN or an infinity summed key by key); the rest are only released.
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
    flash_overlap_kernel(const __grid_constant__ CUtensorMap q_map,
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
  // Tiles [0, clean) every row of this warpgroup sees whole: pipelined. Then,
  // under the causal mask, [clean, mine) cross its diagonal (rung 2's order,
  // key-by-key P V where V is not finite), and [mine, tiles) it does not see.
  const int last = (r.wg_r0 + 63) / kBC + 1, whole = (r.wg_r0 + 1) / kBC;
  const int mine = causal && last < b.tiles ? last : b.tiles;
  const int clean = causal && whole < mine ? whole : mine;
  hopper::mbarrier_wait(l.q_full, 0);

  float acc[D / 2];
  float row_max[2], row_sum[2], alpha[2];
  float sc[kBC / 2];
  std::uint32_t pa[kBC / 16][4];  // P: the A operand of P V
#pragma unroll
  for (int i = 0; i < D / 2; ++i) acc[i] = 0.0f;
  for (int h = 0; h < 2; ++h) row_max[h] = -INFINITY, row_sum[h] = 0.0f;

  const auto issue_scores_of = [&](int t) {  // S(t) = Q K(t)^T, committed
    l.wait_full(t);
#pragma unroll
    for (int i = 0; i < kBC / 2; ++i) sc[i] = 0.0f;
    hopper::wgmma_fence();
    issue_scores<D, kBC>(sc, q_rows, l.k_tile(t));
    hopper::wgmma_commit();
  };
  const auto issue_values_of = [&](int t) {  // O = alpha O + P(t) V(t), committed
    rescale<D>(acc, alpha);
    hopper::wgmma_fence();
    issue_weighted_values<D, kBC>(acc, pa, l.v_tile(t));
    hopper::wgmma_commit();
  };

  if (clean > 0) {
    issue_scores_of(0);
    hopper::wgmma_wait<0>();
    softmax<kBC>(sc, row_max, row_sum, alpha, r, 0, seq_kv, causal, scale_log2);
  }
#pragma unroll 1
  for (int t = 0; t + 1 < clean; ++t) {
    pack_weights<kBC>(sc, pa);  // P(t), out of S's registers before S(t+1) lands there
    issue_scores_of(t + 1);
    issue_values_of(t);
    hopper::wgmma_wait<1>();  // S(t+1) retired; P(t) V(t) runs during its softmax
    softmax<kBC>(sc, row_max, row_sum, alpha, r, (t + 1) * kBC, seq_kv, causal, scale_log2);
    hopper::wgmma_wait<0>();
    l.release(t, r.lane);
  }
  if (clean > 0) {
    pack_weights<kBC>(sc, pa);
    issue_values_of(clean - 1);
    hopper::wgmma_wait<0>();
    l.release(clean - 1, r.lane);
  }

#pragma unroll 1
  for (int t = clean; t < mine; ++t) {  // the diagonal's tiles, one MMA at a time
    const int kv0 = t * kBC;
    issue_scores_of(t);
    hopper::wgmma_wait<0>();
    softmax<kBC>(sc, row_max, row_sum, alpha, r, kv0, seq_kv, causal, scale_log2);
    pack_weights<kBC>(sc, pa);
    if (!values_by_key<D, kBC>(l.v_tile(t), r, kv0, seq_kv, causal)) {
      issue_values_of(t);
      hopper::wgmma_wait<0>();
    } else {
      rescale<D>(acc, alpha);
      weighted_values_by_key<D, kBC>(acc, pa, l.v_tile(t), r, kv0, seq_kv);
    }
    l.release(t, r.lane);
  }
  for (int t = mine; t < b.tiles; ++t) {
    l.wait_full(t);
    l.release(t, r.lane);
  }
  store_output<D>(acc, row_sum, o, r, b.head, seq_q);
}

template <int D>
void launch(const Bf16AttentionArgs& args) {
  constexpr int kBytes = Tiles<D, kStages>::kSharedBytes;
  const Launch p = prepare<D, kStages>(args, flash_overlap_kernel<D>, "flash_overlap");
  flash_overlap_kernel<D><<<p.blocks, kThreads, kBytes>>>(p.q, p.k, p.v, p.o, p.heads, p.seq_q,
                                                          p.seq_kv, p.scale_log2, args.causal);
  LOCALITY_CUDA_LAUNCHED();
}

}  // namespace

void flash_overlap_bf16_attention(const Bf16AttentionArgs& args) {
  if (!check(args, "flash_overlap")) return;
  args.shape.head_dim == 64 ? launch<64>(args) : launch<128>(args);
}

}  // namespace locality::gpu
