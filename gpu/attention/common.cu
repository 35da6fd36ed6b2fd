// The kernels the GPU attention rungs share (common.cuh says what each does).
#include <cstdint>

#include "../cuda_check.cuh"
#include "common.cuh"
#include "locality/exp2.hpp"
#include "locality/matrix.hpp"

namespace locality::gpu {
namespace {

__global__ void masked_pv_kernel(const float* p, const float* v, float* o, Sizes sz) {
  const Index total = sz.heads * sz.seq_q * sz.head_dim;
  for (Index e = first_thread(); e < total; e += thread_stride()) {
    const Index c = e % sz.head_dim, row = e / sz.head_dim;  // row = head * seq_q + i
    const Index i = row % sz.seq_q, head = row / sz.seq_q;
    const float* pi = p + row * sz.seq_kv;
    const float* vc = v + head * sz.seq_kv * sz.head_dim + c;
    float acc = 0.0f;
    const Index visible = visible_keys_of(i, sz);
    for (Index j = 0; j < visible; ++j) acc += pi[j] * vc[j * sz.head_dim];
    o[e] = acc;
  }
}

__global__ void softmax_rows_kernel(float* s, Sizes sz, float scale) {
  constexpr unsigned kAll = 0xffffffffu;
  const Index row = Index{blockIdx.x} * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = static_cast<int>(threadIdx.x % 32);
  if (row >= sz.heads * sz.seq_q) return;  // the whole warp: row is the warp's
  float* p = s + row * sz.seq_kv;
  const Index visible = visible_keys_of(row % sz.seq_q, sz);
  float max = -INFINITY;
  for (Index j = lane; j < visible; j += 32) {
    p[j] *= scale;
    max = fmaxf(max, p[j]);
  }
  for (int step = 16; step > 0; step /= 2) max = fmaxf(max, __shfl_xor_sync(kAll, max, step));
  float sum = 0.0f;
  for (Index j = lane; j < visible; j += 32) {
    p[j] = exp2_nonpositive_impl<float, std::uint32_t>((p[j] - max) * kLog2e);
    sum += p[j];
  }
  for (int step = 16; step > 0; step /= 2) sum += __shfl_xor_sync(kAll, sum, step);
  const float inv = 1.0f / sum;
  for (Index j = lane; j < visible; j += 32) p[j] *= inv;
  for (Index j = visible + lane; j < sz.seq_kv; j += 32) p[j] = 0.0f;
}

}  // namespace

void softmax_rows(float* s, const Sizes& sz, float scale) {
  constexpr int kThreads = 256, kRowsPerBlock = kThreads / 32;
  const Index blocks = (sz.heads * sz.seq_q + kRowsPerBlock - 1) / kRowsPerBlock;
  if (blocks > 0x7fffffff) throw ShapeError("softmax_rows: more than 2^34 rows");
  softmax_rows_kernel<<<static_cast<unsigned>(blocks), kThreads>>>(s, sz, scale);
  LOCALITY_CUDA_LAUNCHED();
}

void masked_pv(const float* p, const float* v, float* o, const Sizes& sz) {
  constexpr int kThreads = 256;
  masked_pv_kernel<<<blocks_for(sz.heads * sz.seq_q * sz.head_dim, kThreads), kThreads>>>(p, v, o,
                                                                                          sz);
  LOCALITY_CUDA_LAUNCHED();
}

}  // namespace locality::gpu
