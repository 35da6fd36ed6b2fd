// bf16 attention rung 1 -- flash2_mma: FlashAttention-2 with both products on
//   the tensor cores, the weights handed between them in registers.
//
// Idea: a block of 4 warps takes 128 query rows, 32 per warp (two 16-row
//   tiles). Per tile of keys, each warp computes its rows' scores with
//   mma.sync.m16n8k16 (Q from shared memory, K^T straight from K's rows by
//   ldmatrix), updates each row's running maximum and sum in float (a row's
//   scores sit in the 4 lanes of a quad: two shuffles agree on its maximum),
//   rescales its 32 x d piece of O, and multiplies the weights into O. The
//   accumulator layout of S is the operand layout of P: the weights are
//   rounded to bf16 and packed in the registers they sit in, never through
//   shared memory. One division by the row sum at the end; O leaves in bf16.
// Locality: K and V tiles arrive by cp.async into a second buffer while the
//   warps work on the first; each is read from device memory once per block
//   and reused by its 128 query rows, Q once per block. Shared memory is
//   swizzled as in the bf16 matmul ladder (16-byte chunk c of row r at c XOR
//   (r mod 8)), so every ldmatrix is free of bank conflicts. Two 16-row tiles
//   per warp let each fragment of K and V serve two multiplies.
// Cost: per thread 64 accumulators of O and 64 of S (head_dim 64, 64-key
//   tiles) or 128 and 32 (128, 32-key tiles): 255 registers, two blocks per
//   SM, 48 or 64 KiB of shared memory per block. The softmax runs on the CUDA
//   cores, one exponential per score; mma.sync issues warp by warp, which on
//   Hopper leaves tensor-core throughput to the next rung's wgmma.
// Edges: head_dim 64 or 128 (other sizes are refused with ShapeError), any
//   seq_q and seq_kv, 16-byte aligned tensors. Causal: tiles wholly above the
//   diagonal are never loaded, a warp skips tiles none of its rows sees, and
//   the 16-key steps above a 16-row tile's diagonal are skipped; only the
//   diagonal step holds keys some rows of the tile see and others do not,
//   and where V's rows there hold a NaN or an infinity that step is summed
//   on the CUDA cores key by key, so a hidden key's V never reaches O.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "../cuda_check.cuh"
#include "../matmul/rungs.cuh"
#include "../ptx.cuh"
#include "locality/exp2.hpp"
#include "locality/gpu.hpp"

