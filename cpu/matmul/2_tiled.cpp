// Rung 2 -- tiled: the i-k-j loops of rung 1, cut into cache-sized blocks.
//
// Idea: work on one block of C at a time and finish everything that block of
//   B can contribute to it while both are still in cache.
// Locality: a kBlockK x kBlockN block of B is read from L1 by every row of a
//   kBlockM-row stripe of C, and that kBlockM x kBlockN block of C stays in L2
//   across all of k, instead of every row of C re-reading all of B from far away.
// Cost: still scalar-indexed C++: the compiler vectorizes the j loop, but each
//   multiply-add loads and stores its C element, so the load/store ports, not
//   the FMA units, set the pace (rung 3 removes that).
// Edges: blocks overhang C at ragged edges and are clipped. Rows of B a
//   power of two apart map to few L1 sets, so at some sizes the block does not
//   fit the ways it can use (conflict misses: cachegrind shows them, see
//   docs/reading-the-ladders.md); rung 4's packing removes them.
#include <algorithm>

#include "locality/matmul.hpp"

namespace locality::cpu {
namespace {

// A row segment of C and of B: 256 floats = 1 KiB, 16 cache lines.
constexpr std::ptrdiff_t kBlockN = 256;
// kBlockK x kBlockN floats of B = 32 KiB: sized to stay in a 48 KiB L1 data
// cache next to the C row segment it is added into.
constexpr std::ptrdiff_t kBlockK = 32;
// kBlockM x kBlockN floats of C = 256 KiB: sized for a private L2 (2 MiB here),
// leaving room for the A and B blocks streaming past it.
constexpr std::ptrdiff_t kBlockM = 256;

}  // namespace

void tiled_matmul(ConstView<float> a, ConstView<float> b, View<float> c) {
  const std::ptrdiff_t m = a.rows(), k = a.cols(), n = b.cols();
  for (std::ptrdiff_t i = 0; i < m; ++i) std::fill_n(c.row(i), n, 0.0f);

  for (std::ptrdiff_t j0 = 0; j0 < n; j0 += kBlockN) {
    const std::ptrdiff_t j1 = std::min(j0 + kBlockN, n);
    for (std::ptrdiff_t i0 = 0; i0 < m; i0 += kBlockM) {
      const std::ptrdiff_t i1 = std::min(i0 + kBlockM, m);
      for (std::ptrdiff_t p0 = 0; p0 < k; p0 += kBlockK) {
        const std::ptrdiff_t p1 = std::min(p0 + kBlockK, k);
        // One block: rung 1's loops, confined to [i0, i1) x [p0, p1) x [j0, j1).
        for (std::ptrdiff_t i = i0; i < i1; ++i) {
          float* __restrict c_row = c.row(i);
          for (std::ptrdiff_t p = p0; p < p1; ++p) {
            const float a_ip = a(i, p);
            const float* __restrict b_row = b.row(p);
            for (std::ptrdiff_t j = j0; j < j1; ++j) c_row[j] += a_ip * b_row[j];
          }
        }
      }
    }
  }
}

}  // namespace locality::cpu
