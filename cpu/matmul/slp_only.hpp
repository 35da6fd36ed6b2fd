// LOCALITY_SLP_ONLY: for plain-C++ register tiles (internal to cpu/matmul/).
//
// GCC 12 at -O3 vectorizes the long k loop around a small accumulator tile
// (with gathers) and then keeps the tile in memory. Switching off loop
// vectorization for such a function leaves straight-line (SLP) vectorization,
// which packs the unrolled tile updates into vector registers as intended.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#define LOCALITY_SLP_ONLY __attribute__((optimize("no-tree-loop-vectorize")))
#else
#define LOCALITY_SLP_ONLY
#endif
