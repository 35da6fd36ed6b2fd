// What the Hopper flash rungs (2_flash_hopper, 3_flash_overlap,
// 4_flash_pingpong) share: the block's shared-memory layout and mbarriers,
// the producer warpgroup, the two products on wgmma, the online softmax on
// S's accumulators, the key-by-key P V for a partly hidden tile with a
// non-finite V, the final store, and the host-side checks and tensor maps;
// rungs 3 and 4 also the pipelined consumer. The rungs differ in how a
// consumer warpgroup orders its MMAs and its softmax.
//
// Include it after ../matmul_bf16/hopper.cuh (the CPU emulation substitutes
// its own hopper.cuh and ptx.cuh, which a header beside this one could not).
#pragma once

#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "../cuda_check.cuh"
#include "../matmul/rungs.cuh"
#include "../matmul_bf16/wgmma_tile.cuh"
#include "locality/exp2.hpp"
#include "locality/gpu.hpp"

namespace locality::gpu::hopper_flash {

using Index = std::int64_t;
// 128 query rows a block: a producer warpgroup and two consumers of 64 rows,
// the registers moved from the first to the others (setmaxnreg: 24 + 2 x 240
// = 504, the 3 x 168 the warpgroups start with).
constexpr int kBR = 128, kConsumers = 2, kThreads = 128 * (1 + kConsumers);
constexpr int kProducerRegs = 24, kConsumerRegs = 240;
static_assert(hopper::role_registers_fit(kProducerRegs, kConsumers, kConsumerRegs));
constexpr unsigned kAll = 0xffffffffu;

template <int D, int kStages>
struct Tiles {
  static constexpr int kBC = D > 64 ? 64 : 128;  // keys per tile: S and O share the registers
  static constexpr int kSlabs = D / 64;          // 64 columns (128 bytes) per swizzled slab
  static constexpr int kQBytes = kBR * D * 2;
  static constexpr int kKVBytes = kBC * D * 2;  // one of K or V
  static constexpr int kStageBytes = 2 * kKVBytes;
  static constexpr int kSharedBytes =
      kQBytes + kStages * kStageBytes + (1 + 2 * kStages) * 8 + 1024;
};

// The block's dynamic shared memory, aligned to the 1024 bytes the 128-byte
// swizzle needs: Q, the ring of K/V stages, then the mbarriers.
template <int D, int kStages>
struct Layout {
  std::uint8_t* qs;
  std::uint8_t* ring;
  std::uint64_t* q_full;
  std::uint64_t* full;   // [kStages]: the stage's bytes have landed
  std::uint64_t* empty;  // [kStages]: the 8 consumer warps are done with it

