// Scaled dot-product attention, O = softmax(Q K^T * scale) V, in float32, as
// the second CPU ladder.
//
// Tensors are [batch, heads, seq, head_dim], contiguous and row-major:
//   Q, O: [batch, heads, seq_q,  head_dim]
//   K, V: [batch, heads, seq_kv, head_dim]
// Row i of O for head (b, h) is the softmax-weighted average of the rows of V,
// with weights softmax_j(scale * q_i . k_j).
//
// Options:
//   scale   defaults to 1 / sqrt(head_dim).
//   causal  as PyTorch's scaled_dot_product_attention(is_causal=True): query i
//           keeps key j when j <= i (the mask is aligned to the top-left
//           corner). With seq_q > seq_kv the rows i >= seq_kv see every key;
//           with seq_q < seq_kv row i still sees only keys 0..i. Every row
//           keeps key 0, so no row is ever left with nothing to attend to.
//
// Non-finite inputs propagate as in exact arithmetic (tests/numerics_test.cpp):
// a NaN in row i of Q gives NaN in row i of O only; a NaN in key j (row j of
// K) gives NaN in every row that keeps key j and in no other; a NaN or an
// infinity in V(j, c) reaches column c of the rows that keep key j, never a
// row the causal mask hides key j from. Any finite input gives a finite
// output: scores of any size are shifted by their row's maximum first.
//
// Shapes: batch, heads and seq_q may be 0 (nothing to do); seq_kv must be at
// least 1 (a softmax over no keys is undefined) and head_dim 1..kMaxHeadDim.
//
// Every rung is one entry of a registry, as in the matmul ladder, and all
// callers go through attention() below, which checks shapes and sizes once.
// Rungs allocate nothing: each says how much workspace it needs for a shape
// (attention_workspace_bytes) and attention() hands it that much.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace locality {

inline constexpr std::ptrdiff_t kMaxHeadDim = 256;

struct AttentionShape {
  std::ptrdiff_t batch = 1, heads = 1, seq_q = 0, seq_kv = 0, head_dim = 0;

  // Elements of Q (and O), and of K (and V). Call only on a checked shape.
  std::size_t q_elements() const;
  std::size_t kv_elements() const;
};

struct AttentionOptions {
  std::optional<float> scale;  // default 1 / sqrt(head_dim)
  bool causal = false;
};

// What a kernel sees: a checked shape, the inputs and output, the resolved scale.
struct AttentionArgs {
  AttentionShape shape;
  const float* q;
  const float* k;
  const float* v;
  float* o;
  float scale;
  bool causal;
};

// A kernel overwrites all of O and reads none of it, using at most `threads`
// OpenMP threads and only the workspace it was given (its own declared size).
using AttentionFn = void (*)(const AttentionArgs& args, std::span<float> workspace, int threads);
// Floats of workspace a kernel needs for this shape and thread count.
using AttentionWorkspaceFn = std::size_t (*)(const AttentionShape& shape, int threads);

struct AttentionVariant {
  std::string_view name;    // "naive", "reordered", ...: also the benchmark name
  int rung;                 // position on the ladder, 0 = naive
  std::string_view lesson;  // one sentence: the locality this rung adds
  AttentionFn run;
  AttentionWorkspaceFn workspace_floats;
  std::int64_t largest_timed;  // longest sequence the benchmarks time it at
};

// Throws ShapeError for a malformed shape (negative sizes, seq_kv < 1,
// head_dim outside 1..kMaxHeadDim, element counts overflowing), for spans
// whose sizes do not match the shape, or for an O that overlaps an input;
// std::invalid_argument for a thread count outside 1..kMaxThreads or a scale
// that is not finite.
void check_attention_args(const AttentionShape& shape, std::span<const float> q,
                          std::span<const float> k, std::span<const float> v, std::span<float> o,
                          const AttentionOptions& options, int threads);

// Bytes of workspace `variant` allocates beyond its inputs and output (what
// it uses, plus up to 60 bytes to start it on a cache line).
std::size_t attention_workspace_bytes(const AttentionVariant& variant, const AttentionShape& shape,
                                      int threads);

// O = attention(Q, K, V) with `variant`, after check_attention_args. The first
// form allocates the workspace for this call; the second takes the caller's,
// which must hold at least attention_workspace_bytes (benchmarks allocate it
// once, outside the timed loop).
void attention(const AttentionVariant& variant, const AttentionShape& shape,
               std::span<const float> q, std::span<const float> k, std::span<const float> v,
               std::span<float> o, const AttentionOptions& options = {}, int threads = 1);
void attention(const AttentionVariant& variant, const AttentionShape& shape,
               std::span<const float> q, std::span<const float> k, std::span<const float> v,
               std::span<float> o, const AttentionOptions& options, int threads,
               std::span<float> workspace);

// The scale a call with `options` uses for `shape`.
float attention_scale(const AttentionShape& shape, const AttentionOptions& options);

// The FLOPs every tool counts for one call: 4 x batch x heads x seq_q x
// seq_kv x head_dim (two products), half of it with the causal mask.
inline double attention_flops(const AttentionShape& s, bool causal) {
  return 4.0 * static_cast<double>(s.batch) * static_cast<double>(s.heads) *
         static_cast<double>(s.seq_q) * static_cast<double>(s.seq_kv) *
         static_cast<double>(s.head_dim) * (causal ? 0.5 : 1.0);
}

// Keys query row i sees: all seq_kv, or min(i + 1, seq_kv) when causal.
inline std::ptrdiff_t visible_keys(std::ptrdiff_t i, std::ptrdiff_t seq_kv, bool causal) {
  return causal ? (i + 1 < seq_kv ? i + 1 : seq_kv) : seq_kv;
}

namespace cpu {

// The CPU attention ladder, ordered by rung.
std::span<const AttentionVariant> attention_variants();

// The variant named `name`, or nullptr.
const AttentionVariant* find_attention_variant(std::string_view name);

}  // namespace cpu
}  // namespace locality
