// The CPU attention ladder: the one list of its rungs. Tests, benchmarks,
// the driver, the report and the plots all derive from it. Adding a rung:
// one file, cpu/attention/<number>_<name>.cpp, defining <name>_attention and
// <name>_attention_workspace; one line below; one line in cpu/CMakeLists.txt.
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "locality/attention.hpp"
#include "locality/matmul.hpp"
#include "locality/matrix.hpp"

// One line a rung: its number, its name, the longest sequence the
// benchmarks time it at (a call past it takes seconds), and the lesson
// `locality list` prints.
#define LOCALITY_ATTENTION_LADDER(RUNG)                                                       \
  RUNG(0, naive, 1024,                                                                        \
       "S = Q K^T materialized, a softmax pass, then P V with V walked down its columns")     \
  RUNG(1, reordered, 2048,                                                                    \
       "the same three passes, every inner loop unit-stride (K transposed once per head)")    \
  RUNG(2, tiled, kAnySeq,                                                                     \
       "both products through the matmul ladder's packed micro-kernel; S still materialized") \
  RUNG(3, flash, kAnySeq,                                                                     \
       "one pass over K/V blocks with a running max and sum: no N x N buffer, the "           \
       "working set stays in L1/L2")                                                          \
  RUNG(4, parallel_flash, kAnySeq,                                                            \
       "flash with OpenMP dealing (batch, head, query block) items dynamically, "             \
       "heaviest causal blocks first")                                                        \
  /* a new rung: one line above this one */