  __device__ explicit Layout(std::uint8_t* smem_raw) {
    using T = Tiles<D, kStages>;
    qs = reinterpret_cast<std::uint8_t*>((reinterpret_cast<std::uintptr_t>(smem_raw) + 1023) &
                                         ~std::uintptr_t{1023});
    ring = qs + T::kQBytes;
    q_full = reinterpret_cast<std::uint64_t*>(ring + kStages * T::kStageBytes);
    full = q_full + 1;
    empty = full + kStages;
  }
  __device__ const std::uint8_t* k_tile(int t) const {
    return ring + (t % kStages) * Tiles<D, kStages>::kStageBytes;
  }
  __device__ const std::uint8_t* v_tile(int t) const {
    return k_tile(t) + Tiles<D, kStages>::kKVBytes;
  }
  __device__ void wait_full(int t) const {
    hopper::mbarrier_wait(&full[t % kStages], (t / kStages) & 1);
  }
  __device__ void release(int t, int lane) const {  // this warp is done with tile t's stage
    if (lane == 0) hopper::mbarrier_arrive(&empty[t % kStages]);
  }
};

// Which rows a block takes (the blocks with the longest causal rows first)
// and how many tiles of keys any of its rows sees.
struct Block {
  int head, r0, tiles;
};
template <int kBC>
__device__ __forceinline__ Block block_of(int heads, int seq_q, int seq_kv, bool causal) {
  const int row_blocks = (seq_q + kBR - 1) / kBR;
  Block b;
  b.head = static_cast<int>(blockIdx.x % heads);
  b.r0 = (row_blocks - 1 - static_cast<int>(blockIdx.x / heads)) * kBR;
  const int last_row = (b.r0 + kBR < seq_q ? b.r0 + kBR : seq_q) - 1;
  const int keys = causal && last_row + 1 < seq_kv ? last_row + 1 : seq_kv;
  b.tiles = (keys + kBC - 1) / kBC;
  return b;
}

template <int D, int kStages>
__device__ __forceinline__ void init_barriers(const Layout<D, kStages>& l) {
  if (threadIdx.x == 0) {
    hopper::mbarrier_init(l.q_full, 1);
    for (int s = 0; s < kStages; ++s) {
      hopper::mbarrier_init(&l.full[s], 1);
      hopper::mbarrier_init(&l.empty[s], 4 * kConsumers);
    }
    hopper::fence_barrier_init();
  }
  __syncthreads();
}

// The producer warpgroup: kProducerRegs registers, one thread asking the tensor memory
// accelerator for Q, then for each tile's K and V as its stage comes free.
template <int D, int kStages>
__device__ __forceinline__ void produce(const Layout<D, kStages>& l, const Block& b,
                                        const CUtensorMap* q_map, const CUtensorMap* k_map,
                                        const CUtensorMap* v_map) {
  using T = Tiles<D, kStages>;
  hopper::setmaxnreg_dec<kProducerRegs>();
  if (threadIdx.x != 0) return;
  hopper::mbarrier_arrive_expect_tx(l.q_full, T::kQBytes);
  for (int slab = 0; slab < T::kSlabs; ++slab) {
    hopper::tma_load_3d(l.qs + slab * kBR * 128, q_map, l.q_full, 64 * slab, b.r0, b.head);
  }
  for (int t = 0; t < b.tiles; ++t) {
    const int s = t % kStages;
    hopper::mbarrier_wait(&l.empty[s], ((t / kStages) & 1) ^ 1);
    std::uint8_t* ks = l.ring + s * T::kStageBytes;
    hopper::mbarrier_arrive_expect_tx(&l.full[s], T::kStageBytes);
    for (int slab = 0; slab < T::kSlabs; ++slab) {
      hopper::tma_load_3d(ks + slab * T::kBC * 128, k_map, &l.full[s], 64 * slab, t * T::kBC,
                          b.head);
      hopper::tma_load_3d(ks + T::kKVBytes + slab * T::kBC * 128, v_map, &l.full[s], 64 * slab,
                          t * T::kBC, b.head);
    }
  }
}

// The block's start: mbarriers set up, then the producer warpgroup produces
// (true: the thread is done) and the consumers go on (false).
template <int D, int kStages>
__device__ __forceinline__ bool produced(const Layout<D, kStages>& l, const Block& b,
                                         const CUtensorMap* q_map, const CUtensorMap* k_map,
                                         const CUtensorMap* v_map) {
  init_barriers(l);
  if (threadIdx.x >= 128) return false;
  produce(l, b, q_map, k_map, v_map);
  return true;
}

__device__ __forceinline__ float exp2_np(float x) {
  return exp2_nonpositive_impl<float, std::uint32_t>(x);
}
__device__ __forceinline__ float bf16_low(std::uint32_t x) { return __uint_as_float(x << 16); }
__device__ __forceinline__ float bf16_high(std::uint32_t x) {
  return __uint_as_float(x & 0xffff0000u);
}

// Element (row, col) of a tile the copy engine wrote in slabs of 64 columns,
// `rows` rows each, with the 128-byte swizzle (chunk c of row r at c xor r).
__device__ __forceinline__ const std::uint8_t* swizzled_at(const std::uint8_t* tile, int rows,
                                                           int row, int col) {
  return tile + (col / 64) * rows * 128 + row * 128 + (((col % 64) / 8) ^ (row % 8)) * 16 +
         (col % 8) * 2;
}

// S (64 x kBC) += Q K^T for one warpgroup: issued, not waited for.
template <int D, int kBC>
__device__ __forceinline__ void issue_scores(float (&s)[kBC / 2], const std::uint8_t* q,
                                             const std::uint8_t* k) {
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    // Both K-major: 16 columns of head_dim (32 bytes) further along the
    // rows of a slab; 8-row atoms 1024 bytes apart.
    const std::uint64_t a =
        hopper::smem_descriptor(q + (kk / 4) * kBR * 128 + 32 * (kk % 4), 16, 1024);
    const std::uint64_t b =
        hopper::smem_descriptor(k + (kk / 4) * kBC * 128 + 32 * (kk % 4), 16, 1024);
    if constexpr (kBC == 128) {
      hopper::wgmma_m64n128k16_bk(s, a, b);
    } else {
      hopper::wgmma_m64n64k16_bk(s, a, b);
    }
  }
}
// O (64 x D) += P V for one warpgroup, P from registers: issued, not waited for.
template <int D, int kBC>
__device__ __forceinline__ void issue_weighted_values(float (&o)[D / 2],
                                                      const std::uint32_t (&p)[kBC / 16][4],
                                                      const std::uint8_t* v) {
#pragma unroll
  for (int kk = 0; kk < kBC / 16; ++kk) {
    // V N-major: 16 keys (rows, 2048 bytes) further; 8-row atoms 1024 apart,
    // the next 64 columns one slab (kBC rows) on.
    const std::uint64_t b = hopper::smem_descriptor(v + 2048 * kk, kBC * 128, 1024);
    if constexpr (D == 128) {
      hopper::wgmma_m64n128k16_ra(o, p[kk], b);
    } else {
      hopper::wgmma_m64n64k16_ra(o, p[kk], b);
    }
  }
}

