// Rung 1 -- tiled: rung 0's three passes done well, with S still in device
//   memory: the honest unfused baseline the fused rungs must beat.
//
// Idea: head by head, S = Q K^T and O = P V go through the matmul ladder's
//   fastest rung (shared-memory tiles, register blocking, a cp.async
//   pipeline), K transposed first so that the product reads a row-major K^T;
//   and the softmax gives each row a warp: its 32 lanes stride along the row,
//   and shuffles combine their maxima and their sums.
// Locality: inside each product every value fetched from device memory is
//   reused from shared memory and registers, as the matmul ladder teaches.
//   What is left is S: seq_q x seq_kv floats written by the first product,
//   read and written again by the softmax and read by the second product, per
//   head. That traffic grows with seq^2 while Q, K, V and O grow with seq, and
//   only fusing the three passes (rung 2) removes it.
// Cost: the heads run one after another, five launches each, so one head's
//   S and K^T are the whole workspace; before them, one pass over V looks for
//   non-finite values (its verdict is copied to the host).
// Edges: the products take any sizes whose matrices have fewer than 2^31
//   elements (larger heads are refused with ShapeError). Keys a row does not
//   see get weight 0 in P, and 0 x v is 0 only for finite v: where V holds a
//   NaN or an infinity, O = P V goes through the key-by-key kernel of rung 0
//   instead, which never reads a key its row does not see (attention.hpp).
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "../cuda_check.cuh"
#include "common.cuh"
#include "locality/gpu.hpp"
#include "locality/matrix.hpp"

namespace locality::gpu {
namespace {

constexpr int kTile = 32;  // the transpose's square tile

// out (cols x rows) = in (rows x cols)^T through a shared tile, so that both
// the reads and the writes of a warp are one row of 32 consecutive floats (a
// padding column keeps the tile's columns in distinct banks).
__global__ void transpose_kernel(const float* in, float* out, int rows, int cols) {
  __shared__ float tile[kTile][kTile + 1];
  const int c0 = blockIdx.x * kTile, r0 = blockIdx.y * kTile;
  for (int dy = threadIdx.y; dy < kTile; dy += blockDim.y) {
    const int r = r0 + dy, c = c0 + threadIdx.x;
    if (r < rows && c < cols) tile[dy][threadIdx.x] = in[Index{r} * cols + c];
  }
  __syncthreads();
  for (int dy = threadIdx.y; dy < kTile; dy += blockDim.y) {
    const int c = c0 + dy, r = r0 + threadIdx.x;  // out's row c, column r
    if (c < cols && r < rows) out[Index{c} * rows + r] = tile[threadIdx.x][dy];
  }
}

// flag = 1 if any of the n values is a NaN or an infinity (left as it was
// otherwise; every thread that finds one writes the same 1).
__global__ void find_nonfinite_kernel(const float* x, Index n, float* flag) {
  for (Index e = first_thread(); e < n; e += thread_stride()) {
    if (!isfinite(x[e])) *flag = 1.0f;
  }
}

// Floats of one head's S, rounded up to 64 (256 bytes) so that K^T after it
// starts aligned for the matmul rung's 128-bit loads.
std::size_t scores_floats(const AttentionShape& shape) {
  const std::size_t n = checked_mul(static_cast<std::size_t>(shape.seq_q),
                                    static_cast<std::size_t>(shape.seq_kv), "one head's scores");
  return (n + 63) / 64 * 64;
}

}  // namespace

std::size_t tiled_attention_workspace(const AttentionShape& shape) {
  const std::size_t kt = static_cast<std::size_t>(shape.head_dim * shape.seq_kv);
  return scores_floats(shape) + (kt + 63) / 64 * 64 + 1;  // S, K^T, the flag
}

void tiled_attention(const AttentionArgs& args, float* workspace) {
  const Sizes sz = sizes_of(args);
  if (!fits_32bit_indexing(sz.seq_q, sz.seq_kv, sz.head_dim)) {
    throw ShapeError(
        "the tiled GPU attention rung needs seq_q x seq_kv, seq_q x head_dim and "
        "seq_kv x head_dim each under 2^31 elements");
  }
  const int sq = static_cast<int>(sz.seq_q), skv = static_cast<int>(sz.seq_kv),
            d = static_cast<int>(sz.head_dim);
  const GpuMatmulFn product = matmul_variants().back().run;  // the ladder's fastest rung
  float* s = workspace;
  float* kt = workspace + scores_floats(args.shape);
  float* flag = workspace + tiled_attention_workspace(args.shape) - 1;

  constexpr int kThreads = 256;
  const Index kv_elements = sz.heads * sz.seq_kv * sz.head_dim;
  LOCALITY_CUDA(cudaMemsetAsync(flag, 0, sizeof(float)));
  find_nonfinite_kernel<<<blocks_for(kv_elements, kThreads), kThreads>>>(args.v, kv_elements, flag);
  LOCALITY_CUDA_LAUNCHED();
  float v_nonfinite = 0.0f;
  LOCALITY_CUDA(cudaMemcpy(&v_nonfinite, flag, sizeof(float), cudaMemcpyDeviceToHost));

  const dim3 transpose_grid(ceil_div(d, kTile), ceil_div(skv, kTile)), transpose_block(kTile, 8);
  const Sizes one_head{1, sz.seq_q, sz.seq_kv, sz.head_dim, sz.causal};
  for (Index head = 0; head < sz.heads; ++head) {
    const float* q = args.q + head * sz.seq_q * sz.head_dim;
    const float* k = args.k + head * sz.seq_kv * sz.head_dim;
    const float* v = args.v + head * sz.seq_kv * sz.head_dim;
    float* o = args.o + head * sz.seq_q * sz.head_dim;
    transpose_kernel<<<transpose_grid, transpose_block>>>(k, kt, skv, d);
    LOCALITY_CUDA_LAUNCHED();
    product(q, kt, s, sq, skv, d);  // S = Q K^T, unscaled
    softmax_rows(s, one_head, args.scale);
    if (v_nonfinite == 0.0f) {
      product(s, v, o, sq, d, skv);  // O = P V
    } else {
      masked_pv(s, v, o, one_head);
    }
  }
}

}  // namespace locality::gpu
