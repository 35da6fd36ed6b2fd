// A kernel ptxas must serialize: it adds to an accumulator between issuing a
// wgmma and waiting for it. tests/CMakeLists.txt compiles it through
// gpu/wgmma_guard.sh, which must refuse it (WgmmaGuard.RefusesASerializedWgmma).
#include "../gpu/matmul_bf16/hopper.cuh"

__global__ void touches_its_accumulators(float* out, int steps) {
  using namespace locality::gpu;
  __shared__ __align__(1024) unsigned char tiles[16384];
  float acc[64] = {};
  for (int t = 0; t < steps; ++t) {
    hopper::wgmma_fence();
    hopper::wgmma_m64n128k16(acc, hopper::smem_descriptor(tiles, 16, 1024),
                             hopper::smem_descriptor(tiles + 8192, 8192, 1024));
    hopper::wgmma_commit();
    acc[5] += 1.0f;
    hopper::wgmma_wait<0>();
  }
  for (int i = 0; i < 64; ++i) out[threadIdx.x * 64 + i] = acc[i];
}