// The thread's place in its consumer warpgroup: rows g and g + 8 of its
// warp's 16 (`warp_r0` the first), quad lane tq.
struct Rows {
  int lane, g, tq, wg_r0, warp_r0;
};

// A consumer warpgroup takes its registers; its thread's rows.
__device__ __forceinline__ Rows consumer_rows(const Block& b) {
  hopper::setmaxnreg_inc<kConsumerRegs>();
  const int tid = threadIdx.x;
  Rows r;
  r.lane = tid % 32, r.g = r.lane / 4, r.tq = r.lane % 4;
  r.wg_r0 = b.r0 + 64 * (tid / 128 - 1);  // its warpgroup's first row
  r.warp_r0 = r.wg_r0 + 16 * ((tid % 128) / 32);
  return r;
}

// The online softmax of one tile's scores, as flash2_mma's: scale to log2
// units, mask, new maximum (quad-wide), weights 2^(x - max) in place of the
// scores, the row sums; `alpha` is what O must be multiplied by (O itself is
// not touched, so its MMAs may still be in flight).
template <int kBC>
__device__ __forceinline__ void softmax(float (&sc)[kBC / 2], float (&row_max)[2],
                                        float (&row_sum)[2], float (&alpha)[2], const Rows& r,
                                        int kv0, int seq_kv, bool causal, float scale_log2) {
  const bool masked = kv0 + kBC > seq_kv || (causal && kv0 + kBC - 1 > r.warp_r0);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = r.warp_r0 + r.g + 8 * h;
    const int end = causal && row + 1 < seq_kv ? row + 1 : seq_kv;
    const int seen = masked ? (end - kv0 < kBC ? end - kv0 : kBC) : kBC;
    float m = row_max[h];
#pragma unroll
    for (int j = 0; j < kBC / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        float x = sc[4 * j + 2 * h + e] * scale_log2;
        if (8 * j + 2 * r.tq + e >= seen) x = -INFINITY;
        sc[4 * j + 2 * h + e] = x;
        m = fmaxf(m, x);
      }
    }
    m = fmaxf(m, __shfl_xor_sync(kAll, m, 1));
    m = fmaxf(m, __shfl_xor_sync(kAll, m, 2));
    const float shift = m == -INFINITY ? 0.0f : m;  // a row with nothing seen yet
    alpha[h] = exp2_np(row_max[h] - shift);
    row_max[h] = m;
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < kBC / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float p = exp2_np(sc[4 * j + 2 * h + e] - shift);
        sc[4 * j + 2 * h + e] = p;
        sum += p;
      }
    }
    row_sum[h] = row_sum[h] * alpha[h] + sum;
  }
}
template <int D>
__device__ __forceinline__ void rescale(float (&acc)[D / 2], const float (&alpha)[2]) {
#pragma unroll
  for (int n = 0; n < D / 8; ++n) {
#pragma unroll
    for (int h = 0; h < 2; ++h) acc[4 * n + 2 * h] *= alpha[h], acc[4 * n + 2 * h + 1] *= alpha[h];
  }
}

