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
//   small for a panel wide enough to be worth packing A for). Where one
//   panel covers all of B, A is packed a few micro-panels at a time (mc
//   rows), just before use, so the kernel finds it in L1/L2. Where there are
//   several, each kc slice of A is packed once, all m rows, and every panel
//   reads it from there, contiguous: packing A again per panel would repeat
//   its strided reads from memory, a new page for every row. Either way the
//   macro-kernel prefetches the next block of A into L2 a few lines per call.
//   Packed panels are read at unit stride, aligned, with no TLB misses from
//   walking down a column. (BLIS's order: the broadcast operand's micro-panel
//   in L1, the vector operand's streaming.)
// Cost: two copies (O(mk + kn) per block, small next to O(mnk) work), a
//   buffer for a kc slice of A (at most the size of A) where it is kept, a
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
// Floats of packed A, rounded up to whole cache lines so packed B is aligned
// too: one block (mc rows), or all m rows of a kc slice where A is reused
// by several panels of B.
std::size_t packed_a_span(const MicroKernel& uk, std::ptrdiff_t m, std::ptrdiff_t n,
                          std::ptrdiff_t k) {
  constexpr std::size_t line = kCacheLineBytes / sizeof(float);
  const std::ptrdiff_t rows = packs_a_slice(uk, n) ? m : std::min(uk.mc, m);
  return (packed_a_floats(uk, rows, std::min(uk.kc, k)) + line - 1) / line * line;
}
}  // namespace

bool packs_a_slice(const MicroKernel& uk, std::ptrdiff_t n) { return n > uk.nc; }

std::size_t packed_matmul_buffer_floats(const MicroKernel& uk, std::ptrdiff_t m, std::ptrdiff_t n,
                                        std::ptrdiff_t k) {
  return packed_a_span(uk, m, n, k) + packed_b_floats(uk, std::min(uk.kc, k), std::min(uk.nc, n));
}

void packed_matmul_into(const MicroKernel& uk, ConstView<float> a, ConstView<float> b,
                        View<float> c, float* buffer) {
  const std::ptrdiff_t m = a.rows(), k = a.cols(), n = b.cols();
  const bool slice = packs_a_slice(uk, n);
  float* packed_a = buffer;
  float* packed_b = buffer + packed_a_span(uk, m, n, k);

  for (std::ptrdiff_t pc = 0; pc < k; pc += uk.kc) {  // loop 4: kc-deep slices of k
    const std::ptrdiff_t kc = std::min(uk.kc, k - pc);
    if (slice) pack_a_block(uk, a.block(0, pc, m, kc), packed_a);  // once, for every panel
    for (std::ptrdiff_t jc = 0; jc < n; jc += uk.nc) {             // loop 5: nc columns of B and C
      const std::ptrdiff_t nc = std::min(uk.nc, n - jc);
      pack_b_panel(uk, b.block(pc, jc, kc, nc), packed_b);
      for (std::ptrdiff_t ic = 0; ic < m; ic += uk.mc) {  // loop 3: mc rows of A and C
        const std::ptrdiff_t mc = std::min(uk.mc, m - ic);
        // Loops 2 and 1 (jr, ir) and the micro-kernel, which meanwhile bring
        // the A block used next into L2: the next packed one from the slice,
        // else the next rows (or the next slice's first) to pack.
        const float* a_block = packed_a;
        ConstView<float> next;
        if (slice) {
          a_block = packed_a + ic * kc;  // whole micro-panels: mc is a multiple of mr
          if (ic + mc < m) {
            next = packed_a_lines(uk, a_block + mc * kc, std::min(uk.mc, m - ic - mc), kc);
          }
        } else {
          pack_a_block(uk, a.block(ic, pc, mc, kc), packed_a);
          if (ic + mc < m) {
            next = a.block(ic + mc, pc, std::min(uk.mc, m - ic - mc), kc);
          } else if (pc + kc < k) {
            next = a.block(0, pc + kc, std::min(uk.mc, m), std::min(uk.kc, k - pc - kc));
          }
        }
        macro_kernel(uk, kc, a_block, packed_b, c.block(ic, jc, mc, nc), pc > 0, next);
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
