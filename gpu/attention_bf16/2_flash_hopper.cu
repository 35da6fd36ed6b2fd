// bf16 attention rung 2 -- flash_hopper: FlashAttention on Hopper's own path:
//   the copy engine brings K and V, warpgroups multiply with wgmma.
//
// Idea: three warpgroups per block of 128 query rows. One thread of the
//   first (the producer, setmaxnreg down to 40 registers) asks the tensor
//   memory accelerator for Q once and then for each tile of keys (128 at
//   head_dim 64, 64 at 128) and its values, into a ring of 2 stages; `full`
//   mbarriers count each stage's bytes, `empty` ones the 8 consumer warps done
//   with it. The two consumer warpgroups (up to 232 registers) own 64 rows
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
#include <string>

#include "../cuda_check.cuh"
#include "../matmul/rungs.cuh"
#include "../matmul_bf16/hopper.cuh"
#include "locality/exp2.hpp"
#include "locality/gpu.hpp"

namespace locality::gpu {
namespace {

using Index = std::int64_t;
constexpr int kBR = 128, kConsumers = 2, kThreads = 128 * (1 + kConsumers), kStages = 2;
constexpr unsigned kAll = 0xffffffffu;

template <int D>
struct Tiles {
  static constexpr int kBC = D > 64 ? 64 : 128;  // keys per tile: S and O share the registers
  static constexpr int kSlabs = D / 64;          // 64 columns (128 bytes) per swizzled slab
  static constexpr int kQBytes = kBR * D * 2;
  static constexpr int kKVBytes = kBC * D * 2;  // one of K or V
  static constexpr int kStageBytes = 2 * kKVBytes;
  static constexpr int kSharedBytes =
      kQBytes + kStages * kStageBytes + (1 + 2 * kStages) * 8 + 1024;
};

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

// S (64 x kBC) = Q K^T and O (64 x D) += P V for one warpgroup.
template <int D>
__device__ __forceinline__ void scores(float (&s)[Tiles<D>::kBC / 2], const std::uint8_t* q,
                                       const std::uint8_t* k) {
  using T = Tiles<D>;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    // Both K-major: 16 columns of head_dim (32 bytes) further along the
    // rows of a slab; 8-row atoms 1024 bytes apart.
    const std::uint64_t a =
        hopper::smem_descriptor(q + (kk / 4) * kBR * 128 + 32 * (kk % 4), 16, 1024);
    const std::uint64_t b =
        hopper::smem_descriptor(k + (kk / 4) * T::kBC * 128 + 32 * (kk % 4), 16, 1024);
    if constexpr (T::kBC == 128) {
      hopper::wgmma_m64n128k16_bk(s, a, b);
    } else {
      hopper::wgmma_m64n64k16_bk(s, a, b);
    }
  }
}
template <int D>
__device__ __forceinline__ void weighted_values(float (&o)[D / 2], const std::uint32_t (&p)[4],
                                                const std::uint8_t* v, int step) {
  using T = Tiles<D>;
  // V N-major: 16 keys (rows, 2048 bytes) further; 8-row atoms 1024 apart,
  // the next 64 columns one slab (kBC rows) on.
  const std::uint64_t b = hopper::smem_descriptor(v + 2048 * step, T::kBC * 128, 1024);
  if constexpr (D == 128) {
    hopper::wgmma_m64n128k16_ra(o, p, b);
  } else {
    hopper::wgmma_m64n64k16_ra(o, p, b);
  }
}

template <int D>
__global__ void __launch_bounds__(kThreads, 1)
    flash_hopper_kernel(const __grid_constant__ CUtensorMap q_map,
                        const __grid_constant__ CUtensorMap k_map,
                        const __grid_constant__ CUtensorMap v_map, __nv_bfloat16* o, int heads,
                        int seq_q, int seq_kv, float scale_log2, bool causal) {
  using T = Tiles<D>;
  constexpr int kBC = T::kBC, kNT = D / 8, kST = kBC / 8;  // n8 slices of O and of S
  extern __shared__ __align__(1024) std::uint8_t smem_raw[];
  std::uint8_t* base = reinterpret_cast<std::uint8_t*>(
      (reinterpret_cast<std::uintptr_t>(smem_raw) + 1023) & ~std::uintptr_t{1023});
  std::uint8_t* qs = base;
  std::uint8_t* ring = base + T::kQBytes;
  std::uint64_t* q_full = reinterpret_cast<std::uint64_t*>(ring + kStages * T::kStageBytes);
  std::uint64_t* full = q_full + 1;
  std::uint64_t* empty = full + kStages;

  const int row_blocks = (seq_q + kBR - 1) / kBR;
  const int head = static_cast<int>(blockIdx.x % heads);
  const int r0 = (row_blocks - 1 - static_cast<int>(blockIdx.x / heads)) * kBR;  // longest first
  const int last_row = (r0 + kBR < seq_q ? r0 + kBR : seq_q) - 1;
  const int keys = causal && last_row + 1 < seq_kv ? last_row + 1 : seq_kv;
  const int tiles = (keys + kBC - 1) / kBC;
  const int tid = threadIdx.x, warpgroup = tid / 128;

  if (tid == 0) {
    hopper::mbarrier_init(q_full, 1);
    for (int s = 0; s < kStages; ++s) {
      hopper::mbarrier_init(&full[s], 1);
      hopper::mbarrier_init(&empty[s], 4 * kConsumers);
    }
    hopper::fence_barrier_init();
  }
  __syncthreads();

  if (warpgroup == 0) {
    hopper::setmaxnreg_dec<40>();
    if (tid != 0) return;
    hopper::mbarrier_arrive_expect_tx(q_full, T::kQBytes);
    for (int slab = 0; slab < T::kSlabs; ++slab) {
      hopper::tma_load_3d(qs + slab * kBR * 128, &q_map, q_full, 64 * slab, r0, head);
    }
    for (int t = 0; t < tiles; ++t) {
      const int s = t % kStages;
      hopper::mbarrier_wait(&empty[s], ((t / kStages) & 1) ^ 1);
      std::uint8_t* ks = ring + s * T::kStageBytes;
      hopper::mbarrier_arrive_expect_tx(&full[s], T::kStageBytes);
      for (int slab = 0; slab < T::kSlabs; ++slab) {
        hopper::tma_load_3d(ks + slab * kBC * 128, &k_map, &full[s], 64 * slab, t * kBC, head);
        hopper::tma_load_3d(ks + T::kKVBytes + slab * kBC * 128, &v_map, &full[s], 64 * slab,
                            t * kBC, head);
      }
    }
    return;
  }

  hopper::setmaxnreg_inc<232>();
  const int lane = tid % 32, warp = (tid % 128) / 32, g = lane / 4, tq = lane % 4;
  const int wg_r0 = r0 + 64 * (warpgroup - 1);  // this warpgroup's first row
  const int warp_r0 = wg_r0 + 16 * warp;
  const std::uint8_t* q_rows = qs + 64 * (warpgroup - 1) * 128;
  hopper::mbarrier_wait(q_full, 0);

  float acc[D / 2];              // O: n8 slice n at acc[4 n ..]
  float row_max[2], row_sum[2];  // rows g and g + 8 of the warp: log2 units
#pragma unroll
  for (int i = 0; i < D / 2; ++i) acc[i] = 0.0f;
  for (int h = 0; h < 2; ++h) row_max[h] = -INFINITY, row_sum[h] = 0.0f;

  for (int t = 0; t < tiles; ++t) {
    const int s = t % kStages, kv0 = t * kBC;
    hopper::mbarrier_wait(&full[s], (t / kStages) & 1);
    const std::uint8_t* ks = ring + s * T::kStageBytes;
    const std::uint8_t* vs = ks + T::kKVBytes;
    if (!causal || kv0 <= wg_r0 + 63) {  // else no row of this warpgroup sees a key of the tile
      float sc[kBC / 2];
#pragma unroll
      for (int i = 0; i < kBC / 2; ++i) sc[i] = 0.0f;
      hopper::wgmma_fence();
      scores<D>(sc, q_rows, ks);
      hopper::wgmma_commit();
      hopper::wgmma_wait<0>();

      // The online softmax, as flash2_mma's: scale to log2 units, mask, new
      // maximum (quad-wide), rescale O and the sum, weights 2^(x - max).
      const bool masked = kv0 + kBC > seq_kv || (causal && kv0 + kBC - 1 > warp_r0);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = warp_r0 + g + 8 * h;
        const int end = causal && row + 1 < seq_kv ? row + 1 : seq_kv;
        const int seen = masked ? (end - kv0 < kBC ? end - kv0 : kBC) : kBC;
        float m = row_max[h];
#pragma unroll
        for (int j = 0; j < kST; ++j) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            float x = sc[4 * j + 2 * h + e] * scale_log2;
            if (8 * j + 2 * tq + e >= seen) x = -INFINITY;
            sc[4 * j + 2 * h + e] = x;
            m = fmaxf(m, x);
          }
        }
        m = fmaxf(m, __shfl_xor_sync(kAll, m, 1));
        m = fmaxf(m, __shfl_xor_sync(kAll, m, 2));
        const float shift = m == -INFINITY ? 0.0f : m;  // a row with nothing seen yet
        const float alpha = exp2_np(row_max[h] - shift);
        row_max[h] = m;
        float sum = 0.0f;
#pragma unroll
        for (int j = 0; j < kST; ++j) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float p = exp2_np(sc[4 * j + 2 * h + e] - shift);
            sc[4 * j + 2 * h + e] = p;
            sum += p;
          }
        }
        row_sum[h] = row_sum[h] * alpha + sum;
