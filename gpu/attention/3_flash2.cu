// Rung 3 -- flash2: FlashAttention-2's order: the query tile on chip for the
//   whole pass, O in registers, the row sums divided out once at the end.
//
// Idea: a block of 4 warps takes a tile of query rows; each warp owns a
//   quarter of the rows, and each thread a micro-tile of TM rows (4, or 2 at
//   head_dim above 128) shared with the 7 other lanes of its group of 8. Per
//   K/V tile, the thread scores its rows against every 8th key of the tile
//   (a TM x BC/8 register tile, the matmul ladder's lesson), its group agrees
//   on each row's new maximum with three shuffles, and it rescales its own
//   TM x d/8 piece of O in registers. The weights P pass once through the
//   warp's own strip of shared memory (no block barrier) on their way to
//   O += P V. Each lane keeps a partial row sum; one division at the end.
//   Causal: tiles wholly above the diagonal are never loaded, only tiles that
//   cross it (or the ragged end of K) are masked, and the blocks with the
//   longest rows start first, so the short ones fill in the tail.
// Locality: Q's tile is read from device memory once per block and stays in
//   shared memory; O never leaves registers until the final store. Each K/V
//   tile is read once per block and reused by its 16 TM query rows; shared
//   memory rows are padded so that the lanes of a group read 8 different
//   banks (Q's rows are broadcasts). Device memory sees Q, K, V and O only:
//   no workspace at all.
// Cost: per 4 steps along head_dim, TM + BC/8 128-bit shared loads feed
//   TM x BC/8 x 4 multiply-adds for S, per key 1 + d/32 feed TM x d/8 for
//   P V. K and V are not double-buffered: the 2-3 blocks an SM holds hide
//   each other's loads. At most the float matmul ladder's speed.
// Edges: any seq_q and seq_kv; head_dim 1..256, padded on chip to 32, 64,
//   128 or 256 with zeros (128-bit loads when head_dim is a multiple of 4 and
//   the tensors are 16-byte aligned). A key its row does not see is never
//   multiplied into O, V's NaN included; a row whose running max is -inf
//   shifts by 0, as rung 2.
#include <cuda_runtime.h>

#include <cstdint>

#include "../cuda_check.cuh"
#include "../matmul/rungs.cuh"
#include "common.cuh"
#include "locality/exp2.hpp"
#include "locality/gpu.hpp"

