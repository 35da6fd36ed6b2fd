// Rung 2 -- tiled: the i-k-j loops of rung 1, cut into cache-sized blocks.
//
// Idea: work on one block of C at a time and finish everything that block of
//   B can contribute to it while both are still in cache.
// Locality: a kBlockK x kBlockN block of B is read from L1 by every row of a
//   kBlockM-row stripe of C, and that kBlockM x kBlockN block of C stays in L2
//   across all of k, instead of every row of C re-reading all of B from far away.
// Cost: still scalar-indexed C++: the compiler vectorizes the j loop, but each
//   multiply-add loads and stores its C element, so the load/store ports, not
//   the FMA units, set the pace.
// Here: 35-37 GFLOP/s from n = 1024 to 4096, 2.4-2.6x rung 1 at 1024 and flat
//   across sizes, because the blocks no longer care where the matrices live.
//   Still only a fifth of the FMA peak: the inner loop is a load, an FMA and
//   a store of C per 16 floats, the shape rung 3 removes.
// Caught by cachegrind (README, Reading the ladder): at n = 256 the block cuts
//   D1 misses per FLOP 23x below rung 1, but at n = 512 they are back at rung
//   1's level. Rows of B 2 KiB apart start at only two of the L1's 64 sets (a
//   set repeats every 4 KiB), so the 32 x 1 KiB block can use half the L1:
//   384 lines for its 512. Conflict misses, which rung 4's packing removes;
//   the timings show them too (commit f557424d8715: 67 GFLOP/s at 256, 47
//   at 512).
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
