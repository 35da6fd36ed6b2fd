// Rung 5 -- parallel: rung 4 on every core, C cut into one block per thread.
//
// Idea: give each OpenMP thread its own rectangle of C and let it run rung 4's
//   five loops there, packing into its own buffers: no shared packed panel,
//   no barrier, nothing to wait for until the team joins. The rectangles are
//   column bands first (loop 5, jc, split across threads), and row bands only
//   where the columns run out (narrow C, or more threads than bands of a few
//   micro-panels).
// Locality: every core has a private L2 and all share the L3. A column band
//   gives a thread only its own slice of B: the kc x nc panels it packs are
//   its own, stay in its L2 across the ic loop, and no core waits for
//   another's packing. The price is that every thread packs all of A, which
//   rung 4 does a few rows at a time just before use. The row split any rung
//   gets for free (split_rows) makes the opposite trade: each thread packs
//   all of B.
// Cost: one block per thread balances only when the cores run at the same
//   speed; a core slowed by a neighbour (or a virtual machine's stolen time)
//   holds up the join.
// Edges: fewer columns than threads fall back to row bands; one thread is
//   rung 4 exactly.
#include <omp.h>

#include <algorithm>
#include <utility>

#include "locality/matmul.hpp"
#include "microkernel.hpp"
#include "packing.hpp"

namespace locality::cpu {
namespace {

// How `threads` threads cut an m x n C: column bands times row bands.
struct Grid {
  int col_bands;
  int row_bands;
};

Grid thread_grid(const MicroKernel& uk, std::ptrdiff_t m, std::ptrdiff_t n, int threads) {
  // A band narrower than this many micro-panels spends too long packing A
  // for the little B it multiplies.
  constexpr std::ptrdiff_t kMinBandPanels = 4;
  const std::ptrdiff_t max_col_bands = std::max<std::ptrdiff_t>(1, n / (kMinBandPanels * uk.nr));
  int col_bands = 1;
  for (int d = 1; d <= threads; ++d) {  // the most column bands that divide the team
    if (threads % d == 0 && d <= max_col_bands) col_bands = d;
  }
  const std::ptrdiff_t row_bands = std::min<std::ptrdiff_t>(threads / col_bands,
                                                            micropanel_count(m, uk.mr));
  return {col_bands, static_cast<int>(row_bands)};
}

// [begin, end) of band `index` of `bands` over `extent`, cut at multiples of
// `unit` so that only the last band has a ragged edge.
std::pair<std::ptrdiff_t, std::ptrdiff_t> band(std::ptrdiff_t extent, std::ptrdiff_t unit,
                                               std::ptrdiff_t index, std::ptrdiff_t bands) {
  const std::ptrdiff_t units = micropanel_count(extent, unit);
  const std::ptrdiff_t begin = std::min(extent, units * index / bands * unit);
  const std::ptrdiff_t end = std::min(extent, units * (index + 1) / bands * unit);
  return {begin, end};
}

}  // namespace

void parallel_matmul_with(const MicroKernel& uk, ConstView<float> a, ConstView<float> b,
                          View<float> c, int threads) {
  const std::ptrdiff_t m = a.rows(), k = a.cols(), n = b.cols();
  // Below about a million multiply-adds (a few microseconds of work) waking a
  // team costs more than it saves; one thread has nothing to share.
  constexpr double kMinParallelMultiplyAdds = 1 << 20;
  if (threads == 1 || static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) <
                          kMinParallelMultiplyAdds) {
    packed_matmul_with(uk, a, b, c);
    return;
  }
  const Grid grid = thread_grid(uk, m, n, threads);
#pragma omp parallel num_threads(grid.col_bands * grid.row_bands)
  {
    const int t = omp_get_thread_num();
    const auto [j0, j1] = band(n, uk.nr, t % grid.col_bands, grid.col_bands);
    const auto [i0, i1] = band(m, uk.mr, t / grid.col_bands, grid.row_bands);
    if (i1 > i0 && j1 > j0) {
      packed_matmul_with(uk, a.block(i0, 0, i1 - i0, k), b.block(0, j0, k, j1 - j0),
                         c.block(i0, j0, i1 - i0, j1 - j0));
    }
  }
}

void parallel_matmul(ConstView<float> a, ConstView<float> b, View<float> c, int threads) {
  parallel_matmul_with(best_microkernel(), a, b, c, threads);
}

}  // namespace locality::cpu
