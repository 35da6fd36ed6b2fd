// Rung 0 -- naive: the textbook i-j-k triple loop.
//
// Idea: c(i, j) is the dot product of row i of A with column j of B.
// Locality: A's row is read with unit stride, but B is walked down a column,
//   one element per row, so every B access lands on a different cache line
//   (and, for large n, on a different page). Once a column of B no longer
//   fits in L1 alongside A's row, nearly every B load misses.
// Cost: n^3 multiply-adds, each waiting on a strided load; no vectorization,
//   because the compiler must keep the k-sum in one scalar register in order.
// Edges: none: any m, n, k (k = 0 writes zeros). How fast, and at what sizes
//   it still runs: see the ladder table (docs/cpu-matmul.md).
#include "locality/matmul.hpp"

namespace locality::cpu {

void naive_matmul(ConstView<float> a, ConstView<float> b, View<float> c) {
  const std::ptrdiff_t m = a.rows(), k = a.cols(), n = b.cols();
  for (std::ptrdiff_t i = 0; i < m; ++i) {
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      float sum = 0.0f;
      for (std::ptrdiff_t p = 0; p < k; ++p) sum += a(i, p) * b(p, j);
      c(i, j) = sum;
    }
  }
}

}  // namespace locality::cpu
