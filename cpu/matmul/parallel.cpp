// Rung 5 -- parallel: rung 4's five loops with OpenMP on loop 3 (ic).
//
// Idea: all threads pack each kc x nc panel of B together, once, into a
//   shared buffer; then each thread takes mc-row blocks of A, packs them
//   privately and runs the macro-kernel against the shared B panel.
// Locality: why loop 3 on this machine: every core has a private L2 (2 MiB)
//   and all share a large L3. A thread's packed A block lives in its own L2,
//   the B panel (read by every thread) lives once in the shared L3. Splitting
//   loop 5 (jc) instead would give each thread its own B panel and double the
//   L3 footprint; splitting loops 2/1 would make every core load the same A
//   block into its L2. The row split any rung gets for free (split_rows) packs
//   all of B once per thread; this rung packs it once.
// Cost: synchronization. Two B buffers alternate between kc slices, so one
//   barrier per slice suffices (a thread may pack the next slice while others
//   still compute on this one), and the ic blocks are handed out dynamically
//   in pieces of about a quarter of a thread's share, so a core that is
//   slowed down (a busy neighbour, a virtual machine's stolen time) takes
//   fewer of them instead of holding up the barrier.
// Here: with 2 threads, 257-297 GFLOP/s at n = 1024-4096 (67-85% of the
//   2-thread FMA probe), 0.78-0.97x oneDNN over our suite runs (3
//   repetitions each; the latest committed run is the low end). Paired
//   directly against oneDNN, 60 alternating calls on a quiet machine, it
//   runs at 0.92x (n = 1024) and 0.91x (2048): about 95% of the single-thread
//   rate per core, so the gap is rung 4's. On this 2-core machine the free
//   row split of rung 4, and a variant where each thread packs a private copy
//   of B, measure the same in those paired runs: duplicating B's packing
//   costs little with two threads. Sharing B pays as cores multiply (each
//   extra copy is more packing and more L3); this machine cannot show it.
#include <omp.h>

#include <algorithm>

#include "locality/matmul.hpp"
#include "microkernel.hpp"
#include "packing.hpp"

namespace locality::cpu {
namespace {

// Rows per ic block: a multiple of MR, at most uk.mc (the L2 budget), and
// small enough that each thread gets about four blocks to balance with.
std::ptrdiff_t block_rows(const MicroKernel& uk, std::ptrdiff_t m, int threads) {
  constexpr std::ptrdiff_t kBlocksPerThread = 4;
  const std::ptrdiff_t share = (m + kBlocksPerThread * threads - 1) / (kBlocksPerThread * threads);
  return std::clamp((share + uk.mr - 1) / uk.mr * uk.mr, uk.mr, uk.mc);
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
  const std::ptrdiff_t mc_step = block_rows(uk, m, threads);
  const std::ptrdiff_t ic_blocks = (m + mc_step - 1) / mc_step;
  const std::size_t b_floats = packed_b_floats(uk, std::min(uk.kc, k), std::min(uk.nc, n));
  thread_local PackBuffer b_buffers[2];  // shared by the team: the caller's
  float* packed_b[2] = {b_buffers[0].get(b_floats), b_buffers[1].get(b_floats)};

#pragma omp parallel num_threads(threads)
  {
    thread_local PackBuffer a_buffer;  // private to each thread
    float* packed_a = a_buffer.get(packed_a_floats(uk, mc_step, std::min(uk.kc, k)));
    const std::ptrdiff_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    int slice = 0;

    for (std::ptrdiff_t jc = 0; jc < n; jc += uk.nc) {  // loop 5
      const std::ptrdiff_t nc = std::min(uk.nc, n - jc);
      for (std::ptrdiff_t pc = 0; pc < k; pc += uk.kc, ++slice) {  // loop 4
        const std::ptrdiff_t kc = std::min(uk.kc, k - pc);
        float* panel = packed_b[slice % 2];
        // The team packs this slice of B, each thread a contiguous run of
        // micro-panels, into the buffer nobody has read since two slices ago.
        const std::ptrdiff_t panels = micropanel_count(nc, uk.nr);
        pack_b_micropanels(uk, b.block(pc, jc, kc, nc), panels * t / nt, panels * (t + 1) / nt,
                           panel);
#pragma omp barrier
#pragma omp for schedule(dynamic, 1) nowait  // loop 3, shared out block by block
        for (std::ptrdiff_t block = 0; block < ic_blocks; ++block) {
          const std::ptrdiff_t ic = block * mc_step;
          const std::ptrdiff_t mc = std::min(mc_step, m - ic);
          const ConstView<float> a_block = a.block(ic, pc, mc, kc);
          for (std::ptrdiff_t q = 0; q < micropanel_count(mc, uk.mr); ++q) {
            pack_a_micropanel(uk, a_block, q, packed_a);
          }
          macro_kernel(uk, kc, packed_a, panel, c.block(ic, jc, mc, nc), pc > 0);
        }
      }
    }
  }
}

void parallel_matmul(ConstView<float> a, ConstView<float> b, View<float> c, int threads) {
  parallel_matmul_with(best_microkernel(), a, b, c, threads);
}

}  // namespace locality::cpu
