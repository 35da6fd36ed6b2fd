// Rung 4 -- packed: BLIS's five loops around a register-blocked micro-kernel.
//
// Idea: split C = A * B into blocks sized for each cache level, copy (pack)
//   each block of A and B into the exact order the micro-kernel consumes it,
//   and let a micro-kernel keep an MR x NR tile of C in vector registers for
//   the whole kc-long inner product.
// Locality: registers hold the C tile (no loads or stores of C in the inner
//   loop); L1 holds one MR x kc micro-panel of A (12 KiB) across the jr loop,
//   while the kc x NR micro-panels of B stream past it from L2, where the
//   whole kc x nc panel of B (1 MiB) stays across the ic loop. A is packed a
//   few micro-panels at a time (mc = 24 rows), just before use, so the kernel
//   finds it in L1/L2; the macro-kernel prefetches the next rows of A into L2
//   a few lines per call. Packed panels are read at unit stride, aligned,
//   with no TLB misses from walking down a column.
// Cost: two copies (O(mk + kn) per block, small next to O(mnk) work), a
//   ragged-edge path for tiles that overhang C, and a kernel per ISA.
// Loop order: BLIS keeps the broadcast operand's micro-panel in L1 and
//   streams the vector operand's; with rows of C as registers that means A
//   in L1 and B streaming. This rung first had it the other way round (jr
//   outside ir: a 32 KiB B micro-panel in L1, 240-row A blocks in L2) and
//   stalled at 0.91-0.95x oneDNN. In a scratch harness that alternates one
//   call of each with one of oneDNN's sgemm (6-12 pairs, same process),
//   swapping the two loops and shrinking mc to 24 and nc to 1024 moved it
//   from 0.90-0.93x to 0.95-0.98x at n = 4096 (1 and 2 threads), from 0.93x
//   to 0.96-0.97x at 2048 and from 0.965x to 0.995x at 1024 (1 thread); the
//   AVX2 6x16 kernel gained 13%. With the new order: kc 192-512 and nc
//   512-1536 no better than 256 / 1024; mc 12-96 within noise, 120-240 1-2%
//   slower (the A block no longer needs to fit L2, and packed just before
//   use it is still in L1).
// Measured before, with the old loop order (all within noise or worse):
//   kc 128-512, mc 96-960, nc 768-4096, k-unrolling, an 8x48 or 14x32 tile,
//   prefetching packed A or the next B micro-panel, prefetching the next B
//   panel's source or the next C tile (one call ahead, into L2), huge pages,
//   masked stores in the A transpose, a cache line of padding between B
//   micro-panels. Packing is bound by L2/L3 traffic, not instructions: the
//   AVX-512 transpose in packing.cpp is 25% faster than the scalar loop it
//   replaced.
// Here (bash bench/run.sh, commit 4e6d5cdfcb04, results/ holds it): 177
//   GFLOP/s at n = 1024 (90% of the FMA probe, 2.7x rung 3), 175-177 up to
//   4096, against oneDNN's sgemm at 180-182 in the same run: 0.97-0.98x of
//   it, past the 0.95x we aimed for. Before the loop swap the breakdown
//   (rdtsc, n = 1024-4096) was: micro-kernel on data in L1 at 96-97% of the
//   probe, the macro-kernel on pre-packed A and B at 93-94%, packing 3-4%
//   of the run (8% + 4% at n = 256, where oneDNN runs at 97% of the probe).
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
