// Rung 5 -- parallel: rung 4's loops on every core, the B panel kept where
// the cache it lives in is: a copy per core in a private L2, one shared copy
// in the L3 unless every core has work enough to repay a copy of its own.
//
// Idea: for each kc x nc panel of B, the threads pack it (each its own copy
//   if one core's L2 holds it or each has rows enough to repay the copy,
//   else each a share of one copy, then a barrier), then take blocks of C's
//   rows from a shared counter (OpenMP's dynamic schedule); each packs its
//   block of A (or, where A serves several panels, finds it in the slice of
//   A the team packed, a share each) and runs the macro-kernel on it. The
//   barrier at the end of the blocks keeps a block's next kc slice from
//   starting before this one is added in.
// Locality: A is packed once (its blocks are handed out, not repeated per
//   thread) and each core keeps its block in L1/L2. A panel the L2 holds is
//   read from the L2 that packed it: one packed for the team leaves each
//   share dirty in its packer's L2, and fetching it across costs more than
//   packing it again. A panel that streams from L3 is shared, since a copy
//   per core packs the whole panel on every core, unless each core has 256
//   rows of C or more, where the copy costs less than the barrier and the
//   other core's lines.
// Cost: a copy of the panel per core (O(kn) per thread, against O(mnk /
//   threads) multiply-adds), or a barrier per kc slice where shared (and one
//   per slice of A where the team packs it); a barrier at the end of each
//   slice's blocks. Blocks go to threads as they come free, so a core slowed
//   by a neighbour (or a VM's stolen time) takes fewer of them.
// Edges: blocks of fewer rows than mc where that shares C's rows more evenly;
//   a C with too few row blocks to keep every thread busy is also cut into
//   column chunks of the panel (a thread that takes the next chunk of the
//   block it holds does not pack it again); one thread, or a product too
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
  // The work items of one panel: row blocks, each cut into `chunks` column
  // chunks where there are too few blocks for every thread to get a few. A
  // block is mc rows, or fewer micro-panels of mr rows where that shares C's
  // rows more evenly: of the heights up to mc, the one whose busiest thread
  // gets the fewest micro-panels (ties to the taller). The macro-kernel walks
  // A a micro-panel at a time anyway, so a shorter block costs no reuse.
  constexpr std::ptrdiff_t kItemsPerThread = 4;
  const std::ptrdiff_t wanted_items = kItemsPerThread * threads;
  const std::ptrdiff_t micropanels = micropanel_count(m, uk.mr);
  std::ptrdiff_t block_rows = uk.mc, busiest = micropanels + 1;
  for (std::ptrdiff_t height = uk.mc / uk.mr; height >= 1; --height) {
    const std::ptrdiff_t most =
        micropanel_count(micropanel_count(micropanels, height), threads) * height;
    if (most < busiest) busiest = most, block_rows = height * uk.mr;
  }
  const std::ptrdiff_t row_blocks = micropanel_count(m, block_rows);
  const std::ptrdiff_t chunks =
      std::clamp(micropanel_count(wanted_items, row_blocks), std::ptrdiff_t{1},
                 micropanel_count(std::min(uk.nc, n), uk.nr));
  const std::size_t panel_floats = packed_b_floats(uk, std::min(uk.kc, k), std::min(uk.nc, n));
  // A copy per thread where the panel fits the L2, or where each thread has
  // enough rows of C that packing the whole panel again is a small part of
  // its work (docs/cpu-matmul.md, "A panel per core"); else one shared copy.
  constexpr std::ptrdiff_t kOwnPanelRowsPerThread = 256;
  const bool own_panels = static_cast<std::ptrdiff_t>(panel_floats) <= uk.l2_panel_floats ||
                          m >= kOwnPanelRowsPerThread * threads;
  // Where several panels of B need A, the team packs each kc slice of it
  // once, together, as rung 4 does alone; the blocks then read it in place.
  const bool slice = packs_a_slice(uk, n);
  thread_local PackBuffer shared_a, shared_b;  // the caller's; the team writes into them
  float* const team_b = own_panels ? nullptr : shared_b.get(panel_floats);
  float* const team_a = slice ? shared_a.get(packed_a_floats(uk, m, std::min(uk.kc, k))) : nullptr;

#pragma omp parallel num_threads(threads)
  {
    thread_local PackBuffer own_a, own_b;
    float* const packed_b = own_panels ? own_b.get(panel_floats) : team_b;
    float* const packed_a =
        slice ? team_a : own_a.get(packed_a_floats(uk, std::min(uk.mc, m), std::min(uk.kc, k)));
    const int t = omp_get_thread_num(), team = omp_get_num_threads();
    for (std::ptrdiff_t pc = 0; pc < k; pc += uk.kc) {  // loop 4
      const std::ptrdiff_t kc = std::min(uk.kc, k - pc);
      if (slice) {
        const ConstView<float> a_slice = a.block(0, pc, m, kc);
        const std::ptrdiff_t micropanels_a = micropanel_count(m, uk.mr);
        for (std::ptrdiff_t q = micropanels_a * t / team; q < micropanels_a * (t + 1) / team; ++q) {
          pack_a_micropanel(uk, a_slice, q, packed_a);
        }
#pragma omp barrier
      }
      for (std::ptrdiff_t jc = 0; jc < n; jc += uk.nc) {  // loop 5
        const std::ptrdiff_t nc = std::min(uk.nc, n - jc);
        const std::ptrdiff_t panels = micropanel_count(nc, uk.nr);
        if (own_panels) {
          pack_b_panel(uk, b.block(pc, jc, kc, nc), packed_b);
        } else {
          pack_b_share(uk, b.block(pc, jc, kc, nc), packed_b, t, team);
#pragma omp barrier
        }
        std::ptrdiff_t packed_block = -1;  // the row block packed_a holds
#pragma omp for schedule(dynamic)
        for (std::ptrdiff_t item = 0; item < row_blocks * chunks; ++item) {  // loop 3
          const std::ptrdiff_t block = item / chunks, chunk = item % chunks;
          const std::ptrdiff_t q0 = panels * chunk / chunks, q1 = panels * (chunk + 1) / chunks;
          if (q1 <= q0) continue;
          const std::ptrdiff_t ic = block * block_rows, mc = std::min(block_rows, m - ic);
          if (!slice && block != packed_block) {
            pack_a_block(uk, a.block(ic, pc, mc, kc), packed_a);
            packed_block = block;
          }
          // Prefetch the block this thread is likely to take next: one
          // team's worth of blocks further down, as if handed out in turn
          // (packed already in the slice, else its rows to pack).
          const std::ptrdiff_t next_ic = ic + team * block_rows;
          const std::ptrdiff_t next_rows = std::min(block_rows, m - next_ic);
          ConstView<float> next;
          if (chunk + 1 == chunks && next_rows > 0) {
            next = slice ? packed_a_lines(uk, packed_a + next_ic * kc, next_rows, kc)
                         : a.block(next_ic, pc, next_rows, kc);
          }
          const std::ptrdiff_t j0 = q0 * uk.nr, j1 = std::min(nc, q1 * uk.nr);
          macro_kernel(uk, kc, slice ? packed_a + ic * kc : packed_a, packed_b + j0 * kc,
                       c.block(ic, jc + j0, mc, j1 - j0), pc > 0, next);
        }  // the loop's own barrier: every block's slice is in before the next
      }
    }
  }
}

void parallel_matmul(ConstView<float> a, ConstView<float> b, View<float> c, int threads) {
  parallel_matmul_with(best_microkernel(), a, b, c, threads);
}

}  // namespace locality::cpu
