#include "packing.hpp"

#include <algorithm>

namespace locality::cpu {

float* PackBuffer::get(std::size_t floats) {
  if (floats > size_) {
    data_.reset(static_cast<float*>(
        ::operator new(floats * sizeof(float), std::align_val_t{kCacheLineBytes})));
    size_ = floats;
  }
  return data_.get();
}

std::size_t packed_a_floats(const MicroKernel& uk, std::ptrdiff_t mc, std::ptrdiff_t kc) {
  return static_cast<std::size_t>(micropanel_count(mc, uk.mr) * uk.mr * kc);
}

std::size_t packed_b_floats(const MicroKernel& uk, std::ptrdiff_t kc, std::ptrdiff_t nc) {
  return static_cast<std::size_t>(micropanel_count(nc, uk.nr) * uk.nr * kc);
}

void pack_a_micropanel(const MicroKernel& uk, ConstView<float> a, std::ptrdiff_t index,
                       float* packed) {
  const std::ptrdiff_t kc = a.cols(), mr = uk.mr;
  const std::ptrdiff_t i0 = index * mr;
  const std::ptrdiff_t rows = std::min(mr, a.rows() - i0);
  float* dst = packed + index * mr * kc;
  // Read each of the MR rows sequentially; write them interleaved.
  for (std::ptrdiff_t r = 0; r < rows; ++r) {
    const float* src = a.row(i0 + r);
    for (std::ptrdiff_t p = 0; p < kc; ++p) dst[p * mr + r] = src[p];
  }
  for (std::ptrdiff_t r = rows; r < mr; ++r) {
    for (std::ptrdiff_t p = 0; p < kc; ++p) dst[p * mr + r] = 0.0f;
  }
}

void pack_b_micropanel(const MicroKernel& uk, ConstView<float> b, std::ptrdiff_t index,
                       float* packed) {
  const std::ptrdiff_t kc = b.rows(), nr = uk.nr;
  const std::ptrdiff_t j0 = index * nr;
  const std::ptrdiff_t cols = std::min(nr, b.cols() - j0);
  float* dst = packed + index * nr * kc;
  for (std::ptrdiff_t p = 0; p < kc; ++p) {
    const float* src = b.row(p) + j0;
    std::copy_n(src, cols, dst + p * nr);
    std::fill(dst + p * nr + cols, dst + (p + 1) * nr, 0.0f);
  }
}

void macro_kernel(const MicroKernel& uk, std::ptrdiff_t kc, const float* packed_a,
                  const float* packed_b, View<float> c, bool accumulate) {
  const std::ptrdiff_t mc = c.rows(), nc = c.cols(), mr = uk.mr, nr = uk.nr;
  alignas(kCacheLineBytes) float edge[kMaxMicroTileFloats];
  for (std::ptrdiff_t jr = 0; jr < nc; jr += nr) {
    const std::ptrdiff_t cols = std::min(nr, nc - jr);
    const float* b_panel = packed_b + (jr / nr) * nr * kc;
    for (std::ptrdiff_t ir = 0; ir < mc; ir += mr) {
      const std::ptrdiff_t rows = std::min(mr, mc - ir);
      const float* a_panel = packed_a + (ir / mr) * mr * kc;
      float* c_tile = c.row(ir) + jr;
      if (rows == mr && cols == nr) {
        uk.run(kc, a_panel, b_panel, c_tile, c.ld(), accumulate);
        continue;
      }
      // Ragged edge: compute the full tile aside, keep the part inside C.
      uk.run(kc, a_panel, b_panel, edge, nr, false);
      for (std::ptrdiff_t r = 0; r < rows; ++r) {
        float* dst = c_tile + r * c.ld();
        const float* src = edge + r * nr;
        for (std::ptrdiff_t j = 0; j < cols; ++j) dst[j] = accumulate ? dst[j] + src[j] : src[j];
      }
    }
  }
}

}  // namespace locality::cpu