// P in wgmma's A-fragment layout: 16 keys a step, S's slices 2 kk and
// 2 kk + 1 rounded to bf16 in place.
template <int kBC>
__device__ __forceinline__ void pack_weights(const float (&sc)[kBC / 2],
                                             std::uint32_t (&pa)[kBC / 16][4]) {
#pragma unroll
  for (int kk = 0; kk < kBC / 16; ++kk) {
#pragma unroll
    for (int i = 0; i < 4; ++i)
      pa[kk][i] = ptx::pack_bf16x2(sc[8 * kk + 2 * i], sc[8 * kk + 2 * i + 1]);
  }
}

// A tile some rows of the warpgroup see only in part holds hidden keys; if
// V has a NaN or an infinity among the tile's keys, P V goes key by key
// (every warp scans the same rows: the choice is the warpgroup's, as wgmma
// needs).
template <int D, int kBC>
__device__ __forceinline__ bool values_by_key(const std::uint8_t* vs, const Rows& r, int kv0,
                                              int seq_kv, bool causal) {
  if (!causal || kv0 + kBC - 1 <= r.wg_r0) return false;
  bool bad = false;
  const int valid = seq_kv - kv0 < kBC ? seq_kv - kv0 : kBC;
  for (int e = r.lane; e < valid * (D / 8); e += 32) {
    const uint4 c =
        *reinterpret_cast<const uint4*>(swizzled_at(vs, kBC, e / (D / 8), 8 * (e % (D / 8))));
    const auto nonfinite = [](std::uint32_t w) {  // either bf16 of the pair
      return (w & 0x7f80u) == 0x7f80u || (w & 0x7f800000u) == 0x7f800000u;
    };
    bad |= nonfinite(c.x) || nonfinite(c.y) || nonfinite(c.z) || nonfinite(c.w);
  }
  return __any_sync(kAll, bad);
}

// O += P V key by key on the CUDA cores, each row stopping at its last key.
// Row g + 8 h's weight for key c sits in lane 4 g + (c % 8) / 2.
template <int D, int kBC>
__device__ __forceinline__ void weighted_values_by_key(float (&acc)[D / 2],
                                                       const std::uint32_t (&pa)[kBC / 16][4],
                                                       const std::uint8_t* vs, const Rows& r,
                                                       int kv0, int seq_kv) {
  for (int c = 0; c < kBC; ++c) {
    const int kk = c / 16, src = 4 * r.g + (c % 8) / 2;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      std::uint32_t mine = 0;
#pragma unroll
      for (int q = 0; q < kBC / 16; ++q) {
        if (q == kk) mine = (c % 16) < 8 ? pa[q][h] : pa[q][2 + h];
      }
      const std::uint32_t pair = __shfl_sync(kAll, mine, src);
      const float p = c % 2 == 0 ? bf16_low(pair) : bf16_high(pair);
      const int row = r.warp_r0 + r.g + 8 * h;
      if (kv0 + c > row || kv0 + c >= seq_kv) continue;  // hidden from this row
#pragma unroll
      for (int n = 0; n < D / 8; ++n) {  // V(c, 8 n + 2 tq) and the next
        const std::uint32_t vv =
            *reinterpret_cast<const std::uint32_t*>(swizzled_at(vs, kBC, c, 8 * n + 2 * r.tq));
        acc[4 * n + 2 * h] = fmaf(p, bf16_low(vv), acc[4 * n + 2 * h]);
        acc[4 * n + 2 * h + 1] = fmaf(p, bf16_high(vv), acc[4 * n + 2 * h + 1]);
      }
    }
  }
}

// O = acc / row sum, in bf16; the sum's four quarters sit in the quad.
template <int D>
__device__ __forceinline__ void store_output(const float (&acc)[D / 2], const float (&row_sum)[2],
                                             __nv_bfloat16* o, const Rows& r, int head, int seq_q) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float l = row_sum[h];
    l += __shfl_xor_sync(kAll, l, 1);
    l += __shfl_xor_sync(kAll, l, 2);
    const int row = r.warp_r0 + r.g + 8 * h;
    if (row >= seq_q) continue;
    __nv_bfloat16* orow = o + (Index{head} * seq_q + row) * D;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      *reinterpret_cast<std::uint32_t*>(orow + 8 * n + 2 * r.tq) =
          ptx::pack_bf16x2(acc[4 * n + 2 * h] / l, acc[4 * n + 2 * h + 1] / l);
    }
  }
}

