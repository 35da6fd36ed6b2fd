// The GPU matmul ladder: the one list of its rungs. Tests, benchmarks, the
// driver and the report derive from it. Adding a rung: one file,
// gpu/matmul/<number>_<name>.cu, defining <name>_matmul; one line below; one
// line in gpu/CMakeLists.txt.
#include <algorithm>
#include <array>

#include "locality/gpu.hpp"

// One line a rung: its number, its name and the lesson `locality list` prints.
#define LOCALITY_GPU_MATMUL_LADDER(RUNG)                                                          \
  RUNG(0, naive, "one thread per element of C, a warp walking down a column: uncoalesced")        \
  RUNG(1, coalesced, "a warp along a row of C: each load of B and store of C is one transaction") \
  RUNG(2, smem_tiled,                                                                             \
       "32 x 32 tiles of A and B staged in shared memory, each value reused 32 times")            \
  RUNG(3, register_1d, "8 results per thread in registers: one B value feeds 8 FMAs")             \
  RUNG(4, register_2d, "an 8 x 8 outer product per thread, 128-bit loads: 16 loads feed 64 FMAs") \
  RUNG(5, warp_tiled,                                                                             \
       "warp tiles without bank conflicts, and the next tiles loading while this one computes")   \
  RUNG(6, pipelined,                                                                              \
       "cp.async copies three steps ahead and 16 x 8 per thread: loads never wait, fewer "        \
       "shared reads")                                                                            \
  /* a new rung: one line above this one */

namespace locality::gpu {

#define LOCALITY_DECLARE_RUNG(number, name, lesson) \
  void name##_matmul(const float* a, const float* b, float* c, int m, int n, int k);
LOCALITY_GPU_MATMUL_LADDER(LOCALITY_DECLARE_RUNG)

namespace {

#define LOCALITY_ENTRY(number, name, lesson) GpuMatmulVariant{#name, number, lesson, name##_matmul},
constexpr GpuMatmulVariant kVariants[] = {LOCALITY_GPU_MATMUL_LADDER(LOCALITY_ENTRY)};

}  // namespace

std::span<const GpuMatmulVariant> matmul_variants() { return kVariants; }

const GpuMatmulVariant* find_matmul_variant(std::string_view name) {
  const auto it = std::find_if(std::begin(kVariants), std::end(kVariants),
                               [&](const GpuMatmulVariant& v) { return v.name == name; });
  return it == std::end(kVariants) ? nullptr : &*it;
}

}  // namespace locality::gpu