namespace locality::gpu {
namespace {

using Index = std::int64_t;
constexpr int kWarps = 4, kThreads = 32 * kWarps;
constexpr int kBR = 128;  // query rows per block
constexpr unsigned kAll = 0xffffffffu;

// Keys per tile: 64, or 32 at head_dim 128, where O's 128 accumulators per
// thread leave room for only 32 of S within the 255 registers a thread has.
template <int D>
struct Layout {
  static constexpr int kBC = D > 64 ? 32 : 64;
  static constexpr int kChunks = D / 8;  // 16-byte chunks per row
  static constexpr int kTileElems = kBC * D;
  static constexpr int kSharedBytes = 2 * (kBR * D + 2 * 2 * kTileElems);  // Q, 2 x (K, V)
};

__device__ __forceinline__ int swizzled(int row, int chunk, int chunks) {
  return row * chunks * 8 + ((chunk ^ (row & 7)) * 8);
}

__device__ __forceinline__ float exp2_np(float x) {
  return exp2_nonpositive_impl<float, std::uint32_t>(x);
}

__device__ __forceinline__ float bf16_low(std::uint32_t x) { return __uint_as_float(x << 16); }
__device__ __forceinline__ float bf16_high(std::uint32_t x) {
  return __uint_as_float(x & 0xffff0000u);
}

// `rows` rows of D bf16 from `src` (rows of D), the first `valid` of them,
// into swizzled shared memory; rows past `valid` are zero-filled.
template <int D>
__device__ inline void load_rows(__nv_bfloat16* dst, const __nv_bfloat16* src, int rows,
                                 int valid) {
  constexpr int kChunks = D / 8;
  for (int id = threadIdx.x; id < rows * kChunks; id += kThreads) {
    const int r = id / kChunks, ch = id % kChunks;
    const bool in = r < valid;
    ptx::cp_async_16(dst + swizzled(r, ch, kChunks), in ? src + Index{r} * D + ch * 8 : src,
                     in ? 16 : 0);
  }
}

template <int D>
__global__ void __launch_bounds__(kThreads)
    flash2_mma_kernel(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                      __nv_bfloat16* o, int heads, int seq_q, int seq_kv, float scale_log2,
                      bool causal) {
  using L = Layout<D>;
  constexpr int kBC = L::kBC, kC = L::kChunks, kNT = D / 8;  // kNT: n8 tiles of O per row
  extern __shared__ __align__(128) __nv_bfloat16 smem_bf16[];
  __nv_bfloat16* qs = smem_bf16;
  __nv_bfloat16* kvs = qs + kBR * D;  // stage s: K at kvs + 2 s T, V after it

  // Positions within a head in int (the launch checks they fit), offsets of
  // heads in 64 bits.
  const int row_blocks = (seq_q + kBR - 1) / kBR;
  const int head = static_cast<int>(blockIdx.x % heads);
  const int block_row = row_blocks - 1 - static_cast<int>(blockIdx.x / heads);  // longest first
  const int r0 = block_row * kBR;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, tq = lane % 4;
  const int warp_r0 = r0 + 32 * warp;
  const __nv_bfloat16* qh = q + (Index{head} * seq_q + r0) * D;
  const __nv_bfloat16* kh = k + Index{head} * seq_kv * D;
  const __nv_bfloat16* vh = v + Index{head} * seq_kv * D;

  // Keys this block's last row sees, and the tiles that cover them.
  const int last_row = (r0 + kBR < seq_q ? r0 + kBR : seq_q) - 1;
  const int keys = causal && last_row + 1 < seq_kv ? last_row + 1 : seq_kv;
  const int tiles = (keys + kBC - 1) / kBC;

  const auto load_tile = [&](int tile) {
    __nv_bfloat16* ks = kvs + 2 * (tile & 1) * L::kTileElems;
    const int kv0 = tile * kBC;
    load_rows<D>(ks, kh + Index{kv0} * D, kBC, seq_kv - kv0);
    load_rows<D>(ks + L::kTileElems, vh + Index{kv0} * D, kBC, seq_kv - kv0);
  };
  load_rows<D>(qs, qh, kBR, seq_q - r0);
  load_tile(0);
  ptx::cp_async_commit();

  float acc[2][kNT][4] = {};           // O: [16-row tile][n8 tile][fragment]
  float row_max[2][2], row_sum[2][2];  // [16-row tile][row g or g + 8]: log2 units
  for (int i = 0; i < 2; ++i) {
    for (int h = 0; h < 2; ++h) row_max[i][h] = -INFINITY, row_sum[i][h] = 0.0f;
  }

  for (int t = 0; t < tiles; ++t) {
    if (t + 1 < tiles) load_tile(t + 1);
    ptx::cp_async_commit();
    ptx::cp_async_wait<1>();  // tile t (and Q) have landed
    __syncthreads();
    const int kv0 = t * kBC;
    const __nv_bfloat16* ks = kvs + 2 * (t & 1) * L::kTileElems;
    const __nv_bfloat16* vs = ks + L::kTileElems;
    if (!causal || kv0 <= warp_r0 + 31) {  // else no row of this warp sees a key of the tile
      // S = Q K^T for the warp's 32 rows and the tile's 64 keys.
      float s[2][kBC / 8][4] = {};
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        std::uint32_t qa[2][4];
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          const int r = 32 * warp + 16 * i + lane % 16;
          ptx::ldmatrix_x4(qa[i], qs + swizzled(r, 2 * kk + lane / 16, kC));
        }
#pragma unroll
        for (int j = 0; j < kBC / 16; ++j) {  // keys 16 j + (lane % 8) + 8 (lane / 16)
          std::uint32_t kb[4];
          const int r = 16 * j + lane % 8 + 8 * (lane / 16);
          ptx::ldmatrix_x4(kb, ks + swizzled(r, 2 * kk + (lane / 8) % 2, kC));
          const std::uint32_t b0[2] = {kb[0], kb[1]}, b1[2] = {kb[2], kb[3]};
#pragma unroll
          for (int i = 0; i < 2; ++i) {
            ptx::mma_bf16_16816(s[i][2 * j], qa[i], b0);
            ptx::mma_bf16_16816(s[i][2 * j + 1], qa[i], b1);
          }
        }
      }

      // The online softmax, row by row: scale to log2 units, mask, new maximum
      // (quad-wide), rescale O and the sum, weights 2^(x - max).
      const bool masked = kv0 + kBC > seq_kv || (causal && kv0 + kBC - 1 > warp_r0);
#pragma unroll
      for (int i = 0; i < 2; ++i) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          // Keys of the tile this row sees: those before `seen` (tile-relative).
          const int row = warp_r0 + 16 * i + g + 8 * h;
          const int end = causal && row + 1 < seq_kv ? row + 1 : seq_kv;
          const int seen = masked ? (end - kv0 < kBC ? end - kv0 : kBC) : kBC;
          float m = row_max[i][h];
#pragma unroll
          for (int j = 0; j < kBC / 8; ++j) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              float x = s[i][j][2 * h + e] * scale_log2;
              if (8 * j + 2 * tq + e >= seen) x = -INFINITY;
              s[i][j][2 * h + e] = x;
              m = fmaxf(m, x);
            }
          }
          m = fmaxf(m, __shfl_xor_sync(kAll, m, 1));
          m = fmaxf(m, __shfl_xor_sync(kAll, m, 2));
          const float shift = m == -INFINITY ? 0.0f : m;  // a row with nothing seen yet
          const float alpha = exp2_np(row_max[i][h] - shift);
          row_max[i][h] = m;
          float sum = 0.0f;
#pragma unroll
          for (int j = 0; j < kBC / 8; ++j) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              const float p = exp2_np(s[i][j][2 * h + e] - shift);
              s[i][j][2 * h + e] = p;
              sum += p;
            }
          }
          row_sum[i][h] = row_sum[i][h] * alpha + sum;
