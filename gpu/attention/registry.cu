// The GPU attention ladder: the one list of its rungs. Tests, benchmarks and
// the driver derive from it. Adding a rung: one file,
// gpu/attention/<number>_<name>.cu, defining <name>_attention and
// <name>_attention_workspace; one line below; one line in gpu/CMakeLists.txt.
#include <algorithm>
#include <cstdint>
#include <limits>

#include "locality/gpu.hpp"

// One line a rung: its number, its name, the longest sequence the benchmarks
// time it at (a call past it takes seconds, or its scores take tens of GiB)
// and the lesson `locality list` prints.
#define LOCALITY_GPU_ATTENTION_LADDER(RUNG)                                                     \
  RUNG(0, naive, 4096,                                                                          \
       "three launches, S = Q K^T and P = softmax(S) in device memory, one thread per score, "  \
       "row and output")                                                                        \
  RUNG(1, tiled, kAnySeq,                                                                       \
       "both products on the matmul ladder's fastest rung, a warp per softmax row; S still in " \
       "device memory, head by head")                                                           \
  RUNG(2, flash, kAnySeq,                                                                       \
       "one fused launch: K and V tiles through shared memory, a running max and sum per "      \
       "query, S never in device memory")                                                       \
  RUNG(3, flash2, kAnySeq,                                                                      \
       "FlashAttention-2's order: the query tile on chip for the whole pass, O in register "    \
       "micro-tiles, one division at the end, causal tiles skipped")                            \
  /* a new rung: one line above this one */

namespace locality::gpu {

#define LOCALITY_DECLARE_RUNG(number, name, largest, lesson)          \
  void name##_attention(const AttentionArgs& args, float* workspace); \
  std::size_t name##_attention_workspace(const AttentionShape& shape);
LOCALITY_GPU_ATTENTION_LADDER(LOCALITY_DECLARE_RUNG)

namespace {

constexpr std::int64_t kAnySeq = std::numeric_limits<std::int64_t>::max();

#define LOCALITY_ENTRY(number, name, largest, lesson) \
  GpuAttentionVariant{#name, number, lesson, name##_attention, name##_attention_workspace, largest},
constexpr GpuAttentionVariant kVariants[] = {LOCALITY_GPU_ATTENTION_LADDER(LOCALITY_ENTRY)};

}  // namespace

std::span<const GpuAttentionVariant> attention_variants() { return kVariants; }

const GpuAttentionVariant* find_attention_variant(std::string_view name) {
  const auto it = std::find_if(std::begin(kVariants), std::end(kVariants),
                               [&](const GpuAttentionVariant& v) { return v.name == name; });
  return it == std::end(kVariants) ? nullptr : &*it;
}

}  // namespace locality::gpu
