// bf16 attention rung 4 -- flash_pingpong: flash_overlap with the two
//   consumer warpgroups taking turns at the tensor cores (FlashAttention-3's
//   ping-pong scheduling).
//
// Idea: in rung 3 each warpgroup overlaps its own softmax with its own
//   P V, but both warpgroups reach their MMAs at about the same time and then
//   both do their softmax, so the tensor cores idle while both pack P and
//   rescale O. Here two named barriers make them alternate: warpgroup 1
//   issues S(t+1) and P(t) V(t), hands the turn to warpgroup 2, and does its
//   softmax while warpgroup 2's products run, and so on. One warpgroup's
//   exponentials then hide behind the other's matrix products.
// Locality: as rungs 2 and 3: Q once per block, each K and V tile once per
//   block for its 128 rows, S and P in registers only.
// Cost: a bar.sync and a bar.arrive per warpgroup per tile; a warpgroup that
//   reaches its turn early waits for the other's issue.
// Edges: as rung 3. Under the causal mask the warpgroups' pipelined steps
//   differ by at most one (the second sees more whole tiles); only the
//   steps both take go by turns.
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

// The turns: the two consumer warpgroups issue their products one after the
// other, on two named barriers of their 256 threads (1: warpgroup 1 may go,
// 2: warpgroup 2 may go). Each takes its turn, issues, and gives the other
// one. Both take as many turns as warpgroup 1 has pipelined steps (under the
// causal mask it sees fewer whole tiles); warpgroup 2's further steps go
// without turns. Warpgroup 2 starts by giving warpgroup 1 its first turn and
// does not give the last, so each barrier's arrivals match its waits.
struct PingPong {
  int take_id = 1, give_id = 2, turns = 0;
  bool second = false;
  __device__ void begin(const Block& b, const Rows& r, int bc, bool causal) {
    second = r.wg_r0 != b.r0;
    if (second) take_id = 2, give_id = 1;
    const int last = (b.r0 + 63) / bc + 1, whole = (b.r0 + 1) / bc;  // warpgroup 1's
    const int mine = causal && last < b.tiles ? last : b.tiles;
    const int clean = causal && whole < mine ? whole : mine;
    turns = clean > 1 ? clean - 1 : 0;
    if (second && turns > 0) hopper::named_barrier_arrive(1, 256);
  }
  __device__ void take(int t) const {
    if (t < turns) hopper::named_barrier_sync(take_id, 256);
  }
  __device__ void give(int t) const {
    if (t < turns && !(second && t == turns - 1)) hopper::named_barrier_arrive(give_id, 256);
  }
};

template <int D>
__global__ void __launch_bounds__(kThreads, 1)
    flash_pingpong_kernel(const __grid_constant__ CUtensorMap q_map,
                          const __grid_constant__ CUtensorMap k_map,
                          const __grid_constant__ CUtensorMap v_map, __nv_bfloat16* o, int heads,
                          int seq_q, int seq_kv, float scale_log2, bool causal) {
  constexpr int kBC = Tiles<D, kStages>::kBC;
  extern __shared__ __align__(1024) std::uint8_t smem_raw[];
  const Layout<D, kStages> l(smem_raw);
  const Block b = block_of<kBC>(heads, seq_q, seq_kv, causal);
  if (produced(l, b, &q_map, &k_map, &v_map)) return;

  overlapped_consumer(l, b, o, seq_q, seq_kv, scale_log2, causal, PingPong{});
}

template <int D>
void launch(const Bf16AttentionArgs& args) {
  constexpr int kBytes = Tiles<D, kStages>::kSharedBytes;
  const Launch p = prepare<D, kStages>(args, flash_pingpong_kernel<D>, "flash_pingpong");
  flash_pingpong_kernel<D><<<p.blocks, kThreads, kBytes>>>(p.q, p.k, p.v, p.o, p.heads, p.seq_q,
                                                           p.seq_kv, p.scale_log2, args.causal);
  LOCALITY_CUDA_LAUNCHED();
}

}  // namespace

void flash_pingpong_bf16_attention(const Bf16AttentionArgs& args) {
  if (!check(args, "flash_pingpong")) return;
  args.shape.head_dim == 64 ? launch<64>(args) : launch<128>(args);
}

}  // namespace locality::gpu
