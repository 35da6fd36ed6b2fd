// The bf16 (tensor-core) attention ladder: the one list of its rungs. Tests,
// benchmarks, the driver and the report derive from it. Adding a rung: one
// file, gpu/attention_bf16/<number>_<name>.cu, defining
// <name>_bf16_attention; one line below; one line in gpu/CMakeLists.txt.
#include <algorithm>

#include "locality/gpu.hpp"

// One line a rung: its number, its name, the compute capability it needs
// (x 10), and the lesson `locality list` prints.
#define LOCALITY_GPU_BF16_ATTENTION_LADDER(RUNG)                                             \
  RUNG(1, flash2_mma, 80,                                                                    \
       "FlashAttention-2 on mma.sync: both products on the tensor cores, P handed from one " \
       "to the other in registers, K and V double-buffered by cp.async")                     \
  RUNG(2, flash_hopper, 90,                                                                  \
       "Hopper's path: K and V by the tensor memory accelerator on full/empty mbarriers, a "  \
       "copying warpgroup and two computing ones, both products on wgmma, P from registers")  \
  RUNG(3, flash_overlap, 90,                                                                 \
       "FlashAttention-3's intra-warpgroup pipelining: the next tile's Q K^T and this "       \
       "tile's P V on the tensor cores while the CUDA cores do the softmax")                   \
  RUNG(4, flash_pingpong, 90,                                                                \
       "FlashAttention-3's ping-pong: the two computing warpgroups take turns at the tensor " \
       "cores, one's softmax hidden behind the other's products")                             \
  /* a new rung: one line above this one */

namespace locality::gpu {

#define LOCALITY_DECLARE_RUNG(number, name, min_sm, lesson) \
  void name##_bf16_attention(const Bf16AttentionArgs& args);
LOCALITY_GPU_BF16_ATTENTION_LADDER(LOCALITY_DECLARE_RUNG)

namespace {

#define LOCALITY_ENTRY(number, name, min_sm, lesson) \
  GpuBf16AttentionVariant{#name, number, lesson, name##_bf16_attention, min_sm},
constexpr GpuBf16AttentionVariant kVariants[] = {
    LOCALITY_GPU_BF16_ATTENTION_LADDER(LOCALITY_ENTRY)};

}  // namespace

std::span<const GpuBf16AttentionVariant> bf16_attention_variants() { return kVariants; }

const GpuBf16AttentionVariant* find_bf16_attention_variant(std::string_view name) {
  const auto it = std::find_if(std::begin(kVariants), std::end(kVariants),
                               [&](const GpuBf16AttentionVariant& v) { return v.name == name; });
  return it == std::end(kVariants) ? nullptr : &*it;
}

}  // namespace locality::gpu
