// Rung 4 -- parallel: rung 3's five loops with OpenMP on loop 3 (ic).
//
// Idea: all threads pack each kc x nc panel of B together, once, into one
//   shared buffer; then each thread takes its own mc-row blocks of A, packs
//   them privately and runs the macro-kernel against the shared B panel.
// Locality: why loop 3 on this machine: every core has a private L2 (2 MiB)
//   and all share a large L3. A thread's packed A block lives in its own L2,
//   the B panel (read by every thread) lives once in the shared L3. Splitting
//   loop 5 (jc) instead would give each thread its own B panel and double the
//   L3 footprint; splitting loops 2/1 would make every core load the same A
//   block into its L2. The row split any rung gets for free (split_rows) packs
//   all of B once per thread; this rung packs it once.
// Cost: two barriers per kc slice (B packed before use, and not overwritten
//   while in use); the ic blocks are resized so every thread gets the same
//   number of equal blocks, or with m = 1024 one core would idle for a third.
// Here: see the ladder table in README.md (results/ holds the run).
#include <omp.h>

#include <algorithm>

#include "locality/matmul.hpp"
#include "microkernel.hpp"
#include "packing.hpp"

namespace locality::cpu {
namespace {

// Rows per ic block: at most uk.mc, a multiple of MR, and as many blocks as a
// multiple of the thread count, so the static schedule is balanced.
std::ptrdiff_t balanced_mc(const MicroKernel& uk, std::ptrdiff_t m, int threads) {
  std::ptrdiff_t blocks = (m + uk.mc - 1) / uk.mc;
  blocks = (blocks + threads - 1) / threads * threads;
  const std::ptrdiff_t rows = (m + blocks - 1) / blocks;
  return std::min(uk.mc, (rows + uk.mr - 1) / uk.mr * uk.mr);
}

}  // namespace

void parallel_matmul_with(const MicroKernel& uk, ConstView<float> a, ConstView<float> b,
                          View<float> c, int threads) {
  const std::ptrdiff_t m = a.rows(), k = a.cols(), n = b.cols();
  const std::ptrdiff_t mc_step = balanced_mc(uk, m, threads);
  const std::ptrdiff_t ic_blocks = (m + mc_step - 1) / mc_step;
  thread_local PackBuffer b_buffer;  // shared by the team: the caller's
  float* packed_b = b_buffer.get(packed_b_floats(uk, std::min(uk.kc, k), std::min(uk.nc, n)));

#pragma omp parallel num_threads(threads)
  {
    thread_local PackBuffer a_buffer;  // private to each thread
    float* packed_a = a_buffer.get(packed_a_floats(uk, mc_step, std::min(uk.kc, k)));

    for (std::ptrdiff_t jc = 0; jc < n; jc += uk.nc) {  // loop 5
      const std::ptrdiff_t nc = std::min(uk.nc, n - jc);
      for (std::ptrdiff_t pc = 0; pc < k; pc += uk.kc) {  // loop 4
        const std::ptrdiff_t kc = std::min(uk.kc, k - pc);
        const ConstView<float> b_panel = b.block(pc, jc, kc, nc);
        {  // the team packs B together, each thread a contiguous run of micro-panels
          const std::ptrdiff_t panels = micropanel_count(nc, uk.nr);
          const std::ptrdiff_t t = omp_get_thread_num(), nt = omp_get_num_threads();
          pack_b_micropanels(uk, b_panel, panels * t / nt, panels * (t + 1) / nt, packed_b);
        }
#pragma omp barrier
#pragma omp for schedule(static)  // loop 3, split across threads; implicit barrier
        for (std::ptrdiff_t block = 0; block < ic_blocks; ++block) {
          const std::ptrdiff_t ic = block * mc_step;
          const std::ptrdiff_t mc = std::min(mc_step, m - ic);
          const ConstView<float> a_block = a.block(ic, pc, mc, kc);
          for (std::ptrdiff_t q = 0; q < micropanel_count(mc, uk.mr); ++q) {
            pack_a_micropanel(uk, a_block, q, packed_a);
          }
          macro_kernel(uk, kc, packed_a, packed_b, c.block(ic, jc, mc, nc), pc > 0);
        }
      }
    }
  }
}

void parallel_matmul(ConstView<float> a, ConstView<float> b, View<float> c, int threads) {
  parallel_matmul_with(best_microkernel(), a, b, c, threads);
}

}  // namespace locality::cpu
