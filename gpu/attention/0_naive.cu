// Rung 0 -- naive: attention as written, in three launches, with the whole
//   score matrix in device memory.
//
// Idea: S = scale * Q K^T with one thread per score; then P = softmax(S)
//   with one thread per row (its max, its sum of exponentials, the division);
//   then O = P V with one thread per output value. Each launch finds what the
//   one before wrote in device memory.
// Locality: none is kept on chip. S is seq_q x seq_kv for every head at once:
//   written by the first launch, read twice and written again by the second,
//   and read once per output column by the third, where Q, K, V and O are
//   only O(seq x head_dim). The 32 threads of a warp take 32 neighbouring
//   keys of one query: each walks its own row of K, so a warp's loads touch
//   32 rows at once; in the third launch they take 32 neighbouring columns of
//   one row of O, so its loads of V are coalesced but the row of P is read
//   again by every warp of the row.
// Cost: a workspace of batch x heads x seq_q x seq_kv floats; the softmax
//   thread walks its whole row alone (seq_kv steps, three times).
// Edges: any shape attention.hpp accepts (64-bit indices throughout). Keys
//   the causal mask hides get weight 0 and are skipped in P V, so a NaN or
//   an infinity in V never reaches a row that does not see its key; the
//   exponential is the CPU ladder's (locality/exp2.hpp), so the verifier's
//   bound is the same.
#include <cuda_runtime.h>

#include <cstdint>

#include "../cuda_check.cuh"
#include "common.cuh"
#include "locality/exp2.hpp"
#include "locality/gpu.hpp"

namespace locality::gpu {
namespace {

// s[head][i][j] = scale * (q_i . k_j), or 0 for a key row i may not see.
__global__ void scores_kernel(const float* q, const float* k, float* s, Sizes sz, float scale) {
  const Index total = sz.heads * sz.seq_q * sz.seq_kv;
  for (Index e = first_thread(); e < total; e += thread_stride()) {
    const Index j = e % sz.seq_kv, row = e / sz.seq_kv;  // row = head * seq_q + i
    const Index i = row % sz.seq_q, head = row / sz.seq_q;
    if (j >= visible_keys_of(i, sz)) {
      s[e] = 0.0f;
      continue;
    }
    const float* qi = q + row * sz.head_dim;
    const float* kj = k + (head * sz.seq_kv + j) * sz.head_dim;
    float dot = 0.0f;
    for (Index c = 0; c < sz.head_dim; ++c) dot += qi[c] * kj[c];
    s[e] = scale * dot;
  }
}

// Each row of s in place: softmax over the keys the row sees, shifted by
// the row's maximum; the hidden keys stay 0.
__global__ void softmax_kernel(float* s, Sizes sz) {
  const Index rows = sz.heads * sz.seq_q;
  for (Index row = first_thread(); row < rows; row += thread_stride()) {
    float* p = s + row * sz.seq_kv;
    const Index visible = visible_keys_of(row % sz.seq_q, sz);
    float max = -INFINITY;
    for (Index j = 0; j < visible; ++j) max = fmaxf(max, p[j]);
    float sum = 0.0f;
    for (Index j = 0; j < visible; ++j) {
      p[j] = exp2_nonpositive_impl<float, std::uint32_t>((p[j] - max) * kLog2e);
      sum += p[j];
    }
    const float inv = 1.0f / sum;
    for (Index j = 0; j < visible; ++j) p[j] *= inv;
  }
}

}  // namespace

std::size_t naive_attention_workspace(const AttentionShape& shape) {
  const char* what = "the naive GPU rung's score matrix";
  return checked_mul(checked_mul(static_cast<std::size_t>(shape.batch * shape.heads),
                                 static_cast<std::size_t>(shape.seq_q), what),
                     static_cast<std::size_t>(shape.seq_kv), what);
}

void naive_attention(const AttentionArgs& args, float* workspace) {
  const Sizes sz = sizes_of(args);
  constexpr int kThreads = 256;
  scores_kernel<<<blocks_for(sz.heads * sz.seq_q * sz.seq_kv, kThreads), kThreads>>>(
      args.q, args.k, workspace, sz, args.scale);
  LOCALITY_CUDA_LAUNCHED();
  softmax_kernel<<<blocks_for(sz.heads * sz.seq_q, kThreads), kThreads>>>(workspace, sz);
  LOCALITY_CUDA_LAUNCHED();
  masked_pv(workspace, args.v, args.o, sz);
}

}  // namespace locality::gpu