#pragma unroll
          for (int n = 0; n < kNT; ++n) acc[i][n][2 * h] *= alpha, acc[i][n][2 * h + 1] *= alpha;
        }
      }

      // O += P V. P's fragments are S's accumulators rounded to bf16 in
      // place, all of them first (S's registers are free after), then V's
      // fragments are loaded one at a time, each used at once.
      constexpr int kSteps = kBC / 16;  // 16-key steps per tile
      std::uint32_t pa[kSteps][2][4];
      // Per step and 16-row tile: every key of the step seen (mma), none
      // (skip), or the diagonal step: mma unless V's rows there are not all
      // finite, then key by key (below).
      bool use_mma[kSteps][2], by_key[kSteps][2];
#pragma unroll
      for (int kk = 0; kk < kSteps; ++kk) {
        const int key0 = kv0 + 16 * kk;
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          pa[kk][i][0] = ptx::pack_bf16x2(s[i][2 * kk][0], s[i][2 * kk][1]);
          pa[kk][i][1] = ptx::pack_bf16x2(s[i][2 * kk][2], s[i][2 * kk][3]);
          pa[kk][i][2] = ptx::pack_bf16x2(s[i][2 * kk + 1][0], s[i][2 * kk + 1][1]);
          pa[kk][i][3] = ptx::pack_bf16x2(s[i][2 * kk + 1][2], s[i][2 * kk + 1][3]);
          const int tile_r0 = warp_r0 + 16 * i;
          const bool none = causal && key0 > tile_r0 + 15;
          by_key[kk][i] = false;
          if (causal && key0 == tile_r0) {  // the diagonal step
            bool bad = false;               // a NaN or infinity among the step's 16 rows of V
            for (int e = lane; e < 16 * kC; e += 32) {
              const uint4 c =
                  *reinterpret_cast<const uint4*>(vs + swizzled(16 * kk + e / kC, e % kC, kC));
              const auto nonfinite = [](std::uint32_t w) {  // either bf16 of the pair
                return (w & 0x7f80u) == 0x7f80u || (w & 0x7f800000u) == 0x7f800000u;
              };
              bad |= nonfinite(c.x) || nonfinite(c.y) || nonfinite(c.z) || nonfinite(c.w);
            }
            by_key[kk][i] = __any_sync(kAll, bad);
          }
          use_mma[kk][i] = !none && !by_key[kk][i];
        }
      }
#pragma unroll
      for (int n = 0; n < kNT / 2; ++n) {  // V columns 16 n .. 16 n + 15
#pragma unroll
        for (int kk = 0; kk < kSteps; ++kk) {
          std::uint32_t vb[4];
          ptx::ldmatrix_x4_trans(vb, vs + swizzled(16 * kk + lane % 16, 2 * n + lane / 16, kC));
          const std::uint32_t b0[2] = {vb[0], vb[1]}, b1[2] = {vb[2], vb[3]};
#pragma unroll
          for (int i = 0; i < 2; ++i) {
            if (!use_mma[kk][i]) continue;
            ptx::mma_bf16_16816(acc[i][2 * n], pa[kk][i], b0);
            ptx::mma_bf16_16816(acc[i][2 * n + 1], pa[kk][i], b1);
          }
        }
      }
      // A diagonal step with a non-finite V: key by key on the CUDA cores,
      // each row stopping at its own last key. Row g + 8 h's weight for key
      // c of the step sits in lane 4 g + (c % 8) / 2 of the quad.
