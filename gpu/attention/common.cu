#include "../cuda_check.cuh"
#include "common.cuh"

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

}  // namespace

void masked_pv(const float* p, const float* v, float* o, const Sizes& sz) {
  constexpr int kThreads = 256;
  masked_pv_kernel<<<blocks_for(sz.heads * sz.seq_q * sz.head_dim, kThreads), kThreads>>>(p, v, o,
                                                                                          sz);
  LOCALITY_CUDA_LAUNCHED();
}

}  // namespace locality::gpu
