// GPU rung 6 -- a cp.async pipeline: tiles copied straight from global to
//   shared memory three steps ahead, with a 16 x 8 tile of C per thread, and
//   a tile width chosen per problem.
//
// Idea: rung 5 stages the next tile through registers, so a thread can only
//   have one step's loads in flight and must stop to store them. Here the
//   asynchronous copies (cp.async, sm_80 and later) write shared memory
//   directly: a ring of 3 buffers keeps two steps in flight while the warps
//   compute on the third, and one barrier per step guards the ring. A is
//   transposed on the way in (4-byte copies, rows padded by 4 floats so they
//   hit distinct banks); B goes 16 bytes at a time. Each warp owns 64 x 64 of
//   C, each thread 16 x 8: per step of k, 6 128-bit shared loads feed 128 FMAs.
//   A block is 128 x 256 (8 warps) or 128 x 128 (4 warps): the wider one copies
//   half as many floats of A per FMA but makes half as many blocks, so
//   pipelined_tile_width takes it only where the busiest SM gets no more work.
//   Blocks are numbered down columns of 16 tiles, so blocks that run together
//   share rows of A and columns of B in L2.
// Locality: shared memory is refilled while it is read (L2 and DRAM latency
//   hidden behind two steps of arithmetic); registers reuse each shared value
//   8 or 16 times; L2 holds the panels that neighbouring blocks share.
// Cost: 3 x 16 x (132 + 256) floats of shared memory for the wide block (over
//   the default 48 KiB, so the kernel asks for it) and over 200 registers per
//   thread: 8 warps per SM either way; latency is hidden by the pipeline and
//   long per-thread FMA runs rather than by many warps.
// Edges: copies past the matrix are zero-filled (cp.async's source size 0), so
//   ragged m, n and k take the same loop; 16-byte copies of B and 128-bit
//   stores of C need n and k to be multiples of 4, otherwise B and C go a
//   float at a time. When every tile is whole the checks are compiled out.
//   Speed, the gap to cuBLAS and what was tried: docs/gpu-matmul.md.
#include "../cuda_check.cuh"
#include "../ptx.cuh"
#include "locality/gpu.hpp"
#include "pipelined_width.hpp"
#include "rungs.cuh"

namespace locality::gpu {
namespace {

// Blocks are 128 rows by kBN = 128 or 256 columns (see pipelined_tile_width).
constexpr int kBM = kPipelinedRows, kBK = 16, kStages = 3;
constexpr int kWM = 64, kWN = 64;                           // warp tile
constexpr int kTM = 16, kTN = 8;                            // thread tile
constexpr int kLanesN = kWN / kTN, kLanesM = 32 / kLanesN;  // 8 x 4 lanes
constexpr int kGroupM = 16;                                 // block tiles per column group
constexpr int kAStride = kBM + 4;                           // A^T rows, padded
constexpr int kAStage = kBK * kAStride;

template <int kBN>
struct Tile {
  static constexpr int kThreads = (kBM / kWM) * (kBN / kWN) * 32;  // 2 x (kBN / 64) warps
  static constexpr int kBlocksPerSm = 256 / kThreads;              // for the register budget
  static constexpr int kBStage = kBK * kBN;
  static constexpr int kSmemBytes = kStages * (kAStage + kBStage) * static_cast<int>(sizeof(float));
  static constexpr int kARowStep = kThreads / kBK;  // A rows one copy covers
  static_assert(kThreads % kBK == 0 && kBM % kARowStep == 0);
  static_assert((kBK * kBN / 4) % kThreads == 0 && kTM % 4 == 0 && kTN % 4 == 0);
};

// Asynchronous copies global -> shared of 4 or 16 bytes (ptx.cuh). The
// checked form reads nothing and zero-fills the destination when `ok` is
// false; the unchecked one (whole tiles) saves the operand and the predicate.
template <int kBytes>
__device__ __forceinline__ void copy_async(float* dst, const float* src) {
  if constexpr (kBytes == 16) {
    ptx::cp_async_16(dst, src);
  } else {
    ptx::cp_async_4(dst, src);
  }
}
template <int kBytes>
__device__ __forceinline__ void copy_async(float* dst, const float* src, bool ok) {
  if constexpr (kBytes == 16) {
    ptx::cp_async_16(dst, src, ok ? kBytes : 0);
  } else {
    ptx::cp_async_4(dst, src, ok ? kBytes : 0);
  }
}

// kCount values of one row of a shared tile into registers, 4 at a time
// (128-bit loads) from pieces `stride` floats apart: a thread's slice of A^T
// or of B for one k.
template <int kCount>
__device__ __forceinline__ void load_fragment(float* out, const float* row, int stride) {
#pragma unroll
  for (int q = 0; q < kCount / 4; ++q) {
    const float4 v = *reinterpret_cast<const float4*>(row + q * stride);
    out[4 * q + 0] = v.x;
    out[4 * q + 1] = v.y;
    out[4 * q + 2] = v.z;
    out[4 * q + 3] = v.w;
  }
}

// One k-step's copies of a block's tiles into a slot of the shared-memory
// ring, for one thread: A one float per copy per row, k fastest (coalesced
// along A's rows, landing transposed); B 4 floats per copy along its rows (a
// float per copy where n is not a multiple of 4). Checked, anything past the
// matrix is zero-filled.
template <int kBN, bool kChecked, bool kVec>
struct StepCopies {
  static constexpr int kThreads = Tile<kBN>::kThreads, kBStage = Tile<kBN>::kBStage;
  static constexpr int kARowStep = Tile<kBN>::kARowStep;
  const float *a, *b;
  int m, n, k, row0, col0;
  float *as_ring, *bs_ring;
  int tid, a_k, a_r;
  const float* a_src;