#pragma unroll
      for (int kk = 0; kk < kSteps; ++kk) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          if (!by_key[kk][i]) continue;
          for (int c = 0; c < 16; ++c) {
            const int src = 4 * g + (c % 8) / 2;
#pragma unroll
            for (int h = 0; h < 2; ++h) {
              const std::uint32_t mine = c < 8 ? pa[kk][i][h] : pa[kk][i][2 + h];
              const std::uint32_t pair = __shfl_sync(kAll, mine, src);
              const float p = c % 2 == 0 ? bf16_low(pair) : bf16_high(pair);
              if (c > g + 8 * h) continue;  // the step's key c is hidden from row g + 8 h
#pragma unroll
              for (int n = 0; n < kNT; ++n) {  // V(c, 8 n + 2 tq) and the next
                const std::uint32_t vv = *reinterpret_cast<const std::uint32_t*>(
                    vs + swizzled(16 * kk + c, n, kC) + 2 * tq);
                acc[i][n][2 * h] = fmaf(p, bf16_low(vv), acc[i][n][2 * h]);
                acc[i][n][2 * h + 1] = fmaf(p, bf16_high(vv), acc[i][n][2 * h + 1]);
              }
            }
          }
        }
      }
    }
    __syncthreads();  // every warp is done with this buffer before tile t + 2 lands in it
  }
  ptx::cp_async_wait<0>();

  // O = acc / row sum, in bf16; the sum's four quarters sit in the quad.
#pragma unroll
  for (int i = 0; i < 2; ++i) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float l = row_sum[i][h];
      l += __shfl_xor_sync(kAll, l, 1);
      l += __shfl_xor_sync(kAll, l, 2);
      const int row = warp_r0 + 16 * i + g + 8 * h;
      if (row >= seq_q) continue;
      __nv_bfloat16* orow = o + (Index{head} * seq_q + row) * D;
#pragma unroll
      for (int n = 0; n < kNT; ++n) {
        *reinterpret_cast<std::uint32_t*>(orow + 8 * n + 2 * tq) =
            ptx::pack_bf16x2(acc[i][n][2 * h] / l, acc[i][n][2 * h + 1] / l);
      }
    }
  }
}

template <int D>
void launch(const Bf16AttentionArgs& args) {
  const AttentionShape& s = args.shape;
  const Index heads = s.batch * s.heads, row_blocks = (s.seq_q + kBR - 1) / kBR;
  if (heads * row_blocks > 0x7fffffff || s.seq_q > 0x7fffffff - kBR ||
      s.seq_kv > 0x7fffffff - kBR) {
    throw ShapeError(
        "the flash2_mma rung takes at most 2^31 - 1 blocks of 128 query rows and sequences "
        "under 2^31 - 128");
  }
  constexpr int kBytes = Layout<D>::kSharedBytes;
  LOCALITY_CUDA(cudaFuncSetAttribute(flash2_mma_kernel<D>,
                                     cudaFuncAttributeMaxDynamicSharedMemorySize, kBytes));
  flash2_mma_kernel<D><<<static_cast<unsigned>(heads * row_blocks), kThreads, kBytes>>>(
      reinterpret_cast<const __nv_bfloat16*>(args.q),
      reinterpret_cast<const __nv_bfloat16*>(args.k),
      reinterpret_cast<const __nv_bfloat16*>(args.v), reinterpret_cast<__nv_bfloat16*>(args.o),
      static_cast<int>(heads), static_cast<int>(s.seq_q), static_cast<int>(s.seq_kv),
      args.scale * kLog2e, args.causal);
  LOCALITY_CUDA_LAUNCHED();
}

}  // namespace

void flash2_mma_bf16_attention(const Bf16AttentionArgs& args) {
  const std::ptrdiff_t d = args.shape.head_dim;
  if (d != 64 && d != 128) {
    throw ShapeError("the flash2_mma rung takes head_dim 64 or 128 (got " + std::to_string(d) +
                     ")");
  }
  if (!aligned16(args.q) || !aligned16(args.k) || !aligned16(args.v) || !aligned16(args.o)) {
    throw ShapeError("the flash2_mma rung needs 16-byte aligned tensors");
  }
  if (args.shape.batch * args.shape.heads * args.shape.seq_q == 0) return;
  d == 64 ? launch<64>(args) : launch<128>(args);
}

}  // namespace locality::gpu
