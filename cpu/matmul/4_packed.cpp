// Rung 4 -- packed: BLIS's five loops around a register-blocked micro-kernel.
//
// Idea: split C = A * B into blocks sized for each cache level, copy (pack)
//   each block of A and B into the exact order the micro-kernel consumes it,
//   and let a micro-kernel keep an MR x NR tile of C in vector registers for
//   the whole kc-long inner product.
// Locality: registers hold the C tile (no loads or stores of C in the inner
//   loop); L1 holds one MR x kc micro-panel of A across the jr loop, while the
//   kc x NR micro-panels of B stream past it from L2, where the whole kc x nc
//   panel of B stays across the ic loop (or from L3, where the L2 is too
//   small for a panel wide enough to be worth packing A for). A is packed a
//   few micro-panels at a time (mc rows), just before use, so the kernel
//   finds it in L1/L2; the macro-kernel prefetches the next rows of A into
//   L2 a few lines per call.
//   Packed panels are read at unit stride, aligned, with no TLB misses from
//   walking down a column. (BLIS's order: the broadcast operand's micro-panel
//   in L1, the vector operand's streaming.)
// Cost: two copies (O(mk + kn) per block, small next to O(mnk) work), a
//   ragged-edge path for tiles that overhang C, and a kernel per ISA
//   (microkernels.cpp picks it; the block sizes travel with the kernel).
// Edges: ragged tiles are packed with zero padding and written back through
//   a small buffer, so any m, n, k runs the same kernel. How close it comes to
//   oneDNN, and what was tried on the way: docs/cpu-matmul.md.
#include <algorithm>

#include "locality/matmul.hpp"
#include "microkernel.hpp"
#include "packing.hpp"

namespace locality::cpu {

namespace {
// Floats of packed A, rounded up to whole cache lines so packed B is aligned too.
std::size_t packed_a_span(const MicroKernel& uk, std::ptrdiff_t m, std::ptrdiff_t k) {
  constexpr std::size_t kLine = kCacheLineBytes / sizeof(float);
  return (packed_a_floats(uk, std::min(uk.mc, m), std::min(uk.kc, k)) + kLine - 1) / kLine * kLine;
}
// The block of A that loop 3 packs after the one at (ic, pc) of the panel at
// column jc: the next mc rows, else the first rows of the next kc slice (of
// this panel or the next); empty after the last.
ConstView<float> next_a_block(const MicroKernel& uk, ConstView<float> a, std::ptrdiff_t ic,
                              std::ptrdiff_t pc, std::ptrdiff_t jc, std::ptrdiff_t n) {
  const std::ptrdiff_t m = a.rows(), k = a.cols();
  std::ptrdiff_t i = ic + uk.mc, p = pc;
  if (i >= m) i = 0, p += uk.kc;
  if (p >= k) {
    if (jc + uk.nc >= n) return {};
    p = 0;
  }
  return a.block(i, p, std::min(uk.mc, m - i), std::min(uk.kc, k - p));
}
}  // namespace

std::size_t packed_matmul_buffer_floats(const MicroKernel& uk, std::ptrdiff_t m, std::ptrdiff_t n,
                                        std::ptrdiff_t k) {
  return packed_a_span(uk, m, k) + packed_b_floats(uk, std::min(uk.kc, k), std::min(uk.nc, n));
}

void packed_matmul_into(const MicroKernel& uk, ConstView<float> a, ConstView<float> b,
                        View<float> c, float* buffer) {
  const std::ptrdiff_t m = a.rows(), k = a.cols(), n = b.cols();
  float* packed_a = buffer;
  float* packed_b = buffer + packed_a_span(uk, m, k);

  for (std::ptrdiff_t jc = 0; jc < n; jc += uk.nc) {  // loop 5: nc columns of B and C
    const std::ptrdiff_t nc = std::min(uk.nc, n - jc);
    for (std::ptrdiff_t pc = 0; pc < k; pc += uk.kc) {  // loop 4: kc-deep slices of k
      const std::ptrdiff_t kc = std::min(uk.kc, k - pc);
      pack_b_panel(uk, b.block(pc, jc, kc, nc), packed_b);
      for (std::ptrdiff_t ic = 0; ic < m; ic += uk.mc) {  // loop 3: mc rows of A and C
        const std::ptrdiff_t mc = std::min(uk.mc, m - ic);
        const ConstView<float> a_block = a.block(ic, pc, mc, kc);
        for (std::ptrdiff_t q = 0; q < micropanel_count(mc, uk.mr); ++q) {
          pack_a_micropanel(uk, a_block, q, packed_a);
        }
        // Loops 2 and 1 (jr, ir) and the micro-kernel, which meanwhile
        // bring the next block of A into L2 for the next round of packing.
        macro_kernel(uk, kc, packed_a, packed_b, c.block(ic, jc, mc, nc), pc > 0,
                     next_a_block(uk, a, ic, pc, jc, n));
      }
    }
  }
}

void packed_matmul_with(const MicroKernel& uk, ConstView<float> a, ConstView<float> b,
                        View<float> c) {
  thread_local PackBuffer buffer;
  packed_matmul_into(uk, a, b, c,
                     buffer.get(packed_matmul_buffer_floats(uk, a.rows(), b.cols(), a.cols())));
}

void packed_matmul(ConstView<float> a, ConstView<float> b, View<float> c) {
  packed_matmul_with(best_microkernel(), a, b, c);
}

}  // namespace locality::cpu