  __device__ __forceinline__ StepCopies(const float* a_, const float* b_, int m_, int n_, int k_,
                                        int row0_, int col0_, float* as_ring_, float* bs_ring_)
      : a(a_),
        b(b_),
        m(m_),
        n(n_),
        k(k_),
        row0(row0_),
        col0(col0_),
        as_ring(as_ring_),
        bs_ring(bs_ring_),
        tid(threadIdx.x),
        a_k(tid % kBK),
        a_r(tid / kBK),
        a_src(a + static_cast<long long>(row0 + a_r) * k + a_k) {}

  __device__ __forceinline__ void operator()(int stage, int p0) const {
    float* as = as_ring + stage * kAStage + a_k * kAStride + a_r;
    const bool k_ok = p0 + a_k < k;
#pragma unroll
    for (int i = 0; i < kBM / kARowStep; ++i) {
      const float* src = a_src + p0 + static_cast<long long>(i * kARowStep) * k;
      if constexpr (kChecked) {
        const bool ok = k_ok && row0 + a_r + i * kARowStep < m;
        copy_async<4>(as + i * kARowStep, ok ? src : a, ok);
      } else {
        copy_async<4>(as + i * kARowStep, src);
      }
    }
    float* bs = bs_ring + stage * kBStage;
#pragma unroll
    for (int i = 0; i < kBK * kBN / 4 / kThreads; ++i) {
      const int chunk = tid + i * kThreads, r = chunk / (kBN / 4), cc = (chunk % (kBN / 4)) * 4;
      const int p = p0 + r, col = col0 + cc;
      const float* src = b + static_cast<long long>(p) * n + col;
      if constexpr (!kChecked) {
        copy_async<16>(bs + r * kBN + cc, src);
      } else if constexpr (kVec) {
        const bool ok = p < k && col < n;
        copy_async<16>(bs + r * kBN + cc, ok ? src : b, ok);
      } else {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const bool ok = p < k && col + e < n;
          copy_async<4>(bs + r * kBN + cc + e, ok ? src + e : b, ok);
        }
      }
    }
  }
};

// kChecked: some tile is ragged (m not a multiple of 128, n of kBN, k of 16), so
// every copy and store is bounds-checked; whole tiles skip the checks, whose
// cost docs/gpu-matmul.md records. kVec: see the header.
template <int kBN, bool kChecked, bool kVec>
__global__ void __launch_bounds__(Tile<kBN>::kThreads, Tile<kBN>::kBlocksPerSm)
    pipelined_kernel(const float* __restrict__ a, const float* __restrict__ b,
                     float* __restrict__ c, int m, int n, int k) {
  constexpr int kBStage = Tile<kBN>::kBStage;
  extern __shared__ __align__(16) float smem[];
  float* const as_ring = smem;                      // [kStages][kBK][kAStride]: A^T
  float* const bs_ring = smem + kStages * kAStage;  // [kStages][kBK][kBN]

  // This block's tile: blocks walk down groups of kGroupM tile rows, so the
  // ones resident together reuse each other's A rows and B columns in L2.
  const int tiles_m = ceil_div(m, kBM), tiles_n = ceil_div(n, kBN);
  const int per_group = kGroupM * tiles_n, group = blockIdx.x / per_group;
  const int first_m = group * kGroupM, group_m = min(tiles_m - first_m, kGroupM);
  const int in_group = blockIdx.x % per_group;
  const int row0 = (first_m + in_group % group_m) * kBM, col0 = (in_group / group_m) * kBN;

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  // This thread's rows: tr + 16 p + {0..3}, p = 0..3; columns: tc + 32 q + {0..3}, q = 0..1.
  const int tr = (warp / (kBN / kWN)) * kWM + (lane / kLanesN) * 4;
  const int tc = (warp % (kBN / kWN)) * kWN + (lane % kLanesN) * 4;

  const StepCopies<kBN, kChecked, kVec> load_step(a, b, m, n, k, row0, col0, as_ring, bs_ring);
  float sum[kTM][kTN] = {};
  const int steps = ceil_div(k, kBK);
  // Fill the ring: steps 0 .. kStages - 2 in flight (empty groups past the end).
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < steps) load_step(s, s * kBK);
    ptx::cp_async_commit();
  }
  for (int t = 0; t < steps; ++t) {
    ptx::cp_async_wait<kStages - 2>();  // step t has landed (for this thread's copies) ...
    __syncthreads();                    // ... and everyone's; step t - 1's buffer is free again
    const int next = t + kStages - 1;
    if (next < steps) load_step(next % kStages, next * kBK);
    ptx::cp_async_commit();
    const float* as = as_ring + (t % kStages) * kAStage;
    const float* bs = bs_ring + (t % kStages) * kBStage;
#pragma unroll
    for (int p = 0; p < kBK; ++p) {
      float ar[kTM], br[kTN];
      load_fragment<kTM>(ar, as + p * kAStride + tr, kLanesM * 4);
      load_fragment<kTN>(br, bs + p * kBN + tc, kLanesN * 4);
#pragma unroll
      for (int r = 0; r < kTM; ++r)
#pragma unroll
        for (int s = 0; s < kTN; ++s) sum[r][s] = fmaf(ar[r], br[s], sum[r][s]);
    }
  }
  ptx::cp_async_wait<0>();  // only empty groups are left; nothing may be in flight at exit

