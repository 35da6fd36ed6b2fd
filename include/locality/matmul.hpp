// Single-precision matrix multiplication, C = A * B, as a ladder of rungs.
//
// Every rung is one entry of a registry; tests, benchmarks and the `locality`
// driver all iterate it, and all of them call a rung through matmul() below,
// which checks shapes and handles empty products in one place.
//
// Non-finite inputs propagate as in exact arithmetic (tests/numerics_test.cpp):
// a NaN in row i of A gives NaN in row i of C only, a NaN in column j of B in
// column j of C only; an infinity gives infinities (or NaN where infinities
// of both signs meet) in the same row or column. Subnormals are not flushed.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "locality/matrix.hpp"

namespace locality {

// A kernel computes C = A * B for non-empty, shape-checked views, with at most
// `threads` OpenMP threads. It overwrites every element of C and reads none.
using MatmulFn = void (*)(ConstView<float> a, ConstView<float> b, View<float> c, int threads);

struct MatmulVariant {
  std::string_view name;    // "naive", "reordered", ...: also the benchmark name
  int rung;                 // position on the ladder, 0 = naive
  std::string_view lesson;  // one sentence: the locality this rung adds
  MatmulFn run;
  std::int64_t largest_timed;  // largest square size the benchmarks time it at
};

// Throws ShapeError unless A is m x k, B is k x n and C is m x n; the message
// names all three shapes; also when C's memory overlaps A's or B's. Throws
// std::invalid_argument for a thread count outside 1..kMaxThreads.
void check_matmul_args(ConstView<float> a, ConstView<float> b, View<float> c, int threads);

// C = A * B with `variant`. An empty product (k = 0) sets C to zero; m = 0 or
// n = 0 does nothing. Shapes are checked first (see check_matmul_args).
void matmul(const MatmulVariant& variant, ConstView<float> a, ConstView<float> b, View<float> c,
            int threads = 1);

// Largest thread count a caller may ask for; more is refused as a likely typo.
inline constexpr int kMaxThreads = 1024;

namespace cpu {

// The CPU ladder, ordered by rung.
std::span<const MatmulVariant> matmul_variants();

// The variant named `name`, or nullptr.
const MatmulVariant* find_matmul_variant(std::string_view name);

}  // namespace cpu
}  // namespace locality
