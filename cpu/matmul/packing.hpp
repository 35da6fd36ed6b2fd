// Packing and the macro-kernel: the pieces shared by the packed rung and its
// parallel twin (internal to cpu/matmul/).
//
// Packing copies a block of A or B into the order the micro-kernel reads it,
// so the kernel's inner loop touches consecutive addresses only: a few
// sequential streams the hardware prefetcher follows, no TLB misses from
// walking down columns, and zero padding instead of edge branches.
#pragma once

#include <cstddef>
#include <memory>
#include <new>

#include "locality/matrix.hpp"
#include "microkernel.hpp"

namespace locality::cpu {

// A growable, 64-byte aligned float buffer for packed panels.
class PackBuffer {
 public:
  float* get(std::size_t floats);

 private:
  struct AlignedDelete {
    void operator()(float* p) const { ::operator delete (p, std::align_val_t{kCacheLineBytes}); }
  };
  std::unique_ptr<float[], AlignedDelete> data_;
  std::size_t size_ = 0;
};

// Floats needed for a packed mc x kc block of A / kc x nc panel of B,
// rounded up to whole micro-panels.
std::size_t packed_a_floats(const MicroKernel& uk, std::ptrdiff_t mc, std::ptrdiff_t kc);
std::size_t packed_b_floats(const MicroKernel& uk, std::ptrdiff_t kc, std::ptrdiff_t nc);

// Packs micro-panel `index` (rows index*MR .. +MR) of the block `a` (mc x kc)
// into `packed`, the start of the whole packed block.
void pack_a_micropanel(const MicroKernel& uk, ConstView<float> a, std::ptrdiff_t index,
                       float* packed);
// Packs the panel `b` (kc x nc) into `packed`: micro-panel after micro-panel,
// the last one zero-padded to NR columns.
void pack_b_panel(const MicroKernel& uk, ConstView<float> b, float* packed);

inline std::ptrdiff_t micropanel_count(std::ptrdiff_t extent, std::ptrdiff_t width) {
  return (extent + width - 1) / width;
}

// C block (mc x nc) = or += packed A (mc x kc) * packed B (kc x nc): the two
// innermost loops (ir over MR-tall rows, then jr over NR-wide columns) around
// the micro-kernel, with a scratch tile for the ragged edges of C. Between calls
// it prefetches `next` (the unpacked block the caller packs next, may be
// empty) into L2, a few lines per call, so that packing reads it from L2
// rather than L3 and the loads overlap the arithmetic.
void macro_kernel(const MicroKernel& uk, std::ptrdiff_t kc, const float* packed_a,
                  const float* packed_b, View<float> c, bool accumulate,
                  ConstView<float> next = {});

}  // namespace locality::cpu