// What a consumer warpgroup does in the overlapped rungs (3_flash_overlap,
// 4_flash_pingpong): their header comments say why. Per tile t of the
// pipelined loop the two products are issued together, between
// `turns.take(t)` and `turns.give(t)`: nothing for flash_overlap, the
// warpgroups' alternation for flash_pingpong. `turns.begin` is called once,
// before the loop.
struct NoTurns {
  __device__ void begin(const Block&, const Rows&, int, bool) {}
  __device__ void take(int) {}
  __device__ void give(int) {}
};
template <int D, int kStages, typename Turns>
__device__ __forceinline__ void overlapped_consumer(const Layout<D, kStages>& l, const Block& b,
                                                    __nv_bfloat16* o, int seq_q, int seq_kv,
                                                    float scale_log2, bool causal, Turns turns) {
  constexpr int kBC = Tiles<D, kStages>::kBC;
  const Rows r = consumer_rows(b);
  const std::uint8_t* q_rows = l.qs + (r.wg_r0 - b.r0) * 128;
  // Tiles [0, clean) every row of this warpgroup sees whole: pipelined. Then,
  // under the causal mask, [clean, mine) cross its diagonal (rung 2's order,
  // key-by-key P V where V is not finite), and [mine, tiles) it does not see.
  const int last = (r.wg_r0 + 63) / kBC + 1, whole = (r.wg_r0 + 1) / kBC;
  const int mine = causal && last < b.tiles ? last : b.tiles;
  const int clean = causal && whole < mine ? whole : mine;
  turns.begin(b, r, kBC, causal);
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
    l.wait_full(t + 1);
    turns.take(t);
    issue_scores_of(t + 1);
    issue_values_of(t);
    turns.give(t);
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

// The host side: the rung's checks; then the three tensor maps (a plane per
// head), the grid and the kernel's arguments, with the kernel allowed its
// shared memory. The rung launches it.
// `check` is false where there is nothing to compute.
inline bool check(const Bf16AttentionArgs& args, const char* rung) {
  const std::ptrdiff_t d = args.shape.head_dim;
  if (d != 64 && d != 128) {
    throw ShapeError(std::string("the ") + rung + " rung takes head_dim 64 or 128 (got " +
                     std::to_string(d) + ")");
  }
  if (!aligned16(args.q) || !aligned16(args.k) || !aligned16(args.v) || !aligned16(args.o)) {
    throw ShapeError(std::string("the ") + rung + " rung needs 16-byte aligned tensors");
  }
  return args.shape.batch * args.shape.heads * args.shape.seq_q > 0;
}
struct Launch {
  CUtensorMap q, k, v;
  unsigned blocks;
  __nv_bfloat16* o;
  int heads, seq_q, seq_kv;
  float scale_log2;
};
template <int D, int kStages, typename Kernel>
Launch prepare(const Bf16AttentionArgs& args, Kernel* kernel, const char* rung) {
  using T = Tiles<D, kStages>;
  const AttentionShape& s = args.shape;
  const Index heads = s.batch * s.heads, row_blocks = (s.seq_q + kBR - 1) / kBR;
  if (heads * row_blocks > 0x7fffffff || s.seq_q > 0x7fffffff - kBR ||
      s.seq_kv > 0x7fffffff - kBR) {
    throw ShapeError(std::string("the ") + rung +
                     " rung takes at most 2^31 - 1 blocks of 128 query rows and sequences "
                     "under 2^31 - 128");
  }
  LOCALITY_CUDA(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, T::kSharedBytes));
  return {hopper::bf16_tensor_map_3d(args.q, heads, static_cast<int>(s.seq_q), D, kBR, 64),
          hopper::bf16_tensor_map_3d(args.k, heads, static_cast<int>(s.seq_kv), D, T::kBC, 64),
          hopper::bf16_tensor_map_3d(args.v, heads, static_cast<int>(s.seq_kv), D, T::kBC, 64),
          static_cast<unsigned>(heads * row_blocks),
          reinterpret_cast<__nv_bfloat16*>(args.o),
          static_cast<int>(heads),
          static_cast<int>(s.seq_q),
          static_cast<int>(s.seq_kv),
          args.scale * kLog2e};
}

}  // namespace locality::gpu::hopper_flash