namespace locality::gpu {
namespace {

constexpr int kWarps = 4, kThreads = 32 * kWarps;
constexpr unsigned kAll = 0xffffffffu;

// The tile shapes for a head_dim padded to D: TM query rows per thread, 16 TM
// per block, BC keys per K/V tile. Chosen so that a block's shared memory
// (Q, K, V and P) lets two or more blocks share an SM of 228 KiB.
template <int D>
struct Tiles {
  static constexpr int kTM = D > 128 ? 2 : 4;
  static constexpr int kBC = D > 64 ? 32 : 64;
  static constexpr int kRows = kWarps * 4 * kTM;  // query rows per block
  static constexpr int kKeysPer = kBC / 8;        // keys per thread: lane % 8 + 8 t
  static constexpr int kCol4s = D / 32;           // float4s of O per row per thread
  static constexpr int kLd = D + 4;               // row stride of Q, K and V on chip
  static constexpr int kLdP = kRows + 4;          // row stride of P^T (key-major)
  static constexpr std::size_t kSharedFloats =
      std::size_t{kRows} * kLd + 2 * std::size_t{kBC} * kLd + std::size_t{kBC} * kLdP;
};

__device__ inline float exp2_np(float x) { return exp2_nonpositive_impl<float, std::uint32_t>(x); }

// rows x D floats from `src` (rows of d, `valid` of them) into `dst` (stride
// ld), times `gain`, zero past d and past `valid`.
template <bool kVec, int D>
__device__ inline void load_tile(float* dst, int ld, const float* src, int rows, Index valid, int d,
                                 float gain) {
  for (int e = threadIdx.x; e < rows * (D / 4); e += kThreads) {
    const int row = e / (D / 4), c = 4 * (e % (D / 4));
    float4 x = load4<kVec>(src + Index{row} * d, row < valid, c, d);
    x.x *= gain, x.y *= gain, x.z *= gain, x.w *= gain;
    *reinterpret_cast<float4*>(dst + row * ld + c) = x;
  }
}

template <bool kVec, int D>
__global__ void __launch_bounds__(kThreads)
    flash2_kernel(const float* q, const float* k, const float* v, float* o, Sizes sz, float qscale,
                  Index tiles) {
  using T = Tiles<D>;
  constexpr int TM = T::kTM, BC = T::kBC, KP = T::kKeysPer, C4 = T::kCol4s;
  extern __shared__ __align__(16) float smem[];
  float* qs = smem;                    // kRows x kLd
  float* ks = qs + T::kRows * T::kLd;  // BC x kLd
  float* vs = ks + BC * T::kLd;        // BC x kLd
  float* ps = vs + BC * T::kLd;        // BC x kLdP: P transposed

  // Blocks in order of decreasing query tile: under the causal mask the last
  // tiles have the most keys, and they start first.
  const Index head = blockIdx.x % sz.heads;
  const Index r0 = (tiles - 1 - blockIdx.x / sz.heads) * T::kRows;
  const int d = static_cast<int>(sz.head_dim);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, cg = lane % 8;
  const int my_row = warp * 4 * TM + (lane / 8) * TM;  // first of this thread's rows, in the tile
  const float* kh = k + head * sz.seq_kv * d;
  const float* vh = v + head * sz.seq_kv * d;

  load_tile<kVec, D>(qs, T::kLd, q + (head * sz.seq_q + r0) * d, T::kRows, sz.seq_q - r0, d,
                     qscale);

  Index visible[TM];  // keys each of this thread's rows sees
#pragma unroll
  for (int i = 0; i < TM; ++i) visible[i] = visible_keys_of(r0 + my_row + i, sz);
  const Index last = (r0 + T::kRows < sz.seq_q ? r0 + T::kRows : sz.seq_q) - 1;
  const Index keys = visible_keys_of(last, sz);    // keys any row of the block sees
  const Index unmasked = visible_keys_of(r0, sz);  // keys every row of the block sees

  float acc[TM][4 * C4] = {};  // O's rows my_row.., columns 4 cg + 32 t + {0..3}
  float m[TM], l[TM];          // running max (shared by the group), partial sum (this lane)
#pragma unroll
  for (int i = 0; i < TM; ++i) m[i] = -INFINITY, l[i] = 0.0f;

  for (Index j0 = 0; j0 < keys; j0 += BC) {
    __syncthreads();  // every warp is done with the previous K and V
    const Index in_tile = sz.seq_kv - j0;
    load_tile<kVec, D>(ks, T::kLd, kh + j0 * d, BC, in_tile, d, 1.0f);
    load_tile<kVec, D>(vs, T::kLd, vh + j0 * d, BC, in_tile, d, 1.0f);
    __syncthreads();
    const bool masked = j0 + BC > unmasked;

    // S = Q K^T for this thread's rows and keys cg + 8 t, in log2 units.
    float s[TM][KP] = {};
#pragma unroll 2
    for (int c = 0; c < D; c += 4) {
      float4 qv[TM], kv[KP];
#pragma unroll
      for (int i = 0; i < TM; ++i)
        qv[i] = *reinterpret_cast<const float4*>(qs + (my_row + i) * T::kLd + c);
#pragma unroll
      for (int t = 0; t < KP; ++t)
        kv[t] = *reinterpret_cast<const float4*>(ks + (cg + 8 * t) * T::kLd + c);
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int t = 0; t < KP; ++t) {
          s[i][t] += qv[i].x * kv[t].x;
          s[i][t] += qv[i].y * kv[t].y;
          s[i][t] += qv[i].z * kv[t].z;
          s[i][t] += qv[i].w * kv[t].w;
        }
    }

    // The online softmax, row by row: the group's new maximum, the weights,
    // and O and the partial sum rescaled to it. P goes to the warp's strip.
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      float tile_max = -INFINITY;
#pragma unroll
      for (int t = 0; t < KP; ++t) {
        if (masked && j0 + cg + 8 * t >= visible[i]) s[i][t] = -INFINITY;
        tile_max = fmaxf(tile_max, s[i][t]);
      }
#pragma unroll
      for (int step = 1; step < 8; step *= 2)
        tile_max = fmaxf(tile_max, __shfl_xor_sync(kAll, tile_max, step));
      const float m_new = fmaxf(m[i], tile_max);
      const float shift = m_new == -INFINITY ? 0.0f : m_new;
      const float alpha = exp2_np(m[i] - shift);  // 0 on the first tile
      float sum = 0.0f;
#pragma unroll
      for (int t = 0; t < KP; ++t) {
        const float p = exp2_np(s[i][t] - shift);
        sum += p;
        ps[(cg + 8 * t) * T::kLdP + my_row + i] = p;
      }
      l[i] = l[i] * alpha + sum;
      m[i] = m_new;
#pragma unroll
      for (int x = 0; x < 4 * C4; ++x) acc[i][x] *= alpha;
    }
    __syncwarp();  // the warp's P is complete

