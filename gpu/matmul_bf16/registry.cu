// The tensor-core (bf16) matmul ladder: the one list of its rungs. Tests,
// benchmarks, the driver and the report derive from it. Adding a rung: one
// file, gpu/matmul_bf16/<number>_<name>.cu, defining <name>_bf16_matmul; one
// line below; one line in gpu/CMakeLists.txt.
#include <algorithm>

#include "locality/gpu.hpp"

// One line a rung: its number, its name, the multiple k and n must be (1:
// any), the compute capability it needs (x 10), and the lesson.
#define LOCALITY_GPU_BF16_LADDER(RUNG)                                                        \
  RUNG(1, wmma, 1, 80,                                                                        \
       "16 x 16 x 16 tensor-core tiles through CUDA's portable wmma API, operands staged in " \
       "padded shared memory")                                                                \
  RUNG(2, mma_sync, 8, 80,                                                                    \
       "PTX mma.sync fed by ldmatrix from swizzled shared memory, cp.async three stages "     \
       "ahead, fragments a step ahead")                                                       \
  RUNG(3, wgmma, 8, 90,                                                                       \
       "Hopper's warpgroup MMA reading tiles the tensor memory accelerator lays out with a "  \
       "128-byte swizzle, four stages counted in bytes on mbarriers")                         \
  RUNG(4, wgmma_ws, 8, 90,                                                                    \
       "wgmma with the work split by role: a copying warpgroup and two multiplying ones on "  \
       "full/empty mbarriers, registers moved by setmaxnreg, persistent blocks in L2 order")  \
  /* a new rung: one line above this one */

namespace locality::gpu {

#define LOCALITY_DECLARE_RUNG(number, name, multiple, min_sm, lesson)                             \
  void name##_bf16_matmul(const std::uint16_t* a, const std::uint16_t* b, float* c, int m, int n, \
                          int k);
LOCALITY_GPU_BF16_LADDER(LOCALITY_DECLARE_RUNG)

namespace {

#define LOCALITY_ENTRY(number, name, multiple, min_sm, lesson) \
  GpuBf16MatmulVariant{#name, number, lesson, name##_bf16_matmul, multiple, min_sm},
constexpr GpuBf16MatmulVariant kVariants[] = {LOCALITY_GPU_BF16_LADDER(LOCALITY_ENTRY)};

}  // namespace

std::span<const GpuBf16MatmulVariant> bf16_matmul_variants() { return kVariants; }

const GpuBf16MatmulVariant* find_bf16_matmul_variant(std::string_view name) {
  const auto it = std::find_if(std::begin(kVariants), std::end(kVariants),
                               [&](const GpuBf16MatmulVariant& v) { return v.name == name; });
  return it == std::end(kVariants) ? nullptr : &*it;
}

}  // namespace locality::gpu
