// The GPU matmul ladder, in rung order. Adding a rung: one .cu file in this
// folder, one line here, one in gpu/CMakeLists.txt.
#include <algorithm>
#include <array>

#include "locality/gpu.hpp"
#include "rungs.cuh"

namespace locality::gpu {
namespace {

constexpr std::array<GpuMatmulVariant, 7> kVariants{{
    {"naive", 0, "one thread per element of C, a warp walking down a column: uncoalesced",
     naive_matmul},
    {"coalesced", 1, "a warp along a row of C: each load of B and store of C is one transaction",
     coalesced_matmul},
    {"smem_tiled", 2, "32 x 32 tiles of A and B staged in shared memory, each value reused 32 times",
     smem_tiled_matmul},
    {"register_1d", 3, "8 results per thread in registers: one B value feeds 8 FMAs",
     register_1d_matmul},
    {"register_2d", 4, "an 8 x 8 outer product per thread, 128-bit loads: 16 loads feed 64 FMAs",
     register_2d_matmul},
    {"warp_tiled", 5,
     "warp tiles without bank conflicts, and the next tiles loading while this one computes",
     warp_tiled_matmul},
    {"pipelined", 6,
     "cp.async copies three steps ahead and 16 x 8 per thread: loads never wait, fewer shared reads",
     pipelined_matmul},
}};

}  // namespace

std::span<const GpuMatmulVariant> matmul_variants() { return kVariants; }

const GpuMatmulVariant* find_matmul_variant(std::string_view name) {
  const auto it = std::find_if(kVariants.begin(), kVariants.end(),
                               [&](const GpuMatmulVariant& v) { return v.name == name; });
  return it == kVariants.end() ? nullptr : &*it;
}

}  // namespace locality::gpu