    // O += P V over the keys of the tile; in a masked tile, a key a row does
    // not see is skipped for that row, so a NaN in its V stays out.
    const int n = static_cast<int>(masked && keys - j0 < BC ? keys - j0 : BC);
#pragma unroll 4
    for (int j = 0; j < n; ++j) {
      float p[TM];
#pragma unroll
      for (int i = 0; i < TM; ++i) p[i] = ps[j * T::kLdP + my_row + i];
#pragma unroll
      for (int t = 0; t < C4; ++t) {
        const float4 vv = *reinterpret_cast<const float4*>(vs + j * T::kLd + 4 * cg + 32 * t);
#pragma unroll
        for (int i = 0; i < TM; ++i) {
          if (masked && j0 + j >= visible[i]) continue;
          acc[i][4 * t + 0] += p[i] * vv.x;
          acc[i][4 * t + 1] += p[i] * vv.y;
          acc[i][4 * t + 2] += p[i] * vv.z;
          acc[i][4 * t + 3] += p[i] * vv.w;
        }
      }
    }
  }

  // One division per row, by the sum of the group's partial sums.
#pragma unroll
  for (int i = 0; i < TM; ++i) {
#pragma unroll
    for (int step = 1; step < 8; step *= 2) l[i] += __shfl_xor_sync(kAll, l[i], step);
    const Index row = r0 + my_row + i;
    const float inv = 1.0f / l[i];
    float* orow = o + (head * sz.seq_q + row) * d;
#pragma unroll
    for (int t = 0; t < C4; ++t) {
      const float* a = acc[i] + 4 * t;
      store4<kVec>(orow, row < sz.seq_q, 4 * cg + 32 * t, d,
                   make_float4(a[0] * inv, a[1] * inv, a[2] * inv, a[3] * inv));
    }
  }
}

template <bool kVec, int D>
void launch(const AttentionArgs& args, const Sizes& sz) {
  using T = Tiles<D>;
  const Index tiles = (sz.seq_q + T::kRows - 1) / T::kRows;
  const Index blocks = tiles * sz.heads;
  if (blocks > 0x7fffffff) {
    throw ShapeError("the flash2 GPU attention rung needs fewer than 2^31 query tiles in all");
  }
  const int bytes = static_cast<int>(T::kSharedFloats * sizeof(float));
  LOCALITY_CUDA(cudaFuncSetAttribute(flash2_kernel<kVec, D>,
                                     cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  flash2_kernel<kVec, D><<<static_cast<unsigned>(blocks), kThreads, bytes>>>(
      args.q, args.k, args.v, args.o, sz, args.scale * kLog2e, tiles);
  LOCALITY_CUDA_LAUNCHED();
}

template <bool kVec>
void launch_for_head_dim(const AttentionArgs& args, const Sizes& sz) {
  if (sz.head_dim <= 32) return launch<kVec, 32>(args, sz);
  if (sz.head_dim <= 64) return launch<kVec, 64>(args, sz);
  if (sz.head_dim <= 128) return launch<kVec, 128>(args, sz);
  launch<kVec, 256>(args, sz);
}

}  // namespace

std::size_t flash2_attention_workspace(const AttentionShape&) { return 0; }

void flash2_attention(const AttentionArgs& args, float*) {
  const Sizes sz = sizes_of(args);
  if (sz.heads == 0 || sz.seq_q == 0) return;
  // Rows of d floats start 16-byte aligned when d is a multiple of 4 and the
  // tensors themselves are (load4's condition for 128-bit accesses).
  const bool vec = sz.head_dim % 4 == 0 && aligned16(args.q) && aligned16(args.k) &&
                   aligned16(args.v) && aligned16(args.o);
  if (vec) {
    launch_for_head_dim<true>(args, sz);
  } else {
    launch_for_head_dim<false>(args, sz);
  }
}

}  // namespace locality::gpu
