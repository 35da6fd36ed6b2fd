// Rung 5 -- parallel: rung 4's loops on every core, around one packed panel
// of B that the whole team shares.
//
// Idea: for each kc x nc panel of B, every thread packs a share of its
//   micro-panels; a barrier; then the threads take blocks of mc rows of C
//   from a shared counter (OpenMP's dynamic schedule), and each packs that
//   block of A and runs the macro-kernel on it against the shared panel. The
//   barrier at the end of the blocks keeps the panel until all are done.
// Locality: B is packed once for the team and A once (its blocks are handed
//   out, not repeated per thread), so no core copies what another already
//   did. Each core keeps its own mc x kc block of A in L1/L2; the panel sits
//   where rung 4 keeps it (each core's L2 holds the lines it reads, the half
//   the other core packed arriving once through the L3; where the L2 is too
//   small, it streams from the L3 as for one thread).
// Cost: two barriers per kc slice of each panel. Between them the blocks are
//   handed out as threads come free, so a core slowed by a neighbour (or a
//   virtual machine's stolen time) takes fewer blocks instead of holding up
//   the rest.
// Edges: a C with too few row blocks to keep every thread busy is also cut
//   into column chunks of the panel (a thread that takes the next chunk of
//   the block it holds does not pack it again); one thread, or a product too
//   small to be worth waking a team, runs rung 4 exactly.
#include <omp.h>

#include <algorithm>

#include "locality/matmul.hpp"
#include "microkernel.hpp"
#include "packing.hpp"

namespace locality::cpu {
namespace {

// Packs thread `t`'s share (of `team`) of the micro-panels of the kc x nc
// panel `b` into its place in the shared `packed_b`.
void pack_b_share(const MicroKernel& uk, ConstView<float> b, float* packed_b, int t, int team) {
  const std::ptrdiff_t panels = micropanel_count(b.cols(), uk.nr);
  const std::ptrdiff_t q0 = panels * t / team, q1 = panels * (t + 1) / team;
  if (q1 <= q0) return;
  const std::ptrdiff_t j0 = q0 * uk.nr, j1 = std::min(b.cols(), q1 * uk.nr);
  pack_b_panel(uk, b.block(0, j0, b.rows(), j1 - j0), packed_b + j0 * b.rows());
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
  // The work items of one panel: row blocks of mc, each cut into `chunks`
  // column chunks, enough that every thread gets a few items to balance with.
  constexpr std::ptrdiff_t kItemsPerThread = 4;
  const std::ptrdiff_t row_blocks = micropanel_count(m, uk.mc);
  const std::ptrdiff_t chunks =
      std::clamp(micropanel_count(kItemsPerThread * threads, row_blocks), std::ptrdiff_t{1},
                 micropanel_count(std::min(uk.nc, n), uk.nr));
  thread_local PackBuffer shared_b;  // the caller's; the team writes into it
  float* packed_b = shared_b.get(packed_b_floats(uk, std::min(uk.kc, k), std::min(uk.nc, n)));

#pragma omp parallel num_threads(threads)
  {
    thread_local PackBuffer own_a;
    float* packed_a = own_a.get(packed_a_floats(uk, std::min(uk.mc, m), std::min(uk.kc, k)));
    const int t = omp_get_thread_num(), team = omp_get_num_threads();
    for (std::ptrdiff_t jc = 0; jc < n; jc += uk.nc) {  // loop 5
      const std::ptrdiff_t nc = std::min(uk.nc, n - jc);
      const std::ptrdiff_t panels = micropanel_count(nc, uk.nr);
      for (std::ptrdiff_t pc = 0; pc < k; pc += uk.kc) {  // loop 4
        const std::ptrdiff_t kc = std::min(uk.kc, k - pc);
        pack_b_share(uk, b.block(pc, jc, kc, nc), packed_b, t, team);
#pragma omp barrier
        std::ptrdiff_t packed_block = -1;  // the row block packed_a holds
#pragma omp for schedule(dynamic)
        for (std::ptrdiff_t item = 0; item < row_blocks * chunks; ++item) {  // loop 3
          const std::ptrdiff_t block = item / chunks, chunk = item % chunks;
          const std::ptrdiff_t q0 = panels * chunk / chunks, q1 = panels * (chunk + 1) / chunks;
          if (q1 <= q0) continue;
          const std::ptrdiff_t ic = block * uk.mc, mc = std::min(uk.mc, m - ic);
          if (block != packed_block) {
            const ConstView<float> a_block = a.block(ic, pc, mc, kc);
            for (std::ptrdiff_t q = 0; q < micropanel_count(mc, uk.mr); ++q) {
              pack_a_micropanel(uk, a_block, q, packed_a);
            }
            packed_block = block;
          }
          // Prefetch the block this thread is likely to take next: one
          // team's worth of blocks further down, as if handed out in turn.
          const std::ptrdiff_t next_ic = ic + team * uk.mc;
          const bool last_chunk = chunk + 1 == chunks;
          const ConstView<float> next = last_chunk && next_ic < m
                                            ? a.block(next_ic, pc, std::min(uk.mc, m - next_ic), kc)
                                            : ConstView<float>{};
          const std::ptrdiff_t j0 = q0 * uk.nr, j1 = std::min(nc, q1 * uk.nr);
          macro_kernel(uk, kc, packed_a, packed_b + j0 * kc, c.block(ic, jc + j0, mc, j1 - j0),
                       pc > 0, next);
        }  // the loop's own barrier: the panel stays until every block is done
      }
    }
  }
}

void parallel_matmul(ConstView<float> a, ConstView<float> b, View<float> c, int threads) {
  parallel_matmul_with(best_microkernel(), a, b, c, threads);
}

}  // namespace locality::cpu