#pragma unroll
  for (int r = 0; r < kTM; ++r) {
    const int i = row0 + tr + (r / 4) * kLanesM * 4 + r % 4;
    float* c_row = c + static_cast<long long>(i) * n + col0;
#pragma unroll
    for (int q = 0; q < kTN / 4; ++q) {
      store4<kVec>(
          c_row, !kChecked || i < m, tc + q * kLanesN * 4, kChecked ? n - col0 : kBN,
          make_float4(sum[r][4 * q], sum[r][4 * q + 1], sum[r][4 * q + 2], sum[r][4 * q + 3]));
    }
  }
}

template <int kBN, bool kChecked, bool kVec>
void launch(const float* a, const float* b, float* c, int m, int n, int k) {
  constexpr auto kernel = pipelined_kernel<kBN, kChecked, kVec>;
  // More than the default 48 KiB of dynamic shared memory must be asked for.
  static const bool ready = [] {
    LOCALITY_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       Tile<kBN>::kSmemBytes));
    return true;
  }();
  (void)ready;
  const int blocks = ceil_div(m, kBM) * ceil_div(n, kBN);
  kernel<<<blocks, Tile<kBN>::kThreads, Tile<kBN>::kSmemBytes>>>(a, b, c, m, n, k);
  LOCALITY_CUDA_LAUNCHED();
}

template <int kBN>
void launch(const float* a, const float* b, float* c, int m, int n, int k) {
  if (!vector_ok(a, b, c, n, k)) {
    launch<kBN, true, false>(a, b, c, m, n, k);
  } else if (m % kBM != 0 || n % kBN != 0 || k % kBK != 0) {
    launch<kBN, true, true>(a, b, c, m, n, k);
  } else {
    launch<kBN, false, true>(a, b, c, m, n, k);
  }
}

int sm_count() {
  static const int count = [] {
    int device = 0, sms = 0;
    LOCALITY_CUDA(cudaGetDevice(&device));
    LOCALITY_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    return sms;
  }();
  return count;
}

}  // namespace

void pipelined_matmul(const float* a, const float* b, float* c, int m, int n, int k) {
  if (pipelined_tile_width(m, n, sm_count()) == 256) {
    launch<256>(a, b, c, m, n, k);
  } else {
    launch<128>(a, b, c, m, n, k);
  }
}

}  // namespace locality::gpu
