// bf16 attention rung 3 -- flash_overlap: flash_hopper with each warpgroup's
//   softmax running while its tensor cores work (FlashAttention-3's
//   intra-warpgroup pipelining).
//
// Idea: in rung 2 a consumer warpgroup waits for S = Q K^T, does the softmax
//   while its MMAs sit idle, then waits for P V. Here, per tile t: P(t) is
//   packed out of S's registers, then S(t+1) = Q K(t+1)^T and P(t) V(t) are
//   issued together; the first wait retires S(t+1) alone, and its softmax
//   runs on the CUDA cores while P(t) V(t) runs on the tensor cores; the
//   second wait retires P(t) V(t) and frees tile t's stage. (The loop is
//   overlapped_consumer in hopper_flash.cuh, which rung 4 runs with turns.)
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

  overlapped_consumer(l, b, o, seq_q, seq_kv, scale_log2, causal, NoTurns{});
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