#pragma unroll
        for (int n = 0; n < kNT; ++n) acc[4 * n + 2 * h] *= alpha, acc[4 * n + 2 * h + 1] *= alpha;
      }

      // P in wgmma's A-fragment layout: 16 keys a step, S's slices 2 kk and
      // 2 kk + 1 rounded to bf16 in place.
      std::uint32_t pa[kBC / 16][4];
#pragma unroll
      for (int kk = 0; kk < kBC / 16; ++kk) {
        pa[kk][0] = ptx::pack_bf16x2(sc[8 * kk + 0], sc[8 * kk + 1]);
        pa[kk][1] = ptx::pack_bf16x2(sc[8 * kk + 2], sc[8 * kk + 3]);
        pa[kk][2] = ptx::pack_bf16x2(sc[8 * kk + 4], sc[8 * kk + 5]);
        pa[kk][3] = ptx::pack_bf16x2(sc[8 * kk + 6], sc[8 * kk + 7]);
      }
      // A tile some rows of the warpgroup see only in part holds hidden
      // keys; if V has a NaN or an infinity among the tile's keys, P V goes
      // key by key (every warp scans the same rows: the choice is the
      // warpgroup's, as wgmma needs).
      bool by_key = false;
      if (causal && kv0 + kBC - 1 > wg_r0) {
        bool bad = false;
        const int valid = seq_kv - kv0 < kBC ? seq_kv - kv0 : kBC;
        for (int e = lane; e < valid * (D / 8); e += 32) {
          const uint4 c =
              *reinterpret_cast<const uint4*>(swizzled_at(vs, kBC, e / (D / 8), 8 * (e % (D / 8))));
          const auto nonfinite = [](std::uint32_t w) {  // either bf16 of the pair
            return (w & 0x7f80u) == 0x7f80u || (w & 0x7f800000u) == 0x7f800000u;
          };
          bad |= nonfinite(c.x) || nonfinite(c.y) || nonfinite(c.z) || nonfinite(c.w);
        }
        by_key = __any_sync(kAll, bad);
      }
      if (!by_key) {
        hopper::wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kBC / 16; ++kk) weighted_values<D>(acc, pa[kk], vs, kk);
        hopper::wgmma_commit();
        hopper::wgmma_wait<0>();
      } else {
        // Key by key on the CUDA cores, each row stopping at its last key.
        // Row g + 8 h's weight for key c sits in lane 4 g + (c % 8) / 2.
        for (int c = 0; c < kBC; ++c) {
          const int kk = c / 16, src = 4 * g + (c % 8) / 2;
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            std::uint32_t mine = 0;
#pragma unroll
            for (int q = 0; q < kBC / 16; ++q) {
              if (q == kk) mine = (c % 16) < 8 ? pa[q][h] : pa[q][2 + h];
            }
            const std::uint32_t pair = __shfl_sync(kAll, mine, src);
            const float p = c % 2 == 0 ? bf16_low(pair) : bf16_high(pair);
            const int row = warp_r0 + g + 8 * h;
            if (kv0 + c > row || kv0 + c >= seq_kv) continue;  // hidden from this row
#pragma unroll
            for (int n = 0; n < kNT; ++n) {  // V(c, 8 n + 2 tq) and the next
              const std::uint32_t vv =
                  *reinterpret_cast<const std::uint32_t*>(swizzled_at(vs, kBC, c, 8 * n + 2 * tq));
              acc[4 * n + 2 * h] = fmaf(p, bf16_low(vv), acc[4 * n + 2 * h]);
              acc[4 * n + 2 * h + 1] = fmaf(p, bf16_high(vv), acc[4 * n + 2 * h + 1]);
            }
          }
        }
      }
    }
    if (lane == 0) hopper::mbarrier_arrive(&empty[s]);  // this warp is done with stage s
  }

  // O = acc / row sum, in bf16; the sum's four quarters sit in the quad.
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float l = row_sum[h];
    l += __shfl_xor_sync(kAll, l, 1);
    l += __shfl_xor_sync(kAll, l, 2);
    const int row = warp_r0 + g + 8 * h;
    if (row >= seq_q) continue;
    __nv_bfloat16* orow = o + (Index{head} * seq_q + row) * D;
