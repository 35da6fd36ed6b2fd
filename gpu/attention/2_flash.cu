// Rung 2 -- flash: one fused launch in FlashAttention-1's teaching form: the
//   scores of a tile of queries against a tile of keys live in shared memory
//   only, and a running max and sum stand in for the whole row.
//
// Idea: a block takes kRows query rows of one head, a thread per row. Tile
//   after tile, the block copies kKeys rows of K and of V into shared memory;
//   each thread scores its query against them, moves its running max m to
//   cover the tile, rescales what it has summed so far (its row of O and the
//   sum l) by 2^(m_old - m_new), and adds the tile's weights 2^(s - m) times
//   V. At the end O / l is softmax(S) V exactly as the unfused rungs compute
//   it, and S never reached device memory. The scale and log2(e) are folded
//   into Q as it is loaded, so the exponentials are powers of two.
// Locality: Q's tile and the block's rows of O stay in shared memory for the
//   whole pass; each K and V tile is read from device memory once per block
//   and used by all its kRows queries. Device memory sees Q, K, V and O only:
//   O(seq x head_dim) per query tile, where rung 1 moves seq_q x seq_kv
//   scores three times. K and V are still read once per query tile (seq_q /
//   kRows times), and the causal mask skips the tiles past a tile's last row.
// Cost: a thread per query row does all of that row's arithmetic alone, from
//   shared memory, with no register tiling: at long sequences the products
//   run well below the matmul ladder's rate, so rung 1's tuned products can
//   beat this rung's saved traffic. Rung 3 takes the matmul ladder's lessons
//   (register tiles, the query tile kept on chip in registers) into the
//   fused kernel.
// Edges: any seq_q, seq_kv and head_dim 1..256 (tiles zero-filled past the
//   ends, never read). A key its row does not see is never read, V included
//   (attention.hpp's rules). A row whose running max is still -inf (every
//   score so far -inf) shifts by 0 instead, so -inf - (-inf) never makes a
//   NaN the exact result does not have.
#include <cuda_runtime.h>

#include <cstdint>

#include "../cuda_check.cuh"
#include "common.cuh"
#include "locality/exp2.hpp"
#include "locality/gpu.hpp"

namespace locality::gpu {
namespace {

constexpr int kKeys = 32;  // keys per K/V tile

// Query rows per block (and threads): fewer where head_dim is large, so that
// the block's shared memory stays within what every sm_80+ device offers.
int rows_per_block(Index head_dim) { return head_dim > 128 ? 32 : 64; }

// Shared memory, in floats: Q and O (rows x (d + 1): the padding column puts
// each thread's row in its own bank), K and V (kKeys x d, read by all threads
// at the same address), and each row's scores for the tile (rows x (kKeys + 1)).
std::size_t shared_floats(int rows, Index d) {
  return static_cast<std::size_t>(2 * rows * (d + 1) + 2 * kKeys * d + rows * (kKeys + 1));
}

__device__ inline float exp2_np(float x) { return exp2_nonpositive_impl<float, std::uint32_t>(x); }

__global__ void flash_kernel(const float* q, const float* k, const float* v, float* o, Sizes sz,
                             float scale, Index tiles_per_head) {
  extern __shared__ float smem[];
  const int rows = blockDim.x, r = threadIdx.x;
  const Index d = sz.head_dim, ld = d + 1;
  float* qs = smem;                    // rows x ld
  float* os = qs + rows * ld;          // rows x ld
  float* ks = os + rows * ld;          // kKeys x d
  float* vs = ks + kKeys * d;          // kKeys x d
  float* ss = vs + kKeys * d;          // rows x (kKeys + 1)
  float* my_s = ss + r * (kKeys + 1);  // this thread's scores

  const Index head = blockIdx.x / tiles_per_head;
  const Index first_row = (blockIdx.x % tiles_per_head) * rows;
  const Index i = first_row + r;  // this thread's query row
  const bool active = i < sz.seq_q;
  const float* qh = q + head * sz.seq_q * d;
  const float* kh = k + head * sz.seq_kv * d;
  const float* vh = v + head * sz.seq_kv * d;

  // The block's Q tile, scaled into log2 units, and its O rows at 0.
  const float qscale = scale * kLog2e;
  for (Index e = r; e < Index{rows} * d; e += rows) {
    const Index row = e / d, c = e % d;
    qs[row * ld + c] = first_row + row < sz.seq_q ? qh[(first_row + row) * d + c] * qscale : 0.0f;
    os[row * ld + c] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  const Index mine = active ? visible_keys_of(i, sz) : 0;  // keys this row sees
  const Index last_row = first_row + rows - 1 < sz.seq_q ? first_row + rows - 1 : sz.seq_q - 1;
  const Index keys = visible_keys_of(last_row, sz);  // keys any row of the block sees

  for (Index j0 = 0; j0 < keys; j0 += kKeys) {
    __syncthreads();  // the previous tile is no longer in use
    for (Index e = r; e < Index{kKeys} * d; e += rows) {
      const Index key = j0 + e / d;
      const bool in = key < sz.seq_kv;
      ks[e] = in ? kh[key * d + e % d] : 0.0f;
      vs[e] = in ? vh[key * d + e % d] : 0.0f;
    }
    __syncthreads();
    const Index n = mine - j0 < kKeys ? mine - j0 : kKeys;  // keys of the tile this row sees
    if (n <= 0) continue;
    float tile_max = -INFINITY;
    for (Index j = 0; j < n; ++j) {
      float dot = 0.0f;
      for (Index c = 0; c < d; ++c) dot += qs[r * ld + c] * ks[j * d + c];
      my_s[j] = dot;
      tile_max = fmaxf(tile_max, dot);
    }
    const float m_new = fmaxf(m, tile_max);
    const float shift = m_new == -INFINITY ? 0.0f : m_new;
    const float alpha = exp2_np(m - shift);  // 0 on the first tile
    float sum = 0.0f;
    for (Index j = 0; j < n; ++j) {
      my_s[j] = exp2_np(my_s[j] - shift);
      sum += my_s[j];
    }
    l = l * alpha + sum;
    m = m_new;
    for (Index c = 0; c < d; ++c) {
      float acc = os[r * ld + c] * alpha;
      for (Index j = 0; j < n; ++j) acc += my_s[j] * vs[j * d + c];
      os[r * ld + c] = acc;
    }
  }
  if (!active) return;
  const float inv = 1.0f / l;
  float* oi = o + (head * sz.seq_q + i) * d;
  for (Index c = 0; c < d; ++c) oi[c] = os[r * ld + c] * inv;
}

}  // namespace

std::size_t flash_attention_workspace(const AttentionShape&) { return 0; }

void flash_attention(const AttentionArgs& args, float*) {
  const Sizes sz = sizes_of(args);
  const int rows = rows_per_block(sz.head_dim);
  const Index tiles = (sz.seq_q + rows - 1) / rows;
  const Index blocks = tiles * sz.heads;
  if (blocks > 0x7fffffff) {
    throw ShapeError("the flash GPU attention rung needs fewer than 2^31 query tiles in all");
  }
  const std::size_t bytes = shared_floats(rows, sz.head_dim) * sizeof(float);
  LOCALITY_CUDA(cudaFuncSetAttribute(flash_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(bytes)));
  flash_kernel<<<static_cast<unsigned>(blocks), rows, bytes>>>(args.q, args.k, args.v, args.o, sz,
                                                               args.scale, tiles);
  LOCALITY_CUDA_LAUNCHED();
}

}  // namespace locality::gpu
