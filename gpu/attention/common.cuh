// What the GPU attention rungs share (registry.cu lists the rungs): sizes as
// 64-bit values, the causal mask, grid-stride loops, and P V computed key by
// key over the keys each row sees.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "locality/attention.hpp"

namespace locality::gpu {

using Index = std::int64_t;

// A call's sizes, with heads = batch x heads (each head's tensors follow the
// previous head's).
struct Sizes {
  Index heads, seq_q, seq_kv, head_dim;
  bool causal;
};

inline Sizes sizes_of(const AttentionArgs& args) {
  const AttentionShape& s = args.shape;
  return {s.batch * s.heads, s.seq_q, s.seq_kv, s.head_dim, args.causal};
}

// Keys query row i sees (attention.hpp's visible_keys).
__device__ inline Index visible_keys_of(Index i, const Sizes& s) {
  return s.causal ? (i + 1 < s.seq_kv ? i + 1 : s.seq_kv) : s.seq_kv;
}

// Grid-stride loops: this thread's first item, and the step to its next.
__device__ inline Index first_thread() { return Index{blockIdx.x} * blockDim.x + threadIdx.x; }
__device__ inline Index thread_stride() { return Index{gridDim.x} * blockDim.x; }

// Enough blocks of `threads` to cover `work` items, at most 2^16 (the loops
// stride over the rest).
inline int blocks_for(Index work, int threads) {
  constexpr Index kMaxBlocks = Index{1} << 16;
  return static_cast<int>(std::clamp<Index>((work + threads - 1) / threads, 1, kMaxBlocks));
}

// Every row of every head of s (seq_q x seq_kv each) in place: the row
// scaled, then softmax over the keys it sees, shifted by the row's maximum;
// the hidden keys become 0. A warp per row: its lanes stride along the row
// and shuffles combine their maxima and sums (common.cu).
void softmax_rows(float* s, const Sizes& sz, float scale);

// O = P V for every head of sz, one thread per output value: o[head][i][c] =
// sum over the keys row i sees of p[head][i][j] v[head][j][c]. A key that
// row i does not see is never read, so a NaN or an infinity in its row of V
// stays out of row i. Launches on the default stream (common.cu).
void masked_pv(const float* p, const float* v, float* o, const Sizes& sz);

}  // namespace locality::gpu