namespace locality {
namespace cpu {

#define LOCALITY_DECLARE_RUNG(number, name, largest, lesson)                                 \
  void name##_attention(const AttentionArgs& args, std::span<float> workspace, int threads); \
  std::size_t name##_attention_workspace(const AttentionShape& shape, int threads);
LOCALITY_ATTENTION_LADDER(LOCALITY_DECLARE_RUNG)

namespace {

constexpr std::int64_t kAnySeq = std::numeric_limits<std::int64_t>::max();

#define LOCALITY_ENTRY(number, name, largest, lesson) \
  {#name, number, lesson, name##_attention, name##_attention_workspace, largest},
constexpr AttentionVariant kVariants[] = {LOCALITY_ATTENTION_LADDER(LOCALITY_ENTRY)};

}  // namespace

std::span<const AttentionVariant> attention_variants() { return kVariants; }

const AttentionVariant* find_attention_variant(std::string_view name) {
  for (const AttentionVariant& v : kVariants) {
    if (v.name == name) return &v;
  }
  return nullptr;
}

}  // namespace cpu

namespace {

std::string shape_text(const AttentionShape& s) {
  return "[batch " + std::to_string(s.batch) + ", heads " + std::to_string(s.heads) + ", seq_q " +
         std::to_string(s.seq_q) + ", seq_kv " + std::to_string(s.seq_kv) + ", head_dim " +
         std::to_string(s.head_dim) + "]";
}

// Product of the sizes, or ShapeError when it overflows what a span can index.
std::size_t elements(std::ptrdiff_t b, std::ptrdiff_t h, std::ptrdiff_t s, std::ptrdiff_t d,
                     const AttentionShape& shape) {
  std::size_t n = 1;
  for (std::ptrdiff_t x : {b, h, s, d}) {
    const auto u = static_cast<std::size_t>(x);
    if (u != 0 && n > std::numeric_limits<std::ptrdiff_t>::max() / sizeof(float) / u) {
      throw ShapeError("attention tensors of shape " + shape_text(shape) +
                       " overflow the address space");
    }
    n *= u;
  }
  return n;
}

void check_shape(const AttentionShape& s) {
  if (s.batch < 0 || s.heads < 0 || s.seq_q < 0 || s.seq_kv < 0 || s.head_dim < 0) {
    throw ShapeError("attention shape " + shape_text(s) + " has a negative size");
  }
  if (s.seq_kv < 1) {
    throw ShapeError("attention needs seq_kv >= 1 (a softmax over no keys is undefined), got " +
                     shape_text(s));
  }
  if (s.head_dim < 1 || s.head_dim > kMaxHeadDim) {
    throw ShapeError("attention head_dim must be 1.." + std::to_string(kMaxHeadDim) + ", got " +
                     shape_text(s));
  }
  elements(s.batch, s.heads, s.seq_q, s.head_dim, s);
  elements(s.batch, s.heads, s.seq_kv, s.head_dim, s);
}

// Floats a workspace may need to skip to reach a 64-byte boundary.
constexpr std::size_t kAlignSlack = kCacheLineBytes / sizeof(float) - 1;

bool overlaps(std::span<const float> x, std::span<float> out) {
  if (x.empty() || out.empty()) return false;
  return x.data() < out.data() + out.size() && out.data() < x.data() + x.size();
}

}  // namespace

std::size_t AttentionShape::q_elements() const {
  return elements(batch, heads, seq_q, head_dim, *this);
}
std::size_t AttentionShape::kv_elements() const {
  return elements(batch, heads, seq_kv, head_dim, *this);
}

namespace {

void check_threads(int threads) {
  if (threads < 1 || threads > kMaxThreads) {
    throw std::invalid_argument("thread count " + std::to_string(threads) + " is outside 1.." +
                                std::to_string(kMaxThreads));
  }
}

}  // namespace

void check_attention_args(const AttentionShape& shape, std::span<const float> q,
                          std::span<const float> k, std::span<const float> v, std::span<float> o,
                          const AttentionOptions& options, int threads) {
  check_shape(shape);
  const std::size_t nq = shape.q_elements(), nkv = shape.kv_elements();
  const auto require = [&](const char* name, std::size_t got, std::size_t want) {
    if (got != want) {
      throw ShapeError(std::string("attention ") + name + " has " + std::to_string(got) +
                       " elements, shape " + shape_text(shape) + " needs " + std::to_string(want));
    }
  };
  require("Q", q.size(), nq);
  require("K", k.size(), nkv);
  require("V", v.size(), nkv);
  require("O", o.size(), nq);
  for (std::span<const float> x : {q, k, v}) {
    if (!x.empty() && x.data() == nullptr) throw ShapeError("attention input has null data");
  }
  if (!o.empty() && o.data() == nullptr) throw ShapeError("attention output O has null data");
  if (overlaps(q, o) || overlaps(k, o) || overlaps(v, o)) {
    throw ShapeError("attention output O overlaps an input; O needs its own memory");
  }
  if (options.scale && !std::isfinite(*options.scale)) {
    throw std::invalid_argument("attention scale must be finite, got " +
                                std::to_string(*options.scale));
  }
  check_threads(threads);
}

float attention_scale(const AttentionShape& shape, const AttentionOptions& options) {
  return options.scale ? *options.scale
                       : static_cast<float>(1.0 / std::sqrt(static_cast<double>(shape.head_dim)));
}

namespace {

// The floats a rung needs for a shape, without its alignment slack; a
// workspace that cannot exist (past the address space) is a ShapeError.
std::size_t workspace_floats(const AttentionVariant& variant, const AttentionShape& shape,
                             int threads) {
  try {
    const std::size_t floats = variant.workspace_floats(shape, threads);
    const std::size_t limit =
        static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max()) / sizeof(float);
    if (floats > limit - kAlignSlack) throw ShapeError("attention workspace");
    return floats;
  } catch (const ShapeError&) {
    throw ShapeError(std::string(variant.name) + "'s attention workspace for " + shape_text(shape) +
                     " with " + std::to_string(threads) + " thread(s) overflows the address space");
  }
}

}  // namespace

std::size_t attention_workspace_bytes(const AttentionVariant& variant, const AttentionShape& shape,
                                      int threads) {
  check_shape(shape);
  check_threads(threads);
  return (workspace_floats(variant, shape, threads) + kAlignSlack) * sizeof(float);
}

void attention(const AttentionVariant& variant, const AttentionShape& shape,
               std::span<const float> q, std::span<const float> k, std::span<const float> v,
               std::span<float> o, const AttentionOptions& options, int threads,
               std::span<float> workspace) {
  check_attention_args(shape, q, k, v, o, options, threads);
  if (shape.batch == 0 || shape.heads == 0 || shape.seq_q == 0) return;
  const std::size_t need = workspace_floats(variant, shape, threads);
  if (workspace.size() < need + kAlignSlack) {
    throw std::invalid_argument("attention workspace holds " + std::to_string(workspace.size()) +
                                " floats, " + std::string(variant.name) + " needs " +
                                std::to_string(need + kAlignSlack));
  }
  // Rungs get a 64-byte aligned start (the micro-kernels load packed panels aligned).
  const auto address = reinterpret_cast<std::uintptr_t>(workspace.data());
  const std::size_t skip = (kCacheLineBytes - address % kCacheLineBytes) % kCacheLineBytes;
  if (skip % sizeof(float) != 0) {
    throw std::invalid_argument("attention workspace is not aligned to a float");
  }
  const AttentionArgs args{shape,         q.data(), k.data(),
                           v.data(),      o.data(), attention_scale(shape, options),
                           options.causal};
  variant.run(args, workspace.subspan(skip / sizeof(float), need), threads);
}

void attention(const AttentionVariant& variant, const AttentionShape& shape,
               std::span<const float> q, std::span<const float> k, std::span<const float> v,
               std::span<float> o, const AttentionOptions& options, int threads) {
  check_attention_args(shape, q, k, v, o, options, threads);
  if (shape.batch == 0 || shape.heads == 0 || shape.seq_q == 0) return;
  Matrix<float> workspace(
      1, static_cast<std::ptrdiff_t>(attention_workspace_bytes(variant, shape, threads) /
                                     sizeof(float)));
  attention(variant, shape, q, k, v, o, options, threads,
            std::span<float>(workspace.data(), static_cast<std::size_t>(workspace.cols())));
}

}  // namespace locality