#pragma unroll
    for (int n = 0; n < kNT; ++n) {
      *reinterpret_cast<std::uint32_t*>(orow + 8 * n + 2 * tq) =
          ptx::pack_bf16x2(acc[4 * n + 2 * h] / l, acc[4 * n + 2 * h + 1] / l);
    }
  }
}

template <int D>
void launch(const Bf16AttentionArgs& args) {
  using T = Tiles<D>;
  const AttentionShape& s = args.shape;
  const Index heads = s.batch * s.heads, row_blocks = (s.seq_q + kBR - 1) / kBR;
  if (heads * row_blocks > 0x7fffffff || s.seq_q > 0x7fffffff - kBR ||
      s.seq_kv > 0x7fffffff - kBR) {
    throw ShapeError(
        "the flash_hopper rung takes at most 2^31 - 1 blocks of 128 query rows and sequences "
        "under 2^31 - 128");
  }
  const CUtensorMap q_map =
      hopper::bf16_tensor_map_3d(args.q, heads, static_cast<int>(s.seq_q), D, kBR, 64);
  const CUtensorMap k_map =
      hopper::bf16_tensor_map_3d(args.k, heads, static_cast<int>(s.seq_kv), D, T::kBC, 64);
  const CUtensorMap v_map =
      hopper::bf16_tensor_map_3d(args.v, heads, static_cast<int>(s.seq_kv), D, T::kBC, 64);
  LOCALITY_CUDA(cudaFuncSetAttribute(flash_hopper_kernel<D>,
                                     cudaFuncAttributeMaxDynamicSharedMemorySize, T::kSharedBytes));
  flash_hopper_kernel<D><<<static_cast<unsigned>(heads * row_blocks), kThreads, T::kSharedBytes>>>(
      q_map, k_map, v_map, reinterpret_cast<__nv_bfloat16*>(args.o), static_cast<int>(heads),
      static_cast<int>(s.seq_q), static_cast<int>(s.seq_kv), args.scale * kLog2e, args.causal);
  LOCALITY_CUDA_LAUNCHED();
}

}  // namespace

void flash_hopper_bf16_attention(const Bf16AttentionArgs& args) {
  const std::ptrdiff_t d = args.shape.head_dim;
  if (d != 64 && d != 128) {
    throw ShapeError("the flash_hopper rung takes head_dim 64 or 128 (got " + std::to_string(d) +
                     ")");
  }
  if (!aligned16(args.q) || !aligned16(args.k) || !aligned16(args.v) || !aligned16(args.o)) {
    throw ShapeError("the flash_hopper rung needs 16-byte aligned tensors");
  }
  if (args.shape.batch * args.shape.heads * args.shape.seq_q == 0) return;
  d == 64 ? launch<64>(args) : launch<128>(args);
}

}  // namespace locality::gpu
